"""GACTRNN family: gated adaptive continuous-time recurrent network, explicit Euler.

Per layer, with ``y = sigma(u)`` the previous outputs and ``x`` the layer's input (the
normalized IMU sample, or the outputs of the layer below):

    i = sigma(W^ix x + W^ih y + b^i)                 input gate
    f = sigma(W^fx x + W^fh y + b^f)                 forget gate
    I = V x + b                                      input current
    tau_i du_i/dt = f_i (-u_i) + i_i (sum_j w_ji y_j + I_i)

with learned time constants ``tau_i = exp(eta_i)`` (seconds).  Explicit Euler at the
sampling step ``dt = 1 / rate_hz``:

    u(t + dt) = u(t) + (dt / tau) (-f u(t) + i (W y(t) + I))

Explicit Euler is unstable for ``dt > tau``; the parametrization prevents it:
``eta`` is clamped at ``log dt`` in the forward pass (``tau = exp(max(eta, log dt)) >= dt``),
so a time constant that training pushes below one sample stays at ``dt`` (and gets no
gradient below it).

Options: ``rate_hz`` (Hz, default 100) and ``tau_ms`` (initial time constants in ms,
a number or a list of ``hidden`` numbers, each ``>= dt``; default 40).  The state is the
potentials ``u [layers, B, hidden]``; a dense head reads the last layer's ``y``.  The
weights are stored as three row blocks (i, f, drive): ``inp`` over ``x`` (with the
biases ``b^i, b^f, b``) and ``rec`` over ``y``.
"""

from __future__ import annotations

import math
import warnings
from typing import List

import torch
from torch import nn

from gaitedge.models.base import register
from gaitedge.models.ctrnn import LeakyStack


def _gated_sequence(xproj: torch.Tensor, u: torch.Tensor, w: torch.Tensor, alpha: torch.Tensor,
                    hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Euler steps over ``xproj [B, T, 3H]`` (blocks i, f, drive of ``W^x x + b``) from ``u [B, H]``."""
    ys: List[torch.Tensor] = []
    y = torch.sigmoid(u)
    for gx in xproj.split(1, 1):
        g = gx.squeeze(1) + torch.matmul(y, w.t())
        gi, gf, p = g[:, :hidden], g[:, hidden : 2 * hidden], g[:, 2 * hidden :]
        u = u + alpha * (torch.sigmoid(gi) * p - torch.sigmoid(gf) * u)
        y = torch.sigmoid(u)
        ys.append(y)
    return torch.stack(ys, 1), u


with warnings.catch_warnings():  # TorchScript is what exports the time loop as an ONNX Loop
    warnings.simplefilter("ignore", DeprecationWarning)
    _gated_sequence = torch.jit.script(_gated_sequence)


class GACTRNNLayer(nn.Module):
    """One gated adaptive CTRNN layer (row blocks i, f, drive)."""

    gates = 3

    def __init__(self, in_size: int, hidden: int, dt: float, tau_s: torch.Tensor) -> None:
        super().__init__()
        self.hidden = hidden
        self.dt = dt
        self.log_dt = math.log(dt)
        self.inp = nn.Linear(in_size, 3 * hidden)
        bound = 1.0 / math.sqrt(hidden)
        self.rec = nn.Parameter(torch.empty(3 * hidden, hidden).uniform_(-bound, bound))
        self.eta = nn.Parameter(torch.log(tau_s))

    def tau_s(self) -> torch.Tensor:
        """Time constants in seconds: ``exp(max(eta, log dt)) >= dt``."""
        return torch.exp(torch.clamp(self.eta, min=self.log_dt))

    def alpha(self) -> torch.Tensor:
        """``dt / tau`` per neuron, in (0, 1]."""
        return self.dt * torch.exp(-torch.clamp(self.eta, min=self.log_dt))

    def sequence(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _gated_sequence(self.inp(x), u, self.rec, self.alpha(), self.hidden)

    def internals(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        g = self.inp(x) + torch.sigmoid(u) @ self.rec.t()
        h = self.hidden
        gi, gf, p = g[:, :h], g[:, h : 2 * h], g[:, 2 * h :]
        u = u + self.alpha() * (torch.sigmoid(gi) * p - torch.sigmoid(gf) * u)
        return torch.sigmoid(u), u, {"pre": g, "u": u}

    def step(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, u, _ = self.internals(x, u)
        return y, u

    def float_params(self) -> dict:
        return {
            "w_rec": self.rec.detach().double().numpy().copy(),
            "w_in": self.inp.weight.detach().double().numpy().copy(),
            "bias": self.inp.bias.detach().double().numpy().copy(),
            "alpha": self.alpha().detach().double().numpy().copy(),
        }


@register("gactrnn")
class GACTRNNClassifier(LeakyStack):
    """Stacked gated adaptive CTRNN layers with a per-sample dense head."""

    layer_cls = GACTRNNLayer

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 rate_hz: float = 100.0, tau_ms: float | list[float] = 40.0) -> None:
        super().__init__(input_size, num_classes, hidden, layers, dropout, rate_hz, tau_ms)

    def _make_layer(self, in_size: int, hidden: int, tau_s: torch.Tensor, **kw: object) -> nn.Module:
        return GACTRNNLayer(in_size, hidden, self.dt, tau_s)
