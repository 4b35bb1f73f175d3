"""The ``scalesim schedule`` verb: how much a carbon-aware schedule saves, and how much longer it takes.

    scalesim schedule --region DE --job-days 30 --slack 1.0 [--strategy pause_resume] [--csv series.csv]

Thin parse -> :func:`scalesim.schedule` -> print. ``add_parser(subparsers)`` adds the verb to the
main parser (``scalesim.interface.cli.build_parser``); ``cmd_schedule(args)`` runs it.
"""

from __future__ import annotations

import json

from scalesim.models.scheduling import STRATEGIES

_SHOWN = ("saving", "intensity_factor", "wall_clock_stretch", "n_pauses", "run_hours", "wall_clock_hours")


def add_parser(subparsers):
    """Add the ``schedule`` verb to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser("schedule", help="savings of pausing or delaying a run when the grid is dirty",
                              description="Intensity saving, wall-clock stretch and pauses of a carbon-aware "
                              "schedule (perfect foresight unless --forecast-error). Without --csv the series is "
                              "the region's synthetic typical year (no day-to-day or seasonal variation).")
    p.add_argument("--region", help="region id or profile zone (synthetic typical year; label with --csv)")
    p.add_argument("--csv", metavar="PATH", help="hourly series: datetime,gco2e_per_kwh (or an Electricity Maps export)")
    p.add_argument("--job-days", type=float, required=True, help="running time the job needs [days]")
    p.add_argument("--slack", type=float, default=1.0,
                   help="extra time allowed, as a fraction of the job (window = job x (1 + slack); default 1.0)")
    p.add_argument("--strategy", nargs="+", default=["pause_resume", "flexible_start"], choices=STRATEGIES,
                   help="one or more strategies (default: pause_resume flexible_start)")
    p.add_argument("--start", nargs="+", metavar="TIMESTAMP",
                   help="start timestamp(s) on the series (default: each hour of its first day)")
    p.add_argument("--min-block-hours", type=float, help="pause_resume: shortest run between pauses [h]")
    p.add_argument("--restart-overhead-hours", type=float, default=0.0, help="pause_resume: running lost per resume [h]")
    p.add_argument("--forecast-error", type=float,
                   help="forecast noise sd as a fraction of the series mean (Wiesner et al. 2021: 0.05, 0.10)")
    p.add_argument("--seed", type=int, help="seed of the forecast noise")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(func=cmd_schedule)
    return p


def _series(args):
    from scalesim import series

    if args.csv:
        return series.load_csv(args.csv)
    if not args.region:
        raise ValueError("give --region (synthetic typical year) or --csv (your own series)")
    return series.synthetic_year(args.region)


def cmd_schedule(args):
    """Run the ``schedule`` verb; prints a table (mean, min, max over starts) or JSON; returns 0."""
    import numpy as np

    from scalesim.solve.scheduling import schedule

    if not (np.isfinite(args.slack) and args.slack >= 0):
        raise ValueError(f"--slack must be a fraction >= 0 of the job, got {args.slack}")
    da = _series(args)
    job_h = args.job_days * 24.0
    step = float(da.attrs["step_h"])
    starts = (np.asarray(args.start, dtype="datetime64[ns]") if args.start
              else da["time"].values[: max(1, int(round(24 / step)))])
    ds = schedule(da, job_hours=job_h, window_hours=job_h * (1 + args.slack), strategy=list(args.strategy),
                  start=starts, min_block_hours=args.min_block_hours,
                  restart_overhead_hours=args.restart_overhead_hours, forecast_error=args.forecast_error, seed=args.seed)
    rows = {s: {v: {"mean": float(ds[v].sel(strategy=s).mean()), "min": float(ds[v].sel(strategy=s).min()),
                    "max": float(ds[v].sel(strategy=s).max())} for v in _SHOWN} for s in args.strategy}
    label = args.region or da.attrs.get("region") or args.csv
    if args.format == "json":
        print(json.dumps({"region": label, "job_hours": job_h, "window_hours": float(ds.window_hours),
                          "n_starts": int(ds.sizes["start"]), "synthetic": int(ds.attrs["series_synthetic"]),
                          "foresight": ds.attrs["foresight"], "strategies": rows}, indent=2))
        return 0
    print(f"{label}: {job_h:g} h job, window {float(ds.window_hours):g} h, {ds.sizes['start']} start(s); "
          f"foresight: {ds.attrs['foresight']}")
    print(f"{'strategy':<16}{'saving':>18}{'stretch':>16}{'pauses':>14}")
    for s, r in rows.items():
        sv, st, n = r["saving"], r["wall_clock_stretch"], r["n_pauses"]
        print(f"{s:<16}{100 * sv['mean']:>8.2f} % [{100 * sv['min']:.1f}-{100 * sv['max']:.1f}]"
              f"{st['mean']:>9.2f} [{st['min']:.2f}-{st['max']:.2f}]{n['mean']:>8.1f} [{n['min']:g}-{n['max']:g}]")
    if ds.attrs["series_synthetic"]:
        print("note: synthetic typical year (" + ds.attrs["series_omits"] + ").")
    print("note: saving is on grid intensity alone; idle chips, restarts and embodied carbon: "
          "scalesim.models.scheduling.schedule_net_co2e_t.")
    return 0
