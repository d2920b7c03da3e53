"""CTRNN family: continuous-time recurrent network (leaky integrator neurons), explicit Euler.

Each neuron ``i`` of a layer has a potential ``u_i`` and an output ``y_i = sigma(u_i)``
(logistic sigmoid), and follows

    tau_i du_i/dt = -u_i + sum_j w_ji y_j + sum_k v_ki I_k + b_i

where ``I`` is the layer's input (the normalized IMU sample for the first layer, the
outputs ``y`` of the layer below otherwise).  It is integrated with the explicit Euler
method at the sampling step ``dt = 1 / rate_hz`` (seconds):

    u_i(t + dt) = u_i(t) + (dt / tau_i) (-u_i(t) + sum_j w_ji y_j(t) + sum_k v_ki I_k(t + dt) + b_i)

so one sample is one Euler step, and ``alpha_i = dt / tau_i`` is the fraction of the
way the potential moves toward its drive per sample.  Explicit Euler is unstable for
``dt > tau`` (``alpha > 1``); such time constants are refused.

Options (``[model]`` table, ``--set model.KEY=VALUE``):

``rate_hz``    sampling rate in Hz (default 100); ``dt = 1 / rate_hz`` s.
``tau_ms``     time constant in ms: one number for every neuron or a list of
               ``hidden`` numbers (one per neuron); the initial value when learned.
               Must be ``>= dt`` (default 40 ms).
``learn_tau``  learn ``tau`` per neuron (default true) as ``tau = dt + softplus(theta)``
               (so it never falls below ``dt``); false keeps ``tau_ms`` fixed.

The state is the potentials ``u [layers, B, hidden]``; the zero state is ``u = 0``
(``y = 1/2``).  A dense head reads the last layer's ``y``:
``logits = W_o y + b_o``.  The sequence forward runs its time loop as a TorchScript
loop, so the exported ONNX sequence graph is an ONNX ``Loop`` that accepts any length.
"""

from __future__ import annotations

import math
import warnings
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register


def _leaky_sequence(xproj: torch.Tensor, u: torch.Tensor, w: torch.Tensor,
                    alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Euler steps of a CTRNN layer over ``xproj [B, T, H]`` (``V I + b`` per step) from ``u [B, H]``.

    Returns (``y [B, T, H]``, final ``u``).  Iterating over ``split(1, 1)`` makes the
    ONNX export a ``Loop`` over a tensor sequence (no Shape node).
    """
    ys: List[torch.Tensor] = []
    y = torch.sigmoid(u)
    for px in xproj.split(1, 1):
        p = px.squeeze(1) + torch.matmul(y, w.t())
        u = u + alpha * (p - u)
        y = torch.sigmoid(u)
        ys.append(y)
    return torch.stack(ys, 1), u


with warnings.catch_warnings():  # TorchScript is what exports the time loop as an ONNX Loop
    warnings.simplefilter("ignore", DeprecationWarning)
    _leaky_sequence = torch.jit.script(_leaky_sequence)


def _bool_option(family: str, name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ModelError(f"{family}: option {name} must be true or false, got {value!r}")


def time_constants_s(family: str, tau_ms: float | Sequence[float], hidden: int, dt: float) -> torch.Tensor:
    """Per-neuron time constants in seconds from the ``tau_ms`` option (checked ``>= dt``)."""
    if isinstance(tau_ms, (int, float)) and not isinstance(tau_ms, bool):
        vals = [float(tau_ms)] * hidden
    elif isinstance(tau_ms, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in tau_ms):
        if len(tau_ms) != hidden:
            raise ModelError(f"{family}: tau_ms lists {len(tau_ms)} time constants for {hidden} neurons")
        vals = [float(v) for v in tau_ms]
    else:
        raise ModelError(f"{family}: tau_ms must be a number or a list of numbers (ms), got {tau_ms!r}")
    for v in vals:
        if not math.isfinite(v) or v <= 0:
            raise ModelError(f"{family}: time constants must be positive (ms), got tau_ms={v!r}")
        if v / 1000.0 < dt * (1 - 1e-9):
            raise ModelError(
                f"{family}: time constant tau = {v:g} ms is shorter than the Euler step dt = 1/rate_hz = "
                f"{dt * 1000:g} ms; explicit Euler is unstable for dt > tau (raise tau_ms or rate_hz)")
    return torch.tensor(vals, dtype=torch.float32) / 1000.0


def check_rate(family: str, rate_hz: float) -> float:
    """The Euler step ``dt = 1 / rate_hz`` in seconds (ModelError for a bad rate)."""
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float)) or not math.isfinite(rate_hz) \
            or rate_hz <= 0:
        raise ModelError(f"{family}: rate_hz must be a positive number (Hz), got {rate_hz!r}")
    return 1.0 / float(rate_hz)


class CTRNNLayer(nn.Module):
    """One CTRNN layer: ``inp`` holds ``V`` and ``b``, ``rec`` holds ``W`` (``[hidden, hidden]``,
    row ``i`` = weights into neuron ``i``), and the time constants."""

    #: row blocks over ``[y; I]`` (1: the drive only)
    gates = 1

    def __init__(self, in_size: int, hidden: int, dt: float, tau_s: torch.Tensor, learn_tau: bool) -> None:
        super().__init__()
        self.hidden = hidden
        self.dt = dt
        self.learn_tau = learn_tau
        self.inp = nn.Linear(in_size, hidden)
        bound = 1.0 / math.sqrt(hidden)
        self.rec = nn.Parameter(torch.empty(hidden, hidden).uniform_(-bound, bound))
        if learn_tau:
            excess = torch.clamp(tau_s - dt, min=1e-4 * dt)
            # inverse softplus: theta = log(exp(x) - 1)
            self.tau_raw = nn.Parameter(excess + torch.log(-torch.expm1(-excess)))
        else:
            self.register_buffer("tau_fixed", tau_s.clone())

    def tau_s(self) -> torch.Tensor:
        """Time constants in seconds, ``>= dt``."""
        if self.learn_tau:
            return self.dt + F.softplus(self.tau_raw)
        return self.tau_fixed

    def alpha(self) -> torch.Tensor:
        """``dt / tau`` per neuron, in (0, 1]."""
        return self.dt / self.tau_s()

    def sequence(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _leaky_sequence(self.inp(x), u, self.rec, self.alpha())

    def step(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.inp(x) + torch.sigmoid(u) @ self.rec.t()
        u = u + self.alpha() * (p - u)
        return torch.sigmoid(u), u

    def internals(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """One step with its internals: (y, u, {"pre": the drive, "u": the new potential})."""
        p = self.inp(x) + torch.sigmoid(u) @ self.rec.t()
        u = u + self.alpha() * (p - u)
        return torch.sigmoid(u), u, {"pre": p, "u": u}

    def float_params(self) -> dict:
        """Float64 numpy copies: ``w_rec [G*H, H]``, ``w_in [G*H, in]``, ``bias [G*H]``, ``alpha [H]``."""
        return {
            "w_rec": self.rec.detach().double().numpy().copy(),
            "w_in": self.inp.weight.detach().double().numpy().copy(),
            "bias": self.inp.bias.detach().double().numpy().copy(),
            "alpha": self.alpha().detach().double().numpy().copy(),
        }


class LeakyStack(GaitModel):
    """Stacked continuous-time layers (``layer_cls``) with a dense head on the last layer's ``y``."""

    layer_cls: type[nn.Module] = CTRNNLayer

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 rate_hz: float = 100.0, tau_ms: float | list[float] = 40.0, **kw: object) -> None:
        super().__init__(input_size, num_classes)
        if hidden < 1 or layers < 1 or not 0.0 <= dropout < 1.0:
            raise ModelError(f"{self.family}: need hidden >= 1, layers >= 1, 0 <= dropout < 1")
        self.hidden = hidden
        self.layers = layers
        self.dropout_p = dropout
        self.rate_hz = float(rate_hz) if not isinstance(rate_hz, bool) and isinstance(rate_hz, (int, float)) \
            else rate_hz
        self.dt = check_rate(self.family, rate_hz)
        self.tau_ms = list(tau_ms) if isinstance(tau_ms, (list, tuple)) else tau_ms
        tau_s = time_constants_s(self.family, tau_ms, hidden, self.dt)
        self.cells = nn.ModuleList(
            [self._make_layer(input_size if k == 0 else hidden, hidden, tau_s, **kw) for k in range(layers)])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def _make_layer(self, in_size: int, hidden: int, tau_s: torch.Tensor, **kw: object) -> nn.Module:
        raise NotImplementedError

    def _extra_hparams(self) -> dict:
        return {}

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout_p, "rate_hz": self.rate_hz,
                "tau_ms": self.tau_ms, **self._extra_hparams()}

    def init_state(self, batch: int = 1) -> State:
        return (torch.zeros(self.layers, batch, self.hidden),)

    def _top(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """Last layer's ``y [B, T, H]`` and the final state."""
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        u0 = state[0]
        h = x
        finals = []
        for k, cell in enumerate(self.cells):
            if k > 0:
                h = self.drop(h)
            h, uk = cell.sequence(h, u0[k])
            finals.append(uk)
        return h, (torch.stack(finals, 0),)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        y, state = self._top(x, state)
        return self.head(self.drop(y)), state

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        u0 = state[0]
        h = x_t
        finals = []
        for k, cell in enumerate(self.cells):
            if k > 0:
                h = self.drop(h)
            h, uk = cell.step(h, u0[k])
            finals.append(uk)
        return self.head(self.drop(h)), (torch.stack(finals, 0),)

    @torch.no_grad()
    def trace(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per-layer internals over ``x [B, T, C]`` from the zero state (eval mode):
        ``{"pre": [B, T, G*H], "u": [B, T, H], "y": [B, T, H]}`` (calibration of the integer model)."""
        b, t, _ = x.shape
        u = [torch.zeros(b, self.hidden) for _ in self.cells]
        out: list[dict[str, list]] = [{"pre": [], "u": [], "y": []} for _ in self.cells]
        for i in range(t):
            h = x[:, i]
            for k, cell in enumerate(self.cells):
                h, u[k], inner = cell.internals(h, u[k])
                out[k]["pre"].append(inner["pre"])
                out[k]["u"].append(inner["u"])
                out[k]["y"].append(h)
        return [{n: torch.stack(v, 1) for n, v in d.items()} for d in out]


@register("ctrnn")
class CTRNNClassifier(LeakyStack):
    """Stacked CTRNN (leaky integrator) layers with a per-sample dense head."""

    layer_cls = CTRNNLayer

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 rate_hz: float = 100.0, tau_ms: float | list[float] = 40.0, learn_tau: bool = True) -> None:
        learn = _bool_option(self.family, "learn_tau", learn_tau)
        super().__init__(input_size, num_classes, hidden, layers, dropout, rate_hz, tau_ms, learn_tau=learn)
        self.learn_tau = learn

    def _make_layer(self, in_size: int, hidden: int, tau_s: torch.Tensor, **kw: object) -> nn.Module:
        return CTRNNLayer(in_size, hidden, self.dt, tau_s, bool(kw["learn_tau"]))

    def _extra_hparams(self) -> dict:
        return {"learn_tau": self.learn_tau}
