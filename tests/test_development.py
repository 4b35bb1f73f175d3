"""Development overhead (issue 16 part 4): the project's footprint beyond the final run."""

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim import catalog
from scalesim.models import development

RUN = dict(n_params=7e9, n_tokens=2e12, hardware="H100-SXM5-80GB", n_chips=256, region="FR")


def _anchor(anchor_id):
    return next(r for r in catalog.development_anchors() if r["anchor_id"] == anchor_id)


# ----------------------------------------------------------------------------- published anchors
#: (anchor, what the source prints, printed value, tolerance = half a unit of its last printed digit)
PRINTED = [
    # Morrison et al. 2025 abstract: development "amounted to ~50% of that of training" (one significant figure)
    ("morrison2025_olmo:energy", "ratio", 0.50, 0.05),
    ("morrison2025_olmo:co2e", "ratio", 0.50, 0.05),
    # Morrison et al. 2025 Sec. 4: 159 + 312 = 471 of the "at least 493 tCO2eq" (the rest is embodied, 22 t)
    ("morrison2025_olmo:co2e", "total", 471.0, 0.5),
    # Luccioni et al. 2023 Table 5: the final run is 37.24 % of 1,163,088 kWh and of 66.29 t; the table
    # truncates (433,196 / 1,163,088 = 0.372453), so one unit of the last digit
    ("luccioni2023_bloom:energy", "final_share", 0.3724, 0.0001),
    ("luccioni2023_bloom:energy", "total", 1163088.0, 0.5),
    ("luccioni2023_bloom:co2e", "total", 66.29, 0.005),
    ("luccioni2023_bloom:co2e", "final_share", 0.3724, 0.0005),  # 24.69 / 66.29, four digits each
    # OPT, as quoted by Luccioni et al.: "roughly 2 times higher"
    ("zhang2022_opt:co2e", "total_over_final", 2.0, 0.5),
    # Wu et al. 2022: power capacity 10:20:70 (experimentation : training : inference)
    ("wu2022_meta:power_capacity", "ratio", 0.5, 0.0),
    # Morrison et al. 2026 abstract: development "82.2% of total compute"
    ("morrison2026_olmo3:gpu_hours", "extra_share", 0.822, 0.0005),
    # Llama 2 model card: "a cumulative 3.3M GPU hours", table total 3311616
    ("touvron2023_llama2:gpu_hours", "total", 3311616.0, 0.0),
    # Llama 3.1 model card: "a cumulative of 39.3M GPU hours" (rounded to 0.1M)
    ("meta2024_llama31:gpu_hours", "total", 39.3, 0.05),
]


@pytest.mark.parametrize("anchor_id, what, printed, tol", PRINTED)
def test_anchors_reproduce_the_printed_figures(anchor_id, what, printed, tol):
    r = _anchor(anchor_id)
    final, extra = float(r["final"]), float(r["extra"])
    value = {"ratio": development.overhead_ratio(final, extra), "total": final + extra,
             "final_share": final / (final + extra), "extra_share": extra / (final + extra),
             "total_over_final": (final + extra) / final}[what]
    assert abs(value - printed) <= tol + 1e-12, (anchor_id, what, value)


def test_every_anchor_has_a_source_and_a_scope():
    rows = catalog.development_anchors()
    assert len(rows) >= 8
    for r in rows:
        assert "arXiv:" in r["source"] or "MODEL_CARD" in r["source"], r["anchor_id"]
        assert r["scope"] in ("development", "model_family") and r["primary"] in ("yes", "no")
    primary = [r["anchor_id"].split(":")[0] for r in rows if r["primary"] == "yes"]
    assert len(primary) == len(set(primary)) == 5  # one row per independent development anchor
    assert all(r["scope"] == "development" for r in rows if r["primary"] == "yes")


def test_default_is_the_median_and_span_of_the_primary_development_anchors():
    d = catalog.development_overhead_default()
    # OLMo 459/913, BLOOM 729892/433196, OPT 1, Meta 10/20, Olmo 3 82.2/17.8
    ratios = [459 / 913, 729892 / 433196, 1.0, 0.5, 82.2 / 17.8]
    assert d.value == pytest.approx(np.median(ratios)) == pytest.approx(1.0)
    assert d.low == pytest.approx(0.5) and d.high == pytest.approx(82.2 / 17.8)
    for name in ("morrison2025_olmo", "luccioni2023_bloom", "zhang2022_opt", "wu2022_meta", "morrison2026_olmo3"):
        assert name in d.source
    assert "llama" not in d.source  # model-family rows are context, not development


# ----------------------------------------------------------------------------- model
def test_project_footprint_parity_scalar_array_dataarray():
    r = np.array([0.0, 0.5, 4.6])
    loop = [development.project_footprint(10.0, development_overhead=x) for x in r]
    arr = development.project_footprint(10.0, development_overhead=r)
    da = development.project_footprint(xr.DataArray([10.0, 10.0, 10.0], dims="k"), development_overhead=xr.DataArray(r, dims="k"))
    np.testing.assert_allclose(arr, loop)
    np.testing.assert_allclose(da.values, loop)
    np.testing.assert_allclose(loop, [10.0, 15.0, 56.0])


def test_project_footprint_propagates_nan_and_rejects_bad_values():
    assert np.isnan(development.project_footprint(np.nan, development_overhead=0.5))
    with pytest.raises(ValueError, match="development_overhead must be >= 0, got -0.1"):
        development.project_footprint(1.0, development_overhead=-0.1)
    with pytest.raises(ValueError, match="final must be >= 0, got -1"):
        development.project_footprint(-1.0, development_overhead=0.5)
    with pytest.raises(ValueError, match="ratios must be a non-empty"):
        development.overhead_range([])
    with pytest.raises(ValueError, match="final must be > 0"):
        development.overhead_ratio(0.0, 1.0)


# ----------------------------------------------------------------------------- simulate
def test_overhead_zero_gives_equality_and_project_exceeds_final():
    ds = ss.simulate(**RUN, development_overhead=[0.0, 0.5, 1.7])
    for project, final in (("project_energy_kwh", "energy_kwh"), ("project_co2e_t", "co2e_t"),
                           ("project_total_co2e_t", "total_co2e_t"), ("project_water_l", "water_l")):
        assert ds[project].dims == ("development_overhead",)
        np.testing.assert_allclose(ds[project].sel(development_overhead=0.0), ds[final], rtol=1e-15)
        assert bool((ds[project] >= ds[final]).all())
        np.testing.assert_allclose(ds[project].values, ds[final].values * np.array([1.0, 1.5, 2.7]), rtol=1e-14)
        assert ds[project].attrs["units"] == ds[final].attrs["units"]
    assert "as given" in ds.project_co2e_t.attrs["model"]


def test_no_project_outputs_unless_given_or_asked():
    assert not [v for v in ss.simulate(**RUN).data_vars if v.startswith("project_")]


def test_asked_without_overhead_uses_the_anchors_default_and_records_it():
    ds = ss.simulate(**RUN, outputs=["project_co2e_t", "co2e_t"])
    assert set(ds.data_vars) == {"project_co2e_t", "co2e_t"}
    assert float(ds.project_co2e_t / ds.co2e_t) == pytest.approx(2.0)  # default overhead 1.0
    assert "morrison2025_olmo" in ds.project_co2e_t.attrs["model"]
    assert "development_overhead" in {d["name"] for d in ds.scalesim.defaults}
    only = ss.simulate(**RUN, outputs="project_water_l")
    assert list(only.data_vars) == ["project_water_l"]
    full = ss.simulate(**RUN)
    assert float(only.project_water_l) == pytest.approx(2.0 * float(full.water_l), rel=1e-14)


@pytest.mark.parametrize("side, ratio", [("low", 1.5), ("high", 1.0 + 82.2 / 17.8)])
def test_defaults_low_and_high_pick_the_ends_of_the_anchor_range(side, ratio):
    ds = ss.simulate(**RUN, outputs=["project_co2e_t", "co2e_t"], defaults=side)
    assert float(ds.project_co2e_t / ds.co2e_t) == pytest.approx(ratio)


def test_monte_carlo_draws_the_overhead_within_its_range_and_the_band_holds_the_central_value():
    ds = ss.simulate(**RUN, outputs=["project_co2e_t", "co2e_t"], samples=400, seed=3)
    r = (ds.project_co2e_t / ds.co2e_t - 1.0).values
    assert r.min() >= 0.5 - 1e-12 and r.max() <= 82.2 / 17.8 + 1e-12
    assert np.quantile(r, 0.05) < 1.0 < np.quantile(r, 0.95)
    assert "development_overhead" in ds.attrs["distributions"]


def test_given_overhead_on_the_folded_path_equals_the_full_computation():
    full = ss.simulate(**RUN, development_overhead=0.8)
    sub = ss.simulate(**RUN, development_overhead=0.8, outputs=["project_co2e_t", "project_energy_kwh"])
    assert set(sub.data_vars) == {"project_co2e_t", "project_energy_kwh"}
    for name in sub.data_vars:
        np.testing.assert_allclose(sub[name].values, full[name].values, rtol=1e-13)


@pytest.mark.parametrize("bad, match", [(-0.5, "development_overhead must be >= 0, got -0.5"),
                                        (float("nan"), "development_overhead must be finite"),
                                        ("0.5", "development_overhead must be a number"),
                                        (50.0, "development_overhead=50 is implausible")])
def test_bad_overhead_raises_naming_the_argument(bad, match):
    with pytest.raises(ValueError, match=match):
        ss.simulate(**RUN, development_overhead=bad)


def test_optimize_does_not_take_the_project_overhead():
    with pytest.raises(ValueError, match="development_overhead"):
        ss.optimize(target_loss=2.3, hardware="h100", region="FR", max_wall_days=30, development_overhead=0.5)


def test_property_project_is_final_plus_overhead_times_final():
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.floats(0, 1e12), st.floats(0, 20))
    @example(final=5e-324, r=0.5)  # subnormal: a rounding there is absolute (found by hypothesis in make test)
    def check(final, r):
        p = development.project_footprint(final, development_overhead=r)
        assert p >= final
        # one rounding of p: relative for normal numbers, one subnormal step below them
        ulp_floor = 4 * np.finfo(float).smallest_subnormal
        assert abs((p - final) - final * r) <= 4 * np.finfo(float).eps * p + ulp_floor

    check()
