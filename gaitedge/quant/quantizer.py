"""Post-training quantization: a float :class:`TrainedModel` -> :class:`QuantModel`.

Activation ranges (per-channel input range, LSTM cell range, logit range) are
calibrated on the recordings given, which must be training data.  The scheme is
the one in ``gaitedge/csrc/QUANTIZATION.md``: int8 weights with one scale per
output row, int32 biases and accumulators, int16 activations and state.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import signal
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.data.preprocess import has_labels
from gaitedge.data.recording import Recording
from gaitedge.errors import DataError, ModelError
from gaitedge.quant import spec
from gaitedge.quant.families import FAMILY_QUANTIZERS, supported_families
from gaitedge.quant.families.base import QuantBody, QuantContext, clip_bias, quantize_rows
from gaitedge.quant.model import QLayer, QPreproc, QuantModel, architecture_of

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
    if len(tm.classes) > MAX_CLASSES:
        raise ModelError(f"{len(tm.classes)} classes; the C runtime supports at most {MAX_CLASSES}")
    report: dict = {"weights_saturated": {}, "bias_saturated": {}}

    pre, allx = _quantize_inputs(tm, calib, xs, lsb, input_margin, input_percentile, input_range)
    k_in, lsb_c, ip = pre.input_range, pre.lsb, pre.in_pad
    report["input_clip_frac"] = (np.abs(allx) > k_in[None, :]).mean(axis=0).tolist()

    # ---- the family's layers -------------------------------------------------------------
    body = FAMILY_QUANTIZERS[family].quantize(tm, QuantContext(xs, k_in, ip, report, cell_frac))
    layers = body.layers
    _check_stack(layers, ip, body.head_weight.shape[1])

    hq, hb, hm, hs, lf, lmax = _quantize_head(tm, xs, body, logit_frac, report)

    report.update({
        "calibration_recordings": len(calib),
        "input_range": k_in.tolist(),
        "lsb": lsb_c.tolist(),
        "logit_absmax": lmax,
        "lut_max_error_lsb": spec.lut_max_error(),
    })
    report.update(body.calib)
    swing = tm.classes.index("swing") if "swing" in tm.classes else -1
    architecture = architecture_of(report)
    if (architecture == "window") == getattr(model, "causal", True):
        raise ModelError(f"model '{family}': its quantizer made a {architecture} model of a "
                         f"{'causal' if getattr(model, 'causal', True) else 'non-causal'} model")
    return QuantModel(
        family=family, classes=tuple(tm.classes), channels=list(tm.channels), units=list(tm.units),
        rate_hz=float(tm.rate_hz), hidden=int(body.hidden), layers=layers, head_weight=hq, head_bias=hb,
        head_mult=hm, logit_frac=lf, pre=pre, min_run=int(tm.min_run), delay=int(tm.delay), swing=swing,
        float_weights_sha256=tm.weights_hash(), report=report, head_scale=hs, architecture=architecture,
    )


def _quantize_inputs(tm: TrainedModel, calib: list[Recording], xs: list[np.ndarray], lsb: dict[str, float] | None,
                     input_margin: float, input_percentile: float | None,
                     input_range: np.ndarray | None) -> tuple[QPreproc, np.ndarray]:
    """The input stage (sensor counts -> normalized / K, the low-pass filter) and all normalized calibration input."""
    allx = np.concatenate(xs, 0)
    n_in = tm.model.input_size
    ip = n_in + (n_in % 2)
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
    return QPreproc(n_in, ip, nm, nb, sos_q, zi_q, lsb_c, k_in), allx


def _quantize_head(tm: TrainedModel, xs: list[np.ndarray], body: QuantBody, logit_frac: int | None,
                   report: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float]:
    """The linear head: (weights, bias, multipliers, row scales, logit fraction bits, logit magnitude)."""
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
    hb, bsat = clip_bias(hb, wo.shape[1])
    report["weights_saturated"]["head"] = nsat
    report["bias_saturated"]["head"] = bsat

    return hq, hb, hm, hs, lf, lmax


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
            raise ModelError(f"layer {k} ({lay.kind}): {lay.hidden} units over {lay.in_size} inputs do not fit "
                             f"the state vector")
        if lay.hidden + lay.in_size > spec.MAX_ROW_INPUTS:
            raise ModelError(f"layer {k}: {lay.hidden + lay.in_size} inputs per row exceed the C runtime's "
                             f"{spec.MAX_ROW_INPUTS}")
        off += lay.hidden
    if head_cols not in (layers[-1].hidden, vlen - in_pad):
        raise ModelError(f"the head reads {head_cols} values; it must read the last layer ({layers[-1].hidden}) "
                         f"or all layers ({vlen - in_pad})")


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
        if qm.layers[k].kind == "lstm":
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
