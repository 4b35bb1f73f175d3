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


# ----------------------------------------------------------------------------- calibrated intervals
@pytest.fixture(scope="module")
def intervals():
    return ss.validate(mode="prediction", samples=300, seed=0)


def test_validation_intervals_are_ordered_and_flagged(intervals):
    from scalesim.validation import criterion_mask, interval_coverage

    band = intervals.chip_hours_quantiles_loo.where(criterion_mask(intervals), drop=True)
    assert band.sizes["run"] >= 15 and list(band["quantile"].values) == [0.05, 0.25, 0.5, 0.75, 0.95]
    assert bool((band.diff("quantile") >= 0).all()) and bool((band.diff("quantile").sum("quantile") > 0).all())
    rep = intervals.chip_hours_reported
    inside = (rep >= band.sel(quantile=0.05)) & (rep <= band.sel(quantile=0.95))
    np.testing.assert_array_equal(intervals.chip_hours_in_90_loo.sel(run=band.run).values, inside.astype(float).values)
    cov = interval_coverage(intervals)
    for q in ("chip_hours", "co2e_t"):
        c = cov[q]
        assert 0 <= c["in_50"] <= c["in_90"] <= 1 and c["n"] >= 10
        np.testing.assert_allclose(c["in_90"] + c["below_5"] + c["above_95"], 1.0)


def test_a_runs_interval_does_not_use_its_own_outcome():
    from scalesim import runs as runs_data

    rows = [dict(r) for r in runs_data.published_runs()]
    name = "Llama 2 70B"
    a = ss.validate(mode="prediction", samples=100, runs=rows)
    for r in rows:
        if r["model"] == name:
            r["chip_hours"] = str(float(r["chip_hours"]) * 3)
    b = ss.validate(mode="prediction", samples=100, runs=rows)
    np.testing.assert_allclose(a.chip_hours_quantiles_loo.sel(run=name), b.chip_hours_quantiles_loo.sel(run=name))
    assert not np.allclose(a.chip_hours_quantiles_loo.sel(run="Llama 2 7B"), b.chip_hours_quantiles_loo.sel(run="Llama 2 7B"))


def test_the_shipped_spread_spans_the_residual_pool():
    """simulate(samples=) draws the whole residual pool at plotting positions: its 90 % chip-hours
    interval spans max/min of the pool (the 5 % tails lie beyond order statistics 1 and n), wider
    than numpy's linear quantile of the fold's residuals (``loo_empirical``)."""
    from scalesim.models.hardware import MFU_MODEL_STRUCTURAL as M
    from scalesim.validation import criterion_mask

    linear = ss.validate(mode="prediction", samples=200, interval_spread="loo_empirical")
    shipped = ss.validate(mode="prediction", samples=200, interval_spread="shipped")
    w = lambda d: (d.chip_hours_quantiles_loo.sel(quantile=0.95) / d.chip_hours_quantiles_loo.sel(quantile=0.05))  # noqa: E731
    m = criterion_mask(shipped) & (shipped.compute_caveat == "")
    pool = np.asarray(M["draw_ratios"])
    assert float(w(shipped).where(m).median()) == pytest.approx(pool.max() / pool.min(), rel=0.01)
    assert float(w(linear).where(m).median()) < 0.9 * float(w(shipped).where(m).median())


@pytest.mark.parametrize("kw, match", [
    (dict(mode="accounting", samples=10), "samples: intervals are for mode='prediction'"),
    (dict(mode="prediction", samples=0), "samples must be a whole number >= 2"),
    (dict(mode="prediction", samples=10, interval_spread="wide"), "interval_spread must be one of"),
])
def test_bad_validation_interval_input(kw, match):
    with pytest.raises(ValueError, match=match):
        ss.validate(**kw)


def test_triangular_from_quantiles_recovers_its_quantiles():
    from scalesim.steps import triangular_ppf

    lo, hi = uncertainty.triangular_from_quantiles(0.7, 1.0, 1.2)
    np.testing.assert_allclose(triangular_ppf(np.array([0.1, 0.9]), lo, 1.0, hi), [0.7, 1.2], rtol=1e-9)
    assert lo < 0.7 and hi > 1.2
    with pytest.raises(ValueError, match="need q_low < mode < q_high"):
        uncertainty.triangular_from_quantiles(1.1, 1.0, 1.2)


# ----------------------------------------------------------------------------- everywhere users look
def test_cli_table_shows_median_and_interval(capsys):
    from scalesim.interface import cli

    assert cli.main(["simulate", "--n-params", "70e9", "--n-tokens", "2e12", "--hardware", "h100", "--n-chips", "2048",
                     "--region", "FR,US", "--samples", "200", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    r = ss.simulate(**KW, samples=200, seed=1).co2e_t.sel(region="US").quantile([0.05, 0.5, 0.95], dim="sample").values
    assert f"{r[1]:.4g} [{r[0]:.4g}, {r[2]:.4g}]" in out
    assert cli.main(["simulate", "--n-params", "70e9", "--n-tokens", "2e12", "--hardware", "h100", "--n-chips", "2048",
                     "--region", "FR", "--samples", "50", "--format", "csv"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "co2e_t_p05" in head and "co2e_t_median" in head and "co2e_t_p95" in head


def test_methods_paragraph_names_the_run():
    r = ss.simulate(**KW, samples=50, seed=4)
    text = r.scalesim.methods()
    assert "50 Monte Carlo samples (seed 4)" in text and "grid_gco2e_per_kwh:FR" in text and "Ember" in text
    assert "structural" in text and "@article{patterson2021" in text and "version = {0.1.0}" in text
    assert "Monte Carlo" not in ss.simulate(**KW).scalesim.methods(bibtex=False)
    s = ss.sensitivity("co2e_t", n=16, **KW)
    assert "@article{saltelli2010" in s.scalesim.methods() and "n = 16" in s.scalesim.methods()


def test_uncertainty_figures_render(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from scalesim.interface import plotting

    ds = ss.simulate(n_params=[1e9, 1e10, 1e11], n_tokens=2e11, hardware="h100", n_chips=256, region=["FR", "US"],
                     samples=50)
    ax = plotting.plot_bands(ds)
    assert len(ax.lines) == 2 and ax.get_ylabel().startswith("operational emissions")
    s = ss.sensitivity("co2e_t", n=32, **KW)
    ax = plotting.plot_sobol_bars(s, select={"region": "US"})
    assert len(ax.patches) == 2 * s.sizes["input"]
    with pytest.raises(ValueError, match="must have dimension"):
        plotting.plot_bands(ss.simulate(**KW))
