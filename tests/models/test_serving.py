"""The serving roofline (pure numpy): limits, MoE expert reads, power bounds, and the refit pin."""

import numpy as np
import pytest

from scalesim.calibration import serving as cs
from scalesim.chain.serving import evaluate
from scalesim.models import parallelism as par
from scalesim.models import serving as sv

H100_BW = 3.35e12  # catalogue HBM bandwidth of H100-SXM5-80GB [byte/s]


def _flat(n=1, **kw):
    base = dict(n_params=8e9, hardware="H100-SXM5-80GB", dtype="bf16", kv_dtype="bf16", n_chips=1.0, tp=1.0, ep=1.0,
                batch_size=1.0, input_tokens=161.0, output_tokens=338.0)
    base.update(kw)
    shape = np.broadcast(*[np.asarray(v) for v in base.values() if not isinstance(v, str)]).shape or (1,)
    return {k: (np.full(shape, v, dtype=object) if isinstance(v, str) else np.broadcast_to(np.asarray(v, float), shape))
            for k, v in base.items()}


def test_experts_touched_limits():
    assert sv.experts_touched(128, 8, 1) == pytest.approx(8.0)
    assert sv.experts_touched(128, 8, 4096) == pytest.approx(128.0, rel=1e-6)
    # two tokens: 8 + 8 x (1 - 8/128)
    assert sv.experts_touched(128, 8, 2) == pytest.approx(8 + 8 * (1 - 8 / 128))
    assert sv.experts_touched(1, 1, 50) == pytest.approx(1.0)


def test_kv_bytes_and_gqa_rule():
    # Llama 3 8B: 32 layers, 8 KV heads of 128, bf16 -> 128 KiB per token
    assert sv.kv_cache_bytes_per_token(32, 8, 128, 2.0) == 131072
    assert list(sv.default_kv_heads([4, 8, 64])) == [4, 8, 8]


def test_batch_one_time_is_weight_bytes_over_achieved_bandwidth():
    p = sv.SERVING_PARAMETERS[sv.DEFAULT_PARAMETERS]
    r = evaluate(_flat(n_params=70e9, dtype="fp8", kv_dtype="fp8", hardware="H200-SXM-141GB"))
    assert bool(r["feasible"][0])
    weights_s = 1 * 70e9 / (p["hbm_efficiency"] * 4.8e12)
    n_layers = par.architecture_aspect_ratio(70e9)[0]
    fixed = n_layers * p["layer_overhead_s"]
    # the rest (KV cache of one sequence, 2N FLOPs of one token) is under 2 % of the step
    assert r["step_s"][0] == pytest.approx(weights_s + fixed, rel=0.02)
    assert r["step_s"][0] > weights_s + fixed
    r8 = evaluate(_flat(n_params=8e9))
    assert r8["step_s"][0] > 2 * 8e9 / (p["hbm_efficiency"] * H100_BW)


def test_energy_per_token_falls_with_batch_then_flattens():
    b = np.array([1, 4, 16, 64, 256, 1024.0])
    e = evaluate(_flat(batch_size=b))["gpu_energy_per_token_j"]
    assert np.all(np.diff(e) < 0)
    assert e[0] / e[2] > 8  # memory-bound: weights shared by the batch
    assert e[-2] / e[-1] < 1.5  # compute- and KV-bound: little left to amortise


def test_moe_reads_active_experts_at_batch_one_and_all_at_large_batch():
    moe = dict(n_params=120e9, n_active_params=6e9, n_experts=128.0, top_k=8.0, hardware="B200", dtype="fp8")
    small = evaluate(_flat(batch_size=1.0, **moe))
    dense_active = evaluate(_flat(batch_size=1.0, n_params=6e9, hardware="B200", dtype="fp8"))
    dense_total = evaluate(_flat(batch_size=512.0, n_params=120e9, hardware="B200", dtype="fp8"))
    big = evaluate(_flat(batch_size=512.0, **moe))
    # batch 1: about as fast as a dense model of the active size; much faster than the total
    assert small["step_s"][0] < 1.6 * dense_active["step_s"][0]
    assert small["step_s"][0] < 0.3 * evaluate(_flat(batch_size=1.0, n_params=120e9, hardware="B200", dtype="fp8"))["step_s"][0]
    # batch 512: every expert is read, so the step costs at least the total weights' traffic
    p = sv.SERVING_PARAMETERS[sv.DEFAULT_PARAMETERS]
    assert big["batch_running"][0] == 512
    assert big["step_s"][0] > 1 * 120e9 * 0.95 / (p["hbm_efficiency"] * 8e12)
    assert big["step_s"][0] < dense_total["step_s"][0]  # but far fewer FLOPs than the dense total


def test_power_between_idle_and_tdp_and_rising():
    r = evaluate(_flat(batch_size=np.array([1, 8, 64, 512.0])))
    assert np.all(r["chip_power_w"] > 0.12 * 700) and np.all(r["chip_power_w"] <= 700)
    assert np.all(np.diff(r["chip_power_w"]) > 0)
    assert sv.chip_power_w(0.0, 0.0, tdp_w=700.0, idle_w=84.0) == pytest.approx(84.0)
    assert sv.chip_power_w(0.5, 1.0, tdp_w=700.0, idle_w=84.0) == pytest.approx(700.0)


def test_kv_cache_caps_the_running_batch_and_feasibility():
    r = evaluate(_flat(n_params=70e9, n_chips=4.0, tp=4.0, batch_size=np.array([8, 4096.0])))
    assert r["batch_running"][0] == 8 and 100 < r["batch_running"][1] < 4096
    assert bool(r["feasible"].all())
    r = evaluate(_flat(n_params=70e9))  # 140 GB of bf16 weights on one 80 GB chip
    assert not bool(r["feasible"][0])
    assert r["memory_needed_bytes"][0] > r["memory_available_bytes"][0]


def test_refit_recovers_shipped_parameters():
    shipped = sv.SERVING_PARAMETERS[sv.DEFAULT_PARAMETERS]
    refit = cs.fit_serving_parameters()
    for k in sv.FIT_KEYS:
        assert refit[k] == pytest.approx(shipped[k], rel=0.01), k


def test_in_sample_errors():
    rows = cs.measurement_rows()
    e, itl = cs.predict_rows(rows)
    em, im = cs._measured(rows)
    se, si = cs.error_summary(e, em), cs.error_summary(itl, im)
    assert se["n"] == 104
    assert se["median"] < 0.15 and se["p90"] < 0.35
    assert si["median"] < 0.15
