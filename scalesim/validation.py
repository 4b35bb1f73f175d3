"""Validation of scalesim against published training runs (``data/published_runs.csv``).

Two modes, both returning an ``xarray.Dataset`` on dimension ``run`` (one entry per table row;
rows that cannot be reproduced stay in, with ``status='skipped'`` and the reason):

``'accounting'``
    Reproduce each run's reported energy and tCO2e from its *own* reported inputs (chip-hours,
    power per chip, PUE, grid intensity) in the run's own accounting basis (:data:`ENERGY_BASIS`).
    This checks scalesim's arithmetic and the table's bookkeeping, not its models.
``'prediction'``
    Predict chip-hours, wall-clock days, energy and tCO2e from what a planner knows before
    training (N, or active N for MoE; D or FLOPs; accelerator; chip count; operator PUE; grid
    intensity) with scalesim's default utilisation and power models, or with models calibrated
    on the runs themselves, refitted leave-one-out (:mod:`scalesim.calibration`).

Every number comes from :func:`scalesim.simulate`; this module only selects inputs and compares.

References
----------
.. [1] Patterson et al. 2021, "Carbon Emissions and Large Neural Network Training", arXiv:2104.10350.
.. [2] Luccioni, Viguier, Ligozat 2023, "Estimating the Carbon Footprint of BLOOM", arXiv:2211.02001.
.. [3] Touvron et al. 2023, "LLaMA", arXiv:2302.13971, Table 15; "Llama 2", arXiv:2307.09288, Table 2.
.. [4] Groeneveld et al. 2024, "OLMo", arXiv:2402.00838, Table 6.
.. [5] Granite Team, IBM 2024, "Granite 3.0 Language Models" (technical report).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from scalesim import calibration, steps
from scalesim import runs as runs_data
from scalesim.models import hardware as hw_model
from scalesim.chain.simulation import simulate
from scalesim.units import KWH_PER_MWH, W_PER_KW

MODES = ("accounting", "prediction")
QUANTITIES = ("chip_hours", "wall_days", "energy_kwh", "co2e_t")
_UNITS = {"chip_hours": ("h", "accelerator-hours"), "wall_days": ("day", "wall-clock time"),
          "energy_kwh": ("kWh", "energy (in the run's reported basis)"),
          "co2e_t": ("t", "operational emissions [tCO2e]")}
_SKIP_ROW_TYPES = ("aggregate", "LCA", "compute-only", "throughput")
_TEXT_VARS = ("method", "power_convention", "compute_caveat")
#: Utilisation models refitted without each run for leave-one-out; any registered step name
#: (:data:`scalesim.steps.UTILISATION`) or a callable is also accepted, and used as fitted.
REFIT_MFU_MODELS = ("hierarchical", "runs", "runs_by_generation", "structural")
POWER_BASES = ("row", "model")

#: Rows whose reported figures are not reproducible by construction, with the reason.
NOT_REPRODUCIBLE = {
    "GPT-3 175B [Luccioni Table 4]": "source divides Patterson's facility energy (PUE included) by PUE again "
                                     "(502 t = 1287 MWh / 1.1 x 0.429); kept to illustrate double counting",
    "OPT-175B [Luccioni Table 4 re-estimate]": "source's own figures are inconsistent (324 MWh x 0.231 = 74.8 t, "
                                               "reported 70 t)",
}


def _basis(row):
    """(energy basis, co2e basis) of a row's reported figures: 'facility', 'it' or None.

    The row's enumerated ``energy_boundary`` and ``co2e_boundary`` (:mod:`scalesim.runs`):
    energy 'it' where the source excludes PUE (BLOOM 'dynamic', OLMo GPU energy, Luccioni's
    inferred IT energy, GLM GPU-h x 400 W), else 'facility' (Patterson et al., LLaMA, Granite);
    None where no energy is reported as a number or its boundary is not stated. co2e 'it' where
    the source applies intensity to energy without PUE (BLOOM's 24.69 t), else 'facility'
    (energy x PUE x intensity); stated wherever the row gives an intensity (checked).
    """
    e = (row["energy_boundary"] or None) if calibration.parse_number(row.get("energy_mwh")) is not None else None
    return e, row["co2e_boundary"]


def _num(row, key, scale=1.0):
    v = calibration.parse_number(row.get(key))
    return np.nan if v is None else v * scale


def _rel(pred, rep):
    pred, rep = np.asarray(pred, float), np.asarray(rep, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (pred - rep) / rep
    return np.where((rep == 0) & (pred == 0), 0.0, r)


def _sim_scalar(ds, name):
    return float(ds[name]) if name in ds else np.nan


# ----------------------------------------------------------------------------- accounting
def _account_row(row, hw):
    """Reproduce one row; returns (values dict, status, reason)."""
    e_basis, c_basis = _basis(row)
    ch, p = _num(row, "chip_hours"), _num(row, "chip_power_w")
    pue, ci = _num(row, "pue"), _num(row, "grid_kgco2e_per_kwh", 1e3)  # kg/kWh -> g/kWh
    e_rep, c_rep = _num(row, "energy_mwh", KWH_PER_MWH), _num(row, "co2e_t")
    out = {"energy_basis": e_basis or "", "co2e_basis": c_basis, "energy_kwh_reported": e_rep,
           "co2e_t_reported": c_rep, "energy_kwh_predicted": np.nan, "co2e_t_predicted": np.nan,
           "it_energy_kwh": np.nan, "method": ""}
    reasons = []
    circular = row["power_provenance"] == "derived_from_energy"
    if np.isfinite(ch) and np.isfinite(p) and not circular:
        # chip-hours x power per chip (x PUE) (x intensity)
        pue_used = pue if np.isfinite(pue) else 1.0
        ds = simulate(hardware=hw.hardware_id, chip_hours=ch, chip_power_w=p, pue=pue_used,
                      grid_gco2e_per_kwh=ci if np.isfinite(ci) else 0.0)
        it, fac = _sim_scalar(ds, "it_energy_kwh"), _sim_scalar(ds, "energy_kwh")
        out.update(method="chip_hours x chip_power_w", it_energy_kwh=it)
        if e_basis == "facility" and not np.isfinite(pue):
            reasons.append("energy: reported with PUE but PUE not reported")
        elif e_basis:
            out["energy_kwh_predicted"] = fac if e_basis == "facility" else it
        else:
            reasons.append("energy: boundary not stated (energy_boundary)" if np.isfinite(e_rep)
                           else "energy: not reported as a number")
        if not np.isfinite(c_rep):
            reasons.append("co2e: not reported")
        elif not np.isfinite(ci):
            reasons.append("co2e: grid intensity not reported (only implied by the outcome)")
        elif c_basis == "facility" and not np.isfinite(pue):
            reasons.append("co2e: PUE not reported")
        else:
            out["co2e_t_predicted"] = _sim_scalar(ds, "co2e_t") if c_basis == "facility" else it * ci / 1e6
    elif (np.isfinite(e_rep) and np.isfinite(c_rep) and np.isfinite(ci) and e_basis
          and (e_basis == "it" or np.isfinite(pue))):
        # reported energy is an input here; only its tCO2e is reproduced
        pue_used = pue if np.isfinite(pue) else 1.0
        it_kwh = e_rep if e_basis == "it" else e_rep / pue_used
        # 1 kW for it_kwh hours = it_kwh of IT energy; simulate applies PUE and intensity
        ds = simulate(hardware=hw.hardware_id, chip_hours=it_kwh, chip_power_w=W_PER_KW, pue=pue_used,
                      grid_gco2e_per_kwh=ci)
        out.update(method="reported energy x PUE x intensity", it_energy_kwh=_sim_scalar(ds, "it_energy_kwh"))
        out["co2e_t_predicted"] = (_sim_scalar(ds, "co2e_t") if c_basis == "facility"
                                   else _sim_scalar(ds, "it_energy_kwh") * ci / 1e6)
        reasons.append("energy: an input (no chip-hours or power reported), not reproduced")
    else:
        if circular:
            reasons.append("chip_power_w was derived from the reported energy (circular)")
        missing = [k for k, v in (("chip_hours", ch), ("chip_power_w", p), ("energy_mwh", e_rep),
                                  ("grid_kgco2e_per_kwh", ci)) if not np.isfinite(v)]
        reasons.append("missing inputs: " + ", ".join(missing) if missing else "inputs incomplete")
    done = np.isfinite(out["energy_kwh_predicted"]) or np.isfinite(out["co2e_t_predicted"])
    return out, ("ok" if done else "skipped"), "; ".join(reasons)


# ----------------------------------------------------------------------------- prediction
def _scaled_structural(scale, spread=None):
    """The 'structural' step with its goodput scaled (a leave-one-out refit), as a step callable.

    ``spread`` (low, high): under Monte Carlo, the goodput multiplier is drawn from the triangular
    (low, 1, high) of the leave-one-out fit instead of the shipped residual pool.
    """
    def structural_refit(ctx):
        if spread is None or not ctx.defaults.sampling:
            return steps.mfu_structural(ctx) * scale
        central = steps.Context(ctx.hardware, ctx.dtype, steps.Defaults("central"), ctx.regions, ctx.inputs,
                                ctx.notes, ctx.models)
        if isinstance(spread, dict):  # jackknife+: order-statistic (Weibull plotting position) quantile
            u = ctx.defaults.uniform("mfu")
            draw = u.copy(data=np.quantile(np.asarray(spread["residuals"]), u.values, method="weibull"))
        elif len(spread) == 2:
            draw = ctx.defaults.choose(1.0, spread[0], spread[1], higher_is_worse=False, kind="mfu")
        else:  # the other runs' residual ratios: their empirical quantile at the shared uniform
            u = ctx.defaults.uniform("mfu")
            draw = u.copy(data=np.quantile(np.asarray(spread), u.values))
        return (steps.mfu_structural(central) * scale * draw).clip(0.0, 1.0)
    structural_refit.needs, structural_refit.uses = ("n_params",), ("n_chips",)
    return structural_refit


#: How a Monte Carlo interval in prediction mode draws the structural goodput multiplier:
#: ``'shipped'`` what :func:`scalesim.simulate` does (the shipped residual pool
#: ``MFU_MODEL_STRUCTURAL['draw_ratios']``, the predicted run's own ratio included, at plotting
#: positions k/(n+1); only the goodput is refitted in the fold); ``'loo_support'`` the same on the leave-one-out fit's
#: percentiles; ``'loo_quantiles'`` the triangular whose 10th/90th percentiles *are* the
#: leave-one-out fit's (:func:`scalesim.solve.uncertainty.triangular_from_quantiles`);
#: ``'loo_empirical'`` the other runs' own residual ratios (effective MFU / (structural MFU x
#: goodput), each at the goodput refitted without the predicted run), drawn by their empirical
#: quantile: a jackknife prediction interval (Barber et al. 2021, doi:10.1214/20-AOS1965);
#: ``'jackknife_plus'`` nested: each other run j's ratio to the fold's prediction when the goodput is
#: refitted without *both* the predicted run and j (its leave-one-out residual within the fold, the
#: jackknife+ of Barber et al. 2021, Sec. 3), drawn at Weibull plotting positions k/(n+1) (Hyndman &
#: Fan 1996 definition 6): the interval between order statistics k and l of n exchangeable residuals
#: holds a new one with probability (l - k)/(n + 1) (e.g. David & Nagaraja 2003, "Order Statistics",
#: 3rd ed., Wiley, doi:10.1002/0471722162, Sec. 7.2), where the linear quantile of 'loo_empirical'
#: promises 90 % and gives about 79 % for n = 15 (order statistic 1.7 to 14.3 of 15: 12.6/16). With
#: goodput the model's one multiplicative parameter, the jackknife+ values s_k g_-j m_j / (s_j g_-j)
#: do not depend on g_-j, so the nesting changes the pool only through the chip counts the 30-day rule
#: picks; the plotting positions are what widen it.
INTERVAL_SPREADS = ("loo_empirical", "jackknife_plus", "loo_quantiles", "loo_support", "shipped")
INTERVAL_QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)


def _mc_quantiles(mc, ci, c_basis):
    """``{<q>_pNN_loo: value}`` of a Monte Carlo prediction (tCO2e in the run's own basis)."""
    it = mc["it_energy_kwh"]
    mc_q = {"chip_hours": mc["chip_hours"],
            "co2e_t": None if not np.isfinite(ci) else mc["co2e_t"] if c_basis == "facility" else it * ci / 1e6}
    out = {}
    for q, da in mc_q.items():
        values = (np.full(len(INTERVAL_QUANTILES), np.nan) if da is None or "sample" not in da.dims
                  else da.quantile(list(INTERVAL_QUANTILES), dim="sample").values)
        for p, v in zip(INTERVAL_QUANTILES, values):
            out[f"{q}_p{round(100 * p):02d}_loo"] = float(v)
    return out


def _fit_runs(fit_rows, exclude):
    """(run, run-implied MFU, structural ladder) of the fit runs not excluded, as the goodput fit sees them."""
    from scalesim.calibration import utilisation as fits

    skip = set(exclude)
    for r in fit_rows:
        if r["model"] in skip or fits.compute_caveat(r):
            continue
        m, lad = fits.run_implied_mfu(r), fits._structural_ladder(r)
        if m and lad is not None:
            yield r, m, lad


def _residual_ratios(fit_rows, exclude, goodput):
    """Effective / (structural x goodput) MFU of the fit runs not excluded, as the goodput fit sees them."""
    from scalesim.calibration import utilisation as fits

    ratios = (m / (fits._structural_at(lad, goodput) * goodput) for _, m, lad in _fit_runs(fit_rows, exclude))
    return sorted(x for x in ratios if np.isfinite(x))


def _jackknife_plus_ratios(fit_rows, exclude, goodput):
    """Each fit run j's effective MFU over the fold's prediction (goodput ``goodput``) scaled to the fit
    without j: m_j / (structural_j(g_-j) x g_fold), with g_-j refitted without the excluded runs and j."""
    from scalesim.calibration import utilisation as fits

    out = []
    for r, m, lad in _fit_runs(fit_rows, exclude):
        g_j = calibration.fit_structural_goodput(fit_rows, exclude=(*exclude, r["model"]))["goodput"]
        s = fits._structural_at(lad, g_j)
        if np.isfinite(s):
            out.append(m / (s * g_j) * (g_j / goodput))  # residual under the fit without j, on the fold's scale
    return sorted(out)


def _loo_spread(fit_rows, exclude, how):
    if how == "shipped":
        return None
    fit = calibration.fit_structural_goodput(fit_rows, exclude=exclude)
    if how == "jackknife_plus":
        return {"residuals": tuple(_jackknife_plus_ratios(fit_rows, exclude, fit["goodput"]))}
    if how == "loo_empirical":
        return tuple(_residual_ratios(fit_rows, exclude, fit["goodput"]))
    if how == "loo_support":
        return fit["ratio_p10"], fit["ratio_p90"]
    from scalesim.solve.uncertainty import triangular_from_quantiles

    return triangular_from_quantiles(fit["ratio_p10"], 1.0, fit["ratio_p90"])


def _predict_row(row, hw, *, mfu_model, power_model, power_basis, loo, group, fit_rows, samples=None, seed=0,
                 spread="jackknife_plus", interval_loo=True):
    """Predict one row in-sample and leave-one-out; returns (values, status, reason)."""
    e_basis, c_basis = _basis(row)
    n = calibration.parse_number(row.get("n_params_active")) or calibration.parse_number(row.get("n_params"))
    d = calibration.parse_number(row.get("n_tokens"))
    flop = None if (n and d) else calibration.parse_number(row.get("flop"))
    n_chips = calibration.parse_number(row.get("n_chips"))
    pue, ci = _num(row, "pue"), _num(row, "grid_kgco2e_per_kwh", 1e3)
    if not (n and d) and not flop:
        return None, "skipped", "no compute: needs n_params and n_tokens, or flop"
    step = steps.UTILISATION.step(mfu_model) if mfu_model not in REFIT_MFU_MODELS[:3] else None
    if step is not None and "n_chips" in step.needs and not n_chips:
        return None, "skipped", f"n_chips not reported (the {step.name!r} MFU model depends on it)"
    n_total = calibration.parse_number(row.get("n_params"))
    if step is not None and "n_params" in step.needs and not (n and d):
        return None, "skipped", f"n_params and n_tokens not reported (the {step.name!r} MFU model depends on them)"
    tdp = runs_data.is_tdp_convention(row)  # the source's convention (power_provenance), never its outcomes

    def run_sim(exclude, mc=False):
        kw = dict(samples=samples, seed=seed) if mc else {}
        if mfu_model == "hierarchical" and exclude:
            fit = calibration.fit_hierarchical_utilisation(fit_rows, exclude=exclude)
            table = {"pooled": fit["pooled"], **{g: v["mfu"] for g, v in fit["by_generation"].items()}}
            kw["mfu"] = hw_model.mfu_hierarchical(hw.generation, table=table)  # clipped like the default
        elif mfu_model == "hierarchical":
            kw["mfu"] = "hierarchical"  # the shipped constants
        elif mfu_model == "structural":  # leave-one-out: the goodput refitted without the run
            scale = (calibration.fit_structural_goodput(fit_rows, exclude=exclude)["goodput"]
                     / hw_model.MFU_MODEL_STRUCTURAL["goodput"]) if exclude else 1.0
            width = _loo_spread(fit_rows, exclude, spread) if mc else None
            kw["mfu"] = _scaled_structural(scale, width) if exclude or width else "structural"
        elif mfu_model == "runs":
            kw["mfu"] = calibration.fit_run_utilisation(fit_rows, exclude=exclude)["mfu"]
        elif mfu_model == "runs_by_generation":
            fit = calibration.fit_run_utilisation(fit_rows, exclude=exclude, by="generation")
            kw["mfu"] = fit["by_generation"].get(hw.generation, fit)["mfu"]
        else:  # a registered utilisation step ('epoch', ...) or a callable: used as simulate uses it
            kw["mfu"] = mfu_model
        if power_basis == "row" and tdp and hw.tdp_w is not None:
            kw["chip_power_w"] = hw.tdp_w  # the source's convention: chip-hours x TDP
        elif power_model == "runs" and hw.tdp_w is not None:
            fam = calibration.fit_power_model("runs", rows=fit_rows, exclude=exclude).get(hw.family)
            if fam is not None:
                kw["chip_power_w"] = fam["value"] * hw.tdp_w
        compute = dict(n_params=n, n_tokens=d) if (n and d) else dict(flop=flop)
        if n and d and n_total and n_total > n:  # MoE: the total sets memory, the active count FLOPs
            compute.update(n_params=n_total, n_active_params=n)
        return simulate(**compute, hardware=hw.hardware_id, n_chips=n_chips,
                        pue=pue if np.isfinite(pue) else None,
                        grid_gco2e_per_kwh=ci if np.isfinite(ci) else 0.0, **kw)

    sims = {"": run_sim(())}
    if not np.isfinite(_sim_scalar(sims[""], "mfu")) and (n and d):
        return None, "skipped", f"the {mfu_model!r} MFU model finds no parallel plan that fits"
    sims["_loo"] = run_sim(group) if loo else sims[""]
    out = {"energy_basis": e_basis or "", "co2e_basis": c_basis, "flop": _sim_scalar(sims[""], "flop"),
           "n_params": n if (n and d) else np.nan, "n_tokens": d if (n and d) else np.nan,
           "n_chips": n_chips or np.nan, "pue_used": _sim_scalar(sims[""], "pue"),
           "power_convention": "tdp" if tdp else "model", "compute_caveat": calibration.compute_caveat(row),
           "chip_hours_reported": _num(row, "chip_hours"), "wall_days_reported": _num(row, "wall_days"),
           "energy_kwh_reported": _num(row, "energy_mwh", KWH_PER_MWH), "co2e_t_reported": _num(row, "co2e_t")}
    reasons = []
    for sfx, ds in sims.items():
        it = _sim_scalar(ds, "it_energy_kwh")
        out["mfu_used" + sfx] = _sim_scalar(ds, "mfu")
        out["chip_power_w_used" + sfx] = _sim_scalar(ds, "chip_power_w")
        out["chip_hours_predicted" + sfx] = _sim_scalar(ds, "chip_hours")
        out["wall_days_predicted" + sfx] = _sim_scalar(ds, "wall_days")
        out["energy_kwh_predicted" + sfx] = (_sim_scalar(ds, "energy_kwh") if e_basis == "facility"
                                             else it if e_basis == "it" else np.nan)
        out["co2e_t_predicted" + sfx] = (np.nan if not np.isfinite(ci) else _sim_scalar(ds, "co2e_t")
                                         if c_basis == "facility" else it * ci / 1e6)
    if samples:
        out.update(_mc_quantiles(run_sim(group if loo and interval_loo else (), mc=True), ci, c_basis))
    if not np.isfinite(ci):
        reasons.append("co2e: grid intensity not reported")
    if not np.isfinite(pue) and e_basis != "it":
        reasons.append("pue not reported: operator default used")
    return out, "ok", "; ".join(reasons)


# ----------------------------------------------------------------------------- public API
def validate(mode="accounting", *, runs=None, mfu_model="structural", power_model="default", power_basis="row",
             exclude_compute_caveats=False, samples=None, seed=0, interval_spread="jackknife_plus", interval_fit="loo"):
    """Compare scalesim with published training runs.

    Parameters
    ----------
    mode : {'accounting', 'prediction'}
        ``'accounting'``: reproduce each run from its own reported chip-hours, power, PUE and
        intensity. ``'prediction'``: predict from N, D, hardware, chip count, PUE and intensity.
    runs : iterable of dict, optional
        Rows in the layout of ``data/published_runs.csv``, enumerated accounting columns included
        (checked by :func:`scalesim.runs.check_run`); default :func:`scalesim.runs.published_runs`.
    mfu_model : {'structural', 'hierarchical', 'epoch', 'runs', 'runs_by_generation'} or callable
        Prediction mode only. ``'structural'`` (scalesim's default): the throughput model's MFU at
        the run's model size and chip count (the 30-day rule where no count is reported) x the
        goodput of the published runs; leave-one-out refits the goodput without the run
        (:func:`scalesim.calibration.fit_structural_goodput`). ``'hierarchical'``: effective MFU per
        accelerator generation from the runs and Epoch AI's reported MFU
        (:func:`scalesim.calibration.fit_hierarchical_utilisation`); in-sample predictions use the
        shipped constants (what :func:`scalesim.simulate` does), leave-one-out ones a refit
        without the run. ``'epoch'``: MFU(n_chips) fit on Epoch AI's reported MFU (external
        data: leave-one-out = in-sample; runs without a chip count are skipped). ``'runs'``: the median MFU
        implied by the other published runs (:func:`scalesim.calibration.fit_run_utilisation`).
        ``'runs_by_generation'``: the other runs' median per accelerator generation, shrunk toward
        the pooled median (``by='generation'``).
    power_model : {'default', 'runs'}
        Prediction mode only. ``'default'``: scalesim's measured power model
        (``data/power_model.csv``). ``'runs'``: per-family median of the power the runs assumed
        / TDP (mostly TDP), refitted without the predicted run.
    power_basis : {'row', 'model'}
        Prediction mode only. ``'row'``: where the run's ``power_provenance`` says its source
        counted chip-hours x TDP (``'tdp'``, ``'peak_capacity'``: LLaMA, Llama 2-4, BLOOM, GLM,
        Granite), predict with power =
        catalogue TDP, the convention being predicted; other rows use ``power_model``. Reads the
        convention only, never the row's power or outcomes. ``'model'``: ``power_model`` for all.
    exclude_compute_caveats : bool
        Prediction mode only. Skip (and never fit on) runs whose ``compute_caveat`` codes say that
        6 N D is not a point estimate of their compute (:func:`scalesim.calibration.compute_caveat`:
        token count a bound, pruned or distilled model). The rule reads codes, never outcomes.
    samples : int, optional
        Prediction mode only: Monte Carlo draws of every default (``simulate(..., samples=N)``) for
        each run's leave-one-out prediction. Adds ``chip_hours_quantiles_loo`` and
        ``co2e_t_quantiles_loo`` on (run, quantile) at :data:`INTERVAL_QUANTILES`, and ``<q>_in_50_loo``
        / ``<q>_in_90_loo`` (1 where the reported value lies in the central 50 % / 90 % interval);
        :func:`interval_coverage` summarises them.
    seed : int
        Seed of the draws (the same for every run: common random numbers).
    interval_spread : {'jackknife_plus', 'loo_empirical', 'loo_quantiles', 'loo_support', 'shipped'}
        How the structural goodput multiplier is drawn (:data:`INTERVAL_SPREADS`): by default from
        the other runs' residual ratios, each under the fit without the predicted run and itself, at
        order-statistic plotting positions (jackknife+).
    interval_fit : {'loo', 'in_sample'}
        ``'loo'``: each run's interval is fitted without it (nested: goodput and spread refitted in the
        fold). ``'in_sample'``: on every run, itself included (optimistic; for comparison only). The
        variables keep their ``_loo`` names.

    Returns
    -------
    xarray.Dataset
        On dim ``run`` (coords ``run``, ``hardware``, ``hardware_family``, ``reliability_tier``):
        ``<q>_reported``, ``<q>_predicted``, ``<q>_rel_error`` [-] for q in ``energy_kwh`` [kWh]
        and ``co2e_t`` [t] (and in prediction mode ``chip_hours`` [h], ``wall_days`` [day], and the
        leave-one-out ``<q>_predicted_loo`` / ``<q>_rel_error_loo``; refits leave out every
        row of the same run, :func:`scalesim.calibration.run_group`), ``energy_basis``
        ('facility' = with PUE, 'it' = before PUE), ``status`` ('ok' / 'skipped') and
        ``skip_reason`` (why a row or a quantity is not reproduced).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not callable(mfu_model) and mfu_model not in REFIT_MFU_MODELS + steps.UTILISATION.names():
        raise ValueError(f"mfu_model must be a callable or one of {REFIT_MFU_MODELS + steps.UTILISATION.names()}, "
                         f"got {mfu_model!r}")
    if power_basis not in POWER_BASES:
        raise ValueError(f"power_basis must be one of {POWER_BASES}, got {power_basis!r}")
    if power_model not in ("default", "runs"):
        raise ValueError(f"power_model must be one of ('default', 'runs'), got {power_model!r}")
    if samples is not None and mode != "prediction":
        raise ValueError(f"samples: intervals are for mode='prediction', got mode={mode!r}")
    if samples is not None and (isinstance(samples, bool) or int(samples) != samples or samples < 2):
        raise ValueError(f"samples must be a whole number >= 2, got {samples!r}")
    if interval_spread not in INTERVAL_SPREADS:
        raise ValueError(f"interval_spread must be one of {INTERVAL_SPREADS}, got {interval_spread!r}")
    if interval_fit not in ("loo", "in_sample"):
        raise ValueError(f"interval_fit must be 'loo' or 'in_sample', got {interval_fit!r}")
    runs = runs_data.published_runs() if runs is None else tuple(map(runs_data.check_run, runs))
    loo = mode == "prediction" and (mfu_model in REFIT_MFU_MODELS or power_model == "runs")
    caveat = {r["model"]: calibration.compute_caveat(r) if exclude_compute_caveats else "" for r in runs}
    fit_rows = tuple(r for r in runs if not caveat[r["model"]])
    groups = {}
    for r in runs:
        groups.setdefault(calibration.run_group(r) or r["model"], []).append(r["model"])
    records, hw_ids, fams, statuses, reasons = [], [], [], [], []
    for row in runs:
        hw = calibration.hardware_of(row)
        hw_ids.append(hw.hardware_id if hw else row.get("accelerator", ""))
        fams.append(hw.family if hw else "")
        rtype = row.get("row_type", "")
        values, status, reason = None, "skipped", ""
        if rtype.startswith(_SKIP_ROW_TYPES):
            reason = f"row type '{rtype}': not a single training run with comparable outcomes"
        elif mode == "prediction" and rtype.startswith("third-party"):
            reason = "third-party re-estimate of a run listed as its own row"
        elif mode == "prediction" and caveat[row["model"]]:
            reason = f"compute not a point estimate: {caveat[row['model']]}"
        elif mode == "accounting" and row["model"] in NOT_REPRODUCIBLE:
            reason = NOT_REPRODUCIBLE[row["model"]]
        elif hw is None:
            reason = f"accelerator {row.get('accelerator', '')!r} is not one catalogue accelerator"
        elif mode == "accounting":
            values, status, reason = _account_row(row, hw)
        else:
            group = tuple(groups[calibration.run_group(row) or row["model"]])
            values, status, reason = _predict_row(row, hw, mfu_model=mfu_model, power_model=power_model,
                                                  power_basis=power_basis, loo=loo, group=group,
                                                  fit_rows=fit_rows, samples=samples, seed=seed,
                                                  spread=interval_spread, interval_loo=interval_fit == "loo")
        records.append(values or {})
        statuses.append(status)
        reasons.append(reason)
    ds = _to_dataset(runs, records, hw_ids, fams, statuses, reasons, mode=mode, mfu_model=mfu_model,
                     power_model=power_model, power_basis=power_basis, loo=loo,
                     exclude_compute_caveats=exclude_compute_caveats)
    if samples:
        ds = _intervals(ds)
        ds.attrs.update(samples=int(samples), seed=int(seed), interval_spread=interval_spread, interval_fit=interval_fit)
    return ds


def _intervals(ds):
    """Gather ``<q>_pNN_loo`` into ``<q>_quantiles_loo`` (run, quantile) and flag the reported values inside."""
    qs = xr.DataArray(list(INTERVAL_QUANTILES), dims="quantile")
    for q in ("chip_hours", "co2e_t"):
        names = [f"{q}_p{round(100 * p):02d}_loo" for p in INTERVAL_QUANTILES]
        if not all(n in ds for n in names):
            continue
        band = xr.concat([ds[n] for n in names], dim=qs).transpose("run", "quantile").assign_coords(quantile=qs)
        ds = ds.drop_vars(names)
        units, long = _UNITS[q]
        ds[f"{q}_quantiles_loo"] = band.assign_attrs(units=units, long_name=f"{long}, leave-one-out Monte Carlo quantiles")
        rep = ds[f"{q}_reported"]
        for width, (lo, hi) in {50: (0.25, 0.75), 90: (0.05, 0.95)}.items():
            inside = (rep >= band.sel(quantile=lo)) & (rep <= band.sel(quantile=hi))
            known = np.isfinite(rep) & band.sel(quantile=lo).notnull()
            ds[f"{q}_in_{width}_loo"] = inside.astype(float).where(known).drop_vars("quantile").assign_attrs(
                units="1", long_name=f"reported {long} inside the central {width} % interval")
    return ds


def interval_coverage(ds, *, mask=None):
    """Share of runs whose reported value lies in the central 50 % and 90 % leave-one-out intervals.

    Parameters
    ----------
    ds : xarray.Dataset
        :func:`validate` output with ``samples``.
    mask : array_like of bool, optional
        Runs to count (default :func:`criterion_mask` for chip-hours, every run with a reported
        tCO2e for tCO2e).

    Returns
    -------
    dict
        ``{q: {'n': runs, 'in_50': share [-], 'in_90': share [-], 'below_5': share, 'above_95': share}}``
        for q in ``chip_hours``, ``co2e_t``. Targets: 40-60 % and 85-95 %.
    """
    if "chip_hours_in_90_loo" not in ds:
        raise ValueError("interval_coverage needs validate(mode='prediction', samples=N)")
    base = criterion_mask(ds) if mask is None else xr.DataArray(np.asarray(mask, bool), dims="run")
    out = {}
    for q in ("chip_hours", "co2e_t"):
        if f"{q}_in_90_loo" not in ds:
            continue
        ok = base & ds[f"{q}_in_90_loo"].notnull()
        band, rep = ds[f"{q}_quantiles_loo"].where(ok, drop=True), ds[f"{q}_reported"].where(ok, drop=True)
        n = int(ok.sum())
        out[q] = {"n": n, "in_50": float(ds[f"{q}_in_50_loo"].where(ok).sum()) / max(n, 1),
                  "in_90": float(ds[f"{q}_in_90_loo"].where(ok).sum()) / max(n, 1),
                  "below_5": float((rep < band.sel(quantile=0.05)).sum()) / max(n, 1),
                  "above_95": float((rep > band.sel(quantile=0.95)).sum()) / max(n, 1)}
    return out


def _to_dataset(runs, records, hw_ids, fams, statuses, reasons, *, mode, mfu_model, power_model, power_basis,
                loo, exclude_compute_caveats):
    names = sorted({k for r in records for k in r})
    coords = {"run": [r["model"] for r in runs], "hardware": ("run", hw_ids), "hardware_family": ("run", fams),
              "reliability_tier": ("run", [r.get("reliability_tier", "") for r in runs])}
    data = {}
    for k in names:
        text = k.endswith("basis") or k in _TEXT_VARS
        vals = [r.get(k, "" if text else np.nan) for r in records]
        if text:
            data[k] = ("run", np.array([str(v) for v in vals], dtype=object))
        else:
            data[k] = ("run", np.array(vals, dtype=float))
    data["status"] = ("run", np.array(statuses, dtype=object))
    data["skip_reason"] = ("run", np.array(reasons, dtype=object))
    ds = xr.Dataset(data, coords=coords)
    qs = ("energy_kwh", "co2e_t") if mode == "accounting" else QUANTITIES
    for q in qs:
        for sfx in ("", "_loo") if mode == "prediction" else ("",):
            pred = f"{q}_predicted{sfx}"
            if pred not in ds:
                ds[pred] = ("run", np.full(ds.sizes["run"], np.nan))
            if f"{q}_reported" not in ds:
                ds[f"{q}_reported"] = ("run", np.full(ds.sizes["run"], np.nan))
            ds[f"{q}_rel_error{sfx}"] = ("run", _rel(ds[pred].values, ds[f"{q}_reported"].values))
    for q in qs:
        units, long = _UNITS[q]
        for v in [n for n in ds.data_vars if n.startswith(q + "_")]:
            kind = v[len(q) + 1:]
            if kind.startswith("rel_error"):
                ds[v].attrs.update(units="1", long_name=f"relative error of {long}",
                                   description="(predicted - reported) / reported")
            else:
                ds[v].attrs.update(units=units, long_name=f"{long}, {kind.replace('_', ' ')}")
    for v, (units, long) in {"it_energy_kwh": ("kWh", "IT energy (before PUE)"), "flop": ("FLOP", "training compute"),
                             "n_chips": ("1", "accelerators"), "n_params": ("1", "parameters (active for MoE)"),
                             "n_tokens": ("1", "training tokens"), "pue_used": ("1", "PUE used"),
                             "mfu_used": ("1", "MFU used"), "mfu_used_loo": ("1", "MFU used (leave-one-out)"),
                             "chip_power_w_used": ("W", "power per accelerator used"),
                             "chip_power_w_used_loo": ("W", "power per accelerator used (leave-one-out)")}.items():
        if v in ds:
            ds[v].attrs.update(units=units, long_name=long)
    ds.attrs.update(mode=mode, source="scalesim/data/published_runs.csv",
                    description="scalesim vs published training runs; rows not reproduced keep status "
                                "'skipped' and a skip_reason")
    if mode == "prediction":
        ds.attrs.update(mfu_model=mfu_model if isinstance(mfu_model, str) else f"callable {getattr(mfu_model, '__name__', '?')}", power_model=power_model, power_basis=power_basis,
                        exclude_compute_caveats=int(exclude_compute_caveats),
                        loo=("refitted without each run (and its duplicates)" if loo else
                             "defaults are fitted on external data: leave-one-out equals in-sample"))
    return ds


def criterion_mask(ds):
    """Runs of the done-criterion: N and D known (not only FLOPs) and chip-hours reported [bool]."""
    if "n_params" not in ds:
        return xr.zeros_like(ds["status"], dtype=bool)
    return ((ds["status"] == "ok") & np.isfinite(ds["n_params"]) & np.isfinite(ds["n_tokens"])
            & np.isfinite(ds["chip_hours_reported"]))


def validation_summary(ds, *, mask=None, n_boot=0, ci=0.90, seed=0):
    """Median and maximum absolute relative error per quantity.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`validate`.
    mask : array_like of bool, optional
        Runs to summarise (e.g. :func:`criterion_mask`); default all compared runs.
    n_boot : int
        Bootstrap resamples of the runs for an interval on each median (0: none).
    ci : float
        Coverage of the percentile bootstrap interval [-], in (0, 1).
    seed : int
        Seed of the resampling (the interval is reproducible).

    Returns
    -------
    dict
        ``{'<q>[_loo]': {'n': rows compared, 'median_abs_rel_error': [-], 'max_abs_rel_error': [-],
        'worst_run': model[, 'median_ci': (low, high) [-]]}}`` plus ``'n_runs'`` and ``'n_skipped'``.

    Notes
    -----
    With a dozen or two runs a median error is itself uncertain: the percentile bootstrap
    (Efron & Tibshirani 1993, ch. 13) resamples the runs with replacement ``n_boot`` times.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    if int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"n_boot must be a whole number >= 0, got {n_boot!r}")
    if mask is not None:
        ds = ds.isel(run=np.asarray(mask, bool))
    out = {"mode": ds.attrs.get("mode", ""), "n_runs": int(ds.sizes["run"]),
           "n_skipped": int((ds["status"] == "skipped").sum())}
    rng = np.random.default_rng(seed)
    for v in ds.data_vars:
        if "_rel_error" not in v:
            continue
        err = np.abs(ds[v].values)
        ok = np.isfinite(err)
        key = v.replace("_rel_error", "")
        if not ok.any():
            continue
        out[key] = {"n": int(ok.sum()), "median_abs_rel_error": float(np.median(err[ok])),
                    "max_abs_rel_error": float(err[ok].max()),
                    "worst_run": str(ds["run"].values[ok][np.argmax(err[ok])])}
        if n_boot:
            e = err[ok]
            medians = np.median(e[rng.integers(0, e.size, size=(int(n_boot), e.size))], axis=1)
            lo, hi = np.percentile(medians, [50 * (1 - ci), 50 * (1 + ci)])
            out[key]["median_ci"] = (float(lo), float(hi))
    return out


def format_validation_summary(ds, *, n_boot=2000, ci=0.90):
    """Readable summary of :func:`validate` output: one line per quantity (and leave-one-out).

    Prediction mode adds the same over the runs with N, D and chip-hours (:func:`criterion_mask`).
    """
    blocks = [("all compared runs", None)]
    if ds.attrs.get("mode") == "prediction":
        blocks.append(("runs with N, D and reported chip-hours", criterion_mask(ds)))
    lines = []
    for title, mask in blocks:
        s = validation_summary(ds, mask=mask, n_boot=n_boot, ci=ci)
        lines += [f"{ds.attrs.get('mode', '')} mode, {title}: |relative error|",
                  f"  {'quantity':<18} {'n':>3} {'median':>8} {f'{ci:.0%} interval':>16} {'max':>8}  worst run"]
        for key in (k for k in s if isinstance(s[k], dict)):
            r = s[key]
            lo, hi = r.get("median_ci", (np.nan, np.nan))
            lines.append(f"  {key:<18} {r['n']:>3} {r['median_abs_rel_error']:>8.1%} {f'{lo:.1%}-{hi:.1%}':>16} "
                         f"{r['max_abs_rel_error']:>8.1%}  {r['worst_run']}")
        lines.append("")
    return "\n".join(lines).rstrip()


def format_validation_table(ds, *, width=38):
    """Readable text table of :func:`validate` output (one line per run, skipped rows last)."""
    qs = [q for q in QUANTITIES if f"{q}_rel_error" in ds]
    loo = "chip_hours_rel_error_loo" in ds and ds.attrs.get("loo", "").startswith("refitted")
    head = f"{'run':<{width}} {'hw':<15} {'tier':<4}"
    for q in qs:
        head += f" {q + ' pred':>17} {'reported':>11} {'err':>7}" + (f" {'loo':>7}" if loo else "")
    lines = [head, "-" * len(head)]
    skipped = []
    for i, run in enumerate(ds["run"].values):
        if ds["status"].values[i] != "ok":
            skipped.append(f"  {run[:width]:<{width}} {ds['skip_reason'].values[i]}")
            continue
        line = f"{run[:width]:<{width}} {str(ds['hardware'].values[i])[:15]:<15} {ds['reliability_tier'].values[i]:<4}"
        for q in qs:
            p, r, e = (float(ds[f"{q}_{k}"].values[i]) for k in ("predicted", "reported", "rel_error"))
            line += f" {p:>17.4g} {r:>11.4g} " + (f"{e:>+7.1%}" if np.isfinite(e) else f"{'-':>7}")
            if loo:
                el = float(ds[f"{q}_rel_error_loo"].values[i])
                line += " " + (f"{el:>+7.1%}" if np.isfinite(el) else f"{'-':>7}")
        lines.append(line)
        if ds["skip_reason"].values[i]:
            lines.append(f"{'':<{width}}   note: {ds['skip_reason'].values[i]}")
    lines += ["", f"not reproduced ({len(skipped)}):", *skipped]
    return "\n".join(lines)
