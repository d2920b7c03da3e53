"""Post-training quantization: a float :class:`TrainedModel` -> :class:`QuantModel`.

Activation ranges (per-channel input range, LSTM cell range, logit range) are
calibrated on the recordings given, which must be training data.  The scheme is
the one in ``gaitedge/csrc/QUANTIZATION.md``: int8 weights with one scale per
output row, int32 biases and accumulators, int16 activations and state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from scipy import signal
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import has_labels
from gaitedge.data.recording import Recording
from gaitedge.errors import DataError, ModelError
from gaitedge.quant import spec
from gaitedge.quant.model import QLayer, QPreproc, QuantModel

SUPPORTED_FAMILIES = ("lstm", "gru", "elman")
#: GE_MAX_CLASSES of gaitedge_rt.h
MAX_CLASSES = 16

#: default sensor resolution (physical units per count) by unit: +-16 g accelerometer,
#: +-2000 dps gyroscope at 16 bit.
DEFAULT_LSB = {
    "m/s^2": 16 * 9.80665 / 32768,
    "m/s2": 16 * 9.80665 / 32768,
    "g": 16 / 32768,
    "rad/s": 2000 * math.pi / 180 / 32768,
    "deg/s": 2000 / 32768,
    "dps": 2000 / 32768,
}


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


FAMILY_QUANTIZERS: dict[str, FamilyQuantizer] = {}


def register_family(name: str, check: Callable[[nn.Module], None],
                    quantize: Callable[[TrainedModel, QuantContext], QuantBody]) -> None:
    """Make model family ``name`` quantizable (and so exportable to C)."""
    FAMILY_QUANTIZERS[name] = FamilyQuantizer(check, quantize)


def supported_families() -> list[str]:
    return sorted(FAMILY_QUANTIZERS)


def check_supported(model: nn.Module) -> None:
    """Raise ModelError naming the first layer (or the family) that has no C kernel."""
    family = getattr(model, "family", type(model).__name__)
    if family in FAMILY_QUANTIZERS:
        FAMILY_QUANTIZERS[family].check(model)
        return
    for name, mod in model.named_modules():
        if mod is model or isinstance(mod, nn.Dropout) or (isinstance(mod, nn.Linear) and name == "head"):
            continue
        raise ModelError(f"model '{family}': layer '{name}' ({type(mod).__name__}) has no C kernel; the C export "
                         f"supports the families {', '.join(supported_families())}")
    raise ModelError(f"model '{family}' has no C kernel; supported: {', '.join(supported_families())}")


def _check_rnn(model: nn.Module) -> None:
    family = getattr(model, "family", type(model).__name__)
    for name, mod in model.named_modules():
        if mod is model or isinstance(mod, nn.Dropout):
            continue
        where = f"layer '{name}' ({type(mod).__name__})"
        if isinstance(mod, (nn.LSTM, nn.GRU, nn.RNN)):
            if mod.bidirectional:
                raise ModelError(f"{where}: bidirectional recurrent layers have no C kernel")
            if isinstance(mod, nn.LSTM) and getattr(mod, "proj_size", 0):
                raise ModelError(f"{where}: LSTM projections have no C kernel")
            if isinstance(mod, nn.RNN) and mod.nonlinearity != "tanh":
                raise ModelError(f"{where}: RNN with {mod.nonlinearity} has no C kernel (tanh only)")
            continue
        if isinstance(mod, nn.Linear) and name == "head":
            continue
        raise ModelError(f"model '{family}': {where} has no C kernel; the C export supports "
                         f"{', '.join(SUPPORTED_FAMILIES)} recurrent layers with a dense head")
    if not hasattr(model, "rnn") or not hasattr(model, "head"):
        raise ModelError(f"model '{family}' has no C kernel; supported: {', '.join(supported_families())}")


# ---------------------------------------------------------------------------------------
# float reference with per-step internals, for calibration
# ---------------------------------------------------------------------------------------


def _layer_params(rnn: nn.Module, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    def get(name: str, shape) -> np.ndarray:
        p = getattr(rnn, f"{name}_l{k}", None)
        return np.zeros(shape) if p is None else p.detach().double().numpy()

    w_ih = get("weight_ih", None)
    w_hh = get("weight_hh", None)
    return w_ih, w_hh, get("bias_ih", (w_ih.shape[0],)), get("bias_hh", (w_ih.shape[0],))


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


def calibrate(tm: TrainedModel, xs: list[np.ndarray]) -> dict:
    """Run the float model over normalized inputs ``xs`` (list of ``(T, C)``) step by step.

    Returns per-channel max |x|, per-layer max |c| (LSTM), max |pre-activation| per
    layer, the fraction of pre-activations beyond the tables' +-8, max |logit| and
    the 99.99th percentile of |x| per channel.  (numpy, all recordings side by side.)
    """
    model = tm.model
    lengths = np.array([len(x) for x in xs])
    inp = np.zeros((len(xs), int(lengths.max()), xs[0].shape[1]), np.float64)
    for i, x in enumerate(xs):
        inp[i, : len(x)] = x
    mask = np.arange(inp.shape[1])[None, :] < lengths[:, None]
    allx = np.concatenate(xs, 0)
    out = {
        "x_absmax": np.max(np.abs(allx), axis=0),
        "x_p9999": np.percentile(np.abs(allx), 99.99, axis=0),
        "c_absmax": [],
        "pre_absmax": [],
        "pre_sat_frac": [],
    }
    for k in range(model.layers):
        inp, st = float_rnn_pass(model.family, _layer_params(model.rnn, k), inp, lengths)
        out["c_absmax"].append(st["c_absmax"])
        out["pre_absmax"].append(st["pre_absmax"])
        out["pre_sat_frac"].append(st["pre_sat_frac"])
    w = model.head.weight.detach().double().numpy()
    bb = model.head.bias.detach().double().numpy()
    logits = inp @ w.T + bb
    out["logit_absmax"] = float(np.abs(logits[mask]).max())
    return out


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


def _clip_bias(bias: np.ndarray, cols: int) -> tuple[np.ndarray, int]:
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


#: default input range: this percentile of |normalized input| on the calibration data,
#: times the margin.  The first layer's input columns are scaled by the range and
#: share each row's int8 scale with the recurrent columns, so a range set by rare
#: peaks coarsens the recurrent weights; 100 is the calibration maximum.
DEFAULT_INPUT_PERCENTILE = 99.9


def quantize_model(
    tm: TrainedModel,
    calib: list[Recording],
    lsb: dict[str, float] | None = None,
    input_margin: float = 1.05,
    input_percentile: float | None = DEFAULT_INPUT_PERCENTILE,
    input_range: np.ndarray | None = None,
    cell_frac: list[int] | None = None,
    logit_frac: int | None = None,
) -> QuantModel:
    """Quantize ``tm`` with activation ranges calibrated on ``calib`` (training recordings).

    ``lsb`` maps channel names to physical units per sensor count (defaults by unit,
    see ``DEFAULT_LSB``).  The input range of each channel is the
    ``input_percentile`` percentile of the calibration data's normalized input
    (rarer peaks are clipped; ``None`` or 100 = the maximum) times ``input_margin``.  ``input_range``,
    ``cell_frac`` and ``logit_frac`` fix those choices instead (quantization-aware
    fine-tuning keeps the formats it trained with).
    """
    model = tm.model
    check_supported(model)
    family = model.family
    calib = [r for r in calib if len(r) > 0]
    if not calib:
        raise DataError("no calibration recordings")
    xs = [tm.normalizer(tm.preprocess(r).signals).astype(np.float64) for r in calib]
    allx = np.concatenate(xs, 0)
    n_in = model.input_size
    if len(tm.classes) > MAX_CLASSES:
        raise ModelError(f"{len(tm.classes)} classes; the C runtime supports at most {MAX_CLASSES}")
    ip = n_in + (n_in % 2)
    report: dict = {"weights_saturated": {}, "bias_saturated": {}}

    # ---- inputs: sensor counts -> normalized / K --------------------------------------
    lsb_c = np.zeros(n_in)
    for c, (name, unit) in enumerate(zip(tm.channels, tm.units)):
        if lsb and name in lsb:
            lsb_c[c] = float(lsb[name])
        elif unit in DEFAULT_LSB:
            lsb_c[c] = DEFAULT_LSB[unit]
        else:  # unknown unit: full scale = 4x the largest calibration magnitude
            raw = np.concatenate([tm.preprocess(r).signals[:, c] for r in calib])
            lsb_c[c] = max(float(np.max(np.abs(raw))), 1e-6) * 4 / 32767
        if not lsb_c[c] > 0:
            raise ModelError(f"channel {name}: sensor resolution must be > 0")
    if input_percentile is not None:
        if not 0 < input_percentile <= 100:
            raise ModelError(f"input percentile must be in (0, 100], got {input_percentile}")
        rng = np.percentile(np.abs(allx), input_percentile, axis=0)
    else:
        rng = np.max(np.abs(allx), axis=0)
    k_in = np.maximum(rng * input_margin, 1e-3)
    if input_range is not None:
        k_in = np.asarray(input_range, np.float64).copy()
    mean = tm.normalizer.mean.astype(np.float64)
    std = tm.normalizer.std.astype(np.float64)
    nm = np.floor(lsb_c / (std * k_in) * 2.0**spec.SIG_FRAC + 0.5).astype(np.int64)
    nb = np.floor(-mean / (std * k_in) * 2.0**spec.SIG_FRAC + 0.5).astype(np.int64)
    bad = np.abs(nm) * 32768 + np.abs(nb) >= 2**31
    if bad.any() or np.any(nm == 0):
        c = int(np.flatnonzero(bad | (nm == 0))[0])
        raise ModelError(f"channel {tm.channels[c]}: sensor resolution {lsb_c[c]:g} {tm.units[c]}/count does not "
                         f"fit the fixed-point input (normalized full scale must be within 1/2^24..128 of its range)")
    report["input_clip_frac"] = (np.abs(allx) > k_in[None, :]).mean(axis=0).tolist()
    sos_q = zi_q = None
    sos = tm.sos
    if sos is not None:
        zi = signal.sosfilt_zi(sos)
        coefs = np.stack([sos[:, 0], sos[:, 1], sos[:, 2], sos[:, 4], sos[:, 5]], 1)
        lim = 2.0 ** (31 - spec.COEF_FRAC)
        if np.any(np.abs(coefs) >= lim) or np.any(np.abs(zi) >= lim):
            raise ModelError(f"the low-pass filter has coefficients >= {lim:g}, outside the fixed-point filter's "
                             f"Q{spec.COEF_FRAC} range")
        sos_q = np.floor(coefs * 2.0**spec.COEF_FRAC + 0.5).astype(np.int64)
        zi_q = np.floor(zi * 2.0**spec.COEF_FRAC + 0.5).astype(np.int64)
    pre = QPreproc(n_in, ip, nm, nb, sos_q, zi_q, lsb_c, k_in)

    # ---- the family's layers -------------------------------------------------------------
    body = FAMILY_QUANTIZERS[family].quantize(tm, QuantContext(xs, k_in, ip, report, cell_frac))
    layers = body.layers
    _check_stack(layers, ip, body.head_weight.shape[1])

    # ---- head ----------------------------------------------------------------------------
    wo = np.asarray(body.head_weight, np.float64)
    bo = np.asarray(body.head_bias, np.float64)
    lmax = body.logit_absmax
    if lmax is None:
        lmax = torch_logit_absmax(tm, xs)
    lf = spec.LOGIT_FRAC_RANGE[1]
    while lf > spec.LOGIT_FRAC_RANGE[0] and lmax * 1.25 >= 2.0 ** (15 - lf):
        lf -= 1
    if logit_frac is not None:
        lf = int(logit_frac)
    max_scale = spec.INT32_MAX / 2.0 ** (32 - spec.ACT_FRAC + lf) * 0.999
    hq, hs, nsat = quantize_rows(wo, max_scale)
    hm = spec.quant_multiplier(hs, 32 - spec.ACT_FRAC + lf)
    hb = np.floor(bo * 2.0**lf * 2.0**32 / hm + 0.5)
    hb, bsat = _clip_bias(hb, wo.shape[1])
    report["weights_saturated"]["head"] = nsat
    report["bias_saturated"]["head"] = bsat

    report.update({
        "calibration_recordings": len(calib),
        "input_range": k_in.tolist(),
        "lsb": lsb_c.tolist(),
        "logit_absmax": lmax,
        "lut_max_error_lsb": spec.lut_max_error(),
    })
    report.update(body.calib)
    swing = tm.classes.index("swing") if "swing" in tm.classes else -1
    return QuantModel(
        family=family, classes=tuple(tm.classes), channels=list(tm.channels), units=list(tm.units),
        rate_hz=float(tm.rate_hz), hidden=int(body.hidden), layers=layers, head_weight=hq, head_bias=hb,
        head_mult=hm, logit_frac=lf, pre=pre, min_run=int(tm.min_run), delay=int(tm.delay), swing=swing,
        float_weights_sha256=tm.weights_hash(), report=report, head_scale=hs,
    )


def torch_logit_absmax(tm: TrainedModel, xs: list[np.ndarray]) -> float:
    """Largest |logit| of the float model over the normalized calibration inputs."""
    model = tm.model
    was = model.training
    model.eval()
    out = 0.0
    try:
        with torch.no_grad():
            for x in xs:
                logits, _ = model(torch.from_numpy(np.asarray(x, np.float32))[None])
                out = max(out, float(logits.abs().max()))
    finally:
        model.train(was)
    return out


def _check_stack(layers: list[QLayer], in_pad: int, head_cols: int) -> None:
    """The layer stack fits the runtime's state vector ``[h_L .. h_1, x]`` (ge_check_model)."""
    if not layers:
        raise ModelError("a quantized model needs at least one layer")
    vlen = sum(lay.hidden for lay in layers) + in_pad
    off = 0
    for k in reversed(range(len(layers))):
        lay = layers[k]
        if lay.hidden % spec.HIDDEN_MULTIPLE or lay.in_size % 2 or off + lay.hidden + lay.in_size > vlen:
            raise ModelError(f"layer {k} ({lay.family}): {lay.hidden} units over {lay.in_size} inputs do not fit "
                             f"the state vector")
        if lay.hidden + lay.in_size > spec.MAX_ROW_INPUTS:
            raise ModelError(f"layer {k}: {lay.hidden + lay.in_size} inputs per row exceed the C runtime's "
                             f"{spec.MAX_ROW_INPUTS}")
        off += lay.hidden
    if head_cols not in (layers[-1].hidden, vlen - in_pad):
        raise ModelError(f"the head reads {head_cols} values; it must read the last layer ({layers[-1].hidden}) "
                         f"or all layers ({vlen - in_pad})")


def _quantize_rnn(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    """LSTM / GRU / Elman stacks (torch's own cells) with a dense head on the last layer."""
    model = tm.model
    family = model.family
    cal = calibrate(tm, ctx.xs)
    h = model.hidden
    hp = padded_hidden(h)
    ip, k_in, report, cell_frac = ctx.in_pad, ctx.k_in, ctx.report, ctx.cell_frac
    # ---- recurrent layers --------------------------------------------------------------
    layers: list[QLayer] = []
    for k in range(model.layers):
        w_ih, w_hh, b_ih, b_hh = _layer_params(model.rnn, k)
        if k == 0:
            w_ih = pad_cols(w_ih * k_in[None, :], ip)
            in_size = ip
        else:
            w_ih = pad_cols(w_ih, hp)
            in_size = hp
        w_hh = pad_cols(w_hh, hp)
        cols = hp + in_size
        if cols > spec.MAX_ROW_INPUTS:
            raise ModelError(f"layer {k}: {cols} inputs per row exceed the C runtime's {spec.MAX_ROW_INPUTS}")
        name = f"rnn.l{k}"
        if family in ("lstm", "elman"):
            gates = 4 if family == "lstm" else 1
            w = pad_rows(np.concatenate([w_hh, w_ih], 1), h, hp, gates)
            b = pad_rows(b_ih + b_hh, h, hp, gates)
            q, bias, mult, scale = gate_rows(w, b, True, report, name)
        else:  # gru: rows r, z (h and x), nh (h only), nx (x only)
            wr = np.concatenate([w_hh[: 2 * h], w_ih[: 2 * h]], 1)
            br = b_ih[: 2 * h] + b_hh[: 2 * h]
            wnh = np.concatenate([w_hh[2 * h :], np.zeros((h, in_size))], 1)
            wnx = np.concatenate([np.zeros((h, hp)), w_ih[2 * h :]], 1)
            q1, b1, m1, s1 = gate_rows(pad_rows(wr, h, hp, 2), pad_rows(br, h, hp, 2), True, report, name)
            q2, b2, m2, s2 = gate_rows(pad_rows(wnh, h, hp, 1), pad_rows(b_hh[2 * h :], h, hp, 1), False,
                                        report, name)
            q3, b3, m3, s3 = gate_rows(pad_rows(wnx, h, hp, 1), pad_rows(b_ih[2 * h :], h, hp, 1), True,
                                        report, name)
            q, bias, mult, scale = (np.concatenate(a) for a in ((q1, q2, q3), (b1, b2, b3), (m1, m2, m3),
                                                                  (s1, s2, s3)))
        cf = 0
        if family == "lstm":
            cmax = cal["c_absmax"][k]
            cf = spec.CELL_FRAC_RANGE[1]
            while cf > spec.CELL_FRAC_RANGE[0] and cmax * 1.1 >= 2.0 ** (15 - cf):
                cf -= 1
            if cell_frac is not None:
                cf = int(cell_frac[k])
            if cmax * 1.1 >= 2.0 ** (15 - cf):
                report.setdefault("warnings", []).append(
                    f"layer {k}: cell state reaches {cmax:.1f}, beyond the int16 range +-{2.0 ** (15 - cf):g}")
        layers.append(QLayer(family, in_size, hp, q, bias, mult, cf, scale,
                             aux=hp if family == "lstm" else 0))

    wo = pad_cols(model.head.weight.detach().double().numpy(), hp)
    bo = model.head.bias.detach().double().numpy()
    return QuantBody(layers, wo, bo, h, logit_absmax=cal["logit_absmax"], calib={
        "cell_absmax": cal["c_absmax"],
        "preact_absmax": cal["pre_absmax"],
        "preact_sat_frac": cal["pre_sat_frac"],
    })


for _fam in SUPPORTED_FAMILIES:
    register_family(_fam, _check_rnn, _quantize_rnn)


def saturation_summary(qm: QuantModel) -> list[str]:
    """Human-readable lines about everything that saturates (for the CLI / export report)."""
    r = qm.report
    lines = []
    ws = {k: v for k, v in r.get("weights_saturated", {}).items() if v}
    bs = {k: v for k, v in r.get("bias_saturated", {}).items() if v}
    lines.append("weights saturated: " + (", ".join(f"{k} {v}" for k, v in ws.items()) if ws else "none"))
    lines.append("biases saturated: " + (", ".join(f"{k} {v}" for k, v in bs.items()) if bs else "none"))
    clip = r.get("input_clip_frac")
    if clip is not None:
        worst = max(clip) if clip else 0.0
        lines.append(f"inputs clipped on calibration data: {100 * worst:.4f} % of samples (worst channel)")
    for k, (pm, fr) in enumerate(zip(r.get("preact_absmax", []), r.get("preact_sat_frac", []))):
        lines.append(f"layer {k}: pre-activations reach {pm:.2f} (table range +-8; {100 * fr:.4f} % beyond)")
    for k, cm in enumerate(r.get("cell_absmax", [])):
        if qm.layers[k].family == "lstm":
            lines.append(f"layer {k}: cell state reaches {cm:.2f}, stored as Q{15 - qm.layers[k].cell_frac}."
                         f"{qm.layers[k].cell_frac}")
    lines.extend(r.get("warnings", []))
    return lines


def calibration_recordings(tm: TrainedModel, recs: list[Recording]) -> list[Recording]:
    """The training subjects' labelled recordings among ``recs`` (what calibration may see)."""
    train = set(tm.info.get("train_subjects", []))
    out = [r for r in recs if (not train or r.subject in train) and has_labels(r)]
    if not out:
        raise DataError("no recordings of the model's training subjects to calibrate on")
    return out


# further families register themselves (one module each under gaitedge/quant/families/)
from gaitedge.quant import families  # noqa: E402,F401
