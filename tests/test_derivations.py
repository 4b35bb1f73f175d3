"""Symbolic tests: the implemented closed forms equal the sympy derivation.

scalesim.derivations derives N_opt(C), D_opt(C), L_opt(C) and C_min(L*) from
L = E + A N^-alpha + B D^-beta under C = k N D; here the lambdified derivation is compared with
scalesim.models.scaling_laws for every published constant set of the Chinchilla form.
"""

import subprocess
import sys

import numpy as np
import pytest

from scalesim import derivations
from scalesim import laws as ss
from scalesim.models import scaling_laws as models

LAWS = ["hoffmann2022", "hoffmann2022_unrounded", "besiroglu2024", "muennighoff2023"]
FLOPS = np.array([1e18, 3e21, 5.76e23, 3.8e25, 1e28])


@pytest.fixture(scope="module")
def derived():
    return derivations.lambdify_closed_forms()


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("k", [6.0, 8.0])
def test_closed_forms_equal_sympy(derived, law, k):
    params = ss.get_law(law).chinchilla_params
    constants = [params[name] for name in ("e", "a", "b", "alpha", "beta")] + [k]
    implemented = models.compute_optimal_chinchilla_form(FLOPS, flop_per_param_token=k, **params)
    for key, value in zip(("n_opt", "d_opt", "loss_opt"), implemented):
        np.testing.assert_allclose(derived[key](FLOPS, *constants), value, rtol=1e-12)
    targets = params["e"] + np.array([0.05, 0.2, 0.5, 1.5])
    np.testing.assert_allclose(
        derived["flop_min"](targets, *constants),
        models.min_flop_for_loss_chinchilla_form(targets, flop_per_param_token=k, **params),
        rtol=1e-12,
    )


@pytest.mark.parametrize("law", LAWS)
def test_stationarity_holds_on_the_frontier(derived, law):
    # alpha A N^-alpha = beta B D^-beta at the optimum (Lagrange condition of Eq. 4)
    params = ss.get_law(law).chinchilla_params
    n, d, _ = models.compute_optimal_chinchilla_form(FLOPS, **params)
    residual = derived["stationarity"](n, d, *params.values())
    scale = params["alpha"] * params["a"] * n ** -params["alpha"]
    np.testing.assert_allclose(residual / scale, 0.0, atol=1e-12)
    # and off the frontier it does not
    assert np.all(np.abs(derived["stationarity"](2 * n, d / 2, *params.values()) / scale) > 1e-3)


@pytest.mark.parametrize("law", LAWS)
def test_round_trip_min_flop_of_optimal_loss(law):
    params = ss.get_law(law).chinchilla_params
    loss = models.compute_optimal_chinchilla_form(FLOPS, **params)[2]
    np.testing.assert_allclose(models.min_flop_for_loss_chinchilla_form(loss, **params), FLOPS,
                               rtol=1e-12)  # fmt: skip


def test_derivation_structure():
    import sympy as sp

    forms = derivations.chinchilla_closed_forms()
    s = forms.symbols
    c, k, alpha, beta = s["flop"], s["flop_per_param_token"], s["alpha"], s["beta"]
    # N_opt D_opt = C/k exactly, and N_opt grows as C^(beta/(alpha+beta))
    assert sp.simplify(sp.powsimp(forms.n_opt * forms.d_opt, force=True) - c / k) == 0
    exponent = sp.simplify(c * sp.diff(forms.n_opt, c) / forms.n_opt)
    assert sp.simplify(exponent - beta / (alpha + beta)) == 0
    # K does not depend on C or k, and the derivative of L along the budget vanishes at N_opt
    assert not ({c, k} & forms.loss_prefactor.free_symbols)
    on_budget = forms.loss.subs(s["n_tokens"], c / (k * s["n_params"]))
    slope = sp.diff(on_budget, s["n_params"]).subs(s["n_params"], forms.n_opt)
    values = {c: 5.76e23, k: 6, s["e"]: 1.69, s["a"]: 406.4, s["b"]: 410.7, alpha: 0.34,
              beta: 0.28}  # fmt: skip
    assert abs(float(slope.subs(values))) < 1e-25


def test_import_scalesim_does_not_import_sympy():
    code = ("import sys, scalesim, scalesim.laws, scalesim.derivations; "
            "print('sympy' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
