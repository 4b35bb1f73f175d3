"""Net carbon of a carbon-aware schedule: restarts, idle chips while paused, stretched embodied.

:func:`scalesim.schedule` reports a saving on grid intensity alone. A real pause/resume run also
(i) spends restart hours (checkpoint reload, warm-up) drawing power without progress, (ii) leaves
its chips drawing idle power while paused unless they are released to other work, and (iii) holds
the hardware for more calendar time, so a share of its embodied carbon that scales with occupancy
grows with the wall-clock stretch. This module turns a schedule's outputs into that net effect.

References
----------
.. [1] Wiesner et al. 2021, "Let's Wait Awhile", Middleware '21, arXiv:2110.13234 (savings from
   shifting on intensity alone; idle and restart costs left out).
.. [2] Luccioni, Viguier, Ligozat 2023, arXiv:2211.02001, Sec. 4.1 (embodied carbon amortised
   by the time the hardware is occupied).
.. [3] cloud-carbon-footprint Methodology, App. III, and Boavizta e-footprint (idle power ~11-12.5 %
   of TDP per accelerator; ``scalesim/data/power_model.csv`` ``idle_power_over_tdp``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..units import G_PER_T
from ._checks import check_positive

#: The strategies :func:`scalesim.schedule` implements (``scalesim.solve.scheduling``), named here,
#: with numpy only, so that ``scalesim --help`` lists them without importing xarray.
STRATEGIES = ("immediate", "flexible_start", "pause_resume")

#: Default for ``release_paused_chips``: a training cluster reserved for one job stays allocated
#: (and idles) while the job is paused; set True where the scheduler gives the chips to other work.
RELEASE_PAUSED_CHIPS = False


class ScheduleCost(NamedTuple):
    """Emissions of a scheduled run and of the same run started immediately [tCO2e]."""

    operational_co2e_t: np.ndarray  #: running hours (restarts included) x their intensity
    idle_co2e_t: np.ndarray  #: paused chips at idle power x intensity while paused (0 if released)
    embodied_co2e_t: np.ndarray  #: embodied share, scaled by occupied time
    total_co2e_t: np.ndarray  #: sum of the three
    immediate_co2e_t: np.ndarray  #: operational + embodied of running immediately
    net_saving: np.ndarray  #: 1 - total / immediate [-]


def schedule_net_co2e_t(*, job_energy_kwh, job_hours, run_hours, wall_clock_hours, run_gco2e_per_kwh,
                        paused_gco2e_per_kwh, immediate_gco2e_per_kwh, idle_power_fraction,
                        embodied_co2e_t=0.0, release_paused_chips=RELEASE_PAUSED_CHIPS):
    """Net emissions of a schedule against running immediately [tCO2e].

    Parameters
    ----------
    job_energy_kwh : array_like
        Facility energy of the job's useful running hours, as ``simulate`` reports it [kWh].
    job_hours, run_hours, wall_clock_hours : array_like
        Running time the job needs, hours run incl. restarts, and time from start to finish [h]
        (the outputs of :func:`scalesim.schedule` of the same names).
    run_gco2e_per_kwh, paused_gco2e_per_kwh, immediate_gco2e_per_kwh : array_like
        Mean intensity while running, while paused (NaN where never paused: treated as no idle
        energy) and when running immediately [gCO2e/kWh].
    idle_power_fraction : array_like
        Facility power of the paused chips over their power while training [-] (e.g. idle/TDP
        0.11 over a training draw of ~0.7 TDP gives ~0.16).
    embodied_co2e_t : array_like
        Embodied carbon attributed to the immediate run (its occupied hours = ``job_hours``) [tCO2e].
    release_paused_chips : bool
        True: paused chips go to other work (no idle energy; embodied follows ``run_hours``).
        False (default, :data:`RELEASE_PAUSED_CHIPS`): they stay allocated (idle energy for the
        paused hours; embodied follows ``wall_clock_hours``).

    Returns
    -------
    ScheduleCost
        Arrays broadcast over the inputs [tCO2e], and ``net_saving`` [-].

    Notes
    -----
    With E the job energy, T the job hours, R the hours run, W the wall-clock hours,
    P = W - R the paused hours, f the idle fraction and I_run, I_pause, I_imm the mean intensities::

        operational = E (R / T) I_run / 1e6
        idle        = 0 if released else E f (P / T) I_pause / 1e6
        embodied    = embodied_imm x (R if released else W) / T
        net_saving  = 1 - (operational + idle + embodied) / (E I_imm / 1e6 + embodied_imm)

    Restart hours draw training power (an upper bound: reloads draw less); the intensity saving of
    :func:`scalesim.schedule` is ``1 - I_run / I_imm``, so net_saving < saving whenever R > T,
    P > 0 with f > 0, or W > T with embodied > 0. Scalars, arrays and DataArrays broadcast; the
    saving is NaN where the immediate run emits nothing.
    """
    check_positive("job_energy_kwh", job_energy_kwh, allow_zero=True)
    check_positive("job_hours", job_hours)
    check_positive("idle_power_fraction", idle_power_fraction, allow_zero=True)
    check_positive("embodied_co2e_t", embodied_co2e_t, allow_zero=True)
    if release_paused_chips not in (True, False):
        raise ValueError(f"release_paused_chips must be True or False, got {release_paused_chips!r}")
    e, t, r, w = job_energy_kwh, job_hours, run_hours, wall_clock_hours
    if np.any(r < t - 1e-9) or np.any(w < r - 1e-9):
        raise ValueError("need job_hours <= run_hours <= wall_clock_hours (the outputs of scalesim.schedule)")
    operational = e * (r / t) * run_gco2e_per_kwh / G_PER_T
    paused = np.fmax(paused_gco2e_per_kwh, 0.0)  # NaN (never paused) -> 0; fmax is a ufunc, so DataArrays pass
    idle = (0.0 if release_paused_chips else 1.0) * e * idle_power_fraction * ((w - r) / t) * paused / G_PER_T
    embodied = embodied_co2e_t * (r if release_paused_chips else w) / t
    total = operational + idle + embodied
    immediate = e * immediate_gco2e_per_kwh / G_PER_T + embodied_co2e_t
    return ScheduleCost(operational, idle, embodied, total, immediate, 1.0 - total / immediate)
