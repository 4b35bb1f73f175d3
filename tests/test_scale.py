"""Scale (issue 13): outputs= computes only what is asked; the grid optimum on dask-backed results."""

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim import variables

SWEEP = dict(n_params=ss.logspace(1e8, 1e12, 5), n_tokens=ss.logspace(1e10, 1e13, 4),
             hardware=["H100-SXM5-80GB", "A100-SXM4-80GB"], region=["FR", "DE", "GB"], n_chips=1024)


def _same_as_full(sub, full):
    for name in sub.data_vars:
        assert sub[name].dims == full[name].dims, name
        np.testing.assert_allclose(sub[name].values, full[name].values, rtol=1e-13, err_msg=name)
        assert sub[name].attrs == full[name].attrs, name


def test_co2e_alone_equals_the_full_computation_and_nothing_else_is_returned():
    full = ss.simulate(**SWEEP)
    sub = ss.simulate(**SWEEP, outputs=["co2e_t"])
    assert list(sub.data_vars) == ["co2e_t"]
    _same_as_full(sub, full)


@pytest.mark.parametrize("asked", [["total_co2e_t", "wall_days"], ["water_l", "energy_kwh"], "embodied_co2e_t",
                                   ["chip_hours", "it_energy_kwh", "water_onsite_l", "water_offsite_l", "pue",
                                    "grid_gco2e_per_kwh", "flop", "mfu", "chip_power_w"]])
def test_each_subset_equals_the_full_computation(asked):
    full = ss.simulate(**SWEEP)
    sub = ss.simulate(**SWEEP, outputs=asked)
    assert set(sub.data_vars) == ({asked} if isinstance(asked, str) else set(asked))
    _same_as_full(sub, full)


@pytest.mark.parametrize("extra", [dict(start_hour=[0.0, 12.0]), dict(samples=3), dict(law="besiroglu2024")])
def test_subsets_on_the_other_paths_equal_the_full_computation(extra):
    asked = ["co2e_t", "total_co2e_t"] + (["loss"] if "law" in extra else [])
    full = ss.simulate(**SWEEP, **extra)
    sub = ss.simulate(**SWEEP, **extra, outputs=asked)
    assert set(sub.data_vars) == set(asked)
    _same_as_full(sub, full)


def test_accounting_mode_subset():
    kw = dict(hardware="V100-SXM2-32GB", chip_hours=3.552e6, chip_power_w=330, pue=1.1, grid_gco2e_per_kwh=[429.0, 100.0])
    _same_as_full(ss.simulate(**kw, outputs="co2e_t"), ss.simulate(**kw))


def test_co2e_alone_resolves_neither_water_nor_embodied_defaults():
    used = {d["name"].split(":")[0] for d in ss.simulate(**SWEEP, outputs="co2e_t").scalesim.defaults}
    everything = {d["name"].split(":")[0] for d in ss.simulate(**SWEEP).scalesim.defaults}
    assert {"wue_l_per_kwh", "embodied_kgco2e_per_chip"} <= everything
    assert not used & {"wue_l_per_kwh", "ewif_l_per_kwh", "embodied_kgco2e_per_chip", "lifetime_years"}


def test_default_is_the_full_set():
    ds = ss.simulate(**SWEEP)
    produced = {"flop", "mfu", "chip_hours", "wall_days", "chip_power_w", "it_energy_kwh", "energy_kwh", "pue",
                "grid_gco2e_per_kwh", "co2e_t", "co2e_market_t", "embodied_co2e_t", "total_co2e_t", "water_onsite_l",
                "water_offsite_l", "water_l"}
    assert set(ds.data_vars) == produced


def test_unknown_output_names_the_closest_match():
    with pytest.raises(ValueError, match="outputs.*co2e_t"):
        ss.simulate(**SWEEP, outputs=["co2_t"])
    assert "co2e_t" in variables.VARIABLES


def test_an_output_these_inputs_cannot_give_says_what_it_needs():
    with pytest.raises(ValueError, match="'loss'.*law="):
        ss.simulate(**SWEEP, outputs=["co2e_t", "loss"])
    with pytest.raises(ValueError, match="'wall_days'.*n_chips"):
        ss.simulate(hardware="V100-SXM2-32GB", chip_hours=1e6, pue=1.1, grid_gco2e_per_kwh=400.0, outputs="wall_days")


def test_optimize_does_not_take_outputs():
    with pytest.raises(ValueError, match="unknown optimize input.*outputs"):
        ss.optimize(target_loss=2.3, hardware="h100", region="FR", n_chips=1024, outputs="co2e_t")


# ----------------------------------------------------------------------------- dask-backed optimum
def _lazy_and_eager():
    n = ss.logspace(1e8, 1e12, 7)
    kw = dict(n_tokens=ss.logspace(1e10, 1e14, 6), hardware=["H100-SXM5-80GB", "A100-SXM4-80GB", "TPUv5p"],
              region=["FR", "DE", "US", "PL"], n_chips=1024, law="besiroglu2024", mfu="hierarchical")
    lazy = ss.simulate(n_params=xr.DataArray(n, dims="n_params", coords={"n_params": n}).chunk(2), **kw)
    return lazy, ss.simulate(n_params=n, **kw)


@pytest.mark.parametrize("kw", [{}, dict(target_loss=2.3, wall_days_max=30.0), dict(target_loss=1.0),
                                dict(over=("n_params", "hardware"), target_loss=2.3)])
def test_optimum_of_a_dask_backed_result_equals_the_numpy_one(kw):
    import dask

    lazy, eager = _lazy_and_eager()
    assert hasattr(lazy.co2e_t.data, "dask")
    with dask.config.set(scheduler="sync"):
        got = lazy.scalesim.optimum(**kw)
    assert not hasattr(got.co2e_t.data, "dask")  # in memory: the size of the kept dims
    want = eager.scalesim.optimum(**kw)
    got.attrs.pop("inputs"), want.attrs.pop("inputs")  # describes the DataArray input, not its values
    xr.testing.assert_identical(got, want)


def test_optimum_is_the_first_minimum_over_the_stacked_cells():
    obj = xr.DataArray([[3.0, 1.0, 2.0], [1.0, 5.0, np.nan]], dims=("a", "b"), coords={"a": [10, 20], "b": [1, 2, 3]})
    ds = xr.Dataset({"co2e_t": obj})
    res = ds.scalesim.optimum(over=("a", "b"))
    assert (float(res.a_opt), float(res.b_opt)) == (10.0, 2.0)  # ties: the first in C order of `over`
    res = ds.scalesim.optimum(over=("b", "a"))
    assert (float(res.a_opt), float(res.b_opt)) == (20.0, 1.0)
    res = xr.Dataset({"co2e_t": obj.chunk(1)}).scalesim.optimum(over=("a", "b"), co2e_t_max=0.5)
    assert not bool(res.feasible) and np.isnan(float(res.a_opt))
