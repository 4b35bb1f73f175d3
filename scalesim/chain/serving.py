"""``scalesim.serve``: roofline serving of one replica (validate -> derive -> roofline -> site -> Dataset).

Vectorised like :func:`scalesim.simulate`: a scalar input stays scalar, a list or 1-d array
becomes a dimension named after the input (values as coordinates), a DataArray keeps its dims.
The model is :func:`scalesim.models.serving.serving_roofline`; the site factors (PUE, grid
intensity, water) are the steps :func:`scalesim.simulate` uses, applied once.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from scalesim import __version__, catalog, inputs, steps
from scalesim.chain.training_throughput import hardware_arrays
from scalesim.models import parallelism as par
from scalesim.models import serving as sv
from scalesim.units import J_PER_KWH

__all__ = ["serve", "evaluate", "DEFAULT_INPUT_TOKENS", "DEFAULT_OUTPUT_TOKENS", "VARIABLES"]

#: Mean prompt and response length of ShareGPT conversations, the chat workload of the vLLM
#: paper (Kwon et al. 2023, arXiv:2309.06180, Sec. 6.1 and Fig. 11: 161.31 input and 337.99
#: output tokens on average, 8.4x and 5.8x Alpaca's 19.31 and 58.45) [token].
DEFAULT_INPUT_TOKENS = 161.0
DEFAULT_OUTPUT_TOKENS = 338.0
#: Share of HBM vLLM may fill with weights and KV cache: its ``gpu_memory_utilization`` default
#: (vLLM engine arguments, docs.vllm.ai) [1].
USABLE_MEMORY_FRACTION = 0.9
#: Bytes per decimal GB [byte/GB], the unit of the memory outputs (catalogue capacity is in GiB).
BYTES_PER_GB = 1e9

#: attrs of the output variables: (units, long_name, description).
VARIABLES = {
    "prefill_time_s": ("s", "prefill time", "Compute-bound prefill of one prompt of input_tokens on the replica."),
    "inter_token_latency_ms": ("ms", "inter-token latency", "Time of one decode step (one token per running sequence; "
                               "steps carrying prefill chunks excluded, as a median is)."),
    "tokens_per_s": ("1/s", "output tokens per second", "Output tokens per second of the replica, prefill included."),
    "batch_size_running": ("1", "running batch", "Sequences running at once: batch_size, or fewer where the KV cache is full."),
    "chip_power_w": ("W", "accelerator power while decoding", "Average power per accelerator during decode steps "
                     "(between idle and TDP, rising with HBM and compute busy shares)."),
    "gpu_energy_per_token_j": ("J", "accelerator energy per output token", "Steady-state energy of the replica's "
                               "accelerators per output token, prefill included (ML.ENERGY's boundary)."),
    "energy_per_token_j": ("J", "IT energy per output token", "Accelerators plus their share of the host server per "
                           "output token (before PUE)."),
    "energy_kwh": ("kWh", "facility energy", "Facility energy of served_tokens = IT energy x PUE (PUE applied once)."),
    "co2e_t": ("t", "operational emissions [tCO2e]", "Facility energy x grid intensity (location-based)."),
    "water_l": ("L", "water consumption", "On-site (WUE x IT energy) plus off-site (EWIF x facility energy) water."),
    "pue": ("1", "power usage effectiveness", "Facility energy over IT energy."),
    "grid_gco2e_per_kwh": ("g/kWh", "grid carbon intensity [gCO2e/kWh]", "Grid intensity applied to facility energy."),
    "memory_per_chip_gb": ("GB", "memory needed per chip", "Weights plus the KV cache of one full-length sequence."),
    "memory_available_gb": ("GB", "memory available per chip", "HBM x vLLM's gpu_memory_utilization (0.9)."),
    "feasible": ("1", "fits in memory", "Weights and the KV cache of at least one sequence fit the replica's HBM."),
}


def _kv_heads(N, Na, n_layers, d_model, n_heads, n_kv_heads):
    """n_kv_heads where given, else the GQA rule min(n_heads, 8) on the derived heads."""
    if n_heads is None:
        _, h_r, _ = par.architecture_aspect_ratio(Na)
        h = h_r if d_model is None else np.broadcast_to(d_model, N.shape)
        n_heads = np.maximum(np.round(h / par.HEAD_DIM), 1.0)
    rule = sv.default_kv_heads(n_heads)
    return rule if n_kv_heads is None else np.where(np.isnan(n_kv_heads), rule, n_kv_heads)


def evaluate(flat, parameters=None):
    """The roofline on flat 1-d arrays (``serve``'s broadcast inputs): a dict of 1-d arrays.

    ``flat`` holds ``n_params``, ``hardware`` (ids), ``dtype``, ``kv_dtype``, ``n_chips``, ``tp``,
    ``ep``, ``batch_size``, ``input_tokens``, ``output_tokens`` and optionally
    ``n_active_params`` and the architecture keys of :func:`scalesim.models.parallelism.derive_config`.
    """
    N = np.asarray(flat["n_params"], dtype=float)
    Na = np.asarray(flat.get("n_active_params", N), dtype=float)
    arch = {k: (None if flat.get(k) is None else np.asarray(flat[k], dtype=float))
            for k in ("n_layers", "d_model", "n_heads", "n_kv_heads", "vocab_size", "n_experts", "top_k", "ffn_dim")}
    arch["n_kv_heads"] = _kv_heads(N, Na, arch["n_layers"], arch["d_model"], arch["n_heads"], arch["n_kv_heads"])
    cfg = par.derive_config(N, Na, seq_len=1.0, global_batch_tokens=1.0, **arch)
    hw = hardware_arrays(flat["hardware"], np.where(np.isin(flat["dtype"], ("int4",)), "bf16", flat["dtype"]))
    hw_16 = hardware_arrays(flat["hardware"], np.full(N.shape, "bf16", dtype=object))
    compute_peak = np.where(np.isin(flat["dtype"], ("int4",)), hw["peak_16bit_flop_per_s"], hw["peak_flop_per_s"])
    compute_peak = np.where(np.isnan(compute_peak), hw["peak_16bit_flop_per_s"], compute_peak)  # weight-only formats
    tdp = np.array([_rated_w(h) for h in flat["hardware"]], dtype=float)
    idle_frac = float(catalog.power_model_parameter("all", "idle_power_over_tdp").value)
    hardware = dict(peak_flop_per_s=compute_peak, peak_16bit_flop_per_s=np.where(
        np.isnan(hw_16["peak_flop_per_s"]), hw["peak_16bit_flop_per_s"], hw_16["peak_flop_per_s"]),
        hbm_bw_bytes_per_s=hw["hbm_bw_bytes_per_s"], scale_up_bw_bytes_per_s=hw["scale_up_bw_bytes_per_s"],
        memory_bytes=hw["memory_bytes"], tdp_w=tdp, idle_w=idle_frac * tdp)
    wb = np.array([sv.WEIGHT_BYTES[d] for d in flat["dtype"]])
    kvb = np.array([sv.WEIGHT_BYTES[d] for d in flat["kv_dtype"]])
    link = par.THROUGHPUT_PARAMETERS[par.DEFAULT_PARAMETERS]["scale_up_efficiency"]
    return sv.serving_roofline(cfg, hardware, batch_size=flat["batch_size"], input_tokens=flat["input_tokens"],
                               output_tokens=flat["output_tokens"], n_chips=flat["n_chips"], tp=flat["tp"],
                               ep=flat["ep"], weight_bytes=wb, kv_bytes=kvb,
                               usable_memory_fraction=USABLE_MEMORY_FRACTION, link_efficiency=link,
                               parameters=parameters)


def _rated_w(hardware):
    """TDP [W] or, for TPUs without one, the central measured system power."""
    rec = catalog.get_hardware(hardware)
    if rec.tdp_w is not None:
        return rec.tdp_w
    if rec.system_power_w is not None:
        return rec.system_power_w[1]
    raise ValueError(f"hardware {rec.hardware_id} has no TDP or measured power in the catalogue")


_NUMERIC = ("n_params", "n_active_params", "n_chips", "batch_size", "input_tokens", "output_tokens", "tp", "ep",
            "n_layers", "d_model", "n_heads", "n_kv_heads", "vocab_size", "n_experts", "top_k")
_ARCH = ("n_layers", "d_model", "n_heads", "n_kv_heads", "vocab_size", "n_experts", "top_k")
#: KV-cache dtype of 4-bit weights: fp8, the smallest ``kv_cache_dtype`` vLLM offers.
KV_DTYPE_OF_4BIT = "fp8"
#: Output tokens the energy, carbon and water outputs are given for by default (one million,
#: the unit of API pricing) [token].
DEFAULT_SERVED_TOKENS = 1e6


def serve(n_params, hardware, n_chips=1, *, n_active_params=None, batch_size=1, input_tokens=None, output_tokens=None,
          dtype="bf16", kv_dtype=None, tp=None, ep=None, n_layers=None, d_model=None, n_heads=None, n_kv_heads=None,
          vocab_size=None, n_experts=None, top_k=None, served_tokens=None, pue=None, region=None,
          grid_gco2e_per_kwh=None, wue_l_per_kwh=None, ewif_l_per_kwh=None, parameters=None):
    """Roofline prefill and decode of one serving replica: latency, throughput, power, energy, carbon.

    Every input may be a scalar, a list or 1-d array (a dimension named after the input, values
    as coordinates) or an ``xarray.DataArray`` (its dims are kept); outputs broadcast over all.

    Parameters
    ----------
    n_params : array_like
        Total parameters [1] (weight memory; the weights a large batch reads).
    hardware : str or sequence of str
        Accelerator id or alias (``'H100-SXM5-80GB'``, ``'h100'``, ``'B200'``, ``'MI300X'``).
    n_chips : array_like, optional
        Accelerators of one replica [1] (default 1).
    n_active_params : array_like, optional
        Parameters used per token (MoE) [1]; default ``n_params`` (dense).
    batch_size : array_like, optional
        Concurrent sequences (vLLM ``max_num_seqs``) [1] (default 1). Where the KV cache cannot
        hold them all, fewer run (``batch_size_running``), as vLLM's scheduler does.
    input_tokens, output_tokens : array_like, optional
        Prompt and generated tokens per request [token]; default the ShareGPT means 161 and 338
        (:data:`DEFAULT_INPUT_TOKENS`).
    dtype : str or sequence of str, optional
        Weight dtype: 'bf16' (default), 'fp16', 'fp8', 'int8', 'int4' (weight-only: 16-bit
        arithmetic), 'fp4', 'nvfp4', 'mxfp4', 'fp32'.
    kv_dtype : str or sequence of str, optional
        KV-cache dtype; default the weights' ('fp8' for 4-bit weights).
    tp, ep : array_like, optional
        Tensor- and expert-parallel degrees [1]; default tp = n_chips, ep = 1.
    n_layers, d_model, n_heads, n_kv_heads, vocab_size, n_experts, top_k : array_like, optional
        Architecture [1]; missing entries come from the aspect-ratio rule
        (:func:`scalesim.models.parallelism.derive_config`), KV heads from the grouped-query rule
        min(n_heads, 8) (:func:`scalesim.models.serving.default_kv_heads`).
    served_tokens : array_like, optional
        Output tokens served for ``energy_kwh``, ``co2e_t``, ``water_l`` [token] (default 1e6).
    pue : float, array_like or str, optional
        PUE [1] or an operator name; default the region's operator (industry without a region).
    region : str or sequence of str, optional
        Grid region; gives ``co2e_t`` (or pass ``grid_gco2e_per_kwh`` [gCO2e/kWh]).
    wue_l_per_kwh, ewif_l_per_kwh : array_like, optional
        On-site water per IT kWh and off-site water per facility kWh [L/kWh].
    parameters : dict, optional
        Roofline constants (default ``SERVING_PARAMETERS['mlenergy2026']``).

    Returns
    -------
    xarray.Dataset
        ``prefill_time_s``, ``inter_token_latency_ms``, ``tokens_per_s`` (replica),
        ``batch_size_running``, ``chip_power_w``, ``gpu_energy_per_token_j``,
        ``energy_per_token_j``, ``energy_kwh``, ``co2e_t`` (with a grid), ``water_l``, ``pue``,
        ``memory_per_chip_gb``, ``memory_available_gb``, ``feasible``; NaN where infeasible.

    Raises
    ------
    ValueError
        For an invalid input (naming it), or when a single configuration does not fit its
        replica's memory (naming the memory needed and available).
    """
    raw = {k: v for k, v in locals().items() if k != "parameters"}
    given, defaults = _prepare(raw)
    core = _roofline(given, parameters)
    site = _site(given, raw, defaults)
    out = _outputs(core, site, given)
    return _finish(out, raw, defaults, parameters)


# ----------------------------------------------------------------------------- validate
def _prepare(raw):
    """Validate every given input against :data:`scalesim.inputs.SERVE`: (DataArrays, defaults used)."""
    from scalesim.chain.simulation import _as_input

    given, defaults = {}, {}
    if raw.get("region") is not None and raw.get("grid_gco2e_per_kwh") is not None:
        raise ValueError("give either region or grid_gco2e_per_kwh, not both")
    for name, spec in inputs.SERVE.items():
        value = raw.get(name)
        if value is None:
            continue
        if spec.kind == inputs.CHOICE:
            da = _as_input(name, value, numeric=False)
            bad = [v for v in np.atleast_1d(da.values).ravel().tolist() if v not in spec.check]
            if bad:
                raise ValueError(f"{name} must be one of {', '.join(spec.check)}, got {bad[0]!r}")
        elif spec.kind == inputs.STEP and isinstance(value, str):
            catalog.datacenter_value(value.strip().lower(), "pue")  # unknown operator: close matches
            da = value.strip().lower()
        elif spec.kind == inputs.LABEL:
            da = _as_input(name, value, numeric=False)
            if name == "hardware":
                for h in set(np.atleast_1d(da.values).ravel().tolist()):
                    catalog.get_hardware(h)
        else:
            da = _as_input(name, value)
            inputs.check_array(spec, da)
        given[name] = da
    for name, value, source in (
            ("input_tokens", DEFAULT_INPUT_TOKENS, "ShareGPT mean prompt (Kwon et al. 2023, arXiv:2309.06180, Fig. 11)"),
            ("output_tokens", DEFAULT_OUTPUT_TOKENS, "ShareGPT mean response (Kwon et al. 2023, arXiv:2309.06180, Fig. 11)"),
            ("served_tokens", DEFAULT_SERVED_TOKENS, "one million output tokens")):
        if name not in given:
            given[name] = xr.DataArray(value)
            defaults[name] = f"{value:g}: {source}"
    if "tp" not in given:
        given["tp"] = given["n_chips"]
        defaults["tp"] = "n_chips (all tensor-parallel)"
    given.setdefault("ep", xr.DataArray(1.0))
    if "kv_dtype" not in given:
        dt = given["dtype"]
        given["kv_dtype"] = dt.copy(data=np.vectorize(_kv_default, otypes=[object])(dt.values))
        defaults["kv_dtype"] = f"the weights' dtype ({KV_DTYPE_OF_4BIT} for 4-bit weights)"
    return given, defaults


def _kv_default(dtype):
    return KV_DTYPE_OF_4BIT if sv.WEIGHT_BYTES[dtype] < 1.0 else dtype


def _check_plan(flat):
    """tp and ep must divide n_chips; n_active_params must not exceed n_params."""
    n = flat["n_chips"]
    for k in ("tp", "ep"):
        bad = np.mod(n, flat[k]) != 0
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{k} must divide n_chips, got {k}={flat[k][i]:g} with n_chips={n[i]:g}")
    if "n_active_params" in flat and np.any(flat["n_active_params"] > flat["n_params"] * (1 + 1e-9)):
        i = int(np.argmax(flat["n_active_params"] > flat["n_params"]))
        raise ValueError(f"n_active_params must be <= n_params, got {flat['n_active_params'][i]:g} > "
                         f"{flat['n_params'][i]:g}")


# ----------------------------------------------------------------------------- roofline
_MODEL_INPUTS = ("n_params", "n_active_params", "hardware", "n_chips", "batch_size", "input_tokens", "output_tokens",
                 "dtype", "kv_dtype", "tp", "ep") + _ARCH


def _roofline(given, parameters):
    """The roofline on the broadcast model inputs: DataArrays on their dims, NaN where infeasible."""
    names = [k for k in _MODEL_INPUTS if k in given]
    arrays = dict(zip(names, xr.broadcast(*(given[k] for k in names))))
    template = arrays["n_params"].astype(float)
    flat = {k: (np.asarray(v.values, dtype=object if k in ("hardware", "dtype", "kv_dtype") else float).ravel())
            for k, v in arrays.items()}
    _check_plan(flat)
    r = evaluate(flat, parameters)
    ok = np.asarray(r["feasible"], dtype=bool)
    if template.ndim == 0 and not ok.all():
        raise ValueError(_memory_message(flat, r))
    host_w = np.array([_host_w(h) for h in flat["hardware"]]) * flat["n_chips"]
    gpu = r["gpu_energy_per_token_j"]
    out = {"prefill_time_s": r["prefill_s"], "inter_token_latency_ms": r["step_s"] * 1e3,
           "tokens_per_s": r["tokens_per_s"], "batch_size_running": r["batch_running"],
           "chip_power_w": r["chip_power_w"], "gpu_energy_per_token_j": gpu,
           "energy_per_token_j": gpu + host_w / r["tokens_per_s"],
           "memory_per_chip_gb": r["memory_needed_bytes"] / BYTES_PER_GB,
           "memory_available_gb": r["memory_available_bytes"] / BYTES_PER_GB}
    das = {k: template.copy(data=np.where(ok, v, np.nan).reshape(template.shape)) for k, v in out.items()}
    das["memory_per_chip_gb"] = template.copy(data=out["memory_per_chip_gb"].reshape(template.shape))
    das["memory_available_gb"] = template.copy(data=out["memory_available_gb"].reshape(template.shape))
    das["feasible"] = template.copy(data=ok.reshape(template.shape))
    return das


def _memory_message(flat, r):
    i = int(np.argmax(~np.asarray(r["feasible"], dtype=bool)))
    need, have = r["memory_needed_bytes"][i] / BYTES_PER_GB, r["memory_available_bytes"][i] / BYTES_PER_GB
    weights = r["weights_per_chip_bytes"][i] / BYTES_PER_GB
    return (f"the model does not fit its replica: it needs {need:.1f} GB per chip (weights {weights:.1f} GB + the KV "
            f"cache of one {flat['input_tokens'][i] + flat['output_tokens'][i]:g}-token sequence) but "
            f"{flat['hardware'][i]} has {have:.1f} GB available ({USABLE_MEMORY_FRACTION:.0%} of HBM) with "
            f"n_chips={flat['n_chips'][i]:g}; use more chips, a smaller dtype or shorter sequences")


def _host_w(hardware):
    """Host-server share per accelerator [W]: (system power / TDP - 1) x TDP (power_model.csv), 0 for TPUs.

    TPU ratings in the catalogue are measured system power per chip (host included).
    """
    rec = catalog.get_hardware(hardware)
    family = rec.family if rec.family in ("gpu", "tpu") else "other"
    ratio = catalog.power_model_parameter(family, "system_power_over_tdp").value
    return max(ratio - 1.0, 0.0) * _rated_w(hardware) if rec.tdp_w is not None else 0.0


# ----------------------------------------------------------------------------- site
def _site(given, raw, defaults):
    """PUE, grid intensity, WUE and EWIF through the steps :func:`scalesim.simulate` uses."""
    regions = catalog.select_regions(given["region"]) if "region" in given else None
    ctx = steps.Context(hardware=catalog.select_hardware(given["hardware"]), dtype="bf16",
                        defaults=steps.Defaults("central"), regions=regions)
    pue = given.get("pue")
    operator = pue if isinstance(pue, str) else None
    if pue is None:
        pue = steps.pue_of_operator(ctx)
    elif operator is not None:
        pue = steps.pue_named(operator)(ctx)
    ci = steps.grid_intensity(ctx) if regions is not None else given.get("grid_gco2e_per_kwh")
    wue = given.get("wue_l_per_kwh")
    ewif = given.get("ewif_l_per_kwh")
    site = {"pue": pue, "grid_gco2e_per_kwh": ci,
            "wue_l_per_kwh": wue if wue is not None else steps.site_water(ctx, "wue_l_per_kwh", operator),
            "ewif_l_per_kwh": ewif if ewif is not None else steps.site_water(ctx, "ewif_l_per_kwh")}
    defaults["site"] = json.loads(ctx.defaults.attrs())
    return site


# ----------------------------------------------------------------------------- compose
def _outputs(core, site, given):
    """Per-token results times served tokens: facility energy (PUE once), carbon, water."""
    from scalesim.models import datacenter, grid

    out = dict(core)
    it_kwh = core["energy_per_token_j"] * given["served_tokens"] / J_PER_KWH
    out["energy_kwh"] = datacenter.facility_energy_kwh(it_kwh.fillna(0.0), site["pue"]).where(it_kwh.notnull())
    out["pue"] = site["pue"]
    if site["grid_gco2e_per_kwh"] is not None:
        out["grid_gco2e_per_kwh"] = site["grid_gco2e_per_kwh"]
        out["co2e_t"] = grid.operational_co2e_t(out["energy_kwh"], site["grid_gco2e_per_kwh"])
    out["water_l"] = (datacenter.water_onsite_l(it_kwh, site["wue_l_per_kwh"])
                      + datacenter.water_offsite_l(out["energy_kwh"], site["ewif_l_per_kwh"]))
    return out


def _finish(out, raw, defaults, parameters):
    ds = xr.Dataset({k: (v if isinstance(v, xr.DataArray) else xr.DataArray(v)) for k, v in out.items()})
    ds = ds.drop_vars([c for c in ("hardware_id", "region_id") if c in ds.coords])
    for k in ds.data_vars:
        units, long_name, description = VARIABLES[k]
        ds[k].attrs = dict(units=units, long_name=long_name, description=description)
    described = {k: (v if isinstance(v, (str, int, float)) else f"{type(v).__name__}") for k, v in raw.items()
                 if v is not None}
    ds.attrs.update(scalesim_version=__version__, model="scalesim.models.serving.serving_roofline",
                    parameters=json.dumps(parameters or sv.SERVING_PARAMETERS[sv.DEFAULT_PARAMETERS], default=str),
                    inputs=json.dumps(described, default=str), defaults_used=json.dumps(defaults, default=str),
                    energy_boundary="gpu_energy_per_token_j: accelerators only, steady state, prefill included "
                                    "(ML.ENERGY); energy_per_token_j adds the host share; energy_kwh adds PUE")
    return ds
