"""The classic stacks: torch LSTM / GRU / Elman layers with a dense head on the last layer."""

from __future__ import annotations

import numpy as np
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.quant import spec
from gaitedge.quant.families.base import (FamilyQuantizer, QuantBody, QuantContext, float_rnn_pass, gate_rows,
                                          pad_cols, pad_rows, padded_hidden)
from gaitedge.quant.model import QLayer

#: the families of torch's own recurrent cells
RNN_FAMILIES = ("lstm", "gru", "elman")


def check_rnn(model: nn.Module) -> None:
    """Raise ModelError unless ``model`` is torch LSTM / GRU / tanh-RNN layers under a dense head."""
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
                         f"{', '.join(RNN_FAMILIES)} recurrent layers with a dense head")
    if not hasattr(model, "rnn") or not hasattr(model, "head"):
        raise ModelError(f"model '{family}' has no C kernel: the {', '.join(RNN_FAMILIES)} export reads a recurrent "
                         f"stack 'rnn' and a dense 'head'")


def _layer_params(rnn: nn.Module, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(w_ih, w_hh, b_ih, b_hh)`` of layer ``k`` of a torch RNN (float64, zero biases when absent)."""
    def get(name: str, shape) -> np.ndarray:
        p = getattr(rnn, f"{name}_l{k}", None)
        return np.zeros(shape) if p is None else p.detach().double().numpy()

    w_ih = get("weight_ih", None)
    w_hh = get("weight_hh", None)
    return w_ih, w_hh, get("bias_ih", (w_ih.shape[0],)), get("bias_hh", (w_ih.shape[0],))


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


def quantize_rnn(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
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


QUANTIZER = FamilyQuantizer(check_rnn, quantize_rnn)
