"""Family quantizer of the Jordan network (``gaitedge.models.jordan``) onto ``ge_jordan.c``.

Float model: ``h_t = tanh(W_xh x_t + W_yh y_{t-1} + b_h)``, ``z_t = W_hy h_t + b_y``,
``y_t = sigmoid(z_t)``.  One ``jordan`` layer computes ``h_t`` and the fed-back
``y_t`` (its aux state); the model's dense head reads the layer's ``h`` and
computes the logits ``z_t`` from the same float ``W_hy, b_y`` in the logit format.
The hidden rows ``[W_xh K | W_yh]`` are quantized as one row (one scale per unit,
the accumulator bound over both passes); the output rows ``W_hy`` are gate rows
(``u`` form) for the sigmoid table, so logits beyond +-8 saturate the fed-back
value at sigmoid(+-8) (counted in the report as ``feedback_sat_frac``).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.quant.jordan import jordan_out_rows
from gaitedge.quant.model import QLayer
from gaitedge.quant.families.base import (FamilyQuantizer, QuantBody, QuantContext, float_sigmoid, gate_rows,
                                          pad_cols, pad_rows, padded_hidden)


def _check(model: nn.Module) -> None:
    from gaitedge.models.jordan import JordanClassifier

    if not isinstance(model, JordanClassifier):
        raise ModelError(f"model '{getattr(model, 'family', type(model).__name__)}' is not a Jordan network")


def jordan_calibrate(model, xs: list[np.ndarray]) -> dict:
    """Float64 run over the normalized inputs ``xs``: max |pre-activation| of the hidden
    layer, fraction beyond the tables' +-8, max |logit| and the fraction of logits
    beyond +-8 (where the fed-back sigmoid saturates)."""
    w_xh = model.inp.weight.detach().double().numpy()
    b_h = model.inp.bias.detach().double().numpy()
    w_yh = model.fb.weight.detach().double().numpy()
    w_hy = model.head.weight.detach().double().numpy()
    b_y = model.head.bias.detach().double().numpy()
    lens = [len(x) for x in xs]
    b, tmax = len(xs), max(lens)
    inp = np.zeros((b, tmax, xs[0].shape[1]))
    mask = np.zeros((b, tmax), bool)
    for i, x in enumerate(xs):
        inp[i, : len(x)] = x
        mask[i, : len(x)] = True
    xp = inp @ w_xh.T + b_h
    y = np.zeros((b, w_hy.shape[0]))
    pmax = zmax = 0.0
    psat = zsat = ptot = ztot = 0
    for t in range(tmax):
        pre = xp[:, t] + y @ w_yh.T
        z = np.tanh(pre) @ w_hy.T + b_y
        y = float_sigmoid(z)
        sel = mask[:, t]
        if sel.any():
            ap, az = np.abs(pre[sel]), np.abs(z[sel])
            pmax, zmax = max(pmax, float(ap.max())), max(zmax, float(az.max()))
            psat += int((ap >= 8.0).sum())
            zsat += int((az >= 8.0).sum())
            ptot += ap.size
            ztot += az.size
    return {"pre_absmax": pmax, "pre_sat_frac": psat / max(ptot, 1), "logit_absmax": zmax,
            "feedback_sat_frac": zsat / max(ztot, 1)}


def quantize_jordan(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    """The ``jordan`` layer (hidden + fed-back output) and the float head over its ``h``."""
    model = tm.model
    h, k = model.hidden, model.num_classes
    hp = padded_hidden(h)
    ky = k + (k % 2)
    ko = jordan_out_rows(ky)
    ip = ctx.in_pad
    w_xh = pad_cols(model.inp.weight.detach().double().numpy() * ctx.k_in[None, :], ip)
    w_yh = pad_cols(model.fb.weight.detach().double().numpy(), ky)
    b_h = model.inp.bias.detach().double().numpy()
    q, bias, mult, scale = gate_rows(pad_rows(np.concatenate([w_xh, w_yh], 1), h, hp, 1), pad_rows(b_h, h, hp, 1),
                                     True, ctx.report, "jordan.hidden")
    w_hy = model.head.weight.detach().double().numpy()
    b_y = model.head.bias.detach().double().numpy()
    wo = np.zeros((ko, hp))
    wo[:k, :h] = w_hy
    bo = np.zeros(ko)
    bo[:k] = b_y
    qo, bias_o, mult_o, scale_o = gate_rows(wo, bo, True, ctx.report, "jordan.output")

    cols = hp + ip + ky
    weight = np.zeros((2 * hp + ko, cols), np.int64)
    weight[:hp, hp : hp + ip] = q[:, :ip]
    weight[hp : 2 * hp, hp + ip :] = q[:, ip:]
    weight[2 * hp :, :hp] = qo
    layer = QLayer(
        "jordan", ip, hp, weight,
        np.concatenate([bias, np.zeros(hp, np.int64), bias_o]),
        np.concatenate([mult, mult, mult_o]), 0,
        np.concatenate([scale, scale, scale_o]), aux=ky,
    )
    cal = jordan_calibrate(model, ctx.xs)
    return QuantBody([layer], pad_cols(w_hy, hp), b_y, h, logit_absmax=cal["logit_absmax"], calib={
        "preact_absmax": [cal["pre_absmax"]],
        "preact_sat_frac": [cal["pre_sat_frac"]],
        "feedback_sat_frac": cal["feedback_sat_frac"],
    })


QUANTIZER = FamilyQuantizer(_check, quantize_jordan)
