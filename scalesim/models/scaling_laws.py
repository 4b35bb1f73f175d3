r"""Loss scaling laws L(N, D), compute-optimal allocation and its inverse.

Three published functional forms sit side by side, each named after its source:

* the Chinchilla form E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2), used with the
  constants of Hoffmann 2022, Besiroglu et al. 2024 and Muennighoff et al. 2023;
* Kaplan et al. 2020, Eq. 1.5 (non-embedding N, no irreducible term);
* the data-constrained form of Muennighoff et al. 2023, which replaces N and D by effective
  counts N', D' before the Chinchilla form.

The Chinchilla form has closed forms for the compute-optimal allocation under C = k N D and its
inverse, the minimum compute for a loss (derived with sympy in :mod:`scalesim.derivations`).
Laws without a closed form are minimised along the iso-FLOP line with
:func:`golden_section_minimize`, a vectorised bounded 1-D minimiser.

Conventions. Every function takes scalars, numpy arrays or ``xarray.DataArray`` (only numpy
ufuncs and arithmetic touch the values, so DataArray dims survive) and broadcasts. N is in
parameters [1], D in tokens [token], C in [FLOP], losses in [nats/token]. The *Chinchilla-form
constants* are the keyword arguments ``e`` (E [nats/token], >= 0), ``a``, ``b`` (A, B
[nats/token], > 0) and ``alpha``, ``beta`` ([1], > 0); ``flop_per_param_token`` is k in
C = k N D [FLOP/(param token)], > 0, default 6 (Hoffmann et al. 2022, Sec. 3.3).

References: Hoffmann et al. 2022, arXiv:2203.15556; Kaplan et al. 2020, arXiv:2001.08361;
Muennighoff et al. 2023, arXiv:2305.16264; Besiroglu et al. 2024, arXiv:2404.10102.
"""

from __future__ import annotations

import numpy as np

from scalesim.models._checks import check_above, check_finite, check_positive

__all__ = [
    "compute_optimal_chinchilla_form",
    "compute_optimal_iso_flop",
    "compute_optimal_kaplan2020",
    "compute_optimal_muennighoff2023",
    "effective_params_muennighoff2023",
    "effective_tokens_muennighoff2023",
    "golden_section_minimize",
    "loss_chinchilla_form",
    "loss_kaplan2020",
    "loss_muennighoff2023",
    "min_flop_for_loss_chinchilla_form",
    "min_params_for_loss",
    "tokens_for_loss",
]

#: 1/phi = (sqrt(5) - 1)/2, the golden-section bracket reduction per iteration.
_INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0


def _float(x):
    """Promote to float without dropping DataArray dims (``x * 1.0``, never ``np.asarray``)."""
    return x * 1.0


def _check_all_positive(**values):
    for name, value in values.items():
        check_positive(name, value)


def _check_chinchilla(e, a, b, alpha, beta):
    check_positive("e", e, allow_zero=True)
    _check_all_positive(a=a, b=b, alpha=alpha, beta=beta)


def _check_target_loss(target_loss, e):
    """Raise unless every target loss lies strictly above the irreducible loss E."""
    check_finite("target_loss", target_loss)
    check_above("target_loss", target_loss, e, floor_name="E", floor_description="the irreducible loss E of the law")


def _frontier_g(a, b, alpha, beta):
    # G = (alpha A / (beta B))^(1/(alpha+beta)), Hoffmann et al. 2022 Eq. 4
    return (alpha * a / (beta * b)) ** (1.0 / (alpha + beta))


def _loss_prefactor(a, b, alpha, beta):
    # K in L_opt(C) = E + K (C/k)^(-alpha beta/(alpha+beta)); K = A G^-alpha (alpha+beta)/beta
    return a * _frontier_g(a, b, alpha, beta) ** -alpha * (alpha + beta) / beta


# --- loss laws ---------------------------------------------------------------------------------


def loss_chinchilla_form(n_params, n_tokens, *, e, a, b, alpha, beta):
    r"""Loss of the Chinchilla parametric form (Hoffmann et al. 2022, Eq. 2).

    Parameters
    ----------
    n_params : array_like
        Parameter count N [1], > 0 (total parameters, embeddings included).
    n_tokens : array_like
        Training tokens D [token], > 0.
    e, a, b, alpha, beta : array_like
        Chinchilla-form constants (module docstring).

    Returns
    -------
    loss : array_like
        Predicted loss [nats/token].

    Notes
    -----
    .. math:: \hat L(N, D) = E + A N^{-\alpha} + B D^{-\beta}      \qquad (2)

    References
    ----------
    .. [1] Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models",
       arXiv:2203.15556.
    """
    _check_all_positive(n_params=n_params, n_tokens=n_tokens)
    _check_chinchilla(e, a, b, alpha, beta)
    return e + a * _float(n_params) ** -alpha + b * _float(n_tokens) ** -beta


def _loss_kaplan(n_params, n_tokens, n_c, d_c, alpha_n, alpha_d):
    return ((n_c / _float(n_params)) ** (alpha_n / alpha_d) + d_c / _float(n_tokens)) ** alpha_d


def loss_kaplan2020(n_params, n_tokens, *, n_c, d_c, alpha_n, alpha_d):
    r"""Loss of Kaplan et al. (2020), Eq. 1.5 (early-stopped loss at finite N and D).

    Parameters
    ----------
    n_params : array_like
        **Non-embedding** parameter count N [1], > 0.
    n_tokens : array_like
        Training tokens D [token], > 0 (GPT-2 BPE tokens of WebText2).
    n_c, d_c, alpha_n, alpha_d : array_like
        N_c [1], D_c [token], alpha_N, alpha_D [1], all > 0 (Table 2: 6.4e13, 1.8e13, 0.076,
        0.103).

    Returns
    -------
    loss : array_like
        Predicted test loss [nats/token].

    Notes
    -----
    .. math:: L(N, D) = \left[(N_c/N)^{\alpha_N/\alpha_D} + D_c/D\right]^{\alpha_D}  \qquad (1.5)

    No irreducible term: the loss tends to 0 as N and D grow, so do not use this law for
    targets near the entropy of text.

    References
    ----------
    .. [1] Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv:2001.08361,
       Eq. 1.5 and Table 2.
    """
    _check_all_positive(n_params=n_params, n_tokens=n_tokens)
    _check_all_positive(n_c=n_c, d_c=d_c, alpha_n=alpha_n, alpha_d=alpha_d)
    return _loss_kaplan(n_params, n_tokens, n_c, d_c, alpha_n, alpha_d)


def _effective(unique, repetitions, r_star):
    # U + U R* (1 - exp(-R/R*)), Muennighoff et al. 2023 Sec. 3.1
    return unique + unique * r_star * (1.0 - np.exp(-repetitions / r_star))


def effective_tokens_muennighoff2023(n_tokens, unique_tokens, *, r_d_star):
    r"""Effective data D' of repeated tokens (Muennighoff et al. 2023, Sec. 3.1).

    Parameters
    ----------
    n_tokens : array_like
        Training tokens D [token], > 0, repetitions included.
    unique_tokens : array_like
        Unique tokens available U [token], > 0; U_D = min(U, D) of them are seen.
    r_d_star : array_like
        Decay constant R_D* [1], > 0 (C4 fit: 15.387756).

    Returns
    -------
    n_tokens_effective : array_like
        D' [token]: D for one epoch or less, tending to U_D (1 + R_D*) after many epochs.

    Notes
    -----
    .. math:: D' = U_D + U_D R_D^* (1 - e^{-R_D/R_D^*}), \quad U_D = \min(U, D),
              \quad R_D = D/U_D - 1

    References
    ----------
    .. [1] Muennighoff et al. 2023, "Scaling Data-Constrained Language Models",
       arXiv:2305.16264, Sec. 3.1.
    """
    _check_all_positive(n_tokens=n_tokens, unique_tokens=unique_tokens, r_d_star=r_d_star)
    u_d = np.minimum(unique_tokens, _float(n_tokens))
    return _effective(u_d, n_tokens / u_d - 1.0, r_d_star)


def _effective_params(n_params, u_d, r_n_star, a, b, alpha, beta):
    g = _frontier_g(a, b, alpha, beta)
    u_n = np.minimum(_float(n_params), g * (g * u_d) ** (beta / alpha))  # min(N, N_opt(U_D))
    return _effective(u_n, n_params / u_n - 1.0, r_n_star)


def effective_params_muennighoff2023(n_params, unique_tokens, *, r_n_star, a, b, alpha, beta):
    r"""Effective parameters N' of excess parameters (Muennighoff et al. 2023, Sec. 3.1).

    Parameters
    ----------
    n_params : array_like
        Parameter count N [1], > 0.
    unique_tokens : array_like
        Unique tokens **seen**, U_D = min(U, D) [token], > 0.
    r_n_star : array_like
        Decay constant R_N* [1], > 0 (C4 fit: 5.309743).
    a, b, alpha, beta : array_like
        Chinchilla-form constants of the same fit; they define N_opt(U_D).

    Returns
    -------
    n_params_effective : array_like
        N' [1]: N up to N_opt(U_D), then saturating towards U_N (1 + R_N*).

    Notes
    -----
    .. math:: N' = U_N + U_N R_N^* (1 - e^{-R_N/R_N^*}), \quad
              U_N = \min(N, N_{opt}(U_D)), \quad R_N = N/U_N - 1

    N_opt(U_D) is the compute-optimal size whose optimal token count is U_D, computed as
    ``D_to_N`` in the datablations README: eliminating C/k between N_opt = G (C/k)^a and
    D_opt = G^-1 (C/k)^b (Hoffmann Eq. 4, same constants) gives N_opt(U_D) =
    G (G U_D)^(beta/alpha), G = (alpha A/(beta B))^(1/(alpha+beta)), independent of k.

    References
    ----------
    .. [1] Muennighoff et al. 2023, "Scaling Data-Constrained Language Models",
       arXiv:2305.16264, Sec. 3.1; github.com/huggingface/datablations, README "Parametric Fit".
    """
    _check_all_positive(n_params=n_params, unique_tokens=unique_tokens, r_n_star=r_n_star)
    _check_chinchilla(0.0, a, b, alpha, beta)
    return _effective_params(n_params, unique_tokens, r_n_star, a, b, alpha, beta)


def _loss_muennighoff(n_params, n_tokens, unique_tokens, e, a, b, alpha, beta, r_d_star, r_n_star):
    u_d = np.minimum(unique_tokens, _float(n_tokens))
    d_eff = _effective(u_d, n_tokens / u_d - 1.0, r_d_star)
    n_eff = _effective_params(n_params, u_d, r_n_star, a, b, alpha, beta)
    return e + a * n_eff**-alpha + b * d_eff**-beta


def loss_muennighoff2023(
    n_params, n_tokens, unique_tokens, *, e, a, b, alpha, beta, r_d_star, r_n_star
):
    r"""Data-constrained loss of Muennighoff et al. (2023), Sec. 3.1.

    Parameters
    ----------
    n_params, n_tokens : array_like
        Parameter count N [1] and training tokens D [token] (repetitions included), > 0.
    unique_tokens : array_like
        Unique tokens available U [token], > 0.
    e, a, b, alpha, beta : array_like
        Chinchilla-form constants (module docstring).
    r_d_star, r_n_star : array_like
        Decay constants R_D*, R_N* [1], > 0.

    Returns
    -------
    loss : array_like
        Predicted loss [nats/token].

    Notes
    -----
    .. math:: L = E + A N'^{-\alpha} + B D'^{-\beta}

    with D' from :func:`effective_tokens_muennighoff2023` and N' from
    :func:`effective_params_muennighoff2023` at U_D = min(U, D). Without repetition (U >= D,
    N <= N_opt(U_D)) it is the Chinchilla form.

    References
    ----------
    .. [1] Muennighoff et al. 2023, arXiv:2305.16264, Sec. 3.1; datablations README.
    """
    _check_all_positive(n_params=n_params, n_tokens=n_tokens, unique_tokens=unique_tokens)
    _check_chinchilla(e, a, b, alpha, beta)
    _check_all_positive(r_d_star=r_d_star, r_n_star=r_n_star)
    return _loss_muennighoff(
        n_params, n_tokens, unique_tokens, e, a, b, alpha, beta, r_d_star, r_n_star
    )


# --- closed forms for the Chinchilla form ------------------------------------------------------


def compute_optimal_chinchilla_form(flop, *, e, a, b, alpha, beta, flop_per_param_token=6.0):
    r"""Compute-optimal N, D and loss of the Chinchilla form (Hoffmann et al. 2022, Eq. 4).

    Parameters
    ----------
    flop : array_like
        Training compute C [FLOP], > 0.
    e, a, b, alpha, beta, flop_per_param_token : array_like
        Chinchilla-form constants and k (module docstring).

    Returns
    -------
    n_params, n_tokens, loss : array_like
        N_opt [1], D_opt [token] and L_opt [nats/token]; N_opt D_opt = C/k.

    Notes
    -----
    Minimising Eq. 2 subject to C = k N D (Eq. 4, with C/6 replaced by C/k):

    .. math::
        N_{opt} = G (C/k)^{\beta/(\alpha+\beta)}, \quad
        D_{opt} = G^{-1} (C/k)^{\alpha/(\alpha+\beta)}, \quad
        G = \left(\frac{\alpha A}{\beta B}\right)^{1/(\alpha+\beta)}

    .. math::
        L_{opt} = E + K (C/k)^{-\alpha\beta/(\alpha+\beta)}, \quad
        K = A G^{-\alpha} (\alpha+\beta)/\beta

    Derived and checked symbolically in :mod:`scalesim.derivations`.

    References
    ----------
    .. [1] Hoffmann et al. 2022, arXiv:2203.15556, Eq. 4.
    """
    _check_all_positive(flop=flop, flop_per_param_token=flop_per_param_token)
    _check_chinchilla(e, a, b, alpha, beta)
    x = _float(flop) / flop_per_param_token
    g = _frontier_g(a, b, alpha, beta)
    n_params = g * x ** (beta / (alpha + beta))
    n_tokens = x ** (alpha / (alpha + beta)) / g
    loss = e + _loss_prefactor(a, b, alpha, beta) * x ** (-alpha * beta / (alpha + beta))
    return n_params, n_tokens, loss


def min_flop_for_loss_chinchilla_form(
    target_loss, *, e, a, b, alpha, beta, flop_per_param_token=6.0
):
    r"""Minimum compute to reach ``target_loss`` with the Chinchilla form (inverse of Eq. 4).

    Parameters
    ----------
    target_loss : array_like
        Target loss L* [nats/token], > E.
    e, a, b, alpha, beta, flop_per_param_token : array_like
        Chinchilla-form constants and k (module docstring).

    Returns
    -------
    flop : array_like
        C_min(L*) [FLOP], reached at the compute-optimal allocation.

    Raises
    ------
    ValueError
        If any ``target_loss`` <= E: no finite compute reaches it.

    Notes
    -----
    Solving L_opt(C) = L* (see :func:`compute_optimal_chinchilla_form`):

    .. math:: C_{min}(L^*) = k \left(\frac{L^* - E}{K}\right)^{-(\alpha+\beta)/(\alpha\beta)}

    References
    ----------
    .. [1] Hoffmann et al. 2022, arXiv:2203.15556, Eq. 4; Besiroglu et al. 2024,
       arXiv:2404.10102 (``optimal_compute_from_reducible_loss`` in their notebook).
    """
    _check_chinchilla(e, a, b, alpha, beta)
    check_positive("flop_per_param_token", flop_per_param_token)
    _check_target_loss(target_loss, e)
    ratio = (target_loss - e) / _loss_prefactor(a, b, alpha, beta)
    return flop_per_param_token * ratio ** (-(alpha + beta) / (alpha * beta))


def min_params_for_loss(target_loss, *, e, a, alpha, b=None, beta=None):
    r"""Smallest model that reaches ``target_loss`` with unlimited data (Chinchilla form).

    Parameters
    ----------
    target_loss : array_like
        Target loss L* [nats/token], > E.
    e, a, alpha : array_like
        Chinchilla-form constants (module docstring).
    b, beta : optional
        Ignored; accepted so that a law's whole parameter set can be passed.

    Returns
    -------
    n_params : array_like
        Asymptote N_min(L*) = (A/(L* - E))^(1/alpha) [1] (Eq. 2 with D -> infinity); a model
        of N <= N_min needs infinitely many tokens.
    """
    _check_all_positive(a=a, alpha=alpha)
    _check_target_loss(target_loss, e)
    return (a / (target_loss - e)) ** (1.0 / alpha)


def tokens_for_loss(n_params, target_loss, *, e, a, b, alpha, beta):
    r"""Tokens a model of N parameters needs to reach ``target_loss`` (iso-loss curve).

    Parameters
    ----------
    n_params : array_like
        Parameter count N [1], > 0.
    target_loss : array_like
        Target loss L* [nats/token], > E (else ValueError: no model reaches it).
    e, a, b, alpha, beta : array_like
        Chinchilla-form constants (module docstring).

    Returns
    -------
    n_tokens : array_like
        D on the iso-loss curve [token]; ``inf`` where N <= N_min(L*) of
        :func:`min_params_for_loss` (such a model never reaches L*). ``inf`` rather than NaN
        lets an optimiser treat those points as infinitely costly.

    Notes
    -----
    Eq. 2 of Hoffmann et al. 2022 solved for D (the 1-D reduction of Sardana et al. 2024,
    arXiv:2401.00448):

    .. math:: D(N) = \left(\frac{B}{L^* - E - A N^{-\alpha}}\right)^{1/\beta}
    """
    check_positive("n_params", n_params)
    _check_chinchilla(e, a, b, alpha, beta)
    _check_target_loss(target_loss, e)
    with np.errstate(divide="ignore"):
        reducible = np.maximum(target_loss - e - a * _float(n_params) ** -alpha, 0.0)
        return (b / reducible) ** (1.0 / beta)


# --- numerical allocation ----------------------------------------------------------------------


def golden_section_minimize(f, lo, hi, *, n_iter=64, log_space=False):
    r"""Minimise a unimodal function on [lo, hi], elementwise and vectorised.

    Parameters
    ----------
    f : callable
        ``f(x) -> y``: takes an array (or DataArray) of trial points and returns values that
        broadcast with it. It is called 2 ``n_iter`` + 1 times, each time on all elements at
        once (never once per element), and should not return NaN.
    lo, hi : array_like
        Bracket, broadcastable, finite, ``lo < hi`` (both > 0 with ``log_space``).
    n_iter : int, optional
        Iterations (default 64). The bracket shrinks by 1/phi = 0.618 per iteration, so 64
        leave 4e-14 of its width (2e-12 of a log-space bracket from 1 to 1e22). Near a smooth
        minimum, comparing values of f limits x to about sqrt(machine epsilon) ~ 1e-8
        relative anyway.
    log_space : bool, optional
        Search over log x (for scale quantities such as N); f still receives x.

    Returns
    -------
    x, fx : array_like
        Minimiser and f(x), with the broadcast shape of lo, hi and f's values.

    Notes
    -----
    Golden-section search (Kiefer 1953, Proc. AMS 4(3) 502; Press et al., Numerical Recipes
    3rd ed., Sec. 10.2): with c = b - (b - a)/phi and d = a + (b - a)/phi the bracket [a, b]
    becomes [a, d] where f(c) < f(d), else [c, b]. Both interior points are evaluated each
    iteration (2 evaluations instead of 1) so that the update is arithmetic on the bounds
    only, which keeps DataArray dims without ``np.where``. For a unimodal f it finds the
    global minimum in the bracket, otherwise a local one.
    """
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    check_finite("lo", lo)
    check_finite("hi", hi)
    if log_space:
        _check_all_positive(lo=lo, hi=hi)
        lo, hi = np.log(lo), np.log(hi)

        def objective(u):
            return f(np.exp(u))
    else:
        objective = f
    check_above("hi", hi, lo, floor_name="lo", floor_description="lo" + (" (in log space)" if log_space else ""))
    left, right = _float(lo), _float(hi)
    for _ in range(n_iter):
        step = _INV_PHI * (right - left)
        c, d = right - step, left + step
        go_left = np.less(objective(c), objective(d))  # the minimum lies in [left, d]
        right = right + (d - right) * go_left
        left = left + (c - left) * np.logical_not(go_left)
    x = 0.5 * (left + right)
    if log_space:
        x = np.exp(x)
    return x, f(x)


def compute_optimal_iso_flop(
    loss_fn, flop, *, flop_per_param_token=6.0, n_params_lo=1.0, n_params_hi=None, n_iter=64
):
    r"""Minimise ``loss_fn(N, D)`` along the iso-FLOP line C = k N D over log N.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(n_params, n_tokens) -> loss`` [nats/token], vectorised, unimodal on the line.
    flop : array_like
        Training compute C [FLOP], > 0.
    flop_per_param_token, n_iter : optional
        k (module docstring) and golden-section iterations (:func:`golden_section_minimize`).
    n_params_lo, n_params_hi : array_like, optional
        Bracket for N [1]; default [1, C/k] (from one parameter to one token).

    Returns
    -------
    n_params, n_tokens, loss : array_like
        N_opt [1], D_opt = C/(k N_opt) [token] and the loss there [nats/token].
    """
    _check_all_positive(flop=flop, flop_per_param_token=flop_per_param_token)
    n_d = _float(flop) / flop_per_param_token
    hi = n_d if n_params_hi is None else n_params_hi
    n_params, loss = golden_section_minimize(
        lambda n: loss_fn(n, n_d / n), n_params_lo, hi, n_iter=n_iter, log_space=True
    )
    return n_params, n_d / n_params, loss


def compute_optimal_kaplan2020(
    flop, *, n_c, d_c, alpha_n, alpha_d, flop_per_param_token=6.0, n_iter=64
):
    r"""Compute-optimal N, D and loss of Kaplan et al. 2020 Eq. 1.5 under C = k N D.

    Parameters
    ----------
    flop : array_like
        Training compute C [FLOP], > 0.
    n_c, d_c, alpha_n, alpha_d : array_like
        Constants of :func:`loss_kaplan2020`.
    flop_per_param_token, n_iter : optional
        k (module docstring) and golden-section iterations (:func:`golden_section_minimize`).

    Returns
    -------
    n_params, n_tokens, loss : array_like
        N_opt (non-embedding) [1], D_opt [token], L_opt [nats/token].

    Notes
    -----
    Minimised over log N in [1, C/k] with :func:`golden_section_minimize`. Along the line the
    bracket of Eq. 1.5 is c1 N^-p + c2 N (p = alpha_N/alpha_D, c1 = N_c^p, c2 = k D_c/C),
    convex in log N, so the minimum found is global; it lies at N = (p c1/c2)^(1/(1+p)), i.e.
    N_opt ~ C^0.575. That is **not** Kaplan's N ~ C^0.73 (Eq. 1.7), which comes from
    L(N, S_min) with early stopping and the critical batch size (Kaplan et al. 2020,
    arXiv:2001.08361, Sec. 6).
    """
    _check_all_positive(n_c=n_c, d_c=d_c, alpha_n=alpha_n, alpha_d=alpha_d)
    return compute_optimal_iso_flop(
        lambda n, d: _loss_kaplan(n, d, n_c, d_c, alpha_n, alpha_d),
        flop,
        flop_per_param_token=flop_per_param_token,
        n_iter=n_iter,
    )


def compute_optimal_muennighoff2023(
    flop, unique_tokens, *, e, a, b, alpha, beta, r_d_star, r_n_star,
    flop_per_param_token=6.0, n_iter=64,
):  # fmt: skip
    r"""Compute-optimal allocation with limited unique data (Muennighoff et al. 2023).

    Parameters
    ----------
    flop : array_like
        Training compute C [FLOP], > 0.
    unique_tokens : array_like
        Unique tokens available U [token], > 0.
    e, a, b, alpha, beta, r_d_star, r_n_star : array_like
        Constants of :func:`loss_muennighoff2023`.
    flop_per_param_token, n_iter : optional
        k (module docstring) and golden-section iterations (:func:`golden_section_minimize`).

    Returns
    -------
    n_params, n_tokens, loss : array_like
        N_opt [1], D_opt [token] (epochs = D_opt/U) and L_opt [nats/token].

    Notes
    -----
    The authors publish no closed form; their README grid-searches N within a factor 3 of a
    base point on the iso-FLOP line. Here the loss is minimised over log N in [1, C/k] with
    :func:`golden_section_minimize` (it is unimodal along the line; the tests check this on
    dense grids). With U >= D_opt of the unconstrained law the result equals
    :func:`compute_optimal_chinchilla_form` (arXiv:2305.16264, Sec. 3.1).
    """
    check_positive("unique_tokens", unique_tokens)
    _check_chinchilla(e, a, b, alpha, beta)
    _check_all_positive(r_d_star=r_d_star, r_n_star=r_n_star)
    constants = (e, a, b, alpha, beta, r_d_star, r_n_star)
    return compute_optimal_iso_flop(
        lambda n, d: _loss_muennighoff(n, d, unique_tokens, *constants),
        flop,
        flop_per_param_token=flop_per_param_token,
        n_iter=n_iter,
    )
