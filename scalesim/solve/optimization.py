"""Emission-optimal configurations: closed forms where emissions are proportional to FLOPs,
a vectorised bracketed 1-D search along the iso-loss (or iso-cost) curve otherwise, and a grid
argmin on a :func:`scalesim.simulate` sweep.

References
----------
.. [1] Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", arXiv:2203.15556,
   Eq. 4 (compute-optimal allocation).
.. [2] Sardana, Portes, Doubov, Frankle 2024, "Beyond Chinchilla-Optimal: Accounting for
   Inference in Language Model Scaling Laws", arXiv:2401.00448 (lifetime cost with inference).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from scalesim import laws as scaling
from scalesim import variables
from scalesim.models import flops as flop_models
from scalesim.models import hardware as hw_model
from scalesim.models.scaling_laws import golden_section_minimize
from scalesim.chain.simulation import _as_input, simulate
from scalesim.units import H_PER_DAY, S_PER_H

OBJECTIVES = ("co2e_t", "total_co2e_t", "energy_kwh", "flop", "water_l")
_OUT_VARS = ("flop", "mfu", "chip_hours", "wall_days", "energy_kwh", "co2e_t", "embodied_co2e_t",
             "total_co2e_t", "water_l")
#: Serving defaults when ``inference_mfu`` is not given: the default utilisation model at one
#: 8-accelerator server (an assumption recorded in attrs; decode is often memory-bound and lower).
INFERENCE_N_CHIPS_DEFAULT = 8


def _law_fns(law, unique_tokens):
    """(loss(N, D), tokens_for_loss(N, L) or None, N_min(L) or None) for a law."""
    lw = scaling.get_law(law)
    p = dict(lw.params)

    def loss(n, d):
        return scaling.loss(n, d, law=law, unique_tokens=unique_tokens)

    if lw.form == "chinchilla" and unique_tokens is None:
        from scalesim.models.scaling_laws import min_params_for_loss, tokens_for_loss

        return lw, loss, (lambda n, target: tokens_for_loss(n, target, **p)), (lambda target: min_params_for_loss(target, **p))
    return lw, loss, None, None


def _tokens_by_bisection(loss, n, target, *, lo=1.0, hi=1e20, n_iter=200):
    """D with loss(N, D) = target by bisection in log D (loss decreases in D); inf if unreachable.

    ``target`` is a DataArray (optimize's goal input), so every intermediate keeps its dims.
    """
    left = xr.zeros_like(n * target) + np.log(lo)
    right = left * 0 + np.log(hi)
    for _ in range(n_iter):
        mid = 0.5 * (left + right)
        above = loss(n, np.exp(mid)) > target  # still too lossy: need more tokens
        left = left + (mid - left) * above
        right = right + (mid - right) * np.logical_not(above)
    d = np.exp(right)
    return xr.where(loss(n, d) <= target * (1 + 1e-9), d, np.inf)


def optimize(*, target_loss=None, carbon_budget_t=None, flop_budget=None, law="besiroglu2024",
             objective="co2e_t", hardware=None, n_chips=None, mfu=None, region=None, grid_gco2e_per_kwh=None,
             inference_tokens=0.0, inference_hardware=None, inference_region=None, inference_grid_gco2e_per_kwh=None,
             inference_mfu=None, max_wall_days=None, max_n_chips=None, n_params_bounds=None,
             n_tokens_bounds=None, unique_tokens=None, method="auto", n_iter=60, **simulate_kwargs):
    """Find the configuration that minimises an objective for a goal, per combination of inputs.

    Parameters
    ----------
    target_loss : float or sequence, optional
        Goal: reach this loss [nats/token] at least cost (sequence -> a ``target_loss`` dim).
    carbon_budget_t : float or sequence, optional
        Goal: best loss with ``objective`` (lifetime, in its units) within this budget.
    flop_budget : float or sequence, optional
        Goal: best loss with training + inference FLOPs within this budget [FLOP].
    law : str
        Scaling law (see :data:`scalesim.laws.LAWS`).
    objective : {'co2e_t', 'total_co2e_t', 'energy_kwh', 'flop', 'water_l'}
        Quantity minimised (target goal) or budgeted (carbon_budget_t); training plus inference.
    hardware, n_chips, mfu, region, grid_gco2e_per_kwh, **simulate_kwargs
        As in :func:`scalesim.simulate`; lists become dimensions of the result.
    inference_tokens : float
        Lifetime tokens served [-]; each costs 2N FLOPs (Kaplan 2020 Table 1 forward pass) on
        the serving hardware/region (default: the training ones).
    inference_mfu : float, optional
        Serving utilisation [-]; default: the 'epoch' model (MFU while running) at 8 accelerators.
    max_wall_days : float, optional
        Wall-time limit [day]. With ``n_chips`` given, violating configurations are infeasible;
        without it, the smallest chip count meeting the limit is chosen (<= ``max_n_chips``).
    n_params_bounds, n_tokens_bounds : (float, float), optional
        Bounds on N and D [-].
    unique_tokens : float, optional
        Unique data available [token] (needs the data-constrained law ``muennighoff2023``).
    method : {'auto', 'closed', 'numeric'}
        'auto' uses the closed form where emissions are proportional to FLOPs.
    n_iter : int
        Golden-section iterations; 60 shrink a 14-decade bracket in log N to 1e-11 of its width.

    Returns
    -------
    xarray.Dataset
        ``n_params``, ``n_tokens``, ``loss`` and the simulate outputs at the optimum, the
        inference and lifetime totals, ``objective``, ``feasible``, and the compute-optimal
        ``n_params_compute_optimal``/``n_tokens_compute_optimal`` for comparison.
    """
    goals = {k: v for k, v in dict(target_loss=target_loss, carbon_budget_t=carbon_budget_t, flop_budget=flop_budget).items() if v is not None}
    if len(goals) != 1:
        raise ValueError(f"give exactly one goal of target_loss, carbon_budget_t, flop_budget; got {sorted(goals) or 'none'}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if method not in ("auto", "closed", "numeric"):
        raise ValueError(f"method must be 'auto', 'closed' or 'numeric', got {method!r}")
    if unique_tokens is not None and scaling.get_law(law).form != "muennighoff":
        raise ValueError(f"unique_tokens needs the data-constrained law 'muennighoff2023', got law={law!r}")
    epoch_mfu = isinstance(mfu, str) and mfu == "epoch"  # the one utilisation model that depends on n_chips
    if epoch_mfu and n_chips is None and max_wall_days is None:
        raise ValueError("mfu='epoch' needs n_chips (or max_wall_days to choose n_chips)")
    if inference_tokens is None or np.any(np.asarray(inference_tokens) < 0):
        raise ValueError(f"inference_tokens must be >= 0, got {inference_tokens!r}")
    lw, loss_fn, d_of_n, n_min_of = _law_fns(law, unique_tokens)
    if max_wall_days is not None:
        max_wall_days = _as_input("max_wall_days", max_wall_days)
        if float(max_wall_days.min()) <= 0:
            raise ValueError(f"max_wall_days must be > 0, got {float(max_wall_days.min()):g}")
    (goal, goal_value), = goals.items()
    G = _as_input(goal, goal_value)
    if goal == "target_loss":
        e = lw.params.get("e")
        if e is not None and float(G.min()) <= e:
            raise ValueError(f"target_loss must be above the irreducible loss E = {e:g} of law {law!r}, got {float(G.min()):g}")
    elif float(G.min()) <= 0:
        raise ValueError(f"{goal} must be > 0, got {float(G.min()):g}")
    n_lo, n_hi = n_params_bounds or (1e6, 1e14)
    d_lo, d_hi = n_tokens_bounds or (1e6, 1e16)
    if not (0 < n_lo < n_hi and 0 < d_lo < d_hi):
        raise ValueError(f"bounds must be (low, high) with 0 < low < high, got n_params_bounds={n_params_bounds}, n_tokens_bounds={n_tokens_bounds}")

    sim_kw = dict(hardware=hardware, mfu=mfu, region=region, grid_gco2e_per_kwh=grid_gco2e_per_kwh, **simulate_kwargs)
    inf_kw = dict(hardware=inference_hardware or hardware,
                  region=inference_region if inference_region is not None else (None if inference_grid_gco2e_per_kwh is not None else region),
                  grid_gco2e_per_kwh=inference_grid_gco2e_per_kwh if inference_grid_gco2e_per_kwh is not None else (None if inference_region is not None else grid_gco2e_per_kwh),
                  pue=simulate_kwargs.get("pue"))
    inf_mfu = inference_mfu if inference_mfu is not None else float(hw_model.mfu_default_epoch(INFERENCE_N_CHIPS_DEFAULT))
    d_inf = _as_input("inference_tokens", inference_tokens)
    chosen = {}

    probe = {}

    def chips_for(flop_train):
        """Smallest chip count meeting max_wall_days: n x mfu(n) >= C / (T_max x peak x goodput).

        Utilisation that does not depend on n (a given mfu, the default 'hierarchical' model)
        gives n = ceil(C / (T_max x achieved FLOP/s per chip)). The 'epoch' MFU falls slowly with
        n, so n x mfu(n) increases; solved by bisection on log n in plain numpy (no closed form).
        """
        seconds = max_wall_days * H_PER_DAY * S_PER_H
        if not epoch_mfu:
            if "achieved" not in probe:  # achieved FLOP/s per chip with the utilisation model, on its dims
                probe["achieved"] = 1e20 / (simulate(flop=1e20, n_chips=1, **sim_kw).chip_hours * S_PER_H)
            n = np.ceil(flop_train / seconds / probe["achieved"] - 1e-9)
        else:
            if "peak" not in probe:  # effective peak FLOP/s per chip incl. goodput, on hardware dims
                probe["peak"] = 1e20 / (simulate(flop=1e20, n_chips=1, **{**sim_kw, "mfu": 1.0}).chip_hours * S_PER_H)
            need = flop_train / seconds / probe["peak"]
            vals = np.asarray(need.values, dtype=float)
            lo, hi = np.zeros_like(vals), np.full_like(vals, np.log(max_n_chips or 1e7))
            for _ in range(50):
                mid = 0.5 * (lo + hi)
                ok = np.exp(mid) * hw_model.mfu_default_epoch(np.exp(mid)) >= vals
                hi = np.where(ok, mid, hi)
                lo = np.where(ok, lo, mid)
            n = need.copy(data=np.ceil(np.exp(hi) - 1e-9))
        chosen["n_chips"] = n
        return n

    def evaluate(n, d):
        """Training and serving results at (N, D): (training Dataset, serving Dataset or None, serving FLOPs)."""
        choose = max_wall_days is not None and n_chips is None
        nc = chips_for(flop_models.training_flop_6nd(n, d)) if choose else n_chips
        tr = simulate(n_params=n, n_tokens=d, n_chips=nc, **sim_kw)
        inf_flop = flop_models.inference_flop_per_token(n) * d_inf
        if not np.any(np.asarray(d_inf) > 0):
            return tr, None, inf_flop
        inf = simulate(flop=xr.where(inf_flop > 0, inf_flop, 1.0), mfu=inf_mfu, **inf_kw)
        return tr, inf * (inf_flop > 0), inf_flop  # zero where nothing is served

    def spend(quantity, tr, inf, inf_flop):
        """Training + serving amount of ``quantity`` (an objective name)."""
        if quantity == "flop":
            return tr["flop"] + inf_flop
        return tr[quantity] + (inf[quantity] if inf is not None else 0.0)

    closed_ok = (lw.form == "chinchilla" and unique_tokens is None and float(np.max(np.asarray(inference_tokens))) == 0
                 and max_wall_days is None and "start_hour" not in simulate_kwargs)
    if method == "closed" and not closed_ok:
        raise ValueError("method='closed' needs a Chinchilla-form law, no inference_tokens, no max_wall_days, "
                         "no unique_tokens and no start_hour (emissions proportional to FLOPs)")
    use_closed = closed_ok and method != "numeric"

    if goal == "target_loss":
        if d_of_n is not None:
            tokens = lambda n: d_of_n(n, G)  # noqa: E731
            n_min = n_min_of(G)
        else:
            tokens = lambda n: _tokens_by_bisection(loss_fn, n, G)  # noqa: E731
            n_min = xr.zeros_like(G) + n_lo
        if use_closed:
            c = scaling.min_flop(G, law=law)
            alloc = scaling.compute_optimal(c, law=law)
            n_opt, d_opt = alloc.n_params, alloc.n_tokens
        else:
            lo = np.maximum(n_min * (1 + 1e-6), n_lo)
            hi = np.minimum(np.maximum(n_min * 1e6, lo * 10), n_hi)
            safe_tokens = lambda n: np.minimum(tokens(n), 1e30)  # noqa: E731
            n_opt, _ = golden_section_minimize(lambda n: spend(objective, *evaluate(n, safe_tokens(n))), lo, hi,
                                               n_iter=n_iter, log_space=True)
            d_opt = tokens(n_opt)
    else:
        budget = G
        budgeted = "flop" if goal == "flop_budget" else objective
        if use_closed:
            # the budgeted quantity is proportional to FLOPs: convert the budget to FLOPs (per_flop = 1 for FLOPs)
            per_flop = spend(budgeted, *evaluate(xr.ones_like(budget) * 1e9, xr.ones_like(budget) * 1e9)) / 6e18
            alloc = scaling.compute_optimal(budget / per_flop, law=law)
            n_opt, d_opt = alloc.n_params, alloc.n_tokens
        else:
            def d_max(n):
                # every training output is proportional to D at fixed N (MFU does not depend on D)
                tr, inf, inf_flop = evaluate(n, xr.ones_like(n * budget))
                serving = spend(budgeted, tr, inf, inf_flop) - tr[budgeted]
                return (budget - serving) / tr[budgeted]

            def loss_within_budget(n):
                d = d_max(n)
                return xr.where(d > 0, loss_fn(n, np.maximum(d, 1.0)), np.inf)
            n_opt, _ = golden_section_minimize(loss_within_budget, xr.zeros_like(budget) + n_lo,
                                               xr.zeros_like(budget) + n_hi, n_iter=n_iter, log_space=True)
            d_opt = d_max(n_opt)

    n_opt = n_opt if isinstance(n_opt, xr.DataArray) else xr.DataArray(n_opt)
    d_opt = d_opt if isinstance(d_opt, xr.DataArray) else xr.DataArray(d_opt)
    feasible = np.isfinite(d_opt) & (d_opt > 0) & (n_opt >= n_lo * (1 - 1e-9)) & (n_opt <= n_hi * (1 + 1e-9)) \
        & (d_opt >= d_lo * (1 - 1e-9)) & (d_opt <= d_hi * (1 + 1e-9))
    n_eval = xr.where(feasible, n_opt, 1e9)
    d_eval = xr.where(feasible, d_opt, 1e10)
    tr, inf, inf_flop = evaluate(n_eval, d_eval)
    cost = spend(objective, tr, inf, inf_flop)
    if max_wall_days is not None:
        feasible = feasible & (tr["wall_days"] <= max_wall_days * (1 + 1e-9))
        if max_n_chips is not None and n_chips is None:
            feasible = feasible & (chosen["n_chips"] <= max_n_chips)
    if goal == "carbon_budget_t":
        feasible = feasible & (cost <= budget * (1 + 1e-6))
    if not bool(feasible.any()):
        raise ValueError(f"no feasible configuration for {goal}={goal_value!r} within n_params_bounds=({n_lo:g}, {n_hi:g}), "
                         f"n_tokens_bounds=({d_lo:g}, {d_hi:g})" + (f", max_wall_days={max_wall_days}" if max_wall_days else ""))

    out = xr.Dataset()
    n_opt, d_opt, loss_opt, _ = xr.broadcast(n_opt, d_opt, loss_fn(n_eval, d_eval), cost)
    out["n_params"] = n_opt
    out["n_tokens"] = d_opt
    out["loss"] = loss_opt
    for v in _OUT_VARS:
        if v in tr:
            out[v] = tr[v]
    if max_wall_days is not None and n_chips is None:
        out["n_chips"] = chosen["n_chips"]
    if inf is not None:
        out["inference_flop"] = inf_flop
        for v in ("energy_kwh", "co2e_t", "total_co2e_t", "water_l"):
            out[f"inference_{v}"] = inf[v]
            out[f"lifetime_{v}"] = tr[v] + inf[v]
    out["objective"] = cost
    if lw.form == "chinchilla" and goal == "target_loss":
        ref = scaling.compute_optimal(scaling.min_flop(G, law=law), law=law)
        out["n_params_compute_optimal"], out["n_tokens_compute_optimal"] = ref.n_params, ref.n_tokens
    out = out.where(feasible)
    out["feasible"] = feasible
    out = _attach(out, objective, law, goal, use_closed)
    out.attrs.update(tr.attrs)
    out.attrs.update(goal=goal, objective=objective, law=law, method="closed form" if use_closed else "golden-section along the iso-loss/iso-cost curve",
                     inference_tokens=json.dumps(np.asarray(inference_tokens).tolist()),
                     inference_mfu=inf_mfu, inference_mfu_source=("given" if inference_mfu is not None else
                                                                   f"default utilisation model at {INFERENCE_N_CHIPS_DEFAULT} accelerators (assumption)"))
    return out


def _attach(ds, objective, law, goal, closed):
    ds = variables.attach(ds, models={"loss": law})
    for name in list(ds.data_vars):
        base = name.removeprefix("inference_").removeprefix("lifetime_")
        if name.endswith("_compute_optimal"):
            ds[name].attrs.update(units="1", long_name=name.replace("_", " "), description="Hoffmann Eq. 4 compute-optimal allocation for the same target loss.")
        elif base in variables.VARIABLES and name != base:
            units, long_name, description = variables.VARIABLES[base]
            kind = "serving" if name.startswith("inference_") else "training + serving"
            ds[name].attrs.update(units=units, long_name=f"{long_name} ({kind})", description=f"{description} ({kind}).")
    ds["objective"].attrs.update(units=variables.VARIABLES[objective][0], long_name=f"objective: {objective} (training + serving)",
                                 description=f"Minimised quantity for goal {goal}.")
    ds["n_params"].attrs.update(units="1", long_name="parameters at the optimum", description="Optimal parameter count.")
    ds["n_tokens"].attrs.update(units="1", long_name="training tokens at the optimum", description="Optimal training tokens.")
    if "inference_flop" in ds:
        ds["inference_flop"].attrs.update(units="FLOP", long_name="serving compute", description="2N FLOPs per served token.")
    if "n_chips" in ds.data_vars:
        ds["n_chips"].attrs.update(units="1", long_name="accelerators", description="Smallest chip count meeting max_wall_days.")
    return ds


def grid_optimum(ds, objective="co2e_t", *, over=("n_params", "n_tokens"), target_loss=None, max_loss=None,
                 chunk=None, **constraints):
    """Argmin of ``objective`` over dims ``over`` inside a simulate result, reduced chunk by chunk.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`scalesim.simulate` result (with ``loss`` when ``target_loss`` is given).
    objective : str
        Variable to minimise.
    over : sequence of str
        Dimensions searched; the others are kept.
    target_loss : float, optional
        Only cells with ``loss <= target_loss`` are admissible (reach the target).
    chunk : int, optional
        Process the first kept dimension in slices of this size so the stacked grid of one slice
        only is in memory.
    **constraints
        ``<variable>_max=value`` (e.g. ``wall_days_max=30``) limits.

    Returns
    -------
    xarray.Dataset
        For each kept coordinate: the coordinates of the optimum (``<dim>_opt``), every variable
        there, and ``feasible``.
    """
    if objective not in ds:
        raise ValueError(f"objective {objective!r} is not a variable of the dataset; have {sorted(ds.data_vars)}")
    over = [over] if isinstance(over, str) else list(over)
    missing = [d for d in over if d not in ds.dims]
    if missing:
        raise ValueError(f"over names dimensions {missing} not in the dataset dims {list(ds.dims)}")
    if target_loss is not None and "loss" not in ds:
        raise ValueError("target_loss needs a 'loss' variable: run simulate(..., law='besiroglu2024')")
    keep = [d for d in ds[objective].dims if d not in over]

    def one(part):
        obj = part[objective]
        mask = xr.ones_like(obj, dtype=bool)
        if target_loss is not None:
            mask = mask & (part["loss"] <= target_loss)
        for key, limit in constraints.items():
            if not key.endswith("_max") or key[:-4] not in part:
                raise ValueError(f"constraint {key!r} must be '<variable>_max' for a variable of the dataset")
            mask = mask & (part[key[:-4]] <= limit)
        masked = obj.where(mask)
        stacked = masked.stack(_cell=over)
        feasible = stacked.notnull().any("_cell")
        idx = stacked.fillna(np.inf).argmin("_cell")
        cells = stacked["_cell"].isel(_cell=idx)
        res = part.isel({d: _index_of(part, d, cells[d]) for d in over})
        for d in over:
            res[f"{d}_opt"] = xr.where(feasible, res[d], np.nan) if d in res.coords else cells[d]
        res = res.drop_vars([c for c in over if c in res.coords], errors="ignore")
        res = res.where(feasible)
        res["feasible"] = feasible
        return res

    if chunk and keep:
        dim = keep[0]
        parts = [one(ds.isel({dim: slice(i, i + chunk)})) for i in range(0, ds.sizes[dim], chunk)]
        out = xr.concat(parts, dim=dim)
    else:
        out = one(ds)
    out.attrs.update(ds.attrs)
    out.attrs["grid_optimum"] = json.dumps({"objective": objective, "over": over, "target_loss": target_loss, **constraints})
    return out


def _index_of(ds, dim, labels):
    index = ds.indexes[dim]
    return xr.DataArray(index.get_indexer(np.asarray(labels).ravel()).reshape(np.shape(labels)), dims=labels.dims, coords=labels.coords).drop_vars(list(labels.coords), errors="ignore")


def bench_optimize():
    """10^5 optimisations vectorised vs the same one by one with scipy (ratio printed)."""
    import time

    from scipy.optimize import minimize_scalar

    from scalesim import catalog

    regions = catalog.region_ids("country")[:100]
    hws = ["A100-SXM4-80GB", "H100-SXM5-80GB", "TPUv4", "TPUv5p", "B200", "V100-SXM2-32GB", "MI300X", "H200-SXM-141GB", "TPUv6e", "Gaudi3"]
    targets = np.linspace(2.05, 2.5, 100)
    n_total = len(regions) * len(hws) * len(targets)
    kw = dict(hardware=hws, region=regions, n_chips=1024, inference_tokens=1e12, law="besiroglu2024")
    t0 = time.perf_counter()
    ds = optimize(target_loss=targets, **kw)
    t_vec = time.perf_counter() - t0
    lw = scaling.get_law("besiroglu2024")
    from scalesim.models.scaling_laws import min_params_for_loss, tokens_for_loss

    sample = 100
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(sample):
        h, r, t = str(rng.choice(hws)), str(rng.choice(regions)), float(rng.choice(targets))
        nmin = float(min_params_for_loss(t, **lw.params))

        def f(logn):
            n = np.exp(logn)
            d = float(tokens_for_loss(n, t, **lw.params))
            tr = simulate(n_params=n, n_tokens=min(d, 1e30), hardware=h, region=r, n_chips=1024)
            inf = simulate(flop=2 * n * 1e12, hardware=h, region=r, mfu=float(hw_model.mfu_default_epoch(8)))
            return float(tr.co2e_t + inf.co2e_t)

        minimize_scalar(f, bounds=(np.log(nmin * (1 + 1e-6)), np.log(nmin * 1e6)), method="bounded")
    t_loop = (time.perf_counter() - t0) / sample * n_total
    print(f"optimize: {n_total:.1e} optimisations ({len(targets)} targets x {len(hws)} hardware x {len(regions)} regions), inference-aware")
    print(f"  vectorised optimize {t_vec:8.2f} s")
    print(f"  scipy loop          {t_loop:8.0f} s (extrapolated from {sample} minimize_scalar calls)")
    print(f"  ratio: {t_loop / t_vec:.0f}x; feasible {int(ds.feasible.sum())}/{n_total}")
