"""Family quantizers of the continuous-time networks: ``ctrnn``, ``sctrnn`` and ``gactrnn``.

Every layer becomes one integer layer of kind ``ctrnn`` (:mod:`gaitedge.quant.ctrnn`,
``ge_ctrnn.c``) or ``gactrnn`` (:mod:`gaitedge.quant.gactrnn`, ``ge_gactrnn.c``).  The
S-CTRNN's class path (its CTRNN layers and class head) is exactly a CTRNN and uses the
``ctrnn`` kernel; its Gaussian next-sample head is not part of the streaming model.

The state-vector words of a layer hold ``z = 2 y - 1 = 2 sigmoid(u) - 1`` (Q0.15) instead
of ``y``, so that the runtime's zero state (``u = 0``) is the float model's zero state
(``y = 1/2``) and the outputs use the whole int16 range.  Every weight ``w`` that reads
``y`` is therefore stored as ``w / 2`` over ``z``, and its row's bias gains ``sum w / 2``
(``w y = (w / 2) z + (w / 2) 1``); the same for the class head.

Calibration (float model, training recordings) sets the potential's fraction bits
``uf`` per layer (the largest in 8..12 with ``1.1 max|u| < 2^(15 - uf)``) and reports the
ranges of the potentials and pre-activations.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.models.ctrnn import CTRNNLayer, LeakyStack
from gaitedge.models.gactrnn import GACTRNNLayer
from gaitedge.quant import spec
from gaitedge.quant.ctrnn import ALPHA_SHIFT
from gaitedge.quant.gactrnn import ALPHA_FRAC
from gaitedge.quant.model import QLayer
from gaitedge.quant.families.base import (FamilyQuantizer, QuantBody, QuantContext, gate_rows, pad_cols, pad_rows,
                                          padded_hidden)

#: potential fraction bits allowed (as the LSTM cell state)
U_FRAC_RANGE = spec.CELL_FRAC_RANGE


def check_leaky(model: nn.Module) -> None:
    """Only CTRNN / GACTRNN layers with a dense class head (and the S-CTRNN's Gaussian head)."""
    family = getattr(model, "family", type(model).__name__)
    if not isinstance(model, LeakyStack):
        raise ModelError(f"model '{family}' is not a continuous-time layer stack")
    for k, cell in enumerate(model.cells):
        if type(cell) not in (CTRNNLayer, GACTRNNLayer):
            raise ModelError(f"model '{family}': layer {k} ({type(cell).__name__}) has no C kernel")
    if not isinstance(model.head, nn.Linear):
        raise ModelError(f"model '{family}': the head must be a dense layer")


def _calibrate(model: LeakyStack, xs: list[np.ndarray]) -> dict:
    """Ranges of the float model over the calibration inputs (all recordings side by side)."""
    lens = [len(x) for x in xs]
    b, tmax = len(xs), max(lens)
    inp = np.zeros((b, tmax, xs[0].shape[1]), np.float32)
    mask = np.zeros((b, tmax), bool)
    for i, x in enumerate(xs):
        inp[i, : len(x)] = x
        mask[i, : len(x)] = True
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            tr = model.trace(torch.from_numpy(inp))
            logits = model.head(tr[-1]["y"]).numpy()
    finally:
        model.train(was)
    out: dict = {"u_absmax": [], "preact_absmax": [], "preact_sat_frac": [], "drive_absmax": []}
    h = model.hidden
    for cell, d in zip(model.cells, tr):
        u = np.abs(d["u"].numpy()[mask])
        pre = d["pre"].numpy()[mask]
        drive = np.abs(pre[:, -h:])
        # table inputs: the output sigmoid of u, and the gates' pre-activations (GACTRNN)
        table = np.concatenate([u, np.abs(pre[:, : (cell.gates - 1) * h])], 1)
        out["u_absmax"].append(float(u.max()))
        out["drive_absmax"].append(float(drive.max()))
        out["preact_absmax"].append(float(table.max()))
        out["preact_sat_frac"].append(float((table >= 8.0).mean()))
    out["logit_absmax"] = float(np.abs(logits[mask]).max())
    return out


def _u_frac(umax: float) -> int:
    uf = U_FRAC_RANGE[1]
    while uf > U_FRAC_RANGE[0] and umax * 1.1 >= 2.0 ** (15 - uf):
        uf -= 1
    return uf


def quantize_leaky(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    """CTRNN / S-CTRNN / GACTRNN stack -> integer layers over ``[z; input]`` and the class head over ``z``."""
    model = tm.model
    check_leaky(model)
    cal = _calibrate(model, ctx.xs)
    h = model.hidden
    hp = padded_hidden(h)
    ip, k_in, report = ctx.in_pad, ctx.k_in, ctx.report
    layers: list[QLayer] = []
    u_frac: list[int] = []
    for k, cell in enumerate(model.cells):
        g = cell.gates
        fp = cell.float_params()
        w_rec, w_in, b = fp["w_rec"], fp["w_in"], fp["bias"]
        # rows read z = 2 y - 1 instead of y: w y = (w / 2) z + sum(w) / 2
        b = b + 0.5 * w_rec.sum(1)
        w_rec = pad_cols(0.5 * w_rec, hp)
        if k == 0:
            w_in = pad_cols(w_in * k_in[None, :], ip)
            in_size = ip
        else:
            b = b + 0.5 * w_in.sum(1)
            w_in = pad_cols(0.5 * w_in, hp)
            in_size = hp
        if hp + in_size > spec.MAX_ROW_INPUTS:
            raise ModelError(f"layer {k}: {hp + in_size} inputs per row exceed the C runtime's "
                             f"{spec.MAX_ROW_INPUTS}")
        w = pad_rows(np.concatenate([w_rec, w_in], 1), h, hp, g)
        bb = pad_rows(b, h, hp, g)
        name = f"cells.{k}"
        if g == 1:
            q, bias, mult, scale = gate_rows(w, bb, False, report, name)
            kind = "ctrnn"
        else:  # blocks i, f (LUT inputs, offset) and the drive (no offset)
            q1, b1, m1, s1 = gate_rows(w[: 2 * hp], bb[: 2 * hp], True, report, name)
            q2, b2, m2, s2 = gate_rows(w[2 * hp :], bb[2 * hp :], False, report, name)
            q, bias, mult, scale = (np.concatenate(a) for a in ((q1, q2), (b1, b2), (m1, m2), (s1, s2)))
            kind = "gactrnn"
        umax = cal["u_absmax"][k]
        uf = _u_frac(umax)
        if ctx.cell_frac is not None:
            uf = int(ctx.cell_frac[k])
        if umax * 1.1 >= 2.0 ** (15 - uf):
            report.setdefault("warnings", []).append(
                f"layer {k}: potential u reaches {umax:.1f}, beyond the int16 range +-{2.0 ** (15 - uf):g}")
        u_frac.append(uf)
        alpha = np.concatenate([fp["alpha"], np.zeros(hp - h)])
        if np.any(alpha > 1.0 + 1e-6) or np.any(alpha[:h] <= 0):
            raise ModelError(f"layer {k}: dt / tau must lie in (0, 1]; got {alpha.min():g}..{alpha.max():g}")
        shift = ALPHA_SHIFT + uf if kind == "ctrnn" else ALPHA_FRAC
        extra = spec.quant_multiplier(np.minimum(alpha, 1.0), shift)
        if np.any(extra[:h] == 0):
            raise ModelError(f"layer {k}: a time constant of {1.0 / alpha[:h].min():g} samples is too long for "
                             f"the fixed-point dt/tau (2^-{shift})")
        layers.append(QLayer(kind, in_size, hp, q, bias, mult, uf, scale, aux=hp, extra=extra))
    wo = model.head.weight.detach().double().numpy()
    bo = model.head.bias.detach().double().numpy() + 0.5 * wo.sum(1)
    return QuantBody(layers, pad_cols(0.5 * wo, hp), bo, h, logit_absmax=cal["logit_absmax"], calib={
        "potential_absmax": cal["u_absmax"],
        "potential_frac": u_frac,
        "drive_absmax": cal["drive_absmax"],
        "preact_absmax": cal["preact_absmax"],
        "preact_sat_frac": cal["preact_sat_frac"],
    })


QUANTIZER = FamilyQuantizer(check_leaky, quantize_leaky)
