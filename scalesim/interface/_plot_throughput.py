"""Predicted vs measured step time of the throughput model on the shipped benchmarks (README figure)."""

from __future__ import annotations


def plot_throughput_validation(path=None, pred=None, rows=None, holdout=True):
    """Scatter of predicted vs measured step time, coloured by ``source_kind``.

    Parameters
    ----------
    path : str or path-like, optional
        Where to save the figure (PNG); not saved when None.
    pred, rows : optional
        Output of :func:`scalesim.calibration.throughput.predict_benchmarks` and its rows
        (computed when None).
    holdout : bool, optional
        Also draw the two hold-outs (:func:`scalesim.calibration.throughput.holdout_error`, never fitted),
        predicted with the shipped parameters: Megatron-Bridge on Blackwell as black crosses, the other stacks
        and chips (MaxText on TPU v7 and v6e, MLPerf on Blackwell and MI355X) as black diamonds.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from scalesim.calibration import throughput as ct

    rows = ct.benchmark_rows() if rows is None else rows
    pred = ct.predict_benchmarks(rows) if pred is None else pred
    kinds = np.array([r["source_kind"] for r in rows])
    fig, ax = plt.subplots(figsize=(6.0, 5.5))
    meas, model = pred["measured_step_s"], pred["step_time_s"]
    for k in sorted(set(kinds)):
        sel = kinds == k
        ax.scatter(meas[sel], model[sel], s=14, alpha=0.75, label=f"{k} ({sel.sum()})")
    held = (("Blackwell hold-out", dict(marker="x", color="k", lw=0.9)),
            ("other stacks and chips", dict(marker="D", facecolors="none", edgecolors="k", lw=0.8)))
    for table, (name, style) in zip(ct.HOLDOUT_TABLES, held) if holdout else ():
        h = ct.holdout_error(table=table)
        h_meas, h_model = h["pred"]["measured_step_s"], h["pred"]["step_time_s"]
        ax.scatter(h_meas, h_model, s=22, **style,
                   label=f"{name}, never fitted ({h['n']}: {h['median']:.0%} / {h['p90']:.0%})")
        meas, model = np.concatenate([meas, h_meas]), np.concatenate([model, h_model])
    lo, hi = np.nanmin([meas, model]) / 1.5, np.nanmax([meas, model]) * 1.5
    x = np.array([lo, hi])
    ax.plot(x, x, "k-", lw=1)
    for f in (0.75, 1.25):
        ax.plot(x, f * x, "k:", lw=0.8)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured step time [s]",
           ylabel="predicted step time [s]")
    s = ct.error_summary(pred)["step_time"]
    ax.set_title(f"scalesim.throughput, fitted rows: |error| median {s['median']:.0%}, p90 {s['p90']:.0%} "
                 "(dotted: ±25 %)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
