"""Exponential moving average of the weights (``train.ema_decay``): what is validated and saved."""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """Exponential moving average of a module's state (parameters and buffers).

    After update ``n`` (from 1) the decay is ``min(decay, (1 + n) / (10 + n))``, so
    the first steps are not dominated by the initial weights.  Integer buffers
    are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.n = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.n += 1
        d = min(self.decay, (1.0 + self.n) / (10.0 + self.n))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.state[k].copy_(v)

    def state_dict(self) -> dict:
        return {"n": self.n, "state": self.state}

    def load_state_dict(self, saved: dict) -> None:
        self.n = int(saved["n"])
        for k, v in saved["state"].items():
            self.state[k].copy_(v)
