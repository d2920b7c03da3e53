"""Family quantizer of the predictive-coding RNN (``pcrnn``): one ``pcrnn`` layer and a head on p2.

The trained model's effective weights (:meth:`PCRNNClassifier.effective_weights`,
``W_s`` and ``W21`` norm-capped) become the five row blocks of the ``pcrnn`` kernel
(``gaitedge.quant.pcrnn``, QUANTIZATION.md "PC-RNN layer"):

* ``R = W_r 2^(15-f)`` (prior; a gate row whose pre-activation feeds the tanh table),
* ``T = W21`` with ``b_1`` (top-down prediction, Qf -> Qf),
* ``G = diag(1/K) W_s`` with ``b_s / K`` (sensory prediction in input units
  ``x' = x_norm / K``, Q0.15 -> Q2.13),
* ``B = W_s^T diag(K)`` (sensory gradient, Q2.13 -> Qf),
* ``U = W21^T`` (bottom-up drive of the top level, Qf -> Qf).

``f`` (fraction bits of both levels, ``cell_frac``) is the largest in 8..12 with
``1.1 max(|p1|, |p2|, |e_1|) < 2^(15-f)`` over the calibration data, run through
a float64 reference of the relaxation.  The head reads p2 in Qf, so its float
weights are multiplied by ``2^(15-f)`` (the head quantizer assumes Q0.15).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.models.pcrnn import PCRNNClassifier
from gaitedge.quant import spec
from gaitedge.quant.model import QLayer
from gaitedge.quant.pcrnn import ES_FRAC, STATE_FRAC_RANGE
from gaitedge.quant.families.base import (FamilyQuantizer, QuantBody, QuantContext, gate_rows, pad_cols,
                                          padded_hidden, quantize_rows)


def _check(model: nn.Module) -> None:
    if not isinstance(model, PCRNNClassifier):
        raise ModelError(f"model '{getattr(model, 'family', type(model).__name__)}' is not a PC-RNN")


def linear_rows(w: np.ndarray, b: np.ndarray | None, f_in: int, f_out: int, report: dict,
                name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """int8 rows with ``mulhr(bias + W v, M)`` = ``(W v_real + b)`` in Q(f_out) for ``v`` in Q(f_in).

    ``M = round(s 2^(32 + f_out - f_in))`` (capped below 2^31), ``bias = round(b 2^f_out
    2^32 / M)`` clipped so that no accumulator leaves int32.  Returns (int8 weights,
    int32 biases, multipliers, float row scales); saturations go into ``report``.
    """
    shift = 32 + f_out - f_in
    q, scale, nsat = quantize_rows(w, spec.INT32_MAX / 2.0**shift * 0.999)
    mult = spec.quant_multiplier(scale, shift)
    real = np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)
    bias = np.floor(real * 2.0**f_out * 2.0**32 / mult + 0.5)
    lim = np.floor(spec.INT32_MAX - 32768.0 * np.abs(q).sum(axis=1))
    if np.any(lim < 0):
        raise ModelError(f"{name}: a row with {w.shape[1]} inputs is too wide for int32 accumulators")
    bsat = int(np.sum(np.abs(bias) > lim))
    bias = np.clip(bias, -lim, lim).astype(np.int64)
    report["weights_saturated"][name] = report["weights_saturated"].get(name, 0) + nsat
    report["bias_saturated"][name] = report["bias_saturated"].get(name, 0) + bsat
    return q, bias, mult, scale


def float_reference(model: PCRNNClassifier, xs: list[np.ndarray]) -> dict:
    """Run the float64 relaxation over ``xs`` (normalized ``(T, C)`` each, side by side).

    Returns the largest |p1|, |p2|, |e_1|, |e_s| (normalized units) and |logit| seen.
    """
    ew = model.effective_weights()
    w_s, b_s, w_21, b_1, w_r, b_r = (ew[k] for k in ("w_s", "b_s", "w_21", "b_1", "w_r", "b_r"))
    wo = model.head.weight.detach().double().numpy()
    bo = model.head.bias.detach().double().numpy()
    a1, a2, k = model.alpha1, model.alpha2, model.relax_steps
    tmax = max(len(x) for x in xs)
    b = len(xs)
    inp = np.zeros((b, tmax, xs[0].shape[1]))
    mask = np.zeros((b, tmax), bool)
    for i, x in enumerate(xs):
        inp[i, : len(x)] = x
        mask[i, : len(x)] = True
    p1 = np.zeros((b, model.hidden1))
    p2 = np.zeros((b, model.hidden))
    mx = {"p1": 0.0, "p2": 0.0, "e1": 0.0, "es": 0.0, "logit": 0.0}

    def upd(key: str, v: np.ndarray, m: np.ndarray) -> None:
        if m.any():
            mx[key] = max(mx[key], float(np.abs(v[m]).max()))

    for t in range(tmax):
        m = mask[:, t]
        phat = np.tanh(p2 @ w_r.T + b_r)
        p2 = phat
        s = inp[:, t]
        for _ in range(k):
            a = np.tanh(p1)
            e_s = s - (a @ w_s.T + b_s)
            e_1 = p1 - (p2 @ w_21.T + b_1)
            upd("es", e_s, m)
            upd("e1", e_1, m)
            d1 = (1.0 - a * a) * (e_s @ w_s) - e_1
            d2 = e_1 @ w_21 - (p2 - phat)
            p1 = p1 + a1 * d1
            p2 = p2 + a2 * d2
            upd("p1", p1, m)
            upd("p2", p2, m)
        upd("logit", p2 @ wo.T + bo, m)
    return mx


def quantize_pcrnn(tm: TrainedModel, ctx: QuantContext) -> QuantBody:
    """A trained PC-RNN -> one ``pcrnn`` layer plus the head over its top level."""
    model = tm.model
    _check(model)
    ew = model.effective_weights()
    cal = float_reference(model, ctx.xs)
    smax = max(cal["p1"], cal["p2"], cal["e1"])
    f = STATE_FRAC_RANGE[1]
    while f > STATE_FRAC_RANGE[0] and smax * 1.1 >= 2.0 ** (15 - f):
        f -= 1
    if smax * 1.1 >= 2.0 ** (15 - f):
        ctx.report.setdefault("warnings", []).append(
            f"pcrnn: states reach {smax:.1f}, beyond the int16 range +-{2.0 ** (15 - f):g}")
    k_in, ip, report = ctx.k_in, ctx.in_pad, ctx.report
    h2, h1 = model.hidden, model.hidden1
    h2p, h1p = padded_hidden(h2), padded_hidden(h1)
    cr = -(-ip // 4) * 4
    if max(h2p, h1p) + ip > spec.MAX_ROW_INPUTS:
        raise ModelError(f"pcrnn: {max(h2p, h1p)} units over {ip} inputs exceed the C runtime's "
                         f"{spec.MAX_ROW_INPUTS} inputs per row")

    def grid(w: np.ndarray, rows: int, cols: int) -> np.ndarray:
        out = np.zeros((rows, cols))
        out[: w.shape[0], : w.shape[1]] = w
        return out

    def vec(b: np.ndarray, n: int) -> np.ndarray:
        out = np.zeros(n)
        out[: len(b)] = b
        return out

    w_s, w_21 = ew["w_s"], ew["w_21"]
    qr, br, mr, sr = gate_rows(grid(ew["w_r"] * 2.0 ** (15 - f), h2p, h2p), vec(ew["b_r"], h2p), True, report,
                               "pcrnn.prior")
    qt, bt, mt, st = linear_rows(grid(w_21, h1p, h2p), vec(ew["b_1"], h1p), f, f, report, "pcrnn.topdown")
    qg, bg, mg, sg = linear_rows(grid(w_s / k_in[:, None], cr, h1p), vec(ew["b_s"] / k_in, cr), 15, ES_FRAC,
                                 report, "pcrnn.generative")
    qb, bb, mb, sb = linear_rows(grid(w_s.T * k_in[None, :], h1p, ip), None, ES_FRAC, f, report,
                                 "pcrnn.sensory_grad")
    qu, bu, mu, su = linear_rows(grid(w_21.T, h2p, h1p), None, f, f, report, "pcrnn.bottomup")
    width = max(h2p, h1p, ip)
    weight = np.concatenate([pad_cols(q.astype(np.float64), width) for q in (qr, qt, qg, qb, qu)]).astype(np.int64)
    alphas = [min(int(np.floor(a * 32768.0 + 0.5)), 32767) for a in (model.alpha1, model.alpha2)]
    layer = QLayer("pcrnn", ip, h2p, weight, np.concatenate([br, bt, bg, bb, bu]),
                   np.concatenate([mr, mt, mg, mb, mu]), f, np.concatenate([sr, st, sg, sb, su]), aux=h1p,
                   extra=np.array([model.relax_steps, *alphas], np.int64))
    wo = pad_cols(model.head.weight.detach().double().numpy() * 2.0 ** (15 - f), h2p)
    bo = model.head.bias.detach().double().numpy()
    return QuantBody([layer], wo, bo, h2, logit_absmax=cal["logit"], calib={
        "pcrnn_state_frac": f,
        "pcrnn_absmax": {"p1": cal["p1"], "p2": cal["p2"], "e1": cal["e1"], "es": cal["es"]},
        "pcrnn_es_max_input_units": float(cal["es"] / np.min(k_in)),
    })


QUANTIZER = FamilyQuantizer(_check, quantize_pcrnn)
