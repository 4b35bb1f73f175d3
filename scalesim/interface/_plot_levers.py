"""Figure of the levers: a waterfall of tCO2e and water from a baseline through each mitigation.

The data come from :func:`scalesim.solve.levers.waterfall`; this module only draws them. The
example (:data:`EXAMPLE`) is the one ``scenarios/levers.toml`` ships, so ``scalesim figures`` and
``scalesim run scenarios/levers.toml`` draw the same bars (tests/test_levers.py checks it).
"""

from __future__ import annotations

import numpy as np

#: The shipped example: a 2.0-nat model (Besiroglu et al. 2024 fit) served for 1e13 tokens, from
#: A100s on an average US grid (PJM, 403 g/kWh) with bf16 serving and direct training; the
#: levers in the order of issue 16; clean supply last, on its own (market-based) basis.
#: Mirrors scenarios/levers.toml ([[levers]]).
EXAMPLE = {
    "base": dict(hardware="A100-SXM4-80GB", region="US-MIDA-PJM", n_chips=2048, target_loss=2.0,
                 law="besiroglu2024", inference_tokens=1e13, n_params_bounds=(5e9, 3e11)),
    "levers": [
        ("efficient hardware (H100)", {"hardware": "H100-SXM5-80GB"}, "location"),
        ("low-carbon region (FR)", {"region": "FR"}, "location"),
        ("carbon-aware schedule (pause/resume, +50 %)",
         {"intensity_series": "synthetic", "schedule": "pause_resume", "slack": 0.5}, "location"),
        ("quantised serving (int4)", {"inference_dtype": "int4"}, "location"),
        ("distillation", {"strategy": "distill"}, "location"),
        ("clean supply (80 % CFE)", {"cfe_fraction": 0.8, "objective": "co2e_market_t"}, "market"),
    ],
}


def plot_waterfall(ds, axes=None):
    """Two panels (tCO2e, water) of a :func:`~scalesim.solve.levers.waterfall` result; returns the Figure.

    Location-based levers are floating bars from the level before to the level after (green a
    saving, red an increase) labelled with their factor, with the band of the level after; the last
    location level is drawn in full; market-based levers stand apart, hatched, on their own basis,
    never stacked. The axis is logarithmic: levers multiply, so equal factors have equal heights.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    fig = axes[0].figure
    for ax, (var, scale, unit) in zip(axes, (("co2e_t", 1.0, "tCO2e"), ("water_l", 1e-6, "ML"))):
        _panel(ax, ds, var, scale, unit)
    fig.suptitle(ds.attrs.get("title", "Levers, applied cumulatively"), fontsize=10)
    fig.tight_layout()
    return fig


def _panel(ax, ds, var, scale, unit):
    """One waterfall panel for ``var`` (levels on dim ``lever``) in ``unit`` (= var units x scale)."""
    level = np.asarray(ds[var].values, dtype=float) * scale
    low = np.asarray(ds[f"{var}_low"].values, dtype=float) * scale if f"{var}_low" in ds else level
    high = np.asarray(ds[f"{var}_high"].values, dtype=float) * scale if f"{var}_high" in ds else level
    market = np.asarray(ds["basis"].values) == "market"
    names = [str(n) for n in ds["lever"].values]
    loc = np.flatnonzero(~market)
    x, labels = [], []
    for pos, i in enumerate(loc):
        if i == 0:
            ax.bar(pos, level[0], color="0.55", label="baseline")
        else:
            prev = level[loc[pos - 1]]
            ax.bar(pos, prev - level[i], bottom=level[i], color="tab:green" if level[i] <= prev else "tab:red")
        ax.errorbar(pos, level[i], yerr=[[level[i] - low[i]], [high[i] - level[i]]], color="k", capsize=3, lw=1)
        x.append(pos)
        labels.append(names[i])
    end = len(loc)
    ax.bar(end, level[loc[-1]], color="tab:blue", label="after all location-based levers")
    x.append(end)
    labels.append("result (location)")
    for k, i in enumerate(np.flatnonzero(market)):
        pos = end + 1.5 + k
        ax.axvline(end + 0.75, color="0.3", ls="--", lw=0.8)
        ax.bar(pos, level[i], color="white", edgecolor="tab:purple", hatch="//",
               label="market-based, own basis (not summed)" if k == 0 else None)
        ax.errorbar(pos, level[i], yerr=[[level[i] - low[i]], [high[i] - level[i]]], color="k", capsize=3, lw=1)
        x.append(pos)
        labels.append(f"{names[i]}\n[market-based]")
    for pos, i in zip(x[1:len(loc)], loc[1:]):  # each location lever's factor on the level before it
        prev = level[loc[list(loc).index(i) - 1]]
        if prev > 0:
            ax.annotate(f"x{level[i] / prev:.2f}", (pos, max(level[i], prev)), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    ax.set_yscale("log")  # levers multiply: equal factors, equal heights
    long_name = ds[var].attrs.get("long_name", var).split(" [")[0]
    ax.set_ylabel(f"{long_name} [{unit}] (log scale)", fontsize=8)
    ax.legend(fontsize=7)


def levers_figure():
    """The shipped example's waterfall (:data:`EXAMPLE`), with the ``defaults`` corners as bands."""
    from scalesim.solve.levers import waterfall

    ds = waterfall(EXAMPLE["base"], EXAMPLE["levers"])
    ds.attrs["title"] = ("Lifetime (training + serving 1e13 tokens) footprint of a 2.0-nat model, levers applied "
                         "cumulatively; bars: defaults central, whiskers: low/high corners")
    return plot_waterfall(ds)
