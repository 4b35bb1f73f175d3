"""Compose the models into :func:`simulate`: inputs (scalars, lists, arrays, DataArrays) -> Dataset.

Each factor is evaluated on its own dimensions (FLOPs on (n_params, n_tokens); energy per FLOP on
hardware; carbon per kWh on region) and broadcast once per output, so a sweep over millions of
configurations is a handful of array multiplications.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from scalesim import __version__
from scalesim import catalog
from scalesim import variables
from scalesim.models import datacenter, embodied, flops, grid
from scalesim.models import hardware as hw_model
from scalesim.models._checks import check_at_least, check_fraction, check_positive
from scalesim.units import H_PER_DAY, S_PER_H, W_PER_KW

#: Utilisation models selectable by name with ``mfu=`` (the first is the default).
MFU_MODELS = ("hierarchical", "epoch")

#: Which end of each documented range ``defaults='low'`` / ``'high'`` picks (low = low emissions).
_SIDES = ("low", "central", "high")


def logspace(lo, hi, n):
    """``n`` values log-uniformly spaced from ``lo`` to ``hi`` inclusive (both > 0)."""
    check_positive("lo", lo)
    check_positive("hi", hi)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return np.logspace(np.log10(lo), np.log10(hi), int(n))


def _as_input(name, value, *, numeric=True):
    """Scalar -> 0-d DataArray; list/1-d array -> DataArray on dim ``name``; DataArray kept."""
    if value is None:
        return None
    if isinstance(value, xr.DataArray):
        da = value
    elif isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        da = xr.DataArray(value)
    else:
        arr = np.asarray(value)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a scalar, a 1-d list/array or an xarray.DataArray, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{name} must not be empty")
        if len(set(arr.tolist())) != arr.size:
            raise ValueError(f"{name} has repeated values; each becomes a coordinate of dimension {name!r}")
        da = xr.DataArray(arr, dims=[name], coords={name: arr})
    if numeric:
        if da.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be numeric, got {da.dtype} values")
        da = da.astype(float, copy=False) if da.dtype.kind != "f" else da
    return da


def _map_labels(labels, fn):
    """Apply ``fn`` to each label of a string DataArray; returns a float DataArray of same dims."""
    values = np.asarray(labels.values, dtype=object)
    uniq = {v: fn(v) for v in values.ravel().tolist()}
    out = np.vectorize(lambda v: uniq[v], otypes=[float])(values) if values.ndim else np.float64(uniq[values.item()])
    return xr.DataArray(out, dims=labels.dims, coords=labels.coords)


def _mfu_hierarchical(record, d, notes):
    """Default effective MFU of one accelerator, recorded in ``d.used`` (and a note if pooled)."""
    m = hw_model.MFU_MODEL_HIERARCHICAL
    gen = record.generation
    if gen not in m:
        notes.append(f"{record.hardware_id}: no published run or reported MFU for generation {gen}; "
                     f"pooled effective MFU {m['pooled']:.3f} used")
    default = catalog.Default(f"mfu:{record.hardware_id}", hw_model.mfu_hierarchical(gen),
                              hw_model.mfu_hierarchical(gen, scale=m["ratio_p10"]),
                              hw_model.mfu_hierarchical(gen, scale=m["ratio_p90"]),
                              f"{m['source']}; generation {gen if gen in m else 'pooled'}")
    return d.pick(default, higher_is_worse=False)


class _Defaults:
    """Collects every default used, for the result's attrs."""

    def __init__(self, side):
        if side not in _SIDES:
            raise ValueError(f"defaults must be one of {_SIDES}, got {side!r}")
        self.side = side
        self.used = {}

    def pick(self, default, *, higher_is_worse=True):
        self.used[default.name] = default.as_attr()
        if self.side == "central":
            return default.value
        want_low = (self.side == "low") == higher_is_worse
        return default.low if want_low else default.high


def simulate(n_params=None, n_tokens=None, *, flop=None, hardware=None, n_chips=None, chip_hours=None,
             mfu=None, chip_power_w=None, pue=None, region=None, grid_gco2e_per_kwh=None,
             dtype="bf16", goodput=1.0, start_hour=None, wue_l_per_kwh=None, ewif_l_per_kwh=None,
             embodied_kgco2e_per_chip=None, lifetime_years=None, law=None, defaults="central"):
    """Simulate the compute, time, energy, carbon and water of training runs.

    Every input may be a scalar, a list or 1-d array (which becomes a dimension named after the
    input, with the values as coordinates) or an ``xarray.DataArray`` (its own dims are kept, e.g.
    to pair hardware with chip counts). Outputs broadcast over all of them.

    Parameters
    ----------
    n_params, n_tokens : array_like, optional
        Parameters (active parameters for MoE) [-] and training tokens [-]; FLOPs = 6ND.
    flop : array_like, optional
        Training compute [FLOP], instead of ``n_params`` and ``n_tokens``.
    hardware : str or sequence of str
        Accelerator id or alias (``'H100-SXM5-80GB'``, ``'h100'``, ``'TPUv5p'``).
    n_chips : array_like, optional
        Accelerators used; gives ``wall_days`` (and the ``mfu='epoch'`` utilisation).
    chip_hours : array_like, optional
        Reported accelerator-hours [h] (accounting mode: time as reported, no throughput model).
    mfu : array_like or str, optional
        Model FLOPs utilisation [-], or a utilisation model by name:

        - ``'hierarchical'`` (default): effective MFU per accelerator generation, calibrated on
          published runs and Epoch AI's reported MFU
          (:data:`scalesim.models.hardware.MFU_MODEL_HIERARCHICAL`; downtime included).
        - ``'epoch'``: MFU while running as a function of ``n_chips`` (needs ``n_chips``;
          :func:`scalesim.models.hardware.mfu_default_epoch`).

        With ``chip_hours`` and compute given, the implied MFU is reported instead.
    chip_power_w : array_like, optional
        Average IT power per accelerator incl. host share [W]; default from the power model.
    pue : float, array_like or str, optional
        Power usage effectiveness [-] (>= 1) or an operator name (``'industry'``, ``'google'``,
        ``'aws'``, ``'azure'``, ``'meta'``...). Default: the cloud provider's value for cloud
        regions, else the industry average (recorded in attrs).
    region : str or sequence of str, optional
        Grid region (ISO country, grid zone, ``egrid:``, ``gcp:``/``aws:``/``azure:`` region).
    grid_gco2e_per_kwh : array_like, optional
        Explicit grid intensity [gCO2e/kWh], instead of ``region``.
    dtype : {'bf16', 'fp16', 'fp8', 'tf32', 'fp32'}
        Training precision selecting the dense peak; falls back to fp16 only where bf16 does not
        exist (V100), and says so in attrs.
    goodput : float
        Productive share of accelerator time [-]; lost time is counted at idle power.
    start_hour : array_like, optional
        Local start hour [h]; weights intensity by the region's typical diurnal profile over the
        run window (needs ``n_chips`` and a region with a profile).
    wue_l_per_kwh, ewif_l_per_kwh : float, optional
        On-site water per IT kWh and off-site water per facility kWh [L/kWh].
    embodied_kgco2e_per_chip, lifetime_years : float, optional
        Embodied carbon per accelerator incl. host share [kgCO2e] and amortisation period [yr].
    law : str, optional
        Scaling law (see :data:`scalesim.laws.LAWS`); adds ``loss``.
    defaults : {'central', 'low', 'high'}
        Which end of every default's documented range to use (low = low emissions).

    Returns
    -------
    xarray.Dataset
        ``flop``, ``mfu``, ``chip_hours``, ``wall_days`` (with ``n_chips``), ``chip_power_w``,
        ``it_energy_kwh``, ``energy_kwh``, ``pue``, ``grid_gco2e_per_kwh``, ``co2e_t``,
        ``embodied_co2e_t``, ``total_co2e_t``, ``water_onsite_l``, ``water_offsite_l``,
        ``water_l`` (and ``loss``), each with ``units``, ``long_name``, ``description``; attrs
        hold ``scalesim_version``, the resolved inputs and every default used with its source.
    """
    d = _Defaults(defaults)
    models = {"flop": "6nd (Kaplan 2020 Sec. 2.1)"}
    notes = []

    # ---------------------------------------------------------------- inputs
    if flop is not None and (n_params is not None or n_tokens is not None):
        raise ValueError("give either flop or n_params and n_tokens, not both (flop is computed as 6ND)")
    if (n_params is None) != (n_tokens is None):
        raise ValueError("n_params and n_tokens must be given together (or give flop)")
    if hardware is None:
        raise ValueError("hardware is required, e.g. hardware='H100-SXM5-80GB' (see scalesim.catalog.hardware_ids())")
    if region is not None and grid_gco2e_per_kwh is not None:
        raise ValueError("give either region or grid_gco2e_per_kwh, not both")
    if region is None and grid_gco2e_per_kwh is None:
        raise ValueError("no grid intensity: pass region= (e.g. 'FR', 'US-CAL-CISO', 'gcp:us-central1') or "
                         "grid_gco2e_per_kwh=; scalesim never falls back to a world average")

    N = _as_input("n_params", n_params)
    D = _as_input("n_tokens", n_tokens)
    C = _as_input("flop", flop)
    nc = _as_input("n_chips", n_chips)
    ch = _as_input("chip_hours", chip_hours)
    mfu_model = mfu if isinstance(mfu, str) else None
    if mfu_model is not None and mfu_model not in MFU_MODELS:
        raise ValueError(f"mfu must be a fraction or one of {MFU_MODELS}, got {mfu!r}")
    mfu_in = None if mfu_model is not None else _as_input("mfu", mfu)
    p_in = _as_input("chip_power_w", chip_power_w)
    ci_in = _as_input("grid_gco2e_per_kwh", grid_gco2e_per_kwh)
    sh = _as_input("start_hour", start_hour)
    hw = _as_input("hardware", hardware, numeric=False)
    rg = _as_input("region", region, numeric=False)
    for name, v in (("n_params", N), ("n_tokens", D), ("flop", C), ("n_chips", nc), ("chip_hours", ch),
                    ("chip_power_w", p_in)):
        if v is not None:
            check_positive(name, v)
    if ci_in is not None:
        check_positive("grid_gco2e_per_kwh", ci_in, allow_zero=True)
    if mfu_in is not None:
        check_fraction("mfu", mfu_in)
    check_fraction("goodput", goodput)
    if sh is not None:
        check_at_least("start_hour", sh, 0.0)
    if C is None and N is None and ch is None:
        raise ValueError("nothing to simulate: give n_params and n_tokens, flop, or chip_hours")
    if mfu_model is not None and ch is not None:
        raise ValueError(f"give either chip_hours (time as reported) or a utilisation model mfu={mfu!r}, not both")
    if mfu_model == "epoch" and nc is None:
        raise ValueError("mfu='epoch' needs n_chips (the model is a function of cluster size)")

    # ---------------------------------------------------------------- hardware factors (hardware dims)
    records = {}

    def rec(h):
        if h not in records:
            records[h] = catalog.get_hardware(h)
        return records[h]

    def peak(h):
        r = rec(h)
        use = dtype
        if dtype == "bf16" and r.peak_tflop_per_s["bf16"] is None and r.peak_tflop_per_s["fp16"] is not None:
            use = "fp16"
            notes.append(f"{r.hardware_id} has no bf16: fp16 peak used")
        return r.peak_flop_per_s(use)

    peak_flop_per_s = _map_labels(hw, peak)
    if C is None and N is not None:
        C = flops.training_flop_6nd(N, D)

    if mfu_in is not None:
        mfu_da = mfu_in
    elif ch is not None:
        mfu_da = None  # time as reported; MFU implied below where compute is known
    elif mfu_model == "epoch":
        m = hw_model.MFU_MODEL_EPOCH
        offset = {"central": 0.0, "low": m["residual_p90"], "high": m["residual_p10"]}[d.side]
        d.used["mfu"] = {"name": "mfu", "value": "mfu_default_epoch(n_chips)", "low": m["residual_p10"],
                         "high": m["residual_p90"], "year": "", "source": m["source"] +
                         f"; R^2={m['r2']}, RMSE={m['rmse']}"}
        mfu_da = hw_model.mfu_default_epoch(nc, offset=offset)
        models["mfu"] = "epoch: mfu_default_epoch (linear in log10 n_chips, Epoch AI data)"
    else:
        mfu_da = _map_labels(hw, lambda h: _mfu_hierarchical(rec(h), d, notes))
        models["mfu"] = "hierarchical: effective MFU per accelerator generation (published runs + Epoch AI)"

    def power(h):
        r = rec(h)
        if r.system_power_w is not None:
            lo, mid, hi = r.system_power_w
            return d.pick(catalog.Default(f"chip_power_w:{r.hardware_id}", mid, lo, hi,
                                          f"{r.system_power_basis}: {r.system_power_source}"))
        f = d.pick(catalog.power_model_parameter(r.family, "system_power_over_tdp"))
        return hw_model.chip_power_from_tdp(r.tdp_w, system_power_over_tdp=f)

    if p_in is None:
        p_da = _map_labels(hw, power)
    else:
        p_da = p_in

    def idle_power(h):
        r = rec(h)
        f = d.pick(catalog.power_model_parameter("all", "idle_power_over_tdp"))
        rating = r.tdp_w if r.tdp_w is not None else r.system_power_w[1]
        return rating * f

    # ---------------------------------------------------------------- time
    if ch is None:
        h_per_flop = 1.0 / (hw_model.achieved_flop_per_s(peak_flop_per_s, mfu_da) * S_PER_H)
        productive_h = C * h_per_flop
        chip_hours_da = productive_h / goodput
    else:
        chip_hours_da = ch
        productive_h = ch * goodput
        if C is not None and mfu_da is None:
            mfu_da = C / (productive_h * S_PER_H * peak_flop_per_s)
            models["mfu"] = "implied by flop / (chip_hours x peak)"
    lost_h_per_productive_h = 1.0 / goodput - 1.0
    if goodput < 1.0:
        idle_da = _map_labels(hw, idle_power)
        power_per_productive_h = p_da + lost_h_per_productive_h * idle_da
    else:
        power_per_productive_h = p_da

    # ---------------------------------------------------------------- datacenter + grid factors (region dims)
    if pue is None or isinstance(pue, str):
        def pue_for(r):
            if isinstance(pue, str):
                return d.pick(catalog.datacenter_value(pue, "pue"))
            reg = catalog.get_region(r) if r is not None else None
            op = catalog.PROVIDER_OPERATOR.get(reg.provider) if reg is not None else None
            return d.pick(catalog.datacenter_value(op or "industry", "pue", scope=reg.region_id if reg else None))
        pue_da = _map_labels(rg, pue_for) if rg is not None else xr.DataArray(pue_for(None))
    else:
        pue_da = _as_input("pue", pue)
        check_at_least("pue", pue_da, 1.0)

    def water_for(metric, r):
        # the operator's own figure where it reports one (cloud provider of the region, or the
        # operator named in pue=), else the industry average; either way recorded in attrs
        reg = catalog.get_region(r) if r is not None else None
        op = pue.strip().lower() if isinstance(pue, str) else catalog.PROVIDER_OPERATOR.get(reg.provider) if reg else None
        if op not in catalog.datacenter_operators(metric):
            op = "industry"
        return d.pick(catalog.datacenter_value(op, metric))

    if wue_l_per_kwh is None:
        wue_da = _map_labels(rg, lambda r: water_for("wue_l_per_kwh", r)) if rg is not None else xr.DataArray(water_for("wue_l_per_kwh", None))
    else:
        wue_da = _as_input("wue_l_per_kwh", wue_l_per_kwh)
    if ewif_l_per_kwh is None:
        ewif_da = xr.DataArray(d.pick(catalog.datacenter_value("industry", "ewif_l_per_kwh")))
    else:
        ewif_da = _as_input("ewif_l_per_kwh", ewif_l_per_kwh)

    if rg is not None:
        def ci_for(r):
            reg = catalog.get_region(r)
            return d.pick(catalog.Default(f"grid_gco2e_per_kwh:{reg.region_id}", reg.gco2e_per_kwh,
                                          reg.gco2e_per_kwh_low, reg.gco2e_per_kwh_high,
                                          f"{reg.basis}; {reg.source}", reg.year))
        ci_da = _map_labels(rg, ci_for)
    else:
        ci_da = ci_in

    # ---------------------------------------------------------------- compose
    kwh_per_productive_h = power_per_productive_h / W_PER_KW
    it_energy = productive_h * kwh_per_productive_h
    facility_per_it = datacenter.facility_energy_kwh(1.0, pue_da)
    t_per_it_kwh = grid.operational_co2e_t(facility_per_it, ci_da)
    if sh is not None:
        if nc is None:
            raise ValueError("start_hour needs n_chips (the run window's length comes from the wall time)")
        if rg is None:
            raise ValueError("start_hour needs region= with a diurnal profile, not an explicit grid_gco2e_per_kwh")
        wall_h = chip_hours_da / nc

        def profile_for(r):
            reg = catalog.get_region(r)
            if not reg.profile_zone:
                have = sorted(x for x in catalog.region_ids() if catalog.get_region(x).profile_zone)
                raise ValueError(f"region {reg.region_id!r} has no diurnal profile; start_hour is supported for: {', '.join(have[:40])}")
            year, prof, src = catalog.diurnal_profile(reg.profile_zone)
            d.used[f"diurnal_profile:{reg.region_id}"] = {"name": f"diurnal_profile:{reg.region_id}", "value": reg.profile_zone,
                                                           "low": "", "high": "", "year": year, "source": src}
            return prof

        labels = np.atleast_1d(np.asarray(rg.values, dtype=object))
        prof = np.array([profile_for(r) for r in labels])
        prof_da = xr.DataArray(prof.reshape(rg.shape + (24,)), dims=rg.dims + ("hour",), coords=rg.coords)
        factor = xr.apply_ufunc(grid.window_mean_factor, prof_da, sh, wall_h,
                                input_core_dims=[["hour"], [], []], dask="parallelized", output_dtypes=[float])
        ci_eff = ci_da * factor
        co2e = grid.operational_co2e_t(it_energy * facility_per_it, ci_eff)
    else:
        ci_eff = ci_da
        co2e = it_energy * t_per_it_kwh

    if embodied_kgco2e_per_chip is None:
        card = catalog.embodied_parameter("accelerator")
        server = catalog.embodied_parameter("server_share")

        def emb_for(h):
            r = rec(h)
            die = r.embodied_die_kgco2e
            low = die if die is not None else min(x.embodied_die_kgco2e for x in map(catalog.get_hardware, catalog.hardware_ids()) if x.embodied_die_kgco2e)
            return d.pick(catalog.Default(f"embodied_kgco2e_per_chip:{r.hardware_id}", float(card["value"]) + float(server["value"]),
                                          low + float(server["value_low"]), float(card["value_high"]) + float(server["value_high"]),
                                          f"accelerator: {card['source']}; server share: {server['source']}"))
        emb_da = _map_labels(hw, emb_for)
    else:
        emb_da = _as_input("embodied_kgco2e_per_chip", embodied_kgco2e_per_chip)
    life = catalog.embodied_parameter("lifetime")
    use = catalog.embodied_parameter("use_fraction")
    if lifetime_years is None:
        lifetime_years = d.pick(catalog.Default("lifetime_years", float(life["value"]), float(life["value_low"]),
                                                float(life["value_high"]), life["source"]), higher_is_worse=False)
    use_fraction = d.pick(catalog.Default("use_fraction", float(use["value"]), float(use["value_low"]),
                                          float(use["value_high"]), use["source"]), higher_is_worse=False)
    emb_t_per_chip_hour = embodied.embodied_co2e_t(1.0, embodied_kgco2e_per_chip=emb_da,
                                                   lifetime_years=lifetime_years, use_fraction=use_fraction)

    out = {}
    if C is not None:
        out["flop"] = C
    if mfu_da is not None:
        out["mfu"] = mfu_da
    out["chip_hours"] = chip_hours_da
    if nc is not None:
        out["wall_days"] = chip_hours_da / nc / H_PER_DAY
    out["chip_power_w"] = p_da
    out["it_energy_kwh"] = it_energy
    out["pue"] = pue_da
    out["energy_kwh"] = it_energy * facility_per_it
    out["grid_gco2e_per_kwh"] = ci_eff
    out["co2e_t"] = co2e
    out["embodied_co2e_t"] = chip_hours_da * emb_t_per_chip_hour
    out["total_co2e_t"] = out["co2e_t"] + out["embodied_co2e_t"]
    out["water_onsite_l"] = it_energy * wue_da
    out["water_offsite_l"] = datacenter.water_offsite_l(out["energy_kwh"], ewif_da)
    out["water_l"] = out["water_onsite_l"] + out["water_offsite_l"]
    if law is not None:
        if N is None:
            raise ValueError("law= needs n_params and n_tokens (loss is a function of both)")
        from scalesim import laws as scaling

        out["loss"] = scaling.loss(N, D, law=law)
        models["loss"] = law

    ds = xr.Dataset({k: (v if isinstance(v, xr.DataArray) else xr.DataArray(v)) for k, v in out.items()})
    order = [n for n in ("n_params", "n_tokens", "flop", "hardware", "n_chips", "chip_hours", "mfu",
                         "chip_power_w", "pue", "region", "grid_gco2e_per_kwh", "start_hour") if n in ds.dims]
    ds = ds.transpose(*order, ...)
    inputs = {k: _describe(v) for k, v in dict(n_params=n_params, n_tokens=n_tokens, flop=flop, hardware=hardware,
                                                 n_chips=n_chips, chip_hours=chip_hours, mfu=mfu, chip_power_w=chip_power_w,
                                                 pue=pue, region=region, grid_gco2e_per_kwh=grid_gco2e_per_kwh, dtype=dtype,
                                                 goodput=goodput, start_hour=start_hour, law=law, defaults=defaults).items()
              if v is not None}
    ds.attrs.update(
        scalesim_version=__version__,
        inputs=json.dumps(inputs),
        defaults_used=json.dumps(list(d.used.values())),
        defaults_scenario=defaults,
        flop_model=models["flop"],
        notes="; ".join(sorted(set(notes))),
    )
    return variables.attach(ds, models=models)


def _describe(v):
    if isinstance(v, xr.DataArray):
        return f"DataArray(dims={v.dims}, shape={v.shape})"
    if isinstance(v, (str, int, float)):
        return v
    arr = np.asarray(v)
    if arr.size <= 50:
        return arr.tolist()
    if arr.dtype.kind in "iuf":
        return f"array(shape={arr.shape}, min={arr.min():g}, max={arr.max():g})"
    return f"array(shape={arr.shape}, first={arr.ravel()[0]!s}, last={arr.ravel()[-1]!s})"
