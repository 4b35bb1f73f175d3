"""Monte Carlo in the simulator: simulate(..., samples=N, seed=S) draws every default from its range."""

import numpy as np
import pytest
import xarray as xr

import scalesim as ss

KW = dict(n_params=70e9, n_tokens=2e12, hardware=["H100", "A100"], n_chips=2048, region=["FR", "US"])


@pytest.fixture(scope="module")
def mc():
    return ss.simulate(**KW, samples=400, seed=7)


def test_sample_dim_and_same_seed_same_numbers(mc):
    assert mc.co2e_t.dims == ("hardware", "region", "sample") and mc.sizes["sample"] == 400
    again = ss.simulate(**KW, samples=400, seed=7)
    xr.testing.assert_identical(mc.co2e_t, again.co2e_t)
    other = ss.simulate(**KW, samples=400, seed=8)
    assert not np.allclose(other.co2e_t, mc.co2e_t)
    assert "mfu" in mc.attrs["distributions"] and mc.attrs["samples"] == 400


def test_draws_bracket_the_central_value_and_the_median_lies_between_the_corners(mc):
    """The corners (defaults='low'/'high') are the ranges' ends for most inputs and the 10th/90th
    percentiles for utilisation, so draws may pass them; the median must lie between them."""
    lo, mid, hi = (ss.simulate(**KW, defaults=s).co2e_t for s in ("low", "central", "high"))
    med = mc.co2e_t.median("sample")
    assert bool((lo < med).all()) and bool((med < hi).all())
    q = mc.scalesim.quantiles((0.05, 0.95), variables=["co2e_t"]).co2e_t
    assert bool((q.sel(quantile=0.05) < mid).all()) and bool((mid < q.sel(quantile=0.95)).all())


def test_given_inputs_stay_exact_and_draws_are_shared():
    r = ss.simulate(n_params=70e9, n_tokens=2e12, hardware=["H100", "A100"], n_chips=2048, pue=1.2,
                grid_gco2e_per_kwh=[100.0, 300.0], samples=50, seed=1)
    assert "sample" not in r.pue.dims and float(r.pue) == 1.2
    # common random numbers: the grid does not vary, so the ratio between two grids is exact per sample
    ratio = r.co2e_t.sel(grid_gco2e_per_kwh=300.0) / r.co2e_t.sel(grid_gco2e_per_kwh=100.0)
    np.testing.assert_allclose(ratio, 3.0, rtol=1e-12)
    # one utilisation draw per sample for every chip: the two chips' MFUs move together
    m = r.mfu
    assert np.corrcoef(m.sel(hardware="H100"), m.sel(hardware="A100"))[0, 1] > 0.999


def test_prob_less_is_paired(mc):
    p = mc.scalesim.prob_less("H100", "A100", dim="hardware")
    assert bool((p == 1.0).all())  # H100 emits less in every paired sample
    p_reg = mc.scalesim.prob_less("FR", "US", dim="region")
    assert bool((p_reg == 1.0).all())
    with pytest.raises(ValueError, match="needs a 'sample' dimension"):
        ss.simulate(**KW).scalesim.prob_less("H100", "A100", dim="hardware")


@pytest.mark.parametrize("extra, match", [
    (dict(samples=0), "samples must be a positive whole number"),
    (dict(samples=2.5), "samples must be a positive whole number"),
    (dict(seed=1), "seed needs samples"),
    (dict(samples=10, seed=-1), "seed must be a whole number >= 0"),
    (dict(samples=10, defaults="low"), "samples draws every default from its range"),
])
def test_bad_sampling_input(extra, match):
    with pytest.raises(ValueError, match=match):
        ss.simulate(**KW, **extra)


def test_a_result_is_freed_on_del_without_the_garbage_collector():
    import gc
    import weakref

    gc.disable()
    try:
        r = ss.simulate(**KW)
        assert r.scalesim.defaults  # use the accessor
        ref = weakref.ref(r)
        del r
        assert ref() is None
    finally:
        gc.enable()
