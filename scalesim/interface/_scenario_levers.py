"""The ``[[levers]]`` section of a scenario: a waterfall of mitigations on top of an ``[optimize]`` baseline.

::

    [sweep]                          # the baseline's shared inputs (as for [optimize])
    hardware = "A100-SXM4-80GB"
    region = "US-MIDA-PJM"

    [optimize]                       # the baseline's goal and options
    target_loss = 2.0
    inference_tokens = 1e13

    [[levers]]                       # applied in order, each on top of the previous ones
    name = "efficient hardware (H100)"
    set = {hardware = "H100-SXM5-80GB"}

    [[levers]]
    name = "clean supply (80 % CFE)"
    basis = "market"                 # own basis, never summed; after every location lever
    set = {cfe_fraction = 0.8}

Each ``set`` key is a [sweep] or [optimize] key with a single value, checked like them; the rules
of :mod:`scalesim.inputs` are checked on every cumulative configuration before anything runs.
The result is :func:`scalesim.solve.levers.waterfall`'s Dataset on dim ``lever``.
"""

from __future__ import annotations

from scalesim import inputs

LEVER_KEYS = {"name", "set", "basis"}
#: Printed columns of a levers scenario when [output] table is not given.
TABLE = ("co2e_t", "co2e_saving_t", "co2e_cumulative_saving_t", "water_l", "water_saving_l")


def check_levers(c, doc, sweep, opt, sweep_keys, optimize_keys):
    """``[[levers]]`` -> ``[(name, overrides, basis)]``, every key and cumulative configuration checked."""
    from scalesim.solve.levers import BASES

    raw = doc["levers"]
    if opt is None:
        raise c.error("levers", "needs an [optimize] section: the baseline's goal (levers compare optimize calls)")
    if isinstance(opt.get("objective"), list):
        raise c.error("optimize.objective", "must be a single objective in a levers scenario")
    if not isinstance(raw, list) or not raw:
        raise c.error("levers", "must be a non-empty array of tables ([[levers]])")
    out, names, current, seen_market = [], set(), {**sweep, **opt}, False
    for i, lever in enumerate(raw):
        where = f"levers[{i}]"
        c.keys(lever, LEVER_KEYS, where)
        name, basis = lever.get("name"), lever.get("basis", "location")
        if not isinstance(name, str) or not name or name in names or name == "baseline":
            raise c.error(f"{where}.name", f"must be a new, non-empty string (not 'baseline'), got {name!r}")
        if basis not in BASES:
            raise c.error(f"{where}.basis", f"must be one of {', '.join(BASES)}, got {basis!r}")
        if basis == "location" and seen_market:
            raise c.error(f"{where}.basis", "location-based levers must come before market-based ones")
        overrides = _overrides(c, lever.get("set"), f"{where}.set", sweep_keys, optimize_keys)
        broken = inputs.first_broken({**current, **overrides}, "optimize")
        if broken:
            raise c.error(f"{where}.set", f"with the levers before it: {broken[1]}")
        if basis == "location":
            current = {**current, **overrides}
        seen_market = seen_market or basis == "market"
        names.add(name)
        out.append((name, overrides, basis))
    return out


def _overrides(c, raw, where, sweep_keys, optimize_keys):
    if not isinstance(raw, dict) or not raw:
        raise c.error(where, "must be a non-empty table of inputs, e.g. set = {hardware = \"H100-SXM5-80GB\"}")
    allowed = {**sweep_keys, **optimize_keys}
    c.keys(raw, allowed, where)
    out = {}
    for k, v in raw.items():
        if isinstance(v, (list, dict)):
            raise c.error(f"{where}.{k}", "must be a single value (a lever is one configuration)")
        if k in ("n_params", "n_tokens", "flop"):
            raise c.error(f"{where}.{k}", "is chosen by [optimize]")
        out[k] = c.value(v, f"{where}.{k}", allowed[k])
    return out


def run_levers(sc):
    """The waterfall of a validated levers scenario (:func:`scalesim.solve.levers.waterfall`)."""
    from scalesim.solve.levers import waterfall

    base = {k: (tuple(v) if k.endswith("_bounds") else v) for k, v in {**sc.optimize, **sc.sweep}.items()}
    return waterfall(base, sc.levers)
