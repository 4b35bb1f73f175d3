"""Figure of the serving model: GPU energy per output token against batch, measured and modelled."""

from __future__ import annotations

import pathlib

import numpy as np


def energy_vs_batch(path="figures/serve_energy_vs_batch.png"):
    """J/token vs batch: ML.ENERGY v3 points and the roofline curve of each measured configuration.

    Left panel: every (model, GPUs) configuration of ``data/inference_energy_measurements.csv``
    (H100) with the model's curve over batch; right panel: the model on H100, H200, B200 and
    MI300X for a dense 70B (bf16 on 4 chips) and an MoE 235B-A22B (fp8 on 8 chips), where no
    measurement is shipped. Drawn under the Agg backend; returns the path written, or the figure
    when ``path`` is None.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scalesim.calibration import serving as cs
    from scalesim.chain.serving import serve

    rows = cs.measurement_rows()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    groups = {}
    for r in rows:
        groups.setdefault((r["model"], r["n_chips"]), []).append(r)
    batch = np.unique(np.geomspace(1, 1024, 41).round())
    colors = plt.cm.tab20(np.linspace(0, 1, len(groups)))
    for c, ((model, n), rs) in zip(colors, groups.items()):
        b = [float(r["batch_size"]) for r in rs]
        ax.scatter(b, [float(r["energy_per_token_j"]) for r in rs], color=c, s=14)
        kw = dict(cs._flat(rs[:1]))
        r0 = rs[0]
        ds = serve(n_params=float(r0["n_params"]), hardware=r0["accelerator"], n_chips=float(n), batch_size=batch,
                   dtype=r0["precision"] or "bf16", output_tokens=float(kw["output_tokens"][0]))
        ax.plot(batch, ds.gpu_energy_per_token_j, color=c, lw=1, label=f"{model.split('/')[-1]} x{n}")
    ax.set(xscale="log", yscale="log", xlabel="batch size (concurrent sequences)", ylabel="GPU energy per output token [J]",
           title="ML.ENERGY v3 on H100 (points) and scalesim.serve (lines)")
    ax.legend(fontsize=6, ncol=2)
    for hw, ls in (("H100-SXM5-80GB", "-"), ("H200-SXM-141GB", "--"), ("B200", "-."), ("MI300X", ":")):
        dense = serve(n_params=70e9, hardware=hw, n_chips=4, batch_size=batch)
        moe = serve(n_params=235e9, n_active_params=22e9, hardware=hw, n_chips=8, batch_size=batch, dtype="fp8")
        bx.plot(batch, dense.gpu_energy_per_token_j, "C0", ls=ls, label=f"70B bf16 x4 {hw}")
        bx.plot(batch, moe.gpu_energy_per_token_j, "C3", ls=ls, label=f"235B-A22B MoE fp8 x8 {hw}")
    bx.set(xscale="log", xlabel="batch size (concurrent sequences)", title="model only: other hardware, MoE")
    bx.legend(fontsize=6)
    fig.tight_layout()
    if path is None:
        return fig
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
