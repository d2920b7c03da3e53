"""Back-propagation through time for the Elman network, written out in numpy.

A reference for what autograd computes when gaitedge trains a recurrent model,
and a tool for looking at gradient flow.  Network (the ``elman`` family, one
layer; ``b_h`` is torch's ``bias_ih + bias_hh``), for each sequence of a batch::

    a(t) = W_xh x(t) + W_hh h(t-1) + b_h,   h(t) = tanh(a(t)),   h(-1) = h0
    y(t) = W_hy h(t) + b_y                  (logits)
    L    = sum_t -log softmax(y(t))[k(t)]   (summed over time and batch; k(t) < 0: not counted)

Backward pass, from the last step down (``δ_h(T) = 0``)::

    δ_y(t) = softmax(y(t)) - onehot(k(t))                      (0 for unlabelled steps)
    δ_h(t) = (W_hyᵀ δ_y(t) + W_hhᵀ δ_h(t+1)) ⊙ f'(a(t)),      f'(a) = 1 - tanh(a)² = 1 - h(t)²

    dL/dW_hy = sum_t δ_y(t) h(t)ᵀ        dL/db_y = sum_t δ_y(t)
    dL/dW_xh = sum_t δ_h(t) x(t)ᵀ        dL/db_h = sum_t δ_h(t)
    dL/dW_hh = sum_t δ_h(t) h(t-1)ᵀ      dL/dh0  = W_hhᵀ δ_h(0)

Here ``δ_h(t)`` is dL/da(t).  The recursion multiplies by ``W_hhᵀ diag(f'(a))``
once per step back in time, so the share of the loss at ``t`` in the gradient at
``t - n`` shrinks (vanishing) or grows (exploding) roughly geometrically in
``n``; :func:`elman_bptt` reports ``|δ_h(t)|`` per step for that analysis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaitedge.errors import ModelError

PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y")


@dataclass
class ElmanParams:
    """Weights of a one-layer Elman network (float64 arrays).

    ``W_xh [H, C]``, ``W_hh [H, H]``, ``b_h [H]``, ``W_hy [K, H]``, ``b_y [K]``.
    """

    W_xh: np.ndarray
    W_hh: np.ndarray
    b_h: np.ndarray
    W_hy: np.ndarray
    b_y: np.ndarray

    def __post_init__(self) -> None:
        for n in PARAM_NAMES:
            setattr(self, n, np.asarray(getattr(self, n), np.float64))
        h, c = self.W_xh.shape
        k = self.W_hy.shape[0]
        if self.W_hh.shape != (h, h) or self.b_h.shape != (h,) or self.W_hy.shape != (k, h) or \
                self.b_y.shape != (k,):
            raise ModelError(f"Elman weights do not fit together: W_xh {self.W_xh.shape}, W_hh {self.W_hh.shape}, "
                             f"b_h {self.b_h.shape}, W_hy {self.W_hy.shape}, b_y {self.b_y.shape}")

    @classmethod
    def from_model(cls, model) -> "ElmanParams":
        """The weights of a one-layer gaitedge ``elman`` model (``b_h = bias_ih + bias_hh``)."""
        rnn = model.rnn
        if rnn.num_layers != 1 or rnn.nonlinearity != "tanh" or rnn.bidirectional:
            raise ModelError("the BPTT reference covers one unidirectional tanh layer")

        def g(t) -> np.ndarray:
            return t.detach().double().cpu().numpy()

        return cls(g(rnn.weight_ih_l0), g(rnn.weight_hh_l0), g(rnn.bias_ih_l0) + g(rnn.bias_hh_l0),
                   g(model.head.weight), g(model.head.bias))


@dataclass
class BPTTResult:
    """Loss, gradients (same names and shapes as :class:`ElmanParams`) and the backward signals."""

    loss: float
    grads: dict[str, np.ndarray]
    #: dL/dh0 ``[B, H]``
    grad_h0: np.ndarray
    #: ``|δ_h(t)|`` (Euclidean norm over units, RMS over the batch) per step ``[T]``
    delta_norm: np.ndarray
    #: forward values: pre-activations ``a [B, T, H]``, hidden states ``h [B, T, H]``, logits ``[B, T, K]``
    a: np.ndarray
    h: np.ndarray
    logits: np.ndarray


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def elman_forward(p: ElmanParams, x: np.ndarray, h0: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """``x [B, T, C]`` -> (a, h, logits), each ``[B, T, ·]``."""
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[2] != p.W_xh.shape[1]:
        raise ModelError(f"x must be [batch, time, {p.W_xh.shape[1]}], got {x.shape}")
    b, t, _ = x.shape
    hd = p.W_hh.shape[0]
    h_prev = np.zeros((b, hd)) if h0 is None else np.asarray(h0, np.float64)
    a = np.zeros((b, t, hd))
    h = np.zeros((b, t, hd))
    xp = x @ p.W_xh.T + p.b_h
    for i in range(t):
        a[:, i] = xp[:, i] + h_prev @ p.W_hh.T
        h[:, i] = h_prev = np.tanh(a[:, i])
    return a, h, h @ p.W_hy.T + p.b_y


def elman_bptt(p: ElmanParams, x: np.ndarray, targets: np.ndarray, h0: np.ndarray | None = None) -> BPTTResult:
    """Loss and exact gradients of the summed softmax cross-entropy by BPTT.

    ``x [B, T, C]`` (or ``[T, C]``), ``targets [B, T]`` (or ``[T]``) class indices,
    negative = unlabelled (no loss), ``h0 [B, H]`` (default zeros).
    """
    x = np.asarray(x, np.float64)
    targets = np.asarray(targets)
    if x.ndim == 2:
        x, targets = x[None], targets[None]
        h0 = None if h0 is None else np.asarray(h0)[None]
    if targets.shape != x.shape[:2]:
        raise ModelError(f"targets must be [batch, time] = {x.shape[:2]}, got {targets.shape}")
    k = p.W_hy.shape[0]
    if np.any(targets >= k):
        raise ModelError(f"target class {int(targets.max())} is beyond the {k} classes")
    b, t, _ = x.shape
    hd = p.W_hh.shape[0]
    h_init = np.zeros((b, hd)) if h0 is None else np.asarray(h0, np.float64)
    a, h, logits = elman_forward(p, x, h_init)
    prob = _softmax(logits)
    labelled = targets >= 0
    safe = np.where(labelled, targets, 0)
    picked = np.take_along_axis(prob, safe[..., None], -1)[..., 0]
    loss = float(-np.sum(np.log(picked[labelled])))
    d_y = prob.copy()
    np.put_along_axis(d_y, safe[..., None], np.take_along_axis(d_y, safe[..., None], -1) - 1.0, -1)
    d_y[~labelled] = 0.0

    g = {n: np.zeros_like(getattr(p, n)) for n in PARAM_NAMES}
    g["W_hy"] = np.einsum("btk,bth->kh", d_y, h)
    g["b_y"] = d_y.sum(axis=(0, 1))
    d_h_next = np.zeros((b, hd))
    delta = np.zeros((b, t, hd))
    for i in reversed(range(t)):
        d_h = (d_y[:, i] @ p.W_hy + d_h_next @ p.W_hh) * (1.0 - h[:, i] ** 2)
        delta[:, i] = d_h
        d_h_next = d_h
    h_prev = np.concatenate([h_init[:, None], h[:, :-1]], 1)
    g["W_xh"] = np.einsum("bth,btc->hc", delta, x)
    g["W_hh"] = np.einsum("bth,btj->hj", delta, h_prev)
    g["b_h"] = delta.sum(axis=(0, 1))
    grad_h0 = delta[:, 0] @ p.W_hh
    delta_norm = np.sqrt(np.mean(np.sum(delta**2, axis=2), axis=0))
    return BPTTResult(loss, g, grad_h0, delta_norm, a, h, logits)


def gradient_norm(grads: dict[str, np.ndarray]) -> float:
    """Global Euclidean norm over all gradient arrays (what ``train.grad_clip`` bounds)."""
    return float(np.sqrt(sum(float(np.sum(v**2)) for v in grads.values())))
