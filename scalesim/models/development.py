"""Development overhead: the footprint of a project beyond its final training run.

A published training footprint is usually that of the final run alone. The project that produced
the model also ran hyperparameter sweeps, ablations, failed and abandoned runs, intermediate
models, post-training (SFT, preference tuning, RL) and evaluation. The development overhead ``r``
is the ratio of that extra compute (energy, emissions, water) to the final run's::

    project = final x (1 + r)

``r`` is one dimensionless number per project, so it applies alike to energy, operational and
embodied emissions and water: development runs on the same cluster, grid and cooling as the
final run (true of every anchor below but Wu et al.'s fleet-level split). The published anchors
are shipped in ``scalesim/data/development_overhead.csv`` (one row per anchor and quantity, with
the printed final and extra amounts); :func:`overhead_ratio` recomputes each ratio from them and
:func:`overhead_range` reduces the primary development anchors to a default (median) and range
(min, max).

References
----------
.. [1] Morrison, Na, Fernandez, Dettmers, Strubell, Dodge 2025, "Holistically Evaluating the
   Environmental Impact of Creating Language Models", ICLR 2025, arXiv:2503.05804, Tables 1-2
   (development 459 MWh vs final runs 913 MWh: ~50 %).
.. [2] Luccioni, Viguier, Ligozat 2023, "Estimating the Carbon Footprint of BLOOM, a 176B
   Parameter Language Model", JMLR 24(253), arXiv:2211.02001, Table 5 (final run 37.24 % of the
   BigScience project's dynamic energy).
.. [3] Zhang et al. 2022, "OPT: Open Pre-trained Transformer Language Models", arXiv:2205.01068
   (footprint "roughly 2 times higher due to experimentation, baselines and ablations", as
   quoted in [2]).
.. [4] Wu et al. 2022, "Sustainable AI: Environmental Implications, Challenges and
   Opportunities", MLSys 2022, arXiv:2111.00364 (Meta's AI power capacity 10:20:70 for
   experimentation, training, inference).
.. [5] Morrison, Smith, Strubell 2026, "The Hidden Cost of Thinking: Energy Use and Environmental
   Impact of LMs Beyond Pretraining", arXiv:2605.01158 (Olmo 3: development 82.2 % of total
   compute, post-training included).
"""

from __future__ import annotations

import numpy as np

from ._checks import check_positive, is_lazy


def project_footprint(final, *, development_overhead):
    """Footprint of the whole project from its final run's [same units as ``final``].

    Parameters
    ----------
    final : array_like
        Energy [kWh], emissions [tCO2e] or water [L] of the final training run (>= 0; NaN,
        an infeasible configuration upstream, propagates).
    development_overhead : array_like
        Extra project compute over the final run's [-] (>= 0; 0.5 = half as much again).

    Returns
    -------
    array_like
        ``final x (1 + development_overhead)``, broadcast.

    Notes
    -----
    P = F (1 + r), with r = (project - final) / final as printed by the anchors [1]_ [2]_.

    References
    ----------
    .. [1] Morrison et al. 2025, arXiv:2503.05804, Tables 1-2.
    .. [2] Luccioni et al. 2023, arXiv:2211.02001, Table 5.
    """
    check_positive("development_overhead", development_overhead, allow_zero=True)
    negative = np.zeros((), bool) if is_lazy(final) else np.asarray(final, dtype=float) < 0  # NaN propagates
    if negative.any():
        raise ValueError(f"final must be >= 0, got {float(np.asarray(final, dtype=float)[negative].ravel()[0]):g}")
    return final * (1.0 + development_overhead)


def overhead_ratio(final, extra):
    """Development overhead of an anchor: extra project amount over the final run's [-].

    Parameters
    ----------
    final : array_like
        The final run's amount (> 0) [any unit].
    extra : array_like
        Everything else the project used, in the same unit (>= 0).

    Notes
    -----
    r = extra / final; a share s of the total printed for development gives r = s / (1 - s)
    (Olmo 3: 82.2 / 17.8 = 4.62).
    """
    check_positive("final", final)
    check_positive("extra", extra, allow_zero=True)
    return np.asarray(extra, dtype=float) / np.asarray(final, dtype=float)


def overhead_range(ratios):
    """(low, central, high) of a set of anchor overheads [-]: (min, median, max).

    Parameters
    ----------
    ratios : array_like
        One overhead per independent anchor (1-d, >= 0, at least one).

    Notes
    -----
    The median, not the mean: the anchors span a factor of ten (0.5 to 4.6) and the median is
    not moved by the one that includes reinforcement-learning post-training. The range is the
    anchors' span; nothing is fitted.
    """
    arr = np.asarray(ratios, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"ratios must be a non-empty 1-d array of overheads, got shape {arr.shape}")
    check_positive("ratios", arr, allow_zero=True)
    return float(arr.min()), float(np.median(arr)), float(arr.max())
