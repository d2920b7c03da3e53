"""S-CTRNN family: stochastic CTRNN, a CTRNN that also predicts its next input as a Gaussian.

Dynamics as :mod:`gaitedge.models.ctrnn` (leaky integrator neurons, explicit Euler at
``dt = 1 / rate_hz``).  From the last layer's outputs ``y_t`` a Gaussian output layer
predicts the next normalized IMU sample, per channel ``c``:

    mu_t = W^mu y_t + b^mu,   beta_t = W^beta y_t + b^beta,   sigma_t = exp(beta_t)

trained with the Gaussian negative log-likelihood of the next sample ``x_{t+1}``
(natural-log units, normalized signal units):

    NLL = 1/2 sum_t sum_c [ log(2 pi sigma_tc^2) + (x_{t+1,c} - mu_tc)^2 / sigma_tc^2 ]

For the gait-phase task it keeps the class head of the CTRNN (``logits = W_o y + b_o``);
training minimises the cross-entropy plus ``nll_weight`` times the NLL (through
:meth:`auxiliary_loss`).  Streaming runtimes (ONNX, the C kernel) run the class path,
which is exactly a CTRNN.

Library use (inputs are normalized signals, ``(T, C)`` or ``[B, T, C]``):

* :meth:`SCTRNNClassifier.predict_next`: ``mu``, ``sigma`` of the next sample at every step;
* :meth:`SCTRNNClassifier.generate`: closed-loop sampling (each sample drawn from the
  predicted Gaussian is fed back as the next input) after a seed signal;
* :meth:`SCTRNNClassifier.anomaly_score`: the surprise ``-log p(x_t | x_<t)`` of every
  sample (summed over channels); irregular gait scores higher.

Options: those of ``ctrnn`` (``rate_hz``, ``tau_ms``, ``learn_tau``) and ``nll_weight``
(weight of the summed NLL against the summed cross-entropy, default 0.1).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from gaitedge.errors import ModelError
from gaitedge.models.base import State, register
from gaitedge.models.ctrnn import CTRNNClassifier

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(target: torch.Tensor, mu: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Elementwise ``1/2 [log(2 pi sigma^2) + (target - mu)^2 / sigma^2]`` with ``sigma = exp(beta)``."""
    return 0.5 * (LOG_2PI + 2.0 * beta + (target - mu) ** 2 * torch.exp(-2.0 * beta))


@register("sctrnn")
class SCTRNNClassifier(CTRNNClassifier):
    """CTRNN with a class head and a Gaussian next-sample head."""

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 rate_hz: float = 100.0, tau_ms: float | list[float] = 40.0, learn_tau: bool = True,
                 nll_weight: float = 0.1) -> None:
        super().__init__(input_size, num_classes, hidden, layers, dropout, rate_hz, tau_ms, learn_tau)
        if isinstance(nll_weight, bool) or not isinstance(nll_weight, (int, float)) or not nll_weight >= 0 \
                or not math.isfinite(nll_weight):
            raise ModelError(f"sctrnn: nll_weight must be a number >= 0, got {nll_weight!r}")
        self.nll_weight = float(nll_weight)
        self.mu = nn.Linear(hidden, input_size)
        self.beta = nn.Linear(hidden, input_size)
        self._last_y: torch.Tensor | None = None

    def _extra_hparams(self) -> dict:
        return {"learn_tau": self.learn_tau, "nll_weight": self.nll_weight}

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        y, state = self._top(x, state)
        if self.training:
            self._last_y = y
        return self.head(self.drop(y)), state

    def auxiliary_loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        """``nll_weight`` x the summed next-sample NLL of the last forward pass over ``x``."""
        y, self._last_y = self._last_y, None
        if y is None or self.nll_weight == 0.0 or x.shape[1] < 2:
            return None
        return self.nll_weight * self.sequence_nll(x, y).sum()

    def sequence_nll(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-element NLL ``[B, T-1, C]`` of ``x[:, 1:]`` given the outputs ``y [B, T, H]``."""
        yy = y[:, :-1]
        return gaussian_nll(x[:, 1:], self.mu(yy), self.beta(yy))

    # ---- library API ---------------------------------------------------------------------

    @staticmethod
    def _as_batch(signals) -> tuple[torch.Tensor, bool]:
        x = torch.as_tensor(np.asarray(signals, np.float32))
        if x.ndim == 2:
            return x[None], True
        if x.ndim != 3:
            raise ModelError(f"sctrnn: signals must be (T, C) or (B, T, C), got shape {tuple(x.shape)}")
        return x, False

    @torch.no_grad()
    def predict_next(self, signals, state: State | None = None) -> tuple[np.ndarray, np.ndarray, State]:
        """Gaussian prediction of the next sample after each sample of ``signals`` (normalized units).

        Returns (``mu``, ``sigma``, final state); ``mu[t]`` / ``sigma[t]`` predict sample ``t + 1``
        (same shape as ``signals``).
        """
        x, single = self._as_batch(signals)
        self._check_channels(x)
        was = self.training
        self.eval()
        try:
            y, state = self._top(x, state)
        finally:
            self.train(was)
        mu, sigma = self.mu(y).numpy(), torch.exp(self.beta(y)).numpy()
        return (mu[0], sigma[0], state) if single else (mu, sigma, state)

    @torch.no_grad()
    def generate(self, n_steps: int, seed_signal, rng: np.random.Generator | None = None) -> np.ndarray:
        """Closed-loop sampling: run ``seed_signal (T0, C)`` (normalized, ``T0 >= 1``), then ``n_steps``
        times draw ``x ~ N(mu, sigma^2)`` from the prediction and feed it back.  Returns ``(n_steps, C)``."""
        if n_steps < 0:
            raise ModelError(f"sctrnn: n_steps must be >= 0, got {n_steps}")
        x, single = self._as_batch(seed_signal)
        if not single or x.shape[1] < 1:
            raise ModelError("sctrnn: the seed signal must be one (T0, C) signal with T0 >= 1")
        self._check_channels(x)
        rng = rng if rng is not None else np.random.default_rng()
        was = self.training
        self.eval()
        try:
            y, state = self._top(x, None)
            y_t = y[:, -1]
            out = np.zeros((n_steps, self.input_size), np.float32)
            for t in range(n_steps):
                mu = self.mu(y_t)[0].numpy()
                sigma = torch.exp(self.beta(y_t))[0].numpy()
                out[t] = mu + sigma * rng.standard_normal(self.input_size)
                y_seq, state = self._top(torch.from_numpy(out[t : t + 1])[None], state)
                y_t = y_seq[:, -1]
        finally:
            self.train(was)
        return out

    @torch.no_grad()
    def anomaly_score(self, signals) -> np.ndarray:
        """Surprise of every sample, ``-log p(x_t | x_<t)`` summed over channels (nats).

        ``signals (T, C)`` -> ``(T,)`` (or ``[B, T, C]`` -> ``[B, T]``); element 0 is NaN (no context).
        """
        x, single = self._as_batch(signals)
        self._check_channels(x)
        was = self.training
        self.eval()
        try:
            y, _ = self._top(x, None)
            nll = self.sequence_nll(x, y).sum(-1).numpy()
        finally:
            self.train(was)
        out = np.concatenate([np.full((x.shape[0], 1), np.nan, np.float32), nll], 1)
        return out[0] if single else out

    def _check_channels(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.input_size:
            raise ModelError(f"sctrnn: signals have {x.shape[-1]} channels, the model {self.input_size}")
