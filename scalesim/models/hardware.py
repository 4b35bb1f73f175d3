"""Accelerator throughput, utilisation and power models (pure numpy).

References
----------
.. [1] Chowdhery et al. 2022, "PaLM: Scaling Language Modeling with Pathways", arXiv:2204.02311,
   App. B (model FLOPs utilisation, MFU).
.. [2] Epoch AI, "Notable AI Models" / training-cost-trends dataset, column "Hardware utilization
   (MFU)" (CC BY 4.0), shipped as ``data/mfu_reported.csv``.
.. [3] Patterson et al. 2021, "Carbon Emissions and Large Neural Network Training",
   arXiv:2104.10350, Table 4 (measured average system power per accelerator).
"""

from __future__ import annotations

import numpy as np

from ..units import S_PER_H
from ._checks import check_fraction, check_positive

#: Default utilisation model ``mfu = intercept + slope * log10(n_chips)``, clipped to
#: [MFU_CLIP_LOW, MFU_CLIP_HIGH]. Least-squares fit on the 50 rows of Epoch AI's reported MFU
#: table with a chip count (``scalesim.calibration.fit_utilisation_model`` reproduces it; a test
#: pins the refit). It fits poorly: R^2 = 0.08, RMSE = 0.115 (MFU points), i.e. reported MFU is
#: 0.40 +/- 0.12 almost regardless of scale; the residual 10th/90th percentiles give the range.
MFU_MODEL_EPOCH = {"intercept": 0.548175, "slope_per_decade": -0.0481129,
                   "residual_p10": -0.127, "residual_p90": 0.160,
                   "r2": 0.083, "rmse": 0.115, "n_points": 50,
                   "source": "least-squares fit on Epoch AI reported MFU (data/mfu_reported.csv, CC BY 4.0)"}
#: Alternative calibration used by ``validate(mode="prediction", mfu_model="runs_by_generation")``:
#: per accelerator generation, the median MFU implied by published runs (flop / (chip-hours x
#: 3600 x peak), ``data/published_runs.csv``) shrunk toward the pooled median (0.318, 29 runs)
#: with a fixed weight of 2 pseudo-runs; ``scalesim.calibration.fit_run_utilisation(by="generation")``
#: reproduces it and a test pins the refit. It is an *effective* utilisation (restarts, evaluation
#: and idle time included in reported GPU-hours), lower than MFU while running. Leave-one-out
#: median error of chip-hours over 22 runs: 25.8 % (README, Validation).
MFU_RUNS_BY_GENERATION = {"A100": 0.379, "H100": 0.172, "TPUv2": 0.396, "TPUv3": 0.348, "TPUv4": 0.313,
                          "V100": 0.278, "pooled": 0.318,
                          "source": "calibration.fit_run_utilisation(by='generation') on data/published_runs.csv"}
#: Default utilisation model of :func:`scalesim.simulate` (``mfu='hierarchical'``): *effective*
#: MFU (restarts, evaluation and idle time included, as in reported GPU-hours) per accelerator
#: generation, fitted by ``scalesim.calibration.fit_hierarchical_utilisation`` on both shipped
#: sources (a test pins the refit):
#:
#:   mfu_g = (n_g m_g + k eta r_g) / (n_g + k),  k = 2,
#:
#: with m_g, n_g the median and count of run-implied MFU (flop / (chip-hours x 3600 x peak),
#: ``data/published_runs.csv``, 29 runs), r_g the median MFU reported for generation g by Epoch AI
#: (``data/mfu_reported.csv``, 34 rows not already counted as a published run) and eta = 0.777
#: the median ratio of run-implied to reported MFU. A generation without runs gets eta r_g
#: (H800, TPUv5e, TPUv5p); one with neither gets ``pooled``, the median run-implied MFU (flagged
#: in the result's attrs). ``ratio_p10``/``ratio_p90``: in-sample percentiles of implied / fitted
#: MFU, the ``defaults='high'``/``'low'`` multipliers. Leave-one-out median error of chip-hours
#: over the 22 runs with N, D and chip-hours: README, Validation.
MFU_MODEL_HIERARCHICAL = {"A100": 0.385377, "H100": 0.162273, "H800": 0.248670, "TPUv2": 0.328555,
                          "TPUv3": 0.357578, "TPUv4": 0.256723, "TPUv5e": 0.419631, "TPUv5p": 0.404089,
                          "V100": 0.183239, "pooled": 0.318180, "eta": 0.777095,
                          "ratio_p10": 0.645989, "ratio_p90": 1.591112, "n_runs": 29, "n_reported": 34,
                          "source": "calibration.fit_hierarchical_utilisation on data/published_runs.csv "
                                    "and data/mfu_reported.csv (Epoch AI, CC BY 4.0)"}
#: Utilisation model ``mfu='structural'`` (scalesim's default): effective MFU = structural MFU of
#: the fastest plan that fits (:func:`scalesim.models.parallelism.structural_mfu`: GEMM
#: efficiency, memory-bound work, TP/DP/PP communication, bubbles, memory fit, calibrated on the
#: public training-throughput benchmarks) x ``goodput``, the median ratio of run-implied to
#: structural MFU over the 17 published runs with N, D and chip-hours (compute caveats excluded),
#: each at its reported chip count or, where none is reported, at the count the chain's 30-day
#: rule chooses (``scalesim.calibration.fit_structural_goodput`` reproduces it by fixed-point
#: iteration; a test pins the refit). ``draw_ratios``: the residual pool, each of those runs' ratio
#: over the median (sorted), from which ``simulate(samples=N)`` draws the goodput multiplier as an
#: empirical distribution at plotting positions k/(n+1) (Hyndman & Fan 1996 definition 6; clamped to
#: the pool's extremes; one shared uniform per sample, common random numbers). ``ratio_p10``/
#: ``ratio_p90``: that draw's 10th/90th percentiles, the ``defaults='high'``/``'low'`` corners.
MFU_MODEL_STRUCTURAL = {"goodput": 0.654655, "ratio_p10": 0.642979, "ratio_p90": 1.385618, "n_runs": 17,
                        "draw_ratios": (0.568438, 0.661614, 0.741145, 0.775965, 0.824832, 0.880516, 0.896466,
                                        0.983034, 1.0, 1.04377, 1.0821, 1.09341, 1.12019, 1.16505,
                                        1.18197, 1.28047, 1.80621),
                        "source": "calibration.fit_structural_goodput on data/published_runs.csv, given "
                                  "models.parallelism.structural_mfu (calibration.throughput on "
                                  "data/training_throughput_benchmarks.csv)"}
MFU_CLIP_LOW = 0.05
MFU_CLIP_HIGH = 0.75


def mfu_hierarchical(generation, *, table=MFU_MODEL_HIERARCHICAL, scale=1.0):
    """Effective MFU of an accelerator generation from the hierarchical calibration [-].

    Parameters
    ----------
    generation : str
        Accelerator generation ('A100', 'H100', 'TPUv4', ...); one absent from ``table`` gets
        ``table['pooled']``.
    table : dict
        Fitted values; default :data:`MFU_MODEL_HIERARCHICAL`.
    scale : float
        Multiplier for a range (``table['ratio_p10']`` / ``['ratio_p90']``) [-].

    Returns
    -------
    mfu : float
        Effective MFU [-], clipped to [0.05, 0.75].

    Notes
    -----
    mfu_g = (n_g m_g + k eta r_g) / (n_g + k): see :data:`MFU_MODEL_HIERARCHICAL`. Relative to
    the dense bf16 peak (fp16 on V100); restarts and idle time are already in it, so leave
    ``goodput`` at 1 unless modelling extra lost time.
    """
    check_positive("scale", scale)
    value = table.get(generation, table["pooled"])
    return float(np.clip(value * scale, MFU_CLIP_LOW, MFU_CLIP_HIGH))


def mfu_default_epoch(n_chips, *, intercept=MFU_MODEL_EPOCH["intercept"],
                      slope_per_decade=MFU_MODEL_EPOCH["slope_per_decade"], offset=0.0):
    """Default model FLOPs utilisation as a function of cluster size.

    Parameters
    ----------
    n_chips : array_like
        Number of accelerators [-], > 0.
    intercept, slope_per_decade : float
        Model coefficients [-]; defaults from :data:`MFU_MODEL_EPOCH`.
    offset : float
        Added to the prediction (use the residual percentiles for a low/high range) [-].

    Returns
    -------
    mfu : array_like
        Model FLOPs utilisation [-], clipped to [0.05, 0.75].

    Notes
    -----
    mfu = clip(intercept + slope * log10(n_chips) + offset, 0.05, 0.75). The fit explains little
    of the variance (R^2 = 0.08): pass the run's own ``mfu`` whenever it is known.
    """
    check_positive("n_chips", n_chips)
    return np.clip(intercept + slope_per_decade * np.log10(n_chips) + offset, MFU_CLIP_LOW, MFU_CLIP_HIGH)


def achieved_flop_per_s(peak_flop_per_s, mfu):
    """Achieved model FLOP/s per chip = peak x MFU [FLOP/s].

    Parameters
    ----------
    peak_flop_per_s : array_like
        Dense peak throughput per chip for the training dtype [FLOP/s].
    mfu : array_like
        Model FLOPs utilisation [-] in (0, 1].
    """
    check_positive("peak_flop_per_s", peak_flop_per_s)
    check_fraction("mfu", mfu)
    return peak_flop_per_s * mfu


def chip_hours_from_flop(flop, peak_flop_per_s, mfu, *, goodput=1.0):
    """Accelerator-hours needed for ``flop`` model FLOPs [h].

    Notes
    -----
    chip_hours = C / (P_peak x MFU) / goodput / 3600 (scaling_laws.md Sec. 5.1: T = C/(n P MFU),
    chip-hours = n T). ``goodput`` < 1 counts restarts and failures (Llama 3: > 0.9).
    """
    check_positive("flop", flop, allow_zero=True)
    check_fraction("goodput", goodput)
    return flop / (achieved_flop_per_s(peak_flop_per_s, mfu) * goodput) / S_PER_H


def chip_power_from_tdp(tdp_w, *, system_power_over_tdp):
    """Average IT power per accelerator incl. its share of the host server [W].

    Notes
    -----
    P = TDP x f, with f the measured ratio of per-accelerator system power to TDP during training
    (``data/power_model.csv``: GPUs 1.10-1.50, central 1.26; Patterson et al. 2021 Table 4,
    Latif et al. 2024, Newkirk et al. 2025).
    """
    check_positive("tdp_w", tdp_w)
    check_positive("system_power_over_tdp", system_power_over_tdp)
    return tdp_w * system_power_over_tdp


def it_energy_kwh(chip_hours, chip_power_w, *, idle_chip_hours=0.0, idle_power_w=0.0):
    """IT energy of the accelerators and their hosts [kWh] (no PUE).

    Notes
    -----
    E_IT = chip_hours x P_avg / 1000 + idle_chip_hours x P_idle / 1000.
    """
    from ..units import W_PER_KW

    check_positive("chip_hours", chip_hours, allow_zero=True)
    check_positive("chip_power_w", chip_power_w, allow_zero=True)
    return (chip_hours * chip_power_w + idle_chip_hours * idle_power_w) / W_PER_KW
