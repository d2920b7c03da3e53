"""Where a training run stands after an epoch, and the resume file that keeps it (``train_state.pt``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from gaitedge.config import Config
from gaitedge.errors import ConfigError
from gaitedge.rundir import MODEL_FILE, STATE_FILE, atomic_path

STATE_FORMAT = "gaitedge-train-state"
STATE_VERSION = 1


@dataclass
class TrainState:
    """The loop's own state: epochs done, history, best epoch, early-stopping counter, timing.

    ``best_state`` holds the weights of the best epoch (CPU tensors) and ``best_val``
    its validation metrics; ``elapsed_s`` is wall time in s over all sessions of
    the run, ``train_step_s`` the part spent in optimizer steps.
    """

    epoch: int = 0
    done: bool = False
    history: list[dict] = field(default_factory=list)
    best_score: float = -1.0
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    best_val: dict | None = None
    stale: int = 0
    elapsed_s: float = 0.0
    train_step_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (the keys of the resume file)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainState":
        """Back from :meth:`to_dict` (the elapsed-time keys of the file are ``elapsed_s``/``train_step_s``)."""
        return cls(**{f.name: d[f.name] for f in fields(cls)})


def to_cpu(obj: Any) -> Any:
    """Tensors inside nested dicts / lists moved to the CPU (for portable state files)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def save_train_state(run_dir: Path, cfg: Config, state: TrainState, parts: dict[str, Any]) -> None:
    """Write ``train_state.pt`` atomically: the config, ``state`` and the components in ``parts``.

    ``parts`` holds what the loop does not own: ``model``, ``optimizer``,
    ``scheduler`` (state dicts), ``sampler_rng`` (numpy bit-generator state),
    ``ema`` (or None) and ``world_size``.
    """
    payload = {"format": STATE_FORMAT, "format_version": STATE_VERSION, "config": cfg.to_dict(),
               **state.to_dict(), **to_cpu(parts)}
    with atomic_path(run_dir / STATE_FILE) as tmp:
        torch.save(payload, tmp)


def load_train_state(run_dir: str | Path, cfg: Config | None = None) -> tuple[TrainState, dict[str, Any]]:
    """Read a run's ``train_state.pt``: (loop state, components); check it fits ``cfg`` and is unfinished."""
    run_dir = Path(run_dir)
    path = run_dir / STATE_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {STATE_FILE} to resume from (is it a run directory?)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ConfigError(f"{path}: unreadable training state ({type(exc).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        raise ConfigError(f"{path}: not a gaitedge training state")
    try:
        state = TrainState.from_dict(saved)
    except KeyError as exc:
        raise ConfigError(f"{path}: training state without {exc}") from None
    if cfg is not None and saved["config"] != cfg.to_dict():
        raise ConfigError(f"{run_dir}: the config differs from the one the run was started with; "
                          "resume with the run's own config.toml")
    if state.done and (run_dir / MODEL_FILE).is_file():
        raise ConfigError(f"{run_dir}: training already finished ({MODEL_FILE} written); nothing to resume")
    parts = {k: saved.get(k) for k in ("model", "optimizer", "scheduler", "sampler_rng", "ema", "world_size")}
    return state, parts
