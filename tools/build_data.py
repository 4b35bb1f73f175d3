"""Regenerate scalesim/data/*.csv from the curated reference folder (../shared/reference).

Developer tool only: the installed package never reads the reference folder. Run it when the
reference data change, review the diff, and record any transformation in scalesim/data/README.md.

    python tools/build_data.py ../shared/reference
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "scalesim" / "data"


def read(ref, name):
    with open(Path(ref) / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write(name, rows, fields, lineterminator="\n"):
    """Write rows to scalesim/data/<name> through a temporary file (never half-written)."""
    path = OUT / name
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator=lineterminator)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})
    tmp.replace(path)
    print(f"wrote {path.name}: {len(rows)} rows")


def num(s):
    """First number in a cell ('~1200 (configurable)' -> 1200.0); '' when none."""
    if s is None:
        return ""
    m = re.search(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", str(s).replace(",", ""))
    return float(m.group()) if m else ""


def fmt(x, nd=6):
    if x == "" or x is None:
        return ""
    return f"{float(x):.{nd}g}"


# --------------------------------------------------------------------------- accelerators
# canonical id, aliases (case-insensitive, must be unambiguous), family
ACCEL_IDS = {
    ("NVIDIA V100", "SXM2 32GB"): ("V100-SXM2-32GB", "v100;v100-sxm2;tesla-v100", "gpu"),
    ("NVIDIA A100", "SXM4 40GB"): ("A100-SXM4-40GB", "a100-40gb;a100-sxm4-40gb", "gpu"),
    ("NVIDIA A100", "SXM4 80GB"): ("A100-SXM4-80GB", "a100;a100-80gb;a100-sxm;a100-sxm4", "gpu"),
    ("NVIDIA A100", "PCIe 40GB"): ("A100-PCIe-40GB", "a100-pcie-40gb", "gpu"),
    ("NVIDIA A100", "PCIe 80GB"): ("A100-PCIe-80GB", "a100-pcie;a100-pcie-80gb", "gpu"),
    ("NVIDIA H100", "SXM5 80GB"): ("H100-SXM5-80GB", "h100;h100-sxm;h100-sxm5;h100-80gb", "gpu"),
    ("NVIDIA H100", "PCIe 80GB"): ("H100-PCIe-80GB", "h100-pcie", "gpu"),
    ("NVIDIA H200", "SXM 141GB"): ("H200-SXM-141GB", "h200;h200-sxm", "gpu"),
    ("NVIDIA B200", "HGX/DGX B200 (180GB usable)"): ("B200", "b200;b200-hgx", "gpu"),
    ("NVIDIA GB200", "per B200 GPU in GB200 NVL72"): ("GB200", "gb200;gb200-nvl72", "gpu"),
    ("AMD MI250X", "OAM"): ("MI250X", "mi250x;instinct-mi250x", "gpu"),
    ("AMD MI300X", "OAM 192GB"): ("MI300X", "mi300x;instinct-mi300x", "gpu"),
    ("Google TPU v2", "chip"): ("TPUv2", "tpu-v2;tpu2", "tpu"),
    ("Google TPU v3", "chip"): ("TPUv3", "tpu-v3;tpu3", "tpu"),
    ("Google TPU v4", "chip"): ("TPUv4", "tpu-v4;tpu4", "tpu"),
    ("Google TPU v5e", "chip"): ("TPUv5e", "tpu-v5e;tpu5e", "tpu"),
    ("Google TPU v5p", "chip"): ("TPUv5p", "tpu-v5p;tpu5p;tpu-v5", "tpu"),
    ("Google TPU v6e (Trillium)", "chip"): ("TPUv6e", "tpu-v6e;tpu6e;trillium", "tpu"),
    ("Intel Gaudi2", "OAM HL-225"): ("Gaudi2", "gaudi2;gaudi-2", "other"),
    ("Intel Gaudi3", "OAM HL-325L"): ("Gaudi3", "gaudi3;gaudi-3", "other"),
}

# Measured (or, for unpublished chips, estimated) average system power per TPU chip while
# training, incl. host share. GPUs get no value here: the power model scales their TDP.
TPU_V4_W, TPU_V4_LOW_W = 378.5, 326.0
TPU_SYSTEM_POWER = {
    "TPUv2": (208.0, 208.0, 208.0, "measured",
              "Patterson et al. 2021 (arXiv:2104.10350) Table 4, Evolved Transformer NAS: 208 W average system power per TPUv2"),
    "TPUv3": (283.0, 245.0, 310.0, "measured",
              "Patterson et al. 2021 (arXiv:2104.10350) Table 3 TPUv3 average 283 W; Table 4 runs span 245 W (Switch) to 310 W (T5)"),
    "TPUv4": (TPU_V4_W, TPU_V4_LOW_W, TPU_V4_W, "measured",
              "Chowdhery et al. 2022 PaLM (arXiv:2204.02311) App. B: 378.5 W per TPUv4 chip; GLaM (Du et al. 2022) 326 W as low"),
}
for tid, peak in (("TPUv5e", 197.0), ("TPUv5p", 459.0), ("TPUv6e", 918.0)):
    ratio = peak / 275.0
    high = TPU_V4_W * ratio                 # same energy per peak FLOP as TPU v4
    low = TPU_V4_LOW_W * ratio ** 0.5       # generous efficiency gain
    if tid == "TPUv6e":                     # Google: v6e >67 % more energy-efficient than v5e
        high = TPU_V4_W * (197.0 / 275.0) * (918.0 / 197.0) / 1.67
        low = TPU_V4_LOW_W * (197.0 / 275.0) ** 0.5 * (918.0 / 197.0) / 1.67 / 1.3
    low, high = min(low, high), max(low, high)
    central = (high * low) ** 0.5
    TPU_SYSTEM_POWER[tid] = (
        round(central, 1), round(low, 1), round(high, 1), "estimate",
        f"scalesim estimate (Google publishes no {tid} power): TPU v4 measured system power "
        f"(PaLM App. B 378.5 W; GLaM 326 W) scaled by peak bf16 ratio {peak:g}/275 TFLOP/s; "
        "high = equal energy per peak FLOP as v4, low = sqrt scaling"
        + ("; v6e also divided by 1.67 (Google 2024 environmental report: >67% more efficient than v5e)" if tid == "TPUv6e" else "")
        + "; central = geometric mean",
    )

def build_accelerators(ref):
    rows = []
    for r in read(ref, "accelerators.csv"):
        hid, aliases, family = ACCEL_IDS[(r["accelerator"], r["variant"])]
        tdp = num(r["tdp_w"]) if "not published" not in r["tdp_w"] and "no TDP" not in r["tdp_w"] else ""
        bf16 = num(r["bf16_tflops_dense"])
        fp16 = num(r["fp16_tflops_dense"]) or bf16
        if hid == "V100-SXM2-32GB":
            bf16 = ""  # Volta has no BF16: training ran in FP16 (125 TFLOP/s tensor-core peak)
        sp = TPU_SYSTEM_POWER.get(hid)
        rows.append({
            "hardware_id": hid, "aliases": aliases, "family": family, "vendor": r["vendor"],
            "name": r["accelerator"], "variant": r["variant"],
            "launch_year": int(num(r["launch_year"])), "process_node": r["process_node"],
            "die_area_mm2": fmt(num(r["die_area_mm2"])) if hid.startswith(("V1", "A1", "H1", "H2", "B2", "GB", "TPUv3", "TPUv4")) else "",
            # the reference's memory_gb is the vendor's HBM figure, a binary amount (GiB)
            "memory_gib": fmt(num(r["memory_gb"])), "hbm_bw_tb_per_s": fmt(num(r["hbm_bw_tbps"])),
            "tdp_w": fmt(tdp), "tdp_note": r["tdp_w"] if r["tdp_w"] != fmt(tdp) else "",
            "peak_fp32_tflop_per_s": fmt(num(r["fp32_tflops"])),
            "peak_tf32_tflop_per_s": fmt(num(r["tf32_tflops_dense"])),
            "peak_bf16_tflop_per_s": fmt(bf16),
            "peak_fp16_tflop_per_s": fmt(fp16),
            "peak_fp8_tflop_per_s": fmt(num(r["fp8_tflops_dense"])),
            "system_power_w": fmt(sp[0]) if sp else "",
            "system_power_low_w": fmt(sp[1]) if sp else "",
            "system_power_high_w": fmt(sp[2]) if sp else "",
            "system_power_basis": sp[3] if sp else "",
            "system_power_source": sp[4] if sp else "",
            "embodied_die_kgco2e_act": r["embodied_die_only_kgco2e_ACT"],
            "embodied_die_kgco2e_llmcarbon": r["embodied_die_only_kgco2e_LLMCarbon"],
            "sparsity_note": r["sparsity_note"],
            "source": r["source"],
        })
    # H800: export variant of H100 SXM5 with the same dense tensor peaks and 700 W TDP; its
    # NVLink is cut to 400 GB/s. Listed because several published runs (DeepSeek) use it.
    h100 = next(x for x in rows if x["hardware_id"] == "H100-SXM5-80GB")
    rows.append({**h100, "hardware_id": "H800-SXM5-80GB", "aliases": "h800;h800-sxm;h800-sxm5",
                 "name": "NVIDIA H800", "variant": "SXM5 80GB", "launch_year": 2023,
                 "source": "NVIDIA H800 = H100 SXM5 compute (dense BF16 989.5, FP8 1979 TFLOP/s), 700 W TDP, NVLink reduced to 400 GB/s "
                           "(DeepSeek-V3 technical report arXiv:2412.19437 Sec. 3.1; values otherwise as H100-SXM5-80GB row)",
                 "sparsity_note": "as H100 SXM5"})
    rows = merge_accelerator_extension(rows)
    write("accelerators.csv", rows, ACCEL_FIELDS)


#: Columns of scalesim/data/accelerators.csv, in order: the reference table's (renamed) plus the
#: INT8/FP4 peaks, the link columns, the measured maximum achievable matmul (MAMF) and the coherent
#: CPU-GPU link (activation offloading) of the throughput model, which tools/accelerators_extension.csv adds.
ACCEL_FIELDS = (
    "hardware_id", "aliases", "family", "vendor", "name", "variant", "launch_year", "process_node", "die_area_mm2",
    "memory_gib", "hbm_bw_tb_per_s", "tdp_w", "tdp_note", "peak_fp32_tflop_per_s", "peak_tf32_tflop_per_s",
    "peak_bf16_tflop_per_s", "peak_fp16_tflop_per_s", "peak_fp8_tflop_per_s", "peak_int8_tflop_per_s",
    "peak_fp4_tflop_per_s", "system_power_w", "system_power_low_w", "system_power_high_w", "system_power_basis",
    "system_power_source", "embodied_die_kgco2e_act", "embodied_die_kgco2e_llmcarbon", "sparsity_note", "source",
    "scale_up_domain", "scale_up_bw_gb_per_s", "scale_out_bw_gb_per_s", "interconnect_note", "interconnect_source",
    "mamf_bf16_tflop_per_s", "mamf_source", "host_link_bw_gb_per_s", "host_link_source")
ACCEL_EXTENSION = Path(__file__).resolve().parent / "accelerators_extension.csv"


def merge_accelerator_extension(rows, path=ACCEL_EXTENSION):
    """Fill and extend the reference-derived rows from the documented extension table.

    A non-empty extension cell of a known ``hardware_id`` fills that column (the reference table has
    no INT8/FP4 peaks and no scale-up/scale-out links); a row with a new ``hardware_id`` (chips
    the reference table lacks: B300, GB300, MI325X, MI350X, MI355X, TPU7x, Grand Teton H100) is
    appended whole. The extension's ``extension_source`` column says where its values come from
    and is not written.
    """
    with open(path, newline="", encoding="utf-8") as fh:
        ext = list(csv.DictReader(fh))
    by_id = {r["hardware_id"]: r for r in rows}
    out = list(rows)
    for e in ext:
        cells = {k: v for k, v in e.items() if k in ACCEL_FIELDS and v != ""}
        if e["hardware_id"] in by_id:
            by_id[e["hardware_id"]].update(cells)
        else:
            out.append(cells)
    return out


# --------------------------------------------------------------------------- grid intensity
EMBER_BASIS = "Ember yearly power-sector carbon intensity (lifecycle gCO2e/kWh, generation-based)"
EMAPS_BASIS = "Electricity Maps yearly average (lifecycle gCO2e/kWh, consumption-based, flow-traced)"
EGRID_BASIS = "EPA eGRID2022 subregion total output emission rate (direct combustion CO2e, generation-based)"
GOOGLE_BASIS = "Google region-carbon-info yearly grid carbon intensity (location-based, hourly-weighted)"

PROFILE_FOR = {  # grid id -> diurnal profile zone in grid_diurnal_profiles.csv
    "AU-NSW": "AU-NSW", "AU-VIC": "AU-VIC", "CA-ON": "CA-ON", "GB": "GB", "IN-WE": "IN-WE",
    "JP-TK": "JP-TK", "KR": "KR", "SG": "SG", "US-CAL-CISO": "US-CAL-CISO",
    "US-MIDA-PJM": "US-MIDA-PJM", "US-NY-NYIS": "US-NY-NYIS", "US-TEX-ERCO": "US-TEX-ERCO",
    "ZA": "ZA", "DE": "DE-LU", "CL": "CL-SIC", "CL-SEN": "CL-SIC", "FR": "FR (ENTSO-E)",
}


def build_grid(ref):
    rows = []
    countries = read(ref, "grid_countries.csv")
    by_iso3 = {}
    for r in countries:
        if r["kind"] == "aggregate":
            rid = "agg:" + re.sub(r"[^a-z0-9]+", "-", r["name"].lower()).strip("-")
            rows.append({"region_id": rid, "kind": "aggregate", "name": r["name"], "aliases": "",
                         "country_iso2": "", "country_iso3": "", "year": r["ember_year"],
                         "gco2e_per_kwh": fmt(r["ember_gco2e_per_kwh"]),
                         "gco2e_per_kwh_low": fmt(r["ember_gco2e_per_kwh"]),
                         "gco2e_per_kwh_high": fmt(r["ember_gco2e_per_kwh"]),
                         "basis": EMBER_BASIS, "dataset": "ember", "licence": "CC BY 4.0",
                         "profile_zone": "", "provider": "", "source": "Ember yearly data via thegreenwebfoundation/co2.js@27cbe83 average-intensities.json"})
            continue
        iso2, iso3 = r["iso2"], r["iso3"]
        emaps = [r[f"emaps_{y}_gco2e_per_kwh"] for y in (2023, 2024, 2025)]
        if iso3 == "CYM":
            # Reference row carries iso2 'CY' (Cyprus's code) and Cyprus's Electricity Maps
            # values (a join on the wrong iso2). Cayman Islands is 'KY'; its emaps values dropped.
            iso2, emaps = "KY", ["", "", ""]
        cands = [(r["ember_gco2e_per_kwh"], r["ember_year"], "ember", EMBER_BASIS, "CC BY 4.0")]
        cands += [(v, str(y), "electricitymaps", EMAPS_BASIS, "ODbL 1.0") for v, y in zip(emaps, (2023, 2024, 2025))]
        cands += [(r["owid_codecarbon_gco2e_per_kwh"], r["owid_codecarbon_year"], "owid", "OWID carbon intensity of electricity (lifecycle, generation-based)", "CC BY 4.0"),
                  (r["owid_carbontracker_gco2e_per_kwh"], r["owid_carbontracker_year"], "owid", "OWID carbon intensity of electricity (lifecycle, generation-based)", "CC BY 4.0")]
        vals = [float(v) for v, *_ in cands if v != ""]
        if not vals:
            continue
        # central: Ember latest year; else Electricity Maps 2024; else OWID
        central = next((c for c in (cands[0], cands[2], cands[3], cands[1], cands[4]) if c[0] != ""))
        by_iso3[iso3] = iso2
        rows.append({"region_id": iso2, "kind": "country", "name": r["name"], "aliases": iso3,
                     "country_iso2": iso2, "country_iso3": iso3, "year": central[1],
                     "gco2e_per_kwh": fmt(central[0]), "gco2e_per_kwh_low": fmt(min(vals)),
                     "gco2e_per_kwh_high": fmt(max(vals)), "basis": central[3], "dataset": central[2],
                     "licence": central[4] + ("; range includes Electricity Maps (ODbL 1.0)" if any(emaps) else ""),
                     "profile_zone": PROFILE_FOR.get(iso2, ""), "provider": "",
                     "source": "central: " + central[2] + f" {central[1]}; low/high: min/max over Ember, Electricity Maps 2023-2025, OWID (codecarbon, carbontracker snapshots). " + r["source"]})
    for r in read(ref, "grid_subregions.csv"):
        if r["scheme"] == "electricitymaps_zone":
            vals = [float(r[f"gco2e_per_kwh_{y}"]) for y in (2023, 2024, 2025) if r[f"gco2e_per_kwh_{y}"]]
            central = r["gco2e_per_kwh_2024"] or r["gco2e_per_kwh_2025"]
            zone = r["zone"]
            rows.append({"region_id": zone, "kind": "zone", "name": r["name"], "aliases": "",
                         "country_iso2": zone.split("-")[0], "country_iso3": "", "year": "2024",
                         "gco2e_per_kwh": fmt(central), "gco2e_per_kwh_low": fmt(min(vals)),
                         "gco2e_per_kwh_high": fmt(max(vals)), "basis": EMAPS_BASIS,
                         "dataset": "electricitymaps", "licence": "ODbL 1.0",
                         "profile_zone": PROFILE_FOR.get(zone, ""), "provider": "",
                         "source": "central: Electricity Maps 2024; low/high: min/max over 2023-2025. " + r["source"]})
        elif r["scheme"] == "egrid2022_subregion":
            zone = r["zone"]
            v = r["egrid2022_gco2e_per_kwh"]
            rows.append({"region_id": f"egrid:{zone}", "kind": "egrid", "name": r["name"], "aliases": "",
                         "country_iso2": "US", "country_iso3": "USA", "year": "2022",
                         "gco2e_per_kwh": fmt(v), "gco2e_per_kwh_low": fmt(v), "gco2e_per_kwh_high": fmt(v),
                         "basis": EGRID_BASIS, "dataset": "egrid2022", "licence": "public domain (US EPA)",
                         "profile_zone": "", "provider": "", "source": r["source"] + "; " + r["basis"]})
    for r in read(ref, "grid_cloud_regions.csv"):
        prov = r["provider"]
        rid = f"{prov}:{r['region']}"
        cand = {k: r[k] for k in ("provider_grid_gco2e_per_kwh_2024", "provider_grid_gco2e_per_kwh_2023",
                                  "provider_grid_gco2e_per_kwh_2022", "ccf_gco2e_per_kwh",
                                  "emaps_zone_gco2e_per_kwh_2024", "emaps_zone_gco2e_per_kwh_2025",
                                  "egrid2022_gco2e_per_kwh", "ember_country_gco2e_per_kwh") if r[k]}
        vals = [float(v) for v in cand.values()]
        if prov == "gcp" and r["provider_grid_gco2e_per_kwh_2024"]:
            central, year, basis, ds, lic = r["provider_grid_gco2e_per_kwh_2024"], "2024", GOOGLE_BASIS, "google", "Apache-2.0"
        elif r["emaps_zone_gco2e_per_kwh_2024"]:
            central, year, basis, ds, lic = r["emaps_zone_gco2e_per_kwh_2024"], "2024", EMAPS_BASIS + f" of mapped zone {r['emaps_zone']}", "electricitymaps", "ODbL 1.0"
        else:
            central, year, basis, ds, lic = r["ember_country_gco2e_per_kwh"], r["ember_year"], EMBER_BASIS + " of country", "ember", "CC BY 4.0"
        iso2 = by_iso3.get(r["country_iso3"], "")
        rows.append({"region_id": rid, "kind": "cloud", "name": f"{prov} {r['region']} ({r['location']})",
                     "aliases": "", "country_iso2": iso2, "country_iso3": r["country_iso3"], "year": year,
                     "gco2e_per_kwh": fmt(central), "gco2e_per_kwh_low": fmt(min(vals)),
                     "gco2e_per_kwh_high": fmt(max(vals)), "basis": basis, "dataset": ds, "licence": lic,
                     "profile_zone": PROFILE_FOR.get(r["emaps_zone"], ""),
                     "provider": prov,
                     "source": f"central: {ds} {year}; low/high: min/max over provider 2022-2024, CCF, Electricity Maps zone 2024/2025, eGRID2022, Ember country. Mapping: {r['mapping_basis']}. {r['source']}"})
    add_carbon_free_shares(rows, ref)
    fields = list(rows[0].keys())
    write("grid_intensity.csv", rows, fields)


#: Provenance of the carbon-free share columns of grid_intensity.csv (scalesim.models.clean_supply uses them).
EMAPS_CF_SOURCE = ("Electricity Maps 2025 yearly carbon-free share of consumption (nuclear + renewables, flow-traced; "
                   "ODbL 1.0) via thegreenwebfoundation/co2.js@27cbe83 electricity-maps/yearly_2025.json")
GOOGLE_CFE_SOURCE = ("Google CFE% 2024: hourly share of Google's own load matched by carbon-free energy, grid plus "
                     "Google's contracts (GoogleCloudPlatform/region-carbon-info data/yearly/2024.csv, Apache-2.0)")


def add_carbon_free_shares(rows, ref):
    """Add ``carbon_free_fraction`` (the grid's annual carbon-free share, 0..1), its year and source, and, for
    GCP regions, ``google_cfe_fraction`` (Google's hourly-matched CFE of its own load, 2024) to every grid row.

    Countries: Electricity Maps 2025 ``emaps_2025_carbon_free_pct``; zones: ``carbon_free_pct_2025``; cloud
    regions: the share of their mapped Electricity Maps zone (or country); eGRID subregions and aggregates:
    none published in the reference (left empty). Percentages are stored as fractions.
    """
    share = {}
    for r in read(ref, "grid_countries.csv"):
        if r["kind"] == "country" and r["iso3"] != "CYM" and r["emaps_2025_carbon_free_pct"] != "":
            share[r["iso2"]] = float(r["emaps_2025_carbon_free_pct"]) / 100.0  # CYM: a join on Cyprus's iso2 (above)
    for r in read(ref, "grid_subregions.csv"):
        if r["scheme"] == "electricitymaps_zone" and r["carbon_free_pct_2025"] != "":
            share[r["zone"]] = float(r["carbon_free_pct_2025"]) / 100.0
    cloud = {f"{r['provider']}:{r['region']}": r for r in read(ref, "grid_cloud_regions.csv")}
    for row in rows:
        rid = row["region_id"]
        key = cloud[rid]["emaps_zone"] if rid in cloud else rid if row["kind"] in ("country", "zone") else None
        value = share.get(key) if key else None
        row["carbon_free_fraction"] = fmt(value) if value is not None else ""
        row["carbon_free_year"] = "2025" if value is not None else ""
        row["carbon_free_source"] = (EMAPS_CF_SOURCE + (f" (zone {key})" if rid in cloud else "")) if value is not None else ""
        cfe = cloud[rid]["google_cfe_2024"] if rid in cloud else ""
        row["google_cfe_fraction"] = fmt(cfe) if cfe != "" else ""
        row["google_cfe_source"] = GOOGLE_CFE_SOURCE if cfe != "" else ""


def build_profiles(ref):
    rows = []
    for r in read(ref, "grid_diurnal_profiles.csv"):
        vals = r["hourly_profile_rel_local"].split()
        assert len(vals) == 24, r["zone"]
        row = {"zone": r["zone"], "year": r["year"], "mean_gco2e_per_kwh": r["mean_lca"],
               "hour_basis": "local" if "ENTSO-E" not in r["zone"] else "as in file (likely UTC)",
               "saving_best4h": r["saving_best4h"], "saving_best8h": r["saving_best8h"]}
        row.update({f"rel_h{h:02d}": v for h, v in enumerate(vals)})
        row.update({"basis": r["basis"], "source": r["source"]})
        rows.append(row)
    write("grid_diurnal_profiles.csv", rows, list(rows[0].keys()))


def copy_snake(ref, name, out, rename, extra=None):
    rows = read(ref, name)
    rows = [{rename.get(k, k): v for k, v in r.items()} for r in rows]
    if extra:
        rows = [extra(r) for r in rows]
    write(out, rows, list(rows[0].keys()))


# --------------------------------------------------------------------------- generation mix
#: codecarbon release whose bundled OWID table is shipped (pinned so a rebuild is reproducible).
CODECARBON_VERSION = "3.3.2"
CODECARBON_MIX = "codecarbon/data/private_infra/global_energy_mix.json"
#: grid_generation_mix.csv column -> key of codecarbon's global_energy_mix.json [TWh]. OWID's
#: 'other_renewable_TWh' includes bioenergy, so the split keys are used; the nine sum to total_TWh.
MIX_KEYS = {"coal": "coal_TWh", "gas": "gas_TWh", "oil": "oil_TWh", "nuclear": "nuclear_TWh",
            "hydro": "hydroelectricity_TWh", "wind": "wind_TWh", "solar": "solar_TWh",
            "bioenergy": "biofuel_TWh", "other_renewable": "other_renewable_exc_biofuel_TWh"}
MIX_SOURCE = (f"Our World in Data energy dataset (electricity generation by source, from Ember and the Energy Institute "
              f"Statistical Review), CC BY 4.0, via codecarbon {CODECARBON_VERSION} (MIT) {CODECARBON_MIX}")


def codecarbon_mix(wheel=None):
    """``{iso3: row}`` of OWID's generation by source from a codecarbon wheel (``pip download``)."""
    import json
    import subprocess
    import tempfile
    import zipfile

    if wheel is None:
        tmp = tempfile.mkdtemp()
        subprocess.run([sys.executable, "-m", "pip", "download", f"codecarbon=={CODECARBON_VERSION}", "--no-deps",
                        "--quiet", "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("codecarbon-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        return json.loads(z.read(CODECARBON_MIX))


def build_generation_mix(ref, wheel=None):
    """grid_generation_mix.csv: each country's generation shares by fuel, plus their world sum."""
    data = codecarbon_mix(wheel)
    iso2_of = {r["iso3"]: ("KY" if r["iso3"] == "CYM" else r["iso2"]) for r in read(ref, "grid_countries.csv")
               if r["kind"] != "aggregate"}  # CYM: the reference's iso2 is Cyprus's (see build_grid)
    rows, world = [], dict.fromkeys(MIX_KEYS, 0.0)
    for iso3, r in sorted(data.items()):
        twh = {k: float(r[v]) for k, v in MIX_KEYS.items()}
        total = sum(twh.values())
        assert abs(total - float(r["total_TWh"])) <= 1e-6 * max(total, 1.0), iso3  # the nine are the whole
        for k in MIX_KEYS:
            world[k] += twh[k]
        rows.append({"mix_id": iso3, "country_iso2": iso2_of.get(iso3, ""), "name": r["country_name"],
                     "year": r["year"], "total_twh": fmt(total),
                     **{f"share_{k}": fmt(v / total) for k, v in twh.items()}, "licence": "CC BY 4.0 (OWID)",
                     "source": MIX_SOURCE})
    total = sum(world.values())
    years = sorted({int(r["year"]) for r in data.values()})
    rows.append({"mix_id": "world", "country_iso2": "", "name": "World (sum of the countries above)",
                 "year": f"{years[0]}-{years[-1]}", "total_twh": fmt(total),
                 **{f"share_{k}": fmt(v / total) for k, v in world.items()}, "licence": "CC BY 4.0 (OWID)",
                 "source": "sum over the country rows (each at its latest year) of " + MIX_SOURCE})
    write("grid_generation_mix.csv", rows, list(rows[0].keys()))


# --------------------------------------------------------------------------- published runs
#: The one phrase -> code table of published_runs.csv. Each enumerated accounting column is read
#: off a free-text column of the reference, so that scalesim branches on codes, never on wording
#: (allowed codes and their meaning: scalesim/runs.py and data/README.md).
#:
#: derived column: (text column, ((regex, code), ...), code where the text matches no regex).
#: Regexes are searched case-insensitively; the first match wins, except in ``compute_caveat``,
#: which lists every matching code in table order, ';'-separated. An empty text gives ''
#: (nothing stated); a non-empty text that matches nothing and has no fallback (None) stops the
#: build, so a new wording in the reference needs a code here before it ships.
RUN_CODES = {
    # energy_mwh's boundary: energy before PUE (BLOOM 'dynamic' GPU energy, OLMo GPU energy,
    # Luccioni's inferred IT energy, GLM and Llama 3 GPU-h x W with no PUE), else facility (x PUE)
    "energy_boundary": ("energy_scope", (
        (r"no pue|before pue|'dynamic'|\bit energy|treated as it|total gpu power", "it"),
    ), "facility"),
    # co2e_t's boundary: intensity applied to energy before PUE (BLOOM's 24.69 t), else facility
    "co2e_boundary": ("tco2e_basis", (
        (r"dynamic only", "it"),
    ), "facility"),
    # where chip_power_w comes from
    "power_provenance": ("chip_power_basis", (
        (r"borrowed", "borrowed"),                       # another run's measurement (LaMDA <- Meena)
        (r"derived average", "derived_from_energy"),     # reported energy / chip-hours: circular
        (r"^(measured system average|average system power)", "measured_system_average"),
        (r"^measured", "measured"),                      # a measured per-chip figure quoted at second hand
        (r"^not run-specific", "generic_average"),       # a published average for the chip type
        (r"^tdp", "tdp"),                                # chip-hours x TDP
        (r"peak power capacity", "peak_capacity"),       # Llama 2: 'peak power capacity per GPU'
    ), None),
    # why 6 N D is not a point estimate of the run's compute
    "compute_caveat": ("notes", (
        (r"lower bound", "tokens_lower_bound"),
        (r"up to [0-9.,]+ ?[kmbt]? tokens", "tokens_upper_bound"),
        (r"prun", "pruned"),
        (r"distill", "distilled"),
        (r"continued training", "continued_training"),
    ), ""),
}
#: Where these cells are given, an empty text gets the fallback code instead of '': a reported
#: energy has a boundary, and so does a tCO2e or an intensity (facility unless stated otherwise).
RUN_CODES_NEEDED_BY = {"energy_boundary": ("energy_mwh",), "co2e_boundary": ("co2e_t", "grid_kgco2e_per_kwh")}


def run_codes(row):
    """Enumerated accounting columns of one published_runs row (snake_case keys), from RUN_CODES."""
    out = {}
    for col, (text_col, table, fallback) in RUN_CODES.items():
        text = (row.get(text_col) or "").strip()
        hits = [code for pattern, code in table if re.search(pattern, text, re.IGNORECASE)]
        if col == "compute_caveat":
            out[col] = ";".join(hits)
        elif hits:
            out[col] = hits[0]
        elif text or any(row.get(k) for k in RUN_CODES_NEEDED_BY.get(col, ())):
            if fallback is None:
                raise ValueError(f"{row['model']!r}: {text_col} {text!r} matches no {col} code; add one to RUN_CODES")
            out[col] = fallback
        else:
            out[col] = ""
    return {**row, **out}


def main(ref):
    OUT.mkdir(parents=True, exist_ok=True)
    build_accelerators(ref)
    build_grid(ref)
    build_profiles(ref)
    build_generation_mix(ref)  # pip-downloads the pinned codecarbon wheel (the one network step)

    def fix_mfu(r):
        if r["mfu"] and float(r["mfu"]) > 1:
            # Epoch row 'GPT3-2.7B (FlashAttention-2)' carries 72.0: a percentage. Stored as 0.72.
            r["notes"] = (r["notes"] + " [scalesim: source value %s is a percentage; stored as fraction]" % r["mfu"]).strip()
            r["mfu"] = fmt(float(r["mfu"]) / 100)
        return r
    copy_snake(ref, "mfu_reported_epoch.csv", "mfu_reported.csv", {"training_flop": "training_flop"}, fix_mfu)
    copy_snake(ref, "published_runs.csv", "published_runs.csv", {
        "params_N": "n_params", "active_params_N": "n_params_active", "tokens_D": "n_tokens",
        "total_flops": "flop", "chip_power_W": "chip_power_w", "grid_ci_kgco2e_per_kwh": "grid_kgco2e_per_kwh",
        "energy_MWh": "energy_mwh", "energy_derived_MWh": "energy_derived_mwh",
        "tco2e_operational": "co2e_t", "training_days": "wall_days"}, run_codes)
    copy_snake(ref, "power_measurements.csv", "power_measurements.csv", {})
    copy_snake(ref, "systems.csv", "systems.csv", {})
    copy_snake(ref, "datacenters.csv", "datacenters_reported.csv", {})
    copy_snake(ref, "embodied.csv", "embodied_reported.csv", {})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[2] / "shared" / "reference"))
