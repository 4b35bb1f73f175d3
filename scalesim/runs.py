"""Published training runs (``data/published_runs.csv``) with their enumerated accounting columns checked.

The table's free-text columns (``energy_scope``, ``tco2e_basis``, ``chip_power_basis``,
``notes``) say how each source did its accounting. ``tools/build_data.py`` reads them once, with
one documented phrase table, into four enumerated columns; :mod:`scalesim.validation` and
:mod:`scalesim.calibration` branch on those codes only, so rewording a note cannot change a
figure. This module holds the allowed codes and checks every row against them.

Rows stay plain dicts (the layout of the CSV), so callers can copy and edit them.
"""

from __future__ import annotations

import functools

from scalesim import catalog

#: Energy boundary of ``energy_mwh`` (and of a derived energy): ``'it'`` before PUE (accelerator
#: or IT energy), ``'facility'`` with PUE. ``''``: no energy reported and no scope stated.
ENERGY_BOUNDARIES = {"it": "IT energy, before PUE", "facility": "facility energy, PUE included"}

#: Energy boundary that ``co2e_t`` applies the grid intensity to (same codes). ``''``: neither
#: tCO2e, intensity nor its basis given.
CO2E_BOUNDARIES = {"it": "intensity x IT energy (no PUE)", "facility": "intensity x IT energy x PUE"}

#: Where ``chip_power_w`` comes from. ``''``: no power stated.
POWER_PROVENANCES = {
    "measured_system_average": "measured average system power per accelerator incl. host share (run-specific)",
    "measured": "measured power per chip quoted at second hand, boundary not tabulated",
    "generic_average": "a published average for the accelerator type, not measured on this run",
    "borrowed": "another run's measurement",
    "derived_from_energy": "the run's reported energy / chip-hours (circular for an energy check)",
    "tdp": "chip-hours x TDP (an accounting convention)",
    "peak_capacity": "chip-hours x the cluster's peak power capacity per GPU (a TDP-like convention)",
}

#: Why 6 N D is not a point estimate of the run's compute; ``compute_caveat`` holds zero or more,
#: ';'-separated.
COMPUTE_CAVEATS = {
    "tokens_lower_bound": "token count is a lower bound",
    "tokens_upper_bound": "token count is an upper bound ('up to')",
    "pruned": "pruned from a larger model (6ND overstates compute)",
    "distilled": "distilled from a larger model (teacher compute not in 6ND)",
    "continued_training": "continued training of another model",
}

#: Power provenances that are the source's TDP accounting convention (predicted at catalogue TDP).
TDP_CONVENTIONS = ("tdp", "peak_capacity")

#: Enumerated column -> allowed non-empty codes.
CODES = {"energy_boundary": ENERGY_BOUNDARIES, "co2e_boundary": CO2E_BOUNDARIES,
         "power_provenance": POWER_PROVENANCES, "compute_caveat": COMPUTE_CAVEATS}

#: A column that must not be empty where the row gives any of these input cells (every tCO2e
#: figure scalesim computes needs the intensity). Outcomes (``energy_mwh``, ``co2e_t``) are not
#: checked: a row with an energy but no stated boundary is simply not compared on energy.
_NEEDED_BY = {"co2e_boundary": ("grid_kgco2e_per_kwh",)}


def check_run(row):
    """Return ``row`` unchanged after checking its enumerated columns; ``ValueError`` otherwise.

    Each of :data:`CODES` must be present and hold an allowed code or ``''`` (``compute_caveat``:
    ';'-separated codes); ``co2e_boundary`` must be stated where ``grid_kgco2e_per_kwh`` is given.
    """
    name = row.get("model", "?")
    for col, allowed in CODES.items():
        if col not in row:
            raise ValueError(f"published run {name!r}: column {col!r} missing; rows must be in the layout of "
                             "data/published_runs.csv (built by tools/build_data.py)")
        value = row[col] or ""
        codes = value.split(";") if col == "compute_caveat" and value else [value]
        bad = [c for c in codes if c not in allowed and not (c == "" and len(codes) == 1)]
        if bad:
            raise ValueError(f"published run {name!r}: {col} {value!r} is not allowed; "
                             f"allowed: '' or {', '.join(map(repr, allowed))}")
        if not value and any(row.get(k) for k in _NEEDED_BY.get(col, ())):
            raise ValueError(f"published run {name!r}: {col} is empty but {' / '.join(_NEEDED_BY[col])} is given; "
                             f"allowed: {', '.join(map(repr, allowed))}")
    return row


@functools.cache
def published_runs():
    """Rows of ``data/published_runs.csv`` (tuple of dicts), every row checked by :func:`check_run`."""
    return tuple(check_run(r) for r in catalog.published_runs())


def compute_caveats(row):
    """The row's compute-caveat codes, in table order (``()`` if none)."""
    value = check_run(row)["compute_caveat"]
    return tuple(value.split(";")) if value else ()


def is_tdp_convention(row):
    """True where the source counted chip-hours x TDP (or peak capacity) [bool]."""
    return check_run(row)["power_provenance"] in TDP_CONVENTIONS
