"""Twin of ``ge_hopfield.c``: the int8 Hopfield network, bit for bit, and its C exporter.

Integer numpy throughout (``int64`` holds the C's ``int32`` sums exactly: with
``|w| <= 127`` and ``n <= MAX_N`` no sum leaves the int32 range).  States may be
one vector ``[n]`` or a batch ``[B, n]``; every batch row behaves as its own C
state.

* :func:`hebbian_int8` stores patterns (``W = sum_k x_k x_k^T - m I``) and refuses
  weights outside ``[-127, 127]``.
* :class:`State` mirrors ``ge_hopfield_state``: ``set``, ``sync_step``,
  ``async_sweep`` (units in ascending order), ``run``.
* :func:`energy` is ``E = -1/2 sum_i sum_{j != i} w_ij o_i o_j``.
* :func:`export_c` writes ``hopfield_data.h`` / ``hopfield_data.c`` atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge.errors import DataError, ModelError
from gaitedge.c_literals import c_identifier, c_string, int_array
from gaitedge.rundir import write_text

#: ``GE_HOPFIELD_MAX_N``
MAX_N = 4096
#: int8 weights are kept in the symmetric range (the C check refuses -128).
W_MAX = 127
#: ``ge_hopfield_outcome`` codes
FIXED_POINT, CYCLE, MAX_ITER = 1, 2, 3
OUTCOME_NAMES = {FIXED_POINT: "fixed_point", CYCLE: "cycle", MAX_ITER: "max_iterations"}
#: ``ge_hopfield_mode``
SYNC, ASYNC = 0, 1


def bipolar(x, n: int | None = None, name: str = "state") -> np.ndarray:
    """``x`` as an int64 array of +1/-1 whose last axis has ``n`` units (DataError otherwise)."""
    a = np.asarray(x)
    if a.ndim == 0 or a.size == 0:
        raise DataError(f"{name}: expected a vector of +1/-1 values, got shape {a.shape}")
    if n is not None and a.shape[-1] != n:
        raise DataError(f"{name}: has {a.shape[-1]} units, the network has {n}")
    if not np.issubdtype(a.dtype, np.number):
        raise DataError(f"{name}: values must be +1 or -1, got dtype {a.dtype}")
    bad = (a != 1) & (a != -1)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{name}: values must be +1 or -1 (bipolar); found {a[idx].item()!r} at index {idx}")
    return a.astype(np.int64)


def hebbian_int8(patterns) -> np.ndarray:
    """``W = sum_k x_k x_k^T - m I`` as int8 ``[n, n]`` (ModelError if a weight leaves [-127, 127])."""
    x = bipolar(patterns, name="patterns")
    if x.ndim != 2:
        raise DataError(f"patterns: expected a [m, n] array of +1/-1, got shape {x.shape}")
    m, n = x.shape
    if n > MAX_N:
        raise ModelError(f"patterns: {n} units; the C runtime takes at most {MAX_N}")
    w = x.T @ x - m * np.eye(n, dtype=np.int64)
    big = int(np.abs(w).max()) if w.size else 0
    if big > W_MAX:
        i, j = (int(v) for v in np.argwhere(np.abs(w) == big)[0])
        raise ModelError(
            f"Hebbian weights do not fit int8: |w[{i},{j}]| = {big} > {W_MAX} with {m} stored patterns; "
            f"store at most {W_MAX} patterns (or patterns that agree less often)"
        )
    return w.astype(np.int8)


def check_weights(w) -> np.ndarray:
    """``ge_hopfield_check``: square, 1..MAX_N units, int8 range without -128, symmetric,
    zero diagonal.  Returns the weights as int64 (ModelError naming the problem)."""
    a = np.asarray(w)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ModelError(f"Hopfield weights must be a square matrix, got shape {a.shape}")
    n = a.shape[0]
    if not 1 <= n <= MAX_N:
        raise ModelError(f"Hopfield weights: {n} units; 1..{MAX_N} are supported")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            raise ModelError("Hopfield weights must be integers for the int8 runtime")
    a = a.astype(np.int64)
    big = int(np.abs(a).max())
    if big > W_MAX:
        i, j = (int(v) for v in np.argwhere(np.abs(a) == big)[0])
        raise ModelError(f"Hopfield weight w[{i},{j}] = {a[i, j]} is outside the int8 range [-{W_MAX}, {W_MAX}]")
    d = np.flatnonzero(np.diag(a))
    if d.size:
        raise ModelError(f"Hopfield weights need a zero diagonal (no self-connections); w[{d[0]},{d[0]}] = "
                         f"{a[d[0], d[0]]}")
    asym = np.argwhere(a != a.T)
    if asym.size:
        i, j = (int(v) for v in asym[0])
        raise ModelError(f"Hopfield weights must be symmetric; w[{i},{j}] = {a[i, j]} but w[{j},{i}] = {a[j, i]}")
    return a


def sign_keep(h: np.ndarray, old: np.ndarray) -> np.ndarray:
    """+1 where ``h > 0``, -1 where ``h < 0``, ``old`` where ``h == 0``."""
    return np.where(h > 0, 1, np.where(h < 0, -1, old)).astype(np.int64)


def energy(w, o) -> np.ndarray | int:
    """``ge_hopfield_energy``: ``-(sum_i o_i sum_{j != i} w_ij o_j) / 2`` (C division, toward zero)."""
    w = np.asarray(w, np.int64)
    o = np.asarray(o, np.int64)
    w0 = w - np.diag(np.diag(w))
    s = np.einsum("...i,ij,...j->...", o, w0, o)
    e = -(np.sign(s) * (np.abs(s) // 2))
    return int(e) if np.ndim(e) == 0 else e


@dataclass
class RunResult:
    """``ge_hopfield_result`` plus the final state (``[n]`` or ``[B, n]``; the others per row)."""

    state: np.ndarray
    outcome: np.ndarray | int
    period: np.ndarray | int
    steps: np.ndarray | int
    energy: np.ndarray | int

    @property
    def outcome_name(self) -> str | list[str]:
        if np.ndim(self.outcome) == 0:
            return OUTCOME_NAMES[int(self.outcome)]
        return [OUTCOME_NAMES[int(v)] for v in np.ravel(self.outcome)]


def _sync(w: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """New state of a synchronous step from ``prev`` (every unit sees ``prev``)."""
    return sign_keep(prev @ w.T, prev)


def _async(w: np.ndarray, o: np.ndarray) -> np.ndarray:
    """New state of an ascending-order sweep from ``o`` (each unit sees the earlier updates)."""
    o = o.copy()
    for i in range(w.shape[0]):
        o[..., i] = sign_keep(o @ w[i], o[..., i])
    return o


class State:
    """``ge_hopfield_state``: the current state and the two before it (for cycle checks)."""

    def __init__(self, w) -> None:
        self.w = check_weights(w)
        self.n = self.w.shape[0]
        self.o = np.ones(self.n, np.int64)
        self.prev = self.o.copy()
        self.prev2 = self.o.copy()
        self.steps = 0

    def set(self, x) -> None:
        """``ge_hopfield_set``: load probe(s) ``x`` (``[n]`` or ``[B, n]``); history ``x, x``."""
        x = bipolar(x, self.n, name="probe")
        self.o, self.prev, self.prev2 = x.copy(), x.copy(), x.copy()
        self.steps = 0

    def _step(self, fn) -> np.ndarray:
        self.prev2, self.prev = self.prev, self.o
        self.o = fn(self.w, self.o)
        self.steps += 1
        return (self.o != self.prev).sum(-1)

    def sync_step(self) -> np.ndarray:
        """``ge_hopfield_sync_step``; returns the number of flipped units (per row)."""
        return self._step(_sync)

    def async_sweep(self) -> np.ndarray:
        """``ge_hopfield_async_sweep``: units 0..n-1 in order, each seeing the earlier updates."""
        return self._step(_async)

    def run(self, mode: int = SYNC, max_iter: int = 100) -> RunResult:
        """``ge_hopfield_run``: fixed point (a step changes nothing), 2-cycle (state equals the
        one two steps earlier) or ``max_iter``; rows of a batch stop independently."""
        if mode not in (SYNC, ASYNC):
            raise ModelError(f"unknown update mode {mode!r}; use SYNC ({SYNC}) or ASYNC ({ASYNC})")
        if max_iter < 0:
            raise ModelError(f"max_iter must be >= 0, got {max_iter}")
        fn = _sync if mode == SYNC else _async
        batch = self.o.ndim == 2
        o, prev, prev2 = (np.atleast_2d(a).copy() for a in (self.o, self.prev, self.prev2))
        b = o.shape[0]
        outcome = np.full(b, MAX_ITER, np.int64)
        period = np.zeros(b, np.int64)
        steps = np.zeros(b, np.int64)
        active = np.arange(b)
        t = 0
        while t < max_iter and active.size:
            t += 1
            prev2[active] = prev[active]
            prev[active] = o[active]
            o[active] = fn(self.w, o[active])
            steps[active] = t
            fixed = (o[active] == prev[active]).all(-1)
            cyc = ~fixed & (o[active] == prev2[active]).all(-1)
            outcome[active[fixed]], period[active[fixed]] = FIXED_POINT, 1
            outcome[active[cyc]], period[active[cyc]] = CYCLE, 2
            active = active[~(fixed | cyc)]
        self.steps += t
        e = energy(self.w, o)
        if batch:
            self.o, self.prev, self.prev2 = o, prev, prev2
            return RunResult(o.copy(), outcome, period, steps, e)
        self.o, self.prev, self.prev2 = o[0], prev[0], prev2[0]
        return RunResult(o[0].copy(), int(outcome[0]), int(period[0]), int(steps[0]), int(e[0]))


def run(w, probe, mode: int = SYNC, max_iter: int = 100) -> RunResult:
    """``ge_hopfield_set`` then ``ge_hopfield_run`` (probe ``[n]`` or a batch ``[B, n]``)."""
    st = State(w)
    st.set(probe)
    return st.run(mode, max_iter)


def match(patterns, o) -> int:
    """``ge_hopfield_match``: index of the stored pattern equal to ``o``, or -1."""
    p = np.asarray(patterns, np.int64)
    hit = np.flatnonzero((p == np.asarray(o, np.int64)).all(-1))
    return int(hit[0]) if hit.size else -1


def write_files_atomic(files: dict[Path, str]) -> None:
    """Write each text file whole or not at all (:func:`gaitedge.rundir.write_text`), creating folders."""
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)


def export_c(w, out_dir: str | Path, patterns=None, labels: list[str] | None = None,
             symbol: str = "ge_hopfield_data", stem: str = "hopfield_data") -> list[Path]:
    """Write ``<stem>.h`` / ``<stem>.c``: the ``ge_hopfield_params`` ``symbol`` with its int8
    weights and, when given, the stored patterns (``symbol_patterns [m][n]``, for
    ``ge_hopfield_match``) and their labels.  Returns the two paths."""
    w = check_weights(w)
    n = w.shape[0]
    symbol = c_identifier(symbol)
    up = symbol.upper()
    m = 0
    if patterns is not None:
        p = bipolar(patterns, n, name="patterns")
        p = p.reshape(-1, n)
        m = p.shape[0]
        if labels is not None and len(labels) != m:
            raise DataError(f"{len(labels)} labels for {m} patterns")
    elif labels is not None:
        raise DataError("labels need the patterns they name")
    out = Path(out_dir)
    h = [f"/* {stem}.h - generated by gaitedge.quant.hopfield.export_c(); do not edit. */",
         f"#ifndef {up}_H", f"#define {up}_H", "", '#include "ge_hopfield.h"', "",
         f"#define {up}_N {n}u", f"#define {up}_M {m}u",
         "/* caller memory for ge_hopfield_init() */",
         f"#define {up}_MEM_BYTES GE_HOPFIELD_MEM_BYTES({up}_N)", "",
         f"extern const ge_hopfield_params {symbol};"]
    c = [f"/* {stem}.c - generated by gaitedge.quant.hopfield.export_c(); do not edit.",
         f" * Hopfield network: {n} units, int8 weights (symmetric, zero diagonal)"
         + (f", {m} stored patterns." if m else "."), " */", f'#include "{stem}.h"', "",
         int_array(f"static const int8_t {symbol}_w", w, per_line=16),
         f"const ge_hopfield_params {symbol} = {{{n}u, {symbol}_w}};"]
    if m:
        h.append(f"extern const int8_t {symbol}_patterns[{m * n}];")
        c += ["", int_array(f"const int8_t {symbol}_patterns", p, per_line=16).rstrip()]
        if labels is not None:
            h.append(f"extern const char *const {symbol}_labels[{m}];")
            c += ["", f"const char *const {symbol}_labels[{m}] = {{" + ", ".join(c_string(s) for s in labels) + "};"]
    h += ["", "#endif"]
    paths = {out / f"{stem}.h": "\n".join(h) + "\n", out / f"{stem}.c": "\n".join(c) + "\n"}
    write_files_atomic(paths)
    return list(paths)
