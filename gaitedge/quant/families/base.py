"""The building blocks every family quantizer uses.

:class:`QuantContext` (what a family quantizer gets), :class:`QuantBody` (what it
returns), :class:`FamilyQuantizer` (its check and conversion), the float reference
of torch's LSTM / GRU / Elman layers for calibration, and the int8 row quantization
with the padding of rows and columns to the runtime's layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.quant import spec
from gaitedge.quant.model import QLayer


@dataclass
class QuantContext:
    """What a family quantizer gets: calibration inputs and the input format.

    ``xs`` are the normalized calibration inputs (float64 ``(T, C)`` each, after the
    model's filter); layer 0 sees ``x / k_in`` in Q0.15 (so weights on the inputs
    are multiplied by ``k_in``), padded with zero columns to ``in_pad``.
    ``report`` collects saturation counts (see :func:`gate_rows`).
    """

    xs: list[np.ndarray]
    k_in: np.ndarray
    in_pad: int
    report: dict
    cell_frac: list[int] | None = None


@dataclass
class QuantBody:
    """What a family quantizer returns: the layers and the float head over the state vector.

    ``head_weight [K, cols]`` is in state-vector order (``[h_L .. h_1]`` from its
    start, padded units as zero columns): ``cols`` is the last layer's padded hidden,
    or the sum over all layers.  ``logit_absmax`` is the calibration maximum of
    |logit| (None: computed with the torch model).  ``calib`` goes into the report.
    """

    layers: list[QLayer]
    head_weight: np.ndarray
    head_bias: np.ndarray
    hidden: int
    logit_absmax: float | None = None
    calib: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FamilyQuantizer:
    """How a model family becomes integer layers: a structural check and the conversion."""

    check: Callable[[nn.Module], None]
    quantize: Callable[[TrainedModel, QuantContext], QuantBody]


# ---------------------------------------------------------------------------------------
# float reference of torch's recurrent layers
# ---------------------------------------------------------------------------------------


def float_sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float64 for calibration runs (overflow-free)."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def float_rnn_pass(kind: str, w: tuple, x: np.ndarray, lengths: np.ndarray, reverse: bool = False,
                   h0: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """The float reference of one LSTM / GRU / Elman layer (torch's equations) for calibration.

    ``w = (w_ih, w_hh, b_ih, b_hh)`` in torch's layout; ``x [B, T, in]`` with
    sequence ``b`` valid up to ``lengths[b]``.  ``reverse``: each sequence is read
    from its own last sample back to its first (outputs stay in time order).
    ``h0 [B, H]``: initial hidden state (default 0).  Returns (hidden sequence
    ``[B, T, H]``, zero beyond each length; stats ``pre_absmax``, ``pre_sat_frac``
    (fraction of the gate pre-activations beyond the tables' +-8), ``c_absmax``).
    """
    w_ih, w_hh, b_ih, b_hh = w
    b, tmax, _ = x.shape
    hid = w_hh.shape[1]
    if reverse:  # flip each sequence within its own length
        idx = np.clip(lengths[:, None] - 1 - np.arange(tmax)[None, :], 0, None)
        x = np.take_along_axis(x, idx[:, :, None], axis=1)
    mask = np.arange(tmax)[None, :] < lengths[:, None]
    xproj = x @ w_ih.T + b_ih
    h = np.zeros((b, hid)) if h0 is None else np.array(h0, np.float64)
    c = np.zeros((b, hid))
    hs = np.zeros((b, tmax, hid))
    pmax = cmax = 0.0
    nsat = ntot = 0
    for t in range(tmax):
        hproj = h @ w_hh.T + b_hh
        if kind == "lstm":
            pres = xproj[:, t] + hproj
            i, f, g, o = np.split(pres, 4, axis=1)
            c = float_sigmoid(f) * c + float_sigmoid(i) * np.tanh(g)
            h = float_sigmoid(o) * np.tanh(c)
            if mask[:, t].any():
                cmax = max(cmax, float(np.abs(c[mask[:, t]]).max()))
        elif kind == "gru":
            xr, xz, xn = np.split(xproj[:, t], 3, axis=1)
            hr, hz, hn = np.split(hproj, 3, axis=1)
            r, z = float_sigmoid(xr + hr), float_sigmoid(xz + hz)
            npre = xn + r * hn
            h = (1 - z) * np.tanh(npre) + z * h
            pres = np.concatenate([xr + hr, xz + hz, hn, npre], 1)
        elif kind == "elman":
            pres = xproj[:, t] + hproj
            h = np.tanh(pres)
        else:
            raise ModelError(f"no float reference for layer kind {kind!r}")
        sel = np.abs(pres[mask[:, t]])
        if sel.size:
            pmax = max(pmax, float(sel.max()))
            nsat += int((sel >= 8.0).sum())
            ntot += sel.size
        hs[:, t] = np.where(mask[:, t, None], h, 0.0)
    if reverse:
        hs = np.take_along_axis(hs, idx[:, :, None], axis=1) * mask[:, :, None]
    return hs, {"pre_absmax": pmax, "pre_sat_frac": nsat / max(ntot, 1), "c_absmax": cmax}


# ---------------------------------------------------------------------------------------
# weight quantization
# ---------------------------------------------------------------------------------------


def quantize_rows(w: np.ndarray, max_scale: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Symmetric int8 per row: ``s = max|row| / 127`` (capped at ``max_scale``).

    Returns (int8 values as int64, scales, number of weights that saturated at +-127).
    """
    amax = np.max(np.abs(w), axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0 / 127.0)
    scale = np.minimum(scale, max_scale)
    q = np.floor(w / scale[:, None] + 0.5)
    nsat = int(np.sum(np.abs(q) > 127))
    return np.clip(q, -127, 127).astype(np.int64), scale, nsat


def gate_rows(w: np.ndarray, b: np.ndarray, offset: bool, report: dict, name: str) -> tuple:
    """int8 rows + bias + multiplier for gate pre-activations in Q3.12 (``u`` form if ``offset``).

    ``w [rows, cols]`` are float weights over Q0.15 inputs, ``b`` float biases.  Returns
    (int8 weights, int32 biases, int32 multipliers, float row scales) such that
    ``mulhr(bias + W v, mult)`` is the pre-activation in Q3.12 (plus 32768 with
    ``offset``, the LUT input ``u``).  Saturations are counted in ``report``.
    """
    max_scale = (spec.INT32_MAX / 2.0 ** (32 - spec.ACT_FRAC + spec.PRE_FRAC)) * 0.999
    q, scale, nsat = quantize_rows(w, max_scale)
    mult = spec.quant_multiplier(scale, 32 - spec.ACT_FRAC + spec.PRE_FRAC)
    real = b * 2.0**spec.PRE_FRAC + (spec.U_OFFSET if offset else 0)
    bias = np.floor(real * 2.0**32 / mult + 0.5)
    # every accumulator must stay in int32, and |mulhr(acc, M)| below REQUANT_BOUND (the
    # table input of the DSP path is usat24(v << 8)): clip biases to what both allow
    wsum = 32768.0 * np.abs(q).sum(axis=1)
    acc_lim = np.minimum(spec.INT32_MAX - w.shape[1] * 127 * 32768.0,
                         (spec.REQUANT_BOUND - 2) * 2.0**32 / mult)
    blim = np.floor(acc_lim - wsum)
    if np.any(blim < 0):
        j = int(np.argmin(blim))
        raise ModelError(
            f"{name}: row {j} can reach pre-activations beyond what the fixed-point gates represent; its weights "
            f"are too large (max |w| {np.abs(w[j]).max():.2f}); try clipping rare input peaks (input_percentile) "
            f"or quantization-aware fine-tuning")
    bsat = int(np.sum(np.abs(bias) > blim))
    bias = np.clip(bias, -blim, blim).astype(np.int64)
    report["weights_saturated"][name] = report["weights_saturated"].get(name, 0) + nsat
    report["bias_saturated"][name] = report["bias_saturated"].get(name, 0) + bsat
    return q, bias, mult, scale


def padded_hidden(h: int) -> int:
    """Hidden size rounded up to the runtime's multiple (inert zero units)."""
    return -(-h // spec.HIDDEN_MULTIPLE) * spec.HIDDEN_MULTIPLE


def clip_bias(bias: np.ndarray, cols: int) -> tuple[np.ndarray, int]:
    """Keep |bias| + cols * 127 * 32768 < 2^31 so that no accumulator can overflow."""
    lim = spec.INT32_MAX - cols * 127 * 32768
    if lim <= 0:
        raise ModelError(f"a row with {cols} inputs is too wide for int32 accumulators "
                         f"(at most {spec.MAX_ROW_INPUTS})")
    nsat = int(np.sum(np.abs(bias) > lim))
    return np.clip(bias, -lim, lim).astype(np.int64), nsat


def pad_rows(w: np.ndarray, h: int, hp: int, gates: int) -> np.ndarray:
    """Pad each of ``gates`` row blocks of ``h`` rows to ``hp`` rows with zeros."""
    if w.ndim == 1:
        blocks = [np.concatenate([w[g * h : (g + 1) * h], np.zeros(hp - h)]) for g in range(gates)]
    else:
        blocks = [np.concatenate([w[g * h : (g + 1) * h], np.zeros((hp - h, w.shape[1]))]) for g in range(gates)]
    return np.concatenate(blocks, 0)


def pad_cols(w: np.ndarray, n: int) -> np.ndarray:
    """Append zero columns up to ``n``."""
    return np.concatenate([w, np.zeros((w.shape[0], n - w.shape[1]))], 1) if n > w.shape[1] else w
