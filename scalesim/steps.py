"""Steps of the chain: one registry per factor, and the factor functions that use them.

A factor input (``mfu``, ``chip_power_w``, ``pue``) takes a number, a registered name or a
callable. Every step has one signature::

    step(ctx: Context) -> float | xarray.DataArray

where :class:`Context` holds the catalogue rows of the hardware and regions asked for (on the
user's dims), the other resolved inputs and the defaults picker. A step returns values on its own
dims (utilisation on hardware, PUE on region, ...); the chain broadcasts them once. The registries
are read by :func:`scalesim.simulate`, :func:`scalesim.optimize` (including its chip search),
:func:`scalesim.validate`, the scenario checker and the CLI, so a model registered here is
available everywhere::

    from scalesim import steps

    @steps.UTILISATION.register("flat40", description="40 % MFU everywhere")
    def flat40(ctx):
        return 0.4

References for the registered models are in their docstrings.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from scalesim import catalog
from scalesim.inputs import SIDES
from scalesim.models import hardware as hw_model


# ----------------------------------------------------------------------------- registries
@dataclass(frozen=True)
class Step:
    """A registered model: ``fn(ctx)``, the optional inputs it needs, and a one-line description."""

    name: str
    fn: object
    needs: tuple = ()
    description: str = ""
    uses: tuple = ()  # inputs it depends on where given; absent, the chain applies a documented rule


class Registry:
    """Models of one factor selectable by name; :meth:`resolve` also takes numbers and callables."""

    def __init__(self, factor, default):
        self.factor, self.default, self._steps = factor, default, {}

    def register(self, name, *, needs=(), uses=(), description=""):
        """Decorator registering ``fn(ctx)`` under ``name``.

        ``needs``: inputs it cannot do without; ``uses``: inputs it depends on that the chain fills
        by a documented rule when absent (``n_chips``: :data:`scalesim.chain.simulation.DEFAULT_WALL_DAYS`).
        """
        def deco(fn):
            self._steps[name] = Step(name, fn, tuple(needs), description or (fn.__doc__ or "").strip().split("\n")[0],
                                     tuple(uses))
            return fn
        return deco

    def names(self):
        return tuple(self._steps)

    def get(self, name):
        if name not in self._steps:
            close = difflib.get_close_matches(str(name), self.names(), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{self.factor} must be a number, a callable or one of {self.names()}, got {name!r}{hint}")
        return self._steps[name]

    def needs(self, name):
        return self._steps[name].needs if name in self._steps else ()

    def step(self, value):
        """The :class:`Step` for a name, a callable or None (the default); None for numbers."""
        if value is None:
            return self.get(self.default)
        if isinstance(value, str):
            return self.get(value)
        if callable(value) and not isinstance(value, xr.DataArray):
            return Step(getattr(value, "__name__", "callable"), value, tuple(getattr(value, "needs", ())), "user callable",
                        tuple(getattr(value, "uses", ())))
        return None


UTILISATION = Registry("mfu", default="structural")
POWER = Registry("chip_power_w", default="power_model")
PUE = Registry("pue", default="operator")


# ----------------------------------------------------------------------------- defaults
class Defaults:
    """Picks the low/central/high end of each default, or draws it, and records it for the attrs.

    With ``samples`` (Monte Carlo) every default is drawn from a triangular distribution on its
    documented range (low, mode = central value, high), except where a step draws from a calibrated
    pool (:meth:`empirical`: the structural utilisation's residuals). Draws are *common random
    numbers*: one uniform draw per sample and per kind of input (``mfu``, ``chip_power_w``, ``pue``,
    ``grid_gco2e_per_kwh``, ...), shared by every configuration, so comparisons between regions or
    chips are paired. ``draws`` may supply those uniforms (``{kind: array on 'sample'}``), as
    :func:`scalesim.sensitivity` does; otherwise they come from ``numpy.random.default_rng([seed,
    crc32(kind)])``, the same on every machine.
    """

    def __init__(self, side, *, samples=None, seed=None, draws=None):
        if side not in SIDES:
            raise ValueError(f"defaults must be one of {SIDES}, got {side!r}")
        self.side, self.samples, self.seed = side, samples, seed
        self.draws = dict(draws or {})
        self.used, self.kinds = {}, {}

    @property
    def sampling(self):
        return self.samples is not None

    def pick(self, default, *, higher_is_worse=True, kind=None):
        """A scalar :class:`catalog.Default` -> the value for this side, or its draws (recorded)."""
        self.used[default.name] = default.as_attr()
        return self.choose(default.value, default.low, default.high, higher_is_worse=higher_is_worse,
                           kind=kind or default.name.split(":")[0])

    def pick_mapped(self, ids_da, defaults, *, kind, higher_is_worse=True):
        """``{id: Default}`` mapped over a DataArray of ids, then chosen (or drawn) as arrays."""
        for d in defaults.values():
            self.used[d.name] = d.as_attr()
        value, low, high = (_map(ids_da, {k: getattr(d, f) for k, d in defaults.items()}) for f in ("value", "low", "high"))
        return self.choose(value, low, high, higher_is_worse=higher_is_worse, kind=kind)

    def choose(self, value, low, high, *, higher_is_worse=True, kind=None):
        """The side's end of arrays ``(value, low, high)`` (low = low emissions), or triangular draws."""
        if self.sampling:
            return triangular_ppf(self.uniform(kind), low, value, high)
        if self.side == "central":
            return value
        want_low = (self.side == "low") == higher_is_worse
        return low if want_low else high

    def uniform(self, kind):
        """The shared uniform draws of one kind of input, on dim ``sample``."""
        if kind is None:
            raise ValueError("a sampled default needs its kind")
        if kind not in self.draws:
            import zlib

            rng = np.random.default_rng([int(self.seed or 0), zlib.crc32(kind.encode())])
            self.draws[kind] = rng.random(int(self.samples))
        u = self.draws[kind]
        self.kinds[kind] = "triangular(low, central, high), uniform shared across configurations"
        return u if isinstance(u, xr.DataArray) else xr.DataArray(np.asarray(u, dtype=float), dims="sample")

    def empirical(self, values, *, kind):
        """Draws of one kind from the empirical distribution of ``values`` at plotting positions k/(n+1).

        The quantile at the shared uniform u (``numpy.quantile(values, u, method='weibull')``,
        Hyndman & Fan 1996 definition 6), clamped to [min, max]; common random numbers like
        :meth:`choose`.
        """
        u = self.uniform(kind)
        self.kinds[kind] = (f"empirical of {len(values)} values at plotting positions k/(n+1), "
                            "uniform shared across configurations")
        return u.copy(data=np.quantile(np.asarray(values, dtype=float), u.values, method="weibull"))

    def record(self, name, value, low, high, source, year=""):
        self.used[name] = {"name": name, "value": value, "low": low, "high": high, "year": year, "source": source}

    def attrs(self):
        return json.dumps(list(self.used.values()))


def triangular_ppf(u, low, mode, high):
    """Inverse CDF of the triangular distribution on [min(low, high), max(low, high)] with ``mode`` [-].

    Broadcasts ``u`` (uniforms in [0, 1]) against the bounds; the mode is clipped into the range.
    DataArrays go through one :func:`xarray.apply_ufunc` of the numpy kernel (exact join; dask
    arrays allowed): a Monte Carlo run draws a dozen kinds, and elementwise DataArray arithmetic
    costs a fixed overhead per operation that used to dominate the draws.

    Notes
    -----
    With a = min, b = max, c = mode and F(c) = (c - a)/(b - a): x = a + sqrt(u (b - a)(c - a)) for
    u < F(c), else b - sqrt((1 - u)(b - a)(b - c)) (the triangular inverse CDF; e.g. Kotz and van Dorp
    2004, "Beyond Beta", World Scientific, doi:10.1142/5720, Eq. 1.10).
    """
    args = (u, low, mode, high)
    if any(isinstance(x, xr.DataArray) for x in args):
        return xr.apply_ufunc(_triangular_ppf_kernel, *args, join="exact", dask="allowed")
    return _triangular_ppf_kernel(*args)


def _triangular_ppf_kernel(u, low, mode, high):
    """:func:`triangular_ppf` on numpy (or dask) arrays."""
    a, b = np.minimum(low, high), np.maximum(low, high)
    c = np.clip(mode, a, b)
    width = b - a
    fc = np.where(width > 0, (c - a) / np.where(width > 0, width, 1.0), 0.5)
    left = a + np.sqrt(u * width * (c - a))
    right = b - np.sqrt((1.0 - u) * width * (b - c))
    return np.where(u < fc, left, right)


@dataclass
class Context:
    """What every step sees: catalogue rows on the user's dims, resolved inputs, defaults, notes."""

    hardware: xr.Dataset
    dtype: str
    defaults: Defaults
    regions: xr.Dataset | None = None
    inputs: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    models: dict = field(default_factory=dict)
    variable_attrs: dict = field(default_factory=dict)  # {output: {attr: value}} set by steps, attached at the end

    def __getattr__(self, name):  # ctx.n_params, ctx.n_chips, ... (None when not given)
        if name.startswith("_"):
            raise AttributeError(name)
        return self.__dict__.get("inputs", {}).get(name)

    def with_inputs(self, **changes):
        """A copy with some inputs replaced (e.g. the chip search trying chip counts)."""
        return Context(self.hardware, self.dtype, self.defaults, self.regions, {**self.inputs, **changes},
                       self.notes, self.models, self.variable_attrs)


def ids(rows, id_name):
    """The distinct canonical ids of a selected table, in order of first appearance."""
    seen = dict.fromkeys(np.atleast_1d(rows[id_name].values).ravel().tolist())
    return list(seen)


# ----------------------------------------------------------------------------- hardware steps
def peak_flop_per_s(ctx):
    """Dense peak for the training dtype on the hardware dims; fp16 where bf16 does not exist (V100)."""
    hw = ctx.hardware
    key = f"peak_{ctx.dtype}_flop_per_s"
    if key not in hw:
        have = sorted(k[5:-11] for k in hw.data_vars if k.startswith("peak_"))
        raise ValueError(f"dtype must be one of {have}, got {ctx.dtype!r}")
    peak = hw[key]
    if ctx.dtype == "bf16":
        fallback = np.isnan(peak) & np.isfinite(hw["peak_fp16_flop_per_s"])
        for h in np.unique(hw["hardware_id"].values[fallback.values]):
            ctx.notes.append(f"{h} has no bf16: fp16 peak used")
        peak = xr.where(fallback, hw["peak_fp16_flop_per_s"], peak)
    missing = np.isnan(peak.values)
    if missing.any():
        h = str(np.asarray(hw["hardware_id"].values)[missing] if missing.ndim else hw["hardware_id"].values)
        rec = catalog.get_hardware(h.strip("[]'"))
        have = [k for k, v in rec.peak_tflop_per_s.items() if v is not None]
        raise ValueError(f"{rec.hardware_id} has no published {ctx.dtype} peak; available dtypes: {have}")
    return peak.drop_vars("hardware_id")


@UTILISATION.register("hierarchical", description="effective MFU per accelerator generation (published runs + Epoch AI)")
def mfu_hierarchical(ctx):
    """Effective MFU per generation, :data:`scalesim.models.hardware.MFU_MODEL_HIERARCHICAL`."""
    m = hw_model.MFU_MODEL_HIERARCHICAL
    gen = ctx.hardware["generation"]
    base = xr.apply_ufunc(np.vectorize(lambda g: m.get(g, m["pooled"]), otypes=[float]), gen)
    clip = lambda x: np.clip(x, hw_model.MFU_CLIP_LOW, hw_model.MFU_CLIP_HIGH)  # noqa: E731
    for h in ids(ctx.hardware, "hardware_id"):
        g = catalog.get_hardware(h).generation
        if g not in m:
            ctx.notes.append(f"{h}: no published run or reported MFU for generation {g}; "
                             f"pooled effective MFU {m['pooled']:.3f} used")
        v = m.get(g, m["pooled"])
        ctx.defaults.record(f"mfu:{h}", float(clip(v)), float(clip(v * m["ratio_p10"])), float(clip(v * m["ratio_p90"])),
                            f"{m['source']}; generation {g if g in m else 'pooled'}")
    ctx.models["mfu"] = "hierarchical: effective MFU per accelerator generation (published runs + Epoch AI)"
    scale = ctx.defaults.choose(1.0, m["ratio_p10"], m["ratio_p90"], higher_is_worse=False, kind="mfu")
    return clip(base * scale).drop_vars("hardware_id", errors="ignore")


@UTILISATION.register("epoch", needs=("n_chips",), description="MFU while running as a function of n_chips (Epoch AI)")
def mfu_epoch(ctx):
    """MFU(n_chips), :func:`scalesim.models.hardware.mfu_default_epoch`; needs ``n_chips``."""
    m = hw_model.MFU_MODEL_EPOCH
    ctx.defaults.record("mfu", "mfu_default_epoch(n_chips)", m["residual_p10"], m["residual_p90"],
                        m["source"] + f"; R^2={m['r2']}, RMSE={m['rmse']}")
    ctx.models["mfu"] = "epoch: mfu_default_epoch (linear in log10 n_chips, Epoch AI data)"
    offset = ctx.defaults.choose(0.0, m["residual_p90"], m["residual_p10"], kind="mfu")
    return hw_model.mfu_default_epoch(ctx.inputs["n_chips"], offset=offset)


@UTILISATION.register("structural", needs=("n_params",), uses=("n_chips",),
                      description="structural MFU of the fastest fitting parallel plan x goodput of published runs")
def mfu_structural(ctx):
    """Structural MFU(n_params, n_chips, chip) x goodput, :data:`scalesim.models.hardware.MFU_MODEL_STRUCTURAL`."""
    from scalesim.chain.training_throughput import hardware_arrays
    from scalesim.models import parallelism

    m = hw_model.MFU_MODEL_STRUCTURAL
    ids_da = ctx.hardware["hardware_id"]
    dtype = ctx.dtype
    n_total, n_chips = ctx.inputs["n_params"], ctx.inputs["n_chips"]
    n_active = ctx.inputs.get("n_active_params")
    grids = xr.broadcast(n_total, n_chips, ids_da, *([n_active] if n_active is not None else []))
    arrays = hardware_arrays(np.asarray(grids[2].values, dtype=object), dtype)
    if dtype == "bf16":  # V100: fp16 peak, as peak_flop_per_s does
        arrays["peak_flop_per_s"] = np.where(np.isnan(arrays["peak_flop_per_s"]), arrays["peak_16bit_flop_per_s"],
                                             arrays["peak_flop_per_s"])
    structural = parallelism.structural_mfu(grids[0].values, grids[1].values, arrays,
                                            n_active_params=grids[3].values if n_active is not None else None)
    scale = (ctx.defaults.empirical(m["draw_ratios"], kind="mfu") if ctx.defaults.sampling  # the residual pool
             else ctx.defaults.choose(1.0, m["ratio_p10"], m["ratio_p90"], higher_is_worse=False, kind="mfu"))
    ctx.defaults.record("mfu:structural_goodput", m["goodput"], m["goodput"] * m["ratio_p10"],
                        m["goodput"] * m["ratio_p90"], m["source"])
    ctx.models["mfu"] = "structural: fastest fitting plan (models.parallelism) x goodput of published runs"
    out = grids[0].copy(data=structural) * m["goodput"] * scale  # scale: a number, or draws on 'sample'
    return out.clip(0.0, 1.0).drop_vars("hardware_id", errors="ignore")


@POWER.register("power_model", description="measured system power where published, else TDP x system/TDP ratio")
def power_model(ctx):
    """Average IT power per accelerator incl. host: measured (TPUs) or TDP x ``system_power_over_tdp``."""
    hw = ctx.hardware
    ratio = ctx.defaults.pick_mapped(hw["family"], {f: catalog.power_model_parameter(f, "system_power_over_tdp")
                                                    for f in np.unique(hw["family"].values)}, kind="chip_power_w")
    from_tdp = hw_model.chip_power_from_tdp(hw["tdp_w"].fillna(1.0), system_power_over_tdp=ratio).where(hw["tdp_w"].notnull())
    measured = ctx.defaults.choose(hw["system_power_central_w"], hw["system_power_low_w"], hw["system_power_high_w"],
                                   kind="chip_power_w")
    for h in ids(hw, "hardware_id"):
        r = catalog.get_hardware(h)
        if r.system_power_w is not None:
            lo, mid, hi = r.system_power_w
            ctx.defaults.record(f"chip_power_w:{h}", mid, lo, hi, f"{r.system_power_basis}: {r.system_power_source}")
    return xr.where(measured.notnull(), measured, from_tdp).drop_vars("hardware_id", errors="ignore")


@POWER.register("tdp", description="accelerator TDP only (no host share), as some papers assume")
def power_tdp(ctx):
    """Accelerator TDP [W] (a lower bound on per-accelerator IT power)."""
    return ctx.hardware["tdp_w"].drop_vars("hardware_id", errors="ignore")


def idle_power_w(ctx):
    """Idle power per accelerator = rating x ``idle_power_over_tdp`` (power_model.csv)."""
    f = ctx.defaults.pick(catalog.power_model_parameter("all", "idle_power_over_tdp"), kind="idle_power")
    hw = ctx.hardware
    rating = xr.where(hw["tdp_w"].notnull(), hw["tdp_w"], hw["system_power_central_w"])
    return (rating * f).drop_vars("hardware_id", errors="ignore")


def embodied_kgco2e_per_chip(ctx):
    """Embodied carbon per accelerator incl. host share [kgCO2e] (embodied.csv), with its range."""
    card, server = catalog.embodied_parameter("accelerator"), catalog.embodied_parameter("server_share")
    die = ctx.hardware["embodied_die_kgco2e"]
    smallest = float(np.nanmin(catalog.hardware_table()["embodied_die_kgco2e"].values))
    low = die.fillna(smallest) + float(server["value_low"])
    value = float(card["value"]) + float(server["value"])
    high = float(card["value_high"]) + float(server["value_high"])
    for h in ids(ctx.hardware, "hardware_id"):
        d = catalog.get_hardware(h).embodied_die_kgco2e
        ctx.defaults.record(f"embodied_kgco2e_per_chip:{h}", value, (d if d is not None else smallest) + float(server["value_low"]),
                            high, f"accelerator: {card['source']}; server share: {server['source']}")
    return (ctx.defaults.choose(xr.full_like(low, value), low, xr.full_like(low, high), kind="embodied_kgco2e_per_chip")
            .drop_vars("hardware_id", errors="ignore"))


# ----------------------------------------------------------------------------- site steps
@PUE.register("operator", description="the cloud provider's PUE for cloud regions, else the industry average")
def pue_of_operator(ctx):
    """PUE of the region's operator (cloud provider, scope-specific row where reported) or the industry."""
    if ctx.regions is None:
        return xr.DataArray(ctx.defaults.pick(catalog.datacenter_value("industry", "pue")))
    values = {}
    for rid in ids(ctx.regions, "region_id"):
        reg = catalog.get_region(rid)
        op = catalog.PROVIDER_OPERATOR.get(reg.provider) or "industry"
        values[rid] = catalog.datacenter_value(op, "pue", scope=reg.region_id)
    return ctx.defaults.pick_mapped(ctx.regions["region_id"], values, kind="pue").drop_vars("region_id")


def pue_named(operator):
    """The step for ``pue='<operator>'``: that operator's fleet PUE everywhere."""
    def step(ctx):
        return xr.DataArray(ctx.defaults.pick(catalog.datacenter_value(operator, "pue")))
    return step


def site_water(ctx, metric, operator=None):
    """On-site WUE [L/kWh] of the region's (or the named) operator where it reports one, else the industry;
    off-site EWIF [L/kWh] from each region's generation mix (:func:`scalesim.grid_water.ewif_grid_mix`)."""
    if metric == "ewif_l_per_kwh":
        from scalesim import grid_water

        return grid_water.ewif_grid_mix(ctx)
    have = catalog.datacenter_operators(metric)

    def for_op(op):
        return catalog.datacenter_value(op if op in have else "industry", metric)
    if operator is not None or ctx.regions is None:
        return xr.DataArray(ctx.defaults.pick(for_op(operator)))
    values = {rid: for_op(catalog.PROVIDER_OPERATOR.get(catalog.get_region(rid).provider))
              for rid in ids(ctx.regions, "region_id")}
    return ctx.defaults.pick_mapped(ctx.regions["region_id"], values, kind=metric).drop_vars("region_id")


def grid_intensity(ctx):
    """Annual grid intensity of each region [gCO2e/kWh], with its range across compilations."""
    rg = ctx.regions
    for rid in ids(rg, "region_id"):
        reg = catalog.get_region(rid)
        ctx.defaults.record(f"grid_gco2e_per_kwh:{rid}", reg.gco2e_per_kwh, reg.gco2e_per_kwh_low,
                            reg.gco2e_per_kwh_high, f"{reg.basis}; {reg.source}", reg.year)
    ci = ctx.defaults.choose(rg["gco2e_per_kwh"], rg["gco2e_per_kwh_low"], rg["gco2e_per_kwh_high"],
                             kind="grid_gco2e_per_kwh")
    return ci.drop_vars("region_id", errors="ignore")


def diurnal_profiles(ctx):
    """Typical 24-hour profile of each region (relative to the annual mean) on dims region x hour."""
    profiles = {}
    for rid in ids(ctx.regions, "region_id"):
        reg = catalog.get_region(rid)
        if not reg.profile_zone:
            have = sorted(x for x in catalog.region_ids() if catalog.get_region(x).profile_zone)
            raise ValueError(f"region {reg.region_id!r} has no diurnal profile; start_hour is supported for: {', '.join(have[:40])}")
        year, prof, src = catalog.diurnal_profile(reg.profile_zone)
        ctx.defaults.record(f"diurnal_profile:{rid}", reg.profile_zone, "", "", src, year)
        profiles[rid] = prof
    region_id = ctx.regions["region_id"]
    arr = np.array([profiles[r] for r in np.atleast_1d(region_id.values).ravel().tolist()]).reshape(region_id.shape + (24,))
    return xr.DataArray(arr, dims=region_id.dims + ("hour",), coords=region_id.drop_vars("region_id").coords)


def _map(da, mapping):
    return xr.apply_ufunc(np.vectorize(mapping.__getitem__, otypes=[float]), da)
