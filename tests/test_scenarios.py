"""Scenario files: every shipped scenario runs; schema errors name file and key path; outputs are
atomic, hashed and skipped when up to date."""

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim.interface import scenarios
from scalesim.interface.scenarios import ScenarioError, load_scenario, run_scenario

import h5netcdf  # noqa: F401,E402  (test extra: make test installs it)

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
SHIPPED = sorted(SCENARIO_DIR.glob("*.toml"))


def shrink(sc, k=3):
    """Scale a scenario down for tests: keep at most ``k`` values (first, middle, last) per list, and ``k`` levers."""
    def cut(v):
        if isinstance(v, (list, np.ndarray)) and len(v) > k:
            idx = np.unique(np.linspace(0, len(v) - 1, k).round().astype(int))
            return [v[i] for i in idx] if isinstance(v, list) else np.asarray(v)[idx]
        return v
    sc.sweep = {key: cut(v) for key, v in sc.sweep.items()}
    if sc.optimize:
        sc.optimize = {key: cut(v) for key, v in sc.optimize.items()}
    if sc.levers:  # each lever is 3 optimize calls (central, low, high corners); distillation nests more
        sc.levers = cut(sc.levers)
    return sc


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


BASE = """
[sweep]
n_params = 1e9
n_tokens = 2e10
hardware = "H100-SXM5-80GB"
n_chips = 64
region = ["FR", "US"]
[output]
netcdf = "out/s.nc"
csv = "out/s.csv"
"""


def test_shipped_scenarios_exist():
    names = {p.stem for p in SHIPPED}
    assert {"quickstart", "regions", "hardware_generations", "optimal_vs_inference",
            "carbon_aware_timing", "patterson2021"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_runs(path, tmp_path):
    sc = shrink(load_scenario(path))
    res = run_scenario(sc, base_dir=tmp_path, progress=False)
    assert not res.skipped
    for f in res.files:
        assert Path(f).exists(), f
    with xr.open_dataset(res.files[0], engine="h5netcdf") as ds:
        assert ds.attrs["scenario_sha256"] == sc.sha256
        headline = "saving" if sc.schedule is not None else "co2e_t"  # [schedule] reports intensity savings
        assert headline in ds and ds[headline].attrs["units"] == ("1" if sc.schedule is not None else "t")
    assert not list(tmp_path.rglob(".*tmp*"))


def test_quickstart_covers_hardware_and_regions():
    sc = load_scenario(SCENARIO_DIR / "quickstart.toml")
    assert sc.sweep["n_params"] == 70e9 and sc.sweep["n_tokens"] == 2e12 and sc.sweep["n_chips"] == 2048
    assert len(sc.sweep["hardware"]) == 3 and len(sc.sweep["region"]) >= 8


def test_patterson2021_reproduces_table4(tmp_path):
    res = run_scenario(SCENARIO_DIR / "patterson2021.toml", base_dir=tmp_path, progress=False)
    ds = res.dataset
    assert ds.sizes["run"] == 6
    # The inputs are printed to 2-3 significant figures (e.g. 0.177 kgCO2e/kWh, 288 W), so
    # recomputation agrees with the printed results to about 2 %.
    np.testing.assert_allclose(ds.energy_kwh, ds.reported_energy_kwh, rtol=0.02)
    np.testing.assert_allclose(ds.co2e_t, ds.reported_co2e_t, rtol=0.02)
    assert ds["input_hardware"].sel(run="GPT-3 175B").item() == "V100-SXM2-32GB"


def test_sweep_forms_and_result_matches_simulate(tmp_path):
    p = write(tmp_path, BASE.replace("n_params = 1e9", "n_params = {logspace = [1e8, 1e10, 3]}")
              .replace("n_tokens = 2e10", "n_tokens = {linspace = [1e10, 3e10, 3]}"))
    res = run_scenario(p, base_dir=tmp_path, progress=False)
    ref = ss.simulate(n_params=ss.logspace(1e8, 1e10, 3), n_tokens=np.linspace(1e10, 3e10, 3),
                      hardware="H100-SXM5-80GB", n_chips=64, region=["FR", "US"])
    xr.testing.assert_allclose(res.dataset.co2e_t, ref.co2e_t)
    back = xr.load_dataset(tmp_path / "out/s.nc", engine="h5netcdf")
    assert json.loads(back.attrs["defaults_used"])  # JSON strings survive netCDF
    assert back.co2e_t.dims == ("n_params", "n_tokens", "region")


def test_large_sweep_is_chunked_with_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(scenarios, "_CHUNK_CELLS", 10)
    p = write(tmp_path, BASE.replace("n_params = 1e9", "n_params = {logspace = [1e8, 1e10, 12]}")
              .replace("n_tokens = 2e10", "n_tokens = {logspace = [1e10, 1e12, 4]}"))
    calls = []
    res = run_scenario(p, base_dir=tmp_path, progress=lambda label, n, total: calls.append(total))
    assert len(calls) > 1
    ref = ss.simulate(n_params=ss.logspace(1e8, 1e10, 12), n_tokens=ss.logspace(1e10, 1e12, 4),
                      hardware="H100-SXM5-80GB", n_chips=64, region=["FR", "US"])
    xr.testing.assert_allclose(res.dataset.co2e_t, ref.co2e_t)
    assert res.dataset.chip_power_w.dims == ()  # variables without the chunked dim stay unbroadcast


def test_progress_plain_lines_off_tty_and_bar_on_tty(monkeypatch):
    s = io.StringIO()
    p = scenarios.Progress("x", 2, stream=s)
    p(), p()
    assert s.getvalue() == "x: 1/2\nx: 2/2\n"

    class Tty(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.delenv("CI", raising=False)
    t = Tty()
    p = scenarios.Progress("x", 2, stream=t)
    p(), p()
    assert "\r" in t.getvalue() and "#" in t.getvalue()
    monkeypatch.setenv("CI", "true")
    assert not scenarios.Progress("x", 2, stream=Tty()).bar


# ----------------------------------------------------------------------------- schema errors
BAD = [
    (BASE.replace("region =", "regoin ="), "sweep.regoin", "did you mean 'region'"),
    (BASE.replace('["FR", "US"]', '["FR", "US", "DE", "XX"]'), "sweep.region[3]", "unknown region"),
    (BASE.replace('"H100-SXM5-80GB"', '"H1000"'), "sweep.hardware", "unknown hardware"),
    (BASE.replace("n_chips = 64", 'n_chips = "many"'), "sweep.n_chips", "must be a number"),
    (BASE.replace("n_chips = 64", "n_chips = 6.5"), "sweep.n_chips", "whole number"),
    (BASE + "[extra]\n", "extra", "unknown key"),
    (BASE.replace("n_chips = 64", "n_chips = 64\nmfu = 40"), "sweep.mfu", "fractions, not percentages"),
    (BASE.replace("n_chips = 64", "mfu = \"epoch\""), "sweep.mfu", "'epoch' needs n_chips"),
    (BASE.replace("n_chips = 64", "n_chips = 64\nmfu = \"hierarchy\""), "sweep.mfu", "allowed: hierarchical, epoch, structural"),
    (BASE.replace("n_chips = 64", "n_chips = 64\nmfu = [\"epoch\"]"), "sweep.mfu[0]", "single string"),
    (BASE.replace("n_chips = 64", "n_chips = 64\npue = 0.9"), "sweep.pue", ">= 1"),
    (BASE.replace("n_chips = 64", "n_chips = 64\npue = \"gooogle\""), "sweep.pue", "google"),
    (BASE.replace("n_params = 1e9", "n_params = {logspace = [1e8, 1e10, 0]}"), "sweep.n_params.logspace[2]", "positive integer"),
    (BASE.replace("n_params = 1e9", "n_params = {logspace = [-1, 1e10, 3]}"), "sweep.n_params.logspace", "> 0"),
    (BASE.replace("n_params = 1e9", "n_params = {linspace = [1e10, 1e8, 3]}"), "sweep.n_params.linspace", "lo must be <= hi"),
    (BASE.replace("n_params = 1e9", "n_params = {logspce = [1e8, 1e10, 3]}"), "sweep.n_params.logspce", "did you mean 'logspace'"),
    (BASE.replace('["FR", "US"]', '["FR", "FR"]'), "sweep.region", "repeated"),
    (BASE.replace("n_params = 1e9", "n_params = [1e9, -2]"), "sweep.n_params[1]", "> 0"),
    (BASE.replace("n_params = 1e9", "n_params = []"), "sweep.n_params", "empty"),
    (BASE.replace("n_tokens = 2e10\n", ""), "sweep.n_tokens", "go together"),
    (BASE.replace('region = ["FR", "US"]', ""), "sweep.region", "no default grid"),
    (BASE.replace("n_chips = 64", "goodput = [0.9, 1.0]"), "sweep.goodput", "single"),
    (BASE.replace("n_chips = 64", "n_chips = 64\nstart_hour = 24"), "sweep.start_hour", "[0, 24)"),
    (BASE.replace("n_chips = 64", "n_chips = 64\ndefaults = \"mid\""), "sweep.defaults", "low, central, high"),
    (BASE.replace('csv = "out/s.csv"', 'csv = "out/s.txt"'), "output.csv", ".csv"),
    (BASE + 'figures = ["region_bars"]\n', "output.figures[0]", "region_hardware_bars"),
    (BASE + 'formats = ["png", "jpeg"]\n', "output.formats[1]", "unknown format"),
    (BASE + "[[runs]]\nhardware = \"V100\"\n", "sweep.region", "single value"),
    ("[[runs]]\nhardware = \"V100\"\nchip_hours = [1, 2]\ngrid_gco2e_per_kwh = 400\n", "runs[0].chip_hours", "single"),
    ("[[runs]]\nhardware = \"V100\"\nchip_hours = 10\ngrid_gco2e_per_kwh = 400\nreported = {co2e = 1}\n",
     "runs[0].reported.co2e", "did you mean 'co2e_t'"),
    ("[sweep]\nhardware = \"h100\"\nregion = \"FR\"\nn_chips = 8\n[optimize]\ntarget_loss = 2.1\nflop_budget = 1e22\n",
     "optimize", "exactly one of"),
    ("[sweep]\nhardware = \"h100\"\nregion = \"FR\"\nn_chips = 8\nn_params = 1e9\n[optimize]\ntarget_loss = 2.1\n",
     "sweep.n_params", "chosen by [optimize]"),
    ("[sweep]\nhardware = \"h100\"\nregion = \"FR\"\nn_chips = 8\n[optimize]\ntarget_loss = 2.1\nobjective = \"co2\"\n",
     "optimize.objective", "unknown output variable"),
    ("[sweep\nhardware = 1", "", "not valid TOML"),
]


@pytest.mark.parametrize("text,key,fragment", BAD, ids=[b[1] or "toml" for b in BAD])
def test_schema_errors_name_file_and_key(tmp_path, text, key, fragment):
    p = write(tmp_path, text, name="bad.toml")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(p)
    msg = str(exc.value)
    assert str(p) in msg and f": {key}:" in msg if key else str(p) in msg
    assert fragment in msg


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")


def test_validation_happens_before_computation(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["scalesim.chain.simulation"], "simulate", lambda **kw: pytest.fail("computed before validation"))
    with pytest.raises(ScenarioError):
        run_scenario(write(tmp_path, BASE.replace('"US"', '"Atlantis"')), base_dir=tmp_path)


# ----------------------------------------------------------------------------- atomic writes, skip/force
def _leftovers(d):
    return [p for p in Path(d).rglob("*") if ".tmp-" in p.name]


def test_interrupted_netcdf_write_leaves_nothing(tmp_path, monkeypatch):
    p = write(tmp_path, BASE)

    def broken(self, path, *a, **k):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt("killed mid-write")
    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(KeyboardInterrupt):
        run_scenario(p, base_dir=tmp_path, progress=False)
    assert not (tmp_path / "out/s.nc").exists()
    assert not _leftovers(tmp_path)


def test_interrupted_rewrite_keeps_previous_output(tmp_path, monkeypatch):
    p = write(tmp_path, BASE)
    run_scenario(p, base_dir=tmp_path, progress=False)
    before = (tmp_path / "out/s.nc").read_bytes(), (tmp_path / "out/s.csv").read_bytes()
    import pandas as pd

    def broken(self, path, *a, **k):
        Path(path).write_text("partial")
        raise OSError("disk full")
    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError):
        run_scenario(p, base_dir=tmp_path, progress=False, force=True)
    assert (tmp_path / "out/s.csv").read_bytes() == before[1]
    assert not _leftovers(tmp_path)


def test_skip_when_up_to_date_and_force(tmp_path):
    p = write(tmp_path, BASE)
    first = run_scenario(p, base_dir=tmp_path, progress=False)
    nc = tmp_path / "out/s.nc"
    mtime = nc.stat().st_mtime_ns
    again = run_scenario(p, base_dir=tmp_path, progress=False)
    assert again.skipped and nc.stat().st_mtime_ns == mtime
    xr.testing.assert_allclose(again.dataset.co2e_t, first.dataset.co2e_t)
    forced = run_scenario(p, base_dir=tmp_path, progress=False, force=True)
    assert not forced.skipped and nc.stat().st_mtime_ns != mtime
    p.write_text(BASE + "# edited\n")  # any edit changes the hash -> recomputed
    assert not run_scenario(p, base_dir=tmp_path, progress=False).skipped
    (tmp_path / "out/s.csv").unlink()  # a missing output -> recomputed
    assert not run_scenario(p, base_dir=tmp_path, progress=False).skipped


def test_summary_frame_tidy_and_stats():
    small = ss.simulate(n_params=[1e9, 2e9], n_tokens=2e10, hardware="h100", n_chips=8, region="FR")
    df = scenarios.summary_frame(small)
    assert list(df.columns) == ["co2e_t", "energy_kwh", "wall_days"] and len(df) == 2
    from scalesim.interface.cli import _format_table, _units_of

    assert "co2e_t [t]" in _format_table(df, units=_units_of(small))
    big = ss.simulate(n_params=ss.logspace(1e8, 1e10, 30), n_tokens=ss.logspace(1e10, 1e12, 30),
                      hardware="h100", n_chips=8, region="FR")
    stats = scenarios.summary_frame(big)
    assert list(stats.columns) == ["min", "median", "max"] and "co2e_t" in stats.index


def test_carbon_aware_timing_uses_each_regions_profile(tmp_path):
    ds = run_scenario(SCENARIO_DIR / "carbon_aware_timing.toml", base_dir=tmp_path, progress=False).dataset
    swing = (ds.co2e_t.max("start_hour") / ds.co2e_t.min("start_hour")).to_series()
    assert swing["US-CAL-CISO"] > 1.5 > swing["ZA"]  # solar California vs coal-dominated South Africa


def test_mfu_model_by_name_and_no_chip_count(tmp_path):
    from scalesim.models.hardware import MFU_MODEL_HIERARCHICAL

    res = run_scenario(write(tmp_path, BASE.replace("n_chips = 64", 'mfu = "hierarchical"')), base_dir=tmp_path,
                       progress=False)
    assert "wall_days" not in res.dataset  # no chip count: chip-hours, energy and carbon only
    np.testing.assert_allclose(res.dataset.mfu.values, MFU_MODEL_HIERARCHICAL["H100"])


def test_optimize_section_accepts_every_optimize_constraint(tmp_path):
    from scalesim import inputs

    for key in inputs.OPTIMIZE:
        assert key in scenarios.OPTIMIZE_KEYS, key
    text = ("[sweep]\nhardware = \"h100\"\nregion = \"FR\"\n[optimize]\ntarget_loss = 2.1\nmax_wall_days = 20\n"
            "max_n_chips = 100000\ninference_tokens = 1e12\ninference_mfu = 0.3\n")
    sc = load_scenario(write(tmp_path, text, name="opt.toml"))
    assert sc.optimize["max_n_chips"] == 100000
    ds = run_scenario(sc, base_dir=tmp_path, progress=False).dataset
    assert float(ds.wall_days) <= 20 * (1 + 1e-9) and float(ds.n_chips) <= 100000
    bad = write(tmp_path, text.replace("max_n_chips = 100000", "max_n_chips = 0.5"), name="bad.toml")
    with pytest.raises(ScenarioError, match="optimize.max_n_chips: 0.5 must be a positive whole number"):
        load_scenario(bad)
