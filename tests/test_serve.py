"""scalesim.serve: broadcasting parity, input errors, feasibility, the site chain (PUE once), attrs."""

import numpy as np
import pytest
import xarray as xr

import scalesim as ss
from scalesim.chain import serving as chain
from scalesim.units import J_PER_KWH


def test_scalar_array_dataarray_and_loop_agree():
    b = [8, 64, 512]
    ds = ss.serve(n_params=70e9, hardware="h100", n_chips=4, batch_size=b)
    assert ds.gpu_energy_per_token_j.dims == ("batch_size",)
    assert list(ds.batch_size.values) == b
    da = ss.serve(n_params=70e9, hardware="h100", n_chips=4,
                  batch_size=xr.DataArray(b, dims=["cfg"], coords={"cfg": ["a", "b", "c"]}))
    assert da.gpu_energy_per_token_j.dims == ("cfg",)
    loop = [float(ss.serve(n_params=70e9, hardware="h100", n_chips=4, batch_size=x).gpu_energy_per_token_j) for x in b]
    assert ss.serve(n_params=70e9, hardware="h100", n_chips=4, batch_size=8).gpu_energy_per_token_j.ndim == 0
    np.testing.assert_allclose(ds.gpu_energy_per_token_j.values, loop, rtol=1e-12)
    np.testing.assert_allclose(da.gpu_energy_per_token_j.values, loop, rtol=1e-12)


def test_two_swept_inputs_make_a_grid():
    ds = ss.serve(n_params=[8e9, 14e9], hardware=["h100", "B200"], batch_size=[1, 64])
    assert dict(ds.sizes) == {"n_params": 2, "hardware": 2, "batch_size": 2}
    e = ds.gpu_energy_per_token_j
    assert bool((e.sel(hardware="B200") < e.sel(hardware="h100")).all())  # more bandwidth and FLOPs per watt


@pytest.mark.parametrize("kw, name", [(dict(batch_size=0), "batch_size"), (dict(batch_size=-4), "batch_size"),
                                      (dict(output_tokens=0), "output_tokens"), (dict(dtype="int3"), "dtype"),
                                      (dict(kv_dtype="fp9"), "kv_dtype"), (dict(n_chips=2, tp=3), "tp"),
                                      (dict(n_active_params=9e9), "n_active_params")])
def test_bad_inputs_name_the_argument(kw, name):
    with pytest.raises(ValueError, match=name):
        ss.serve(**{**dict(n_params=8e9, hardware="h100"), **kw})


def test_unknown_hardware_lists_close_matches():
    with pytest.raises(ValueError, match="H100"):
        ss.serve(n_params=8e9, hardware="H100-SXM9")


def test_infeasible_scalar_raises_with_memory_and_sweep_gives_nan():
    with pytest.raises(ValueError, match=r"needs 1\d\d\.\d GB per chip .* 77\.3 GB available"):
        ss.serve(n_params=70e9, hardware="h100", n_chips=1)
    ds = ss.serve(n_params=70e9, hardware="h100", n_chips=[1, 4])
    assert list(ds.feasible.values) == [False, True]
    assert np.isnan(ds.gpu_energy_per_token_j.values[0]) and np.isfinite(ds.gpu_energy_per_token_j.values[1])
    assert np.isnan(ds.energy_kwh.values[0])
    assert ds.memory_per_chip_gb.values[0] > ds.memory_available_gb.values[0]


def test_pue_applied_once_and_zero_grid_gives_zero_carbon():
    ds = ss.serve(n_params=8e9, hardware="h100", batch_size=64, served_tokens=1e9, pue=1.0, grid_gco2e_per_kwh=0.0)
    it_kwh = float(ds.energy_per_token_j) * 1e9 / J_PER_KWH
    assert float(ds.energy_kwh) == pytest.approx(it_kwh)
    assert float(ds.co2e_t) == 0.0
    ds2 = ss.serve(n_params=8e9, hardware="h100", batch_size=64, served_tokens=1e9, pue=1.25, grid_gco2e_per_kwh=400.0)
    assert float(ds2.energy_kwh) == pytest.approx(1.25 * it_kwh)
    assert float(ds2.co2e_t) == pytest.approx(1.25 * it_kwh * 400 / 1e6)


def test_region_gives_carbon_and_host_share_exceeds_gpu_energy():
    ds = ss.serve(n_params=8e9, hardware="h100", batch_size=64, region=["FR", "DE"])
    assert ds.co2e_t.dims == ("region",)
    assert float(ds.co2e_t.sel(region="DE")) > float(ds.co2e_t.sel(region="FR"))
    assert float(ds.energy_per_token_j) > float(ds.gpu_energy_per_token_j)
    assert np.all(ds.pue.values >= 1.0) and np.all(ds.water_l.values > 0)
    no_grid = ss.serve(n_params=8e9, hardware="h100")
    assert "co2e_t" not in no_grid and "energy_kwh" in no_grid


def test_attrs_units_and_defaults_recorded():
    ds = ss.serve(n_params=8e9, hardware="h100", batch_size=[1, 8])
    for name, (units, _, _) in chain.VARIABLES.items():
        if name in ds:
            assert ds[name].attrs["units"] == units, name
    assert "ShareGPT" in ds.attrs["defaults_used"] and "mlenergy2026" not in ds.attrs["parameters"]
    assert ds.to_dataframe().shape[0] == 2


def test_score_inputs_resolve_and_moe_with_ep_runs():
    # what ../shared/tools/serve_compare.py passes: precision, tensor/expert parallel, mean output length
    ds = ss.serve(n_params=235e9, n_active_params=22e9, hardware="B200", n_chips=8.0, batch_size=64.0, dtype="fp8",
                  output_tokens=612.5, tp=8.0, ep=8.0)
    assert bool(ds.feasible) and float(ds.gpu_energy_per_token_j) > 0
    dense = ss.serve(n_params=235e9, hardware="B200", n_chips=8.0, batch_size=64.0, dtype="fp8", output_tokens=612.5)
    assert float(ds.gpu_energy_per_token_j) < float(dense.gpu_energy_per_token_j)


def test_cli_verb_flags_come_from_the_serve_table(capsys):
    import argparse

    from scalesim import inputs
    from scalesim.interface import serve_cli

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    text = serve_cli.add_parser(sub).format_help()
    for spec in inputs.SERVE.values():
        assert spec.flag in text, spec.name
    args = parser.parse_args(["serve", "--n-params", "70e9", "--hardware", "h100", "--n-chips", "4",
                              "--batch-size", "8,64,512", "--format", "csv"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("batch_size,feasible") and len(lines) == 4


def test_figure_renders_under_agg(tmp_path):
    from scalesim.interface import _plot_serving

    path = _plot_serving.energy_vs_batch(tmp_path / "serve.png")
    assert path.exists() and path.stat().st_size > 10_000
