"""Predictive-coding RNN (PC-RNN): two levels of latent causes that relax to explain each sample.

Notation (per stream; ``s`` is the normalized IMU sample ``[C]``, ``p1 [H1]`` the
lower level, ``p2 [H2]`` the top level, ``a = tanh(p1)``):

* generative map (sensory prediction):  ``g(p1) = W_s tanh(p1) + b_s``
* sensory error:                        ``e_s = s - g(p1)``
* top-down prediction of level 1:       ``p1' = W21 p2 + b_1``,  error ``e_1 = p1 - p1'``
* top-level prior (the recurrence):     ``p2_hat(t) = tanh(W_r p2(t-1) + b_r)``,
  error ``e_2 = p2 - p2_hat``
* relaxation, gradient descent on the prediction-error energy
  ``F = |e_s|^2 / 2 + |e_1|^2 / 2 + |e_2|^2 / 2``::

      tau1 dp1/dt = -e_1 + (1 - a^2) * (W_s^T e_s)     (= -dF/dp1)
      tau2 dp2/dt = -e_2 + W21^T e_1                   (= -dF/dp2)

  integrated with ``relax_steps`` (K) explicit Euler steps of ``dt`` per sample,
  all errors taken from the values before the step (synchronous update)::

      p1 <- p1 + (dt / tau1) * (-e_1 + (1 - a^2) * (W_s^T e_s))
      p2 <- p2 + (dt / tau2) * (-e_2 + W21^T e_1)

* per sample ``t``: ``p2`` starts the relaxation at its prior ``p2_hat(t)``,
  ``p1`` at its value after the previous sample; after K steps the relaxed
  ``(p1, p2)`` is the streaming state, and the head reads the top level:
  ``logits = W_o p2 + b_o``.

The bottom-up drive of the top level, ``W21^T e_1``, is what lets ``p2`` see the
input at all (with ``tau2 dp2/dt = -e_2`` alone the top level would only follow
its own prior); it is the ``p2``-gradient of the same energy whose ``p1``-gradient
gives ``-e_1`` and the sensory term.  ``W_s`` is shared by the prediction and its
gradient (the transpose), as in the energy.

Options (``[model]`` table): ``hidden`` = H2 (top level, read by the head),
``hidden1`` = H1 (lower level; default ``hidden``), ``relax_steps`` = K (1..64),
``tau1`` and ``tau2`` = the time constants as ratios ``tau / dt`` (default 4).

Stability of the relaxation: one Euler step of a gradient flow is stable when
``(dt / tau) * lambda_max < 2``, ``lambda_max`` the largest curvature of ``F``.
Leaving out the tanh curvature term (``(1 - a^2) <= 1``), the Hessian of ``F`` is
``diag(W_s^T W_s, I) + [I; -W21^T][I, -W21]``, so ``lambda_max <= 2 + |W_s|^2 +
|W21|^2`` (spectral norms, bounded by the Frobenius norms).  Hence (i) the step
``alpha = dt / min(tau1, tau2)`` must be at most 2/3 (``tau >= 1.5``; smaller time
constants are refused), and (ii) the effective ``W_s`` and ``W21`` are the trained
matrices scaled down, when needed, to the Frobenius norm
``c = sqrt((1.8 / alpha - 2) / 2)`` (``W <- W min(1, c / |W|_F)``), which keeps
``alpha lambda_max <= 1.8`` whatever the trained weights (1.61 at the default
``tau = 4``).  ``layers`` must be 1 (the two-level hierarchy is one layer of the
streaming stack).  State: ``(p2 [1, B, H2], p1 [1, B, H1])``, dimensionless.

Training back-propagates through the unrolled relaxation (the per-sample loop is
TorchScript, so the ONNX sequence graph is a Loop that accepts any length).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register

#: most relaxation steps per sample accepted.
MAX_RELAX_STEPS = 64
#: smallest time constant (in sample steps dt) accepted: Euler step dt / tau <= 2/3.
MIN_TAU = 1.5
#: bound on alpha * lambda_max kept by the Frobenius caps of W_s and W21 (< 2: stable).
STABILITY_MARGIN = 1.8


def norm_cap(alpha: float) -> float:
    """Frobenius-norm cap of ``W_s`` and ``W21`` for the largest Euler step ``alpha``."""
    return math.sqrt(max(STABILITY_MARGIN / alpha - 2.0, 0.0) / 2.0)


def _capped(w: torch.Tensor, cap: float) -> torch.Tensor:
    """``w min(1, cap / |w|_F)``."""
    return w * torch.clamp(cap / (torch.sqrt((w * w).sum()) + 1e-12), max=1.0)


def pc_relax(s: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, phat: torch.Tensor, w_s: torch.Tensor,
             b_s: torch.Tensor, w_21: torch.Tensor, b_1: torch.Tensor, k: int, a1: float,
             a2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """K synchronous Euler steps of the relaxation for one sample ``s [B, C]``.

    ``p1 [B, H1]``, ``p2 [B, H2]`` the starting states, ``phat [B, H2]`` the top-level
    prior; ``a1 = dt / tau1``, ``a2 = dt / tau2``.  Returns the relaxed ``(p1, p2)``.
    """
    for _ in range(k):
        a = torch.tanh(p1)
        e_s = s - (torch.nn.functional.linear(a, w_s, b_s))
        e_1 = p1 - (torch.nn.functional.linear(p2, w_21, b_1))
        e_2 = p2 - phat
        d1 = (1.0 - a * a) * torch.matmul(e_s, w_s) - e_1
        d2 = torch.matmul(e_1, w_21) - e_2
        p1 = p1 + a1 * d1
        p2 = p2 + a2 * d2
    return p1, p2


def pc_sample(s: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, w_s: torch.Tensor, b_s: torch.Tensor,
              w_21: torch.Tensor, b_1: torch.Tensor, w_r: torch.Tensor, b_r: torch.Tensor, k: int, a1: float,
              a2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample: the prior from ``p2 (t-1)``, then the relaxation started at the prior."""
    phat = torch.tanh(torch.nn.functional.linear(p2, w_r, b_r))
    return pc_relax(s, p1, phat, phat, w_s, b_s, w_21, b_1, k, a1, a2)


def pc_sequence(x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, w_s: torch.Tensor, b_s: torch.Tensor,
                w_21: torch.Tensor, b_1: torch.Tensor, w_r: torch.Tensor, b_r: torch.Tensor, k: int, a1: float,
                a2: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x [T, B, C]`` (time-major), states ``p1 [1, B, H1]``, ``p2 [1, B, H2]`` ->
    (top level after every sample ``[T, B, H2]``, p1, p2)."""
    outs: list[torch.Tensor] = []
    for s in x.split(1, 0):
        p1, p2 = pc_sample(s, p1, p2, w_s, b_s, w_21, b_1, w_r, b_r, k, a1, a2)
        outs.append(p2)
    return torch.cat(outs, 0), p1, p2


# compiled once at import (TorchScript: the time loop exports to ONNX as a Loop over any T)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    pc_relax = torch.jit.script(pc_relax)
    pc_sample = torch.jit.script(pc_sample)
    pc_sequence = torch.jit.script(pc_sequence)


def _number(name: str, value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ModelError(f"pcrnn: option {name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ModelError(f"pcrnn: option {name} must be finite, got {value!r}")
    return out


@register("pcrnn")
class PCRNNClassifier(GaitModel):
    """Two-level predictive-coding network relaxed K Euler steps per sample, head on the top level."""

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 hidden1: int | None = None, relax_steps: int = 4, tau1: float = 4.0, tau2: float = 4.0) -> None:
        super().__init__(input_size, num_classes)
        h1 = hidden if hidden1 is None else hidden1
        if int(hidden) != hidden or hidden < 1 or int(h1) != h1 or h1 < 1:
            raise ModelError(f"pcrnn: need hidden >= 1 and hidden1 >= 1 (integers), got {hidden}, {h1}")
        if layers != 1:
            raise ModelError(f"pcrnn: the two-level hierarchy is one layer; layers must be 1, got {layers}")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"pcrnn: need 0 <= dropout < 1, got {dropout}")
        if isinstance(relax_steps, bool) or int(_number("relax_steps", relax_steps)) != relax_steps \
                or not 1 <= relax_steps <= MAX_RELAX_STEPS:
            raise ModelError(f"pcrnn: relax_steps must be an integer in 1..{MAX_RELAX_STEPS}, got {relax_steps!r}")
        t1, t2 = _number("tau1", tau1), _number("tau2", tau2)
        for name, tau in (("tau1", t1), ("tau2", t2)):
            if not tau >= MIN_TAU:
                raise ModelError(f"pcrnn: {name} = {tau:g} gives an Euler step dt/{name} = "
                                 f"{1.0 / tau if tau > 0 else math.inf:g} > {1.0 / MIN_TAU:.3g}, which is unstable for "
                                 f"two coupled levels; need {name} >= {MIN_TAU:g} (time constants as ratios tau / dt)")
        self.hidden = int(hidden)
        self.hidden1 = int(h1)
        self.layers = 1
        self.dropout_p = float(dropout)
        self.relax_steps = int(relax_steps)
        self.tau1, self.tau2 = t1, t2
        c = input_size
        # generative (sensory) map, top-down prediction, top-level prior
        self.w_s = nn.Parameter(torch.randn(c, self.hidden1) / math.sqrt(self.hidden1))
        self.b_s = nn.Parameter(torch.zeros(c))
        self.w_21 = nn.Parameter(torch.randn(self.hidden1, self.hidden) / math.sqrt(self.hidden))
        self.b_1 = nn.Parameter(torch.zeros(self.hidden1))
        self.w_r = nn.Parameter(torch.randn(self.hidden, self.hidden) * (0.9 / math.sqrt(self.hidden)))
        self.b_r = nn.Parameter(torch.zeros(self.hidden))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.hidden, num_classes)

    @property
    def alpha1(self) -> float:
        """Euler step of the lower level, ``dt / tau1`` (dimensionless, in (0, 1])."""
        return 1.0 / self.tau1

    @property
    def alpha2(self) -> float:
        """Euler step of the top level, ``dt / tau2``."""
        return 1.0 / self.tau2

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": 1, "dropout": self.dropout_p, "hidden1": self.hidden1,
                "relax_steps": self.relax_steps, "tau1": self.tau1, "tau2": self.tau2}

    def init_state(self, batch: int = 1) -> State:
        return torch.zeros(1, batch, self.hidden), torch.zeros(1, batch, self.hidden1)

    def _params(self) -> tuple[torch.Tensor, ...]:
        """Effective ``(W_s, b_s, W21, b_1, W_r, b_r)`` (``W_s``, ``W21`` norm-capped)."""
        cap = norm_cap(max(self.alpha1, self.alpha2))
        return _capped(self.w_s, cap), self.b_s, _capped(self.w_21, cap), self.b_1, self.w_r, self.b_r

    def effective_weights(self) -> dict[str, "object"]:
        """The effective parameters as float64 numpy arrays (what the exporters use)."""
        with torch.no_grad():
            return {k: v.detach().double().cpu().numpy()
                    for k, v in zip(("w_s", "b_s", "w_21", "b_1", "w_r", "b_r"), self._params())}

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        tops, p1, p2 = pc_sequence(x.transpose(0, 1), state[1], state[0], *self._params(), self.relax_steps,
                                   self.alpha1, self.alpha2)
        logits = self.head(self.drop(tops.transpose(0, 1)))
        return logits, (p2, p1)

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        p1, p2 = pc_sample(x_t.unsqueeze(0), state[1], state[0], *self._params(), self.relax_steps, self.alpha1,
                           self.alpha2)
        return self.head(self.drop(p2[0])), (p2, p1)
