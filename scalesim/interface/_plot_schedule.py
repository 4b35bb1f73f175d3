"""Figures of carbon-aware schedules (README): saving vs slack per zone, and the hours a job runs."""

from __future__ import annotations

#: Zones drawn by default in the saving-vs-slack figure: one per shipped Electricity Maps zone
#: (the three ENTSO-E 2020 profiles duplicate DE/GB and are left out; FR comes from ENTSO-E).
FIGURE_ZONES = ("US-CAL-CISO", "CA-ON", "CL-SIC", "AU-NSW", "GB", "DE-LU", "FR (ENTSO-E)", "JP-TK",
                "US-TEX-ERCO", "US-NY-NYIS", "US-MIDA-PJM", "BR-SP", "KR", "ZA", "SG", "IN-WE")


def _pyplot(path):
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def saving_by_slack(zones, slacks, *, job_hours, n_starts=24, strategies=("pause_resume", "flexible_start")):
    """Mean saving over ``n_starts`` hourly starts, per zone x strategy x slack (synthetic years).

    Returns
    -------
    dict
        ``{strategy: array (zone, slack)}`` [-].
    """
    import numpy as np

    from scalesim import series
    from scalesim.solve.scheduling import schedule

    out = {s: np.zeros((len(zones), len(slacks))) for s in strategies}
    for i, zone in enumerate(zones):
        da = series.synthetic_year(zone)
        starts = da["time"].values[:n_starts]
        for k, slack in enumerate(slacks):
            ds = schedule(da, job_hours=job_hours, window_hours=job_hours + round(slack * job_hours),
                          strategy=list(out), start=starts)
            for s in out:
                out[s][i, k] = float(ds.saving.sel(strategy=s).mean())
    return out


def plot_saving_vs_slack(path=None, zones=FIGURE_ZONES, slacks=None, *, job_hours=(720.0, 8.0)):
    """Saving vs slack (window = job x (1 + slack)) per zone: pause/resume and flexible start.

    Parameters
    ----------
    path : str or path-like, optional
        Where to save the figure (PNG); not saved when None.
    zones : sequence of str
        Profile zones or region ids (synthetic typical years).
    slacks : sequence of float, optional
        Slack as a fraction of the job [-] (default 0 ... 2).
    job_hours : (float, float)
        Job length of the pause/resume panel and of the flexible-start panel [h] (default 30 days
        and 8 h: on a repeating typical day a whole-day job gains nothing from a later start).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = _pyplot(path)
    slacks = np.array([0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]) if slacks is None else np.asarray(slacks)
    panels = [("pause_resume", job_hours[0]), ("flexible_start", job_hours[1])]
    res = {s: saving_by_slack(list(zones), slacks, job_hours=j, strategies=(s,))[s] for s, j in panels}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    colors = plt.cm.tab20(np.linspace(0, 1, len(zones)))
    order = np.argsort(-res["pause_resume"][:, -1])
    for ax, (strategy, job) in zip(axes, panels):
        for i in order:
            ax.plot(100 * slacks, 100 * res[strategy][i], "-o", ms=3, color=colors[i], label=zones[i])
        ax.set(xlabel="slack [% of the job]", title=f"{strategy}, {job:g} h job")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("saving on grid intensity [%]")
    axes[0].legend(fontsize=7, ncol=2, loc="upper left")
    fig.suptitle("Synthetic typical years (shipped diurnal profiles, mean of 24 start hours): no day-to-day or "
                 "seasonal variation, so lower bounds", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_schedule_hours(path=None, intensity="US-CAL-CISO", *, job_hours=30.0, window_hours=60.0, days=3):
    """The hours a job runs under each strategy, over the intensity series.

    Parameters
    ----------
    path : str or path-like, optional
        Where to save the figure (PNG); not saved when None.
    intensity : xarray.DataArray or str
        Series or region id / profile zone (synthetic year).
    job_hours, window_hours : float
        Job and window [h], from the series' first timestamp.
    days : float
        Days of series shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    from scalesim import series
    from scalesim.solve.scheduling import STRATEGIES, schedule

    plt = _pyplot(path)
    da = series.synthetic_year(intensity) if isinstance(intensity, str) else intensity
    ds = schedule(da, job_hours=job_hours, window_hours=window_hours, strategy=list(STRATEGIES))
    step = float(ds.attrs["series_step_h"])
    n = int(round(days * 24 / step))
    t = np.arange(n) * step
    fig, ax = plt.subplots(figsize=(12, 4.2))
    ax.step(t, da.values[:n], where="post", color="k", lw=1.2, label="intensity")
    lo, hi = float(da.values[:n].min()), float(da.values[:n].max())
    band = (hi - lo) / 6 or 1.0
    for i, s in enumerate(STRATEGIES):
        mask = ds.running.sel(strategy=s).values.astype(int)
        edges = np.diff(np.concatenate([[0], mask, [0]]))
        on, off = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        ax.broken_barh(list(zip(on * step, (off - on) * step)), (lo - (i + 1) * band * 1.3, band),
                       color=f"C{i}", alpha=0.85,
                       label=f"{s}: saving {100 * float(ds.saving.sel(strategy=s)):.1f} %, "
                             f"stretch {float(ds.wall_clock_stretch.sel(strategy=s)):.2f}, "
                             f"{int(ds.n_pauses.sel(strategy=s))} pauses")
    ax.axvline(window_hours, color="grey", ls=":", lw=1)
    ax.set(xlim=(0, n * step), xlabel="hours since start", ylabel="intensity [gCO2e/kWh]",
           title=f"{da.attrs.get('region', '')} {'synthetic typical year' if da.attrs.get('synthetic') else ''}: "
                 f"{job_hours:g} h job in a {window_hours:g} h window (dotted)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
