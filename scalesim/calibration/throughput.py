"""Calibration of the throughput model's few global efficiencies on public training benchmarks.

The data are ``data/training_throughput_benchmarks.csv`` (MLPerf, Megatron-LM, Korthikanti et al.,
Megatron-Bridge, llm-foundry, MaxText, ...). The fitted quantity is the **step time** (global batch
tokens / measured cluster tokens per second), which does not depend on any source's FLOP
convention; rows that print only model TFLOP/s are converted with that source's own convention
(:func:`measured_step_time`). Each row is predicted like ``score.py`` does: with its published
plan when it gives one, falling back to the plan search when that plan is infeasible in the model.

``fit_throughput_parameters`` minimises a robust (soft-L1) sum of squared log errors of step time
over the global parameters of :data:`scalesim.models.parallelism.THROUGHPUT_PARAMETERS`;
``leave_one_source_out`` refits without each ``source_kind`` and predicts it;
``leave_one_generation_out`` refits without every row of one chip generation (A100, H100, TPU v5e, ...)
and predicts it from the catalogue alone, the check on hardware the fit has not seen; ``pooled_error``
pools either over all held-out rows.
"""

from __future__ import annotations

import numpy as np

from scalesim import catalog
from scalesim.chain.training_throughput import dedupe_plans, hardware_arrays
from scalesim.models import parallelism as par
from scalesim.units import FLOP_PER_TFLOP

__all__ = ["FIT_KEYS", "fit_gemm_curve", "benchmark_rows", "measured_step_time", "predict_benchmarks", "error_summary",
           "fit_throughput_parameters", "leave_one_source_out", "accelerator_generation",
           "leave_one_generation_out", "pooled_error", "HOLDOUT_TABLE", "HOLDOUT2_TABLE", "HOLDOUT_TABLES",
           "holdout_error"]

#: Parameters fitted by default, in order. ``scale_up_efficiency`` (fixed, see the parameter set's
#: source), ``scale_out_efficiency`` (fixed at 1 from ``scalesim2026j``: left free it trades off
#: exactly against ``dp_nic_exponent``; README 'How additions were chosen'),
#: ``low_precision_gemm_efficiency`` and the GEMM curve (``gemm_half_dim``, ``gemm_latency_s``:
#: measured H100 GEMMs, :func:`fit_gemm_curve`) can be fitted by passing ``keys``.
FIT_KEYS = ("gemm_efficiency", "attention_efficiency", "elementwise_bytes_per_h", "tp_comm_overlap",
            "dp_nic_exponent")
#: Every fittable parameter. Attention at most 0.75 of the 16-bit peak: FlashAttention-2 reaches
#: 50-73 % of the A100 peak forward (Dao 2023, arXiv:2307.08691), FlashAttention-3 up to 75 % of
#: H100 (Shah et al. 2024, arXiv:2407.08608).
ALL_KEYS = FIT_KEYS + ("gemm_half_dim", "gemm_latency_s", "scale_up_efficiency", "scale_out_efficiency",
                       "low_precision_gemm_efficiency")
BOUNDS = dict(gemm_efficiency=(0.3, 1.3), gemm_half_dim=(1.0, 2048.0), attention_efficiency=(0.1, 0.75),
              elementwise_bytes_per_h=(10.0, 2000.0), scale_out_efficiency=(0.1, 1.0), tp_comm_overlap=(0.01, 1.0),
              scale_up_efficiency=(0.1, 1.0), low_precision_gemm_efficiency=(0.3, 1.0),
              gemm_latency_s=(1e-7, 1e-4), dp_nic_exponent=(1e-3, 1.0))
#: Data-independent starting point of every fit (first guesses, not fitted): leave-one-source-out
#: starts here so that no held-out source leaks in through the shipped (all-data) optimum. The GEMM
#: curve is not a guess but :func:`fit_gemm_curve` on measured H100 GEMMs (no benchmark row enters
#: it), rounded: half-dimension 27.4, latency 6.08 us per GEMM kernel (a test refits and compares).
#: ``dp_nic_exponent`` starts half-way between one NIC and all of a domain's (0.5), and
#: ``scale_out_efficiency`` is held at 1 (the catalogue's NIC line rate).
PRIOR_START = dict(gemm_efficiency=1.0, gemm_half_dim=27.4, gemm_latency_s=6.08e-6, attention_efficiency=0.4,
                   elementwise_bytes_per_h=200.0, scale_up_efficiency=0.8, scale_out_efficiency=1.0,
                   tp_comm_overlap=0.5, low_precision_gemm_efficiency=1.0, dp_nic_exponent=0.5)
#: Weight of the pull towards :data:`PRIOR_START` (per parameter, on log value): a factor e away
#: from the first guess costs as much as one row predicted 30 % off.
PRIOR_WEIGHT = 0.3
_PLAN_COLS = ("tp", "pp", "vp", "cp", "ep", "micro_batch", "dp")


def _f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return np.nan


def measured_step_time(row):
    """Measured step time [s] of a benchmark row, NaN when it cannot be derived.

    From ``tokens_per_s_per_chip`` when printed: B s / (tps x n). Otherwise from
    ``model_tflops_per_chip`` with the source's FLOP convention: for ``megatron`` and ``paper``
    rows Korthikanti et al. 2022's model FLOPs, 72 L h^2 (1 + s/6h + V/12Lh) per token, except the
    rows whose ``flop_convention`` is Narayanan et al. 2021's recompute-inclusive count (the A100
    Selene table), 96 L h^2 (1 + s/6h + V/16Lh) per token (arXiv:2104.04473 Sec. 5.1, Eq. 3: full
    activation recomputation adds a second forward pass); MaxText's pre-2025 non-causal
    6N + 12 L h s for ``maxtext`` rows.

    Notes
    -----
    Eq. 3 reproduces the README's GPT-3 175B example: 1536 x 2048 tokens on 1024 A100 in 32 s is
    137.7 TFLOP/s per GPU, printed as 138.
    """
    gbs, s, n = _f(row["global_batch_seqs"]), _f(row["seq_len"]), _f(row["n_chips"])
    tps = _f(row["tokens_per_s_per_chip"])
    if not np.isfinite(tps):
        tf = _f(row["model_tflops_per_chip"])
        L, h, V, N = _f(row["n_layers"]), _f(row["d_model"]), _f(row["vocab"]), _f(row["n_params"])
        if _recompute_inclusive(row):
            fpt = 96.0 * L * h * h * (1.0 + s / (6.0 * h) + V / (16.0 * L * h))
        elif row["source_kind"] in ("megatron", "paper"):
            fpt = 72.0 * L * h * h * (1.0 + s / (6.0 * h) + V / (12.0 * L * h))
        elif row["source_kind"] == "maxtext":
            fpt = 6.0 * N + 12.0 * L * h * s
        else:
            fpt = np.nan
        tps = tf * FLOP_PER_TFLOP / fpt
    return gbs * s / (tps * n)


def _recompute_inclusive(row):
    """Whether a row's FLOP count (and so its run) includes full activation recomputation (Narayanan et al. 2021)."""
    return row["flop_convention"].startswith("Narayanan recompute-inclusive")


def fit_gemm_curve(rows=None):
    """GEMM time curve of the step model, fitted on measured H100 GEMMs instead of on the benchmarks.

    Least squares on log time of ``data/gemm_h100_xla.csv`` (OpenXLA's measured sm_90 bf16 matmul
    table, the 81 shapes with m, n, k >= 1024, batches 1-4) with the form of
    :func:`scalesim.models.parallelism.training_step_time`: t = 2 b m n k / (e F g(m) g(n) g(k)) + tau,
    g(x) = x / (x + x0), F the H100's measured maximum achievable matmul (accelerators.csv).

    Returns
    -------
    dict
        ``gemm_half_dim`` x0 [1], ``gemm_latency_s`` tau [s], ``fraction_of_mamf`` e [1] (large
        GEMMs reach the MAMF: e close to 1 is a check of two independent sources, not used by
        the step model, whose ``gemm_efficiency`` is fitted on the benchmarks), ``rms_log_error``.

    Notes
    -----
    Without the latency the per-dimension tile form alone needs x0 ~ 2000 to follow the measured
    fall-off of 1024-wide GEMMs (a 6 us kernel at 1024^3 is latency, not tile inefficiency), which
    is what the benchmark fit of ``gemm_half_dim`` did (131-181 before ``scalesim2026e``, 480-610
    whenever data-parallel traffic changed).
    """
    from scipy.optimize import least_squares

    rows = catalog.read_table("gemm_h100_xla.csv") if rows is None else rows
    b, m, n, k, tf = (np.array([float(r[c]) for r in rows]) for c in ("batch", "m", "n", "k", "bf16_tflop_per_s"))
    flop = 2.0 * b * m * n * k
    t = flop / (tf * FLOP_PER_TFLOP)
    F = catalog.get_hardware("H100").mamf_bf16_tflop_per_s * FLOP_PER_TFLOP
    g = par._tile  # the step model's own tile efficiency

    def resid(x):
        e, tau, x0 = np.exp(x)
        return np.log((flop / (e * F * g(m, x0) * g(n, x0) * g(k, x0)) + tau) / t)

    sol = least_squares(resid, np.log([1.0, 5e-6, 50.0]))
    e, tau, x0 = np.exp(sol.x)
    return dict(gemm_half_dim=float(x0), gemm_latency_s=float(tau), fraction_of_mamf=float(e),
                rms_log_error=float(np.sqrt(np.mean(sol.fun ** 2))))


def benchmark_rows(table="training_throughput_benchmarks.csv"):
    """Rows of a shipped benchmark table with a derivable measured step time and known hardware.

    The default is the fitted table; :data:`HOLDOUT_TABLE` (the Blackwell rows) and :data:`HOLDOUT2_TABLE`
    (other stacks and chips) are never fitted
    (:func:`holdout_error`).
    """
    out = []
    for r in catalog.read_table(table):
        if not np.isfinite(_f(r["n_params"])) or not r["accelerator"]:
            continue
        t = measured_step_time(r)
        if np.isfinite(t) and t > 0:
            out.append(dict(r, measured_step_s=t))
    return out


#: Benchmark rows kept out of every fit: Megatron-Bridge's DGX-B200, B300, GB200 and GB300 tables, from the
#: performance-summary archive the fitted H100 rows come from (``tools/benchmark_additions.py``).
HOLDOUT_TABLE = "training_throughput_holdout.csv"
#: The second hold-out, never fitted either: other software stacks and chips (MaxText on TPU v7 and v6e from
#: tpu-recipes, MLPerf Training v5.0/v5.1 logs on B200, B300, GB200, GB300 and MI355X), each row with its quote.
HOLDOUT2_TABLE = "training_throughput_holdout2.csv"
#: Every hold-out table, in the order the README and the validation figure report them.
HOLDOUT_TABLES = (HOLDOUT_TABLE, HOLDOUT2_TABLE)


def holdout_error(parameters=None, table=HOLDOUT_TABLE):
    """Step-time errors on a hold-out table, predicted by a fit that never saw it.

    Parameters
    ----------
    parameters : dict, optional
        Throughput parameters (default the shipped ones, fitted on :func:`benchmark_rows` only).
    table : str, optional
        :data:`HOLDOUT_TABLE` (Megatron-Bridge on Blackwell, the default) or :data:`HOLDOUT2_TABLE`.

    Returns
    -------
    dict
        ``rows`` (the hold-out rows), ``pred`` (:func:`predict_benchmarks` of them), ``step_time_error``
        (predicted / measured - 1, in row order) and the pooled ``n``, ``median`` and ``p90`` of its
        absolute value (:func:`error_summary`).
    """
    if table not in HOLDOUT_TABLES:
        raise ValueError(f"table={table!r} is not a hold-out table; allowed: {', '.join(map(repr, HOLDOUT_TABLES))}")
    rows = benchmark_rows(table)
    pred = predict_benchmarks(rows, parameters)
    s = error_summary(pred)
    return dict(rows=rows, pred=pred, step_time_error=pred["step_time_s"] / pred["measured_step_s"] - 1.0,
                n=s["n"], median=s["step_time"]["median"], p90=s["step_time"]["p90"])


def _inputs(rows):
    col = lambda k: np.array([_f(r[k]) for r in rows])  # noqa: E731
    N = col("n_params")
    Na = np.where(np.isfinite(col("n_active_params")), col("n_active_params"), N)
    s = col("seq_len")
    cfg = par.derive_config(N, Na, seq_len=s, global_batch_tokens=col("global_batch_seqs") * s,
                            n_layers=col("n_layers"), d_model=col("d_model"), n_heads=col("n_heads"),
                            n_kv_heads=col("n_kv_heads"), ffn_dim=col("ffn_dim"), vocab_size=col("vocab"))
    cfg["n_chips"] = col("n_chips")
    dtype = [r["dtype"] or "bf16" for r in rows]
    hw = hardware_arrays([r["accelerator"] for r in rows], dtype)
    forced = {k: col(k) for k in _PLAN_COLS}
    forced["zero"] = np.array([3.0 if r["fsdp"] == "yes" else 1.0 if r["fsdp"] == "no" else np.nan for r in rows])
    # a recompute-inclusive FLOP count says the run recomputed every layer's forward (Narayanan Eq. 3)
    rc = [("full" if _recompute_inclusive(r) else r["recompute"] or "").lower() for r in rows]
    # as score.py reads the column: "none" is a published plan entry (no recomputation), not a blank
    forced["recompute"] = np.array([2.0 if "full" in x else 1.0 if ("selective" in x or "minimal" in x)
                                    else 0.0 if x == "none" else np.nan for x in rc])
    return cfg, hw, forced


def predict_benchmarks(rows=None, parameters=None):
    """Predicted step time [s] and model FLOP/s per chip of benchmark rows (plan given, else searched).

    Returns
    -------
    dict of ndarray
        ``step_time_s``, ``model_flop_per_s_per_chip`` (6N + 6Lhs convention), ``measured_step_s``,
        ``used_plan`` (bool), in row order.
    """
    rows = benchmark_rows() if rows is None else rows
    cfg, hw, forced = _inputs(rows)
    step = np.full(len(rows), np.nan)
    flop = np.full(len(rows), np.nan)
    moe = cfg["n_experts"] > 1
    long_ctx = (cfg["seq_len"] >= 16384) | (np.isfinite(forced["cp"]) & (forced["cp"] > 1))
    mask = np.stack([np.isfinite(forced[k]) for k in forced], axis=1)
    key = np.concatenate([moe[:, None], long_ctx[:, None], mask], axis=1)
    patterns, group = np.unique(key, axis=0, return_inverse=True)
    group = group.ravel()

    def run(sel, pattern, use_forced):
        max_tp = float(np.max(hw["scale_up_domain"][sel]))
        sub = lambda d: {k: v[sel] for k, v in d.items()}  # noqa: E731
        fixed = {k: v[sel] for (k, v), on in zip(forced.items(), pattern[2:]) if on} if use_forced else {}

        def plans_for(offload):
            plans = par.plan_grid(max_tp=max_tp, moe=bool(pattern[0]), long_context=bool(pattern[1]), offload=offload)
            return dedupe_plans(plans, [k for k in fixed if k in plans])

        return par.search_plan_by_host_link(sub(cfg), sub(hw), plans_for, forced=fixed, parameters=parameters)

    used = np.zeros(len(rows), dtype=bool)
    for gi, pattern in enumerate(patterns):  # one array computation per pattern of given plan entries
        sel = group == gi
        best = run(sel, pattern, True)
        step[sel], flop[sel] = best["step_time_s"], best["model_flop"]
    used = np.isfinite(step)
    for gi, pattern in enumerate(patterns):  # rows whose published plan is infeasible in the model
        sel = (group == gi) & ~used
        if sel.any():
            best = run(sel, pattern, False)
            step[sel], flop[sel] = best["step_time_s"], best["model_flop"]
    meas = np.array([r["measured_step_s"] for r in rows])
    return dict(step_time_s=step, model_flop_per_s_per_chip=flop / (step * cfg["n_chips"]),
                measured_step_s=meas, used_plan=used,
                measured_model_flop_per_s_per_chip=flop / (meas * cfg["n_chips"]))


def error_summary(pred, sel=None):
    """Median, 90th percentile and max of |relative error| of step time and of model FLOP/s per chip."""
    sel = np.ones(len(pred["step_time_s"]), dtype=bool) if sel is None else sel
    e_t = pred["step_time_s"][sel] / pred["measured_step_s"][sel] - 1.0
    e_f = pred["model_flop_per_s_per_chip"][sel] / pred["measured_model_flop_per_s_per_chip"][sel] - 1.0
    out = {"n": int(np.isfinite(e_t).sum())}
    for name, e in (("step_time", e_t), ("flop_per_s", e_f)):
        a = np.abs(e[np.isfinite(e)])
        out[name] = dict(median=float(np.median(a)), p90=float(np.percentile(a, 90)), max=float(a.max()))
    return out


def fit_throughput_parameters(rows=None, *, exclude_source=None, start=None, keys=FIT_KEYS, max_nfev=200,
                              prior_weight=PRIOR_WEIGHT):
    """Least-squares fit of the global efficiencies to log step time of the benchmark rows.

    Parameters
    ----------
    rows : list of dict, optional
        Benchmark rows (default :func:`benchmark_rows`).
    exclude_source : str, optional
        ``source_kind`` left out of the fit.
    start : dict, optional
        Starting parameters (default the shipped ones); parameters outside ``keys`` stay fixed here.
    keys : sequence of str, optional
        Parameters fitted (default all of :data:`FIT_KEYS`); the others keep their ``start`` value
        (an absent term keeps its neutral value, :data:`scalesim.models.parallelism.NEUTRAL_PARAMETERS`).
    max_nfev : int, optional
        Function evaluations.
    prior_weight : float, optional
        Weight of one extra residual per parameter, ``prior_weight * log(value / PRIOR_START)``:
        a weak pull towards the data-independent first guess, so that a parameter the rows do not
        constrain (attention efficiency without long sequences, say) stays physical instead of
        drifting to a bound; 0 switches it off.

    Returns
    -------
    dict
        Parameters (keys of :data:`ALL_KEYS`, and the model switches ``start`` sets,
        :data:`scalesim.models.parallelism.MODEL_SWITCHES`), fitted along ``keys``.
    """
    from scipy.optimize import least_squares

    rows = benchmark_rows() if rows is None else rows
    if exclude_source is not None:
        rows = [r for r in rows if r["source_kind"] != exclude_source]
    p0 = dict(par.NEUTRAL_PARAMETERS)
    p0.update(par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS] if start is None else start)
    p0 = {**{k: p0[k] for k in ALL_KEYS},  # and the start's switches, which choose the model
          **{k: p0[k] for k in par.MODEL_SWITCHES if k in p0}}
    keys = tuple(keys)
    lo = np.log([BOUNDS[k][0] for k in keys])
    hi = np.log([BOUNDS[k][1] for k in keys])
    x0 = np.clip(np.log([p0[k] for k in keys]), lo + 1e-9, hi - 1e-9)
    x_prior = np.log([PRIOR_START[k] for k in keys])

    def resid(x):
        p = dict(p0, **dict(zip(keys, np.exp(x))))
        pred = predict_benchmarks(rows, p)
        r = np.log(pred["step_time_s"] / pred["measured_step_s"])
        return np.concatenate([np.where(np.isfinite(r), r, 3.0), prior_weight * (x - x_prior)])

    sol = least_squares(resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.15, max_nfev=max_nfev,
                        diff_step=1e-3)
    return dict(p0, **{k: float(v) for k, v in zip(keys, np.exp(sol.x))})


def leave_one_source_out(rows=None, *, parameters=None, start=PRIOR_START, **fit_kwargs):
    """Per ``source_kind``: errors in-sample (all-data fit) and when that source is left out of the fit.

    Parameters
    ----------
    rows : list of dict, optional
        Benchmark rows (default :func:`benchmark_rows`).
    parameters : dict, optional
        The all-data parameters for the in-sample errors (default the shipped ones).
    start : dict, optional
        Start of each refit (default :data:`PRIOR_START`, which no data informed).
    **fit_kwargs
        Passed to :func:`fit_throughput_parameters` (``keys``, ``max_nfev``).

    Returns
    -------
    dict
        ``{source_kind: {"in_sample": summary, "out_of_sample": summary, "parameters": fit,
        "step_time_error": held-out relative errors}}`` with summaries from :func:`error_summary`.
    """
    rows = benchmark_rows() if rows is None else rows
    return _leave_one_group_out(rows, [r["source_kind"] for r in rows], parameters, start, fit_kwargs)


#: Accelerators that share one chip generation with another catalogue id (same die): H200 and H800
#: are GH100 Hopper parts like the H100 (NVIDIA H200 and H800 datasheets), so leaving out "H100"
#: leaves them out too.
SAME_GENERATION = {"H200": "H100", "H800": "H100", "B300": "B200", "GB200": "B200", "GB300": "B200"}


def accelerator_generation(accelerator):
    """Chip generation of a benchmark row's accelerator: the catalogue id up to its first '-'.

    ``A100-SXM4-40GB`` and ``A100-SXM4-80GB`` are one generation (``A100``); H100 variants, H200
    and H800 are ``H100``, the Blackwell parts (B300, GB200, GB300) ``B200`` (:data:`SAME_GENERATION`); each
    TPU version is its own (``TPUv5e``).
    """
    hid = catalog.get_hardware(accelerator).hardware_id.split("-")[0]
    return SAME_GENERATION.get(hid, hid)


def leave_one_generation_out(rows=None, *, parameters=None, start=PRIOR_START, **fit_kwargs):
    """Per chip generation: errors in-sample and when every row of that generation is left out of the fit.

    The held-out generation is predicted from the catalogue alone (its peaks, HBM and links) with
    the efficiencies fitted on the other chips: the check of how the model carries to hardware it
    was not fitted on. Arguments and return as :func:`leave_one_source_out`, keyed by
    :func:`accelerator_generation`.
    """
    rows = benchmark_rows() if rows is None else rows
    return _leave_one_group_out(rows, [accelerator_generation(r["accelerator"]) for r in rows], parameters, start,
                                fit_kwargs)


def _leave_one_group_out(rows, labels, parameters, start, fit_kwargs):
    full = predict_benchmarks(rows, parameters)
    # each fold refits the model of the set validated (its switches), from the data-free start
    shipped = par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS] if parameters is None else parameters
    start = dict(start, **{k: shipped[k] for k in par.MODEL_SWITCHES if k in shipped})
    labels = np.array(labels)
    out = {}
    for label in sorted(set(labels)):
        sel = labels == label
        p = fit_throughput_parameters([r for r, s in zip(rows, sel) if not s], start=start, **fit_kwargs)
        held = predict_benchmarks([r for r, s in zip(rows, sel) if s], p)
        out[label] = dict(in_sample=error_summary(full, sel), out_of_sample=error_summary(held), parameters=p,
                          step_time_error=held["step_time_s"] / held["measured_step_s"] - 1.0)
    return out


def pooled_error(result):
    """Median and 90th percentile of |step-time error| pooled over every held-out row of a leave-one-out result.

    Parameters
    ----------
    result : dict
        Output of :func:`leave_one_source_out` or :func:`leave_one_generation_out`.

    Returns
    -------
    dict
        ``n``, ``median``, ``p90`` [1].
    """
    e = np.abs(np.concatenate([v["step_time_error"] for v in result.values()]))
    e = e[np.isfinite(e)]
    return dict(n=int(e.size), median=float(np.median(e)), p90=float(np.percentile(e, 90)))
