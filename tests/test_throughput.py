"""API tests of scalesim.throughput: parity, dims, forced plans, and the physics the model must show."""

import numpy as np
import pytest
import xarray as xr

import scalesim as ss

JOB = dict(n_params=70e9, seq_len=4096, global_batch_tokens=4e6)


def test_scalar_array_dataarray_parity():
    scalar = ss.throughput(**JOB, hardware="H100", n_chips=512)
    assert scalar.step_time_s.ndim == 0
    arr = ss.throughput(**JOB, hardware="H100", n_chips=[256, 512])
    assert arr.step_time_s.dims == ("n_chips",) and list(arr.n_chips.values) == [256, 512]
    da = ss.throughput(**JOB, hardware="H100", n_chips=xr.DataArray([512.0, 256.0], dims="cluster"))
    assert da.step_time_s.dims == ("cluster",)
    assert float(arr.step_time_s.sel(n_chips=512)) == pytest.approx(float(scalar.step_time_s))
    assert float(da.step_time_s[0]) == pytest.approx(float(scalar.step_time_s))
    hw = ss.throughput(**JOB, hardware=["A100", "H100"], n_chips=512)
    assert float(hw.step_time_s.sel(hardware="H100")) == pytest.approx(float(scalar.step_time_s))


def test_outputs_are_consistent_and_carry_units():
    ds = ss.throughput(**JOB, hardware="H100", n_chips=512)
    assert float(ds.tokens_per_s) == pytest.approx(4e6 / float(ds.step_time_s))
    assert float(ds.mfu) == pytest.approx(float(ds.model_flop_per_s_per_chip) / 989.5e12)
    assert float(ds.tp * ds.pp * ds.cp * ds.dp) == 512
    shares = sum(float(ds[f"share_{k}"]) for k in ("compute", "memory_bound", "bubble", "exposed_tp_comm",
                                                 "exposed_dp_comm", "exposed_ep_comm", "exposed_cp_comm",
                                                 "recompute"))
    assert shares == pytest.approx(1.0, abs=0.02)
    assert bool(ds.feasible) and ds.memory_per_chip_gb < 80
    for v in ("mfu", "step_time_s", "tokens_per_s", "memory_per_chip_gb"):
        assert ds[v].attrs["units"] and ds[v].attrs["long_name"]
    assert "Brown et al. 2020" in ss.throughput(n_params=7e9, hardware="H100", n_chips=64).attrs["defaults_used"]


def test_h100_vs_a100_and_b200_vs_h100():
    ds = ss.throughput(**JOB, hardware=["A100", "H100", "B200"], n_chips=512)
    tps = ds.tokens_per_s
    assert float(tps.sel(hardware="H100") / tps.sel(hardware="A100")) >= 1.8
    assert float(tps.sel(hardware="B200")) > float(tps.sel(hardware="H100"))


def test_strong_scaling_mfu_does_not_rise():
    ds = ss.throughput(n_params=13e9, seq_len=4096, global_batch_tokens=4e6, hardware="H100",
                       n_chips=[64, 128, 256, 512, 1024, 2048])
    mfu = ds.mfu.values
    assert np.all(np.diff(mfu) <= 1e-9)
    assert mfu[-1] < mfu[0]


def test_moe_below_dense_of_same_active_size():
    ds = ss.throughput(n_params=[47e9, 13e9], n_active_params=13e9, seq_len=4096, global_batch_tokens=4e6,
                       hardware="H100", n_chips=256)
    moe, dense = ds.mfu.values
    assert moe < dense


def test_fp8_faster_but_lower_fraction_of_its_peak():
    ds = ss.throughput(**JOB, hardware="H100", n_chips=512, dtype=["bf16", "fp8"])
    flops = ds.model_flop_per_s_per_chip
    assert float(flops.sel(dtype="fp8")) > float(flops.sel(dtype="bf16"))
    assert float(ds.mfu.sel(dtype="fp8")) < float(ds.mfu.sel(dtype="bf16"))


@pytest.mark.parametrize("plan, words", [(dict(tp=16), "scale-up domain"), (dict(pp=128), "pp exceeds n_layers"),
                                         (dict(tp=1, pp=1, zero=0), "does not fit")])
def test_forced_infeasible_plan_raises_naming_the_constraint(plan, words):
    with pytest.raises(ValueError, match=words):
        ss.throughput(**JOB, hardware="H100", n_chips=512, **plan)


def test_unforced_infeasible_is_nan_with_reason():
    ds = ss.throughput(n_params=[7e9, 2e12], hardware="H100", n_chips=8, global_batch_tokens=8 * 4096)
    assert bool(ds.feasible.sel(n_params=7e9)) and not bool(ds.feasible.sel(n_params=2e12))
    assert np.isnan(float(ds.step_time_s.sel(n_params=2e12)))
    assert str(ds.reason.sel(n_params=2e12).values) == "does not fit in HBM"


def test_forced_plan_is_used():
    ds = ss.throughput(**JOB, hardware="H100", n_chips=512, tp=4, pp=4, micro_batch=1, recompute="full")
    assert (float(ds.tp), float(ds.pp), float(ds.micro_batch), str(ds.recompute.values)) == (4, 4, 1, "full")
    assert float(ds.hfu) == pytest.approx(float(ds.mfu) * 4 / 3)


@pytest.mark.parametrize("hw", ["H200", "GB200", "MI355X", "TPUv6e", "Gaudi2", "H100 (96GB HBM2e, 500 W)", "B300",
                                "GB300", "TPUv7", "MI325X", "MI350X"])
def test_benchmark_hardware_ids_resolve(hw):
    ds = ss.throughput(n_params=8e9, hardware=hw, n_chips=64, seq_len=4096, global_batch_tokens=1e6)
    assert bool(ds.feasible)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="recompute"):
        ss.throughput(n_params=7e9, hardware="H100", n_chips=8, recompute="some")
    with pytest.raises(ValueError, match="n_chips"):
        ss.throughput(n_params=7e9, hardware="H100", n_chips=-8)
    with pytest.raises(ValueError, match="dtype"):
        ss.throughput(n_params=7e9, hardware="H100", n_chips=8, dtype="fp7")
    with pytest.raises(ValueError, match="n_active_params"):
        ss.throughput(n_params=7e9, n_active_params=8e9, hardware="H100", n_chips=8)


def test_validation_figure_renders_under_agg(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from scalesim.interface._plot_throughput import plot_throughput_validation

    fig = plot_throughput_validation(tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 10_000
    assert fig.axes[0].get_xscale() == "log"
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("Blackwell hold-out, never fitted (75:") for t in labels)
    fig = plot_throughput_validation(holdout=False)
    assert not any("hold-out" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_fsdp_70b_on_grace_blackwell_offloads_where_a_pcie_host_recomputes():
    """Megatron-Bridge runs Llama 3 70B with FSDP on 64 GB200 with cpu_offloading_num_layers (its performance
    recipes): the search finds that plan where the chip has NVLink-C2C to its CPU, and full recomputation on a
    B200's PCIe host; forcing offload there names the missing link."""
    kw = dict(n_params=70.6e9, n_layers=80, d_model=8192, n_heads=64, n_kv_heads=8, ffn_dim=28672,
              vocab_size=128256, n_chips=64, seq_len=8192, global_batch_tokens=256 * 8192, dtype="fp8", tp=1, pp=1,
              cp=1, micro_batch=2, fsdp=True)
    grace, pcie = ss.throughput(hardware="GB200", **kw), ss.throughput(hardware="B200", **kw)
    assert str(grace["recompute"].values) == "offload" and str(pcie["recompute"].values) == "full"
    recomputed = ss.throughput(hardware="GB200", recompute="full", **kw)
    assert float(grace["step_time_s"]) < 0.85 * float(recomputed["step_time_s"])
    assert float(grace["hfu"]) == pytest.approx(float(grace["mfu"]))
    with pytest.raises(ValueError, match="recompute=offload.*NVLink-C2C"):
        ss.throughput(hardware="B200", recompute="offload", **kw)
