"""Family quantizer of the RNN encoder-decoder (``gaitedge.models.encdec``), phase output.

The family maps exactly onto the existing ``ge_lstm.c`` / ``ge_gru.c`` kernels:
``layers = [enc_1 .. enc_E, dec]`` (encoder LSTM or GRU layers, the GRU decoder),
run by the window runtime (``ge_window.c``, twin :mod:`gaitedge.quant.window`):
the encoder steps through the window as a streaming stack, its last layer's
final ``h`` is the context, and the decoder steps through the window again
from the context (context ``init``/``both``) reading ``[x_t (; context)]``
(context ``input``/``both``; its context columns are the float decoder's
``W_ih`` columns over ``c``, in Q0.15 like any hidden state).  The head reads
the decoder's ``h``.  The forecasting decoder of ``target=phase+forecast`` has no
C counterpart (the window API returns the phase sequence); it is left out.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.quant.families.window_common import batch_inputs, cell_frac_for, float_pass, rnn_layer, spread_cols, \
    torch_layer
from gaitedge.quant.families.base import FamilyQuantizer, QuantBody, QuantContext, pad_cols, padded_hidden
from gaitedge.quant.window import ARCH_ENCDEC, CTX_INIT, CTX_INPUT


def _check(model: nn.Module) -> None:
    from gaitedge.models.encdec import EncoderDecoder

    if not isinstance(model, EncoderDecoder):
        raise ModelError(f"model '{getattr(model, 'family', type(model).__name__)}' is not an encoder-decoder")


def _quantize(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    model = tm.model
    kind = model.encoder_kind
    h, hp, ip = model.hidden, padded_hidden(model.hidden), ctx.in_pad
    x, lengths = batch_inputs(ctx.xs)
    layers, pre_max, pre_sat, c_max = [], [], [], []
    seq = x
    for k in range(model.layers):
        w_ih, w_hh, b_ih, b_hh = torch_layer(model.encoder, k)
        seq, st = float_pass(kind, (w_ih, w_hh, b_ih, b_hh), seq, lengths)
        wq, in_size = (pad_cols(w_ih * ctx.k_in[None, :], ip), ip) if k == 0 else (pad_cols(w_ih, hp), hp)
        name = f"encoder.l{k}"
        cf = 0
        if kind == "lstm":
            cf = cell_frac_for(st["c_absmax"], ctx.report, name, None if ctx.cell_frac is None else ctx.cell_frac[k])
        layers.append(rnn_layer(kind, wq, w_hh, b_ih, b_hh, h, hp, in_size, ctx.report, name, cf))
        pre_max.append(st["pre_absmax"])
        pre_sat.append(st["pre_sat_frac"])
        c_max.append(st["c_absmax"])
    context = seq[np.arange(len(lengths)), lengths - 1]  # [B, H] final state of the last encoder layer
    # decoder
    w_ih, w_hh, b_ih, b_hh = torch_layer(model.decoder, 0)
    c_in = model.input_size
    dec_x = x
    if model.ctx_input:
        dec_x = np.concatenate([x, np.repeat(context[:, None, :], x.shape[1], 1)], 2)
    d, st = float_pass("gru", (w_ih, w_hh, b_ih, b_hh), dec_x, lengths,
                       h0=context if model.ctx_init else None)
    wq = pad_cols(w_ih[:, :c_in] * ctx.k_in[None, :], ip)
    in_size = ip
    if model.ctx_input:
        wq = np.concatenate([wq, spread_cols(w_ih[:, c_in:], 1, h, hp)], 1)
        in_size = ip + hp
    layers.append(rnn_layer("gru", wq, w_hh, b_ih, b_hh, h, hp, in_size, ctx.report, "decoder"))
    pre_max.append(st["pre_absmax"])
    pre_sat.append(st["pre_sat_frac"])
    c_max.append(0.0)
    w = model.head.weight.detach().double().numpy()
    bo = model.head.bias.detach().double().numpy()
    mask = np.arange(d.shape[1])[None, :] < lengths[:, None]
    logits = d @ w.T + bo
    mode = (CTX_INIT if model.ctx_init else 0) | (CTX_INPUT if model.ctx_input else 0)
    return QuantBody(layers, pad_cols(w, hp), bo, h, logit_absmax=float(np.abs(logits[mask]).max()), calib={
        "cell_absmax": c_max, "preact_absmax": pre_max, "preact_sat_frac": pre_sat,
        "window": {"arch": ARCH_ENCDEC, "mode": mode, "head_cols": hp, "context": model.context},
    })


QUANTIZER = FamilyQuantizer(_check, _quantize)
