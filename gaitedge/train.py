"""Training: data -> subject split -> normalization -> windows -> model -> best checkpoint.

Library entry point: :func:`train`.  The CLI's ``gaitedge train`` is a thin
wrapper around it.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gaitedge import distributed as gd
from gaitedge.checkpoint import TrainedModel, load_checkpoint
from gaitedge.config import Config, dump_toml
from gaitedge.data.preprocess import Normalizer, design_lowpass, has_labels, prepare
from gaitedge.data.mounting import mount_all
from gaitedge.data.recording import UNLABELED, Recording
from gaitedge.data.skips import Skipped, skipped_of
from gaitedge.data.spec import load_spec
from gaitedge.data.splits import split_subjects
from gaitedge.errors import ConfigError, DataError, GaitedgeError
from gaitedge.events import debounce_labels, labels_to_events
from gaitedge.evaluate import evaluate_model, predict_arrays
from gaitedge.metrics import MetricAccumulator
from gaitedge.models import build_model
from gaitedge.models.base import model_accepts


@dataclass
class PreparedData:
    """Filtered (not normalized) train / validation recordings and their input layout."""

    train: list[Recording]
    val: list[Recording]
    channels: list[str]
    units: list[str]
    classes: tuple[str, ...]
    #: coordinate frame of the IMU channels (``gaitedge.data.mounting``)
    frame: str = "sensor"
    #: trials the loader left out (``gaitedge.data.skips``)
    skipped: list[Skipped] = field(default_factory=list)


def _check_config(cfg: Config) -> None:
    t = cfg.train
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
        (cfg.data.rate_hz > 0, "data.rate_hz must be > 0 Hz"),
        (0 < cfg.data.val_fraction < 1, "data.val_fraction must be in (0, 1)"),
        (cfg.events.min_phase_ms >= 0, "events.min_phase_ms must be >= 0"),
        (0 <= cfg.events.delay_ms < 1000 * cfg.train.window_s / 2, "events.delay_ms must be in [0, window_s / 2)"),
        (cfg.events.tolerance_ms > 0, "events.tolerance_ms must be > 0"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)


def prepare_data(cfg: Config, recs: list[Recording] | None = None, strict: bool = False) -> PreparedData:
    """Load (unless given), select channels, resample, filter and split by subject.

    ``strict`` makes a trial of ``data.train`` that cannot be used an error
    instead of a skip (see :func:`gaitedge.data.load_spec`).
    """
    if recs is None:
        recs = load_spec(cfg.data.train, other_foot=cfg.data.other_foot, lower_back=cfg.data.lower_back,
                         strict=strict)
    skipped = skipped_of(recs)
    recs = [r for r in recs if has_labels(r)]
    if not recs:
        raise DataError(f"{cfg.data.train}: no labelled recordings to train on")
    channels = list(cfg.data.channels) or list(recs[0].channels)
    sos = design_lowpass(cfg.data.lowpass_hz or None, cfg.data.rate_hz, cfg.data.filter_order)
    min_samples = int(math.ceil(cfg.train.burn_in_s * cfg.data.rate_hz)) + 2
    recs = mount_all(recs, cfg.data.mounting, "data.mounting")
    frames = sorted({r.frame for r in recs})
    if len(frames) > 1:
        raise DataError(f"{cfg.data.train}: recordings in different frames ({', '.join(frames)}); "
                        "declare data.mounting for those in the sensor frame")
    prepped = [prepare(r, channels, cfg.data.rate_hz, sos, min_samples=min_samples) for r in recs]
    classes = prepped[0].classes
    for r in prepped:
        if tuple(r.classes) != tuple(classes):
            raise DataError(f"{r.source}: classes {r.classes} differ from {classes}")
    train, val = split_subjects(
        prepped,
        val_fraction=cfg.data.val_fraction,
        seed=cfg.train.seed,
        val_subjects=list(cfg.data.val_subjects) or None,
    )
    return PreparedData(train, val, channels, list(prepped[0].units), tuple(classes), frames[0], skipped)


def _loss_labels(labels: np.ndarray, boundary: int, delay: int) -> np.ndarray:
    """Training targets aligned to model steps: step t learns the label of sample t - delay."""
    y = labels.copy()
    if boundary > 0:
        change = np.flatnonzero(np.diff(labels) != 0) + 1
        for c in change:
            y[max(c - boundary, 0) : c + boundary] = UNLABELED
    if delay > 0:
        y = np.concatenate([np.full(delay, UNLABELED, np.int64), y[:-delay]])
    return y


def imu_triads(channels: list[str]) -> list[list[int]]:
    """Channel-index groups ``[x, y, z]`` per sensor and quantity, grouped per IMU.

    Returns one list per IMU (prefix before ``acc``/``gyr``) holding the indices
    of its acc x/y/z then gyr x/y/z triads (those present).
    """
    groups: dict[str, list[int]] = {}
    for qty in ("acc", "gyr"):
        for i, name in enumerate(channels):
            if name.endswith(f"{qty}_x"):
                prefix = name[: -len(f"{qty}_x")]
                tri = [channels.index(f"{prefix}{qty}_{a}") if f"{prefix}{qty}_{a}" in channels else -1 for a in "xyz"]
                if -1 not in tri:
                    groups.setdefault(prefix, []).extend(tri)
    return list(groups.values())


def mirror_signs(channels: list[str]) -> np.ndarray:
    """Per-channel signs of a mirror in the sagittal (x-z) plane of the canonical frame.

    Accelerations are polar vectors (``acc_y`` flips), angular rates axial ones
    (``gyr_x`` and ``gyr_z`` flip); other channels keep their sign.
    """
    flips = ("acc_y", "gyr_x", "gyr_z")
    return np.array([-1.0 if any(c.endswith(f) for f in flips) else 1.0 for c in channels], np.float32)


def _random_rotations(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    """``n`` rotation matrices about random axes by angles uniform in ±max_deg."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    ang = np.deg2rad(rng.uniform(-max_deg, max_deg, size=n))
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    s, c = np.sin(ang)[:, None, None], np.cos(ang)[:, None, None]
    return np.eye(3)[None] + s * k + (1 - c) * (k @ k)


#: number of random speed knots per window for time warping.
WARP_KNOTS = 4


def warp_offsets(knots: np.ndarray, window: int, max_stretch: float) -> np.ndarray:
    """Source-sample offsets ``[B, window]`` (float, first 0) of smoothly time-warped windows.

    The local playback speed of window ``b`` moves linearly between ``knots[b]``
    (values in [-1, 1], spread evenly over the window): at each output sample
    the window advances ``1 + max_stretch * knot`` source samples, so the time
    axis is locally stretched or compressed by at most ``max_stretch``
    (fraction, e.g. 0.1 = ±10 %), which mimics cadence changes within a window.
    """
    k = knots.shape[1]
    basis = np.stack([np.interp(np.arange(window), np.linspace(0, window - 1, k), np.eye(k)[i]) for i in range(k)])
    speed = 1.0 + max_stretch * (knots @ basis)
    return np.concatenate([np.zeros((len(knots), 1)), np.cumsum(speed[:, :-1], axis=1)], axis=1)


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


@dataclass
class BatchPlan:
    """One training batch as per-window draws, before any window is cut.

    ``rec`` / ``start``: recording index and first source sample of each window;
    ``warp``: source offsets ``[B, window]`` when time-warped, else None;
    ``rot``: one ``[B, 3, 3]`` rotation per IMU (sensor frame, acc and gyro
    together); ``gain``: ``[B, C]`` relative gain deviations or None;
    ``noise_seed``: per-window seed of the Gaussian noise (std ``noise`` in
    normalized units) or None.
    """

    rec: np.ndarray
    start: np.ndarray
    warp: np.ndarray | None
    rot: list[np.ndarray]
    gain: np.ndarray | None
    noise_seed: np.ndarray | None
    noise: float
    #: ``[B]`` bool, windows mirrored left/right (None: mirroring off)
    mirror: np.ndarray | None = None


class WindowSampler:
    """Random fixed-length training windows, recordings drawn in proportion to length.

    Holds un-normalized signals; augmentation (time warp, sensor-frame rotation,
    per-channel gain, noise) is applied per window around normalization.
    :meth:`plan` + :meth:`materialize` is what training uses (a batch can be cut
    in parts by different processes); :meth:`batch` is the older one-call form.
    """

    def __init__(
        self,
        xs: list[np.ndarray],
        ys: list[np.ndarray],
        window: int,
        burn_in: int,
        seed: int,
        normalizer: Normalizer,
        triads: list[list[int]] | None = None,
        mirror_sign: np.ndarray | None = None,
    ) -> None:
        self.xs, self.ys = xs, ys
        self.window, self.burn_in = window, burn_in
        self.norm = normalizer
        self.triads = triads or []
        #: per-channel sign of a left/right mirror (``mirror_signs``); None = no IMU channels
        self.mirror_sign = mirror_sign
        lens = np.array([len(x) for x in xs], dtype=np.float64)
        self.lens = lens.astype(np.int64)
        self.p = lens / lens.sum()
        self.rng = np.random.default_rng(seed)

    def batch(
        self, size: int, gain: float, noise: float, rotation_deg: float = 0.0, time_warp: float = 0.0,
        mirror: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw and cut one whole batch: :meth:`plan` then :meth:`materialize` of every window."""
        plan = self.plan(size, gain, noise, rotation_deg, time_warp, mirror)
        return self.materialize(plan, np.arange(size))

    def plan(
        self, size: int, gain: float, noise: float, rotation_deg: float = 0.0, time_warp: float = 0.0,
        mirror: bool = False,
    ) -> BatchPlan:
        """Draw one batch of ``size`` windows without cutting them (see :class:`BatchPlan`).

        Only small per-window parameters are drawn here, from this sampler's own
        random stream, in an order that does not depend on who later cuts which
        window.  Samplers built with the same seed and recording lengths draw the
        same plans, so processes holding different shards of the recordings agree
        on the global batch (see :mod:`gaitedge.distributed`).
        """
        rng = self.rng
        rec = rng.choice(len(self.xs), size=size, p=self.p)
        warp = None
        if time_warp > 0:
            knots = rng.uniform(-1.0, 1.0, size=(size, WARP_KNOTS))
            warp = warp_offsets(knots, self.window, time_warp)
        start = np.zeros(size, np.int64)
        for b in range(size):
            need = self.window if warp is None else int(np.ceil(warp[b, -1])) + 1
            start[b] = int(rng.integers(0, max(int(self.lens[rec[b]]) - need, 0) + 1))
        rot = [_random_rotations(rng, size, rotation_deg).astype(np.float32) for _ in self.triads] if rotation_deg > 0 else []
        g = rng.uniform(-gain, gain, size=(size, self.xs[0].shape[1])).astype(np.float32) if gain > 0 else None
        seeds = rng.integers(0, 2**63, size=size, dtype=np.int64) if noise > 0 else None
        flip = rng.random(size) < 0.5 if mirror and self.mirror_sign is not None else None
        return BatchPlan(rec, start, warp, rot, g, seeds, float(noise), flip)

    def materialize(self, plan: BatchPlan, idx: np.ndarray | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut and augment the windows ``idx`` of ``plan``: (x ``[k, window, C]``, labels ``[k, window]``).

        Order: time warp (linear interpolation of the signals, labels of the
        nearest sample), sensor-frame rotation, normalization, zero padding of
        windows longer than their recording, burn-in, per-channel gain, noise.
        Each window depends only on its own plan entries, so any subset gives
        the same windows as cutting the whole batch.
        """
        idx = np.asarray(idx, dtype=np.int64)
        k, c = len(idx), self.xs[0].shape[1]
        xb = np.zeros((k, self.window, c), np.float32)
        yb = np.full((k, self.window), UNLABELED, np.int64)
        valid = np.zeros((k, self.window), bool)
        for j, b in enumerate(idx):
            x, y = self.xs[plan.rec[b]], self.ys[plan.rec[b]]
            s = int(plan.start[b])
            if plan.warp is None:
                n = min(len(x), self.window)
                xb[j, :n] = x[s : s + n]
                yb[j, :n] = y[s : s + n]
            else:
                pos = s + plan.warp[b]
                n = int(np.searchsorted(pos, len(x) - 1, side="right"))
                p = pos[:n]
                i0 = np.floor(p).astype(np.int64)
                i1 = np.minimum(i0 + 1, len(x) - 1)
                f = (p - i0).astype(np.float32)[:, None]
                xb[j, :n] = x[i0] * (1.0 - f) + x[i1] * f
                yb[j, :n] = y[np.minimum(np.rint(p).astype(np.int64), len(x) - 1)]
            valid[j, :n] = True
        for rot, tris in zip(plan.rot, self.triads):
            r = rot[idx]
            for t in range(0, len(tris), 3):
                tri = tris[t : t + 3]
                xb[:, :, tri] = np.einsum("bij,btj->bti", r, xb[:, :, tri])
        if plan.mirror is not None:
            flip = plan.mirror[idx]
            xb[flip] *= self.mirror_sign[None, :]
        xb = self.norm(xb) * valid[:, :, None]
        yb[:, : self.burn_in] = UNLABELED
        if plan.gain is not None:
            xb *= 1.0 + plan.gain[idx][:, None, :]
        if plan.noise_seed is not None:
            for j, b in enumerate(idx):
                nrng = np.random.default_rng(int(plan.noise_seed[b]))
                xb[j] += nrng.normal(0.0, plan.noise, size=xb[j].shape).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)), torch.from_numpy(yb)


def _val_metrics(tm: TrainedModel, val: list[Recording], loss_fn: nn.Module) -> dict:
    xs = [r.signals for r in val]
    preds = predict_arrays(tm, xs)
    acc = MetricAccumulator(tm.classes, tolerance_ms=tm.tolerance_ms)
    swing = tm.classes.index("swing") if "swing" in tm.classes else -1
    for r, p in zip(val, preds):
        lab = debounce_labels(p, tm.min_run)
        acc.add(r.labels, lab, r.events, labels_to_events(lab, swing) if swing >= 0 else {}, tm.rate_hz)
    m = acc.summary()
    # validation loss on whole recordings
    with torch.no_grad():
        tot, cnt = 0.0, 0
        for r in val:
            logits, _ = tm.model(torch.from_numpy(tm.normalizer(r.signals))[None])
            y = torch.from_numpy(_loss_labels(r.labels, 0, tm.delay))
            mask = y != UNLABELED
            if mask.any():
                tot += float(loss_fn(logits[0][mask], y[mask])) * int(mask.sum())
                cnt += int(mask.sum())
    m["loss"] = tot / max(cnt, 1)
    ev = m["event_f1"] if np.isfinite(m["event_f1"]) else 0.0
    m["score"] = 0.5 * (m["macro_f1"] + ev)
    return m


def default_run_dir(cfg: Config, root: str | Path = "runs") -> Path:
    """``runs/<model>-<YYYYmmdd-HHMMSS>``."""
    return Path(root) / f"{cfg.model.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


#: resumable training state in a run directory, rewritten after every epoch.
STATE_FILE = "train_state.pt"
STATE_FORMAT = "gaitedge-train-state"


def _to_cpu(obj):
    """Tensors inside nested dicts / lists moved to the CPU (for portable state files)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _plain(obj):
    """JSON-able copy (numpy scalars and arrays to Python numbers and lists)."""
    return json.loads(json.dumps(obj, default=_json_default, allow_nan=True))


def _save_train_state(out: Path, state: dict) -> None:
    """Write ``train_state.pt`` atomically (temp file + rename)."""
    tmp = out / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(out / STATE_FILE)


def load_train_state(run_dir: str | Path, cfg: Config | None = None) -> dict:
    """Read a run's ``train_state.pt``; check it was made with ``cfg`` and is unfinished."""
    run_dir = Path(run_dir)
    path = run_dir / STATE_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {STATE_FILE} to resume from (is it a run directory?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ConfigError(f"{path}: unreadable training state ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ConfigError(f"{path}: not a gaitedge training state")
    if cfg is not None and state["config"] != cfg.to_dict():
        raise ConfigError(f"{run_dir}: the config differs from the one the run was started with; "
                          "resume with the run's own config.toml")
    if state["done"] and (run_dir / "model.pt").is_file():
        raise ConfigError(f"{run_dir}: training already finished (model.pt written); nothing to resume")
    return state


def train(
    cfg: Config,
    out_dir: str | Path | None = None,
    recs: list[Recording] | None = None,
    progress: bool = True,
    force: bool = False,
    log=print,
    resume: bool = False,
    device: str | None = None,
    strict: bool = False,
    on_epoch: Callable[[dict], bool | None] | None = None,
) -> tuple[TrainedModel, dict, Path]:
    """Train a model as ``cfg`` says; write the run directory; return (model, metrics, dir).

    The run directory holds ``model.pt`` (best validation epoch), ``config.toml``,
    ``metrics.json`` (validation metrics of the best epoch, per-epoch history,
    test metrics if ``data.test`` is set, training throughput), ``curves.png``,
    ``confusion.png`` and ``train_state.pt`` (model, optimizer, scheduler and
    sampler state, history and early-stopping counters after the last finished
    epoch, written atomically after every epoch).  Nothing is written until the
    data have loaded and the config checks out.

    ``resume=True`` continues the run in ``out_dir`` from its ``train_state.pt``
    (``cfg`` must be the run's own config); on CPU the finished run is
    bit-identical to one that was never interrupted.  ``device`` is ``cpu`` (default), ``cuda``,
    ``cuda:N`` or ``auto``.

    Trials of ``data.train`` / ``data.test`` the loader left out are listed in
    ``metrics["skipped"]`` / ``metrics["test"]["skipped"]`` as ``{"source",
    "reason"}``; ``strict`` makes them errors instead.

    Under ``torchrun`` (environment ``WORLD_SIZE > 1``) every process calls this
    function: they form a process group (gloo on CPU, nccl on CUDA), train a
    DistributedDataParallel model on their shards of the training recordings
    with the same global batch of ``train.batch_size`` windows per step as a
    single process (see :mod:`gaitedge.distributed`), and rank 0 alone
    validates, logs, stops early (the decision is broadcast) and writes the run
    directory.  Every rank returns the same model and metrics.

    ``on_epoch`` (optional) is called after every epoch's validation with that
    epoch's history row plus ``score`` (the validation score that picks the
    best epoch); it does not change training.  Returning True stops training
    after this epoch as early stopping does; an exception it raises ends
    training and propagates (single-process runs; under ``torchrun`` only
    rank 0 calls it).  :mod:`gaitedge.sweep` prunes trials through it.
    """
    _check_config(cfg)
    ctx = gd.setup(device)
    ok = False
    try:
        result = _train(cfg, ctx, out_dir, recs, progress, force, log, resume, strict, on_epoch)
        ok = True
        return result
    finally:
        gd.cleanup(ctx, ok)


def _train(
    cfg: Config,
    ctx: gd.DistContext,
    out_dir: str | Path | None,
    recs: list[Recording] | None,
    progress: bool,
    force: bool,
    log: Callable[..., None],
    resume: bool,
    strict: bool = False,
    on_epoch: Callable[[dict], bool | None] | None = None,
) -> tuple[TrainedModel, dict, Path]:
    """The body of :func:`train` for one process of a (possibly one-process) job."""
    t0 = time.time()
    main = ctx.is_main
    if not main:
        log = lambda *_a, **_k: None  # noqa: E731
        progress = False
    out, state, err = None, None, None
    if main:
        try:
            out = Path(out_dir) if out_dir is not None else default_run_dir(cfg)
            if resume:
                state = load_train_state(out, cfg)
            elif (out / "model.pt").exists() and not force:
                raise ConfigError(f"{out}: already holds a trained model; choose another --out or pass --force")
        except GaitedgeError as exc:
            err = exc
    if ctx.distributed:
        out, state, err = gd.broadcast((out, state, err), ctx)
    if err is not None:
        raise err
    assert out is not None

    data = prepare_data(cfg, recs, strict=strict)
    if not data.train or not data.val:
        raise DataError("the subject split left no training or no validation recordings")
    torch.manual_seed(cfg.train.seed)
    options = dict(cfg.model.options)
    if "rate_hz" not in options and model_accepts(cfg.model.name, "rate_hz"):
        options["rate_hz"] = cfg.data.rate_hz  # continuous-time families integrate with dt = 1 / rate
    model = build_model(
        cfg.model.name,
        input_size=len(data.channels),
        num_classes=len(data.classes),
        hidden=cfg.model.hidden,
        layers=cfg.model.layers,
        dropout=cfg.model.dropout,
        **options,
    )

    test_recs = None
    test_skipped: list[Skipped] = []
    if main:
        try:
            if cfg.data.test:
                test_recs = load_spec(cfg.data.test, other_foot=cfg.data.other_foot, lower_back=cfg.data.lower_back,
                                      strict=strict)
                test_skipped = skipped_of(test_recs)
                test_recs = mount_all(test_recs, cfg.data.mounting, "data.mounting")
                overlap = {r.subject for r in test_recs} & {r.subject for r in data.train + data.val}
                if overlap:
                    raise ConfigError(
                        f"data.test shares subject(s) {sorted(overlap)} with the training data; "
                        "test on held-out subjects"
                    )
            out.mkdir(parents=True, exist_ok=True)
            if not resume:
                tmp = out / "config.toml.tmp"
                tmp.write_text(dump_toml(cfg))
                tmp.replace(out / "config.toml")
        except GaitedgeError as exc:
            err = exc
    if ctx.distributed:
        err = gd.broadcast(err, ctx)
    if err is not None:
        raise err

    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    norm = Normalizer.fit([r.signals for r in data.train])
    rate = cfg.data.rate_hz
    min_run = max(1, int(round(cfg.events.min_phase_ms * rate / 1000.0)))
    on_cpu = ctx.device.type == "cpu"
    tm = TrainedModel(
        model=model if on_cpu else copy.deepcopy(model),
        classes=data.classes,
        channels=data.channels,
        units=data.units,
        rate_hz=rate,
        normalizer=norm,
        lowpass_hz=cfg.data.lowpass_hz,
        filter_order=cfg.data.filter_order,
        min_run=min_run,
        delay=int(round(cfg.events.delay_ms * rate / 1000.0)),
        tolerance_ms=cfg.events.tolerance_ms,
        config=cfg.to_dict(),
        frame=data.frame,
        info={
            "train_subjects": sorted({r.subject for r in data.train}),
            "val_subjects": sorted({r.subject for r in data.val}),
        },
    )
    window = max(2, int(round(cfg.train.window_s * rate)))
    burn_in = int(round(cfg.train.burn_in_s * rate))
    sampler = WindowSampler(
        [r.signals for r in data.train],
        [_loss_labels(r.labels, cfg.train.boundary_ignore, tm.delay) for r in data.train],
        window,
        burn_in,
        cfg.train.seed,
        norm,
        imu_triads(data.channels),
        mirror_signs(data.channels),
    )
    mine = gd.shard_recordings(sampler.lens, ctx.world_size) == ctx.rank
    model.to(ctx.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.train.lr, total_steps=cfg.train.epochs * cfg.train.steps_per_epoch, pct_start=0.15
    )
    loss_sum = nn.CrossEntropyLoss(ignore_index=UNLABELED, reduction="sum")
    val_loss_fn = nn.CrossEntropyLoss(ignore_index=UNLABELED)

    teachers = Teachers(cfg.train.teachers, tm, ctx.device) if cfg.train.teachers and not model.closed_form else None
    if teachers is not None and main:
        log(f"distillation from {len(teachers.models)} teacher(s), weight {cfg.train.distill_weight}")
    if cfg.train.teachers and model.closed_form and main:
        log(f"train.teachers ignored: {cfg.model.name} is fitted in closed form to the labels")
    # exponential moving average of the weights (train.ema_decay): what is validated and saved
    ema = WeightAverage(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 and not model.closed_form else None
    if cfg.train.ema_decay > 0 and model.closed_form and main:
        log(f"train.ema_decay ignored: {cfg.model.name} is fitted in closed form (no optimizer steps to average)")
    history: list[dict] = []
    best_score, best_epoch, best_state, best_val = -1.0, -1, None, None
    stale, start_epoch, done = 0, 0, False
    elapsed0, step_time = 0.0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        history = list(state["history"])
        best_score, best_epoch = state["best_score"], state["best_epoch"]
        best_state, best_val = state["best_state"], state["best_val"]
        stale, start_epoch, done = state["stale"], state["epoch"], state["done"]
        if ema is not None:
            if state.get("ema") is None:
                raise ConfigError(f"{out}: the interrupted run kept no weight average; resume without train.ema_decay")
            ema.load_state_dict(state["ema"])
        elapsed0, step_time = state["elapsed_s"], state["train_step_s"]
        log(f"resuming {out} after epoch {start_epoch} of {cfg.train.epochs}"
            + (f" (saved by {state['world_size']} process(es))" if state.get("world_size", 1) > 1 else ""))
    net: nn.Module = model
    if ctx.distributed:
        net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if ctx.distributed and main:
        log(f"distributed training: {ctx.world_size} processes ({ctx.backend}), global batch "
            f"{cfg.train.batch_size} windows per step, {int(mine.sum())} of {len(mine)} recordings on rank 0")
        if len(mine) < ctx.world_size:
            log(f"warning: {len(mine)} training recordings for {ctx.world_size} processes; "
                "the processes without one only wait for the others")

    grad_norms: list[float] = []  # global gradient norm before clipping, each step of the epoch

    def train_step() -> tuple[float, float]:
        plan = sampler.plan(cfg.train.batch_size, cfg.train.augment_gain, cfg.train.augment_noise,
                            cfg.train.augment_rotation_deg, cfg.train.augment_time_warp,
                            cfg.train.augment_mirror)
        idx = np.flatnonzero(mine[plan.rec])
        if len(idx):
            xb, yb = sampler.materialize(plan, idx)
        else:  # no window of this step lies in this rank's shard: a zero-weight dummy keeps DDP in step
            xb = torch.zeros((1, window, len(data.channels)))
            yb = torch.full((1, window), UNLABELED, dtype=torch.int64)
        xb, yb = xb.to(ctx.device, non_blocking=True), yb.to(ctx.device, non_blocking=True)
        logits, _ = net(xb)
        part = loss_sum(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
        if teachers is not None:
            # KL(teachers || model) summed over the labelled steps, like the cross-entropy
            target = teachers.probs(xb)
            kl = (target * (torch.log(target.clamp_min(1e-8)) - torch.log_softmax(logits, dim=-1))).sum(-1)
            w = cfg.train.distill_weight
            part = (1.0 - w) * part + w * (kl * (yb != UNLABELED)).sum()
        extra = model.auxiliary_loss(xb, logits)
        if extra is not None:
            part = part + extra
        stats = torch.stack([part.detach().double(), (yb != UNLABELED).sum().double()])
        gd.all_reduce_sum(stats, ctx)
        total, count = float(stats[0]), max(float(stats[1]), 1.0)
        loss = part * (ctx.world_size / count)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            gnorm = nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        else:
            gnorm = nn.utils.get_total_norm([q.grad for q in model.parameters() if q.grad is not None])
        grad_norms.append(float(gnorm))
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model)
        return total, count

    interrupted = False
    deadline = t0 - elapsed0 + cfg.train.max_minutes * 60 if cfg.train.max_minutes > 0 else math.inf
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.train.epochs, initial=start_epoch, desc=f"train {cfg.model.name}", unit="epoch",
                   dynamic_ncols=True)
    try:
        for epoch in range(start_epoch + 1, cfg.train.epochs + 1):
            if done:
                break
            torch.manual_seed(gd.epoch_seed(cfg.train.seed, epoch, ctx.rank))
            net.train()
            tr_loss = 0.0
            grad_norms.clear()
            ts = time.time()
            if model.closed_form:
                fit_report = model.fit_closed_form(
                    [norm(r.signals).astype(np.float32) for r in data.train],
                    [_loss_labels(r.labels, cfg.train.boundary_ignore, tm.delay) for r in data.train],
                    [str(r.subject) for r in data.train], log)
                tm.info["fit"] = _plain(fit_report)
                tr_loss = float(fit_report.get("train_loss", float("nan"))) * cfg.train.steps_per_epoch
            else:
                for _ in range(cfg.train.steps_per_epoch):
                    total, count = train_step()
                    tr_loss += total / count
            step_time += time.time() - ts
            stop = False
            if main:
                model.eval()
                live = None
                if ema is not None:
                    if on_cpu:  # tm.model is the trained module: set the live weights aside
                        live = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    tm.model.load_state_dict(_to_cpu(ema.state))
                elif not on_cpu:
                    tm.model.load_state_dict(_to_cpu(model.state_dict()))
                val = _val_metrics(tm, data.val, val_loss_fn)
                row = {
                    "epoch": epoch,
                    "train_loss": tr_loss / cfg.train.steps_per_epoch,
                    "val_loss": val["loss"],
                    "val_accuracy": val["accuracy"],
                    "val_macro_f1": val["macro_f1"],
                    "val_event_f1": val["event_f1"],
                    "val_median_abs_error_ms": val["event_median_abs_error_ms"],
                    "elapsed_s": elapsed0 + time.time() - t0,
                }
                if grad_norms:  # pre-clip gradient norm: vanishing / exploding gradients show here
                    row["grad_norm"] = float(np.mean(grad_norms))
                    row["grad_norm_max"] = float(np.max(grad_norms))
                history.append(row)
                improved = val["score"] > best_score
                if improved:
                    best_score, best_epoch, best_val = val["score"], epoch, _plain(val)
                    best_state = {k: v.detach().cpu().clone() for k, v in tm.model.state_dict().items()}
                    stale = 0
                else:
                    stale += 1
                if live is not None:
                    model.load_state_dict(live)
                msg = (
                    f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f}  "
                    f"macro-F1 {row['val_macro_f1']:.4f}  event F1 {row['val_event_f1']:.4f}"
                    + ("  *" if improved else "")
                )
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(f1=f"{row['val_macro_f1']:.3f}", ev=f"{row['val_event_f1']:.3f}")
                    bar.write(msg)
                else:
                    log(msg)
                if model.closed_form:
                    stop = True  # fitted in closed form: one pass is the whole training
                elif stale >= cfg.train.patience:
                    log(f"early stop: no validation improvement for {stale} epochs")
                    stop = True
                elif time.time() > deadline:
                    log(f"stopping: time budget of {cfg.train.max_minutes} min reached")
                    stop = True
                if on_epoch is not None and on_epoch({**row, "score": val["score"]}) and not stop:
                    log("stopping: the on_epoch hook asked to stop")
                    stop = True
                _save_train_state(out, {
                    "format": STATE_FORMAT,
                    "format_version": 1,
                    "config": cfg.to_dict(),
                    "epoch": epoch,
                    "done": stop or epoch == cfg.train.epochs,
                    "model": _to_cpu(model.state_dict()),
                    "optimizer": _to_cpu(opt.state_dict()),
                    "scheduler": sched.state_dict(),
                    "sampler_rng": sampler.rng.bit_generator.state,
                    "history": history,
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "best_val": best_val,
                    "ema": None if ema is None else {"n": ema.n, "state": _to_cpu(ema.state)},
                    "stale": stale,
                    "elapsed_s": elapsed0 + time.time() - t0,
                    "train_step_s": step_time,
                    "world_size": ctx.world_size,
                })
            if gd.broadcast(stop, ctx):
                break
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: keeping the best epoch so far")
        if not main:
            raise
    finally:
        if bar is not None:
            bar.close()

    metrics: dict | None = None
    if main:
        if best_state is None:
            raise DataError("training was interrupted before the first epoch finished; nothing saved")
        tm.model.load_state_dict(best_state)
        tm.model.eval()
        train_time = elapsed0 + time.time() - t0
        n_params = tm.model.n_params()
        tm.info.update({"best_epoch": best_epoch, "train_time_s": train_time, "n_params": n_params})
        windows = len(history) * cfg.train.steps_per_epoch * cfg.train.batch_size
        metrics = {
            "model": cfg.model.name,
            "n_params": n_params,
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "train_time_s": train_time,
            "interrupted": interrupted,
            "resumed_after_epoch": start_epoch if state is not None else None,
            "world_size": ctx.world_size,
            "device": str(ctx.device),
            "batch_size": cfg.train.batch_size,
            "train_step_time_s": step_time,
            "train_windows_per_s": windows / step_time if step_time > 0 else float("nan"),
            "train_samples_per_s": windows * window / step_time if step_time > 0 else float("nan"),
            "train_subjects": tm.info["train_subjects"],
            "val_subjects": tm.info["val_subjects"],
            "val": best_val,
            "history": history,
            "skipped": [x.to_dict() for x in data.skipped],
        }
        if test_recs is not None:
            metrics["test"] = evaluate_model(tm, test_recs)
            metrics["test"]["skipped"] = [x.to_dict() for x in test_skipped]
        tm.info["weights_sha256"] = tm.weights_hash()
        tm.save(out / "model.pt")
        (out / "config.toml").write_text(dump_toml(cfg))
        _write_json(out / "metrics.json", metrics)
        from gaitedge.plots import plot_confusion, plot_curves

        plot_curves(history, out / "curves.png", best_epoch=best_epoch)
        final = metrics.get("test") or best_val
        plot_confusion(np.asarray(final["confusion"]), tm.classes, out / "confusion.png",
                       title="test" if "test" in metrics else "validation")
    if ctx.distributed and not interrupted:
        metrics, best_state, info = gd.broadcast((metrics, best_state, tm.info), ctx)
        if not main:
            tm.model.load_state_dict(best_state)
            tm.model.eval()
            tm.info = info
    return tm, metrics, out


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default, allow_nan=True))
    tmp.replace(path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))
