"""optimize under uncertainty (scalesim.solve.risk): a risk measure over the Monte Carlo draws, and the
probability that a listed choice is really the best."""

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim import laws
from scalesim.models.scaling_laws import tokens_for_loss

#: Utilisation per accelerator generation (drawn, constant in N): the objective is smooth and unimodal
#: in N. The default structural MFU ripples by ~1 % with N (integer shapes and parallel plans), so near
#: its flat minimum the objective has ripples of ~1e-4 relative, where a golden-section search (which
#: assumes one minimum) and a grid may settle in different ones.
TRAIN = dict(hardware="H100-SXM5-80GB", region="FR", n_chips=1024, mfu="hierarchical")
SERVED_TOKENS, SERVING_MFU, LOSS, SAMPLES = 1e13, 0.3, 2.2, 32


def _brute_force_objective(n):
    """co2e_t (training + serving) on a grid of N along the iso-loss curve, per draw, from simulate alone.

    Serving at a given MFU costs 2N FLOPs per token on 8 accelerators (optimize's documented rule),
    with the same seed: the same draws of every shared default as optimize sees.
    """
    d = tokens_for_loss(n, LOSS, **laws.get_law("besiroglu2024").params)
    on_n = lambda v: xr.DataArray(v, dims="n_params", coords={"n_params": n})  # noqa: E731
    train = ss.simulate(n_params=n, n_tokens=on_n(d), samples=SAMPLES, seed=0, **TRAIN)
    serve = ss.simulate(flop=on_n(2 * n * SERVED_TOKENS), mfu=SERVING_MFU, hardware=TRAIN["hardware"],
                        region=TRAIN["region"], n_chips=8, samples=SAMPLES, seed=0)
    return train.co2e_t + serve.co2e_t


@pytest.mark.parametrize("risk, reduce", [("mean", lambda x: x.mean("sample")),
                                          ("p90", lambda x: x.quantile(0.9, dim="sample"))])
def test_risk_optimum_equals_brute_force_over_the_same_draws(risk, reduce):
    got = ss.optimize(target_loss=LOSS, inference_tokens=SERVED_TOKENS, inference_mfu=SERVING_MFU,
                      samples=SAMPLES, seed=0, risk=risk, **TRAIN)
    n = np.geomspace(1.55e9, 1.95e9, 1201)  # step 1.9e-4 in N; the minimum is flat, the objective is not
    measure = reduce(_brute_force_objective(n))
    i = int(np.argmin(measure.values))
    step = np.log(n[1] / n[0])
    assert 0 < i < n.size - 1  # an interior minimum
    assert abs(np.log(float(got.n_params) / n[i])) <= step
    # the minimum objective: a grid step changes a smooth minimum by ~step^2 (mean), a quantile's kinked
    # one by ~slope x step (p90): 1e-4 covers both; and the solver is never worse than the grid
    assert float(got.objective_risk) == pytest.approx(float(measure[i]), rel=1e-4)
    assert float(got.objective_risk) <= float(measure.min()) * (1 + 1e-9)
    assert "sample" not in got.n_params.dims and got.objective.sizes["sample"] == SAMPLES
    assert got.attrs["risk"] == ("mean" if risk == "mean" else "90th percentile")


def test_mean_optimum_differs_from_the_central_one():
    """The draws move training (utilisation) and serving (fixed MFU) apart, so the mean-optimal N is not
    the central one: the brute-force test above would catch a risk that is silently ignored."""
    mean = ss.optimize(target_loss=LOSS, inference_tokens=SERVED_TOKENS, inference_mfu=SERVING_MFU,
                       samples=SAMPLES, seed=0, risk="mean", **TRAIN)
    central = ss.optimize(target_loss=LOSS, inference_tokens=SERVED_TOKENS, inference_mfu=SERVING_MFU, **TRAIN)
    assert abs(np.log(float(mean.n_params) / float(central.n_params))) > 10 * np.log(1.95 / 1.55) / 1200


def test_probability_is_one_when_a_region_dominates_in_every_draw():
    got = ss.optimize(target_loss=LOSS, hardware="H100-SXM5-80GB", n_chips=1024, region=["PL", "SE"],
                      samples=SAMPLES, seed=0, risk="mean")
    per_draw = got.objective.transpose("sample", "region").values
    assert np.all(per_draw[:, 1] < per_draw[:, 0])  # Sweden below Poland in every draw
    assert str(got.best_region.values) == "SE"
    assert float(got.prob_best_region) == 1.0


def test_probability_between_zero_and_one_when_two_regions_are_close():
    got = ss.optimize(target_loss=LOSS, hardware="H100-SXM5-80GB", n_chips=1024, region=["BE", "DK"],
                      samples=200, seed=0, risk="mean")
    p = float(got.prob_best_region)
    assert 0 < p < 1
    obj = got.objective.transpose("sample", "region")
    best = str(got.best_region.values)
    assert best == str(got.region.values[int(got.objective_risk.argmin("region"))])
    other = [r for r in got.region.values if r != best][0]
    assert p == np.mean(obj.sel(region=best).values <= obj.sel(region=other).values)  # paired draws


def test_probability_per_choice_dim_keeps_the_others():
    got = ss.optimize(target_loss=LOSS, hardware=["H100-SXM5-80GB", "A100-SXM4-80GB"], n_chips=1024,
                      region=["BE", "DK", "SE"], samples=16, seed=0, risk="p90")
    assert got.prob_best_region.dims == ("hardware",) and got.prob_best_hardware.dims == ("region",)
    assert set(got.best_region.values) <= {"BE", "DK", "SE"}
    assert ((got.prob_best_region > 0) & (got.prob_best_region <= 1)).all()
    assert got.prob_best_region.attrs["units"] == "1"


def test_same_seed_same_numbers():
    kw = dict(target_loss=LOSS, hardware="H100-SXM5-80GB", n_chips=1024, region=["BE", "DK"], samples=16, risk="p90")
    a, b, c = ss.optimize(seed=3, **kw), ss.optimize(seed=3, **kw), ss.optimize(seed=4, **kw)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.objective.values, c.objective.values)


@pytest.mark.parametrize("risk", ["median", "p0", "p100", "p-5", "90", 0, 1, 1.5, -0.1, float("nan"), True, [0.9]])
def test_bad_risk_is_a_clear_error(risk):
    with pytest.raises(ValueError, match=r"risk must be 'mean', a percentile"):
        ss.optimize(target_loss=LOSS, hardware="H100-SXM5-80GB", n_chips=1024, region="FR", samples=8, seed=0, risk=risk)


def test_risk_needs_samples_and_a_target():
    with pytest.raises(ValueError, match="risk='mean' needs samples"):
        ss.optimize(target_loss=LOSS, hardware="H100-SXM5-80GB", n_chips=1024, region="FR", risk="mean")
    with pytest.raises(ValueError, match="risk needs the goal target_loss"):
        ss.optimize(carbon_budget_t=10.0, hardware="H100-SXM5-80GB", n_chips=1024, region="FR", samples=8, seed=0,
                    risk="mean")


def test_risk_does_not_silently_skip_a_strategy():
    with pytest.raises(ValueError, match="risk='mean' does not combine with a compression strategy"):
        ss.optimize(target_loss=LOSS, hardware="H100-SXM5-80GB", n_chips=1024, region="FR", samples=8, seed=0,
                    risk="mean", strategy="distill")


def test_risk_given_as_text_is_a_level():
    from scalesim.solve import risk

    assert risk.parse("0.9") == risk.parse("p90") == risk.parse(0.9) == 0.9
    assert risk.parse("p97.5") == 0.975 and risk.parse("mean") is None


def test_cli_optimize_with_risk(capsys):
    import json

    from scalesim.interface.cli import main

    args = ["optimize", "--target-loss", "2.2", "--hardware", "H100-SXM5-80GB", "--n-chips", "1024",
            "--region", "BE,DK", "--samples", "16", "--seed", "0", "--risk", "p90", "--format", "json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and {"objective_risk", "prob_best_region", "co2e_t_p95", "n_params"} <= set(rows[0])
    assert rows[0]["feasible"] is True and 0 < rows[0]["prob_best_region"] <= 1
    assert main(args[:-4] + ["--risk", "median"]) == 2  # a bad value: a one-line error, exit 2
    assert "risk must be 'mean', a percentile" in capsys.readouterr().err
