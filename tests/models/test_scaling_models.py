"""Tests for scalesim.models.scaling_laws: invariants, numerics, parity, errors and layering.

Published numbers (the sheet's tables, Hoffmann Table 3, Muennighoff's tables) are pinned in
tests/test_scaling.py through the registry; here the constants are typed in directly so that
the model layer is tested on its own.
"""

import ast
import math
import pathlib

import numpy as np
import pytest
import xarray as xr

from scalesim.models import scaling_laws as m

# Hoffmann et al. 2022 Eq. 10 (rounded) and the Muennighoff et al. 2023 C4 fit (datablations
# README), typed in from reference/scaling_laws.md 1.2 and 1.5.
HOFFMANN = dict(e=1.69, a=406.4, b=410.7, alpha=0.34, beta=0.28)
MUENNIGHOFF = dict(
    e=math.exp(0.6254804),
    a=math.exp(6.255414),
    b=math.exp(7.3049974),
    alpha=0.3526596,
    beta=0.3526596,
    r_d_star=15.387756,
    r_n_star=5.309743,
)
MUENNIGHOFF_CHINCHILLA = {k: MUENNIGHOFF[k] for k in ("e", "a", "b", "alpha", "beta")}
KAPLAN = dict(n_c=6.4e13, d_c=1.8e13, alpha_n=0.076, alpha_d=0.103)


# --- invariants -----------------------------------------------------------------------------------


def test_chinchilla_loss_is_eq2_and_monotone():
    n = np.logspace(7, 12, 6)
    d = np.logspace(9, 14, 6)
    expected = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
    np.testing.assert_allclose(m.loss_chinchilla_form(n, d, **HOFFMANN), expected, rtol=1e-15)
    grid = m.loss_chinchilla_form(n[:, None], d[None, :], **HOFFMANN)
    assert (np.diff(grid, axis=0) < 0).all() and (np.diff(grid, axis=1) < 0).all()
    assert (grid > HOFFMANN["e"]).all()


def test_kaplan_loss_limits():
    # Eq. 1.5 tends to L(N) = (N_c/N)^alpha_N as D -> inf and L(D) = (D_c/D)^alpha_D as N -> inf
    n, d = 1e9, 1e10
    assert m.loss_kaplan2020(n, 1e40, **KAPLAN) == pytest.approx((6.4e13 / n) ** 0.076, rel=1e-9)
    assert m.loss_kaplan2020(1e60, d, **KAPLAN) == pytest.approx((1.8e13 / d) ** 0.103, rel=1e-9)


def test_chinchilla_allocation_lies_on_budget_and_minimises_loss():
    flop = np.logspace(18, 28, 11)
    for k in (6.0, 8.0):
        n, d, loss = m.compute_optimal_chinchilla_form(flop, flop_per_param_token=k, **HOFFMANN)
        np.testing.assert_allclose(n * d, flop / k, rtol=1e-13)
        np.testing.assert_allclose(loss, m.loss_chinchilla_form(n, d, **HOFFMANN), rtol=1e-13)
        for factor in (0.9, 1.1):  # moving along the iso-FLOP line raises the loss
            assert (m.loss_chinchilla_form(n * factor, d / factor, **HOFFMANN) > loss).all()
    assert (np.diff(m.compute_optimal_chinchilla_form(flop, **HOFFMANN)[2]) < 0).all()


def test_min_flop_inverts_optimal_loss_and_matches_iso_loss_curve():
    flop = np.logspace(19, 27, 9)
    n, d, loss = m.compute_optimal_chinchilla_form(flop, **HOFFMANN)
    np.testing.assert_allclose(
        m.min_flop_for_loss_chinchilla_form(loss, **HOFFMANN), flop, rtol=1e-12
    )
    # the optimum is the point of the iso-loss curve D(N) with D = D_opt at N = N_opt
    np.testing.assert_allclose(m.tokens_for_loss(n, loss, **HOFFMANN), d, rtol=1e-9)


def test_tokens_for_loss_round_trip_and_asymptote():
    target = 2.1
    n_min = m.min_params_for_loss(target, **HOFFMANN)
    assert n_min == pytest.approx((406.4 / (2.1 - 1.69)) ** (1 / 0.34), rel=1e-15)
    n = n_min * np.array([0.5, 1.0 - 1e-9, 1.001, 2.0, 100.0])
    d = m.tokens_for_loss(n, target, **HOFFMANN)
    assert np.isinf(d[:2]).all() and np.isfinite(d[2:]).all()
    np.testing.assert_allclose(m.loss_chinchilla_form(n[2:], d[2:], **HOFFMANN), target, rtol=1e-12)
    assert (np.diff(d[2:]) < 0).all()  # a bigger model needs fewer tokens


# --- Muennighoff ----------------------------------------------------------------------------------


def test_muennighoff_reduces_to_chinchilla_form_without_repetition():
    n, d = 1e9, 2e10  # N below N_opt(U_D): no excess parameters
    loss = m.loss_muennighoff2023(n, d, 1e12, **MUENNIGHOFF)
    assert loss == pytest.approx(m.loss_chinchilla_form(n, d, **MUENNIGHOFF_CHINCHILLA), rel=1e-15)
    assert m.effective_tokens_muennighoff2023(d, 5e10, r_d_star=15.4) == d


def test_muennighoff_effective_counts_saturate():
    u = 1e10
    d_eff = m.effective_tokens_muennighoff2023(u * np.array([1, 2, 1e4]), u, r_d_star=15.387756)
    assert d_eff[0] == u and u < d_eff[1] < 2 * u
    assert d_eff[2] == pytest.approx(u * (1 + 15.387756), rel=1e-12)
    frontier = {k: MUENNIGHOFF[k] for k in ("a", "b", "alpha", "beta")}
    n_eff = m.effective_params_muennighoff2023(1e15, u, r_n_star=5.309743, **frontier)
    # alpha = beta, so U_N = N_opt(U) = U / 19.6 (the constant D/N, printed to 3 figures:
    # half a unit is 2.6e-3 relative) and N' -> U_N (1 + R_N*) for N >> U_N
    assert n_eff / (u * (1 + 5.309743)) == pytest.approx(1 / 19.6, rel=2.6e-3)


def test_muennighoff_n_opt_of_unique_data_is_on_the_chinchilla_frontier():
    # U_N = N_opt(U_D) is the N whose compute-optimal token count equals U_D
    flop = 1e22
    n, d, _ = m.compute_optimal_chinchilla_form(flop, **MUENNIGHOFF_CHINCHILLA)
    n_eff = m.effective_params_muennighoff2023(
        np.array([n * (1 - 1e-12), n * 4]), d, r_n_star=5.309743,
        **{k: MUENNIGHOFF[k] for k in ("a", "b", "alpha", "beta")},
    )  # fmt: skip
    assert n_eff[0] == pytest.approx(n, rel=1e-9)  # up to N_opt(U_D): N' = N
    assert n_eff[1] < 4 * n  # beyond it: diminishing returns


@pytest.mark.parametrize("flop", [1e20, 1e22, 1e24])
@pytest.mark.parametrize("unique_fraction", [0.01, 0.1, 0.5])
def test_muennighoff_allocation_is_the_global_minimum_on_a_dense_grid(flop, unique_fraction):
    unique = unique_fraction * m.compute_optimal_chinchilla_form(flop, **MUENNIGHOFF_CHINCHILLA)[1]
    n, d, loss = m.compute_optimal_muennighoff2023(flop, unique, **MUENNIGHOFF)
    grid_n = np.logspace(0, np.log10(flop / 6), 200_001)
    grid_loss = m.loss_muennighoff2023(grid_n, flop / 6 / grid_n, unique, **MUENNIGHOFF)
    best = np.argmin(grid_loss)
    assert loss <= grid_loss[best] + 1e-12
    assert n == pytest.approx(grid_n[best], rel=2e-4)  # grid spacing is 1.3e-4 in log10
    assert n * d == pytest.approx(flop / 6, rel=1e-12)
    # the loss is unimodal along the line: one sign change of its slope
    slope_sign = np.sign(np.diff(grid_loss))
    assert np.count_nonzero(np.diff(slope_sign[slope_sign != 0])) == 1


def test_muennighoff_allocation_with_ample_data_is_the_closed_form():
    flop = np.array([1e20, 1e23])
    closed = m.compute_optimal_chinchilla_form(flop, **MUENNIGHOFF_CHINCHILLA)
    numeric = m.compute_optimal_muennighoff2023(flop, 1e3 * closed[1], **MUENNIGHOFF)
    for got, expected in zip(numeric, closed):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


# --- numerical minimiser --------------------------------------------------------------------------


def test_golden_section_finds_each_minimum_of_a_vectorised_function():
    centres = np.array([-3.0, 0.25, 7.5])
    x, fx = m.golden_section_minimize(lambda x: (x - centres) ** 2 + 1.0, -10.0, 10.0)
    np.testing.assert_allclose(x, centres, atol=1e-7)
    np.testing.assert_allclose(fx, 1.0, rtol=1e-14)


def test_golden_section_log_space_keeps_dataarray_dims():
    scale = xr.DataArray([1e3, 1e9, 1e15], dims="s")
    x, fx = m.golden_section_minimize(
        lambda x: np.log(x / scale) ** 2, 1.0, 1e20, log_space=True, n_iter=80
    )
    assert isinstance(x, xr.DataArray) and x.dims == ("s",)
    np.testing.assert_allclose(x.values, scale.values, rtol=1e-6)


def test_golden_section_stays_in_bracket_for_monotone_function():
    x, _ = m.golden_section_minimize(lambda x: x, np.array([1.0, 2.0]), np.array([3.0, 5.0]))
    np.testing.assert_allclose(x, [1.0, 2.0], atol=1e-12)


def test_kaplan_allocation_matches_its_analytic_stationary_point():
    flop = np.logspace(18, 28, 6)
    n, d, loss = m.compute_optimal_kaplan2020(flop, **KAPLAN)
    p = 0.076 / 0.103
    n_star = (p * 6.4e13**p / (6 * 1.8e13 / flop)) ** (1 / (1 + p))
    np.testing.assert_allclose(n, n_star, rtol=1e-6)
    np.testing.assert_allclose(loss, m.loss_kaplan2020(n, d, **KAPLAN), rtol=1e-14)
    exponent = np.polyfit(np.log(flop), np.log(n), 1)[0]
    assert exponent == pytest.approx(1 / (1 + p), rel=1e-6)  # 0.575, not Kaplan's 0.73


# --- parity: scalar == array == DataArray == Python loop ------------------------------------------

CASES = [
    ("loss_chinchilla_form", (3e9, 6e10), HOFFMANN),
    ("loss_kaplan2020", (3e9, 6e10), KAPLAN),
    ("loss_muennighoff2023", (3e9, 6e11, 2e10), MUENNIGHOFF),
    ("effective_tokens_muennighoff2023", (6e11, 2e10), {"r_d_star": 15.387756}),
    ("compute_optimal_chinchilla_form", (1e23,), HOFFMANN),
    ("compute_optimal_kaplan2020", (1e23,), KAPLAN),
    ("compute_optimal_muennighoff2023", (1e23, 5e10), MUENNIGHOFF),
    ("min_flop_for_loss_chinchilla_form", (2.05,), HOFFMANN),
    ("tokens_for_loss", (3e9, 2.3), HOFFMANN),
    ("min_params_for_loss", (2.3,), HOFFMANN),
]


def _as_rows(out):
    """Stack a function's output(s) into an array of shape (n_outputs, ...)."""
    return np.array([np.asarray(o, float) for o in (out if isinstance(out, tuple) else (out,))])


#: The numerical allocations agree to the golden-section precision only: numpy's array and
#: scalar pow/exp may differ in the last ulp, which flips comparisons in the flat valley (the
#: minimiser's docstring: x to ~sqrt(machine epsilon)). Closed forms agree to rounding.
NUMERIC = {"compute_optimal_kaplan2020", "compute_optimal_muennighoff2023"}


@pytest.mark.parametrize(("name", "args", "constants"), CASES, ids=[c[0] for c in CASES])
def test_parity(name, args, constants):
    fn = getattr(m, name)
    rtol = 1e-7 if name in NUMERIC else 1e-14
    first, rest = args[0] * np.array([0.9, 1.0, 1.1]), args[1:]  # vary the first argument
    array_out = _as_rows(fn(first, *rest, **constants))
    loop_out = np.stack([_as_rows(fn(float(v), *rest, **constants)) for v in first], axis=-1)
    scalar_out = _as_rows(fn(first[1], *rest, **constants))
    np.testing.assert_allclose(loop_out, array_out, rtol=rtol)
    np.testing.assert_allclose(scalar_out, array_out[:, 1], rtol=rtol)
    da_out = fn(xr.DataArray(first, dims="x"), *rest, **constants)
    for out in da_out if isinstance(da_out, tuple) else (da_out,):
        assert isinstance(out, xr.DataArray) and out.dims == ("x",)
    np.testing.assert_allclose(_as_rows(da_out), array_out, rtol=rtol)


def test_inputs_are_not_mutated():
    n = np.array([1e9, 2e9])
    before = n.copy()
    m.loss_chinchilla_form(n, n * 20, **HOFFMANN)
    m.compute_optimal_kaplan2020(n * 1e12, **KAPLAN)
    np.testing.assert_array_equal(n, before)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [1.69, 1.5, np.array([2.0, 1.6])])
def test_target_at_or_below_e_raises_naming_value_and_e(target):
    for fn in (m.min_flop_for_loss_chinchilla_form, m.min_params_for_loss):
        with pytest.raises(ValueError, match=r"target_loss.*<= E=1\.69") as info:
            fn(target, **HOFFMANN)
        assert str(float(np.min(target))) in str(info.value)
    with pytest.raises(ValueError, match="target_loss"):
        m.tokens_for_loss(1e9, target, **HOFFMANN)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: m.loss_chinchilla_form(-1e9, 1e10, **HOFFMANN), "n_params"),
        (lambda: m.loss_chinchilla_form(1e9, 0.0, **HOFFMANN), "n_tokens"),
        (lambda: m.loss_chinchilla_form(1e9, 1e10, **{**HOFFMANN, "alpha": -0.3}), "alpha"),
        (lambda: m.compute_optimal_chinchilla_form(-1e23, **HOFFMANN), "flop"),
        (lambda: m.compute_optimal_chinchilla_form(np.nan, **HOFFMANN), "flop"),
        (lambda: m.loss_muennighoff2023(1e9, 1e10, -5.0, **MUENNIGHOFF), "unique_tokens"),
        (lambda: m.compute_optimal_kaplan2020(1e23, **{**KAPLAN, "d_c": 0}), "d_c"),
        (lambda: m.golden_section_minimize(np.square, 1.0, 1.0), "hi must be above lo"),
        (lambda: m.golden_section_minimize(np.square, -1.0, 1.0, log_space=True), "lo"),
        (lambda: m.golden_section_minimize(np.square, 0.0, 1.0, n_iter=0), "n_iter"),
    ],
)
def test_invalid_inputs_raise_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


# --- contracts ------------------------------------------------------------------------------------


def test_model_layer_imports_only_numpy_scipy_and_scalesim_models():
    source = pathlib.Path(m.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module if node.module.startswith("scalesim") else
                         node.module.split(".")[0])  # fmt: skip
    allowed = {"__future__", "numpy", "scipy", "scalesim.models._checks"}
    assert imported <= allowed, imported - allowed
