"""Published scaling-law fits, chosen by name, and the allocations they imply.

``LAWS`` maps a key to a :class:`Law`: a published constant set with its functional form, the
parameter basis it was fitted on and its source. As in pvlib's parameter dicts, a refit gets a
new key and never edits an old one; :func:`register_law` adds user fits (published keys cannot
be overwritten) and :func:`fit_law` fits the Chinchilla form to (N, D, loss) observations with
Hoffmann et al.'s procedure.

The functions :func:`loss`, :func:`compute_optimal` and :func:`min_flop` dispatch on the law's
form to the pure models in :mod:`scalesim.models.scaling_laws`; they take scalars, numpy arrays and
``xarray.DataArray`` alike and broadcast. The default law is ``"besiroglu2024"`` (Epoch's
refit of Chinchilla Approach 3), as recommended in reference/scaling_laws.md Sec. 7.

Keys
----
``kaplan2020``
    Kaplan et al. 2020, arXiv:2001.08361, Eq. 1.5 with Table 2 fit; non-embedding N.
``hoffmann2022``
    Hoffmann et al. 2022, arXiv:2203.15556, Approach 3 rounded values of Eq. 10 (paper body).
``hoffmann2022_unrounded``
    The same fit with the unrounded values of the TeX source (the Epoch notebook's
    ``true_params``). Rounding moves N_opt at 5.76e23 FLOP from 40.4B to 32.2B.
``besiroglu2024``
    Besiroglu et al. 2024, arXiv:2404.10102, Epoch refit of Approach 3 with bootstrap SEs.
``muennighoff2023``
    Muennighoff et al. 2023, arXiv:2305.16264, data-constrained law fitted on C4 (datablations
    README "Parametric Fit"); reduces to the Chinchilla form when data are not repeated.
"""

from __future__ import annotations

import difflib
import itertools
import math
import types
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

import numpy as np

from scalesim.models import scaling_laws as _models
from scalesim.models._checks import check_positive

__all__ = [
    "DEFAULT_LAW",
    "LAWS",
    "TOKENS_PER_PARAM_HOFFMANN2022_APPROACH1",
    "Allocation",
    "Law",
    "compute_optimal",
    "compute_optimal_rule_of_thumb",
    "fit_law",
    "get_law",
    "loss",
    "min_flop",
    "register_law",
]

FORMS = ("chinchilla", "kaplan", "muennighoff")
N_PARAMS_BASES = ("total", "non-embedding")
_CHINCHILLA_KEYS = ("e", "a", "b", "alpha", "beta")
_FORM_KEYS = {
    "chinchilla": _CHINCHILLA_KEYS,
    "kaplan": ("n_c", "d_c", "alpha_n", "alpha_d"),
    "muennighoff": _CHINCHILLA_KEYS + ("r_d_star", "r_n_star"),
}

#: Tokens per parameter of the Approach-1 "20 tokens per parameter" heuristic (Hoffmann et al.
#: 2022, Table 3: D/N from 20.0 to 21.6 over 400M-10T parameters).
TOKENS_PER_PARAM_HOFFMANN2022_APPROACH1 = 20.0


@dataclass(frozen=True)
class Law:
    """A scaling-law constant set.

    Attributes
    ----------
    name : str
        Registry key.
    form : {"chinchilla", "kaplan", "muennighoff"}
        Functional form: Hoffmann et al. 2022 Eq. 2, Kaplan et al. 2020 Eq. 1.5, or
        Muennighoff et al. 2023 (Chinchilla form on effective N', D').
    params : Mapping[str, float]
        Constants, keyed as the keyword arguments of :mod:`scalesim.models.scaling_laws`
        (``e, a, b, alpha, beta`` [+ ``r_d_star, r_n_star``], or ``n_c, d_c, alpha_n,
        alpha_d``). Read-only.
    n_params_basis : {"total", "non-embedding"}
        Which parameter count N the law was fitted on.
    source : str
        Citation: authors, year, arXiv id, table or equation.
    se : Mapping[str, float] or None
        Standard errors of ``params`` where the source gives them (bootstrap for Besiroglu).
    notes : str
        Anything a user should know (dataset, tokenizer, fitting details).
    """

    name: str
    form: str
    params: Mapping[str, float]
    n_params_basis: str
    source: str
    se: Mapping[str, float] | None = None
    notes: str = field(default="", compare=False)

    def __hash__(self):
        return hash((self.name, self.form, tuple(sorted(self.params.items()))))

    def __post_init__(self):
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {self.form!r}")
        if self.n_params_basis not in N_PARAMS_BASES:
            raise ValueError(
                f"n_params_basis must be one of {N_PARAMS_BASES}, got {self.n_params_basis!r}"
            )
        expected = set(_FORM_KEYS[self.form])
        if set(self.params) != expected:
            raise ValueError(
                f"params of a {self.form!r} law must have keys {sorted(expected)}, "
                f"got {sorted(self.params)}"
            )
        object.__setattr__(self, "params", types.MappingProxyType(dict(self.params)))
        if self.se is not None:
            object.__setattr__(self, "se", types.MappingProxyType(dict(self.se)))

    @property
    def chinchilla_params(self):
        """The five Chinchilla-form constants ``e, a, b, alpha, beta`` (not for Kaplan)."""
        if self.form == "kaplan":
            raise ValueError(f"law {self.name!r} has the Kaplan form, not the Chinchilla form")
        return {k: self.params[k] for k in _CHINCHILLA_KEYS}


class Allocation(NamedTuple):
    """A training allocation: parameters [1], tokens [token], predicted loss [nats/token]."""

    n_params: Any
    n_tokens: Any
    loss: Any


def _chinchilla(e, a, b, alpha, beta):
    return {"e": e, "a": a, "b": b, "alpha": alpha, "beta": beta}


LAWS: dict[str, Law] = {
    "kaplan2020": Law(
        "kaplan2020",
        "kaplan",
        {"n_c": 6.4e13, "d_c": 1.8e13, "alpha_n": 0.076, "alpha_d": 0.103},
        "non-embedding",
        "Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', arXiv:2001.08361, "
        "Eq. 1.5 / 4.1, Table 2",
        notes="WebText2, GPT-2 BPE tokens; no irreducible term; not comparable with the "
        "Chinchilla-form laws (different N basis, data and tokenizer).",
    ),
    "hoffmann2022": Law(
        "hoffmann2022",
        "chinchilla",
        _chinchilla(1.69, 406.4, 410.7, 0.34, 0.28),
        "total",
        "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', "
        "arXiv:2203.15556, Approach 3, Eq. 10 (rounded values in the paper body)",
        notes="MassiveText; implies D/N ~ 93 at 5.76e23 FLOP, inconsistent with Approaches 1/2.",
    ),
    "hoffmann2022_unrounded": Law(
        "hoffmann2022_unrounded",
        "chinchilla",
        _chinchilla(
            math.exp(0.5267228), math.exp(6.0073404), math.exp(6.0179186), 0.33917084, 0.2849083
        ),
        "total",
        "Hoffmann et al. 2022, arXiv:2203.15556, Approach 3, unrounded values from the TeX "
        "source (E = exp(0.5267228), A = exp(6.0073404), B = exp(6.0179186)), as used in the "
        "Epoch notebook (epoch-research/analyzing-chinchilla)",
    ),
    "besiroglu2024": Law(
        "besiroglu2024",
        "chinchilla",
        _chinchilla(1.8172, 482.01, 2085.43, 0.3478, 0.3658),
        "total",
        "Besiroglu, Erdil, Barnett, You 2024, 'Chinchilla Scaling: A replication attempt', "
        "arXiv:2404.10102, Table 1 (refit of Hoffmann Approach 3 on 245 points from Fig. 4)",
        se={"e": 0.0257, "a": 124.52, "b": 1293.28, "alpha": 0.0154, "beta": 0.0206},
        notes="Bootstrap SEs (Epoch notebook cell 25). Log-space estimates: a = 6.17795598, "
        "b = 7.64273236, e = 0.59711196, alpha = 0.34781303, beta = 0.36585412.",
    ),
    "muennighoff2023": Law(
        "muennighoff2023",
        "muennighoff",
        {
            **_chinchilla(
                math.exp(0.6254804), math.exp(6.255414), math.exp(7.3049974), 0.3526596, 0.3526596
            ),
            "r_d_star": 15.387756,
            "r_n_star": 5.309743,
        },
        "total",
        "Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', "
        "arXiv:2305.16264, Sec. 3.1; C4 fit from github.com/huggingface/datablations README "
        "'Parametric Fit'",
        notes="C4, GPT-2 tokenizer. alpha = beta, so the unconstrained D/N is constant (19.6).",
    ),
}

#: Law used when none is named.
DEFAULT_LAW = "besiroglu2024"

#: The published keys; :func:`register_law` never replaces these.
_PUBLISHED = frozenset(LAWS)

#: Alternative spellings (those of reference/scaling_laws.md Sec. 1.10 among them).
_ALIASES = {
    "hoffmann2022_rounded": "hoffmann2022",
    "hoffmann2022_tex": "hoffmann2022_unrounded",
    "chinchilla": "hoffmann2022",
    "epoch2024": "besiroglu2024",
    "muennighoff2023_c4": "muennighoff2023",
}


def get_law(name):
    """Return the :class:`Law` registered as ``name`` (a ``Law`` is returned unchanged).

    Raises
    ------
    ValueError
        For an unknown name, listing the closest registered names.
    """
    if isinstance(name, Law):
        return name
    if not isinstance(name, str):
        raise ValueError(f"law must be a registered name or a Law, got {name!r}")
    key = _ALIASES.get(name.strip().lower(), name.strip())
    if key not in LAWS and key.lower() in LAWS:
        key = key.lower()
    if key in LAWS:
        return LAWS[key]
    lowered = {k.lower(): k for k in [*LAWS, *_ALIASES]}
    close = [lowered[k] for k in difflib.get_close_matches(name.lower(), lowered, n=3, cutoff=0.5)]
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown law {name!r}{hint} Known laws: {', '.join(sorted(LAWS))}")


def loss(n_params, n_tokens, law=DEFAULT_LAW, *, unique_tokens=None):
    """Predicted loss L(N, D) of a registered law.

    Parameters
    ----------
    n_params : array_like
        Parameters N [1], > 0, on the law's ``n_params_basis``.
    n_tokens : array_like
        Training tokens D [token], > 0.
    law : str or Law, optional
        Registry key or :class:`Law` (default ``"besiroglu2024"``).
    unique_tokens : array_like, optional
        Unique tokens U [token] for the ``muennighoff`` form; None means unlimited data.

    Returns
    -------
    loss : array_like
        [nats/token].
    """
    law = get_law(law)
    _check_unique_tokens(law, unique_tokens)
    if law.form == "kaplan":
        return _models.loss_kaplan2020(n_params, n_tokens, **law.params)
    if unique_tokens is None:
        return _models.loss_chinchilla_form(n_params, n_tokens, **law.chinchilla_params)
    return _models.loss_muennighoff2023(n_params, n_tokens, unique_tokens, **law.params)


def compute_optimal(flop, law=DEFAULT_LAW, *, unique_tokens=None, flop_per_param_token=6.0):
    """Loss-minimising allocation of a compute budget, C = k N D.

    Parameters
    ----------
    flop : array_like
        Training compute C [FLOP], > 0.
    law : str or Law, optional
        Registry key or :class:`Law` (default ``"besiroglu2024"``).
    unique_tokens : array_like, optional
        Unique tokens U [token] for the ``muennighoff`` form; None means unlimited data.
    flop_per_param_token : array_like, optional
        k [FLOP/(param token)], default 6.

    Returns
    -------
    Allocation
        ``(n_params [1], n_tokens [token], loss [nats/token])``.

    Notes
    -----
    Chinchilla form (and Muennighoff without ``unique_tokens``): the closed form of Hoffmann
    et al. 2022 Eq. 4 (:func:`scalesim.models.scaling_laws.compute_optimal_chinchilla_form`).
    Kaplan form and Muennighoff with limited data: golden-section minimisation of the loss over
    log N along the iso-FLOP line.
    """
    law = get_law(law)
    _check_unique_tokens(law, unique_tokens)
    k = flop_per_param_token
    if law.form == "kaplan":
        result = _models.compute_optimal_kaplan2020(flop, flop_per_param_token=k, **law.params)
    elif unique_tokens is None:
        result = _models.compute_optimal_chinchilla_form(
            flop, flop_per_param_token=k, **law.chinchilla_params
        )
    else:
        result = _models.compute_optimal_muennighoff2023(
            flop, unique_tokens, flop_per_param_token=k, **law.params
        )
    return Allocation(*result)


def min_flop(target_loss, law=DEFAULT_LAW, *, flop_per_param_token=6.0):
    """Minimum training compute C_min(L*) [FLOP] to reach ``target_loss`` [nats/token].

    Closed form of :func:`scalesim.models.scaling_laws.min_flop_for_loss_chinchilla_form` for the
    Chinchilla form and for Muennighoff with unlimited data. Raises ValueError for a target at
    or below the law's E, and for the Kaplan form (no irreducible term: scaling_laws.md Sec. 7,
    pitfall 5).
    """
    law = get_law(law)
    if law.form == "kaplan":
        raise ValueError(
            f"min_flop needs a law with an irreducible loss E (form 'chinchilla' or "
            f"'muennighoff'); {law.name!r} has the Kaplan form"
        )
    return _models.min_flop_for_loss_chinchilla_form(
        target_loss, flop_per_param_token=flop_per_param_token, **law.chinchilla_params
    )


def compute_optimal_rule_of_thumb(
    flop,
    tokens_per_param=TOKENS_PER_PARAM_HOFFMANN2022_APPROACH1,
    *,
    flop_per_param_token=6.0,
    law=None,
):
    """Law-independent allocation with a fixed tokens-per-parameter ratio.

    Parameters
    ----------
    flop : array_like
        Training compute C [FLOP], > 0.
    tokens_per_param : array_like, optional
        r = D/N [token/param], > 0. The default 20 is Hoffmann et al. 2022's Approach-1
        "20 tokens per parameter" heuristic (Table 3).
    flop_per_param_token : array_like, optional
        k [FLOP/(param token)], default 6.
    law : str or Law, optional
        If given, the law's loss at the allocation; otherwise ``loss`` is None.

    Returns
    -------
    Allocation
        N = sqrt(C/(k r)) [1], D = r N [token], loss [nats/token] or None.

    Notes
    -----
    From C = k N D with D = r N. With k = 6, r = 20: N = sqrt(C/120). Table 3 of Hoffmann et
    al. 2022 has D/N rising from 20.0 to 21.6, so the rule departs from it by up to ~8% in D.
    """
    check_positive("flop", flop)
    check_positive("tokens_per_param", tokens_per_param)
    check_positive("flop_per_param_token", flop_per_param_token)
    n_params = np.sqrt(flop / (flop_per_param_token * tokens_per_param))
    n_tokens = tokens_per_param * n_params
    return Allocation(n_params, n_tokens, None if law is None else loss(n_params, n_tokens, law))


def _check_unique_tokens(law, unique_tokens):
    if unique_tokens is not None and law.form != "muennighoff":
        raise ValueError(
            f"unique_tokens applies only to laws of form 'muennighoff' (e.g. "
            f"'muennighoff2023'); {law.name!r} has form {law.form!r}"
        )


def register_law(
    name, *, e, a, b, alpha, beta, source, n_params_basis="total", overwrite=False, notes=""
):
    """Register a user constant set of the Chinchilla form under ``name`` and return it.

    Parameters
    ----------
    name : str
        New key. Published keys (and their aliases) can never be replaced.
    e, a, b, alpha, beta : float
        E [nats/token] >= 0; A, B [nats/token] > 0; alpha, beta [1] > 0.
    source : str
        Where the numbers come from.
    n_params_basis : {"total", "non-embedding"}, optional
    overwrite : bool, optional
        Replace an existing *user* law of that name (default False: raise).
    notes : str, optional
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if name.strip().lower() in _PUBLISHED or name.strip().lower() in _ALIASES:
        raise ValueError(
            f"name {name!r} is a published law; a refit gets a new key, never edits an old one"
        )
    if name in LAWS and not overwrite:
        raise ValueError(f"law {name!r} is already registered; pass overwrite=True to replace it")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"source must be a non-empty citation string, got {source!r}")
    params = _chinchilla(*(float(v) for v in (e, a, b, alpha, beta)))
    _models._check_chinchilla(**params)
    law = Law(name, "chinchilla", params, n_params_basis, source, notes=notes)
    LAWS[name] = law
    return law


def _huber_objective(theta, log_n, log_d, log_loss, delta):
    """Sum over points of Huber_delta(LSE(a - alpha log N, b - beta log D, e) - log L).

    ``theta`` holds (a, b, e, alpha, beta), shape (5,) or (m, 5); returns the objective, shape
    (m,), and its analytic gradient, shape (m, 5).
    """
    theta = np.atleast_2d(theta)
    a, b, e, alpha, beta = (theta[:, i : i + 1] for i in range(5))
    terms = np.stack(np.broadcast_arrays(a - alpha * log_n, b - beta * log_d, e))
    top = terms.max(axis=0)
    weights = np.exp(terms - top)
    total = weights.sum(axis=0)
    weights /= total  # softmax: d LSE / d term
    residual = top + np.log(total) - log_loss
    small = np.abs(residual) <= delta
    huber = np.where(small, 0.5 * residual**2, delta * (np.abs(residual) - 0.5 * delta))
    slope = np.clip(residual, -delta, delta) * weights  # dHuber/dr * dr/dterm
    grad = np.stack(
        [slope[0].sum(-1), slope[1].sum(-1), slope[2].sum(-1),
         -(slope[0] * log_n).sum(-1), -(slope[1] * log_d).sum(-1)],
        axis=-1,
    )  # fmt: skip
    return huber.sum(axis=-1), grad


#: Hoffmann et al. 2022 (App. D.2) grid of initial values, in the log-space parameters.
_INIT_GRID = {
    "a": np.arange(0.0, 30.0, 5.0),
    "b": np.arange(0.0, 30.0, 5.0),
    "e": np.arange(-1.0, 1.5, 0.5),
    "alpha": np.arange(0.0, 2.5, 0.5),
    "beta": np.arange(0.0, 2.5, 0.5),
}


def fit_law(
    n_params, n_tokens, loss, *, name=None, register=False, overwrite=False, delta=1e-3,
    n_starts=8, source=None,
):  # fmt: skip
    r"""Fit the Chinchilla form to observed losses with Hoffmann et al.'s procedure.

    Parameters
    ----------
    n_params, n_tokens, loss : array_like
        Observations: parameters N [1], tokens D [token] and final loss [nats/token], all > 0
        and of one shape (at least 5 points).
    name : str, optional
        Key of the returned law (required with ``register``); default ``"fit"``.
    register, overwrite : bool, optional
        Also :func:`register_law` the result under ``name`` (replacing a user law of that name
        only with ``overwrite``).
    delta : float, optional
        Huber threshold on the log-loss residual (default 1e-3, as Hoffmann et al.).
    n_starts : int, optional
        Number of grid points, best first, from which L-BFGS-B is run.
    source : str, optional
        Citation stored in the law.

    Returns
    -------
    Law
        Form ``"chinchilla"``; ``notes`` record the objective and start.

    Notes
    -----
    Hoffmann et al. 2022, Eq. 3 (Sec. 3.3 and App. D.2): with A = e^a, B = e^b, E = e^e,

    .. math:: \min_{a,b,e,\alpha,\beta} \sum_i \mathrm{Huber}_\delta\big(
              \mathrm{LSE}(a - \alpha \log N_i, b - \beta \log D_i, e) - \log L_i\big)

    minimised with L-BFGS(-B, scipy) and an analytic gradient from a grid of initial values
    (a, b in 0..25 by 5; e in -1..1 by 0.5; alpha, beta in 0..2 by 0.5). The objective is the
    **sum** of Huber terms, not the mean whose poor scaling stopped Hoffmann's optimiser early
    (Besiroglu et al. 2024, arXiv:2404.10102). Departures, to stay fast: the objective is
    evaluated on the whole 4500-point grid at once, L-BFGS-B runs (to ftol 1e-12) only from
    the ``n_starts`` best grid points, and the best result is polished (to ftol 1e-15);
    alpha, beta are bounded below by 0.
    """
    from scipy.optimize import minimize

    obs = {"n_params": n_params, "n_tokens": n_tokens, "loss": loss}
    arrays = {}
    for key, value in obs.items():
        check_positive(key, value)
        arrays[key] = np.asarray(value, float).ravel()
    if len({v.size for v in arrays.values()}) != 1 or arrays["loss"].size < 5:
        raise ValueError(
            "n_params, n_tokens and loss must have one common size of at least 5, got sizes "
            + str({k: np.size(v) for k, v in obs.items()})
        )
    if register and name is None:
        raise ValueError("name is required when register=True")
    if isinstance(n_starts, bool) or not isinstance(n_starts, int) or n_starts < 1:
        raise ValueError(f"n_starts must be a positive integer, got {n_starts!r}")
    check_positive("delta", delta)
    log_n, log_d, log_l = (np.log(arrays[k]) for k in obs)
    grid = np.array(list(itertools.product(*_INIT_GRID.values())))
    grid_values, _ = _huber_objective(grid, log_n, log_d, log_l, delta)

    def run(start, ftol, gtol):
        return minimize(
            lambda t: tuple(v[0] for v in _huber_objective(t, log_n, log_d, log_l, delta)),
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(None, None)] * 3 + [(0.0, None)] * 2,
            options={"ftol": ftol, "gtol": gtol, "maxiter": 20000},
        )

    # every start to a moderate tolerance, then the best one polished to a tight tolerance
    starts = grid[np.argsort(grid_values)[:n_starts]]
    results = [run(start, 1e-12, 1e-9) for start in starts]
    best = int(np.argmin([r.fun for r in results]))
    result, start = run(results[best].x, 1e-15, 1e-12), starts[best]
    a, b, e, alpha, beta = result.x
    name = "fit" if name is None else name
    source = source or f"fit_law: Hoffmann et al. 2022 Eq. 3 procedure on {log_l.size} points"
    notes = f"Huber delta={delta:g}; objective {result.fun:.3g} from start {np.round(start, 2)}"
    params = dict(e=math.exp(e), a=math.exp(a), b=math.exp(b), alpha=float(alpha), beta=float(beta))
    if register:
        return register_law(name, source=source, notes=notes, overwrite=overwrite, **params)
    return Law(name, "chinchilla", params, "total", source, notes=notes)
