"""Twin of ``ge_bam.c``: the int8 bidirectional associative memory, bit for bit, and its
C exporter.

Layers A (``n_a`` units) and B (``n_b``), weights ``W [n_a, n_b]`` (int8, no -128),
Hebbian storage ``W = sum_k A_k B_k^T``.  The forward pass is ``b = sign(W^T a)``, the
backward pass ``a = sign(W b)``; a unit whose net input is 0 keeps its value.  One
iteration from A is forward then backward (from B: backward then forward); recall
stops after the first iteration that changes nothing.  States may be ``[n]`` or a
batch ``[B, n]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge.errors import DataError, ModelError
from gaitedge.c_literals import c_identifier, c_string, int_array
from gaitedge.quant.hopfield import W_MAX, bipolar, sign_keep, write_files_atomic

#: ``GE_BAM_MAX_N``
MAX_N = 4096
#: ``ge_bam_outcome`` codes
FIXED_POINT, MAX_ITER = 1, 3
OUTCOME_NAMES = {FIXED_POINT: "fixed_point", MAX_ITER: "max_iterations"}
#: ``ge_bam_direction``
FROM_A, FROM_B = 0, 1


def hebbian_int8(a_patterns, b_patterns) -> np.ndarray:
    """``W = sum_k A_k B_k^T`` as int8 ``[n_a, n_b]`` (ModelError if a weight leaves [-127, 127])."""
    a = bipolar(a_patterns, name="A patterns")
    b = bipolar(b_patterns, name="B patterns")
    if a.ndim != 2 or b.ndim != 2:
        raise DataError(f"BAM pairs: expected [m, n_a] and [m, n_b] arrays, got shapes {a.shape} and {b.shape}")
    if a.shape[0] != b.shape[0]:
        raise DataError(f"BAM pairs: {a.shape[0]} A patterns but {b.shape[0]} B patterns")
    if a.shape[1] > MAX_N or b.shape[1] > MAX_N:
        raise ModelError(f"BAM layers of {a.shape[1]} and {b.shape[1]} units; the C runtime takes at most {MAX_N}")
    w = a.T @ b
    big = int(np.abs(w).max())
    if big > W_MAX:
        i, j = (int(v) for v in np.argwhere(np.abs(w) == big)[0])
        raise ModelError(f"BAM Hebbian weights do not fit int8: |w[{i},{j}]| = {big} > {W_MAX} with "
                         f"{a.shape[0]} stored pairs; store at most {W_MAX} pairs")
    return w.astype(np.int8)


def check_weights(w) -> np.ndarray:
    """``ge_bam_check``: a 2-D integer matrix of 1..MAX_N x 1..MAX_N in [-127, 127] (int64)."""
    a = np.asarray(w)
    if a.ndim != 2:
        raise ModelError(f"BAM weights must be a matrix [n_a, n_b], got shape {a.shape}")
    if not (1 <= a.shape[0] <= MAX_N and 1 <= a.shape[1] <= MAX_N):
        raise ModelError(f"BAM weights {a.shape}: each layer needs 1..{MAX_N} units")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            raise ModelError("BAM weights must be integers for the int8 runtime")
    a = a.astype(np.int64)
    big = int(np.abs(a).max())
    if big > W_MAX:
        i, j = (int(v) for v in np.argwhere(np.abs(a) == big)[0])
        raise ModelError(f"BAM weight w[{i},{j}] = {a[i, j]} is outside the int8 range [-{W_MAX}, {W_MAX}]")
    return a


def energy(w, a, b) -> np.ndarray | int:
    """``ge_bam_energy``: ``-a^T W b``."""
    e = -np.einsum("...i,ij,...j->...", np.asarray(a, np.int64), np.asarray(w, np.int64), np.asarray(b, np.int64))
    return int(e) if np.ndim(e) == 0 else e


@dataclass
class RunResult:
    """``ge_bam_result`` plus the final layers."""

    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray | int
    steps: np.ndarray | int
    energy: np.ndarray | int


class State:
    """``ge_bam_state``: the two layers (both start at +1)."""

    def __init__(self, w) -> None:
        self.w = check_weights(w)
        self.n_a, self.n_b = self.w.shape
        self.a = np.ones(self.n_a, np.int64)
        self.b = np.ones(self.n_b, np.int64)

    def set(self, a=None, b=None) -> None:
        """``ge_bam_set``: load either or both layers (nothing changes if one is invalid)."""
        na = bipolar(a, self.n_a, name="layer A") if a is not None else None
        nb = bipolar(b, self.n_b, name="layer B") if b is not None else None
        if na is not None:
            self.a = na.copy()
        if nb is not None:
            self.b = nb.copy()

    def forward(self) -> np.ndarray:
        """``ge_bam_forward``: ``b = sign(W^T a)``; flipped B units per row."""
        old = np.broadcast_to(self.b, np.broadcast_shapes(self.a.shape[:-1], self.b.shape[:-1]) + (self.n_b,))
        self.b = sign_keep(self.a @ self.w, old)
        return (self.b != old).sum(-1)

    def backward(self) -> np.ndarray:
        """``ge_bam_backward``: ``a = sign(W b)``; flipped A units per row."""
        old = np.broadcast_to(self.a, np.broadcast_shapes(self.a.shape[:-1], self.b.shape[:-1]) + (self.n_a,))
        self.a = sign_keep(self.b @ self.w.T, old)
        return (self.a != old).sum(-1)

    def run(self, start: int = FROM_A, max_iter: int = 100) -> RunResult:
        """``ge_bam_run``: iterations until one changes nothing (rows of a batch independently)."""
        if start not in (FROM_A, FROM_B):
            raise ModelError(f"unknown start layer {start!r}; use FROM_A ({FROM_A}) or FROM_B ({FROM_B})")
        if max_iter < 0:
            raise ModelError(f"max_iter must be >= 0, got {max_iter}")
        shape = np.broadcast_shapes(self.a.shape[:-1], self.b.shape[:-1])
        batch = len(shape) == 1
        a = np.broadcast_to(self.a, shape + (self.n_a,)).reshape(-1, self.n_a).copy()
        b = np.broadcast_to(self.b, shape + (self.n_b,)).reshape(-1, self.n_b).copy()
        rows = a.shape[0]
        outcome = np.full(rows, MAX_ITER, np.int64)
        steps = np.zeros(rows, np.int64)
        active = np.arange(rows)
        t = 0
        while t < max_iter and active.size:
            t += 1
            aa, bb = a[active], b[active]
            if start == FROM_A:
                nb = sign_keep(aa @ self.w, bb)
                na = sign_keep(nb @ self.w.T, aa)
            else:
                na = sign_keep(bb @ self.w.T, aa)
                nb = sign_keep(na @ self.w, bb)
            stable = (na == aa).all(-1) & (nb == bb).all(-1)
            a[active], b[active] = na, nb
            steps[active] = t
            outcome[active[stable]] = FIXED_POINT
            active = active[~stable]
        e = energy(self.w, a, b)
        if batch:
            self.a, self.b = a, b
            return RunResult(a.copy(), b.copy(), outcome, steps, e)
        self.a, self.b = a[0], b[0]
        return RunResult(a[0].copy(), b[0].copy(), int(outcome[0]), int(steps[0]), int(e[0]))


def run(w, a=None, b=None, start: int | None = None, max_iter: int = 100) -> RunResult:
    """``ge_bam_set`` (on a fresh state: unset layers are +1) then ``ge_bam_run``.  ``start``
    defaults to the layer given (A when both are)."""
    st = State(w)
    if a is None and b is None:
        raise DataError("BAM recall needs a probe for layer A or layer B")
    st.set(a, b)
    if start is None:
        start = FROM_A if a is not None else FROM_B
    return st.run(start, max_iter)


def export_c(w, out_dir: str | Path, a_patterns=None, b_patterns=None, labels: list[str] | None = None,
             symbol: str = "ge_bam_data", stem: str = "bam_data") -> list[Path]:
    """Write ``<stem>.h`` / ``<stem>.c``: the ``ge_bam_params`` ``symbol`` with its int8 weights
    and, when given, the stored pairs (``symbol_a [m][n_a]``, ``symbol_b [m][n_b]``) and
    their labels.  Returns the two paths."""
    w = check_weights(w)
    n_a, n_b = w.shape
    symbol = c_identifier(symbol)
    up = symbol.upper()
    m = 0
    if (a_patterns is None) != (b_patterns is None):
        raise DataError("give both A and B patterns of the stored pairs, or neither")
    if a_patterns is not None:
        pa = bipolar(a_patterns, n_a, name="A patterns").reshape(-1, n_a)
        pb = bipolar(b_patterns, n_b, name="B patterns").reshape(-1, n_b)
        if len(pa) != len(pb):
            raise DataError(f"{len(pa)} A patterns but {len(pb)} B patterns")
        m = len(pa)
        if labels is not None and len(labels) != m:
            raise DataError(f"{len(labels)} labels for {m} pairs")
    elif labels is not None:
        raise DataError("labels need the pairs they name")
    h = [f"/* {stem}.h - generated by gaitedge.quant.bam.export_c(); do not edit. */",
         f"#ifndef {up}_H", f"#define {up}_H", "", '#include "ge_bam.h"', "",
         f"#define {up}_N_A {n_a}u", f"#define {up}_N_B {n_b}u", f"#define {up}_M {m}u",
         "/* caller memory for ge_bam_init() */",
         f"#define {up}_MEM_BYTES GE_BAM_MEM_BYTES({up}_N_A, {up}_N_B)", "",
         f"extern const ge_bam_params {symbol};"]
    c = [f"/* {stem}.c - generated by gaitedge.quant.bam.export_c(); do not edit.",
         f" * BAM: {n_a} x {n_b} int8 weights" + (f", {m} stored pairs." if m else "."), " */",
         f'#include "{stem}.h"', "",
         int_array(f"static const int8_t {symbol}_w", w, per_line=16),
         f"const ge_bam_params {symbol} = {{{n_a}u, {n_b}u, {symbol}_w}};"]
    if m:
        h += [f"extern const int8_t {symbol}_a[{m * n_a}];", f"extern const int8_t {symbol}_b[{m * n_b}];"]
        c += ["", int_array(f"const int8_t {symbol}_a", pa, per_line=16).rstrip(),
              "", int_array(f"const int8_t {symbol}_b", pb, per_line=16).rstrip()]
        if labels is not None:
            h.append(f"extern const char *const {symbol}_labels[{m}];")
            c += ["", f"const char *const {symbol}_labels[{m}] = {{" + ", ".join(c_string(s) for s in labels) + "};"]
    h += ["", "#endif"]
    out = Path(out_dir)
    files = {out / f"{stem}.h": "\n".join(h) + "\n", out / f"{stem}.c": "\n".join(c) + "\n"}
    write_files_atomic(files)
    return list(files)
