"""Clean supply: location- and market-based emissions side by side, and 24/7 hourly matching."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import scalesim as ss
from scalesim import catalog, variables
from scalesim.models import clean_supply as cs

RUN = dict(n_params=7e9, n_tokens=1.4e11, hardware="H100-SXM5-80GB", n_chips=512, pue=1.1)


# ----------------------------------------------------------------------------- data
def test_region_table_ships_carbon_free_shares_as_fractions():
    t = catalog.region_table()
    share = t["carbon_free_fraction"]
    finite = share.values[np.isfinite(share.values)]
    assert finite.size > 450 and finite.min() >= 0 and finite.max() <= 1
    # Electricity Maps 2025 carbon-free % of the reference tables (printed as integers: exact)
    assert share.sel(region="FR").item() == 0.96
    assert share.sel(region="DE").item() == 0.64
    assert share.sel(region="US-CAL-CISO").item() == 0.66
    assert share.sel(region="gcp:europe-north1").item() == 0.95  # its mapped zone FI
    assert np.isnan(share.sel(region="egrid:CAMX").item())  # eGRID publishes no carbon-free share here
    # Google's hourly CFE% 2024 (region-carbon-info, two decimals)
    assert t["google_cfe_fraction"].sel(region="gcp:europe-north1").item() == 0.98
    assert t["google_cfe_fraction"].sel(region="gcp:africa-south1").item() == 0.15
    assert np.isnan(t["google_cfe_fraction"].sel(region="aws:us-east-1").item())
    assert "Electricity Maps" in catalog.get_region("DE").carbon_free_source


# ----------------------------------------------------------------------------- model
def test_residual_all_claimed_hand_values():
    got = cs.residual_all_claimed(np.array([300.0, 30.0, 0.0, 1200.0, 100.0]), np.array([0.5, 1.0, 1.0, 0.9, 0.0]))
    # 300/(1-0.5); s=1 -> the coal cap; zero grid -> 0; above the cap the grid itself; s=0 -> the grid
    np.testing.assert_allclose(got, [600.0, cs.RESIDUAL_CAP_GCO2E_PER_KWH, 0.0, 1200.0, 100.0])
    np.testing.assert_allclose(cs.residual_all_claimed(300.0, 0.5, claimed_share=0.5), 300.0 / 0.75)
    np.testing.assert_allclose(cs.residual_all_claimed(300.0, 0.5, claimed_share=0.0), 300.0)


def test_model_parity_scalar_array_dataarray():
    ci, s = np.array([100.0, 400.0]), np.array([0.3, 0.8])
    arr = cs.residual_all_claimed(ci, s)
    da = cs.residual_all_claimed(xr.DataArray(ci, dims="region"), xr.DataArray(s, dims="region"))
    loop = [float(cs.residual_all_claimed(c, x)) for c, x in zip(ci, s)]
    np.testing.assert_allclose(arr, loop)
    np.testing.assert_allclose(da.values, loop)
    assert da.dims == ("region",)
    np.testing.assert_allclose(cs.market_based_intensity(0.25, 400.0, 20.0), 0.25 * 20 + 0.75 * 400)


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan])
def test_model_rejects_bad_shares(bad):
    with pytest.raises(ValueError, match="cfe_fraction"):
        cs.market_based_intensity(bad, 300.0)
    with pytest.raises(ValueError, match="carbon_free_fraction"):
        cs.residual_all_claimed(300.0, bad)


def test_hourly_matching_hand_example():
    load = np.array([1.0, 1.0, 1.0, 1.0])
    supply = np.array([0.0, 2.0, 2.0, 0.0])  # the same volume as the load, all in two hours
    ci = np.array([100.0, 100.0, 200.0, 200.0])
    m = cs.hourly_matching(load, supply, ci, supply_gco2e_per_kwh=10.0)
    assert float(m.cfe_annual_fraction) == 1.0
    assert float(m.cfe_hourly_fraction) == 0.5  # (0 + 1 + 1 + 0) / 4
    assert float(m.matched_kwh) == 2.0
    # unmatched hours 0 and 3 at 100 and 200 g, matched 2 kWh at 10 g
    assert float(m.market_co2e_t) == pytest.approx((100 + 200 + 2 * 10) / 1e6)
    assert float(m.location_co2e_t) == pytest.approx(600 / 1e6)


def test_hourly_matching_flat_equal_supply_is_full_and_solar_is_less():
    hours = np.arange(24 * 7)
    flat = np.ones(hours.size)
    solar = np.clip(np.sin(np.pi * ((hours % 24) - 6) / 12), 0, None)
    solar = solar * flat.sum() / solar.sum()  # the same annual volume as the load
    ci = 300 + 100 * np.cos(2 * np.pi * (hours % 24) / 24)
    assert float(cs.hourly_matching(flat, flat, ci).cfe_hourly_fraction) == pytest.approx(1.0)
    m = cs.hourly_matching(flat, solar, ci)
    assert float(m.cfe_annual_fraction) == pytest.approx(1.0)
    assert float(m.cfe_hourly_fraction) < 0.6  # solar covers daylight hours only
    both = cs.hourly_matching(np.stack([flat, flat]), np.stack([flat, solar]), ci)  # vectorised over rows
    np.testing.assert_allclose(both.cfe_hourly_fraction, [1.0, float(m.cfe_hourly_fraction)])


@given(st.lists(st.floats(0, 10), min_size=2, max_size=30), st.lists(st.floats(0, 10), min_size=2, max_size=30))
@settings(max_examples=60, deadline=None)
def test_hourly_share_never_exceeds_annual_share(load, supply):
    n = min(len(load), len(supply))
    load, supply = np.array(load[:n]), np.array(supply[:n])
    m = cs.hourly_matching(load, supply, np.full(n, 300.0))
    if load.sum() > 0:
        assert float(m.cfe_hourly_fraction) <= float(m.cfe_annual_fraction) + 1e-12
        assert float(m.market_co2e_t) <= float(m.location_co2e_t) + 1e-15


# ----------------------------------------------------------------------------- simulate
def _share_regions():
    t = catalog.region_table()
    keep = np.isfinite(t["carbon_free_fraction"].values)
    return list(t["region"].values[keep]), t["carbon_free_fraction"].values[keep]


@given(st.floats(0.0, 1.0))
@settings(max_examples=15, deadline=None)
def test_market_never_exceeds_location_when_contracts_cover_the_grid_share(u):
    """cfe_fraction >= the grid's carbon-free share, zero-carbon supply, all-claimed residual: market <= location."""
    regions, share = _share_regions()
    cfe = xr.DataArray(share + u * (1.0 - share), dims="region", coords={"region": regions})
    r = ss.simulate(**RUN, region=regions, cfe_fraction=cfe, supply_gco2e_per_kwh=0.0, defaults="high")
    assert (r.co2e_market_t <= r.co2e_t * (1 + 1e-12)).all()


def test_no_contracts_and_residual_equal_to_grid_reproduce_location_based():
    r = ss.simulate(**RUN, region=["FR", "DE", "aws:us-east-1"], defaults="low")  # residual low end = the grid
    np.testing.assert_allclose(r.co2e_market_t, r.co2e_t, rtol=1e-12)
    r = ss.simulate(**RUN, grid_gco2e_per_kwh=[100.0, 400.0], cfe_fraction=0.0, residual_gco2e_per_kwh=[100.0, 400.0])
    assert r.co2e_market_t.dims == ("residual_gco2e_per_kwh",)  # a given residual replaces the grid's
    np.testing.assert_allclose(r.co2e_market_t.values, r.co2e_t.values, rtol=1e-12)


def test_full_zero_carbon_contracts_give_zero_market_based():
    r = ss.simulate(**RUN, region=["DE", "egrid:CAMX"], cfe_fraction=1.0, supply_gco2e_per_kwh=0.0)
    assert (r.co2e_market_t == 0).all()  # even where no residual can be estimated
    assert (r.co2e_t > 0).all()
    r = ss.simulate(**RUN, region="DE", cfe_fraction=1.0, supply_gco2e_per_kwh=20.0)
    assert float(r.co2e_market_t) == pytest.approx(float(r.energy_kwh) * 20.0 / 1e6)


def test_default_residual_is_between_location_and_all_claimed_bound():
    reg = catalog.get_region("DE")
    e = {side: ss.simulate(**RUN, region="DE", defaults=side) for side in ("low", "central", "high")}
    kwh = float(e["central"].energy_kwh)
    assert float(e["central"].co2e_market_t) == pytest.approx(kwh * reg.gco2e_per_kwh / (1 - 0.5 * 0.64) / 1e6)
    assert float(e["low"].co2e_market_t) == pytest.approx(float(e["low"].co2e_t))
    high_ci = float(e["high"].grid_gco2e_per_kwh)
    assert float(e["high"].co2e_market_t) == pytest.approx(float(e["high"].energy_kwh)
                                                           * min(high_ci / (1 - 0.64), 1001.0) / 1e6)
    mc = ss.simulate(**RUN, region="DE", samples=64, seed=1)
    ratio = mc.co2e_market_t / mc.co2e_t
    assert float(ratio.min()) >= 1.0 - 1e-12  # never below location with no contracts
    assert float(ratio.max()) <= 1001.0 / float(mc.grid_gco2e_per_kwh.min())
    assert "residual_gco2e_per_kwh" in mc.attrs["distributions"]


def test_cfe_fraction_list_is_a_dimension_and_attrs_say_the_basis():
    r = ss.simulate(**RUN, region=["FR", "DE"], cfe_fraction=[0.0, 0.5, 1.0])
    assert r.co2e_market_t.dims == ("region", "cfe_fraction")
    assert (r.co2e_market_t.diff("cfe_fraction") < 0).all()  # more contracts, less market-based carbon
    assert r.co2e_t.attrs["basis"] == "location-based"
    assert r.co2e_market_t.attrs["basis"] == "market-based (GHG Protocol Scope 2)"
    assert r.co2e_market_t.attrs["cfe_fraction"] == "see coordinate cfe_fraction"
    assert "location-based" in r.total_co2e_t.attrs["basis"]
    np.testing.assert_allclose(r.total_co2e_t, r.co2e_t + r.embodied_co2e_t)  # totals stay location-based
    assert r.co2e_market_t.attrs["units"] == variables.VARIABLES["co2e_market_t"][0] == "t"
    one = ss.simulate(**RUN, region="FR", cfe_fraction=0.3)
    assert one.co2e_market_t.attrs["cfe_fraction"] == "0.3"


def test_outputs_co2e_market_t_equals_the_full_run():
    kw = dict(RUN, n_params=[7e9, 70e9], region=["FR", "DE", "gcp:europe-north1"], cfe_fraction=[0.2, 0.9])
    full = ss.simulate(**kw)
    only = ss.simulate(**kw, outputs=["co2e_market_t"])
    assert list(only.data_vars) == ["co2e_market_t"]
    xr.testing.assert_allclose(only.co2e_market_t.transpose(*full.co2e_market_t.dims), full.co2e_market_t)
    assert only.co2e_market_t.attrs["basis"] == full.co2e_market_t.attrs["basis"]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_cfe_fraction_names_it(bad):
    with pytest.raises(ValueError, match="cfe_fraction"):
        ss.simulate(**RUN, region="DE", cfe_fraction=bad)
    with pytest.raises(ValueError, match="cfe_fraction"):
        ss.simulate(**RUN, region="DE", cfe_fraction=[0.5, bad])


def test_missing_residual_is_nan_with_a_note_or_an_error_when_asked():
    r = ss.simulate(**RUN, region=["DE", "egrid:CAMX"])
    assert np.isnan(r.co2e_market_t.sel(region="egrid:CAMX").item())
    assert np.isfinite(r.co2e_market_t.sel(region="DE").item())
    assert "egrid:CAMX" in r.attrs["notes"]
    r = ss.simulate(**RUN, grid_gco2e_per_kwh=300.0)  # no region: no carbon-free share, not computed
    assert "co2e_market_t" not in r and "co2e_market_t not computed" in r.attrs["notes"]
    with pytest.raises(ValueError, match="co2e_market_t"):
        ss.simulate(**RUN, grid_gco2e_per_kwh=300.0, outputs=["co2e_market_t"])
    with pytest.raises(ValueError, match="cfe_fraction: .*residual"):
        ss.simulate(**RUN, grid_gco2e_per_kwh=300.0, cfe_fraction=0.5)
    r = ss.simulate(**RUN, grid_gco2e_per_kwh=300.0, cfe_fraction=0.5, residual_gco2e_per_kwh=500.0)
    assert float(r.co2e_market_t) == pytest.approx(float(r.energy_kwh) * 250.0 / 1e6)


def _hourly(days=10):
    t = pd.date_range("2024-06-01", periods=24 * days, freq="h")
    ci = xr.DataArray(300 + 100 * np.cos(2 * np.pi * (t.hour.values - 14) / 24), dims="time", coords={"time": t.values})
    solar = xr.DataArray(np.clip(np.sin(np.pi * (t.hour.values - 6) / 12), 0, None), dims="time", coords={"time": t.values})
    return ci, solar, xr.ones_like(solar)


def test_simulate_hourly_matching_with_a_supply_profile():
    ci, solar, flat = _hourly()
    kw = dict(RUN, intensity_series=ci, cfe_fraction=[0.5, 1.0], supply_gco2e_per_kwh=0.0)
    f = ss.simulate(**kw, supply_profile=flat)
    np.testing.assert_allclose(f.cfe_hourly_fraction, [0.5, 1.0])  # a flat contract follows a flat load
    np.testing.assert_allclose(f.co2e_market_t, f.co2e_t.values * np.array([0.5, 0.0]), rtol=1e-9)
    s = ss.simulate(**kw, supply_profile=solar)
    assert (s.cfe_hourly_fraction < s.cfe_fraction).all()  # 24/7 share below the annual (volume) share
    assert (s.co2e_market_t > f.co2e_market_t).all()
    assert "24/7" in s.co2e_market_t.attrs["method"]
    assert s.cfe_hourly_fraction.attrs["units"] == "1"


def test_supply_profile_rules():
    ci, solar, _ = _hourly()
    with pytest.raises(ValueError, match="supply_profile needs"):
        ss.simulate(**RUN, region="DE", supply_profile=solar, cfe_fraction=0.5)
    with pytest.raises(ValueError, match="supply_profile needs"):
        ss.simulate(**RUN, intensity_series=ci, supply_profile=solar)
    with pytest.raises(ValueError, match="supply_profile"):
        ss.simulate(**RUN, intensity_series=ci, supply_profile=solar.isel(time=slice(0, 5)), cfe_fraction=0.5)
    with pytest.raises(ValueError, match="supply_profile"):
        ss.simulate(**RUN, intensity_series=ci, supply_profile=[1, 2, 3], cfe_fraction=0.5)


def test_optimize_accepts_the_market_based_objective():
    kw = dict(target_loss=2.3, law="besiroglu2024", hardware="h100", region=["FR", "DE"], max_wall_days=60,
              cfe_fraction=0.5, inference_tokens=0)
    loc = ss.optimize(**kw)
    mkt = ss.optimize(**kw, objective="co2e_market_t")
    assert mkt.attrs["objective"] == "co2e_market_t"
    assert not np.allclose(mkt.objective, loc.objective)
    with pytest.raises(ValueError, match="objective='co2e_market_t' is not computed"):
        ss.optimize(**dict(kw, region=None, cfe_fraction=None), grid_gco2e_per_kwh=300.0, objective="co2e_market_t")


def test_hourly_matching_under_monte_carlo_and_pause_resume():
    ci, solar, _ = _hourly()
    # the series starts at 08:00, so that a run started at once works through the solar day whatever its
    # length, while pause-resume can reach the night
    ci, solar = ci.isel(time=slice(8, None)), solar.isel(time=slice(8, None))
    mc = ss.simulate(**RUN, intensity_series=ci, supply_profile=solar, cfe_fraction=0.8, samples=8)
    assert mc.co2e_market_t.dims == ("sample",)
    assert (mc.co2e_market_t <= mc.co2e_t).all()  # supply (0-48 g) cleaner than every hour of this grid (>= 200 g)
    assert "supply_gco2e_per_kwh" in mc.attrs["distributions"]
    pr = ss.simulate(**RUN, intensity_series=ci, supply_profile=solar, cfe_fraction=0.8, schedule="pause_resume", slack=1.0)
    im = ss.simulate(**RUN, intensity_series=ci, supply_profile=solar, cfe_fraction=0.8)
    # pausing moves the run to the cleanest hours (here the night), away from the solar contract
    assert float(pr.cfe_hourly_fraction) < float(im.cfe_hourly_fraction)


def test_annual_share_of_a_subnormal_load_is_one_without_overflow():
    """A load of one subnormal kWh against 1 kWh of supply is fully covered (Hypothesis found the overflow)."""
    m = cs.hourly_matching(np.array([0.0, 5e-324]), np.array([0.0, 1.0]), np.full(2, 300.0))
    assert m.cfe_annual_fraction == 1.0 and m.cfe_hourly_fraction == 1.0
