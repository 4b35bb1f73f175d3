"""Levers: how far each mitigation moves one model's footprint, applied one after another.

:func:`waterfall` starts from a baseline configuration (a dict of :func:`scalesim.optimize` or
:func:`scalesim.simulate` inputs) and applies each lever's overrides on top of the previous ones.
Every step is one independent call of the library, so each bar is exactly the difference of two
calls, and the location-based bars telescope: baseline - sum of savings = the last level.

A lever on the *market* basis (contracted clean supply, ``cfe_fraction``) changes the accounting,
not the electricity drawn: it is evaluated on top of the last location-based configuration,
reported on its own basis (``basis='market'``, its CO2e read from the market-based variable:
optimize's ``objective`` with ``objective='co2e_market_t'``, or ``co2e_market_t`` of simulate) and
never enters the cumulative location-based saving. Market levers therefore come last.

Uncertainty: with ``samples`` in the baseline, every step is also run with Monte Carlo draws
(common random numbers, so savings are paired per sample) and the band is a pair of quantiles
of the level and of each saving; without, the band is the ``defaults='low'``/``'high'`` corners.
The central values are always the run at ``defaults='central'`` without sampling.

A waterfall has a handful of levers, each a different call (a different strategy or serving
dtype, not a coordinate), so the steps are a loop over levers; each call is itself vectorised.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..units import UNIT_LITRE, UNIT_TONNE

BASES = ("location", "market")

#: Result variables: (units, long_name, description); ``<name>_low``/``_high`` are the band.
VARIABLES = {
    "co2e_t": (UNIT_TONNE, "emissions after the lever [tCO2e]",
               "Emissions of the configuration with this lever and every earlier location-based one (market "
               "levers: market-based emissions of the last location-based configuration with the lever)."),
    "water_l": (UNIT_LITRE, "water after the lever", "Water consumption of the same configuration."),
    "co2e_saving_t": (UNIT_TONNE, "saving of the lever [tCO2e]",
                      "Level before the lever minus level after it (the difference of two independent calls)."),
    "water_saving_l": (UNIT_LITRE, "water saving of the lever", "Level before the lever minus level after it."),
    "co2e_cumulative_saving_t": (UNIT_TONNE, "cumulative location-based saving [tCO2e]",
                                 "Baseline minus level after the lever; NaN for market levers (never summed)."),
    "water_cumulative_saving_l": (UNIT_LITRE, "cumulative water saving",
                                  "Baseline minus level after the lever; NaN for market levers (never summed)."),
}


def waterfall(base, levers, *, run=None, co2e="lifetime_co2e_t", water="lifetime_water_l",
              market_co2e="objective", q=(0.05, 0.95), bands="auto"):
    """Apply ``levers`` cumulatively to ``base`` and return each step's level and saving.

    Parameters
    ----------
    base : dict
        Inputs of ``run`` for the baseline (e.g. A100, an average grid, bf16 serving, direct
        training). ``samples``/``seed`` here give Monte Carlo bands.
    levers : sequence of (name, overrides) or (name, overrides, basis)
        Each lever's inputs replacing or adding to the current configuration; ``basis`` is
        ``'location'`` (default) or ``'market'`` (after every location lever).
    run : callable, optional
        ``run(**inputs) -> xarray.Dataset`` (default :func:`scalesim.optimize`).
    co2e, water, market_co2e : str
        Result variables read for emissions [tCO2e], water [L] and market-based emissions [tCO2e]
        (defaults: optimize's lifetime totals, and for market levers optimize's ``objective``,
        which then must be ``'co2e_market_t'`` in the lever's overrides: the configuration chosen
        for its market-based lifetime cost; with :func:`scalesim.simulate` use ``'co2e_t'``,
        ``'water_l'``, ``'co2e_market_t'``).
    q : (float, float)
        Quantiles of the Monte Carlo band [-].
    bands : {'auto', 'samples', 'corners', 'none'}
        'auto': 'samples' when ``base`` has ``samples``, else 'corners'.

    Returns
    -------
    xarray.Dataset
        On dim ``lever`` (``'baseline'`` then the levers' names, with coordinates ``basis`` and
        ``step``): :data:`VARIABLES`, each with ``<name>_low`` and ``<name>_high`` (the band), plus
        any dims of the runs' results (a list input keeps its dimension).
    """
    steps = _steps(base, levers)
    for lever, b, cfg in steps:
        if b == "market" and market_co2e == "objective" and cfg.get("objective") != "co2e_market_t":
            raise ValueError(f"lever {lever!r}: a market lever read from optimize's objective needs "
                             f"objective='co2e_market_t' in its overrides (or market_co2e= naming a market variable)")
    mode = _band_mode(base, bands)
    if not (len(q) == 2 and all(isinstance(p, (int, float)) and 0 < p < 1 for p in q) and q[0] < q[1]):
        raise ValueError(f"q must be two quantile levels 0 < low < high < 1, got {q!r}")
    run = run or _optimize
    names = {"location": (co2e, water), "market": (market_co2e, water)}
    central = _levels([_read(run(**_central(cfg)), *names[b], lever) for lever, b, cfg in steps])
    band = None
    if mode == "samples":
        band = _levels([_read(run(**cfg), *names[b], lever) for lever, b, cfg in steps])
    elif mode == "corners":
        band = [_levels([_read(run(**{**_central(cfg), "defaults": side}), *names[b], lever) for lever, b, cfg in steps])
                for side in ("low", "high")]
    basis = xr.DataArray([b for _, b, _ in steps], dims="lever")
    ds = _savings(central, basis)
    if mode == "samples":
        full = _savings(band, basis)
        for k in VARIABLES:
            ds[f"{k}_low"], ds[f"{k}_high"] = (full[k].quantile(p, "sample").drop_vars("quantile") for p in q)
    elif mode == "corners":
        lo, hi = (_savings(b, basis) for b in band)
        for k in VARIABLES:
            ds[f"{k}_low"] = np.minimum(np.minimum(lo[k], hi[k]), ds[k])
            ds[f"{k}_high"] = np.maximum(np.maximum(lo[k], hi[k]), ds[k])
    ds = ds.assign_coords(lever=[lv for lv, _, _ in steps], basis=basis, step=("lever", np.arange(len(steps))))
    return _attach(ds, mode, q, co2e, water, market_co2e)


def _optimize(**kw):
    from .optimization import optimize

    return optimize(**kw)


def _steps(base, levers):
    """[(name, basis, inputs)] of the baseline and each lever, overrides applied cumulatively."""
    if not isinstance(base, dict):
        raise ValueError(f"base must be a dict of inputs, got {type(base).__name__}")
    out, current, seen_market, names = [("baseline", "location", dict(base))], dict(base), False, {"baseline"}
    for i, lever in enumerate(levers):
        if not isinstance(lever, (tuple, list)) or len(lever) not in (2, 3):
            raise ValueError(f"levers[{i}] must be (name, overrides) or (name, overrides, basis), got {lever!r}")
        name, overrides = lever[0], lever[1]
        basis = lever[2] if len(lever) == 3 else "location"
        if not isinstance(name, str) or name in names:
            raise ValueError(f"levers[{i}] name must be a new string (one per lever), got {name!r}")
        if not isinstance(overrides, dict):
            raise ValueError(f"levers[{i}] ({name}) overrides must be a dict of inputs, got {type(overrides).__name__}")
        if basis not in BASES:
            raise ValueError(f"levers[{i}] ({name}) basis must be one of {BASES}, got {basis!r}")
        if basis == "location" and seen_market:
            raise ValueError(f"levers[{i}] ({name}): location-based levers must come before market-based ones "
                             f"(a market lever is shown on its own basis, after the physical levers)")
        names.add(name)
        if basis == "market":
            seen_market = True
            out.append((name, basis, {**current, **overrides}))
        else:
            current = {**current, **overrides}
            out.append((name, basis, dict(current)))
    if len(out) < 2:
        raise ValueError("levers must name at least one lever")
    return out


def _band_mode(base, bands):
    allowed = ("auto", "samples", "corners", "none")
    if bands not in allowed:
        raise ValueError(f"bands must be one of {allowed}, got {bands!r}")
    has = base.get("samples") is not None
    if bands == "samples" and not has:
        raise ValueError("bands='samples' needs samples= in base (the Monte Carlo draws)")
    if bands == "corners" and has:
        raise ValueError("bands='corners' picks the defaults' ends; remove samples= from base or use bands='samples'")
    return ("samples" if has else "corners") if bands == "auto" else bands


def _central(cfg):
    """The configuration without its Monte Carlo draws (the central values' run)."""
    return {k: v for k, v in cfg.items() if k not in ("samples", "seed")}


def _read(ds, co2e, water, lever):
    for var in (co2e, water):
        if var not in ds:
            raise ValueError(f"lever {lever!r}: the result has no {var!r} (has {', '.join(sorted(ds.data_vars))}); "
                             f"pass co2e=/water=/market_co2e= naming the variables to read")
    drop = [c for c in ds[co2e].coords if c not in ds[co2e].dims]
    return ds[co2e].drop_vars(drop), ds[water].drop_vars([c for c in ds[water].coords if c not in ds[water].dims])


def _levels(pairs):
    """Stack the steps' (co2e, water) on dim ``lever`` (exact joins: every step shares the other dims)."""
    return (xr.concat([p[0] for p in pairs], "lever", join="exact", coords="minimal"),
            xr.concat([p[1] for p in pairs], "lever", join="exact", coords="minimal"))


def _savings(levels, basis):
    """Levels, marginal savings (vs the last location-based level) and cumulative location savings.

    The steps carry no ``lever`` coordinate yet, so the differences below are positional.
    """
    market = (basis == "market").values
    idx = np.arange(market.size)
    last_location = np.maximum.accumulate(np.where(~market, idx, 0))  # the last location step at or before each
    before_idx = np.r_[0, last_location[:-1]]  # each lever is measured from the location level before it
    out = xr.Dataset()
    for (key, unit), level in zip((("co2e", "t"), ("water", "l")), levels):
        out[f"{key}_{unit}"] = level
        out[f"{key}_saving_{unit}"] = level.isel(lever=before_idx) - level
        out[f"{key}_cumulative_saving_{unit}"] = (level.isel(lever=0) - level).where(xr.DataArray(~market, dims="lever"))
    return out


def _attach(ds, mode, q, co2e, water, market_co2e):
    for name in list(ds.data_vars):
        key = name.removesuffix("_low").removesuffix("_high")
        units, long_name, description = VARIABLES[key]
        side = name[len(key) + 1:]
        ds[name].attrs.update(units=units, long_name=long_name + (f" ({side} end of the band)" if side else ""),
                              description=description)
    ds["lever"].attrs.update(long_name="lever (applied cumulatively)")
    ds["basis"].attrs.update(long_name="accounting basis", description="location: physical, cumulative; market: "
                             "contracted clean supply, on its own basis and never summed with the location bars")
    ds.attrs.update(bands=mode, quantiles=str(tuple(q)) if mode == "samples" else "", co2e_variable=co2e,
                    water_variable=water, market_co2e_variable=market_co2e)
    return ds
