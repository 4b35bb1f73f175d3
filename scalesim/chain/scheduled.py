"""The grid step of :func:`scalesim.simulate` on an hourly intensity series, with a carbon-aware schedule.

The run's wall time (chip-hours / chips, rounded up to whole hours) is scheduled on the series
by :func:`scalesim.schedule` (``'immediate'`` by default: the mean intensity of the hours from
``start``), and the emissions are net of what a schedule really costs
(:func:`scalesim.models.scheduling.schedule_net_co2e_t`): paused chips stay allocated and draw idle
power, and embodied carbon is amortised over the stretched wall-clock time.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from scalesim import steps
from scalesim.units import H_PER_DAY


def scheduled_operational(ctx, f, out, n_chips):
    """(intensity while running, operational + idle tCO2e); sets the schedule's wall days and saving in ``out``."""
    from scalesim.models.scheduling import schedule_net_co2e_t

    if n_chips is None:
        raise ValueError("intensity_series needs the run's wall time: give n_chips (or use the default utilisation, "
                         "which chooses a count)")
    job = schedulable_job_hours(out["chip_hours"], n_chips)
    res = _scheduled(ctx, job)
    emb = out["chip_hours"] * f["embodied_t_per_chip_hour"]
    idle_fraction = steps.idle_power_w(ctx) / f["chip_power_w"]
    ok = job.notnull()  # cells longer than a century are NaN (schedulable_job_hours): masked, not computed
    hours = {k: v.where(ok, 1.0) for k, v in (("job_hours", job), ("run_hours", res["run_hours"]),
                                              ("wall_clock_hours", res["wall_clock_hours"]))}
    cost = schedule_net_co2e_t(job_energy_kwh=out["energy_kwh"].where(ok, 0.0), **hours,
                               run_gco2e_per_kwh=res["run_gco2e_per_kwh"],
                               paused_gco2e_per_kwh=res["paused_gco2e_per_kwh"],
                               immediate_gco2e_per_kwh=res["immediate_gco2e_per_kwh"],
                               idle_power_fraction=idle_fraction, embodied_co2e_t=emb.where(ok, 0.0))
    out["wall_days"] = res["wall_clock_hours"] / H_PER_DAY
    out["_embodied_scale"] = xr.where(emb > 0, cost.embodied_co2e_t / xr.where(emb > 0, emb, 1.0), 1.0).where(ok)
    out["schedule_saving"] = cost.net_saving.where(ok)
    ctx.models["grid_gco2e_per_kwh"] = f"hourly series, schedule {ctx.inputs.get('schedule') or 'immediate'!r}"
    return res["run_gco2e_per_kwh"], (cost.operational_co2e_t + cost.idle_co2e_t).where(ok)


def schedulable_job_hours(chip_hours, n_chips):
    """Whole hours of the run on ``n_chips``, NaN where it would exceed a century of hourly steps.

    :func:`scalesim.schedule` refuses longer jobs (``MAX_HOURS``); a sweep or an optimize scan may
    contain such cells (a 10^15-parameter model on 64 chips), and they cannot be scheduled on an
    hourly series, so they come out NaN (never a number) instead of failing the whole call.
    """
    from scalesim.solve.scheduling import MAX_HOURS

    job = np.ceil(chip_hours / n_chips - 1e-9)
    return job.where(job <= MAX_HOURS)


def _scheduled(ctx, job):
    """The schedule of every distinct job length on each region's series, selected back onto ``job``'s dims."""
    from scalesim.solve.scheduling import schedule

    x = ctx.inputs
    jobs = np.unique(job.values[np.isfinite(job.values)]).tolist()
    if not jobs:
        raise ValueError("intensity_series: no run time to schedule (every run is non-finite or longer than a century "
                         "on the given chips)")
    slack = float(x.get("slack") or 0.0)
    kw = dict(job_hours=jobs, window_hours=[float(np.floor(j * (1.0 + slack) + 1e-9)) for j in jobs],
              strategy=x.get("schedule") or "immediate", start=x.get("start"))
    keep = ("run_hours", "wall_clock_hours", "run_gco2e_per_kwh", "paused_gco2e_per_kwh", "immediate_gco2e_per_kwh")
    parts = [schedule(s, **kw)[list(keep)] for s in _series(ctx)]
    res = parts[0] if len(parts) == 1 else xr.concat(parts, dim=ctx.regions["region_id"].dims[0])
    if len(parts) > 1:
        dim = ctx.regions["region_id"].dims[0]
        res = res.assign_coords({dim: ctx.regions[dim].values})
    res = res.sel(job_hours=job.fillna(jobs[0])).where(job.notnull())
    return res.drop_vars([c for c in ("job_hours", "start", "strategy") if c in res.coords])


def _series(ctx):
    """One series (the user's), or each region's synthetic typical year in region order."""
    from scalesim import series

    s = ctx.inputs["intensity_series"]
    if not isinstance(s, str):
        ctx.defaults.record("intensity_series", "user series", "", "", s.attrs.get("source", "user"))
        return [s]
    ids = np.atleast_1d(ctx.regions["region_id"].values).tolist()
    if ctx.regions["region_id"].ndim > 1:
        raise ValueError("intensity_series='synthetic' supports a scalar or 1-d region input")
    years = [series.synthetic_year(r) for r in ids]
    for r, y in zip(ids, years):
        ctx.defaults.record(f"intensity_series:{r}", "synthetic typical year", "", "", y.attrs.get("source", ""),
                            str(y.attrs.get("profile_year", "")))
    ctx.notes.append("intensity_series='synthetic': every day is the region's typical day (no day-to-day or "
                     "seasonal variation), so schedule savings are lower bounds")
    return years
