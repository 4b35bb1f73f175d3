"""Catalogue: ids, aliases, ranges, provenance."""

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
