"""Scale benchmark (issue 13): the 10^9-cell emission-optimal search in bounded memory, and on a cluster.

    .venv/bin/python bench/bench_scale.py            # 1000 N x 1000 D x 20 hardware x 50 regions
    .venv/bin/python bench/bench_scale.py --cells 1e8  # a smaller grid (same code)

Three measurements, each in its own subprocess so that its peak memory (``resource.getrusage``
``ru_maxrss``) is its own:

- ``api``: the public API, ``simulate(..., outputs=["co2e_t", "loss"])`` (above
  ``lazy_above_bytes`` it returns a lazy, dask-chunked Dataset) then
  ``ds.scalesim.optimum(over=every dim, target_loss=...)``, on dask's threaded scheduler;
- ``reference``: a hand-written factored numpy reduction of the same cells (FLOPs and loss on
  (N, D) from simulate, one co2e-per-FLOP factor per (hardware, region) from simulate, then the
  masked argmin over blocks of N rows, each block one outer product);
- ``cluster``: the API search again with a ``dask.distributed.LocalCluster`` client (threads in
  this process, so ``ru_maxrss`` covers the workers).

The answers must be equal bitwise (same cell, same co2e). Prints a markdown table.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np

TARGET_LOSS = 2.3
HARDWARE = 20
REGIONS = 50


def _grid(cells):
    import scalesim as ss
    from scalesim import catalog

    side = int(round(np.sqrt(cells / (HARDWARE * REGIONS))))
    kw = dict(n_params=ss.logspace(1e8, 1e12, side), n_tokens=ss.logspace(1e10, 1e14, side),
              hardware=catalog.hardware_ids()[:HARDWARE], region=_regions(),
              n_chips=1024, mfu="hierarchical", law="besiroglu2024")
    return kw, side * side * HARDWARE * REGIONS


def _regions():
    """The first REGIONS countries with a non-zero grid intensity (a zero makes every run there emit 0)."""
    from scalesim import catalog

    return [r for r in catalog.region_ids("country") if catalog.get_region(r).gco2e_per_kwh > 0][:REGIONS]


def _api(kw):
    import scalesim as ss

    ds = ss.simulate(**kw, outputs=["co2e_t", "loss"])
    over = ("n_params", "n_tokens", "hardware", "region")
    res = ds.scalesim.optimum(over=over, target_loss=TARGET_LOSS).compute()
    return {"lazy": "lazy" in ds.attrs, "co2e_t": float(res.co2e_t),
            "at": [float(res.n_params_opt), float(res.n_tokens_opt), str(res.hardware_opt.values), str(res.region_opt.values)]}


def _reference(kw):
    import scalesim as ss

    nd = ss.simulate(**{k: v for k, v in kw.items() if k not in ("hardware", "region")}, hardware=kw["hardware"][0],
                     region=kw["region"][0], outputs=["flop", "loss"])
    flop, loss = nd.flop.transpose("n_params", "n_tokens").values, nd.loss.transpose("n_params", "n_tokens").values
    per_flop = ss.simulate(**{k: v for k, v in kw.items() if k not in ("n_params", "n_tokens", "law")}, flop=1.0,
                           outputs="co2e_t").co2e_t.transpose("hardware", "region").values
    rows = max(1, (1 << 22) // (flop.shape[1] * per_flop.size))  # 4M cells per block, as the lazy route's chunks
    best, at = np.inf, None
    for i in range(0, flop.shape[0], rows):
        block = flop[i:i + rows, :, None, None] * per_flop[None, None]
        block = np.where((loss[i:i + rows] <= TARGET_LOSS)[:, :, None, None], block, np.inf)
        j = int(np.argmin(block))
        if block.flat[j] < best:  # strict: the first minimum in C order, as optimum
            best, at = float(block.flat[j]), (i + j // (block[0].size),) + np.unravel_index(j % block[0].size, block.shape[1:])
    n, d, h, r = at
    return {"co2e_t": best, "at": [float(kw["n_params"][n]), float(kw["n_tokens"][d]), kw["hardware"][h], kw["region"][r]]}


def _cluster(kw):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster):
        return _api(kw)


def child(which, cells):
    """Run one measurement here; print its JSON (seconds, peak RSS, answer)."""
    import scalesim as ss

    kw, n = _grid(cells)
    fn = {"api": _api, "reference": _reference, "cluster": _cluster}[which]
    ss.simulate(**{k: (v[:2] if isinstance(v, (list, np.ndarray)) else v) for k, v in kw.items()})  # load the data first
    t0 = time.perf_counter()
    out = fn(kw)
    out.update(seconds=time.perf_counter() - t0, cells=n,
               peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9)  # ru_maxrss: KiB on Linux
    print(json.dumps(out))


def main(cells=1e9):
    runs = {}
    for which in ("reference", "api", "cluster"):
        done = subprocess.run([sys.executable, __file__, "--child", which, "--cells", str(cells)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["?"])[-1]
            if which == "cluster" and "No module named 'distributed'" in done.stderr:
                print(f"cluster: skipped (dask.distributed not installed: pip install 'scalesim[dask]')")
                continue
            raise SystemExit(f"bench_scale {which} failed: {tail}")
        runs[which] = json.loads(done.stdout.strip().splitlines()[-1])
    ref = runs["reference"]
    print(f"emission-optimal search over {ref['cells']:.3g} cells (target loss {TARGET_LOSS}; {HARDWARE} hardware x "
          f"{REGIONS} regions)")
    print("| run | time [s] | time / factored numpy | peak memory [GB] | same answer |")
    print("| --- | ---: | ---: | ---: | --- |")
    for which, r in runs.items():
        same = r["co2e_t"] == ref["co2e_t"] and r["at"] == ref["at"]
        print(f"| {which} | {r['seconds']:.1f} | {r['seconds'] / ref['seconds']:.2f} | {r['peak_rss_gb']:.2f} | "
              f"{'yes' if same else 'NO: ' + json.dumps(r['at'])} |")
    print(f"optimum: co2e {ref['co2e_t']:.6g} t at {ref['at']}; api result lazy: {runs['api']['lazy']}")
    if not all(r["co2e_t"] == ref["co2e_t"] and r["at"] == ref["at"] for r in runs.values()):
        raise SystemExit("bench_scale: the answers differ")


if __name__ == "__main__":
    args = sys.argv[1:]
    cells = float(args[args.index("--cells") + 1]) if "--cells" in args else 1e9
    if "--child" in args:
        child(args[args.index("--child") + 1], cells)
    else:
        main(cells)
