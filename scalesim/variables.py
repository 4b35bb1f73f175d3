"""The one registry of output variables: units (pint-parsable), long names and descriptions.

Attrs are attached once, at the end of :func:`scalesim.simulate` (most xarray operations drop
attrs, so they are never threaded through the computation).
"""

from __future__ import annotations

from . import units as u

VARIABLES = {
    "flop": (u.UNIT_FLOP, "training compute", "Model FLOPs of the training run (MFU basis)."),
    "mfu": (u.UNIT_DIMENSIONLESS, "model FLOPs utilisation", "Achieved model FLOP/s over dense peak FLOP/s."),
    "chip_hours": (u.UNIT_HOUR, "accelerator-hours", "Accelerator-hours including time lost to failures (1/goodput)."),
    "wall_days": (u.UNIT_DAY, "wall-clock time", "Wall-clock training time on n_chips accelerators."),
    "chip_power_w": (u.UNIT_WATT, "average power per accelerator", "Average IT power per accelerator incl. its share of the host server while training."),
    "it_energy_kwh": (u.UNIT_KWH, "IT energy", "Energy drawn by accelerators and hosts, before PUE."),
    "energy_kwh": (u.UNIT_KWH, "facility energy", "Facility energy = IT energy x PUE (PUE applied once)."),
    "pue": (u.UNIT_DIMENSIONLESS, "power usage effectiveness", "Facility energy over IT energy."),
    "grid_gco2e_per_kwh": (u.UNIT_GCO2E_PER_KWH, "grid carbon intensity [gCO2e/kWh]", "Grid carbon intensity applied to facility energy (time-weighted when start_hour is given)."),
    "co2e_t": (u.UNIT_TONNE, "operational emissions [tCO2e]", "Operational (scope 2, location-based) emissions = facility energy x grid intensity."),
    "embodied_co2e_t": (u.UNIT_TONNE, "embodied emissions [tCO2e]", "Manufacturing emissions of accelerators and host share, amortised by use time."),
    "total_co2e_t": (u.UNIT_TONNE, "total emissions [tCO2e]", "Operational plus embodied emissions."),
    "water_onsite_l": (u.UNIT_LITRE, "on-site water", "Cooling water consumed on site = IT energy x WUE."),
    "water_offsite_l": (u.UNIT_LITRE, "off-site water", "Water consumed generating the electricity = facility energy x EWIF."),
    "water_l": (u.UNIT_LITRE, "water consumption", "On-site plus off-site water consumption."),
    "schedule_saving": (u.UNIT_DIMENSIONLESS, "net saving of the schedule",
                        "1 - total tCO2e / total tCO2e of running immediately (idle power and stretched embodied included)."),
    "loss": (u.UNIT_NATS, "predicted loss [nats/token]", "Pre-training loss predicted by the scaling law."),
    "feasible": (u.UNIT_DIMENSIONLESS, "feasible", "Whether the configuration meets the goal and constraints."),
    "n_params_opt": ("1", "parameters at the optimum", "Optimal number of parameters."),
    "n_tokens_opt": ("1", "training tokens at the optimum", "Optimal number of training tokens."),
}

MODEL_OF = {"loss": "law", "flop": "flop_model", "mfu": "mfu_model"}


def attach(ds, *, models=None):
    """Set ``units``, ``long_name`` and ``description`` (and ``model``) on every known variable."""
    models = models or {}
    for name in ds.data_vars:
        if name in VARIABLES:
            units, long_name, description = VARIABLES[name]
            ds[name].attrs.update(units=units, long_name=long_name, description=description)
            if name in models:
                ds[name].attrs["model"] = models[name]
    for name in ds.coords:
        if name in VARIABLES or name in INPUT_COORDS:
            units, long_name = INPUT_COORDS.get(name, VARIABLES.get(name, ("", ""))[:2])
            ds[name].attrs.update(units=units, long_name=long_name)
    return ds


INPUT_COORDS = {
    "n_params": ("1", "parameters"),
    "n_active_params": ("1", "active parameters per token"),
    "n_tokens": ("1", "training tokens"),
    "n_chips": ("1", "accelerators"),
    "hardware": ("", "accelerator"),
    "region": ("", "region"),
    "mfu": (u.UNIT_DIMENSIONLESS, "model FLOPs utilisation"),
    "pue": (u.UNIT_DIMENSIONLESS, "power usage effectiveness"),
    "start_hour": (u.UNIT_HOUR, "start hour (local)"),
    "chip_hours": (u.UNIT_HOUR, "accelerator-hours"),
    "chip_power_w": (u.UNIT_WATT, "average power per accelerator"),
    "grid_gco2e_per_kwh": (u.UNIT_GCO2E_PER_KWH, "grid carbon intensity [gCO2e/kWh]"),
    "flop": (u.UNIT_FLOP, "training compute"),
}
