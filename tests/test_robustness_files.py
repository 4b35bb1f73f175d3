"""Issue 14 regressions for files and the command line: no stale output, no stray temporaries,
bad paths and interrupts are exit 2 / 130 with the path, [serve] and [schedule] sections."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from scalesim.interface import cli, scenarios
from scalesim.interface.scenarios import ScenarioError, load_scenario, run_scenario

BASE = """
[sweep]
n_params = 1e9
n_tokens = 2e10
hardware = "H100-SXM5-80GB"
n_chips = 64
mfu = 0.4
region = ["FR", "US"]
[output]
netcdf = "out/s.nc"
csv = "out/s.csv"
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_stale_csv_is_recomputed(tmp_path):
    p = write(tmp_path, BASE)
    run_scenario(p, base_dir=tmp_path, progress=False)
    csv = tmp_path / "out/s.csv"
    csv.write_text("stale\n")  # as if a run was killed after the netCDF, leaving an old CSV
    res = run_scenario(p, base_dir=tmp_path, progress=False)
    assert not res.skipped and csv.read_text() != "stale\n"
    assert run_scenario(p, base_dir=tmp_path, progress=False).skipped


def test_temporaries_of_killed_runs_are_removed(tmp_path):
    p = write(tmp_path, BASE)
    (tmp_path / "out").mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"out/.s.nc.tmp-{int(dead.stdout)}.nc"
    stale.write_bytes(b"half")
    run_scenario(p, base_dir=tmp_path, progress=False)
    assert not stale.exists()


def test_sigint_during_a_write_is_not_swallowed(tmp_path):
    import signal

    def write_and_interrupt(tmp):  # a writer that, like HDF5 under h5netcdf, swallows the interrupt
        tmp.write_text("partial")
        try:
            os.kill(os.getpid(), signal.SIGINT)
            tmp.write_text("partial, then more")
        except KeyboardInterrupt:
            pass

    with pytest.raises(KeyboardInterrupt):
        scenarios._atomic_write(tmp_path / "x.nc", write_and_interrupt)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_outputs_are_reported_before_computing(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out/s.csv").mkdir()  # a directory where the CSV goes
    called = []
    monkeypatch.setattr(scenarios, "_compute", lambda *a, **k: called.append(1))
    with pytest.raises(ScenarioError, match=r"out/s.csv: .*output.csv is a directory"):
        run_scenario(write(tmp_path, BASE), base_dir=tmp_path, progress=False)
    assert not called and not (tmp_path / "out/s.nc").exists()


def test_unknown_table_column_and_unfit_figure_write_nothing(tmp_path):
    p = write(tmp_path, BASE.replace('csv = "out/s.csv"', 'csv = "out/s.csv"\ntable = ["co2e_t", "co2_t"]'))
    with pytest.raises(ScenarioError, match=r"output.table\[1\]: 'co2_t' is not a variable.*closest: co2e_t"):
        run_scenario(p, base_dir=tmp_path, progress=False)
    p = write(tmp_path, BASE.replace('csv = "out/s.csv"', 'csv = "out/s.csv"\nfigures = ["emissions_plane"]'))
    with pytest.raises(ScenarioError, match=r"output.figures\[0\]: 'emissions_plane' does not fit this result"):
        run_scenario(p, base_dir=tmp_path, progress=False)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("text, key, fragment", [
    ('[scenario]\nname = "../../escape"\n' + BASE, "scenario.name", "must be a plain file name"),
    (BASE.replace("n_params = 1e9", f"n_params = {2 ** 256}"), "sweep.n_params", "must be at most 1e+60"),
    (BASE.replace("n_params = 1e9", "n_params = 70"), "sweep.n_params", "allow_unusual='n_params'"),
    (BASE.replace("n_params = 1e9", "n_params = " + "[" * 3000 + "]" * 3000), "", "nested too deeply"),
    (BASE + "[serve]\nn_params = 7e9\nhardware = 'h100'\n", "serve", "cannot be combined with [sweep]"),
    ("[serve]\nhardware = 'h100'\n", "serve.n_params", "is required"),
    ("[serve]\nn_params = 7e9\nhardware = 'h1000'\n", "serve.hardware", "unknown hardware"),
    ("[schedule]\nregion = 'DE'\njob_days = 7\nstrategy = 'pause'\n", "schedule.strategy", "did you mean 'pause_resume'"),
    ("[schedule]\nregion = 'Atlantis'\njob_days = 7\n", "schedule.region", "unknown region"),
    ("[schedule]\nregion = 'DE'\n", "schedule.job_hours", "give exactly one of job_hours or job_days"),
    ("[schedule]\nregion = 'DE'\njob_days = 300\n", "schedule.job_days", "longer than the series"),
])
def test_schema_errors_name_the_key(tmp_path, text, key, fragment):
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "s.toml")) and key in msg and fragment in msg, msg


def test_integers_beyond_int64_run_as_floats(tmp_path):
    text = BASE.replace("n_params = 1e9", f"n_params = {2 ** 70}").replace("n_tokens = 2e10", "n_tokens = 1e6")
    ds = run_scenario(write(tmp_path, text), base_dir=tmp_path, progress=False).dataset
    assert float(ds.flop) == pytest.approx(6 * 2.0 ** 70 * 1e6)


def test_allow_unusual_in_a_scenario(tmp_path):
    text = BASE.replace("n_params = 1e9", "n_params = 70\nallow_unusual = ['n_params']")
    assert load_scenario(write(tmp_path, text)).sweep["n_params"] == 70


def test_serve_and_schedule_sections_run(tmp_path):
    serve = write(tmp_path, "[serve]\nn_params = 7e9\nhardware = 'h100'\nbatch_size = [8, 64]\nregion = 'FR'\n"
                            "[output]\nnetcdf = 'out/v.nc'\ncsv = 'out/v.csv'\n", "v.toml")
    ds = run_scenario(serve, base_dir=tmp_path, progress=False).dataset
    assert ds.energy_per_token_j.dims == ("batch_size",)
    assert float(ds.energy_per_token_j.sel(batch_size=64)) < float(ds.energy_per_token_j.sel(batch_size=8))
    sched = write(tmp_path, "[schedule]\nregion = 'DE'\njob_hours = 24\nslack = 1.0\nstrategy = ['immediate', 'pause_resume']\n"
                            "[output]\nnetcdf = 'out/c.nc'\ncsv = 'out/c.csv'\n", "c.toml")
    res = run_scenario(sched, base_dir=tmp_path, progress=False)
    with xr.open_dataset(res.files[0], engine="h5netcdf") as ds:
        assert float(ds.saving.sel(strategy="immediate").max()) == 0.0
        assert float(ds.saving.sel(strategy="pause_resume").min()) > 0.0


def test_cli_exit_codes(tmp_path, capsys):
    assert cli.main(["simulate", "--n-chip", "8", "--n-params", "7e9", "--n-tokens", "1e12", "--hardware", "h100",
                     "--region", "FR"]) == 2  # no abbreviations
    assert cli.main(["simulate", "--n-chips", "8", "--n-params", "70", "--n-tokens", "1e12", "--hardware", "h100",
                     "--region", "Germany", "--allow-unusual", "n_params"]) == 0
    p = write(tmp_path, BASE)
    (tmp_path / "summary.md").mkdir()
    os.chdir(tmp_path)
    code = cli.main(["run", str(p), "--summary", str(tmp_path / "summary.md")])
    err = capsys.readouterr().err
    assert code == 2 and "--summary is a directory" in err, err
    assert cli._fmt(float("inf")) == "inf"


def test_broken_pipe_is_quiet():
    proc = subprocess.run(f"{sys.executable} -m scalesim.interface.cli catalog regions | head -1", shell=True,
                          capture_output=True, text=True, executable="/bin/bash")
    assert proc.stdout.startswith("region_id") and "Error" not in proc.stderr, proc.stderr


def test_catalog_search_is_accent_insensitive(capsys):
    assert cli.main(["catalog", "regions", "--search", "quebec"]) == 0
    assert "CA-QC" in capsys.readouterr().out


def test_shipped_serve_and_schedule_scenarios_exist():
    root = Path(__file__).resolve().parents[1] / "scenarios"
    assert load_scenario(root / "serving.toml").serve is not None
    assert load_scenario(root / "carbon_aware_schedule.toml").schedule is not None
