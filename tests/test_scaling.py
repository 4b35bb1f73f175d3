"""Tests for scalesim.laws: published numbers, the registry, fitting, parity and errors.

Published numbers are typed in from reference/scaling_laws.md (Sec. 1 and 2) with the source
of each. Unless a row says otherwise, the tolerance is half a unit in the last printed digit.
"""

import numpy as np
import pytest
import xarray as xr

from scalesim import laws as ss
from scalesim.models import scaling_laws as models


def half_unit(printed: str) -> float:
    """Half a unit in the last digit of a number printed as ``printed`` (e.g. '72.3' -> 0.05)."""
    mantissa = printed.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(printed.lower().split("e")[1]) if "e" in printed.lower() else 0
    return 0.5 * 10.0 ** (exponent - decimals)


# --- published: reference/scaling_laws.md Sec. 2, worked numbers ----------------------------------

#: law, N_opt [B], D_opt [T] and L_opt at C = 5.76e23, C_min(L* = 2.0) [FLOP], as printed.
WORKED = [
    ("hoffmann2022", "32.2", "2.98", "1.931", "1.11e23"),
    ("hoffmann2022_unrounded", "40.4", "2.38", "1.918", "7.8e22"),
    ("besiroglu2024", "72.3", "1.33", "1.974", "2.48e23"),
    ("muennighoff2023", "70.0", "1.37", "2.025", "1.56e24"),
]

#: Entries we reproduce only to one unit (not half a unit) of the last printed digit, with
#: the paper's constants (A = 482.01, B = 2085.43, E = 1.8172, alpha = 0.3478, beta = 0.3658):
#: N_opt = 72.249B (printed 72.3B, -0.07%) and C_min(2.0) = 2.4748e23 (printed 2.48e23,
#: -0.2%). No combination of these and Epoch's unrounded log-space estimates gives both
#: printed values, so the sheet's rounding is the likeliest cause.
ONE_UNIT = {("besiroglu2024", "n_params"), ("besiroglu2024", "min_flop")}


def _check_printed(law, what, value, printed, scale=1.0):
    tolerance = half_unit(printed) * (2.0 if (law, what) in ONE_UNIT else 1.0)
    assert abs(value / scale - float(printed)) <= tolerance, (law, what, value, printed)


@pytest.mark.parametrize(("law", "n_b", "d_t", "loss", "c_min"), WORKED, ids=[w[0] for w in WORKED])
def test_sheet_worked_numbers(law, n_b, d_t, loss, c_min):
    allocation = ss.compute_optimal(5.76e23, law)
    _check_printed(law, "n_params", allocation.n_params, n_b, 1e9)
    _check_printed(law, "n_tokens", allocation.n_tokens, d_t, 1e12)
    _check_printed(law, "loss", allocation.loss, loss)
    _check_printed(law, "min_flop", ss.min_flop(2.0, law), c_min)


@pytest.mark.parametrize(("flop", "printed"), [(5.76e23, "18.4"), (3.8e25, "16.5"), (1e26, "16.1")])
def test_besiroglu_tokens_per_param_drift(flop, printed):
    # reference/scaling_laws.md 1.3: D/N = 18.4 at 5.76e23, 16.5 at 3.8e25, 16.1 at 1e26
    allocation = ss.compute_optimal(flop, "besiroglu2024")
    assert abs(allocation.n_tokens / allocation.n_params - float(printed)) <= half_unit(printed)


@pytest.mark.parametrize(
    ("law", "printed"), [("hoffmann2022", "93"), ("hoffmann2022_unrounded", "59")]
)
def test_hoffmann_approach3_implies_large_token_ratio(law, printed):
    # reference/scaling_laws.md 1.2: at 5.76e23 the Approach-3 constants imply D/N ~ 93 or 59
    allocation = ss.compute_optimal(5.76e23, law)
    assert abs(allocation.n_tokens / allocation.n_params - float(printed)) <= half_unit(printed)


@pytest.mark.parametrize(
    ("law", "printed"), [("hoffmann2022_unrounded", "0.46"), ("besiroglu2024", "0.513")]
)
def test_allocation_exponent(law, printed):
    # Hoffmann Table 2, Approach 3: a = 0.46; Besiroglu 2024: a = beta/(alpha+beta) = 0.513.
    # (The rounded Eq. 10 constants give 0.28/0.62 = 0.452: rounding moves a.)
    flop = np.array([1e20, 1e26])
    n = ss.compute_optimal(flop, law).n_params
    exponent = np.log(n[1] / n[0]) / np.log(flop[1] / flop[0])
    assert abs(exponent - float(printed)) <= half_unit(printed)


# --- published: Hoffmann et al. 2022 Table 3 and the 20-tokens rule -------------------------------

#: Table 3 (Approach 1 projections, scaling_laws.md 1.2): nominal N, then FLOPs and tokens as
#: printed; last two columns: the tolerance the 20-tokens rule needs on that row, for N and D
#: (the observed deviation rounded up to 0.1%).
TABLE3 = [
    (400e6, "1.92e19", "8.0e9", 0.001, 0.001),
    (1e9, "1.21e20", "20.2e9", 0.005, 0.006),
    (10e9, "1.23e22", "205.1e9", 0.013, 0.013),
    (67e9, "5.76e23", "1.5e12", 0.035, 0.077),
    (175e9, "3.85e24", "3.7e12", 0.024, 0.032),
    (280e9, "9.90e24", "5.9e12", 0.026, 0.027),
    (520e9, "3.43e25", "11.0e12", 0.029, 0.028),
    (1e12, "1.27e26", "21.2e12", 0.029, 0.030),
    (10e12, "1.30e28", "216.2e12", 0.041, 0.038),
]
TABLE3_IDS = [f"{row[0]:.0e}" for row in TABLE3]


@pytest.mark.parametrize(("n", "flop", "tokens", "tol_n", "tol_d"), TABLE3, ids=TABLE3_IDS)
def test_table3_rule_of_thumb(n, flop, tokens, tol_n, tol_d):
    """N = sqrt(C/120), D = 20 N against Hoffmann et al. 2022 Table 3, row by row.

    The sheet says "within 1%": true for the first three rows only (up to 1.3% at 10B). Table 3's
    D/N rises from 20.0 to 21.6, so with C = 6ND the rule gives N larger by sqrt(r/20) and D
    smaller by sqrt(20/r): +2.4% to +4.1% in N and -2.7% to -3.8% in D from 175B up, and
    -7.7% in D on the 67B row, whose printed D is inconsistent with its FLOPs (see below).
    """
    rule = ss.compute_optimal_rule_of_thumb(float(flop))
    assert rule.n_tokens == pytest.approx(20 * rule.n_params, rel=1e-15)
    assert 6 * rule.n_params * rule.n_tokens == pytest.approx(float(flop), rel=1e-12)
    assert abs(rule.n_params / n - 1) <= tol_n
    assert abs(rule.n_tokens / float(tokens) - 1) <= tol_d
    assert rule.loss is None


@pytest.mark.parametrize(
    ("n", "flop", "tokens"),
    [row[:3] if row[0] != 67e9 else pytest.param(
        *row[:3], marks=pytest.mark.xfail(strict=True, reason="6 x 67B x 1.5T = 6.03e23, "
                                          "4.7% above the printed 5.76e23 (Gopher's budget)"))
     for row in TABLE3],
    ids=TABLE3_IDS,
)  # fmt: skip
def test_table3_rows_satisfy_6nd(n, flop, tokens):
    # N is nominal (exact); FLOPs and tokens carry half a unit of their last printed digit.
    tolerance = half_unit(flop) / float(flop) + half_unit(tokens) / float(tokens)
    assert abs(6 * n * float(tokens) / float(flop) - 1) <= tolerance


# --- published: Muennighoff et al. 2023 -----------------------------------------------------------


@pytest.mark.parametrize("flop", [1e18, 5.76e23, 1e28])
def test_muennighoff_unconstrained_ratio_is_constant(flop):
    # alpha = beta: D/N = 19.6 at every C (scaling_laws.md 1.5)
    allocation = ss.compute_optimal(flop, "muennighoff2023")
    assert abs(allocation.n_tokens / allocation.n_params - 19.6) <= half_unit("19.6")


#: Epochs -> effective unique-equivalent data D'/U and share of tokens seen D'/D
#: (scaling_laws.md 1.5, computed from the fit).
REPEATED = [(2, "1.97", "0.98"), (4, "3.73", "0.93"), (8, "6.62", "0.83"), (16, "10.6", "0.66"),
            (40, "15.2", "0.38")]  # fmt: skip


@pytest.mark.parametrize(("epochs", "effective", "share"), REPEATED)
def test_muennighoff_value_of_repeated_data(epochs, effective, share):
    params = ss.get_law("muennighoff2023").params
    unique = 1e10
    d_eff = models.effective_tokens_muennighoff2023(
        epochs * unique, unique, r_d_star=params["r_d_star"]
    )
    assert abs(d_eff / unique - float(effective)) <= half_unit(effective)
    assert abs(d_eff / (epochs * unique) - float(share)) <= half_unit(share)


def test_muennighoff_repeated_data_asymptote():
    r_d_star = ss.get_law("muennighoff2023").params["r_d_star"]
    d_eff = models.effective_tokens_muennighoff2023(1e8 * 1e10, 1e10, r_d_star=r_d_star)
    assert abs(d_eff / 1e10 - 16.39) <= half_unit("16.39")


@pytest.mark.parametrize(("n", "d", "printed"), [(6.34e9, 242e9, 2.2256440889984477),
                                                  (8.67e9, 178e9, 2.2269634075087867)])
def test_muennighoff_readme_loss_values(n, d, printed):
    # datablations README "Parametric Fit", Figure 1 (right) models, U = 25B; the README
    # prints 17 significant figures, so agreement to 1e-12 pins N_opt(U_D) = G (G U_D)^(b/a).
    assert ss.loss(n, d, "muennighoff2023", unique_tokens=25e9) == pytest.approx(printed, rel=1e-12)


def test_muennighoff_readme_allocation_examples():
    # Sheet 1.5: C = 1e22, U = 25B -> about 237B tokens (9.5 epochs) and 7.0B parameters.
    best = ss.compute_optimal(1e22, "muennighoff2023", unique_tokens=25e9)
    assert abs(best.n_tokens / 1e9 - 237) <= half_unit("237")
    assert abs(best.n_tokens / 25e9 - 9.5) <= half_unit("9.5")
    assert abs(best.n_params / 1e9 - 7.0) <= half_unit("7.0")
    # README: the grid search around (8.67B, 178B) gives 227B tokens, 9.1 epochs, 6.8B params.
    # Its grid steps by ~0.4% in N, within the printed half units, so the continuous optimum
    # must round to the same numbers.
    best = ss.compute_optimal(6 * 8.67e9 * 178e9, "muennighoff2023", unique_tokens=25e9)
    assert abs(best.n_tokens / 1e9 - 227) <= half_unit("227")
    assert abs(best.n_tokens / 25e9 - 9.1) <= half_unit("9.1")
    assert abs(best.n_params / 1e9 - 6.8) <= half_unit("6.8")
    assert best.loss < ss.loss(8.67e9, 178e9, "muennighoff2023", unique_tokens=25e9)


# --- registry -------------------------------------------------------------------------------------


def test_registry_contents():
    assert {"kaplan2020", "hoffmann2022", "hoffmann2022_unrounded", "besiroglu2024",
            "muennighoff2023"} <= set(ss.LAWS)  # fmt: skip
    assert ss.DEFAULT_LAW == "besiroglu2024"
    for key, law in ss.LAWS.items():
        assert law.name == key and "arXiv:" in law.source
    assert ss.get_law("kaplan2020").n_params_basis == "non-embedding"
    assert ss.get_law("hoffmann2022").n_params_basis == "total"
    assert ss.get_law("besiroglu2024").se["alpha"] == 0.0154
    assert ss.get_law("hoffmann2022_unrounded").params["e"] == pytest.approx(1.69337, abs=5e-6)
    assert ss.get_law("muennighoff2023").params["a"] == pytest.approx(520.82, abs=0.005)


def test_law_params_are_read_only():
    law = ss.get_law("hoffmann2022")
    with pytest.raises(TypeError):
        law.params["e"] = 0.0
    with pytest.raises(AttributeError):
        law.source = "edited"
    assert hash(law) == hash(ss.get_law("hoffmann2022"))


def test_aliases_and_case():
    assert ss.get_law("hoffmann2022_tex") is ss.LAWS["hoffmann2022_unrounded"]
    assert ss.get_law("Besiroglu2024") is ss.LAWS["besiroglu2024"]
    assert ss.get_law(ss.LAWS["kaplan2020"]) is ss.LAWS["kaplan2020"]


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so that tests registering laws leave no trace."""
    monkeypatch.setattr(ss, "LAWS", dict(ss.LAWS))
    return ss.LAWS


def test_register_law_and_use_by_name(registry):
    params = dict(e=1.7, a=400.0, b=1500.0, alpha=0.33, beta=0.31)
    ss.register_law("my_fit", source="test fit", **params)
    assert "my_fit" in registry
    assert ss.loss(1e9, 2e10, "my_fit") == pytest.approx(
        models.loss_chinchilla_form(1e9, 2e10, **params), rel=1e-15
    )
    assert ss.compute_optimal(1e23, "my_fit").n_params == pytest.approx(
        models.compute_optimal_chinchilla_form(1e23, **params)[0], rel=1e-15
    )
    with pytest.raises(ValueError, match="already registered"):
        ss.register_law("my_fit", source="again", **params)
    ss.register_law("my_fit", source="again", overwrite=True, **{**params, "e": 1.8})
    assert ss.get_law("my_fit").params["e"] == 1.8


@pytest.mark.parametrize("name", ["hoffmann2022", "besiroglu2024", "hoffmann2022_tex"])
def test_published_laws_cannot_be_overwritten(registry, name):
    with pytest.raises(ValueError, match="published"):
        ss.register_law(name, e=1.7, a=400.0, b=400.0, alpha=0.3, beta=0.3, source="x",
                        overwrite=True)  # fmt: skip


# --- fitting (statistical integration test) -------------------------------------------------------


@pytest.mark.parametrize("law", ["hoffmann2022_unrounded", "besiroglu2024"])
def test_fit_law_recovers_known_parameters(law, registry):
    truth = ss.get_law(law)
    n, d = np.meshgrid(np.logspace(7.5, 10.5, 7), np.logspace(9, 12, 7))
    # n_starts=2 keeps the test fast; the grid pre-screen already puts good starts first
    fit = ss.fit_law(n, d, ss.loss(n, d, truth), name="refit", register=True, n_starts=2)
    for key, value in truth.params.items():
        assert fit.params[key] == pytest.approx(value, rel=1e-5), key
    assert ss.get_law("refit") is fit and fit.form == "chinchilla"
    # and the refit predicts the published allocation
    assert ss.compute_optimal(5.76e23, "refit").n_params == pytest.approx(
        ss.compute_optimal(5.76e23, law).n_params, rel=1e-4
    )


def test_fit_law_is_robust_to_an_outlier():
    # One corrupted run (loss x 1.5). With delta = 1e-3 its Huber term grows only linearly, so
    # the fit stays within 0.5% of the truth in alpha, beta, E; a near-least-squares fit
    # (delta = 10) is dragged off by more than 50%. Measured: 0.2-0.3% vs 66-69%.
    truth = ss.get_law("besiroglu2024")
    n, d = np.meshgrid(np.logspace(8, 10, 6), np.logspace(9.5, 11.5, 6))
    observed = ss.loss(n, d, truth)
    observed[0, 0] *= 1.5
    robust = ss.fit_law(n, d, observed, n_starts=1)
    squared = ss.fit_law(n, d, observed, n_starts=1, delta=10.0)
    for key in ("alpha", "beta", "e"):
        assert robust.params[key] == pytest.approx(truth.params[key], rel=5e-3), key
    assert abs(squared.params["alpha"] / truth.params["alpha"] - 1) > 0.5


def test_fit_law_input_errors():
    with pytest.raises(ValueError, match="n_params"):
        ss.fit_law([-1e9] * 5, [1e10] * 5, [3.0] * 5)
    with pytest.raises(ValueError, match="at least 5"):
        ss.fit_law([1e9] * 3, [1e10] * 3, [3.0] * 3)
    with pytest.raises(ValueError, match="name is required"):
        ss.fit_law([1e9] * 5, [1e10] * 5, [3.0] * 5, register=True)


# --- parity: scalar == array == DataArray == Python loop ------------------------------------------


@pytest.mark.parametrize(
    ("call", "rtol"),
    [
        (lambda x: ss.loss(x, 2e11, "besiroglu2024"), 1e-14),
        (lambda x: ss.loss(x, 2e11, "kaplan2020"), 1e-14),
        (lambda x: ss.loss(x, 2e12, "muennighoff2023", unique_tokens=1e11), 1e-14),
        (lambda x: ss.compute_optimal(x * 1e13, "hoffmann2022"), 1e-14),
        (lambda x: ss.compute_optimal(x * 1e13, "muennighoff2023", unique_tokens=5e10), 1e-7),
        (lambda x: ss.min_flop(2.0 + x / 1e11, "besiroglu2024"), 1e-14),
        (lambda x: ss.compute_optimal_rule_of_thumb(x * 1e13, law="hoffmann2022"), 1e-14),
    ],
)
def test_public_parity(call, rtol):
    values = np.array([5e9, 1e10, 4e10])
    array_out = np.array(call(values))
    loop_out = np.stack([np.array(call(float(v))) for v in values], axis=-1)
    np.testing.assert_allclose(loop_out, array_out, rtol=rtol)  # rtol: numeric allocations
    da_out = call(xr.DataArray(values, dims="n"))  # see tests/models/test_scaling_models.py
    for out in da_out if isinstance(da_out, tuple) else (da_out,):
        assert isinstance(out, xr.DataArray) and out.dims == ("n",)
        assert out.shape == (3,)
    np.testing.assert_allclose(np.array([np.asarray(o) for o in da_out])
                               if isinstance(da_out, tuple) else da_out.values,
                               array_out, rtol=rtol)  # fmt: skip


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_law_names_close_matches():
    with pytest.raises(ValueError, match="unknown law 'hofmann2022'.*'hoffmann2022'"):
        ss.loss(1e9, 1e10, "hofmann2022")
    with pytest.raises(ValueError, match="besiroglu2024"):
        ss.compute_optimal(1e23, "besiroglu")


@pytest.mark.parametrize("law", ["besiroglu2024", "hoffmann2022", "muennighoff2023"])
def test_min_flop_below_irreducible_loss_raises(law):
    e = ss.get_law(law).params["e"]
    with pytest.raises(ValueError, match=rf"target_loss={e - 0.1!r} <= E={e!r}"):
        ss.min_flop(e - 0.1, law)
    with pytest.raises(ValueError, match="target_loss"):
        ss.min_flop(np.array([2.5, e]), law)


def test_min_flop_refuses_kaplan():
    with pytest.raises(ValueError, match="irreducible"):
        ss.min_flop(2.0, "kaplan2020")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: ss.loss(-1e9, 1e10), "n_params"),
        (lambda: ss.loss(1e9, -1e10, "kaplan2020"), "n_tokens"),
        (lambda: ss.compute_optimal(-1e22), "flop"),
        (lambda: ss.compute_optimal(1e22, "muennighoff2023", unique_tokens=-1.0), "unique_tokens"),
        (lambda: ss.compute_optimal(1e22, "hoffmann2022", unique_tokens=1e10), "unique_tokens"),
        (lambda: ss.compute_optimal_rule_of_thumb(1e22, tokens_per_param=0), "tokens_per_param"),
        (lambda: ss.register_law("x", e=1.7, a=-4.0, b=4.0, alpha=0.3, beta=0.3, source="s"), "a"),
    ],
)
def test_invalid_inputs_raise(call, argument, registry):
    with pytest.raises(ValueError, match=argument):
        call()
