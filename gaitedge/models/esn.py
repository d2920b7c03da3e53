"""Echo state networks: ESN, leaky ESN and deep ESN with a closed-form ridge readout.

A reservoir layer of ``N`` units, input ``u(t)`` (``C`` values), state ``x(t)``:

    x(t) = (1 - a) x(t-1) + a tanh(W_in u(t) + W x(t-1) + b)

with leak rate ``a`` in (0, 1] (``a = 1``: the plain ESN, ``x(t) = tanh(...)``).
``W`` is a sparse random matrix: every unit receives ``k = max(1, round(density
* N))`` recurrent connections from distinct units chosen at random, weights
uniform in [-1, 1], then the whole matrix is rescaled so that its spectral
radius (largest ``|eigenvalue|``) equals ``spectral_radius`` (echo-state
condition: < 1; larger values are refused unless ``force``).  ``W_in`` is dense,
uniform in ``[-input_scaling, input_scaling]``; ``b`` uniform in ``[-bias,
bias]`` (``bias = 0``: no bias).  Everything is drawn from ``seed``.

The deep ESN stacks ``layers`` reservoirs: layer ``l > 1`` is driven by the state
of layer ``l - 1`` (input weights uniform in ``[-inter_scaling,
inter_scaling]``) and the readout reads every layer's state.

Only the linear readout is trained, in closed form (no back-propagation):

    logits(t) = W_out z(t) + b_out,    z(t) = [x_L(t); ...; x_1(t)]  (deep) or x(t)

ridge regression on one-hot class targets (label -1 ignored; the first
``washout`` samples of every recording are skipped while the reservoir forgets
its zero start):

    min_{W_out, b_out}  (1/n) sum_t ||y(t) - W_out z(t) - b_out||^2 + lam ||W_out||_F^2

i.e. ``[W_out b_out]^T = (Z~^T Z~ + n lam D)^-1 Z~^T Y`` with ``Z~ = [Z 1]`` and
``D = diag(1, ..., 1, 0)`` (the bias is not penalized).  ``lam`` is chosen from
the grid ``ridge`` by cross-validation over subjects (folds of whole subjects,
held-out mean squared error); a single value is used as given.

Reservoir matrices are buffers, not parameters: :meth:`GaitModel.n_params`
counts the readout; :meth:`EchoStateNetwork.reservoir_size` reports the
reservoir.  The state is ``(x [layers, B, N],)``.  The time loop is a
TorchScript function, so the ONNX sequence graph is a ``Loop`` valid for any
length.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, List, Tuple

import numpy as np
import torch
from torch import nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register

#: default ridge grid (lam, dimensionless: per-sample loss vs squared weights).
DEFAULT_RIDGE = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def _leaky_scan_py(drive: torch.Tensor, w_rec_t: torch.Tensor, h: torch.Tensor, leak: float
                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``drive [B, T, N]`` (= W_in u + b), ``w_rec_t = W^T``, ``h [B, N]`` -> (states [B, T, N], last)."""
    outs: List[torch.Tensor] = []
    for d in drive.split(1, 1):  # [B, 1, N] slices (unbind would lose the rank in the ONNX graph)
        h = (1.0 - leak) * h + leak * torch.tanh(d.squeeze(1) + torch.matmul(h, w_rec_t))
        outs.append(h.unsqueeze(1))
    return torch.cat(outs, 1), h


with warnings.catch_warnings():  # TorchScript: the loop exports as an ONNX Loop (any sequence length)
    warnings.simplefilter("ignore", DeprecationWarning)
    _leaky_scan = torch.jit.script(_leaky_scan_py)


def spectral_radius(w: np.ndarray) -> float:
    """Largest |eigenvalue| of a square matrix."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64))))) if len(w) else 0.0


def make_reservoir(n: int, density: float, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Sparse random ``[n, n]`` recurrent matrix with spectral radius ``radius``.

    Row ``i`` (unit i's inputs) has ``max(1, round(density * n))`` nonzeros at
    distinct random columns, uniform in [-1, 1] before the rescaling.
    """
    k = max(1, int(round(density * n)))
    w = np.zeros((n, n))
    for i in range(n):
        cols = rng.choice(n, size=k, replace=False)
        w[i, cols] = rng.uniform(-1.0, 1.0, size=k)
    rho = spectral_radius(w)
    if rho < 1e-9:
        raise ModelError(f"the random reservoir ({n} units, {k} connections each) has spectral radius 0 and cannot "
                         f"be rescaled; raise density or change seed")
    return w * (radius / rho)


def _as_grid(ridge: object) -> tuple[float, ...]:
    vals = list(ridge) if isinstance(ridge, (list, tuple)) else [ridge]
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ModelError(f"ridge: expected a number >= 0 or a list of them, got {ridge!r}")
        out.append(float(v))
    if not out:
        raise ModelError("ridge: the grid is empty")
    return tuple(out)


class EchoStateNetwork(GaitModel):
    """Reservoir stack (``layers`` x ``hidden`` leaky-tanh units) with a ridge readout."""

    closed_form = True
    #: whether the family takes a leak option (the plain ESN has a = 1).
    leaky: bool = True
    #: whether the readout reads every layer (deep ESN) or the only one.
    deep: bool = False
    default_leak: float = 1.0

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        hidden: int = 64,
        layers: int = 1,
        dropout: float = 0.0,
        density: float = 0.1,
        spectral_radius: float = 0.9,
        input_scaling: float = 0.3,
        bias: float = 0.2,
        inter_scaling: float = 0.2,
        leak: float | None = None,
        seed: int = 0,
        force: bool = False,
        ridge: object = DEFAULT_RIDGE,
        cv_folds: int = 5,
        washout: int = 20,
    ) -> None:
        super().__init__(input_size, num_classes)
        name = self.family or type(self).__name__
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ModelError(f"{name}: hidden (reservoir units per layer) must be an integer >= 1, got {hidden!r}")
        if self.deep:
            if layers < 2:
                raise ModelError(f"{name}: a deep ESN stacks reservoirs; set model.layers >= 2 (got {layers}), "
                                 f"or use leaky_esn for one reservoir")
        elif layers != 1:
            raise ModelError(f"{name}: one reservoir only (got layers={layers}); use deep_esn to stack reservoirs")
        if dropout != 0.0:
            raise ModelError(f"{name}: dropout does not apply to a closed-form readout (got {dropout})")
        if not 0.0 < density <= 1.0:
            raise ModelError(f"{name}: density must be in (0, 1], got {density}")
        if not spectral_radius > 0.0:
            raise ModelError(f"{name}: spectral_radius must be > 0, got {spectral_radius}")
        if spectral_radius >= 1.0 and not force:
            raise ModelError(f"{name}: spectral_radius {spectral_radius} >= 1 may violate the echo-state condition "
                             f"(the reservoir need not forget its past); use a value below 1, or set model.force=true")
        if input_scaling < 0 or bias < 0 or inter_scaling < 0:
            raise ModelError(f"{name}: input_scaling, bias and inter_scaling must be >= 0")
        if leak is None:
            leak = self.default_leak
        elif not self.leaky:
            raise ModelError(f"{name}: the plain ESN has no leak rate (a = 1); use leaky_esn for leak={leak}")
        if isinstance(leak, bool) or not isinstance(leak, (int, float)) or not 0.0 < leak <= 1.0:
            raise ModelError(f"{name}: leak rate must be in (0, 1], got {leak!r}")
        if isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds < 2:
            raise ModelError(f"{name}: cv_folds must be an integer >= 2, got {cv_folds!r}")
        if isinstance(washout, bool) or not isinstance(washout, int) or washout < 0:
            raise ModelError(f"{name}: washout must be an integer >= 0 (samples), got {washout!r}")
        self.hidden, self.layers = int(hidden), int(layers)
        self.density, self.radius = float(density), float(spectral_radius)
        self.input_scaling, self.bias_scaling, self.inter_scaling = float(input_scaling), float(bias), float(inter_scaling)
        self.leak, self.seed, self.force = float(leak), int(seed), bool(force)
        self.ridge = _as_grid(ridge)
        self.cv_folds, self.washout = int(cv_folds), int(washout)

        for k in range(self.layers):
            rng = np.random.default_rng([self.seed, k])
            n_in = input_size if k == 0 else self.hidden
            scale = self.input_scaling if k == 0 else self.inter_scaling
            w_in = rng.uniform(-scale, scale, size=(self.hidden, n_in))
            w = make_reservoir(self.hidden, self.density, self.radius, rng)
            b = rng.uniform(-self.bias_scaling, self.bias_scaling, size=self.hidden)
            self.register_buffer(f"w_in{k}", torch.tensor(w_in, dtype=torch.float32))
            self.register_buffer(f"w_rec{k}", torch.tensor(w, dtype=torch.float32))
            self.register_buffer(f"b{k}", torch.tensor(b, dtype=torch.float32))
        self.head = nn.Linear(self.features, num_classes)

    # ---- structure ------------------------------------------------------------------
    @property
    def features(self) -> int:
        """Width of the readout input: every layer's state (deep) or the one layer's."""
        return self.hidden * (self.layers if self.deep else 1)

    def reservoir(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W_in, W, b) of layer ``k``."""
        return getattr(self, f"w_in{k}"), getattr(self, f"w_rec{k}"), getattr(self, f"b{k}")

    def reservoir_size(self) -> dict:
        """Units, nonzero recurrent weights and input weights of the (fixed) reservoirs."""
        nnz = sum(int((self.reservoir(k)[1] != 0).sum()) for k in range(self.layers))
        n_in = sum(self.reservoir(k)[0].numel() for k in range(self.layers))
        return {"units": self.hidden * self.layers, "recurrent_nonzeros": nnz, "input_weights": n_in,
                "biases": self.hidden * self.layers if self.bias_scaling > 0 else 0}

    def hparams(self) -> dict:
        out = {"hidden": self.hidden, "layers": self.layers, "dropout": 0.0, "density": self.density,
               "spectral_radius": self.radius, "input_scaling": self.input_scaling, "bias": self.bias_scaling,
               "seed": self.seed, "force": self.force, "ridge": list(self.ridge), "cv_folds": self.cv_folds,
               "washout": self.washout}
        if self.leaky:
            out["leak"] = self.leak
        if self.deep:
            out["inter_scaling"] = self.inter_scaling
        return out

    def init_state(self, batch: int = 1) -> State:
        return (torch.zeros(self.layers, batch, self.hidden),)

    # ---- dynamics -------------------------------------------------------------------
    def layer_states(self, x: torch.Tensor, state: State | None = None) -> tuple[list[torch.Tensor], State]:
        """``x [B, T, C]`` -> (states ``[B, T, hidden]`` of layers 1..L, final state)."""
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        h0 = state[0]
        inp = x
        outs, last = [], []
        for k in range(self.layers):
            w_in, w, b = self.reservoir(k)
            hs, hk = _leaky_scan(torch.matmul(inp, w_in.t()) + b, w.t(), h0[k], self.leak)
            outs.append(hs)
            last.append(hk)
            inp = hs
        return outs, (torch.stack(last, 0),)

    def states(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """``x [B, T, C]`` -> (readout input ``z [B, T, features]``, final state)."""
        outs, st = self.layer_states(x, state)
        return (torch.cat(outs[::-1], -1) if self.deep else outs[-1]), st

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        outs, st = self.layer_states(x, state)
        if not self.deep:
            return self.head(outs[-1]), st
        # W_out z + b_out with z = [x_L; ...; x_1], as one matrix product per layer (no
        # concatenation of the loop outputs: the ONNX sequence graph stays rank-stable)
        w = self.head.weight
        logits = self.head.bias
        for j, hs in enumerate(outs[::-1]):
            logits = logits + torch.matmul(hs, w[:, j * self.hidden : (j + 1) * self.hidden].t())
        return logits, st

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h0 = state[0]
        inp = x_t
        new = []
        for k in range(self.layers):
            w_in, w, b = self.reservoir(k)
            d = torch.matmul(inp, w_in.t()) + b
            hk = (1.0 - self.leak) * h0[k] + self.leak * torch.tanh(d + torch.matmul(h0[k], w.t()))
            new.append(hk)
            inp = hk
        z = torch.cat(new[::-1], -1) if self.deep else new[-1]
        return self.head(z), (torch.stack(new, 0),)

    # ---- closed-form readout ----------------------------------------------------------
    def _stats(self, xs: list, ys: list, groups: list[str]) -> dict[str, dict]:
        """Per-subject sufficient statistics of the ridge problem over the reservoir states."""
        k = self.num_classes
        f = self.features + 1
        stats: dict[str, dict] = {}
        order = sorted(range(len(xs)), key=lambda i: len(xs[i]))
        chunk = 8
        with torch.no_grad():
            for c0 in range(0, len(order), chunk):
                idx = order[c0 : c0 + chunk]
                tmax = max(len(xs[i]) for i in idx)
                xb = np.zeros((len(idx), tmax, self.input_size), np.float32)
                for j, i in enumerate(idx):
                    xb[j, : len(xs[i])] = xs[i]
                z, _ = self.states(torch.from_numpy(xb))
                z = z.double().numpy()
                for j, i in enumerate(idx):
                    y = np.asarray(ys[i], np.int64)[: len(xs[i])]
                    keep = (y >= 0) & (y < k)
                    keep[: self.washout] = False
                    if not keep.any():
                        continue
                    zi = np.concatenate([z[j, : len(xs[i])][keep], np.ones((int(keep.sum()), 1))], 1)
                    yi = np.eye(k)[y[keep]]
                    s = stats.setdefault(str(groups[i]), {"G": np.zeros((f, f)), "C": np.zeros((f, k)),
                                                          "yy": 0.0, "n": 0})
                    s["G"] += zi.T @ zi
                    s["C"] += zi.T @ yi
                    s["yy"] += float((yi * yi).sum())
                    s["n"] += int(keep.sum())
        return stats

    @staticmethod
    def ridge_solve(g: np.ndarray, c: np.ndarray, n: int, lam: float) -> np.ndarray:
        """``(G + n lam D)^-1 C`` with ``D = diag(1, .., 1, 0)`` (last row/column: the bias)."""
        pen = np.full(len(g), n * lam)
        pen[-1] = 0.0
        return np.linalg.solve(g + np.diag(pen), c)

    @staticmethod
    def _mse(s: dict, w: np.ndarray) -> float:
        """Mean squared error per sample and class of readout ``w`` on statistics ``s``."""
        sse = s["yy"] - 2.0 * float(np.sum(w * s["C"])) + float(np.sum(w * (s["G"] @ w)))
        return sse / (s["n"] * w.shape[1])

    def fit_closed_form(self, xs: list, ys: list, groups: list[str], log: Callable[..., None]) -> dict:
        if not (len(xs) == len(ys) == len(groups)) or not xs:
            raise ModelError(f"{self.family}: need as many targets and subjects as recordings (got {len(xs)} "
                             f"recordings, {len(ys)} targets, {len(groups)} subjects)")
        stats = self._stats(xs, ys, groups)
        if not stats:
            raise ModelError(f"{self.family}: no labelled samples after the washout of {self.washout} samples")
        tot = {"G": sum(s["G"] for s in stats.values()), "C": sum(s["C"] for s in stats.values()),
               "yy": sum(s["yy"] for s in stats.values()), "n": sum(s["n"] for s in stats.values())}
        cv: dict[str, float] | None = None
        if len(self.ridge) == 1:
            lam = self.ridge[0]
        else:
            subjects = sorted(stats)
            if len(subjects) < 2:
                raise ModelError(f"{self.family}: cross-validating the ridge penalty needs recordings of at least 2 "
                                 f"subjects (got {len(subjects)}); give one value, e.g. model.ridge=1e-4")
            nf = min(self.cv_folds, len(subjects))
            folds = [subjects[i::nf] for i in range(nf)]
            cv = {}
            for lam_ in self.ridge:
                err, cnt = 0.0, 0
                for fold in folds:
                    held = {key: sum(stats[s][key] for s in fold) for key in ("G", "C", "yy", "n")}
                    tr = {key: tot[key] - held[key] for key in ("G", "C", "n")}
                    w = self.ridge_solve(tr["G"], tr["C"], tr["n"], lam_)
                    err += self._mse(held, w) * held["n"]
                    cnt += held["n"]
                cv[repr(lam_)] = err / cnt
            lam = min(self.ridge, key=lambda v: cv[repr(v)])
            log(f"{self.family}: ridge cross-validation over {len(subjects)} subjects in {nf} folds: "
                + ", ".join(f"{k} -> {v:.4f}" for k, v in cv.items()) + f"; chose {lam:g}")
        w = self.ridge_solve(tot["G"], tot["C"], tot["n"], lam)
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(w[:-1].T.copy()))
            self.head.bias.copy_(torch.from_numpy(w[-1].copy()))
        return {"ridge": lam, "cv_mse": cv, "train_loss": self._mse(tot, w), "samples": tot["n"],
                "subjects": len(stats), "reservoir": self.reservoir_size(),
                "spectral_radius": [spectral_radius(self.reservoir(k)[1].double().numpy())
                                    for k in range(self.layers)]}


@register("esn")
class ESN(EchoStateNetwork):
    """Echo state network: one sparse tanh reservoir (leak rate 1) and a ridge readout."""

    leaky = False


@register("leaky_esn")
class LeakyESN(EchoStateNetwork):
    """Leaky-integrator ESN: x(t) = (1 - a) x(t-1) + a tanh(W_in u + W x(t-1) + b); default a = 0.5."""

    default_leak = 0.5


@register("deep_esn")
class DeepESN(EchoStateNetwork):
    """Deep ESN: ``layers`` stacked leaky reservoirs, readout over all of them; default a = 0.5."""

    deep = True
    default_leak = 0.5
    defaults: dict[str, object] = {"layers": 2}
