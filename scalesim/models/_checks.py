"""Input checks shared by the model functions (numpy only; works on DataArrays too).

Each check raises ``ValueError`` naming the argument, the offending value and what is allowed,
as STYLE.md asks. Checks are whole-array reductions, so they cost one pass over the input.
"""

from __future__ import annotations

import numpy as np


def _first_bad(values, bad_mask):
    flat_values = np.asarray(values).ravel()
    flat_bad = np.asarray(bad_mask).ravel()
    return float(flat_values[np.argmax(flat_bad)])


def is_lazy(value):
    """True for dask-backed arrays (and DataArrays): checking them would force computation.

    :func:`scalesim.simulate` validates its inputs eagerly; values derived lazily from validated
    inputs are not re-checked.
    """
    data = getattr(value, "data", value)
    return getattr(data, "__dask_graph__", None) is not None and data.__dask_graph__() is not None


def check_finite(name, value):
    """Raise if ``value`` contains NaN or +/-inf."""
    if is_lazy(value):
        return value
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must be finite, got {_first_bad(arr, bad):g}")
    return value


def check_positive(name, value, *, allow_zero=False):
    """Raise unless every element of ``value`` is finite and > 0 (>= 0 with ``allow_zero``)."""
    if is_lazy(value):
        return value
    arr = np.asarray(value, dtype=float)
    check_finite(name, arr)
    bad = arr < 0 if allow_zero else arr <= 0
    if bad.any():
        allowed = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {allowed}, got {_first_bad(arr, bad):g}")
    return value


def check_fraction(name, value, *, upper=1.0, allow_zero=False):
    """Raise unless every element lies in (0, upper] (or [0, upper] with ``allow_zero``)."""
    if is_lazy(value):
        return value
    arr = np.asarray(value, dtype=float)
    check_positive(name, arr, allow_zero=allow_zero)
    bad = arr > upper
    if bad.any():
        low = "[0" if allow_zero else "(0"
        raise ValueError(
            f"{name} must be a fraction in {low}, {upper:g}], got {_first_bad(arr, bad):g}"
            + (" (fractions, not percentages)" if upper == 1.0 else "")
        )
    return value


def check_at_least(name, value, lower):
    """Raise unless every element is finite and >= ``lower``."""
    if is_lazy(value):
        return value
    arr = np.asarray(value, dtype=float)
    check_finite(name, arr)
    bad = arr < lower
    if bad.any():
        raise ValueError(f"{name} must be >= {lower:g}, got {_first_bad(arr, bad):g}")
    return value


def check_above(name, value, floor, *, floor_name, floor_description=None):
    """Raise unless every element of ``value`` is strictly above ``floor`` (broadcast together).

    ``floor_name`` is the short symbol printed with the offending pair (``E``, ``lo``);
    ``floor_description`` the phrase in "must be above ..." (defaults to ``floor_name``).
    """
    if is_lazy(value) or is_lazy(floor):
        return value
    arr, low = np.broadcast_arrays(np.asarray(value, dtype=float), np.asarray(floor, dtype=float))
    bad = arr <= low
    if bad.any():
        i = np.argmax(bad.ravel())
        raise ValueError(f"{name} must be above {floor_description or floor_name}, got {name}={float(arr.ravel()[i])!r} "
                         f"<= {floor_name}={float(low.ravel()[i])!r}")
    return value
