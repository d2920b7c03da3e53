"""Distillation (``train.teachers``): a model learns the mean class probabilities of trained models."""

from __future__ import annotations

import torch

from gaitedge.checkpoint import TrainedModel, load_checkpoint
from gaitedge.data.recording import UNLABELED
from gaitedge.errors import ConfigError, GaitedgeError


class Teachers:
    """Trained models whose mean class probabilities a model learns (``train.teachers``).

    Every teacher must share the student's channels, classes, rate and output
    delay; each sees the student's training window in its own normalization.
    """

    def __init__(self, paths: list[str], tm: TrainedModel, device: torch.device) -> None:
        self.models, self.shift, self.scale = [], [], []
        s_mean = torch.as_tensor(tm.normalizer.mean, dtype=torch.float32)
        s_std = torch.as_tensor(tm.normalizer.std, dtype=torch.float32)
        for path in paths:
            try:
                t = load_checkpoint(path)
            except GaitedgeError as exc:
                raise ConfigError(f"train.teachers: {exc}") from None
            for what, mine, theirs in (("channels", list(tm.channels), list(t.channels)),
                                       ("classes", list(tm.classes), list(t.classes)),
                                       ("rate (Hz)", tm.rate_hz, t.rate_hz),
                                       ("output delay (samples)", tm.delay, t.delay),
                                       ("frame", tm.frame, t.frame)):
                if mine != theirs:
                    raise ConfigError(f"train.teachers: {path}: {what} {theirs} differ from the model's {mine}")
            t.model.eval().to(device)
            for q in t.model.parameters():
                q.requires_grad_(False)
            t_mean = torch.as_tensor(t.normalizer.mean, dtype=torch.float32)
            t_std = torch.as_tensor(t.normalizer.std, dtype=torch.float32)
            # student-normalized x -> teacher-normalized: (x s_std + s_mean - t_mean) / t_std
            self.models.append(t.model)
            self.scale.append((s_std / t_std).to(device))
            self.shift.append(((s_mean - t_mean) / t_std).to(device))

    @torch.no_grad()
    def probs(self, xb: torch.Tensor) -> torch.Tensor:
        """Mean teacher class probabilities ``[B, T, K]`` for a student-normalized batch."""
        out = None
        for model, scale, shift in zip(self.models, self.scale, self.shift):
            logits, _ = model(xb * scale + shift)
            p = torch.softmax(logits, dim=-1)
            out = p if out is None else out + p
        return out / len(self.models)


def distill_loss(ce_sum: torch.Tensor, logits: torch.Tensor, target: torch.Tensor, labels: torch.Tensor,
                 weight: float) -> torch.Tensor:
    """Blend a summed cross-entropy with KL(teachers || model) summed over the labelled steps.

    ``target``: teacher probabilities ``[B, T, K]``; ``labels``: ``[B, T]`` (UNLABELED
    steps carry no loss); ``weight`` in [0, 1] is the share of the distillation term.
    """
    kl = (target * (torch.log(target.clamp_min(1e-8)) - torch.log_softmax(logits, dim=-1))).sum(-1)
    return (1.0 - weight) * ce_sum + weight * (kl * (labels != UNLABELED)).sum()
