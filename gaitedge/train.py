"""Training: data -> subject split -> normalization -> windows -> model -> best checkpoint.

Library entry point: :func:`train`.  The CLI's ``gaitedge train`` is a thin
wrapper around it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gaitedge.checkpoint import TrainedModel
from gaitedge.config import Config, dump_toml
from gaitedge.data.preprocess import Normalizer, design_lowpass, has_labels, prepare
from gaitedge.data.recording import UNLABELED, Recording
from gaitedge.data.spec import load_spec
from gaitedge.data.splits import split_subjects
from gaitedge.errors import ConfigError, DataError
from gaitedge.events import debounce_labels, labels_to_events
from gaitedge.evaluate import evaluate_model, predict_arrays
from gaitedge.metrics import MetricAccumulator
from gaitedge.models import build_model


@dataclass
class PreparedData:
    """Filtered (not normalized) train / validation recordings and their input layout."""

    train: list[Recording]
    val: list[Recording]
    channels: list[str]
    units: list[str]
    classes: tuple[str, ...]


def _check_config(cfg: Config) -> None:
    t = cfg.train
    checks = [
        (t.epochs >= 1, "train.epochs must be >= 1"),
        (t.steps_per_epoch >= 1, "train.steps_per_epoch must be >= 1"),
        (t.batch_size >= 1, "train.batch_size must be >= 1"),
        (t.window_s > 0, "train.window_s must be > 0 s"),
        (0 <= t.burn_in_s < t.window_s, "train.burn_in_s must be in [0, window_s)"),
        (t.lr > 0, "train.lr must be > 0"),
        (cfg.data.rate_hz > 0, "data.rate_hz must be > 0 Hz"),
        (0 < cfg.data.val_fraction < 1, "data.val_fraction must be in (0, 1)"),
        (cfg.events.min_phase_ms >= 0, "events.min_phase_ms must be >= 0"),
        (0 <= cfg.events.delay_ms < 1000 * cfg.train.window_s / 2, "events.delay_ms must be in [0, window_s / 2)"),
        (cfg.events.tolerance_ms > 0, "events.tolerance_ms must be > 0"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)


def prepare_data(cfg: Config, recs: list[Recording] | None = None) -> PreparedData:
    """Load (unless given), select channels, resample, filter and split by subject."""
    if recs is None:
        recs = load_spec(cfg.data.train, other_foot=cfg.data.other_foot, lower_back=cfg.data.lower_back)
    recs = [r for r in recs if has_labels(r)]
    if not recs:
        raise DataError(f"{cfg.data.train}: no labelled recordings to train on")
    channels = list(cfg.data.channels) or list(recs[0].channels)
    sos = design_lowpass(cfg.data.lowpass_hz or None, cfg.data.rate_hz, cfg.data.filter_order)
    min_samples = int(math.ceil(cfg.train.burn_in_s * cfg.data.rate_hz)) + 2
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
    return PreparedData(train, val, channels, list(prepped[0].units), tuple(classes))


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


class WindowSampler:
    """Random fixed-length training windows, recordings drawn in proportion to length.

    Holds un-normalized signals; augmentation (sensor-frame rotation, per-channel
    gain, noise) is applied per window, then normalization.
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
    ) -> None:
        self.xs, self.ys = xs, ys
        self.window, self.burn_in = window, burn_in
        self.norm = normalizer
        self.triads = triads or []
        lens = np.array([len(x) for x in xs], dtype=np.float64)
        self.p = lens / lens.sum()
        self.rng = np.random.default_rng(seed)

    def batch(
        self, size: int, gain: float, noise: float, rotation_deg: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.xs[0].shape[1]
        xb = np.zeros((size, self.window, c), np.float32)
        yb = np.full((size, self.window), UNLABELED, np.int64)
        valid = np.zeros((size, self.window), bool)
        for b, i in enumerate(self.rng.choice(len(self.xs), size=size, p=self.p)):
            x, y = self.xs[i], self.ys[i]
            n = min(len(x), self.window)
            s = int(self.rng.integers(0, len(x) - n + 1))
            xb[b, :n] = x[s : s + n]
            yb[b, :n] = y[s : s + n]
            valid[b, :n] = True
        if rotation_deg > 0:
            for idx in self.triads:
                rot = _random_rotations(self.rng, size, rotation_deg).astype(np.float32)
                for k in range(0, len(idx), 3):
                    tri = idx[k : k + 3]
                    xb[:, :, tri] = np.einsum("bij,btj->bti", rot, xb[:, :, tri])
        xb = self.norm(xb) * valid[:, :, None]
        yb[:, : self.burn_in] = UNLABELED
        if gain > 0:
            xb *= 1.0 + self.rng.uniform(-gain, gain, size=(size, 1, c)).astype(np.float32)
        if noise > 0:
            xb += self.rng.normal(0.0, noise, size=xb.shape).astype(np.float32)
        return torch.from_numpy(xb), torch.from_numpy(yb)


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


def train(
    cfg: Config,
    out_dir: str | Path | None = None,
    recs: list[Recording] | None = None,
    progress: bool = True,
    force: bool = False,
    log=print,
) -> tuple[TrainedModel, dict, Path]:
    """Train a model as ``cfg`` says; write the run directory; return (model, metrics, dir).

    The run directory holds ``model.pt`` (best validation epoch), ``config.toml``,
    ``metrics.json`` (validation metrics of the best epoch, per-epoch history,
    test metrics if ``data.test`` is set), ``curves.png`` and ``confusion.png``.
    Nothing is written until the data have loaded and the config checks out.
    """
    _check_config(cfg)
    t0 = time.time()
    data = prepare_data(cfg, recs)
    if not data.train or not data.val:
        raise DataError("the subject split left no training or no validation recordings")
    torch.manual_seed(cfg.train.seed)
    model = build_model(
        cfg.model.name,
        input_size=len(data.channels),
        num_classes=len(data.classes),
        hidden=cfg.model.hidden,
        layers=cfg.model.layers,
        dropout=cfg.model.dropout,
        **cfg.model.options,
    )
    test_recs = None
    if cfg.data.test:
        test_recs = load_spec(cfg.data.test, other_foot=cfg.data.other_foot, lower_back=cfg.data.lower_back)
        overlap = {r.subject for r in test_recs} & {r.subject for r in data.train + data.val}
        if overlap:
            raise ConfigError(
                f"data.test shares subject(s) {sorted(overlap)} with the training data; test on held-out subjects"
            )

    out = Path(out_dir) if out_dir is not None else default_run_dir(cfg)
    if (out / "model.pt").exists() and not force:
        raise ConfigError(f"{out}: already holds a trained model; choose another --out or pass --force")
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    norm = Normalizer.fit([r.signals for r in data.train])
    rate = cfg.data.rate_hz
    min_run = max(1, int(round(cfg.events.min_phase_ms * rate / 1000.0)))
    tm = TrainedModel(
        model=model,
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
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.train.lr, total_steps=cfg.train.epochs * cfg.train.steps_per_epoch, pct_start=0.15
    )
    loss_fn = nn.CrossEntropyLoss(ignore_index=UNLABELED)

    history: list[dict] = []
    best_score, best_epoch, best_state, best_val = -1.0, -1, None, None
    stale = 0
    interrupted = False
    deadline = t0 + cfg.train.max_minutes * 60 if cfg.train.max_minutes > 0 else math.inf
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.train.epochs, desc=f"train {cfg.model.name}", unit="epoch", dynamic_ncols=True)
    try:
        for epoch in range(1, cfg.train.epochs + 1):
            model.train()
            tr_loss = 0.0
            for _ in range(cfg.train.steps_per_epoch):
                xb, yb = sampler.batch(
                    cfg.train.batch_size, cfg.train.augment_gain, cfg.train.augment_noise, cfg.train.augment_rotation_deg
                )
                logits, _ = model(xb)
                loss = loss_fn(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.train.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                opt.step()
                sched.step()
                tr_loss += float(loss.detach())
            model.eval()
            val = _val_metrics(tm, data.val, loss_fn)
            row = {
                "epoch": epoch,
                "train_loss": tr_loss / cfg.train.steps_per_epoch,
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
                "val_macro_f1": val["macro_f1"],
                "val_event_f1": val["event_f1"],
                "val_median_abs_error_ms": val["event_median_abs_error_ms"],
                "elapsed_s": time.time() - t0,
            }
            history.append(row)
            improved = val["score"] > best_score
            if improved:
                best_score, best_epoch, best_val = val["score"], epoch, val
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                stale = 0
            else:
                stale += 1
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
            if stale >= cfg.train.patience:
                log(f"early stop: no validation improvement for {stale} epochs")
                break
            if time.time() > deadline:
                log(f"stopping: time budget of {cfg.train.max_minutes} min reached")
                break
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: keeping the best epoch so far")
    finally:
        if bar is not None:
            bar.close()
    if best_state is None:
        raise DataError("training was interrupted before the first epoch finished; nothing saved")
    model.load_state_dict(best_state)
    model.eval()
    train_time = time.time() - t0
    tm.info.update({"best_epoch": best_epoch, "train_time_s": train_time, "n_params": model.n_params()})
    metrics = {
        "model": cfg.model.name,
        "n_params": model.n_params(),
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "train_time_s": train_time,
        "interrupted": interrupted,
        "train_subjects": tm.info["train_subjects"],
        "val_subjects": tm.info["val_subjects"],
        "val": best_val,
        "history": history,
    }
    if test_recs is not None:
        metrics["test"] = evaluate_model(tm, test_recs)
    tm.info["weights_sha256"] = tm.weights_hash()
    tm.save(out / "model.pt")
    (out / "config.toml").write_text(dump_toml(cfg))
    _write_json(out / "metrics.json", metrics)
    from gaitedge.plots import plot_confusion, plot_curves

    plot_curves(history, out / "curves.png", best_epoch=best_epoch)
    final = metrics.get("test") or best_val
    plot_confusion(np.asarray(final["confusion"]), tm.classes, out / "confusion.png",
                   title="test" if "test" in metrics else "validation")
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
