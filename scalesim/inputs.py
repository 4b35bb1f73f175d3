"""Every input of :func:`scalesim.simulate` and :func:`scalesim.optimize`, declared once.

One table row per input (name, kind, whether a list is allowed, range check, units, help) and
the cross-input rules. The API's validation, the scenario schema, the CLI flags, the coordinate
attrs and the result's ``inputs`` attrs are all derived from these tables, so an input added here
is available everywhere with the same error text.

Kinds: ``number``; ``string``; ``label`` (a catalogue id: hardware, region); ``step`` (a number,
a registered name or a callable: see :mod:`scalesim.steps`); ``choice`` (one of a fixed set).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from scalesim import units as u

NUMBER, STRING, LABEL, STEP, CHOICE, SERIES = "number", "string", "label", "step", "choice", "series"
DTYPES = ("bf16", "fp16", "fp8", "tf32", "fp32", "int8", "nvfp4", "mxfp4")
SIDES = ("low", "central", "high")


@dataclass(frozen=True)
class Input:
    """One input: how it is given, checked and labelled.

    ``many``: True (a list becomes a dimension), False (a single value), ``"pair"`` ((lo, hi)) or
    ``"names"`` (a name or a list of names, not a dimension).
    ``check``: 'positive', 'non-negative', 'count', 'fraction' ((0, 1]), 'share' ([0, 1]), 'pue', 'hour', 'hardware', 'region',
    'law', 'variable', or a tuple of allowed values.
    """

    name: str
    kind: str
    many: bool | str
    check: str | tuple
    units: str
    help: str

    @property
    def flag(self):
        """The command-line flag (``--n-params``)."""
        return "--" + self.name.replace("_", "-")


def _table(*rows):
    return {r.name: r for r in rows}


#: The inputs of :func:`scalesim.simulate`, in signature order.
SIMULATE = _table(
    Input("n_params", NUMBER, True, "positive", "1", "parameters (total; FLOPs use n_active_params where given)"),
    Input("n_active_params", NUMBER, True, "positive", "1",
          "parameters active per token (MoE); then n_params is the total, which sets memory, and FLOPs use this"),
    Input("n_tokens", NUMBER, True, "positive", "1", "training tokens"),
    Input("flop", NUMBER, True, "positive", u.UNIT_FLOP, "training compute, instead of n_params and n_tokens"),
    Input("hardware", LABEL, True, "hardware", "", "accelerator id or alias (H100-SXM5-80GB, h100, TPUv5p)"),
    Input("n_chips", NUMBER, True, "count", "1", "accelerators used (gives wall_days)"),
    Input("chip_hours", NUMBER, True, "positive", u.UNIT_HOUR, "reported accelerator-hours (accounting mode)"),
    Input("mfu", STEP, True, "fraction", u.UNIT_DIMENSIONLESS,
          "model FLOPs utilisation: a fraction, a utilisation model's name or a callable"),
    Input("chip_power_w", STEP, True, "positive", u.UNIT_WATT,
          "average IT power per accelerator incl. host share: watts, a power model's name or a callable"),
    Input("pue", STEP, True, "pue", u.UNIT_DIMENSIONLESS,
          "power usage effectiveness (>= 1), an operator name or a callable"),
    Input("region", LABEL, True, "region", "", "grid region (ISO country, grid zone, egrid:, gcp:/aws:/azure:)"),
    Input("grid_gco2e_per_kwh", NUMBER, True, "non-negative", u.UNIT_GCO2E_PER_KWH,
          "explicit grid intensity, instead of region"),
    Input("cfe_fraction", NUMBER, True, "share", u.UNIT_DIMENSIONLESS,
          "annual share of the load matched by contracted carbon-free supply (PPAs, EACs), 0..1; gives co2e_market_t"),
    Input("supply_gco2e_per_kwh", NUMBER, True, "non-negative", u.UNIT_GCO2E_PER_KWH,
          "emission factor of the contracted supply (default 0, Scope 2 operational; up to 48 life-cycle)"),
    Input("residual_gco2e_per_kwh", NUMBER, True, "non-negative", u.UNIT_GCO2E_PER_KWH,
          "residual-mix intensity of the uncovered load (default: between the grid and the all-claimed bound)"),
    Input("supply_profile", SERIES, False, "series", u.UNIT_DIMENSIONLESS,
          "hourly shape of the contracted supply on 'time' (with intensity_series): 24/7 matching, cfe_hourly_fraction"),
    Input("dtype", CHOICE, False, DTYPES, "", "training precision selecting the dense peak"),
    Input("goodput", NUMBER, False, "fraction", u.UNIT_DIMENSIONLESS,
          "productive share of accelerator time; lost time is counted at idle power"),
    Input("start_hour", NUMBER, True, "hour", u.UNIT_HOUR, "local start hour (weights intensity by the diurnal profile)"),
    Input("wue_l_per_kwh", NUMBER, True, "non-negative", "L/kWh", "on-site water per IT kWh"),
    Input("ewif_l_per_kwh", NUMBER, True, "non-negative", "L/kWh", "off-site water per facility kWh"),
    Input("embodied_kgco2e_per_chip", NUMBER, True, "non-negative", "kg", "embodied carbon per accelerator incl. host share"),
    Input("lifetime_years", NUMBER, False, "positive", "yr", "amortisation period of embodied carbon"),
    Input("law", STRING, False, "law", "", "scaling law (adds loss)"),
    Input("defaults", CHOICE, False, SIDES, "", "which end of every default's range to use (low = low emissions)"),
    Input("samples", NUMBER, False, "count", "1",
          "Monte Carlo: draw every default from its range this many times (a 'sample' dim; common random numbers)"),
    Input("seed", NUMBER, False, "seed", "1", "seed of the Monte Carlo draws (same seed, same numbers on any machine)"),
    Input("intensity_series", SERIES, False, "series", u.UNIT_GCO2E_PER_KWH,
          "hourly grid intensity over the run: a DataArray on 'time', a CSV path (datetime,gco2e_per_kwh), "
          "or 'synthetic' (the region's typical year)"),
    Input("start", STRING, False, "timestamp", "", "start of the run on the intensity series (default: its first hour)"),
    Input("schedule", CHOICE, False, ("immediate", "flexible_start", "pause_resume"), "",
          "carbon-aware schedule on the intensity series (net of idle power and stretched embodied carbon)"),
    Input("slack", NUMBER, False, "non-negative", "1", "extra wall-clock time allowed, as a fraction of the run"),
    Input("development_overhead", NUMBER, True, "non-negative", u.UNIT_DIMENSIONLESS,
          "extra project compute (experiments, failed runs, post-training, evaluation) over the final run's, "
          "as a ratio (0.5 = half as much again); gives project_* outputs"),
)

#: Inputs whose value may lie outside its :data:`PLAUSIBLE` range on purpose (declared apart from
#: the table above so it stays the last argument of simulate).
SIMULATE["allow_unusual"] = Input("allow_unusual", STRING, "names", "unusual", "",
                                  "inputs whose value is outside its plausible range on purpose (e.g. n_params)")
#: Which output variables to compute (default all): only they and what they need are computed.
SIMULATE["outputs"] = Input("outputs", STRING, "names", "variable", "",
                            "output variables to compute (default all; e.g. co2e_t): only these and what they need")
#: Estimated result size above which simulate returns a lazy, dask-chunked Dataset (scalesim.chain.sizing).
SIMULATE["lazy_above_bytes"] = Input("lazy_above_bytes", NUMBER, False, "non-negative", "bytes",
                                     "estimated result size above which the result is lazy and dask-chunked "
                                     "(default 4 GiB, scalesim.chain.sizing.LAZY_ABOVE_BYTES; 0: always lazy)")

#: Inputs of :func:`scalesim.optimize` beyond the simulate inputs it shares.
OPTIMIZE = _table(
    Input("target_loss", NUMBER, True, "positive", u.UNIT_NATS, "goal: reach this loss at least cost"),
    Input("carbon_budget_t", NUMBER, True, "positive", u.UNIT_TONNE, "goal: best loss within this lifetime budget"),
    Input("flop_budget", NUMBER, True, "positive", u.UNIT_FLOP, "goal: best loss within this lifetime FLOP budget"),
    Input("law", STRING, False, "law", "", "scaling law"),
    Input("objective", STRING, True, "variable", "", "quantity minimised or budgeted (training + serving)"),
    Input("inference_tokens", NUMBER, True, "non-negative", "1", "lifetime tokens served"),
    Input("inference_hardware", LABEL, False, "hardware", "", "serving accelerator (default: the training one)"),
    Input("inference_region", LABEL, False, "region", "", "serving region (default: the training one)"),
    Input("inference_grid_gco2e_per_kwh", NUMBER, False, "non-negative", u.UNIT_GCO2E_PER_KWH, "serving grid intensity"),
    Input("inference_mfu", NUMBER, False, "fraction", u.UNIT_DIMENSIONLESS,
          "serving utilisation: cost serving as 2N FLOPs per token at this MFU instead of the roofline model"),
    Input("inference_batch_size", NUMBER, False, "count", "1",
          "concurrent sequences per serving replica (roofline serving; default vLLM's max_num_seqs, 256)"),
    Input("max_wall_days", NUMBER, True, "positive", u.UNIT_DAY, "wall-time limit (chooses n_chips when not given)"),
    Input("max_n_chips", NUMBER, False, "count", "1", "largest chip count the chip search may choose"),
    Input("n_params_bounds", NUMBER, "pair", "positive", "1", "bounds on N"),
    Input("n_tokens_bounds", NUMBER, "pair", "positive", "1", "bounds on D"),
    Input("unique_tokens", NUMBER, False, "positive", "1", "unique data available (law muennighoff2023)"),
    Input("method", CHOICE, False, ("auto", "closed", "numeric"), "", "closed form where emissions are proportional to FLOPs"),
    Input("risk", STRING, False, None, "",
          "with samples: minimise the mean ('mean') or a percentile ('p90', or a level such as 0.9) of the objective "
          "over the Monte Carlo draws, and report the probability that each listed choice is best"),
    Input("inference_dtype", CHOICE, False, ("bf16", "fp16", "fp8", "int8", "int4"), "",
          "serving weight dtype: costs serving with it and asks the trained model for target_loss minus its quality penalty"),
    Input("strategy", CHOICE, False, ("direct", "distill", "prune"), "",
          "direct, distill (teacher -> served student) or prune (parent -> pruned, recovered, served)"),
    Input("distill_tokens", NUMBER, False, "positive", "1", "tokens the teacher labels for the student (default: chosen)"),
    Input("distill_benefit", NUMBER, False, "positive", u.UNIT_DIMENSIONLESS,
          "effective-token multiplier of distillation, >= 1 (default 1: no gain, Busbridge et al. 2025)"),
    Input("prune_fraction", NUMBER, False, "fraction", u.UNIT_DIMENSIONLESS,
          "kept share of parameters after pruning, in (0, 1) (default 8/15, Minitron 15B -> 8B)"),
    Input("recovery_tokens", NUMBER, False, "positive", "1", "tokens of distillation after pruning (default 94e9, Minitron)"),
    Input("teacher", CHOICE, False, ("train", "existing"), "",
          "whether the teacher's (parent's) training is charged: train (default) or existing"),
)

#: simulate inputs that optimize chooses itself.
CHOSEN_BY_OPTIMIZE = ("n_params", "n_active_params", "n_tokens", "flop", "law")
#: simulate inputs that optimize does not take (its cost needs every output; its cost is the final run
#: plus serving, so a project-wide development overhead is simulate's to report).
SIMULATE_ONLY = ("outputs", "development_overhead", "lazy_above_bytes")
GOALS = ("target_loss", "carbon_budget_t", "flop_budget")


def optimize_inputs():
    """The optimize table: its own inputs, then the simulate inputs it passes through."""
    shared = {k: v for k, v in SIMULATE.items() if k not in CHOSEN_BY_OPTIMIZE + SIMULATE_ONLY}
    return {**OPTIMIZE, **shared}


# ----------------------------------------------------------------------------- value checks
def reason(check, v):
    """Why scalar ``v`` fails ``check`` ('must be > 0', ...), or None. Catalogue ids raise themselves."""
    if isinstance(check, tuple):
        return None if v in check else f"must be one of {', '.join(check)}"
    if check in ("hardware", "region"):
        from scalesim import catalog

        (catalog.get_hardware if check == "hardware" else catalog.get_region)(v)
        return None
    if check == "unusual":
        close = difflib.get_close_matches(v, list(PLAUSIBLE), n=1)
        return None if v in PLAUSIBLE else ("must name an input with a plausible range; "
                                            + (f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(PLAUSIBLE)}"))
    if check in ("series", "timestamp"):
        return None if isinstance(v, str) and v else "must be a non-empty string"
    if check == "law":
        from scalesim.laws import LAWS

        if v in LAWS:
            return None
        close = difflib.get_close_matches(v, list(LAWS), n=3)
        return "unknown law; " + (f"did you mean {close[0]!r}? " if close else "") + f"allowed: {', '.join(LAWS)}"
    if check == "variable":
        from scalesim import variables

        if v in variables.VARIABLES:
            return None
        close = difflib.get_close_matches(v, list(variables.VARIABLES), n=3)
        return "unknown output variable" + (f"; closest: {', '.join(close)}" if close else "")
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return f"must be a number, not {type(v).__name__}"
    try:
        v = float(v)  # an integer beyond int64 (TOML allows them) compares as a float
    except OverflowError:
        v = float("inf") if v > 0 else -float("inf")
        return f"must be at most {SUPPORTED_MAX:g} in magnitude (the supported range: larger values overflow)"
    if not np.isfinite(v):
        return "must be finite"
    if abs(v) > SUPPORTED_MAX:
        return f"must be at most {SUPPORTED_MAX:g} in magnitude (the supported range: larger values overflow)"
    return {
        "positive": None if v > 0 else "must be > 0",
        "non-negative": None if v >= 0 else "must be >= 0",
        "count": None if v >= 1 and float(v).is_integer() else "must be a positive whole number",
        "fraction": None if 0 < v <= 1 else "must be a fraction in (0, 1] (fractions, not percentages)",
        "share": None if 0 <= v <= 1 else "must be a fraction in [0, 1] (fractions, not percentages)",
        "pue": None if v >= 1 else "must be >= 1 (facility energy over IT energy)",
        "hour": None if 0 <= v < 24 else "must be an hour in [0, 24)",
        "seed": None if v >= 0 and float(v).is_integer() else "must be a whole number >= 0",
    }[check]


def check_array(spec, values):
    """Raise ``ValueError`` naming the input and the first bad element of a numeric array."""
    from scalesim.models._checks import is_lazy

    if is_lazy(values):
        return
    arr = np.asarray(values, dtype=float).ravel()
    for check, bad in _bad_masks(spec.check, arr):
        if bad.any():
            v = float(arr[np.argmax(bad)])
            raise ValueError(f"{spec.name} {reason(check, v)}, got {v:g}")


def _bad_masks(check, arr):
    finite = np.isfinite(arr)
    yield "positive", ~finite  # 'must be finite' from reason()
    yield "supported", np.abs(np.where(finite, arr, 0.0)) > SUPPORTED_MAX
    masks = {"positive": arr <= 0, "non-negative": arr < 0, "count": (arr < 1) | (arr != np.round(arr)),
             "fraction": (arr <= 0) | (arr > 1), "share": (arr < 0) | (arr > 1), "pue": arr < 1, "hour": (arr < 0) | (arr >= 24),
             "seed": (arr < 0) | (arr != np.round(arr))}
    yield check, masks[check] & finite


#: Largest magnitude of a number input. An output multiplies at most five inputs, and
#: (1e60)^5 = 1e300 is below float64's largest finite value (1.8e308), so no output overflows.
SUPPORTED_MAX = 1e60

#: Plausible range of an input (lo, hi) and the unit slip a value outside it usually is. A value
#: outside raises ``ValueError``; to use one on purpose name the input in ``allow_unusual``
#: (``simulate(n_params=70, ..., allow_unusual="n_params")``; CLI ``--allow-unusual n_params``;
#: scenarios ``allow_unusual = ["n_params"]``). Zero stays allowed where the check allows it (a
#: carbon-free supply, no water). Bounds are generous (10-100x beyond published values) and one-sided
#: where a slip goes one way only (billions of parameters are too few, never too many).
PLAUSIBLE = {
    "n_params": (1e4, None, "a count of parameters (70e9 for a 70B model), not billions"),
    "n_active_params": (1e4, None, "a count of parameters (37e9 for 37B active), not billions"),
    "n_tokens": (1e6, None, "a count of tokens (2e12 for 2T), not billions or trillions"),
    "n_chips": (None, 1e7, "accelerators (the largest clusters have ~2e5)"),
    "chip_hours": (None, 1e10, "accelerator-hours (the largest published runs used ~1e8)"),
    "mfu": (1e-3, None, "a fraction (0.4 for 40 %)"),
    "chip_power_w": (10.0, 5000.0, "watts per accelerator (700 for an H100), not kW"),
    "grid_gco2e_per_kwh": (1.0, 2000.0, "grams CO2e per kWh (e.g. 400), not kg; 0 for a carbon-free supply"),
    "inference_grid_gco2e_per_kwh": (1.0, 2000.0, "grams CO2e per kWh (e.g. 400), not kg; 0 for a carbon-free supply"),
    "supply_gco2e_per_kwh": (1.0, 2000.0, "grams CO2e per kWh of the contracted supply (0-48 for carbon-free), not mg"),
    "residual_gco2e_per_kwh": (1.0, 2000.0, "grams CO2e per kWh (e.g. 500), not kg; 0 for a carbon-free residual"),
    "pue": (None, 3.0, "facility over IT energy (1.1-2.0 in practice)"),
    "wue_l_per_kwh": (None, 50.0, "litres per kWh (0.2-5 in practice), not per MWh"),
    "ewif_l_per_kwh": (None, 50.0, "litres per kWh (1-10 in practice), not per MWh"),
    "embodied_kgco2e_per_chip": (None, 1e5, "kgCO2e per accelerator incl. host share (~100-3000)"),
    "lifetime_years": (0.25, 30.0, "years, not months or hours"),
    "goodput": (0.05, None, "a fraction (0.9 for 90 %)"),
    "development_overhead": (None, 20.0, "a ratio of extra over final-run compute (0.5 for half as much again; "
                             "published anchors span 0.5-4.6), not a percentage"),
}


def check_plausible(name, values, allow=()):
    """Raise ``ValueError`` where a number input lies outside :data:`PLAUSIBLE` (unless ``name`` is in ``allow``)."""
    from scalesim.models._checks import is_lazy

    if name not in PLAUSIBLE or name in allow or is_lazy(values):
        return
    lo, hi, slip = PLAUSIBLE[name]
    arr = np.asarray(getattr(values, "values", values), dtype=float).ravel()
    arr = arr[np.isfinite(arr) & (arr != 0)]  # zero is the check's business (allowed or not)
    bad = ((arr < lo) if lo is not None else np.zeros(arr.shape, bool)) | ((arr > hi) if hi is not None else False)
    if bad.any():
        v = float(arr[np.argmax(bad)])
        rng = f">= {lo:g}" if hi is None else f"<= {hi:g}" if lo is None else f"in [{lo:g}, {hi:g}]"
        raise ValueError(f"{name}={v:g} is implausible (expected {rng}): it should be {slip}; to use it on purpose "
                         f"pass allow_unusual={name!r}")


def allowed_unusual(value):
    """The names in an ``allow_unusual`` value (a name or a list of names), each checked."""
    names = [value] if isinstance(value, str) else list(value or ())
    for n in names:
        if not isinstance(n, str) or n not in PLAUSIBLE:
            close = difflib.get_close_matches(str(n), list(PLAUSIBLE), n=1)
            raise ValueError(f"allow_unusual: {n!r} is not an input with a plausible range"
                             + (f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(PLAUSIBLE)}"))
    return tuple(names)


def short(value):
    """A one-line repr for a message (an array's or DataArray's type and shape, not its multi-line repr)."""
    text = repr(value)
    return text if len(text) <= 60 and "\n" not in text else f"a {type(value).__name__} of shape {np.shape(value)}"


def check_value(spec, value, allow=()):
    """Check one input given to the API (type, single value or list, range, plausibility); raise ``ValueError``.

    Numbers come back as float arrays (0-d for a scalar), pairs as a tuple of floats, the rest unchanged.
    """
    name = spec.name
    if spec.many == "pair":
        if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 2:
            raise ValueError(f"{name} must be a pair (low, high), got {short(value)}")
        for v in value:
            bad = reason(spec.check, v)
            if bad:
                raise ValueError(f"{name} {bad}, got {short(value)}")
        lo, hi = (float(v) for v in value)
        if not lo < hi:
            raise ValueError(f"{name} must be (low, high) with low < high, got {short(value)}")
        return lo, hi
    if not spec.many and not isinstance(value, (str, bytes)) and (isinstance(value, (list, tuple, set, dict))
                                                                   or np.ndim(value) > 0):
        raise ValueError(f"{name} takes a single value, got {short(value)}")
    if spec.kind in (LABEL, STRING, CHOICE):
        items = list(np.ravel(np.asarray(value, dtype=object))) if not isinstance(value, str) else [value]
        for v in items:
            if not isinstance(v, str):
                raise ValueError(f"{name} must be a string{' or a list of strings' if spec.many else ''}, "
                                 f"got {short(v)} ({type(v).__name__})")
            try:
                bad = reason(spec.check, v) if spec.check not in (None, "") else None
            except ValueError as exc:  # unknown catalogue id: say which argument
                raise ValueError(f"{name}: {exc}") from None
            if bad:
                raise ValueError(f"{name} {bad}, got {v!r}")
        return value
    items = value if isinstance(value, (list, tuple)) else None
    for i, v in enumerate(items or ()):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name}[{i}] must be a number, got {short(v)} ({type(v).__name__})")
    if items is None and (isinstance(value, (bool, np.bool_, str, bytes, set, dict))
                          or np.asarray(value).dtype.kind not in "iuf"):
        raise ValueError(f"{name} must be a number{' or a list of numbers' if spec.many else ''}, got {short(value)}")
    arr = np.asarray(getattr(value, "values", value), dtype=float)
    check_array(spec, arr)
    check_plausible(name, arr, allow)
    return arr


# ----------------------------------------------------------------------------- cross-input rules
@dataclass(frozen=True)
class Rule:
    """A rule on which inputs go together; ``test(given)`` returns (key, message) when broken."""

    name: str
    test: object
    scope: tuple = ("simulate",)


def _model_name(given, key):
    v = given.get(key)
    return v if isinstance(v, str) else None


def _needs_of(given):
    """(name, needed inputs, is default) of the utilisation step by name, or of the default one."""
    from scalesim import steps

    name = _model_name(given, "mfu")
    if name is None and "mfu" not in given and "chip_hours" not in given:
        return steps.UTILISATION.default, steps.UTILISATION.needs(steps.UTILISATION.default), True
    if name is None:
        return None, (), False
    return name, steps.UTILISATION.needs(name), False


def _rule_epoch(given, scope):
    name, needs, default = _needs_of(given)
    missing = [n for n in needs if n not in given and not (scope == "optimize" and n in CHOSEN_BY_OPTIMIZE)]
    if not missing:
        return None
    if scope == "optimize" and missing == ["n_chips"] and "max_wall_days" in given:
        return None
    alt = " (or max_wall_days to choose n_chips)" if scope == "optimize" and missing == ["n_chips"] else ""
    what = " (the default utilisation model)" if default else ""
    hint = "; or pass mfu= a fraction or another model" if default else ""
    return "mfu", f"mfu={name!r}{what} needs {' and '.join(missing)} (the model is a function of them){alt}{hint}"


RULES = (
    Rule("hardware required", lambda g, s: None if "hardware" in g else
         ("hardware", "hardware is required, e.g. hardware='H100-SXM5-80GB' (see scalesim.catalog.hardware_ids())"),
         ("simulate", "optimize")),
    Rule("flop xor n_params+n_tokens", lambda g, s: ("flop", "give either flop or n_params and n_tokens, not both "
                                                     "(flop is computed as 6ND)")
         if "flop" in g and ("n_params" in g or "n_tokens" in g) else None),
    Rule("n_active_params with n_params", lambda g, s: ("n_active_params", "n_active_params needs n_params (the total)")
         if "n_active_params" in g and "n_params" not in g else None),
    Rule("n_params with n_tokens", lambda g, s: (("n_tokens" if "n_params" in g else "n_params"),
                                                 "n_params and n_tokens go together (or give flop)")
         if ("n_params" in g) != ("n_tokens" in g) else None),
    Rule("region xor grid", lambda g, s: ("grid_gco2e_per_kwh", "give either region or grid_gco2e_per_kwh, not both")
         if "region" in g and "grid_gco2e_per_kwh" in g else None, ("simulate", "optimize")),
    Rule("a grid", lambda g, s: None if "region" in g or "grid_gco2e_per_kwh" in g or "intensity_series" in g else
         ("region", "no grid intensity and no default grid: pass region (e.g. 'FR', 'US-CAL-CISO', 'gcp:us-central1') "
                    "or grid_gco2e_per_kwh; scalesim never falls back to a world average"), ("simulate", "optimize")),
    Rule("something to simulate", lambda g, s: None if {"flop", "n_params", "chip_hours"} & set(g) else
         ("n_params", "nothing to simulate: give n_params and n_tokens, flop, or chip_hours")),
    Rule("chip_hours xor model", lambda g, s: ("mfu", f"give either chip_hours (time as reported) or a utilisation "
                                                      f"model mfu={g['mfu']!r}, not both")
         if "chip_hours" in g and (isinstance(g.get("mfu"), str) or callable(g.get("mfu"))) else None,
         ("simulate", "optimize")),
    Rule("model needs", _rule_epoch, ("simulate", "optimize")),
    Rule("start_hour needs", lambda g, s: ("start_hour", "start_hour needs n_chips and region= with a diurnal profile "
                                                         "(the window length and the profile)")
         if "start_hour" in g and (("n_chips" not in g and s == "simulate") or "region" not in g) else None,
         ("simulate", "optimize")),
    Rule("samples with central defaults", lambda g, s: ("samples", f"samples draws every default from its range; "
                                                                 f"defaults={g['defaults']!r} picks one end: give one or the other")
         if g.get("samples") is not None and g.get("defaults", "central") != "central" else None, ("simulate", "optimize")),
    Rule("seed needs samples", lambda g, s: ("seed", "seed needs samples (it seeds the Monte Carlo draws)")
         if g.get("seed") is not None and g.get("samples") is None else None, ("simulate", "optimize")),
    Rule("series excludes", lambda g, s: ("intensity_series", "give either intensity_series or grid_gco2e_per_kwh / "
                                                              "start_hour, not both")
         if "intensity_series" in g and ("grid_gco2e_per_kwh" in g or "start_hour" in g) else None, ("simulate", "optimize")),
    Rule("synthetic needs region", lambda g, s: ("intensity_series", "intensity_series='synthetic' needs region= "
                                                                     "(its typical year)")
         if isinstance(g.get("intensity_series"), str) and g["intensity_series"] == "synthetic" and "region" not in g
         else None, ("simulate", "optimize")),
    Rule("schedule needs series", lambda g, s: ((k := next(n for n in ("schedule", "slack", "start") if n in g)),
                                                f"{k} needs intensity_series (the hours it schedules on)")
         if any(n in g for n in ("schedule", "slack", "start")) and "intensity_series" not in g else None,
         ("simulate", "optimize")),
    Rule("supply_profile needs", lambda g, s: ("supply_profile", "supply_profile needs intensity_series (the hours to match "
                                                                 "on) and cfe_fraction (the contract's volume as a share of the load)")
         if "supply_profile" in g and ("intensity_series" not in g or "cfe_fraction" not in g) else None,
         ("simulate", "optimize")),
    Rule("law needs", lambda g, s: ("law", "law= needs n_params and n_tokens (loss is a function of both)")
         if "law" in g and "n_params" not in g else None),
    Rule("one goal", lambda g, s: None if sum(k in g for k in GOALS) == 1 else
         ("target_loss", f"give exactly one goal of {', '.join(GOALS)}; got {sorted(k for k in GOALS if k in g) or 'none'}"),
         ("optimize",)),
)


def check_rules(given, scope="simulate"):
    """Raise ``ValueError`` for the first broken rule; ``given`` maps the inputs given to their values."""
    broken = first_broken(given, scope)
    if broken:
        raise ValueError(broken[1])


def first_broken(given, scope="simulate"):
    """(key, message) of the first rule ``given`` breaks in ``scope``, or None."""
    for rule in RULES:
        if scope in rule.scope:
            broken = rule.test(given, scope)
            if broken:
                return broken
    return None


def given(values, table):
    """The inputs of ``table`` that were given (not None), in table order."""
    return {k: values[k] for k in table if values.get(k) is not None}


# ----------------------------------------------------------------------------- serve
#: Weight and KV-cache dtypes of :func:`scalesim.serve` (4-bit: int4 weight-only, fp4/nvfp4/mxfp4).
SERVE_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4", "fp4", "nvfp4", "mxfp4", "fp32")

#: The inputs of :func:`scalesim.serve`, in signature order.
SERVE = _table(
    Input("n_params", NUMBER, True, "positive", "1", "parameters (total: sets weight memory and, for a dense model, traffic)"),
    Input("n_active_params", NUMBER, True, "positive", "1", "parameters used per token (MoE); default n_params"),
    Input("hardware", LABEL, True, "hardware", "", "accelerator id or alias (H100-SXM5-80GB, h100, B200)"),
    Input("n_chips", NUMBER, True, "count", "1", "accelerators serving one replica"),
    Input("batch_size", NUMBER, True, "count", "1", "concurrent sequences (vLLM max_num_seqs)"),
    Input("input_tokens", NUMBER, True, "positive", "1", "prompt tokens per request (default: ShareGPT mean, 161)"),
    Input("output_tokens", NUMBER, True, "positive", "1", "generated tokens per request (default: ShareGPT mean, 338)"),
    Input("dtype", CHOICE, True, SERVE_DTYPES, "", "weight dtype (bf16, fp8, int8, int4, fp4, ...)"),
    Input("kv_dtype", CHOICE, True, SERVE_DTYPES, "", "KV-cache dtype (default: the weights' dtype, 16-bit for 4-bit weights)"),
    Input("tp", NUMBER, True, "count", "1", "tensor-parallel degree (default n_chips: all tensor-parallel)"),
    Input("ep", NUMBER, True, "count", "1", "expert-parallel degree (MoE; default 1)"),
    Input("n_layers", NUMBER, True, "count", "1", "layers (default: aspect-ratio rule)"),
    Input("d_model", NUMBER, True, "count", "1", "width (default: aspect-ratio rule)"),
    Input("n_heads", NUMBER, True, "count", "1", "query heads (default d_model / 128)"),
    Input("n_kv_heads", NUMBER, True, "count", "1", "KV heads (default min(n_heads, 8), grouped-query attention)"),
    Input("vocab_size", NUMBER, True, "count", "1", "vocabulary (default Llama 3's 128256)"),
    Input("n_experts", NUMBER, True, "count", "1", "routed experts per layer (MoE; default from the parameter ratio)"),
    Input("top_k", NUMBER, True, "count", "1", "experts per token (MoE; default 8)"),
    Input("served_tokens", NUMBER, True, "positive", "1", "output tokens served (energy_kwh, co2e_t, water_l; default 1e6)"),
    Input("pue", STEP, True, "pue", u.UNIT_DIMENSIONLESS, "power usage effectiveness (>= 1) or an operator name"),
    Input("region", LABEL, True, "region", "", "grid region (ISO country, grid zone, egrid:, gcp:/aws:/azure:)"),
    Input("grid_gco2e_per_kwh", NUMBER, True, "non-negative", u.UNIT_GCO2E_PER_KWH, "explicit grid intensity, instead of region"),
    Input("wue_l_per_kwh", NUMBER, True, "non-negative", "L/kWh", "on-site water per IT kWh"),
    Input("ewif_l_per_kwh", NUMBER, True, "non-negative", "L/kWh", "off-site water per facility kWh"),
)
