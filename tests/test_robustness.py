"""Issue 14 regressions: every bad input a one-line ValueError naming the argument; no silent NaN/inf."""

import re

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim import catalog
from scalesim.solve.optimization import grid_optimum

RUN = dict(n_params=7e9, n_tokens=1e12, hardware="H100", n_chips=256, region="FR")
OPT = dict(hardware="H100", region="FR", n_chips=256, mfu=0.4)


# ----------------------------------------------------------------------------- simulate
@pytest.mark.parametrize("kwargs, match", [
    (dict(RUN, lifetime_years=[4, 5]), "lifetime_years takes a single value"),
    (dict(RUN, goodput="0.9"), "goodput must be a number"),
    (dict(RUN, lifetime_years="5"), "lifetime_years must be a number"),
    (dict(RUN, n_params=[{1, 2}, 3e9]), "n_params[0] must be a number, got {1, 2} (set)"),
    (dict(RUN, n_params=[True, 7e9]), "n_params[0] must be a number, got True (bool)"),
    (dict(RUN, hardware=["h100", "H100"]), "hardware lists 'h100' and 'H100', which are both 'H100-SXM5-80GB'"),
    (dict(RUN, region=["FR", "FRA"]), "region lists 'FR' and 'FRA', which are both 'FR'"),
    (dict(RUN, n_params=1e300), "n_params must be at most 1e+60"),
    (dict(RUN, law=5), "law must be a string"),
])
def test_bad_simulate_inputs_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        ss.simulate(**kwargs)


@pytest.mark.parametrize("name, value", [("n_params", 70), ("chip_power_w", 0.7), ("grid_gco2e_per_kwh", 0.4),
                                         ("n_tokens", 2.0), ("lifetime_years", 40000)])
def test_unit_slips_are_refused_unless_allowed(name, value):
    kw = dict(RUN, **{name: value})
    if name == "grid_gco2e_per_kwh":
        kw.pop("region")
    if name == "n_tokens":
        kw["mfu"] = 0.4
    with pytest.raises(ValueError, match=rf"{name}={value:g} is implausible .*allow_unusual='{name}'"):
        ss.simulate(**kw)
    r = ss.simulate(**kw, allow_unusual=name)
    assert np.isfinite(float(r.co2e_t))


def test_zero_intensity_is_a_carbon_free_supply_not_a_slip():
    kw = {k: v for k, v in RUN.items() if k != "region"}
    assert float(ss.simulate(**kw, grid_gco2e_per_kwh=0.0).co2e_t) == 0.0


def test_allow_unusual_names_are_checked():
    with pytest.raises(ValueError, match="allow_unusual must name an input with a plausible range; did you mean .n_params."):
        ss.simulate(**RUN, allow_unusual="n_param")


def test_low_precision_floats_are_upcast():
    a = ss.simulate(**dict(RUN, n_params=np.float16(60000), n_tokens=np.float32(1e12)), mfu=0.4)
    b = ss.simulate(**dict(RUN, n_params=60000.0, n_tokens=float(np.float32(1e12))), mfu=0.4)
    assert np.isfinite(float(a.co2e_t))
    assert float(a.co2e_t) == pytest.approx(float(b.co2e_t), rel=1e-12)


def test_implied_mfu_above_one_and_contradictory_mfu_raise():
    acc = dict(hardware="V100", region="FR")
    with pytest.raises(ValueError, match=r"chip_hours is too small.*implies mfu=133"):
        ss.simulate(n_params=1e12, n_tokens=1e13, chip_hours=1e6, **acc)
    with pytest.raises(ValueError, match=r"mfu=0.4 contradicts chip_hours.*implies mfu=0.00133"):
        ss.simulate(n_params=1e9, n_tokens=1e11, chip_hours=1e6, mfu=0.4, **acc)
    implied = float(ss.simulate(n_params=1e9, n_tokens=1e11, chip_hours=1e6, **acc).mfu)
    ss.simulate(n_params=1e9, n_tokens=1e11, chip_hours=1e6, mfu=implied, **acc)  # consistent: accepted


def test_dataarrays_on_one_dim_must_align():
    n = xr.DataArray([1e9, 2e9], dims="x", coords={"x": [0, 1]})
    d = xr.DataArray([1e11, 2e11, 3e11], dims="x", coords={"x": [0, 1, 2]})
    with pytest.raises(ValueError, match="n_params and n_tokens both have dimension 'x' but with different lengths"):
        ss.simulate(n_params=n, n_tokens=d, hardware="H100", n_chips=8, mfu=0.4, region="FR")
    d2 = xr.DataArray([1e11, 2e11], dims="x", coords={"x": [0, 5]})
    with pytest.raises(ValueError, match="different coordinates"):
        ss.simulate(n_params=n, n_tokens=d2, hardware="H100", n_chips=8, mfu=0.4, region="FR")


# ----------------------------------------------------------------------------- regions by name
@pytest.mark.parametrize("name, region_id", [("Germany", "DE"), ("quebec", "CA-QC"), ("QUÉBEC", "CA-QC"),
                                             ("france", "FR"), ("FRA", "FR")])
def test_regions_resolve_by_name_accent_insensitively(name, region_id):
    assert catalog.get_region(name).region_id == region_id


def test_unknown_region_suggests_by_name():
    with pytest.raises(ValueError, match=r"unknown region 'Germny'; closest matches: DE"):
        catalog.get_region("Germny")


# ----------------------------------------------------------------------------- optimize
@pytest.mark.parametrize("kwargs, match", [
    (dict(target_loss=2.3, inference_tokens="1e13"), "inference_tokens must be a number"),
    (dict(target_loss=2.3, max_n_chips="1024"), "max_n_chips must be a number"),
    (dict(target_loss=2.3, n_params_bounds="ab"), "n_params_bounds must be a pair"),
    (dict(target_loss=2.3, n_params_bounds=5.0), "n_params_bounds must be a pair"),
    (dict(target_loss=2.3, law="muennighoff2023", unique_tokens=[1e11, 1e12]), "unique_tokens takes a single value"),
    (dict(target_loss=2.3, n_params=1e9), "n_params is what optimize chooses"),
    (dict(carbon_budget_t=float("nan")), "carbon_budget_t must be finite"),
    (dict(target_loss=2.3, inference_tokens=1e12, inference_mfu=1.5), "inference_mfu must be a fraction"),
    (dict(target_loss=2.3, inference_tokens=1e12, inference_hardware="h1000"), "inference_hardware: unknown hardware"),
    (dict(target_loss=2.3, inference_region="Atlantis"), "inference_region: unknown region 'Atlantis'"),  # no serving
    (dict(target_loss=2.3, inference_grid_gco2e_per_kwh=0.3), "inference_grid_gco2e_per_kwh=0.3 is implausible"),
    (dict(target_loss=2.3, n_iter=1.5), "n_iter must be a positive whole number"),
])
def test_bad_optimize_inputs_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        ss.optimize(**{**OPT, **kwargs})


def test_closed_form_honours_the_bounds():
    for goal in (dict(target_loss=10.0), dict(flop_budget=1e30)):
        auto = ss.optimize(**OPT, **goal)
        numeric = ss.optimize(**OPT, **goal, method="numeric")
        assert bool(auto.feasible)
        assert float(auto.n_params) == pytest.approx(float(numeric.n_params), rel=1e-6)
        assert 1e6 * (1 - 1e-9) <= float(auto.n_params) <= 1e14 * (1 + 1e-9)


def test_a_law_without_closed_form_finds_a_reachable_target():
    r = ss.optimize(target_loss=1.8, law="kaplan2020", **OPT)
    assert bool(r.feasible) and float(r.loss) == pytest.approx(1.8, rel=1e-6)


def test_carbon_budget_with_a_deadline_chooses_chips_within_both():
    r = ss.optimize(carbon_budget_t=10, max_wall_days=30, hardware="H100", region="FR")
    assert bool(r.feasible)
    assert float(r.objective) <= 10 * (1 + 1e-6)
    assert float(r.wall_days) <= 30 * (1 + 1e-9)


def test_infeasible_names_the_constraint_in_one_line():
    with pytest.raises(ValueError) as err:
        ss.optimize(target_loss=1.9, hardware="H100", region="FR", n_chips=8, max_wall_days=30, mfu=0.4)
    msg = str(err.value)
    assert "\n" not in msg and "DataArray" not in msg
    assert "training takes longer than max_wall_days=30.0 with n_chips=8" in msg
    with pytest.raises(ValueError, match=r"target_loss=1.9 cannot be reached within n_params_bounds=\(1e\+06, 1e\+08\)"):
        ss.optimize(target_loss=1.9, n_params_bounds=(1e6, 1e8), **OPT)


def test_grid_optimum_checks_its_arguments():
    ds = ss.simulate(n_params=[1e9, 1e10], n_tokens=[1e11, 1e12], n_chips=64, mfu=0.4, hardware="H100",
                     region=["FR", "DE"])
    with pytest.raises(ValueError, match="wall_days_max must be a finite number, got '30'"):
        grid_optimum(ds, wall_days_max="30")
    with pytest.raises(ValueError, match="chunk must be a positive whole number"):
        grid_optimum(ds, chunk=1.5)


# ----------------------------------------------------------------------------- units
def test_a_result_quantifies_with_pint_xarray():
    pytest.importorskip("pint_xarray")
    from scalesim.units import registry

    ureg = registry()
    r = ss.simulate(**dict(RUN, region=["FR", "DE"]))
    q = r.pint.quantify(unit_registry=ureg)
    co2 = (q.energy_kwh * q.grid_gco2e_per_kwh).pint.to("t")
    np.testing.assert_allclose(co2.pint.dequantify().values, r.co2e_t.values, rtol=1e-12)
    assert str(q.flop.pint.units) == "FLOP"
    o = ss.optimize(target_loss=2.3, **OPT).pint.quantify(unit_registry=ureg)
    assert o.co2e_t.pint.units == ureg.t
