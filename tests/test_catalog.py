"""Catalogue: ids, aliases, ranges, provenance."""

import numpy as np
import pytest

from scalesim import catalog


def test_every_reference_accelerator_plus_h800():
    ids = catalog.hardware_ids()
    for hid in ("V100-SXM2-32GB", "A100-SXM4-40GB", "A100-SXM4-80GB", "H100-SXM5-80GB", "H200-SXM-141GB", "B200",
                "GB200", "MI250X", "MI300X", "TPUv2", "TPUv3", "TPUv4", "TPUv5e", "TPUv5p", "TPUv6e", "Gaudi2",
                "Gaudi3", "H800-SXM5-80GB", "B300", "GB300", "MI325X", "MI350X", "MI355X", "TPUv7",
                "H100-SXM5-96GB-500W"):
        assert hid in ids
    assert len(ids) == 28


@pytest.mark.parametrize("alias, hid", [("h100", "H100-SXM5-80GB"), ("H100-SXM", "H100-SXM5-80GB"),
                                        ("A100", "A100-SXM4-80GB"), ("tpu-v4", "TPUv4"), ("Trillium", "TPUv6e")])
def test_aliases_case_insensitive(alias, hid):
    assert catalog.get_hardware(alias).hardware_id == hid


def test_dense_peaks_are_half_the_sparse_headline():
    assert catalog.get_hardware("H100").peak_flop_per_s("bf16") == pytest.approx(989.5e12)
    assert catalog.get_hardware("A100").peak_flop_per_s("bf16") == pytest.approx(312e12)


@pytest.mark.parametrize("code, rid", [("FR", "FR"), ("fra", "FR"), ("US-CAL-CISO", "US-CAL-CISO"),
                                      ("egrid:camx", "egrid:CAMX"), ("gcp:us-central1", "gcp:us-central1"),
                                      ("aws:eu-west-1", "aws:eu-west-1"), ("azure:westeurope", "azure:westeurope"),
                                      ("KY", "KY"), ("CY", "CY")])
def test_region_codes(code, rid):
    assert catalog.get_region(code).region_id == rid


def test_region_values_ranges_and_basis():
    for rid in catalog.region_ids():
        r = catalog.get_region(rid)
        assert r.gco2e_per_kwh_low <= r.gco2e_per_kwh <= r.gco2e_per_kwh_high, rid
        assert r.basis and r.source and r.year and r.licence
    assert catalog.get_region("FR").gco2e_per_kwh == pytest.approx(44.18)  # Ember 2024
    assert catalog.get_region("egrid:CAMX").gco2e_per_kwh == pytest.approx(226.5)  # eGRID2022
    assert "ODbL" in catalog.get_region("US-CAL-CISO").licence


def test_diurnal_profiles_average_to_one():
    for zone in ("US-CAL-CISO", "DE-LU", "GB", "FR (ENTSO-E)"):
        year, prof, src = catalog.diurnal_profile(zone)
        assert len(prof) == 24 and abs(sum(prof) / 24 - 1) < 0.02 and src


def test_unknown_operator_and_region_messages():
    with pytest.raises(ValueError, match="closest matches: google"):
        catalog.datacenter_value("gogle", "pue")
    with pytest.raises(ValueError, match="unknown region 'Frnce'"):
        catalog.get_region("Frnce")


def test_tpu_power_estimates_are_flagged():
    for hid in ("TPUv5e", "TPUv5p", "TPUv6e"):
        hw = catalog.get_hardware(hid)
        lo, mid, hi = hw.system_power_w
        assert lo <= mid <= hi and hw.system_power_basis == "estimate"
    assert catalog.get_hardware("TPUv4").system_power_w[1] == 378.5  # PaLM App. B


def test_matmul_fraction_is_the_measured_mamf_over_the_peak():
    # Bekman's mamf-finder v2 BF16 table: H100 SXM 794.5 of 989 (80.3 %), A100 SXM 271.2 of 312 (86.9 %),
    # MI300X 668.4 of 1300 (51.4 %; 1307.4 in this catalogue)
    assert catalog.get_hardware("H100").matmul_fraction == pytest.approx(794.5 / 989.5)
    assert catalog.get_hardware("A100").matmul_fraction == pytest.approx(271.2 / 312.0)
    assert catalog.get_hardware("MI300X").matmul_fraction == pytest.approx(668.4 / 1307.4)
    # the August 2026 table's Blackwell and MI355X rows: B200 1745.0 of 2250 (77.6 %), GB200 1822.0 of 2500 (72.9 %)
    assert catalog.get_hardware("B200").matmul_fraction == pytest.approx(1745.0 / 2250.0)
    assert catalog.get_hardware("GB200").matmul_fraction == pytest.approx(1822.0 / 2500.0)
    assert catalog.get_hardware("MI355X").matmul_fraction * 2516.6 == pytest.approx(1565.0)
    # H200 and H800 inherit the H100's measurement (same die, same 700 W limit); unmeasured chips the default
    assert catalog.get_hardware("H200").matmul_fraction == catalog.get_hardware("H100").matmul_fraction
    assert catalog.get_hardware("TPUv5p").matmul_fraction == catalog.DEFAULT_MATMUL_FRACTION
    assert catalog.get_hardware("MI350X").matmul_fraction == catalog.DEFAULT_MATMUL_FRACTION  # MI355X's die, 1000 W
    assert catalog.get_hardware("H100-SXM5-96GB-500W").matmul_fraction == catalog.DEFAULT_MATMUL_FRACTION  # 500 W


def test_default_matmul_fraction_is_the_median_of_the_measured_chips():
    rows = catalog.read_table("accelerators.csv")
    measured = {}
    for r in rows:
        if r["mamf_bf16_tflop_per_s"] and "inherited" not in r["mamf_source"]:
            measured[float(r["mamf_bf16_tflop_per_s"]) / float(r["peak_bf16_tflop_per_s"])] = r["hardware_id"]
    assert len(measured) == 12  # distinct chips (A100 40/80 GB share one value)
    assert catalog.DEFAULT_MATMUL_FRACTION == pytest.approx(np.median(list(measured)), abs=5e-4)
    assert all(r["mamf_source"].startswith("Bekman") for r in rows if r["mamf_bf16_tflop_per_s"])


@pytest.mark.parametrize("hid, smi_mib", [("A100-SXM4-80GB", 81920), ("H100-SXM5-80GB", 81559),
                                          ("H200-SXM-141GB", 143771), ("B200", 183359)])
def test_memory_capacity_is_binary_as_nvidia_smi_reports_it(hid, smi_mib):
    """An '80 GB' GPU holds 80 GiB: the model's memory in bytes matches nvidia-smi's total (MiB) to within
    its driver reserve (< 1 %); read as decimal GB it would be 6-7 % short."""
    from scalesim.chain.training_throughput import hardware_arrays

    memory_bytes = float(hardware_arrays([hid], "bf16")["memory_bytes"][0])
    assert memory_bytes == pytest.approx(smi_mib * 2**20, rel=0.01)
    assert memory_bytes >= smi_mib * 2**20  # the reserve is never negative
