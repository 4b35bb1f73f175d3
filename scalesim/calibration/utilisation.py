"""Calibration of the default utilisation (MFU) and power models on the shipped data.

Three fits, each a plain function of table rows (the shipped tables by default) so that tests can
refit on a subset and :mod:`scalesim.validation` can refit with one run left out:

``fit_utilisation_model``
    mfu = a + b log10(n_chips), ordinary least squares on Epoch AI's reported MFU table
    (``data/mfu_reported.csv``). Reproduces :data:`scalesim.models.hardware.MFU_MODEL_EPOCH`.
``fit_run_utilisation``
    the published training runs' own implied MFU, mfu_i = C_i / (chip_hours_i x 3600 x P_peak,i),
    summarised by its median (a constant model; most runs do not report a chip count).
``fit_power_model``
    per accelerator family, the ratio of measured average power per accelerator (incl. host share)
    to the chip's TDP: central = median, low/high = min/max, as documented in
    ``data/power_model.csv``. ``source='runs'`` instead summarises the ratio of the power *assumed*
    by the published runs (mostly TDP, i.e. an accounting convention, not a measurement).

References
----------
.. [1] Chowdhery et al. 2022, "PaLM: Scaling Language Modeling with Pathways", arXiv:2204.02311,
   App. B (MFU).
.. [2] Patterson et al. 2021, "Carbon Emissions and Large Neural Network Training",
   arXiv:2104.10350, Table 4 (measured average system power per accelerator).
.. [3] Latif et al. 2024, arXiv:2412.08602; Newkirk et al. 2025, arXiv:2506.14551 (8xH100 node
   power as a fraction of the 10.2 kW DGX H100 rating).
.. [4] Epoch AI, "Notable AI Models", column "Hardware utilization (MFU)" (CC BY 4.0).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from scalesim import catalog
from scalesim import runs as runs_data
from scalesim.units import H_PER_DAY, S_PER_H, W_PER_KW

#: Accelerator names used in ``published_runs.csv`` that are not catalogue aliases.
ACCELERATOR_IDS = {"TPUv2": "TPUv2", "TPUv3": "TPUv3", "TPUv4": "TPUv4", "V100": "V100-SXM2-32GB",
                   "A100-80GB": "A100-SXM4-80GB", "A100-40GB": "A100-SXM4-40GB",
                   "H100-80GB": "H100-SXM5-80GB", "AMD MI250X": "MI250X"}

_NUMBER = re.compile(r"^\s*~?\s*([0-9][0-9,]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?)\s*([kKMBT]?)\b")
_SCALE = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parse_number(text):
    """Leading number of a table cell [-], or ``None``.

    ``'1.1 (implied, not stated)'`` -> 1.1; ``'~150 (approx. 5 months)'`` -> 150; ``'2.6e+22'``
    -> 2.6e22; ``'3T (2B)'`` -> 3e12. Cells listing several values (``'2B; 7B'``,
    ``'512; 4096'``, ``'512 (2B); 4096 (7B)'``) describe a family, not one run: ``None``.
    """
    if text is None:
        return None
    s = str(text).strip()
    if not s or ";" in s:
        return None
    m = _NUMBER.match(s)
    if not m:
        return None
    return float(m.group(1).replace(",", "")) * _SCALE[m.group(2)]


def hardware_of(row):
    """Catalogue :class:`~scalesim.catalog.Hardware` of a published run, or ``None`` if not one chip type."""
    name = (row.get("accelerator") or "").strip()
    if not name or "/" in name or ";" in name:
        return None
    try:
        return catalog.get_hardware(ACCELERATOR_IDS.get(name, name))
    except ValueError:
        return None


def _peak_flop_per_s(hw):
    """Dense bf16 peak, fp16 where bf16 does not exist (V100), as :func:`scalesim.simulate` does."""
    dtype = "bf16" if hw.peak_tflop_per_s["bf16"] is not None else "fp16"
    return hw.peak_flop_per_s(dtype)


def training_flop(row):
    """Training compute of a run [FLOP]: 6 N_active D where both are known, else the ``flop`` cell."""
    n = parse_number(row.get("n_params_active")) or parse_number(row.get("n_params"))
    d = parse_number(row.get("n_tokens"))
    if n and d:
        return 6.0 * n * d
    return parse_number(row.get("flop"))


# ----------------------------------------------------------------------------- utilisation
def fit_utilisation_model(rows=None):
    """Least-squares fit of mfu = a + b log10(n_chips) to reported MFU.

    Parameters
    ----------
    rows : iterable of dict, optional
        Rows with ``mfu`` [-] and ``n_chips`` [-] cells; default
        :func:`scalesim.catalog.mfu_reported` (rows missing either are ignored).

    Returns
    -------
    dict
        ``intercept`` [-], ``slope_per_decade`` [-], ``r2`` [-], ``rmse`` [-], ``residual_p10``,
        ``residual_p90`` [-] (numpy's default linear-interpolation percentiles) and ``n_points``.

    Notes
    -----
    Ordinary least squares, x = log10(n_chips). On the shipped table (50 rows): a = 0.548175,
    b = -0.0481129 per decade, R^2 = 0.083, RMSE = 0.115, residual p10/p90 = -0.127/+0.160.
    """
    rows = catalog.mfu_reported() if rows is None else rows
    pts = [(parse_number(r.get("n_chips")), parse_number(r.get("mfu"))) for r in rows]
    pts = [(n, m) for n, m in pts if n and m is not None]
    if len(pts) < 3:
        raise ValueError(f"rows must hold at least 3 rows with mfu and n_chips, got {len(pts)}")
    x = np.log10([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    slope, intercept = np.polyfit(x, y, 1)
    res = y - (intercept + slope * x)
    p10, p90 = np.percentile(res, [10, 90])
    return {"intercept": float(intercept), "slope_per_decade": float(slope),
            "r2": float(1.0 - res.var() / y.var()), "rmse": float(np.sqrt(np.mean(res ** 2))),
            "residual_p10": float(p10), "residual_p90": float(p90), "n_points": len(pts)}


def run_implied_mfu(row):
    """MFU implied by a published run's own figures [-], or ``None`` where an input is missing.

    Notes
    -----
    mfu = C / (chip_hours x 3600 x P_peak), C = 6 N_active D (or the reported FLOPs),
    P_peak the dense bf16 peak (fp16 on V100). Chip-hours include downtime where the source's do,
    so this is a goodput-weighted MFU, which is what a planner needs.
    """
    hw = hardware_of(row)
    flop = training_flop(row)
    ch = parse_number(row.get("chip_hours"))
    if hw is None or not flop or not ch or row.get("row_type", "").startswith(("aggregate", "LCA")):
        return None
    return flop / (ch * S_PER_H * _peak_flop_per_s(hw))


#: Pseudo-observations of the pooled median added to each accelerator generation's median in
#: :func:`fit_run_utilisation` (``by='generation'``). Fixed a priori at 2 (not tuned on the runs):
#: a generation seen once is pulled 2/3 of the way to the pooled median, one seen 8 times 1/5.
PRIOR_WEIGHT_GENERATION = 2.0

#: Codes of a run's ``compute_caveat`` column saying that 6 N D is not a point estimate of its
#: compute (token count a bound, model pruned / distilled / continued from another), with the
#: reason :func:`compute_caveat` gives. The codes are read off the notes by ``tools/build_data.py``.
COMPUTE_CAVEATS = runs_data.COMPUTE_CAVEATS


def compute_caveat(row):
    """Why 6 N D is not a point estimate of a run's compute, from its ``compute_caveat`` codes ('' if none)."""
    return "; ".join(COMPUTE_CAVEATS[code] for code in runs_data.compute_caveats(row))


def run_group(row):
    """Key shared by rows that describe the same training run (or a copy of it), or ``None``.

    (organisation, generation, N active, D) with the organisation's first word in lower case and
    N and D rounded to 2 significant figures: Llama 3 8B and Llama 3.1 8B (Meta, same N, 15T
    tokens, same cluster) share a key; LLaMA-7B (Meta) and MPT-7B (MosaicML), the same N and D on
    A100s, do not. Leave-one-out refits leave the whole group out. Third-party re-estimates are
    never fitted on (see :func:`fit_run_utilisation`).
    """
    hw = hardware_of(row)
    n = parse_number(row.get("n_params_active")) or parse_number(row.get("n_params"))
    d = parse_number(row.get("n_tokens"))
    if hw is None or not n or not d:
        return None
    org = (row.get("organisation") or "").lower().split()
    return org[0] if org else "", hw.generation, float(f"{n:.1e}"), float(f"{d:.1e}")


def fit_run_utilisation(rows=None, *, exclude=(), by=None, prior_weight=PRIOR_WEIGHT_GENERATION):
    """MFU model calibrated on the published runs' implied MFU.

    Parameters
    ----------
    rows : iterable of dict, optional
        Published runs; default :func:`scalesim.runs.published_runs`. Third-party
        re-estimates (``row_type`` 'third-party ...') duplicate a primary row and are not used.
    exclude : collection of str
        ``model`` names to leave out (leave-one-out refits).
    by : {None, 'generation'}
        ``None``: one constant (the median). ``'generation'``: also one value per accelerator
        generation (:attr:`scalesim.catalog.Hardware.generation`), the generation's median shrunk toward the
        pooled median.
    prior_weight : float
        Pseudo-observations of the pooled median in the shrinkage [-]; default
        :data:`PRIOR_WEIGHT_GENERATION`.

    Returns
    -------
    dict
        ``mfu`` (median) [-], ``p10``, ``p90`` [-], ``n_points`` and ``points`` ({model: mfu});
        with ``by='generation'`` also ``by_generation`` ({generation: {'mfu', 'median',
        'n_points'}}).

    Notes
    -----
    mfu_i = C_i / (chip_hours_i x 3600 x P_peak,i). On the shipped table (29 runs): median 0.318,
    p10/p90 0.105/0.484 (Llama 3.2 1B 0.05 to LaMDA 0.57). By generation,
    mfu_g = (n_g median_g + k median) / (n_g + k), k = ``prior_weight``; a generation without runs
    gets the pooled median. On the shipped table: A100 0.379 (11 runs), H100 0.172 (9), TPUv3 0.348 (6).
    """
    if by not in (None, "generation"):
        raise ValueError(f"by must be one of (None, 'generation'), got {by!r}")
    rows = runs_data.published_runs() if rows is None else rows
    excluded = set(exclude)
    use = [r for r in rows if r["model"] not in excluded and not r.get("row_type", "").startswith("third-party")]
    pts = {r["model"]: run_implied_mfu(r) for r in use}
    pts = {k: v for k, v in pts.items() if v is not None}
    if not pts:
        raise ValueError("rows hold no run with FLOPs, chip-hours and a catalogue accelerator")
    v = np.array(list(pts.values()))
    med = float(np.median(v))
    out = {"mfu": med, "p10": float(np.percentile(v, 10)), "p90": float(np.percentile(v, 90)),
           "n_points": len(pts), "points": pts}
    if by == "generation":
        gens = {r["model"]: hardware_of(r).generation for r in use if r["model"] in pts}
        out["by_generation"] = {}
        for g in sorted(set(gens.values())):
            vg = np.array([pts[m] for m, gm in gens.items() if gm == g])
            mg = float(np.median(vg))
            out["by_generation"][g] = {"mfu": (len(vg) * mg + prior_weight * med) / (len(vg) + prior_weight),
                                       "median": mg, "n_points": len(vg)}
    return out


# ----------------------------------------------------------------------------- hierarchical
#: Accelerator named in an Epoch AI ``hardware`` cell ("NVIDIA A100 SXM4 80 GB", "Google TPU v3").
_EPOCH_ACCELERATOR = re.compile(r"\b(A100|H100|H200|H800|B200|V100|MI\d{3}X?|TPU ?v\d[a-z]?)S?\b", re.IGNORECASE)


def epoch_generation(hardware):
    """Accelerator generation of an Epoch AI ``hardware`` cell, or ``None``.

    ``None`` where the cell names several accelerators, none, or one the catalogue does not hold
    (A800, MI250, Trainium, Ascend): a generation is only pooled with catalogue silicon.
    """
    text = (hardware or "").strip()
    m = _EPOCH_ACCELERATOR.search(text)
    if not m or "," in text or ";" in text:
        return None
    try:
        return catalog.get_hardware(m.group(1).replace(" ", "")).generation
    except ValueError:
        return None


def _name_key(name):
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


def epoch_duplicates(mfu_row, runs):
    """``model`` names of published runs that an Epoch AI MFU row describes (same run, twice).

    Same accelerator generation, and one normalised name (lower-case letters and digits) a prefix
    of the other: 'GPT-3 175B (davinci)' = 'GPT-3 175B', 'Switch' = 'Switch Transformer 1500B',
    'Llama 2-70B' = 'Llama 2 70B'; 'Flan-PaLM 540B' != 'PaLM 540B'. Reads names only, never outcomes.
    """
    gen, key = epoch_generation(mfu_row.get("hardware")), _name_key(mfu_row.get("system"))
    if gen is None or not key:
        return []
    out = []
    for r in runs:
        hw, rk = hardware_of(r), _name_key(r.get("model"))
        if hw is not None and rk and hw.generation == gen and (rk.startswith(key) or key.startswith(rk)):
            out.append(r["model"])
    return out


def fit_hierarchical_utilisation(rows=None, mfu_rows=None, *, exclude=(), prior_weight=PRIOR_WEIGHT_GENERATION):
    """Effective MFU per accelerator generation from the published runs *and* Epoch AI's reported MFU.

    Parameters
    ----------
    rows : iterable of dict, optional
        Published runs; default :func:`scalesim.runs.published_runs` (third-party re-estimates
        are not fitted on, see :func:`fit_run_utilisation`).
    mfu_rows : iterable of dict, optional
        Reported MFU rows (``system``, ``hardware``, ``mfu``); default
        :func:`scalesim.catalog.mfu_reported`.
    exclude : collection of str
        Run ``model`` names to leave out (leave-one-out refits).
    prior_weight : float
        Pseudo-runs given to a generation's prior [-]; default :data:`PRIOR_WEIGHT_GENERATION`.

    Returns
    -------
    dict
        ``eta`` [-] (effective / reported MFU), ``pooled`` [-] (median run-implied MFU, the value
        for a generation with neither data), ``ratio_p10``, ``ratio_p90`` [-] (in-sample
        implied / fitted MFU over the runs), ``n_runs``, ``n_reported`` and ``by_generation``
        ({generation: {'mfu', 'run_median', 'n_runs', 'reported_median', 'n_reported', 'prior'}}).

    Notes
    -----
    Two levels. Epoch AI's table reports MFU *while running*; the runs' chip-hours give an
    *effective* MFU that includes restarts, evaluation and idle time (:func:`run_implied_mfu`).
    With r_g the median reported MFU of generation g and eta = median_i(mfu_i / r_g(i)) over the
    runs whose generation has reported MFU, the prior of g is eta r_g (the pooled run median where
    g has no reported MFU), and

        mfu_g = (n_g m_g + k eta r_g) / (n_g + k),

    with m_g, n_g the median and count of g's run-implied MFU and k = ``prior_weight`` (a
    generation without runs gets its prior). Reported-MFU rows that describe a published run with
    an implied MFU (:func:`epoch_duplicates`) are dropped, so no run is counted twice and a left-out
    run's own reported MFU never informs its prediction; rows for runs without chip-hours (OPT-175B,
    GLaM, Megatron-Turing NLG) are kept, as they are the only figure for those runs. Shipped data
    (29 runs, 34 reported rows): eta = 0.777, A100 0.385, H100 0.162, TPUv3 0.358, TPUv4 0.257,
    V100 0.183; implied / fitted p10/p90 0.646/1.591 (:data:`scalesim.models.hardware.MFU_MODEL_HIERARCHICAL`).
    """
    rows = tuple(runs_data.published_runs() if rows is None else rows)
    mfu_rows = catalog.mfu_reported() if mfu_rows is None else mfu_rows
    # runs with an implied MFU before anything is left out: their reported-MFU rows are dropped even
    # when the run itself is left out, so a left-out run's own figures never reach its prediction
    implied = fit_run_utilisation(rows)["points"]
    counted_rows = [r for r in rows if r["model"] in implied]
    runs = {m: v for m, v in implied.items() if m not in set(exclude)}
    gens = {r["model"]: hardware_of(r).generation for r in rows if r["model"] in runs}
    reported = {}
    for r in mfu_rows:
        g, m = epoch_generation(r.get("hardware")), parse_number(r.get("mfu"))
        if g is not None and m is not None and not epoch_duplicates(r, counted_rows):
            reported.setdefault(g, []).append(m)
    r_med = {g: float(np.median(v)) for g, v in reported.items()}
    ratios = [runs[m] / r_med[g] for m, g in gens.items() if g in r_med]
    if not ratios:
        raise ValueError("no run shares an accelerator generation with the reported-MFU rows: eta cannot be fitted")
    eta = float(np.median(ratios))
    pooled = float(np.median(list(runs.values())))
    by_gen = {}
    for g in sorted(set(gens.values()) | set(r_med)):
        v = [runs[m] for m, gm in gens.items() if gm == g]
        prior = eta * r_med[g] if g in r_med else pooled
        med = float(np.median(v)) if v else float("nan")
        mfu = (len(v) * med + prior_weight * prior) / (len(v) + prior_weight) if v else prior
        by_gen[g] = {"mfu": mfu, "run_median": med, "n_runs": len(v), "reported_median": r_med.get(g, float("nan")),
                     "n_reported": len(reported.get(g, ())), "prior": prior}
    fitted = np.array([runs[m] / by_gen[g]["mfu"] for m, g in gens.items()])
    p10, p90 = np.percentile(fitted, [10, 90])
    return {"eta": eta, "pooled": pooled, "ratio_p10": float(p10), "ratio_p90": float(p90),
            "n_runs": len(runs), "n_reported": sum(map(len, reported.values())), "by_generation": by_gen}


# ----------------------------------------------------------------------------- power
def _measurement_points():
    """(family, label, system power / TDP) from the shipped measurements (see power_model.csv)."""
    pts = []
    for r in runs_data.published_runs():
        if r["power_provenance"] != "measured_system_average":  # not borrowed, derived or second-hand
            continue
        hw = hardware_of(r)
        p = parse_number(r.get("chip_power_w"))
        if hw is None or p is None or hw.tdp_w is None:
            continue
        pts.append((hw.family, r["model"], p / hw.tdp_w))
    # 8xH100 node measurements, as fractions of the DGX H100 rating (systems.csv) per GPU
    dgx = next(s for s in catalog.read_table("systems.csv") if s["system"].startswith("NVIDIA DGX H100"))
    per_gpu_rating_w = float(dgx["max_system_power_kw"]) * W_PER_KW / 8
    h100 = catalog.get_hardware("H100-SXM5-80GB")
    for r in catalog.read_table("power_measurements.csv"):
        if r["item"].startswith("8x H100"):
            pts.append((h100.family, r["item"], float(r["fraction_of_rating"]) * per_gpu_rating_w / h100.tdp_w))
    return pts


def fit_power_model(source="measurements", *, rows=None, exclude=()):
    """Per-family average power per accelerator over TDP while training [-].

    Parameters
    ----------
    source : {'measurements', 'runs'}
        ``'measurements'``: measured system power per accelerator (Patterson et al. 2021 Table 4
        for TPUs and V100 runs, 8xH100 node measurements); reproduces ``data/power_model.csv``.
        ``'runs'``: the power the published runs *assumed* (``chip_power_w`` / TDP; mostly TDP).
    rows : iterable of dict, optional
        Published runs for ``source='runs'``; default :func:`scalesim.runs.published_runs`.
    exclude : collection of str
        ``model`` names to leave out (leave-one-out refits, ``source='runs'``).

    Returns
    -------
    dict
        ``{family: {'value': median, 'low': min, 'high': max, 'n_points': n, 'points': {label: ratio}}}``.

    Notes
    -----
    f = P_avg / TDP with P_avg the average IT power per accelerator incl. its host share. For the
    8xH100 node: P_avg = fraction x 10.2 kW / 8. 'measurements' uses the runs whose
    ``power_provenance`` is 'measured_system_average'; 'runs' leaves out those whose power was
    derived from their own energy ('derived_from_energy', circular) or borrowed from another run.
    Shipped data, 'measurements': gpu 1.262 (1.10-1.494, 4 points), tpu 0.642 (0.544-0.743,
    5 points); 'runs': gpu 1.00 (0.875-1.10, 21 runs, TDP-based accounting), tpu 0.641.
    """
    if source == "measurements":
        pts = _measurement_points()
    elif source == "runs":
        rows = runs_data.published_runs() if rows is None else rows
        pts = []
        for r in rows:
            provenance = runs_data.check_run(r)["power_provenance"]
            hw = hardware_of(r)
            p = parse_number(r.get("chip_power_w"))
            if (r["model"] in set(exclude) or hw is None or p is None or hw.tdp_w is None
                    or provenance in ("derived_from_energy", "borrowed") or r.get("row_type") != "primary"):
                continue
            pts.append((hw.family, r["model"], p / hw.tdp_w))
    else:
        raise ValueError(f"source must be one of ('measurements', 'runs'), got {source!r}")
    out = {}
    for fam in sorted({p[0] for p in pts}):
        d = {label: ratio for f, label, ratio in pts if f == fam}
        v = np.array(list(d.values()))
        out[fam] = {"value": float(np.median(v)), "low": float(v.min()), "high": float(v.max()),
                    "n_points": len(v), "points": d}
    return out


# ----------------------------------------------------------------------------- leave-one-out
def leave_one_out(fit, rows=None, *, models=None):
    """Refit ``fit`` once per run with that run left out.

    Parameters
    ----------
    fit : callable
        ``fit(rows, exclude=(model,))``, e.g. :func:`fit_run_utilisation` or
        ``functools.partial(fit_power_model, 'runs')``.
    rows : iterable of dict, optional
        Published runs; default :func:`scalesim.runs.published_runs`.
    models : iterable of str, optional
        Runs to leave out in turn; default every row's ``model``.

    Returns
    -------
    dict
        ``{model: fit result without that model}``.
    """
    rows = tuple(runs_data.published_runs() if rows is None else rows)
    models = [r["model"] for r in rows] if models is None else list(models)
    return {m: fit(rows=rows, exclude=(m,)) for m in models}


# ----------------------------------------------------------------------------- structural x goodput
def run_structural_mfu(row, *, parameters=None):
    """Structural MFU (:func:`scalesim.models.parallelism.structural_mfu`) of a run's N, chips and chip [-].

    ``None`` where the run lacks parameters, a chip count or one accelerator type. Total
    parameters set memory and the plan; active parameters (MoE) set FLOPs.
    """
    from scalesim.chain.training_throughput import hardware_arrays
    from scalesim.models import parallelism

    hw = hardware_of(row)
    n_total = parse_number(row.get("n_params")) or parse_number(row.get("n_params_active"))
    n_active = parse_number(row.get("n_params_active")) or n_total
    n_chips = parse_number(row.get("n_chips"))
    if hw is None or not n_total or not n_chips:
        return None
    dtype = "bf16" if hw.peak_tflop_per_s["bf16"] is not None else "fp16"
    arrays = hardware_arrays(np.array([hw.hardware_id]), dtype)
    m = parallelism.structural_mfu(n_total, n_chips, {k: v[0] for k, v in arrays.items()},
                                   n_active_params=min(n_active, n_total), parameters=parameters)
    return float(m) if np.isfinite(m) else None


def fit_structural_goodput(rows=None, *, exclude=(), n_iter=8):
    """Goodput of published runs given the structural throughput model: effective / structural MFU.

    Parameters
    ----------
    rows : iterable of dict, optional
        Published runs (default: the shipped table).
    exclude : iterable of str
        Run names (``model``) left out, e.g. a run and its duplicates for leave-one-out.
    n_iter : int
        Fixed-point iterations (see Notes); 8 converge to 1e-12 on the shipped table.

    Returns
    -------
    dict
        ``goodput`` (median ratio) [-]; ``ratios`` [-], the residual pool: each run's ratio over the
        median, sorted (the distribution ``simulate(samples=N)`` draws the goodput multiplier from);
        ``ratio_p10``/``ratio_p90`` [-], its 10th/90th percentiles at plotting positions k/(n+1) (the
        ``defaults='high'``/``'low'`` corners, the same quantiles of the same draw); ``n_runs``.

    Notes
    -----
    goodput = median_r [ (6 N_active D / (chip_hours x 3600 x peak)) / mfu_structural(N, n_chips_r, chip) ]
    over runs with N, D and chip-hours (compute caveats excluded). n_chips_r is the reported count,
    else the count :func:`scalesim.simulate` would choose (the smallest of ``CHIP_LADDER`` finishing
    within ``DEFAULT_WALL_DAYS`` at the effective MFU), which depends on the goodput: solved by
    fixed-point iteration. The goodput carries what the step model does not: restarts, evaluation,
    checkpoints, idle time and how a lab counts GPU-hours. One parameter, chosen before looking at
    residuals.

    The spread is the residual pool itself, r_i = m_i / (s_i g), drawn as an empirical distribution
    at Weibull plotting positions: the quantile at probability u interpolates linearly between order
    statistics r_(k) at u = k/(n+1) (Hyndman & Fan 1996, definition 6; ``numpy.quantile(...,
    method='weibull')``), clamped to [r_(1), r_(n)]. The interval between order statistics k and l
    holds a new exchangeable residual with probability (l - k)/(n + 1), so the draw is not widened by
    hand and nothing is tuned to a coverage figure (:func:`scalesim.validate`, ``interval_spread``).
    Shipped table (``data/published_runs.csv``, 17 runs): goodput 0.655, pool 0.568-1.806, p10/p90
    0.643/1.386 (:data:`scalesim.models.hardware.MFU_MODEL_STRUCTURAL`).

    References
    ----------
    .. [1] Hyndman & Fan 1996, "Sample Quantiles in Statistical Packages", The American
       Statistician 50(4), 361-365, doi:10.1080/00031305.1996.10473566.
    """
    rows = catalog.published_runs() if rows is None else rows
    skip = set(exclude)
    fit = [(run_implied_mfu(r), _structural_ladder(r)) for r in rows if r["model"] not in skip and not compute_caveat(r)]
    fit = [(m, lad) for m, lad in fit if m and lad is not None]
    if len(fit) < 3:
        raise ValueError(f"need at least 3 runs with N, D and chip-hours, got {len(fit)}")
    g = 0.5
    for _ in range(n_iter):
        ratios = np.array([m / s for m, lad in fit if np.isfinite(s := _structural_at(lad, g))])
        g = float(np.median(ratios))
    pool = np.sort(ratios / g)
    p10, p90 = np.quantile(pool, [0.10, 0.90], method="weibull")
    return {"goodput": g, "ratio_p10": float(p10), "ratio_p90": float(p90), "n_runs": len(ratios),
            "ratios": tuple(float(x) for x in pool)}


def _structural_at(ladder, goodput):
    """Structural MFU at the run's chip count: reported, or the chain's rule at this goodput."""
    need, counts, mfu = ladder
    if need is None:
        return mfu[0]
    ok = counts * goodput * np.nan_to_num(mfu) >= need
    return mfu[np.argmax(ok)] if ok.any() else np.nan


def _structural_ladder(row):
    """(n x mfu needed or None, candidate counts, structural MFU at each) of a run; cached per inputs."""
    n_total = parse_number(row.get("n_params")) or parse_number(row.get("n_params_active"))
    n_active = parse_number(row.get("n_params_active")) or n_total
    d = parse_number(row.get("n_tokens"))
    hw = hardware_of(row)
    if hw is None or not n_total or not d:
        return None
    return _ladder_cached(hw.hardware_id, n_total, min(n_active, n_total), d, parse_number(row.get("n_chips")))


@functools.cache
def _ladder_cached(hardware_id, n_total, n_active, n_tokens, n_chips):
    from scalesim.chain.simulation import CHIP_LADDER, DEFAULT_WALL_DAYS
    from scalesim.chain.training_throughput import hardware_arrays
    from scalesim.models import parallelism

    hw = catalog.get_hardware(hardware_id)
    dtype = "bf16" if hw.peak_tflop_per_s["bf16"] is not None else "fp16"
    arrays = {k: v[0] for k, v in hardware_arrays(np.array([hardware_id]), dtype).items()}
    counts = np.array([n_chips]) if n_chips else CHIP_LADDER
    mfu = parallelism.structural_mfu(n_total, counts, arrays, n_active_params=n_active)
    if n_chips:
        return None, counts, mfu
    need = 6.0 * n_active * n_tokens / (DEFAULT_WALL_DAYS * H_PER_DAY * S_PER_H * _peak_flop_per_s(hw))
    return need, counts, mfu
