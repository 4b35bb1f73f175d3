"""Prediction intervals of validate: the nested jackknife+ spread and the in-sample comparison."""

import numpy as np
import pytest

import scalesim as ss
from scalesim import calibration, validation
from scalesim import runs as runs_data

RUN = "LLaMA-65B"  # reports its chip count: the structural MFU does not move with the draw


@pytest.fixture(scope="module")
def loo():
    return ss.validate(mode="prediction", samples=400, seed=0)


def _pool(run):
    rows = runs_data.published_runs()
    group = tuple(r["model"] for r in rows if (calibration.run_group(r) or r["model"])
                  == (calibration.run_group(next(x for x in rows if x["model"] == run)) or run))
    g = calibration.fit_structural_goodput(rows, exclude=group)["goodput"]
    return np.array(validation._jackknife_plus_ratios(rows, group, g)), group


def test_default_spread_is_the_nested_jackknife_plus(loo):
    assert loo.attrs["interval_spread"] == "jackknife_plus" and loo.attrs["interval_fit"] == "loo"


def test_jackknife_plus_interval_ends_are_order_statistics(loo):
    """The draws are the pool's quantiles at plotting positions k/(n+1) of the shared uniforms; chip-hours
    go as 1/MFU, so the band's ratios follow from the pool and the seed's uniforms alone (rel 1e-9). With
    n <= 19 residuals the 90 % band spans the extreme order statistics, max/min of the pool."""
    import zlib

    pool, _ = _pool(RUN)
    assert 10 <= pool.size <= 19
    u = np.random.default_rng([0, zlib.crc32(b"mfu")]).random(400)
    hours = 1.0 / np.quantile(pool, u, method="weibull")
    band = loo.chip_hours_quantiles_loo.sel(run=RUN)
    for lo, hi in ((0.05, 0.95), (0.25, 0.75)):
        want = np.quantile(hours, hi) / np.quantile(hours, lo)
        assert float(band.sel(quantile=hi) / band.sel(quantile=lo)) == pytest.approx(want, rel=1e-9)
    assert np.quantile(hours, 0.95) / np.quantile(hours, 0.05) == pytest.approx(pool.max() / pool.min(), rel=1e-12)


def test_jackknife_plus_residuals_are_each_fitted_without_themselves():
    """Entry j is m_j / (structural_j(g_-j) x g_fold), g_-j refitted without the predicted run and j. With
    one multiplicative parameter the jackknife+ value s_k g_-j x m_j / (s_j g_-j) does not depend on g_-j,
    so the pool equals the in-fold residuals up to the chip counts the 30-day rule picks at g_-j."""
    rows = runs_data.published_runs()
    moved = []
    for run in (RUN, "Llama 2 7B", "GLM-130B"):
        pool, group = _pool(run)
        g = calibration.fit_structural_goodput(rows, exclude=group)["goodput"]
        naive = np.array(validation._residual_ratios(rows, group, g))
        assert pool.size == naive.size and run in group
        np.testing.assert_allclose(pool, naive, rtol=0.1)
        moved.append(not np.allclose(pool, naive, rtol=1e-12))
    assert any(moved)  # ... but refitted: where a run's chip count comes from the rule, it moves


def test_in_sample_intervals_use_the_run_itself(loo):
    ins = ss.validate(mode="prediction", samples=400, seed=0, interval_fit="in_sample")
    assert ins.attrs["interval_fit"] == "in_sample"
    a, b = ins.chip_hours_quantiles_loo.sel(run=RUN), loo.chip_hours_quantiles_loo.sel(run=RUN)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="interval_fit must be 'loo' or 'in_sample', got 'both'"):
        ss.validate(mode="prediction", samples=10, interval_fit="both")
