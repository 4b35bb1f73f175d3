"""Optimisation under uncertainty: a risk measure of the objective over Monte Carlo draws, and the
probability that the optimum's discrete choice (region, hardware, ...) is really the best.

With ``optimize(..., samples=N, seed=S, risk=...)`` every default is drawn N times (common random
numbers, :class:`scalesim.steps.Defaults`), the objective of each candidate (N, D) is evaluated in
every draw at once (a ``sample`` dim), and the search minimises one number per configuration: the
mean of the objective over the draws (``risk="mean"``) or its q-quantile (``risk="p90"`` or
``risk=0.9``; the sample quantile of :func:`numpy.quantile`, linear interpolation, Hyndman & Fan
1996 definition 7). The chosen (N, D) is then one decision for all draws, and the result keeps the
``sample`` dim for the outputs at that decision in every draw.

For each discrete choice given as a list (:data:`CHOICE_DIMS`), the choice is the option with the
least risk objective at its own optimum, and ``prob_best_<dim>`` is the share of draws in which that
option, at its chosen (N, D), has the least objective of all options (each at its own chosen (N, D)).
Draws are paired, so this is the probability that the choice is right given the uncertainty of every
default, not of each option's interval separately.

References
----------
.. [1] Hyndman, R. J. and Fan, Y. 1996, "Sample quantiles in statistical packages", The American
   Statistician 50(4), 361-365, doi:10.1080/00031305.1996.10473566 (definition 7, numpy's default).
.. [2] Shapiro, A., Dentcheva, D. and Ruszczynski, A. 2014, "Lectures on Stochastic Programming",
   2nd ed., SIAM, doi:10.1137/1.9781611973433, Ch. 5 (sample average approximation: minimise the
   sample mean of the objective over common draws).
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

#: Discrete choices a trainer makes whose confidence ``optimize`` reports when given as a list.
CHOICE_DIMS = ("hardware", "region", "n_chips", "start_hour", "inference_hardware", "inference_region")
#: Variables of the decision itself (the same in every draw).
DECISIONS = ("n_params", "n_tokens", "loss", "n_params_compute_optimal", "n_tokens_compute_optimal")
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?)$")


class Risk:
    """A risk measure over the ``sample`` dim: ``'mean'``, ``'pNN'`` (percentile) or a quantile in (0, 1)."""

    def __init__(self, value):
        self.value = value
        self.q = parse(value)

    @property
    def label(self):
        return "mean" if self.q is None else f"{100 * self.q:g}th percentile"

    def reduce(self, x):
        """The risk measure of ``x`` over ``sample`` (``x`` returned as is when it has no sample dim)."""
        if "sample" not in getattr(x, "dims", ()):
            return x
        if self.q is None:
            return x.mean("sample", skipna=False)
        return x.quantile(self.q, dim="sample", skipna=False).drop_vars("quantile")


def parse(risk):
    """``risk`` -> None (the mean) or the quantile level q in (0, 1); ValueError otherwise."""
    allowed = "'mean', a percentile 'p1'...'p99' (e.g. 'p90') or a quantile level strictly between 0 and 1 (e.g. 0.9)"
    if isinstance(risk, str):
        try:  # a level written as text (a command-line flag): '0.9'
            risk = float(risk) if risk.strip() not in ("nan", "inf", "-inf") else risk
        except ValueError:
            pass
    if isinstance(risk, str):
        if risk == "mean":
            return None
        m = _PERCENTILE.match(risk)
        if m and 0 < float(m.group(1)) < 100:
            return float(m.group(1)) / 100
        raise ValueError(f"risk must be {allowed}, got {risk!r}")
    if isinstance(risk, (bool, np.bool_)) or not isinstance(risk, (int, float, np.integer, np.floating)):
        raise ValueError(f"risk must be {allowed}, got {risk!r} ({type(risk).__name__})")
    if not (np.isfinite(risk) and 0 < risk < 1):
        raise ValueError(f"risk must be {allowed}, got {risk!r}")
    return float(risk)


def check(risk, samples, goal):
    """A :class:`Risk`, or None without ``risk``; ValueError where it cannot apply."""
    if risk is None:
        return None
    measure = Risk(risk)
    if samples is None:
        raise ValueError(f"risk={risk!r} needs samples (a risk measure is taken over Monte Carlo draws): "
                         f"pass samples=N (and seed=S)")
    if goal != "target_loss":
        raise ValueError(f"risk needs the goal target_loss (minimise the risk of the objective), got goal {goal}: "
                         f"a budget under uncertainty is a chance constraint, which optimize does not solve")
    return measure


def choice_confidence(out, measure):
    """Add ``objective_risk`` and, per list-valued choice dim, ``best_<dim>`` and ``prob_best_<dim>``."""
    obj = out["objective"]
    feasible = out["feasible"].all("sample") if "sample" in out["feasible"].dims else out["feasible"]
    risk_obj = measure.reduce(obj).where(feasible)
    for v in DECISIONS:  # one decision for every draw: no sample dim (the same value in each, NaN where infeasible)
        if v in out and "sample" in out[v].dims:
            out[v] = out[v].max("sample").where(risk_obj.notnull()).assign_attrs(out[v].attrs)
    out["objective_risk"] = risk_obj.assign_attrs(
        units=obj.attrs.get("units", ""), long_name=f"objective: {measure.label} over the Monte Carlo samples",
        description=f"The {measure.label} of the objective over the samples at the chosen (N, D): what was minimised.")
    for dim in (d for d in CHOICE_DIMS if d in risk_obj.dims and risk_obj.sizes[d] > 1):
        pick = risk_obj.fillna(np.inf).argmin(dim)
        per_sample = obj.fillna(np.inf)
        chosen = per_sample.isel({dim: pick})
        wins = (chosen <= per_sample.min(dim)).mean("sample")
        any_ok = feasible.any(dim)
        out[f"best_{dim}"] = xr.where(any_ok, out[dim].isel({dim: pick}).drop_vars(dim, errors="ignore"), "" if out[dim].dtype.kind in "US" else np.nan)
        out[f"best_{dim}"].attrs.update(units="", long_name=f"{dim} with the least {measure.label} objective",
                                        description=f"The option of {dim} whose optimum has the least {measure.label} objective.")
        out[f"prob_best_{dim}"] = wins.where(any_ok).assign_attrs(
            units="1", long_name=f"P(best_{dim} is the best {dim})",
            description=f"Share of the paired Monte Carlo samples in which best_{dim}, at its chosen (N, D), has the "
                        f"least objective of all {dim} options (each at its own chosen (N, D)).")
    return out
