"""Paper figures: a result Dataset in, a matplotlib Axes out.

matplotlib is imported inside the functions only, so ``import scalesim`` stays light. Axis labels
come from the variables' attrs (``long_name [units]``); colours are the Okabe-Ito palette, which
stays distinguishable under the common colour-vision deficiencies.

References
----------
Okabe, M. and Ito, K. (2008). Color Universal Design (CUD): how to make figures and
presentations that are friendly to colorblind people. https://jfly.uni-koeln.de/color/
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: Okabe-Ito colour-blind-safe palette, reordered so the low-contrast yellow comes late.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#000000", "#F0E442")


def label(da, name=None):
    """``'long_name [units]'`` from attrs (units omitted when dimensionless or already present)."""
    attrs = getattr(da, "attrs", {})
    long_name = attrs.get("long_name", name or getattr(da, "name", "") or "")
    units = attrs.get("units", "")
    if not units or units == "1" or "[" in long_name:
        return long_name
    return f"{long_name} [{units}]"


def _axes(ax, **subplots):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(**subplots)
    return ax


def _reduce_to(da, keep, select):
    """Select ``select`` then the first element of every dim not in ``keep``."""
    select = {k: v for k, v in (select or {}).items() if k in da.dims or k in da.coords}
    if select:
        da = da.sel(select)
    extra = {d: 0 for d in da.dims if d not in keep}
    return da.isel(extra) if extra else da


def _need(ds, var, dims=()):
    if var not in ds:
        raise ValueError(f"var={var!r} is not in the dataset; variables: {', '.join(ds.data_vars)}")
    missing = [d for d in dims if d not in ds[var].dims]
    if missing:
        raise ValueError(f"{var} must have dimension(s) {', '.join(missing)} for this figure; it has {ds[var].dims}")


def plot_emissions_plane(ds, ax=None, *, var="co2e_t", select=None, paths=None, loss_levels=8, cmap="viridis"):
    """Emissions over the (n_params, n_tokens) plane on log axes, with iso-loss contours.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`scalesim.simulate` result with ``n_params`` and ``n_tokens`` dimensions (other
        dimensions are reduced by ``select`` or to their first element).
    var : str
        Variable to colour by, default ``co2e_t`` [tCO2e].
    select : dict, optional
        ``.sel`` indexers for the other dimensions, e.g. ``{"region": "FR"}``.
    paths : dict, optional
        ``{label: (n_params, n_tokens)}`` sequences drawn as lines (e.g. compute- and
        emission-optimal allocations).
    loss_levels : int or sequence
        Iso-loss contour levels when a ``loss`` variable is present [nats/token].

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.colors import LogNorm

    _need(ds, var, ("n_params", "n_tokens"))
    ax = _axes(ax, figsize=(6, 4.5))
    z = _reduce_to(ds[var], ("n_params", "n_tokens"), select).transpose("n_tokens", "n_params")
    x, y = ds["n_params"].values, ds["n_tokens"].values
    vals = np.where(z.values > 0, z.values, np.nan)
    mesh = ax.pcolormesh(x, y, vals, norm=LogNorm(np.nanmin(vals), np.nanmax(vals)), cmap=cmap, shading="auto")
    ax.figure.colorbar(mesh, ax=ax, label=label(ds[var], var))
    if "loss" in ds:
        loss = _reduce_to(ds["loss"], ("n_params", "n_tokens"), select).transpose("n_tokens", "n_params")
        cs = ax.contour(x, y, loss.values, levels=loss_levels, colors="white", linewidths=0.8)
        ax.clabel(cs, fmt="%.2f", fontsize=7)
    for i, (name, (n, d)) in enumerate((paths or {}).items()):
        ax.plot(n, d, color=OKABE_ITO[(i + 5) % len(OKABE_ITO)], lw=2, ls=("-", "--", ":")[i % 3], label=name)
    if paths:
        ax.legend(loc="lower right", fontsize=8)
    ax.set(xscale="log", yscale="log", xlim=(x.min(), x.max()), ylim=(y.min(), y.max()),
           xlabel=label(ds["n_params"], "n_params"), ylabel=label(ds["n_tokens"], "n_tokens"))
    return ax


def pareto_mask(cost, value):
    """True where (cost, value) is not dominated: no other point has lower-or-equal both, one lower."""
    cost, value = np.ravel(cost), np.ravel(value)
    order = np.lexsort((value, cost))
    best = np.minimum.accumulate(value[order])
    keep = np.r_[True, value[order][1:] < best[:-1]]
    mask = np.zeros(cost.size, bool)
    mask[order[keep]] = True
    return mask


def plot_pareto_front(ds, ax=None, *, x="co2e_t", y="loss", by="region", show_points=True):
    """Pareto front of ``y`` (loss) against ``x`` (emissions) for each value of ``by``.

    Every configuration in the sweep is a point; the front is the set no other configuration
    beats on both. Returns the Axes.
    """
    _need(ds, x)
    _need(ds, y)
    ax = _axes(ax, figsize=(6, 4.5))
    groups = ds[by].values if by in ds.dims else [None]
    for i, g in enumerate(groups):
        sub = ds.sel({by: g}) if g is not None else ds
        xs, ys = np.broadcast_arrays(*[np.asarray(a) for a in __import__("xarray").broadcast(sub[x], sub[y])])
        xs, ys = xs.ravel(), ys.ravel()
        ok = np.isfinite(xs) & np.isfinite(ys) & (xs > 0)
        xs, ys = xs[ok], ys[ok]
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        if show_points:
            ax.scatter(xs, ys, s=3, color=colour, alpha=0.15, lw=0)
        m = pareto_mask(xs, ys)
        o = np.argsort(xs[m])
        ax.step(xs[m][o], ys[m][o], where="post", color=colour, lw=2, label=str(g) if g is not None else "front")
    ax.set(xscale="log", xlabel=label(ds[x], x), ylabel=label(ds[y], y))
    ax.legend(title=by if groups[0] is not None else None, fontsize=8)
    return ax


def plot_region_hardware_bars(ds, ax=None, *, var="co2e_t", select=None, log=True):
    """Grouped bars of ``var`` for one model: regions along x, one bar per hardware."""
    _need(ds, var, ("region",))
    ax = _axes(ax, figsize=(7, 4))
    da = _reduce_to(ds[var], ("region", "hardware"), select)
    regions = [str(r) for r in da["region"].values]
    hws = [str(h) for h in da["hardware"].values] if "hardware" in da.dims else [None]
    width = 0.8 / len(hws)
    pos = np.arange(len(regions))
    for i, h in enumerate(hws):
        vals = (da.sel(hardware=h) if h is not None else da).transpose("region").values
        ax.bar(pos + (i - (len(hws) - 1) / 2) * width, vals, width, color=OKABE_ITO[i % len(OKABE_ITO)],
               label=h if h is not None else var)
    ax.set_xticks(pos, regions, rotation=30, ha="right")
    ax.set(ylabel=label(ds[var], var), xlabel=label(ds["region"], "region"))
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8, title="accelerator" if hws[0] is not None else None)
    return ax


def plot_hardware_bars(ds, ax=None, *, var="energy_kwh", select=None, log=True):
    """Bars of ``var`` per accelerator (e.g. across generations) for one model and region."""
    _need(ds, var, ("hardware",))
    ax = _axes(ax, figsize=(7, 4))
    da = _reduce_to(ds[var], ("hardware",), select)
    hws = [str(h) for h in da["hardware"].values]
    ax.bar(np.arange(len(hws)), da.values, color=[OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(hws))])
    ax.set_xticks(np.arange(len(hws)), hws, rotation=30, ha="right")
    ax.set(ylabel=label(ds[var], var), xlabel="accelerator")
    if log:
        ax.set_yscale("log")
    return ax


def plot_diurnal(ds, ax=None, *, var="co2e_t", select=None):
    """Carbon-aware timing: the diurnal intensity profile and the saving against start hour.

    For each region, dashed: the typical hourly grid intensity relative to its annual mean;
    solid: ``var`` of the run by local start hour relative to its mean over start hours, both
    in percent. The gap between the best and the mean start hour is the timing saving.
    """
    from scalesim import catalog

    _need(ds, var, ("start_hour",))
    ax = _axes(ax, figsize=(6, 4))
    da = _reduce_to(ds[var], ("start_hour", "region"), select)
    regions = [str(r) for r in da["region"].values] if "region" in da.dims else [None]
    hours = da["start_hour"].values
    for i, r in enumerate(regions):
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        run = (da.sel(region=r) if r is not None else da).transpose("start_hour").values
        rel = 100 * (run / run.mean() - 1)
        saving = -rel.min()
        ax.plot(hours, rel, color=colour, lw=2, marker="o", ms=3,
                label=f"{r or 'run'}: best start saves {saving:.0f}%")
        if r is not None:
            zone = catalog.get_region(r).profile_zone
            if zone:
                prof = np.asarray(catalog.diurnal_profile(zone)[1])
                ax.plot(np.arange(24), 100 * (prof - 1), color=colour, lw=1, ls="--")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel=label(ds["start_hour"], "start_hour"), xlim=(0, 23), xticks=range(0, 24, 3),
           ylabel=f"{da.attrs.get('long_name', var).split(' [')[0]} vs mean [%]")
    ax.legend(fontsize=8, title="solid: run; dashed: hourly intensity")
    return ax


def plot_validation(ds, ax=None, *, quantity="co2e_t", loo=False):
    """Predicted vs reported values of published runs (see :mod:`scalesim.validation`)."""
    from scalesim.interface._plot_validation import plot_validation as _plot

    return _plot(ds, ax=ax, quantity=quantity, loo=loo)


def plot_validation_panels(ds):
    """Two predicted-vs-reported panels (chip-hours or energy, and tCO2e); returns the Figure."""
    from scalesim.interface._plot_validation import plot_validation_panels as _panels

    return _panels(ds)


#: Figure names usable in scenario files (``[output] figures = [...]``).
def plot_bands(ds, ax=None, *, var="co2e_t", x="n_params", by="region", q=(0.05, 0.95), select=None):
    """``var`` against ``x`` with the median and a central interval over ``sample`` per ``by`` (log-log).

    ``ds`` is a Monte Carlo result (``simulate(..., samples=N)``) with dims ``x``, ``by`` and ``sample``.
    """
    _need(ds, var, (x, by, "sample"))
    da = _reduce_to(ds[var], (x, by, "sample"), select)
    band = da.quantile([q[0], 0.5, q[1]], dim="sample")
    ax = _axes(ax, figsize=(6, 4))
    for i, key in enumerate(da[by].values):
        b = band.sel({by: key})
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        ax.fill_between(da[x].values, b.isel(quantile=0).values, b.isel(quantile=2).values, color=colour, alpha=0.25,
                        linewidth=0)
        ax.plot(da[x].values, b.isel(quantile=1).values, color=colour, label=str(key))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(label(ds[x]) if x in ds.coords and ds[x].attrs else x)
    ax.set_ylabel(label(ds[var]))
    ax.set_title(f"median and {round(100 * (q[1] - q[0]))} % interval over {ds.sizes['sample']} samples", fontsize=9)
    ax.legend(title=by, fontsize=8)
    return ax


def plot_sobol_bars(s, ax=None, *, select=None):
    """Horizontal bars of first-order and total Sobol' indices per input (:func:`scalesim.sensitivity`)."""
    for v in ("S1", "ST"):
        _need(s, v, ("input",))
    s = s[["S1", "ST", "S1_conf", "ST_conf"]]
    s = s.sel({k: v for k, v in (select or {}).items() if k in s.dims})
    s = s.isel({d: 0 for d in s.dims if d != "input"})
    order = np.argsort(s["ST"].values)
    names = s["input"].values[order]
    ax = _axes(ax, figsize=(6, 0.35 * len(names) + 1.2))
    y = np.arange(len(names))
    for off, v, colour in ((-0.2, "ST", OKABE_ITO[3]), (0.2, "S1", OKABE_ITO[0])):
        ax.barh(y + off, s[v].values[order], height=0.4, xerr=s[v + "_conf"].values[order], color=colour,
                label={"ST": "total (ST)", "S1": "first order (S1)"}[v], error_kw=dict(lw=0.8))
    ax.set_yticks(y, names)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Sobol' index [-]")
    ax.set_title(f"sensitivity of {s.attrs.get('output', 'output')}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_validation_intervals(ds, ax=None, *, quantity="chip_hours"):
    """Leave-one-out 50 % and 90 % intervals per run (ratio to the reported value), ``validate(samples=N)``."""
    _need(ds, f"{quantity}_quantiles_loo", ("run",))
    band = ds[f"{quantity}_quantiles_loo"] / ds[f"{quantity}_reported"]
    keep = np.isfinite(band.sel(quantile=0.5).values)
    band = band.isel(run=keep)
    ax = _axes(ax, figsize=(6, 0.28 * int(keep.sum()) + 1.5))
    y = np.arange(band.sizes["run"])
    inside = ds[f"{quantity}_in_90_loo"].isel(run=keep).values == 1
    ax.hlines(y, band.sel(quantile=0.05), band.sel(quantile=0.95), color=OKABE_ITO[1], lw=2, label="90 % interval")
    ax.hlines(y, band.sel(quantile=0.25), band.sel(quantile=0.75), color=OKABE_ITO[3], lw=5, label="50 % interval")
    ax.plot(band.sel(quantile=0.5), y, "|", color="k", ms=8, label="median")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.plot(np.ones(int((~inside).sum())), y[~inside], "x", color=OKABE_ITO[4], label="reported outside 90 %")
    from matplotlib.ticker import FixedLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([0.1, 0.2, 0.5, 1.0, 2.0, 5.0]))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(y, [str(r)[:32] for r in band["run"].values], fontsize=7)
    ax.set_xlabel(f"predicted / reported {quantity.replace('_', '-')} (leave-one-out)")
    ax.legend(fontsize=7, loc="lower right")
    ax.invert_yaxis()
    return ax


def plot_levers_waterfall(ds, ax=None):
    """Waterfall of tCO2e and water over a :func:`scalesim.solve.levers.waterfall` result (two axes)."""
    from scalesim.interface._plot_levers import plot_waterfall

    return plot_waterfall(ds, axes=ax).axes[0]


FIGURES = {
    "levers_waterfall": plot_levers_waterfall,
    "emissions_plane": plot_emissions_plane,
    "pareto_front": plot_pareto_front,
    "region_hardware_bars": plot_region_hardware_bars,
    "hardware_bars": plot_hardware_bars,
    "diurnal": plot_diurnal,
}


def save_figure(fig, path_stem, formats=("png", "pdf")):
    """Save ``fig`` as ``<path_stem>.<fmt>`` for each format, atomically; returns the paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        tmp = stem.with_name(f".{stem.name}.tmp-{os.getpid()}.{fmt}")
        try:
            fig.savefig(tmp, format=fmt, dpi=200, bbox_inches="tight")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        out.append(path)
    return out


# ----------------------------------------------------------------------------- the paper figures
def _paper_figures():
    """``{name: (function, description)}`` of the paper figures; each function returns a Figure."""
    import matplotlib.pyplot as plt

    import scalesim as ss

    try:
        from scalesim import laws as scaling
    except ImportError:
        scaling = None
    law = "besiroglu2024" if scaling is not None and "besiroglu2024" in getattr(scaling, "LAWS", {}) else None

    def plane():
        ds = ss.simulate(n_params=ss.logspace(1e8, 1e12, 60), n_tokens=ss.logspace(1e9, 1e14, 60),
                         hardware="H100-SXM5-80GB", n_chips=1024, region="US", law=law)
        paths = {}
        if scaling is not None:
            flop = np.logspace(np.log10(6 * 1e8 * 1e10), np.log10(6 * 1e12 * 1e13), 40)
            opt = scaling.compute_optimal(flop, law=law)
            n, d = np.asarray(opt.n_params), np.asarray(opt.n_tokens)
            ok = (n >= 1e8) & (n <= 1e12) & (d >= 1e9) & (d <= 1e14)
            paths["compute-optimal"] = (n[ok], d[ok])
        ax = plot_emissions_plane(ds, paths=paths)
        ax.set_title("Training emissions, H100 x 1024 in the US grid", fontsize=9)
        return ax.figure

    def pareto():
        ds = ss.simulate(n_params=ss.logspace(1e8, 1e12, 40), n_tokens=ss.logspace(1e10, 1e14, 40),
                         hardware="H100-SXM5-80GB", n_chips=1024, region=["SE", "FR", "US", "IN"], law=law)
        return plot_pareto_front(ds, y="loss" if law else "flop").figure

    def bars():
        ds = ss.simulate(n_params=70e9, n_tokens=2e12, hardware=["A100-SXM4-80GB", "H100-SXM5-80GB", "TPUv5p"],
                         n_chips=2048, region=["SE", "FR", "gcp:europe-north1", "US-CAL-CISO", "US", "DE", "IN", "ZA"])
        return plot_region_hardware_bars(ds).figure

    def generations():
        # the default utilisation is the throughput model: each chip's own peak, bandwidth and links
        ds = ss.simulate(n_params=70e9, n_tokens=2e12, n_chips=2048, region="US",
                         hardware=["V100-SXM2-32GB", "A100-SXM4-80GB", "H100-SXM5-80GB", "B200", "TPUv4", "TPUv5p", "TPUv6e"])
        return plot_hardware_bars(ds, var="energy_kwh").figure

    def diurnal():
        ds = ss.simulate(n_params=1e9, n_tokens=20e9, hardware="H100-SXM5-80GB", n_chips=64,
                         region=["US-CAL-CISO", "DE", "ZA"], start_hour=np.arange(24.0))
        return plot_diurnal(ds).figure

    def validation():
        import importlib

        validate = importlib.import_module("scalesim.validation").validate
        return plot_validation(validate(mode="accounting")).figure

    def validation_prediction():
        import importlib

        validate = importlib.import_module("scalesim.validation").validate
        return plot_validation_panels(validate(mode="prediction"))

    figs = {"emissions_plane": plane, "pareto_front": pareto, "region_hardware_bars": bars,
            "hardware_generations": generations, "diurnal": diurnal, "validation": validation,
            "validation_prediction": validation_prediction, **_model_figures()}
    return figs, plt


def _model_figures():
    """The figures of the throughput, serving and schedule models (drawn by their own modules)."""
    def throughput_validation():
        from scalesim.interface._plot_throughput import plot_throughput_validation

        return plot_throughput_validation()

    def serve_energy_vs_batch():
        from scalesim.interface._plot_serving import energy_vs_batch

        return energy_vs_batch(path=None)

    def schedule_saving_vs_slack():
        from scalesim.interface._plot_schedule import plot_saving_vs_slack

        return plot_saving_vs_slack()

    def schedule_hours():
        from scalesim.interface._plot_schedule import plot_schedule_hours

        return plot_schedule_hours()

    def levers_waterfall():
        from scalesim.interface._plot_levers import levers_figure

        return levers_figure()

    return {"throughput_validation": throughput_validation, "serve_energy_vs_batch": serve_energy_vs_batch,
            "schedule_saving_vs_slack": schedule_saving_vs_slack, "schedule_hours": schedule_hours,
            "levers_waterfall": levers_waterfall,
            **_uncertainty_figures()}


def _uncertainty_figures():
    """Figures with intervals: bands per region, Sobol' bars, calibrated validation intervals."""
    import scalesim as ss

    def co2e_bands():
        ds = ss.simulate(n_params=ss.logspace(1e9, 1e12, 16), n_tokens=2e12, hardware="H100-SXM5-80GB", n_chips=2048,
                         region=["SE", "FR", "US", "IN"], samples=500, seed=0)
        return plot_bands(ds).figure

    def sobol_bars():
        s = ss.sensitivity("co2e_t", n=1024, seed=0, n_params=70e9, n_tokens=2e12, hardware="H100-SXM5-80GB",
                           n_chips=2048, region="US")
        return plot_sobol_bars(s).figure

    def validation_intervals():
        import importlib

        import matplotlib.pyplot as plt

        ds = importlib.import_module("scalesim.validation").validate(mode="prediction", samples=1000, seed=0)
        fig, axes = plt.subplots(1, 2, figsize=(11, 7), sharey=False)
        plot_validation_intervals(ds, axes[0], quantity="chip_hours")
        plot_validation_intervals(ds, axes[1], quantity="co2e_t")
        fig.tight_layout()
        return fig

    return {"co2e_bands": co2e_bands, "sobol_bars": sobol_bars, "validation_intervals": validation_intervals}


def make_all_figures(out_dir="figures", *, formats=("png", "pdf"), only=None):
    """Regenerate every paper figure into ``out_dir`` (``<name>.png`` and ``.pdf``).

    Parameters
    ----------
    out_dir : path-like
        Destination directory (created if needed).
    formats : sequence of str
        File formats ('png', 'pdf', 'svg').
    only : sequence of str, optional
        Names of the figures to make (default: all).

    Returns
    -------
    dict
        ``{name: [paths]}`` for the figures written; a figure whose module is missing (e.g.
        validation before :mod:`scalesim.validation` exists) maps to the error message instead.
    """
    figs, plt = _paper_figures()
    if only is not None:
        unknown = sorted(set(only) - set(figs))
        if unknown:
            raise ValueError(f"only: unknown figure(s) {unknown}; allowed: {', '.join(figs)}")
    written = {}
    for name, make in figs.items():
        if only is not None and name not in only:
            continue
        try:
            fig = make()
        except ImportError as exc:
            written[name] = f"skipped: {exc}"
            continue
        written[name] = save_figure(fig, Path(out_dir) / name, formats=formats)
        plt.close(fig)
    return written
