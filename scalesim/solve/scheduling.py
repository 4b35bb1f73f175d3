"""Carbon-aware schedules: which hours of a window a training job runs, and what that saves.

:func:`schedule` takes an hourly intensity series (:mod:`scalesim.series`) and, for every start
and job length at once, picks the hours to run under one of three strategies:

``"immediate"``
    run ``job_hours`` from ``start`` without stopping (the baseline);
``"flexible_start"``
    run one contiguous block, starting at the best offset in ``[0, window - job]``
    (a sliding-window minimum over cumulative sums);
``"pause_resume"``
    run the cleanest hours of the window (a rank over the window; exact under perfect foresight
    when ``min_block_hours`` and ``restart_overhead_hours`` are off), optionally in blocks of at
    least ``min_block_hours`` that each cost ``restart_overhead_hours`` of extra running after a
    pause (a slot heuristic; see :func:`_pause_resume_mask`).

The window is the whole span allowed from ``start`` (job + slack): ``window_hours == job_hours``
leaves no freedom. Savings are on intensity alone; :func:`scalesim.models.scheduling.schedule_net_co2e_t`
adds the energy of restarts and idle chips and the stretched embodied amortisation.

References
----------
.. [1] Wiesner, Behnke, Scheinert, Gontarska, Thamsen 2021, "Let's Wait Awhile: How Temporal
   Workload Shifting Can Reduce Carbon Emissions in the Cloud", Middleware '21, arXiv:2110.13234
   (interruptible/non-interruptible shifting; forecast errors as Gaussian noise of 5 and 10 % of
   the series mean, ``simulate.py:_apply_error`` in dos-group/lets-wait-awhile).
.. [2] Dodge et al. 2022, "Measuring the Carbon Intensity of AI in Cloud Instances", FAccT '22,
   arXiv:2206.05229 (Flexible Start and Pause and Resume with a window of +N % of the job).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view

from .. import series as _series
from ..units import UNIT_DIMENSIONLESS, UNIT_GCO2E_PER_KWH, UNIT_HOUR

from ..models.scheduling import STRATEGIES  # noqa: E402 (named with the model so the CLI lists them without xarray)

#: Elements of one (job x start x hour-offset) block held in memory at once; starts are
#: processed in chunks of this size (each chunk fully vectorised).
CHUNK_ELEMENTS = 2 ** 22

#: Output variables: (units, long_name, description), attached once at the end.
VARIABLES = {
    "saving": (UNIT_DIMENSIONLESS, "intensity saving",
               "1 - mean intensity of the hours run / mean intensity of running immediately from the same start "
               "(intensity alone; restart energy, idle chips and embodied carbon are not in it)."),
    "intensity_factor": (UNIT_DIMENSIONLESS, "intensity factor",
                         "Mean intensity of the hours run / mean of the whole series."),
    "wall_clock_stretch": (UNIT_DIMENSIONLESS, "wall-clock stretch",
                           "Time from start to the end of the last hour run / job_hours (1 = no delay)."),
    "n_pauses": (UNIT_DIMENSIONLESS, "pauses", "Number of interruptions after the job started."),
    "run_hours": (UNIT_HOUR, "hours run", "Hours the job runs, restart overhead included."),
    "wall_clock_hours": (UNIT_HOUR, "wall-clock time", "Time from start to the end of the last hour run."),
    "run_gco2e_per_kwh": (UNIT_GCO2E_PER_KWH, "mean intensity while running", "Mean of the true series over the hours run."),
    "immediate_gco2e_per_kwh": (UNIT_GCO2E_PER_KWH, "mean intensity running immediately",
                                "Mean of the true series over job_hours from start."),
    "paused_gco2e_per_kwh": (UNIT_GCO2E_PER_KWH, "mean intensity while waiting",
                             "Mean of the true series over the hours from start to the end not run (NaN if none)."),
    "running": (UNIT_DIMENSIONLESS, "hours run", "True for each step (hour_offset from start) the job runs."),
}


#: Longest job or window [h]: a century of hourly steps; above it the arithmetic is meaningless.
MAX_HOURS = 24 * 366 * 100


def _steps(name, hours, step_h, rounding):
    bad = ValueError(f"{name} must be a positive finite number or a non-empty 1-D list of them [h], got {hours!r}")
    if isinstance(hours, (str, bytes, set, frozenset, dict, bool)) or (isinstance(hours, (list, tuple)) and (
            not hours or any(isinstance(v, (str, bool, set, list, tuple, dict)) for v in hours))):
        raise bad
    try:
        h = np.atleast_1d(np.asarray(hours, dtype=float))
    except (TypeError, ValueError):
        raise bad from None
    if np.isfinite(h).any() and np.max(np.abs(h[np.isfinite(h)])) > MAX_HOURS:
        raise ValueError(f"{name} must be at most {MAX_HOURS:g} h (a century), got {hours!r}")
    if h.ndim != 1 or not h.size or not np.isfinite(h).all() or (h <= 0).any():
        raise ValueError(f"{name} must be a positive finite number or a 1-D list of them [h], got {hours!r}")
    n = rounding(h / step_h - (1e-9 if rounding is np.ceil else -1e-9)).astype(int)
    if (n < 1).any():
        raise ValueError(f"{name} must be at least one series step ({step_h:g} h), got {hours!r}")
    return h, n


def _start_positions(times, start, w_max):
    """Integer positions of ``start`` on the series grid, and the labels for the ``start`` dim."""
    n = times.size
    if start is None:
        return np.array([0]), None
    if isinstance(start, str) and start == "all":
        pos = np.arange(n - w_max + 1)
        return pos, times[pos]
    labels = np.atleast_1d(np.asarray(start, dtype="datetime64[ns]"))
    pos = np.searchsorted(times, labels)
    bad = (pos >= n) | (times[np.minimum(pos, n - 1)] != labels)
    if bad.any():
        raise ValueError(f"start {labels[np.argmax(bad)]} is not a timestamp of the series "
                         f"({times[0]} .. {times[-1]}, step {np.diff(times[:2])[0]})")
    late = pos + w_max > n
    if late.any():
        raise ValueError(f"start {labels[np.argmax(late)]} leaves less than window_hours before the series ends "
                         f"at {times[-1]}; use an earlier start, a shorter window or a longer series")
    return pos, (labels if np.ndim(start) else labels[0])


def _noisy(x, forecast_error, seed):
    """What the scheduler sees: x + N(0, (forecast_error x mean x)^2), i.i.d. per step."""
    if forecast_error is None:
        return x
    e = np.asarray(forecast_error, dtype=float)
    if e.ndim or not np.isfinite(e) or e < 0:
        raise ValueError(f"forecast_error must be a finite fraction >= 0 of the series mean, got {forecast_error!r}")
    return x + np.random.default_rng(seed).normal(0.0, float(e) * x.mean(), size=x.shape)


def _windows(x, pos, w_max):
    """(S, w_max) view of ``x`` from each start (padded at the end, never read past a window)."""
    padded = np.concatenate([x, np.full(w_max, np.nan)])
    return sliding_window_view(padded, w_max)[pos]


def _flexible_mask(seen, n_job, n_win):
    """Best contiguous block of ``n_job`` steps inside ``n_win`` from each start.

    ``seen`` (S, W) windows; ``n_job``, ``n_win`` (J,) step counts. Returns a bool (J, S, W) mask.
    Ties go to the earliest offset. Cost: one cumulative sum and one gather per job length.
    """
    s_, w = seen.shape
    c = np.concatenate([np.zeros((s_, 1)), np.cumsum(np.nan_to_num(seen - np.nanmean(seen)), axis=1)], axis=1)
    off = np.arange(w)
    end = np.minimum(off[None, :] + n_job[:, None], w)  # (J, W)
    block = np.moveaxis(c[:, end], 0, 1) - c[None, :, :w]  # (J, S, W): sum of the block at each offset
    block = np.where((off[None, :] <= (n_win - n_job)[:, None])[:, None, :], block, np.inf)
    best = np.argmin(block, axis=2)  # (J, S)
    return (off >= best[..., None]) & (off < (best + n_job[:, None])[..., None])


def _ranks(values):
    order = np.argsort(values, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(values.shape[-1]), values.shape), axis=-1)
    return order, rank


def _pause_resume_mask(seen, n_job, n_win, block, overhead):
    """Cleanest steps of each window in slots of ``block`` steps, with ``overhead`` steps per resume.

    Slots of ``block`` steps are aligned at the start and ranked by their mean seen intensity; the
    k best are run, k the smallest count whose capacity minus ``overhead`` x (blocks - 1) covers
    ``n_job`` (blocks of adjacent slots merge, so each block but the last, truncated where the job
    ends, is >= ``block`` steps). With ``block = 1`` and ``overhead = 0`` this is the exact
    optimum: the ``n_job`` cleanest steps (ties to the earliest). Returns a bool (J, S, W) mask.
    """
    s_, w = seen.shape
    j = n_job.size
    n_slot = -(-w // block)
    valid = np.arange(n_slot * block)[None, :] < n_win[:, None]  # (J, W')
    v = np.concatenate([seen, np.zeros((s_, n_slot * block - w))], axis=1)
    vv = np.where(valid[:, None, :], v[None], 0.0).reshape(j, s_, n_slot, block)
    cap = valid.reshape(j, 1, n_slot, block).sum(axis=-1)  # (J, 1, n_slot)
    mean = np.where(cap > 0, vv.sum(axis=-1) / np.maximum(cap, 1), np.inf)
    order, rank = _ranks(mean)
    big = np.full(rank.shape[:-1] + (1,), rank.shape[-1])
    left = np.concatenate([big, rank[..., :-1]], axis=-1) < rank
    right = np.concatenate([rank[..., 1:], big], axis=-1) < rank
    delta = 1 - left.astype(int) - right.astype(int)
    blocks = np.cumsum(np.take_along_axis(delta, order, axis=-1), axis=-1)
    capacity = np.cumsum(np.take_along_axis(np.broadcast_to(cap, rank.shape), order, axis=-1), axis=-1)
    k = np.argmax(capacity - overhead * (blocks - 1) >= n_job[:, None, None], axis=-1) + 1  # (J, S)
    chosen = np.repeat(rank < k[..., None], block, axis=-1)[..., :w]
    return _truncate(chosen, n_job, overhead)


def _complete(mask, n_job, overhead):
    """Whether a mask makes ``n_job`` steps of progress (a resumed block's first ``overhead`` steps make none)."""
    return _progress(mask, overhead).sum(axis=-1) >= n_job[:, None]


def _progress(chosen, overhead):
    prev = np.concatenate([np.zeros(chosen.shape[:-1] + (1,), bool), chosen[..., :-1]], axis=-1)
    starts = chosen & ~prev
    t = np.arange(chosen.shape[-1])
    since = t - np.maximum.accumulate(np.where(starts, t, -1), axis=-1)
    return chosen & ~((np.cumsum(starts, axis=-1) >= 2) & (since < overhead))


def _truncate(chosen, n_job, overhead):
    """Stop when the job is done: drop the steps after the ``n_job``-th step of progress."""
    progress = _progress(chosen, overhead)
    done_before = np.cumsum(progress, axis=-1) - progress
    return chosen & (done_before < n_job[:, None, None])


def _summaries(x, windows, mask, n_job, step_h, series_mean):
    """Per (J, S): the output variables of one strategy from its mask on the true windows."""
    t = np.arange(mask.shape[-1])
    any_run = mask.any(axis=-1)
    last = np.where(any_run, mask.shape[-1] - 1 - np.argmax(mask[..., ::-1], axis=-1), -1)
    inside = t <= last[..., None]
    xw = np.where(np.isnan(windows), 0.0, windows)[None]
    n_run = mask.sum(axis=-1)
    run_mean = (xw * mask).sum(axis=-1) / np.maximum(n_run, 1)
    immediate = (xw * (t < n_job[:, None, None])).sum(axis=-1) / n_job[:, None]
    waited = inside & ~mask
    n_wait = waited.sum(axis=-1)
    paused = np.where(n_wait > 0, (xw * waited).sum(axis=-1) / np.maximum(n_wait, 1), np.nan)
    prev = np.concatenate([np.zeros(mask.shape[:-1] + (1,), bool), mask[..., :-1]], axis=-1)
    return {
        "saving": 1.0 - run_mean / immediate,
        "intensity_factor": run_mean / series_mean,
        "wall_clock_stretch": (last + 1) / n_job[:, None],
        "n_pauses": np.maximum((mask & ~prev).sum(axis=-1) - 1, 0),
        "run_hours": n_run * step_h,
        "wall_clock_hours": (last + 1) * step_h,
        "run_gco2e_per_kwh": run_mean,
        "immediate_gco2e_per_kwh": immediate,
        "paused_gco2e_per_kwh": paused,
        "running": mask,
    }


def _one_strategy(x, seen, pos, strategy, n_job, n_win, block, overhead, step_h):
    """Numpy core: every output of one strategy on (J, S[, W]), starts processed in chunks."""
    w_max = int(n_win.max())
    chunk = max(1, CHUNK_ELEMENTS // (n_job.size * w_max))
    parts = []
    for lo in range(0, pos.size, chunk):  # chunks of starts bound memory; each chunk is vectorised
        p = pos[lo:lo + chunk]
        true_w, seen_w = _windows(x, p, w_max), _windows(seen, p, w_max)
        valid = np.arange(w_max)[None, None, :] < n_win[:, None, None]
        if strategy == "immediate":
            mask = np.broadcast_to(np.arange(w_max) < n_job[:, None, None], (n_job.size, p.size, w_max))
        elif strategy == "flexible_start":
            mask = _flexible_mask(seen_w, n_job, n_win)
        else:
            mask = _pause_resume_mask(seen_w, n_job, n_win, block, overhead)
            flex = _flexible_mask(seen_w, n_job, n_win)  # never worse than one contiguous block (on what it sees)
            cost = lambda m: np.where(m, np.nan_to_num(seen_w)[None], 0.0).sum(axis=-1)  # noqa: E731
            worse = (cost(flex) < cost(mask)) | ~_complete(mask, n_job, overhead)
            mask = np.where(worse[..., None], flex, mask)
        parts.append(_summaries(x, true_w, mask & valid, n_job, step_h, x.mean()))
    return {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}


def _resolve_series(intensity):
    if isinstance(intensity, str):
        return _series.synthetic_year(intensity)
    if not isinstance(intensity, xr.DataArray):
        raise ValueError("intensity must be an xarray.DataArray on dim 'time' (scalesim.series.load_csv, "
                         f"synthetic_year) or a region id for a synthetic year, got {type(intensity).__name__}")
    return _series.validate_series(intensity, max_gap_hours=max(_series.MAX_GAP_HOURS,
                                                                  float(intensity.attrs.get("step_h", 0.0))))


def _check_options(strategy, min_block_hours, restart_overhead_hours, step_h):
    names = [strategy] if isinstance(strategy, str) else list(strategy) if isinstance(strategy, (list, tuple)) else [strategy]
    bad = [s for s in names if not isinstance(s, str) or s not in STRATEGIES]
    if bad or not names:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)} (or a list of them), got {strategy!r}")
    def hours(v):
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
            and abs(v) <= MAX_HOURS and np.isfinite(float(v))
    if min_block_hours is not None and not (hours(min_block_hours) and min_block_hours > 0):
        raise ValueError(f"min_block_hours must be None or a positive number of hours <= {MAX_HOURS:g}, got {min_block_hours!r}")
    if not (hours(restart_overhead_hours) and restart_overhead_hours >= 0):
        raise ValueError(f"restart_overhead_hours must be a finite number of hours in [0, {MAX_HOURS:g}], "
                         f"got {restart_overhead_hours!r}")
    overhead = int(np.ceil(restart_overhead_hours / step_h - 1e-9))
    block = max(int(np.ceil((min_block_hours or step_h) / step_h - 1e-9)), overhead + 1 if overhead else 1)
    return names, block, overhead


def schedule(intensity, *, job_hours, window_hours, strategy, start=None, min_block_hours=None,
             restart_overhead_hours=0.0, forecast_error=None, seed=None):
    """Carbon-aware schedule of a job inside a window: hours run, intensity saving, stretch.

    Parameters
    ----------
    intensity : xarray.DataArray or str
        Intensity series [gCO2e/kWh] on ``time`` (:func:`scalesim.series.load_csv`,
        :func:`~scalesim.series.validate_series`), or a region id / profile zone for
        :func:`~scalesim.series.synthetic_year`.
    job_hours : float or list of float
        Running time the job needs [h] (rounded up to whole series steps); a list is a dim.
    window_hours : float or list of float
        Whole span allowed from ``start`` [h], job + slack, >= ``job_hours`` (rounded down to whole
        steps); a list pairs element-wise with ``job_hours``.
    strategy : {"immediate", "flexible_start", "pause_resume"} or list of them
        See the module docstring; a list is a dim.
    start : timestamp, list of timestamps or "all", optional
        Start(s) on the series grid (default: its first timestamp); a list or ``"all"`` (every
        start whose window fits) is a ``start`` dim.
    min_block_hours : float, optional
        ``pause_resume``: shortest run between pauses [h] (default: none, or overhead + one step).
    restart_overhead_hours : float
        ``pause_resume``: extra running per resume (checkpoint reload, warm-up) [h], default 0.
    forecast_error : float, optional
        Standard deviation of the forecast error as a fraction of the series mean [-]: the
        scheduler sees ``x + N(0, (forecast_error * mean(x))^2)``, i.i.d. per step (Wiesner et al.
        2021 used 0.05 and 0.10); emissions are counted on the true ``x``. Default: perfect foresight.
    seed : int, optional
        Seed of the forecast noise.

    Returns
    -------
    xarray.Dataset
        On dims ``strategy``/``job_hours``/``start`` where those were lists: ``saving``,
        ``intensity_factor``, ``wall_clock_stretch``, ``n_pauses``, ``run_hours``,
        ``wall_clock_hours``, ``run_gco2e_per_kwh``, ``immediate_gco2e_per_kwh``,
        ``paused_gco2e_per_kwh`` and ``running`` (bool, also on ``hour_offset`` [h]).

    Notes
    -----
    saving = 1 - mean(x over hours run) / mean(x over [start, start + job_hours)); with restart
    overhead the restart hours are among the hours run. Perfect-foresight ``pause_resume`` without
    blocks or overhead is the exact optimum (the ``job`` cleanest steps); with them it is the slot
    heuristic of :func:`_pause_resume_mask`, never worse (on the series it sees) than
    ``flexible_start``. Idle power, restart energy and embodied carbon:
    :func:`scalesim.models.scheduling.schedule_net_co2e_t`.
    """
    da = _resolve_series(intensity)
    step_h = float(da.attrs["step_h"])
    names, block, overhead = _check_options(strategy, min_block_hours, restart_overhead_hours, step_h)
    jobs, n_job = _steps("job_hours", job_hours, step_h, np.ceil)
    wins, n_win = _steps("window_hours", window_hours, step_h, np.floor)
    if n_win.size == 1:
        n_win = np.repeat(n_win, n_job.size)
    if n_win.size != n_job.size:
        raise ValueError(f"window_hours must be one number or one per job_hours ({n_job.size}), got {n_win.size}")
    if (n_win < n_job).any():
        raise ValueError(f"window_hours must be >= job_hours (window = job + slack); got window "
                         f"{wins[np.argmax(n_win < n_job) % wins.size]:g} h for job {jobs[np.argmax(n_win < n_job)]:g} h")
    x = np.asarray(da.values, dtype=float)
    times = da["time"].values.astype("datetime64[ns]")
    pos, labels = _start_positions(times, start, int(n_win.max()))
    seen = _noisy(x, forecast_error, seed)
    out = {s: _one_strategy(x, seen, pos, s, n_job, n_win, block, overhead, step_h) for s in names}
    return _dataset(out, names, strategy, jobs, job_hours, labels, start, step_h, da, dict(
        min_block_steps=block, restart_overhead_steps=overhead, forecast_error=forecast_error, seed=seed,
        window_hours=wins, n_win=n_win))


def _dataset(out, names, strategy, jobs, job_hours, labels, start, step_h, da, info):
    """Label the numpy outputs: dims strategy/job_hours/start (lists only) and hour_offset."""
    w = next(iter(out.values()))["running"].shape[-1]
    parts = []
    for name in names:
        v = out[name]
        data = {k: (("job_hours", "start", "hour_offset") if k == "running" else ("job_hours", "start"), a)
                for k, a in v.items()}
        parts.append(xr.Dataset(data, coords={"job_hours": jobs, "hour_offset": np.arange(w) * step_h}))
    listed = not isinstance(strategy, str)
    ds = xr.concat(parts, dim=xr.DataArray(names, dims="strategy", name="strategy")) if listed else parts[0]
    ds = ds.assign_coords(start=np.atleast_1d(labels if labels is not None else da["time"].values[:1]))
    scalar_start = labels is None or not (isinstance(start, str) or np.ndim(start))
    if scalar_start:
        ds = ds.isel(start=0)
    if np.ndim(job_hours) == 0:
        ds = ds.isel(job_hours=0)
    if not listed:
        ds = ds.assign_coords(strategy=names[0])
    ds["window_hours"] = (("job_hours",) if np.ndim(job_hours) else (), info.pop("n_win") * step_h
                          if np.ndim(job_hours) else float(info.pop("n_win")[0] * step_h))
    for k, (units, long_name, desc) in VARIABLES.items():
        ds[k].attrs.update(units=units, long_name=long_name, description=desc)
    ds["window_hours"].attrs.update(units=UNIT_HOUR, long_name="window", description="Span allowed from start (job + slack), whole steps.")
    ds["hour_offset"].attrs.update(units=UNIT_HOUR, long_name="hours since start")
    ds["job_hours"].attrs.update(units=UNIT_HOUR, long_name="job running time")
    fe = info["forecast_error"]
    ds.attrs.update(
        series_source=str(da.attrs.get("source", "")), series_synthetic=int(da.attrs.get("synthetic", 0)),
        series_omits=str(da.attrs.get("omits", "")), series_step_h=step_h,
        series_mean_gco2e_per_kwh=float(da.mean()), min_block_steps=info["min_block_steps"],
        restart_overhead_steps=info["restart_overhead_steps"],
        foresight="perfect" if fe is None else
        f"forecast = true + N(0, ({fe:g} x series mean)^2) i.i.d. per step, seed {info['seed']} (Wiesner et al. 2021)",
        saving_basis="intensity alone; see scalesim.models.scheduling.schedule_net_co2e_t for the net effect")
    return ds
