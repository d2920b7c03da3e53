"""Discrete Hopfield network (reference implementation, float weights).

States are bipolar (+1 / -1).  Storage is Hebbian,
``W = sum_k x_k x_k^T - m I`` (m stored patterns, so the diagonal is zero: no
self-connections).  A unit's net input is ``net_i = sum_j w_ij o_j`` and its update

    o_i <- +1 if net_i > 0,  -1 if net_i < 0,  o_i (unchanged) if net_i == 0.

* **Synchronous** step: every unit from the same previous state.
* **Asynchronous** sweep: one unit at a time in a fixed order (default ascending
  index 0..n-1, the order of the C runtime), each seeing the updates made before it.
* **Energy** ``E = -1/2 sum_i sum_{j != i} w_ij o_i o_j``.  With symmetric weights an
  asynchronous update that flips a unit lowers E strictly, so asynchronous
  iteration always reaches a fixed point; synchronous iteration ends in a fixed
  point or a cycle of period 2.

:meth:`HopfieldNetwork.run` iterates until a fixed point, a repeated state (a
cycle, reported with its period) or ``max_iter`` steps.  The int8 fixed-point
version for microcontrollers is :mod:`gaitedge.quant.hopfield` / ``ge_hopfield.c``;
for integer weights the two agree step for step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from gaitedge.errors import DataError, ModelError

Mode = Literal["sync", "async"]
Outcome = Literal["fixed_point", "cycle", "max_iterations"]
MODES: tuple[str, ...] = ("sync", "async")


def as_bipolar(x, n: int | None = None, name: str = "pattern") -> np.ndarray:
    """Validate ``x`` as +1/-1 values (last axis ``n`` units when given); returns int8.

    Raises DataError naming the first offending value or the size mismatch.
    """
    a = np.asarray(x)
    if a.ndim == 0 or a.size == 0:
        raise DataError(f"{name}: expected a vector of +1/-1 values, got shape {a.shape}")
    if n is not None and a.shape[-1] != n:
        raise DataError(f"{name}: has {a.shape[-1]} units, the network has {n}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise DataError(f"{name}: values must be +1 or -1, got dtype {a.dtype}")
    bad = (a != 1) & (a != -1)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{name}: values must be +1 or -1 (bipolar); found {a[idx].item()!r} at index {idx}")
    return a.astype(np.int8)


def sign_keep(net: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """The activation: +1 where ``net > 0``, -1 where ``net < 0``, ``prev`` where ``net == 0``."""
    return np.where(net > 0, 1, np.where(net < 0, -1, prev)).astype(np.int8)


def hebbian(patterns) -> np.ndarray:
    """Hebbian weights ``sum_k x_k x_k^T - m I`` of ``patterns [m, n]`` (float64)."""
    x = as_bipolar(patterns, name="patterns")
    if x.ndim != 2:
        raise DataError(f"patterns: expected an [m, n] array of +1/-1, got shape {x.shape}")
    xf = x.astype(np.float64)
    return xf.T @ xf - len(xf) * np.eye(xf.shape[1])


@dataclass
class Recall:
    """Result of :meth:`HopfieldNetwork.run`.

    Attributes:
        state: final state (int8 +1/-1).
        outcome: ``fixed_point``, ``cycle`` or ``max_iterations``.
        period: 1 for a fixed point, the cycle length for a cycle, 0 otherwise.
        steps: steps (or sweeps) computed, including the one that revealed the outcome.
        energy: energy of the final state.
        trajectory: states ``x_0 .. x_steps`` (``x_0`` is the probe).
        energies: energy of every state of the trajectory.
    """

    state: np.ndarray
    outcome: Outcome
    period: int
    steps: int
    energy: float
    trajectory: list[np.ndarray] = field(default_factory=list)
    energies: list[float] = field(default_factory=list)


class HopfieldNetwork:
    """A Hopfield network with symmetric, zero-diagonal weights.

    Args:
        weights: ``[n, n]`` symmetric matrix with zero diagonal.
        patterns: the stored patterns, when the weights came from them (for
            :meth:`match`).

    Raises ModelError for a non-square, non-symmetric, non-finite or self-connected
    weight matrix.
    """

    def __init__(self, weights, patterns=None) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
            raise ModelError(f"Hopfield weights must be a non-empty square matrix, got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ModelError("Hopfield weights must be finite")
        d = np.flatnonzero(np.diag(w))
        if d.size:
            raise ModelError(f"Hopfield weights need a zero diagonal (no self-connections); "
                             f"w[{d[0]},{d[0]}] = {w[d[0], d[0]]:g}")
        asym = np.argwhere(w != w.T)
        if asym.size:
            i, j = (int(v) for v in asym[0])
            raise ModelError(f"Hopfield weights must be symmetric; w[{i},{j}] = {w[i, j]:g} but "
                             f"w[{j},{i}] = {w[j, i]:g}")
        self.weights = w
        self.n = w.shape[0]
        self.patterns = None if patterns is None else as_bipolar(patterns, self.n, name="patterns").reshape(-1, self.n)

    @classmethod
    def from_patterns(cls, patterns) -> "HopfieldNetwork":
        """Store ``patterns [m, n]`` with the Hebbian rule ``W = sum_k x_k x_k^T - m I``."""
        return cls(hebbian(patterns), patterns=patterns)

    # ------------------------------------------------------------------ dynamics

    def net(self, state) -> np.ndarray:
        """Net inputs (activations) ``W o`` of a state ``[n]`` or batch ``[B, n]``."""
        o = as_bipolar(state, self.n, name="state")
        return o.astype(np.float64) @ self.weights.T

    def step_sync(self, state) -> np.ndarray:
        """One synchronous step: ``o' = sign(W o)`` with zero keeping the previous value."""
        o = as_bipolar(state, self.n, name="state")
        return sign_keep(o.astype(np.float64) @ self.weights.T, o)

    def _order(self, order: Sequence[int] | None) -> np.ndarray:
        if order is None:
            return np.arange(self.n)
        idx = np.asarray(order, dtype=np.int64)
        if idx.shape != (self.n,) or not np.array_equal(np.sort(idx), np.arange(self.n)):
            raise DataError(f"update order must be a permutation of 0..{self.n - 1}")
        return idx

    def sweep_async(self, state, order: Sequence[int] | None = None) -> np.ndarray:
        """One asynchronous sweep: each unit in ``order`` (default ascending) updated in turn."""
        o = as_bipolar(state, self.n, name="state").copy()
        w = self.weights
        for i in self._order(order):
            o[..., i] = sign_keep(o.astype(np.float64) @ w[i], o[..., i])
        return o

    def energy(self, state) -> np.ndarray | float:
        """``E = -1/2 sum_i sum_{j != i} w_ij o_i o_j`` of a state or batch of states."""
        o = as_bipolar(state, self.n, name="state").astype(np.float64)
        e = -0.5 * np.einsum("...i,ij,...j->...", o, self.weights, o)
        return float(e) if np.ndim(e) == 0 else e

    def is_fixed_point(self, state) -> bool:
        """Whether a synchronous step (equivalently an asynchronous sweep) leaves ``state`` as it is."""
        o = as_bipolar(state, self.n, name="state")
        return bool(np.array_equal(self.step_sync(o), o))

    def run(self, probe, mode: Mode = "async", max_iter: int = 100, order: Sequence[int] | None = None,
            record: bool = True) -> Recall:
        """Iterate from ``probe`` until a state repeats or ``max_iter`` steps.

        A state equal to the one before is a fixed point (period 1); a state equal to an
        earlier one is a cycle whose period is the distance between the two.  ``mode``
        ``sync`` takes synchronous steps, ``async`` asynchronous sweeps (``order``).
        """
        if mode not in MODES:
            raise DataError(f"unknown update mode {mode!r}; use sync or async")
        if max_iter < 0:
            raise DataError(f"max_iter must be >= 0, got {max_iter}")
        o = as_bipolar(probe, self.n, name="probe")
        if o.ndim != 1:
            raise DataError(f"probe: expected one state [n], got shape {o.shape}; use run_many for batches")
        order_idx = self._order(order)
        seen = {o.tobytes(): 0}
        traj = [o.copy()]
        outcome: Outcome = "max_iterations"
        period = 0
        t = 0
        while t < max_iter:
            t += 1
            o = self.step_sync(o) if mode == "sync" else self.sweep_async(o, order_idx)
            if record:
                traj.append(o.copy())
            key = o.tobytes()
            if key in seen:
                period = t - seen[key]
                outcome = "fixed_point" if period == 1 else "cycle"
                break
            seen[key] = t
        energies = [self.energy(s) for s in traj] if record else []
        return Recall(state=o, outcome=outcome, period=period, steps=t, energy=self.energy(o),
                      trajectory=traj if record else [], energies=energies)

    def run_many(self, probes, mode: Mode = "async", max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """Iterate a batch ``[B, n]`` (ascending order for ``async``) until each row stops changing
        or ``max_iter`` steps; returns (final states, whether each row reached a fixed point)."""
        if mode not in MODES:
            raise DataError(f"unknown update mode {mode!r}; use sync or async")
        o = as_bipolar(probes, self.n, name="probes").reshape(-1, self.n).copy()
        fixed = np.zeros(len(o), bool)
        active = np.arange(len(o))
        for _ in range(max_iter):
            if not active.size:
                break
            cur = o[active]
            new = self.step_sync(cur) if mode == "sync" else self.sweep_async(cur)
            same = (new == cur).all(1)
            o[active] = new
            fixed[active[same]] = True
            active = active[~same]
        return o, fixed

    # ------------------------------------------------------------------ stored patterns

    def match(self, state) -> tuple[int | None, bool]:
        """Which stored pattern ``state`` is: ``(k, False)`` for pattern k, ``(k, True)`` for its
        negation ``-x_k`` (also an attractor of every Hebbian network), ``(None, False)`` for a
        spurious state.  ModelError if the network holds no patterns."""
        if self.patterns is None:
            raise ModelError("this network was built from weights alone; it knows no stored patterns")
        o = as_bipolar(state, self.n, name="state")
        hit = np.flatnonzero((self.patterns == o).all(1))
        if hit.size:
            return int(hit[0]), False
        hit = np.flatnonzero((self.patterns == -o).all(1))
        if hit.size:
            return int(hit[0]), True
        return None, False

    def overlaps(self, state) -> np.ndarray:
        """Overlap ``x_k . o / n`` (in [-1, 1]) of a state with every stored pattern."""
        if self.patterns is None:
            raise ModelError("this network was built from weights alone; it knows no stored patterns")
        o = as_bipolar(state, self.n, name="state").astype(np.float64)
        return o @ self.patterns.T.astype(np.float64) / self.n

    def weights_int8(self) -> np.ndarray:
        """The weights as int8 for the C runtime (ModelError if they are not integers in [-127, 127])."""
        from gaitedge.quant.hopfield import check_weights, hebbian_int8

        if self.patterns is not None and np.array_equal(hebbian(self.patterns), self.weights):
            return hebbian_int8(self.patterns)  # its error names the number of patterns
        return check_weights(self.weights).astype(np.int8)
