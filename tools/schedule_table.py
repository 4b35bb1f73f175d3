"""Savings of carbon-aware schedules per shipped profile zone (README table and figures).

    .venv/bin/python tools/schedule_table.py               # print the Markdown table
    .venv/bin/python tools/schedule_table.py --figures figures

Each zone's synthetic typical year (:func:`scalesim.series.synthetic_year`: the shipped diurnal
profile x the annual mean, every day the same) is scheduled from each of the 24 start hours of
1 January; a cell is the mean saving over those starts, ``pause_resume / flexible_start``, for a
window of job x (1 + slack), slack rounded to whole hours.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

from scalesim import series
from scalesim.solve.scheduling import schedule

JOBS_H = {"1 day": 24.0, "1 week": 168.0, "30 days": 720.0}
SLACKS = (0.0, 0.1, 1.0)
#: A job shorter than a day, where the start hour matters (flexible_start is 0 for whole days on a
#: repeating typical day: every window of whole days has the same mean).
SHORT_JOB_H, SHORT_SLACKS = 8.0, (0.5, 1.0, 2.0)
STRATEGIES = ["pause_resume", "flexible_start"]


def zone_savings(zone, jobs_h=tuple(JOBS_H.values()), slacks=SLACKS, n_starts=24):
    """Mean saving over ``n_starts`` hourly starts: array (strategy, job, slack) [-]."""
    da = series.synthetic_year(zone)
    starts = da["time"].values[:n_starts]
    jobs = np.asarray(jobs_h)
    out = np.zeros((len(STRATEGIES), jobs.size, len(slacks)))
    for k, slack in enumerate(slacks):
        ds = schedule(da, job_hours=list(jobs), window_hours=list(jobs + np.round(slack * jobs)),
                      strategy=STRATEGIES, start=starts)
        out[:, :, k] = ds.saving.mean("start").transpose("strategy", "job_hours").values
    return out


def _pct(v):
    return f"{np.round(100 * v, 1) + 0.0:.1f}"  # + 0.0 turns a rounded -0.0 into 0.0


def markdown(zones):
    """Two Markdown tables: whole-day jobs (pause_resume / flexible_start) and an 8-hour job."""
    head = ["zone (profile year)"] + [f"{j}, +{s:.0%}" for j in JOBS_H for s in SLACKS]
    head2 = ["zone"] + [f"{SHORT_JOB_H:g} h, +{s:.0%}" for s in SHORT_SLACKS]
    long = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    short = ["| " + " | ".join(head2) + " |", "|" + "---|" * len(head2)]
    for zone in zones:
        s = zone_savings(zone)
        s2 = zone_savings(zone, (SHORT_JOB_H,), SHORT_SLACKS)
        year = series.synthetic_year(zone).attrs["profile_year"]
        cells = [f"{_pct(s[0, j, k])} / {_pct(s[1, j, k])}" for j in range(len(JOBS_H)) for k in range(len(SLACKS))]
        long.append(f"| {zone} ({year}) | " + " | ".join(cells) + " |")
        short.append(f"| {zone} | " + " | ".join(f"{_pct(s2[0, 0, k])} / {_pct(s2[1, 0, k])}"
                                              for k in range(len(SHORT_SLACKS))) + " |")
    return "\n".join(long) + "\n\n" + "\n".join(short)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--figures", metavar="DIR", help="also draw figures/schedule_*.png into DIR")
    args = p.parse_args(argv)
    print(markdown(series.profile_zones()))
    if args.figures:
        from scalesim.interface import _plot_schedule as ps

        out = pathlib.Path(args.figures)
        ps.plot_saving_vs_slack(out / "schedule_saving_vs_slack.png")
        ps.plot_schedule_hours(out / "schedule_hours.png")


if __name__ == "__main__":
    main()
