"""Lazy access to the data shipped in ``scalesim/data`` (never read at import, never downloaded).

Identifiers resolve case-insensitively: hardware by canonical id (``H100-SXM5-80GB``) or an
unambiguous alias (``h100``); regions by ISO alpha-2/alpha-3 country code (``FR``, ``FRA``),
grid zone (``US-CAL-CISO``), eGRID subregion (``egrid:CAMX``), cloud region
(``gcp:us-central1``, ``aws:eu-west-1``, ``azure:westeurope``) or aggregate (``agg:world``).
Unknown ids raise ``ValueError`` listing the closest matches; there is no fallback.
"""

from __future__ import annotations

import csv
import difflib
import functools
from dataclasses import dataclass
from importlib import resources

DATA_PACKAGE = "scalesim.data"


@functools.cache
def read_table(name):
    """Rows of ``scalesim/data/<name>`` as a tuple of dicts (cached; read on first use)."""
    with resources.files(DATA_PACKAGE).joinpath(name).open(newline="", encoding="utf-8") as fh:
        return tuple(csv.DictReader(fh))


def _float(s):
    return float(s) if s not in ("", None) else None


def _unknown(kind, value, choices, hint=""):
    matches = difflib.get_close_matches(str(value).lower(), [c.lower() for c in choices], n=5, cutoff=0.5)
    lower_to_choice = {c.lower(): c for c in choices}
    close = ", ".join(lower_to_choice[m] for m in matches)
    msg = f"unknown {kind} {value!r}"
    msg += f"; closest matches: {close}" if close else ""
    return ValueError(msg + (f". {hint}" if hint else ""))


def _add_keys(by_key, canonical, aliases, table):
    """Map the lower-cased id and each ';'-separated alias to ``canonical``; refuse ambiguity."""
    for key in [canonical, *filter(None, aliases.split(";"))]:
        key = key.lower()
        if by_key.get(key, canonical) != canonical:
            raise RuntimeError(f"ambiguous id or alias {key!r} in {table}")
        by_key[key] = canonical


# ----------------------------------------------------------------------------- hardware
#: Dtypes with a dense peak column ``peak_<dtype>_tflop_per_s`` in accelerators.csv.
PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")
#: Names of the 4-bit block formats that read the 'fp4' peak (NVIDIA NVFP4, OCP MXFP4 on AMD/NVIDIA).
DTYPE_ALIASES = {"nvfp4": "fp4", "mxfp4": "fp4"}


@dataclass(frozen=True)
class Hardware:
    """One accelerator from ``accelerators.csv`` (peak throughput dense, no sparsity)."""

    hardware_id: str
    family: str
    name: str
    launch_year: int
    tdp_w: float | None
    peak_tflop_per_s: dict
    memory_gib: float | None
    hbm_bw_tb_per_s: float | None
    system_power_w: tuple | None  # (low, central, high) measured/estimated, TPUs only
    system_power_basis: str
    system_power_source: str
    embodied_die_kgco2e: float | None
    source: str
    scale_up_domain: float | None = None  # chips in one scale-up (NVLink/ICI/IF) domain
    scale_up_bw_gb_per_s: float | None = None  # per chip, one direction
    scale_out_bw_gb_per_s: float | None = None  # per chip, one direction (IB/RoCE/DCN)
    interconnect_source: str = ""
    mamf_bf16_tflop_per_s: float | None = None  # measured maximum achievable bf16 matmul
    host_link_bw_gb_per_s: float | None = None  # coherent CPU-GPU link (NVLink-C2C), per GPU, one direction

    @property
    def generation(self):
        """Accelerator generation ('A100', 'H100', 'TPUv4'): the id before its first '-'.

        Memory and form-factor variants (A100 40/80 GB, SXM/PCIe) share a generation.
        """
        return self.hardware_id.split("-")[0]

    def peak_flop_per_s(self, dtype="bf16"):
        """Dense peak [FLOP/s] for ``dtype`` in {'fp32', 'tf32', 'bf16', 'fp16', 'fp8', 'int8', 'fp4'}.

        'nvfp4' and 'mxfp4' are the 4-bit block formats of NVIDIA and AMD; both read the 'fp4' peak.
        """
        dtype = DTYPE_ALIASES.get(dtype, dtype)
        if dtype not in self.peak_tflop_per_s:
            raise ValueError(f"dtype must be one of {sorted(self.peak_tflop_per_s)}, got {dtype!r}")
        value = self.peak_tflop_per_s[dtype]
        if value is None:
            have = [k for k, v in self.peak_tflop_per_s.items() if v is not None]
            raise ValueError(f"{self.hardware_id} has no published {dtype} peak; available dtypes: {have}")
        from .units import FLOP_PER_TFLOP

        return value * FLOP_PER_TFLOP

    @property
    def matmul_fraction(self):
        """Maximum achievable matmul FLOP/s as a fraction of the dense 16-bit peak [1].

        The measured MAMF (``mamf_bf16_tflop_per_s`` in accelerators.csv, Bekman's mamf-finder
        table) over the datasheet bf16 peak; :data:`DEFAULT_MATMUL_FRACTION` where the chip has no
        measurement. The throughput model applies it to every tensor-core rate, 8/4-bit included.
        """
        peak16 = self.peak_tflop_per_s.get("bf16") or self.peak_tflop_per_s.get("fp16")
        if self.mamf_bf16_tflop_per_s and peak16:
            return self.mamf_bf16_tflop_per_s / peak16
        return DEFAULT_MATMUL_FRACTION


#: Maximum achievable 16-bit matmul fraction of a chip without a measurement: the median over
#: the 12 distinct chips measured in accelerators.csv (Gaudi2 0.969, A100 SXM 0.869, A100 PCIe 0.811,
#: H100 SXM 0.803, B300 0.786, B200 0.776, MI250X 0.768, GB200 0.729, Gaudi3 0.677, MI355X 0.622,
#: MI325X 0.600, MI300X 0.511; Bekman's mamf-finder table, see ``mamf_source``) [1]. Pinned by a
#: test that recomputes it.
DEFAULT_MATMUL_FRACTION = 0.772


@functools.cache
def _hardware_index():
    by_key, records = {}, {}
    for r in read_table("accelerators.csv"):
        hw = Hardware(
            hardware_id=r["hardware_id"], family=r["family"], name=f"{r['name']} {r['variant']}",
            launch_year=int(r["launch_year"]), tdp_w=_float(r["tdp_w"]),
            peak_tflop_per_s={d: _float(r.get(f"peak_{d}_tflop_per_s")) for d in PEAK_DTYPES},
            memory_gib=_float(r["memory_gib"]), hbm_bw_tb_per_s=_float(r["hbm_bw_tb_per_s"]),
            system_power_w=(tuple(_float(r[k]) for k in ("system_power_low_w", "system_power_w", "system_power_high_w"))
                            if r["system_power_w"] else None),
            system_power_basis=r["system_power_basis"], system_power_source=r["system_power_source"],
            embodied_die_kgco2e=_float(r["embodied_die_kgco2e_act"]), source=r["source"],
            scale_up_domain=_float(r.get("scale_up_domain")), scale_up_bw_gb_per_s=_float(r.get("scale_up_bw_gb_per_s")),
            scale_out_bw_gb_per_s=_float(r.get("scale_out_bw_gb_per_s")),
            interconnect_source=r.get("interconnect_source", ""),
            mamf_bf16_tflop_per_s=_float(r.get("mamf_bf16_tflop_per_s")),
            host_link_bw_gb_per_s=_float(r.get("host_link_bw_gb_per_s")),
        )
        records[hw.hardware_id] = hw
        _add_keys(by_key, hw.hardware_id, r["aliases"], "accelerators.csv")
    return by_key, records


def hardware_ids():
    """Canonical hardware ids, in catalogue order."""
    return list(_hardware_index()[1])


def get_hardware(name):
    """Resolve a hardware id or alias (case-insensitive) to a :class:`Hardware` record."""
    by_key, records = _hardware_index()
    if isinstance(name, Hardware):
        return name
    key = str(name).strip().lower()
    if key not in by_key:
        raise _unknown("hardware", name, list(by_key), "See `scalesim catalog hardware`.")
    return records[by_key[key]]


# ----------------------------------------------------------------------------- regions
@dataclass(frozen=True)
class Region:
    """Annual grid carbon intensity of a region, with its range across compilations."""

    region_id: str
    kind: str
    name: str
    country_iso2: str
    year: str
    gco2e_per_kwh: float
    gco2e_per_kwh_low: float
    gco2e_per_kwh_high: float
    basis: str
    dataset: str
    licence: str
    profile_zone: str
    provider: str
    source: str
    #: The grid's annual carbon-free share [-] (Electricity Maps 2025; None where not published) and its provenance.
    carbon_free_fraction: float | None = None
    carbon_free_source: str = ""
    #: Google's hourly-matched CFE of its own load in a GCP region [-] (2024; grid plus Google's contracts).
    google_cfe_fraction: float | None = None


@functools.cache
def _region_index():
    by_key, records = {}, {}
    for r in read_table("grid_intensity.csv"):
        reg = Region(
            region_id=r["region_id"], kind=r["kind"], name=r["name"], country_iso2=r["country_iso2"],
            year=r["year"], gco2e_per_kwh=float(r["gco2e_per_kwh"]),
            gco2e_per_kwh_low=float(r["gco2e_per_kwh_low"]), gco2e_per_kwh_high=float(r["gco2e_per_kwh_high"]),
            basis=r["basis"], dataset=r["dataset"], licence=r["licence"], profile_zone=r["profile_zone"],
            provider=r["provider"], source=r["source"],
            carbon_free_fraction=_float(r.get("carbon_free_fraction")), carbon_free_source=r.get("carbon_free_source", ""),
            google_cfe_fraction=_float(r.get("google_cfe_fraction")),
        )
        records[reg.region_id] = reg
        _add_keys(by_key, reg.region_id, r["aliases"], "grid_intensity.csv")
    return by_key, records


def region_ids(kind=None):
    """Canonical region ids, optionally only of one kind (country, zone, egrid, cloud, aggregate)."""
    return [k for k, r in _region_index()[1].items() if kind is None or r.kind == kind]


def _fold(text):
    """Case- and accent-insensitive form of a name ('Québec' -> 'quebec')."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", str(text)) if not unicodedata.combining(c)).strip().casefold()


@functools.cache
def _region_names():
    """``{folded name: region_id}`` ('germany' -> 'DE', 'quebec' -> 'CA-QC'); names are unique in the table."""
    return {_fold(r.name): r.region_id for r in _region_index()[1].values()}


def get_region(name):
    """Resolve a region code or name (case- and accent-insensitive) to a :class:`Region` record.

    Ids and aliases first (``FR``, ``FRA``, ``US-CAL-CISO``), then the region's name as listed by
    ``scalesim catalog regions`` (``'Germany'`` -> ``DE``, ``'quebec'`` -> ``CA-QC``).
    """
    if isinstance(name, Region):
        return name
    by_key, records = _region_index()
    key = str(name).strip().lower()
    if key in by_key:
        return records[by_key[key]]
    names = _region_names()
    if _fold(name) in names:
        return records[names[_fold(name)]]
    raise _unknown_region(name, records, names)


def _unknown_region(name, records, names):
    """'unknown region' with close matches among ids and names (a name's match is shown as its id)."""
    folded = _fold(name)
    ids = {_fold(r): r for r in records}
    by_name = difflib.get_close_matches(folded, list(names), n=5, cutoff=0.6)
    by_id = difflib.get_close_matches(folded, list(ids), n=5, cutoff=0.5)
    contained = [k for k in names if len(folded) >= 4 and folded in k.split(" (")[0]]
    close = list(dict.fromkeys([names[m] for m in by_name + contained] + [ids[m] for m in by_id]))[:5]
    msg = f"unknown region {name!r}" + (f"; closest matches: {', '.join(close)}" if close else "")
    return ValueError(msg + ". Regions are ISO country codes (FR, FRA) or names (Germany), grid zones (US-CAL-CISO), "
                            "egrid:<subregion>, gcp:/aws:/azure:<region> or agg:world; see `scalesim catalog regions`.")


# ----------------------------------------------------------------------------- profiles
@functools.cache
def diurnal_profile(zone, year=None):
    """(year, 24 hourly values relative to the annual mean, source) for a profile zone.

    The latest year is used unless ``year`` is given.
    """
    rows = [r for r in read_table("grid_diurnal_profiles.csv") if r["zone"] == zone]
    if not rows:
        raise _unknown("diurnal profile zone", zone, sorted({r["zone"] for r in read_table("grid_diurnal_profiles.csv")}))
    if year is not None:
        rows = [r for r in rows if int(r["year"]) == int(year)]
        if not rows:
            raise ValueError(f"no {year} diurnal profile for {zone}")
    r = max(rows, key=lambda x: int(x["year"]))
    return int(r["year"]), tuple(float(r[f"rel_h{h:02d}"]) for h in range(24)), r["source"]


# ----------------------------------------------------------------------------- datacenters
@dataclass(frozen=True)
class Default:
    """A default value with its range and provenance (recorded in results' attrs)."""

    name: str
    value: float
    low: float
    high: float
    source: str
    year: str = ""

    def as_attr(self):
        return {"name": self.name, "value": self.value, "low": self.low, "high": self.high,
                "year": self.year, "source": self.source}


def datacenter_operators(metric="pue"):
    """Operators with a ``metric`` row (for 'pue': names usable as ``pue='<operator>'``)."""
    return sorted({r["operator"] for r in read_table("datacenters.csv") if r["metric"] == metric})


def datacenter_value(operator, metric, scope=None):
    """A :class:`Default` for ``metric`` in {'pue', 'wue_l_per_kwh', 'ewif_l_per_kwh'}.

    ``scope`` selects a per-region row (e.g. ``'gcp:us-central1'``); the fleet row otherwise.
    """
    rows = [r for r in read_table("datacenters.csv") if r["metric"] == metric]
    ops = sorted({r["operator"] for r in rows})
    op = str(operator).strip().lower()
    mine = [r for r in rows if r["operator"] == op]
    if not mine:
        raise _unknown(f"operator for {metric}", operator, ops)
    pick = next((r for r in mine if scope and r["scope"] == scope), None) or mine[0]
    return Default(name=f"{metric}:{op}" + (f":{pick['scope']}" if pick["scope"].startswith(("gcp:", "aws:", "azure:")) else ""),
                   value=float(pick["value"]), low=float(pick["value_low"]), high=float(pick["value_high"]),
                   source=pick["source"], year=pick["year"])


PROVIDER_OPERATOR = {"gcp": "google", "aws": "aws", "azure": "azure"}


# ----------------------------------------------------------------------------- model parameters
def power_model_parameter(family, parameter):
    """A :class:`Default` from ``power_model.csv`` (family 'gpu', 'tpu', 'other' or 'all')."""
    for r in read_table("power_model.csv"):
        if r["family"] == family and r["parameter"] == parameter:
            return Default(name=f"{parameter}:{family}", value=float(r["value"]), low=float(r["value_low"]),
                           high=float(r["value_high"]), source=r["source"])
    raise ValueError(f"no power-model parameter {parameter!r} for family {family!r}")


def embodied_parameter(component):
    """Row of ``embodied.csv`` as (low, central, high, unit, source); low may be 'die_only'."""
    for r in read_table("embodied.csv"):
        if r["component"] == component:
            return r
    raise ValueError(f"no embodied component {component!r}")


def development_anchors():
    """Rows of ``development_overhead.csv``: published final-run vs project amounts, with sources."""
    return read_table("development_overhead.csv")


def development_overhead_default():
    """The default development overhead [-]: a :class:`Default` (median, min, max of the primary anchors).

    One primary row per independent development anchor (scope ``development``); the model-family
    rows (sibling sizes' final runs, Llama 2/3.1) are context, not development, and are left out.
    """
    from scalesim.models.development import overhead_range, overhead_ratio

    rows = [r for r in development_anchors() if r["scope"] == "development" and r["primary"] == "yes"]
    ratios = overhead_ratio([float(r["final"]) for r in rows], [float(r["extra"]) for r in rows])
    low, central, high = overhead_range(ratios)
    names = ", ".join(f"{r['anchor_id']} {x:.3g}" for r, x in zip(rows, ratios))
    return Default(name="development_overhead", value=central, low=low, high=high,
                   source=f"median (min-max) of published development overheads: {names} "
                          f"(scalesim/data/development_overhead.csv)")


def published_runs():
    """Rows of the shipped published-runs table (see data/README.md for columns and tiers)."""
    return read_table("published_runs.csv")


def mfu_reported():
    """Rows of Epoch AI's reported MFU table (CC BY 4.0)."""
    return read_table("mfu_reported.csv")


# ----------------------------------------------------------------------------- labelled tables
@functools.cache
def hardware_table():
    """Every accelerator as one row of an ``xarray.Dataset`` on dim ``hardware`` (canonical ids).

    Variables: ``peak_<dtype>_flop_per_s`` (NaN where not published), every numeric field of
    :class:`Hardware` (NaN where empty), ``system_power_{low,central,high}_w``, and ``family`` and
    ``generation`` as strings. Select rows with :func:`select_hardware`.
    """
    import dataclasses

    import numpy as np
    import xarray as xr

    from .units import FLOP_PER_TFLOP

    recs = [get_hardware(h) for h in hardware_ids()]
    cols = {}
    dtypes = sorted({d for r in recs for d in r.peak_tflop_per_s})
    for d in dtypes:
        cols[f"peak_{d}_flop_per_s"] = [(r.peak_tflop_per_s.get(d) or np.nan) * FLOP_PER_TFLOP for r in recs]
    for f in dataclasses.fields(Hardware):
        vals = [getattr(r, f.name) for r in recs]
        if all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            cols[f.name] = [np.nan if v is None else float(v) for v in vals]
    for i, side in enumerate(("low", "central", "high")):
        cols[f"system_power_{side}_w"] = [r.system_power_w[i] if r.system_power_w else np.nan for r in recs]
    cols["family"] = [r.family for r in recs]
    cols["generation"] = [r.generation for r in recs]
    ids = [r.hardware_id for r in recs]
    return xr.Dataset({k: ("hardware", np.asarray(v)) for k, v in cols.items()}, coords={"hardware": ids})


def select_hardware(labels):
    """Rows of :func:`hardware_table` for a DataArray of hardware labels (ids or aliases).

    The result keeps the labels' dims and coordinates (a user's ``'h100'`` stays ``'h100'``), with
    the canonical id as coordinate ``hardware_id``. Unknown labels raise with close matches.
    """
    return _select(hardware_table(), labels, lambda v: get_hardware(v).hardware_id, "hardware", "hardware_id")


@functools.cache
def region_table():
    """Every region as one row of an ``xarray.Dataset`` on dim ``region`` (canonical ids).

    ``carbon_free_fraction`` is the grid's annual carbon-free share [-] (Electricity Maps 2025; NaN where none
    is published: eGRID subregions, aggregates) and ``google_cfe_fraction`` Google's hourly-matched CFE of its
    own load (GCP regions, 2024), as fractions.
    """
    import numpy as np
    import xarray as xr

    recs = [get_region(r) for r in region_ids()]
    cols = {"gco2e_per_kwh": [r.gco2e_per_kwh for r in recs], "gco2e_per_kwh_low": [r.gco2e_per_kwh_low for r in recs],
            "gco2e_per_kwh_high": [r.gco2e_per_kwh_high for r in recs], "provider": [r.provider for r in recs],
            "profile_zone": [r.profile_zone for r in recs], "year": [r.year for r in recs]}
    for name in ("carbon_free_fraction", "google_cfe_fraction"):
        cols[name] = [np.nan if getattr(r, name) is None else getattr(r, name) for r in recs]
    return xr.Dataset({k: ("region", np.asarray(v)) for k, v in cols.items()}, coords={"region": [r.region_id for r in recs]})


def select_regions(labels):
    """Rows of :func:`region_table` for a DataArray of region labels; see :func:`select_hardware`."""
    return _select(region_table(), labels, lambda v: get_region(v).region_id, "region", "region_id")


def _select(table, labels, canonical, dim, id_name):
    import numpy as np
    import xarray as xr

    values = np.asarray(labels.values, dtype=object)
    ids = {v: canonical(v) for v in values.ravel().tolist()}  # one lookup per distinct label
    canon = np.vectorize(ids.__getitem__, otypes=[object])(values) if values.ndim else np.asarray(ids[values.item()], dtype=object)
    if labels.dims == (dim,) and len(set(canon.tolist())) != canon.size:  # 'h100' and 'H100' are one coordinate
        seen = {}
        for label, cid in zip(values.tolist(), canon.tolist()):
            if cid in seen:
                raise ValueError(f"{dim} lists {seen[cid]!r} and {label!r}, which are both {cid!r}; each {dim} "
                                 f"becomes one coordinate, so give it once")
            seen[cid] = label
    rows = table.sel({dim: xr.DataArray(canon.astype(str), dims=labels.dims)}).drop_vars(dim)
    return rows.assign_coords(labels.coords).assign_coords({id_name: (labels.dims, canon.astype(str))})
