"""scalesim: what-if simulator for the energy, carbon and water cost of training and serving LLMs.

>>> import scalesim as ss
>>> r = ss.simulate(n_params=70e9, n_tokens=2e12, hardware="H100-SXM5-80GB", n_chips=2048,
...                 region="US-CAL-CISO", pue=1.1)

Layers (imports point down only): data (``catalog``, ``data/``) -> ``models`` (pure numpy) ->
``steps`` (registries) -> ``chain`` (simulate, throughput) -> ``solve`` (optimize) ->
``validation``/``calibration`` -> ``interface`` (cli, scenarios, plotting).
"""

__version__ = "0.1.0"

# Every entry point loads on first use (module ``__getattr__``), so `import scalesim` and
# `scalesim --version` import neither xarray nor pandas; `scalesim._hooks` registers the ``ds.scalesim``
# accessor as soon as xarray is imported, by scalesim or by the user.
from scalesim import _hooks  # noqa: E402

_hooks.register_accessor_on_xarray_import()

_LAZY = {"simulate": ("scalesim.chain.simulation", "simulate"),
         "logspace": ("scalesim.chain.simulation", "logspace"),
         "optimize": ("scalesim.solve.optimization", "optimize"),
         "validate": ("scalesim.validation", "validate"),
         "throughput": ("scalesim.chain.training_throughput", "throughput"),
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


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["simulate", "optimize", "validate", "throughput", "serve", "schedule", "sensitivity", "logspace", "__version__"]
