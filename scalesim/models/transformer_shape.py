"""Shape of a decoder-only transformer from its parameter count (pure numpy).

Layers, width and heads by the aspect-ratio rule, GPT-3's batch size by model size, and the
architecture arguments of :func:`scalesim.models.parallelism.training_step_time` filled from
whatever a job states (:func:`derive_config`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["architecture_aspect_ratio", "global_batch_tokens_gpt3", "derive_config"]

#: d_model / n_layers of published dense models: GPT-3 175B 12288/96 = 128 (Brown et al. 2020,
#: arXiv:2005.14165, Table 2.1); Llama 3 8B 4096/32 = 128, 405B 16384/126 = 130 (Grattafiori
#: et al. 2024, arXiv:2407.21783, Table 3).
ASPECT_RATIO = 128.0
#: Attention head size of the same models [1].
HEAD_DIM = 128.0
#: Default vocabulary (Llama 3, Grattafiori et al. 2024).
DEFAULT_VOCAB = 128256.0
#: GPT-3's batch size by model size, Brown et al. 2020 Table 2.1 (n_params, tokens per batch).
GPT3_BATCH_TABLE = ((125e6, 0.5e6), (350e6, 0.5e6), (760e6, 0.5e6), (1.3e9, 1e6), (2.7e9, 1e6),
                    (6.7e9, 2e6), (13e9, 2e6), (175e9, 3.2e6))
#: Routed experts per token assumed when an MoE's width is unknown (DeepSeek-V3, Qwen3: 8).
DEFAULT_TOP_K = 8.0


def architecture_aspect_ratio(n_params, *, aspect_ratio=ASPECT_RATIO, head_dim=HEAD_DIM):
    """Layers, width and heads of a dense decoder of ``n_params`` parameters.

    Parameters
    ----------
    n_params : array_like
        Parameters [1], > 0.
    aspect_ratio : float, optional
        d_model / n_layers [1] (default 128, GPT-3 175B and Llama 3).
    head_dim : float, optional
        Attention head size [1].

    Returns
    -------
    n_layers, d_model, n_heads : ndarray
        Integers as floats [1]; d_model is a multiple of ``head_dim``.

    Notes
    -----
    With N = 12 L h^2 (Kaplan et al. 2020, Eq. 2.1, embeddings neglected) and h = r L,
    L = (N / (12 r^2))^(1/3).
    """
    n = np.asarray(n_params, dtype=float)
    layers = np.maximum(np.round((n / (12.0 * aspect_ratio ** 2)) ** (1.0 / 3.0)), 2.0)
    d_model = np.maximum(np.round(np.sqrt(n / (12.0 * layers)) / head_dim), 1.0) * head_dim
    return layers, d_model, d_model / head_dim


def global_batch_tokens_gpt3(n_params):
    """Tokens per global batch of published practice: GPT-3's Table 2.1, log-interpolated.

    Parameters
    ----------
    n_params : array_like
        Parameters [1].

    Returns
    -------
    global_batch_tokens : ndarray
        Tokens per step [token]; 0.5M below 760M, 3.2M at 175B, extrapolated beyond 175B along
        the last segment's slope in log-log (Llama 3 405B used 4M-16M, Grattafiori et al. 2024).

    References
    ----------
    .. [1] Brown et al. 2020, arXiv:2005.14165, Table 2.1.
    """
    x = np.log(np.array([p for p, _ in GPT3_BATCH_TABLE]))
    y = np.log(np.array([b for _, b in GPT3_BATCH_TABLE]))
    ln = np.log(np.asarray(n_params, dtype=float))
    slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    out = np.where(ln > x[-1], y[-1] + slope * (ln - x[-1]), np.interp(ln, x, y))
    return np.exp(out)


def derive_config(n_params, n_active_params, *, seq_len, global_batch_tokens, n_layers=None, d_model=None,
                  n_heads=None, n_kv_heads=None, ffn_dim=None, vocab_size=None, n_experts=None, top_k=None):
    """Fill a job's architecture from its parameter counts (1-d arrays; NaN = not given).

    The aspect-ratio rule (:func:`architecture_aspect_ratio`) gives missing layers, width and
    heads; kv heads default to the query heads; the vocabulary to Llama 3's; the MLP is what the
    parameter count leaves after attention and (untied) embeddings. An MoE (active < total)
    without ``n_experts``/``top_k`` takes the expert count from the ratio of the parameters left
    for experts, with ``ffn_dim`` (per-expert width, SwiGLU: 3 h F per expert) or top_k = 8.

    Returns
    -------
    dict of ndarray
        The job arguments of :func:`training_step_time`.
    """
    N = np.asarray(n_params, dtype=float)
    Na = np.asarray(n_active_params, dtype=float)
    nan = np.full_like(N, np.nan)
    g = lambda x: nan if x is None else np.broadcast_to(np.asarray(x, dtype=float), N.shape)  # noqa: E731
    L_r, h_r, a_r = architecture_aspect_ratio(Na)
    L = np.where(np.isnan(g(n_layers)), L_r, g(n_layers))
    h = np.where(np.isnan(g(d_model)), h_r, g(d_model))
    a = np.where(np.isnan(g(n_heads)), np.maximum(np.round(h / HEAD_DIM), 1.0), g(n_heads))
    kv = np.where(np.isnan(g(n_kv_heads)), a, g(n_kv_heads))
    V = np.where(np.isnan(g(vocab_size)), DEFAULT_VOCAB, g(vocab_size))
    attn = 2.0 * h * h + 2.0 * h * kv * (h / a)
    emb = 2.0 * V * h
    left_total = N - emb - L * attn
    left_active = Na - emb - L * attn
    # tied or small embeddings: never let the MLP fall below 2h^2 per layer
    mlp_active = np.maximum(left_active / L, 2.0 * h * h)
    mlp_total = np.maximum(left_total / L, mlp_active)
    moe = N > Na * (1 + 1e-6)
    F = g(ffn_dim)
    k_from_f = mlp_active / (3.0 * h * F)
    k = np.where(np.isnan(g(top_k)), np.where(np.isnan(F), DEFAULT_TOP_K, np.maximum(k_from_f, 1.0)), g(top_k))
    E = np.where(np.isnan(g(n_experts)), np.maximum(np.round(k * mlp_total / mlp_active), k), g(n_experts))
    k = np.where(moe, k, 1.0)
    E = np.where(moe, E, 1.0)
    return dict(n_params=N, n_active_params=Na, n_layers=L, d_model=h, n_heads=a, n_kv_heads=kv,
                mlp_params_per_layer=mlp_active, vocab_size=V, seq_len=np.broadcast_to(seq_len, N.shape) * 1.0,
                global_batch_tokens=np.broadcast_to(global_batch_tokens, N.shape) * 1.0, n_experts=E, top_k=k)
