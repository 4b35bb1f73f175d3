"""Calibration of the serving roofline's five global constants on ML.ENERGY leaderboard v3.

The data are ``data/inference_energy_measurements.csv`` (one row per measured vLLM
configuration: model, precision, GPUs, ``max_num_seqs``; steady-state GPU energy per output
token and median inter-token latency). Each row is predicted as ``score.py`` does: nominal
parameter counts, the architecture derived from them (aspect-ratio rule, grouped-query KV
heads), the row's precision, tensor/expert parallelism, ``max_num_seqs`` as the batch and the
row's mean output length; the prompt length and the KV dtype are serve's defaults.

``fit_serving_parameters`` minimises the sum of squared log errors of energy per token and of
inter-token latency (equal weight) over the five keys of
:data:`scalesim.models.serving.SERVING_PARAMETERS`; ``leave_one_model_out`` refits without each
model and predicts it.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from scalesim import catalog
from scalesim.chain import serving as chain
from scalesim.models import serving as sv

__all__ = ["FIT_KEYS", "BOUNDS", "measurement_rows", "predict_rows", "error_summary", "fit_serving_parameters",
           "leave_one_model_out"]

FIT_KEYS = sv.FIT_KEYS
#: Bounds of the fitted keys, in FIT_KEYS order.
BOUNDS = ((0.3, 1.0), (0.05, 1.0), (0.0, 5e-4), (0.02, 1.0), (0.1, 1.0))


def _f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return np.nan


def measurement_rows():
    """Rows of the shipped table with a measured energy per token (as dicts)."""
    return [r for r in catalog.read_table("inference_energy_measurements.csv") if _f(r["energy_per_token_j"]) > 0]


def _flat(rows):
    col = lambda k: np.array([_f(r[k]) for r in rows])  # noqa: E731
    N = col("n_params")
    Na = np.where(np.isfinite(col("n_active_params")), col("n_active_params"), N)
    tp = np.where(np.isfinite(col("tensor_parallel")), col("tensor_parallel"), col("n_chips"))
    ep = np.where(col("expert_parallel") > 1, col("expert_parallel"), 1.0)
    out = np.where(np.isfinite(col("avg_output_len")), col("avg_output_len"), chain.DEFAULT_OUTPUT_TOKENS)
    dtype = np.array([r["precision"] or "bf16" for r in rows], dtype=object)
    return dict(n_params=N, n_active_params=Na, hardware=np.array([r["accelerator"] for r in rows], dtype=object),
                dtype=dtype, kv_dtype=np.array([chain._kv_default(d) for d in dtype], dtype=object), n_chips=col("n_chips"), tp=tp, ep=ep,
                batch_size=col("batch_size"), input_tokens=np.full(N.shape, chain.DEFAULT_INPUT_TOKENS),
                output_tokens=out)


def predict_rows(rows, parameters=None):
    """(predicted energy per token [J], predicted inter-token latency [ms]) for each row."""
    r = chain.evaluate(_flat(rows), parameters)
    return r["gpu_energy_per_token_j"], r["step_s"] * 1e3


def _measured(rows):
    return (np.array([_f(r["energy_per_token_j"]) for r in rows]), np.array([_f(r["median_itl_ms"]) for r in rows]))


def error_summary(pred, meas):
    """Median, 90th percentile and max |relative error|, and the median signed error [1]."""
    e = np.asarray(pred) / np.asarray(meas) - 1.0
    a = np.abs(e)
    return dict(n=int(e.size), median=float(np.median(a)), p90=float(np.percentile(a, 90)), max=float(a.max()),
                bias=float(np.median(e)))


def fit_serving_parameters(rows=None, start=None):
    """Least-squares fit of the five global constants: a dict like ``SERVING_PARAMETERS`` entries.

    Minimises sum (log E_pred/E_meas)^2 + (log ITL_pred/ITL_meas)^2 over the rows.
    """
    rows = measurement_rows() if rows is None else rows
    flat = _flat(rows)
    e_meas, itl_meas = _measured(rows)
    base = dict(start or sv.SERVING_PARAMETERS[sv.DEFAULT_PARAMETERS])
    scale = np.array([1.0, 1.0, 1e-5, 1.0, 1.0])

    def resid(x):
        p = dict(zip(FIT_KEYS, x * scale))
        r = chain.evaluate(flat, p)
        return np.concatenate([np.log(r["gpu_energy_per_token_j"] / e_meas), np.log(r["step_s"] * 1e3 / itl_meas)])

    lo, hi = (np.array(b) / scale for b in zip(*BOUNDS))
    x0 = np.clip(np.array([base[k] for k in FIT_KEYS]) / scale, lo, hi)
    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac")
    return {k: float(v) for k, v in zip(FIT_KEYS, sol.x * scale)}


def leave_one_model_out(rows=None):
    """Per held-out model: its rows predicted with constants fitted on the other models.

    Returns
    -------
    dict
        model -> (predicted energy [J], measured energy [J], predicted ITL [ms], measured ITL [ms]).
    """
    rows = measurement_rows() if rows is None else rows
    out = {}
    for m in dict.fromkeys(r["model"] for r in rows):
        train = [r for r in rows if r["model"] != m]
        test = [r for r in rows if r["model"] == m]
        p = fit_serving_parameters(train)
        e, itl = predict_rows(test, p)
        em, itlm = _measured(test)
        out[m] = (e, em, itl, itlm)
    return out
