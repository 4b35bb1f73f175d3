"""Fuzz and property suite (issue 14): hypothesis over simulate/optimize keyword arguments and mutated
scenario files. Every outcome is either a ValueError whose message names an argument, or a result
whose outputs are finite and non-negative (NaN only where the result says a cell is infeasible);
never another exception type, never exit 1. Bounded to run in well under a minute."""

import math
import re

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scalesim as ss
from scalesim import inputs
from scalesim.interface import cli

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FEW = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

BASE = dict(n_params=7e9, n_tokens=1e12, hardware="H100", n_chips=256, region="FR", mfu=0.4)

#: Values a user might pass by mistake, of every kind the issue's 28 classes cover.
BAD = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 0.5, 25.0, 1e300, 1e-300, 70.0, 0.4, 2**70,
       "5", "", "Atlantis", "h100", "nan", True, False, None, [], [1.0, 1.0], [True, 2.0], [{1}], [[1.0]],
       [1e9, "x"], {"a": 1}, {1, 2}, (1.0, 2.0), np.float16(6e4), np.float32(3.5), np.int64(8),
       np.array([1.0, 2.0]), xr.DataArray([1.0, 2.0], dims="x"), xr.DataArray([1.0, 2.0, 3.0], dims="x")]
GOOD = {"n_params": [1e8, 7e9, [1e9, 1e10]], "n_tokens": [1e10, [1e11, 1e12]], "hardware": ["A100", "TPUv5p", ["H100", "B200"]],
        "n_chips": [8, 1024, [64, 512]], "region": ["DE", "Germany", ["SE", "US"]], "mfu": [0.3, "hierarchical", [0.2, 0.5]],
        "pue": [1.1, "google"], "chip_power_w": [700.0, "tdp"], "goodput": [0.9], "start_hour": [3.0],
        "wue_l_per_kwh": [0.0, 1.8], "lifetime_years": [5.0], "law": ["besiroglu2024"], "defaults": ["low", "high"],
        "dtype": ["fp8"], "embodied_kgco2e_per_chip": [150.0]}
NAMES = set(inputs.SIMULATE) | set(inputs.OPTIMIZE) | {"lo", "hi", "n", "n_iter"}


def _names_an_argument(message, given):
    words = set(re.findall(r"[a-z_][a-z0-9_]*", message.lower()))
    return bool(words & (set(given) | NAMES))


def _check_result(ds):
    """Finite, non-negative outputs; NaN only where the result marks the cell infeasible."""
    infeasible = ("feasible" in ds and not bool(ds.feasible.all())) or "no feasible configuration" in ds.attrs.get("notes", "")
    for name, da in ds.data_vars.items():
        if da.dtype.kind != "f":
            continue
        values = np.asarray(da.values)
        assert not np.isinf(values).any(), f"{name} has inf"
        if not infeasible and name != "paused_gco2e_per_kwh":  # NaN there means never paused (documented)
            assert not np.isnan(values).any(), f"{name} has NaN without an infeasible cell"
        if name not in ("loss", "objective") and not name.startswith("reported_"):
            assert not (values < 0).any(), f"{name} is negative"
        assert da.attrs.get("units") is not None, f"{name} has no units"


#: Outcomes by function and class, printed at the end of the module (``pytest -s tests/test_fuzz.py``).
OUTCOMES = {}


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    yield
    print("\nfuzz outcomes:", {k: dict(v) for k, v in sorted(OUTCOMES.items())})


def _outcome(fn, kwargs):
    counts = OUTCOMES.setdefault(getattr(fn, "__name__", "?"), {"ok": 0, "ValueError": 0})
    try:
        ds = fn(**kwargs)
    except ValueError as exc:
        msg = str(exc)
        assert "\n" not in msg.strip(), f"multi-line message: {msg!r}"
        assert _names_an_argument(msg, kwargs), f"message names no argument: {msg!r} for {kwargs!r}"
        counts["ValueError"] += 1
        return "error"
    _check_result(ds)
    counts["ok"] += 1
    return "ok"


@st.composite
def simulate_kwargs(draw):
    kw = dict(BASE)
    for key in draw(st.lists(st.sampled_from(sorted(GOOD)), max_size=3, unique=True)):
        kw[key] = draw(st.sampled_from(GOOD[key]))
    names = sorted(inputs.SIMULATE)
    for key in draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)):
        kw[key] = draw(st.sampled_from(BAD + [v for vs in GOOD.values() for v in vs]))
    return {k: v for k, v in kw.items() if v is not None or draw(st.booleans())}


@FUZZ
@given(simulate_kwargs())
def test_simulate_fuzz(kwargs):
    _outcome(ss.simulate, kwargs)


@st.composite
def optimize_kwargs(draw):
    kw = dict(hardware="H100", region="FR", n_chips=256, mfu=0.4)
    kw[draw(st.sampled_from(inputs.GOALS))] = draw(st.sampled_from([2.3, 1e22, 50.0]))
    names = sorted(set(inputs.OPTIMIZE) - {"law"}) + ["n_chips", "region", "mfu", "n_params"]
    for key in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        kw[key] = draw(st.sampled_from(BAD[:24] + [1e13, 30.0, "SE", (1e8, 1e10)]))
    return kw


@FEW
@given(optimize_kwargs())
def test_optimize_fuzz(kwargs):
    _outcome(ss.optimize, kwargs)


def test_logspace_rejects_every_bad_bound():
    for lo, hi, n in ((1, float("inf"), 3), (0, 10, 3), (1, 10, 1.5), ("1", 10, 3), (1, 10, 0)):
        with pytest.raises(ValueError, match=r"^(lo|hi|n) "):
            ss.logspace(lo, hi, n)


# ----------------------------------------------------------------------------- properties
@FEW
@given(st.floats(1e10, 1e13), st.floats(1.01, 3.0), st.floats(10.0, 900.0))
def test_more_tokens_cost_more_and_a_cleaner_grid_less(n_tokens, factor, grid):
    kw = dict(n_params=7e9, hardware="H100", n_chips=256, mfu=0.4, grid_gco2e_per_kwh=grid)
    a, b = ss.simulate(n_tokens=n_tokens, **kw), ss.simulate(n_tokens=n_tokens * factor, **kw)
    for v in ("flop", "chip_hours", "energy_kwh", "co2e_t", "embodied_co2e_t", "water_l"):
        assert float(b[v]) > float(a[v])
    cleaner = ss.simulate(n_tokens=n_tokens, **dict(kw, grid_gco2e_per_kwh=grid / factor))
    assert float(cleaner.co2e_t) < float(a.co2e_t)


@FEW
@given(st.lists(st.sampled_from([1e9, 3e9, 7e9, 2e10, 7e10]), min_size=1, max_size=4, unique=True))
def test_scalar_list_dataarray_parity_and_determinism(n_params):
    kw = dict(n_tokens=1e12, hardware="H100", n_chips=256, region="FR", mfu=0.4)
    listed = ss.simulate(n_params=n_params, **kw)
    da = ss.simulate(n_params=xr.DataArray(n_params, dims="n_params", coords={"n_params": n_params}), **kw)
    xr.testing.assert_identical(listed.co2e_t, da.co2e_t)
    for n in n_params:
        assert float(ss.simulate(n_params=n, **kw).co2e_t) == float(listed.co2e_t.sel(n_params=n))
    xr.testing.assert_identical(listed, ss.simulate(n_params=n_params, **kw))


# ----------------------------------------------------------------------------- scenario files
SCENARIO = """[scenario]
name = "fuzz"
[sweep]
n_params = 1e9
n_tokens = 2e10
hardware = ["H100", "A100"]
n_chips = 64
mfu = 0.4
region = ["FR", "US"]
[output]
netcdf = "out/fuzz.nc"
csv = "out/fuzz.csv"
table = ["co2e_t", "energy_kwh"]
"""
TOML_VALUES = ['nan', 'inf', '-1', '0', '0.5', '1e300', '170141183460469231731687303715884105728', '"x"', '"Germany"',
               'true', '[]', '[1, 1]', '[true]', '[[1]]', '{logspace = [1, 0, 3]}', '{linspace = [1, 2, 0.5]}',
               '{a = 1}', '"../../escape"', '"out/"', '["region_hardware_bars"]', '["nope"]', '"/proc/x.nc"',
               '[' * 60 + ']' * 60]


@st.composite
def mutated_scenarios(draw):
    lines = SCENARIO.splitlines()
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.sampled_from([j for j, ln in enumerate(lines) if "=" in ln]))
        key = lines[i].split("=")[0].strip()
        choice = draw(st.integers(0, 3))
        if choice == 0:  # a bad value
            lines[i] = f"{key} = {draw(st.sampled_from(TOML_VALUES))}"
        elif choice == 1:  # a misspelt or unknown key
            lines[i] = f"{key[:-1] or 'k'} = {lines[i].split('=', 1)[1].strip()}"
        elif choice == 2:  # a key moved to another section
            lines.insert(draw(st.integers(0, len(lines))), lines.pop(i))
        else:  # a value for another key
            other = draw(st.sampled_from(["figures", "start_hour", "pue", "goodput", "law", "defaults", "grid_gco2e_per_kwh"]))
            lines.insert(i, f"{other} = {draw(st.sampled_from(TOML_VALUES))}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(mutated_scenarios())
def test_mutated_scenarios_exit_0_or_2_with_a_key_path(tmp_path_factory, text):
    d = tmp_path_factory.mktemp("fuzz")
    path = d / "fuzz.toml"
    path.write_text(text)
    import contextlib
    import io
    import os

    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(d)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["run", str(path), "--force"])
    finally:
        os.chdir(cwd)
    assert code in (0, 2), err.getvalue()
    if code == 2:
        line = err.getvalue().strip()
        assert "\n" not in line and ": error: " in line
        assert str(path) in line or "fuzz.toml" in line or "/proc" in line or "out" in line, line
    assert not list(d.rglob(".*.tmp-*")), "temporary left behind"
    assert not math.isnan(0.0)


# ----------------------------------------------------------------------------- the models that landed this round
MODEL_BAD = [float("nan"), -1.0, 0.0, 0.5, 1e300, "5", "Atlantis", True, [], [1.0, 1.0], {1, 2}, 2**70]


@st.composite
def model_kwargs(draw, base, names):
    kw = dict(base)
    for key in draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)):
        kw[key] = draw(st.sampled_from(MODEL_BAD))
    return {k: v for k, v in kw.items() if v is not None}


@FEW
@given(model_kwargs(dict(n_params=7e9, hardware="H100", n_chips=64, batch_size=16),
                    ["n_params", "hardware", "n_chips", "batch_size", "input_tokens", "output_tokens", "tp", "dtype"]))
def test_serve_fuzz(kwargs):
    _outcome(ss.serve, kwargs)


@FEW
@given(model_kwargs(dict(n_params=7e9, hardware="H100", n_chips=64),
                    ["n_params", "hardware", "n_chips", "seq_len", "global_batch_tokens", "tp", "pp", "dtype"]))
def test_throughput_fuzz(kwargs):
    _outcome(ss.throughput, kwargs)


@FEW
@given(model_kwargs(dict(intensity="DE", job_hours=24.0, window_hours=48.0, strategy="pause_resume"),
                    ["intensity", "job_hours", "window_hours", "strategy", "restart_overhead_hours"]))
def test_schedule_fuzz(kwargs):
    _outcome(ss.schedule, kwargs)
