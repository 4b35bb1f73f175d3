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
    "co2e_market_t": (u.UNIT_TONNE, "market-based operational emissions [tCO2e]",
                      "Operational (scope 2, market-based) emissions = facility energy x (cfe_fraction x supply + (1 - cfe_fraction) x residual mix); "
                      "24/7 hourly matching with supply_profile. Never added to location-based totals."),
    "cfe_hourly_fraction": (u.UNIT_DIMENSIONLESS, "hourly-matched carbon-free share",
                            "Share of the load matched hour by hour by the contracted supply (24/7 CFE) = sum min(load, supply) / sum load."),
    "embodied_co2e_t": (u.UNIT_TONNE, "embodied emissions [tCO2e]", "Manufacturing emissions of accelerators and host share, amortised by use time."),
    "total_co2e_t": (u.UNIT_TONNE, "total emissions [tCO2e]", "Operational (location-based) plus embodied emissions."),
    "water_onsite_l": (u.UNIT_LITRE, "on-site water", "Cooling water consumed on site = IT energy x WUE."),
    "water_offsite_l": (u.UNIT_LITRE, "off-site water", "Water consumed generating the electricity = facility energy x EWIF "
                        "(by default the region's generation mix x per-fuel water, scalesim.grid_water)."),
    "water_l": (u.UNIT_LITRE, "water consumption", "On-site plus off-site water consumption."),
    "project_energy_kwh": (u.UNIT_KWH, "project facility energy",
                           "Facility energy of the whole project = final run x (1 + development_overhead): experiments, failed runs, post-training, evaluation."),
    "project_co2e_t": (u.UNIT_TONNE, "project operational emissions [tCO2e]",
                       "Operational (location-based) emissions of the whole project = final run x (1 + development_overhead)."),
    "project_total_co2e_t": (u.UNIT_TONNE, "project total emissions [tCO2e]",
                             "Operational plus embodied emissions of the whole project = final run x (1 + development_overhead)."),
    "project_water_l": (u.UNIT_LITRE, "project water consumption",
                        "On-site plus off-site water of the whole project = final run x (1 + development_overhead)."),
    "schedule_saving": (u.UNIT_DIMENSIONLESS, "net saving of the schedule",
                        "1 - total tCO2e / total tCO2e of running immediately (idle power and stretched embodied included)."),
    "loss": (u.UNIT_NATS, "predicted loss [nats/token]", "Pre-training loss predicted by the scaling law."),
    "feasible": (u.UNIT_DIMENSIONLESS, "feasible", "Whether the configuration meets the goal and constraints."),
    "n_params_opt": ("1", "parameters at the optimum", "Optimal number of parameters."),
    "n_tokens_opt": ("1", "training tokens at the optimum", "Optimal number of training tokens."),
}

MODEL_OF = {"loss": "law", "flop": "flop_model", "mfu": "mfu_model"}

#: Accounting basis of each emission variable (attrs ``basis``): location- and market-based are never mixed
#: (Maji et al. 2024, arXiv:2402.03550: mixing them overstates savings by up to 55.1 %).
BASIS = {"co2e_t": "location-based", "co2e_market_t": "market-based (GHG Protocol Scope 2)",
         "total_co2e_t": "location-based operational + embodied", "cfe_hourly_fraction": "market-based (24/7 hourly)"}


def attach(ds, *, models=None, variable_attrs=None):
    """Set ``units``, ``long_name`` and ``description`` (and ``model``, ``basis``) on every known variable.

    ``variable_attrs`` (``{name: {attr: value}}``) adds run-specific attrs (the ``cfe_fraction`` used).
    """
    models = models or {}
    for name in ds.data_vars:
        if name in VARIABLES:
            units, long_name, description = VARIABLES[name]
            ds[name].attrs.update(units=units, long_name=long_name, description=description)
            if name in models:
                ds[name].attrs["model"] = models[name]
            if name in BASIS:
                ds[name].attrs["basis"] = BASIS[name]
            ds[name].attrs.update((variable_attrs or {}).get(name, {}))
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
    "cfe_fraction": (u.UNIT_DIMENSIONLESS, "contracted carbon-free share of the load (annual)"),
    "supply_gco2e_per_kwh": (u.UNIT_GCO2E_PER_KWH, "emission factor of the contracted supply"),
    "residual_gco2e_per_kwh": (u.UNIT_GCO2E_PER_KWH, "residual-mix intensity"),
    "development_overhead": (u.UNIT_DIMENSIONLESS, "development overhead (extra over final-run compute)"),
    "chip_hours": (u.UNIT_HOUR, "accelerator-hours"),
    "chip_power_w": (u.UNIT_WATT, "average power per accelerator"),
    "grid_gco2e_per_kwh": (u.UNIT_GCO2E_PER_KWH, "grid carbon intensity [gCO2e/kWh]"),
    "flop": (u.UNIT_FLOP, "training compute"),
}
