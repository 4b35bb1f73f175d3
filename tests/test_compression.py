"""Compression levers: the quantisation penalty table, quantised serving, distillation and pruning
in the lifetime optimum (scalesim.models.compression, scalesim.solve.strategies)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy.optimize import brentq, minimize_scalar

import scalesim
from scalesim import catalog, laws, steps
from scalesim.models import compression
from scalesim.solve import strategies

H100 = "H100-SXM5-80GB"
#: Costs proportional to FLOPs (fixed MFU for training and serving): the hand computations below
#: then need only a cost per FLOP on each side.
LINEAR = dict(target_loss=2.2, hardware=H100, n_chips=1024, mfu=0.4, grid_gco2e_per_kwh=400.0, inference_mfu=0.3, n_iter=50)
ROOFLINE = dict(target_loss=2.2, hardware=H100, n_chips=1024, grid_gco2e_per_kwh=400.0, inference_tokens=1e13, n_iter=40)
P = dict(laws.get_law("besiroglu2024").params)


# ----------------------------------------------------------------------------- the penalty table
def _row(model, scheme):
    return next(r for r in catalog.read_table("compression_quality.csv") if r["model"] == model and r["scheme"] == scheme)


@pytest.mark.parametrize("model, scheme, ppl16, pplq", [
    ("Llama-2-7B", "int4", 5.47, 5.60),   # AWQ Table 4, INT4 g128
    ("Llama-2-70B", "int4", 3.32, 3.41),
    ("LLaMA-65B", "int4", 3.53, 3.62),
    ("LLaMA-7B", "int8", 11.51, 11.56),   # SmoothQuant Table 6, W8A8
])
def test_penalty_table_reproduces_the_published_rows(model, scheme, ppl16, pplq):
    r = _row(model, scheme)
    assert (float(r["ppl_baseline"]), float(r["ppl_quantised"])) == (ppl16, pplq)
    assert r["source"]
    # perplexities printed to 0.01: ln ratio known to about 0.01 / ppl
    assert compression.log_perplexity_ratio(pplq, ppl16) == pytest.approx(np.log(pplq / ppl16), abs=1e-12)


def test_int4_penalty_is_the_median_row_llama2_7b():
    d = strategies.quantisation_penalty("int4")
    # the median of the seven AWQ rows is Llama-2-7B: ln(5.60 / 5.47) = 0.0235 nats
    assert d.value == pytest.approx(np.log(5.60 / 5.47), rel=1e-12)
    assert d.low == pytest.approx(np.log(5.78 / 5.68), rel=1e-12)   # LLaMA-7B
    assert d.high == pytest.approx(np.log(3.41 / 3.32), rel=1e-12)  # Llama-2-70B
    assert strategies.quantisation_penalty("bf16").value == 0.0
    fp8, int8 = strategies.quantisation_penalty("fp8"), strategies.quantisation_penalty("int8")
    assert fp8.value == 0.0 and fp8.high == int8.high > int8.value > int8.low > 0


def test_penalty_sides_and_draws_follow_defaults():
    d = strategies.quantisation_penalty("int4")
    assert steps.Defaults("low").pick(d) == d.low and steps.Defaults("high").pick(d) == d.high
    draws = steps.Defaults("central", samples=200, seed=1).pick(d, kind="quantisation_penalty")
    assert draws.dims == ("sample",) and float(draws.min()) >= d.low and float(draws.max()) <= d.high
    assert float(draws.std()) > 0


def test_penalty_range_and_ratio_checks():
    assert compression.penalty_range([0.3, 0.1, 0.2]) == (0.1, 0.2, 0.3)
    with pytest.raises(ValueError, match="perplexities must be > 0"):
        compression.log_perplexity_ratio(0.0, 5.0)
    with pytest.raises(ValueError, match="non-empty"):
        compression.penalty_range([])


# ----------------------------------------------------------------------------- pure functions
def test_student_params_invert_the_law_and_broadcast():
    target, tokens, k = np.array([2.1, 2.2, 2.4]), np.array([1e11, 1e12, 1e13]), 2.0
    n = compression.student_params_for_tokens(target, tokens, k, **P)
    loss = laws.loss(n, k * tokens, law="besiroglu2024")
    np.testing.assert_allclose(loss, target, rtol=1e-10)
    scalar = [float(compression.student_params_for_tokens(t, d, k, **P)) for t, d in zip(target, tokens)]
    np.testing.assert_allclose(n, scalar, rtol=1e-14)
    da = compression.student_params_for_tokens(xr.DataArray(target, dims="t"), xr.DataArray(tokens, dims="t"), k, **P)
    assert da.dims == ("t",)
    np.testing.assert_allclose(da, n, rtol=1e-14)
    # data alone short of the target: no student size reaches it
    assert np.isnan(compression.student_params_for_tokens(P["e"] + 1e-4, 1e6, 1.0, **P))


@settings(max_examples=60, deadline=None)
@given(excess=hs.floats(0.05, 2.0), log_d=hs.floats(9.0, 15.0), k=hs.floats(1.0, 8.0))
def test_property_student_size_meets_the_target_and_shrinks_with_benefit(excess, log_d, k):
    target, tokens = P["e"] + excess, 10.0 ** log_d
    n = compression.student_params_for_tokens(target, tokens, k, **P)
    if np.isfinite(n):
        assert float(laws.loss(n, k * tokens, law="besiroglu2024")) == pytest.approx(target, rel=1e-9)
        assert compression.student_params_for_tokens(target, tokens, k * 1.5, **P) <= n * (1 + 1e-12)
    else:  # only where the data term alone reaches the target
        assert P["b"] * (k * tokens) ** -P["beta"] >= excess


@settings(max_examples=60, deadline=None)
@given(a=hs.floats(1.0, 1e4), b=hs.floats(1.0, 1e4))
def test_property_log_ratio_is_antisymmetric_and_zero_on_equal(a, b):
    assert compression.log_perplexity_ratio(a, b) == pytest.approx(-compression.log_perplexity_ratio(b, a), abs=1e-12)
    assert compression.log_perplexity_ratio(a, a) == 0.0


def test_flop_arithmetic():
    assert compression.teacher_forward_flop(7e9, 1e12) == 2 * 7e9 * 1e12
    assert compression.recovery_flop(15e9, 8e9, 94e9) == (6 * 8e9 + 2 * 15e9) * 94e9
    assert compression.distilled_tokens(1e12, 4.0) == 2.5e11
    assert compression.pruned_params(15e9, 0.5) == 7.5e9
    with pytest.raises(ValueError, match="prune_fraction must be in \\(0, 1\\)"):
        compression.pruned_params(15e9, 1.0)
    with pytest.raises(ValueError, match="distill_benefit must be >= 1"):
        compression.distilled_tokens(1e12, 0.5)


# ----------------------------------------------------------------------------- quantised serving
@pytest.fixture(scope="module")
def roofline_pair():
    return scalesim.optimize(**ROOFLINE), scalesim.optimize(**ROOFLINE, inference_dtype="int4")


def test_int4_lowers_serving_energy_and_raises_training(roofline_pair):
    bf16, int4 = roofline_pair
    pen = strategies.quantisation_penalty("int4").value
    assert float(int4.quantisation_penalty) == pytest.approx(pen)
    assert float(int4.loss) == pytest.approx(2.2 - pen, rel=1e-9)  # the trained model goes below the target
    assert float(int4.served_loss) == pytest.approx(2.2, rel=1e-9)
    assert float(int4.inference_energy_kwh) < float(bf16.inference_energy_kwh)
    # the same target needs more training once the served model must absorb the penalty: the least training
    # compute for it (Hoffmann Eq. 4 allocation, reported beside the optimum) rises by C_min(2.2 - p) / C_min(2.2);
    # where the lifetime optimum lands depends on how steeply serving cost grows with N (README, Compression levers)
    c_min = lambda ds: float(6 * ds.n_params_compute_optimal * ds.n_tokens_compute_optimal)  # noqa: E731
    ratio = float(laws.min_flop(2.2 - pen, law="besiroglu2024") / laws.min_flop(2.2, law="besiroglu2024"))
    assert ratio > 1.1
    assert c_min(int4) / c_min(bf16) == pytest.approx(ratio, rel=1e-9)
    loss_at_n = laws.loss(float(int4.n_params), float(int4.n_tokens), law="besiroglu2024")
    assert float(loss_at_n) < 2.2  # at its own N the int4 model trains past the target
    assert int4.attrs["inference_dtype"] == "int4" and "quantisation_penalty" in int4.attrs["defaults_used"]


def test_direct_result_is_unchanged_by_the_new_inputs(roofline_pair):
    bf16, _ = roofline_pair
    explicit = scalesim.optimize(**ROOFLINE, strategy="direct")
    xr.testing.assert_identical(bf16, explicit)
    same_dtype = scalesim.optimize(**ROOFLINE, inference_dtype="bf16")  # training dtype bf16: same serving, penalty 0
    for v in ("n_params", "n_tokens", "loss", "co2e_t", "inference_co2e_t", "lifetime_co2e_t", "objective"):
        assert float(same_dtype[v]) == pytest.approx(float(bf16[v]), rel=1e-12), v
    assert float(same_dtype.quantisation_penalty) == 0.0


def test_defaults_high_takes_the_high_penalty():
    ds = scalesim.optimize(**ROOFLINE, inference_dtype="int8", defaults="high")
    high = strategies.quantisation_penalty("int8").high
    assert float(ds.quantisation_penalty) == pytest.approx(high, rel=1e-12)
    assert float(ds.loss) == pytest.approx(2.2 - high, rel=1e-9)


def test_monte_carlo_draws_the_penalty_with_common_random_numbers():
    ds = scalesim.optimize(**dict(ROOFLINE, n_iter=30), inference_dtype="int4", samples=3, seed=2)
    d = strategies.quantisation_penalty("int4")
    pen = ds.quantisation_penalty
    assert pen.dims == ("sample",) and len(np.unique(pen.values)) == 3
    assert float(pen.min()) >= d.low and float(pen.max()) <= d.high
    np.testing.assert_allclose(ds.loss, 2.2 - pen, rtol=1e-9)
    assert "quantisation_penalty" in ds.attrs["distributions"]


# ----------------------------------------------------------------------------- distillation
def _per_flop():
    """tCO2e per FLOP on the training side and on the serving side (independent of the optimizer)."""
    tr = scalesim.simulate(flop=1e22, hardware=H100, n_chips=1024, mfu=0.4, grid_gco2e_per_kwh=400.0)
    sv = scalesim.simulate(flop=1e22, hardware=H100, n_chips=8, mfu=0.3, grid_gco2e_per_kwh=400.0)
    return float(tr.co2e_t) / 1e22, float(sv.co2e_t) / 1e22


def _tokens(n, target=2.2):
    return (P["b"] / (target - P["e"] - P["a"] * n ** -P["alpha"])) ** (1 / P["beta"])


def _argmin_log(f, lo, hi):
    r = minimize_scalar(lambda x: f(np.exp(x)), bounds=(np.log(lo), np.log(hi)), method="bounded",
                        options={"xatol": 1e-10})
    return r.fun


N_MIN = (P["a"] / (2.2 - P["e"])) ** (1 / P["alpha"])


def _hand_direct(i, ct, cs):
    return _argmin_log(lambda n: ct * 6 * n * _tokens(n) + cs * 2 * n * i, N_MIN * 1.0001, 1e13)


def _hand_distill(i, ct, cs, k):
    def teacher(d_s):  # training + labelling FLOPs of the cheapest teacher for the target
        return _argmin_log(lambda n: 6 * n * _tokens(n) + 2 * n * d_s, N_MIN * 1.0001, 1e13)

    def total(n):
        d_s = _tokens(n) / k
        return ct * (teacher(d_s) + 6 * n * d_s) + cs * 2 * n * i
    return _argmin_log(total, N_MIN * 1.0001, 1e13)


def test_distillation_pays_only_when_serving_dominates_at_the_hand_computed_crossover():
    ct, cs = _per_flop()
    k = 2.0
    crossover = np.exp(brentq(lambda x: _hand_distill(np.exp(x), ct, cs, k) - _hand_direct(np.exp(x), ct, cs),
                              np.log(1e11), np.log(1e16), xtol=1e-3))
    assert 1e12 < crossover < 1e15
    for i, pays in ((0.0, False), (crossover / 4, False), (crossover * 4, True), (1e15, True)):
        ds = scalesim.optimize(**LINEAR, inference_tokens=i, strategy="distill", distill_benefit=k)
        assert bool(ds.lifetime_co2e_t < ds.direct_lifetime_co2e_t) == pays, i
        assert float(ds.lifetime_co2e_t) == pytest.approx(_hand_distill(i, ct, cs, k), rel=2e-3), i
        assert float(ds.direct_lifetime_co2e_t) == pytest.approx(_hand_direct(i, ct, cs), rel=2e-3), i
        parts = sum(float(ds[f"{p}co2e_t"]) for p in ("teacher_", "distill_", "", "inference_"))
        assert parts == pytest.approx(float(ds.lifetime_co2e_t), rel=1e-12)
        # the student reaches the target with the multiplied tokens; the teacher labels them
        assert float(ds.loss) == pytest.approx(2.2, rel=1e-9)
        assert float(ds.distill_flop) == pytest.approx(2 * float(ds.n_params_teacher) * float(ds.distill_tokens), rel=1e-9)


def test_distillation_with_no_benefit_never_pays():
    ds = scalesim.optimize(**LINEAR, inference_tokens=1e15, strategy="distill")
    assert float(ds.lifetime_co2e_t) > float(ds.direct_lifetime_co2e_t)


def test_given_distill_tokens_fix_the_student():
    ds = scalesim.optimize(**LINEAR, inference_tokens=1e13, strategy="distill", distill_tokens=1e12, distill_benefit=3.0)
    assert float(ds.distill_tokens) == 1e12 and float(ds.n_tokens) == 1e12
    assert float(laws.loss(float(ds.n_params), 3e12, law="besiroglu2024")) == pytest.approx(2.2, rel=1e-10)


# ----------------------------------------------------------------------------- pruning
@pytest.mark.parametrize("tokens", [0.0, 1e15])
def test_pruning_with_a_parent_to_train_never_beats_direct(tokens):
    # the parent trains 1/f times the parameters on the tokens the pruned size needs: more than the direct model
    ds = scalesim.optimize(**LINEAR, inference_tokens=tokens, strategy="prune")
    assert float(ds.lifetime_co2e_t) > float(ds.direct_lifetime_co2e_t)


def test_pruning_arithmetic_and_an_existing_parent():
    ct, cs = _per_flop()
    f, d_rec, i = 0.5, 1e11, 1e15
    ds = scalesim.optimize(**LINEAR, inference_tokens=i, strategy="prune", prune_fraction=f, recovery_tokens=d_rec,
                           teacher="existing")
    n, d = float(ds.n_params), float(ds.n_tokens)
    assert float(ds.n_params_teacher) == pytest.approx(n / f, rel=1e-12)
    assert float(ds.loss) == pytest.approx(2.2, rel=1e-9) and d == pytest.approx(_tokens(n), rel=1e-9)
    hand = ct * (6 * n + 2 * n / f) * d_rec + cs * 2 * n * i  # the parent exists: its training is not charged
    assert float(ds.lifetime_co2e_t) == pytest.approx(hand, rel=1e-9)
    assert float(ds.teacher_co2e_t) == 0.0
    assert float(ds.lifetime_co2e_t) < float(ds.direct_lifetime_co2e_t)  # a sunk parent: serving a smaller model pays
    charged = scalesim.optimize(**LINEAR, inference_tokens=i, strategy="prune", prune_fraction=f, recovery_tokens=d_rec)
    n, d = float(charged.n_params), float(charged.n_tokens)
    hand = ct * (6 * (n / f) * d + (6 * n + 2 * n / f) * d_rec) + cs * 2 * n * i
    assert float(charged.lifetime_co2e_t) == pytest.approx(hand, rel=1e-9)


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("kwargs, match", [
    (dict(strategy="quantise"), "strategy"),
    (dict(inference_dtype="nvfp4"), "inference_dtype"),
    (dict(strategy="distill", distill_benefit=0.5), "distill_benefit must be >= 1"),
    (dict(strategy="prune", prune_fraction=1.0), "prune_fraction must be in"),
    (dict(strategy="prune", prune_fraction=-0.2), "prune_fraction"),
    (dict(distill_tokens=1e12), "distill_tokens applies to strategy='distill'"),
    (dict(strategy="distill", recovery_tokens=1e11), "recovery_tokens applies to strategy='prune'"),
    (dict(teacher="existing"), "teacher applies to"),
    (dict(strategy="distill", teacher="borrowed"), "teacher"),
    (dict(strategy="distill", distill_tokens="many"), "distill_tokens must be a number"),
    (dict(inference_dtype="int4", inference_mfu=0.3), "inference_dtype sets the roofline"),
])
def test_bad_strategy_inputs_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scalesim.optimize(target_loss=2.2, hardware=H100, n_chips=1024, grid_gco2e_per_kwh=400.0,
                          inference_tokens=1e12, **kwargs)


def test_strategies_need_a_target_and_a_chinchilla_law():
    with pytest.raises(ValueError, match="needs the goal target_loss"):
        scalesim.optimize(carbon_budget_t=100.0, hardware=H100, n_chips=1024, grid_gco2e_per_kwh=400.0, strategy="prune")
    with pytest.raises(ValueError, match="Chinchilla-form law"):
        scalesim.optimize(target_loss=2.5, law="kaplan2020", hardware=H100, n_chips=1024, grid_gco2e_per_kwh=400.0,
                          strategy="distill")
    with pytest.raises(ValueError, match="irreducible loss"):
        scalesim.optimize(target_loss=P["e"] + 0.01, hardware=H100, n_chips=1024, grid_gco2e_per_kwh=400.0,
                          inference_tokens=1e12, inference_dtype="int4")


def test_distillation_under_a_market_based_objective_sums_its_market_components():
    ds = scalesim.optimize(**{**LINEAR, "grid_gco2e_per_kwh": None}, region="DE", inference_tokens=1e14,
                           strategy="distill", distill_benefit=2.0, objective="co2e_market_t", cfe_fraction=0.5)
    parts = sum(float(ds[f"{p}co2e_market_t"]) for p in ("teacher_", "distill_", "", "inference_"))
    assert float(ds.objective) == pytest.approx(parts, rel=1e-12)
    assert float(ds.lifetime_co2e_market_t) == float(ds.objective)
    assert float(ds.lifetime_co2e_market_t) < float(ds.lifetime_co2e_t)  # half the load contracted
