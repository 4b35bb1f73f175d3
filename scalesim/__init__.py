"""scalesim: what-if simulator for the energy, carbon and water cost of training and serving LLMs.

>>> import scalesim as ss
>>> r = ss.simulate(n_params=70e9, n_tokens=2e12, hardware="H100-SXM5-80GB", n_chips=2048,
...                 region="US-CAL-CISO", pue=1.1)

Layers (imports point down only): data (``catalog``, ``data/``) -> ``models`` (pure numpy) ->
``steps`` (registries) -> ``chain`` (simulate, throughput) -> ``solve`` (optimize) ->
``validation``/``calibration`` -> ``interface`` (cli, scenarios, plotting).
"""

__version__ = "0.1.0"

from scalesim import accessor  # noqa: F401,E402  (registers the ``ds.scalesim`` accessor)
from scalesim.chain.simulation import logspace, simulate  # noqa: E402
from scalesim.solve.optimization import optimize  # noqa: E402
from scalesim.validation import validate  # noqa: E402

_LAZY = {"throughput": ("scalesim.chain.training_throughput", "throughput"),
         "schedule": ("scalesim.solve.scheduling", "schedule"),
         "serve": ("scalesim.chain.serving", "serve"),
         "sensitivity": ("scalesim.solve.uncertainty", "sensitivity")}


def __getattr__(name):
    # Heavier entry points load on first use so `import scalesim` stays light.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'scalesim' has no attribute {name!r}")


__all__ = ["simulate", "optimize", "validate", "throughput", "serve", "schedule", "sensitivity", "logspace", "__version__"]
