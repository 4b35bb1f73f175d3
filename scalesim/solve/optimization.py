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

from scalesim import inputs, laws, steps, variables
from scalesim.chain import simulation
from scalesim.chain.simulation import _as_input, simulate
from scalesim.models import flops as flop_models
from scalesim.models import hardware as hw_model
from scalesim.models.scaling_laws import golden_section_minimize
from scalesim.solve import chunked_argmin
from scalesim.solve import risk as risk_model
from scalesim.solve.serving_cost import RooflineServing
from scalesim.units import H_PER_DAY

OBJECTIVES = ("co2e_t", "total_co2e_t", "energy_kwh", "flop", "water_l", "co2e_market_t")
_OUT_VARS = ("flop", "mfu", "chip_hours", "wall_days", "energy_kwh", "co2e_t", "embodied_co2e_t",
             "total_co2e_t", "water_l", "schedule_saving")
#: Serving defaults when ``inference_mfu`` is not given: the default utilisation model at one
#: 8-accelerator server (an assumption recorded in attrs; decode is often memory-bound and lower).
INFERENCE_N_CHIPS_DEFAULT = 8


def _law_fns(law, unique_tokens):
    """(loss(N, D), tokens_for_loss(N, L) or None, N_min(L) or None) for a law."""
    lw = laws.get_law(law)
    p = dict(lw.params)

    def loss(n, d):
        return laws.loss(n, d, law=law, unique_tokens=unique_tokens)

    if lw.form == "chinchilla" and unique_tokens is None:
        from scalesim.models.scaling_laws import min_params_for_loss, tokens_for_loss

        return lw, loss, (lambda n, target: tokens_for_loss(n, target, **p)), (lambda target: min_params_for_loss(target, **p))
    return lw, loss, None, None


def _golden_section_reusing(f, lo, hi, *, n_iter):
    """Minimiser of a unimodal ``f`` on [lo, hi] over log x: golden section with one new evaluation per step.

    As :func:`scalesim.models.scaling_laws.golden_section_minimize` (``log_space=True``), whose
    bracket update is arithmetic so that both interior points are evaluated every iteration, but
    keeping the interior point that stays in the new bracket and its value (Kiefer 1953; Press et
    al., Numerical Recipes 3rd ed., Sec. 10.2): n_iter + 1 evaluations of ``f`` instead of
    2 n_iter. The bracket shrinks by the same 1/phi per iteration, so the answer agrees with
    golden_section_minimize's to the precision at which values of ``f`` can be told apart
    (about sqrt(machine epsilon) relative in x near a smooth minimum). Elementwise on DataArrays.
    """
    inv_phi = (np.sqrt(5.0) - 1.0) / 2.0
    left, right = np.log(lo) * 1.0, np.log(hi) * 1.0
    c, d = right - inv_phi * (right - left), left + inv_phi * (right - left)
    fc, fd = f(np.exp(c)), f(np.exp(d))
    for i in range(n_iter):
        go_left = fc < fd  # the minimum lies in [left, d]: d becomes the right end, c the new d
        left, right = xr.where(go_left, left, c), xr.where(go_left, d, right)
        if i == n_iter - 1:
            break
        new = xr.where(go_left, right - inv_phi * (right - left), left + inv_phi * (right - left))
        f_new = f(np.exp(new))
        c, fc, d, fd = (xr.where(go_left, new, d), xr.where(go_left, f_new, fd),
                        xr.where(go_left, c, new), xr.where(go_left, fc, f_new))
    return np.exp(0.5 * (left + right))


def _bracket_by_scan(f, lo, hi, k):
    """The cell around the best of ``k`` log-spaced evaluations of ``f`` on [lo, hi] (elementwise on DataArrays).

    The emission objective is not unimodal in N: the structural utilisation switches parallel
    plans and integer architectures, so it is a sawtooth of a few per cent (a 4.1B-parameter model
    on 1024 H100 costs 1.4 % less than a 4.2B one). A scan finds the tooth, the golden section
    then its lowest point; k evaluations are one vectorised call on a ``_scan`` dimension.
    """
    u = xr.DataArray(np.linspace(0.0, 1.0, k), dims="_scan")
    x = np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u)
    v = f(x)
    i = xr.where(np.isfinite(v), v, np.inf).argmin("_scan")
    return x.isel(_scan=np.maximum(i - 1, 0)), x.isel(_scan=np.minimum(i + 1, k - 1))


def _best_side(f, x, lo, hi, rel=1e-7):
    """The better of x and x (1 -+ rel) inside [lo, hi]: the sawtooth's lowest point is the edge of a
    jump, which the golden section's final bracket straddles, so its midpoint may sit on the high side."""
    c = np.minimum(np.maximum(x * np.exp(xr.DataArray([-rel, 0.0, rel], dims="_side")), lo), hi)
    v = f(c)
    return c.isel(_side=xr.where(np.isfinite(v), v, np.inf).argmin("_side"))


#: Evaluations of the coarse and the fine scan before the golden section of :meth:`Goal._target`. The
#: coarse scan spans six decades of N (cells 1.56x wide), the fine one two of its cells (2.4x) in steps of
#: 1.9 %, below the 5-10 % width of the sawtooth's teeth (with 24 points, 3.9 % steps, it could settle in
#: the neighbouring tooth: tests/test_optimize.py, the 1e14-token brute-force case).
SCAN_POINTS = (32, 48)


def _unchecked_loss(lw, unique_tokens):
    """loss(N, D) of law ``lw`` on numpy arrays without the per-call input checks of :func:`scalesim.laws.loss`.

    The same arithmetic (the models' own kernels), for the inner loops of the bisections below,
    which call it 64 times on points they build themselves (D = exp(mid) > 0) from validated N;
    the checks were 75 % of those loops' time. Each bisection's last call is the checked one.
    """
    from scalesim.models import scaling_laws as m

    if lw.form == "kaplan":
        return lambda n, d: m._loss_kaplan(n, d, **lw.params)
    if unique_tokens is None:
        p = lw.chinchilla_params
        return lambda n, d: p["e"] + p["a"] * m._float(n) ** -p["alpha"] + p["b"] * m._float(d) ** -p["beta"]
    u = np.asarray(getattr(unique_tokens, "values", unique_tokens), dtype=float)
    return lambda n, d: m._loss_muennighoff(n, d, u, **lw.params)


def _tokens_by_bisection(loss, n, target, *, lo=1.0, hi=1e20, n_iter=64, kernel=None):
    """D with loss(N, D) = target by bisection in log D (loss decreases in D); inf if unreachable.

    ``target`` is a DataArray (optimize's goal input): the answer has the dims of ``n * target``.
    The iterations run on the broadcast numpy arrays (the same arithmetic, so the same numbers as
    on DataArrays): one xarray alignment per call instead of one per operation, which made this
    bisection 95 % of a kaplan2020 or muennighoff2023 solve (64 iterations x ~120 evaluations).
    ``kernel`` (:func:`_unchecked_loss`) replaces ``loss`` inside the loop.
    """
    step = loss if kernel is None else kernel
    template = xr.zeros_like(n * target)
    nn, tt = (template + n).values, (template + target).values
    left = np.zeros(template.shape) + np.log(lo)
    right = left * 0 + np.log(hi)
    for _ in range(n_iter):
        mid = 0.5 * (left + right)
        above = np.asarray(step(nn, np.exp(mid))) > tt  # still too lossy: need more tokens
        left = left + (mid - left) * above
        right = right + (mid - right) * np.logical_not(above)
    d = np.exp(right)
    return template.copy(data=np.where(np.asarray(loss(nn, d)) <= tt * (1 + 1e-9), d, np.inf))


def optimize(*, target_loss=None, carbon_budget_t=None, flop_budget=None, law="besiroglu2024",
             objective="co2e_t", hardware=None, n_chips=None, mfu=None, region=None, grid_gco2e_per_kwh=None,
             inference_tokens=0.0, inference_hardware=None, inference_region=None, inference_grid_gco2e_per_kwh=None,
             inference_mfu=None, inference_batch_size=None, max_wall_days=None, max_n_chips=None, n_params_bounds=None,
             n_tokens_bounds=None, unique_tokens=None, method="auto", risk=None, inference_dtype=None, strategy="direct",
             distill_tokens=None, distill_benefit=None, prune_fraction=None, recovery_tokens=None, teacher=None,
             n_iter=60, **simulate_kwargs):
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
    objective : {'co2e_t', 'total_co2e_t', 'energy_kwh', 'flop', 'water_l', 'co2e_market_t'}
        Quantity minimised (target goal) or budgeted (carbon_budget_t); training plus inference.
        ``'co2e_market_t'``: market-based operational emissions (``cfe_fraction``, residual mix;
        :mod:`scalesim.chain.clean_supply`), training and serving under the same contracts.
    hardware, n_chips, mfu, region, grid_gco2e_per_kwh, **simulate_kwargs
        As in :func:`scalesim.simulate`; lists become dimensions of the result.
    inference_tokens : float
        Lifetime tokens served [-]; each costs 2N FLOPs (Kaplan 2020 Table 1 forward pass) on
        the serving hardware/region (default: the training ones).
    inference_batch_size : int, optional
        Concurrent sequences per serving replica for the roofline serving cost (default 256,
        vLLM's ``max_num_seqs``; the KV cache may cap it). See :mod:`scalesim.solve.serving_cost`.
    inference_mfu : float, optional
        Serving utilisation [-]: cost serving as 2N FLOPs per token at this MFU (8 accelerators).
        Default: the roofline model of :func:`scalesim.serve` (memory-bound decode, batching, the
        replica size with least energy per token, idle fleet capacity), with the same ``defaults``,
        ``dtype`` and water/embodied settings as training; only hardware, region and grid may differ.
    max_wall_days : float, optional
        Wall-time limit [day]. With ``n_chips`` given, violating configurations are infeasible;
        without it, the smallest chip count meeting the limit is chosen (<= ``max_n_chips``) by
        inverting the utilisation step (whichever ``mfu`` is: number, name or callable).
    n_params_bounds, n_tokens_bounds : (float, float), optional
        Bounds on N and D [-].
    unique_tokens : float, optional
        Unique data available [token] (needs the data-constrained law ``muennighoff2023``).
    method : {'auto', 'closed', 'numeric'}
        'auto' uses the closed form where emissions are proportional to FLOPs.
    risk : {'mean', 'p1'...'p99'} or float in (0, 1), optional
        With ``samples``: minimise the mean or this quantile of the objective over the Monte Carlo
        draws (one (N, D) for all draws) instead of optimising each draw; adds ``objective_risk`` and,
        per discrete choice given as a list (region, hardware, ...), ``best_<dim>`` and
        ``prob_best_<dim>`` (the share of paired draws in which it is best). See
        :mod:`scalesim.solve.risk`. Needs the goal ``target_loss``.
    inference_dtype : {'bf16', 'fp16', 'fp8', 'int8', 'int4'}, optional
        Serving weight dtype: the roofline serving cost uses it and the trained model must reach
        ``target_loss`` minus its published quality penalty [nats/token] (adds ``quantisation_penalty``
        and ``served_loss``). Default: serving in the training dtype, no penalty.
    strategy : {'direct', 'distill', 'prune'}
        'distill': train a teacher, label ``distill_tokens`` with it, serve a student; 'prune': train
        a parent, prune to ``prune_fraction``, recover with ``recovery_tokens``, serve it. Both add
        the teacher/parent, every cost component and ``direct_lifetime_co2e_t``
        (:mod:`scalesim.solve.strategies`).
    distill_tokens, distill_benefit : float, optional
        Tokens the teacher labels (default: chosen) and distillation's effective-token multiplier
        (default 1, no gain; Busbridge et al. 2025).
    prune_fraction, recovery_tokens : float, optional
        Kept share of parameters (default 8/15) and recovery tokens (default 94e9; Minitron).
    teacher : {'train', 'existing'}, optional
        Whether the teacher's (parent's) training is charged (default 'train').
    n_iter : int
        Golden-section iterations; 60 shrink a 14-decade bracket in log N to 1e-11 of its width.

    Returns
    -------
    xarray.Dataset
        ``n_params``, ``n_tokens``, ``loss`` and the simulate outputs at the optimum, the
        inference and lifetime totals, ``objective``, ``feasible``, and the compute-optimal
        ``n_params_compute_optimal``/``n_tokens_compute_optimal`` for comparison.
    """
    given = {k: v for k, v in dict(locals()).items() if k not in ("simulate_kwargs", "n_iter")}
    given.update(simulate_kwargs)
    unknown = sorted(set(simulate_kwargs) - (set(inputs.SIMULATE) - set(inputs.SIMULATE_ONLY)))
    if unknown:
        raise ValueError(f"unknown optimize input(s) {unknown}; allowed: {sorted(inputs.optimize_inputs())}")
    _check_inputs(given, n_iter)
    goal = Goal.from_inputs(given)
    cost = LifetimeCost(given)
    from scalesim.solve import strategies  # compression levers (imports this module)

    if strategies.in_use(given):
        if goal.risk is not None:
            raise ValueError(f"risk={risk!r} does not combine with a compression strategy or inference_dtype: "
                             f"optimize the strategy without risk, or risk with strategy='direct'")
        return strategies.optimize(goal, cost, given, method=method, n_iter=n_iter)
    n_opt, d_opt, use_closed = goal.solve(cost, method=method, n_iter=n_iter)
    out = report(goal, cost, n_opt, d_opt, use_closed)
    if goal.risk is not None:
        out = risk_model.choice_confidence(out, goal.risk)
        out.attrs["risk"] = goal.risk.label
    return out


def _check_inputs(given, n_iter):
    """Every optimize input against its table row (type, single value or list, range, plausibility), by its own name."""
    chosen = [k for k in inputs.CHOSEN_BY_OPTIMIZE if k != "law" and given.get(k) is not None]
    if chosen:
        raise ValueError(f"{chosen[0]} is what optimize chooses, so it cannot be given; bound it with "
                         f"n_params_bounds/n_tokens_bounds, or evaluate a given {chosen[0]} with scalesim.simulate")
    allow = inputs.allowed_unusual(given.get("allow_unusual"))
    for name, spec in inputs.OPTIMIZE.items():
        if given.get(name) is not None and name not in ("objective", "method", "risk"):  # Goal names their choices
            inputs.check_value(spec, given[name], allow)
    if isinstance(n_iter, (bool, np.bool_)) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive whole number of golden-section iterations, got {n_iter!r}")


# ----------------------------------------------------------------------------- goals
class Goal:
    """The goal (target loss, carbon budget or FLOP budget), the law and the search bounds."""

    def __init__(self, name, value, law, objective, unique_tokens, n_bounds, d_bounds):
        self.name, self.value, self.law, self.objective = name, value, law, objective
        self.unique_tokens = unique_tokens
        self.lw, self.loss, self.d_of_n, self.n_min_of = _law_fns(law, unique_tokens)
        self.n_lo, self.n_hi = n_bounds
        self.d_lo, self.d_hi = d_bounds
        self.G = _as_input(name, value)
        self.risk = None  # a scalesim.solve.risk.Risk: minimise it over the Monte Carlo samples

    @classmethod
    def from_inputs(cls, g):
        inputs.check_rules({k: v for k, v in g.items() if v is not None}, "optimize")
        goal = next(k for k in inputs.GOALS if g.get(k) is not None)
        if g["objective"] not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {g['objective']!r}")
        if g["method"] not in ("auto", "closed", "numeric"):
            raise ValueError(f"method must be 'auto', 'closed' or 'numeric', got {g['method']!r}")
        if g["unique_tokens"] is not None and laws.get_law(g["law"]).form != "muennighoff":
            raise ValueError(f"unique_tokens needs the data-constrained law 'muennighoff2023', got law={g['law']!r}")
        n_lo, n_hi = g["n_params_bounds"] or (1e6, 1e14)
        d_lo, d_hi = g["n_tokens_bounds"] or (1e6, 1e16)
        if not (0 < n_lo < n_hi and 0 < d_lo < d_hi):
            raise ValueError(f"bounds must be (low, high) with 0 < low < high, got n_params_bounds={g['n_params_bounds']}, "
                             f"n_tokens_bounds={g['n_tokens_bounds']}")
        self = cls(goal, g[goal], g["law"], g["objective"], g["unique_tokens"], (n_lo, n_hi), (d_lo, d_hi))
        self.risk = risk_model.check(g.get("risk"), g.get("samples"), goal)
        self._check_value()
        return self

    def _check_value(self):
        lo = float(self.G.min())
        e = self.lw.params.get("e")
        if self.name == "target_loss" and e is not None and lo <= e:
            raise ValueError(f"target_loss must be above the irreducible loss E = {e:g} of law {self.law!r}, got {lo:g}")
        if lo <= 0:
            raise ValueError(f"{self.name} must be > 0, got {lo:g}")

    def closed_ok(self, cost):
        """Emissions proportional to FLOPs: a Chinchilla-form law, no serving, no deadline, no time weighting."""
        return (self.lw.form == "chinchilla" and self.unique_tokens is None and not cost.serving
                and cost.max_wall_days is None and cost.train.inputs.get("start_hour") is None
                and not cost.utilisation_varies())

    def solve(self, cost, *, method, n_iter):
        """(N, D) at the optimum and whether the closed form was used."""
        ok = self.closed_ok(cost)
        if method == "closed" and not ok:
            raise ValueError("method='closed' needs a Chinchilla-form law, no inference_tokens, no max_wall_days, "
                             "no unique_tokens and no start_hour (emissions proportional to FLOPs)")
        closed = ok and method != "numeric"
        solve = self._target if self.name == "target_loss" else self._budget
        n, d = solve(cost, closed, n_iter)
        if closed and method == "auto" and not bool(self.within_bounds(n, d).all()):
            closed = False  # the unconstrained optimum lies outside the bounds: the bounded one is on them
            n, d = solve(cost, closed, n_iter)
        as_da = lambda v: v if isinstance(v, xr.DataArray) else xr.DataArray(v)  # noqa: E731
        return as_da(n), as_da(d), closed

    def _n_min_by_bisection(self, n_iter=64):
        """Smallest N in the bounds whose loss at the largest D allowed reaches the target (laws without a
        closed form): left of it the target is unreachable, so the search starts there (else the
        golden section, seeing only unreachable cells, walks to the lower bound)."""
        template = xr.zeros_like(self.G, dtype=float)
        g = template.values + self.G.values  # on numpy: one alignment, not one per operation (see _tokens_by_bisection)
        step = _unchecked_loss(self.lw, self.unique_tokens)
        self.loss(np.exp(np.log(self.n_hi)), self.d_hi)  # the checks, once
        left = np.zeros(template.shape) + np.log(self.n_lo)
        right = left * 0 + np.log(self.n_hi)
        for _ in range(n_iter):
            mid = 0.5 * (left + right)
            short = np.asarray(step(np.exp(mid), self.d_hi)) > g  # N too small even with all the data
            left, right = np.where(short, mid, left), np.where(short, right, mid)
        return template.copy(data=np.exp(left))

    def within_bounds(self, n, d):
        """True where (N, D) is finite and inside the bounds (relative tolerance 1e-9)."""
        return (np.isfinite(d) & (d > 0) & (n >= self.n_lo * (1 - 1e-9)) & (n <= self.n_hi * (1 + 1e-9))
                & (d >= self.d_lo * (1 - 1e-9)) & (d <= self.d_hi * (1 + 1e-9)))

    def tokens(self, n):
        """D on the iso-loss curve at N (inf where the target is unreachable)."""
        if self.d_of_n is not None:
            return self.d_of_n(n, self.G)
        return _tokens_by_bisection(self.loss, n, self.G, kernel=_unchecked_loss(self.lw, self.unique_tokens))

    def _target(self, cost, closed, n_iter):
        if closed:
            alloc = laws.compute_optimal(laws.min_flop(self.G, law=self.law), law=self.law)
            return alloc.n_params, alloc.n_tokens
        n_min = self.n_min_of(self.G) if self.n_min_of is not None else self._n_min_by_bisection()
        lo = np.maximum(n_min * (1 + 1e-6), self.n_lo)
        hi = np.minimum(np.maximum(n_min * 1e6, lo * 10), self.n_hi)
        hi = xr.where(hi > lo, hi, lo * (1 + 1e-9))  # n_min beyond n_params_bounds: searched, then reported infeasible
        at_risk = self.risk.reduce if self.risk is not None else (lambda x: x)  # noqa: E731
        objective = lambda n: at_risk(cost.spend(self.objective, cost.evaluate(n, np.minimum(self.tokens(n), 1e30))))  # noqa: E731
        for k in SCAN_POINTS:  # find the tooth of the sawtooth first (see _bracket_by_scan)
            lo, hi = _bracket_by_scan(objective, lo, hi, k)
        if self.d_of_n is None:  # iso-loss D by bisection: each evaluation costs more, so evaluate once per step
            n_opt = _best_side(objective, _golden_section_reusing(objective, lo, hi, n_iter=n_iter), lo, hi)
            return n_opt, self.tokens(n_opt)
        n_opt, _ = golden_section_minimize(objective, lo, hi, n_iter=n_iter, log_space=True)
        n_opt = _best_side(objective, n_opt, lo, hi)
        return n_opt, self.tokens(n_opt)

    def _budget(self, cost, closed, n_iter):
        budgeted = "flop" if self.name == "flop_budget" else self.objective
        budget = self.G
        if closed:  # the budgeted quantity is proportional to FLOPs (per_flop = 1 for FLOPs)
            per_flop = cost.spend(budgeted, cost.evaluate(xr.ones_like(budget) * 1e9, xr.ones_like(budget) * 1e9)) / 6e18
            alloc = laws.compute_optimal(budget / per_flop, law=self.law)
            return alloc.n_params, alloc.n_tokens

        # every training output is proportional to D at fixed N and chips; where the chip count is
        # chosen per run (a deadline) it grows with D and the cost per token with it, so D is found
        # by fixed-point steps D <- D x (budget - serving) / training(D), keeping the largest D within
        # budget (spend grows with D, so that is the answer up to a jump of the chip ladder)
        steps_needed = 6 if (cost.n_chips is None and cost.max_wall_days is not None and budgeted != "flop") else 1

        def d_max(n):
            d = xr.ones_like(n * budget)
            best = d * 0.0
            for _ in range(steps_needed):
                parts = cost.evaluate(n, d)
                train = parts[0][budgeted]
                serving = cost.spend(budgeted, parts) - train
                if steps_needed == 1:
                    return (budget - serving) / train * d
                best = xr.where((train + serving <= budget * (1 + 1e-9)) & (d > best), d, best)
                d = xr.where(train > 0, d * (budget - serving) / train, d).fillna(0.0)
            parts = cost.evaluate(n, xr.where(d > 0, d, 1.0))
            ok = (d > 0) & (cost.spend(budgeted, parts) <= budget * (1 + 1e-9))
            return xr.where(ok & (d > best), d, best)

        def loss_within_budget(n):
            d = d_max(n)
            return xr.where(d > 0, self.loss(n, np.maximum(d, 1.0)), np.inf)
        n_opt, _ = golden_section_minimize(loss_within_budget, xr.zeros_like(budget) + self.n_lo,
                                           xr.zeros_like(budget) + self.n_hi, n_iter=n_iter, log_space=True)
        return n_opt, d_max(n_opt)


# ----------------------------------------------------------------------------- lifetime cost
class LifetimeCost:
    """Training plus serving cost at (N, D); factors resolved once, the search runs on plain arrays.

    Serving is built from the *same* settings as training (defaults, dtype, goodput, water and
    embodied overrides); only its hardware, region/grid and utilisation may differ.
    """

    def __init__(self, g):
        sim = {k: g.get(k) for k in inputs.SIMULATE if k not in inputs.CHOSEN_BY_OPTIMIZE}
        self.n_chips, self.max_n_chips = g.get("n_chips"), g.get("max_n_chips")
        self.max_wall_days = _as_input("max_wall_days", g["max_wall_days"]) if g.get("max_wall_days") is not None else None
        if self.max_wall_days is not None:
            inputs.check_array(inputs.OPTIMIZE["max_wall_days"], self.max_wall_days)
        self.train = simulation.prepare({**sim, "flop": 1.0, "n_chips": g.get("n_chips")}, scope=None)
        self.default_deadline = self.max_wall_days is None and simulation.chips_to_choose(self.train)
        if self.default_deadline:  # the chain's documented rule: smallest count finishing in DEFAULT_WALL_DAYS
            self.max_wall_days = xr.DataArray(simulation.DEFAULT_WALL_DAYS)
            self.train.notes.append(f"n_chips chosen as the smallest count finishing within {simulation.DEFAULT_WALL_DAYS:g} "
                                    f"days (the median duration of published runs); pass n_chips or max_wall_days")
        choose = self.n_chips is None and self.max_wall_days is not None
        self.train_f = simulation.factors(self.train, with_utilisation=not choose)
        self._check_inference(g)
        self.d_inf = _as_input("inference_tokens", g["inference_tokens"])
        self.serving = bool(np.any(np.asarray(self.d_inf) > 0))
        flops_serving = g.get("inference_mfu") is not None
        self.inference_mfu_source = "given: 2N FLOPs per token at this MFU" if flops_serving else \
            "roofline: scalesim.serve (memory-bound decode, batching, idle fleet capacity)"
        self.inference_mfu, self.roofline = g.get("inference_mfu"), None
        if self.serving:
            self.serve = simulation.prepare(self._serving_inputs(g, sim, flops_serving), scope=None)
            self.serve_f = simulation.factors(self.serve)
            if not flops_serving:
                self.roofline = RooflineServing(self.serve, self.serve_f, g.get("inference_hardware") or sim["hardware"],
                                                batch_size=g.get("inference_batch_size"), dtype=g.get("inference_dtype"))
        self.chosen = None

    @staticmethod
    def _check_inference(g):
        tokens = g.get("inference_tokens")
        if tokens is None or np.any(~np.isfinite(np.asarray(tokens, dtype=float))) or np.any(np.asarray(tokens) < 0):
            raise ValueError(f"inference_tokens must be finite and >= 0, got {tokens!r}")

    @staticmethod
    def _serving_inputs(g, sim, flops_serving):
        own_grid = g.get("inference_grid_gco2e_per_kwh")
        region = g.get("inference_region") if g.get("inference_region") is not None else (None if own_grid is not None else sim["region"])
        grid = own_grid if own_grid is not None else (None if g.get("inference_region") is not None else sim["grid_gco2e_per_kwh"])
        own = {"flop": 1.0, "mfu": g.get("inference_mfu"), "chip_hours": None} if flops_serving else \
            {"flop": None, "mfu": None, "chip_hours": 1.0}  # roofline: time comes from serve, set per N
        return {**sim, **own, "hardware": g.get("inference_hardware") or sim["hardware"], "region": region,
                "grid_gco2e_per_kwh": grid, "n_chips": INFERENCE_N_CHIPS_DEFAULT, "start_hour": None,
                # a training schedule is the training's: serving runs all year at the annual intensity
                "intensity_series": None, "start": None, "schedule": None, "slack": None}

    def evaluate(self, n, d, serving=True):
        """(training outputs, serving outputs or None, serving FLOPs) at (N, D), as dicts of DataArrays."""
        flop = flop_models.training_flop_6nd(n, d)
        nc, f = self.n_chips, self.train_f
        at = self.train.with_inputs(n_params=n, n_tokens=d)  # a utilisation step may depend on N
        if nc is None and self.max_wall_days is not None:
            nc, f = self.chips_for(flop, at)
        elif f["mfu"] is None:
            f = dict(f, mfu=simulation.utilisation(at))
        tr = simulation.outputs(self.train, f, flop=flop, n_chips=_as_input("n_chips", nc) if nc is not None else None)
        inf_flop = flop_models.inference_flop_per_token(n) * self.d_inf
        if not (self.serving and serving):  # serving=False: the training outputs only
            return tr, None, inf_flop
        if self.roofline is not None:
            return tr, self.roofline.outputs(n, self.d_inf), inf_flop
        inf = simulation.outputs(self.serve, dict(self.serve_f), flop=xr.where(inf_flop > 0, inf_flop, 1.0), n_chips=None)
        return tr, {k: v * (inf_flop > 0) for k, v in inf.items()}, inf_flop  # zero where nothing is served

    def utilisation_varies(self):
        """True when the utilisation step depends on N or the chip count (then cost is not proportional to FLOPs)."""
        mfu = self.train.inputs.get("mfu")
        step = None if isinstance(mfu, xr.DataArray) else steps.UTILISATION.step(mfu)
        return step is not None and (step.description == "user callable" or bool(set(step.needs + step.uses)))

    def chips_for(self, flop, at):
        """Smallest chip count meeting max_wall_days (:func:`scalesim.chain.simulation.choose_n_chips`)."""
        n, mfu = simulation.choose_n_chips(at, self.train_f, flop, max_wall_days=self.max_wall_days,
                                           max_n_chips=self.max_n_chips)
        self.chosen = n
        return n, dict(self.train_f, mfu=mfu)

    @staticmethod
    def spend(quantity, parts):
        """Training + serving amount of ``quantity`` (an objective name)."""
        tr, inf, inf_flop = parts
        if quantity == "flop":
            return tr["flop"] + inf_flop
        for where, out in (("training", tr), ("serving", inf)):
            if out is not None and quantity not in out:  # co2e_market_t without a residual mix
                raise ValueError(f"objective={quantity!r} is not computed for {where}: it needs "
                                 f"{simulation._NEEDS.get(quantity, '?')}")
        return tr[quantity] + (inf[quantity] if inf is not None else 0.0)


# ----------------------------------------------------------------------------- report
def report(goal, cost, n_opt, d_opt, use_closed):
    """The optimum as a labelled Dataset, infeasible cells NaN with ``feasible=False``."""
    feasible = goal.within_bounds(n_opt, d_opt)
    bounds = f"n_params_bounds=({goal.n_lo:g}, {goal.n_hi:g}), n_tokens_bounds=({goal.d_lo:g}, {goal.d_hi:g})"
    if not bool(feasible.any()):
        raise ValueError(f"no feasible configuration: {goal.name}={_plain(goal.value)} cannot be reached within {bounds}")
    n_eval, d_eval = xr.where(feasible, n_opt, 1e9), xr.where(feasible, d_opt, 1e10)
    parts = cost.evaluate(n_eval, d_eval)
    tr, inf, inf_flop = parts
    objective = cost.spend(goal.objective, parts)
    checks = []  # (mask, why) in order; the one that removes the last feasible cell is named
    if cost.max_wall_days is not None:
        chips = (f"n_chips={_plain(cost.n_chips)}" if cost.n_chips is not None else
                 f"any chip count up to max_n_chips={_plain(cost.max_n_chips)}" if cost.max_n_chips is not None
                 else "any chip count the utilisation model has a plan for")
        checks.append((tr["wall_days"] <= cost.max_wall_days * (1 + 1e-9),
                       f"training takes longer than max_wall_days={_plain(cost.max_wall_days)} with {chips}"))
        if cost.max_n_chips is not None and cost.n_chips is None:
            checks.append((cost.chosen <= cost.max_n_chips,
                           f"meeting max_wall_days needs more than max_n_chips={_plain(cost.max_n_chips)}"))
    if goal.name == "carbon_budget_t":
        checks.append((objective <= goal.G * (1 + 1e-6), f"the least {goal.objective} found exceeds "
                       f"carbon_budget_t={_plain(goal.value)}"))
    for mask, why in checks:
        narrowed = feasible & mask
        if not bool(narrowed.any()):
            raise ValueError(f"no feasible configuration for {goal.name}={_plain(goal.value)} within {bounds}: {why}")
        feasible = narrowed
    out = _optimum_variables(goal, cost, parts, n_opt, d_opt, n_eval, d_eval, objective)
    out = out.where(feasible)
    out["feasible"] = feasible
    out = _attach(out, goal.objective, goal.law, goal.name, use_closed)
    out.attrs.update(simulation.finish(cost.train, {"chip_hours": tr["chip_hours"]}, scope="optimize").attrs)
    out.attrs.update(goal=goal.name, objective=goal.objective, law=goal.law,
                     method="closed form" if use_closed else "golden-section along the iso-loss/iso-cost curve",
                     inference_tokens=json.dumps(np.asarray(cost.d_inf).tolist()),
                     inference_mfu=json.dumps(np.asarray(cost.inference_mfu).tolist() if cost.inference_mfu is not None else None),
                     inference_mfu_source=cost.inference_mfu_source)
    if cost.serving:
        out.attrs["notes"] = "; ".join(sorted(set(filter(None, out.attrs.get("notes", "").split("; ") + cost.serve.notes))))
    return out


def _plain(v):
    """A value for a one-line message (a DataArray's numbers, not its repr)."""
    arr = np.asarray(getattr(v, "values", v))
    return arr.item() if arr.ndim == 0 else arr.tolist() if arr.size <= 8 else f"[{arr.min():g} ... {arr.max():g}]"


def _optimum_variables(goal, cost, parts, n_opt, d_opt, n_eval, d_eval, objective):
    tr, inf, inf_flop = parts
    out = xr.Dataset()
    n_opt, d_opt, loss_opt, _ = xr.broadcast(n_opt, d_opt, goal.loss(n_eval, d_eval), objective)
    out["n_params"], out["n_tokens"], out["loss"] = n_opt, d_opt, loss_opt
    for v in _OUT_VARS:
        if v in tr:
            out[v] = tr[v]
    if cost.max_wall_days is not None and cost.n_chips is None:
        out["n_chips"] = cost.chosen
    if inf is not None:
        out["inference_flop"] = inf_flop
        for v in ("energy_kwh", "co2e_t", "total_co2e_t", "water_l"):
            out[f"inference_{v}"] = inf[v]
            out[f"lifetime_{v}"] = tr[v] + inf[v]
        if "inference_replica_chips" in inf:
            out["inference_replica_chips"] = inf["inference_replica_chips"]
    out["objective"] = objective
    if goal.lw.form == "chinchilla" and goal.name == "target_loss":
        ref = laws.compute_optimal(laws.min_flop(goal.G, law=goal.law), law=goal.law)
        out["n_params_compute_optimal"], out["n_tokens_compute_optimal"] = ref.n_params, ref.n_tokens
    return out.drop_vars([c for c in ("hardware_id", "region_id") if c in out.coords])


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
    if "inference_replica_chips" in ds.data_vars:
        ds["inference_replica_chips"].attrs.update(units="1", long_name="accelerators per serving replica",
                                                   description="Replica size with least energy per token (roofline serving).")
    if "n_chips" in ds.data_vars:
        ds["n_chips"].attrs.update(units="1", long_name="accelerators", description="Smallest chip count meeting max_wall_days.")
    return ds


def grid_optimum(ds, objective="co2e_t", *, over=("n_params", "n_tokens"), target_loss=None, max_loss=None,
                 chunk=None, **constraints):
    """Argmin of ``objective`` over dims ``over`` inside a simulate result, reduced chunk by chunk.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`scalesim.simulate` result (with ``loss`` when ``target_loss`` is given). A
        dask-backed result is reduced chunk by chunk in one pass on the current dask scheduler (a
        dask.distributed cluster when a client is active), the values at the optimum carried along
        with the objective (:mod:`scalesim.solve.chunked_argmin`), never materialising the grid. The
        optimum comes back in memory: it is the size of the kept dims.
    objective : str
        Variable to minimise.
    over : sequence of str
        Dimensions searched; the others are kept.
    target_loss, max_loss : float, optional
        Only cells with ``loss <= target_loss`` (and ``<= max_loss``) are admissible.
    chunk : int, optional
        Process the first kept dimension in slices of this size so the stacked grid of one slice
        only is in memory (numpy results; a dask-backed one is reduced in one pass whatever
        ``chunk`` says: slices would be graphs sharing its keys).
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
    limits = [v for v in (target_loss, max_loss) if v is not None]
    if limits and "loss" not in ds:
        raise ValueError("target_loss/max_loss need a 'loss' variable: run simulate(..., law='besiroglu2024')")
    for key in constraints:
        if not key.endswith("_max") or key[:-4] not in ds:
            raise ValueError(f"unknown keyword {key!r}: constraints are '<variable>_max' for a variable of the dataset "
                             f"({', '.join(f'{v}_max' for v in ds.data_vars)}), target_loss or max_loss")
    for key, limit in {"target_loss": target_loss, "max_loss": max_loss, **constraints}.items():
        if limit is not None and (isinstance(limit, (bool, np.bool_, str, bytes))
                                  or np.asarray(limit).dtype.kind not in "iuf" or not np.all(np.isfinite(limit))):
            raise ValueError(f"{key} must be a finite number, got {limit!r}")
    if chunk is not None and (isinstance(chunk, (bool, np.bool_)) or not isinstance(chunk, (int, np.integer)) or chunk < 1):
        raise ValueError(f"chunk must be a positive whole number of coordinates per slice, got {chunk!r}")
    keep = [d for d in ds[objective].dims if d not in over]

    def one(part):
        obj = part[objective]
        mask = xr.ones_like(obj, dtype=bool)
        for limit in limits:
            mask = mask & (part["loss"] <= limit)
        for key, limit in constraints.items():
            mask = mask & (part[key[:-4]] <= limit)
        masked = obj.where(mask)
        if masked.chunks is None:
            idx, feasible = _first_argmin(masked, over)
            res = part.isel(idx)
        else:  # dask: positions and values in one pass (scalesim.solve.chunked_argmin)
            idx, feasible, res = chunked_argmin.first_min_and_values(part, masked, over)
        for d in over:
            res[f"{d}_opt"] = xr.where(feasible, res[d], np.nan) if d in res.coords else idx[d]
        res = res.drop_vars([c for c in over if c in res.coords], errors="ignore")
        res = res.where(feasible)
        res["feasible"] = feasible
        return res

    if chunk and keep and ds[objective].chunks is None:
        dim = keep[0]
        parts = [one(ds.isel({dim: slice(i, i + chunk)})) for i in range(0, ds.sizes[dim], chunk)]
        out = xr.concat(parts, dim=dim)
    else:
        out = one(ds)
    out.attrs.update(ds.attrs)
    out.attrs["grid_optimum"] = json.dumps({"objective": objective, "over": over, "target_loss": target_loss, "max_loss": max_loss,
                                                **constraints})
    return out


def _first_argmin(masked, over):
    """Positions (``{dim: DataArray}``, on the kept dims) of the first minimum over ``over``, and feasibility.

    The first minimum in C order of ``over`` (as an argmin over the stacked cells), found one dim at a
    time from the last (``min``/``argmin`` along one axis), so the grid is never stacked. numpy only:
    a dask-backed grid goes through :func:`scalesim.solve.chunked_argmin.first_min_and_values`.
    """
    filled = masked.fillna(np.inf)
    reduced = {"_feasible": masked.notnull().any(over)}
    for d in reversed(over):
        reduced[f"_at_{d}"] = filled.argmin(d)  # position along d of the first minimum, for each cell of the dims before it
        filled = filled.min(d)
    reduced = xr.Dataset(reduced).reset_coords(drop=True)
    idx = {}
    for d in over:  # outermost first: its position, then each inner dim's position at the outer ones chosen
        idx[d] = reduced[f"_at_{d}"].isel(idx)
    return idx, reduced["_feasible"]


def bench_optimize():
    """10^5 optimisations vectorised vs the same one by one with scipy (ratio printed)."""
    import time

    from scipy.optimize import minimize_scalar

    from scalesim import catalog

    regions = catalog.region_ids("country")[:100]
    hws = ["A100-SXM4-80GB", "H100-SXM5-80GB", "TPUv4", "TPUv5p", "B200", "V100-SXM2-32GB", "MI300X", "H200-SXM-141GB", "TPUv6e", "Gaudi3"]
    targets = np.linspace(2.05, 2.5, 100)
    n_total = len(regions) * len(hws) * len(targets)
    # a solver benchmark: utilisation independent of N (per-generation constants), as the scipy loop
    kw = dict(hardware=hws, region=regions, n_chips=1024, inference_tokens=1e12, law="besiroglu2024", mfu="hierarchical",
              inference_mfu=float(hw_model.mfu_default_epoch(8)))  # serving as 2N FLOPs/token, as the scipy loop
    t0 = time.perf_counter()
    ds = optimize(target_loss=targets, **kw)
    t_vec = time.perf_counter() - t0
    lw = laws.get_law("besiroglu2024")
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
            tr = simulate(n_params=n, n_tokens=min(d, 1e30), hardware=h, region=r, n_chips=1024, mfu="hierarchical")
            inf = simulate(flop=2 * n * 1e12, hardware=h, region=r, mfu=float(hw_model.mfu_default_epoch(8)))
            return float(tr.co2e_t + inf.co2e_t)

        minimize_scalar(f, bounds=(np.log(nmin * (1 + 1e-6)), np.log(nmin * 1e6)), method="bounded")
    t_loop = (time.perf_counter() - t0) / sample * n_total
    print(f"optimize: {n_total:.1e} optimisations ({len(targets)} targets x {len(hws)} hardware x {len(regions)} regions), inference-aware")
    print(f"  vectorised optimize {t_vec:8.2f} s")
    print(f"  scipy loop          {t_loop:8.0f} s (extrapolated from {sample} minimize_scalar calls)")
    print(f"  ratio: {t_loop / t_vec:.0f}x; feasible {int(ds.feasible.sum())}/{n_total}")
    small = dict(kw, hardware=hws[:5], region=regions[:20], mfu=None)
    t0 = time.perf_counter()
    optimize(target_loss=targets[::10], **{k: v for k, v in small.items() if v is not None})
    t_struct = time.perf_counter() - t0
    print(f"  default utilisation (throughput model), {10 * 5 * 20} optimisations: {t_struct:.2f} s "
          f"({t_struct / 1000 * 1e5 / t_vec:.1f}x the per-generation constants per optimisation)")
