"""Contracted clean supply: market-based Scope 2 intensity beside the location-based one, and 24/7 matching.

Two accounting bases, never mixed (Maji et al. 2024 [3]_ show that mixing them overstates the carbon
savings of carbon-aware computing by up to 55.1 %):

- **location-based**: facility energy x the grid's average intensity (:mod:`scalesim.models.grid`);
- **market-based** (GHG Protocol Scope 2 Guidance 2015 [1]_, Ch. 6): the share ``f`` of the load covered
  by contractual instruments (PPAs, EACs: RECs, GOs) takes the supply's emission factor ``S``, the rest
  the *residual mix* ``R``, the grid once the attributes claimed by others are removed::

      I_market = f S + (1 - f) R                                                    (1)

No published residual mix is shipped. :func:`residual_all_claimed` gives its upper bound, the grid with
every carbon-free attribute claimed by others (Maji et al. 2023 [2]_, Sec. 3: market-based intensity of
consumers without PPAs = grid emissions / energy not claimed)::

      R_max = I / (1 - s)     (s = the grid's carbon-free share),                  (2)

capped at the median life-cycle intensity of coal (no residual can be dirtier than its dirtiest fuel)
and never below ``I``. The location intensity ``I`` is the other end of the range (nobody else claims
anything). AIB's European residual mixes lie between the two: nuclear without Guarantees of Origin stays
in the residual, expired GOs return to it (AIB residual-mix FAQ [4]_).

Hourly (24/7) matching [5]_ counts only the supply delivered in the hour it is consumed::

      CFE_hourly = sum_h min(L_h, P_h) / sum_h L_h                                  (3)
      market tCO2e = sum_h [(L_h - min(L_h, P_h)) I_h + min(L_h, P_h) S] / 1e6       (4)

where the annual (volumetric) share of the same contract is ``min(sum_h P_h / sum_h L_h, 1)``.

Pure numpy functions: scalars, arrays and DataArrays broadcast; nothing is read or mutated.

References
----------
.. [1] Sotos, M. 2015, "GHG Protocol Scope 2 Guidance", World Resources Institute (Ch. 4 dual reporting,
   Ch. 6.11 residual mix, Table 7.1 Scope 2 Quality Criteria).
.. [2] Maji, Bashir, Irwin, Shenoy, Sitaraman 2023, "Untangling Carbon-free Energy Attribution and Carbon
   Intensity Estimation for Carbon-aware Computing", arXiv:2308.06680.
.. [3] Maji, Bashir, Irwin, Shenoy, Sitaraman 2024, "The Green Mirage: Impact of Location- and Market-based
   Carbon Intensity Estimation on Carbon Optimization Efficacy", arXiv:2402.03550 (abstract: up to 55.1 %
   overestimation of savings; market-based up to 28.2 % lower savings for consumers without PPAs).
.. [4] Association of Issuing Bodies, "European Residual Mix" and "FAQ - Residual Mix",
   https://www.aib-net.org/facts/european-residual-mix (direct emissions only; renewable EACs zero).
.. [5] Google 2021, "24/7 Carbon-Free Energy: Methodologies and Metrics"; Google CFE% definition in
   GoogleCloudPlatform/region-carbon-info README ("average percentage of carbon free energy consumed ...
   on an hourly basis").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..units import G_PER_T
from ._checks import is_lazy

#: Cap on the all-claimed residual [gCO2e/kWh]: the median life-cycle intensity of coal power, IPCC
#: SRREN 2011 Annex II (Moomaw et al., Table A.II.4: 1001 g), the highest fossil median in the reference
#: fuel table (``emission_factors_by_fuel.csv``). Binds only where the carbon-free share is near 1.
RESIDUAL_CAP_GCO2E_PER_KWH = 1001.0

#: Life-cycle intensity of contracted carbon-free supply [gCO2e/kWh], the high end of its range: IPCC AR5
#: WGIII Annex III (Schloemer et al. 2014) Table A.III.2 median for utility-scale solar PV, 48 g, the
#: highest of the wind (11 onshore, 12 offshore), nuclear (12), hydro (24) and solar medians. The low and
#: central value is 0, the operational emission factor the Scope 2 Guidance gives renewable EACs.
SUPPLY_LIFECYCLE_HIGH_GCO2E_PER_KWH = 48.0

#: Basis labels written to results' attrs.
LOCATION_BASED = "location-based"
MARKET_BASED = "market-based (GHG Protocol Scope 2)"


def _check_share(name, value, *, open_one=False):
    if is_lazy(value):
        return
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr) | (arr < 0) | ((arr >= 1) if open_one else (arr > 1))
    if bad.any():
        v = float(arr.ravel()[np.argmax(bad.ravel())])
        allowed = "[0, 1)" if open_one else "[0, 1]"
        raise ValueError(f"{name} must be a fraction in {allowed} (fractions, not percentages), got {v:g}")


#: Share of the grid's carbon-free attributes taken to be claimed by others in the *central* residual
#: estimate [-]. Not a fit: nothing in the shipped data says how much of a grid's clean supply is
#: contracted away, so the central value sits halfway, in the claimed share, between the two bounds
#: (0: residual = grid average; 1: :func:`residual_all_claimed`). Pass ``residual_gco2e_per_kwh`` (an
#: AIB or Green-e residual mix) for a reported figure.
CLAIMED_SHARE_CENTRAL = 0.5


def residual_all_claimed(grid_gco2e_per_kwh, carbon_free_fraction, *, claimed_share=1.0,
                         cap_gco2e_per_kwh=RESIDUAL_CAP_GCO2E_PER_KWH):
    """Residual mix when a share of the grid's carbon-free attributes is claimed by others (all, by default).

    Parameters
    ----------
    grid_gco2e_per_kwh : array_like
        Location-based grid intensity I [gCO2e/kWh].
    carbon_free_fraction : array_like
        The grid's annual carbon-free share s [-], in [0, 1].
    claimed_share : array_like
        Share k of those attributes claimed by other consumers [-], in [0, 1]: 1 gives the upper bound
        (Eq. 2), 0 the grid average.
    cap_gco2e_per_kwh : float
        Largest residual [gCO2e/kWh] (default :data:`RESIDUAL_CAP_GCO2E_PER_KWH`).

    Returns
    -------
    array_like
        ``clip(I / (1 - k s), I, max(I, cap))`` [gCO2e/kWh]; ``cap`` (or ``I`` above it) where k s = 1.

    Notes
    -----
    Eq. (2) of the module with the claimed energy ``k s`` removed from the denominator and the
    emissions unchanged (Maji et al. 2023, arXiv:2308.06680, Sec. 3). On life-cycle grid data it counts
    the carbon-free sources' own life-cycle emissions as residual, so ``k = 1`` is an upper bound twice over.
    """
    _check_share("carbon_free_fraction", carbon_free_fraction)
    _check_share("claimed_share", claimed_share)
    top = np.maximum(grid_gco2e_per_kwh, cap_gco2e_per_kwh)
    with np.errstate(divide="ignore", invalid="ignore"):  # k s = 1: I/0 = inf -> the cap; 0/0 -> NaN -> I = 0
        bound = grid_gco2e_per_kwh / (1.0 - claimed_share * carbon_free_fraction)
    return np.fmin(np.fmax(bound, grid_gco2e_per_kwh), top)


def market_based_intensity(cfe_fraction, residual_gco2e_per_kwh, supply_gco2e_per_kwh=0.0):
    """Market-based intensity ``f S + (1 - f) R`` [gCO2e/kWh] (Eq. 1; GHG Protocol Scope 2 Guidance Ch. 6).

    Parameters
    ----------
    cfe_fraction : array_like
        Share f of the load matched by contracted carbon-free supply over the year [-], in [0, 1].
    residual_gco2e_per_kwh : array_like
        Residual-mix intensity R for the uncovered share [gCO2e/kWh].
    supply_gco2e_per_kwh : array_like
        Emission factor S of the contracted supply [gCO2e/kWh]; 0 on the Scope 2 (operational) basis.
    """
    _check_share("cfe_fraction", cfe_fraction)
    return cfe_fraction * supply_gco2e_per_kwh + (1.0 - cfe_fraction) * residual_gco2e_per_kwh


@dataclass(frozen=True)
class HourlyMatch:
    """Result of :func:`hourly_matching` (arrays reduced over the hour axis)."""

    cfe_hourly_fraction: object  #: sum_h min(L_h, P_h) / sum_h L_h [-] (Eq. 3)
    cfe_annual_fraction: object  #: min(sum_h P_h / sum_h L_h, 1) [-], the same contract matched by volume
    matched_kwh: object  #: sum_h min(L_h, P_h) [kWh]
    market_co2e_t: object  #: 24/7 market-based emissions [tCO2e] (Eq. 4)
    location_co2e_t: object  #: sum_h L_h I_h [tCO2e], the location-based emissions of the same load


def hourly_matching(load_kwh, supply_kwh, grid_gco2e_per_kwh, *, supply_gco2e_per_kwh=0.0, axis=-1):
    """24/7 matching of a load by a contracted supply, hour by hour.

    Parameters
    ----------
    load_kwh : array_like
        Energy consumed in each hour [kWh] (>= 0), hours along ``axis``.
    supply_kwh : array_like
        Contracted carbon-free energy delivered in each hour [kWh] (>= 0), broadcast against ``load_kwh``.
    grid_gco2e_per_kwh : array_like
        Hourly grid intensity applied to the unmatched load [gCO2e/kWh].
    supply_gco2e_per_kwh : float or array_like
        Emission factor of the matched supply [gCO2e/kWh] (0: Scope 2 operational basis).
    axis : int
        The hour axis (reduced).

    Returns
    -------
    HourlyMatch
        ``cfe_hourly_fraction``, ``cfe_annual_fraction``, ``matched_kwh``, ``market_co2e_t``,
        ``location_co2e_t`` (NaN fractions where the load is 0 throughout).

    Notes
    -----
    Eqs. (3) and (4) of the module. Surplus supply in one hour does not cover a deficit in another, so
    ``cfe_hourly_fraction <= cfe_annual_fraction``, with equality when the supply follows the load's shape.
    The unmatched load is charged the hourly grid intensity: no hourly residual mix is published.
    """
    load, supply, ci = (np.asarray(a, dtype=float) for a in (load_kwh, supply_kwh, grid_gco2e_per_kwh))
    for name, arr in (("load_kwh", load), ("supply_kwh", supply), ("grid_gco2e_per_kwh", ci),
                      ("supply_gco2e_per_kwh", np.asarray(supply_gco2e_per_kwh, dtype=float))):
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            raise ValueError(f"{name} must be finite and >= 0, got {float(arr.ravel()[np.argmax(bad.ravel())]):g}")
    load, supply, ci = np.broadcast_arrays(load, supply, ci)
    matched_h = np.minimum(load, supply)
    total = load.sum(axis=axis)
    safe = np.where(total > 0, total, 1.0)
    matched = matched_h.sum(axis=axis)
    hourly = np.where(total > 0, matched / safe, np.nan)
    # min(S, L) / L, not min(S / L, 1): a subnormal load would overflow the quotient
    annual = np.where(total > 0, np.minimum(supply.sum(axis=axis), total) / safe, np.nan)
    unmatched_g = ((load - matched_h) * ci).sum(axis=axis)
    market = (unmatched_g + matched * supply_gco2e_per_kwh) / G_PER_T
    return HourlyMatch(hourly, annual, matched, market, (load * ci).sum(axis=axis) / G_PER_T)


def market_based_co2e_t(facility_energy_kwh, market_gco2e_per_kwh):
    """Market-based operational emissions = facility energy x market-based intensity [tCO2e].

    NaN intensities (a region without a published carbon-free share, so no residual estimate) give
    NaN emissions there; negative ones raise.
    """
    if not is_lazy(market_gco2e_per_kwh):
        arr = np.asarray(market_gco2e_per_kwh, dtype=float)
        if (arr < 0).any() or np.isinf(arr).any():
            raise ValueError(f"market_gco2e_per_kwh must be finite and >= 0, got {float(arr[(arr < 0) | np.isinf(arr)][0]):g}")
    return facility_energy_kwh * market_gco2e_per_kwh / G_PER_T
