"""Carbon-aware schedules: known answers, brute force, oracle bounds, forecast error, net cost."""

import itertools

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim import series
from scalesim.models import scheduling as msched
from scalesim.solve import scheduling

CLEAN, DIRTY = 100.0, 300.0


def _series(values, start="2024-01-01T00"):
    t = np.datetime64(start, "h") + np.arange(len(values))
    return series.validate_series(xr.DataArray(np.asarray(values, float), dims="time", coords={"time": t}))


def _square(days=6, clean_hours=12):
    day = [CLEAN] * clean_hours + [DIRTY] * (24 - clean_hours)
    return _series(day * days)


def _starts(da, n):
    return da["time"].values[:n]


# ----------------------------------------------------------------------------- known answers
def test_square_wave_pause_resume_with_2x_slack_saves_the_clean_dirty_difference():
    da = _square()
    ds = ss.schedule(da, job_hours=48, window_hours=96, strategy="pause_resume", start=_starts(da, 24))
    mean_immediate = (CLEAN + DIRTY) / 2  # any 48 h from any start: half clean, half dirty
    np.testing.assert_allclose(ds.saving, 1 - CLEAN / mean_immediate, rtol=1e-12)
    np.testing.assert_allclose(ds.run_gco2e_per_kwh, CLEAN, rtol=1e-12)
    np.testing.assert_allclose(ds.intensity_factor, CLEAN / mean_immediate, rtol=1e-12)
    assert (ds.running.sum("hour_offset") == 48).all()
    # from midnight it runs 12 clean hours a day for 4 days: 3 pauses, done at hour 84
    at0 = ds.isel(start=0)
    assert int(at0.n_pauses) == 3 and float(at0.wall_clock_hours) == 84.0
    assert float(at0.wall_clock_stretch) == pytest.approx(84 / 48)


def test_square_wave_flexible_start_waits_for_the_clean_block():
    da = _square()
    ds = ss.schedule(da, job_hours=12, window_hours=36, strategy="flexible_start", start=_starts(da, 24))
    np.testing.assert_allclose(ds.run_gco2e_per_kwh, CLEAN)
    immediate = ds.immediate_gco2e_per_kwh.values
    np.testing.assert_allclose(ds.saving, 1 - CLEAN / immediate)
    # a start at hour h waits (24 - h) h for the next clean block (0 at midnight)
    h = np.arange(24)
    np.testing.assert_array_equal(ds.wall_clock_hours, np.where(h == 0, 12, 24 - h + 12))
    assert (ds.n_pauses == 0).all()


def test_no_slack_saves_nothing_and_immediate_is_the_baseline():
    rng = np.random.default_rng(1)
    da = _series(rng.uniform(50, 500, 200))
    ds = ss.schedule(da, job_hours=[5, 30], window_hours=[5, 30], strategy=list(scheduling.STRATEGIES),
                     start=_starts(da, 100))
    np.testing.assert_allclose(ds.saving, 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.wall_clock_stretch, 1.0)
    assert (ds.n_pauses == 0).all()
    imm = ds.sel(strategy="immediate")
    np.testing.assert_allclose(imm.run_gco2e_per_kwh, imm.immediate_gco2e_per_kwh)


# ----------------------------------------------------------------------------- brute force
def _brute(x, s, n, w):
    win = x[s:s + w]
    flex = min(win[o:o + n].mean() for o in range(w - n + 1))
    pr = min(win[list(c)].mean() for c in itertools.combinations(range(w), n))
    return flex, pr


@pytest.mark.parametrize("seed", range(4))
def test_flexible_start_and_pause_resume_equal_brute_force_on_random_series(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(20, 800, 40)
    da = _series(x)
    jobs, wins = [3, 4, 5], [7, 9, 10]
    starts = _starts(da, 30)
    flex = ss.schedule(da, job_hours=jobs, window_hours=wins, strategy="flexible_start", start=starts)
    pr = ss.schedule(da, job_hours=jobs, window_hours=wins, strategy="pause_resume", start=starts)
    for j, (n, w) in enumerate(zip(jobs, wins)):
        for s in range(0, 30, 3):
            bf_flex, bf_pr = _brute(x, s, n, w)
            assert float(flex.run_gco2e_per_kwh[j, s]) == pytest.approx(bf_flex, rel=1e-12)
            assert float(pr.run_gco2e_per_kwh[j, s]) == pytest.approx(bf_pr, rel=1e-12)


def test_saving_is_ordered_and_bounded_by_the_oracle():
    rng = np.random.default_rng(7)
    da = _series(rng.lognormal(5.5, 0.5, 24 * 20))
    starts = _starts(da, 48)
    jobs = [6, 24, 60]
    for slack in (0.1, 0.5, 1.0):
        wins = [int(j * (1 + slack)) for j in jobs]
        ds = ss.schedule(da, job_hours=jobs, window_hours=wins, strategy=list(scheduling.STRATEGIES), start=starts)
        flex, pr = ds.saving.sel(strategy="flexible_start"), ds.saving.sel(strategy="pause_resume")
        assert (flex >= -1e-12).all() and (pr >= flex - 1e-12).all()
        # oracle: the job's cleanest hours of the whole window, whatever the constraint
        blocky = ss.schedule(da, job_hours=jobs, window_hours=wins, strategy="pause_resume", start=starts,
                             min_block_hours=4, restart_overhead_hours=1)
        assert (blocky.saving <= pr + 1e-12).all()
        assert (blocky.saving >= flex - 1e-12).all()
    assert float(pr.mean()) > 0.05  # the lognormal series has something to save


def test_more_slack_never_saves_less():
    rng = np.random.default_rng(3)
    da = _series(rng.uniform(50, 500, 400))
    starts = _starts(da, 100)
    s = [ss.schedule(da, job_hours=48, window_hours=48 + k, strategy="pause_resume", start=starts).saving
         for k in (0, 12, 48, 96)]
    for a, b in zip(s, s[1:]):
        assert (b >= a - 1e-12).all()
    assert float(s[-1].mean()) > float(s[1].mean())


# ----------------------------------------------------------------------------- blocks, overhead
def _runs(mask):
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


def test_min_block_and_restart_overhead_are_respected():
    rng = np.random.default_rng(11)
    da = _series(_square(days=10).values + rng.uniform(0, 60, 240))  # pauses pay despite 2 h restarts
    ds = ss.schedule(da, job_hours=40, window_hours=100, strategy="pause_resume", start=_starts(da, 60),
                     min_block_hours=5, restart_overhead_hours=2)
    assert (ds.n_pauses > 0).any()
    for s in range(ds.sizes["start"]):
        mask = ds.running.isel(start=s).values
        runs = _runs(mask)
        assert (runs[:-1] >= 5).all(), runs
        assert runs.sum() == 40 + 2 * (runs.size - 1)  # 40 h of progress + 2 h per resume
        assert float(ds.run_hours[s]) == runs.sum()


def test_restart_overhead_costs_saving():
    rng = np.random.default_rng(5)
    da = _series(_square(days=10).values + rng.uniform(0, 200, 240))
    kw = dict(job_hours=30, window_hours=60, strategy="pause_resume", start=_starts(da, 50))
    free = ss.schedule(da, **kw)
    costly = ss.schedule(da, **kw, restart_overhead_hours=3)
    assert float(costly.n_pauses.mean()) < float(free.n_pauses.mean())
    assert float(costly.saving.mean()) < float(free.saving.mean())


# ----------------------------------------------------------------------------- forecast error
def test_forecast_error_never_beats_perfect_foresight():
    rng = np.random.default_rng(2)
    da = _series(rng.uniform(50, 500, 24 * 15))
    starts = _starts(da, 100)
    for strategy in ("flexible_start", "pause_resume"):
        kw = dict(job_hours=24, window_hours=48, strategy=strategy, start=starts)
        oracle = ss.schedule(da, **kw).saving
        noisy = [ss.schedule(da, **kw, forecast_error=0.3, seed=k).saving for k in range(5)]
        for n in noisy:
            assert (n <= oracle + 1e-12).all()  # the oracle is optimal for every start
        assert float(np.mean([n.mean() for n in noisy])) < float(oracle.mean())
        same = ss.schedule(da, **kw, forecast_error=0.3, seed=0).saving
        np.testing.assert_array_equal(same, noisy[0])  # seeded


# ----------------------------------------------------------------------------- contracts
def test_dims_follow_lists_and_attrs_are_set():
    da = _square()
    one = ss.schedule(da, job_hours=24, window_hours=48, strategy="pause_resume")
    assert one.saving.dims == () and one.running.dims == ("hour_offset",)
    many = ss.schedule(da, job_hours=[12, 24], window_hours=48, strategy=["immediate", "pause_resume"],
                       start=_starts(da, 5))
    assert many.saving.dims == ("strategy", "job_hours", "start")
    assert many.running.dims == ("strategy", "job_hours", "start", "hour_offset")
    assert ss.schedule(da, job_hours=[24], window_hours=48, strategy=["pause_resume"]).saving.dims == ("strategy", "job_hours")
    for name, (units, _, _) in scheduling.VARIABLES.items():
        assert many[name].attrs["units"] == units
    assert many.attrs["foresight"] == "perfect"
    allstarts = ss.schedule(da, job_hours=24, window_hours=48, strategy="immediate", start="all")
    assert allstarts.sizes["start"] == da.sizes["time"] - 48 + 1


def test_region_string_uses_a_synthetic_year():
    ds = ss.schedule("US-CAL-CISO", job_hours=24, window_hours=48, strategy="pause_resume")
    assert ds.attrs["series_synthetic"] == 1 and "seasonal" in ds.attrs["series_omits"]
    assert 0.05 < float(ds.saving) < 0.6


@pytest.mark.parametrize("kw, words", [
    (dict(strategy="greedy"), "strategy must be one of"),
    (dict(window_hours=10), "window_hours must be >= job_hours"),
    (dict(job_hours=-1), "job_hours must be a positive"),
    (dict(window_hours=[30, 40, 50]), "one per job_hours"),
    (dict(start=np.datetime64("2030-01-01T00")), "not a timestamp of the series"),
    (dict(start=np.datetime64("2024-01-06T12")), "less than window_hours"),
    (dict(forecast_error=-0.1), "forecast_error must be"),
    (dict(min_block_hours=0), "min_block_hours must be"),
    (dict(restart_overhead_hours=float("nan")), "restart_overhead_hours must be"),
])
def test_bad_arguments_raise_naming_them(kw, words):
    args = dict(job_hours=24, window_hours=48, strategy="pause_resume") | kw
    with pytest.raises(ValueError, match=words):
        ss.schedule(_square(), **args)


# ----------------------------------------------------------------------------- net cost model
def test_net_cost_adds_restarts_idle_and_stretched_embodied():
    base = dict(job_energy_kwh=1e6, job_hours=100.0, run_hours=100.0, wall_clock_hours=100.0,
                run_gco2e_per_kwh=200.0, paused_gco2e_per_kwh=np.nan, immediate_gco2e_per_kwh=200.0,
                idle_power_fraction=0.15, embodied_co2e_t=10.0)
    same = msched.schedule_net_co2e_t(**base)
    assert same.net_saving == pytest.approx(0.0) and same.total_co2e_t == pytest.approx(210.0)
    # intensity saving of 25 % over 100 h run inside 200 h, paused hours at 300 g/kWh
    sched = base | dict(run_gco2e_per_kwh=150.0, wall_clock_hours=200.0, paused_gco2e_per_kwh=300.0)
    held = msched.schedule_net_co2e_t(**sched)
    assert held.operational_co2e_t == pytest.approx(150.0)
    assert held.idle_co2e_t == pytest.approx(1e6 * 0.15 * 1.0 * 300 / 1e6)  # 45 t
    assert held.embodied_co2e_t == pytest.approx(20.0)
    assert held.net_saving == pytest.approx(1 - (150 + 45 + 20) / 210)
    released = msched.schedule_net_co2e_t(**sched, release_paused_chips=True)
    assert released.idle_co2e_t == 0.0 and released.embodied_co2e_t == pytest.approx(10.0)
    assert released.net_saving == pytest.approx(1 - 160 / 210)
    restarts = msched.schedule_net_co2e_t(**(sched | dict(run_hours=110.0)), release_paused_chips=True)
    assert restarts.operational_co2e_t == pytest.approx(150.0 * 1.1)


def test_net_cost_rejects_inconsistent_hours_and_works_on_schedule_output():
    with pytest.raises(ValueError, match="run_hours <= wall_clock_hours"):
        msched.schedule_net_co2e_t(job_energy_kwh=1.0, job_hours=10.0, run_hours=12.0, wall_clock_hours=11.0,
                                   run_gco2e_per_kwh=1.0, paused_gco2e_per_kwh=1.0, immediate_gco2e_per_kwh=1.0,
                                   idle_power_fraction=0.1)
    ds = ss.schedule(_square(), job_hours=[24, 48], window_hours=[48, 96], strategy="pause_resume",
                     start=_starts(_square(), 3))
    cost = msched.schedule_net_co2e_t(job_energy_kwh=1e5, job_hours=ds.job_hours, run_hours=ds.run_hours,
                                      wall_clock_hours=ds.wall_clock_hours, run_gco2e_per_kwh=ds.run_gco2e_per_kwh,
                                      paused_gco2e_per_kwh=ds.paused_gco2e_per_kwh,
                                      immediate_gco2e_per_kwh=ds.immediate_gco2e_per_kwh, idle_power_fraction=0.15)
    assert isinstance(cost.net_saving, xr.DataArray) and cost.net_saving.dims == ("job_hours", "start")
    assert (cost.net_saving < ds.saving).all() and (cost.net_saving > 0).all()


# ----------------------------------------------------------------------------- CLI verb, figures
def _cli(argv):
    import argparse

    from scalesim.interface import schedule_cli

    parser = argparse.ArgumentParser()
    schedule_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["schedule", *argv])
    return args.func(args)


def test_schedule_verb_prints_savings(capsys, tmp_path):
    assert _cli(["--region", "DE", "--job-days", "2", "--slack", "1.0"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("pause_resume"))
    assert float(line.split()[1]) > 5.0 and "synthetic typical year" in out
    p = tmp_path / "s.csv"
    p.write_text("datetime,gco2e_per_kwh\n" + "".join(
        f"2024-01-{1 + h // 24:02d} {h % 24:02d}:00,{CLEAN if h % 24 < 12 else DIRTY}\n" for h in range(24 * 5)))
    assert _cli(["--csv", str(p), "--job-days", "1", "--slack", "1", "--strategy", "pause_resume",
                 "--start", "2024-01-01T00:00", "--format", "json"]) == 0
    import json

    res = json.loads(capsys.readouterr().out)["strategies"]["pause_resume"]
    assert res["saving"]["mean"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="--region"):
        _cli(["--job-days", "1"])


def test_schedule_figures_render_under_agg(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from scalesim.interface import _plot_schedule as ps

    fig = ps.plot_schedule_hours(tmp_path / "h.png", _square(), job_hours=12, window_hours=36, days=3)
    assert (tmp_path / "h.png").stat().st_size > 1000 and len(fig.axes[0].collections) == 3
    fig = ps.plot_saving_vs_slack(tmp_path / "s.png", zones=("US-CAL-CISO", "FR"), slacks=(0, 1.0),
                                  job_hours=(48.0, 8.0))
    assert (tmp_path / "s.png").stat().st_size > 1000 and len(fig.axes[0].lines) == 2


def test_parity_one_call_over_lists_equals_one_call_per_element():
    rng = np.random.default_rng(9)
    da = _series(rng.uniform(50, 500, 24 * 8))
    starts = _starts(da, 20)
    many = ss.schedule(da, job_hours=[6, 30], window_hours=[12, 60], strategy=["flexible_start", "pause_resume"],
                       start=starts, min_block_hours=3)
    for strategy in ("flexible_start", "pause_resume"):
        for job, win in ((6, 12), (30, 60)):
            for s in (0, 7, 19):
                one = ss.schedule(da, job_hours=job, window_hours=win, strategy=strategy, start=starts[s],
                                  min_block_hours=3)
                sel = many.sel(strategy=strategy, job_hours=job).isel(start=s)
                assert float(one.saving) == pytest.approx(float(sel.saving), rel=1e-12)  # summation order
                np.testing.assert_array_equal(one.running, sel.running.isel(hour_offset=slice(0, win)))
                assert not sel.running.isel(hour_offset=slice(win, None)).any()
