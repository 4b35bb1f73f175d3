"""Every figure function renders under Agg, labels axes from attrs and saves atomically."""

import subprocess
import sys

import numpy as np
import pytest

import scalesim as ss

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from scalesim.interface import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _law():
    return "besiroglu2024"


def test_import_scalesim_does_not_import_matplotlib():
    code = "import sys, scalesim, scalesim.interface.plotting, scalesim.interface.scenarios, scalesim.interface.cli; " \
           "print([m for m in ('matplotlib', 'dask', 'sympy', 'scipy.optimize') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_emissions_plane_with_loss_contours_and_paths():
    law = _law()
    ds = ss.simulate(n_params=ss.logspace(1e8, 1e11, 8), n_tokens=ss.logspace(1e10, 1e13, 9),
                     hardware="h100", n_chips=64, region=["FR", "US"], law=law)
    ax = plotting.plot_emissions_plane(ds, select={"region": "US"},
                                       paths={"compute-optimal": ([1e9, 1e10], [2e10, 2e11])})
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "parameters" and "tokens" in ax.get_ylabel()
    assert ax.collections and ax.get_legend() is not None
    cbar_label = ax.figure.axes[-1].get_ylabel()
    assert "tCO2e" in cbar_label


def test_emissions_plane_needs_the_plane():
    ds = ss.simulate(n_params=1e9, n_tokens=1e10, hardware="h100", n_chips=8, region="FR")
    with pytest.raises(ValueError, match="n_params"):
        plotting.plot_emissions_plane(ds)


def test_pareto_front_and_mask():
    assert plotting.pareto_mask([1, 2, 3, 2.5], [3, 2, 1, 2.5]).tolist() == [True, True, True, False]
    ds = ss.simulate(n_params=ss.logspace(1e8, 1e11, 6), n_tokens=ss.logspace(1e10, 1e13, 6),
                     hardware="h100", n_chips=64, region=["SE", "US"], law=_law())
    ax = plotting.plot_pareto_front(ds)
    assert len(ax.get_legend().get_texts()) == 2 and ax.get_xscale() == "log"
    assert "loss" in ax.get_ylabel()


def test_region_hardware_bars_and_hardware_bars():
    ds = ss.simulate(n_params=7e9, n_tokens=1e11, hardware=["A100-SXM4-80GB", "H100-SXM5-80GB"],
                     n_chips=256, region=["SE", "FR", "US"])
    ax = plotting.plot_region_hardware_bars(ds)
    assert len(ax.patches) == 6 and ax.get_ylabel() == "operational emissions [tCO2e]"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["SE", "FR", "US"]
    ax = plotting.plot_hardware_bars(ds, var="energy_kwh", select={"region": "FR"})
    assert len(ax.patches) == 2 and ax.get_ylabel() == "facility energy [kWh]"


def test_diurnal():
    ds = ss.simulate(n_params=1e9, n_tokens=2e10, hardware="h100", n_chips=64, region=["US-CAL-CISO", "DE"],
                     start_hour=np.arange(24.0))
    fig, ax = plt.subplots()
    assert plotting.plot_diurnal(ds, ax=ax) is ax
    assert len(ax.lines) >= 4 and "start hour" in ax.get_xlabel()


def test_validation_reexport():
    from scalesim import validation as validate
    ax = plotting.plot_validation(validate.validate(mode="accounting"))
    assert ax.get_xlabel() or ax.get_ylabel()


def test_label_from_attrs():
    ds = ss.simulate(n_params=1e9, n_tokens=1e10, hardware="h100", n_chips=8, region="FR")
    assert plotting.label(ds["energy_kwh"]) == "facility energy [kWh]"
    assert plotting.label(ds["mfu"]) == "model FLOPs utilisation"
    assert len(set(plotting.OKABE_ITO)) == 8


def test_save_figure_atomic(tmp_path, monkeypatch):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    paths = plotting.save_figure(fig, tmp_path / "sub" / "f", formats=("png", "pdf", "svg"))
    assert [p.name for p in paths] == ["f.png", "f.pdf", "f.svg"] and all(p.stat().st_size for p in paths)

    def broken(self, fname, **kw):
        open(fname, "wb").write(b"partial")
        raise RuntimeError("interrupted")
    monkeypatch.setattr(type(fig), "savefig", broken)
    with pytest.raises(RuntimeError):
        plotting.save_figure(fig, tmp_path / "g", formats=("png",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_make_all_figures_subset(tmp_path):
    written = plotting.make_all_figures(tmp_path, formats=("png",), only=["region_hardware_bars", "diurnal"])
    assert set(written) == {"region_hardware_bars", "diurnal"}
    assert (tmp_path / "diurnal.png").exists() and (tmp_path / "region_hardware_bars.png").exists()
    with pytest.raises(ValueError, match="only"):
        plotting.make_all_figures(tmp_path, only=["nope"])


def test_validation_panels_render(tmp_path):
    from scalesim import validation as validate
    fig = plotting.plot_validation_panels(validate.validate(mode="prediction"))
    left, right = fig.axes[:2]
    assert "leave-one-out" in left.get_ylabel() and "[h]" in left.get_xlabel()
    assert "[t]" in right.get_xlabel()
    written = plotting.make_all_figures(tmp_path, formats=("png",), only=["validation_prediction"])
    assert (tmp_path / "validation_prediction.png").exists() and written["validation_prediction"]
