r"""Symbolic derivation of the compute-optimal closed forms of the Chinchilla loss.

The closed forms used in :mod:`scalesim.models.scaling_laws` are derived here with sympy, so that
the tests can check the implementation against the derivation rather than against a second
hand-typed copy of the same formulas.

Problem (Hoffmann et al. 2022, Eq. 4, with C = 6 N D generalised to C = k N D):

.. math:: \min_{N, D}\; L(N, D) = E + A N^{-\alpha} + B D^{-\beta}
          \quad\text{subject to}\quad C = k N D

Steps of :func:`chinchilla_closed_forms`:

1. substitute the constraint, D = C/(k N), so that L depends on N only;
2. solve dL/dN = 0 for N: N_opt(C) (sympy returns the single positive root); the Lagrange
   stationarity condition alpha A N^-alpha = beta B D^-beta is returned for checking;
3. D_opt = C/(k N_opt) and L_opt = L(N_opt, D_opt);
4. show L_opt - E = K u with u = (C/k)^(-alpha beta/(alpha+beta)) and K free of C;
5. solve E + K u = L* for u and invert u(C): C_min(L*) = k u^(-(alpha+beta)/(alpha beta)).

sympy is imported inside the functions: ``import scalesim`` never imports it.

References
----------
.. [1] Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models",
   arXiv:2203.15556, Eq. 4 and Appendix D.2.
.. [2] Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt", arXiv:2404.10102.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

__all__ = ["ClosedForms", "chinchilla_closed_forms", "lambdify_closed_forms"]

#: Argument order of the lambdified allocation functions (after the leading C or L*).
CONSTANT_ARGS = ("e", "a", "b", "alpha", "beta", "flop_per_param_token")


class ClosedForms(NamedTuple):
    """sympy expressions of the compute-optimal allocation (see module docstring).

    ``n_opt``, ``d_opt``, ``loss_opt`` are functions of ``symbols["flop"]`` (C) and the
    constants; ``flop_min`` of ``symbols["target_loss"]`` (L*). ``loss`` is L(N, D),
    ``stationarity`` is alpha A N^-alpha - beta B D^-beta (zero on the frontier) and
    ``loss_prefactor`` is K in L_opt = E + K (C/k)^(-alpha beta/(alpha+beta)).
    """

    n_opt: Any
    d_opt: Any
    loss_opt: Any
    flop_min: Any
    loss: Any
    stationarity: Any
    loss_prefactor: Any
    symbols: dict


def _simplify_exponents(expr):
    """Bring every exponent to a single fraction so that exponents equal to zero vanish."""
    import sympy as sp

    return expr.replace(
        lambda x: x.is_Pow, lambda x: sp.Pow(x.base, sp.factor(sp.together(x.exp)))
    )


@functools.cache
def chinchilla_closed_forms():
    """Derive N_opt(C), D_opt(C), L_opt(C) and C_min(L*) for the Chinchilla form.

    Returns
    -------
    ClosedForms
        sympy expressions; all symbols are declared positive (N, D, C, k, E, A, B, alpha,
        beta, L*), so L* > E must hold where C_min is evaluated.

    Raises
    ------
    RuntimeError
        If a derivation step does not give the expected unique solution (a sympy change).
    """
    import sympy as sp

    names = ("n_params", "n_tokens", "flop", "flop_per_param_token") + CONSTANT_ARGS[:5]
    n, d, c, k, e, a, b, alpha, beta = sp.symbols(
        "N D C k E A B alpha beta", positive=True
    )
    target = sp.Symbol("L_star", positive=True)
    symbols = dict(zip(names, (n, d, c, k, e, a, b, alpha, beta)), target_loss=target)

    loss = e + a * n**-alpha + b * d**-beta  # Hoffmann et al. 2022, Eq. 2
    on_budget = loss.subs(d, c / (k * n))  # step 1: constraint C = k N D
    roots = sp.solve(sp.Eq(sp.diff(on_budget, n), 0), n)  # step 2
    if len(roots) != 1:
        raise RuntimeError(f"expected one stationary point of L(N, C/(kN)), got {roots}")
    n_opt = sp.powsimp(sp.expand_power_base(roots[0], force=True), force=True)
    d_opt = sp.powsimp(sp.expand_power_base(c / (k * n_opt), force=True), force=True)  # step 3
    loss_opt = on_budget.subs(n, n_opt)

    u = sp.Symbol("u", positive=True)  # step 4: u = (C/k)^(-alpha beta/(alpha+beta))
    u_of_c = (c / k) ** (-alpha * beta / (alpha + beta))
    prefactor = (loss_opt - e) / u_of_c
    prefactor = _simplify_exponents(
        sp.powsimp(sp.expand_power_base(sp.expand(prefactor), force=True), force=True)
    )
    if c in prefactor.free_symbols or k in prefactor.free_symbols:
        raise RuntimeError(f"L_opt - E is not proportional to u(C): K = {prefactor}")
    u_star = sp.solve(sp.Eq(e + prefactor * u, target), u)  # step 5
    if len(u_star) != 1:
        raise RuntimeError(f"expected one solution of E + K u = L*, got {u_star}")
    flop_min = k * u_star[0] ** (-(alpha + beta) / (alpha * beta))

    stationarity = alpha * a * n**-alpha - beta * b * d**-beta
    return ClosedForms(
        n_opt=n_opt,
        d_opt=d_opt,
        loss_opt=e + prefactor * u_of_c,
        flop_min=flop_min,
        loss=loss,
        stationarity=stationarity,
        loss_prefactor=prefactor,
        symbols=symbols,
    )


@functools.cache
def lambdify_closed_forms():
    """numpy functions of the derived closed forms.

    Returns
    -------
    dict of callables
        ``"n_opt"``, ``"d_opt"``, ``"loss_opt"``: ``f(flop, e, a, b, alpha, beta,
        flop_per_param_token)`` with C in [FLOP], returning N [1], D [token], L [nats/token];
        ``"flop_min"``: ``f(target_loss, e, a, b, alpha, beta, flop_per_param_token)`` [FLOP];
        ``"stationarity"``: ``f(n_params, n_tokens, e, a, b, alpha, beta)`` [nats/token].
    """
    import sympy as sp

    forms = chinchilla_closed_forms()
    sym = forms.symbols
    constants = [sym[name] for name in CONSTANT_ARGS]

    def numeric(expr, *leading):
        return sp.lambdify([*leading, *constants], expr, modules="numpy")

    return {
        "n_opt": numeric(forms.n_opt, sym["flop"]),
        "d_opt": numeric(forms.d_opt, sym["flop"]),
        "loss_opt": numeric(forms.loss_opt, sym["flop"]),
        "flop_min": numeric(forms.flop_min, sym["target_loss"]),
        "stationarity": sp.lambdify(
            [sym["n_params"], sym["n_tokens"], *constants[:5]], forms.stationarity, "numpy"
        ),
    }
