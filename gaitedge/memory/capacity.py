"""Capacity experiment: recall rate of a Hebbian Hopfield network against its load m/n.

For each number of stored patterns m, ``trials`` networks of ``n`` units each store m
random patterns (independent, equiprobable +1/-1 bits).  Every stored pattern is
probed with a fraction ``noise`` of its bits flipped (chosen at random) and the
network iterates (asynchronous sweeps in ascending order, or synchronous steps)
until it stops changing or ``max_iter`` steps.  A probe is *recalled* when the
final state equals the stored pattern exactly; the recall rate is the fraction of
probes recalled.  The experiment also reports how many stored patterns are fixed
points themselves (``stable``).  The classical estimate of the capacity of a Hebbian
memory is about 0.138 n patterns.

All trials of one load run as one batch ([trials, m, n] arrays), with the update rule
of :mod:`gaitedge.memory.hopfield` (zero net input keeps the previous value).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from gaitedge.errors import DataError
from gaitedge.memory.hopfield import MODES, Mode, sign_keep
from gaitedge.rundir import atomic_path

#: the classical capacity estimate of Hebbian storage (patterns per unit)
HEBBIAN_CAPACITY = 0.138


@dataclass
class CapacityResult:
    """Recall rate per load.  ``loads[i] = m[i] / n``."""

    n: int
    m: np.ndarray
    loads: np.ndarray
    recall: np.ndarray        # fraction of probes that settled exactly on their pattern
    stable: np.ndarray        # fraction of stored patterns that are fixed points
    bit_error: np.ndarray     # mean fraction of wrong bits in the final states
    trials: int
    noise: float
    mode: str
    seed: int

    def rows(self) -> list[dict]:
        return [{"m": int(m), "load": float(a), "recall": float(r), "stable": float(s), "bit_error": float(b)}
                for m, a, r, s, b in zip(self.m, self.loads, self.recall, self.stable, self.bit_error)]


def _hebbian_batch(x: np.ndarray) -> np.ndarray:
    """``[T, m, n]`` patterns -> ``[T, n, n]`` Hebbian weights (zero diagonal)."""
    xf = x.astype(np.float32)
    w = np.einsum("tmi,tmj->tij", xf, xf)
    idx = np.arange(x.shape[2])
    w[:, idx, idx] = 0.0  # = sum_k x_ki^2 - m
    return w


def _settle(w: np.ndarray, o: np.ndarray, mode: str, max_iter: int) -> np.ndarray:
    """Iterate states ``o [T, m, n]`` under weights ``w [T, n, n]`` until no change (or max_iter).

    Asynchronous sweeps keep the net inputs ``h = o W`` and update them when a unit
    flips (``h += (o_i' - o_i) w_i``), which gives the same states as recomputing each
    unit's net input from scratch.
    """
    o = o.astype(np.float32)  # +1/-1 exactly; sums of small integers are exact in float32
    if mode == "sync":
        prev = None
        for _ in range(max_iter):
            new = sign_keep(o @ w, o).astype(np.float32)  # w symmetric: (W o)^T = o^T W
            if np.array_equal(new, o) or (prev is not None and np.array_equal(new, prev)):
                o = new
                break  # every probe at a fixed point or in a 2-cycle: nothing more can change
            prev, o = o, new
        return o.astype(np.int8)
    active = np.arange(o.shape[0])  # trials with a unit that flipped in the last sweep
    for _ in range(max_iter):
        if not active.size:
            break
        wa = w[active]
        ou = np.ascontiguousarray(o[active].transpose(2, 0, 1))  # unit-major [n, T', m]
        h = np.ascontiguousarray((o[active] @ wa).transpose(2, 0, 1))
        changed = np.zeros(active.size, bool)
        for i in range(ou.shape[0]):
            old = ou[i]
            new = np.where(h[i] == 0, old, np.sign(h[i]))
            t_idx, m_idx = np.nonzero(new != old)
            if t_idx.size:
                changed[t_idx] = True
                d = new[t_idx, m_idx] - old[t_idx, m_idx]
                ou[i] = new
                h[:, t_idx, m_idx] += d[None, :] * wa[t_idx, i, :].T
        o[active] = ou.transpose(1, 2, 0)
        active = active[changed]
    return o.astype(np.int8)


def capacity_experiment(n: int = 100, ms: Sequence[int] | None = None, trials: int = 200, noise: float = 0.1,
                        mode: Mode = "async", max_iter: int = 30, seed: int = 0) -> CapacityResult:
    """Recall rate for each number of stored patterns ``ms`` (default 1..0.4 n in ~20 steps)."""
    if n < 2:
        raise DataError(f"n must be >= 2 units, got {n}")
    if trials < 1:
        raise DataError(f"trials must be >= 1, got {trials}")
    if not 0.0 <= noise < 0.5:
        raise DataError(f"noise is the fraction of flipped probe bits, in [0, 0.5); got {noise}")
    if mode not in MODES:
        raise DataError(f"unknown update mode {mode!r}; use sync or async")
    if ms is None:
        ms = sorted({max(1, int(round(v))) for v in np.linspace(1, 0.4 * n, 20)})
    ms = [int(m) for m in ms]
    if any(m < 1 for m in ms):
        raise DataError(f"numbers of patterns must be >= 1, got {ms}")
    rng = np.random.default_rng(seed)
    k = int(round(noise * n))
    rec, stab, berr = [], [], []
    for m in ms:
        x = rng.choice(np.array([-1, 1], np.int8), size=(trials, m, n))
        w = _hebbian_batch(x)
        stable = _settle(w, x, mode, 1)
        stab.append(float((stable == x).all(2).mean()))
        probes = x.copy()
        if k:
            flip = np.argsort(rng.random((trials, m, n)), axis=2)[:, :, :k]
            np.put_along_axis(probes, flip, -np.take_along_axis(probes, flip, axis=2), axis=2)
        final = _settle(w, probes, mode, max_iter)
        rec.append(float((final == x).all(2).mean()))
        berr.append(float((final != x).mean()))
    ms_a = np.asarray(ms)
    return CapacityResult(n=n, m=ms_a, loads=ms_a / n, recall=np.asarray(rec), stable=np.asarray(stab),
                          bit_error=np.asarray(berr), trials=trials, noise=noise, mode=mode, seed=seed)


def plot_capacity(result: CapacityResult, path: str | Path) -> Path:
    """Recall rate (and stable-pattern fraction) against the load m/n as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(result.loads, result.recall, "o-", label=f"recalled exactly ({result.noise:.0%} of probe bits flipped)")
    ax.plot(result.loads, result.stable, "s--", ms=4, label="stored pattern is a fixed point")
    ax.plot(result.loads, result.bit_error, "^:", ms=4, label="bit error of the final state")
    ax.axvline(HEBBIAN_CAPACITY, color="grey", lw=0.8, ls="--")
    ax.text(HEBBIAN_CAPACITY, 0.12, " 0.138", color="grey", va="center")
    ax.set_xlabel("load m / n")
    ax.set_ylabel("fraction")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Hopfield capacity, n = {result.n}, {result.mode} updates, {result.trials} networks per load")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return path
