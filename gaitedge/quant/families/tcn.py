"""Family quantizer of ``tcn``, ``tcn_lstm`` and ``tcn_gru``: residual blocks as ``tcn``
layers (``gaitedge.quant.tcn``), then for the hybrids the existing LSTM / GRU kernels.

Activation formats (QUANTIZATION.md, "TCN blocks"): every non-negative activation
tensor (a block's conv1 output ``a`` and its output ``out``) is int16 Q(15-f).f with
one ``f`` per tensor, the largest in 0..15 with ``1.1 * max`` (calibration) below
``2^(15-f)``.  A conv row over inputs in Q(15-fi).fi with output format fo has int8
weights with scale ``s`` and

    M = round(s * 2^(32 + fo - fi)),     B = round(b * 2^fo * 2^32 / M)

so that ``mulhr(B + W v, M)`` is the output in Q(15-fo).fo; ``s`` is capped so that
``M < 2^31`` (weights beyond it saturate, reported).  The first block's inputs are the
model inputs ``x / K`` in Q0.15 (``fi = 15``, weights times ``K``); an identity
residual in the first block becomes a diagonal 1x1 conv (it must carry ``K``), in
later blocks a shift by ``fo - fi``.  Layers reading a block output in Q(15-f).f
(the recurrent layer of a hybrid, or the head of ``tcn``) get their weights on it
times ``2^(15-f)``, which is what reading it as Q0.15 requires.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.models.tcn import TemporalBlock
from gaitedge.quant import spec
from gaitedge.quant.model import QLayer
from gaitedge.quant.families.base import (FamilyQuantizer, QuantBody, QuantContext, float_rnn_pass, gate_rows,
                                          pad_cols, pad_rows, padded_hidden, quantize_rows)
from gaitedge.quant.tcn import KERNEL_RANGE, aux_words

FAMILIES = ("tcn", "tcn_lstm", "tcn_gru")
#: activation fraction bits allowed for block activations.
ACT_FRAC_RANGE = (0, 15)
#: calibration headroom of the activation formats.
ACT_MARGIN = 1.1
#: most int16 state words one layer's aux may hold (``ge_rnn_params.aux`` is uint16).
MAX_AUX = 65535


def act_frac(amax: float) -> int:
    """Largest f in 0..15 with ``ACT_MARGIN * amax < 2^(15 - f)`` (0 if none)."""
    f = ACT_FRAC_RANGE[1]
    while f > ACT_FRAC_RANGE[0] and amax * ACT_MARGIN >= 2.0 ** (15 - f):
        f -= 1
    return f


def requant_rows(w: np.ndarray, b: np.ndarray, f_in: int, f_out: int, report: dict, name: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """int8 rows, int32 biases and multipliers mapping inputs in Q(15-f_in).f_in to outputs in
    Q(15-f_out).f_out: ``mulhr(B + W v, M)``.  Saturated weights / biases are counted in ``report``."""
    shift = 32 + f_out - f_in
    max_scale = 2.0 ** (31 - shift) * 0.999
    q, scale, nsat = quantize_rows(w, max_scale)
    mult = np.maximum(spec.quant_multiplier(scale, shift), 1)
    bias = np.floor(np.asarray(b, np.float64) * 2.0**f_out * 2.0**32 / mult + 0.5)
    lim = spec.INT32_MAX - 32768.0 * np.abs(q).sum(axis=1)
    if np.any(lim <= 0):
        raise ModelError(f"{name}: a row is too wide for int32 accumulators")
    bsat = int(np.sum(np.abs(bias) > lim))
    bias = np.clip(bias, -lim, lim).astype(np.int64)
    report["weights_saturated"][name] = report["weights_saturated"].get(name, 0) + nsat
    report["bias_saturated"][name] = report["bias_saturated"].get(name, 0) + bsat
    return q, bias, mult, scale


def _check_tcn(model: nn.Module) -> None:
    family = getattr(model, "family", type(model).__name__)
    for name, mod in model.named_modules():
        if mod is model or isinstance(mod, (nn.Dropout, nn.ModuleList, TemporalBlock)):
            continue
        where = f"layer '{name}' ({type(mod).__name__})"
        if isinstance(mod, nn.Conv1d) and name.startswith("blocks."):
            if mod.padding not in ((0,), 0) or mod.groups != 1 or mod.stride != (1,):
                raise ModelError(f"model '{family}': {where}: only ungrouped stride-1 causal convs have a C kernel")
            continue
        if isinstance(mod, (nn.LSTM, nn.GRU)) and name == "rnn":
            if mod.bidirectional or getattr(mod, "proj_size", 0):
                raise ModelError(f"model '{family}': {where}: bidirectional or projected layers have no C kernel")
            continue
        if isinstance(mod, nn.Linear) and name == "head":
            continue
        raise ModelError(f"model '{family}': {where} has no C kernel")
    k = getattr(model, "kernel_size", 0)
    if not KERNEL_RANGE[0] <= k <= KERNEL_RANGE[1]:
        raise ModelError(f"model '{family}': kernel size {k} outside the C kernel's "
                         f"{KERNEL_RANGE[0]}..{KERNEL_RANGE[1]}")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def _run_blocks(model, xs: list[np.ndarray]):
    """Yield, per calibration recording, the float64 blocks' ``[(conv1 out, block out), ...]``
    and the last block's output ``(T, width)``."""
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for x in xs:
            keep: list = []
            xt = torch.from_numpy(np.asarray(x, np.float64))[None]
            feat, _ = m._run_blocks(xt, [s.double() for s in m._block_state(1)], keep)
            yield keep, _np(feat[0]).T


def _calibrate_blocks(model, xs: list[np.ndarray]) -> tuple[list[float], list[float], list[np.ndarray]]:
    """Max conv1 activation and max block output per block over the calibration inputs,
    and the last block's output per recording ``(T, width)``."""
    n = len(model.blocks)
    amax, omax, feats = [0.0] * n, [0.0] * n, []
    for keep, feat in _run_blocks(model, xs):
        for i, (a, o) in enumerate(keep):
            amax[i] = max(amax[i], float(a.max()))
            omax[i] = max(omax[i], float(o.max()))
        feats.append(feat)
    return amax, omax, feats


def _saturation(model, xs: list[np.ndarray], lim_a: list[float], lim_o: list[float]) -> tuple[list, list]:
    """Fraction of conv1 / block-output values above the largest representable value."""
    n = len(lim_a)
    cnt_a, cnt_o, tot = [0] * n, [0] * n, [0] * n
    for keep, _ in _run_blocks(model, xs):
        for i, (a, o) in enumerate(keep):
            cnt_a[i] += int((a > lim_a[i]).sum())
            cnt_o[i] += int((o > lim_o[i]).sum())
            tot[i] += a.numel()
    return [c / max(t, 1) for c, t in zip(cnt_a, tot)], [c / max(t, 1) for c, t in zip(cnt_o, tot)]


def _calibrate_rnn(rnn: nn.Module, lstm: bool, feats: list[np.ndarray]) -> tuple[list[float], list[float], list[float]]:
    """Float LSTM / GRU over the block features (all recordings side by side): per layer
    max |c| (LSTM), max |pre-activation| and the fraction beyond the tables' +-8."""
    lengths = np.array([len(f) for f in feats])
    inp = np.zeros((len(feats), int(lengths.max()), feats[0].shape[1]))
    for i, f in enumerate(feats):
        inp[i, : len(f)] = f
    cmaxs, pmaxs, sats = [], [], []
    for k in range(rnn.num_layers):
        w = tuple(_np(getattr(rnn, f"{n}_l{k}")) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        inp, st = float_rnn_pass("lstm" if lstm else "gru", w, inp, lengths)
        cmaxs.append(st["c_absmax"])
        pmaxs.append(st["pre_absmax"])
        sats.append(st["pre_sat_frac"])
    return cmaxs, pmaxs, sats


def _conv_rows(conv: nn.Conv1d, k_in: np.ndarray | None, cin_pad: int, hp: int) -> tuple[np.ndarray, np.ndarray]:
    """A conv's float weights as rows ``[hp, K * cin_pad]`` (tap-major, oldest tap first) and biases."""
    w = _np(conv.weight)  # [out, in, K]
    if k_in is not None:
        w = w * k_in[None, :, None]
    cout, cin, k = w.shape
    rows = np.zeros((hp, k, cin_pad))
    rows[:cout, :, :cin] = w.transpose(0, 2, 1)
    b = np.zeros(hp)
    b[:cout] = _np(conv.bias)
    return rows.reshape(hp, k * cin_pad), b


def _rnn_layer(rnn: nn.Module, lstm: bool, k: int, in_size: int, in_gain: float, h: int, hp: int,
               report: dict, cf: int) -> QLayer:
    """Recurrent layer ``k`` of a hybrid as an ``lstm`` / ``gru`` QLayer (as the classic families)."""
    w_ih = _np(getattr(rnn, f"weight_ih_l{k}")) * in_gain
    w_hh = pad_cols(_np(getattr(rnn, f"weight_hh_l{k}")), hp)
    b_ih, b_hh = _np(getattr(rnn, f"bias_ih_l{k}")), _np(getattr(rnn, f"bias_hh_l{k}"))
    w_ih = pad_cols(w_ih, in_size)
    name = f"rnn.l{k}"
    if lstm:
        w = pad_rows(np.concatenate([w_hh, w_ih], 1), h, hp, 4)
        q, bias, mult, scale = gate_rows(w, pad_rows(b_ih + b_hh, h, hp, 4), True, report, name)
        return QLayer("lstm", in_size, hp, q, bias, mult, cf, scale, aux=hp)
    wr = np.concatenate([w_hh[: 2 * h], w_ih[: 2 * h]], 1)
    wnh = np.concatenate([w_hh[2 * h :], np.zeros((h, in_size))], 1)
    wnx = np.concatenate([np.zeros((h, hp)), w_ih[2 * h :]], 1)
    parts = [gate_rows(pad_rows(wr, h, hp, 2), pad_rows(b_ih[: 2 * h] + b_hh[: 2 * h], h, hp, 2), True, report, name),
             gate_rows(pad_rows(wnh, h, hp, 1), pad_rows(b_hh[2 * h :], h, hp, 1), False, report, name),
             gate_rows(pad_rows(wnx, h, hp, 1), pad_rows(b_ih[2 * h :], h, hp, 1), True, report, name)]
    q, bias, mult, scale = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return QLayer("gru", in_size, hp, q, bias, mult, 0, scale)


def _quantize_tcn(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    model = tm.model
    report = ctx.report
    amax, omax, feats = _calibrate_blocks(model, ctx.xs)
    layers: list[QLayer] = []
    f_in, cin_pad, gain = spec.ACT_FRAC, ctx.in_pad, ctx.k_in
    fa_all, fo_all = [], []
    for i, blk in enumerate(model.blocks):
        hp = padded_hidden(blk.c_out)
        k, d = blk.kernel_size, blk.dilation
        fa, fo = act_frac(amax[i]), act_frac(omax[i])
        fa_all.append(fa)
        fo_all.append(fo)
        if k * cin_pad > spec.MAX_ROW_INPUTS or k * hp > spec.MAX_ROW_INPUTS:
            raise ModelError(f"block {i}: kernel size {k} x {max(cin_pad, hp)} channels exceeds the C runtime's "
                             f"{spec.MAX_ROW_INPUTS} columns per row")
        aux = aux_words(k, d, cin_pad, hp)
        if aux > MAX_AUX:
            raise ModelError(f"block {i}: ring buffers of {aux} words exceed the C runtime's {MAX_AUX} per layer "
                             f"(fewer levels, a smaller kernel or fewer channels)")
        name = f"blocks.{i}"
        w1, b1 = _conv_rows(blk.conv1, gain, cin_pad, hp)
        w2, b2 = _conv_rows(blk.conv2, None, hp, hp)
        q1, bb1, m1, s1 = requant_rows(w1, b1, f_in, fa, report, name)
        q2, bb2, m2, s2 = requant_rows(w2, b2, fa, fo, report, name)
        c1, c2 = k * cin_pad, k * cin_pad + k * hp
        if blk.down is not None or gain is not None:
            # a 1x1 conv; the first block's identity residual carries the input ranges K
            if blk.down is not None:
                wd, bd = _conv_rows(blk.down, gain, cin_pad, hp)
            else:
                wd, bd = np.zeros((hp, cin_pad)), np.zeros(hp)
                wd[np.arange(blk.c_in), np.arange(blk.c_in)] = gain
            q3, bb3, m3, s3 = requant_rows(wd, bd, f_in, fo, report, name)
            weight = np.zeros((3 * hp, c2 + cin_pad), np.int64)
            weight[2 * hp :, c2:] = q3
            extra = [d, 1, 0]
            qs = (q1, q2, q3)
            bias, mult, scale = np.concatenate([bb1, bb2, bb3]), np.concatenate([m1, m2, m3]), np.concatenate(
                [s1, s2, s3])
        else:
            weight = np.zeros((2 * hp, c2), np.int64)
            extra = [d, 0, fo - f_in]
            qs = (q1, q2)
            bias, mult, scale = np.concatenate([bb1, bb2]), np.concatenate([m1, m2]), np.concatenate([s1, s2])
        weight[:hp, :c1] = qs[0]
        weight[hp : 2 * hp, c1:c2] = qs[1]
        layers.append(QLayer("tcn", cin_pad, hp, weight, bias, mult, k, scale, aux=aux,
                             extra=np.asarray(extra, np.int64)))
        f_in, cin_pad, gain = fo, hp, None
    f_last, w_last = fo_all[-1], cin_pad
    lim_a = [spec.INT16_MAX / 2.0**f for f in fa_all]
    lim_o = [spec.INT16_MAX / 2.0**f for f in fo_all]
    if any(m > lim for m, lim in zip(amax + omax, lim_a + lim_o)):
        sat_a, sat_o = _saturation(model, ctx.xs, lim_a, lim_o)
    else:
        sat_a, sat_o = [0.0] * len(layers), [0.0] * len(layers)
    calib = {
        "tcn_receptive_field_samples": model.receptive_field,
        "tcn_receptive_field_ms": model.receptive_field_ms(tm.rate_hz),
        "tcn_conv1_absmax": amax, "tcn_out_absmax": omax,
        "tcn_conv1_frac": fa_all, "tcn_out_frac": fo_all,
        "tcn_conv1_sat_frac": sat_a, "tcn_out_sat_frac": sat_o,
    }
    for i in range(len(layers)):
        if sat_a[i] > 0 or sat_o[i] > 0:
            report.setdefault("warnings", []).append(
                f"tcn block {i}: activations saturate on calibration data (conv1 {100 * sat_a[i]:.4f} %, "
                f"output {100 * sat_o[i]:.4f} % of values)")
    out_gain = 2.0 ** (spec.ACT_FRAC - f_last)
    if model.family == "tcn":
        wo = pad_cols(_np(model.head.weight) * out_gain, w_last)
        return QuantBody(layers, wo, _np(model.head.bias), model.hidden, calib=calib)

    lstm = model.family == "tcn_lstm"
    cmax, pmax, psat = _calibrate_rnn(model.rnn, lstm, feats)
    h, hp = model.hidden, padded_hidden(model.hidden)
    nb = len(layers)
    cfs = []
    for k in range(model.layers):
        cf = 0
        if lstm:
            cf = spec.CELL_FRAC_RANGE[1]
            while cf > spec.CELL_FRAC_RANGE[0] and cmax[k] * 1.1 >= 2.0 ** (15 - cf):
                cf -= 1
            if ctx.cell_frac is not None and len(ctx.cell_frac) == nb + model.layers:
                cf = int(ctx.cell_frac[nb + k])
            if cmax[k] * 1.1 >= 2.0 ** (15 - cf):
                report.setdefault("warnings", []).append(
                    f"rnn layer {k}: cell state reaches {cmax[k]:.1f}, beyond the int16 range +-{2.0 ** (15 - cf):g}")
        cfs.append(cf)
        in_size, gain_k = (w_last, out_gain) if k == 0 else (hp, 1.0)
        layers.append(_rnn_layer(model.rnn, lstm, k, in_size, gain_k, h, hp, report, cf))
    calib.update({"rnn_cell_absmax": cmax, "rnn_preact_absmax": pmax, "rnn_preact_sat_frac": psat,
                  "rnn_cell_frac": cfs})
    wo = pad_cols(_np(model.head.weight), hp)
    return QuantBody(layers, wo, _np(model.head.bias), h, calib=calib)


QUANTIZER = FamilyQuantizer(_check_tcn, _quantize_tcn)
