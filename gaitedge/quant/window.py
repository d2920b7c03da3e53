"""Twin of ``ge_window.c``: whole-window execution of a quantized non-causal model.

A window model is a :class:`~gaitedge.quant.model.QuantModel` whose
``report["window"]`` names its architecture (written by the family quantizers
in :mod:`gaitedge.quant.families`); its ``layers`` are ordinary LSTM / GRU
layers run by their kernels (:mod:`gaitedge.quant.kernels`), but over a whole
window instead of one stream step by step:

* preprocessing: the stream's (:mod:`gaitedge.quant.preproc`, filter primed
  on the window's first sample), sample by sample, into ``X [n][in_pad]``;
* ``bidir`` (``layers = [fwd_0, bwd_0, fwd_1, bwd_1, ...]``), per level
  ``l``: the forward layer runs ``t = 0 .. n-1`` and the backward layer
  ``t = n-1 .. 0``, each from a zero state (``h`` and the LSTM cell), over the
  level's input sequence; the two hidden sequences are merged per sample:
  ``concat``: ``Y_t = [h→_t ; h←_t]``; ``avg``: ``Y_t = (h→_t + h←_t + 1) >> 1``
  (Q0.15 of the mean; a float ``sum`` merge is the same integers with the
  factor 2 folded into the weights that read ``Y``).  ``Y`` feeds the next level;
  the head reads the last level's ``Y_t``;
* ``encdec`` (``layers = [enc_1 .. enc_E, dec]``): the encoder stack steps
  through the window exactly like the streaming stack (state vector
  ``[h_E .. h_1, x_t]``); the context is ``c = h_E`` after the last sample;
  the GRU decoder then steps through the window again with
  ``v = [d; x_t (; c)]``, ``d`` starting at ``c`` (context ``init``) or 0,
  and the head reads ``d_t``;
* logits ``[n][K]`` (Q(15-lf).lf), argmax, and the stream's debounce / event
  detector over steps ``t >= delay`` (``labels[t] = -1`` before), as ``ge_run``.

Windows of different lengths run side by side: the backward passes keep a
stream's state at zero until its own last sample, and the context is taken at
each stream's last sample, so each result equals a batch-of-one run.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from gaitedge.errors import ModelError
from gaitedge.quant.argmax import argmax
from gaitedge.quant.dense import dense_step
from gaitedge.quant.events import EventState, events_step
from gaitedge.quant.kernels import kernel_for
from gaitedge.quant.model import QuantModel
from gaitedge.quant.mounting import Triad, check_triads, rotate_counts
from gaitedge.quant.preproc import FilterState, preproc_step

#: ``ge_window_model.arch`` codes (ge_window.h).
ARCH_BIDIR, ARCH_ENCDEC = 1, 2
#: ``ge_window_model.mode`` of bidir: merge codes.
MERGE_CONCAT, MERGE_AVG = 0, 1
#: ``ge_window_model.mode`` of encdec: context flags.
CTX_INIT, CTX_INPUT = 1, 2
#: magic of a window descriptor ("GEW1").
WINDOW_MAGIC = 0x31574547


def window_spec(qm: QuantModel) -> dict | None:
    """The window architecture of ``qm`` (None for a streaming model).

    ``{"arch": ARCH_*, "mode": merge code or context flags, "head_cols": columns
    the head reads, ...}``.
    """
    return qm.report.get("window")


def is_window_model(qm: QuantModel) -> bool:
    """Whether ``qm`` runs over whole windows (``ge_window_run``)."""
    return qm.architecture == "window"


def require_window(qm: QuantModel) -> dict:
    """The window layout of ``qm`` (ModelError for a streaming model)."""
    spec = window_spec(qm)
    if not is_window_model(qm) or spec is None:
        raise ModelError(f"{qm.family}: a streaming model; run it with the streaming runtime (ge_step)")
    return spec


def window_hash(qm: QuantModel) -> str:
    """SHA-256 over the integer constants and the window architecture (what the C descriptor holds)."""
    spec = require_window(qm)
    h = hashlib.sha256(qm.weights_hash().encode())
    h.update(json.dumps({k: int(spec[k]) for k in ("arch", "mode", "head_cols")}, sort_keys=True).encode())
    return h.hexdigest()


def check_window(qm: QuantModel) -> None:
    """Raise ModelError unless the layers form the architecture of ``report["window"]`` (ge_window_check)."""
    spec = require_window(qm)
    lays, ip, hc = qm.layers, qm.pre.in_pad, int(spec["head_cols"])
    bad = None
    if spec["arch"] == ARCH_BIDIR:
        if spec["mode"] not in (MERGE_CONCAT, MERGE_AVG) or len(lays) < 2 or len(lays) % 2:
            bad = "bidirectional layers come in forward/backward pairs with merge concat or avg"
        else:
            w_in = ip
            for k in range(0, len(lays), 2):
                f, b = lays[k], lays[k + 1]
                if f.kind != b.kind or f.hidden != b.hidden or f.in_size != w_in or b.in_size != w_in:
                    bad = f"level {k // 2}: forward and backward layers must match and read {w_in} inputs"
                    break
                w_in = 2 * f.hidden if spec["mode"] == MERGE_CONCAT else f.hidden
            if bad is None and hc != w_in:
                bad = f"the head must read the last level's {w_in} merged values, not {hc}"
    elif spec["arch"] == ARCH_ENCDEC:
        enc, dec = lays[:-1], lays[-1] if lays else None
        mode = spec["mode"]
        if not enc or dec is None or dec.kind != "gru" or not 0 <= mode <= 3:
            bad = "an encoder-decoder needs encoder layers and a GRU decoder"
        elif (mode & CTX_INIT) and dec.hidden != enc[-1].hidden:
            bad = "a context-initialised decoder needs as many units as the last encoder layer"
        elif dec.in_size != ip + ((enc[-1].hidden) if mode & CTX_INPUT else 0):
            bad = "the decoder reads the inputs (and the context)"
        elif hc != dec.hidden:
            bad = "the head reads the decoder's hidden state"
        elif enc[0].in_size != ip or any(enc[k].in_size != enc[k - 1].hidden for k in range(1, len(enc))):
            bad = "encoder layers read the inputs, then the layer below"
    else:
        bad = f"unknown window architecture {spec['arch']}"
    if bad:
        raise ModelError(f"{qm.family}: inconsistent window model: {bad}")


def _step(lay, seg: np.ndarray, aux: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    return kernel_for(lay.kind).step(lay, seg, aux)


def _zero_aux(lay, b: int) -> np.ndarray | None:
    return np.zeros((b, lay.aux), np.int64) if lay.aux else None


def _bidir(qm: QuantModel, x: np.ndarray, lengths: np.ndarray, mode: int) -> np.ndarray:
    b, n, _ = x.shape
    seq = x
    for k in range(0, len(qm.layers), 2):
        fwd, bwd = qm.layers[k], qm.layers[k + 1]
        hp = fwd.hidden
        hf = np.zeros((b, n, hp), np.int64)
        h, aux = np.zeros((b, hp), np.int64), _zero_aux(fwd, b)
        for t in range(n):
            h, aux = _step(fwd, np.concatenate([h, seq[:, t, : fwd.in_size]], 1), aux)
            hf[:, t] = h
        hb = np.zeros((b, n, hp), np.int64)
        h, aux = np.zeros((b, hp), np.int64), _zero_aux(bwd, b)
        for t in reversed(range(n)):
            h, aux = _step(bwd, np.concatenate([h, seq[:, t, : bwd.in_size]], 1), aux)
            beyond = t >= lengths  # streams whose window ends before t start from zero at their end
            if beyond.any():
                h = np.where(beyond[:, None], 0, h)
                if aux is not None:
                    aux = np.where(beyond[:, None], 0, aux)
            hb[:, t] = h
        seq = np.concatenate([hf, hb], 2) if mode == MERGE_CONCAT else (hf + hb + 1) >> 1
    return seq


def _encdec(qm: QuantModel, x: np.ndarray, lengths: np.ndarray, mode: int) -> np.ndarray:
    b, n, ip = x.shape
    enc, dec = qm.layers[:-1], qm.layers[-1]
    offs, pos = [0] * len(enc), 0
    for k in reversed(range(len(enc))):
        offs[k] = pos
        pos += enc[k].hidden
    vec = np.zeros((b, pos + ip), np.int64)
    aux = [_zero_aux(lay, b) for lay in enc]
    ctx = np.zeros((b, enc[-1].hidden), np.int64)
    for t in range(n):
        vec[:, pos:] = x[:, t]
        for k, lay in enumerate(enc):
            seg = vec[:, offs[k] : offs[k] + lay.hidden + lay.in_size]
            h, aux[k] = _step(lay, seg, aux[k])
            vec[:, offs[k] : offs[k] + lay.hidden] = h
        last = t == lengths - 1
        if last.any():
            ctx[last] = vec[last, : enc[-1].hidden]
    d = ctx.copy() if mode & CTX_INIT else np.zeros((b, dec.hidden), np.int64)
    cin = [ctx] if mode & CTX_INPUT else []
    out = np.zeros((b, n, dec.hidden), np.int64)
    for t in range(n):
        d, _ = _step(dec, np.concatenate([d, x[:, t], *cin], 1), None)
        out[:, t] = d
    return out


def window_run(qm: QuantModel, counts: np.ndarray, lengths: np.ndarray | None = None,
               mounting: list[Triad] | None = None) -> dict[str, np.ndarray]:
    """Run windows of raw counts ``[n, C]`` (one) or ``[B, n, C]`` through the model.

    ``lengths`` (``[B]``, default all ``n``): each window's own length; samples
    beyond it are ignored (their outputs are meaningless).  ``mounting``: sensor
    triads rotated before the preprocessing (:mod:`gaitedge.quant.mounting`,
    ``ge_window_run_mounted``); None = identity.  Returns ``logits [B, n, K]``,
    ``raw_label [B, n]`` and ``label [B, n]`` (debounced, -1 for steps before the
    output delay), the outputs of ``ge_window_run``.
    """
    spec = require_window(qm)
    counts = np.asarray(counts, np.int64)
    if counts.ndim == 2:
        counts = counts[None]
    b, n, c = counts.shape
    if c != qm.n_inputs:
        raise ModelError(f"{qm.family}: windows have {c} channels, the model {qm.n_inputs}")
    lengths = np.full(b, n, np.int64) if lengths is None else np.asarray(lengths, np.int64)
    mounting = check_triads(mounting or [], qm.n_inputs)
    n_sec = 0 if qm.pre.sos is None else len(qm.pre.sos)
    fs = FilterState(b, qm.pre.n_inputs, n_sec)
    x = np.zeros((b, n, qm.pre.in_pad), np.int64)
    for t in range(n):
        c = rotate_counts(counts[:, t], mounting) if mounting else counts[:, t]
        x[:, t] = preproc_step(qm.pre, c, fs)
    if spec["arch"] == ARCH_BIDIR:
        feats = _bidir(qm, x, lengths, int(spec["mode"]))
    else:
        feats = _encdec(qm, x, lengths, int(spec["mode"]))
    hc = int(spec["head_cols"])
    hw = qm.head_weight[:, :hc]
    logits = dense_step(hw, qm.head_bias, qm.head_mult, feats.reshape(b * n, -1)).reshape(b, n, -1)
    raw = argmax(logits.reshape(b * n, -1)).reshape(b, n)
    label = np.full((b, n), -1, np.int64)
    ev = EventState(b)
    for t in range(qm.delay, n):
        label[:, t], _, _ = events_step(ev, raw[:, t], t - qm.delay, qm.min_run, qm.swing)
    return {"logits": logits, "raw_label": raw, "label": label}


def predict_windows(qm: QuantModel, counts: list[np.ndarray], batch: int = 32,
                    mounting: list[Triad] | None = None) -> list[np.ndarray]:
    """Raw argmax labels per sample (delay removed) with each counts array as one whole window.

    Each window is extended by ``delay`` copies of its last sample (as the float
    pipeline's ``predict``); windows run ``batch`` at a time, sorted by length.
    ``mounting``: sensor triads rotated before the preprocessing; None = identity.
    """
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(counts)
    order = np.argsort([len(c) for c in counts])
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        lens = np.array([len(counts[i]) + qm.delay for i in idx])
        xb = np.zeros((len(idx), int(lens.max()), qm.n_inputs), np.int64)
        for j, i in enumerate(idx):
            c = counts[i]
            xb[j, : len(c)] = c
            xb[j, len(c) :] = c[-1]
        raw = window_run(qm, xb, lens, mounting=mounting)["raw_label"]
        for j, i in enumerate(idx):
            out[i] = raw[j, qm.delay : qm.delay + len(counts[i])]
    return out

