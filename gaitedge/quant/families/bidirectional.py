"""Family quantizer of the bidirectional LSTM / GRU (``gaitedge.models.bidirectional``).

The family maps exactly onto the existing ``ge_lstm.c`` / ``ge_gru.c`` kernels:
each level becomes two ordinary layers (``layers = [fwd_0, bwd_0, fwd_1, ...]``)
that the window runtime (``ge_window.c``, twin :mod:`gaitedge.quant.window`)
runs forward and backward over the window; no new layer kind is needed.

Merge in the integer pipeline (``report["window"]["mode"]``):

* ``concat``: ``Y = [h→ ; h←]``, the float columns of the next level / head are
  spread to ``[fwd (padded) | bwd (padded)]``;
* ``mean`` and ``sum``: ``Y = (h→ + h← + 1) >> 1`` (Q0.15 of the mean, never
  saturating); for ``sum`` the weights that read ``Y`` are doubled
  (``h→ + h← = 2 Y``).

The head reads the last level's ``Y`` (its first ``head_cols`` columns; with
two or more concat levels ``head_weight`` carries zero columns after them so
that the stored layer list passes the streaming stack's shape check).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.quant.families.window_common import batch_inputs, cell_frac_for, float_pass, rnn_layer, spread_cols, \
    torch_layer
from gaitedge.quant.families.base import FamilyQuantizer, QuantBody, QuantContext, pad_cols, padded_hidden
from gaitedge.quant.window import ARCH_BIDIR, MERGE_AVG, MERGE_CONCAT


def _check(model: nn.Module) -> None:
    from gaitedge.models.bidirectional import BidirectionalClassifier

    if not isinstance(model, BidirectionalClassifier):
        raise ModelError(f"model '{getattr(model, 'family', type(model).__name__)}' is not a bidirectional RNN")


def _quantize(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    model = tm.model
    kind = "lstm" if model.family == "bilstm" else "gru"
    h, hp, ip = model.hidden, padded_hidden(model.hidden), ctx.in_pad
    concat = model.merge == "concat"
    factor = 2.0 if model.merge == "sum" else 1.0  # float merged value = factor * integer Y
    x, lengths = batch_inputs(ctx.xs)
    layers, pre_max, pre_sat, c_max = [], [], [], []
    seq = x  # float input sequence of the level
    for k, rnn in enumerate(model.levels):
        dirs = []
        for d, suffix in enumerate(("", "_reverse")):
            w_ih, w_hh, b_ih, b_hh = torch_layer(rnn, 0, suffix)
            hs, st = float_pass(kind, (w_ih, w_hh, b_ih, b_hh), seq, lengths, reverse=bool(d))
            dirs.append(hs)
            if k == 0:
                wq, in_size = pad_cols(w_ih * ctx.k_in[None, :], ip), ip
            elif concat:
                wq, in_size = spread_cols(w_ih, 2, h, hp), 2 * hp
            else:
                wq, in_size = pad_cols(w_ih * factor, hp), hp
            name = f"levels.{k}.{'backward' if d else 'forward'}"
            cf = 0
            if kind == "lstm":
                fixed = None if ctx.cell_frac is None else ctx.cell_frac[len(layers)]
                cf = cell_frac_for(st["c_absmax"], ctx.report, name, fixed)
            layers.append(rnn_layer(kind, wq, w_hh, b_ih, b_hh, h, hp, in_size, ctx.report, name, cf))
            pre_max.append(st["pre_absmax"])
            pre_sat.append(st["pre_sat_frac"])
            c_max.append(st["c_absmax"])
        seq = np.concatenate(dirs, 2) if concat else (dirs[0] + dirs[1]) * (1.0 if model.merge == "sum" else 0.5)
    w = model.head.weight.detach().double().numpy()
    head_cols = 2 * hp if concat else hp
    wo = spread_cols(w, 2, h, hp) if concat else pad_cols(w * factor, hp)
    if concat and model.layers > 1:
        wo = pad_cols(wo, 2 * hp * model.layers)
    bo = model.head.bias.detach().double().numpy()
    logits = seq @ w.T + bo
    mask = np.arange(seq.shape[1])[None, :] < lengths[:, None]
    return QuantBody(layers, wo, bo, h, logit_absmax=float(np.abs(logits[mask]).max()), calib={
        "cell_absmax": c_max, "preact_absmax": pre_max, "preact_sat_frac": pre_sat,
        "window": {"arch": ARCH_BIDIR, "mode": MERGE_CONCAT if concat else MERGE_AVG, "head_cols": head_cols,
                   "merge": model.merge},
    })


QUANTIZER = FamilyQuantizer(_check, _quantize)
