"""Family quantizer of the peephole LSTM (``gaitedge.models.peephole``) onto ``ge_peephole.c``.

Each layer becomes one ``peephole`` layer: the LSTM's gate rows ``[W_hh | W_ih]``
(input columns of layer 0 times ``K``), quantized like the LSTM's (QUANTIZATION.md
section 4), plus the diagonal peephole weights as int32 constants ``P = round(p *
2^12)`` in ``extra`` (clipped to +-32767, i.e. |p| < 8; clipped ones are counted in
the report as ``peephole_saturated``).  The cell format ``cf`` is calibrated as for
the LSTM: the largest in 8..12 with 1.1 x max|c| below ``2^(15 - cf)``.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.quant import spec
from gaitedge.quant.model import QLayer
from gaitedge.quant.peephole import PEEP_FRAC
from gaitedge.quant.families.base import (FamilyQuantizer, QuantBody, QuantContext, float_sigmoid, gate_rows,
                                          pad_cols, pad_rows, padded_hidden)


def _check(model: nn.Module) -> None:
    from gaitedge.models.peephole import PeepholeLSTMClassifier

    if not isinstance(model, PeepholeLSTMClassifier):
        raise ModelError(f"model '{getattr(model, 'family', type(model).__name__)}' is not a peephole LSTM")


def _np(t) -> np.ndarray:
    return t.detach().double().numpy()


def peephole_calibrate(model, xs: list[np.ndarray]) -> dict:
    """Float64 run over the normalized inputs ``xs``: per layer max |c|, max |gate
    pre-activation| (peepholes included) and the fraction beyond +-8; max |logit|."""
    lens = [len(x) for x in xs]
    b, tmax = len(xs), max(lens)
    inp = np.zeros((b, tmax, xs[0].shape[1]))
    mask = np.zeros((b, tmax), bool)
    for i, x in enumerate(xs):
        inp[i, : len(x)] = x
        mask[i, : len(x)] = True
    out: dict = {"c_absmax": [], "pre_absmax": [], "pre_sat_frac": []}
    hdim = model.hidden
    for cell in model.cells:
        xp = inp @ _np(cell.ih.weight).T + _np(cell.ih.bias)
        w_hh, pk = _np(cell.hh.weight), _np(cell.peep)
        h, c = np.zeros((b, hdim)), np.zeros((b, hdim))
        hs = np.zeros((b, tmax, hdim))
        cmax = pmax = 0.0
        nsat = ntot = 0
        for t in range(tmax):
            gi, gf, gg, go = np.split(xp[:, t] + h @ w_hh.T, 4, axis=1)
            pi, pf = gi + pk[0] * c, gf + pk[1] * c
            c = float_sigmoid(pf) * c + float_sigmoid(pi) * np.tanh(gg)
            po = go + pk[2] * c
            h = float_sigmoid(po) * np.tanh(c)
            hs[:, t] = h
            sel = mask[:, t]
            if sel.any():
                pres = np.abs(np.concatenate([pi, pf, gg, po], 1)[sel])
                cmax = max(cmax, float(np.abs(c[sel]).max()))
                pmax = max(pmax, float(pres.max()))
                nsat += int((pres >= 8.0).sum())
                ntot += pres.size
        out["c_absmax"].append(cmax)
        out["pre_absmax"].append(pmax)
        out["pre_sat_frac"].append(nsat / max(ntot, 1))
        inp = hs
    logits = inp @ _np(model.head.weight).T + _np(model.head.bias)
    out["logit_absmax"] = float(np.abs(logits[mask]).max())
    return out


def quantize_peephole(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    """One ``peephole`` layer per torch layer, the float head over the last layer's h."""
    model = tm.model
    cal = peephole_calibrate(model, ctx.xs)
    h = model.hidden
    hp = padded_hidden(h)
    layers: list[QLayer] = []
    psat = 0
    for k, cell in enumerate(model.cells):
        w_ih = _np(cell.ih.weight)
        if k == 0:
            w_ih, in_size = pad_cols(w_ih * ctx.k_in[None, :], ctx.in_pad), ctx.in_pad
        else:
            w_ih, in_size = pad_cols(w_ih, hp), hp
        w = pad_rows(np.concatenate([pad_cols(_np(cell.hh.weight), hp), w_ih], 1), h, hp, 4)
        if w.shape[1] > spec.MAX_ROW_INPUTS:
            raise ModelError(f"peephole layer {k}: {w.shape[1]} inputs per row exceed the C runtime's "
                             f"{spec.MAX_ROW_INPUTS}")
        q, bias, mult, scale = gate_rows(w, pad_rows(_np(cell.ih.bias), h, hp, 4), True, ctx.report,
                                         f"cells.{k}")
        pq = np.zeros((3, hp))
        pq[:, :h] = np.floor(_np(cell.peep) * 2.0**PEEP_FRAC + 0.5)
        psat += int(np.sum(np.abs(pq) > spec.INT16_MAX))
        pq = np.clip(pq, -spec.INT16_MAX, spec.INT16_MAX).astype(np.int64)
        cmax = cal["c_absmax"][k]
        cf = spec.CELL_FRAC_RANGE[1]
        while cf > spec.CELL_FRAC_RANGE[0] and cmax * 1.1 >= 2.0 ** (15 - cf):
            cf -= 1
        if ctx.cell_frac is not None:
            cf = int(ctx.cell_frac[k])
        if cmax * 1.1 >= 2.0 ** (15 - cf):
            ctx.report.setdefault("warnings", []).append(
                f"layer {k}: cell state reaches {cmax:.1f}, beyond the int16 range +-{2.0 ** (15 - cf):g}")
        layers.append(QLayer("peephole", in_size, hp, q, bias, mult, cf, scale, aux=hp, extra=pq.reshape(-1)))
    ctx.report["peephole_saturated"] = psat
    wo = pad_cols(_np(model.head.weight), hp)
    return QuantBody(layers, wo, _np(model.head.bias), h, logit_absmax=cal["logit_absmax"], calib={
        "cell_absmax": cal["c_absmax"],
        "preact_absmax": cal["pre_absmax"],
        "preact_sat_frac": cal["pre_sat_frac"],
    })


QUANTIZER = FamilyQuantizer(_check, quantize_peephole)
