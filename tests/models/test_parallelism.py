"""Model-layer tests of scalesim.models.parallelism (pure numpy step-time model and plan search)."""

import numpy as np
import pytest

from scalesim.chain.training_throughput import hardware_arrays
from scalesim.models import parallelism as par


def _hw(hardware="H100", dtype="bf16", n=1):
    return {k: np.repeat(v.ravel(), n) for k, v in hardware_arrays(np.array([hardware]), np.array([dtype])).items()}


def _cfg(n_params=70e9, n_chips=512, seq_len=4096, batch_tokens=4e6, n_active=None, n=1):
    cfg = par.derive_config(np.full(n, n_params), np.full(n, n_active or n_params), seq_len=np.full(n, float(seq_len)),
                            global_batch_tokens=np.full(n, batch_tokens))
    cfg["n_chips"] = np.full(n, float(n_chips))
    return cfg


def test_aspect_ratio_rule_reproduces_gpt3_shape():
    layers, d_model, heads = par.architecture_aspect_ratio(175e9)
    assert layers == pytest.approx(97, abs=2)  # GPT-3: 96 layers, d_model 12288 (Brown et al. Table 2.1)
    assert d_model == pytest.approx(12288, rel=0.03)
    assert heads == d_model / 128


def test_gpt3_batch_table_is_interpolated_and_extrapolated():
    assert par.global_batch_tokens_gpt3(125e6) == pytest.approx(0.5e6)
    assert par.global_batch_tokens_gpt3(175e9) == pytest.approx(3.2e6)
    assert par.global_batch_tokens_gpt3(1e12) > 3.2e6


def test_model_flop_per_token_is_mlperf_convention():
    # MLPerf GPT-3: 6 * 175e9 + 6 * 96 * 12288 * 2048 (README of the benchmark table, Sec. 1.1)
    assert par.model_flop_per_token(175e9, 96, 12288, 2048) == pytest.approx(6 * 175e9 + 6 * 96 * 12288 * 2048)


def test_pipeline_bubble_follows_narayanan():
    cfg, hw = _cfg(), _hw()
    base = dict(tp=8, pp=8, cp=1, ep=1, micro_batch=1, zero=1, recompute=0)
    one = par.training_step_time(**cfg, **hw, vp=1, **base)
    two = par.training_step_time(**cfg, **hw, vp=2, **base)
    m = one["n_microbatches"]
    # bubble / (pipeline work) = (p - 1) / (v m)
    per_mb = (one["step_time_s"] - one["bubble"] - one["exposed_dp_comm"]) / np.ceil(m)
    assert one["bubble"] / per_mb == pytest.approx(7.0, rel=0.05)
    assert two["bubble"] < one["bubble"]


def test_full_recompute_costs_a_forward_and_saves_memory():
    cfg, hw = _cfg(), _hw()
    kw = dict(tp=8, pp=4, vp=1, cp=1, ep=1, micro_batch=1, zero=1)
    none = par.training_step_time(**cfg, **hw, recompute=0, **kw)
    full = par.training_step_time(**cfg, **hw, recompute=2, **kw)
    assert full["step_time_s"] > 1.2 * none["step_time_s"]
    assert full["memory_per_chip_bytes"] < none["memory_per_chip_bytes"]
    assert full["hardware_flop"] == pytest.approx(none["model_flop"] * 4 / 3)


def test_zero3_shards_states_and_tp_beyond_domain_is_infeasible():
    cfg, hw = _cfg(), _hw()
    kw = dict(pp=1, vp=1, cp=1, ep=1, micro_batch=1, recompute=2)
    z1 = par.training_step_time(**cfg, **hw, tp=8, zero=1, **kw)
    z3 = par.training_step_time(**cfg, **hw, tp=8, zero=3, **kw)
    assert z3["memory_per_chip_bytes"] < z1["memory_per_chip_bytes"]
    bad = par.training_step_time(**cfg, **hw, tp=16, zero=1, **kw)
    assert bad["reason"] == 1 and np.isnan(bad["step_time_s"])


def test_search_returns_fastest_feasible_plan():
    cfg, hw = _cfg(n=2), _hw(n=2)
    plans = par.plan_grid(max_tp=8)
    best = par.search_plan(cfg, hw, plans)
    # brute force over the same grid, element by element
    full = par.training_step_time(**{k: v[:1, None] for k, v in cfg.items()}, **{k: v[:1, None] for k, v in hw.items()},
                                  **{k: v[None, :] for k, v in plans.items()})
    assert best["step_time_s"][0] == pytest.approx(np.nanmin(full["step_time_s"]))
    assert best["reason"][0] == 0


def test_no_plan_fits_reports_memory():
    cfg, hw = _cfg(n_params=2e12, n_chips=8, batch_tokens=8 * 4096), _hw()
    best = par.search_plan(cfg, hw, par.plan_grid(max_tp=8))
    assert np.isnan(best["step_time_s"][0])
    assert par.REASONS[best["reason"][0]] == "does not fit in HBM"


def test_structural_mfu_broadcasts_over_n_params_chips_hardware():
    hw = hardware_arrays(np.array(["A100", "H100", "B200"]), np.array(["bf16"] * 3))
    hw = {k: v[None, None, :] for k, v in hw.items()}
    n_params = np.array([1e9, 70e9])[:, None, None]
    n_chips = np.array([64.0, 1024.0])[None, :, None]
    mfu = par.structural_mfu(n_params, n_chips, hw)
    assert mfu.shape == (2, 2, 3)
    assert np.all((mfu[np.isfinite(mfu)] > 0.05) & (mfu[np.isfinite(mfu)] < 0.9))
    single = par.structural_mfu(70e9, 1024.0, {k: v[0, 0, 1] for k, v in hw.items()})
    assert single == pytest.approx(mfu[1, 1, 1])


def _moe(n_chips=256, tp=2, ep=32):
    cfg = par.derive_config(np.array([235e9]), np.array([22e9]), seq_len=np.array([4096.0]),
                            global_batch_tokens=np.array([2048 * 4096.0]), n_layers=np.array([94.0]),
                            d_model=np.array([4096.0]), n_heads=np.array([64.0]), n_kv_heads=np.array([4.0]),
                            ffn_dim=np.array([1536.0]), vocab_size=np.array([151936.0]), n_experts=np.array([128.0]),
                            top_k=np.array([8.0]))
    cfg["n_chips"] = np.array([float(n_chips)])
    return cfg, dict(tp=tp, pp=8, vp=4, cp=1, ep=ep, micro_batch=1, zero=1, recompute=0)


def test_expert_parallelism_folds_over_tensor_parallel_ranks():
    # Qwen3-235B on 256 H100 with TP2 PP8 EP32 (dp = 16 < ep): Megatron-Core parallel folding
    cfg, plan = _moe()
    ok = par.training_step_time(**cfg, **_hw("H100", "fp8"), **plan)
    assert ok["reason"][0] == 0 and np.isfinite(ok["step_time_s"][0])
    bad = par.training_step_time(**cfg, **_hw("H100", "fp8"), **dict(plan, ep=64))  # 64 > tp*dp*cp = 32
    assert par.REASONS[bad["reason"][0]] == "ep exceeds n_experts or dp*cp"


def test_expert_all_to_all_is_cheaper_inside_the_scale_up_domain():
    # TP2 PP8 on 256 H100: EP peers two ranks apart, so ep = 4 stays inside an 8-GPU NVLink node
    cfg, plan = _moe(n_chips=256, tp=2, ep=4)
    plan["recompute"] = 2
    inside = par.training_step_time(**cfg, **_hw("H100", "fp8"), **plan)
    across = par.training_step_time(**cfg, **_hw("H100", "fp8"), **dict(plan, ep=16))
    assert inside["reason"][0] == 0 and across["reason"][0] == 0
    per_copy = lambda out, e: out["exposed_ep_comm"][0] / (e - 1) * e  # noqa: E731
    assert per_copy(across, 16) > 3.0 * per_copy(inside, 4)  # NVLink 450 GB/s vs 50 GB/s per GPU


def test_tp_overlap_hides_at_most_the_gemm_time():
    cfg, hw = _cfg(), _hw()
    kw = dict(tp=8, pp=8, vp=1, cp=1, ep=1, micro_batch=1, zero=1, recompute=0)
    p = dict(par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS])
    none = par.training_step_time(**cfg, **hw, **kw, parameters=dict(p, tp_comm_overlap=0.0))
    half = par.training_step_time(**cfg, **hw, **kw, parameters=dict(p, tp_comm_overlap=0.5))
    assert half["exposed_tp_comm"] == pytest.approx(0.5 * none["exposed_tp_comm"])
    slow = dict(p, tp_comm_overlap=1.0, scale_up_efficiency=0.01)  # communication far longer than the GEMMs
    capped = par.training_step_time(**cfg, **hw, **kw, parameters=slow)
    assert capped["exposed_tp_comm"] > 0.5 * par.training_step_time(
        **cfg, **hw, **kw, parameters=dict(slow, tp_comm_overlap=0.0))["exposed_tp_comm"]


def test_low_precision_efficiency_slows_only_8_bit_gemms():
    cfg = _cfg()
    kw = dict(tp=8, pp=8, vp=1, cp=1, ep=1, micro_batch=1, zero=1, recompute=0)
    p = dict(par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS])
    for dtype, moves in (("bf16", False), ("fp8", True)):
        a = par.training_step_time(**cfg, **_hw("H100", dtype), **kw, parameters=dict(p, low_precision_gemm_efficiency=1.0))
        b = par.training_step_time(**cfg, **_hw("H100", dtype), **kw, parameters=dict(p, low_precision_gemm_efficiency=0.5))
        assert (b["compute"][0] > 1.2 * a["compute"][0]) == moves


def test_measured_matmul_ceiling_scales_every_tensor_core_rate():
    cfg = _cfg()
    kw = dict(tp=8, pp=8, vp=1, cp=1, ep=1, micro_batch=1, zero=1, recompute=0)
    hw = _hw("H100")
    assert hw["matmul_fraction"][0] == pytest.approx(794.5 / 989.5)  # Bekman's MAMF table
    no_latency = dict(par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS], gemm_latency_s=0.0)  # a fixed cost, not a rate
    full = par.training_step_time(**cfg, **dict(hw, matmul_fraction=np.ones(1)), **kw, parameters=no_latency)
    capped = par.training_step_time(**cfg, **hw, **kw, parameters=no_latency)
    # compute-bound GEMMs and attention take 1/fraction as long; HBM-bound work does not move
    assert capped["compute"][0] == pytest.approx(full["compute"][0] / hw["matmul_fraction"][0], rel=1e-9)
    assert capped["memory_bound"][0] == pytest.approx(full["memory_bound"][0], rel=0.05)
    # parameter sets fitted before the ceiling existed ignore it, so they reproduce their own fit
    old = par.THROUGHPUT_PARAMETERS["scalesim2026c"]
    assert par.training_step_time(**cfg, **hw, **kw, parameters=old)["step_time_s"][0] == pytest.approx(
        par.training_step_time(**cfg, **dict(hw, matmul_fraction=np.ones(1)), **kw, parameters=old)["step_time_s"][0])


def test_a_chip_with_a_low_measured_ceiling_is_slower_than_its_datasheet_says():
    # MI300X: 1307 bf16 TFLOP/s on the datasheet (1.32x the H100) but 668 measured (0.84x the H100's 794.5)
    n_params, n_chips = np.array([70e9]), np.array([512.0])
    mfu = {h: par.structural_mfu(n_params, n_chips, {k: v[0] for k, v in hardware_arrays(np.array([h]), np.array(["bf16"])).items()})[0]
           for h in ("H100", "MI300X")}
    flops = {h: mfu[h] * hardware_arrays(np.array([h]), np.array(["bf16"]))["peak_flop_per_s"][0] for h in mfu}
    assert flops["MI300X"] < flops["H100"]
    assert mfu["MI300X"] < 0.75 * mfu["H100"]


def test_aqt_int8_keeps_the_weight_gradient_in_bf16():
    # MaxText's AQT_INT8_CONFIG: forward and input-gradient GEMMs in int8, weight gradient (drhs) in bf16
    assert _hw("TPUv5p", "int8")["wgrad_low_precision"][0] == 0.0
    assert _hw("H100", "fp8")["wgrad_low_precision"][0] == 1.0  # Transformer Engine: all three in fp8
    cfg = _cfg()
    kw = dict(tp=8, pp=8, vp=1, cp=1, ep=1, micro_batch=1, zero=1, recompute=0)
    p = dict(par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS], gemm_latency_s=0.0)
    int8 = _hw("TPUv5p", "int8")
    assert int8["peak_flop_per_s"][0] == pytest.approx(2.0 * int8["peak_16bit_flop_per_s"][0])
    c = {name: par.training_step_time(**cfg, **hw, **kw, parameters=p)["compute"][0] for name, hw in (
        ("aqt", int8), ("all_int8", dict(int8, wgrad_low_precision=np.ones(1))), ("bf16", _hw("TPUv5p", "bf16")))}
    # compute-bound GEMMs: int8 halves each GEMM it runs, so keeping one GEMM of three in bf16 recovers a third
    assert (c["aqt"] - c["all_int8"]) / (c["bf16"] - c["all_int8"]) == pytest.approx(1.0 / 3.0, rel=1e-6)
    # a recomputed forward is a forward: the same time whatever the weight gradient's precision
    rc = {w: par.training_step_time(**cfg, **dict(int8, wgrad_low_precision=np.full(1, w)), **dict(kw, recompute=2),
                                    parameters=p)["recompute"][0] for w in (0.0, 1.0)}
    assert rc[0.0] == pytest.approx(rc[1.0], rel=1e-12)
    # the parameter sets fitted before the recipes existed run every GEMM in the dtype
    old = par.THROUGHPUT_PARAMETERS["scalesim2026e"]
    assert par.training_step_time(**cfg, **int8, **kw, parameters=old)["step_time_s"][0] == pytest.approx(
        par.training_step_time(**cfg, **dict(int8, wgrad_low_precision=np.ones(1)), **kw, parameters=old)["step_time_s"][0])


def test_quantised_gemm_inputs_kept_for_the_backward_shrink_activations():
    cfg = _cfg(n_params=8e9, n_chips=8, seq_len=8192, batch_tokens=128 * 8192)
    kw = dict(tp=1, pp=1, vp=1, cp=1, ep=1, micro_batch=1, zero=3, recompute=0)
    mem = lambda h_, d_, **p: par.training_step_time(**cfg, **_hw(h_, d_), **kw, **p)["memory_per_chip_bytes"][0]  # noqa: E731
    h, pm, T = cfg["d_model"][0], cfg["mlp_params_per_layer"][0], 8192.0
    # the QKV and MLP-up inputs (h each) and the SwiGLU down input (P_mlp / 3h) keep 1 byte instead of 2; the
    # attention output stays 16-bit for flash attention and gains a 1-byte copy: h + P_mlp / 3h per token and layer
    saved = cfg["n_layers"][0] * T * (h + pm / (3.0 * h))
    assert mem("H100", "bf16") - mem("H100", "fp8") == pytest.approx(saved, rel=1e-9)
    # AQT int8 computes the weight gradient in bf16 from the 16-bit input: nothing saved
    assert mem("TPUv5p", "int8") == pytest.approx(mem("TPUv5p", "bf16"), rel=1e-12)
    # and a parameter set fitted before the recipes saves nothing either
    old = dict(parameters=par.THROUGHPUT_PARAMETERS["scalesim2026e"])
    assert mem("H100", "fp8", **old) == pytest.approx(mem("H100", "bf16", **old), rel=1e-12)


def test_grouped_query_attention_stores_narrow_keys_and_values():
    cfg = par.derive_config(np.full(1, 70e9), np.full(1, 70e9), seq_len=np.full(1, 8192.0),
                            global_batch_tokens=np.full(1, 256 * 8192.0), n_layers=np.full(1, 80.0),
                            d_model=np.full(1, 8192.0), n_heads=np.full(1, 64.0), n_kv_heads=np.full(1, 8.0))
    cfg["n_chips"] = np.full(1, 64.0)
    kw = dict(tp=4, pp=1, vp=1, cp=1, ep=1, micro_batch=1, zero=3, recompute=0)
    new, old = (dict(par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS], stage_memory=flag) for flag in (True, False))
    mem = {k: par.training_step_time(**cfg, **_hw(), **kw, parameters=p)["memory_per_chip_bytes"][0]
           for k, p in (("new", new), ("old", old))}
    h, kv_width = cfg["d_model"][0], cfg["n_kv_heads"][0] * cfg["d_model"][0] / cfg["n_heads"][0]
    # K and V, 2 bytes each, kv_heads x head_dim wide instead of h (Korthikanti's 4h), every layer
    assert mem["old"] - mem["new"] == pytest.approx(cfg["n_layers"][0] * 8192 * 4.0 * (h - kv_width) / 4, rel=1e-9)


def test_logits_count_on_the_last_pipeline_stage_not_on_the_first():
    kw = dict(vp=1, cp=1, ep=1, micro_batch=1, zero=1, recompute=0, tp=8)
    small, big = _cfg(), _cfg()
    big["vocab_size"] = small["vocab_size"] * 8
    hw = _hw()
    mem = lambda cfg, pp: par.training_step_time(**cfg, **hw, pp=pp, **kw)["memory_per_chip_bytes"][0]  # noqa: E731
    logits = 4.0 * 4096 * (big["vocab_size"][0] - small["vocab_size"][0]) / 8
    # one stage holds everything: the fp32 logits of one micro-batch add 4 T V / t bytes
    assert mem(big, 1) - mem(small, 1) == pytest.approx(logits)
    # eight stages: the first stage's in-flight activations are the peak, the vocabulary does not move it
    assert mem(big, 8) == pytest.approx(mem(small, 8), rel=1e-12)
    # one micro-batch per step: every stage holds one, so the last stage (with the logits) is the peak
    one = {k: dict(c, global_batch_tokens=np.full(1, 8 * 4096.0)) for k, c in (("small", small), ("big", big))}
    assert mem(one["big"], 8) - mem(one["small"], 8) == pytest.approx(logits)


def test_expert_optimizer_states_are_sharded_over_the_expert_data_parallel_group():
    """Qwen3-235B at NVIDIA's plan (tp 2, pp 8, ep 32 on 256 H100): dp = 16, the experts fold over TP
    (etp = 1) and each expert has tp dp / ep = 1 replica, so ZeRO-1 cannot split its Adam states at all;
    the dense weights' states stay split over dp = 16."""
    cfg, plan = _moe()
    new, old = (dict(par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS], expert_dp_states=flag) for flag in (True, False))
    out = {k: par.training_step_time(**cfg, **_hw("H100", "fp8"), **plan, parameters=p) for k, p in (("new", new),
                                                                                                  ("old", old))}
    # layers x MLP parameters of the k active experts x E / k (derive_config makes the total match n_params)
    expert_params = 94 * cfg["mlp_params_per_layer"][0] * 128 / 8
    expert_local = expert_params / (8 * 32)  # over pp x ep (etp = 1)
    extra = par.BYTES_OPTIMIZER * expert_local * (1 / 1 - 1 / 16)
    assert out["new"]["memory_per_chip_bytes"][0] - out["old"]["memory_per_chip_bytes"][0] == pytest.approx(extra, rel=1e-6)
    # the optimizer step reads and writes the unsplit expert states: a longer step
    assert out["new"]["step_time_s"][0] > out["old"]["step_time_s"][0]
    # a dense model has no expert states: the switch changes nothing
    dense = _cfg()
    kw = dict(tp=8, pp=1, vp=1, cp=1, ep=1, micro_batch=1, zero=1, recompute=0)
    a, b = (par.training_step_time(**dense, **_hw(), **kw, parameters=p)["memory_per_chip_bytes"][0] for p in (new, old))
    assert a == b


def test_data_parallel_reduction_beyond_the_domain_uses_u_to_the_beta_nics():
    """Inside a scale-up domain the scale-up link; beyond it u**beta NICs for u group ranks per domain, capped."""
    from types import SimpleNamespace

    j = SimpleNamespace(up_n=np.array(8.0), bw_up=np.array(360e9), bw_out=np.array(50e9))
    bw = lambda group, stride, beta: float(par._data_parallel_bandwidth(j, np.array(group), np.array(stride), beta))  # noqa: E731
    for beta in (0.0, 0.27, 1.0):
        assert bw(4, 2, beta) == 360e9  # 8 ranks: one domain
        assert bw(64, 8, beta) == 50e9  # TP 8: one group rank per domain, one NIC whatever beta
    assert bw(64, 1, 0.0) == 50e9  # the sets before scalesim2026j: one NIC
    assert bw(64, 1, 0.5) == pytest.approx(50e9 * 8 ** 0.5)
    assert bw(64, 1, 1.0) == 360e9  # 8 NICs (400 GB/s) capped by the scale-up link
    assert bw(64, 4, 1.0) == pytest.approx(100e9)  # TP 4: two group ranks per domain
    assert bw(2, 1, 1.0) == 360e9  # the whole group in one domain


def test_sets_before_the_nic_exponent_reduce_on_one_nic():
    """A set without dp_nic_exponent is the model it was fitted with (beta = 0); the shipped beta speeds up a
    data-parallel reduction that leaves the node, and only that."""
    cfg, hw = _cfg(n_params=1e9, n_chips=512, batch_tokens=512 * 4096), _hw()
    kw = dict(tp=1, pp=1, vp=1, cp=1, ep=1, micro_batch=1, zero=1, recompute=0)
    old = dict(par.THROUGHPUT_PARAMETERS["scalesim2026i"])
    assert "dp_nic_exponent" not in old
    flat = par.training_step_time(**cfg, **hw, **kw, parameters=old)
    zero = par.training_step_time(**cfg, **hw, **kw, parameters=dict(old, dp_nic_exponent=0.0))
    fast = par.training_step_time(**cfg, **hw, **kw, parameters=dict(old, dp_nic_exponent=0.5))
    assert zero["step_time_s"] == flat["step_time_s"]
    assert fast["exposed_dp_comm"][0] < flat["exposed_dp_comm"][0] and flat["exposed_dp_comm"][0] > 0
    assert fast["step_time_s"][0] < flat["step_time_s"][0]
    one_node = dict(cfg, n_chips=np.full(1, 8.0), global_batch_tokens=np.full(1, 8 * 4096.0))
    a = par.training_step_time(**one_node, **hw, **kw, parameters=old)
    b = par.training_step_time(**one_node, **hw, **kw, parameters=dict(old, dp_nic_exponent=0.5))
    assert a["step_time_s"] == b["step_time_s"]


def test_offloading_keeps_layer_inputs_and_costs_only_the_copy_the_layer_cannot_hide():
    """recompute=3 (offload): HBM keeps each layer's input (as full recomputation does) plus two layer buffers
    instead of one; the copy out and back over NVLink-C2C costs what it takes beyond the layer's own work; a chip
    without that link cannot offload."""
    cfg, hw = _cfg(n_params=30e9, n_chips=32, seq_len=8192, batch_tokens=256 * 8192), _hw("GB200", "bf16")
    assert hw["host_link_bw_bytes_per_s"][0] == pytest.approx(225e9)
    kw = dict(tp=1, pp=4, vp=1, cp=1, ep=1, micro_batch=1, zero=1)
    none = par.training_step_time(**cfg, **hw, recompute=0, **kw)
    full = par.training_step_time(**cfg, **hw, recompute=2, **kw)
    off = par.training_step_time(**cfg, **hw, recompute=3, **kw)
    # one layer's stored activations (Korthikanti Eq. 1 without the s^2 term; no GQA here): T (18 h + 2 P_mlp / h)
    h, Pm = cfg["d_model"], cfg["mlp_params_per_layer"]
    assert cfg["n_kv_heads"] == cfg["n_heads"]
    layer = 8192 * (18.0 * h + 2.0 * Pm / h)
    assert off["memory_per_chip_bytes"] - full["memory_per_chip_bytes"] == pytest.approx(layer, rel=1e-9)
    assert off["memory_per_chip_bytes"] < 0.5 * none["memory_per_chip_bytes"]
    assert off["hardware_flop"] == pytest.approx(off["model_flop"])  # nothing recomputed
    # 2 x 1.8 GB per layer take 16 ms at 225 GB/s, hidden behind the layer's ~27 ms of bf16 work: no cost
    assert off["step_time_s"] == pytest.approx(none["step_time_s"]) and off["recompute"] == pytest.approx(0.0)
    assert off["step_time_s"] < 0.8 * full["step_time_s"]
    narrow = dict(hw, host_link_bw_bytes_per_s=hw["host_link_bw_bytes_per_s"] / 100)  # a PCIe-class link, shared
    slow = par.training_step_time(**cfg, **narrow, recompute=3, **kw)
    assert slow["step_time_s"] > none["step_time_s"] and slow["recompute"] > 0
    h100 = par.training_step_time(**cfg, **_hw("H100", "bf16"), recompute=3, **kw)
    assert np.isnan(h100["step_time_s"]).all() and par.REASONS[h100["reason"][0]].startswith("offload needs")


def test_offload_plans_are_searched_only_where_the_chip_can_offload():
    """A sweep mixing GB200 (NVLink-C2C) and H100 finds the same plans as one search with offloading for all,
    and an H100 configuration that nothing fits is not reported as missing the CPU link."""
    n = 6
    n_params = 70e9 * np.array([1, 1, 1, 1, 1, 40])  # the last: 2.8T on 64 H100, fits nowhere
    cfg = par.derive_config(n_params, n_params, seq_len=np.full(n, 8192.0),
                            global_batch_tokens=np.full(n, 256 * 8192.0)) | {"n_chips": np.full(n, 64.0)}
    gb, h = _hw("GB200", "fp8"), _hw("H100", "fp8")
    hw = {k: np.array([gb[k][0], h[k][0], gb[k][0], h[k][0], gb[k][0], h[k][0]]) for k in gb}
    split = par.search_plan_by_host_link(cfg, hw, lambda off: par.plan_grid(max_tp=72, offload=off))
    whole = par.search_plan(cfg, hw, par.plan_grid(max_tp=72, offload=True))
    finite = np.isfinite(whole["step_time_s"])
    assert finite[:5].all() and not finite[5]
    np.testing.assert_array_equal(split["step_time_s"][finite], whole["step_time_s"][finite])
    np.testing.assert_array_equal(split["recompute"], whole["recompute"])
    assert (split["recompute"][[0, 2, 4]] == 3).all() and not (split["recompute"][[1, 3]] == 3).any()
    assert par.REASONS[split["reason"][5]] == "does not fit in HBM"
