"""The market-based step of :func:`scalesim.simulate`: contracted clean supply beside the location-based grid.

``co2e_t`` stays location-based (facility energy x the grid's average intensity). ``co2e_market_t``
is market-based (GHG Protocol Scope 2, :mod:`scalesim.models.clean_supply`): the share
``cfe_fraction`` of the load covered by contracts at ``supply_gco2e_per_kwh``, the rest at the
residual mix. The two are separate variables with ``attrs['basis']``, never mixed.

Defaults (recorded in attrs, with ranges used by ``defaults=`` and ``samples=``):

- ``cfe_fraction``: 0 (no contracted supply);
- ``supply_gco2e_per_kwh``: 0 (the Scope 2 emission factor of renewable EACs), range 0 to 48 g
  (:data:`~scalesim.models.clean_supply.SUPPLY_LIFECYCLE_HIGH_GCO2E_PER_KWH`, life-cycle);
- ``residual_gco2e_per_kwh``: no published residual mix is shipped, so an estimate from the region's
  carbon-free share (:func:`~scalesim.models.clean_supply.residual_all_claimed`): low = the location
  intensity (nobody else claims the grid's clean attributes), high = the all-claimed bound, central =
  half of them claimed (:data:`~scalesim.models.clean_supply.CLAIMED_SHARE_CENTRAL`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from scalesim.models import clean_supply as model

#: Why a market-based result may be missing (quoted by ``outputs=["co2e_market_t"]``).
NEEDS = ("region= with a published carbon-free share (eGRID subregions and aggregates have none), "
         "residual_gco2e_per_kwh, or cfe_fraction=1")


def market_factor(ctx, ci):
    """Market-based intensity [gCO2e/kWh] on the region (and cfe_fraction, sample) dims, or None.

    ``ci`` is the location-based intensity on the region dims. None when no residual can be formed
    (no carbon-free share, no ``residual_gco2e_per_kwh``) and some load is uncovered; then, if
    ``cfe_fraction`` was given, ``ValueError``.
    """
    x, d = ctx.inputs, ctx.defaults
    given_cfe = x.get("cfe_fraction")
    cfe = given_cfe if given_cfe is not None else xr.DataArray(0.0)
    if given_cfe is None:
        d.record("cfe_fraction", 0.0, 0.0, 0.0, "no contracted carbon-free supply unless cfe_fraction is given")
    supply = supply_factor(ctx)
    residual = _residual(ctx, ci)
    covered = bool(np.all(np.asarray(cfe) == 1.0)) if not hasattr(cfe.data, "dask") else False
    if residual is None and not covered:
        if x.get("supply_profile") is not None:
            return None  # 24/7 matching charges the unmatched load the hourly grid intensity, no residual needed
        if given_cfe is not None:
            raise ValueError(f"cfe_fraction: the market-based emissions need a residual mix for the uncovered load: "
                             f"pass {NEEDS}")
        ctx.notes.append(f"co2e_market_t not computed: it needs {NEEDS}")
        return None
    residual = xr.where(cfe < 1.0, residual, 0.0) if residual is not None else xr.zeros_like(cfe)  # NaN: covered load only
    market = model.market_based_intensity(cfe, residual, supply)
    _attrs(ctx, given_cfe)
    return market


def supply_factor(ctx):
    """Emission factor of the contracted supply [gCO2e/kWh]: given, or 0 (Scope 2) with a life-cycle high end."""
    supply, d = ctx.inputs.get("supply_gco2e_per_kwh"), ctx.defaults
    if supply is not None:
        return supply
    hi = model.SUPPLY_LIFECYCLE_HIGH_GCO2E_PER_KWH
    d.record("supply_gco2e_per_kwh", 0.0, 0.0, hi, "0: GHG Protocol Scope 2 Guidance (2015) emission factor of "
             "renewable EACs; high: IPCC AR5 WGIII Annex III Table A.III.2 median life-cycle of utility PV (48 g)")
    return xr.DataArray(d.choose(0.0, 0.0, hi, kind="supply_gco2e_per_kwh"))


def market_outputs(ctx, f, out, n_chips):
    """``co2e_market_t`` (annual contracts, or 24/7 hourly matching with ``supply_profile``) and ``cfe_hourly_fraction``."""
    if ctx.inputs.get("supply_profile") is not None:
        return hourly_outputs(ctx, out, n_chips)
    if f.get("market_gco2e_per_kwh") is None:
        return {}
    return {"co2e_market_t": model.market_based_co2e_t(out["energy_kwh"], f["market_gco2e_per_kwh"])}


def _residual(ctx, ci):
    """The residual-mix intensity [gCO2e/kWh]: given, or between the location intensity and the all-claimed bound."""
    x, d = ctx.inputs, ctx.defaults
    if x.get("residual_gco2e_per_kwh") is not None:
        return x["residual_gco2e_per_kwh"]
    if ctx.regions is None or "carbon_free_fraction" not in ctx.regions:
        return None
    share = ctx.regions["carbon_free_fraction"].drop_vars("region_id", errors="ignore")
    missing = np.isnan(np.asarray(share.values, dtype=float))
    if missing.all():
        return None
    if missing.any():
        ids = np.asarray(ctx.regions["region_id"].values).ravel()[missing.ravel()]
        ctx.notes.append(f"co2e_market_t is NaN for {', '.join(sorted(set(ids.tolist())))}: no published carbon-free "
                         f"share to estimate the residual mix (pass residual_gco2e_per_kwh)")
    for rid in dict.fromkeys(np.asarray(ctx.regions["region_id"].values).ravel().tolist()):
        from scalesim import catalog

        reg = catalog.get_region(rid)
        if reg.carbon_free_fraction is not None:
            d.record(f"residual_gco2e_per_kwh:{rid}", "grid / (1 - carbon_free_fraction / 2), capped",
                     "grid (location-based)", "grid / (1 - carbon_free_fraction), capped",
                     f"estimate, no published residual mix shipped: half (central) to all (high) of the grid's "
                     f"carbon-free attributes claimed by others (Maji et al. 2023, arXiv:2308.06680), "
                     f"carbon_free_fraction={reg.carbon_free_fraction:g}: {reg.carbon_free_source}; cap "
                     f"{model.RESIDUAL_CAP_GCO2E_PER_KWH:g} g (IPCC SRREN 2011 coal median)", "2025")
    keep = ~xr.DataArray(missing, dims=share.dims)
    s = share.fillna(0.0)
    central = model.residual_all_claimed(ci, s, claimed_share=model.CLAIMED_SHARE_CENTRAL).where(keep)
    bound = model.residual_all_claimed(ci, s).where(keep)
    return d.choose(central, ci, bound, kind="residual_gco2e_per_kwh")


def _attrs(ctx, given_cfe):
    """The cfe_fraction used and the method, in ``co2e_market_t``'s attrs (the basis is in :data:`scalesim.variables.BASIS`)."""
    cfe = "0 (default: no contracts)" if given_cfe is None else (
        f"{float(given_cfe):g}" if given_cfe.ndim == 0 else "see coordinate cfe_fraction")
    ctx.variable_attrs.setdefault("co2e_market_t", {}).update(
        cfe_fraction=cfe, method="cfe_fraction x supply + (1 - cfe_fraction) x residual mix, on facility energy "
                                 "(annual contracts and residual mix)")


# ----------------------------------------------------------------------------- 24/7 hourly matching
def supply_profile_input(value):
    """A supply profile: a DataArray on ``time`` (any non-negative unit: only its shape is used) or a CSV path
    with columns ``datetime`` and ``supply_kw``; returned on a regular grid (:func:`scalesim.series.validate_series`)."""
    from scalesim import series

    if isinstance(value, str):
        try:
            return series.load_csv(value, value_column="supply_kw")
        except ValueError as exc:
            raise ValueError(f"supply_profile: {exc}") from None
    if not isinstance(value, xr.DataArray):
        raise ValueError(f"supply_profile must be an xarray.DataArray on 'time' or a CSV path (datetime, supply_kw), "
                         f"got {type(value).__name__}")
    try:
        out = series.validate_series(value)
    except ValueError as exc:
        raise ValueError(f"supply_profile: {str(exc).replace('intensity', 'supply profile')}") from None
    if not float(out.sum()) > 0:
        raise ValueError("supply_profile must deliver some energy: all its values are 0")
    return out.rename("supply_profile").assign_attrs(units="1", long_name="contracted supply (shape)")


def hourly_outputs(ctx, out, n_chips):
    """24/7 ``co2e_market_t`` and ``cfe_hourly_fraction`` on the hours the schedule runs.

    The contract's volume is ``cfe_fraction`` x the run's facility energy, delivered with the shape
    of ``supply_profile`` over the run's wall-clock window; each step's load is the run's energy
    spread evenly over the steps it runs (:func:`scalesim.models.clean_supply.hourly_matching`).
    """
    from scalesim.chain.scheduled import _series, schedulable_job_hours

    job = schedulable_job_hours(out["chip_hours"], n_chips)
    jobs = np.unique(job.values[np.isfinite(job.values)]).tolist()
    parts = [_per_unit_energy(ctx, s, jobs) for s in _series(ctx)]
    res = parts[0]
    if len(parts) > 1:
        dim = ctx.regions["region_id"].dims[0]
        res = xr.concat(parts, dim=dim).assign_coords({dim: ctx.regions[dim].values})
    res = res.sel(job_hours=job.fillna(jobs[0])).where(job.notnull()).drop_vars("job_hours")
    ctx.variable_attrs["co2e_market_t"] = {"method": "24/7 hourly matching: unmatched load x hourly grid intensity "
                                                     "+ matched load x supply factor (idle power while paused excluded)",
                                           "cfe_fraction": "contract volume as a share of the run's energy"}
    return {"co2e_market_t": out["energy_kwh"] * res["t_per_kwh"], "cfe_hourly_fraction": res["cfe_hourly_fraction"]}


def _per_unit_energy(ctx, intensity, jobs):
    """Per kWh of run energy, for every job length: market tCO2e and the hourly-matched share (Eqs. 3-4)."""
    from scalesim.solve.scheduling import schedule

    x = ctx.inputs
    slack = float(x.get("slack") or 0.0)
    sched = schedule(intensity, job_hours=jobs, window_hours=[float(np.floor(j * (1.0 + slack) + 1e-9)) for j in jobs],
                     strategy=x.get("schedule") or "immediate", start=x.get("start"))
    running = sched["running"].astype(float)
    step_h = float(intensity.attrs["step_h"])
    first = 0 if x.get("start") is None else int(np.searchsorted(intensity["time"].values,
                                                                 np.datetime64(x["start"], "ns")))
    times = intensity["time"].values[first:first + running.sizes["hour_offset"]]
    profile = x["supply_profile"]
    missing = ~np.isin(times, profile["time"].values)
    if missing.any():
        raise ValueError(f"supply_profile does not cover the run: no value at {times[np.argmax(missing)]} "
                         f"(it spans {profile['time'].values[0]} .. {profile['time'].values[-1]})")
    hour = lambda v: xr.DataArray(np.asarray(v, dtype=float), dims="hour_offset",  # noqa: E731
                                  coords={"hour_offset": running["hour_offset"].values})
    ci, shape = hour(intensity.values[first:first + times.size]), hour(profile.sel(time=times).values)
    window = (running["hour_offset"] < sched["wall_clock_hours"] - 1e-9 * step_h).astype(float) * shape
    volume = window.sum("hour_offset")
    cfe = x.get("cfe_fraction")
    supply = cfe * window / xr.where(volume > 0, volume, 1.0)
    load = running / running.sum("hour_offset")
    ctx.defaults.record("supply_profile", "user profile", "", "", str(profile.attrs.get("source", "user DataArray")))
    m = xr.apply_ufunc(lambda a, b, c, s: _stack(model.hourly_matching(a, b, c, supply_gco2e_per_kwh=s)),
                       load, supply, ci, supply_factor(ctx), input_core_dims=[["hour_offset"]] * 3 + [[]],
                       output_core_dims=[["what"]])
    return xr.Dataset({"t_per_kwh": m.isel(what=1), "cfe_hourly_fraction": m.isel(what=0)}).drop_vars(
        [c for c in ("start", "strategy", "what") if c in m.coords], errors="ignore")


def _stack(match):
    share, t = np.broadcast_arrays(np.asarray(match.cfe_hourly_fraction, dtype=float),
                                   np.asarray(match.market_co2e_t, dtype=float))  # a drawn supply factor adds 'sample'
    return np.stack([share, t], axis=-1)
