"""Levers waterfall (issue 16 part 5): each bar is the difference of two independent calls."""

import numpy as np
import pytest

import scalesim as ss
from scalesim.interface import scenarios
from scalesim.solve import levers

#: simulate as the runner (fast); optimize is the default runner and is exercised below once.
SIM = dict(run=ss.simulate, co2e="co2e_t", water="water_l", market_co2e="co2e_market_t")
BASE = dict(n_params=7e9, n_tokens=2e12, hardware="A100-SXM4-80GB", n_chips=256, region="US-MIDA-PJM")
LEVERS = [("hardware", {"hardware": "H100-SXM5-80GB"}),
          ("region", {"region": "FR"}),
          ("clean supply", {"cfe_fraction": 0.8}, "market")]


@pytest.fixture(scope="module")
def corners():
    return levers.waterfall(BASE, LEVERS, **SIM)


def test_each_bar_is_the_difference_of_two_independent_calls(corners):
    a100 = ss.simulate(**BASE)
    h100 = ss.simulate(**{**BASE, "hardware": "H100-SXM5-80GB"})
    fr = ss.simulate(**{**BASE, "hardware": "H100-SXM5-80GB", "region": "FR"})
    cfe = ss.simulate(**{**BASE, "hardware": "H100-SXM5-80GB", "region": "FR", "cfe_fraction": 0.8})
    w = corners.sel
    assert float(w(lever="hardware").co2e_saving_t) == pytest.approx(float(a100.co2e_t - h100.co2e_t), rel=1e-12)
    assert float(w(lever="region").co2e_saving_t) == pytest.approx(float(h100.co2e_t - fr.co2e_t), rel=1e-12)
    assert float(w(lever="region").water_saving_l) == pytest.approx(float(h100.water_l - fr.water_l), rel=1e-12)
    # the market lever: the last location level minus the market-based level of the same configuration + CFE
    assert float(w(lever="clean supply").co2e_saving_t) == pytest.approx(float(fr.co2e_t - cfe.co2e_market_t), rel=1e-12)
    assert float(w(lever="clean supply").co2e_t) == pytest.approx(float(cfe.co2e_market_t), rel=1e-12)


def test_location_bars_telescope_and_the_market_bar_is_separate(corners):
    loc = corners.where(corners.basis == "location", drop=True)
    np.testing.assert_allclose(float(loc.co2e_t[0]) - loc.co2e_saving_t.cumsum("lever"), loc.co2e_t, rtol=1e-12)
    np.testing.assert_allclose(loc.co2e_cumulative_saving_t, loc.co2e_saving_t.cumsum("lever"), rtol=1e-12)
    np.testing.assert_allclose(loc.water_cumulative_saving_l, loc.water_saving_l.cumsum("lever"), rtol=1e-12, atol=1e-6)
    assert list(corners.basis.values) == ["location", "location", "location", "market"]
    assert np.isnan(float(corners.sel(lever="clean supply").co2e_cumulative_saving_t))  # never summed
    assert "market" in corners.basis.attrs["description"]
    assert corners.co2e_t.attrs["units"] == "t" and corners.water_l.attrs["units"] == "L"


def test_corner_bands_contain_the_central_values(corners):
    for name in levers.VARIABLES:
        lo, mid, hi = corners[f"{name}_low"], corners[name], corners[f"{name}_high"]
        ok = (lo <= mid + 1e-9) & (mid <= hi + 1e-9) | mid.isnull()
        assert bool(ok.all()), name
    assert float(corners.co2e_t_high[0]) > float(corners.co2e_t[0]) > float(corners.co2e_t_low[0])


def test_monte_carlo_bands_are_paired_quantiles_that_contain_the_central_values():
    ds = levers.waterfall({**BASE, "samples": 200, "seed": 0}, LEVERS[:2], **SIM)
    assert ds.attrs["bands"] == "samples"
    for name in ("co2e_t", "co2e_saving_t", "water_l"):
        assert bool((ds[f"{name}_low"] <= ds[name] + 1e-9).all() & (ds[name] <= ds[f"{name}_high"] + 1e-9).all()), name
    # paired draws: the hardware saving's band is narrower than the difference of the two levels' bands
    width = float(ds.co2e_saving_t_high[1] - ds.co2e_saving_t_low[1])
    assert width < float(ds.co2e_t_high[0] - ds.co2e_t_low[1])


def test_lists_keep_their_dimension():
    ds = levers.waterfall({**BASE, "n_chips": [128, 512]}, LEVERS[:1], **SIM)
    assert ds.co2e_t.dims == ("lever", "n_chips")


@pytest.mark.parametrize("lever_list, match", [
    ([], "at least one lever"),
    ([("x", {"region": "FR"}, "market"), ("y", {"hardware": "h100"})], "before market-based"),
    ([("x", {"region": "FR"}), ("x", {"hardware": "h100"})], "new string"),
    ([("x", {"region": "FR"}, "carbon")], "basis must be one of"),
    ([("x", "FR")], "overrides must be a dict"),
    ([("baseline", {"region": "FR"})], "new string"),
    ([("x", {"region": "FR"}, "market", "extra")], r"must be \(name, overrides\)"),
])
def test_bad_levers_raise_naming_the_problem(lever_list, match):
    with pytest.raises(ValueError, match=match):
        levers.waterfall(BASE, lever_list, **SIM)


def test_a_missing_result_variable_names_the_fix():
    with pytest.raises(ValueError, match="lifetime_co2e_t.*co2e="):
        levers.waterfall(BASE, LEVERS[:1], run=ss.simulate)
    with pytest.raises(ValueError, match="bands='samples' needs samples"):
        levers.waterfall(BASE, LEVERS[:1], bands="samples", **SIM)
    with pytest.raises(ValueError, match="q must be two quantile levels"):
        levers.waterfall(BASE, LEVERS[:1], q=(5, 95), **SIM)


def test_a_market_lever_read_from_optimize_needs_the_market_objective():
    with pytest.raises(ValueError, match="objective='co2e_market_t'"):
        levers.waterfall(dict(target_loss=2.4, hardware="h100", region="FR"), [("cfe", {"cfe_fraction": 0.8}, "market")])


def test_corners_with_defaults_in_base_replace_them():
    ds = levers.waterfall({**BASE, "defaults": "central"}, LEVERS[:1], **SIM)
    assert float(ds.co2e_t_high[0]) > float(ds.co2e_t[0])


def test_optimize_lever_equals_two_optimize_calls():
    base = dict(target_loss=2.4, hardware="H100-SXM5-80GB", region="FR", inference_tokens=1e12, n_chips=256,
                n_params_bounds=(1e9, 3e10))
    cfe = {"cfe_fraction": 0.8, "objective": "co2e_market_t"}
    ds = levers.waterfall(base, [("int4 serving", {"inference_dtype": "int4"}), ("cfe", cfe, "market")], bands="none")
    direct, int4 = ss.optimize(**base), ss.optimize(**base, inference_dtype="int4")
    market = ss.optimize(**base, inference_dtype="int4", **cfe)
    assert float(ds.co2e_saving_t[1]) == pytest.approx(float(direct.lifetime_co2e_t - int4.lifetime_co2e_t), rel=1e-9)
    assert float(ds.water_l[1]) == pytest.approx(float(int4.lifetime_water_l), rel=1e-9)
    assert float(ds.co2e_t[2]) == pytest.approx(float(market.objective), rel=1e-9)  # market-based lifetime total
    assert float(ds.co2e_saving_t[2]) == pytest.approx(float(int4.lifetime_co2e_t - market.objective), rel=1e-9)
    assert ds.basis.values[2] == "market" and np.isnan(float(ds.co2e_cumulative_saving_t[2]))


# ----------------------------------------------------------------------------- scenario and figure
def test_shipped_scenario_is_the_figure_example():
    from scalesim.interface._plot_levers import EXAMPLE

    sc = scenarios.load_scenario("scenarios/levers.toml")
    base = {k: (tuple(v) if k.endswith("_bounds") else v) for k, v in {**sc.optimize, **sc.sweep}.items()}
    assert base == EXAMPLE["base"]
    assert [tuple(lv) for lv in sc.levers] == EXAMPLE["levers"]
    assert sc.output["figures"] == ["levers_waterfall"]


def _write(tmp_path, body):
    path = tmp_path / "lv.toml"
    path.write_text('[sweep]\nhardware = "A100-SXM4-80GB"\nregion = "FR"\n[optimize]\ntarget_loss = 2.2\n' + body)
    return path


@pytest.mark.parametrize("body, match", [
    ('[[levers]]\nname = "x"\nset = {hardwear = "h100"}\n', r"levers\[0\]\.set\.hardwear: unknown key.*'hardware'"),
    ('[[levers]]\nname = "x"\nset = {hardware = ["h100", "b200"]}\n', r"levers\[0\]\.set\.hardware: must be a single value"),
    ('[[levers]]\nname = "x"\nbasis = "market"\nset = {cfe_fraction = 0.5}\n[[levers]]\nname = "y"\nset = {region = "DE"}\n',
     r"levers\[1\]\.basis: location-based levers must come before"),
    ('[[levers]]\nname = "x"\nset = {region = "XX"}\n', r"levers\[0\]\.set\.region: unknown region"),
    ('[[levers]]\nname = "x"\nset = {schedule = "pause_resume"}\n', r"levers\[0\]\.set: with the levers before it: schedule needs"),
    ('[[levers]]\nname = "x"\n', r"levers\[0\]\.set: must be a non-empty table"),
    ('[[levers]]\nname = "baseline"\nset = {region = "DE"}\n', r"levers\[0\]\.name: must be a new"),
])
def test_bad_levers_section_is_a_scenario_error_with_the_key_path(tmp_path, body, match):
    with pytest.raises(scenarios.ScenarioError, match=match):
        scenarios.load_scenario(_write(tmp_path, body))


def test_levers_need_an_optimize_section(tmp_path):
    path = tmp_path / "lv.toml"
    path.write_text('[sweep]\nhardware = "h100"\nregion = "FR"\nn_params = 7e9\nn_tokens = 2e12\n'
                    '[[levers]]\nname = "x"\nset = {region = "DE"}\n')
    with pytest.raises(scenarios.ScenarioError, match=r"levers: needs an \[optimize\] section"):
        scenarios.load_scenario(path)


def test_waterfall_figure_renders_under_agg(corners):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scalesim.interface import plotting

    ax = plotting.FIGURES["levers_waterfall"](corners)
    fig = ax.figure
    assert len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert any("[market-based]" in t for t in labels) and "result (location)" in labels
    plt.close(fig)
