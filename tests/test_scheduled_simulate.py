"""simulate and optimize on an hourly intensity series, with carbon-aware schedules net of their costs."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import scalesim as ss

RUN = dict(n_params=7e9, n_tokens=2e11, hardware="H100", n_chips=64, mfu="hierarchical", pue=1.1)


def square(hours=24 * 60, clean=100.0, dirty=300.0):
    t = pd.date_range("2024-01-01", periods=hours, freq="h")
    v = np.where((np.arange(hours) // 12) % 2 == 0, clean, dirty)
    return xr.DataArray(v, dims="time", coords={"time": t.values})


def test_immediate_on_a_flat_series_equals_the_annual_value():
    flat = xr.DataArray(np.full(24 * 60, 250.0), dims="time",
                        coords={"time": pd.date_range("2024-01-01", periods=24 * 60, freq="h").values})
    a = ss.simulate(**RUN, grid_gco2e_per_kwh=250.0)
    b = ss.simulate(**RUN, intensity_series=flat)
    assert float(b.co2e_t) == pytest.approx(float(a.co2e_t), rel=1e-12)
    assert float(b.schedule_saving) == pytest.approx(0.0, abs=1e-12)
    assert float(b.wall_days) == pytest.approx(np.ceil(float(a.wall_days) * 24) / 24)  # whole hours


def test_pause_resume_runs_in_clean_hours_and_pays_idle_and_embodied():
    s = square()
    now = ss.simulate(**RUN, intensity_series=s)
    paused = ss.simulate(**RUN, intensity_series=s, schedule="pause_resume", slack=1.0)
    assert float(paused.grid_gco2e_per_kwh) == pytest.approx(100.0)  # runs only in the clean half
    assert float(paused.wall_days) > 1.9 * float(now.wall_days) * 0.99
    assert float(paused.embodied_co2e_t) > 1.9 * float(now.embodied_co2e_t)  # stretched amortisation
    clean_only = float(now.energy_kwh) * 100.0 / 1e6
    assert float(paused.co2e_t) > clean_only  # idle power while paused is counted
    assert 0 < float(paused.schedule_saving) < 0.5


def test_csv_series_and_synthetic_years(tmp_path):
    s = square()
    path = tmp_path / "grid.csv"
    pd.DataFrame({"datetime": pd.DatetimeIndex(s.time.values).strftime("%Y-%m-%dT%H:%M:%S"),
                  "gco2e_per_kwh": s.values}).to_csv(path, index=False)
    a = ss.simulate(**RUN, intensity_series=str(path), schedule="pause_resume", slack=1.0)
    b = ss.simulate(**RUN, intensity_series=s, schedule="pause_resume", slack=1.0)
    assert float(a.co2e_t) == pytest.approx(float(b.co2e_t), rel=1e-12)
    syn = ss.simulate(**RUN, region=["US-CAL-CISO", "DE"], intensity_series="synthetic", schedule="pause_resume", slack=1.0)
    assert syn.co2e_t.dims == ("region",) and "typical day" in syn.attrs["notes"]
    assert float(syn.schedule_saving.sel(region="US-CAL-CISO")) > float(syn.schedule_saving.sel(region="DE"))


@pytest.mark.parametrize("extra, match", [
    (dict(schedule="pause_resume", grid_gco2e_per_kwh=100.0), "schedule needs intensity_series"),
    (dict(intensity_series="synthetic", grid_gco2e_per_kwh=100.0), "either intensity_series or grid_gco2e_per_kwh"),
    (dict(intensity_series="synthetic"), "needs region"),
    (dict(intensity_series="synthetic", region="FR", schedule="later"), "schedule must be one of"),
])
def test_bad_schedule_inputs(extra, match):
    with pytest.raises(ValueError, match=match):
        ss.simulate(**RUN, **extra)


def test_optimize_trades_chips_against_pausing_under_a_deadline():
    kw = dict(target_loss=2.3, hardware="H100", region="US-CAL-CISO", max_wall_days=14, intensity_series="synthetic")
    straight = ss.optimize(**kw)
    paused = ss.optimize(**kw, schedule="pause_resume", slack=1.0)
    assert float(paused.wall_days) <= 14 * (1 + 1e-9)
    assert float(paused.n_chips) > float(straight.n_chips)  # more chips, running only in clean hours
    assert float(paused.total_co2e_t) < float(straight.total_co2e_t)


def test_a_run_longer_than_a_century_is_nan_not_an_error():
    # one cell of a sweep (or of an optimize scan) whose run would take more than MAX_HOURS on 64 chips
    ds = ss.simulate(**dict(RUN, n_params=[7e9, 7e15], n_tokens=2e11), intensity_series=square(),
                     schedule="pause_resume", slack=1.0)
    co2e = ds.co2e_t.values
    assert np.isfinite(co2e[0]) and np.isnan(co2e[1])
    assert np.isnan(ds.schedule_saving.values[1]) and np.isfinite(ds.schedule_saving.values[0])
    with pytest.raises(ValueError, match="longer than a century"):
        ss.simulate(**dict(RUN, n_params=7e15), intensity_series=square())
