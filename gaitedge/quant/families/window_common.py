"""Shared pieces of the whole-window family quantizers (bidirectional, encoder-decoder).

* :func:`float_pass`: one LSTM / GRU layer over a batch of (variable-length)
  sequences in float64 numpy, forward or time-reversed, with the statistics
  calibration needs (max |pre-activation|, fraction beyond the tables' +-8,
  max |cell|);
* :func:`rnn_layer`: float torch-layout weights of one LSTM / GRU layer ->
  :class:`QLayer` in the fixed-point spec (QUANTIZATION.md sections 4 and 6),
  rows exactly as the streaming quantizer builds them, so the ordinary
  ``ge_lstm.c`` / ``ge_gru.c`` kernels run it.
"""

from __future__ import annotations

import numpy as np

from gaitedge.errors import ModelError
from gaitedge.quant import spec
from gaitedge.quant.model import QLayer
from gaitedge.quant.families.base import float_rnn_pass, gate_rows, pad_cols, pad_rows


def torch_layer(rnn, k: int, suffix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(w_ih, w_hh, b_ih, b_hh) of layer ``k`` of a torch RNN module (``suffix`` ``_reverse`` for the backward
    direction), float64; missing biases are zeros."""
    def get(name: str) -> np.ndarray | None:
        p = getattr(rnn, f"{name}_l{k}{suffix}", None)
        return None if p is None else p.detach().double().numpy()

    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    b_ih, b_hh = get("bias_ih"), get("bias_hh")
    rows = w_ih.shape[0]
    return w_ih, w_hh, np.zeros(rows) if b_ih is None else b_ih, np.zeros(rows) if b_hh is None else b_hh


float_pass = float_rnn_pass  # one float reference for every LSTM / GRU calibration


def batch_inputs(xs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded ``[B, T, C]`` float64 batch and the lengths of the normalized inputs ``xs``."""
    lengths = np.array([len(x) for x in xs])
    out = np.zeros((len(xs), int(lengths.max()), xs[0].shape[1]))
    for i, x in enumerate(xs):
        out[i, : len(x)] = x
    return out, lengths


def cell_frac_for(cmax: float, report: dict, where: str, fixed: int | None = None) -> int:
    """LSTM cell fraction bits for a calibrated max |c| (as the streaming quantizer chooses them)."""
    cf = spec.CELL_FRAC_RANGE[1]
    while cf > spec.CELL_FRAC_RANGE[0] and cmax * 1.1 >= 2.0 ** (15 - cf):
        cf -= 1
    if fixed is not None:
        cf = int(fixed)
    if cmax * 1.1 >= 2.0 ** (15 - cf):
        report.setdefault("warnings", []).append(
            f"{where}: cell state reaches {cmax:.1f}, beyond the int16 range +-{2.0 ** (15 - cf):g}")
    return cf


def rnn_layer(kind: str, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray, h: int, hp: int,
              in_size: int, report: dict, name: str, cell_frac: int = 0) -> QLayer:
    """One LSTM / GRU layer in the fixed-point spec.

    ``w_ih [G*h, in_size]`` must already be in the integer input's format (input
    columns scaled and padded to ``in_size``), ``w_hh [G*h, h]`` over the layer's
    own state; ``hp`` the padded hidden size.
    """
    if hp + in_size > spec.MAX_ROW_INPUTS:
        raise ModelError(f"{name}: {hp + in_size} inputs per row exceed the C runtime's {spec.MAX_ROW_INPUTS}")
    w_hh = pad_cols(w_hh, hp)
    if kind == "lstm":
        w = pad_rows(np.concatenate([w_hh, w_ih], 1), h, hp, 4)
        b = pad_rows(b_ih + b_hh, h, hp, 4)
        q, bias, mult, scale = gate_rows(w, b, True, report, name)
        return QLayer("lstm", in_size, hp, q, bias, mult, cell_frac, scale, aux=hp)
    if kind != "gru":
        raise ModelError(f"{name}: layer kind {kind!r} has no C kernel here")
    wr = np.concatenate([w_hh[: 2 * h], w_ih[: 2 * h]], 1)
    br = b_ih[: 2 * h] + b_hh[: 2 * h]
    wnh = np.concatenate([w_hh[2 * h :], np.zeros((h, in_size))], 1)
    wnx = np.concatenate([np.zeros((h, hp)), w_ih[2 * h :]], 1)
    q1, b1, m1, s1 = gate_rows(pad_rows(wr, h, hp, 2), pad_rows(br, h, hp, 2), True, report, name)
    q2, b2, m2, s2 = gate_rows(pad_rows(wnh, h, hp, 1), pad_rows(b_hh[2 * h :], h, hp, 1), False, report, name)
    q3, b3, m3, s3 = gate_rows(pad_rows(wnx, h, hp, 1), pad_rows(b_ih[2 * h :], h, hp, 1), True, report, name)
    q, bias, mult, scale = (np.concatenate(a) for a in ((q1, q2, q3), (b1, b2, b3), (m1, m2, m3), (s1, s2, s3)))
    return QLayer("gru", in_size, hp, q, bias, mult, 0, scale, aux=0)


def spread_cols(w: np.ndarray, blocks: int, h: int, hp: int) -> np.ndarray:
    """Columns ``[blocks x h]`` -> ``[blocks x hp]`` (each block padded with zero columns)."""
    return np.concatenate([pad_cols(w[:, i * h : (i + 1) * h], hp) for i in range(blocks)], 1)
