"""Predicted vs reported plot for :func:`scalesim.validation.validate` (matplotlib imported lazily)."""

from __future__ import annotations

import numpy as np

#: Okabe & Ito (2008) colour-blind-safe palette, one colour per hardware family.
OKABE_ITO = {"gpu": "#0072B2", "tpu": "#E69F00", "other": "#009E73", "": "#999999"}
_EXTRA = ("#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def plot_validation(ds, ax=None, *, quantity="co2e_t", loo=False, band=0.25, **kw):
    """Predicted against reported values, log-log, with the 1:1 line and a +/-``band`` band.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`scalesim.validation.validate`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure's otherwise.
    quantity : str
        ``'co2e_t'`` [t], ``'energy_kwh'`` [kWh], ``'chip_hours'`` [h] or ``'wall_days'`` [day].
    loo : bool
        Plot the leave-one-out predictions (prediction mode).
    band : float
        Half-width of the shaded relative band around 1:1 [-].
    **kw
        Passed to ``ax.scatter``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    pred_name = f"{quantity}_predicted" + ("_loo" if loo else "")
    rep_name = f"{quantity}_reported"
    if pred_name not in ds or rep_name not in ds:
        have = sorted(v[: -len("_reported")] for v in ds.data_vars if v.endswith("_reported"))
        raise ValueError(f"quantity must be one of {have} (with predictions), got {quantity!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    pred, rep = ds[pred_name].values.astype(float), ds[rep_name].values.astype(float)
    ok = np.isfinite(pred) & np.isfinite(rep) & (pred > 0) & (rep > 0)
    fams = np.asarray(ds["hardware_family"].values, dtype=str)
    colours = dict(OKABE_ITO)
    for i, f in enumerate(sorted(set(fams) - set(colours))):
        colours[f] = _EXTRA[i % len(_EXTRA)]
    for fam in sorted(set(fams[ok])):
        sel = ok & (fams == fam)
        ax.scatter(rep[sel], pred[sel], color=colours[fam], label=fam.upper() or "unknown",
                   edgecolor="black", linewidth=0.5, zorder=3, **kw)
    if ok.any():
        lo, hi = min(rep[ok].min(), pred[ok].min()) / 2, max(rep[ok].max(), pred[ok].max()) * 2
    else:
        lo, hi = 1.0, 10.0
    x = np.geomspace(lo, hi, 50)
    ax.plot(x, x, color="black", linewidth=1, label="1:1")
    ax.fill_between(x, x * (1 - band), x * (1 + band), color="0.85", zorder=0, label=f"\u00b1{band:.0%}")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
    units = ds[rep_name].attrs.get("units", "")
    long = ds[rep_name].attrs.get("long_name", quantity).split(",")[0].split(" [")[0]
    ax.set_xlabel(f"reported {long} [{units}]")
    ax.set_ylabel(f"predicted {long} [{units}]" + (" (leave-one-out)" if loo else ""))
    ax.set_title(f"scalesim vs published runs ({ds.attrs.get('mode', '')})")
    ax.legend(title="hardware", frameon=False)
    return ax


def plot_validation_panels(ds, *, band=0.25):
    """Side-by-side predicted-vs-reported panels for the two headline quantities of a mode.

    Accounting: energy [kWh] and tCO2e; prediction: chip-hours [h] and tCO2e, leave-one-out
    where the utilisation or power model was refitted on the runs.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    prediction = ds.attrs.get("mode") == "prediction"
    quantities = ("chip_hours", "co2e_t") if prediction else ("energy_kwh", "co2e_t")
    loo = prediction and str(ds.attrs.get("loo", "")).startswith("refitted")
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), layout="constrained")
    for ax, q in zip(axes, quantities):
        plot_validation(ds, ax, quantity=q, loo=loo, band=band)
        ax.set_title(ax.get_ylabel().replace("predicted ", "").split(" [")[0])
    suffix = f", utilisation model '{ds.attrs.get('mfu_model')}'" if prediction else ""
    fig.suptitle(f"scalesim vs published runs ({ds.attrs.get('mode', '')}{suffix})")
    return fig
