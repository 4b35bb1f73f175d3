"""Calibration layer: fits of model parameters on the shipped published data (each pinned by a refit test).

- :mod:`scalesim.calibration.utilisation`: utilisation and power of published training runs.
- :mod:`scalesim.calibration.throughput`: efficiencies of the throughput model on public benchmarks.
"""

from scalesim.calibration.utilisation import (  # noqa: F401
    ACCELERATOR_IDS, COMPUTE_CAVEATS, PRIOR_WEIGHT_GENERATION, compute_caveat, epoch_duplicates, epoch_generation,
    fit_hierarchical_utilisation, fit_power_model, fit_run_utilisation, fit_structural_goodput, run_structural_mfu, fit_utilisation_model, hardware_of,
    leave_one_out, parse_number, run_group, run_implied_mfu, training_flop,
)
from scalesim.calibration.throughput import fit_throughput_parameters, leave_one_source_out  # noqa: F401,E402
from scalesim.calibration.serving import fit_serving_parameters, leave_one_model_out  # noqa: F401,E402
