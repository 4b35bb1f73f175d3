"""Compose the models into :func:`simulate`: inputs (scalars, lists, arrays, DataArrays) -> Dataset.

Each factor is evaluated on its own dimensions (FLOPs on (n_params, n_tokens); energy per FLOP on
hardware; carbon per kWh on region) and broadcast once per output, so a sweep over millions of
configurations is a handful of array multiplications. :func:`simulate` reads as its three
steps: :func:`prepare` (validate inputs and rules declared in :mod:`scalesim.inputs`, resolve
catalogue rows), :func:`factors` (every factor on its own dims, through :mod:`scalesim.steps`)
and :func:`outputs` + :func:`finish` (multiply out, label).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from scalesim import __version__, accessor, catalog, inputs, steps, variables  # noqa: F401 (accessor: ds.scalesim on every result)
from scalesim.models import clean_supply, datacenter, development, embodied, flops, grid
from scalesim.chain import sizing
from scalesim.models import hardware as hw_model
from scalesim.models._checks import check_positive
from scalesim.units import H_PER_DAY, S_PER_H

def logspace(lo, hi, n):
    """``n`` values log-uniformly spaced from ``lo`` to ``hi`` inclusive (both > 0)."""
    for name, v in (("lo", lo), ("hi", hi), ("n", n)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a number, got {v!r}")
    check_positive("lo", lo)
    check_positive("hi", hi)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return np.logspace(np.log10(lo), np.log10(hi), int(n))


def _as_input(name, value, *, numeric=True):
    """Scalar -> 0-d DataArray; list/1-d array -> DataArray on dim ``name``; DataArray kept."""
    if value is None:
        return None
    if isinstance(value, (set, frozenset, dict)):
        raise ValueError(f"{name} must be a scalar, a list/1-d array or an xarray.DataArray, got a {type(value).__name__}")
    if isinstance(value, xr.DataArray):
        da = value
    elif isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        da = xr.DataArray(value)
    else:
        if isinstance(value, (set, frozenset, dict)):
            raise ValueError(f"{name} must be a scalar, a list/1-d array or an xarray.DataArray, got a {type(value).__name__}")
        for i, v in enumerate(value if isinstance(value, (list, tuple)) else ()):  # True is not 1, a set not a value
            if isinstance(v, (list, tuple, np.ndarray)):
                continue  # nested: the shape check below names it
            if (isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating))) if numeric \
                    else not isinstance(v, str):
                raise ValueError(f"{name}[{i}] must be a {'number' if numeric else 'string'}, got {v!r} "
                                 f"({type(v).__name__})")
        try:
            arr = np.asarray(value)
        except ValueError:  # ragged nesting
            raise ValueError(f"{name} must be a scalar, a 1-d list/array or an xarray.DataArray, got a ragged nested list") from None
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a scalar, a 1-d list/array or an xarray.DataArray, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{name} must not be empty")
        if len(set(arr.tolist())) != arr.size:
            raise ValueError(f"{name} has repeated values; each becomes a coordinate of dimension {name!r}")
        da = xr.DataArray(arr, dims=[name], coords={name: arr})
    if numeric:
        if da.dtype.kind not in "iuf":
            got = repr(value) if np.ndim(value) == 0 else f"{da.dtype} values"
            raise ValueError(f"{name} must be a number (or a list/array of numbers), got {got}")
        da = da.astype(np.float64, copy=False) if da.dtype != np.float64 else da  # float16/32 overflow 6ND
    return da


def simulate(n_params=None, n_active_params=None, n_tokens=None, *, flop=None, hardware=None, n_chips=None, chip_hours=None,
             mfu=None, chip_power_w=None, pue=None, region=None, grid_gco2e_per_kwh=None,
             cfe_fraction=None, supply_gco2e_per_kwh=None, residual_gco2e_per_kwh=None, supply_profile=None,
             dtype="bf16", goodput=1.0, start_hour=None, wue_l_per_kwh=None, ewif_l_per_kwh=None,
             embodied_kgco2e_per_chip=None, lifetime_years=None, law=None, defaults="central", samples=None, seed=None,
             intensity_series=None, start=None, schedule=None, slack=None, development_overhead=None,
             allow_unusual=None,
             outputs=None, lazy_above_bytes=None):
    """Simulate the compute, time, energy, carbon and water of training runs.

    Every input may be a scalar, a list or 1-d array (which becomes a dimension named after the
    input, with the values as coordinates) or an ``xarray.DataArray`` (its own dims are kept, e.g.
    to pair hardware with chip counts). Outputs broadcast over all of them.

    Parameters
    ----------
    n_params, n_tokens : array_like, optional
        Parameters [-] and training tokens [-]; FLOPs = 6ND.
    n_active_params : array_like, optional
        Parameters active per token (MoE) [-]: FLOPs = 6 N_active D, while ``n_params`` (the
        total) sets memory in the ``'structural'`` utilisation model. Default: dense (= n_params).
    flop : array_like, optional
        Training compute [FLOP], instead of ``n_params`` and ``n_tokens``.
    hardware : str or sequence of str
        Accelerator id or alias (``'H100-SXM5-80GB'``, ``'h100'``, ``'TPUv5p'``).
    n_chips : array_like, optional
        Accelerators used; gives ``wall_days`` (and the ``mfu='epoch'`` utilisation).
    chip_hours : array_like, optional
        Reported accelerator-hours [h] (accounting mode: time as reported, no throughput model).
    mfu : array_like, str or callable, optional
        Model FLOPs utilisation [-], a utilisation model by name (:data:`scalesim.steps.UTILISATION`),
        or a callable ``fn(ctx)`` (:class:`scalesim.steps.Context`) returning it:

        - ``'hierarchical'`` (default): effective MFU per accelerator generation, calibrated on
          published runs and Epoch AI's reported MFU
          (:data:`scalesim.models.hardware.MFU_MODEL_HIERARCHICAL`; downtime included).
        - ``'epoch'``: MFU while running as a function of ``n_chips`` (needs ``n_chips``;
          :func:`scalesim.models.hardware.mfu_default_epoch`).

        With ``chip_hours`` and compute given, the implied MFU is reported instead.
    chip_power_w : array_like, str or callable, optional
        Average IT power per accelerator incl. host share [W]; default the ``'power_model'`` step
        (:data:`scalesim.steps.POWER`; also ``'tdp'``) or a callable ``fn(ctx)``.
    pue : float, array_like, str or callable, optional
        Power usage effectiveness [-] (>= 1) or an operator name (``'industry'``, ``'google'``,
        ``'aws'``, ``'azure'``, ``'meta'``...). Default: the cloud provider's value for cloud
        regions, else the industry average (recorded in attrs).
    region : str or sequence of str, optional
        Grid region (ISO country, grid zone, ``egrid:``, ``gcp:``/``aws:``/``azure:`` region).
    grid_gco2e_per_kwh : array_like, optional
        Explicit grid intensity [gCO2e/kWh], instead of ``region``.
    cfe_fraction : array_like, optional
        Annual share of the load matched by contracted carbon-free supply (PPAs, EACs) [-], in [0, 1];
        default 0. Gives the market-based ``co2e_market_t`` (:mod:`scalesim.chain.clean_supply`).
    supply_gco2e_per_kwh : array_like, optional
        Emission factor of the contracted supply [gCO2e/kWh]; default 0 (Scope 2), range to 48 (life cycle).
    residual_gco2e_per_kwh : array_like, optional
        Residual-mix intensity of the uncovered load [gCO2e/kWh]; default estimated from the region's
        carbon-free share (between the grid average and the all-claimed bound).
    supply_profile : xarray.DataArray or str, optional
        Hourly shape of the contracted supply on ``time`` (or a CSV ``datetime, supply_kw``), with
        ``intensity_series`` and ``cfe_fraction``: 24/7 matching, adds ``cfe_hourly_fraction``.
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
        Which end of every default's documented range to use (low = low emissions): the corners of
        the ranges. For an interval use ``samples``.
    samples : int, optional
        Monte Carlo: draw every default (not the inputs you give) from a triangular distribution on
        its documented range (low, central, high), the structural utilisation from its calibrated
        residual pool (:data:`scalesim.models.hardware.MFU_MODEL_STRUCTURAL`); the result gains a
        ``sample`` dimension. Draws are
        common random numbers: within one sample every configuration sees the same draw of each
        kind of input, so comparisons (``ds.scalesim.prob_less``) are paired. The distributions are
        listed in ``attrs['distributions']``.
    seed : int, optional
        Seed of the draws (default 0); the same seed gives the same numbers on any machine.
    intensity_series : xarray.DataArray, str, optional
        Hourly grid intensity [gCO2e/kWh] over the run instead of an annual value: a DataArray on
        ``time``, a CSV path (``datetime, gco2e_per_kwh``; :func:`scalesim.series.load_csv`) or
        ``'synthetic'`` (each region's typical year, :func:`scalesim.series.synthetic_year`, which
        leaves out day-to-day and seasonal variation). Needs the wall time (``n_chips`` or the rule).
    start : str, optional
        Start timestamp on the series (default its first hour).
    schedule : {'immediate', 'flexible_start', 'pause_resume'}, optional
        Carbon-aware schedule within ``slack`` (:func:`scalesim.schedule`); emissions are net of idle
        power while paused (chips kept allocated) and of embodied carbon over the stretched time
        (:func:`scalesim.models.scheduling.schedule_net_co2e_t`). Default 'immediate'.
    slack : float, optional
        Extra wall-clock time allowed, as a fraction of the run (window = run x (1 + slack)) [-].
    development_overhead : array_like, optional
        Extra project compute over the final run's [-] (>= 0): experiments, sweeps, failed runs,
        post-training and evaluation (0.5 = half as much again). Adds ``project_energy_kwh``,
        ``project_co2e_t``, ``project_total_co2e_t`` and ``project_water_l`` = final x (1 + r)
        (:mod:`scalesim.models.development`). Without it, a project total asked for with
        ``outputs=`` uses the median (min-max) of the published anchors in
        ``data/development_overhead.csv`` (OLMo 0.50, BLOOM 1.68, OPT ~1, Meta 0.5, Olmo 3 4.6):
        1.0 (0.5-4.6), its ends with ``defaults``, drawn with ``samples``.
    allow_unusual : str or sequence of str, optional
        Inputs whose value lies outside its plausible range on purpose (:data:`scalesim.inputs.PLAUSIBLE`:
        e.g. ``n_params`` below 1e4, a grid intensity below 1 g/kWh, ``chip_power_w`` below 10 W,
        which are usually unit slips and otherwise raise ``ValueError``).
    outputs : str or sequence of str, optional
        Output variables to compute (names of :data:`scalesim.variables.VARIABLES`); default all.
        Only these and what they need are computed, and each full-size output is one
        multiplication of the compute (on its own dims) by its per-hardware and per-region
        factors folded first: ``outputs=["co2e_t"]`` never allocates the energy, water or
        embodied arrays. The result holds only the variables asked for.
    lazy_above_bytes : float, optional
        Estimated result size [bytes] above which the result is lazy: the array inputs are
        dask-chunked over their largest dims and nothing is computed until asked (reductions such
        as ``ds.scalesim.optimum`` stream over the chunks); ``attrs['lazy']`` says so. Default
        :data:`scalesim.chain.sizing.LAZY_ABOVE_BYTES` (4 GiB); 0 makes every result lazy. The
        estimate counts every output asked on the whole grid (:func:`scalesim.chain.sizing.estimate_result_bytes`).

    Returns
    -------
    xarray.Dataset
        ``flop``, ``mfu``, ``chip_hours``, ``wall_days`` (with ``n_chips``), ``chip_power_w``,
        ``it_energy_kwh``, ``energy_kwh``, ``pue``, ``grid_gco2e_per_kwh``, ``co2e_t`` (location-based),
        ``co2e_market_t`` (market-based, where a residual mix is known), ``embodied_co2e_t``, ``total_co2e_t``, ``water_onsite_l``, ``water_offsite_l``,
        ``water_l`` (and ``loss``; ``project_*`` with ``development_overhead``), each with ``units``, ``long_name``, ``description``; attrs
        hold ``scalesim_version``, the resolved inputs and every default used with its source.
    """
    return run(dict(locals()))


def run(raw, *, draws=None):
    """:func:`simulate` on a dict of its inputs; ``draws`` (``{kind: uniforms on 'sample'}``) replaces
    the Monte Carlo uniforms of the kinds it names (used by :func:`scalesim.sensitivity`)."""
    ctx = prepare(dict(raw, _draws=draws))
    limit = ctx.inputs.pop("lazy_above_bytes", None)  # above it: dask-chunked inputs, a lazy result
    lazy = sizing.make_lazy(ctx, sorted(wanted_outputs(ctx) or sizing.DEFAULT_OUTPUTS), lazy_above_bytes=limit)
    choose = chips_to_choose(ctx)
    f = factors(ctx, with_utilisation=not choose)
    n_chips = None
    if choose:
        n_chips, f["mfu"] = default_n_chips(ctx, f)
    out = outputs(ctx, f, n_chips=n_chips)
    if n_chips is not None and ctx.inputs.get("outputs") is None:
        out["n_chips"] = n_chips
    ds = finish(ctx, out, scope="simulate")
    if lazy:
        ds.attrs["lazy"] = lazy
    return ds


# ----------------------------------------------------------------------------- validate
def prepare(raw, *, scope="simulate"):
    """Validate the inputs ``raw`` (name -> value) and resolve catalogue rows: a :class:`steps.Context`.

    ``scope=None`` skips the cross-input rules (a caller such as optimize that checked its own).
    """
    table = inputs.SIMULATE
    given = inputs.given(raw, table)
    if scope is not None:
        inputs.check_rules(given, scope)
    if given.get("dtype") is not None:
        inputs.check_value(table["dtype"], given["dtype"])
    resolved = {name: _resolve(table[name], value) for name, value in given.items()}
    allow = inputs.allowed_unusual(resolved.pop("allow_unusual", None))
    for name, value in resolved.items():
        if table[name].kind in (inputs.NUMBER, inputs.STEP) and isinstance(value, xr.DataArray):
            inputs.check_plausible(name, value, allow)
    _check_aligned(resolved)
    hw = catalog.select_hardware(resolved.pop("hardware"))
    rg = resolved.pop("region", None)
    samples = raw.get("samples")
    d = steps.Defaults(raw.get("defaults") or "central", samples=int(samples) if samples is not None else None,
                       seed=raw.get("seed"), draws=raw.get("_draws"))
    ctx = steps.Context(hardware=hw, dtype=raw.get("dtype") or "bf16", defaults=d,
                        regions=catalog.select_regions(rg) if rg is not None else None, inputs=resolved)
    ctx.inputs["raw"] = raw
    return ctx


def _resolve(spec, value):
    """One input -> a DataArray (numbers, labels), the value itself (choices, names, callables, series)."""
    if spec.kind == inputs.SERIES:
        if spec.name == "supply_profile":
            from scalesim.chain.clean_supply import supply_profile_input

            return supply_profile_input(value)
        return _series_input(value)
    if not spec.many and not isinstance(value, (str, bytes)) and not callable(value) \
            and (isinstance(value, (list, tuple, set, dict)) or np.ndim(value) > 0):
        raise ValueError(f"{spec.name} takes a single value, got {_short(value)}")
    if spec.kind in (inputs.CHOICE, inputs.STRING):
        inputs.check_value(spec, value)
    if spec.kind == inputs.STEP and (isinstance(value, str) or callable(value)) and not isinstance(value, xr.DataArray):
        if spec.name == "pue" and isinstance(value, str):
            catalog.datacenter_value(value, "pue")  # unknown operator: close matches
        elif spec.name != "pue":
            {"mfu": steps.UTILISATION, "chip_power_w": steps.POWER}[spec.name].step(value)
        return value
    if spec.kind == inputs.CHOICE and value not in spec.check:
        raise ValueError(f"{spec.name} must be one of {spec.check}, got {value!r}")
    if spec.kind in (inputs.CHOICE, inputs.STRING):
        return value
    da = _as_input(spec.name, value, numeric=spec.kind != inputs.LABEL)
    if spec.kind != inputs.LABEL:
        inputs.check_array(spec, da)
    return da


def _short(value):
    return inputs.short(value)


def _check_aligned(resolved):
    """DataArray inputs sharing a dimension must share its coordinates (xarray would silently inner-join)."""
    seen = {}
    for name, value in resolved.items():
        if not isinstance(value, xr.DataArray):
            continue
        for dim in value.dims:
            index = value.indexes.get(dim)
            if dim not in seen:
                seen[dim] = (name, value.sizes[dim], index)
                continue
            other, size, other_index = seen[dim]
            same = size == value.sizes[dim] and (index is None or other_index is None or index.equals(other_index))
            if not same:
                raise ValueError(f"{other} and {name} both have dimension {dim!r} but with different "
                                 f"{'coordinates' if size == value.sizes[dim] else 'lengths'} "
                                 f"({size} and {value.sizes[dim]}); give them the same {dim!r} coordinates "
                                 f"(e.g. xarray.align(a, b, join='exact'))")


# ----------------------------------------------------------------------------- steps
def factors(ctx, *, with_utilisation=True):
    """Every per-unit factor on its own dims: a dict of DataArrays (the chain's steps, in order).

    ``with_utilisation=False`` leaves ``mfu`` to the caller (optimize's chip search evaluates it
    at the chip counts it tries).
    """
    x = ctx.inputs
    f = {"peak_flop_per_s": steps.peak_flop_per_s(ctx)}
    f["mfu"] = utilisation(ctx) if with_utilisation and _utilisation_ready(ctx) else None
    f["chip_power_w"] = _factor(ctx, steps.POWER, x.get("chip_power_w"))
    goodput = float(x.get("goodput", 1.0))
    idle = steps.idle_power_w(ctx) if goodput < 1.0 else 0.0
    f["it_kwh_per_chip_hour"] = hw_model.it_energy_kwh(goodput, f["chip_power_w"], idle_chip_hours=1.0 - goodput,
                                                       idle_power_w=idle)
    want = wanted_outputs(ctx)  # outputs=: only the factors some asked output needs
    f.update(site_factors(ctx, water=want is None or bool(want & {"water_onsite_l", "water_offsite_l", "water_l"})))
    if want is None or want & {"co2e_market_t", "cfe_hourly_fraction"}:  # market-based (chain/clean_supply.py)
        from scalesim.chain.clean_supply import market_factor

        f["market_gco2e_per_kwh"] = market_factor(ctx, f["grid_gco2e_per_kwh"])
    annual = x.get("start_hour") is None and x.get("intensity_series") is None  # else outputs() needs embodied
    if want is None or want & {"embodied_co2e_t", "total_co2e_t"} or not annual:
        f["embodied_t_per_chip_hour"] = embodied_factor(ctx)
    return f


#: Wall-clock days of the chip-count rule used when a utilisation step uses ``n_chips`` and none
#: is given: the smallest count that finishes within 30 days, the median wall-clock time of the
#: 20 published runs with a reported duration in ``data/published_runs.csv`` (28.5 days; 10th/90th
#: percentiles 9 and 80 days), rounded. Recorded in the result's attrs and notes.
DEFAULT_WALL_DAYS = 30.0


def chips_to_choose(ctx):
    """True where utilisation uses a chip count that was not given (and time is not reported)."""
    x = ctx.inputs
    if x.get("n_chips") is not None or x.get("chip_hours") is not None or isinstance(x.get("mfu"), xr.DataArray):
        return False
    step = steps.UTILISATION.step(x.get("mfu"))
    return step is not None and "n_chips" in step.uses


def default_n_chips(ctx, f):
    """(n_chips, mfu) by the documented rule: the smallest count finishing within DEFAULT_WALL_DAYS."""
    ctx.defaults.record("n_chips:rule", f"smallest count finishing within {DEFAULT_WALL_DAYS:g} days", "", "",
                        "DEFAULT_WALL_DAYS: median wall-clock of the published runs (data/published_runs.csv)")
    ctx.notes.append(f"n_chips not given: the smallest count finishing within {DEFAULT_WALL_DAYS:g} days (the median "
                     f"duration of published runs) was chosen; pass n_chips to set it")
    return choose_n_chips(ctx, f, training_flop(ctx), max_wall_days=DEFAULT_WALL_DAYS)


#: Candidate chip counts for utilisation models with a discrete plan search (``uses`` n_chips):
#: 1, 2, 4, then whole 8-accelerator servers spaced by 2^(1/8) (9 %), up to 2^20 accelerators.
CHIP_LADDER = np.unique(np.concatenate([[1.0, 2.0, 4.0], 8.0 * np.round(2.0 ** (np.arange(0, 8 * 17 + 1) / 8.0))]))


def choose_n_chips(ctx, f, flop, *, max_wall_days, max_n_chips=None, mfu_at=None):
    """Smallest chip count meeting ``max_wall_days``, inverting the utilisation step: n x mfu(n) >= need.

    ``mfu_at(n_chips)`` evaluates the utilisation at trial counts (default: the step itself on
    ``ctx``). Where utilisation does not depend on ``n_chips`` the answer is closed-form. A model
    that *needs* n_chips and is continuous in it ('epoch', a callable) is inverted by bisection on
    log n (n x mfu(n) increases with n); a plan-search model that *uses* n_chips ('structural')
    takes the smallest count of :data:`CHIP_LADDER` that meets the deadline (whole servers; a
    prime count has no plan), NaN where none does. Returns ``(n_chips, mfu at n_chips)``.
    """
    hours = max_wall_days * H_PER_DAY
    if ctx.inputs.get("intensity_series") is not None:  # a schedule may stretch the run by up to (1 + slack)
        hours = hours / (1.0 + float(ctx.inputs.get("slack") or 0.0))
    mfu_at = mfu_at or (lambda n: utilisation(ctx.with_inputs(n_chips=n)))
    step = None if isinstance(ctx.inputs.get("mfu"), xr.DataArray) else steps.UTILISATION.step(ctx.inputs.get("mfu"))
    if step is None or not ({"n_chips"} & set(step.needs + step.uses) or step.description == "user callable"):
        mfu = f["mfu"] if f.get("mfu") is not None else utilisation(ctx)
        n = np.ceil(flop * chip_hours_per_flop(ctx, dict(f, mfu=mfu)) / hours - 1e-9)
        return n, mfu
    need = flop * chip_hours_per_flop(ctx, dict(f, mfu=1.0)) / hours  # = n x mfu(n) required
    if "n_chips" in step.uses:
        return _smallest_on_ladder(need, mfu_at, max_n_chips)
    lo = xr.zeros_like(need)
    hi = lo + np.log(max_n_chips or 1e7)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        ok = np.exp(mid) * mfu_at(np.exp(mid)) >= need
        hi, lo = xr.where(ok, mid, hi), xr.where(ok, lo, mid)
    n = np.ceil(np.exp(hi) - 1e-9)
    return n, mfu_at(n)


def _smallest_on_ladder(need, mfu_at, max_n_chips):
    ladder = CHIP_LADDER[CHIP_LADDER <= (max_n_chips or CHIP_LADDER[-1])]
    cand = xr.DataArray(ladder, dims="_n_chips")
    mfu = mfu_at(cand)
    ok = cand * mfu.fillna(0.0) >= need
    first = ok.argmax("_n_chips")
    found = ok.any("_n_chips")
    n = cand.isel(_n_chips=first).where(found)
    return n.drop_vars("_n_chips", errors="ignore"), mfu.isel(_n_chips=first).where(found).drop_vars("_n_chips", errors="ignore")


def _utilisation_ready(ctx):
    """Whether utilisation is modelled now: not with reported chip-hours, and with every input its step needs."""
    x = ctx.inputs
    if x.get("chip_hours") is not None and x.get("mfu") is None:
        return False
    step = None if isinstance(x.get("mfu"), xr.DataArray) else steps.UTILISATION.step(x.get("mfu"))
    return step is None or all(x.get(n) is not None for n in step.needs)


def utilisation(ctx):
    """The utilisation step: a given fraction, or the registered/callable model evaluated on ctx."""
    mfu = ctx.inputs.get("mfu")
    if isinstance(mfu, xr.DataArray):
        return mfu
    step = steps.UTILISATION.step(mfu)
    value = step.fn(ctx)
    if step.description == "user callable":
        ctx.models["mfu"] = f"callable {step.name}"
    value = value if isinstance(value, xr.DataArray) else xr.DataArray(value)
    infeasible = np.isnan(value.values) if not hasattr(value.data, "dask") else np.zeros((), bool)
    inputs.check_array(inputs.SIMULATE["mfu"], value.where(~infeasible, 0.5) if infeasible.any() else value)
    return value


def _factor(ctx, registry, value):
    """A number/array as given, or the registry's (or the callable's) step evaluated on ctx."""
    if isinstance(value, xr.DataArray):
        return value
    out = registry.step(value).fn(ctx)
    return out if isinstance(out, xr.DataArray) else xr.DataArray(out)


def site_factors(ctx, *, water=True):
    """PUE, on-site WUE, off-site EWIF (``water=True``) and grid intensity on the region dims."""
    x = ctx.inputs
    pue = x.get("pue")
    operator = pue.strip().lower() if isinstance(pue, str) else None
    if isinstance(pue, xr.DataArray):
        pue_da = pue
    elif operator is not None:
        pue_da = steps.pue_named(operator)(ctx)
    else:
        pue_da = _factor(ctx, steps.PUE, pue)
    wue = x.get("wue_l_per_kwh")
    ewif = x.get("ewif_l_per_kwh")
    ci = steps.grid_intensity(ctx) if ctx.regions is not None else x.get("grid_gco2e_per_kwh", xr.DataArray(np.nan))
    if not water:
        return {"pue": pue_da, "grid_gco2e_per_kwh": ci}
    return {"pue": pue_da, "grid_gco2e_per_kwh": ci,
            "wue_l_per_kwh": wue if wue is not None else steps.site_water(ctx, "wue_l_per_kwh", operator),
            "ewif_l_per_kwh": ewif if ewif is not None else steps.site_water(ctx, "ewif_l_per_kwh")}


def embodied_factor(ctx):
    """Embodied carbon per accelerator-hour [t/h] on the hardware dims."""
    x, d = ctx.inputs, ctx.defaults
    per_chip = x.get("embodied_kgco2e_per_chip")
    per_chip = per_chip if per_chip is not None else steps.embodied_kgco2e_per_chip(ctx)
    life, use = catalog.embodied_parameter("lifetime"), catalog.embodied_parameter("use_fraction")
    lifetime = x.get("lifetime_years")
    if lifetime is None:
        lifetime = d.pick(catalog.Default("lifetime_years", float(life["value"]), float(life["value_low"]),
                                          float(life["value_high"]), life["source"]), higher_is_worse=False)
    use_fraction = d.pick(catalog.Default("use_fraction", float(use["value"]), float(use["value_low"]),
                                          float(use["value_high"]), use["source"]), higher_is_worse=False)
    return embodied.embodied_co2e_t(1.0, embodied_kgco2e_per_chip=per_chip, lifetime_years=lifetime,
                                    use_fraction=use_fraction)


# ----------------------------------------------------------------------------- compose
def training_flop(ctx):
    """Training compute [FLOP]: given, or 6ND (Kaplan 2020 Sec. 2.1)."""
    x = ctx.inputs
    if x.get("flop") is not None:
        return x["flop"]
    if x.get("n_params") is None:
        return None
    n = x["n_active_params"] if x.get("n_active_params") is not None else x["n_params"]
    return flops.training_flop_6nd(n, x["n_tokens"])


def chip_hours_per_flop(ctx, f):
    """Accelerator-hours per model FLOP [h/FLOP] incl. lost time (1/goodput), on the factors' dims."""
    mfu = f["mfu"]
    feasible = mfu.notnull() if isinstance(mfu, xr.DataArray) and not hasattr(mfu.data, "dask") else None
    if feasible is not None and not bool(feasible.all()):  # no plan fits: NaN time, not an error
        mfu = mfu.fillna(1.0)
    per_flop = hw_model.chip_hours_from_flop(1.0, f["peak_flop_per_s"], mfu, goodput=float(ctx.inputs.get("goodput", 1.0)))
    return per_flop if feasible is None or bool(feasible.all()) else per_flop.where(feasible)


def outputs(ctx, f, *, flop=None, n_chips=None):
    """Multiply the factors out: the output variables as a dict of DataArrays."""
    x = ctx.inputs
    C = training_flop(ctx) if flop is None else flop
    n_chips = x.get("n_chips") if n_chips is None else n_chips
    out = {}
    if x.get("chip_hours") is None:
        chip_hours, base, per_base = None, C, chip_hours_per_flop(ctx, f)  # chip_hours = base x per_base
    else:
        chip_hours = base = x["chip_hours"]
        per_base = 1.0
        if C is not None:
            implied = C / (chip_hours * float(x.get("goodput", 1.0)) * S_PER_H * f["peak_flop_per_s"])
            _check_implied_mfu(ctx, implied, f["mfu"])
            if f["mfu"] is None:
                f["mfu"] = implied
                ctx.models["mfu"] = "implied by flop / (chip_hours x peak)"
    if C is not None:
        out["flop"] = C
    if f["mfu"] is not None:
        out["mfu"] = f["mfu"]
        bad = np.isnan(f["mfu"].values) if isinstance(f["mfu"], xr.DataArray) and not hasattr(f["mfu"].data, "dask") else None
        if bad is not None and bad.any():  # a model's NaN: no parallel plan fits (never a user's input)
            ctx.notes.append(f"utilisation model: no feasible configuration (no plan fits memory, or no chip count "
                             f"meets the deadline) for {int(bad.sum())} of {bad.size} cell(s): NaN there")
    want = wanted_outputs(ctx)
    if want is not None and x.get("start_hour") is None and x.get("intensity_series") is None:
        out.update(_folded(f, base, per_base, n_chips, want))
        return _only(project_outputs(ctx, _loss(ctx, out, want)), asked_outputs(ctx))
    chip_hours = C * per_base if chip_hours is None else chip_hours
    out["chip_hours"] = chip_hours
    if n_chips is not None:
        out["wall_days"] = chip_hours / n_chips / H_PER_DAY
    out["chip_power_w"] = f["chip_power_w"]
    it_energy = chip_hours * f["it_kwh_per_chip_hour"]
    facility_per_it = datacenter.facility_energy_kwh(1.0, f["pue"])
    out["it_energy_kwh"] = it_energy
    out["pue"] = f["pue"]
    out["energy_kwh"] = it_energy * facility_per_it
    out["grid_gco2e_per_kwh"], out["co2e_t"] = _operational(ctx, f, it_energy, out, n_chips)
    if "market_gco2e_per_kwh" in f:
        from scalesim.chain.clean_supply import market_outputs

        out.update(market_outputs(ctx, f, out, n_chips))
    out["embodied_co2e_t"] = chip_hours * f["embodied_t_per_chip_hour"] * out.pop("_embodied_scale", 1.0)
    out["total_co2e_t"] = out["co2e_t"] + out["embodied_co2e_t"]
    if want is None or want & {"water_onsite_l", "water_offsite_l", "water_l"}:
        out["water_onsite_l"] = datacenter.water_onsite_l(it_energy, f["wue_l_per_kwh"])
        out["water_offsite_l"] = datacenter.water_offsite_l(out["energy_kwh"], f["ewif_l_per_kwh"])
        out["water_l"] = out["water_onsite_l"] + out["water_offsite_l"]
    out = project_outputs(ctx, _loss(ctx, out, want))
    return out if want is None else _only(out, asked_outputs(ctx))


def asked_outputs(ctx):
    """The output variables asked for (``outputs=``) as a set, or None for all."""
    value = ctx.inputs.get("outputs")
    return None if value is None else {value} if isinstance(value, str) else set(value)


def wanted_outputs(ctx):
    """The outputs to compute: those asked for and the final-run outputs their project_* totals scale; None for all."""
    asked = asked_outputs(ctx)
    return None if asked is None else asked | {PROJECT_OF[k] for k in asked & set(PROJECT_OF)}


#: Project-wide output -> the final-run output it scales by (1 + development_overhead).
PROJECT_OF = {"project_energy_kwh": "energy_kwh", "project_co2e_t": "co2e_t",
              "project_total_co2e_t": "total_co2e_t", "project_water_l": "water_l"}


def project_outputs(ctx, out):
    """Add the project_* totals (:func:`scalesim.models.development.project_footprint`).

    With ``development_overhead`` given: every project total (those asked, with ``outputs=``);
    without it, only those asked, at the default overhead of the published anchors
    (:func:`scalesim.catalog.development_overhead_default`: its low/high with ``defaults``, drawn
    with ``samples``).
    """
    asked, r = asked_outputs(ctx), ctx.inputs.get("development_overhead")
    names = [k for k in PROJECT_OF if (k in asked if asked is not None else r is not None)]
    if not names:
        return out
    if r is None:
        default = catalog.development_overhead_default()
        r = xr.DataArray(ctx.defaults.pick(default, kind="development_overhead"))
        basis = f"default {default.value:.3g} (range {default.low:.3g}-{default.high:.3g}): {default.source}"
    else:
        basis = "development_overhead as given"
    for k in names:
        out[k] = development.project_footprint(out[PROJECT_OF[k]], development_overhead=r)
        ctx.models[k] = f"final run x (1 + development_overhead); {basis}"
    return out


def _folded(f, base, per_base, n_chips, want):
    """The outputs in ``want`` only, each ``base x (per_base x its factor per chip-hour)``.

    ``base`` is the compute (on (n_params, n_tokens)) or the reported chip-hours, ``per_base`` the
    chip-hours per FLOP (on hardware): the per-hardware and per-region factors are multiplied
    together first, so each output costs one full-size multiplication (annual intensity only).
    """
    itk, fpi = f["it_kwh_per_chip_hour"], datacenter.facility_energy_kwh(1.0, f["pue"])
    emb = f.get("embodied_t_per_chip_hour")
    operational = lambda: itk * grid.operational_co2e_t(fpi, f["grid_gco2e_per_kwh"])  # noqa: E731
    onsite = lambda: datacenter.water_onsite_l(itk, f["wue_l_per_kwh"])  # noqa: E731
    offsite = lambda: datacenter.water_offsite_l(itk * fpi, f["ewif_l_per_kwh"])  # noqa: E731
    per_chip_hour = {"chip_hours": lambda: 1.0, "it_energy_kwh": lambda: itk, "energy_kwh": lambda: itk * fpi,
                     "co2e_t": operational, "embodied_co2e_t": lambda: emb,
                     "total_co2e_t": lambda: operational() + emb, "water_onsite_l": onsite,
                     "water_offsite_l": offsite, "water_l": lambda: onsite() + offsite()}
    if n_chips is not None:
        per_chip_hour["wall_days"] = lambda: 1.0 / (n_chips * H_PER_DAY)
    if f.get("market_gco2e_per_kwh") is not None:  # market-based: its own variable, never in the totals
        per_chip_hour["co2e_market_t"] = lambda: itk * clean_supply.market_based_co2e_t(fpi, f["market_gco2e_per_kwh"])
    out = {k: base * (per_base * fn()) for k, fn in per_chip_hour.items() if k in want}
    small = {"chip_power_w": f["chip_power_w"], "pue": f["pue"], "grid_gco2e_per_kwh": f["grid_gco2e_per_kwh"]}
    return out | {k: v for k, v in small.items() if k in want}


def _loss(ctx, out, want=None):
    """Add the scaling law's loss (when ``law`` is given and the loss is wanted)."""
    x = ctx.inputs
    if x.get("law") is not None and (want is None or "loss" in want):
        from scalesim import laws

        out["loss"] = laws.loss(x["n_params"], x["n_tokens"], law=x["law"])
        ctx.models["loss"] = x["law"]
    return out


#: Why an output asked for with ``outputs=`` may be missing.
_NEEDS = {"co2e_market_t": "a residual mix: region= with a carbon-free share, residual_gco2e_per_kwh or cfe_fraction=1",
          "cfe_hourly_fraction": "supply_profile and intensity_series", "loss": "law=", "wall_days": "n_chips (or the chip-count rule)", "schedule_saving": "intensity_series",
          "flop": "n_params and n_tokens or flop", "mfu": "a utilisation (mfu, or compute with chip_hours)",
          "feasible": "ds.scalesim.optimum", "n_params_opt": "ds.scalesim.optimum", "n_tokens_opt": "ds.scalesim.optimum"}


def _only(out, want):
    """The variables of ``out`` in ``want``; ValueError for one asked for that these inputs do not give."""
    missing = sorted(want - set(out))
    if missing:
        name = missing[0]
        raise ValueError(f"outputs: {name!r} is not computed from these inputs (it needs {_NEEDS.get(name, '?')})")
    return {k: out[k] for k in variables.VARIABLES if k in want}  # in the registry's order


def _check_implied_mfu(ctx, implied, given):
    """Reported chip-hours with compute: the implied MFU must be <= 1 and agree with an MFU also given."""
    if hasattr(getattr(implied, "data", None), "dask"):
        return
    values = np.asarray(implied)
    worst = float(np.nanmax(values)) if values.size else np.nan
    if worst > 1.0:
        raise ValueError(f"chip_hours is too small for the compute: flop / (chip_hours x peak) implies mfu={worst:.3g} "
                         f"> 1 (faster than the accelerator's peak); check chip_hours (accelerator-hours, not "
                         f"wall-clock hours) and n_params/n_tokens or flop")
    if given is None or not isinstance(given, xr.DataArray):
        return
    ratio = np.asarray(given / implied)
    if np.any(np.abs(ratio - 1.0) > 0.01):
        i = np.argmax(np.abs(ratio - 1.0).ravel())
        g, m = float(np.broadcast_to(np.asarray(given), ratio.shape).ravel()[i]), float(np.broadcast_to(values, ratio.shape).ravel()[i])
        raise ValueError(f"mfu={g:g} contradicts chip_hours: with the compute given, chip_hours implies mfu={m:.3g}; "
                         f"give either mfu or chip_hours")


def _series_input(value):
    """A user intensity series, validated; a CSV path is loaded; ``'synthetic'`` is kept (built per region)."""
    from scalesim import series

    if isinstance(value, str) and value == "synthetic":
        return value
    if isinstance(value, str):
        return series.load_csv(value)
    if isinstance(value, xr.DataArray):
        return series.validate_series(value)
    raise ValueError(f"intensity_series must be an xarray.DataArray on 'time', a CSV path or 'synthetic', "
                     f"got {type(value).__name__}")


def _operational(ctx, f, it_energy, out, n_chips):
    """(effective intensity, operational tCO2e): annual, or weighted over the run window by start hour."""
    if ctx.inputs.get("intensity_series") is not None:
        from scalesim.chain.scheduled import scheduled_operational

        return scheduled_operational(ctx, f, out, n_chips)
    ci = f["grid_gco2e_per_kwh"]
    start = ctx.inputs.get("start_hour")
    if start is None:
        t_per_it_kwh = grid.operational_co2e_t(datacenter.facility_energy_kwh(1.0, f["pue"]), ci)
        return ci, it_energy * t_per_it_kwh
    wall_h = out["chip_hours"] / n_chips
    factor = xr.apply_ufunc(grid.window_mean_factor, steps.diurnal_profiles(ctx), start, wall_h,
                            input_core_dims=[["hour"], [], []], dask="parallelized", output_dtypes=[float])
    ci_eff = ci * factor
    return ci_eff, grid.operational_co2e_t(out["energy_kwh"], ci_eff)


ORDER = ("n_params", "n_active_params", "n_tokens", "flop", "hardware", "n_chips", "chip_hours", "mfu", "chip_power_w", "pue", "region",
         "grid_gco2e_per_kwh", "start_hour", "development_overhead", "sample")


def finish(ctx, out, *, scope):
    """A labelled Dataset: dims in input order, units from the variable registry, provenance in attrs."""
    ds = xr.Dataset({k: (v if isinstance(v, xr.DataArray) else xr.DataArray(v)) for k, v in out.items()})
    ds = ds.drop_vars([c for c in ("hardware_id", "region_id") if c in ds.coords])
    ds = ds.transpose(*[n for n in ORDER if n in ds.dims], ...)
    raw = ctx.inputs["raw"]
    described = {k: _describe(v) for k, v in raw.items() if v is not None and k in inputs.SIMULATE}
    ctx.models.setdefault("flop", "6nd (Kaplan 2020 Sec. 2.1)")
    if ctx.defaults.sampling and "sample" in ds.dims:
        ds = ds.assign_coords(sample=np.arange(ds.sizes["sample"]))
        ds.attrs.update(samples=int(ctx.defaults.samples), seed=int(ctx.defaults.seed or 0),
                        distributions=json.dumps(ctx.defaults.kinds))
    ds.attrs.update(scalesim_version=__version__, inputs=json.dumps(described, default=str),
                    defaults_used=ctx.defaults.attrs(), defaults_scenario=ctx.defaults.side,
                    flop_model=ctx.models["flop"], notes="; ".join(sorted(set(ctx.notes))))
    return variables.attach(ds, models=ctx.models, variable_attrs=ctx.variable_attrs)


def _describe(v):
    if callable(v) and not isinstance(v, xr.DataArray):
        return f"callable {getattr(v, '__name__', type(v).__name__)}"
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
