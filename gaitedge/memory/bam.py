"""Bidirectional associative memory (BAM), reference implementation.

Two layers of bipolar units, A (``n_a``) and B (``n_b``), store pairs
``(A_k, B_k)`` with the Hebbian rule ``W = sum_k A_k B_k^T`` (``[n_a, n_b]``).
Recall from a probe ``u`` of layer A alternates

    o1 = sign(W^T u)   (layer B),   o2 = sign(W o1)   (layer A),   ...

with the same activation as the Hopfield network: a unit whose net input is 0
keeps its previous value.  Layer B starts at +1 on every unit unless a starting
value is given.  One iteration is a forward and a backward pass; recall stops after
the first iteration that changes nothing.  ``E(a, b) = -a^T W b`` never rises, so
recall always ends in a stable pair (``max_iter`` is a safety bound).  Recall can
equally start from a probe of layer B.  The int8 version for microcontrollers is
:mod:`gaitedge.quant.bam` / ``ge_bam.c``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gaitedge.errors import DataError, ModelError
from gaitedge.memory.hopfield import as_bipolar, sign_keep

Layer = Literal["a", "b"]


@dataclass
class BAMRecall:
    """Result of :meth:`BAM.recall`: the final pair, ``fixed_point`` or ``max_iterations``,
    the iterations computed (including the one that changed nothing), the final energy
    and the states after every pass (``(a, b)`` pairs, the probe pair first)."""

    a: np.ndarray
    b: np.ndarray
    outcome: Literal["fixed_point", "max_iterations"]
    steps: int
    energy: float
    trajectory: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


class BAM:
    """A bidirectional associative memory with weights ``W [n_a, n_b]``.

    Args:
        weights: the weight matrix.
        a_patterns, b_patterns: the stored pairs, when the weights came from them.
    """

    def __init__(self, weights, a_patterns=None, b_patterns=None) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or 0 in w.shape:
            raise ModelError(f"BAM weights must be a non-empty matrix [n_a, n_b], got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ModelError("BAM weights must be finite")
        self.weights = w
        self.n_a, self.n_b = w.shape
        if (a_patterns is None) != (b_patterns is None):
            raise DataError("give both halves of the stored pairs, or neither")
        self.a_patterns = None if a_patterns is None else as_bipolar(a_patterns, self.n_a, "A patterns").reshape(-1, self.n_a)
        self.b_patterns = None if b_patterns is None else as_bipolar(b_patterns, self.n_b, "B patterns").reshape(-1, self.n_b)
        if self.a_patterns is not None and len(self.a_patterns) != len(self.b_patterns):
            raise DataError(f"{len(self.a_patterns)} A patterns but {len(self.b_patterns)} B patterns")

    @classmethod
    def from_pairs(cls, a_patterns, b_patterns) -> "BAM":
        """Store pairs ``(A_k, B_k)``: ``W = sum_k A_k B_k^T``."""
        a = as_bipolar(a_patterns, name="A patterns")
        b = as_bipolar(b_patterns, name="B patterns")
        if a.ndim != 2 or b.ndim != 2:
            raise DataError(f"BAM pairs: expected [m, n_a] and [m, n_b] arrays, got shapes {a.shape} and {b.shape}")
        if len(a) != len(b):
            raise DataError(f"BAM pairs: {len(a)} A patterns but {len(b)} B patterns")
        w = a.astype(np.float64).T @ b.astype(np.float64)
        return cls(w, a, b)

    def forward(self, a, b_prev) -> np.ndarray:
        """Layer B from layer A: ``sign(W^T a)``, zero keeping ``b_prev``."""
        a = as_bipolar(a, self.n_a, "layer A")
        b_prev = as_bipolar(b_prev, self.n_b, "layer B")
        return sign_keep(a.astype(np.float64) @ self.weights, b_prev)

    def backward(self, b, a_prev) -> np.ndarray:
        """Layer A from layer B: ``sign(W b)``, zero keeping ``a_prev``."""
        b = as_bipolar(b, self.n_b, "layer B")
        a_prev = as_bipolar(a_prev, self.n_a, "layer A")
        return sign_keep(b.astype(np.float64) @ self.weights.T, a_prev)

    def energy(self, a, b) -> float:
        """``E = -a^T W b``."""
        a = as_bipolar(a, self.n_a, "layer A").astype(np.float64)
        b = as_bipolar(b, self.n_b, "layer B").astype(np.float64)
        return float(-(a @ self.weights @ b))

    def recall(self, a=None, b=None, start: Layer | None = None, max_iter: int = 100) -> BAMRecall:
        """Alternate the passes from a probe until an iteration changes nothing.

        Give a probe ``a`` (recall B, then A again) or ``b`` (recall A); the other layer
        starts at +1 unless given too.  ``start`` picks the first pass's source layer
        when both are given (default ``a``).
        """
        if a is None and b is None:
            raise DataError("BAM recall needs a probe for layer A or layer B")
        if max_iter < 0:
            raise DataError(f"max_iter must be >= 0, got {max_iter}")
        start = start or ("a" if a is not None else "b")
        if start not in ("a", "b"):
            raise DataError(f"start must be 'a' or 'b', got {start!r}")
        a = np.ones(self.n_a, np.int8) if a is None else as_bipolar(a, self.n_a, "layer A").copy()
        b = np.ones(self.n_b, np.int8) if b is None else as_bipolar(b, self.n_b, "layer B").copy()
        if a.ndim != 1 or b.ndim != 1:
            raise DataError("BAM recall takes one probe at a time")
        traj = [(a.copy(), b.copy())]
        outcome = "max_iterations"
        t = 0
        while t < max_iter:
            t += 1
            if start == "a":
                nb = self.forward(a, b)
                traj.append((a.copy(), nb.copy()))
                na = self.backward(nb, a)
                traj.append((na.copy(), nb.copy()))
            else:
                na = self.backward(b, a)
                traj.append((na.copy(), b.copy()))
                nb = self.forward(na, b)
                traj.append((na.copy(), nb.copy()))
            stable = np.array_equal(na, a) and np.array_equal(nb, b)
            a, b = na, nb
            if stable:
                outcome = "fixed_point"
                break
        return BAMRecall(a=a, b=b, outcome=outcome, steps=t, energy=self.energy(a, b), trajectory=traj)

    def match(self, a=None, b=None) -> int | None:
        """Index of the stored pair whose A half equals ``a`` and/or B half equals ``b``; None if none."""
        if self.a_patterns is None:
            raise ModelError("this BAM was built from weights alone; it knows no stored pairs")
        ok = np.ones(len(self.a_patterns), bool)
        if a is not None:
            ok &= (self.a_patterns == as_bipolar(a, self.n_a, "layer A")).all(1)
        if b is not None:
            ok &= (self.b_patterns == as_bipolar(b, self.n_b, "layer B")).all(1)
        hit = np.flatnonzero(ok)
        return int(hit[0]) if hit.size else None

    def weights_int8(self) -> np.ndarray:
        """The weights as int8 for the C runtime (ModelError if they do not fit [-127, 127])."""
        from gaitedge.quant.bam import check_weights, hebbian_int8

        if self.a_patterns is not None and np.array_equal(
            self.a_patterns.astype(np.float64).T @ self.b_patterns.astype(np.float64), self.weights
        ):
            return hebbian_int8(self.a_patterns, self.b_patterns)
        return check_weights(self.weights).astype(np.int8)
