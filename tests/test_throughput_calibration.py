"""Calibration of the throughput model: the shipped parameters are a refit optimum and published tables hold."""

import re

import numpy as np
import pytest

import scalesim.calibration

from scalesim.calibration import throughput as ct
from scalesim.models import parallelism as par


@pytest.fixture(scope="module")
def rows():
    return ct.benchmark_rows()


@pytest.fixture(scope="module")
def pred(rows):
    return ct.predict_benchmarks(rows)


def test_benchmark_table_is_shipped_and_converted(rows):
    kinds = {r["source_kind"] for r in rows}
    assert {"mlperf", "megatron", "megatron_bridge", "llm_foundry", "maxtext", "paper"} <= kinds
    # MLPerf GPT-3 row 0 (Gaudi2, 256 chips): 2048 x 2048 tokens / (351.2 tok/s/chip x 256 chips)
    r = rows[0]
    assert ct.measured_step_time(r) == pytest.approx(2048 * 2048 / (351.2 * 256))


def test_refit_from_a_perturbed_start_converges_back(rows):
    shipped = par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS]
    keys = ("gemm_efficiency", "tp_comm_overlap")
    start = dict(shipped, gemm_efficiency=shipped["gemm_efficiency"] * 0.8, tp_comm_overlap=shipped["tp_comm_overlap"] * 0.6)
    refit = ct.fit_throughput_parameters(rows, start=start, keys=keys, max_nfev=12)
    for k in keys:
        assert refit[k] == pytest.approx(shipped[k], rel=0.05), k
    assert refit["attention_efficiency"] == shipped["attention_efficiency"]  # not in keys: held


def test_in_sample_error_of_step_time(pred):
    s = ct.error_summary(pred)
    assert s["n"] >= 370
    assert s["step_time"]["median"] < 0.15
    assert s["step_time"]["p90"] < 0.45


def _megatron_weak_scaling_errors(rows):
    weak = [r for r in rows if r["source_kind"] == "megatron" and "H100 weak scaling" in r["benchmark_or_model"]]
    assert len(weak) == 9
    p = ct.predict_benchmarks(weak)
    return p["step_time_s"] / p["measured_step_s"] - 1.0


def test_megatron_h100_weak_scaling_table_within_15_percent(rows):
    """Issue 10's target (scalesim2026j: -3.0 to -13.9 %; 2026i missed it by 0.5 point)."""
    err = _megatron_weak_scaling_errors(rows)
    assert np.all(np.abs(err) < 0.15), err


def test_changing_a_parameter_changes_the_fit(rows):
    p = dict(par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS])
    base = ct.error_summary(ct.predict_benchmarks(rows, p))["step_time"]["median"]
    p["gemm_efficiency"] *= 0.7
    worse = ct.error_summary(ct.predict_benchmarks(rows, p))["step_time"]["median"]
    assert worse > base + 0.05


def test_recompute_inclusive_rows_use_narayanan_eq3():
    """Narayanan et al. 2021 Eq. 3 turns the README's GPT-3 175B example (138 TFLOP/s per GPU) back into ~32 s."""
    row = dict(global_batch_seqs="1536", seq_len="2048", n_chips="1024", tokens_per_s_per_chip="",
               model_tflops_per_chip="138", n_layers="96", d_model="12288", vocab="51200", n_params="175e9",
               source_kind="megatron", flop_convention="Narayanan recompute-inclusive (HFU-like)")
    assert ct.measured_step_time(row) == pytest.approx(32.0, rel=0.01)  # "around 32 seconds", 138 printed to 3 digits
    row["flop_convention"] = "Korthikanti model FLOPs"  # the no-recompute count is 3/4 of it: a shorter step
    assert ct.measured_step_time(row) == pytest.approx(32.0 * 0.75, rel=0.01)


def test_selene_rows_are_fitted_with_full_recompute(rows):
    selene = [r for r in rows if r["flop_convention"].startswith("Narayanan recompute-inclusive")]
    assert len(selene) == 11
    _, _, forced = ct._inputs(selene)
    assert np.all(forced["recompute"] == 2.0)


def test_accelerator_generation():
    assert ct.accelerator_generation("A100-SXM4-40GB") == ct.accelerator_generation("A100-SXM4-80GB") == "A100"
    assert ct.accelerator_generation("H200") == ct.accelerator_generation("H100 (96GB HBM2e, 500 W)") == "H100"
    assert ct.accelerator_generation("TPUv5e") == "TPUv5e" != ct.accelerator_generation("TPUv5p")


def test_leave_one_generation_out_holds_the_generation_out(rows):
    sub = [r for r in rows if ct.accelerator_generation(r["accelerator"]) in ("TPUv4", "Gaudi2")]
    res = ct.leave_one_generation_out(sub, keys=("gemm_efficiency",), max_nfev=3)
    assert set(res) == {"TPUv4", "Gaudi2"}
    assert res["TPUv4"]["out_of_sample"]["n"] == 6 and res["Gaudi2"]["out_of_sample"]["n"] == 3
    # fitted on the other generation only: the two folds see different data, so different optima
    assert res["TPUv4"]["parameters"]["gemm_efficiency"] != res["Gaudi2"]["parameters"]["gemm_efficiency"]
    pooled = ct.pooled_error(res)
    assert pooled["n"] == 9
    every = np.abs(np.concatenate([res[k]["step_time_error"] for k in res]))
    assert pooled["median"] == pytest.approx(np.median(every))


def test_recompute_column_is_read_as_score_py_reads_it(rows):
    sub = [r for r in rows if (r["recompute"] or "").lower() in ("none", "full", "")][:400]
    _, _, forced = ct._inputs(sub)
    rc = np.array([(r["recompute"] or "").lower() for r in sub])
    assert np.all(forced["recompute"][rc == "none"] == 0.0)  # a published "none" is forced, not searched
    assert np.all(forced["recompute"][rc == "full"] == 2.0)
    blank = (rc == "") & np.array([not r["flop_convention"].startswith("Narayanan") for r in sub])
    assert blank.any() and np.all(np.isnan(forced["recompute"][blank]))


def test_gemm_curve_is_fitted_on_measured_h100_gemms_not_on_the_benchmarks():
    fit = ct.fit_gemm_curve()
    # OpenXLA's sm_90 table, 81 shapes with m, n, k >= 1024: a ~6 us fixed cost per GEMM kernel, little tile loss,
    # and large GEMMs at the maximum achievable matmul that Bekman's independent table gives (794.5 TFLOP/s)
    assert fit["gemm_latency_s"] == pytest.approx(6.08e-6, rel=0.01)
    assert fit["gemm_half_dim"] == pytest.approx(27.4, rel=0.01)
    assert fit["fraction_of_mamf"] == pytest.approx(1.04, abs=0.01)
    assert fit["rms_log_error"] < 0.04
    for k in ("gemm_half_dim", "gemm_latency_s"):  # the start of every fit and the shipped set carry it, rounded
        assert ct.PRIOR_START[k] == pytest.approx(fit[k], rel=0.005)
        assert par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS][k] == ct.PRIOR_START[k]
        assert k not in ct.FIT_KEYS


def test_step_model_gemm_reproduces_the_measured_h100_table():
    from scalesim import catalog

    fit = ct.fit_gemm_curve()
    rows = catalog.read_table("gemm_h100_xla.csv")
    b, m, n, k, tf = (np.array([float(r[c]) for r in rows]) for c in ("batch", "m", "n", "k", "bf16_tflop_per_s"))
    peak = catalog.get_hardware("H100").peak_flop_per_s("bf16")
    eff = fit["fraction_of_mamf"] * catalog.get_hardware("H100").matmul_fraction
    t, _ = par._gemm_time(b * m, k, n, peak, 3.35e12, 2.0, eff, fit["gemm_half_dim"], fit["gemm_latency_s"])
    measured = 2 * b * m * n * k / (tf * 1e12)
    # batched shapes as one (b m) x k x n GEMM, as the step model writes a micro-batch's tokens
    assert np.median(np.abs(t / measured - 1)) < 0.06
    without = par._gemm_time(b * m, k, n, peak, 3.35e12, 2.0, eff, fit["gemm_half_dim"])[0]
    small = (b * m * n * k) <= 2 * 1024 ** 3
    assert np.all(without[small] < 0.8 * measured[small])  # no latency: 1024-wide GEMMs come out far too fast


def test_a_refit_fits_the_model_its_start_names(rows):
    """The switches of ``start`` choose the model refitted; a start without them refits the shipped model."""
    sub = rows[:40]
    fit = ct.fit_throughput_parameters(sub, start=dict(ct.PRIOR_START, stage_memory=False), keys=("gemm_efficiency",),
                                       max_nfev=2)
    assert fit["stage_memory"] is False and "dtype_recipes" not in fit
    plain = ct.fit_throughput_parameters(sub, start=ct.PRIOR_START, keys=("gemm_efficiency",), max_nfev=2)
    shipped = par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS]
    assert all(par._parameters(plain)[k] == shipped[k] for k in par.MODEL_SWITCHES)
    old = par.THROUGHPUT_PARAMETERS["scalesim2026e"]  # an old set refits its own model, not the shipped one
    refit = ct.fit_throughput_parameters(sub, start=old, keys=("gemm_efficiency",), max_nfev=2)
    assert refit["dtype_recipes"] is False and refit["stage_memory"] is False
    # and its leave-one-out folds refit that model too
    res = ct.leave_one_source_out(sub, parameters=old, keys=("gemm_efficiency",), max_nfev=2)
    assert all(v["parameters"]["stage_memory"] is False for v in res.values())


@pytest.fixture(scope="module")
def holdout():
    return ct.holdout_error()


def test_blackwell_holdout_is_kept_out_of_every_fit(rows, holdout):
    generations = {ct.accelerator_generation(r["accelerator"]) for r in holdout["rows"]}
    assert generations == {"B200"}  # B200, B300, GB200 and GB300: one generation
    assert {r["accelerator"] for r in holdout["rows"]} == {"B200", "B300", "GB200", "GB300"}
    assert not any(ct.accelerator_generation(r["accelerator"]) == "B200" for r in rows)
    assert holdout["n"] == len(holdout["rows"]) == 75
    source = "NVIDIA-NeMo/Megatron-Bridge:docs/performance-summary-archive.md"
    assert all(r["source"] == source for r in holdout["rows"])


def test_blackwell_holdout_transcription_is_self_consistent(holdout):
    """Each row's printed model TFLOP/s over its tokens/s is its model's FLOPs per token: one value per model
    (and sequence length) across systems, plans and containers, to the printed precision (a mistyped cell
    moves it by far more)."""
    by_model = {}
    for r in holdout["rows"]:
        flop_per_token = float(r["model_tflops_per_chip"]) * 1e12 / float(r["tokens_per_s_per_chip"])
        by_model.setdefault((r["benchmark_or_model"], r["seq_len"]), []).append(flop_per_token)
    for key, v in by_model.items():
        assert max(v) / min(v) - 1 < 0.008, key
    # a cross-check of the page's own arithmetic: Llama 3 70B at 8192 tokens, Megatron's FLOP count
    assert np.median(by_model[("LLAMA3_70B", "8192")]) == pytest.approx(4.49e11, rel=0.005)


def test_blackwell_holdout_error_is_the_one_the_readme_reports(holdout):
    """Predicted from the public-table fit alone (README 'Blackwell hold-out'); a model change moves it."""
    assert holdout["median"] == pytest.approx(0.237, abs=0.005)
    assert holdout["p90"] == pytest.approx(0.460, abs=0.01)
    err = holdout["step_time_error"]
    moe = np.array([bool(r["n_active_params"]) for r in holdout["rows"]])
    # the two signs the README names: dense rows predicted too slow, MoE rows too fast
    assert np.nanmedian(err[~moe]) > 0.08 and np.nanmedian(err[moe]) < -0.25


def test_fused_software_elementwise_traffic_carries_to_the_blackwell_dense_rows(rows, holdout):
    """README diagnostic: element-wise traffic refitted on the dense Megatron-Bridge H100 rows alone (~221 bytes per h,
    not the pooled ~574) predicts the dense Blackwell hold-out rows, and the second hold-out's 8B rows from other
    stacks, which that refit never sees, better and with little bias."""
    shipped = par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS]
    mb_dense = [r for r in rows if r["source_kind"] == "megatron_bridge" and not r["n_active_params"]]
    assert len(mb_dense) == 15 and all("H100" in r["accelerator"] for r in mb_dense)
    fit = ct.fit_throughput_parameters(mb_dense, start=shipped, keys=("elementwise_bytes_per_h",), max_nfev=50)
    assert 180 < fit["elementwise_bytes_per_h"] < 260 < 0.5 * shipped["elementwise_bytes_per_h"]
    dense = np.array([not r["n_active_params"] for r in holdout["rows"]])
    err = ct.holdout_error(fit)["step_time_error"][dense]
    assert np.nanmedian(np.abs(holdout["step_time_error"][dense])) > 0.12  # pooled fit: 16 % (+12 %)
    assert np.nanmedian(np.abs(err)) < 0.10 and abs(np.nanmedian(err)) < 0.08  # 8 % (-5 %)
    # and to the second hold-out's Llama 3.1 8B rows, under MaxText on TPU v6e and MLPerf's NeMo stacks on
    # Blackwell and MI355X: 24.7 % (+24.7 %) with the pooled fit, 9.9 % (-3.5 %) with this one
    second = ct.holdout_error(fit, table=ct.HOLDOUT2_TABLE)
    small = np.array([r["n_params"] == "8000000000" for r in second["rows"]])
    assert np.nanmedian(np.abs(second["step_time_error"][small])) < 0.13
    assert abs(np.nanmedian(second["step_time_error"][small])) < 0.08


def test_one_configuration_published_in_several_containers_spreads_as_the_readme_says(holdout):
    """README 'Three more MoE terms': the hold-out configurations printed in more than one container (same model,
    system, chips, dtype, plan and batch) differ by a median 7 % and a 90th percentile 27 % in throughput, and
    Qwen3-30B-A3B on 8 B200 at micro-batch 1 by 1.9x: what no hardware input can predict."""
    groups = {}
    for r in holdout["rows"]:
        key = (re.sub(r"\s*\(.*", "", r["benchmark_or_model"]), r["accelerator"], r["n_chips"], r["dtype"], r["tp"],
               r["pp"], r["vp"] or "1", r["cp"], r["ep"], r["micro_batch"], r["global_batch_seqs"], r["fsdp"],
               r["seq_len"])
        groups.setdefault(key, []).append(float(r["tokens_per_s_per_chip"]))
    spread = {k: max(v) / min(v) for k, v in groups.items() if len(v) > 1}
    assert len(spread) == 13
    assert np.median(list(spread.values())) == pytest.approx(1.067, abs=0.005)
    assert np.percentile(list(spread.values()), 90) == pytest.approx(1.27, abs=0.01)
    qwen_b200 = [v for k, v in spread.items() if k[0] == "Qwen3_30B_a3B" and k[1] == "B200"]
    assert qwen_b200 == [pytest.approx(18066 / 9299)]


@pytest.fixture(scope="module")
def holdout2():
    return ct.holdout_error(table=ct.HOLDOUT2_TABLE)


def test_second_holdout_is_other_stacks_and_chips_kept_out_of_every_fit(rows, holdout2):
    """README 'A second hold-out': MaxText (tpu-recipes) on TPU v7 and v6e and MLPerf Training logs on Blackwell and
    MI355X, none of them a fitted source file; every row quotes the line its measurement comes from."""
    h_rows = holdout2["rows"]
    assert len(h_rows) == 35 and all(r["quote"].strip() for r in h_rows)
    assert {r["accelerator"] for r in h_rows} == {"TPUv7", "TPUv6e", "MI355X", "B200", "B300", "GB200", "GB300"}
    fitted_files = {r["source"].split("@")[0] for r in rows}
    assert not fitted_files & {r["source"].split("@")[0] for r in h_rows}
    fitted_generations = {ct.accelerator_generation(r["accelerator"]) for r in rows}
    # TPU v6e is a fitted generation (four MLPerf int8 rows), the others are not
    assert {ct.accelerator_generation(r["accelerator"]) for r in h_rows} & fitted_generations == {"TPUv6e"}
    with pytest.raises(ValueError, match="training_throughput_benchmarks.csv"):
        ct.holdout_error(table="training_throughput_benchmarks.csv")  # the fitted table is not a hold-out
    assert scalesim.calibration.HOLDOUT2_TABLE == ct.HOLDOUT2_TABLE  # as the README spells it


def test_second_holdout_transcription_is_self_consistent(holdout2):
    """The printed step time, tokens/s and chip count of a row agree with its global batch within 0.5 % (the worst
    row is 0.11 % off: Ironwood's step times are printed to 0.01 s), and MaxText's printed TFLOP/s over tokens/s is
    one FLOPs-per-token per model, sequence length and recipe set across chip counts and dtypes, to 0.1 %. A
    mistyped digit, other than the last, moves either by more."""
    per_token = {}
    for r in holdout2["rows"]:
        gbs_tokens = float(r["global_batch_seqs"]) * float(r["seq_len"])
        step, tps, n = float(r["step_time_s"]), float(r["tokens_per_s_per_chip"]), float(r["n_chips"])
        assert tps * n * step == pytest.approx(gbs_tokens, rel=0.005), r["benchmark_or_model"]
        if r["model_tflops_per_chip"]:
            key = (r["n_params"], r["seq_len"], r["accelerator"])
            per_token.setdefault(key, []).append(float(r["model_tflops_per_chip"]) * 1e12 / tps)
    assert len(per_token) == 10
    for key, v in per_token.items():
        assert max(v) / min(v) - 1 < 0.001, key
    # and the page's own arithmetic: Llama 3.1 70B at 8192 tokens is MaxText's 6 N (N without the input
    # embedding; 70,553,706,496 parameters, vocabulary 128256 x 8192) plus 12 L h s of attention in the Trillium
    # recipes, and half of that attention (causal) in the Ironwood ones
    n_body, attention = 6 * (70_553_706_496 - 128256 * 8192), 12 * 80 * 8192 * 8192
    assert np.median(per_token[("70000000000", "8192", "TPUv6e")]) == pytest.approx(n_body + attention, rel=0.001)
    assert np.median(per_token[("70000000000", "8192", "TPUv7")]) == pytest.approx(n_body + attention / 2, rel=0.001)


def test_second_holdout_error_is_the_one_the_readme_reports(holdout2):
    """Predicted from the public-table fit alone; the same two signs as the Blackwell hold-out: Llama 3.1 8B too slow
    on every vendor's chip, MoE too fast. One row (Llama 3.1 70B on 32 TPU v6e: 16 bytes per parameter of weights,
    gradients and Adam states are 1051 GiB against 32 x 32 GiB of HBM) fits in no plan of the model, which has no host
    offloading on TPU."""
    err = holdout2["step_time_error"]
    assert holdout2["n"] == 34 and np.isnan(err).sum() == 1
    assert holdout2["median"] == pytest.approx(0.208, abs=0.005)
    assert holdout2["p90"] == pytest.approx(0.418, abs=0.01)
    h_rows = holdout2["rows"]
    moe = np.array([bool(r["n_active_params"]) for r in h_rows])
    small = np.array([r["n_params"] == "8000000000" for r in h_rows])
    assert small.sum() == 11 and np.nanmin(err[small]) > 0.15  # +17 % to +52 %
    assert moe.sum() == 8 and np.nanmax(err[moe]) < -0.1 and np.nanmedian(err[moe]) < -0.35
    new = np.array([ct.accelerator_generation(r["accelerator"]) != "TPUv6e" for r in h_rows])
    e_new = np.abs(err[new & np.isfinite(err)])
    assert np.median(e_new) == pytest.approx(0.256, abs=0.005) and np.percentile(e_new, 90) == pytest.approx(0.452, abs=0.01)
