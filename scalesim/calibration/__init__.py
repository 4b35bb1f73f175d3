"""Calibration layer: fits of model parameters on the shipped published data (each pinned by a refit test).

- :mod:`scalesim.calibration.utilisation`: utilisation and power of published training runs.
- :mod:`scalesim.calibration.throughput`: efficiencies of the throughput model on public benchmarks.
"""

from scalesim.calibration.utilisation import (  # noqa: F401
    ACCELERATOR_IDS, COMPUTE_CAVEATS, PRIOR_WEIGHT_GENERATION, compute_caveat, epoch_duplicates, epoch_generation,
    fit_hierarchical_utilisation, fit_power_model, fit_run_utilisation, fit_structural_goodput, fit_utilisation_model,
    hardware_of, leave_one_out, parse_number, run_group, run_implied_mfu, run_structural_mfu, training_flop,
)

#: Fits that need scipy.optimize load on first use, so `import scalesim` stays light.
_LAZY = {"fit_throughput_parameters": "throughput", "leave_one_source_out": "throughput", "fit_gemm_curve": "throughput",
         "leave_one_generation_out": "throughput", "holdout_error": "throughput", "HOLDOUT_TABLE": "throughput",
         "HOLDOUT2_TABLE": "throughput",
         "fit_serving_parameters": "serving", "leave_one_model_out": "serving"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"scalesim.calibration.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'scalesim.calibration' has no attribute {name!r}")
