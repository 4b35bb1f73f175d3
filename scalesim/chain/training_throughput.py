"""``scalesim.throughput``: structural training throughput (validate -> derive -> plan search -> Dataset).

Vectorised like :func:`scalesim.simulate`: a scalar input stays scalar, a list or 1-d array
becomes a dimension named after the input (values as coordinates), a DataArray keeps its dims.
The model is :func:`scalesim.models.parallelism.training_step_time`; the plan search evaluates
every candidate plan of every configuration in one broadcast array computation.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from scalesim import catalog
from scalesim.models import parallelism as par
from scalesim.units import FLOP_PER_TFLOP

__all__ = ["throughput", "hardware_arrays"]

_PLAN = ("tp", "pp", "vp", "cp", "ep", "dp", "micro_batch")
_NUMERIC = ("n_params", "n_active_params", "n_layers", "d_model", "n_heads", "n_kv_heads", "ffn_dim", "vocab_size",
            "n_experts", "top_k", "seq_len", "global_batch_tokens", "n_chips") + _PLAN + ("zero",)
_STRING = ("hardware", "dtype", "recompute")
#: GB and TB in bytes (catalogue units of bandwidth).
BYTES_PER_GB, BYTES_PER_TB = 1e9, 1e12
#: Bytes per gibibyte (IEC 80000-13, 2**30), the catalogue unit of memory capacity. Accelerator memory
#: is a binary amount (HBM stacks hold 16, 24 or 36 GiB): an "80 GB" A100 or H100 reports 81920 or
#: 81559 MiB in ``nvidia-smi``, an "141 GB" H200 143771 MiB and a "180 GB" B200 183359 MiB.
BYTES_PER_GIB = 2.0**30

#: attrs of the output variables: (units, long_name, description).
VARIABLES = {
    "mfu": ("1", "model FLOPs utilisation", "Model FLOP/s per chip over the dense peak of the training dtype."),
    "hfu": ("1", "hardware FLOPs utilisation", "As mfu, counting recomputed FLOPs."),
    "model_flop_per_s_per_chip": ("FLOP/s", "model FLOP/s per chip", "6N + 6Lhs per token (causal) x tokens/s / chips."),
    "step_time_s": ("s", "step time", "Time of one optimizer step over the global batch."),
    "tokens_per_s": ("1/s", "cluster tokens per second", "Global batch tokens / step time."),
    "memory_per_chip_gb": ("GB", "memory per chip", "Weights, gradients, optimizer states and activations on the fullest pipeline stage."),
    "feasible": ("1", "plan feasible", "False where no plan (or the forced one) is possible."),
    "reason": ("1", "why infeasible", "Empty when feasible."),
    "global_batch_tokens": ("1", "global batch [token]", "Tokens per optimizer step."),
}
for _k in ("tp", "pp", "vp", "cp", "ep", "dp", "micro_batch", "zero"):
    VARIABLES[_k] = ("1", f"plan: {_k}", f"{_k} of the plan used (searched unless given).")
VARIABLES["recompute"] = ("1", "plan: recompute", "Activation recomputation of the plan used.")
SHARES = ("compute", "memory_bound", "bubble", "exposed_tp_comm", "exposed_dp_comm", "exposed_ep_comm",
          "exposed_cp_comm", "recompute")
for _k in SHARES:
    VARIABLES[f"share_{_k}"] = ("1", f"time share: {_k}", f"Fraction of the step time spent in {_k}.")


def hardware_arrays(hardware, dtype):
    """Per-element hardware arrays of :func:`scalesim.models.parallelism.training_step_time`.

    Parameters
    ----------
    hardware : array_like of str
        Hardware ids or aliases.
    dtype : array_like of str
        Training dtypes ('bf16', 'fp16', 'fp8', 'int8', 'nvfp4', 'mxfp4', 'fp4'), same shape.

    Returns
    -------
    dict of ndarray
        ``peak_flop_per_s`` (NaN where the dtype has no peak), ``peak_16bit_flop_per_s``,
        ``elem_bytes``, ``hbm_bw_bytes_per_s``, ``memory_bytes``, ``scale_up_domain``,
        ``scale_up_bw_bytes_per_s``, ``scale_out_bw_bytes_per_s``, and ``matmul_fraction``
        (:attr:`scalesim.catalog.Hardware.matmul_fraction`), ``wgrad_low_precision``
        (:data:`scalesim.models.parallelism.WGRAD_LOW_PRECISION`) and ``host_link_bw_bytes_per_s``
        (NVLink-C2C to the CPU; NaN on PCIe hosts, which have no activation-offload plan).
    """
    hardware = np.asarray(hardware, dtype=object)
    dtype = np.broadcast_to(np.asarray(dtype, dtype=object), hardware.shape)
    out = {k: np.full(hardware.shape, np.nan) for k in (
        "peak_flop_per_s", "peak_16bit_flop_per_s", "elem_bytes", "hbm_bw_bytes_per_s", "memory_bytes",
        "scale_up_domain", "scale_up_bw_bytes_per_s", "scale_out_bw_bytes_per_s", "matmul_fraction",
        "wgrad_low_precision", "host_link_bw_bytes_per_s")}
    pairs = {}
    for idx, (h, d) in enumerate(zip(hardware.ravel(), dtype.ravel())):  # distinct ids only, not elements
        pairs.setdefault((h, d), []).append(idx)
    for (h, d), idx in pairs.items():
        rec = catalog.get_hardware(h)
        if d not in par.ELEM_BYTES:
            raise ValueError(f"dtype must be one of {sorted(par.ELEM_BYTES)}, got {d!r}")
        key = catalog.DTYPE_ALIASES.get(d, d)
        pk = rec.peak_tflop_per_s.get(key)
        p16 = rec.peak_tflop_per_s.get("bf16") or rec.peak_tflop_per_s.get("fp16")
        if key == "bf16" and pk is None:
            pk = rec.peak_tflop_per_s.get("fp16")  # V100: fp16 tensor cores
        vals = dict(peak_flop_per_s=np.nan if pk is None else pk * FLOP_PER_TFLOP,
                    peak_16bit_flop_per_s=np.nan if p16 is None else p16 * FLOP_PER_TFLOP,
                    elem_bytes=par.ELEM_BYTES[d], hbm_bw_bytes_per_s=rec.hbm_bw_tb_per_s * BYTES_PER_TB,
                    memory_bytes=rec.memory_gib * BYTES_PER_GIB, scale_up_domain=rec.scale_up_domain or 1.0,
                    scale_up_bw_bytes_per_s=(rec.scale_up_bw_gb_per_s or np.nan) * BYTES_PER_GB,
                    scale_out_bw_bytes_per_s=(rec.scale_out_bw_gb_per_s or np.nan) * BYTES_PER_GB,
                    matmul_fraction=rec.matmul_fraction,
                    wgrad_low_precision=par.WGRAD_LOW_PRECISION.get(d, 1.0),
                    host_link_bw_bytes_per_s=(rec.host_link_bw_gb_per_s or np.nan) * BYTES_PER_GB)
        for k, v in vals.items():
            out[k].ravel()[idx] = v
    return out


def _as_dataarray(name, value):
    if isinstance(value, (set, frozenset, dict)):
        raise ValueError(f"{name} must be a scalar, a list, a 1-d array or a DataArray, got a {type(value).__name__}")
    if isinstance(value, xr.DataArray):
        return value
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return xr.DataArray(np.asarray(value), dims=[name], coords={name: np.asarray(value)})
    if isinstance(value, np.ndarray) and value.ndim > 1:
        raise ValueError(f"{name} must be a scalar, a list, a 1-d array or a DataArray, got a {value.ndim}-d array")
    return xr.DataArray(value)


def _numeric(name, da):
    """A numeric input as float, or a ValueError naming it (strings, booleans, values beyond 1e60)."""
    if da.dtype.kind not in "iuf" or da.dtype.kind == "b":
        raise ValueError(f"{name} must be a number, got {da.values.ravel()[:1].tolist()[0]!r}")
    da = da.astype(float)
    if np.any(np.abs(da.values) > 1e60):
        raise ValueError(f"{name} must be at most 1e60 (the supported range), got {float(np.abs(da).max()):g}")
    return da


def throughput(n_params, hardware, n_chips, *, n_active_params=None, n_layers=None, d_model=None, n_heads=None,
               n_kv_heads=None, ffn_dim=None, vocab_size=None, n_experts=None, top_k=None, seq_len=4096,
               global_batch_tokens=None, dtype="bf16", tp=None, pp=None, vp=None, cp=None, ep=None, dp=None,
               micro_batch=None, fsdp=None, zero=None, recompute=None, parameters=None):
    """Structural throughput of one training step, searching the fastest plan that fits.

    Parameters
    ----------
    n_params : array_like
        Total parameters [1].
    hardware : str or array_like of str
        Hardware ids or aliases (``H100``, ``GB200``, ``TPUv6e`` ...).
    n_chips : array_like
        Accelerators [1].
    n_active_params : array_like, optional
        Parameters used per token (MoE) [1]; default ``n_params``.
    n_layers, d_model, n_heads, n_kv_heads, ffn_dim, vocab_size, n_experts, top_k : array_like, optional
        Architecture [1]; missing entries come from the aspect-ratio rule
        (:func:`scalesim.models.parallelism.derive_config`). ``ffn_dim`` is per expert for an MoE.
    seq_len : array_like, optional
        Sequence length [token] (default 4096).
    global_batch_tokens : array_like, optional
        Tokens per step [token]; default GPT-3's batch-size table (recorded in attrs).
    dtype : str or array_like of str, optional
        GEMM dtype: 'bf16' (default), 'fp16', 'fp8', 'int8', 'nvfp4', 'mxfp4'. Each is its training
        recipe (:data:`scalesim.models.parallelism.WGRAD_LOW_PRECISION`): 'int8' is AQT as MaxText
        runs it (weight gradient in bf16), the 8/4-bit float formats Transformer Engine's (all three
        GEMMs quantised, the quantised inputs saved for the backward).
    tp, pp, vp, cp, ep, dp, micro_batch : array_like, optional
        Plan entries to force [1]; the others are searched.
    fsdp : bool, optional
        Force FSDP (ZeRO-3) or, with False, the ZeRO-1 distributed optimizer.
    zero : int, optional
        Force a ZeRO stage 0-3.
    recompute : {'none', 'selective', 'full', 'offload'}, optional
        Force activation recomputation, or offloading of the activations to the CPU's memory (only
        on chips with a coherent CPU-GPU link in the catalogue: GB200, GB300).
    parameters : dict, optional
        Efficiencies and model switches (default
        ``THROUGHPUT_PARAMETERS[DEFAULT_PARAMETERS]`` of :mod:`scalesim.models.parallelism`; a
        switch the dict lacks keeps the shipped set's value, ``MODEL_SWITCHES``).

    Returns
    -------
    xarray.Dataset
        ``mfu``, ``hfu``, ``model_flop_per_s_per_chip``, ``step_time_s``, ``tokens_per_s``, the plan
        (``tp`` ... ``recompute``), ``memory_per_chip_gb``, ``feasible``, ``reason`` and
        ``share_<part>`` time shares; NaN where infeasible.

    Raises
    ------
    ValueError
        If a forced plan entry makes a configuration infeasible (the message names the constraint).
    """
    zero = _check_options(fsdp, zero, recompute)
    args = dict(n_params=n_params, n_active_params=n_active_params, n_layers=n_layers, d_model=d_model,
                n_heads=n_heads, n_kv_heads=n_kv_heads, ffn_dim=ffn_dim, vocab_size=vocab_size, n_experts=n_experts,
                top_k=top_k, seq_len=seq_len, global_batch_tokens=global_batch_tokens, n_chips=n_chips,
                tp=tp, pp=pp, vp=vp, cp=cp, ep=ep, dp=dp, micro_batch=micro_batch, zero=zero,
                hardware=hardware, dtype=dtype, recompute=recompute)
    template, flat = _broadcast_inputs(args)
    cfg, forced, defaults = _job_config(flat)
    hw = hardware_arrays(flat["hardware"], flat["dtype"])
    best = _search(cfg, hw, forced, parameters)
    out = _outputs(best, cfg, hw)
    return _dataset(out, template, parameters, defaults)


def _check_options(fsdp, zero, recompute):
    """ZeRO stage implied by ``fsdp``/``zero``; ValueError on a conflict or an unknown recompute mode."""
    if fsdp is not None and zero is not None:
        raise ValueError(f"give fsdp or zero, not both (got fsdp={fsdp!r}, zero={zero!r})")
    if fsdp is not None:
        zero = 3 if bool(fsdp) else 1
    if recompute is not None:
        rv = np.atleast_1d(np.asarray(recompute.values if isinstance(recompute, xr.DataArray) else recompute))
        bad = [r for r in rv.ravel() if r not in par.RECOMPUTE]
        if bad:
            raise ValueError(f"recompute must be one of {sorted(par.RECOMPUTE)}, got {bad[0]!r}")
    return zero


def _broadcast_inputs(args):
    """Given inputs as DataArrays broadcast against each other: (template, flat 1-d arrays by name)."""
    given = {k: _as_dataarray(k, v) for k, v in args.items() if v is not None}
    for k in _NUMERIC:
        if k in given:
            given[k] = _numeric(k, given[k])
            x = np.asarray(given[k].values, dtype=float)
            if k in _PLAN and np.any(np.isfinite(x) & ((x < 1) | (x != np.round(x)))):
                raise ValueError(f"{k} must be a whole number >= 1 (a parallel degree), got {given[k].values!r}")
            if np.any(~np.isfinite(x)) or (np.any(x <= 0) if k != "zero" else np.any((x < 0) | (x > 3))):
                raise ValueError(f"{k} must be finite and > 0, got {given[k].values!r}")
    arrays = dict(zip(given, xr.broadcast(*given.values())))
    template = next(iter(arrays.values()))
    return template, {k: np.asarray(v.values).ravel() for k, v in arrays.items()}


def _job_config(flat):
    """Architecture (:func:`~scalesim.models.parallelism.derive_config`), forced plan entries and defaults used."""
    num = lambda k: flat[k].astype(float) if k in flat else None  # noqa: E731
    N = num("n_params")
    Na = num("n_active_params") if "n_active_params" in flat else N
    if np.any(Na > N * (1 + 1e-9)):
        raise ValueError(f"n_active_params must be <= n_params, got {Na!r} > {N!r}")
    defaults = {}
    gbt = num("global_batch_tokens")
    if gbt is None:
        gbt = par.global_batch_tokens_gpt3(N)
        defaults["global_batch_tokens"] = "GPT-3 batch size by model size (Brown et al. 2020, arXiv:2005.14165, Table 2.1)"
    cfg = par.derive_config(N, Na, seq_len=num("seq_len"), global_batch_tokens=gbt, n_layers=num("n_layers"),
                            d_model=num("d_model"), n_heads=num("n_heads"), n_kv_heads=num("n_kv_heads"),
                            ffn_dim=num("ffn_dim"), vocab_size=num("vocab_size"), n_experts=num("n_experts"),
                            top_k=num("top_k"))
    cfg["n_chips"] = num("n_chips")
    forced = {k: num(k) for k in _PLAN + ("zero",) if k in flat}
    if "recompute" in flat:
        forced["recompute"] = np.array([par.RECOMPUTE[r] for r in flat["recompute"]], dtype=float)
    return cfg, forced, defaults


def _search(cfg, hw, forced, parameters):
    """Fastest feasible plan per configuration; ValueError when a forced plan is infeasible."""
    moe = bool(np.any(cfg["n_experts"] > 1))
    long_ctx = bool(np.any(cfg["seq_len"] >= 16384)) or "cp" in forced
    max_tp = float(np.nanmax(hw["scale_up_domain"]))

    def plans_for(offload):
        return _dedupe_forced(par.plan_grid(max_tp=max_tp, moe=moe, long_context=long_ctx, offload=offload), forced)

    best = par.search_plan_by_host_link(cfg, hw, plans_for, forced=forced, parameters=parameters)
    ok = best["reason"] == 0
    if forced and not ok.all():
        first = int(np.argmax(~ok))
        plan_txt = ", ".join(f"{k}={par.RECOMPUTE_NAMES[v[first]] if k == 'recompute' else format(v[first], 'g')}"
                             for k, v in forced.items() if np.isfinite(v[first]))
        raise ValueError(f"forced plan ({plan_txt}) is infeasible: {par.REASONS[best['reason'][first]]}")
    return best


def _outputs(best, cfg, hw):
    """Output variables (flat arrays) of the chosen plans."""
    ok = best["reason"] == 0
    step, n, gbt = best["step_time_s"], cfg["n_chips"], cfg["global_batch_tokens"]
    out = {
        "step_time_s": step,
        "tokens_per_s": gbt / step,
        "model_flop_per_s_per_chip": best["model_flop"] / (step * n),
        "mfu": best["model_flop"] / (step * n * hw["peak_flop_per_s"]),
        "hfu": best["hardware_flop"] / (step * n * hw["peak_flop_per_s"]),
        "memory_per_chip_gb": np.where(ok, best["memory_per_chip_bytes"] / BYTES_PER_GB, np.nan),
        "feasible": ok,
        "reason": np.array([par.REASONS[r] for r in best["reason"]], dtype=object),
        "global_batch_tokens": gbt,
    }
    for k in ("tp", "pp", "vp", "cp", "ep", "micro_batch", "zero"):
        out[k] = np.where(ok, best[k], np.nan)
    out["dp"] = np.where(ok, best["dp"], np.nan)
    out["recompute"] = np.array([par.RECOMPUTE_NAMES.get(int(r), "") if o else ""
                                 for r, o in zip(best["recompute"], ok)], dtype=object)
    for k in SHARES:
        out[f"share_{k}"] = best[k] / step
    return out


def _dataset(out, template, parameters, defaults):
    """Dataset shaped like ``template``, attrs from :data:`VARIABLES`."""
    data = {}
    for k, v in out.items():
        units, long_name, description = VARIABLES[k]
        da = template.copy(data=np.asarray(v).reshape(template.shape))
        da.attrs = dict(units=units, long_name=long_name, description=description)
        data[k] = da
    ds = xr.Dataset(data)
    ds.attrs.update(model="scalesim.models.parallelism.training_step_time",
                    parameters=str(parameters or par.DEFAULT_PARAMETERS),
                    defaults_used="; ".join(f"{k}: {v}" for k, v in defaults.items()) or "none",
                    flop_convention="model FLOPs 6N + 6Lhs per token (causal attention)")
    return ds


def _dedupe_forced(plans, forced):
    """Drop plan-axis duplicates along entries that every configuration forces (smaller search)."""
    return dedupe_plans(plans, [k for k, v in forced.items() if k in plans and np.all(np.isfinite(v))])


def dedupe_plans(plans, keys):
    """Plan grid without the candidates that differ only in entries ``keys`` (overridden by the caller)."""
    if not keys:
        return plans
    cols = np.stack([plans[k] for k in plans if k not in keys], axis=1)
    _, keep = np.unique(cols, axis=0, return_index=True)
    keep = np.sort(keep)
    return {k: v[keep] for k, v in plans.items()}
