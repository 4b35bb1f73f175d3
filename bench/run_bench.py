"""scalesim benchmarks (`make bench`). Reports ratios against references timed in the same run.

1. simulate on a >= 1e7-cell sweep vs a hand-written fused numpy evaluation of the same
   arithmetic (target >= 0.5) and vs a scalar Python loop calling simulate per cell (>= 1000x).
2. simulate(outputs=["co2e_t"]) on the same 1e7 cells vs a *factored* numpy reference for the same
   output: FLOPs on (N, D), one factor per hardware, one per region, one outer product (>= 0.5).
3. optimize: 1e5 optimisations vectorised vs the same done one by one with scipy (if available).
4. import costs: ``import scalesim`` and ``scalesim --version`` in fresh interpreters (targets
   0.3 s and 0.15 s) against a bare interpreter start.
5. scale (bench/bench_scale.py): the 10^9-cell emission-optimal search through the public API (lazy
   route) vs a factored numpy reduction of the same cells, peak memory of each (target < 1 GB),
   and the same search on a dask.distributed LocalCluster, the answers checked equal.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import scalesim as ss
from scalesim import catalog, grid_water


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_simulate():
    n_n, n_d = 100, 100
    hws = [h for h in catalog.hardware_ids() if catalog.get_hardware(h).peak_tflop_per_s["bf16"]][:10]
    regions = catalog.region_ids("country")[:100]
    N, D = ss.logspace(1e8, 1e12, n_n), ss.logspace(1e10, 1e14, n_d)
    cells = n_n * n_d * len(hws) * len(regions)
    kw = dict(n_params=N, n_tokens=D, hardware=hws, region=regions, n_chips=1024)

    # the default utilisation ('structural': the throughput model on (n_params, hardware)) against the
    # per-generation constants (utilisation on hardware only), last round's default
    t_default = best_of(lambda: ss.simulate(**kw))
    t_sim = best_of(lambda: ss.simulate(**kw, mfu="hierarchical"))
    ds = ss.simulate(**kw, mfu="hierarchical")

    # fused numpy reference: the same arithmetic on pre-resolved factors (lookups not timed)
    peak = np.array([catalog.get_hardware(h).peak_flop_per_s("bf16") for h in hws])
    mfu = ds.mfu.transpose("hardware").values  # default utilisation: one value per accelerator generation
    power = ds.chip_power_w.values
    pue, ci, wue = ds.pue.values, ds.grid_gco2e_per_kwh.values, None
    defaults = {d["name"]: d["value"] for d in ds.scalesim.defaults}
    wue = np.array([defaults["wue_l_per_kwh:industry"]] * len(regions))
    # water of power generation per region, from its generation mix (the levers round replaced the one
    # industry factor; central values, as simulate uses)
    ewif = np.array([grid_water.region_ewif_l_per_kwh(r)[1] for r in regions])
    emb = np.array([defaults[f"embodied_kgco2e_per_chip:{h}"] for h in hws])
    life, use = defaults["lifetime_years"], defaults["use_fraction"]

    def fused():
        flop = 6.0 * N[:, None] * D[None, :]
        ch = flop[:, :, None] / (peak * mfu * 3600.0)
        wall = ch / 1024 / 24.0
        it = ch * power / 1000.0
        energy = it[..., None] * pue
        co2 = energy * ci / 1e6
        embt = ch * emb / (life * 8766.0 * use) / 1000.0
        total = co2 + embt[..., None]
        won = it[..., None] * wue
        woff = energy * ewif
        return flop, ch, wall, it, energy, co2, embt, total, won, woff, won + woff

    t_fused = best_of(fused)
    ref = fused()
    assert np.allclose(ref[5], ds.co2e_t.values, rtol=1e-12), "fused reference disagrees with simulate"

    # scalar loop: simulate() once per cell on a random sample, extrapolated
    rng = np.random.default_rng(0)
    sample = 200
    t0 = time.perf_counter()
    for _ in range(sample):
        ss.simulate(n_params=float(rng.choice(N)), n_tokens=float(rng.choice(D)), hardware=str(rng.choice(hws)),
                    region=str(rng.choice(regions)), n_chips=1024, mfu="hierarchical")
    t_loop = (time.perf_counter() - t0) / sample * cells

    print(f"simulate sweep: {cells:.2e} cells ({n_n} n_params x {n_d} n_tokens x {len(hws)} hardware x {len(regions)} regions)")
    print(f"  simulate            {t_sim:8.3f} s   {cells / t_sim:.3e} cells/s")
    print(f"  fused numpy         {t_fused:8.3f} s   {cells / t_fused:.3e} cells/s")
    print(f"  scalar simulate loop {t_loop:7.0f} s   (extrapolated from {sample} calls)")
    print(f"  ratio simulate / fused numpy (cells/s): {t_fused / t_sim:.2f}   (target >= 0.5)")
    print(f"  ratio simulate / scalar loop (cells/s): {t_loop / t_sim:.0f}x (target >= 1000x)")
    print(f"  simulate, default utilisation (throughput model on n_params x hardware) {t_default:8.3f} s: "
          f"{t_default / t_sim:.2f}x the per-generation constants (target <= 2x)")
    return t_fused / t_sim, t_loop / t_sim


def bench_co2e_only():
    """simulate(outputs=["co2e_t"]) vs the factored numpy computation of co2e_t (lookups not timed)."""
    hws = [h for h in catalog.hardware_ids() if catalog.get_hardware(h).peak_tflop_per_s["bf16"]][:10]
    regions = catalog.region_ids("country")[:100]
    N, D = ss.logspace(1e8, 1e12, 100), ss.logspace(1e10, 1e14, 100)
    cells = N.size * D.size * len(hws) * len(regions)
    kw = dict(n_params=N, n_tokens=D, hardware=hws, region=regions, n_chips=1024, mfu="hierarchical")
    t_sim = best_of(lambda: ss.simulate(**kw, outputs=["co2e_t"]), repeat=5)
    ds = ss.simulate(**kw)
    peak = np.array([catalog.get_hardware(h).peak_flop_per_s("bf16") for h in hws])
    mfu, power = ds.mfu.transpose("hardware").values, ds.chip_power_w.transpose("hardware").values
    pue, ci = ds.pue.transpose("region").values, ds.grid_gco2e_per_kwh.transpose("region").values

    def factored():
        flop = 6.0 * N[:, None] * D[None, :]  # (N, D)
        kwh_per_flop = power / 1000.0 / (peak * mfu * 3600.0)  # per hardware
        t_per_it_kwh = pue * ci / 1e6  # per region
        return flop[:, :, None, None] * np.multiply.outer(kwh_per_flop, t_per_it_kwh)  # one outer product

    t_ref = best_of(factored, repeat=5)
    assert np.allclose(factored(), ds.co2e_t.values, rtol=1e-12), "factored reference disagrees with simulate"
    print(f"simulate(outputs=['co2e_t']) on {cells:.2e} cells")
    print(f"  simulate(outputs=['co2e_t']) {t_sim:8.3f} s   {cells / t_sim:.3e} cells/s")
    print(f"  factored numpy               {t_ref:8.3f} s   {cells / t_ref:.3e} cells/s")
    print(f"  ratio simulate / factored numpy (cells/s): {t_ref / t_sim:.2f}   (target >= 0.5)")
    return t_ref / t_sim


def bench_optimize():
    try:
        from scalesim.solve.optimization import bench_optimize as run
    except ImportError as exc:  # optimize not available in this build
        print(f"optimize benchmark skipped: {exc}")
        return
    run()


def bench_imports(repeat=7):
    """Wall time of a fresh interpreter: bare, `import scalesim`, `scalesim --version` (best of ``repeat``)."""
    import subprocess

    cmds = {"python -c pass": [sys.executable, "-c", "pass"],
            "import scalesim": [sys.executable, "-c", "import scalesim"],
            "scalesim --version": [sys.executable, "-c", "from scalesim.interface.cli import main; main(['--version'])"]}
    print("import costs (fresh interpreter, best of %d):" % repeat)
    for name, cmd in cmds.items():
        t = best_of(lambda: subprocess.run(cmd, check=True, capture_output=True), repeat=repeat)
        print(f"  {name:20s} {t:6.3f} s")


def bench_scale():
    """The 10^9-cell search (bench/bench_scale.py: each run in its own subprocess, peak memory measured)."""
    import pathlib

    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    import bench_scale as scale

    scale.main(1e9)


if __name__ == "__main__":
    bench_simulate()
    bench_co2e_only()
    bench_optimize()
    bench_imports()
    bench_scale()
    sys.exit(0)
