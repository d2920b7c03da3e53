"""Family quantizer of the deep GRU (``gaitedge.models.deep_gru``) onto the existing GRU kernel.

No new C kernel: every connection pattern maps exactly onto ``ge_gru.c`` layers
through the runtime's state vector ``[h_L .. h_1, x']``, in which layer ``k`` reads
its own ``h`` followed by ``in_size`` words, i.e. any number of layers below it and
the input:

* ``standard``: layer ``k >= 2`` reads ``h_{k-1}`` (``in_size = Hp``); the head reads ``h_L``;
* ``dense``: layer ``k >= 2`` reads ``[h_{k-1}; ...; h_1; x']`` (``in_size = (k-1) Hp + I``),
  the torch layer's input columns in the same order (each block padded to ``Hp``,
  the ``x`` block times ``K``); the head reads ``[h_L; ...; h_1]`` (all layers);
* ``residual``: the input of layer ``k >= 2`` is ``o_{k-1} = h_{k-1} + ... + h_1``.
  Because the matrix pass is linear, ``W o_{k-1} = sum_j W h_j``: the layer reads
  ``[h_{k-1}; ...; h_1]`` with its input weights repeated for every block (the
  integer accumulator is exactly ``W_q (sum_j h_j)``, and the sum is never stored,
  so it cannot saturate); the head reads all layers with its weights repeated.

The GRU rows are quantized as the plain GRU's (QUANTIZATION.md section 4: r, z
over ``[h; input]``, ``nh`` over ``h``, ``nx`` over the input).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.quant import spec
from gaitedge.quant.model import QLayer
from gaitedge.quant.families.base import (FamilyQuantizer, QuantBody, QuantContext, float_rnn_pass, gate_rows,
                                          pad_cols, pad_rows, padded_hidden)


def _check(model: nn.Module) -> None:
    from gaitedge.models.deep_gru import DeepGRUClassifier

    if not isinstance(model, DeepGRUClassifier):
        raise ModelError(f"model '{getattr(model, 'family', type(model).__name__)}' is not a deep GRU")
    for k, g in enumerate(model.grus):
        if g.num_layers != 1 or g.bidirectional:
            raise ModelError(f"deep_gru layer {k}: only single-layer unidirectional GRUs have a C kernel")


def _np(t) -> np.ndarray:
    return t.detach().double().numpy()


def deep_gru_calibrate(model, xs: list[np.ndarray]) -> dict:
    """Float64 run: per layer max |pre-activation| (r, z, W_hn h + b_hn, n) and the
    fraction beyond +-8; max |logit|."""
    lengths = np.array([len(x) for x in xs])
    b, tmax = len(xs), int(lengths.max())
    x = np.zeros((b, tmax, xs[0].shape[1]))
    for i, xi in enumerate(xs):
        x[i, : len(xi)] = xi
    mask = np.arange(tmax)[None, :] < lengths[:, None]
    out: dict = {"pre_absmax": [], "pre_sat_frac": []}
    hs: list[np.ndarray] = []
    o = x
    for k, g in enumerate(model.grus):
        if k == 0:
            inp = x
        elif model.connection == "dense":
            inp = np.concatenate([*reversed(hs), x], -1)
        else:
            inp = o
        w = tuple(_np(getattr(g, f"{n}_l0")) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        seq, st = float_rnn_pass("gru", w, inp, lengths)
        pmax, sat = st["pre_absmax"], st["pre_sat_frac"]
        out["pre_absmax"].append(pmax)
        out["pre_sat_frac"].append(sat)
        hs.append(seq)
        o = seq + o if (model.connection == "residual" and k > 0) else seq
    feat = np.concatenate(list(reversed(hs)), -1) if model.connection == "dense" else o
    logits = feat @ _np(model.head.weight).T + _np(model.head.bias)
    out["logit_absmax"] = float(np.abs(logits[mask]).max())
    return out


def _blocks(w: np.ndarray, n_blocks: int, h: int, hp: int) -> np.ndarray:
    """Columns ``[n_blocks x h]`` -> each block padded to ``hp``."""
    return np.concatenate([pad_cols(w[:, j * h : (j + 1) * h], hp) for j in range(n_blocks)], 1) if n_blocks else \
        np.zeros((w.shape[0], 0))


def _gru_layer(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray, h: int, hp: int,
               report: dict, name: str) -> QLayer:
    """A ``gru`` QLayer from float weights whose input columns are already in state-vector order."""
    in_size = w_ih.shape[1]
    if hp + in_size > spec.MAX_ROW_INPUTS:
        raise ModelError(f"{name}: {hp + in_size} inputs per row exceed the C runtime's {spec.MAX_ROW_INPUTS}; "
                         f"use fewer layers or a smaller hidden size")
    w_hh = pad_cols(w_hh, hp)
    wr = np.concatenate([w_hh[: 2 * h], w_ih[: 2 * h]], 1)
    br = b_ih[: 2 * h] + b_hh[: 2 * h]
    wnh = np.concatenate([w_hh[2 * h :], np.zeros((h, in_size))], 1)
    wnx = np.concatenate([np.zeros((h, hp)), w_ih[2 * h :]], 1)
    q1, b1, m1, s1 = gate_rows(pad_rows(wr, h, hp, 2), pad_rows(br, h, hp, 2), True, report, name)
    q2, b2, m2, s2 = gate_rows(pad_rows(wnh, h, hp, 1), pad_rows(b_hh[2 * h :], h, hp, 1), False, report, name)
    q3, b3, m3, s3 = gate_rows(pad_rows(wnx, h, hp, 1), pad_rows(b_ih[2 * h :], h, hp, 1), True, report, name)
    return QLayer("gru", in_size, hp, np.concatenate([q1, q2, q3]), np.concatenate([b1, b2, b3]),
                  np.concatenate([m1, m2, m3]), 0, np.concatenate([s1, s2, s3]))


def quantize_deep_gru(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    """``gru`` layers reading the layers below as the connection pattern needs, and the head."""
    model = tm.model
    h, n_layers, conn = model.hidden, model.layers, model.connection
    hp = padded_hidden(h)
    c = model.input_size
    widths = [ctx.in_pad if k == 0 else {"standard": hp, "residual": k * hp, "dense": k * hp + ctx.in_pad}[conn]
              for k in range(n_layers)]
    for k, w in enumerate(widths):
        if hp + w > spec.MAX_ROW_INPUTS:
            raise ModelError(f"deep_gru layer {k}: {hp + w} inputs per row exceed the C runtime's "
                             f"{spec.MAX_ROW_INPUTS}; use fewer layers or a smaller hidden size")
    layers: list[QLayer] = []
    for k, g in enumerate(model.grus):
        w_ih = _np(g.weight_ih_l0)
        if k == 0:
            w_in = pad_cols(w_ih * ctx.k_in[None, :], ctx.in_pad)
        elif conn == "standard":
            w_in = pad_cols(w_ih, hp)
        elif conn == "residual":
            w_in = np.concatenate([pad_cols(w_ih, hp)] * k, 1)
        else:  # dense: columns [h_{k-1} .. h_1 | x]
            w_in = np.concatenate([_blocks(w_ih[:, : k * h], k, h, hp),
                                   pad_cols(w_ih[:, k * h :] * ctx.k_in[None, :], ctx.in_pad)], 1)
            assert w_ih.shape[1] == k * h + c
        layers.append(_gru_layer(w_in, _np(g.weight_hh_l0), _np(g.bias_ih_l0), _np(g.bias_hh_l0), h, hp,
                                 ctx.report, f"grus.{k}"))
    w_head = _np(model.head.weight)
    if conn == "dense":
        head = _blocks(w_head, n_layers, h, hp)
    elif conn == "residual" and n_layers > 1:
        head = np.concatenate([pad_cols(w_head, hp)] * n_layers, 1)
    else:
        head = pad_cols(w_head, hp)
    cal = deep_gru_calibrate(model, ctx.xs)
    return QuantBody(layers, head, _np(model.head.bias), h, logit_absmax=cal["logit_absmax"], calib={
        "preact_absmax": cal["pre_absmax"],
        "preact_sat_frac": cal["pre_sat_frac"],
    })


QUANTIZER = FamilyQuantizer(_check, quantize_deep_gru)
