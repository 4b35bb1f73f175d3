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

import numpy as np

__all__ = [
    "THROUGHPUT_PARAMETERS",
    "REASONS",
    "RECOMPUTE",
    "architecture_aspect_ratio",
    "global_batch_tokens_gpt3",
    "model_flop_per_token",
    "training_step_time",
    "plan_grid",
    "search_plan",
    "structural_mfu",
]

#: Fitted global parameters of :func:`training_step_time` (pvlib style: a refit gets a new key).
#: ``gemm_efficiency``: fraction of the dense peak reached by a large GEMM [1];
#: ``gemm_half_dim``: GEMM dimension at which a dimension's tile efficiency is one half [1];
#: ``attention_efficiency``: flash-attention FLOP rate as a fraction of the 16-bit peak [1];
#: ``elementwise_bytes_per_h``: HBM traffic of the non-GEMM ops per token per layer, forward
#: plus backward, in units of d_model bytes [byte];
#: ``scale_up_efficiency``, ``scale_out_efficiency``: achieved collective bus bandwidth as a
#: fraction of the catalogue link bandwidth [1].
THROUGHPUT_PARAMETERS = {
    "scalesim2026": dict(
        gemm_efficiency=0.9397, gemm_half_dim=136.3, attention_efficiency=0.2698,
        elementwise_bytes_per_h=578.9, scale_up_efficiency=0.6187, scale_out_efficiency=1.0,
        source="least-squares fit of log step time to data/training_throughput_benchmarks.csv "
               "(scalesim.calibration.throughput.fit_throughput_parameters)",
    ),
}
DEFAULT_PARAMETERS = "scalesim2026"

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
)
#: Recompute modes and their codes.
RECOMPUTE = {"none": 0, "selective": 1, "full": 2}

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
#: d_model / n_layers of published dense models: GPT-3 175B 12288/96 = 128 (Brown et al. 2020,
#: arXiv:2005.14165, Table 2.1); Llama 3 8B 4096/32 = 128, 405B 16384/126 = 130 (Grattafiori
#: et al. 2024, arXiv:2407.21783, Table 3).
ASPECT_RATIO = 128.0
#: Attention head size of the same models [1].
HEAD_DIM = 128.0
#: Default vocabulary (Llama 3, Grattafiori et al. 2024).
DEFAULT_VOCAB = 128256.0
#: GPT-3's batch size by model size, Brown et al. 2020 Table 2.1 (n_params, tokens per batch).
GPT3_BATCH_TABLE = ((125e6, 0.5e6), (350e6, 0.5e6), (760e6, 0.5e6), (1.3e9, 1e6), (2.7e9, 1e6),
                    (6.7e9, 2e6), (13e9, 2e6), (175e9, 3.2e6))
#: Routed experts per token assumed when an MoE's width is unknown (DeepSeek-V3, Qwen3: 8).
DEFAULT_TOP_K = 8.0


def architecture_aspect_ratio(n_params, *, aspect_ratio=ASPECT_RATIO, head_dim=HEAD_DIM):
    """Layers, width and heads of a dense decoder of ``n_params`` parameters.

    Parameters
    ----------
    n_params : array_like
        Parameters [1], > 0.
    aspect_ratio : float, optional
        d_model / n_layers [1] (default 128, GPT-3 175B and Llama 3).
    head_dim : float, optional
        Attention head size [1].

    Returns
    -------
    n_layers, d_model, n_heads : ndarray
        Integers as floats [1]; d_model is a multiple of ``head_dim``.

    Notes
    -----
    With N = 12 L h^2 (Kaplan et al. 2020, Eq. 2.1, embeddings neglected) and h = r L,
    L = (N / (12 r^2))^(1/3).
    """
    n = np.asarray(n_params, dtype=float)
    layers = np.maximum(np.round((n / (12.0 * aspect_ratio ** 2)) ** (1.0 / 3.0)), 2.0)
    d_model = np.maximum(np.round(np.sqrt(n / (12.0 * layers)) / head_dim), 1.0) * head_dim
    return layers, d_model, d_model / head_dim


def global_batch_tokens_gpt3(n_params):
    """Tokens per global batch of published practice: GPT-3's Table 2.1, log-interpolated.

    Parameters
    ----------
    n_params : array_like
        Parameters [1].

    Returns
    -------
    global_batch_tokens : ndarray
        Tokens per step [token]; 0.5M below 760M, 3.2M at 175B, extrapolated beyond 175B along
        the last segment's slope in log-log (Llama 3 405B used 4M-16M, Grattafiori et al. 2024).

    References
    ----------
    .. [1] Brown et al. 2020, arXiv:2005.14165, Table 2.1.
    """
    x = np.log(np.array([p for p, _ in GPT3_BATCH_TABLE]))
    y = np.log(np.array([b for _, b in GPT3_BATCH_TABLE]))
    ln = np.log(np.asarray(n_params, dtype=float))
    slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    out = np.where(ln > x[-1], y[-1] + slope * (ln - x[-1]), np.interp(ln, x, y))
    return np.exp(out)


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


def _gemm_time(m, k, n, peak, bw, elem_bytes, eff, half):
    """Forward time of an (m x k) @ (k x n) GEMM: roofline of tile-efficient compute and HBM."""
    flop = 2.0 * m * k * n
    t_c = flop / (eff * peak * _tile(m, half) * _tile(k, half) * _tile(n, half))
    t_m = elem_bytes * (m * k + k * n + m * n) / bw
    return np.maximum(t_c, t_m), t_c >= t_m


def training_step_time(n_params, n_active_params, n_layers, d_model, n_heads, n_kv_heads, mlp_params_per_layer,
                       vocab_size, seq_len, global_batch_tokens, n_chips, *, n_experts, top_k,
                       peak_flop_per_s, peak_16bit_flop_per_s, elem_bytes, hbm_bw_bytes_per_s, memory_bytes,
                       scale_up_domain, scale_up_bw_bytes_per_s, scale_out_bw_bytes_per_s,
                       tp, pp, vp, cp, ep, micro_batch, zero, recompute, dp=None, parameters=None):
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
    tp, pp, vp, cp, ep, micro_batch : array_like
        Plan: tensor, pipeline, virtual-pipeline (interleave), context and expert parallel
        degrees, and sequences per micro-batch [1].
    zero : array_like
        ZeRO stage 0-3 (3 = FSDP) [1].
    recompute : array_like
        Code of :data:`RECOMPUTE` (0 none, 1 selective, 2 full).
    dp : array_like, optional
        Forced data-parallel degree; a plan whose n_chips/(tp pp cp) differs is infeasible.
    parameters : dict, optional
        Efficiencies (default ``THROUGHPUT_PARAMETERS['scalesim2026']``).

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
    T x W/t x h, W = P_mlp / 2h; an MoE expert sees T k ep / E tokens). Each runs in
    max(2mkn / (eta peak g(m) g(k) g(n)), bytes / BW) with g(x) = x / (x + x0); backward
    costs twice the forward, full recomputation once more. Causal attention costs
    6 (T s h / t) FLOP at ``attention_efficiency`` x the 16-bit peak; element-wise work moves
    ``elementwise_bytes_per_h`` h T / t bytes of HBM. Sequence-parallel TP moves
    8 (t-1)/t T h 2 bytes per layer (4 all-gathers and 4 reduce-scatters; Korthikanti Sec. 4.2.2),
    exposed. A pipeline of p stages with v chunks runs m = B / (dp b) micro-batches in
    (m + (p-1)/v) t_mb (Narayanan Sec. 2.2.2). The ZeRO-1/2 reduce-scatter + all-gather of the
    gradients, 2 (d-1)/d 2 N_local bytes, overlaps the last micro-batch; FSDP (ZeRO-3) moves
    3 (d-1)/d 2 N_local bytes per micro-batch, overlapped with that micro-batch.
    """
    p_ = THROUGHPUT_PARAMETERS[DEFAULT_PARAMETERS] if parameters is None else parameters
    eff, half = p_["gemm_efficiency"], p_["gemm_half_dim"]
    f = lambda x: np.asarray(x, dtype=float)  # noqa: E731
    t, p, v, c, e, b = f(tp), f(pp), f(vp), f(cp), f(ep), f(micro_batch)
    zero, rc = f(zero), f(recompute)
    L, h, a, kv, s, V = f(n_layers), f(d_model), f(n_heads), f(n_kv_heads), f(seq_len), f(vocab_size)
    n, E, k = f(n_chips), f(n_experts), f(top_k)
    N, Na, Pm = f(n_params), f(n_active_params), f(mlp_params_per_layer)
    bw_hbm, up_n = f(hbm_bw_bytes_per_s), f(scale_up_domain)
    bw_up = f(scale_up_bw_bytes_per_s) * p_["scale_up_efficiency"]
    bw_out = f(scale_out_bw_bytes_per_s) * p_["scale_out_efficiency"]
    peak, peak16, eb = f(peak_flop_per_s), f(peak_16bit_flop_per_s), f(elem_bytes)

    d = n / (t * p * c)
    seqs = f(global_batch_tokens) / s
    m = seqs / (d * b)
    moe = E > 1
    # ---- feasibility (first failing constraint wins)
    reason = np.zeros(np.broadcast(t, p, c, n, L, peak, e, b).shape, dtype=np.int8)

    def flag(code, bad):
        nonlocal reason
        reason = np.where((reason == 0) & bad, code, reason).astype(np.int8)

    flag(8, ~np.isfinite(peak))
    flag(1, (t > up_n) | (t > a))
    flag(2, p > L)
    flag(10, (v > 1) & ((p < 2) | (p * v > L)))
    flag(3, np.abs(d - np.round(d)) > 1e-6)
    if dp is not None:
        flag(7, np.abs(d - f(dp)) > 1e-6)
    flag(9, (np.mod(s, c) != 0))
    flag(6, (e > np.maximum(E, 1)) | (e > d * c) | (~moe & (e > 1)))
    flag(4, m < 1.0 - 1e-9)

    # ---- per micro-batch, per layer forward times on one chip
    T = b * s / c
    dh = h / a
    q_n = (h + 2.0 * kv * dh) / t
    t_qkv, c_qkv = _gemm_time(T, h, q_n, peak, bw_hbm, eb, eff, half)
    t_o, c_o = _gemm_time(T, h / t, h, peak, bw_hbm, eb, eff, half)
    width = Pm / (2.0 * h * np.where(moe, k, 1.0))  # one expert's (or the dense MLP's) half-width
    m_mlp = np.where(moe, T * k * e / np.maximum(E, 1.0), T)
    n_gemm = np.where(moe, np.maximum(E, 1.0) / e, 1.0)  # experts (GEMMs) per chip
    t_up, c_up = _gemm_time(m_mlp, h, width / t, peak, bw_hbm, eb, eff, half)
    t_dn, c_dn = _gemm_time(m_mlp, width / t, h, peak, bw_hbm, eb, eff, half)
    # every local expert runs its GEMM even with few tokens: weight traffic of E/ep experts
    t_mlp = n_gemm * (t_up + t_dn)
    fwd_gemm = t_qkv + t_o + t_mlp
    fwd_gemm_compute = (t_qkv * c_qkv + t_o * c_o + n_gemm * (t_up * c_up + t_dn * c_dn))
    t_attn_fwd = 2.0 * T * s * h / t / (p_["attention_efficiency"] * peak16)
    # element-wise work moves HBM traffic in proportion to the layer's activations (Korthikanti
    # Eq. 1 bytes; an MoE's MLP part scales with top_k); 8/4-bit GEMMs add the casts of their
    # inputs (read 16-bit, write 8-bit: 3 bytes per element) in the forward and both backward GEMMs
    act_bytes_layer = T * (ACT_ATTENTION_BYTES_PER_H * h + ACT_MLP_BYTES_PER_H * h
                           + ACT_MLP_BYTES_PER_WIDTH * Pm / (2.0 * h)) / t
    gemm_inputs = T * (3.0 * h + Pm / (2.0 * h)) / t
    cast_bytes = np.where(eb < 2.0, 3.0 * 3.0 * gemm_inputs, 0.0)
    t_elem_fwdbwd = (p_["elementwise_bytes_per_h"] / (ACT_ATTENTION_BYTES_PER_H + ACT_MLP_BYTES_PER_H
                                                      + 2.0 * ACT_MLP_BYTES_PER_WIDTH) * act_bytes_layer
                     + cast_bytes) / bw_hbm
    full = rc == 2
    layer_compute = 3.0 * (fwd_gemm_compute + t_attn_fwd)
    layer_membound = 3.0 * (fwd_gemm - fwd_gemm_compute) + t_elem_fwdbwd
    layer_recompute = np.where(full, fwd_gemm + t_attn_fwd + t_elem_fwdbwd / 3.0, 0.0)
    # TP: 8 collectives of (t-1)/t T h 2 bytes per layer (+4 when the forward is recomputed)
    n_tp = np.where(full, 12.0, 8.0)
    layer_tp = np.where(t > 1, n_tp * (t - 1) / t * T * h * BYTES_16BIT / bw_up, 0.0)
    # EP: dispatch + combine, forward and backward, of T k h 2 bytes
    bw_ep = np.where(t * c * e <= up_n, bw_up, bw_out)
    layer_ep = np.where(moe & (e > 1), 4.0 * (e - 1) / e * T * k * h * BYTES_16BIT / bw_ep, 0.0)
    # CP: ring exchange of K and V, forward once and backward twice, hidden behind attention
    bw_cp = np.where(t * c <= up_n, bw_up, bw_out)
    t_cp = np.where(c > 1, 3.0 * (c - 1) * T * 2.0 * kv * dh / t * BYTES_16BIT / bw_cp, 0.0)
    layer_cp = np.maximum(0.0, t_cp - 3.0 * t_attn_fwd)

    layers_stage = np.ceil(L / (p * v)) * v
    logits_fwd, _ = _gemm_time(T, h, V / t, peak16, bw_hbm, BYTES_16BIT, eff, half)
    t_logits = 3.0 * logits_fwd
    bw_pp = np.where(n <= up_n, bw_up, bw_out)
    t_p2p = np.where(p > 1, 2.0 * v * T * h / t * BYTES_16BIT / bw_pp, 0.0)
    per_layer = layer_compute + layer_membound + layer_recompute + layer_tp + layer_ep + layer_cp
    t_mb = layers_stage * per_layer + t_logits + t_p2p
    bubble = (p - 1.0) / v * t_mb

    # ---- data parallel
    attn_params = 2.0 * h * h + 2.0 * h * kv * dh
    expert_params = np.where(moe, L * Pm * np.maximum(E, 1.0) / np.maximum(k, 1.0), 0.0)
    dense_params = np.maximum(N - expert_params, L * attn_params)
    n_local = dense_params / (t * p) + expert_params / (t * p * e)
    d_dense, d_exp = d * c, d * c / e
    bw_dp = np.where(t * c * d <= up_n, bw_up, bw_out)
    grad_bytes = BYTES_16BIT * (dense_params / (t * p) * (d_dense - 1) / d_dense
                                + expert_params / (t * p * e) * np.maximum(d_exp - 1, 0) / np.maximum(d_exp, 1))
    fsdp = zero >= 3
    t_dp_step = 2.0 * grad_bytes / bw_dp
    exposed_dp = np.where(fsdp, np.ceil(m) * np.maximum(0.0, 1.5 * t_dp_step - t_mb),
                          np.maximum(0.0, t_dp_step - t_mb))
    # optimizer: read/write fp32 master, m, v, grads of the local shard
    shard = np.where(zero >= 1, d_dense, 1.0)
    t_opt = 2.0 * (BYTES_OPTIMIZER + BYTES_GRADS + BYTES_WEIGHTS) * n_local / shard / bw_hbm

    mb = np.ceil(m - 1e-9)
    step = mb * t_mb + bubble + exposed_dp + t_opt

    # ---- memory per chip (first pipeline stage)
    states = np.select([zero <= 0, zero == 1, zero == 2],
                       [BYTES_WEIGHTS + BYTES_GRADS + BYTES_OPTIMIZER,
                        BYTES_WEIGHTS + BYTES_GRADS + BYTES_OPTIMIZER / d_dense,
                        BYTES_WEIGHTS + (BYTES_GRADS + BYTES_OPTIMIZER) / d_dense],
                       (BYTES_WEIGHTS + BYTES_GRADS + BYTES_OPTIMIZER) / d_dense)
    act_full_layer = T * (ACT_ATTENTION_BYTES_PER_H * h + ACT_MLP_BYTES_PER_H * h
                          + ACT_MLP_BYTES_PER_WIDTH * Pm / (2.0 * h)) / t
    act_layer = np.where(full, T * ACT_FULL_RECOMPUTE_BYTES_PER_H * h / t, act_full_layer)
    in_flight = np.minimum(p, np.maximum(mb, 1.0)) * (1.0 + np.where(v > 1, (p - 1) / (p * v), 0.0))
    act = np.ceil(L / p) * in_flight * act_layer
    act = act + np.where(full, act_full_layer, 0.0)  # the layer being recomputed
    logits_bytes = 4.0 * T * V / t
    mem = states * n_local + act + logits_bytes
    flag(5, mem > USABLE_MEMORY_FRACTION * f(memory_bytes))

    ok = reason == 0
    model_flop = model_flop_per_token(Na, L, h, s) * f(global_batch_tokens)
    recompute_flop = np.where(full, model_flop / 3.0, 0.0)
    nan = lambda x: np.where(ok, x, np.nan)  # noqa: E731
    out = dict(
        step_time_s=nan(step), memory_per_chip_bytes=mem, reason=reason, dp=d, n_microbatches=m,
        model_flop=model_flop, hardware_flop=model_flop + recompute_flop,
        compute=nan(mb * (layers_stage * layer_compute + t_logits)),
        memory_bound=nan(mb * layers_stage * layer_membound + t_opt),
        recompute=nan(mb * layers_stage * layer_recompute),
        exposed_tp_comm=nan(mb * layers_stage * layer_tp),
        exposed_ep_comm=nan(mb * layers_stage * layer_ep),
        exposed_cp_comm=nan(mb * layers_stage * layer_cp + mb * t_p2p),
        exposed_dp_comm=nan(exposed_dp),
        bubble=nan(bubble),
    )
    return out


def plan_grid(*, max_tp=72, moe=False, long_context=False, small=False, tiny=False):
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
    rcs = [0, 2]
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
        ``scale_out_bw_bytes_per_s`` [byte/s].
    n_active_params : array_like, optional
        Per-token parameters of an MoE [1] (default: dense, = n_params).
    seq_len : float, optional
        Sequence length [token] (default 4096).
    dtype : str, optional
        'bf16', 'fp16', 'fp8', 'int8' or 'fp4' (sets the GEMM operand width).
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
    arrays += [np.asarray(hardware[k], dtype=float) for k in _HW_KEYS]
    shape = np.broadcast_shapes(*(x.shape for x in arrays))
    flat = [np.broadcast_to(x, shape).ravel() for x in arrays]
    N, Na, n, gbt = flat[:4]
    hw = dict(zip(_HW_KEYS, flat[4:]))
    hw["elem_bytes"] = np.full_like(N, ELEM_BYTES[dtype])
    # evaluate each distinct (N, Na, gbt) architecture once
    cfg = derive_config(N, Na, seq_len=np.full_like(N, float(seq_len)), global_batch_tokens=gbt)
    cfg["n_chips"] = n
    moe = bool(np.any(Na < N))
    plans = plan_grid(max_tp=float(np.max(hw["scale_up_domain"])), moe=moe, tiny=True)
    best = search_plan(cfg, hw, plans, parameters=parameters)
    mfu = best["model_flop"] / (n * best["step_time_s"] * hw["peak_flop_per_s"])
    return mfu.reshape(shape)


_HW_KEYS = ("peak_flop_per_s", "peak_16bit_flop_per_s", "hbm_bw_bytes_per_s", "memory_bytes",
            "scale_up_domain", "scale_up_bw_bytes_per_s", "scale_out_bw_bytes_per_s")
#: Bytes per GEMM operand element by training dtype.
ELEM_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp32": 4.0, "tf32": 4.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5,
              "nvfp4": 0.5, "mxfp4": 0.5}


def derive_config(n_params, n_active_params, *, seq_len, global_batch_tokens, n_layers=None, d_model=None,
                  n_heads=None, n_kv_heads=None, ffn_dim=None, vocab_size=None, n_experts=None, top_k=None):
    """Fill a job's architecture from its parameter counts (1-d arrays; NaN = not given).

    The aspect-ratio rule (:func:`architecture_aspect_ratio`) gives missing layers, width and
    heads; kv heads default to the query heads; the vocabulary to Llama 3's; the MLP is what the
    parameter count leaves after attention and (untied) embeddings. An MoE (active < total)
    without ``n_experts``/``top_k`` takes the expert count from the ratio of the parameters left
    for experts, with ``ffn_dim`` (per-expert width, SwiGLU: 3 h F per expert) or top_k = 8.

    Returns
    -------
    dict of ndarray
        The job arguments of :func:`training_step_time`.
    """
    N = np.asarray(n_params, dtype=float)
    Na = np.asarray(n_active_params, dtype=float)
    nan = np.full_like(N, np.nan)
    g = lambda x: nan if x is None else np.broadcast_to(np.asarray(x, dtype=float), N.shape)  # noqa: E731
    L_r, h_r, a_r = architecture_aspect_ratio(Na)
    L = np.where(np.isnan(g(n_layers)), L_r, g(n_layers))
    h = np.where(np.isnan(g(d_model)), h_r, g(d_model))
    a = np.where(np.isnan(g(n_heads)), np.maximum(np.round(h / HEAD_DIM), 1.0), g(n_heads))
    kv = np.where(np.isnan(g(n_kv_heads)), a, g(n_kv_heads))
    V = np.where(np.isnan(g(vocab_size)), DEFAULT_VOCAB, g(vocab_size))
    attn = 2.0 * h * h + 2.0 * h * kv * (h / a)
    emb = 2.0 * V * h
    left_total = N - emb - L * attn
    left_active = Na - emb - L * attn
    # tied or small embeddings: never let the MLP fall below 2h^2 per layer
    mlp_active = np.maximum(left_active / L, 2.0 * h * h)
    mlp_total = np.maximum(left_total / L, mlp_active)
    moe = N > Na * (1 + 1e-6)
    F = g(ffn_dim)
    k_from_f = mlp_active / (3.0 * h * F)
    k = np.where(np.isnan(g(top_k)), np.where(np.isnan(F), DEFAULT_TOP_K, np.maximum(k_from_f, 1.0)), g(top_k))
    E = np.where(np.isnan(g(n_experts)), np.maximum(np.round(k * mlp_total / mlp_active), k), g(n_experts))
    k = np.where(moe, k, 1.0)
    E = np.where(moe, E, 1.0)
    return dict(n_params=N, n_active_params=Na, n_layers=L, d_model=h, n_heads=a, n_kv_heads=kv,
                mlp_params_per_layer=mlp_active, vocab_size=V, seq_len=np.broadcast_to(seq_len, N.shape) * 1.0,
                global_batch_tokens=np.broadcast_to(global_batch_tokens, N.shape) * 1.0, n_experts=E, top_k=k)
