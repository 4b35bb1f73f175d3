"""Intensity series: CSV loading, validation errors, synthetic typical years."""

import numpy as np
import pytest
import xarray as xr

from scalesim import catalog, series


def _da(values, times):
    return xr.DataArray(np.asarray(values, float), dims="time", coords={"time": np.asarray(times, "datetime64[ns]")})


def _hours(n, start="2024-03-01T00"):
    return np.datetime64(start, "h") + np.arange(n)


def test_load_plain_csv(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("datetime,gco2e_per_kwh\n2024-01-01 00:00,100\n2024-01-01 01:00,150.5\n2024-01-01 02:00,90\n")
    da = series.load_csv(p)
    assert da.dims == ("time",) and da.attrs["units"] == "g/kWh" and da.attrs["step_h"] == 1.0
    np.testing.assert_array_equal(da.values, [100, 150.5, 90])
    assert da.time.values[1] == np.datetime64("2024-01-01T01:00")
    assert "as written" in da.attrs["time_basis"] and da.attrs["synthetic"] == 0


def test_load_electricity_maps_export_converts_to_utc(tmp_path):
    p = tmp_path / "em.csv"
    p.write_text("Datetime (UTC),Country,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA)\n"
                 "2023-06-01T00:00:00+02:00,Germany,DE,300,350\n2023-06-01T01:00:00+02:00,Germany,DE,310,360\n")
    da = series.load_csv(p)
    np.testing.assert_array_equal(da.values, [350, 360])  # LCA column preferred
    assert da.time.values[0] == np.datetime64("2023-05-31T22:00") and da.attrs["time_basis"] == "UTC"
    direct = series.load_csv(p, value_column="Carbon Intensity gCO₂eq/kWh (direct)")
    np.testing.assert_array_equal(direct.values, [300, 310])


def test_load_csv_names_missing_columns(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("when,value\n2024-01-01,1\n2024-01-02,2\n")
    with pytest.raises(ValueError, match="no time_column.*when, value"):
        series.load_csv(p)
    with pytest.raises(ValueError, match="value_column='nope' is not a column"):
        series.load_csv(p, time_column="when", value_column="nope")


def test_small_gaps_are_filled_forward_and_counted():
    t = _hours(6)[[0, 1, 2, 4, 5]]
    da = series.validate_series(_da([1, 2, 3, 5, 6], t))
    np.testing.assert_array_equal(da.values, [1, 2, 3, 3, 5, 6])
    assert da.attrs["n_filled"] == 1


@pytest.mark.parametrize("values, times, words", [
    ([1, 2, 3], _hours(3)[[0, 2, 1]], "strictly increasing"),
    ([1, 2, 3], _hours(3)[[0, 1, 1]], "strictly increasing and unique"),
    ([1, 2, 3], _hours(10)[[0, 1, 9]], "gap of 8 h"),
    ([1, np.nan, 3], _hours(3), "finite and >= 0"),
    ([1, -5, 3], _hours(3), "got -5"),
    ([1, np.inf, 3], _hours(3), "finite"),
    ([1], _hours(1), "at least 2"),
])
def test_bad_series_raise(values, times, words):
    with pytest.raises(ValueError, match=words):
        series.validate_series(_da(values, times))


def test_irregular_grid_and_bad_dims_raise():
    t = np.array(["2024-01-01T00:00", "2024-01-01T01:00", "2024-01-01T02:30"], "datetime64[ns]")
    with pytest.raises(ValueError, match="regular grid"):
        series.validate_series(_da([1, 2, 3], t))
    with pytest.raises(ValueError, match="dim 'time'"):
        series.validate_series(xr.DataArray([1.0, 2.0], dims="hour"))
    with pytest.raises(ValueError, match="max_gap_hours"):
        series.validate_series(_da([1, 2, 3], _hours(3)), max_gap_hours=0.5)


def test_synthetic_year_is_the_profile_times_the_annual_mean():
    da = series.synthetic_year("DE", 2023)
    reg = catalog.get_region("DE")
    year, rel, _ = catalog.diurnal_profile(reg.profile_zone)
    assert da.sizes["time"] == 8760 and da.attrs["synthetic"] == 1
    assert "seasonal" in da.attrs["omits"] and "day-to-day" in da.attrs["omits"]
    assert da.attrs["profile_zone"] == reg.profile_zone and da.attrs["profile_year"] == year
    day = da.sel(time="2023-07-14").values
    np.testing.assert_allclose(day, reg.gco2e_per_kwh * np.asarray(rel))
    np.testing.assert_allclose(da.values.reshape(-1, 24), np.broadcast_to(day, (365, 24)))
    assert series.synthetic_year("US-CAL-CISO").sizes["time"] == 8784  # 2024, a leap year


def test_synthetic_year_of_a_profile_zone_and_errors():
    da = series.synthetic_year("BR-SP", profile_year=2022)
    assert da.attrs["profile_year"] == 2022 and da.time.values[0] == np.datetime64("2022-01-01")
    assert float(da.mean()) == pytest.approx(101.6, rel=0.02)  # the 2022 profile mean in the CSV
    assert len(series.profile_zones()) >= 16
    with pytest.raises(ValueError, match="no typical diurnal profile"):
        series.synthetic_year("agg:world")
    with pytest.raises(ValueError, match="unknown region"):
        series.synthetic_year("Atlantis")
