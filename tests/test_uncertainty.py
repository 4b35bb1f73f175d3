"""Sensitivity (Sobol', Morris), calibrated intervals, methods text and CLI intervals (issue 11)."""

import json

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim.solve import uncertainty

KW = dict(n_params=70e9, n_tokens=2e12, hardware="h100", n_chips=2048, region=["FR", "US"])

# Ishigami & Homma 1990 with a = 7, b = 0.1: the analytic indices (Saltelli et al. 2008, Sec. 4.9;
# SALib's documentation) to the printed precision.
ISHIGAMI_S1 = (0.3139, 0.4424, 0.0)
ISHIGAMI_ST = (0.5576, 0.4424, 0.2437)


def ishigami(X, a=7.0, b=0.1):
    return np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])


ISHIGAMI = uncertainty.problem(["x1", "x2", "x3"], [[-np.pi, np.pi]] * 3)


def test_ishigami_published_sobol_indices():
    X = uncertainty.design(ISHIGAMI, "sobol", n=2 ** 13, seed=1)
    r = uncertainty.analyse(ISHIGAMI, X, ishigami(X), "sobol", seed=1)
    # 2^13 base samples: estimator standard error ~0.01 (the bootstrap half-widths say ~0.02 at 95 %)
    np.testing.assert_allclose(r["S1"], ISHIGAMI_S1, atol=0.02)
    np.testing.assert_allclose(r["ST"], ISHIGAMI_ST, atol=0.02)
    assert np.all(r["S1_conf"] > 0) and np.all(r["S1_conf"] < 0.05)


def test_analysis_matches_salib_point_estimates():
    from SALib.analyze import morris as salib_morris
    from SALib.analyze import sobol as salib_sobol

    X = uncertainty.design(ISHIGAMI, "sobol", n=2 ** 10, seed=3)
    Y = ishigami(X)
    mine, theirs = uncertainty.analyse(ISHIGAMI, X, Y, "sobol"), salib_sobol.analyze(ISHIGAMI, Y, calc_second_order=False)
    np.testing.assert_allclose(mine["S1"], theirs["S1"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mine["ST"], theirs["ST"], rtol=1e-10)
    Xm = uncertainty.design(ISHIGAMI, "morris", n=60, seed=3)
    Ym = ishigami(Xm)
    mine, theirs = uncertainty.analyse(ISHIGAMI, Xm, Ym, "morris"), salib_morris.analyze(ISHIGAMI, Xm, Ym)
    np.testing.assert_allclose(mine["mu_star"], np.asarray(theirs["mu_star"], float), rtol=1e-10)
    np.testing.assert_allclose(mine["sigma"], np.asarray(theirs["sigma"], float), rtol=1e-10)


def test_analysis_is_vectorised_over_configurations():
    X = uncertainty.design(ISHIGAMI, "sobol", n=2 ** 8, seed=0)
    Y = ishigami(X)
    stacked = uncertainty.analyse(ISHIGAMI, X, np.stack([Y, 2 * Y + 5]), "sobol")
    one = uncertainty.analyse(ISHIGAMI, X, Y, "sobol")
    for k in ("S1", "ST"):  # indices are invariant to an affine change of the output
        np.testing.assert_allclose(stacked[k][0], one[k], rtol=1e-12)
        np.testing.assert_allclose(stacked[k][1], one[k], rtol=1e-9)


@pytest.fixture(scope="module")
def sobol():
    return ss.sensitivity("co2e_t", n=256, seed=0, **KW)


def test_sensitivity_dims_inputs_and_known_zeros(sobol):
    kinds = list(json.loads(ss.simulate(**KW, samples=2).attrs["distributions"]))
    assert list(sobol["input"].values) == kinds and "mfu" in kinds and "grid_gco2e_per_kwh" in kinds
    assert sobol.ST.dims == ("region", "input") and set(sobol.data_vars) == {"S1", "ST", "S1_conf", "ST_conf"}
    # operational carbon does not depend on water or embodied inputs: exactly zero
    for k in ("wue_l_per_kwh", "ewif_l_per_kwh", "embodied_kgco2e_per_chip"):
        assert float(abs(sobol.ST.sel(input=k)).max()) == 0.0
    # utilisation dominates in the US; the grid matters more in FR (its range is wide for its value)
    st = sobol.ST
    assert float(st.sel(region="US", input="mfu")) > 0.5
    assert float(st.sel(region="FR", input="grid_gco2e_per_kwh")) > float(st.sel(region="US", input="grid_gco2e_per_kwh"))
    assert sobol.attrs["n_evaluations"] == 256 * (len(kinds) + 2)


def test_chip_hours_depend_on_utilisation_only():
    s = ss.sensitivity("chip_hours", n=1024, **KW)
    np.testing.assert_allclose(s.S1.sel(input="mfu"), 1.0, atol=0.03)
    np.testing.assert_allclose(s.ST.sel(input="mfu"), 1.0, atol=0.03)
    assert float(abs(s.ST.drop_sel(input="mfu")).max()) == 0.0


def test_a_fixed_input_is_not_uncertain():
    s = ss.sensitivity("co2e_t", n=64, **dict(KW, pue=1.1))
    assert "pue" not in s["input"].values and "mfu" in s["input"].values


def test_morris_screening():
    m = ss.sensitivity("co2e_t", method="morris", n=20, seed=2, **KW)
    assert set(m.data_vars) == {"mu_star", "sigma", "mu_star_conf"} and m.mu_star.attrs["units"] == "t"
    us = m.mu_star.sel(region="US")
    assert str(us.idxmax("input").values) == "mfu"
    assert float(m.mu_star.sel(input="wue_l_per_kwh").max()) == 0.0


def test_same_seed_same_numbers():
    a = ss.sensitivity("co2e_t", n=64, seed=5, **KW)
    b = ss.sensitivity("co2e_t", n=64, seed=5, **KW)
    c = ss.sensitivity("co2e_t", n=64, seed=6, **KW)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a.S1, c.S1)


@pytest.mark.parametrize("kw, match", [
    (dict(n=100), "n must be a power of two for method='sobol'"),
    (dict(n=1), "n must be a whole number >= 2"),
    (dict(n=64, method="fast"), "method must be one of"),
    (dict(n=64, output="carbon"), "output must be an output variable of simulate, got 'carbon'"),
    (dict(n=64, samples=10), "samples"),
    (dict(n=64, output="flop"), "depends on no uncertain default"),
])
def test_bad_sensitivity_input(kw, match):
    kw = dict(kw)
    output = kw.pop("output", "co2e_t")
    with pytest.raises(ValueError, match=match):
        ss.sensitivity(output, **kw, **KW)
