"""Every ``scalesim`` verb: exit code 0 on success, 2 on bad input, 1 on internal error."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from scalesim import __version__
from scalesim.interface.cli import main

import h5netcdf  # noqa: F401,E402  (test extra: make test installs it)
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SIM = ["simulate", "--n-params", "7e9", "--n-tokens", "1e11", "--n-chips", "64"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "true")
    return tmp_path


def test_version_help_and_usage_errors(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "scalesim run scenarios/quickstart.toml" in out
    for verb in ("run", "simulate", "optimize", "validate", "figures", "catalog"):
        assert verb in out
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["catalog", "planets"]) == 2


def test_run_quickstart_prints_table_and_skips(workdir, capsys):
    shutil.copy(SCENARIOS / "quickstart.toml", workdir)
    assert main(["run", "quickstart.toml", "--force", "--summary", "results/summary.md"]) == 0
    out = capsys.readouterr().out
    assert "co2e_t [t]" in out and "wall_days [day]" in out and "H100-SXM5-80GB" in out and "ZA" in out
    assert (workdir / "results/quickstart.nc").exists() and (workdir / "results/quickstart_summary.csv").exists()
    assert (workdir / "results/quickstart_region_hardware_bars.png").exists()
    assert "| quickstart |" in (workdir / "results/summary.md").read_text()
    assert main(["run", str(workdir), "--summary", "results/summary.csv"]) == 0  # a directory
    assert "up to date" in capsys.readouterr().out
    assert "co2e_t_median" in (workdir / "results/summary.csv").read_text()


def test_run_bad_input_is_exit_2_with_one_line(workdir, capsys):
    (workdir / "bad.toml").write_text('[sweep]\nhardware = "h100"\nregion = ["FR", "Mars"]\nn_chips = 8\nflop = 1e20\n')
    assert main(["run", "bad.toml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.toml" in err and "sweep.region[1]" in err
    assert main(["run", "missing.toml"]) == 2
    (workdir / "empty").mkdir()
    assert main(["run", "empty"]) == 2


def test_simulate_formats(capsys):
    assert main(SIM + ["--hardware", "h100,a100-sxm4-80gb", "--region", "FR", "--region", "US"]) == 0
    out = capsys.readouterr().out
    assert "co2e_t [t]" in out and out.count("\n") == 6
    assert main(SIM + ["--hardware", "h100", "--region", "FR,US", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("region,")
    assert main(SIM + ["--hardware", "h100", "--region", "FR", "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec[0]["co2e_t"] > 0
    acc = ["simulate", "--hardware", "V100", "--chip-hours", "3.552e6", "--chip-power-w", "330",
           "--pue", "1.1", "--grid-gco2e-per-kwh", "429", "--format", "json"]
    assert main(acc) == 0
    assert abs(json.loads(capsys.readouterr().out)[0]["co2e_t"] - 552) < 5


def test_simulate_bad_input_exit_2(capsys):
    assert main(SIM + ["--hardware", "H1000", "--region", "FR"]) == 2
    err = capsys.readouterr().err
    assert "unknown hardware" in err and len(err.strip().splitlines()) == 1
    assert main(SIM + ["--hardware", "h100"]) == 2  # no region
    assert main(SIM + ["--hardware", "h100", "--region", "FR", "--mfu", "lots"]) == 2
    from scalesim import steps

    assert f"mfu must be a number, a callable or one of {steps.UTILISATION.names()}, got 'lots'" in capsys.readouterr().err


def test_simulate_mfu_model_by_name(capsys):
    base = ["simulate", "--n-params", "7e9", "--n-tokens", "2e12", "--hardware", "h100", "--region", "FR", "--format", "json"]
    assert main(base + ["--n-chips", "8", "--mfu", "epoch"]) == 0
    epoch = json.loads(capsys.readouterr().out)[0]["mfu"]
    assert main(base + ["--mfu", "hierarchical"]) == 0  # per-generation constants need no chip count
    hier = json.loads(capsys.readouterr().out)[0]
    assert hier["mfu"] < epoch and "wall_days" not in hier
    assert main(base) == 0  # the default chooses a chip count (30-day rule) and reports wall days
    default = json.loads(capsys.readouterr().out)[0]
    assert 0 < default["wall_days"] <= 30


def test_internal_error_exit_1_traceback_only_with_debug(monkeypatch, capsys):
    def boom(**kw):
        raise RuntimeError("kaboom")
    monkeypatch.setattr(sys.modules["scalesim.chain.simulation"], "simulate", boom)
    assert main(SIM + ["--hardware", "h100", "--region", "FR"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "kaboom" in err and "Traceback" not in err
    assert main(["--debug"] + SIM + ["--hardware", "h100", "--region", "FR"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_optimize(capsys):
    args = ["optimize", "--target-loss", "2.2", "--hardware", "H100-SXM5-80GB", "--n-chips", "1024",
            "--region", "FR,US", "--format", "json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(r["n_params"] > 0 for r in rows)
    assert main(args[:-2] + ["--inference-tokens", "1e12"]) == 0
    assert main(["optimize", "--target-loss", "2.2", "--hardware", "H1000", "--n-chips", "8", "--region", "FR"]) == 2
    assert main(["optimize", "--hardware", "h100"]) == 2  # no goal


def test_validate(tmp_path, capsys):
    assert main(["validate", "--mode", "accounting", "--figure", str(tmp_path / "val"), "--formats", "png"]) == 0
    assert (tmp_path / "val.png").exists()
    assert main(["validate", "--mode", "guess"]) == 2


def test_validate_prediction_calibration_flags(capsys):
    assert main(["validate", "--mode", "prediction", "--mfu-model", "runs_by_generation",
                 "--exclude-compute-caveats"]) == 0
    out = capsys.readouterr().out
    assert "chip_hours_loo" in out and "Llama 3.2 1B" in out  # skipped run listed with its reason


def test_validate_prediction_default_summary_and_figure(tmp_path, capsys):
    assert main(["validate", "--mode", "prediction", "--json", "--figure", str(tmp_path / "p"), "--formats", "png"]) == 0
    out = capsys.readouterr().out
    assert "runs with N, D and reported chip-hours" in out and "90% interval" in out
    summary = json.loads(out[out.index("\n{") + 1:out.index("\nfigure ->")])
    crit = summary["n_d_chip_hours"]["chip_hours_loo"]
    # the CLI's default utilisation model is validate()'s (structural: GPT-3 on V100 has no fitting plan, 21 runs)
    assert crit["n"] == 21 and crit["median_ci"][0] < crit["median_abs_rel_error"] < crit["median_ci"][1]
    assert (tmp_path / "p.png").exists()
    assert main(["validate", "--mode", "prediction", "--mfu-model", "nonsense"]) == 2


def test_figures(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path), "--only", "region_hardware_bars", "--formats", "svg"]) == 0
    assert (tmp_path / "region_hardware_bars.svg").exists()
    assert main(["figures", "--out", str(tmp_path), "--only", "nope"]) == 2


def test_catalog(capsys):
    assert main(["catalog", "hardware", "--search", "h100"]) == 0
    out = capsys.readouterr().out
    assert "H100-SXM5-80GB" in out and "TPUv5p" not in out
    assert main(["catalog", "regions", "--search", "europe-north"]) == 0
    assert "gcp:europe-north1" in capsys.readouterr().out
    assert main(["catalog", "laws"]) == 0
    assert "besiroglu2024" in capsys.readouterr().out


def test_serve_and_schedule_verbs(capsys):
    assert main(["serve", "--n-params", "7e9", "--hardware", "h100", "--n-chips", "1", "--batch-size", "8,64",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and rows[0]["gpu_energy_per_token_j"] > rows[1]["gpu_energy_per_token_j"] > 0
    assert main(["schedule", "--region", "DE", "--job-days", "1", "--slack", "1.0", "--format", "json"]) == 0
    assert "saving" in capsys.readouterr().out
    assert main(["serve", "--n-params", "7e9", "--hardware", "h100", "--n-chips", "1", "--batch-size", "0"]) == 2
