"""Family quantizer of the echo state networks (``esn``, ``leaky_esn``, ``deep_esn``).

Each reservoir becomes one ``reservoir`` layer (``gaitedge.quant.reservoir``,
``ge_reservoir.c``):

    x(t) = (1 - a) x(t-1) + a tanh(W_in u(t) + W x(t-1) + b)

* input part ``[W_in * K | b]`` (layer 1: inputs are ``x_norm / K``; deeper
  layers: the Q0.15 state of the layer below) -> int8 rows, int32 bias with the
  LUT offset, multiplier ``Min`` (:func:`gaitedge.quant.quantizer.gate_rows`);
* recurrent part ``W`` -> int8 rows with their own scale and multiplier ``Mrec``
  (the sparse reservoir is small next to the input weights; a shared row scale
  would round most of it to zero), stored in CSR;
* leak ``A = round(a * 2^15)``.

The readout reads the last reservoir (ESN, leaky ESN) or all of them in the
state vector's order ``[x_L .. x_1]`` (deep ESN).
"""

from __future__ import annotations

import numpy as np
import torch

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.models.esn import EchoStateNetwork
from gaitedge.quant import spec
from gaitedge.quant.model import QLayer
from gaitedge.quant.families.base import (FamilyQuantizer, QuantBody, QuantContext, gate_rows, pad_cols, pad_rows,
                                          padded_hidden, quantize_rows)
from gaitedge.quant.reservoir import LEAK_ONE, encode_csr

FAMILIES = ("esn", "leaky_esn", "deep_esn")


def _check(model: torch.nn.Module) -> None:
    if not isinstance(model, EchoStateNetwork):
        raise ModelError(f"model '{getattr(model, 'family', type(model).__name__)}' is not an echo state network")


def _calibrate(model: EchoStateNetwork, xs: list[np.ndarray]) -> dict:
    """Largest |pre-activation| per layer, the fraction beyond the tables' +-8, and the largest |logit|."""
    pmax = [0.0] * model.layers
    nsat = [0] * model.layers
    ntot = [0] * model.layers
    lmax = 0.0
    with torch.no_grad():
        for x in xs:
            xt = torch.from_numpy(np.asarray(x, np.float32))[None]
            outs, _ = model.layer_states(xt)
            inp = xt
            for k, hs in enumerate(outs):
                w_in, w, b = model.reservoir(k)
                prev = torch.cat([torch.zeros_like(hs[:, :1]), hs[:, :-1]], 1)
                pre = (torch.matmul(inp, w_in.t()) + b + torch.matmul(prev, w.t())).abs()
                pmax[k] = max(pmax[k], float(pre.max()))
                nsat[k] += int((pre >= 8.0).sum())
                ntot[k] += pre.numel()
                inp = hs
            logits, _ = model(xt)
            lmax = max(lmax, float(logits.abs().max()))
    return {"preact_absmax": pmax, "preact_sat_frac": [n / max(t, 1) for n, t in zip(nsat, ntot)],
            "logit_absmax": lmax}


def _quantize(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    model = tm.model
    _check(model)
    h = model.hidden
    hp = padded_hidden(h)
    leak_q = int(np.floor(model.leak * LEAK_ONE + 0.5))
    if leak_q < 1:
        raise ModelError(f"{model.family}: leak rate {model.leak:g} is below the fixed-point resolution 2^-15")
    cal = _calibrate(model, ctx.xs)
    rec_max_scale = spec.INT32_MAX / 2.0 ** (32 - spec.ACT_FRAC + spec.PRE_FRAC) * 0.999
    layers: list[QLayer] = []
    for k in range(model.layers):
        w_in, w, b = (t.detach().double().numpy() for t in model.reservoir(k))
        if k == 0:
            w_in = pad_cols(w_in * ctx.k_in[None, :], ctx.in_pad)
        else:
            w_in = pad_cols(w_in, hp)
        in_size = w_in.shape[1]
        if hp + in_size > spec.MAX_ROW_INPUTS:
            raise ModelError(f"{model.family} layer {k}: {hp} units over {in_size} inputs exceed the C runtime's "
                             f"{spec.MAX_ROW_INPUTS} values per row; use fewer units")
        name = f"reservoir.l{k}"
        q_in, bias, m_in, s_in = gate_rows(pad_rows(w_in, h, hp, 1), pad_rows(b, h, hp, 1), True, ctx.report, name)
        w_rec = pad_cols(pad_rows(w, h, hp, 1), hp)
        q_rec, s_rec, nsat = quantize_rows(w_rec, rec_max_scale)
        ctx.report["weights_saturated"][name] = ctx.report["weights_saturated"].get(name, 0) + nsat
        m_rec = spec.quant_multiplier(s_rec, 32 - spec.ACT_FRAC + spec.PRE_FRAC)
        layers.append(QLayer(
            "reservoir", in_size, hp, np.concatenate([q_rec, q_in], 1), bias, np.concatenate([m_in, m_rec]),
            0, np.concatenate([s_in, s_rec]), aux=0, extra=encode_csr(q_rec, leak_q),
        ))
    wo = model.head.weight.detach().double().numpy()
    if model.deep:  # torch's readout input is [x_L; ...; x_1], each of h units: pad each block to hp
        wo = np.concatenate([pad_cols(wo[:, j * h : (j + 1) * h], hp) for j in range(model.layers)], 1)
    else:
        wo = pad_cols(wo, hp)
    bo = model.head.bias.detach().double().numpy()
    ctx.report["reservoir"] = {
        "leak_q15": leak_q,
        "recurrent_nonzeros_int8": [int(np.count_nonzero(lay.weight[:, : lay.hidden])) for lay in layers],
        "recurrent_nonzeros_float": [int((model.reservoir(k)[1] != 0).sum()) for k in range(model.layers)],
    }
    return QuantBody(layers, wo, bo, h, logit_absmax=cal["logit_absmax"],
                     calib={"preact_absmax": cal["preact_absmax"], "preact_sat_frac": cal["preact_sat_frac"]})


QUANTIZER = FamilyQuantizer(_check, _quantize)
