"""The interface every model family implements, and the model registry.

A model maps a sequence of normalized IMU samples ``x`` of shape ``[B, T, C]`` to
per-sample class logits ``[B, T, K]``, causally: the output at ``t`` depends only
on samples ``<= t``.  Every model also steps one sample at a time with an explicit
state, so that ``T`` calls of :meth:`GaitModel.step` reproduce :meth:`forward`;
that is what streaming runtimes (ONNX, C) execute.

State is a tuple of tensors whose first dimension after the layer axis is the
batch; :meth:`GaitModel.init_state` gives the zero state.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from gaitedge.errors import ModelError

State = tuple[torch.Tensor, ...]


class GaitModel(nn.Module):
    """Base class: sequence forward plus step-with-state, and its own hyperparameters."""

    #: registry name, set by :func:`register`.
    family: str = ""
    #: size defaults of this family that differ from its constructor's (see :func:`family_defaults`)
    defaults: dict[str, object] = {}
    #: True for families fitted in closed form instead of by gradient descent (e.g.
    #: reservoir readouts): training calls :meth:`fit_closed_form` once.
    closed_form: bool = False
    #: False for models whose output at ``t`` depends on later samples (whole-window
    #: only): streaming runtimes refuse them.
    causal: bool = True

    def __init__(self, input_size: int, num_classes: int) -> None:
        super().__init__()
        if input_size < 1 or num_classes < 2:
            raise ModelError(f"need input_size >= 1 and num_classes >= 2, got {input_size}, {num_classes}")
        self.input_size = input_size
        self.num_classes = num_classes

    def hparams(self) -> dict:
        """Constructor keyword arguments (plain data) that rebuild this model."""
        raise NotImplementedError

    def init_state(self, batch: int = 1) -> State:
        """Zero state for ``batch`` independent streams."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """``x [B, T, C]`` -> (logits ``[B, T, K]``, final state)."""
        raise NotImplementedError

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One sample ``x_t [B, C]`` -> (logits ``[B, K]``, next state)."""
        logits, state = self.forward(x_t[:, None, :], state)
        return logits[:, 0, :], state

    def auxiliary_loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        """Extra training loss, summed over samples, added to the summed cross-entropy.

        Called in training right after ``forward(x)`` returned ``logits``; a family may
        use internals it kept from that call (e.g. a next-sample prediction).  None:
        no extra term (the default).
        """
        return None

    def fit_closed_form(self, xs: list, ys: list, groups: list[str], log: Callable[..., None]) -> dict:
        """Fit a :attr:`closed_form` family: ``xs`` normalized training inputs ``(T, C)``
        (float32 numpy), ``ys`` per-sample targets ``(T,)`` (class index, -1 = ignore;
        already shifted by the output delay), ``groups`` the subject of each recording
        (for cross-validating hyperparameters by subject).  Returns a report (plain data).
        """
        raise NotImplementedError(f"{self.family} is trained by gradient descent")

    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


_REGISTRY: dict[str, type[GaitModel]] = {}


def register(name: str) -> Callable[[type[GaitModel]], type[GaitModel]]:
    """Class decorator adding a model family to the registry under ``name``."""

    def deco(cls: type[GaitModel]) -> type[GaitModel]:
        cls.family = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> list[str]:
    """Registered model family names."""
    return sorted(_REGISTRY)


#: the size hyperparameters every family takes (``[model]`` keys of the config)
SIZE_KEYS = ("hidden", "layers", "dropout")


def family_defaults(name: str) -> dict[str, object]:
    """Family ``name``'s own ``hidden`` / ``layers`` / ``dropout`` defaults.

    They are its constructor's keyword defaults, overridden by the class's
    ``defaults`` table (for families that share a constructor, e.g. ``deep_esn``
    stacks two reservoirs by default).
    """
    import inspect

    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(available())}")
    cls = _REGISTRY[name]
    params = inspect.signature(cls.__init__).parameters
    out: dict[str, object] = {k: params[k].default for k in SIZE_KEYS
                              if k in params and params[k].default is not inspect.Parameter.empty}
    out.update(cls.defaults)
    return out


def model_accepts(name: str, option: str) -> bool:
    """Whether family ``name``'s constructor takes keyword ``option`` (False for unknown families)."""
    import inspect

    cls = _REGISTRY.get(name)
    return cls is not None and option in inspect.signature(cls.__init__).parameters


def build_model(name: str, input_size: int, num_classes: int, **hparams: object) -> GaitModel:
    """Instantiate family ``name`` (clear error for unknown names or options)."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(available())}")
    cls = _REGISTRY[name]
    try:
        return cls(input_size=input_size, num_classes=num_classes, **hparams)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: bad option ({exc})") from None
