"""Structural throughput of one training step under 3D/4D parallelism (pure numpy).

A first-principles step-time model in the spirit of Calculon (Isaev et al. 2023), Megatron-LM
(Narayanan et al. 2021) and Korthikanti et al. 2022: the FLOPs of each transformer GEMM on its
tensor-parallel shard run at a size-dependent efficiency bounded by the HBM roofline; attention
runs at a flash-attention efficiency; element-wise work is HBM-bound; tensor-parallel
collectives ride the scale-up link (NVLink, ICI, Infinity Fabric), data-parallel collectives the
scale-out network (or the scale-up one when the group fits in it) and overlap with the backward
pass; the pipeline adds a (p-1)/(v m) bubble; experts add all-to-alls; context parallelism adds
a ring exchange hidden behind attention; memory (weights, gradients and Adam states sharded by
ZeRO/FSDP, activations with recomputation) must fit in HBM.

Every function broadcasts over its array inputs; a trailing *plan* axis lets :func:`search_plan`
evaluate every candidate plan of every configuration in one array computation (no Python loop
over configurations or plans). The few free efficiencies are module-level, in
:data:`THROUGHPUT_PARAMETERS` (fitted by :mod:`scalesim.calibration.throughput`).

Units: bytes, seconds, FLOP; bandwidths in bytes/s per chip in one direction.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from scalesim.models.transformer_shape import (  # noqa: F401  (re-exported)
    ASPECT_RATIO, DEFAULT_TOP_K, DEFAULT_VOCAB, GPT3_BATCH_TABLE, HEAD_DIM, architecture_aspect_ratio,
    derive_config, global_batch_tokens_gpt3)

__all__ = [
    "THROUGHPUT_PARAMETERS",
    "REASONS",
    "RECOMPUTE",
    "RECOMPUTE_NAMES",
    "architecture_aspect_ratio",
    "global_batch_tokens_gpt3",
    "model_flop_per_token",
    "training_step_time",
    "plan_grid",
    "search_plan",
    "search_plan_by_host_link",
    "structural_mfu",
    "derive_config",
]

#: Fitted global parameters of :func:`training_step_time` (pvlib style: a refit gets a new key).
#: ``gemm_efficiency``: fraction of the dense peak reached by a large GEMM [1] (from ``scalesim2026d``:
#: of the chip's maximum achievable matmul, ``matmul_fraction`` x peak; ``matmul_ceiling``);
#: ``gemm_half_dim``: GEMM dimension at which a dimension's tile efficiency is one half [1];
#: ``attention_efficiency``: flash-attention FLOP rate as a fraction of the 16-bit peak [1];
#: ``elementwise_bytes_per_h``: HBM traffic of the non-GEMM ops per token per layer, forward
#: plus backward, in units of d_model bytes [byte];
#: ``scale_up_efficiency``, ``scale_out_efficiency``: achieved collective bus bandwidth as a
#: fraction of the catalogue link bandwidth [1] (scale-up fixed at 0.8, about what NCCL's
#: all-gather/reduce-scatter bus bandwidth reaches on 8-GPU NVLink nodes: a modelling assumption);
#: ``tp_comm_overlap``: fraction of the sequence-parallel TP collectives hidden behind the layer's
#: GEMMs (Megatron-Core / Transformer Engine userbuffer overlap) [1];
#: ``low_precision_gemm_efficiency``: 8/4-bit GEMM efficiency relative to 16-bit [1] (1 = same);
#: ``gemm_latency_s``: fixed time of one GEMM kernel (launch, prologue, tail wave) [s];
#: ``dp_nic_exponent`` (from ``scalesim2026j``): a data-parallel group that leaves the scale-up domain
#: while u of its ranks share one, reduces at u**dp_nic_exponent NICs' bandwidth, capped by the
#: scale-up link [1] (0: one NIC, the sets before; 1: every NIC of the domain, an ideal hierarchical
#: or multi-channel NCCL ring; :func:`_data_parallel_bandwidth`);
#: ``dtype_recipes`` (a model switch, not fitted; from ``scalesim2026f``): each dtype's training recipe,
#: the weight-gradient GEMM's precision (:data:`WGRAD_LOW_PRECISION`) and the quantised GEMM inputs
#: kept for the backward; ``stage_memory`` (a switch, from ``scalesim2026f``): the memory of the fullest
#: pipeline stage (logits on the last) and grouped-query K and V stored kv dh wide; ``expert_dp_states``
#: (a switch, from ``scalesim2026g``): ZeRO shards an expert's states over the expert data-parallel group.
#: From ``scalesim2026e`` ``gemm_half_dim`` and ``gemm_latency_s`` are not fitted on the benchmarks but
#: on measured H100 GEMMs (OpenXLA's matmul table, :func:`scalesim.calibration.fit_gemm_curve`).
THROUGHPUT_PARAMETERS = {
    "scalesim2026": dict(
        matmul_ceiling=False, dtype_recipes=False, stage_memory=False, expert_dp_states=False,
        gemm_efficiency=0.9397, gemm_half_dim=136.3, attention_efficiency=0.2698,
        elementwise_bytes_per_h=578.9, scale_up_efficiency=0.6187, scale_out_efficiency=1.0,
        source="superseded: fit of the first model (TP communication fully exposed, experts never folded "
               "over TP, every expert all-to-all at one link's bandwidth), started from its own optimum",
    ),
    "scalesim2026b": dict(
        matmul_ceiling=False, dtype_recipes=False, stage_memory=False, expert_dp_states=False,
        gemm_efficiency=0.8784, gemm_half_dim=169.6, attention_efficiency=0.2711,
        elementwise_bytes_per_h=517.5, scale_up_efficiency=0.8, scale_out_efficiency=1,
        tp_comm_overlap=0.678, low_precision_gemm_efficiency=1.0,
        source="soft-L1 fit of log step time to data/training_throughput_benchmarks.csv from "
               "scalesim.calibration.throughput.PRIOR_START with a weak prior "
               "(fit_throughput_parameters); scale_up_efficiency fixed at 0.8 (not fitted: it trades "
               "off exactly against tp_comm_overlap), low_precision_gemm_efficiency left neutral "
               "(fitting it worsened leave-one-source-out errors)",
    ),
    "scalesim2026c": dict(
        matmul_ceiling=False, dtype_recipes=False, stage_memory=False, expert_dp_states=False,
        gemm_efficiency=0.8756, gemm_half_dim=130.7, attention_efficiency=0.2707,
        elementwise_bytes_per_h=557.8, scale_up_efficiency=0.8, scale_out_efficiency=1,
        tp_comm_overlap=0.7123, low_precision_gemm_efficiency=1.0,
        source="the same fit as scalesim2026b (same model, same keys, from PRIOR_START) after two data "
               "fixes of the calibration: the A100 Selene rows converted with Narayanan et al. 2021's "
               "recompute-inclusive Eq. 3 and fitted with full recompute, and a published recompute "
               "'none' read as a plan entry, as score.py reads it (both kept by leave-one-source-out "
               "and leave-one-generation-out: README 'How additions were chosen')",
    ),
    "scalesim2026d": dict(
        gemm_efficiency=1.075, gemm_half_dim=180.7, attention_efficiency=0.3064,
        elementwise_bytes_per_h=540.1, scale_up_efficiency=0.8, scale_out_efficiency=1,
        tp_comm_overlap=0.7687, low_precision_gemm_efficiency=1.0, matmul_ceiling=True,
        dtype_recipes=False, stage_memory=False, expert_dp_states=False,
        source="the scalesim2026c fit (same keys, from PRIOR_START, gemm_efficiency's first guess 1 and bound "
               "1.3) with every tensor-core rate capped by the chip's measured maximum achievable matmul "
               "(accelerators.csv mamf_bf16_tflop_per_s, Bekman's mamf-finder table; median of the measured "
               "chips where none): gemm_efficiency is now a fraction of that ceiling, not of the datasheet peak "
               "(README 'How additions were chosen')",
    ),
    "scalesim2026e": dict(
        gemm_efficiency=1.036, gemm_half_dim=27.4, gemm_latency_s=6.08e-6, attention_efficiency=0.3036,
        elementwise_bytes_per_h=579.1, scale_up_efficiency=0.8, scale_out_efficiency=1,
        tp_comm_overlap=0.7567, low_precision_gemm_efficiency=1.0, matmul_ceiling=True,
        dtype_recipes=False, stage_memory=False, expert_dp_states=False,
        source="scalesim2026d's model with the GEMM curve taken from measured H100 GEMMs instead of fitted on "
               "the benchmarks: gemm_half_dim and gemm_latency_s from calibration.fit_gemm_curve on "
               "data/gemm_h100_xla.csv (OpenXLA's sm_90 matmul table); the other five keys fitted as before "
               "(fit_throughput_parameters from PRIOR_START; README 'How additions were chosen')",
    ),
    "scalesim2026f": dict(
        gemm_efficiency=1.041, gemm_half_dim=27.4, gemm_latency_s=6.08e-6, attention_efficiency=0.3003,
        elementwise_bytes_per_h=580.5, scale_up_efficiency=0.8, scale_out_efficiency=1,
        tp_comm_overlap=0.4045, low_precision_gemm_efficiency=1.0, matmul_ceiling=True, dtype_recipes=True,
        stage_memory=True, expert_dp_states=False,
        source="scalesim2026e's model with each dtype's training recipe (dtype_recipes: AQT int8 keeps the "
               "weight-gradient GEMM in bf16, WGRAD_LOW_PRECISION; an 8/4-bit GEMM whose weight gradient is "
               "low precision saves its quantised input for the backward, Transformer Engine) and the memory "
               "of the fullest stage (stage_memory: the logits on the last pipeline stage, not on top of the "
               "first stage's activations; grouped-query K and V kv dh wide); the five keys refitted "
               "(fit_throughput_parameters from PRIOR_START; README 'How additions were chosen')",
    ),
    "scalesim2026g": dict(
        gemm_efficiency=1.037, gemm_half_dim=27.4, gemm_latency_s=6.08e-6, attention_efficiency=0.2995,
        elementwise_bytes_per_h=578.5, scale_up_efficiency=0.8, scale_out_efficiency=1,
        tp_comm_overlap=0.3844, low_precision_gemm_efficiency=1.0, matmul_ceiling=True, dtype_recipes=True,
        stage_memory=True, expert_dp_states=True,
        source="scalesim2026f's model after a data fix, accelerator memory read in GiB as it is stated "
               "(accelerators.csv memory_gib; an '80 GB' H100 has 81559 MiB), not in decimal GB, which gave "
               "every chip 7 % too little HBM, and with an expert's optimizer states sharded only over the "
               "ranks that hold it (expert_dp_states: the expert data-parallel group, _state_groups); the "
               "five keys refitted (fit_throughput_parameters from PRIOR_START; README 'How additions were chosen')",
    ),
    "scalesim2026h": dict(
        gemm_efficiency=1.050, gemm_half_dim=27.4, gemm_latency_s=6.08e-6, attention_efficiency=0.2995,
        elementwise_bytes_per_h=586.7, scale_up_efficiency=0.8, scale_out_efficiency=1,
        tp_comm_overlap=0.3771, low_precision_gemm_efficiency=1.0, matmul_ceiling=True, dtype_recipes=True,
        stage_memory=True, expert_dp_states=True,
        source="scalesim2026g's model after a data fix: the maximum achievable matmul of Bekman's table in its "
               "August 2026 revision (accelerators.csv mamf_bf16_tflop_per_s: B200, B300, GB200 and MI355X "
               "measured, Gaudi 2 and 3 re-measured with the cache reset), so the unmeasured chips' median "
               "catalog.DEFAULT_MATMUL_FRACTION is 0.772 of 12 chips, not 0.785 of 8; the five keys refitted "
               "(fit_throughput_parameters from PRIOR_START; README 'How additions were chosen')",
    ),
    "scalesim2026i": dict(
        gemm_efficiency=1.043, gemm_half_dim=27.4, gemm_latency_s=6.08e-6, attention_efficiency=0.2993,
        elementwise_bytes_per_h=582.5, scale_up_efficiency=0.8, scale_out_efficiency=1,
        tp_comm_overlap=0.3685, low_precision_gemm_efficiency=1.0, matmul_ceiling=True, dtype_recipes=True,
        stage_memory=True, expert_dp_states=True,
        source="scalesim2026h's model after a data fix of the fitted table: the 7 Megatron-Bridge 25.09 H100 rows, "
               "which the reference leaves without a dtype (that table has no precision column) and the fit read as "
               "bf16, are FP8 (its footnote calls their parenthesised values other quantisation granularities; the "
               "25.11 table lists the same configurations as FP8 at 1-3 % of the same throughput; "
               "tools/benchmark_additions.py); the five keys refitted (fit_throughput_parameters from PRIOR_START; "
               "README 'How additions were chosen')",
    ),
    "scalesim2026j": dict(
        gemm_efficiency=1.029, gemm_half_dim=27.4, gemm_latency_s=6.08e-6, attention_efficiency=0.3001,
        elementwise_bytes_per_h=573.6, scale_up_efficiency=0.8, scale_out_efficiency=1.0,
        tp_comm_overlap=0.2965, low_precision_gemm_efficiency=1.0, dp_nic_exponent=0.2707, matmul_ceiling=True,
        dtype_recipes=True, stage_memory=True, expert_dp_states=True,
        source="scalesim2026i's model and table plus one term: a data-parallel group beyond the scale-up domain "
               "reduces at u**dp_nic_exponent NICs (u of its ranks per domain; 0 = one NIC, 1 = all of them), "
               "dp_nic_exponent fitted and scale_out_efficiency held at 1 (free, the two trade off exactly); "
               "fit_throughput_parameters from PRIOR_START; README 'How additions were chosen'",
    ),
}
DEFAULT_PARAMETERS = "scalesim2026j"
#: Model switches of a parameter set (booleans that choose terms; never fitted). A set that lacks
#: one gets the shipped set's value (:func:`_parameters`); the sets fitted before a switch say False.
MODEL_SWITCHES = ("matmul_ceiling", "dtype_recipes", "stage_memory", "expert_dp_states")
#: Values of the parameters added after ``scalesim2026`` that switch their terms off (used for a
#: parameter set that lacks them): no TP overlap, 8/4-bit GEMMs as efficient as 16-bit ones, no GEMM
#: latency, and a data-parallel group beyond the scale-up domain on one NIC.
NEUTRAL_PARAMETERS = dict(tp_comm_overlap=0.0, low_precision_gemm_efficiency=1.0, gemm_latency_s=0.0,
                          dp_nic_exponent=0.0)

#: Reason codes of an infeasible plan (index = code).
REASONS = (
    "",
    "tp exceeds the scale-up domain or the number of heads",
    "pp exceeds n_layers",
    "n_chips is not divisible by tp*pp*cp",
    "global batch smaller than dp*micro_batch",
    "does not fit in HBM",
    "ep exceeds n_experts or dp*cp",
    "dp does not equal n_chips/(tp*pp*cp)",
    "dtype not supported by the hardware",
    "cp does not divide seq_len",
    "vp needs pp > 1 and pp*vp <= n_layers",
    "offload needs a coherent CPU-GPU link (NVLink-C2C) in the catalogue",
)
#: Recompute modes and their codes. ``offload`` keeps each layer's input in HBM and sends the rest
#: of its activations to the CPU's memory and back (Megatron-Core ``cpu_offloading``), only where
#: the catalogue has a coherent CPU-GPU link (:func:`_offload_time`).
RECOMPUTE = {"none": 0, "selective": 1, "full": 2, "offload": 3}
RECOMPUTE_NAMES = {code: name for name, code in RECOMPUTE.items()}

#: Bytes per parameter of mixed-precision Adam: 2 (16-bit weights) + 2 (16-bit grads) + 12
#: (fp32 master weights, momentum, variance); Rajbhandari et al. 2020 (arXiv:1910.02054) Sec. 3.1.
BYTES_WEIGHTS, BYTES_GRADS, BYTES_OPTIMIZER = 2.0, 2.0, 12.0
#: Activation bytes per token per layer, attention block and norms: 11h + 4h (Korthikanti et
#: al. 2022, arXiv:2205.05198, Sec. 4.1, Eq. 1 without the s^2 term, which flash attention
#: does not store).
ACT_ATTENTION_BYTES_PER_H = 15.0
#: MLP activation bytes per token: 3h (input, dropout mask) + 4 bytes per unit of MLP width
#: (two 16-bit tensors); with width 4h this is Korthikanti's 19h.
ACT_MLP_BYTES_PER_H, ACT_MLP_BYTES_PER_WIDTH = 3.0, 4.0
#: Full recomputation keeps only each layer's 16-bit input: 2h bytes per token (Korthikanti Sec. 5).
ACT_FULL_RECOMPUTE_BYTES_PER_H = 2.0
#: Fraction of HBM usable by tensors (CUDA/XLA context, communication buffers, allocator
#: fragmentation). A modelling assumption: PyTorch's caching allocator typically reserves
#: 5-10 % beyond live tensors.
USABLE_MEMORY_FRACTION = 0.9
#: Bytes of one element moved by a 16-bit collective.
BYTES_16BIT = 2.0


def model_flop_per_token(n_active_params, n_layers, d_model, seq_len):
    """Model FLOPs per trained token: 6 N + 6 L h s (causal attention, no recomputation).

    Parameters
    ----------
    n_active_params : array_like
        Parameters used per token, embeddings included [1].
    n_layers, d_model : array_like
        Layers and width [1].
    seq_len : array_like
        Sequence length [token].

    Returns
    -------
    flop_per_token : ndarray
        [FLOP/token]. This is MLPerf's convention (the benchmark csv's ``flop_convention``);
        Narayanan et al. 2021 Eq. 3 counts attention non-causally (12 L h s).
    """
    return 6.0 * np.asarray(n_active_params, dtype=float) + 6.0 * n_layers * d_model * seq_len


def _tile(x, half):
    return x / (x + half)


def _gemm_time(m, k, n, peak, bw, elem_bytes, eff, half, latency=0.0):
    """Forward time of an (m x k) @ (k x n) GEMM: roofline of tile-efficient compute and HBM, plus a fixed latency."""
    flop = 2.0 * m * k * n
    t_c = flop / (eff * peak * _tile(m, half) * _tile(k, half) * _tile(n, half))
    t_m = elem_bytes * (m * k + k * n + m * n) / bw
    return np.maximum(t_c, t_m) + latency, t_c >= t_m


def _parameters(parameters):
    """Parameter set with the terms added after ``scalesim2026`` at their neutral values when absent,
    and each model switch it lacks as the shipped set has it."""
    shipped = THROUGHPUT_PARAMETERS[DEFAULT_PARAMETERS]
    p_ = dict(shipped if parameters is None else parameters)
    for k, v in NEUTRAL_PARAMETERS.items():
        p_.setdefault(k, v)
    for k in MODEL_SWITCHES:
        p_.setdefault(k, shipped[k])
    return p_


def training_step_time(n_params, n_active_params, n_layers, d_model, n_heads, n_kv_heads, mlp_params_per_layer,
                       vocab_size, seq_len, global_batch_tokens, n_chips, *, n_experts, top_k,
                       peak_flop_per_s, peak_16bit_flop_per_s, elem_bytes, hbm_bw_bytes_per_s, memory_bytes,
                       scale_up_domain, scale_up_bw_bytes_per_s, scale_out_bw_bytes_per_s,
                       tp, pp, vp, cp, ep, micro_batch, zero, recompute, dp=None, parameters=None,
                       host_link_bw_bytes_per_s=None,
                       matmul_fraction=1.0, wgrad_low_precision=1.0):
    """Step time, memory and time shares of one training step for one parallel plan.

    Parameters
    ----------
    n_params, n_active_params : array_like
        Total and per-token parameters, embeddings included [1].
    n_layers, d_model, n_heads, n_kv_heads : array_like
        Architecture [1].
    mlp_params_per_layer : array_like
        Active MLP parameters per layer (all routed experts used by one token for an MoE) [1].
    vocab_size : array_like
        Vocabulary [1].
    seq_len : array_like
        Sequence length [token].
    global_batch_tokens : array_like
        Tokens per optimizer step [token].
    n_chips : array_like
        Accelerators [1].
    n_experts, top_k : array_like
        Routed experts and experts per token (1, 1 for a dense model) [1].
    peak_flop_per_s : array_like
        Dense GEMM peak for the training dtype [FLOP/s]; NaN where unsupported.
    peak_16bit_flop_per_s : array_like
        Dense bf16/fp16 peak, used by attention and the output layer [FLOP/s].
    elem_bytes : array_like
        Bytes per GEMM operand element (2 for bf16, 1 for fp8/int8, 0.5 for fp4) [byte].
    hbm_bw_bytes_per_s, memory_bytes : array_like
        HBM bandwidth [byte/s] and capacity [byte] per chip.
    scale_up_domain : array_like
        Chips per scale-up (NVLink/ICI) domain [1].
    scale_up_bw_bytes_per_s, scale_out_bw_bytes_per_s : array_like
        Per-chip one-direction link bandwidths [byte/s].
    host_link_bw_bytes_per_s : array_like, optional
        Coherent CPU-GPU link (NVLink-C2C) per chip, one direction [byte/s]; NaN or None (a PCIe host)
        makes the offload plan (recompute code 3) infeasible.
    tp, pp, vp, cp, ep, micro_batch : array_like
        Plan: tensor, pipeline, virtual-pipeline (interleave), context and expert parallel
        degrees, and sequences per micro-batch [1].
    zero : array_like
        ZeRO stage 0-3 (3 = FSDP) [1].
    recompute : array_like
        Code of :data:`RECOMPUTE` (0 none, 1 selective, 2 full, 3 offload).
    dp : array_like, optional
        Forced data-parallel degree; a plan whose n_chips/(tp pp cp) differs is infeasible.
    parameters : dict, optional
        Efficiencies (default ``THROUGHPUT_PARAMETERS[DEFAULT_PARAMETERS]``).
    matmul_fraction : array_like, optional
        The chip's maximum achievable matmul FLOP/s over its dense peak
        (:attr:`scalesim.catalog.Hardware.matmul_fraction`) [1]: the ceiling of every tensor-core
        rate (GEMMs, attention, output layer), which the efficiencies scale. Default 1 (the
        datasheet peak); ignored by parameter sets with ``matmul_ceiling=False``.
    wgrad_low_precision : array_like, optional
        1 where the weight-gradient GEMM runs in the training dtype, 0 where it stays 16-bit
        (:data:`WGRAD_LOW_PRECISION`) [1]. Default 1.

    Returns
    -------
    dict of ndarray
        ``step_time_s`` [s] (NaN when infeasible), ``memory_per_chip_bytes`` [byte],
        ``reason`` (code of :data:`REASONS`, 0 when feasible), ``dp``, ``n_microbatches``,
        ``model_flop`` and ``hardware_flop`` per step [FLOP], and the times [s]
        ``compute``, ``memory_bound``, ``bubble``, ``exposed_tp_comm``, ``exposed_dp_comm``,
        ``exposed_ep_comm``, ``exposed_cp_comm``, ``recompute``.

    Notes
    -----
    Per micro-batch of T = b s / cp tokens and per layer, the forward GEMMs are QKV
    (T x h x (h + 2 kv h/a)/t), output (T x h/t x h) and the MLP's two halves (T x h x W/t,
    T x W/t x h, W = P_mlp / 2h). Each runs in max(2mkn / (eta peak g(m) g(k) g(n)), bytes / BW)
    plus ``gemm_latency_s`` (one per GEMM kernel; an MoE's local experts are one grouped GEMM),
    with g(x) = x / (x + x0), eta = ``gemm_efficiency`` x ``matmul_fraction`` (the measured
    achievable share of the chip's peak, the same for 8/4-bit operands of the dtype's own peak)
    scaled by ``low_precision_gemm_efficiency`` for 8/4-bit operands; backward costs twice the
    forward (input and weight gradients; with ``dtype_recipes`` the weight gradient at the 16-bit
    rate where ``wgrad_low_precision`` = 0, AQT int8), full recomputation once more. Causal
    attention costs 6 (T s h / t) FLOP at ``attention_efficiency`` x ``matmul_fraction`` x the
    16-bit peak; element-wise work moves ``elementwise_bytes_per_h`` h T / t bytes of HBM. Sequence-parallel TP moves
    8 (t-1)/t T h 2 bytes per layer (4 all-gathers and 4 reduce-scatters; Korthikanti Sec. 4.2.2),
    of which the fraction ``tp_comm_overlap`` hides behind the layer's GEMMs (Megatron-Core /
    Transformer Engine userbuffer overlap), at most their duration.

    MoE layers follow Megatron-Core's parallel folding (Liu et al. 2025, arXiv:2504.14960): the
    tp cp dp ranks of a stage split into ep x etp x edp expert ranks, with etp = tp when
    ep <= dp cp and etp = 1 when ep folds over tensor-parallel ranks. Each rank dispatches its
    T/t tokens' k copies (h 2 bytes each) by all-to-all, forward and backward, dispatch and
    combine; copies to EP peers inside the scale-up domain ride it, the others the scale-out
    network, concurrently. A local expert runs a GEMM of T k ep etp / (E t) tokens, width W/etp.

    A pipeline of p stages with v chunks runs m = B / (dp b) micro-batches in (m + (p-1)/v) t_mb
    (Narayanan Sec. 2.2.2). With ``stage_memory``, memory is that of the fuller of the first stage
    (the most micro-batches in flight) and the last (fewer, plus the fp32 logits), and grouped-query
    attention stores K and V kv dh wide; with ``dtype_recipes`` 8/4-bit GEMMs save their quantised
    inputs for the backward (:func:`_quantised_activation_saving`). The ZeRO-1/2 reduce-scatter +
    all-gather of the gradients, 2 (d-1)/d 2 N_local bytes, overlaps the last micro-batch; FSDP
    (ZeRO-3) moves 3 (d-1)/d 2 N_local bytes per micro-batch, overlapped with that micro-batch.
    """
    p_ = _parameters(parameters)
    j = _job(locals())
    reason = _feasibility(j, dp)
    lay = _layer_times(j, p_)
    mbt = _microbatch_time(j, lay, p_)
    dpt = _data_parallel_time(j, mbt.t_mb, p_)
    mem = _memory_per_chip(j, dpt.dense_local, dpt.expert_local)
    reason = np.where((reason == 0) & (mem > USABLE_MEMORY_FRACTION * j.memory_bytes), 5, reason).astype(np.int8)
    mb = np.ceil(j.m - 1e-9)
    step = mb * mbt.t_mb + mbt.bubble + dpt.exposed_dp + dpt.t_opt
    ok = reason == 0
    model_flop = model_flop_per_token(j.Na, j.L, j.h, j.s) * j.gbt
    nan = lambda x: np.where(ok, x, np.nan)  # noqa: E731
    per_stage = mb * j.layers_stage
    return dict(
        step_time_s=nan(step), memory_per_chip_bytes=mem, reason=reason, dp=j.d, n_microbatches=j.m,
        model_flop=model_flop, hardware_flop=model_flop + np.where(j.full, model_flop / 3.0, 0.0),
        compute=nan(per_stage * lay.compute + mb * mbt.t_logits),
        memory_bound=nan(per_stage * lay.membound + dpt.t_opt),
        recompute=nan(per_stage * lay.recompute),
        exposed_tp_comm=nan(per_stage * lay.tp),
        exposed_ep_comm=nan(per_stage * lay.ep),
        exposed_cp_comm=nan(per_stage * lay.cp + mb * mbt.t_p2p),
        exposed_dp_comm=nan(dpt.exposed_dp),
        bubble=nan(mbt.bubble),
    )


def _job(a):
    """The arguments of :func:`training_step_time` as float arrays, plus the derived layout."""
    f = lambda x: np.asarray(x, dtype=float)  # noqa: E731
    j = SimpleNamespace(
        t=f(a["tp"]), p=f(a["pp"]), v=f(a["vp"]), c=f(a["cp"]), e=f(a["ep"]), b=f(a["micro_batch"]),
        zero=f(a["zero"]), rc=f(a["recompute"]), L=f(a["n_layers"]), h=f(a["d_model"]), a=f(a["n_heads"]),
        kv=f(a["n_kv_heads"]), s=f(a["seq_len"]), V=f(a["vocab_size"]), n=f(a["n_chips"]), E=f(a["n_experts"]),
        k=f(a["top_k"]), N=f(a["n_params"]), Na=f(a["n_active_params"]), Pm=f(a["mlp_params_per_layer"]),
        gbt=f(a["global_batch_tokens"]), bw_hbm=f(a["hbm_bw_bytes_per_s"]), up_n=f(a["scale_up_domain"]),
        bw_up_raw=f(a["scale_up_bw_bytes_per_s"]), bw_out_raw=f(a["scale_out_bw_bytes_per_s"]),
        peak=f(a["peak_flop_per_s"]), peak16=f(a["peak_16bit_flop_per_s"]), eb=f(a["elem_bytes"]),
        memory_bytes=f(a["memory_bytes"]), wlp=f(a["wgrad_low_precision"]),
        bw_host=f(np.nan if a["host_link_bw_bytes_per_s"] is None else a["host_link_bw_bytes_per_s"]))
    p_ = a["p_"]
    j.mf = f(a["matmul_fraction"]) if p_["matmul_ceiling"] else np.ones(1)
    j.recipes = bool(p_["dtype_recipes"])  # the sets before scalesim2026f: every GEMM in the dtype
    j.stage_memory = bool(p_["stage_memory"])  # before scalesim2026f: logits on stage 1, K and V h wide
    j.expert_states = bool(p_["expert_dp_states"])  # before scalesim2026g: expert states over the dense DP group
    if not j.recipes:
        j.wlp = np.ones(1)
    j.bw_up = j.bw_up_raw * p_["scale_up_efficiency"]
    j.bw_out = j.bw_out_raw * p_["scale_out_efficiency"]
    j.d = j.n / (j.t * j.p * j.c)
    j.m = j.gbt / j.s / (j.d * j.b)
    j.moe = j.E > 1
    j.T = j.b * j.s / j.c
    j.dh = j.h / j.a
    j.full = j.rc == 2
    j.off = j.rc == 3
    j.layers_stage = np.ceil(j.L / (j.p * j.v)) * j.v
    # expert layout: ep x etp x edp = tp cp dp; folding over tp (etp = 1) once ep exceeds dp cp
    j.fold = j.e > j.d * j.c
    j.etp = np.where(j.fold, 1.0, j.t)
    j.ep_stride = np.where(j.fold, 1.0, j.t * j.c)  # ranks between EP peers (order tp-cp-ep-dp)
    j.d_exp = j.t * j.d * j.c / (j.e * j.etp)
    j.act_layer = _layer_activation_bytes(j)  # memory and the offload copy both need it: computed once
    return j


def _feasibility(j, dp):
    """Reason code of each plan (first failing constraint wins; 0 = structurally valid)."""
    reason = np.zeros(np.broadcast(j.t, j.p, j.c, j.n, j.L, j.peak, j.e, j.b).shape, dtype=np.int8)

    def flag(code, bad):
        nonlocal reason
        reason = np.where((reason == 0) & bad, code, reason).astype(np.int8)

    flag(8, ~np.isfinite(j.peak))
    flag(11, j.off & ~np.isfinite(j.bw_host))  # before the layout checks: it fails every plan of the chip
    flag(1, (j.t > j.up_n) | (j.t > j.a))
    flag(2, j.p > j.L)
    flag(10, (j.v > 1) & ((j.p < 2) | (j.p * j.v > j.L)))
    flag(3, np.abs(j.d - np.round(j.d)) > 1e-6)
    if dp is not None:
        flag(7, np.abs(j.d - np.asarray(dp, dtype=float)) > 1e-6)
    flag(9, (np.mod(j.s, j.c) != 0))
    group = np.where(j.fold, j.t * j.d * j.c, j.d * j.c)
    flag(6, (j.e > np.maximum(j.E, 1)) | (np.abs(np.mod(group, j.e)) > 1e-6) | (~j.moe & (j.e > 1)))
    flag(4, j.m < 1.0 - 1e-9)
    return reason


def _forward_gemms(j, p_, peak, elem_bytes, eff):
    """Forward GEMM time of one layer and micro-batch at one operand precision, and its compute-bound part [s]."""
    half, t, h, T, k, e, moe = p_["gemm_half_dim"], j.t, j.h, j.T, j.k, j.e, j.moe
    lat = p_["gemm_latency_s"]
    gemm = lambda m_, k_, n_: _gemm_time(m_, k_, n_, peak, j.bw_hbm, elem_bytes, eff, half, lat)  # noqa: E731
    t_qkv, c_qkv = gemm(T, h, (h + 2.0 * j.kv * j.dh) / t)
    t_o, c_o = gemm(T, h / t, h)
    width = j.Pm / (2.0 * h * np.where(moe, k, 1.0)) / np.where(moe, j.etp, t)  # one expert's half-width per rank
    m_mlp = np.where(moe, T * k * e * j.etp / (np.maximum(j.E, 1.0) * t), T)
    n_gemm = np.where(moe, np.maximum(j.E, 1.0) / e, 1.0)  # experts (GEMMs) per chip
    t_up, c_up = gemm(m_mlp, h, width)
    t_dn, c_dn = gemm(m_mlp, width, h)
    # every local expert runs its GEMM even with few tokens: weight traffic of E/ep experts
    fwd = t_qkv + t_o + n_gemm * (t_up + t_dn)
    fwd = fwd - (n_gemm - 1.0) * 2.0 * lat  # the local experts are one grouped GEMM: one latency each
    fwd_compute = ((t_qkv - lat) * c_qkv + (t_o - lat) * c_o + n_gemm * ((t_up - lat) * c_up + (t_dn - lat) * c_dn))
    return fwd, fwd_compute


def _layer_times(j, p_):
    """Per-layer, per-micro-batch times on one chip [s]: compute, memory-bound, recompute, exposed comm."""
    t, h, T, k, e, moe = j.t, j.h, j.T, j.k, j.e, j.moe
    eff16 = p_["gemm_efficiency"] * j.mf
    eff = eff16 * np.where(j.eb < 2.0, p_["low_precision_gemm_efficiency"], 1.0)
    fwd_gemm, fwd_gemm_compute = _forward_gemms(j, p_, j.peak, j.eb, eff)
    # backward: the input-gradient GEMM in the training dtype, the weight-gradient GEMM in it too
    # unless the dtype keeps it 16-bit (wgrad_low_precision = 0: MaxText's AQT int8)
    w = j.wlp
    if np.all(w == 1.0):
        gemm_all, gemm_compute = 3.0 * fwd_gemm, 3.0 * fwd_gemm_compute
    else:
        fwd16, fwd16_compute = _forward_gemms(j, p_, j.peak16, BYTES_16BIT, eff16)
        gemm_all = (2.0 + w) * fwd_gemm + (1.0 - w) * fwd16
        gemm_compute = (2.0 + w) * fwd_gemm_compute + (1.0 - w) * fwd16_compute
    t_attn_fwd = 2.0 * T * j.s * h / t / (p_["attention_efficiency"] * j.mf * j.peak16)
    # element-wise work moves HBM traffic in proportion to the layer's activations (Korthikanti
    # Eq. 1 bytes; an MoE's MLP part scales with top_k); 8/4-bit GEMMs add the casts of their
    # inputs (read 16-bit, write 8-bit: 3 bytes per element) in the forward and both backward
    # GEMMs
    act_bytes_layer = T * (ACT_ATTENTION_BYTES_PER_H * h + ACT_MLP_BYTES_PER_H * h
                           + ACT_MLP_BYTES_PER_WIDTH * j.Pm / (2.0 * h)) / t
    gemm_inputs = T * (3.0 * h + j.Pm / (2.0 * h)) / t
    cast_fwd = np.where(j.eb < 2.0, 3.0 * gemm_inputs, 0.0)  # one pass's casts; dW's only when it is low precision
    elementwise = p_["elementwise_bytes_per_h"] / (ACT_ATTENTION_BYTES_PER_H + ACT_MLP_BYTES_PER_H
                                                   + 2.0 * ACT_MLP_BYTES_PER_WIDTH) * act_bytes_layer
    t_elem = (elementwise + (2.0 + w) * cast_fwd) / j.bw_hbm
    t_elem_forward = (elementwise / 3.0 + cast_fwd) / j.bw_hbm  # what a recomputed forward moves
    full = j.full
    # TP: 8 collectives of (t-1)/t T h 2 bytes per layer (+4 when the forward is recomputed), a
    # fraction hidden behind the GEMMs of the layer
    t_tp = np.where(t > 1, np.where(full, 12.0, 8.0) * (t - 1) / t * T * h * BYTES_16BIT / j.bw_up, 0.0)
    gemm_layer = gemm_all + np.where(full, fwd_gemm, 0.0)
    tp = t_tp - np.minimum(p_["tp_comm_overlap"] * t_tp, gemm_layer)
    # EP: dispatch + combine, forward and backward, of the chip's T/t tokens' k copies
    ep_local = np.clip(j.up_n / j.ep_stride, 1.0, e)
    ep_bytes = 4.0 * T / t * k * h * BYTES_16BIT
    ep = np.where(moe & (e > 1), ep_bytes * np.maximum((ep_local - 1.0) / e / j.bw_up,
                                                       (e - ep_local) / e / j.bw_out), 0.0)
    # CP: ring exchange of K and V, forward once and backward twice, hidden behind attention
    bw_cp = np.where(t * j.c <= j.up_n, j.bw_up, j.bw_out)
    t_cp = np.where(j.c > 1, 3.0 * (j.c - 1) * T * 2.0 * j.kv * j.dh / t * BYTES_16BIT / bw_cp, 0.0)
    t_offload = _offload_time(j, gemm_all + 3.0 * t_attn_fwd + t_elem)
    return SimpleNamespace(
        compute=gemm_compute + 3.0 * t_attn_fwd,
        membound=gemm_all - gemm_compute + t_elem,
        recompute=np.where(full, fwd_gemm + t_attn_fwd + t_elem_forward, 0.0) + t_offload,
        tp=tp, ep=ep, cp=np.maximum(0.0, t_cp - 3.0 * t_attn_fwd))


def _microbatch_time(j, lay, p_):
    """Time of one micro-batch on one stage (layers, output layer, pipeline sends) and the bubble [s]."""
    logits_fwd, _ = _gemm_time(j.T, j.h, j.V / j.t, j.peak16, j.bw_hbm, BYTES_16BIT,
                               p_["gemm_efficiency"] * j.mf, p_["gemm_half_dim"], p_["gemm_latency_s"])
    t_logits = 3.0 * logits_fwd
    bw_pp = np.where(j.n <= j.up_n, j.bw_up, j.bw_out)
    t_p2p = np.where(j.p > 1, 2.0 * j.v * j.T * j.h / j.t * BYTES_16BIT / bw_pp, 0.0)
    per_layer = lay.compute + lay.membound + lay.recompute + lay.tp + lay.ep + lay.cp
    t_mb = j.layers_stage * per_layer + t_logits + t_p2p
    return SimpleNamespace(t_logits=t_logits, t_p2p=t_p2p, t_mb=t_mb, bubble=(j.p - 1.0) / j.v * t_mb)


def _data_parallel_time(j, t_mb, p_):
    """Local parameters, exposed gradient reduction and optimizer step [s]."""
    h, kv, dh, moe = j.h, j.kv, j.dh, j.moe
    attn_params = 2.0 * h * h + 2.0 * h * kv * dh
    expert_params = np.where(moe, j.L * j.Pm * np.maximum(j.E, 1.0) / np.maximum(j.k, 1.0), 0.0)
    dense_params = np.maximum(j.N - expert_params, j.L * attn_params)
    dense_local = dense_params / (j.t * j.p)
    expert_local = expert_params / (j.p * j.e * j.etp)
    d_dense, d_exp = j.d * j.c, j.d_exp
    beta = p_["dp_nic_exponent"]
    t_dp_step = 2.0 * BYTES_16BIT * (
        dense_local * (d_dense - 1) / d_dense / _data_parallel_bandwidth(j, d_dense, j.t, beta)
        + expert_local * np.maximum(d_exp - 1, 0) / np.maximum(d_exp, 1)
        / _data_parallel_bandwidth(j, d_exp, j.e * j.etp, beta))
    exposed_dp = np.where(j.zero >= 3, np.ceil(j.m) * np.maximum(0.0, 1.5 * t_dp_step - t_mb),
                          np.maximum(0.0, t_dp_step - t_mb))
    # optimizer: read/write fp32 master, m, v, grads of the local shard
    shard, shard_exp = (np.where(j.zero >= 1, g, 1.0) for g in _state_groups(j))
    t_opt = (2.0 * (BYTES_OPTIMIZER + BYTES_GRADS + BYTES_WEIGHTS) * (dense_local / shard + expert_local / shard_exp)
             / j.bw_hbm)
    return SimpleNamespace(dense_local=dense_local, expert_local=expert_local, exposed_dp=exposed_dp, t_opt=t_opt)


def _data_parallel_bandwidth(j, group, stride, beta):
    """Bus bandwidth of a data-parallel reduction over ``group`` ranks ``stride`` ranks apart [byte/s].

    Inside one scale-up domain it is the scale-up link. A group that leaves the domain has
    u = up_n / stride of its ranks in each domain (1 <= u <= group), each with its own NIC: a
    hierarchical or multi-channel ring can use all u NICs (beta = 1), a flat ring one (beta = 0);
    ``dp_nic_exponent`` = beta is fitted between, and the scale-up link caps it.
    """
    u = np.clip(j.up_n / stride, 1.0, np.maximum(group, 1.0))
    return np.where(stride * group <= j.up_n, j.bw_up, np.minimum(j.bw_up, u ** beta * j.bw_out))


def _state_groups(j):
    """Ranks over which ZeRO shards the states of a dense and of an expert parameter [1].

    A state can only be split among the ranks that hold a replica of its parameter: the dense data-
    parallel group (dp cp) for dense weights, and for an expert's the expert data-parallel group,
    tp dp cp / (ep etp) ranks (Megatron-Core's distributed optimizer keeps expert parameters in their
    own buffers over ``expert_data_parallel_group``). The sets before ``scalesim2026g``
    (``expert_dp_states=False``) shard both over dp cp.
    """
    d_dense = j.d * j.c
    return d_dense, np.where(j.expert_states, np.maximum(j.d_exp, 1.0), d_dense)


def _quantised_activation_saving(j):
    """Activation bytes per layer and micro-batch that 8/4-bit GEMMs save (Transformer Engine) [byte].

    A quantised GEMM keeps its cast input for the weight gradient instead of the 16-bit one: the
    QKV and MLP-up inputs (the norms' outputs, h each) and the MLP-down input (the gated unit's
    output, P_mlp / 3h wide for SwiGLU) save 2 - elem_bytes bytes per element; the attention output
    stays 16-bit for flash attention's own backward, so its quantised copy adds elem_bytes per element.
    """
    h, T, t = j.h, j.T, j.t
    per_token = (BYTES_16BIT - j.eb) * (2.0 * h + j.Pm / (3.0 * h)) - j.eb * h
    return np.where(j.eb < 2.0, per_token, 0.0) * T / t


def _state_bytes(zero, shard):
    """Bytes per parameter of weights, gradients and Adam states under ZeRO stage ``zero`` over ``shard`` ranks."""
    return np.select([zero <= 0, zero == 1, zero == 2],
                     [BYTES_WEIGHTS + BYTES_GRADS + BYTES_OPTIMIZER,
                      BYTES_WEIGHTS + BYTES_GRADS + BYTES_OPTIMIZER / shard,
                      BYTES_WEIGHTS + (BYTES_GRADS + BYTES_OPTIMIZER) / shard],
                     (BYTES_WEIGHTS + BYTES_GRADS + BYTES_OPTIMIZER) / shard)


def _layer_activation_bytes(j):
    """Activations one layer stores for its backward, per micro-batch, without recomputation [byte]."""
    h, T, t = j.h, j.T, j.t
    act = T * (ACT_ATTENTION_BYTES_PER_H * h + ACT_MLP_BYTES_PER_H * h + ACT_MLP_BYTES_PER_WIDTH * j.Pm / (2.0 * h)) / t
    if j.stage_memory:  # grouped-query attention stores K and V kv dh wide, not h (Korthikanti's 4h of them)
        act = act - T * 2.0 * BYTES_16BIT * (h - j.kv * j.dh) / t
    if j.recipes:
        act = act - j.wlp * _quantised_activation_saving(j)
    return act


def _offload_time(j, layer_work):
    """Exposed time of offloading one layer's activations to the CPU and back, per micro-batch [s].

    The layer's stored activations but its input (:func:`_layer_activation_bytes`) go out during its
    forward and come back during its backward, over the coherent CPU-GPU link (NVLink-C2C), behind
    the layer's own compute, communication excluded (``layer_work``); what the copy takes beyond it is
    exposed. Megatron-Bridge runs its GB200/GB300 FSDP Llama 3 70B recipes so (``cpu_offloading_num_layers``
    20-40; ``scripts/performance/configs/llama/llama3_workload_base_configs.py``).
    """
    if not np.any(j.off):
        return 0.0
    return np.where(j.off, np.maximum(2.0 * j.act_layer / j.bw_host - layer_work, 0.0), 0.0)


def _memory_per_chip(j, dense_local, expert_local):
    """Weights, gradients, optimizer states (sharded by ZeRO) and activations of the fullest stage [byte]."""
    h, T, t, full = j.h, j.T, j.t, j.full
    d_dense, d_exp = _state_groups(j)
    dense_bytes = _state_bytes(j.zero, d_dense)
    # every parameter at the dense sharding, plus what an expert's fewer holders add (exactly 0 when they
    # are the same ranks: the sets before scalesim2026g are bitwise what they were)
    states = dense_bytes * (dense_local + expert_local) + (_state_bytes(j.zero, d_exp) - dense_bytes) * expert_local
    act_full_layer = j.act_layer
    # full recomputation and offloading keep each layer's input only
    act_layer = np.where(full | j.off, T * ACT_FULL_RECOMPUTE_BYTES_PER_H * h / t, act_full_layer)
    mb = np.ceil(j.m - 1e-9)
    in_flight = np.minimum(j.p, np.maximum(mb, 1.0)) * (1.0 + np.where(j.v > 1, (j.p - 1) / (j.p * j.v), 0.0))
    # the first stage holds the most micro-batches in flight, the last the logits (fp32): the peak
    # is the larger of the two (one stage when pp = 1). Interleaved 1F1B warms the last rank up
    # with (v-1) p chunk micro-batches (Megatron-LM schedules.py, get_num_warmup_microbatches), so it
    # holds ((v-1) p + 1) / v stages' worth of one micro-batch, the first p (1 + 1/v) - 1/v (above)
    last_in_flight = np.minimum(np.where(j.v > 1, ((j.v - 1.0) * j.p + 1.0) / j.v, 1.0), np.maximum(mb, 1.0))
    act_first = np.ceil(j.L / j.p) * in_flight * act_layer
    logits = 4.0 * T * j.V / t
    act_last = np.ceil(j.L / j.p) * np.where(j.p > 1, last_in_flight, in_flight) * act_layer + logits
    if not j.stage_memory:
        act_last = act_first + logits
    # + the layer being recomputed; offloading double-buffers: one layer copied while the next computes
    act = (np.maximum(act_first, act_last) + np.where(full, act_full_layer, 0.0)
           + np.where(j.off, 2.0 * act_full_layer, 0.0))
    return states + act


def plan_grid(*, max_tp=72, moe=False, long_context=False, small=False, tiny=False, offload=False):
    """Candidate plans as flat arrays (the *plan axis*), every combination of the degrees.

    Parameters
    ----------
    max_tp : int, optional
        Largest tensor-parallel degree considered (the largest scale-up domain in the sweep).
    moe : bool, optional
        Include expert-parallel degrees 1-64 (else ep = 1).
    long_context : bool, optional
        Include context-parallel degrees 2-16 (else cp = 1).
    small : bool, optional
        A reduced grid (no FSDP, vp in {1, 2}, micro-batch in {1, 2}) for fast sweeps.
    tiny : bool, optional
        The smallest grid (ZeRO-1, vp = 1, micro-batch 1; tp, pp and recompute searched), used by
        :func:`structural_mfu`.
    offload : bool, optional
        Include activation offloading (recompute code 3) among the recompute modes; pass True when a
        chip of the sweep has a coherent CPU-GPU link (elsewhere the plan is infeasible).

    Returns
    -------
    dict of ndarray
        ``tp``, ``pp``, ``vp``, ``cp``, ``ep``, ``micro_batch``, ``zero``, ``recompute``, 1-d, same length.
    """
    tps = [x for x in (1, 2, 4, 8, 16, 32, 64, 72) if x <= max_tp]
    pps = [1, 2, 4, 8, 16, 32, 64]
    vps = [1] if tiny else [1, 2] if small else [1, 2, 4]
    cps = [1, 2, 4, 8, 16] if long_context else [1]
    eps = [1, 2, 4, 8, 16, 32, 64] if moe else [1]
    mbs = [1] if tiny else [1, 2] if small else [1, 2, 4, 8]
    zeros = [1] if (small or tiny) else [1, 3]
    rcs = [0, 2, 3] if offload else [0, 2]
    grids = np.meshgrid(tps, pps, vps, cps, eps, mbs, zeros, rcs, indexing="ij")
    names = ("tp", "pp", "vp", "cp", "ep", "micro_batch", "zero", "recompute")
    plans = {k: g.ravel().astype(float) for k, g in zip(names, grids)}
    keep = (plans["pp"] > 1) | (plans["vp"] == 1)
    return {k: x[keep] for k, x in plans.items()}


def search_plan(config, hardware, plans, *, forced=None, parameters=None, chunk=2**18):
    """Fastest feasible plan of every configuration (numpy broadcasting over a plan axis).

    Parameters
    ----------
    config : dict of ndarray
        Arguments of :func:`training_step_time` that describe the job (same 1-d length C).
    hardware : dict of ndarray
        The hardware keyword arguments of :func:`training_step_time` (length C).
    plans : dict of ndarray
        Candidate plans (length P), e.g. from :func:`plan_grid`.
    forced : dict of ndarray, optional
        Plan entries fixed per configuration (length C; NaN = search this entry). ``dp`` may be given.
    parameters : dict, optional
        Efficiencies.
    chunk : int, optional
        Maximum C x P elements evaluated at once (bounds memory).

    Returns
    -------
    best : dict of ndarray
        Outputs of :func:`training_step_time` at the fastest feasible plan (length C), the plan
        entries, and ``reason`` = the most common failure when no plan is feasible.
    """
    forced = forced or {}
    C = len(next(iter(config.values())))
    P = len(next(iter(plans.values())))
    rows = max(1, chunk // max(P, 1))
    pieces = []
    for start in range(0, C, rows):  # chunks bound memory; each chunk is one array computation
        sl = slice(start, min(C, start + rows))
        cfg = {k: np.asarray(x)[sl, None] for k, x in config.items()}
        hw = {k: np.asarray(x)[sl, None] for k, x in hardware.items()}
        pl = {k: x[None, :] for k, x in plans.items()}
        dp = None
        for k, x in forced.items():
            x = np.asarray(x, dtype=float)[sl, None]
            if k == "dp":
                dp = np.where(np.isnan(x), np.nan, x)
                continue
            pl[k] = np.where(np.isnan(x), pl[k], x)
        out = training_step_time(**cfg, **hw, **pl, dp=None, parameters=parameters)
        if dp is not None:
            bad = np.isfinite(dp) & (np.abs(out["dp"] - dp) > 1e-6)
            out["reason"] = np.where((out["reason"] == 0) & bad, 7, out["reason"]).astype(np.int8)
            out["step_time_s"] = np.where(bad, np.nan, out["step_time_s"])
        st = np.where(np.isfinite(out["step_time_s"]), out["step_time_s"], np.inf)
        i = np.argmin(st, axis=1)
        rr = np.arange(len(i))
        res = {}
        for k, x in out.items():
            x = np.broadcast_to(x, st.shape)
            res[k] = x[rr, i]
        for k, x in pl.items():
            res[k] = np.broadcast_to(x, st.shape)[rr, i]
        none = ~np.isfinite(st[rr, i])
        if none.any():  # "does not fit" when a structurally valid plan exists, else the most frequent failure
            codes = np.broadcast_to(out["reason"], st.shape)[none]
            counts = np.stack([(codes == j).sum(axis=1) for j in range(1, len(REASONS))], axis=1)
            res["reason"] = res["reason"].copy()
            res["reason"][none] = np.where((codes == 5).any(axis=1), 5, 1 + np.argmax(counts, axis=1))
        pieces.append(res)
    return {k: np.concatenate([pc[k] for pc in pieces]) for k in pieces[0]}


def search_plan_by_host_link(config, hardware, plans_for, *, forced=None, parameters=None):
    """:func:`search_plan` with the offload plans only where the chip can offload.

    ``plans_for(offload)`` gives the candidate plans with or without offloading (e.g. :func:`plan_grid`).
    Configurations whose chip has a coherent CPU-GPU link (finite ``host_link_bw_bytes_per_s``) search the
    plans with offloading, the others without. That is the same fastest plan as one search with offloading
    for all, in two-thirds of the work for the others, and their ``reason`` is never the offload plans'
    missing link.
    """
    link = np.isfinite(np.asarray(hardware.get("host_link_bw_bytes_per_s", np.nan), dtype=float))
    link = np.broadcast_to(link, np.shape(next(iter(config.values()))))
    if link.all() or not link.any():
        return search_plan(config, hardware, plans_for(bool(link.any())), forced=forced, parameters=parameters)
    out = None
    for sel, offload in ((~link, False), (link, True)):
        sub = lambda d: {k: np.broadcast_to(np.asarray(v), link.shape)[sel] for k, v in d.items()}  # noqa: E731
        part = search_plan(sub(config), sub(hardware), plans_for(offload),
                           forced=None if forced is None else sub(forced), parameters=parameters)
        if out is None:
            out = {k: np.empty(link.shape, dtype=np.asarray(v).dtype) for k, v in part.items()}
        for k, v in part.items():
            out[k][sel] = v
    return out


def structural_mfu(n_params, n_chips, hardware, *, n_active_params=None, seq_len=4096.0, dtype="bf16",
                   global_batch_tokens=None, parameters=None):
    """Structural MFU of the fastest fitting plan, broadcast over (n_params, n_chips, hardware).

    Parameters
    ----------
    n_params : array_like
        Total parameters [1], shape broadcastable with ``n_chips`` and the hardware arrays.
    n_chips : array_like
        Accelerators [1].
    hardware : dict of array_like
        Per-hardware arrays (broadcastable): ``peak_flop_per_s`` (for ``dtype``),
        ``peak_16bit_flop_per_s`` [FLOP/s], ``hbm_bw_bytes_per_s`` [byte/s], ``memory_bytes``
        [byte], ``scale_up_domain`` [1], ``scale_up_bw_bytes_per_s``,
        ``scale_out_bw_bytes_per_s`` [byte/s]; optional ``host_link_bw_bytes_per_s`` (NVLink-C2C
        to the CPU, which makes activation offloading a plan).
    n_active_params : array_like, optional
        Per-token parameters of an MoE [1] (default: dense, = n_params).
    seq_len : float, optional
        Sequence length [token] (default 4096).
    dtype : str, optional
        'bf16', 'fp16', 'fp8', 'int8' or 'fp4': the GEMM operand width and recipe where ``hardware``
        has no ``elem_bytes`` / ``wgrad_low_precision`` (:func:`hardware_arrays
        <scalesim.chain.training_throughput.hardware_arrays>` gives both, for its own dtype).
    global_batch_tokens : array_like, optional
        Tokens per step; default the larger of :func:`global_batch_tokens_gpt3` and one sequence
        per chip (so that large clusters stay feasible, as weak-scaled practice does).
    parameters : dict, optional
        Efficiencies.

    Returns
    -------
    mfu : ndarray
        Model FLOPs utilisation against ``peak_flop_per_s`` [1], NaN where no plan fits, with the
        broadcast shape of the inputs.
    """
    n_params = np.asarray(n_params, dtype=float)
    na = n_params if n_active_params is None else np.asarray(n_active_params, dtype=float)
    if global_batch_tokens is None:  # GPT-3's table, at least one sequence per chip (weak-scaled clusters)
        gbt = np.maximum(global_batch_tokens_gpt3(n_params), np.asarray(n_chips, dtype=float) * seq_len)
    else:
        gbt = global_batch_tokens
    arrays = [n_params, na, np.asarray(n_chips, dtype=float), np.asarray(gbt, dtype=float)]
    # the dtype's operand width and recipe unless the arrays carry them (hardware_arrays does, per element)
    optional = dict(matmul_fraction=1.0, elem_bytes=ELEM_BYTES[dtype],
                    wgrad_low_precision=WGRAD_LOW_PRECISION.get(dtype, 1.0), host_link_bw_bytes_per_s=np.nan)
    arrays += [np.asarray(hardware.get(k, optional[k]) if k in optional else hardware[k], dtype=float)
               for k in _HW_KEYS]
    shape = np.broadcast_shapes(*(x.shape for x in arrays))
    flat = [np.broadcast_to(x, shape).ravel() for x in arrays]
    N, Na, n, gbt = flat[:4]
    hw = dict(zip(_HW_KEYS, flat[4:]))
    # evaluate each distinct (N, Na, gbt) architecture once
    cfg = derive_config(N, Na, seq_len=np.full_like(N, float(seq_len)), global_batch_tokens=gbt)
    cfg["n_chips"] = n
    moe = bool(np.any(Na < N))
    max_tp = float(np.max(hw["scale_up_domain"]))
    best = search_plan_by_host_link(cfg, hw, lambda off: plan_grid(max_tp=max_tp, moe=moe, tiny=True, offload=off),
                                    parameters=parameters)
    mfu = best["model_flop"] / (n * best["step_time_s"] * hw["peak_flop_per_s"])
    return mfu.reshape(shape)


_HW_KEYS = ("peak_flop_per_s", "peak_16bit_flop_per_s", "hbm_bw_bytes_per_s", "memory_bytes",
            "scale_up_domain", "scale_up_bw_bytes_per_s", "scale_out_bw_bytes_per_s", "matmul_fraction",
            "elem_bytes", "wgrad_low_precision", "host_link_bw_bytes_per_s")
#: Bytes per GEMM operand element by training dtype.
ELEM_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp32": 4.0, "tf32": 4.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5,
              "nvfp4": 0.5, "mxfp4": 0.5}
#: Whether a training dtype also runs the weight-gradient GEMM (dW = X^T dY) in low precision
#: (1) or keeps it 16-bit (0); dtypes absent here run it in low precision. int8 training is
#: Google's AQT as MaxText runs it (its MLPerf GPT-3 recipe, ``quantization: int8``):
#: ``AQT_INT8_CONFIG = config_v3(fwd_bits=8, dlhs_bits=8, drhs_bits=None, ...)`` in
#: MaxText ``layers/quantizations.py`` quantizes the forward and input-gradient GEMMs only.
#: Transformer Engine's fp8 and nvfp4 recipes quantize all three GEMMs (fprop, dgrad, wgrad).
WGRAD_LOW_PRECISION = {"int8": 0.0}
