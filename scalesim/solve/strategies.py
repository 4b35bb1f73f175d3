"""Compression levers in the lifetime optimum: quantised serving, distillation and pruning.

:func:`scalesim.optimize` dispatches here when ``inference_dtype`` is given or ``strategy`` is not
``'direct'``. Every lever is costed with the same :class:`~scalesim.solve.optimization.LifetimeCost`
(training hardware for training and teacher forward passes, serving hardware for serving) and
compared with the direct strategy for the same inputs, so a result says whether the lever pays.

Quantised serving (``inference_dtype``)
    Serving is costed with that weight dtype (the roofline model of :func:`scalesim.serve`), and
    the trained model must reach ``target_loss - penalty``, the penalty being the published loss
    cost of the scheme (:func:`quantisation_penalty`, ``scalesim/data/compression_quality.csv``).
Distillation (``strategy='distill'``)
    A teacher, the FLOP-optimal model (Hoffmann et al. 2022 Eq. 4) for the student's target, is
    trained; it labels ``distill_tokens`` tokens (2 N_T FLOPs each, on the training hardware); a
    student trained on them is served. The student reaches the loss a supervised model of its size
    reaches with ``distill_benefit`` times as many tokens (:mod:`scalesim.models.compression`).
Pruning (``strategy='prune'``)
    A parent of N / ``prune_fraction`` parameters is trained, pruned to N and recovered with
    ``recovery_tokens`` tokens of distillation from the parent; the pruned model is served. It is
    taken to reach the law's loss at its own size and the parent's training tokens (Minitron).

References
----------
.. [1] Busbridge et al. 2025, "Distillation Scaling Laws", arXiv:2502.08606.
.. [2] Muralidharan et al. 2024, "Compact Language Models via Pruning and Knowledge
   Distillation", arXiv:2407.14679; NVIDIA Minitron-8B-Base model card (94B tokens).
.. [3] Kurtic et al. 2024, "'Give Me BF16 or Give Me Death'? Accuracy-Performance Trade-Offs in
   LLM Quantization", arXiv:2411.02355.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from scalesim import catalog, laws, variables
from scalesim.models import compression
from scalesim.models.scaling_laws import golden_section_minimize, tokens_for_loss
from scalesim.units import UNIT_NATS

STRATEGIES = ("direct", "distill", "prune")
#: Serving dtypes with a shipped quality penalty (16-bit: the reference, penalty 0).
PENALISED_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4")
#: Inputs of each lever (given with another strategy they are an error, not ignored).
LEVER_INPUTS = {"distill": ("distill_tokens", "distill_benefit"), "prune": ("prune_fraction", "recovery_tokens")}
#: Effective-token multiplier of distillation: 1 (no gain) by default. Busbridge et al. 2025 [1]
#: find that when the teacher must be trained, supervised learning is preferable for one student,
#: and that distillation's efficiency gains vanish with enough student data; their fitted
#: constants (Eq. 8) could not be verified here, so the gain is a what-if the user gives.
DISTILL_BENEFIT_DEFAULT = 1.0
#: Kept share of parameters: Minitron 8B pruned from Nemotron-4 15B (nominal 8/15) [2].
PRUNE_FRACTION_DEFAULT = 8.0 / 15.0
#: Recovery tokens: Minitron's 8B and 4B were recovered with 94B tokens of distillation [2].
RECOVERY_TOKENS_DEFAULT = 94e9
QUANTITIES = ("energy_kwh", "co2e_t", "total_co2e_t", "water_l", "flop")
_FP8_NOTE = ("Kurtic et al. 2024 (arXiv:2411.02355): W8A8-FP8 is lossless within evaluation noise on Llama 3.1 "
             "8B-405B and never worse than W8A8-INT8; central 0, high = the INT8 (SmoothQuant) maximum")


def quantisation_penalty(dtype):
    """:class:`catalog.Default` of a serving dtype's loss penalty [nats/token] from the shipped table.

    int4 (AWQ W4A16) and int8 (SmoothQuant/LLM.int8() W8A8): min/median/max of the log
    perplexity ratios in ``compression_quality.csv``; fp8: 0 with the int8 maximum as its high
    end [3]; bf16/fp16: 0 (the precision the table's baselines were measured in).
    """
    if dtype not in PENALISED_DTYPES:
        raise ValueError(f"inference_dtype must be one of {PENALISED_DTYPES} (a published quality penalty is shipped "
                         f"for these), got {dtype!r}")
    if dtype in ("bf16", "fp16"):
        return catalog.Default(f"quantisation_penalty:{dtype}", 0.0, 0.0, 0.0, "16-bit reference precision")
    scheme = "int8" if dtype == "fp8" else dtype  # fp8's high end is int8's maximum
    rs = [r for r in catalog.read_table("compression_quality.csv") if r["scheme"] == scheme]
    d = compression.log_perplexity_ratio([float(r["ppl_quantised"]) for r in rs], [float(r["ppl_baseline"]) for r in rs])
    low, mid, high = compression.penalty_range(d)
    if dtype == "fp8":
        return catalog.Default("quantisation_penalty:fp8", 0.0, 0.0, high, _FP8_NOTE)
    sources = sorted({r["source"].split(" Table")[0] for r in rs})
    return catalog.Default(f"quantisation_penalty:{dtype}", mid, low, high,
                           "median (min-max) of ln PPL ratios, compression_quality.csv: " + "; ".join(sources))


def in_use(g):
    """True when optimize must go through this module (a serving dtype, a non-direct strategy or a lever's input)."""
    levers = [n for names in LEVER_INPUTS.values() for n in names] + ["inference_dtype", "teacher"]
    return any(g.get(n) is not None for n in levers) or (g.get("strategy") or "direct") != "direct"


def check(g, goal):
    """Strategy inputs that do not fit together: a ValueError naming the input."""
    strategy = g.get("strategy") or "direct"
    for lever, names in LEVER_INPUTS.items():
        for name in names:
            if g.get(name) is not None and strategy != lever:
                raise ValueError(f"{name} applies to strategy={lever!r}, got strategy={strategy!r}")
    if g.get("teacher") is not None and strategy == "direct":
        raise ValueError("teacher applies to strategy='distill' or 'prune', got strategy='direct'")
    if g.get("inference_dtype") is not None and g.get("inference_mfu") is not None:
        raise ValueError("inference_dtype sets the roofline serving cost, which inference_mfu (2N FLOPs at a fixed MFU) "
                         "replaces; give one of them")
    if g.get("risk") is not None:
        raise ValueError("risk is not combined with inference_dtype or strategy yet; leave one of them out")
    if strategy != "direct":
        if goal.name != "target_loss":
            raise ValueError(f"strategy={strategy!r} needs the goal target_loss, got {goal.name}")
        if goal.lw.form != "chinchilla" or goal.unique_tokens is not None:
            raise ValueError(f"strategy={strategy!r} needs a Chinchilla-form law (besiroglu2024, hoffmann2022, ...) "
                             f"without unique_tokens, got law={goal.law!r}")
    if g.get("prune_fraction") is not None:
        compression.pruned_params(1.0, g["prune_fraction"])
    if g.get("distill_benefit") is not None:
        compression.distilled_tokens(1.0, g["distill_benefit"])


def optimize(goal, cost, g, *, method, n_iter):
    """The optimum of ``g['strategy']`` with serving in ``g['inference_dtype']``, beside the direct one."""
    from scalesim.solve import optimization

    check(g, goal)
    penalty = _apply_penalty(goal, cost, g.get("inference_dtype"))
    strategy = g.get("strategy") or "direct"
    n_dir, d_dir, closed = goal.solve(cost, method=method, n_iter=n_iter)
    if strategy == "direct":
        out = optimization.report(goal, cost, n_dir, d_dir, closed)
    else:
        direct = cost.evaluate(n_dir, d_dir)
        plan = (_distill if strategy == "distill" else _prune)(goal, cost, g, n_iter)
        out = _report(goal, cost, plan, direct, n_dir, d_dir, strategy)
    if g.get("inference_dtype") is not None:
        out["quantisation_penalty"] = xr.broadcast(penalty, out["loss"])[0].where(out["feasible"])
        out["served_loss"] = out["loss"] + out["quantisation_penalty"]
        out["quantisation_penalty"].attrs.update(units=UNIT_NATS, long_name="quality penalty of the serving dtype [nats/token]",
                                                 description=f"ln PPL ratio of {g['inference_dtype']} serving (compression_quality.csv).")
        out["served_loss"].attrs.update(units=UNIT_NATS, long_name="loss of the served model [nats/token]",
                                        description="Trained loss plus the quantisation penalty.")
        out.attrs["inference_dtype"] = g["inference_dtype"]
    out.attrs["strategy"] = strategy
    return out


def _apply_penalty(goal, cost, dtype):
    """Pick (or draw) the serving dtype's penalty; a target goal then asks the trained model for target - penalty."""
    if dtype is None:
        return xr.DataArray(0.0)
    pen = cost.train.defaults.pick(quantisation_penalty(dtype), higher_is_worse=True, kind="quantisation_penalty")
    pen = pen if isinstance(pen, xr.DataArray) else xr.DataArray(float(pen))
    if goal.name == "target_loss":
        shifted = goal.G - pen
        e = goal.lw.params.get("e")
        if e is not None and float(shifted.min()) <= e:
            raise ValueError(f"target_loss minus the {dtype} quality penalty ({float(pen.max()):.4g} nats) must be above "
                             f"the irreducible loss E = {e:g} of law {goal.law!r}, got {float(shifted.min()):.4g}")
        goal.G = shifted
    cost.train.notes.append(f"served in {dtype}: quality penalty {float(pen.mean()):.4g} nats/token "
                            f"(the trained model reaches target_loss minus it); measured on 6.7B-70B models, "
                            f"smaller models may degrade more (Dettmers & Zettlemoyer 2023)")
    return pen


def _forward(cost, n_params, tokens):
    """Training-hardware outputs of forward passes of N over ``tokens``: costed as 6 N (D/3) training FLOPs."""
    ratio = compression.FORWARD_FLOP_PER_PARAM / compression.TRAIN_FLOP_PER_PARAM
    return cost.evaluate(n_params, tokens * ratio, serving=False)[0]


def _zero_like(parts):
    return {q: xr.zeros_like(parts[q]) for q in QUANTITIES}


def _distill(goal, cost, g, n_iter):
    """Teacher, its forward passes over the student's tokens, the student and its serving."""
    p = dict(goal.lw.params)
    k = float(g.get("distill_benefit") or DISTILL_BENEFIT_DEFAULT)
    existing = g.get("teacher") == "existing"

    def parts(n, d_s):
        n_t, d_t = _teacher(goal, d_s, existing, n_iter)
        teacher = cost.evaluate(n_t, d_t, serving=False)[0]
        teacher = _zero_like(teacher) if existing else teacher
        return teacher, _forward(cost, n_t, d_s), cost.evaluate(n, d_s)

    if g.get("distill_tokens") is not None:
        d_s = xr.zeros_like(goal.G) + float(g["distill_tokens"])
        n_s = xr.zeros_like(goal.G) + compression.student_params_for_tokens(goal.G, d_s, k, **p)
    else:
        lo = compression.student_params_for_tokens(goal.G, goal.d_hi, k, **p) * (1 + 1e-6)  # its tokens within bounds
        hi = np.minimum(lo * 1e6, goal.n_hi)
        d_of = lambda n: np.minimum(compression.distilled_tokens(goal.tokens(n), k), 1e30)  # noqa: E731
        n_s, _ = golden_section_minimize(lambda n: _total(cost, goal.objective, parts(n, d_of(n))), lo, hi,
                                         n_iter=n_iter, log_space=True)
        d_s = d_of(n_s)
    n_t, d_t = _teacher(goal, d_s, existing, n_iter)
    return {"n": n_s, "d": d_s, "loss": goal.loss(n_s, k * d_s), "n_teacher": n_t, "d_teacher": d_t,
            "extra": {"distill_tokens": d_s}, "parts": parts(n_s, d_s)}


def _teacher(goal, d_s, existing, n_iter):
    r"""(N_T, D_T) of the teacher for the student's target: FLOP-optimal for training plus labelling.

    A teacher to train minimises :math:`6 N_T D_T(N_T) + 2 N_T D_S` along its iso-loss curve (a
    larger teacher costs more per labelled token, so many distillation tokens favour an
    overtrained, smaller one); an existing teacher is taken to be the compute-optimal model
    (Hoffmann et al. 2022 Eq. 4) for the target.
    """
    if existing:
        alloc = laws.compute_optimal(laws.min_flop(goal.G, law=goal.law), law=goal.law)
        return xr.zeros_like(d_s) + alloc.n_params, xr.zeros_like(d_s) + alloc.n_tokens
    p = dict(goal.lw.params)
    target, tokens = (v.values for v in xr.broadcast(goal.G, d_s))  # plain arrays: this search runs per trial student
    lo = compression.student_params_for_tokens(target, goal.d_hi, 1.0, **p) * (1 + 1e-6)
    hi = np.minimum(lo * 1e6, goal.n_hi)
    flop = lambda n: (compression.TRAIN_FLOP_PER_PARAM * n * np.minimum(tokens_for_loss(n, target, **p), 1e30)  # noqa: E731
                      + compression.teacher_forward_flop(n, tokens))
    n_t, _ = golden_section_minimize(flop, lo, hi, n_iter=n_iter, log_space=True)
    n_t = xr.zeros_like(xr.broadcast(goal.G, d_s)[0]) + n_t
    return n_t, goal.tokens(n_t)


def _prune(goal, cost, g, n_iter):
    """Parent of N / f trained to the tokens the pruned size needs, pruned to N, recovered, served."""
    f = float(g.get("prune_fraction") or PRUNE_FRACTION_DEFAULT)
    d_rec = float(g.get("recovery_tokens") or RECOVERY_TOKENS_DEFAULT)
    charge = g.get("teacher") != "existing"

    def parts(n, d):
        n_parent = n / f
        parent = cost.evaluate(n_parent, d, serving=False)[0]
        parent = parent if charge else _zero_like(parent)
        return parent, _forward(cost, n_parent, xr.zeros_like(n) + d_rec), cost.evaluate(n, xr.zeros_like(n) + d_rec)

    lo = compression.student_params_for_tokens(goal.G, goal.d_hi, 1.0, **dict(goal.lw.params)) * (1 + 1e-6)
    hi = np.minimum(lo * 1e6, goal.n_hi * f)
    hi = xr.where(hi > lo, hi, lo * (1 + 1e-9))
    d_of = lambda n: np.minimum(goal.tokens(n), 1e30)  # noqa: E731
    n_s, _ = golden_section_minimize(lambda n: _total(cost, goal.objective, parts(n, d_of(n))), lo, hi,
                                     n_iter=n_iter, log_space=True)
    d = d_of(n_s)
    return {"n": n_s, "d": d, "loss": goal.loss(n_s, d), "n_teacher": n_s / f, "d_teacher": d,
            "extra": {"recovery_tokens": xr.zeros_like(n_s) + d_rec}, "parts": parts(n_s, d)}


def _total(cost, quantity, parts):
    """Lifetime amount of ``quantity``: teacher/parent training + forward passes + own training + serving."""
    teacher, fwd, own = parts
    return teacher[quantity] + fwd[quantity] + cost.spend(quantity, own)


def _report(goal, cost, plan, direct, n_dir, d_dir, strategy):
    """The strategy's optimum (served model, teacher, every cost component) next to the direct optimum."""
    from scalesim.chain import simulation

    teacher, fwd, own = plan["parts"]
    tr, inf, inf_flop = own
    feasible = (goal.within_bounds(plan["n"], plan["d"]) & goal.within_bounds(plan["n_teacher"], plan["d_teacher"]) & np.isfinite(plan["n"]))
    if not bool(feasible.any()):
        raise ValueError(f"no feasible configuration for strategy={strategy!r}, target_loss={_plain(goal.value)} within "
                         f"n_params_bounds=({goal.n_lo:g}, {goal.n_hi:g}), n_tokens_bounds=({goal.d_lo:g}, {goal.d_hi:g})")
    out = {"n_params": plan["n"], "n_tokens": plan["d"], "loss": plan["loss"],
           "n_params_teacher": plan["n_teacher"], "n_tokens_teacher": plan["d_teacher"], **plan["extra"]}
    for q in dict.fromkeys((*QUANTITIES, goal.objective)):  # the objective may be co2e_market_t
        serve_q = (inf_flop if q == "flop" else inf[q]) if (inf is not None or q == "flop") else 0.0
        out[f"teacher_{q}"], out[f"distill_{q}"], out[q] = teacher[q], fwd[q], tr[q]
        out[f"inference_{q}"] = serve_q
        out[f"lifetime_{q}"] = teacher[q] + fwd[q] + tr[q] + serve_q
    out["objective"] = out[f"lifetime_{goal.objective}"]
    out["direct_objective"] = cost.spend(goal.objective, direct)
    out["direct_lifetime_co2e_t"] = cost.spend("co2e_t", direct)
    out["direct_n_params"], out["direct_n_tokens"] = n_dir, d_dir
    ds = xr.Dataset({k: v if isinstance(v, xr.DataArray) else xr.DataArray(v) for k, v in out.items()})
    ds = ds.drop_vars([c for c in ("hardware_id", "region_id") if c in ds.coords]).where(feasible)
    ds["feasible"] = feasible
    ds = _attach(ds, goal, strategy)
    ds.attrs.update(simulation.finish(cost.train, {"chip_hours": tr["chip_hours"]}, scope="optimize").attrs)
    ds.attrs.update(goal=goal.name, objective=goal.objective, law=goal.law,
                    method="golden-section along the served model's iso-loss curve")
    return ds


def _attach(ds, goal, strategy):
    """Units and names: the registry's for the served model, prefixed ones for the components."""
    ds = variables.attach(ds, models={"loss": goal.law})
    kinds = {"teacher_": "teacher training" if strategy == "distill" else "parent training",
             "distill_": "teacher forward passes" if strategy == "distill" else "parent forward passes in recovery",
             "inference_": "serving", "lifetime_": "teacher + forward passes + training + serving", "direct_": "direct strategy"}
    for name in list(ds.data_vars):
        for prefix, kind in kinds.items():
            base = name.removeprefix(prefix)
            if name.startswith(prefix) and base in variables.VARIABLES:
                units, long_name, description = variables.VARIABLES[base]
                ds[name].attrs.update(units=units, long_name=f"{long_name} ({kind})", description=f"{description} ({kind}).")
    labels = {"n_params": "parameters of the served model", "n_tokens": "training tokens of the served model"
              if strategy == "distill" else "training tokens of the parent", "n_params_teacher": "teacher/parent parameters",
              "n_tokens_teacher": "teacher/parent training tokens", "distill_tokens": "tokens labelled by the teacher",
              "recovery_tokens": "recovery tokens after pruning", "direct_n_params": "parameters (direct strategy)",
              "direct_n_tokens": "training tokens (direct strategy)"}
    for name, long_name in labels.items():
        if name in ds:
            ds[name].attrs.update(units="1", long_name=long_name, description=f"{long_name} ({strategy}).")
    own = "the student's training on the distillation tokens" if strategy == "distill" else "the pruned model's recovery training"
    for q in QUANTITIES:
        ds[q].attrs["description"] = f"{ds[q].attrs.get('description', '')} Here: {own}.".strip()
    ds["direct_lifetime_co2e_t"].attrs.update(units=variables.VARIABLES["co2e_t"][0], long_name="lifetime CO2e (direct strategy)",
                                              description="Training + serving CO2e of the direct optimum for the same inputs.")
    ds["direct_objective"].attrs.update(units=variables.VARIABLES[goal.objective][0],
                                        long_name=f"objective: {goal.objective} (direct strategy)",
                                        description="The direct optimum's lifetime objective for the same inputs.")
    ds["objective"].attrs.update(units=variables.VARIABLES[goal.objective][0], long_name=f"objective: {goal.objective} (lifetime)",
                                 description=f"Minimised lifetime {goal.objective} of strategy {strategy}.")
    return ds


def _plain(v):
    arr = np.asarray(getattr(v, "values", v))
    return arr.item() if arr.ndim == 0 else arr.tolist() if arr.size <= 8 else f"[{arr.min():g} ... {arr.max():g}]"
