"""Tests for scalesim.calibration: the shipped defaults are reproducible from the shipped data."""

import pytest

from scalesim import calibration, catalog
from scalesim.models.hardware import MFU_MODEL_EPOCH


def test_utilisation_fit_reproduces_default():
    fit = calibration.fit_utilisation_model()
    assert fit["n_points"] == MFU_MODEL_EPOCH["n_points"] == 50
    assert fit["intercept"] == pytest.approx(MFU_MODEL_EPOCH["intercept"], abs=5e-7)
    assert fit["slope_per_decade"] == pytest.approx(MFU_MODEL_EPOCH["slope_per_decade"], abs=5e-8)
    assert fit["r2"] == pytest.approx(MFU_MODEL_EPOCH["r2"], abs=5e-4)
    assert fit["rmse"] == pytest.approx(MFU_MODEL_EPOCH["rmse"], abs=5e-4)
    # numpy's default (linear) percentiles of the residuals
    assert fit["residual_p10"] == pytest.approx(-0.127, abs=5e-4)
    assert fit["residual_p90"] == pytest.approx(0.160, abs=5e-4)


def test_utilisation_fit_recovers_a_known_line():
    rows = [{"n_chips": str(n), "mfu": str(0.5 - 0.05 * k)} for k, n in enumerate((1, 10, 100, 1000))]
    fit = calibration.fit_utilisation_model(rows)
    assert fit["intercept"] == pytest.approx(0.5)
    assert fit["slope_per_decade"] == pytest.approx(-0.05)
    assert fit["rmse"] == pytest.approx(0.0, abs=1e-12)


def test_utilisation_fit_needs_points():
    with pytest.raises(ValueError, match="rows"):
        calibration.fit_utilisation_model([{"n_chips": "8", "mfu": "0.4"}])


@pytest.mark.parametrize("family", ["gpu", "tpu"])
def test_power_fit_reproduces_power_model_csv(family):
    fit = calibration.fit_power_model()[family]
    shipped = catalog.power_model_parameter(family, "system_power_over_tdp")
    assert fit["value"] == pytest.approx(shipped.value, abs=0.005)
    assert fit["low"] == pytest.approx(shipped.low, abs=0.005)
    # power_model.csv rounds the H100 node maximum 1.494 up to 1.50
    assert fit["high"] == pytest.approx(shipped.high, abs=0.01)


def test_power_fit_runs_and_bad_source():
    runs = calibration.fit_power_model("runs")
    assert runs["gpu"]["value"] == pytest.approx(1.0)  # the runs mostly assume TDP
    loo = calibration.fit_power_model("runs", exclude=("GPT-3 175B",))
    assert "GPT-3 175B" not in loo["gpu"]["points"]
    with pytest.raises(ValueError, match="source.*'measurements'"):
        calibration.fit_power_model("guess")


def test_run_utilisation_and_leave_one_out():
    fit = calibration.fit_run_utilisation()
    assert 0.2 < fit["mfu"] < 0.45
    # BLOOM: 6ND / (GPU-h x 3600 x 312 TFLOP/s) = 0.318 (table's mfu_derived)
    assert fit["points"]["BLOOM-176B"] == pytest.approx(0.318, abs=0.001)
    loo = calibration.leave_one_out(calibration.fit_run_utilisation, models=["BLOOM-176B", "GPT-3 175B"])
    assert "BLOOM-176B" not in loo["BLOOM-176B"]["points"]
    assert loo["GPT-3 175B"]["n_points"] == fit["n_points"] - 1


@pytest.mark.parametrize("text, value", [("1.1 (implied, not stated)", 1.1), ("2B; 7B", None),
                                         ("~150 (approx. 5 months)", 150.0), ("2.6e+22", 2.6e22),
                                         ("1024 (128 nodes x 8)", 1024.0), ("", None), ("1,082,990", 1082990.0)])
def test_parse_number(text, value):
    assert calibration.parse_number(text) == value


def test_every_single_accelerator_resolves():
    for r in catalog.published_runs():
        name = r["accelerator"]
        if name and "/" not in name:
            assert calibration.hardware_of(r) is not None, name


def test_run_utilisation_by_generation_shrinks_toward_pooled_median():
    rows = [{"model": f"m{k}", "accelerator": acc, "n_params": "1e9", "n_tokens": "1e12", "row_type": "primary",
             "chip_hours": str(6e21 / (3600 * peak * mfu))}
            for k, (acc, peak, mfu) in enumerate([("A100-80GB", 312e12, 0.4)] * 3 + [("H100-80GB", 989.5e12, 0.1)])]
    fit = calibration.fit_run_utilisation(rows, by="generation")
    assert fit["mfu"] == pytest.approx(0.4)
    assert fit["by_generation"]["A100"]["mfu"] == pytest.approx(0.4)
    # one H100 run and 2 pseudo-runs at the pooled median 0.4: (0.1 + 2 x 0.4) / 3
    assert fit["by_generation"]["H100"]["median"] == pytest.approx(0.1, rel=1e-3)
    assert fit["by_generation"]["H100"]["mfu"] == pytest.approx(0.3, rel=1e-3)
    with pytest.raises(ValueError, match="by must be one of"):
        calibration.fit_run_utilisation(rows, by="accelerator")


def test_compute_caveat_and_run_group():
    runs = {r["model"]: r for r in catalog.published_runs()}
    assert "distilled" in calibration.compute_caveat(runs["Llama 3.2 1B"])
    assert "lower bound" in calibration.compute_caveat(runs["Llama 3 8B"])
    assert calibration.compute_caveat(runs["LLaMA-65B"]) == ""
    assert calibration.run_group(runs["Llama 3 8B"]) == calibration.run_group(runs["Llama 3.1 8B"])
    assert calibration.run_group(runs["Llama 3 8B"]) != calibration.run_group(runs["Llama 3 70B"])
    assert calibration.run_group(runs["LLaMA-7B"]) != calibration.run_group(runs["MPT-7B"])  # same N, D; other lab
    # third-party re-estimates duplicate primary rows and are never fitted on
    assert not any(m.endswith("re-estimate]") for m in calibration.fit_run_utilisation()["points"])


def test_compute_caveat_and_power_fits_read_codes_not_wording():
    row = next(r for r in catalog.published_runs() if r["model"] == "LLaMA-65B")
    assert calibration.compute_caveat(dict(row, notes="distilled; lower bound")) == ""
    assert calibration.compute_caveat(dict(row, compute_caveat="pruned;continued_training")) == (
        "pruned from a larger model (6ND overstates compute); continued training of another model")
    with pytest.raises(ValueError, match="compute_caveat 'distillation' is not allowed"):
        calibration.compute_caveat(dict(row, compute_caveat="distillation"))
    rows = [dict(r) for r in catalog.published_runs()]
    base = calibration.fit_power_model("runs", rows=rows)
    reworded = calibration.fit_power_model("runs", rows=[dict(r, chip_power_basis="x") for r in rows])
    assert reworded == base
    # GPT-NeoX-20B's 250 W is its energy / GPU-hours: circular, never fitted on
    assert "GPT-NeoX-20B" not in base["gpu"]["points"]
    i = next(k for k, r in enumerate(rows) if r["model"] == "GPT-NeoX-20B")
    rows[i]["power_provenance"] = "measured"
    assert "GPT-NeoX-20B" in calibration.fit_power_model("runs", rows=rows)["gpu"]["points"]
    # the measurement fit uses the run-specific measured system averages only (LaMDA's is borrowed)
    assert "LaMDA 137B (largest model pre-training)" not in calibration.fit_power_model()["tpu"]["points"]
    assert "GPT-3 175B" in calibration.fit_power_model()["gpu"]["points"]


def test_documented_run_calibration_matches_refit():
    from scalesim.models.hardware import MFU_RUNS_BY_GENERATION

    fit = calibration.fit_run_utilisation(by="generation")
    assert fit["mfu"] == pytest.approx(MFU_RUNS_BY_GENERATION["pooled"], abs=5e-4)
    for gen, got in fit["by_generation"].items():
        assert got["mfu"] == pytest.approx(MFU_RUNS_BY_GENERATION[gen], abs=5e-4), gen


# --- hierarchical utilisation (the simulate default) -----------------------------------------
def test_documented_hierarchical_calibration_matches_refit():
    from scalesim.models.hardware import MFU_MODEL_HIERARCHICAL as M

    fit = calibration.fit_hierarchical_utilisation()
    assert (fit["n_runs"], fit["n_reported"]) == (M["n_runs"], M["n_reported"]) == (29, 34)
    for key in ("eta", "pooled", "ratio_p10", "ratio_p90"):
        assert fit[key] == pytest.approx(M[key], abs=5e-6), key
    assert set(fit["by_generation"]) == {k for k in M if k[0] in "AHTV"}
    for gen, got in fit["by_generation"].items():
        assert got["mfu"] == pytest.approx(M[gen], abs=5e-6), gen


@pytest.mark.parametrize("cell, gen", [("NVIDIA A100 SXM4 80 GB", "A100"), ("NVIDIA A100", "A100"),
                                       ("Google TPU v3", "TPUv3"), ("NVIDIA Tesla V100S PCIe 32 GB", "V100"),
                                       ("NVIDIA H800 SXM5", "H800"), ("NVIDIA A800 PCIe 40 GB", None),
                                       ("Google TPU v5e,Google TPU v4", None), ("Amazon Trainium1", None), ("", None)])
def test_epoch_generation(cell, gen):
    assert calibration.epoch_generation(cell) == gen


def test_epoch_duplicates_match_the_same_run_only():
    runs = catalog.published_runs()
    row = lambda system, hw: {"system": system, "hardware": hw}  # noqa: E731
    assert calibration.epoch_duplicates(row("GPT-3 175B (davinci)", "NVIDIA Tesla V100 DGXS 32 GB"), runs) == ["GPT-3 175B"]
    assert calibration.epoch_duplicates(row("Llama 2-70B", "NVIDIA A100 SXM4 80 GB"), runs) == ["Llama 2 70B"]
    assert calibration.epoch_duplicates(row("Flan-PaLM 540B", "Google TPU v4"), runs) == []
    assert calibration.epoch_duplicates(row("Code Llama-70B", "NVIDIA A100 SXM4 80 GB"), runs) == []
    assert calibration.epoch_duplicates(row("GPT-3 175B (davinci)", "Google TPU v3"), runs) == []  # other silicon


def _synthetic_run(k, acc, peak, mfu):
    return {"model": f"m{k}", "accelerator": acc, "n_params": "1e9", "n_tokens": "1e12", "row_type": "primary",
            "chip_hours": str(6e21 / (3600 * peak * mfu))}


def test_hierarchical_recovers_a_known_structure():
    # A100 runs at 0.4 effective with 0.5 reported (eta = 0.8); one H100 run at 0.1, H100 reported 0.25
    runs = [_synthetic_run(k, "A100-80GB", 312e12, 0.4) for k in range(3)] + [_synthetic_run(9, "H100-80GB", 989.5e12, 0.1)]
    reported = [{"system": f"e{k}", "hardware": "NVIDIA A100 SXM4 80 GB", "mfu": "0.5"} for k in range(3)]
    reported += [{"system": "h", "hardware": "NVIDIA H100 SXM5 80GB", "mfu": "0.25"},
                 {"system": "t", "hardware": "Google TPU v4", "mfu": "0.45"}]
    fit = calibration.fit_hierarchical_utilisation(runs, reported)
    # eta = median(0.4/0.5, 0.4/0.5, 0.4/0.5, 0.1/0.25) = 0.8
    assert fit["eta"] == pytest.approx(0.8)
    assert fit["by_generation"]["A100"]["mfu"] == pytest.approx(0.4)  # (3 x 0.4 + 2 x 0.8 x 0.5) / 5
    assert fit["by_generation"]["H100"]["mfu"] == pytest.approx((0.1 + 2 * 0.8 * 0.25) / 3)
    assert fit["by_generation"]["TPUv4"]["mfu"] == pytest.approx(0.8 * 0.45)  # no runs: the prior
    loo = calibration.fit_hierarchical_utilisation(runs, reported, exclude=("m9",))
    assert loo["by_generation"]["H100"]["mfu"] == pytest.approx(0.8 * 0.25)
    with pytest.raises(ValueError, match="eta"):
        calibration.fit_hierarchical_utilisation(runs, reported[-1:])
