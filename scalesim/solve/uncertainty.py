"""Global sensitivity of a simulated output to the uncertain defaults: Sobol' indices and Morris screening.

Every default that :func:`scalesim.simulate` draws under ``samples=N`` is a triangular distribution
on its documented range (the structural utilisation: the empirical distribution of its calibration
residuals), indexed by one uniform per *kind* of input (``mfu``, ``chip_power_w``,
``pue``, ``grid_gco2e_per_kwh``, ...; :class:`scalesim.steps.Defaults`). Those uniforms are the
independent inputs of the sensitivity analysis: a design on the unit hypercube (SALib's Sobol'
sequence for Saltelli's scheme, or Morris trajectories) is passed to the chain as its uniforms
(:func:`scalesim.chain.simulation.run` ``draws=``), one design row per ``sample``, so the whole design
is one vectorised simulation. Indices on uniforms are the indices under the drawn
distributions, because each uniform maps to its input through a monotone inverse CDF.

Like SALib, the design (:func:`design`) and the analysis (:func:`analyse`) share only a ``problem``
description; the analysis is vectorised over every configuration (all dims but ``sample``), and the
Ishigami function's published indices pin it (``tests/test_uncertainty.py``).

SALib is an optional dependency (extra ``uncertainty``) because only this module needs it: the
simulator, its Monte Carlo and everything else run on numpy/scipy/xarray alone.

References
----------
.. [1] Saltelli, A. et al. 2010, "Variance based sensitivity analysis of model output. Design and
   estimator for the total sensitivity index", Comput. Phys. Commun. 181, 259-270,
   doi:10.1016/j.cpc.2009.09.018 (first-order estimator, Table 2 (b); total: Jansen, Table 2 (f)).
.. [2] Morris, M. D. 1991, "Factorial sampling plans for preliminary computational experiments",
   Technometrics 33, 161-174, doi:10.1080/00401706.1991.10484804; mu* from Campolongo, Cariboni,
   Saltelli 2007, Environ. Model. Softw. 22, 1509-1518, doi:10.1016/j.envsoft.2006.10.004.
.. [3] Herman, J. and Usher, W. 2017, "SALib: An open-source Python library for sensitivity
   analysis", JOSS 2(9), 97, doi:10.21105/joss.00097.
.. [4] Ishigami, T. and Homma, T. 1990, "An importance quantification technique in uncertainty
   analysis for computer models", Proc. ISUMA '90, 398-403, doi:10.1109/ISUMA.1990.151285.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import xarray as xr
from scipy.stats import norm

METHODS = ("sobol", "morris")
MORRIS_LEVELS = 4

#: Units and descriptions of the result's variables (attached once, at the end).
RESULT_VARIABLES = {
    "S1": ("1", "first-order Sobol' index", "share of the output variance due to this input alone (Saltelli 2010)"),
    "ST": ("1", "total Sobol' index", "share of the output variance involving this input, interactions included (Jansen)"),
    "S1_conf": ("1", "S1 confidence half-width", "bootstrap half-width of S1 at conf_level"),
    "ST_conf": ("1", "ST confidence half-width", "bootstrap half-width of ST at conf_level"),
    "mu_star": (None, "Morris mu*", "mean absolute elementary effect per unit of the input's quantile (Campolongo 2007)"),
    "sigma": (None, "Morris sigma", "standard deviation of the elementary effects: non-linearity or interactions"),
    "mu_star_conf": (None, "mu* confidence half-width", "bootstrap half-width of mu* at conf_level"),
}


def _salib():
    try:
        import SALib  # noqa: F401
        from SALib.sample import morris as morris_sample
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("scalesim.sensitivity needs SALib: pip install 'scalesim[uncertainty]' "
                          "(or pip install 'SALib>=1.4')") from exc
    try:
        from SALib.sample import sobol as sobol_sample
    except ImportError:  # pragma: no cover - SALib < 1.4.6
        from SALib.sample import saltelli as sobol_sample
    return sobol_sample, morris_sample


def _check_method_n(method, n):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be a whole number >= 2, got {n!r}")
    if method == "sobol" and n & (n - 1):
        raise ValueError(f"n must be a power of two for method='sobol' (Saltelli's scheme on a Sobol' sequence), "
                         f"got {n!r}; e.g. {1 << int(np.round(np.log2(n)))}")


def problem(names, bounds=None):
    """The SALib ``problem`` shared by :func:`design` and :func:`analyse` (unit bounds by default)."""
    names = list(names)
    return {"num_vars": len(names), "names": names, "bounds": bounds or [[0.0, 1.0]] * len(names)}


def design(prob, method="sobol", *, n=512, seed=0):
    """Design matrix ``X`` [shape (rows, num_vars)] on the problem's bounds.

    ``'sobol'``: Saltelli's scheme without second-order terms, ``n (k + 2)`` rows (``n`` a power of
    two). ``'morris'``: ``n`` trajectories of ``k + 1`` rows on a 4-level grid.
    """
    _check_method_n(method, n)
    sobol_sample, morris_sample = _salib()
    if method == "sobol":
        return sobol_sample.sample(prob, int(n), calc_second_order=False, seed=int(seed))
    return morris_sample.sample(prob, int(n), num_levels=MORRIS_LEVELS, seed=int(seed))


def analyse(prob, X, Y, method="sobol", *, conf_level=0.95, num_resamples=100, seed=0):
    """Sensitivity indices from a design ``X`` and outputs ``Y`` [..., rows], vectorised over ``...``.

    Returns ``{name: array [..., num_vars]}``: ``S1``, ``ST``, ``S1_conf``, ``ST_conf`` (Sobol') or
    ``mu_star``, ``sigma``, ``mu_star_conf`` (Morris; effects per unit of the unit-scaled input).

    Notes
    -----
    Sobol' (Saltelli et al. 2010, Table 2 (b) and (f)), with A, B the two base matrices and
    AB_i = A with column i from B, and V the variance of the outputs of A and B together::

        S1_i = mean(f(B) (f(AB_i) - f(A))) / V
        ST_i = mean((f(A) - f(AB_i))^2) / (2 V)

    Morris: elementary effect EE_i = (f(x + Δ e_i) - f(x)) / Δ with Δ = p / (2 (p - 1)) for p levels;
    mu* = mean |EE_i|, sigma = std(EE_i) over trajectories. Confidence half-widths are
    ``norm.ppf(0.5 + conf_level / 2)`` times the standard deviation of ``num_resamples`` bootstrap
    replicates (resampling base rows or trajectories, the same resamples for every configuration).
    Point estimates equal SALib's ``analyze`` functions (tested).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    Y = np.asarray(Y, dtype=float)
    k = prob["num_vars"]
    rng = np.random.default_rng(int(seed))
    z = norm.ppf(0.5 + conf_level / 2.0)
    if method == "sobol":
        step = k + 2
        if Y.shape[-1] % step:
            raise ValueError(f"Y has {Y.shape[-1]} rows; a Sobol' design of {k} inputs has a multiple of {step}")
        Y = Y - Y.mean(axis=-1, keepdims=True)  # centred, as SALib does: the S1 estimator is not shift-invariant
        blocks = Y.reshape(Y.shape[:-1] + (Y.shape[-1] // step, step))
        A, B, AB = blocks[..., 0], blocks[..., -1], blocks[..., 1:-1]
        r = rng.integers(0, A.shape[-1], size=(num_resamples, A.shape[-1]))
        out = {}
        for name, fn in (("S1", _first_order), ("ST", _total_order)):
            out[name] = fn(A, AB, B)
            boot = fn(A[..., r], AB[..., r, :], B[..., r])  # [..., resample, k]
            out[name + "_conf"] = z * np.std(boot, axis=-2, ddof=1)
        return out
    step = k + 1
    if Y.shape[-1] % step:
        raise ValueError(f"Y has {Y.shape[-1]} rows; Morris trajectories of {k} inputs have a multiple of {step}")
    n_traj = Y.shape[-1] // step
    dX = np.diff(np.asarray(X, float).reshape(n_traj, step, k), axis=1)  # one input moves per row
    which = np.argmax(np.abs(dX), axis=-1)  # [traj, k]: the input moved at each step
    sign = np.sign(np.take_along_axis(dX, which[..., None], axis=-1)[..., 0])
    delta = MORRIS_LEVELS / (2.0 * (MORRIS_LEVELS - 1))
    dY = np.diff(Y.reshape(Y.shape[:-1] + (n_traj, step)), axis=-1) * sign / delta
    ee = np.empty_like(dY)
    np.put_along_axis(ee, np.broadcast_to(which, dY.shape), dY, axis=-1)  # [..., traj, input]
    r = rng.integers(0, n_traj, size=(num_resamples, n_traj))
    boot = np.abs(ee[..., r, :]).mean(axis=-2)
    return {"mu_star": np.abs(ee).mean(axis=-2), "sigma": np.std(ee, axis=-2, ddof=1),
            "mu_star_conf": z * np.std(boot, axis=-2, ddof=1)}


def _variance(A, B):
    return np.var(np.concatenate([A, B], axis=-1), axis=-1)[..., None]


def _first_order(A, AB, B):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(B[..., None] * (AB - A[..., None]), axis=-2) / _variance(A, B)


def _total_order(A, AB, B):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.mean((A[..., None] - AB) ** 2, axis=-2) / _variance(A, B)


def sensitivity(output="co2e_t", *, method="sobol", n=512, seed=0, conf_level=0.95, num_resamples=100,
                **simulate_kwargs):
    """Sensitivity of a :func:`scalesim.simulate` output to every uncertain default, per configuration.

    Parameters
    ----------
    output : str
        Output variable of :func:`scalesim.simulate` (``'co2e_t'``, ``'chip_hours'``, ``'water_l'``...).
    method : {'sobol', 'morris'}
        Sobol' indices (Saltelli's design, ``n (k + 2)`` simulated samples) or Morris screening
        (``n`` trajectories, ``n (k + 1)`` samples), k = number of uncertain kinds of input.
    n : int
        Base samples (a power of two for ``'sobol'``) or trajectories (``'morris'``) [-].
    seed : int
        Seed of the design and of the bootstrap; the same seed gives the same numbers.
    conf_level : float
        Level of the bootstrap confidence half-widths [-].
    num_resamples : int
        Bootstrap replicates [-].
    **simulate_kwargs
        Inputs of :func:`scalesim.simulate` (not ``samples``/``seed``/``defaults``). Inputs given
        exactly (``pue=1.1``) are not uncertain and do not appear on ``input``.

    Returns
    -------
    xarray.Dataset
        ``S1``, ``ST``, ``S1_conf``, ``ST_conf`` [-] (Sobol') or ``mu_star``, ``sigma``,
        ``mu_star_conf`` [output units per unit quantile] (Morris) on the simulation's dims plus
        ``input`` (one entry per kind of uncertain input, as in ``attrs['distributions']`` of a
        Monte Carlo run); attrs hold the method, n, seed, output, evaluations and the distributions.

    Examples
    --------
    >>> s = sensitivity("co2e_t", n=256, n_params=70e9, n_tokens=2e12, hardware="h100",
    ...                 n_chips=2048, region=["FR", "US"])            # doctest: +SKIP
    >>> s.ST.sel(region="FR").to_series().sort_values()                # doctest: +SKIP
    """
    from scalesim.chain import simulation

    _check_method_n(method, n)
    allowed = set(inspect.signature(simulation.simulate).parameters) - {"samples", "seed", "defaults"}
    unknown = sorted(set(simulate_kwargs) - allowed)
    if unknown:
        raise ValueError(f"sensitivity: {unknown} not accepted; simulate inputs are {sorted(allowed)} "
                         f"(samples and seed come from the design)")
    if int(num_resamples) != num_resamples or num_resamples < 2:
        raise ValueError(f"num_resamples must be a whole number >= 2, got {num_resamples!r}")
    probe = simulation.run(dict(simulate_kwargs, samples=2, seed=int(seed)))
    if output not in probe.data_vars:
        raise ValueError(f"output must be an output variable of simulate, got {output!r}; "
                         f"have {sorted(probe.data_vars)}")
    kinds = list(json.loads(probe.attrs.get("distributions", "{}")))
    if not kinds or "sample" not in probe[output].dims:
        raise ValueError(f"output {output!r} depends on no uncertain default here (every input it uses was given)")
    prob = problem(kinds)
    X = design(prob, method, n=int(n), seed=int(seed))
    draws = {k: xr.DataArray(X[:, i], dims="sample") for i, k in enumerate(kinds)}
    ds = simulation.run(dict(simulate_kwargs, samples=X.shape[0], seed=int(seed)), draws=draws)
    y = ds[output].transpose(..., "sample")
    res = analyse(prob, X, y.values, method, conf_level=conf_level, num_resamples=int(num_resamples), seed=int(seed))
    dims = y.dims[:-1] + ("input",)
    coords = {c: v for c, v in y.coords.items() if "sample" not in v.dims}
    out = xr.Dataset({k: (dims, v) for k, v in res.items()}, coords={**coords, "input": kinds})
    for k in out.data_vars:
        units, long_name, desc = RESULT_VARIABLES[k]
        out[k].attrs.update(units=units if units is not None else f"{y.attrs.get('units', '')}",
                            long_name=long_name, description=desc)
    out.attrs.update(method=method, n=int(n), seed=int(seed), output=output, n_evaluations=int(X.shape[0]),
                     conf_level=float(conf_level), distributions=probe.attrs["distributions"],
                     inputs=ds.attrs.get("inputs", "{}"), scalesim_version=ds.attrs.get("scalesim_version", ""),
                     defaults_used=ds.attrs.get("defaults_used", "[]"), flop_model=ds.attrs.get("flop_model", ""),
                     design=("Saltelli (2010) on a scrambled Sobol' sequence, no second-order terms" if method == "sobol"
                             else f"Morris (1991) trajectories on {MORRIS_LEVELS} levels"))
    return out


def triangular_from_quantiles(q_low, mode, q_high, *, p=(0.10, 0.90)):
    """Support ``(low, high)`` of the triangular distribution with this ``mode`` whose ``p`` quantiles
    are ``q_low`` and ``q_high`` [same units as the inputs].

    A documented 10th-90th percentile range is a spread, not a support: a triangular distribution
    *on* [p10, p90] puts only about 60 % of its mass between the quantiles it was meant to carry.
    This is the triangular with the same mode and those quantiles (two equations in two unknowns,
    solved by :func:`scipy.optimize.fsolve` on the widths ``mode - low``, ``high - mode``).

    Notes
    -----
    With ``a < c < b``: F(x) = (x - a)^2 / ((b - a)(c - a)) for x <= c, and
    1 - F(x) = (b - x)^2 / ((b - a)(b - c)) for x >= c (Johnson, Kotz & Balakrishnan 1995, ch. 26).
    Requires ``q_low < mode < q_high``, and each quantile on its side of the mode.
    """
    from scipy.optimize import fsolve

    c, (pl, ph) = float(mode), p
    if not q_low < c < q_high:
        raise ValueError(f"need q_low < mode < q_high, got {q_low!r}, {mode!r}, {q_high!r}")

    def eqs(logw):
        a, b = c - np.exp(logw[0]), c + np.exp(logw[1])
        return [(q_low - a) ** 2 / ((b - a) * (c - a)) - pl, (b - q_high) ** 2 / ((b - a) * (b - c)) - (1 - ph)]

    w0 = np.log([2.0 * (c - q_low), 2.0 * (q_high - c)])
    w, info, ok, msg = fsolve(eqs, w0, full_output=True, xtol=1e-13)
    if ok != 1 or max(abs(np.asarray(eqs(w)))) > 1e-9:
        raise ValueError(f"no triangular with mode {c} has quantiles {p} at ({q_low}, {q_high}): {msg}")
    return float(c - np.exp(w[0])), float(c + np.exp(w[1]))
