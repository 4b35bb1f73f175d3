"""Roofline model of LLM serving: prefill and decode on a tensor/expert-parallel replica (pure numpy).

One replica of ``n_chips`` accelerators serves ``batch_size`` concurrent sequences with continuous
batching (vLLM, Kwon et al. 2023). Every decode step produces one token per running sequence and
costs, per chip, the compute time FLOP / (eta_c peak) plus the memory time bytes / (eta BW) of
its two kinds of kernels:

* the weight GEMMs: 2 N_active b FLOP against the bytes of the weights the batch touches;
* attention over the KV cache: 4 L a d_head c b FLOP against the KV cache bytes;

plus the bandwidth of the tensor-parallel all-reduces (and expert-parallel all-to-alls) on the
scale-up link and a fixed overhead per layer. The terms add: at the batch sizes served, measured
step time grows linearly in batch from batch 8 on (ML.ENERGY: 77 us per sequence for an 8B model
on H100), not flat-then-linear as a single max(compute, memory) would have it, because the
kernels of a step run one after another and each is only partly overlapped. At batch 1 the step
is the weight bytes over the achieved bandwidth plus the per-layer overhead. Prefill is
compute-bound over the prompt and is folded into the decode steps (chunked prefill), so it costs
throughput and energy but not the median inter-token latency. Chip power rises linearly with the time shares of memory-bound and
compute-bound work between idle and TDP.

The few global constants are in :data:`SERVING_PARAMETERS` (fitted by
:mod:`scalesim.calibration.serving` on ML.ENERGY leaderboard v3 measurements); everything that
varies with hardware comes from the catalogue (HBM bandwidth and capacity, per-dtype peaks, link
bandwidth, TDP), so the model carries to accelerators and MoE models outside the fit.

Units: bytes, seconds, FLOP, watts; bandwidths per chip, one direction.

References
----------
.. [1] Williams, Waterman, Patterson 2009, "Roofline: an insightful visual performance model",
   CACM 52(4), doi:10.1145/1498765.1498785.
.. [2] Pope et al. 2023, "Efficiently Scaling Transformer Inference", MLSys, arXiv:2211.05102
   (memory-bound decode, weight and KV-cache traffic, tensor-parallel collectives).
.. [3] Kwon et al. 2023, "Efficient Memory Management for LLM Serving with PagedAttention",
   SOSP, arXiv:2309.06180 (continuous batching, KV-cache capacity).
.. [4] Chung et al. 2025, "The ML.ENERGY Benchmark", NeurIPS Datasets and Benchmarks,
   arXiv:2505.06371 (steady-state GPU energy per output token).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SERVING_PARAMETERS",
    "DEFAULT_PARAMETERS",
    "WEIGHT_BYTES",
    "experts_touched",
    "kv_cache_bytes_per_token",
    "default_kv_heads",
    "decode_step_time",
    "prefill_time",
    "chip_power_w",
    "serving_roofline",
]

#: Fitted global parameters (pvlib style: a refit gets a new key, the old one stays).
#: ``hbm_efficiency``: achieved fraction of the catalogue HBM bandwidth while streaming weights
#: [1] (the fit sits at its physical bound 1.0, trading against ``layer_overhead_s``);
#: ``gemm_efficiency``: achieved fraction of the dense peak of the weights' dtype (attention: of
#: the 16-bit peak) by the arithmetic of a decode step or a prefill [1]; ``layer_overhead_s``:
#: fixed time per layer per step (kernel launches and the small element-wise, norm and
#: synchronisation kernels of a layer, tensor-parallel collective latency included) [s];
#: ``kv_efficiency``: achieved fraction of the HBM bandwidth while paged attention reads the KV
#: cache (short, scattered blocks per sequence) [1]; ``memory_power_fraction``: power above
#: idle, as a fraction of (TDP - idle), of a chip whose whole step streams HBM (arithmetic at
#: its achieved rate draws TDP) [1]. Least-squares fit of log energy per output token and log
#: median inter-token latency (equal weights) on the 104 rows of
#: data/inference_energy_measurements.csv (ML.ENERGY leaderboard v3, vLLM, H100);
#: ``scalesim.calibration.serving.fit_serving_parameters`` reproduces it and
#: tests/models/test_serving.py pins the refit.
SERVING_PARAMETERS = {
    "mlenergy2026": dict(
        hbm_efficiency=1.0, gemm_efficiency=0.4834, layer_overhead_s=8.437e-5, kv_efficiency=0.2818,
        memory_power_fraction=0.9798,
        source="least-squares fit on data/inference_energy_measurements.csv (ML.ENERGY leaderboard v3, "
               "scalesim.calibration.serving.fit_serving_parameters)",
    ),
    # refit after the architecture rule moved to models/transformer_shape.py (same data, same form)
    "mlenergy2026b": dict(
        hbm_efficiency=1.0, gemm_efficiency=0.4655, layer_overhead_s=8.535e-5, kv_efficiency=0.2898,
        memory_power_fraction=0.9757,
        source="least-squares fit on data/inference_energy_measurements.csv (ML.ENERGY leaderboard v3, "
               "scalesim.calibration.serving.fit_serving_parameters), 2026-12-01 refit",
    ),
}
DEFAULT_PARAMETERS = "mlenergy2026b"
FIT_KEYS = ("hbm_efficiency", "gemm_efficiency", "layer_overhead_s", "kv_efficiency", "memory_power_fraction")

#: Bytes per stored weight element by serving dtype (int4/fp4 block formats: 4 bits; their
#: per-block scales, 1 byte per 16-32 weights, are neglected).
WEIGHT_BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5,
                "fp4": 0.5, "nvfp4": 0.5, "mxfp4": 0.5}
#: Bytes per activation element moved by tensor-parallel collectives (16-bit activations).
ACTIVATION_BYTES = 2.0
#: Query heads per KV head of grouped-query attention when the KV heads are not given: 8 KV
#: heads, the choice of Llama 3 at 8B, 70B and 405B (Grattafiori et al. 2024, arXiv:2407.21783,
#: Table 3), Qwen3 8B-32B and Mistral 7B; smaller models keep one KV head per query head.
DEFAULT_KV_HEADS = 8.0


def _p(parameters):
    p = SERVING_PARAMETERS[DEFAULT_PARAMETERS] if parameters is None else parameters
    return {k: p[k] for k in FIT_KEYS}


def default_kv_heads(n_heads):
    """KV heads by the grouped-query rule: min(n_heads, 8) (Llama 3, Qwen3, Mistral) [1]."""
    return np.minimum(np.asarray(n_heads, dtype=float), DEFAULT_KV_HEADS)


def experts_touched(n_experts, top_k, n_tokens):
    """Expected distinct experts a batch routes to, per MoE layer [1].

    Parameters
    ----------
    n_experts, top_k : array_like
        Routed experts per layer and experts per token [1] (1, 1 for a dense model).
    n_tokens : array_like
        Tokens in the step (the running batch at decode) [1].

    Returns
    -------
    ndarray
        E (1 - (1 - k/E)^n): k at one token, approaching E at large batch.

    Notes
    -----
    Assumes each token picks its k experts uniformly and independently of the other tokens.
    Real routers are skewed toward popular experts, so this is an upper bound on the expected
    count at intermediate batch (more weight traffic than measured).
    """
    E, k = np.asarray(n_experts, dtype=float), np.asarray(top_k, dtype=float)
    return E * (1.0 - (1.0 - k / E) ** np.asarray(n_tokens, dtype=float))


def kv_cache_bytes_per_token(n_layers, n_kv_heads, head_dim, kv_bytes):
    """KV-cache bytes per token of context: 2 (K and V) L n_kv d_head bytes [byte]."""
    return 2.0 * np.asarray(n_layers, dtype=float) * n_kv_heads * head_dim * kv_bytes


def _collectives_s(n_layers, tokens_per_rank, d_model, tp, ep, top_k, scale_up_bw_bytes_per_s, latency_s, link_efficiency):
    """Per-step time of tensor-parallel all-reduces and expert-parallel all-to-alls [s].

    Two ring all-reduces per layer of T h activations over tp chips (Megatron, Shoeybi et al.
    2019, arXiv:1909.08053, Sec. 3), each latency + 2 (t-1)/t T h bytes / (eff BW); with ep > 1
    a dispatch and a combine all-to-all per layer, each latency + (e-1)/e T k h bytes / (eff BW).
    """
    bw = scale_up_bw_bytes_per_s * link_efficiency
    act = tokens_per_rank * d_model * ACTIVATION_BYTES
    t_tp = np.where(tp > 1, 2.0 * n_layers * (latency_s + 2.0 * (tp - 1.0) / tp * act / bw), 0.0)
    t_ep = np.where(ep > 1, 2.0 * n_layers * (latency_s + (ep - 1.0) / ep * act * top_k / bw), 0.0)
    return t_tp + t_ep


def decode_step_time(batch_size, context_tokens, *, n_active_params, weight_bytes_read, kv_bytes_per_token,
                     n_layers, d_model, n_heads, head_dim, n_kv_heads, top_k, n_chips, tp, ep,
                     peak_flop_per_s, peak_16bit_flop_per_s, hbm_bw_bytes_per_s, scale_up_bw_bytes_per_s,
                     link_efficiency, parameters=None):
    """Time of one decode step of a replica and its compute/memory time shares.

    Parameters
    ----------
    batch_size : array_like
        Running sequences, one new token each [1].
    context_tokens : array_like
        Mean tokens in each sequence's KV cache [token].
    n_active_params : array_like
        Parameters used per token [1].
    weight_bytes_read : array_like
        Weight bytes the step reads per chip (touched experts only) [byte].
    kv_bytes_per_token : array_like
        KV-cache bytes per token of context held per chip [byte].
    n_layers, d_model, n_heads, head_dim, n_kv_heads, top_k : array_like
        Architecture [1].
    n_chips, tp, ep : array_like
        Chips of the replica, tensor- and expert-parallel degrees [1].
    peak_flop_per_s, peak_16bit_flop_per_s : array_like
        Dense peak of the weights' dtype and the 16-bit peak (attention) per chip [FLOP/s].
    hbm_bw_bytes_per_s, scale_up_bw_bytes_per_s : array_like
        HBM and scale-up link bandwidth per chip [byte/s].
    link_efficiency : array_like
        Achieved fraction of the link bandwidth by collectives [1].
    parameters : dict, optional
        Default ``SERVING_PARAMETERS['mlenergy2026']``.

    Returns
    -------
    dict of ndarray
        ``step_s`` [s], and the shares of the step during which HBM (``hbm_share``) and the
        arithmetic units (``compute_share``) are busy [1].

    Notes
    -----
    Per chip, t = 2 N_a b / n / (eta_c P) + W / (eta_m B) + 4 L a d c b / n / (eta_c P16)
    + b c kv / dp / (eta_kv B) + t_collectives + L t_layer, with dp = n / tp ranks of attention.
    """
    p = _p(parameters)
    b, c = np.asarray(batch_size, dtype=float), np.asarray(context_tokens, dtype=float)
    dp = n_chips / tp
    gemm_c = 2.0 * n_active_params * b / n_chips / (p["gemm_efficiency"] * peak_flop_per_s)
    gemm_m = weight_bytes_read / (p["hbm_efficiency"] * hbm_bw_bytes_per_s)
    attn_c = 4.0 * n_layers * n_heads * head_dim * c * b / n_chips / (p["gemm_efficiency"] * peak_16bit_flop_per_s)
    attn_m = b / dp * c * kv_bytes_per_token / (p["kv_efficiency"] * hbm_bw_bytes_per_s)
    comm = _collectives_s(n_layers, b / dp, d_model, tp, ep, top_k, scale_up_bw_bytes_per_s,
                          0.0, link_efficiency)
    step = gemm_c + gemm_m + attn_c + attn_m + comm + p["layer_overhead_s"] * n_layers
    return dict(step_s=step, hbm_share=(gemm_m + attn_m) / step, compute_share=(gemm_c + attn_c) / step,
                collective_s=comm)


def prefill_time(input_tokens, *, n_active_params, n_layers, d_model, n_heads, head_dim, n_chips, tp,
                 peak_flop_per_s, peak_16bit_flop_per_s, scale_up_bw_bytes_per_s, link_efficiency, parameters=None):
    """Compute-bound prefill time of one prompt on a replica [s].

    Parameters
    ----------
    input_tokens : array_like
        Prompt length [token].
    n_active_params, n_layers, d_model, n_heads, head_dim : array_like
        Architecture [1].
    n_chips, tp : array_like
        Chips of the replica and tensor-parallel degree [1].
    peak_flop_per_s, peak_16bit_flop_per_s, scale_up_bw_bytes_per_s, link_efficiency : array_like
        As in :func:`decode_step_time`.
    parameters : dict, optional
        Default ``SERVING_PARAMETERS['mlenergy2026']``.

    Returns
    -------
    ndarray
        [s]: (2 N_a s / (eta_c P) + 2 L a d s^2 / (eta_c P16)) / n plus the bandwidth term of the
        tensor-parallel all-reduces (their latency is shared with the decode step the prompt
        rides in under chunked prefill).
    """
    p = _p(parameters)
    s = np.asarray(input_tokens, dtype=float)
    gemm = 2.0 * n_active_params * s / (p["gemm_efficiency"] * peak_flop_per_s)
    attn = 2.0 * n_layers * n_heads * head_dim * s * s / (p["gemm_efficiency"] * peak_16bit_flop_per_s)
    comm = _collectives_s(n_layers, s / (n_chips / tp), d_model, tp, 1.0, 1.0, scale_up_bw_bytes_per_s, 0.0,
                          link_efficiency)
    return (gemm + attn) / n_chips + comm


def chip_power_w(hbm_share, compute_share, *, tdp_w, idle_w, parameters=None):
    """Average accelerator power from the busy shares of HBM and arithmetic units [W].

    Parameters
    ----------
    hbm_share, compute_share : array_like
        Fractions of the time during which HBM streams at its achieved bandwidth and the
        arithmetic units run at their achieved rate [1].
    tdp_w, idle_w : array_like
        Rated (maximum) and idle power per chip [W].
    parameters : dict, optional
        Default ``SERVING_PARAMETERS['mlenergy2026']``.

    Returns
    -------
    ndarray
        P = P_idle + (TDP - P_idle) min(1, f_m s_hbm + s_compute), between idle and TDP [W].
    """
    p = _p(parameters)
    u = np.clip(p["memory_power_fraction"] * np.asarray(hbm_share) + np.asarray(compute_share), 0.0, 1.0)
    return idle_w + (tdp_w - idle_w) * u


def replica_memory(*, n_params, expert_params, kv_bytes_per_token, n_chips, tp, weight_bytes, memory_bytes,
                   usable_fraction):
    """Weight bytes per chip and the KV-cache bytes per chip left for sequences [byte].

    Attention, embeddings and dense MLPs are split over ``tp`` (replicated over the n / tp
    data-parallel attention ranks); routed experts are spread over all ``n_chips``.
    """
    shared = n_params - expert_params
    weights = weight_bytes * (shared / tp + expert_params / n_chips)
    return weights, usable_fraction * memory_bytes - weights


def serving_roofline(config, hardware, *, batch_size, input_tokens, output_tokens, n_chips, tp, ep,
                     weight_bytes, kv_bytes, usable_memory_fraction, link_efficiency, parameters=None):
    """Decode, prefill, power and energy per output token of one serving replica.

    Parameters
    ----------
    config : dict of ndarray
        Architecture: ``n_params``, ``n_active_params``, ``n_layers``, ``d_model``, ``n_heads``,
        ``n_kv_heads``, ``vocab_size``, ``mlp_params_per_layer`` (active), ``n_experts``,
        ``top_k`` (as :func:`scalesim.models.parallelism.derive_config` returns) [1].
    hardware : dict of ndarray
        ``peak_flop_per_s`` (weights' dtype), ``peak_16bit_flop_per_s`` [FLOP/s],
        ``hbm_bw_bytes_per_s``, ``scale_up_bw_bytes_per_s`` [byte/s], ``memory_bytes`` [byte],
        ``tdp_w``, ``idle_w`` [W] per chip.
    batch_size : array_like
        Concurrent sequences asked for (vLLM ``max_num_seqs``) [1].
    input_tokens, output_tokens : array_like
        Prompt and generated tokens per request [token].
    n_chips, tp, ep : array_like
        Chips of the replica, tensor- and expert-parallel degrees [1].
    weight_bytes, kv_bytes : array_like
        Bytes per weight and per KV-cache element [byte].
    usable_memory_fraction, link_efficiency : float
        Share of HBM the server may fill; achieved share of the link bandwidth [1].
    parameters : dict, optional
        Default ``SERVING_PARAMETERS['mlenergy2026']``.

    Returns
    -------
    dict of ndarray
        ``step_s``, ``prefill_s`` [s], ``batch_running`` [1], ``tokens_per_s`` [1/s],
        ``chip_power_w`` [W] (decode), ``gpu_energy_per_token_j`` [J], ``weights_per_chip_bytes``,
        ``memory_needed_bytes``, ``memory_available_bytes`` [byte] per chip, ``feasible``.

    Notes
    -----
    The running batch is what the KV cache holds at the mean context c = s_in + s_out / 2
    (vLLM admits sequences while KV blocks are free). Per output token the replica spends
    t_step / b + t_prefill / s_out seconds and n (P_dec t_step / b + P_TDP-bound t_prefill / s_out)
    joules, prefill included (ML.ENERGY's boundary).
    """
    cfg = {k: np.asarray(v, dtype=float) for k, v in config.items()}
    L, h, a, kv = cfg["n_layers"], cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    moe = cfg["n_experts"] > 1
    expert_params = np.where(moe, L * _mlp_total_per_layer(cfg), 0.0)
    head_dim = h / a
    kv_chip = kv_cache_bytes_per_token(L, np.maximum(kv / tp, 1.0), head_dim, kv_bytes)
    weights, kv_room = replica_memory(n_params=cfg["n_params"], expert_params=expert_params,
                                      kv_bytes_per_token=kv_chip, n_chips=n_chips, tp=tp, weight_bytes=weight_bytes,
                                      memory_bytes=hardware["memory_bytes"], usable_fraction=usable_memory_fraction)
    context = np.asarray(input_tokens, dtype=float) + 0.5 * np.asarray(output_tokens, dtype=float)
    full_seq = (np.asarray(input_tokens, dtype=float) + output_tokens) * kv_chip
    feasible = kv_room >= full_seq
    dp = n_chips / tp
    batch = np.clip(dp * np.maximum(kv_room, 0.0) / (context * kv_chip), 1.0, np.asarray(batch_size, dtype=float))
    touched = experts_touched(cfg["n_experts"], cfg["top_k"], batch)
    untouched = np.where(moe, expert_params * (1.0 - touched / cfg["n_experts"]), 0.0)
    read = weights - weight_bytes * untouched / n_chips
    common = dict(n_layers=L, d_model=h, n_heads=a, head_dim=head_dim, n_chips=n_chips, tp=tp,
                  peak_flop_per_s=hardware["peak_flop_per_s"], peak_16bit_flop_per_s=hardware["peak_16bit_flop_per_s"],
                  scale_up_bw_bytes_per_s=hardware["scale_up_bw_bytes_per_s"], link_efficiency=link_efficiency,
                  parameters=parameters)
    dec = decode_step_time(batch, context, n_active_params=cfg["n_active_params"], weight_bytes_read=read,
                           kv_bytes_per_token=kv_chip, n_kv_heads=kv, top_k=cfg["top_k"], ep=ep,
                           hbm_bw_bytes_per_s=hardware["hbm_bw_bytes_per_s"], **common)
    pre = prefill_time(input_tokens, n_active_params=cfg["n_active_params"], **common)
    p_dec = chip_power_w(dec["hbm_share"], dec["compute_share"], tdp_w=hardware["tdp_w"], idle_w=hardware["idle_w"],
                         parameters=parameters)
    p_pre = chip_power_w(0.0, 1.0, tdp_w=hardware["tdp_w"], idle_w=hardware["idle_w"], parameters=parameters)
    s_per_token = dec["step_s"] / batch + pre / output_tokens
    energy = n_chips * (p_dec * dec["step_s"] / batch + p_pre * pre / output_tokens)
    return dict(step_s=dec["step_s"], prefill_s=pre, batch_running=batch, tokens_per_s=1.0 / s_per_token,
                chip_power_w=p_dec, chip_power_avg_w=energy / (n_chips * s_per_token), gpu_energy_per_token_j=energy,
                weights_per_chip_bytes=weights, memory_needed_bytes=weights + full_seq,
                memory_available_bytes=usable_memory_fraction * hardware["memory_bytes"], feasible=feasible,
                hbm_share=dec["hbm_share"], compute_share=dec["compute_share"])


def _mlp_total_per_layer(cfg):
    """MLP (all experts) parameters per layer: what the total leaves after attention and embeddings."""
    h, a, kv, L = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"], cfg["n_layers"]
    attn = 2.0 * h * h + 2.0 * h * kv * (h / a)
    left = (cfg["n_params"] - 2.0 * cfg["vocab_size"] * h) / L - attn
    return np.maximum(left, cfg["mlp_params_per_layer"])
