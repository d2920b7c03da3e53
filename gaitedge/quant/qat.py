"""Quantization-aware fine-tuning: the float model trained through a fake-quantized twin.

:class:`FakeQuantModel` simulates the fixed-point spec in float: per-row int8
weights (input columns scaled by the input range ``K``) with straight-through
rounding, Q0.15 inputs clipped at ``+-K``; with ``exact=True`` it also steps
through the cells in Python clipping gate pre-activations to the tables'
[-8, 8) and the LSTM cell state to its Q(15-cf).cf range.  The rounding of
activations to their 2^-12 / 2^-15 grids and the table interpolation (errors
below 2^-11) are not simulated.  The formats (``K``, cell and logit fraction
bits) stay those of the post-training quantization it starts from.
:func:`finetune` trains the model's own parameters through it (fast path:
torch's RNN kernels with fake-quantized weights) in the training loop of
:func:`gaitedge.training.loop.fit` and keeps the epoch whose *integer*
pipeline scores best on the validation subjects.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.config import TrainConfig, from_dict
from gaitedge.data.augment import imu_triads, mirror_signs
from gaitedge.data.recording import UNLABELED, Recording
from gaitedge.data.windows import WindowSampler, loss_labels
from gaitedge.quant.model import QuantModel
from gaitedge.training.loop import EpochScore, FitOptions, fit
from gaitedge.training.state import TrainState

#: the model families quantization-aware fine-tuning covers (torch's own LSTM / GRU / Elman cells)
QAT_FAMILIES = ("lstm", "gru", "elman")


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _fq(x: torch.Tensor, frac: int, lo: float, hi: float) -> torch.Tensor:
    """Clip to [lo, hi] (zero gradient outside) and round to a 2^-frac grid (straight through)."""
    step = 2.0**-frac
    return _ste_round(torch.clamp(x, lo, hi) / step) * step


def _fq_rows(w: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 fake quantization with one scale per row."""
    s = (w.detach().abs().amax(dim=1, keepdim=True) / 127.0).clamp_min(1e-12)
    return torch.clamp(_ste_round(w / s), -127, 127) * s


Q15_HI = 1.0 - 2.0**-15
PRE_LO, PRE_HI = -8.0, 8.0 - 2.0**-12


class FakeQuantModel(nn.Module):
    """Fake-quantized forward of a :class:`TrainedModel`'s recurrent model (shares its parameters)."""

    def __init__(self, tm: TrainedModel, qm: QuantModel) -> None:
        super().__init__()
        self.model = tm.model
        self.family = tm.model.family
        self.register_buffer("k_in", torch.tensor(qm.pre.input_range, dtype=torch.float32))
        self.cell_frac = [lay.cell_frac for lay in qm.layers]

    def _weights(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fake-quantized (W_ih acting on x / K, W_hh, b_ih, b_hh) of layer k."""
        rnn = self.model.rnn
        w_ih = getattr(rnn, f"weight_ih_l{k}")
        w_hh = getattr(rnn, f"weight_hh_l{k}")
        b_ih = getattr(rnn, f"bias_ih_l{k}", None)
        b_hh = getattr(rnn, f"bias_hh_l{k}", None)
        h = w_hh.shape[1]
        b_ih = torch.zeros(w_ih.shape[0]) if b_ih is None else b_ih
        b_hh = torch.zeros(w_ih.shape[0]) if b_hh is None else b_hh
        scale = self.k_in[None, :] if k == 0 else torch.ones(1, w_ih.shape[1])
        wi = w_ih * scale
        if self.family == "gru":
            rz = _fq_rows(torch.cat([w_hh[: 2 * h], wi[: 2 * h]], 1))
            wn_h = _fq_rows(w_hh[2 * h :])
            wn_x = _fq_rows(wi[2 * h :])
            q_hh = torch.cat([rz[:, :h], wn_h], 0)
            q_ih = torch.cat([rz[:, h:], wn_x], 0)
        else:
            q = _fq_rows(torch.cat([w_hh, wi], 1))
            q_hh, q_ih = q[:, :h], q[:, h:]
        return q_ih, q_hh, b_ih, b_hh

    def forward(self, x: torch.Tensor, exact: bool = False) -> torch.Tensor:
        """Normalized inputs ``[B, T, C]`` -> logits ``[B, T, K]``.

        By default the recurrence runs in torch's own RNN kernels with the
        fake-quantized weights (fast; the gate and cell clipping of the spec is
        left out, it is active on well under 0.1 % of the steps of the models we
        calibrated).  ``exact=True`` steps through the cells in Python and also
        clips gate pre-activations to [-8, 8) and the LSTM cell state to its range.
        """
        inp = _fq(x / self.k_in, 15, -1.0, Q15_HI)
        if not exact:
            params = {}
            for k in range(self.model.layers):
                q_ih, q_hh, b_ih, b_hh = self._weights(k)
                params[f"weight_ih_l{k}"] = q_ih
                params[f"weight_hh_l{k}"] = q_hh
                if hasattr(self.model.rnn, f"bias_ih_l{k}"):
                    params[f"bias_ih_l{k}"] = b_ih
                    params[f"bias_hh_l{k}"] = b_hh
            y, _ = torch.func.functional_call(self.model.rnn, params, (inp,))
            head = self.model.head
            return y @ _fq_rows(head.weight).T + head.bias
        b, t, _ = x.shape
        hidden = self.model.hidden
        for k in range(self.model.layers):
            q_ih, q_hh, b_ih, b_hh = self._weights(k)
            xp = inp @ q_ih.T + b_ih
            h = torch.zeros(b, hidden)
            c = torch.zeros(b, hidden)
            cf = self.cell_frac[k]
            c_lim = 2.0 ** (15 - cf)
            c_hi = c_lim - 2.0**-cf
            outs = []
            for s in range(t):
                hp = h @ q_hh.T + b_hh
                if self.family == "lstm":
                    pre = torch.clamp(xp[:, s] + hp, PRE_LO, PRE_HI)
                    i, f, g, o = pre.chunk(4, dim=1)
                    c = torch.clamp(torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g), -c_lim, c_hi)
                    h = torch.sigmoid(o) * torch.tanh(torch.clamp(c, PRE_LO, PRE_HI))
                elif self.family == "gru":
                    xr, xz, xn = xp[:, s].chunk(3, dim=1)
                    hr, hz, hn = hp.chunk(3, dim=1)
                    r = torch.sigmoid(torch.clamp(xr + hr, PRE_LO, PRE_HI))
                    z = torch.sigmoid(torch.clamp(xz + hz, PRE_LO, PRE_HI))
                    n = torch.tanh(torch.clamp(xn + r * torch.clamp(hn, PRE_LO, PRE_HI), PRE_LO, PRE_HI))
                    h = n + z * (h - n)
                else:
                    h = torch.tanh(torch.clamp(xp[:, s] + hp, PRE_LO, PRE_HI))
                outs.append(h)
            inp = torch.stack(outs, 1)
        head = self.model.head
        return inp @ _fq_rows(head.weight).T + head.bias


def finetune(
    tm: TrainedModel,
    qm: QuantModel,
    train: list[Recording],
    val: list[Recording],
    epochs: int = 5,
    lr: float = 3e-4,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    window_s: float | None = None,
    seed: int = 0,
    log=print,
) -> tuple[TrainedModel, QuantModel, list[dict]]:
    """Fine-tune ``tm`` through :class:`FakeQuantModel`; return (model, its quantization, history).

    Training windows, augmentation and loss follow the run's config; every epoch
    the model is quantized with ``qm``'s formats and scored with the integer
    pipeline on ``val`` (mean of macro-F1 and event F1).  The best epoch wins,
    the starting point (epoch 0) included, so fine-tuning never makes it worse
    on the validation subjects.
    """
    from gaitedge.quant.quantizer import quantize_model

    tc = from_dict(tm.config).train if tm.config else TrainConfig()
    steps = steps_per_epoch or tc.steps_per_epoch
    bs = batch_size or tc.batch_size
    sampler = _sampler(tm, train, tc, window_s or tc.window_s, seed)
    augment = (tc.augment_gain, tc.augment_noise, tc.augment_rotation_deg, tc.augment_time_warp, tc.augment_mirror)
    fixed = {
        "input_range": qm.pre.input_range,
        "cell_frac": [lay.cell_frac for lay in qm.layers],
        "logit_frac": qm.logit_frac,
        "lsb": dict(zip(qm.channels, qm.pre.lsb.tolist())),
    }

    torch.manual_seed(seed)
    fq = FakeQuantModel(tm, qm)
    opt = torch.optim.AdamW(tm.model.parameters(), lr=lr, weight_decay=tc.weight_decay)
    total = max(1, epochs * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    loss_fn = nn.CrossEntropyLoss(ignore_index=UNLABELED)
    clip = tc.grad_clip if tc.grad_clip > 0 else 1.0

    def train_epoch(epoch: int) -> tuple[float, dict]:
        tm.model.train()
        tot = 0.0
        for _ in range(steps):
            xb, yb = (torch.from_numpy(a) for a in sampler.batch(bs, *augment))
            logits = fq(xb)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(tm.model.parameters(), clip)
            opt.step()
            sched.step()
            tot += float(loss.detach())
        return tot / steps, {}

    quantized: dict[int, QuantModel] = {0: qm}

    def validate(epoch: int) -> EpochScore:
        tm.model.eval()
        q = quantized[epoch] = quantize_model(tm, train, **fixed)
        row = _score(q, val, tm.tolerance_ms)
        weights = {k: v.detach().clone() for k, v in tm.model.state_dict().items()}
        return EpochScore(row["score"], row, f"val macro-F1 {row['macro_f1']:.4f}  event F1 {row['event_f1']:.4f}",
                          lambda: weights)

    start = _score(qm, val, tm.tolerance_ms)
    state = TrainState(history=[{**start, "epoch": 0, "train_loss": float("nan"), "elapsed_s": 0.0}],
                       best_score=start["score"], best_epoch=0,
                       best_state={k: v.detach().clone() for k, v in tm.model.state_dict().items()})
    log(f"qat epoch   0  (post-training quantization)  val macro-F1 {start['macro_f1']:.4f}  "
        f"event F1 {start['event_f1']:.4f}")
    fit(train_epoch, validate, state, epochs, opts=FitOptions(log=log, prefix="qat "))
    tm.model.load_state_dict(state.best_state)
    tm.model.eval()
    best_qm = quantized[state.best_epoch]
    tm.info = dict(tm.info, qat_best_epoch=state.best_epoch, qat_epochs=epochs, weights_sha256=tm.weights_hash())
    best_qm.float_weights_sha256 = tm.weights_hash()
    return tm, best_qm, state.history


def _sampler(tm: TrainedModel, train: list[Recording], tc: TrainConfig, window_s: float, seed: int) -> WindowSampler:
    """Training windows of ``window_s`` s from the run's preprocessed training recordings, as in float training."""
    rate = tm.rate_hz
    prepped = [tm.preprocess(r) for r in train]
    return WindowSampler(
        [r.signals for r in prepped],
        [loss_labels(r.labels, tc.boundary_ignore, tm.delay) for r in prepped],
        max(2, int(round(window_s * rate))), int(round(tc.burn_in_s * rate)), seed, tm.normalizer,
        imu_triads(tm.channels), mirror_signs(tm.channels),
    )


def _score(q: QuantModel, val: list[Recording], tolerance_ms: float) -> dict:
    """The integer pipeline's validation scores: macro-F1, event F1 (undefined counts 0) and their mean."""
    from gaitedge.quant.evaluate import evaluate_quant

    m = evaluate_quant(q, val, tolerance_ms)
    ev = m["event_f1"] if np.isfinite(m["event_f1"]) else 0.0
    return {"macro_f1": m["macro_f1"], "event_f1": ev, "score": 0.5 * (m["macro_f1"] + ev)}
