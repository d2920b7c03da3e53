"""Twin of ``ge_model.c``: the quantized model and its streaming step over ``B`` streams.

A :class:`QuantModel` holds everything the C runtime's model descriptor holds
(integer weights, biases, multipliers, preprocessing constants, event settings)
plus float metadata for reports.  :class:`Runner` steps it exactly as
``ge_step`` does: preprocessing -> recurrent layers -> dense head -> argmax ->
debounce / event detector.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from gaitedge.errors import ModelError
from gaitedge.quant import spec
from gaitedge.quant.argmax import argmax
from gaitedge.quant.dense import dense_step
from gaitedge.quant.events import EventState, events_step
from gaitedge.quant.kernels import kernel_for
from gaitedge.quant.mounting import Triad, check_triads, rotate_counts
from gaitedge.quant.preproc import FilterState, preproc_step
from gaitedge.rundir import atomic_path, json_default

QFORMAT = "gaitedge-quant"
QFORMAT_VERSION = 1


@dataclass
class QLayer:
    """One layer of the streaming stack: int8 ``weight [rows, hidden + in_size]``
    (columns: the layer's h, then its input), int32 ``bias`` and ``mult`` per row.

    ``kind`` is the layer kind (a key of :data:`gaitedge.quant.kernels.KERNELS`).
    ``aux`` is the number of int16 state words per stream besides h (LSTM: the cell
    state); ``extra`` holds kind-specific int32 constants (``ge_rnn_params.extra``).
    """

    kind: str
    in_size: int  # padded input width (even)
    hidden: int  # padded hidden size (multiple of 4)
    weight: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    cell_frac: int = 0  # LSTM: cell fraction bits; other kinds: a small kind-specific parameter
    #: float per-row weight scales (reporting / QAT)
    scale: np.ndarray | None = None
    aux: int = 0
    extra: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind == "lstm" and not self.aux:
            self.aux = self.hidden

    @property
    def rows(self) -> int:
        return int(self.weight.shape[0])


@dataclass
class QPreproc:
    """Per-channel integer normalization and the fixed-point filter."""

    n_inputs: int
    in_pad: int
    norm_mult: np.ndarray  # int32 [C]
    norm_bias: np.ndarray  # int32 [C]
    sos: np.ndarray | None  # int32 [S, 5]: b0 b1 b2 a1 a2 (Q28)
    zi: np.ndarray | None  # int32 [S, 2] (Q28)
    lsb: np.ndarray  # float: physical units per count
    input_range: np.ndarray  # float K_c: x' = x_norm / K_c


#: how a quantized model runs: sample by sample (``ge_step``) or over whole windows (``ge_window_run``)
Architecture = Literal["streaming", "window"]


def architecture_of(report: dict) -> Architecture:
    """The architecture a report implies (quant.npz files without the field: a window model has ``report["window"]``)."""
    return "window" if report.get("window") else "streaming"


@dataclass
class QuantModel:
    """A quantized model: integer preprocessing, layers and head, with its report.

    ``family`` is the float model's family; ``architecture`` tells a streaming stack
    (the C ``ge_step``) from a whole-window model (``ge_window_run``, its layout in
    ``report["window"]``).
    """

    family: str
    classes: tuple[str, ...]
    channels: list[str]
    units: list[str]
    rate_hz: float
    hidden: int  # true hidden size
    layers: list[QLayer]
    head_weight: np.ndarray
    head_bias: np.ndarray
    head_mult: np.ndarray
    logit_frac: int
    pre: QPreproc
    min_run: int
    delay: int
    swing: int
    float_weights_sha256: str = ""
    report: dict = field(default_factory=dict)
    head_scale: np.ndarray | None = None
    architecture: Architecture = "streaming"

    def __post_init__(self) -> None:
        if self.architecture not in get_args(Architecture):
            raise ModelError(f"architecture {self.architecture!r}: expected one of {', '.join(get_args(Architecture))}")
        if (self.architecture == "window") != bool(self.report.get("window")):
            raise ModelError(f"{self.family}: a {self.architecture} model needs "
                             f"{'a' if self.architecture == 'window' else 'no'} window layout in its report")

    # ---- identity -------------------------------------------------------------------
    def weights_hash(self) -> str:
        """SHA-256 over every integer constant in descriptor order (what model_data.c holds)."""
        h = hashlib.sha256()
        for a in self._arrays():
            h.update(np.ascontiguousarray(np.asarray(a, np.int64)).tobytes())
        h.update(json.dumps(self._scalars(), sort_keys=True).encode())
        return h.hexdigest()

    def _arrays(self) -> list[np.ndarray]:
        out = [self.pre.norm_mult, self.pre.norm_bias]
        if self.pre.sos is not None:
            out += [self.pre.sos, self.pre.zi]
        for lay in self.layers:
            out += [lay.weight, lay.bias, lay.mult]
            if lay.extra is not None:
                out.append(lay.extra)
        out += [self.head_weight, self.head_bias, self.head_mult]
        return out

    def _scalars(self) -> dict:
        return {
            "spec": spec.SPEC_VERSION,
            "family": self.family,
            "layers": [[lay.kind, lay.in_size, lay.hidden, lay.cell_frac]
                       + ([lay.aux] if lay.aux and lay.kind != "lstm" else []) for lay in self.layers],
            "logit_frac": self.logit_frac,
            "min_run": self.min_run,
            "delay": self.delay,
            "swing": self.swing,
            "classes": list(self.classes),
        }

    @property
    def n_inputs(self) -> int:
        return self.pre.n_inputs

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def vec_len(self) -> int:
        return sum(lay.hidden for lay in self.layers) + self.pre.in_pad

    @property
    def head_cols(self) -> int:
        """Width the head reads from the start of the state vector (last layer's h, or all layers')."""
        return int(self.head_weight.shape[1])

    # ---- counts ---------------------------------------------------------------------
    def to_counts(self, signals: np.ndarray) -> np.ndarray:
        """Physical (T, C) signals -> int16 sensor counts with this model's LSB per channel."""
        q = np.floor(np.asarray(signals, np.float64) / self.pre.lsb[None, :] + 0.5)
        return np.clip(q, spec.INT16_MIN, spec.INT16_MAX).astype(np.int16)

    # ---- persistence ----------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``quant.npz`` atomically."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "norm_mult": self.pre.norm_mult,
            "norm_bias": self.pre.norm_bias,
            "lsb": self.pre.lsb,
            "input_range": self.pre.input_range,
            "head_weight": self.head_weight,
            "head_bias": self.head_bias,
            "head_mult": self.head_mult,
        }
        if self.head_scale is not None:
            arrays["head_scale"] = self.head_scale
        if self.pre.sos is not None:
            arrays["sos"] = self.pre.sos
            arrays["zi"] = self.pre.zi
        for k, lay in enumerate(self.layers):
            arrays[f"l{k}_weight"] = lay.weight
            arrays[f"l{k}_bias"] = lay.bias
            arrays[f"l{k}_mult"] = lay.mult
            if lay.scale is not None:
                arrays[f"l{k}_scale"] = lay.scale
            if lay.extra is not None:
                arrays[f"l{k}_extra"] = lay.extra
        meta = {
            "format": QFORMAT,
            "format_version": QFORMAT_VERSION,
            "spec_version": spec.SPEC_VERSION,
            "family": self.family,
            "architecture": self.architecture,
            "classes": list(self.classes),
            "channels": list(self.channels),
            "units": list(self.units),
            "rate_hz": self.rate_hz,
            "hidden": self.hidden,
            "layers": [
                {"kind": lay.kind, "in_size": lay.in_size, "hidden": lay.hidden, "cell_frac": lay.cell_frac,
                 "aux": lay.aux}
                for lay in self.layers
            ],
            "logit_frac": self.logit_frac,
            "n_inputs": self.pre.n_inputs,
            "in_pad": self.pre.in_pad,
            "min_run": self.min_run,
            "delay": self.delay,
            "swing": self.swing,
            "float_weights_sha256": self.float_weights_sha256,
            "report": self.report,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta, default=json_default).encode(), np.uint8)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "QuantModel":
        """Read a ``quant.npz`` (files written before ``architecture`` / ``kind`` existed included)."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no quantized model here (run 'gaitedge quantize RUN' first)")
        try:
            z = np.load(path)
            meta = json.loads(bytes(z["meta"]).decode())
        except Exception as exc:
            raise ModelError(f"{path}: not a gaitedge quantized model ({type(exc).__name__})") from None
        if meta.get("format") != QFORMAT:
            raise ModelError(f"{path}: not a gaitedge quantized model")
        if meta.get("spec_version") != spec.SPEC_VERSION:
            raise ModelError(f"{path}: fixed-point spec {meta.get('spec_version')} differs from this gaitedge's "
                             f"{spec.SPEC_VERSION}; quantize again")
        layers = []
        for k, lm in enumerate(meta["layers"]):
            layers.append(QLayer(
                kind=lm.get("kind", lm.get("family")), in_size=lm["in_size"], hidden=lm["hidden"],
                weight=z[f"l{k}_weight"].astype(np.int64), bias=z[f"l{k}_bias"].astype(np.int64),
                mult=z[f"l{k}_mult"].astype(np.int64), cell_frac=lm["cell_frac"],
                scale=z[f"l{k}_scale"] if f"l{k}_scale" in z else None,
                aux=int(lm.get("aux", lm["hidden"] if lm.get("kind", lm.get("family")) == "lstm" else 0)),
                extra=z[f"l{k}_extra"].astype(np.int64) if f"l{k}_extra" in z else None,
            ))
        pre = QPreproc(
            n_inputs=meta["n_inputs"], in_pad=meta["in_pad"],
            norm_mult=z["norm_mult"].astype(np.int64), norm_bias=z["norm_bias"].astype(np.int64),
            sos=z["sos"].astype(np.int64) if "sos" in z else None,
            zi=z["zi"].astype(np.int64) if "zi" in z else None,
            lsb=z["lsb"].astype(np.float64), input_range=z["input_range"].astype(np.float64),
        )
        return cls(
            family=meta["family"], classes=tuple(meta["classes"]), channels=list(meta["channels"]),
            units=list(meta["units"]), rate_hz=float(meta["rate_hz"]), hidden=int(meta["hidden"]),
            layers=layers, head_weight=z["head_weight"].astype(np.int64),
            head_bias=z["head_bias"].astype(np.int64), head_mult=z["head_mult"].astype(np.int64),
            logit_frac=int(meta["logit_frac"]), pre=pre, min_run=int(meta["min_run"]),
            delay=int(meta["delay"]), swing=int(meta["swing"]),
            float_weights_sha256=meta.get("float_weights_sha256", ""), report=meta.get("report", {}),
            head_scale=z["head_scale"] if "head_scale" in z else None,
            architecture=meta.get("architecture") or architecture_of(meta.get("report", {})),
        )



@dataclass
class StepOutput:
    """What one ``ge_step`` call reports, for ``B`` streams."""

    logits: np.ndarray  # [B, K]
    raw_label: np.ndarray  # [B] argmax of the logits
    label: np.ndarray  # [B] debounced label (-1 while step < delay)
    event: np.ndarray  # [B] EVENT_* code
    event_sample: np.ndarray  # [B] sample index of the event, -1 if none


class Runner:
    """Streaming execution of a :class:`QuantModel` for ``B`` streams (the integer reference).

    ``mounting``: sensor triads rotated before the preprocessing
    (:mod:`gaitedge.quant.mounting`, C ``ge_set_mounting``); None or empty = identity.
    It is kept by :meth:`reset`, as in C.
    """

    def __init__(self, qm: QuantModel, batch: int = 1, mounting: list[Triad] | None = None) -> None:
        if qm.architecture == "window":
            raise ModelError(f"{qm.family} is a whole-window (non-causal) model: it cannot stream step by step; "
                             f"use the window API (gaitedge.quant.window.window_run, C ge_window_run)")
        self.qm = qm
        self.batch = batch
        self.mounting: list[Triad] = []
        self.set_mounting(mounting)
        self.reset()

    def set_mounting(self, mounting: list[Triad] | None) -> None:
        """Rotate these triads from the next step on (``ge_set_mounting``); None or [] = identity.

        Raises :class:`gaitedge.errors.DataError` (previous mounting kept) when a triad
        does not fit the model's inputs.  Identity triads are dropped, as in C.
        """
        self.mounting = [t for t in check_triads(mounting or [], self.qm.n_inputs) if not t.is_identity()]

    def reset(self) -> None:
        qm, b = self.qm, self.batch
        n_sec = 0 if qm.pre.sos is None else len(qm.pre.sos)
        self.fs = FilterState(b, qm.pre.n_inputs, n_sec)
        self.vec = np.zeros((b, qm.vec_len()), np.int64)
        self.aux = [np.zeros((b, lay.aux), np.int64) if lay.aux else None for lay in qm.layers]
        self.ev = EventState(b)
        self.t = 0

    def _offsets(self) -> list[int]:
        """Start of each layer's h in ``vec`` (layout [h_L, ..., h_1, x])."""
        offs, pos = [0] * len(self.qm.layers), 0
        for k in reversed(range(len(self.qm.layers))):
            offs[k] = pos
            pos += self.qm.layers[k].hidden
        return offs

    def step(self, counts: np.ndarray) -> StepOutput:
        qm = self.qm
        counts = np.asarray(counts, np.int64).reshape(self.batch, qm.n_inputs)
        offs = self._offsets()
        xpos = sum(lay.hidden for lay in qm.layers)
        if self.mounting:
            counts = rotate_counts(counts, self.mounting)
        self.vec[:, xpos:] = preproc_step(qm.pre, counts, self.fs)
        for k, lay in enumerate(qm.layers):
            seg = self.vec[:, offs[k] : offs[k] + lay.hidden + lay.in_size]
            h, self.aux[k] = kernel_for(lay.kind).step(lay, seg, self.aux[k])
            self.vec[:, offs[k] : offs[k] + lay.hidden] = h
        # the head reads the start of vec: h_L (the last layer), or [h_L .. h_1] (all layers)
        logits = dense_step(qm.head_weight, qm.head_bias, qm.head_mult, self.vec[:, : qm.head_cols])
        raw = argmax(logits)
        if self.t >= qm.delay:
            label, ev, ev_s = events_step(self.ev, raw, self.t - qm.delay, qm.min_run, qm.swing)
        else:
            label = np.full(self.batch, -1, np.int64)
            ev = np.zeros(self.batch, np.int64)
            ev_s = np.full(self.batch, -1, np.int64)
        self.t += 1
        return StepOutput(logits, raw, label, ev, ev_s)

    def run(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Step through ``counts [T, C]`` (batch 1) or ``[B, T, C]``; stacked outputs ``[B, T, ...]``."""
        counts = np.asarray(counts)
        if counts.ndim == 2:
            counts = counts[None]
        outs = [self.step(counts[:, t]) for t in range(counts.shape[1])]
        return {
            "logits": np.stack([o.logits for o in outs], 1),
            "raw_label": np.stack([o.raw_label for o in outs], 1),
            "label": np.stack([o.label for o in outs], 1),
            "event": np.stack([o.event for o in outs], 1),
            "event_sample": np.stack([o.event_sample for o in outs], 1),
        }
