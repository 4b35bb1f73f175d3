"""Benchmark: the throughput model with plan search over 10^6 configurations (prints configs/s).

Run: ``.venv/bin/python bench/bench_throughput.py`` (``make bench``). Timings never go in tests.
"""

import time

import numpy as np

from scalesim.chain.training_throughput import hardware_arrays
from scalesim.models import parallelism as par


def main(n_configs=1_000_000):
    """Time the plan search of ``n_configs`` random dense jobs on 10 accelerators (tiny plan grid)."""
    rng = np.random.default_rng(0)
    ids = np.array(["A100", "H100", "H200", "B200", "GB200", "MI300X", "TPUv5p", "TPUv6e", "Gaudi2", "MI355X"])
    hw_all = hardware_arrays(ids, np.array(["bf16"] * len(ids)))
    hw_idx = rng.integers(0, len(ids), n_configs)
    hw = {k: v[hw_idx] for k, v in hw_all.items()}
    n_params = 10 ** rng.uniform(8, 12, n_configs)
    n_chips = 2.0 ** rng.integers(3, 14, n_configs)
    cfg = par.derive_config(n_params, n_params, seq_len=np.full(n_configs, 4096.0),
                            global_batch_tokens=par.global_batch_tokens_gpt3(n_params))
    cfg["n_chips"] = n_chips
    plans = par.plan_grid(max_tp=72, tiny=True)
    t0 = time.perf_counter()
    best = par.search_plan(cfg, hw, plans)
    dt = time.perf_counter() - t0
    ok = np.isfinite(best["step_time_s"]).mean()
    print(f"throughput plan search: {n_configs:,} configs x {len(plans['tp'])} plans in {dt:.1f} s "
          f"= {n_configs / dt:,.0f} configs/s ({ok:.0%} feasible)")
    t0 = time.perf_counter()
    hw3 = {k: v[None, None, :] for k, v in hardware_arrays(ids, np.array(["bf16"] * len(ids))).items()}
    mfu = par.structural_mfu(np.logspace(8, 12, 200)[:, None, None], np.round(np.logspace(3, 14.3, 50, base=2))[None, :, None], hw3)
    print(f"structural_mfu 200 n_params x 50 n_chips x 10 hardware: {time.perf_counter() - t0:.2f} s "
          f"({np.isfinite(mfu).mean():.0%} feasible)")


if __name__ == "__main__":
    main()
