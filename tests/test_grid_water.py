"""Per-grid off-site water (EWIF) from generation mixes: published factors, mixes, step, ordering."""

import json

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import scalesim as ss
from scalesim import catalog, grid_water
from scalesim.models import generation_water as gw

KW = dict(n_params=7e9, n_tokens=1e11, hardware="H100-SXM5-80GB", n_chips=64)

#: Macknick et al. 2012 (ERL 7 045802) consumption medians [gal/MWh], typed in:
#: (fuel, technology, cooling) -> median. Printed as integers, so the shipped values must be equal.
MACKNICK_MEDIANS = {
    ("nuclear", "tower"): 672, ("nuclear", "once-through"): 269, ("nuclear", "pond"): 610,
    ("coal", "tower"): 687, ("coal", "once-through"): 250, ("coal", "pond"): 545,
    ("gas", "tower"): 205, ("gas", "once-through"): 100, ("gas", "pond"): 240,
    ("bioenergy", "tower"): 553, ("bioenergy", "once-through"): 300, ("bioenergy", "pond"): 390,
    ("solar", "none"): 1, ("wind", "none"): 0, ("hydro", "none"): 4491,
}
#: GCAM's m3/MWh transcription of the same medians (gcam-core Macknick_elec_water_m3MWh.csv), printed
#: to 2-3 significant figures: an independent check of the unit conversion at 0.5 %.
GCAM_M3_PER_MWH = {("nuclear", "tower"): 2.54, ("nuclear", "once-through"): 1.02, ("nuclear", "pond"): 2.31,
                   ("coal", "tower"): 2.6, ("coal", "once-through"): 0.95, ("coal", "pond"): 2.06,
                   ("gas", "once-through"): 0.38, ("gas", "pond"): 0.91, ("hydro", "none"): 17.0}


def _central_rows():
    return {(r["fuel"], r["cooling"]): r for r in catalog.read_table("water_by_technology.csv") if r["role"] == "central"}


@pytest.mark.parametrize("key", sorted(MACKNICK_MEDIANS))
def test_shipped_rows_are_macknick_medians(key):
    row = _central_rows()[key]
    assert row["unit"] == "gal/MWh" and float(row["value"]) == MACKNICK_MEDIANS[key]
    assert "Macknick et al. 2012" in row["source"]


@pytest.mark.parametrize("key", sorted(GCAM_M3_PER_MWH))
def test_conversion_matches_gcam_transcription(key):
    l_per_kwh = float(gw.to_l_per_kwh(MACKNICK_MEDIANS[key], "gal/MWh"))
    assert l_per_kwh == pytest.approx(GCAM_M3_PER_MWH[key], rel=5e-3)  # 1 m3/MWh = 1 L/kWh


def test_fuel_factors_follow_the_documented_rule():
    f = grid_water.fuel_factors()
    gal = gw.L_PER_KWH_PER_GAL_PER_MWH
    np.testing.assert_allclose(f["value"].sel(fuel="nuclear"), np.mean([672, 269, 610]) * gal, rtol=1e-12)
    np.testing.assert_allclose(f["value"].sel(fuel="gas"), np.mean([205, 100, 240]) * gal, rtol=1e-12)
    np.testing.assert_allclose(f["high"].sel(fuel="gas"), 826 * gal, rtol=1e-12)  # gas steam tower
    np.testing.assert_allclose(f["value"].sel(fuel="hydro"), 4491 * gal, rtol=1e-12)
    # hydro range: zero (allocated to other uses) to Mekonnen & Hoekstra's 68 m3/GJ = 244.8 L/kWh
    assert float(f["low"].sel(fuel="hydro")) == 0.0
    np.testing.assert_allclose(f["high"].sel(fuel="hydro"), 244.8, rtol=1e-12)
    assert float(f["value"].sel(fuel="wind")) == 0.0
    assert np.all(f["low"] <= f["value"]) and np.all(f["value"] <= f["high"])


def test_mekonnen_conversion():
    assert float(gw.to_l_per_kwh(68, "m3/GJ")) == pytest.approx(68 * 3.6, rel=1e-12)
    with pytest.raises(ValueError, match="unit must be one of"):
        gw.to_l_per_kwh(1.0, "gal/kWh")


def test_every_mix_sums_to_one_and_every_region_has_one():
    rows = catalog.read_table("grid_generation_mix.csv")
    assert len(rows) >= 200
    for r in rows:
        total = sum(float(r[f"share_{f}"]) for f in gw.FUELS)
        assert total == pytest.approx(1.0, abs=1e-5), r["mix_id"]
        assert all(float(r[f"share_{f}"]) >= 0 for f in gw.FUELS)
    t = grid_water.mix_table()
    assert t.sizes["region"] == len(catalog.region_ids())
    np.testing.assert_allclose(t.share.sum("fuel"), 1.0, atol=1e-5)
    world = set(t.region.values[t.mix_id.values == grid_water.WORLD_MIX].tolist())
    assert "agg:world" in world and "FR" not in world and "CA-QC" not in world


def test_mix_basis_flags_the_mapping():
    assert grid_water.region_mix("FR") == ("FRA", "country (OWID 2023)")
    mix, basis = grid_water.region_mix("CA-QC")
    assert mix == "CAN" and "grid zone" in basis
    mix, basis = grid_water.region_mix("gcp:europe-north1")
    assert mix == "FIN" and "cloud region" in basis
    mix, basis = grid_water.region_mix("XK")
    assert mix == "world" and "world mix used" in basis


def test_published_mix_shares():
    # OWID 2023 (codecarbon 3.3.2): France 335.65 TWh nuclear of 514.11 TWh; Norway 135.96 hydro of 153.59
    assert float(grid_water.mix_shares("FRA")[gw.FUELS.index("nuclear")]) == pytest.approx(335.65 / 514.11, rel=1e-5)
    assert float(grid_water.mix_shares("NOR")[gw.FUELS.index("hydro")]) == pytest.approx(135.96 / 153.59, rel=1e-5)


def test_model_function_checks_and_broadcasts():
    shares = np.eye(len(gw.FUELS))
    factors = np.arange(len(gw.FUELS), dtype=float)
    np.testing.assert_array_equal(gw.ewif_from_mix_l_per_kwh(shares, factors), factors)
    two = gw.ewif_from_mix_l_per_kwh(shares[None], np.stack([factors, 2 * factors])[:, None, :])
    np.testing.assert_array_equal(two, np.stack([factors, 2 * factors]))
    with pytest.raises(ValueError, match="shares must sum to 1"):
        gw.ewif_from_mix_l_per_kwh(0.5 * shares, factors)
    with pytest.raises(ValueError, match="last axis"):
        gw.ewif_from_mix_l_per_kwh(shares[:, :3], factors[:3])
    with pytest.raises(ValueError, match="factors_l_per_kwh"):
        gw.ewif_from_mix_l_per_kwh(shares, -factors - 1)


def _ewif(ds):
    return ds.water_offsite_l / ds.energy_kwh


REGIONS = ["QA", "GB", "FR", "NO", "CA-QC"]


@pytest.fixture(scope="module")
def corners():
    return {side: _ewif(ss.simulate(**KW, region=REGIONS, defaults=side)) for side in ("low", "central", "high")}


def test_simulate_uses_the_per_grid_value(corners):
    c = corners["central"]
    for r in REGIONS:
        np.testing.assert_allclose(float(c.sel(region=r)), grid_water.region_ewif_l_per_kwh(r)[1], rtol=1e-9)
    assert float(c.sel(region="FR")) != pytest.approx(float(c.sel(region="CA-QC")), rel=0.1)


def test_ordering_gas_and_wind_below_nuclear_below_hydro(corners):
    c = corners["central"]
    assert float(c.sel(region="QA")) < float(c.sel(region="FR"))  # gas-heavy < nuclear-heavy
    assert float(c.sel(region="GB")) < float(c.sel(region="FR"))  # wind/gas < nuclear-heavy
    assert float(c.sel(region="NO")) == float(c.max())  # hydro-heavy highest
    width = corners["high"] - corners["low"]
    assert float(width.sel(region="NO")) == float(width.max())  # and widest


def test_low_central_high_are_ordered_everywhere(corners):
    assert bool((corners["low"] <= corners["central"]).all()) and bool((corners["central"] <= corners["high"]).all())
    t = grid_water.mix_table()
    assert bool((t.ewif_l_per_kwh_low <= t.ewif_l_per_kwh).all()) and bool((t.ewif_l_per_kwh <= t.ewif_l_per_kwh_high).all())


def test_user_ewif_overrides():
    ds = ss.simulate(**KW, region=["FR", "NO"], ewif_l_per_kwh=3.1)
    np.testing.assert_allclose(_ewif(ds), 3.1, rtol=1e-12)
    assert "model" not in ds.water_offsite_l.attrs
    per_region = xr.DataArray([1.0, 2.0], dims="region", coords={"region": ["FR", "NO"]})
    np.testing.assert_allclose(_ewif(ss.simulate(**KW, region=["FR", "NO"], ewif_l_per_kwh=per_region)), [1.0, 2.0])


def test_monte_carlo_draws_stay_inside_the_range(corners):
    ds = ss.simulate(**KW, region=REGIONS, samples=300, seed=3)
    e = _ewif(ds)
    assert bool((e >= corners["low"] * (1 - 1e-9)).all()) and bool((e <= corners["high"] * (1 + 1e-9)).all())
    assert "ewif_l_per_kwh" in json.loads(ds.attrs["distributions"])
    assert float(e.std("sample").sel(region="NO")) > 0
    again = _ewif(ss.simulate(**KW, region=REGIONS, samples=300, seed=3))
    xr.testing.assert_identical(e, again)


def test_attrs_and_notes_say_the_basis():
    ds = ss.simulate(**KW, region=["FR", "XK"])
    assert ds.water_offsite_l.attrs["model"].startswith("grid_mix")
    used = {d["name"]: d for d in json.loads(ds.attrs["defaults_used"])}
    fr = used["ewif_l_per_kwh:FR"]
    assert fr["low"] <= fr["value"] <= fr["high"] and "country (OWID 2023)" in fr["source"]
    assert "XK" in ds.attrs["notes"] and "world mix used" in ds.attrs["notes"]
    no_region = ss.simulate(**KW, grid_gco2e_per_kwh=100.0)
    np.testing.assert_allclose(float(_ewif(no_region)), grid_water.mix_ewif_l_per_kwh("world")[1], rtol=1e-9)
    assert "world-average generation mix" in no_region.attrs["notes"]


@settings(max_examples=60, deadline=None)
@given(weights=arrays(float, len(gw.FUELS), elements=st.floats(0.0, 1e3)),
       factors=arrays(float, len(gw.FUELS), elements=st.floats(0.0, 300.0)))
def test_ewif_is_a_convex_combination_of_the_fuel_factors(weights, factors):
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    shares = weights / weights.sum()
    ewif = float(gw.ewif_from_mix_l_per_kwh(shares, factors))
    assert factors.min() - 1e-9 <= ewif <= factors.max() + 1e-9
    # scalar loop = vectorised call
    assert ewif == pytest.approx(sum(s * w for s, w in zip(shares, factors)), rel=1e-9, abs=1e-12)
