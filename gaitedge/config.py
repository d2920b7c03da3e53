"""Experiment configuration as plain data: TOML files <-> dataclasses.

A config has four tables, ``[data]``, ``[model]``, ``[train]`` and ``[events]``;
every key is optional (defaults below).  Unknown tables or keys are errors that
name the file and the key.  ``--set table.key=value`` on the command line
overrides single values (values parsed as TOML, bare words as strings).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from gaitedge.errors import ConfigError


@dataclass
class DataConfig:
    """Which data, which channels, and the preprocessing that travels with the model."""

    #: data spec for training and validation (see ``gaitedge.data.spec``).
    train: str = "synthetic"
    #: optional data spec evaluated once after training (held-out subjects).
    test: str = ""
    #: add the other foot's IMU (``other_*`` channels) to each foot's input.
    other_foot: bool = True
    #: add the lower-back IMU (``back_*`` channels).
    lower_back: bool = False
    #: input channels in model order; empty = all channels of the loaded data.
    channels: list[str] = field(default_factory=list)
    #: model sampling rate in Hz (recordings are resampled to it).
    rate_hz: float = 100.0
    #: causal Butterworth low-pass cutoff in Hz; 0 = no filter.
    lowpass_hz: float = 0.0
    #: low-pass order (1..8).
    filter_order: int = 2
    #: sensor mounting of the training data: "" (the data is already in the
    #: canonical foot frame, as the IPOL loader gives it), an axis map such as
    #: "x=-y,y=x,z=z" (all sensors), "left=...,right=..." per sensor, a mounting
    #: file, or "auto" (estimated per recording); see docs/frames.md.
    mounting: str = ""
    #: explicit validation subjects (ids as strings); empty = random val_fraction.
    val_subjects: list[str] = field(default_factory=list)
    #: fraction of training subjects held out for validation / early stopping.
    val_fraction: float = 0.2


@dataclass
class ModelConfig:
    """Model family and size; extra family-specific options go in ``options``."""

    #: model family (``gaitedge models``).
    name: str = "gru"
    #: hidden units per recurrent layer; unset (None): the family's default.
    hidden: int | None = None
    #: stacked recurrent layers; unset (None): the family's default.
    layers: int | None = None
    #: dropout probability before the head (and between layers); unset (None): the family's default.
    dropout: float | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation, augmentation and stopping."""

    epochs: int = 40
    #: optimizer steps per epoch (each on ``batch_size`` random windows).
    steps_per_epoch: int = 40
    #: windows per optimizer step, in total over all processes when training
    #: under torchrun (the effective batch does not change with the number of
    #: processes; each one computes about batch_size / world_size of them).
    batch_size: int = 32
    #: training window length in s.
    window_s: float = 4.0
    #: samples at the start of each window excluded from the loss, in s.
    burn_in_s: float = 0.3
    #: peak learning rate of the one-cycle schedule (AdamW).
    lr: float = 3e-3
    #: AdamW decoupled weight decay.
    weight_decay: float = 1e-4
    #: stop after this many epochs without validation improvement.
    patience: int = 10
    #: wall-clock budget for training in minutes (0 = none).
    max_minutes: float = 0.0
    #: maximum L2 norm of the gradient (0 = no clipping).
    grad_clip: float = 1.0
    #: seed of weight init, validation split, window sampling and augmentation.
    seed: int = 0
    #: amplitude scaling: random per-channel gain ±fraction applied to each
    #: training window (0.1 = each channel scaled by a factor in [0.9, 1.1]).
    augment_gain: float = 0.1
    #: random rotation of each IMU's frame (acc and gyro together, about a
    #: random axis), max degrees; mimics a sensor mounted slightly differently.
    augment_rotation_deg: float = 0.0
    #: left/right mirroring: each training window is mirrored in the sagittal
    #: plane with probability 1/2 (acc_y, gyr_x and gyr_z negated for every IMU),
    #: so a model serving both feet sees each foot as the other would look.
    augment_mirror: bool = False
    #: Gaussian noise (std, normalized units) added to each training window.
    augment_noise: float = 0.03
    #: smooth random time warp, max fractional local stretch of the time axis
    #: (0.1 = each window plays locally between 0.9x and 1.1x speed, the speed
    #: varying smoothly along the window; signals linearly interpolated, labels
    #: taken from the nearest sample); 0 = off, at most 0.5.
    augment_time_warp: float = 0.0
    #: samples on each side of a label change excluded from the loss.
    boundary_ignore: int = 0
    #: exponential moving average of the weights, decay per optimizer step
    #: (0 = off; 0.99 averages over about the last 100 steps).  Validation,
    #: early stopping and the saved model use the averaged weights.
    ema_decay: float = 0.0
    #: distillation: checkpoints (run dirs or model.pt) of trained models with the
    #: same channels, classes, rate and output delay; the model also learns their
    #: mean class probabilities on every training window.  Under ``gaitedge cv``
    #: ``{fold}`` in a path is replaced by the fold index.
    teachers: list[str] = field(default_factory=list)
    #: weight of the distillation term (KL divergence to the teachers' mean
    #: probabilities); the label cross-entropy gets ``1 - distill_weight``.
    distill_weight: float = 0.5
    #: torch intra-op threads per process (0 = torch default; torchrun sets
    #: OMP_NUM_THREADS=1 for each of its processes unless told otherwise).
    threads: int = 0


@dataclass
class EventConfig:
    """Turning labels into events, and how events are scored."""

    #: output delay (lookahead) in ms: the label of sample t is given at t + delay.
    #: Costs latency, not timing accuracy (events keep their true sample index).
    delay_ms: float = 0.0
    #: debounce: a new label must last this long (ms) to be accepted; 0 = off.
    min_phase_ms: float = 40.0
    #: event matching tolerance in ms.
    tolerance_ms: float = 50.0


@dataclass
class Config:
    """A whole experiment."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    events: EventConfig = field(default_factory=EventConfig)

    def to_dict(self) -> dict:
        """The config as nested plain data (what checkpoints and resume files store)."""
        return asdict(self)

    def check(self) -> None:
        """Raise ConfigError naming the first value out of its range (units as in the field docs)."""
        t = self.train
        checks = [
            (t.epochs >= 1, "train.epochs must be >= 1"),
            (t.steps_per_epoch >= 1, "train.steps_per_epoch must be >= 1"),
            (t.batch_size >= 1, "train.batch_size must be >= 1"),
            (t.window_s > 0, "train.window_s must be > 0 s"),
            (0 <= t.burn_in_s < t.window_s, "train.burn_in_s must be in [0, window_s)"),
            (t.lr > 0, "train.lr must be > 0"),
            (0 <= t.augment_gain < 1, "train.augment_gain must be in [0, 1)"),
            (t.augment_noise >= 0, "train.augment_noise must be >= 0"),
            (0 <= t.augment_rotation_deg <= 180, "train.augment_rotation_deg must be in [0, 180] degrees"),
            (0 <= t.augment_time_warp <= 0.5, "train.augment_time_warp must be in [0, 0.5]"),
            (0 <= t.ema_decay < 1, "train.ema_decay must be in [0, 1)"),
            (0 <= t.distill_weight <= 1, "train.distill_weight must be in [0, 1]"),
            (self.model.hidden is None or self.model.hidden >= 1, "model.hidden must be >= 1"),
            (self.model.layers is None or self.model.layers >= 1, "model.layers must be >= 1"),
            (self.model.dropout is None or 0 <= self.model.dropout < 1, "model.dropout must be in [0, 1)"),
            (self.data.rate_hz > 0, "data.rate_hz must be > 0 Hz"),
            (0 < self.data.val_fraction < 1, "data.val_fraction must be in (0, 1)"),
            (self.events.min_phase_ms >= 0, "events.min_phase_ms must be >= 0"),
            (0 <= self.events.delay_ms < 1000 * self.train.window_s / 2, "events.delay_ms must be in [0, window_s / 2)"),
            (self.events.tolerance_ms > 0, "events.tolerance_ms must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)


#: the tables of a config file and their dataclasses
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "events": EventConfig}


#: the type of the keys whose default is None ("the model family's default")
_UNSET_PROTOTYPES: dict[str, Any] = {"hidden": 0, "layers": 0, "dropout": 0.0}


def _coerce(value: Any, default: Any, where: str, key: str = "") -> Any:
    if default is None:
        if value is None:
            return None
        default = _UNSET_PROTOTYPES.get(key)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [str(v) for v in value]
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    return value


def from_dict(d: dict, source: str = "config") -> Config:
    """Build a Config from nested plain data, rejecting unknown tables and keys."""
    cfg = Config()
    for sec, body in d.items():
        if sec not in SECTIONS:
            raise ConfigError(f"{source}: unknown table [{sec}]; known: {', '.join(SECTIONS)}")
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: [{sec}] must be a table")
        target = getattr(cfg, sec)
        names = {f.name for f in fields(target)}
        for key, value in body.items():
            if key not in names:
                raise ConfigError(f"{source}: unknown key '{key}' in [{sec}]; known: {', '.join(sorted(names))}")
            default = getattr(type(target)(), key)
            setattr(target, key, _coerce(value, default, f"{source}: [{sec}] {key}", key))
    return cfg


def load_config(path: str | Path | None) -> Config:
    """Read a TOML config (``None`` gives the defaults)."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return from_dict(d, str(path))


def apply_override(cfg: Config, assignment: str) -> None:
    """Apply ``table.key=value`` (value parsed as TOML, else taken as a string)."""
    key, eq, raw = assignment.partition("=")
    if not eq or "." not in key:
        raise ConfigError(f"override {assignment!r}: expected table.key=value")
    sec, _, name = key.strip().partition(".")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    merged = {sec: {name: value}}
    if sec not in SECTIONS:
        raise ConfigError(f"override {assignment!r}: unknown table [{sec}]")
    if sec == "model" and name not in {f.name for f in fields(ModelConfig)}:
        getattr(cfg, sec).options[name] = value
        return
    tmp = from_dict(merged, f"override {assignment!r}")
    setattr(getattr(cfg, sec), name, getattr(getattr(tmp, sec), name))


def dump_toml(cfg: Config) -> str:
    """Serialise a Config as TOML text (what ``config.toml`` in a run holds)."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"
        raise TypeError(type(v))

    out = []
    for sec, body in cfg.to_dict().items():
        out.append(f"[{sec}]")
        out.extend(f"{k} = {val(v)}" for k, v in body.items() if v is not None)
        out.append("")
    return "\n".join(out)
