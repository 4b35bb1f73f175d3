r"""Model compression as loss and FLOP arithmetic: quantisation penalty, distillation, pruning.

Pure functions (numpy only) behind :mod:`scalesim.solve.strategies`, which puts them into the
lifetime optimum of :func:`scalesim.optimize`.

Quantisation
    A post-training quantisation scheme costs quality. Measured as WikiText-2 perplexity before
    and after quantising the same model, the penalty in nats/token is the log ratio

    .. math:: \Delta L = \ln \mathrm{PPL}_q - \ln \mathrm{PPL}_{16} ,

    since the loss is the log perplexity (cross-entropy in nats/token). A served quantised model
    meets a target loss :math:`L^*` when the trained 16-bit model reaches :math:`L^* - \Delta L`.
Distillation
    A student trained on teacher logits over :math:`D_S` tokens is taken to reach the loss a
    supervised model of the same size reaches with :math:`k D_S` tokens (``benefit`` :math:`k \ge
    1`), never below its teacher's loss. The teacher runs one forward pass per distillation token,
    :math:`2 N_T` FLOPs (Kaplan et al. 2020, Table 1).
Pruning
    A model pruned to a fraction :math:`f` of its parent's parameters and recovered with
    :math:`D_r` tokens of distillation from the parent is taken to reach the law's loss at its own
    size and its parent's training tokens, :math:`L(f N_P, D_P)`: Minitron's 8B and 4B models,
    pruned from Nemotron-4 15B and recovered with ~94B tokens, match models of their size trained
    from scratch on up to 40x more tokens [4]_. Recovery costs :math:`6 f N_P` FLOPs per token of
    student training plus :math:`2 N_P` for the parent's forward pass.

References
----------
.. [1] Lin et al. 2024, "AWQ: Activation-aware Weight Quantization for LLM Compression and
   Acceleration", arXiv:2306.00978, Table 4.
.. [2] Xiao et al. 2023, "SmoothQuant: Accurate and Efficient Post-Training Quantization for
   Large Language Models", arXiv:2211.10438, Tables 5-6.
.. [3] Busbridge et al. 2025, "Distillation Scaling Laws", arXiv:2502.08606, Eq. 8 (the student
   loss approaches the teacher's; benefits vanish with enough student data).
.. [4] Muralidharan et al. 2024, "Compact Language Models via Pruning and Knowledge
   Distillation", arXiv:2407.14679 (Minitron).
.. [5] Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv:2001.08361, Table 1.
"""

from __future__ import annotations

import numpy as np

#: Forward-pass FLOPs per parameter per token (Kaplan et al. 2020, Table 1) [5].
FORWARD_FLOP_PER_PARAM = 2.0
#: Training FLOPs per parameter per token (forward + backward; Kaplan et al. 2020, Sec. 2.1) [5].
TRAIN_FLOP_PER_PARAM = 6.0


def log_perplexity_ratio(ppl_quantised, ppl_baseline):
    r"""Quality penalty of a quantised model: :math:`\ln(\mathrm{PPL}_q / \mathrm{PPL}_{16})` [nats/token].

    Parameters
    ----------
    ppl_quantised, ppl_baseline : array_like
        Perplexity of the quantised and of the 16-bit model on the same data [-], > 0.

    Returns
    -------
    numpy.ndarray or float
        Loss increase [nats/token]; negative where the quantised model scored better.
    """
    q, b = np.asarray(ppl_quantised, dtype=float), np.asarray(ppl_baseline, dtype=float)
    if np.any(~(q > 0)) or np.any(~(b > 0)):
        raise ValueError(f"perplexities must be > 0, got ppl_quantised={ppl_quantised!r}, ppl_baseline={ppl_baseline!r}")
    return np.log(q) - np.log(b)


def penalty_range(penalties_nats):
    """(low, central, high) of a scheme's measured penalties: min, median, max [nats/token].

    The median is the central value so that one unusual model does not move it; the range is
    what the measurements span, not a confidence interval.
    """
    p = np.asarray(penalties_nats, dtype=float).ravel()
    if p.size == 0 or np.any(~np.isfinite(p)):
        raise ValueError(f"penalties must be a non-empty set of finite numbers, got {penalties_nats!r}")
    return float(p.min()), float(np.median(p)), float(p.max())


def distilled_tokens(supervised_tokens, benefit):
    r"""Distillation tokens :math:`D_S = D / k` giving a student the loss a supervised model reaches with D [token].

    Parameters
    ----------
    supervised_tokens : array_like
        Tokens D a supervised model of the student's size needs for the target loss [token].
    benefit : array_like
        Effective-token multiplier k of distillation [-], >= 1 (1: no gain).
    """
    k = np.asarray(benefit, dtype=float)
    if np.any(~(k >= 1)):
        raise ValueError(f"distill_benefit must be >= 1 (an effective-token multiplier), got {benefit!r}")
    return supervised_tokens / k


def student_params_for_tokens(target_loss, tokens, benefit, *, e, a, b, alpha, beta):
    r"""Smallest student reaching ``target_loss`` with ``tokens`` distillation tokens (Chinchilla form) [1].

    Solves :math:`E + A N^{-\alpha} + B (k D_S)^{-\beta} = L^*` for N; NaN where the data term
    alone already exceeds the target (no student size reaches it with that data).
    """
    head = target_loss - e - b * (benefit * tokens) ** (-beta)
    with np.errstate(divide="ignore", invalid="ignore"):  # head <= 0: NaN (a negative base) or inf; ufuncs keep labels
        return np.power(np.divide(a, head), 1.0 / alpha) * (head > 0) / (head > 0)


def teacher_forward_flop(n_params_teacher, tokens):
    """FLOPs of the teacher's forward passes over ``tokens`` distillation tokens: 2 N_T D [FLOP]."""
    return FORWARD_FLOP_PER_PARAM * n_params_teacher * tokens


def recovery_flop(n_params_parent, n_params_pruned, tokens):
    """FLOPs of recovering a pruned model by distillation: (6 N_pruned + 2 N_parent) D_r [FLOP]."""
    return (TRAIN_FLOP_PER_PARAM * n_params_pruned + FORWARD_FLOP_PER_PARAM * n_params_parent) * tokens


def pruned_params(n_params_parent, prune_fraction):
    """Parameters kept by pruning: f N_P [1]; ``prune_fraction`` in (0, 1)."""
    f = np.asarray(prune_fraction, dtype=float)
    if np.any(~((f > 0) & (f < 1))):
        raise ValueError(f"prune_fraction must be in (0, 1) (the kept share of parameters), got {prune_fraction!r}")
    return n_params_parent * f
