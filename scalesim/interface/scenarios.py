"""Batch scenarios: ``scenarios/*.toml`` -> validated inputs -> simulate/optimize -> files.

A scenario file is read with :mod:`tomllib` and validated completely *before* any computation:
unknown keys (with the closest valid key), wrong types, unknown hardware/region ids and impossible
ranges raise :class:`ScenarioError`, whose message names the file and the key path
(``quickstart.toml: sweep.region[3]: unknown region 'XX'; ...``).

Schema
------
::

    [scenario]                      # optional
    name = "quickstart"             # default: the file's stem
    description = "..."

    [sweep]                         # inputs of scalesim.simulate; a list becomes a dimension
    n_params = 70e9                 # scalar | [a, b, ...] | {logspace = [lo, hi, n]}
    n_tokens = {linspace = [1e12, 4e12, 4]}                   #   | {linspace = [lo, hi, n]}
    hardware = ["A100-SXM4-80GB", "H100-SXM5-80GB"]           # ids or aliases
    region = ["SE", "FR", "US"]     # or grid_gco2e_per_kwh = [...]
    n_chips = 2048                  # also: flop, chip_hours, mfu, chip_power_w, pue (number(s) or
                                    # an operator name), start_hour, grid_gco2e_per_kwh (lists ok);
                                    # goodput, law, defaults, dtype, wue_l_per_kwh, ewif_l_per_kwh,
                                    # embodied_kgco2e_per_chip, lifetime_years (scalars)

    [[runs]]                        # optional: paired rows instead of a cross product; each run is
    name = "GPT-3"                  # one configuration (scalars; [sweep] values are shared) and the
    hardware = "V100"               # results are concatenated along a ``run`` dimension
    chip_hours = 3.552e6
    reported = {co2e_t = 552.1}     # optional published values -> variables ``reported_<name>``

    [optimize]                      # optional: run scalesim.optimize instead of simulate
    target_loss = 2.1               # exactly one of target_loss | carbon_budget_t | flop_budget
    objective = ["flop", "co2e_t"]  # a list becomes an ``optimised_for`` dimension
    law = "besiroglu2024"           # also: inference_tokens, inference_hardware, inference_region,
                                    # max_wall_days, n_params_bounds, n_tokens_bounds, unique_tokens,
                                    # risk = "p90" (with samples in [sweep]: see scalesim.solve.risk)

    [serve]                         # optional: run scalesim.serve instead (keys: scalesim.inputs.SERVE)
    n_params = 70e9                 # a list becomes a dimension, as in [sweep]
    hardware = "H100-SXM5-80GB"
    n_chips = 4
    batch_size = [8, 64, 512]

    [schedule]                      # optional: run scalesim.schedule instead
    region = "DE"                   # the region's synthetic typical year, or csv = "grid.csv"
    job_days = 30                   # or job_hours (a list is a dimension)
    slack = 1.0                     # window = job x (1 + slack); or window_hours
    strategy = ["pause_resume", "flexible_start"]
    start = ["2024-01-01T00"]       # or "all"; default each hour of the first day
                                    # also: min_block_hours, restart_overhead_hours, forecast_error, seed

    [[levers]]                      # optional, with [optimize]: a waterfall of mitigations applied in order
    name = "efficient hardware"     # on the [optimize] + [sweep] baseline (scalesim.solve.levers.waterfall;
    set = {hardware = "H100"}       # basis = "market" for clean supply; see interface/_scenario_levers.py)

    [output]
    netcdf = "results/quickstart.nc"          # paths relative to the working directory
    csv = "results/quickstart_summary.csv"
    figures = ["region_hardware_bars"]        # names in scalesim.interface.plotting.FIGURES
    formats = ["png", "pdf"]
    figures_dir = "results"                   # default: the netcdf file's directory
    table = ["co2e_t", "energy_kwh", "wall_days"]   # columns of the printed table
    quantiles = [0.05, 0.5, 0.95]             # with samples: the cells' median [interval] (the default)

Outputs are written atomically (temporary file in the same directory, then :func:`os.replace`);
temporaries left by a killed run are removed by the next. Before computing, every output path is
checked to be writable. After the last output, a manifest ``.<netcdf name>.manifest.json`` beside
the netCDF records the scenario file's SHA-256 and each output's; a scenario is skipped (unless
``force=True``) only when the manifest matches the scenario and every output on disk, so a run
killed between two outputs is redone.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from scalesim import catalog, inputs, steps, variables
from scalesim.interface import _scenario_levers as _levers

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class ScenarioError(ValueError):
    """An invalid scenario file; the message names the file and the key path."""


_NUM, _STR, _PUE, _MFU, _POWER = ("number", "string", "number or operator name", "number or utilisation model name",
                                  "number or power model name")


def _schema(table):
    """``{key: (type, list allowed, range check)}`` derived from a :mod:`scalesim.inputs` table."""
    def kind(spec):
        if spec.kind == inputs.STEP:
            return {"mfu": _MFU, "pue": _PUE, "chip_power_w": _POWER}[spec.name]
        return _NUM if spec.kind == inputs.NUMBER else _STR
    return {s.name: (kind(s), s.many, s.check) for s in table.values()}


#: [sweep] and [[runs]] keys: every input of scalesim.simulate.
SWEEP_KEYS = _schema(inputs.SIMULATE)
#: [optimize] keys: every goal, constraint and option of scalesim.optimize.
OPTIMIZE_KEYS = _schema({k: v for k, v in inputs.OPTIMIZE.items()})
#: [serve] keys: every input of scalesim.serve.
SERVE_KEYS = _schema(inputs.SERVE)
#: [schedule] keys: the series (region or csv), the job, its window and the strategy options.
SCHEDULE_KEYS = {"region": (_STR, False, None), "csv": (_STR, False, None),
                 "job_hours": (_NUM, True, "positive"), "job_days": (_NUM, True, "positive"),
                 "slack": (_NUM, False, "non-negative"), "window_hours": (_NUM, False, "positive"),
                 "strategy": (_STR, True, None), "start": (_STR, True, None),
                 "min_block_hours": (_NUM, False, "positive"), "restart_overhead_hours": (_NUM, False, "non-negative"),
                 "forecast_error": (_NUM, False, "non-negative"), "seed": (_NUM, False, "seed")}
OUTPUT_KEYS = {"netcdf", "csv", "figures", "formats", "figures_dir", "table", "quantiles"}
#: Quantiles of a Monte Carlo result's table cells (``median [p5, p95]``) unless [output] quantiles is given.
DEFAULT_QUANTILES = (0.05, 0.5, 0.95)
TOP_KEYS = {"scenario", "sweep", "runs", "optimize", "serve", "schedule", "levers", "output"}
GOALS = ("target_loss", "carbon_budget_t", "flop_budget")
DEFAULT_TABLE = ("co2e_t", "energy_kwh", "wall_days")
#: Printed columns of a [serve] or [schedule] scenario when [output] table is not given.
DEFAULT_TABLES = {"serve": ("inter_token_latency_ms", "tokens_per_s", "energy_per_token_j", "co2e_t"),
                  "schedule": ("saving", "wall_clock_stretch", "n_pauses")}
HEADLINE = ("co2e_t", "total_co2e_t", "energy_kwh", "wall_days", "chip_hours", "water_l", "loss",
            "n_params", "n_tokens", "flop")


@dataclasses.dataclass
class Scenario:
    """A validated scenario: resolved inputs, ready to run (see the module docstring)."""

    path: Path
    name: str
    description: str
    sha256: str
    sweep: dict
    runs: list | None
    optimize: dict | None
    output: dict
    serve: dict | None = None
    schedule: dict | None = None
    levers: list | None = None  # [[levers]]: a waterfall on the [optimize] baseline (interface/_scenario_levers.py)


@dataclasses.dataclass
class ScenarioResult:
    """What :func:`run_scenario` did: the result, the files written and whether it was skipped."""

    scenario: Scenario
    dataset: object
    files: list
    skipped: bool


# ----------------------------------------------------------------------------- validation
class _Checker:
    def __init__(self, path):
        self.path = Path(path)

    def error(self, key, msg):
        return ScenarioError(f"{self.path}: {key}: {msg}")

    def keys(self, table, allowed, where):
        if not isinstance(table, dict):
            raise self.error(where, f"must be a table, got {type(table).__name__}")
        for k in table:
            if k not in allowed:
                close = difflib.get_close_matches(k, sorted(allowed), n=1, cutoff=0.5)
                hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(sorted(allowed))}"
                raise self.error(f"{where}.{k}" if where else k, f"unknown key {k!r}{hint}")

    def value(self, raw, key, spec):
        """Type-check and range-check one entry; returns a scalar, a list or an array."""
        kind, list_ok, check = spec
        if isinstance(raw, dict):
            if kind == _STR or not list_ok or list_ok == "pair":
                raise self.error(key, f"must be a {kind}{' or a list' if list_ok else ''}, got a table")
            self.keys(raw, {"logspace", "linspace"}, key)
            if len(raw) != 1:
                raise self.error(key, "give exactly one of logspace = [lo, hi, n] or linspace = [lo, hi, n]")
            (form, args), = raw.items()
            sub = f"{key}.{form}"
            if not (isinstance(args, list) and len(args) == 3 and all(_is_num(a) for a in args)):
                raise self.error(sub, f"must be [lo, hi, n] (three numbers), got {args!r}")
            lo, hi, n = args
            if int(n) != n or n < 1:
                raise self.error(f"{sub}[2]", f"n must be a positive integer, got {n!r}")
            if form == "logspace" and (lo <= 0 or hi <= 0):
                raise self.error(sub, f"logspace bounds must be > 0, got {lo!r}, {hi!r}")
            if lo > hi:
                raise self.error(sub, f"lo must be <= hi, got lo={lo!r} > hi={hi!r}")
            if n > 1 and lo == hi:
                raise self.error(sub, f"lo == hi gives {int(n)} repeated values")
            arr = (np.logspace(np.log10(lo), np.log10(hi), int(n)) if form == "logspace"
                   else np.linspace(lo, hi, int(n)))
            for i, v in enumerate(arr):
                self.range(float(v), f"{sub}[{i}]", check)
            return arr
        if isinstance(raw, list):
            if not list_ok:
                raise self.error(key, f"must be a single {kind}, got a list")
            if list_ok == "pair" and len(raw) != 2:
                raise self.error(key, f"must be [lo, hi], got {raw!r}")
            if not raw:
                raise self.error(key, "must not be empty")
            for i, v in enumerate(raw):
                self.scalar(v, f"{key}[{i}]", kind, check, in_list=True)
            if list_ok != "pair" and len(set(raw)) != len(raw):
                dup = next(v for v in raw if raw.count(v) > 1)
                raise self.error(key, f"repeated value {dup!r}; each value becomes a coordinate")
            if list_ok == "pair" and raw[0] >= raw[1]:
                raise self.error(key, f"must be [lo, hi] with lo < hi, got {raw!r}")
            return [_as_float(v) for v in raw]
        if list_ok == "pair":
            raise self.error(key, f"must be [lo, hi], got {raw!r}")
        self.scalar(raw, key, kind, check)
        return _as_float(raw)

    def scalar(self, v, key, kind, check, in_list=False):
        if kind == _PUE:
            if isinstance(v, str):
                if in_list:
                    raise self.error(key, "an operator name for pue must be a single string, not in a list")
                ops = catalog.datacenter_operators()
                if v.strip().lower() not in ops:
                    close = difflib.get_close_matches(v.lower(), ops, n=3)
                    raise self.error(key, f"unknown operator {v!r}; " + (f"closest: {', '.join(close)}" if close else f"allowed: {', '.join(ops)}"))
                return
            kind = _NUM
        if kind in (_MFU, _POWER):
            if isinstance(v, str):
                registry = steps.UTILISATION if kind == _MFU else steps.POWER
                if in_list:
                    raise self.error(key, f"a model name for {registry.factor} must be a single string, not in a list")
                if v not in registry.names():
                    raise self.error(key, f"unknown model {v!r}; allowed: {', '.join(registry.names())} or a number")
                return
            kind = _NUM
        if kind == _NUM and not _is_num(v):
            raise self.error(key, f"must be a number, got {v!r} ({type(v).__name__})")
        if kind == _STR and not isinstance(v, str):
            raise self.error(key, f"must be a string, got {v!r} ({type(v).__name__})")
        self.range(v, key, check)

    def range(self, v, key, check):
        if check is None:
            return
        try:
            bad = inputs.reason(check, v)
        except ValueError as exc:  # unknown hardware or region: the catalogue's message with close matches
            raise self.error(key, str(exc)) from None
        if bad:
            raise self.error(key, f"{v!r} {bad}")


def _as_float(v):
    """An integer beyond int64 as a float (numpy has no integer type for it); anything else unchanged."""
    return float(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2 ** 63 else v


def _is_num(v):
    """A finite TOML number (its range, the supported one included, is checked by :func:`inputs.reason`)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (isinstance(v, int) or np.isfinite(v))


def load_scenario(path):
    """Read and validate a scenario file; no computation is done.

    Parameters
    ----------
    path : str or path-like
        A ``.toml`` file following the schema in the module docstring.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        The file is missing, is not valid TOML or breaks the schema; the message names the file
        and the key path.
    """
    path = Path(path)
    c = _Checker(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario file ({exc.strerror or exc})") from None
    try:
        doc = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    c.keys(doc, TOP_KEYS, "")
    meta = doc.get("scenario", {})
    c.keys(meta, {"name", "description"}, "scenario")
    for k in ("name", "description"):
        if k in meta and not isinstance(meta[k], str):
            raise c.error(f"scenario.{k}", f"must be a string, got {meta[k]!r}")
    if "name" in meta and not _NAME.fullmatch(meta["name"]):
        raise c.error("scenario.name", f"must be a plain file name (letters, digits, '_', '-', '.'; not starting "
                                       f"with '.'), got {meta['name']!r}: it names the output files")
    sections = [k for k in ("runs", "optimize", "serve", "schedule") if k in doc]
    if len(sections) > 1 or (sections and sections[0] in ("serve", "schedule") and "sweep" in doc):
        both = sections if len(sections) > 1 else ["sweep", sections[0]]
        raise c.error(both[1], f"cannot be combined with [{both[0]}]: a scenario runs one of [sweep], [[runs]], "
                               f"[optimize], [serve] or [schedule]")
    kind = next((k for k in ("serve", "schedule") if k in doc), None)
    serve = schedule = None
    if kind == "serve":
        serve = _check_serve(c, doc["serve"])
    elif kind == "schedule":
        schedule = _check_schedule(c, doc["schedule"])
    sweep_raw = doc.get("sweep", {})
    c.keys(sweep_raw, SWEEP_KEYS, "sweep")
    sweep = {k: c.value(v, f"sweep.{k}", SWEEP_KEYS[k]) for k, v in sweep_raw.items()}
    _check_plausible(c, sweep, "sweep")

    runs = _check_runs(c, doc, sweep) if "runs" in doc else None
    opt = _check_optimize(c, doc, sweep) if "optimize" in doc else None
    levers = _levers.check_levers(c, doc, sweep, opt, SWEEP_KEYS, OPTIMIZE_KEYS) if "levers" in doc else None
    if opt is None and runs is None and kind is None:
        _check_consistency(c, sweep, "sweep")

    out = doc.get("output", {})
    c.keys(out, OUTPUT_KEYS, "output")
    name = meta.get("name", path.stem)
    if not _NAME.fullmatch(name):
        name = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name).lstrip(".") or "scenario"
    output = _check_output(c, out, name, _levers.TABLE if levers else DEFAULT_TABLES.get(kind, DEFAULT_TABLE))
    if "quantiles" in out and not (sweep.get("samples") or any(r["inputs"].get("samples") for r in runs or [])):
        raise c.error("output.quantiles", "needs samples: quantiles are taken over the Monte Carlo draws "
                                          "(add samples = N, and seed = S, to [sweep])")
    return Scenario(path=path, name=name, description=meta.get("description", ""),
                    sha256=hashlib.sha256(raw_bytes).hexdigest(), sweep=sweep, runs=runs, optimize=opt,
                    output=output, serve=serve, schedule=schedule, levers=levers)


def _check_runs(c, doc, sweep):
    """[[runs]]: paired configurations (scalars; [sweep] values shared), each checked like [sweep]."""
    if not isinstance(doc["runs"], list) or not doc["runs"]:
        raise c.error("runs", "must be a non-empty array of tables ([[runs]])")
    runs, names = [], set()
    for i, run in enumerate(doc["runs"]):
        where = f"runs[{i}]"
        c.keys(run, set(SWEEP_KEYS) | {"name", "reported"}, where)
        name = run.get("name", f"run{i}")
        if not isinstance(name, str) or name in names:
            raise c.error(f"{where}.name", f"must be a unique string, got {name!r}")
        names.add(name)
        cfg = {}
        for k, v in run.items():
            if k in ("name", "reported"):
                continue
            cfg[k] = c.value(v, f"{where}.{k}", (SWEEP_KEYS[k][0], False, SWEEP_KEYS[k][2]))
        reported = run.get("reported", {})
        c.keys(reported, variables.VARIABLES, f"{where}.reported")
        for k, v in reported.items():
            c.scalar(v, f"{where}.reported.{k}", _NUM, "non-negative")
        for k, v in sweep.items():
            if isinstance(v, (list, np.ndarray)):
                raise c.error(f"sweep.{k}", "must be a single value when [[runs]] are given (runs are paired rows)")
        merged = {**sweep, **cfg}
        _check_plausible(c, merged, where)
        _check_consistency(c, merged, where)
        runs.append({"name": name, "inputs": merged, "reported": dict(reported)})
    return runs


def _check_optimize(c, doc, sweep):
    """[optimize]: goal, constraints and options of scalesim.optimize, with the rules on [sweep] + [optimize]."""
    c.keys(doc["optimize"], OPTIMIZE_KEYS, "optimize")
    opt = {k: c.value(v, f"optimize.{k}", OPTIMIZE_KEYS[k]) for k, v in doc["optimize"].items()}
    _check_plausible(c, opt, "optimize", allow=sweep.get("allow_unusual"))
    goals = [g for g in GOALS if g in opt]
    if len(goals) != 1:
        raise c.error("optimize", f"give exactly one of {', '.join(GOALS)}, got {goals or 'none'}")
    for k in ("n_params", "n_tokens", "flop"):
        if k in sweep:
            raise c.error(f"sweep.{k}", "is chosen by [optimize]; remove it from [sweep]")
    if "hardware" not in sweep:
        raise c.error("sweep.hardware", "is required")
    broken = inputs.first_broken({**sweep, **opt}, "optimize")
    if broken:
        raise c.error(f"{'sweep' if broken[0] in sweep or broken[0] in inputs.SIMULATE else 'optimize'}.{broken[0]}", broken[1])
    return opt


#: A scenario name: it names output files, so no path separators and no leading dot.
_NAME = __import__("re").compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def _check_serve(c, raw):
    """[serve]: keys of :data:`scalesim.inputs.SERVE`, type- and range-checked; n_params and hardware required."""
    c.keys(raw, SERVE_KEYS, "serve")
    serve = {k: c.value(v, f"serve.{k}", SERVE_KEYS[k]) for k, v in raw.items()}
    for k in ("n_params", "hardware"):
        if k not in serve:
            raise c.error(f"serve.{k}", "is required (e.g. n_params = 70e9, hardware = \"h100\")")
    if "region" in serve and "grid_gco2e_per_kwh" in serve:
        raise c.error("serve.grid_gco2e_per_kwh", "give either region or grid_gco2e_per_kwh, not both")
    return serve


def _check_schedule(c, raw):
    """[schedule]: the series (region xor csv), the job (job_hours xor job_days), the window and the options,
    each checked, and the series built (it is cheap), so a bad region or CSV is reported before running."""
    from scalesim import series
    from scalesim.solve.scheduling import STRATEGIES

    c.keys(raw, SCHEDULE_KEYS, "schedule")
    sch = {k: c.value(v, f"schedule.{k}", SCHEDULE_KEYS[k]) for k, v in raw.items()}
    for one_of in (("region", "csv"), ("job_hours", "job_days")):
        given = [k for k in one_of if k in sch]
        if len(given) != 1:
            raise c.error(f"schedule.{given[1] if given else one_of[0]}",
                          f"give exactly one of {' or '.join(one_of)}" + (f", got both" if given else ""))
    if "slack" in sch and "window_hours" in sch:
        raise c.error("schedule.window_hours", "give either slack or window_hours, not both")
    strategies = sch.get("strategy", ["pause_resume", "flexible_start"])
    for i, st in enumerate(strategies if isinstance(strategies, list) else [strategies]):
        if st not in STRATEGIES:
            close = difflib.get_close_matches(st, STRATEGIES, n=1, cutoff=0.5)
            raise c.error(f"schedule.strategy" + (f"[{i}]" if isinstance(strategies, list) else ""),
                          f"unknown strategy {st!r}" + (f"; did you mean {close[0]!r}?" if close else
                                                        f"; allowed: {', '.join(STRATEGIES)}"))
    jobs = np.atleast_1d(np.asarray(sch.get("job_hours", sch.get("job_days")), dtype=float))
    jobs = jobs * (24.0 if "job_days" in sch else 1.0)
    if "window_hours" in sch and np.any(sch["window_hours"] < jobs):
        raise c.error("schedule.window_hours", f"must be >= the job ({jobs.max():g} h), got {sch['window_hours']!r}")
    try:
        da = series.load_csv(sch["csv"]) if "csv" in sch else series.synthetic_year(sch["region"])
    except (ValueError, OSError) as exc:
        key = "csv" if "csv" in sch else "region"
        raise c.error(f"schedule.{key}", str(exc).splitlines()[0]) from None
    starts = sch.get("start")
    if starts is not None and starts != "all":
        for i, t in enumerate(starts if isinstance(starts, list) else [starts]):
            try:
                np.datetime64(t, "ns")
            except ValueError:
                raise c.error(f"schedule.start" + (f"[{i}]" if isinstance(starts, list) else ""),
                              f"must be a timestamp such as '2024-01-01T00' or 'all', got {t!r}") from None
    span_h = float((da.time.values[-1] - da.time.values[0]) / np.timedelta64(1, "h"))
    window = float(sch["window_hours"]) if "window_hours" in sch else jobs.max() * (1 + float(sch.get("slack", 1.0)))
    if window > span_h:
        raise c.error("schedule." + ("window_hours" if "window_hours" in sch else "job_days" if "job_days" in sch else
                                     "job_hours"), f"the window ({window:g} h) is longer than the series ({span_h:g} h)")
    return sch


def _check_plausible(c, section, where, allow=None):
    """The plausible ranges of :data:`scalesim.inputs.PLAUSIBLE`, unless the section's allow_unusual names the key."""
    try:
        names = inputs.allowed_unusual(section.get("allow_unusual", allow))
    except ValueError as exc:
        raise c.error(f"{where}.allow_unusual", str(exc)) from None
    for key, value in section.items():
        if key in inputs.PLAUSIBLE and not isinstance(value, str):
            try:
                inputs.check_plausible(key, value, names)
            except ValueError as exc:
                raise c.error(f"{where}.{key}", str(exc)) from None


def _check_consistency(c, s, where, scope="simulate"):
    """The cross-input rules of :mod:`scalesim.inputs`, reported with key paths before running."""
    broken = inputs.first_broken(s, scope)
    if broken:
        key, msg = broken
        raise c.error(f"{where}.{key}" if key in s or scope == "simulate" else where, msg)


def _check_quantiles(c, q):
    """[output] quantiles: a non-empty, strictly increasing list of levels in (0, 1)."""
    if not (isinstance(q, list) and q and all(_is_num(v) for v in q)):
        raise c.error("output.quantiles", f"must be a non-empty list of numbers in (0, 1), e.g. [0.05, 0.5, 0.95], got {q!r}")
    for i, v in enumerate(q):
        if not 0 < v < 1:
            raise c.error(f"output.quantiles[{i}]", f"must be a level strictly between 0 and 1 (not a percentage), got {v!r}")
        if i and not v > q[i - 1]:
            raise c.error(f"output.quantiles[{i}]", f"must be sorted and unique (each above the one before), "
                                                    f"got {v!r} after {q[i - 1]!r}")
    return tuple(float(v) for v in q)


def _check_output(c, out, name, table=DEFAULT_TABLE):
    from scalesim.interface import plotting  # no matplotlib import at module level

    res = {"netcdf": f"results/{name}.nc", "csv": f"results/{name}_summary.csv", "figures": [],
           "formats": ["png", "pdf"], "table": list(table)}
    for k, suffix in (("netcdf", ".nc"), ("csv", ".csv")):
        if k in out:
            if not isinstance(out[k], str) or not out[k].endswith(suffix):
                raise c.error(f"output.{k}", f"must be a path ending in {suffix}, got {out[k]!r}")
            res[k] = out[k]
    if "figures_dir" in out and not isinstance(out["figures_dir"], str):
        raise c.error("output.figures_dir", f"must be a string, got {out['figures_dir']!r}")
    res["figures_dir"] = out.get("figures_dir", str(Path(res["netcdf"]).parent))
    if "table" in out:  # any variable name: optimize and [[runs]] add their own variables
        if not (isinstance(out["table"], list) and all(isinstance(v, str) and v.isidentifier() for v in out["table"])):
            raise c.error("output.table", f"must be a list of variable names, got {out['table']!r}")
        res["table"] = list(out["table"])
    res["table_given"] = "table" in out  # given columns must exist in the result (checked after computing)
    res["quantiles"] = _check_quantiles(c, out["quantiles"]) if "quantiles" in out else DEFAULT_QUANTILES
    for k, allowed in (("figures", tuple(plotting.FIGURES)), ("formats", ("png", "pdf", "svg"))):
        if k in out:
            if not isinstance(out[k], list):
                raise c.error(f"output.{k}", f"must be a list, got {out[k]!r}")
            for i, v in enumerate(out[k]):
                if v not in allowed:
                    close = difflib.get_close_matches(str(v), allowed, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
                    raise c.error(f"output.{k}[{i}]", f"unknown {k[:-1]} {v!r}{hint}")
            res[k] = list(out[k])
    return res


# ----------------------------------------------------------------------------- running
class Progress:
    """Progress to ``stream``: a bar redrawn in place on a TTY, plain lines otherwise (or CI=true)."""

    def __init__(self, label, total, stream=None):
        self.label, self.total, self.done = label, max(int(total), 1), 0
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.bar = isatty and os.environ.get("CI", "").lower() not in ("1", "true", "yes")

    def __call__(self, n=1):
        self.done = min(self.done + n, self.total)
        if self.bar:
            width = 30
            full = int(width * self.done / self.total)
            end = "\n" if self.done == self.total else ""
            self.stream.write(f"\r{self.label} [{'#' * full}{'.' * (width - full)}] {self.done}/{self.total}{end}")
        else:
            self.stream.write(f"{self.label}: {self.done}/{self.total}\n")
        self.stream.flush()


def _progress(progress, label, total):
    if progress is False:
        return lambda n=1: None
    if callable(progress):
        return lambda n=1: progress(label, n, total)
    return Progress(label, total)


_CHUNK_CELLS = 200_000  # sweeps larger than this are run in chunks along the largest dimension


def _compute(sc, progress):
    import xarray as xr

    from scalesim.chain.simulation import simulate
    from scalesim.solve import optimization

    if sc.serve is not None:
        from scalesim.chain.serving import serve

        step = _progress(progress, sc.name, 1)
        ds = serve(**sc.serve)
        step()
        return ds
    if sc.schedule is not None:
        step = _progress(progress, sc.name, 1)
        ds = _run_schedule(sc.schedule)
        step()
        return ds
    if sc.runs is not None:
        step = _progress(progress, sc.name, len(sc.runs))
        parts = []
        for run in sc.runs:
            ds = simulate(**run["inputs"])
            for k, v in run["reported"].items():
                ds[f"reported_{k}"] = xr.DataArray(float(v), attrs=ds[k].attrs if k in ds else {})
            for k, v in run["inputs"].items():
                ds = ds.assign_coords({f"input_{k}": v}) if k not in ds.dims else ds
            parts.append(ds)
            step()
        names = sorted({v for p in parts for v in p.data_vars})
        parts = [p.assign({v: xr.DataArray(np.nan) for v in names if v not in p}) for p in parts]
        ds = xr.concat(parts, dim="run", coords="all", combine_attrs="drop_conflicts")
        ds = ds.assign_coords(run=[r["name"] for r in sc.runs])
        return variables.attach(ds)
    if sc.levers is not None:
        step = _progress(progress, sc.name, 1)
        ds = _levers.run_levers(sc)
        step()
        return ds
    if sc.optimize is not None:
        opt = optimization.optimize
        kw = {k: v for k, v in sc.optimize.items() if k != "objective"}
        kw.update({k: _tuple(v) if k.endswith("_bounds") else v for k, v in kw.items()})
        objectives = sc.optimize.get("objective", "co2e_t")
        objs = objectives if isinstance(objectives, list) else [objectives]
        step = _progress(progress, sc.name, len(objs))
        parts = []
        for o in objs:
            parts.append(opt(objective=o, **kw, **sc.sweep))
            step()
        if isinstance(objectives, list):
            # optimize results carry an ``objective`` variable (the minimised value), so the
            # dimension over objectives is named ``optimised_for``
            return xr.concat(parts, dim=xr.DataArray(objs, dims="optimised_for", name="optimised_for"),
                             combine_attrs="drop_conflicts")
        return parts[0]
    lists = {k: len(v) for k, v in sc.sweep.items() if isinstance(v, (list, np.ndarray))}
    cells = int(np.prod(list(lists.values()))) if lists else 1
    if cells <= _CHUNK_CELLS or not lists:
        step = _progress(progress, sc.name, 1)
        ds = simulate(**sc.sweep)
        step()
        return ds
    dim = max(lists, key=lists.get)
    n_chunks = min(lists[dim], int(np.ceil(cells / _CHUNK_CELLS)) + 1, 100)
    bounds = np.linspace(0, lists[dim], n_chunks + 1).astype(int)
    step = _progress(progress, sc.name, n_chunks)
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        parts.append(simulate(**{**sc.sweep, dim: sc.sweep[dim][a:b]}))
        step()
    ds = xr.concat(parts, dim=dim, data_vars="minimal", coords="minimal", compat="override",
                   combine_attrs="override")
    ds.attrs["inputs"] = json.dumps({k: _jsonable(v) for k, v in sc.sweep.items()})
    return ds


def _run_schedule(sch):
    """[schedule] -> :func:`scalesim.schedule` on the region's synthetic year or the CSV series."""
    from scalesim import series
    from scalesim.solve.scheduling import schedule

    da = series.load_csv(sch["csv"]) if "csv" in sch else series.synthetic_year(sch["region"])
    jobs = np.asarray(sch.get("job_hours", sch.get("job_days")), dtype=float) * (24.0 if "job_days" in sch else 1.0)
    window = sch["window_hours"] if "window_hours" in sch else jobs * (1.0 + float(sch.get("slack", 1.0)))
    starts = sch.get("start")
    if starts is None:  # as the CLI: each hour of the series' first day
        starts = da["time"].values[: max(1, int(round(24 / float(da.attrs.get("step_h", 1.0)))))]
    elif starts != "all":
        starts = np.asarray(starts if isinstance(starts, list) else [starts], dtype="datetime64[ns]")
    as_list = lambda v: v.tolist() if isinstance(v, np.ndarray) and v.ndim else float(v)  # noqa: E731
    ds = schedule(da, job_hours=as_list(jobs), window_hours=as_list(np.asarray(window, dtype=float)),
                  strategy=sch.get("strategy", ["pause_resume", "flexible_start"]), start=starts,
                  min_block_hours=sch.get("min_block_hours"), restart_overhead_hours=sch.get("restart_overhead_hours", 0.0),
                  forecast_error=sch.get("forecast_error"), seed=sch.get("seed"))
    ds.attrs["series"] = sch.get("csv") or f"synthetic typical year of {sch['region']}"
    return ds


def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


def _jsonable(v):
    arr = np.asarray(v)
    if arr.ndim == 0:
        return arr.item()
    return arr.tolist() if arr.size <= 50 else f"array(shape={arr.shape}, min={arr.min()}, max={arr.max()})"


def _resolve(p, base_dir):
    p = Path(p)
    return p if p.is_absolute() or base_dir is None else Path(base_dir) / p


def _atomic_write(path, write):
    """Call ``write(tmp_path)`` then move the temporary file onto ``path``; no partial output.

    Ctrl-C during ``write`` is held until it returns (libraries writing HDF5 may otherwise swallow
    it), then the temporary is removed and ``KeyboardInterrupt`` raised: never a half file, never
    an interrupt lost.
    """
    import signal
    import threading

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    held = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *a: held.append(True)) if main else None
    try:
        write(tmp)
        if held:
            raise KeyboardInterrupt
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def _clean_temporaries(paths):
    """Remove ``.<name>.tmp-<pid>.*`` files left beside ``paths`` by runs that were killed (their pid is gone)."""
    for path in paths:
        for tmp in Path(path).parent.glob(f".{Path(path).name}.tmp-*"):
            pid = tmp.name[len(Path(path).name) + 6:].split(".")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours
        return True
    return True


def check_writable(path, what):
    """Raise :class:`ScenarioError` unless ``path`` can be written (a file, in a creatable, writable directory)."""
    path = Path(path)
    if path.is_dir():
        raise ScenarioError(f"{path}: {what} is a directory; give a file path")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ScenarioError(f"{path}: {what}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScenarioError(f"{path}: {what}: directory {parent} is not writable")


def _manifest_path(nc_path):
    return Path(nc_path).with_name(f".{Path(nc_path).name}.manifest.json")


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _up_to_date(sc, nc_path, wanted):
    """True when the manifest records this scenario's hash and every output's current hash."""
    try:
        manifest = json.loads(_manifest_path(nc_path).read_text(encoding="utf-8"))
        return (manifest.get("scenario_sha256") == sc.sha256 and _stored_hash(nc_path) == sc.sha256
                and manifest.get("files") == {str(p): _file_sha256(p) for p in wanted})
    except (OSError, ValueError, AttributeError):
        return False


def _netcdf_safe(ds):
    """Copy of ``ds`` whose attrs netCDF can store (dicts/lists/None/bools -> JSON strings)."""
    ds = ds.copy()

    def fix(attrs):
        for k, v in list(attrs.items()):
            if v is None or isinstance(v, (dict, list, tuple, bool, np.bool_)):
                attrs[k] = json.dumps(v, default=str)
    fix(ds.attrs)
    for v in ds.variables.values():
        fix(v.attrs)
    return ds


def _stored_hash(path):
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.attrs.get("scenario_sha256")
    except Exception:  # unreadable or partial file: recompute
        return None


def run_scenario(scenario, *, force=False, progress=None, base_dir=None):
    """Run a scenario and write its netCDF, CSV summary and figures atomically.

    Parameters
    ----------
    scenario : Scenario or path-like
        A loaded scenario or a path to a ``.toml`` file (validated first).
    force : bool
        Recompute even when the outputs exist and carry the scenario file's hash.
    progress : None, False or callable
        None: a progress bar on a TTY (stderr), plain lines otherwise; False: silent; a callable
        is called as ``progress(label, n_done_increment, total)``.
    base_dir : path-like, optional
        Directory that relative output paths resolve against (default: the working directory).

    Returns
    -------
    ScenarioResult
    """
    import xarray as xr

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if sc.sweep and all(s is None for s in (sc.runs, sc.optimize, sc.serve, sc.schedule)):
        from scalesim.chain.sizing import check_sweep_fits

        check_sweep_fits(sc.sweep, what=f"{sc.path}: the [sweep] result")  # before anything is computed or written
    nc_path = _resolve(sc.output["netcdf"], base_dir)
    csv_path = _resolve(sc.output["csv"], base_dir)
    fig_paths = [_resolve(sc.output["figures_dir"], base_dir) / f"{sc.name}_{f}" for f in sc.output["figures"]]
    wanted = [nc_path, csv_path] + [p.with_suffix(f".{fmt}") for p in fig_paths for fmt in sc.output["formats"]]
    for p, what in zip(wanted, ["output.netcdf", "output.csv"] + ["output.figures"] * (len(wanted) - 2)):
        check_writable(p, f"{sc.path}: {what}")
    _clean_temporaries(wanted + [_manifest_path(nc_path)])
    if not force and _up_to_date(sc, nc_path, wanted):
        ds = xr.load_dataset(nc_path, engine="h5netcdf")
        return ScenarioResult(sc, ds, wanted, skipped=True)

    ds = _compute(sc, progress)
    ds.attrs.update(scenario_name=sc.name, scenario_file=str(sc.path), scenario_sha256=sc.sha256,
                    scenario_description=sc.description)
    missing = [(i, c) for i, c in enumerate(sc.output["table"]) if c not in ds.data_vars and sc.output.get("table_given")]
    if missing:
        i, col = missing[0]
        close = difflib.get_close_matches(col, list(ds.data_vars), n=3)
        raise ScenarioError(f"{sc.path}: output.table[{i}]: {col!r} is not a variable of this result; "
                            + (f"closest: {', '.join(close)}" if close else f"have: {', '.join(ds.data_vars)}"))
    figures = _render_figures(sc, ds)  # before any file is written: a figure that does not fit fails here
    _manifest_path(nc_path).unlink(missing_ok=True)  # a run killed from here on is never 'up to date'
    safe = _netcdf_safe(ds)
    _atomic_write(nc_path, lambda tmp: safe.to_netcdf(tmp, engine="h5netcdf"))
    frame = summary_frame(ds, sc.output["table"], quantiles=sc.output.get("quantiles", DEFAULT_QUANTILES))
    _atomic_write(csv_path, lambda tmp: frame.to_csv(tmp, index=frame.index.name is not None
                                                     or frame.index.nlevels > 1))
    if figures:
        import matplotlib.pyplot as plt

        from scalesim.interface import plotting

        for fig, stem in zip(figures, fig_paths):
            plotting.save_figure(fig, stem, formats=sc.output["formats"])
        plt.close("all")
    manifest = {"scenario_sha256": sc.sha256, "files": {str(p): _file_sha256(p) for p in wanted}}
    _atomic_write(_manifest_path(nc_path), lambda tmp: tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8"))
    return ScenarioResult(sc, ds, wanted, skipped=False)


def _render_figures(sc, ds):
    """Draw every figure of [output] (not saved yet); one that does not fit the result is a ScenarioError."""
    if not sc.output["figures"]:
        return []
    from scalesim.interface import plotting

    figures = []
    for i, name in enumerate(sc.output["figures"]):
        try:
            ax = plotting.FIGURES[name](ds)
        except (ValueError, KeyError) as exc:
            import matplotlib.pyplot as plt

            plt.close("all")
            raise ScenarioError(f"{sc.path}: output.figures[{i}]: {name!r} does not fit this result: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        figures.append(ax.figure if hasattr(ax, "figure") else ax[0].figure)
    return figures


# ----------------------------------------------------------------------------- summaries
_TIDY_MAX_ROWS = 200


def summary_frame(ds, columns=DEFAULT_TABLE, *, quantiles=DEFAULT_QUANTILES):
    """Headline numbers as a ``pandas.DataFrame``.

    One row per configuration (the swept inputs as index) when the result has at most
    200 configurations; otherwise min/median/max of each column. A Monte Carlo result (a
    ``sample`` dim) shows each uncertain value as ``median [p5, p95]`` over the samples, or with
    ``quantiles`` (sorted levels in (0, 1); scenario ``[output] quantiles``) as the median, when it is
    one of them, followed by the others in brackets (``[q1, q2]`` without the median).
    """
    import pandas as pd

    cols = [c for c in columns if c in ds.data_vars] or [c for c in HEADLINE if c in ds.data_vars]
    if "sample" in ds.dims:
        return _interval_frame(ds, cols, quantiles)
    sub = ds[cols]
    n = int(np.prod([sub.sizes[d] for d in sub.dims])) if sub.dims else 1
    if n <= _TIDY_MAX_ROWS:
        if not sub.dims:
            return pd.DataFrame({c: [float(sub[c])] for c in cols})
        df = sub.reset_coords(drop=True).to_dataframe()[cols] if sub.dims else None
        return df
    stats = {c: {"min": float(sub[c].min()), "median": float(sub[c].median()), "max": float(sub[c].max())}
             for c in cols}
    df = pd.DataFrame(stats).T
    df.index.name = "variable"
    return df


def _interval_frame(ds, cols, quantiles=DEFAULT_QUANTILES):
    """One row per configuration; cells ``median [p5, p95]`` over ``sample`` (plain values where not sampled)."""
    sub = ds[cols].reset_coords(drop=True)
    levels = sorted(set(quantiles) | {0.5})  # the median also gives unsampled values and the many-row summary
    q = sub.quantile(levels, dim="sample")
    shown = [p for p in quantiles if p != 0.5]
    conf_dims = [d for d in sub.dims if d != "sample"]
    n = int(np.prod([sub.sizes[d] for d in conf_dims])) if conf_dims else 1
    if n > _TIDY_MAX_ROWS:  # many configurations: min/median/max of the per-configuration medians
        return summary_frame(q.sel(quantile=0.5, drop=True), cols)
    flat = q.to_dataframe()[cols] if conf_dims else None
    import pandas as pd

    def cell(c, key):
        if "sample" not in ds[c].dims:
            v = float(flat.xs(0.5, level="quantile")[c].loc[key]) if conf_dims else float(q[c].sel(quantile=0.5))
            return _fmt_number(v)
        at = {p: (flat.xs(p, level="quantile")[c].loc[key] if conf_dims else float(q[c].sel(quantile=p))) for p in levels}
        others = "[" + ", ".join(_fmt_number(at[p]) for p in shown) + "]"
        if 0.5 not in quantiles:
            return others
        return f"{_fmt_number(at[0.5])} {others}" if shown else _fmt_number(at[0.5])
    if not conf_dims:
        return pd.DataFrame({c: [cell(c, None)] for c in cols})
    index = flat.xs(0.5, level="quantile").index
    return pd.DataFrame({c: [cell(c, k) for k in index] for c in cols}, index=index)


def _fmt_number(v):
    a = abs(v)
    return "nan" if not np.isfinite(v) else f"{v:.4g}" if a == 0 or 1e-3 <= a < 1e6 else f"{v:.3e}"
