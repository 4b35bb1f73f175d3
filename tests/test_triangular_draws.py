"""The triangular inverse CDF behind every Monte Carlo draw: scipy parity, scalar = array = DataArray =
dask, and the Monte Carlo result built from it equal to one assembled by hand from the same draws."""

import numpy as np
import pytest
import scipy.stats
import xarray as xr

import scalesim as ss
from scalesim.steps import triangular_ppf


def test_equals_scipy_triang_ppf():
    rng = np.random.default_rng(0)
    u = rng.random(2000)
    low, high = rng.uniform(0, 1, 2000), rng.uniform(1, 3, 2000)
    mode = low + rng.random(2000) * (high - low)
    want = scipy.stats.triang.ppf(u, (mode - low) / (high - low), loc=low, scale=high - low)
    np.testing.assert_allclose(triangular_ppf(u, low, mode, high), want, rtol=1e-12, atol=1e-14)
    # bounds given the other way round, a mode outside the range (clipped), a zero-width range
    np.testing.assert_array_equal(triangular_ppf(u, high, mode, low), triangular_ppf(u, low, mode, high))
    assert triangular_ppf(0.999, 1.0, 5.0, 2.0) == pytest.approx(1.0 + np.sqrt(0.999), rel=1e-15)  # mode -> 2
    assert np.all(triangular_ppf(u, 2.0, 2.0, 2.0) == 2.0)


def test_scalar_array_dataarray_dask_parity():
    u = np.linspace(0, 1, 11)
    low = xr.DataArray([0.5, 1.0, 1.5], dims="region", coords={"region": ["a", "b", "c"]})
    mode, high = low * 1.2, low * 2.0
    da = triangular_ppf(xr.DataArray(u, dims="sample"), low, mode, high)
    assert da.dims == ("sample", "region")
    for j in range(3):
        loop = [triangular_ppf(float(x), float(low[j]), float(mode[j]), float(high[j])) for x in u]
        np.testing.assert_array_equal(da.isel(region=j).values, loop)
    lazy = triangular_ppf(xr.DataArray(u, dims="sample").chunk({"sample": 4}), low, mode, high)
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy.compute().values, da.values)
    with pytest.raises(ValueError):  # exact join: misaligned coordinates are an error, not silently dropped
        triangular_ppf(xr.DataArray(u, dims="sample"), low, mode, high.assign_coords(region=["a", "b", "d"]))


def test_monte_carlo_energy_is_the_product_of_its_drawn_factors():
    """Every sampled output equals the product of the sampled factors the result reports (rtol 1e-12)."""
    r = ss.simulate(n_params=[7e9, 70e9], n_tokens=1e12, hardware=["H100-SXM5-80GB", "A100-SXM4-80GB"],
                    n_chips=1024, region=["FR", "PL"], samples=64, seed=2)
    def close(x, y):
        x, y = xr.broadcast(x, y)
        np.testing.assert_allclose(x.values, y.transpose(*x.dims).values, rtol=1e-12)
    close(r.energy_kwh, r.it_energy_kwh * r.pue)
    close(r.it_energy_kwh, r.chip_hours * r.chip_power_w / 1e3)  # W x h -> kWh
    close(r.co2e_t, r.energy_kwh * r.grid_gco2e_per_kwh / 1e6)  # kWh x g/kWh -> t
    assert set(r.grid_gco2e_per_kwh.dims) == {"sample", "region"}  # drawn per (sample, region), not full size
