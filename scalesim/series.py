"""Hourly grid carbon-intensity series as data: load, validate, or synthesise a typical year.

A series is an ``xarray.DataArray`` named ``gco2e_per_kwh`` on one ``time`` dim (``datetime64[ns]``,
regular step) with ``units = "g/kWh"``. Three ways to get one:

- :func:`load_csv` reads a CSV with ``datetime, gco2e_per_kwh`` columns, or an Electricity Maps
  data-portal export (``Datetime (UTC)``, ``Carbon Intensity gCO₂eq/kWh (LCA)``);
- :func:`validate_series` checks a series built by hand (timestamps increasing and unique, no gap
  over ``max_gap_hours``, values finite and >= 0) and returns it on a regular grid;
- :func:`synthetic_year` repeats a region's shipped typical day (``grid_diurnal_profiles.csv``)
  for a calendar year, scaled to the region's annual mean; its attrs say it is synthetic and that
  it omits day-to-day (weather-driven) and seasonal variation.

This module belongs to the data layer (it reads ``scalesim/data`` through :mod:`scalesim.catalog`
and files the user names); nothing is read at import time or from the network.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import catalog
from .units import S_PER_H, UNIT_GCO2E_PER_KWH

#: Default tolerance on the spacing of consecutive timestamps [h]: an hourly series may miss up to
#: two hours in a row (filled with the previous value); a longer gap is an error.
MAX_GAP_HOURS = 3.0

#: What a synthetic year leaves out (written to its attrs and quoted in the README).
SYNTHETIC_OMITS = ("day-to-day (weather-driven) variation, weekday/weekend differences and seasonal "
                   "variation: every day is the same typical day, so savings of long or weeks-long "
                   "jobs are lower bounds relative to real hourly series")

_TIME_COLUMNS = ("datetime", "datetime (utc)", "timestamp", "time", "date")
_VALUE_COLUMNS = ("gco2e_per_kwh", "carbon intensity gco₂eq/kwh (lca)", "carbon intensity gco2eq/kwh (lca)",
                  "carbon_intensity_gco2_per_kwh", "carbon intensity gco₂eq/kwh (direct)",
                  "carbon intensity gco2eq/kwh (direct)", "carbon intensity")
_NS_PER_H = np.timedelta64(int(S_PER_H), "s") / np.timedelta64(1, "ns")


def _pick(columns, wanted, given, what):
    lower = {c.strip().lower(): c for c in columns}
    if given is not None:
        if given.strip().lower() not in lower:
            raise ValueError(f"{what}={given!r} is not a column of the file; columns: {', '.join(columns)}")
        return lower[given.strip().lower()]
    for w in wanted:
        if w in lower:
            return lower[w]
    raise ValueError(f"no {what} in the file (looked for {', '.join(wanted)}); columns: {', '.join(columns)}; "
                     f"pass {what}=<name>")


def load_csv(path, *, time_column=None, value_column=None, max_gap_hours=MAX_GAP_HOURS):
    """Read an hourly intensity series from a CSV file.

    Parameters
    ----------
    path : str or path-like
        CSV with a timestamp column and an intensity column [gCO2e/kWh]. Recognised headers
        (case-insensitive): ``datetime``/``Datetime (UTC)``/``timestamp``/``time`` and
        ``gco2e_per_kwh`` or the Electricity Maps portal's ``Carbon Intensity gCO₂eq/kWh (LCA)``
        (then ``(direct)``).
    time_column, value_column : str, optional
        Column names, when the file uses other headers.
    max_gap_hours : float
        Largest allowed spacing of consecutive timestamps [h] (see :func:`validate_series`).

    Returns
    -------
    xarray.DataArray
        ``gco2e_per_kwh`` on ``time``; timestamps with an offset (``Z``, ``+01:00``) are converted
        to UTC, naive ones are kept as written (attr ``time_basis``).
    """
    import pandas as pd

    frame = pd.read_csv(path)
    tcol = _pick(list(frame.columns), _TIME_COLUMNS, time_column, "time_column")
    vcol = _pick(list(frame.columns), _VALUE_COLUMNS, value_column, "value_column")
    raw = frame[tcol].astype(str)
    aware = raw.str.contains(r"(?:Z|[+-]\d\d:?\d\d)\s*$", regex=True).any()
    try:
        times = pd.to_datetime(raw, utc=True).dt.tz_localize(None) if aware else pd.to_datetime(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {tcol!r} of {path}: unreadable timestamps ({exc})") from None
    values = pd.to_numeric(frame[vcol], errors="coerce").to_numpy(dtype=float)
    da = xr.DataArray(values, dims="time", coords={"time": times.to_numpy()})
    da.attrs.update(source=f"{path} (columns {tcol!r}, {vcol!r})", synthetic=0,
                    time_basis="UTC" if aware else "as written in the file (no offset given)")
    return validate_series(da, max_gap_hours=max_gap_hours)


def _times_ns(intensity):
    if "time" not in intensity.dims or intensity.ndim != 1:
        raise ValueError(f"intensity must be a 1-D DataArray on dim 'time', got dims {intensity.dims}")
    t = intensity["time"].values
    if not np.issubdtype(t.dtype, np.datetime64):
        raise ValueError(f"intensity's 'time' coordinate must hold datetimes, got dtype {t.dtype}")
    return t.astype("datetime64[ns]").astype(np.int64)


def validate_series(intensity, *, max_gap_hours=MAX_GAP_HOURS):
    """Check an intensity series and return it on a regular time grid.

    Parameters
    ----------
    intensity : xarray.DataArray
        Values [gCO2e/kWh] on one dim ``time`` (datetimes).
    max_gap_hours : float
        Largest allowed spacing of consecutive timestamps [h], >= the series' step. Missing steps
        within it are filled with the previous value (count in attr ``n_filled``).

    Returns
    -------
    xarray.DataArray
        ``gco2e_per_kwh`` on a regular ``time`` grid, attrs ``units``, ``step_h``, ``n_filled``
        (and the input's attrs).

    Raises
    ------
    ValueError
        Fewer than two points; timestamps not strictly increasing (names the first offender);
        a gap over ``max_gap_hours``; a step that does not divide the gaps; a value that is NaN,
        infinite or negative.
    """
    t = _times_ns(intensity)
    v = np.asarray(intensity.values, dtype=float)
    if t.size < 2:
        raise ValueError(f"intensity needs at least 2 timestamps, got {t.size}")
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"intensity must be finite and >= 0 [gCO2e/kWh]; got {v[i]:g} at "
                         f"{np.datetime64(int(t[i]), 'ns')} (first of {int(bad.sum())} bad values)")
    dt = np.diff(t)
    if (dt <= 0).any():
        i = int(np.argmax(dt <= 0)) + 1
        raise ValueError(f"intensity timestamps must be strictly increasing and unique; {np.datetime64(int(t[i]), 'ns')} "
                         f"(position {i}) follows {np.datetime64(int(t[i - 1]), 'ns')}")
    step = int(np.min(dt))
    gap_h = dt / _NS_PER_H
    if not np.isfinite(max_gap_hours) or max_gap_hours < step / _NS_PER_H:
        raise ValueError(f"max_gap_hours must be finite and >= the series step {step / _NS_PER_H:g} h, got {max_gap_hours!r}")
    if (gap_h > max_gap_hours + 1e-9).any():
        i = int(np.argmax(gap_h > max_gap_hours + 1e-9))
        raise ValueError(f"intensity has a gap of {gap_h[i]:g} h after {np.datetime64(int(t[i]), 'ns')}, over "
                         f"max_gap_hours={max_gap_hours:g}; fill it or raise max_gap_hours")
    if (dt % step).any():
        raise ValueError(f"intensity timestamps are not on a regular grid of step {step / _NS_PER_H:g} h "
                         "(a spacing is not a whole multiple of the smallest one)")
    grid = np.arange(t[0], t[-1] + 1, step)
    idx = np.searchsorted(t, grid, side="right") - 1  # previous value (forward fill)
    out = xr.DataArray(v[idx], dims="time", coords={"time": grid.astype("datetime64[ns]")},
                       name="gco2e_per_kwh", attrs=dict(intensity.attrs))
    out.attrs.update(units=UNIT_GCO2E_PER_KWH, long_name="grid carbon intensity", step_h=step / _NS_PER_H,
                     n_filled=int(grid.size - t.size))
    out.attrs.setdefault("synthetic", 0)
    return out


def profile_zones():
    """Zones with a shipped typical-day profile (``grid_diurnal_profiles.csv``), sorted."""
    return sorted({r["zone"] for r in catalog.read_table("grid_diurnal_profiles.csv")})


def _zone_and_mean(region, profile_year):
    """(label, profile zone, annual mean [g/kWh], its source, its year) for a region id or a profile zone."""
    try:
        reg = catalog.get_region(region)
    except ValueError:
        if region not in profile_zones():
            raise
        year, _, _ = catalog.diurnal_profile(region, profile_year)
        row = next(r for r in catalog.read_table("grid_diurnal_profiles.csv")
                   if r["zone"] == region and int(r["year"]) == year)
        return region, region, float(row["mean_gco2e_per_kwh"]), f"grid_diurnal_profiles.csv mean of {region} {year}", year
    if not reg.profile_zone:
        have = sorted({catalog.get_region(x).region_id for x in catalog.region_ids() if catalog.get_region(x).profile_zone})
        raise ValueError(f"region {reg.region_id!r} has no typical diurnal profile; regions with one: "
                         f"{', '.join(have[:30])} ...; or pass a profile zone ({', '.join(profile_zones())})")
    year = int(reg.year) if str(reg.year).isdigit() else None
    return reg.region_id, reg.profile_zone, reg.gco2e_per_kwh, f"grid_intensity.csv {reg.region_id} {reg.year}: {reg.source}", year


def synthetic_year(region, year=None, *, profile_year=None):
    """An hourly series for one calendar year built from a shipped typical day.

    Parameters
    ----------
    region : str
        A region id (``"DE"``, ``"US-CAL-CISO"``, ``"gcp:europe-west3"``; its ``profile_zone``
        gives the profile and ``gco2e_per_kwh`` the annual mean) or a profile zone itself
        (``"DE-LU"``, ``"BR-SP"``; the mean is that profile year's mean).
    year : int, optional
        Calendar year of the timestamps (default: the year of the region's annual mean).
    profile_year : int, optional
        Year of the typical-day profile (default: the latest shipped).

    Returns
    -------
    xarray.DataArray
        ``gco2e_per_kwh`` [gCO2e/kWh] on an hourly ``time`` grid over the year, value
        ``mean x rel[hour of day]``; attrs ``synthetic = 1``, ``omits``, ``region``,
        ``profile_zone``, ``profile_year``, ``annual_mean_gco2e_per_kwh``, ``source``,
        ``time_basis`` (the profile's local clock; daylight-saving shifts are ignored).
    """
    label, zone, mean, mean_source, mean_year = _zone_and_mean(region, profile_year)
    pyear, rel, psource = catalog.diurnal_profile(zone, profile_year)
    year = int(year if year is not None else (mean_year or pyear))
    hours = np.arange(np.datetime64(f"{year:04d}-01-01T00", "h"), np.datetime64(f"{year + 1:04d}-01-01T00", "h"))
    hour_of_day = (hours - hours.astype("datetime64[D]")).astype(int)
    da = xr.DataArray(mean * np.asarray(rel)[hour_of_day], dims="time",
                      coords={"time": hours.astype("datetime64[ns]")}, name="gco2e_per_kwh")
    da.attrs.update(units=UNIT_GCO2E_PER_KWH, long_name="grid carbon intensity (synthetic typical year)",
                    step_h=1.0, n_filled=0, synthetic=1, omits=SYNTHETIC_OMITS, region=label, profile_zone=zone,
                    profile_year=pyear, annual_mean_gco2e_per_kwh=mean,
                    time_basis="local clock of the profile (ENTSO-E 2020 zones: as in the file, likely UTC)",
                    source=f"profile: {psource}; annual mean: {mean_source}")
    return da
