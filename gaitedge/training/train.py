"""Float training: data -> subject split -> normalization -> windows -> model -> run folder.

Library entry point: :func:`train`.  The CLI's ``gaitedge train`` is a thin
wrapper around it.  The epoch loop is :func:`gaitedge.training.loop.fit`;
this module prepares the data, builds the model and its optimizer, defines one
epoch of training and its validation, and writes the run folder.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gaitedge.checkpoint import TrainedModel
from gaitedge.config import Config, dump_toml
from gaitedge.data.augment import imu_triads, mirror_signs
from gaitedge.data.mounting import mount_all
from gaitedge.data.preprocess import Normalizer, design_lowpass, has_labels, prepare
from gaitedge.data.recording import UNLABELED, Recording
from gaitedge.data.skips import Skipped, skipped_of
from gaitedge.data.spec import load_spec
from gaitedge.data.splits import split_subjects
from gaitedge.data.windows import WindowSampler, loss_labels
from gaitedge.errors import ConfigError, DataError, GaitedgeError
from gaitedge.events import debounce_labels, labels_to_events
from gaitedge.metrics import MetricAccumulator
from gaitedge.models import build_model, family_defaults
from gaitedge.models.base import SIZE_KEYS, model_accepts
from gaitedge.rundir import (CONFIG_FILE, CONFUSION_FILE, CURVES_FILE, METRICS_FILE, MODEL_FILE, to_plain,
                             write_json, write_text)
from gaitedge.training import distributed as gd
from gaitedge.training.distill import Teachers, distill_loss
from gaitedge.training.ema import WeightAverage
from gaitedge.training.evaluate import evaluate_model, predict_arrays
from gaitedge.training.loop import EpochScore, FitOptions, StopRules, fit
from gaitedge.training.state import TrainState, load_train_state, save_train_state, to_cpu



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



def validation_metrics(tm: TrainedModel, val: list[Recording], loss_fn: nn.Module) -> dict:
    """Scores of ``tm`` on whole validation recordings: frame and event metrics, ``loss``, ``score``.

    ``score`` (mean of macro-F1 and event F1, an undefined event F1 counting 0)
    is what picks the best epoch.
    """
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
            y = torch.from_numpy(loss_labels(r.labels, 0, tm.delay))
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
    single process (see :mod:`gaitedge.training.distributed`), and rank 0 alone
    validates, logs, stops early (the decision is broadcast) and writes the run
    directory.  Every rank returns the same model and metrics.

    ``on_epoch`` (optional) is called after every epoch's validation with that
    epoch's history row plus ``score`` (the validation score that picks the
    best epoch); it does not change training.  Returning True stops training
    after this epoch as early stopping does; an exception it raises ends
    training and propagates (single-process runs; under ``torchrun`` only
    rank 0 calls it).  :mod:`gaitedge.training.sweep` prunes trials through it.
    """
    cfg = with_family_defaults(cfg)
    cfg.check()
    ctx = gd.setup(device)
    ok = False
    try:
        result = _train(cfg, ctx, out_dir, recs, progress, force, log, resume, strict, on_epoch)
        ok = True
        return result
    finally:
        gd.cleanup(ctx, ok)


def with_family_defaults(cfg: Config) -> Config:
    """A copy of ``cfg`` with the unset ``[model]`` sizes taken from the family's own defaults."""
    defaults = family_defaults(cfg.model.name)
    model = replace(cfg.model, **{k: defaults[k] for k in SIZE_KEYS
                                               if getattr(cfg.model, k) is None and k in defaults})
    return replace(cfg, model=model)


def _on_main(ctx: gd.DistContext, work: Callable[[], Any], share: bool = True) -> Any:
    """Run ``work`` on rank 0 only; its GaitedgeError, and its result when ``share``, reach every rank."""
    result, err = None, None
    if ctx.is_main:
        try:
            result = work()
        except GaitedgeError as exc:
            err = exc
    if ctx.distributed:
        if share:
            result, err = gd.broadcast((result, err), ctx)
        else:
            err = gd.broadcast(err, ctx)
    if err is not None:
        raise err
    return result


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

    def open_run() -> tuple[Path, tuple | None]:
        out = Path(out_dir) if out_dir is not None else default_run_dir(cfg)
        if resume:
            return out, load_train_state(out, cfg)
        if (out / MODEL_FILE).exists() and not force:
            raise ConfigError(f"{out}: already holds a trained model; choose another --out or pass --force")
        return out, None

    out, saved = _on_main(ctx, open_run)
    data = prepare_data(cfg, recs, strict=strict)
    if not data.train or not data.val:
        raise DataError("the subject split left no training or no validation recordings")
    torch.manual_seed(cfg.train.seed)
    model = _build(cfg, data)
    test_recs, test_skipped = _on_main(ctx, lambda: _load_test(cfg, data, out, resume, strict), share=False) or (None, [])
    torch.manual_seed(cfg.train.seed)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    tm = _trained_model(cfg, data, model, ctx)
    trainer = _Trainer(cfg, data, tm, model, ctx, log)
    state = TrainState() if saved is None else trainer.restore(saved, out)
    resumed_after = state.epoch if saved is not None else None
    rules = StopRules(
        patience=cfg.train.patience, one_pass=model.closed_form, on_epoch=on_epoch,
        deadline=t0 - state.elapsed_s + cfg.train.max_minutes * 60 if cfg.train.max_minutes > 0 else math.inf,
        budget=f"time budget of {cfg.train.max_minutes} min")
    opts = FitOptions(log=log, progress=f"train {cfg.model.name}" if progress else None, seed=cfg.train.seed,
                      started=t0, save=lambda s: save_train_state(out, cfg, s, trainer.parts()))
    interrupted = fit(trainer.epoch, trainer.validate, state, cfg.train.epochs, rules, opts, ctx)
    metrics = None
    if main:
        if state.best_state is None:
            raise DataError("training was interrupted before the first epoch finished; nothing saved")
        metrics = _finish(cfg, tm, state, trainer, out, interrupted, resumed_after, test_recs, test_skipped,
                          data.skipped)
    if ctx.distributed and not interrupted:
        metrics, best_state, info = gd.broadcast((metrics, state.best_state, tm.info), ctx)
        if not main:
            tm.model.load_state_dict(best_state)
            tm.model.eval()
            tm.info = info
    return tm, metrics, out


def _build(cfg: Config, data: PreparedData) -> nn.Module:
    """The model ``cfg.model`` describes, sized for the prepared data's channels and classes."""
    options = dict(cfg.model.options)
    if "rate_hz" not in options and model_accepts(cfg.model.name, "rate_hz"):
        options["rate_hz"] = cfg.data.rate_hz  # continuous-time families integrate with dt = 1 / rate
    return build_model(cfg.model.name, input_size=len(data.channels), num_classes=len(data.classes),
                       hidden=cfg.model.hidden, layers=cfg.model.layers, dropout=cfg.model.dropout, **options)


def _load_test(cfg: Config, data: PreparedData, out: Path, resume: bool,
               strict: bool) -> tuple[list[Recording] | None, list[Skipped]]:
    """Load ``data.test`` (held-out subjects only), create the run folder and write its config."""
    test_recs, test_skipped = None, []
    if cfg.data.test:
        test_recs = load_spec(cfg.data.test, other_foot=cfg.data.other_foot, lower_back=cfg.data.lower_back,
                              strict=strict)
        test_skipped = skipped_of(test_recs)
        test_recs = mount_all(test_recs, cfg.data.mounting, "data.mounting")
        overlap = {r.subject for r in test_recs} & {r.subject for r in data.train + data.val}
        if overlap:
            raise ConfigError(f"data.test shares subject(s) {sorted(overlap)} with the training data; "
                              "test on held-out subjects")
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_text(out / CONFIG_FILE, dump_toml(cfg))
    return test_recs, test_skipped


def _trained_model(cfg: Config, data: PreparedData, model: nn.Module, ctx: gd.DistContext) -> TrainedModel:
    """The model with everything inference needs: channels, normalization, filter, events."""
    rate = cfg.data.rate_hz
    return TrainedModel(
        model=model if ctx.device.type == "cpu" else copy.deepcopy(model),
        classes=data.classes,
        channels=data.channels,
        units=data.units,
        rate_hz=rate,
        normalizer=Normalizer.fit([r.signals for r in data.train]),
        lowpass_hz=cfg.data.lowpass_hz,
        filter_order=cfg.data.filter_order,
        min_run=max(1, int(round(cfg.events.min_phase_ms * rate / 1000.0))),
        delay=int(round(cfg.events.delay_ms * rate / 1000.0)),
        tolerance_ms=cfg.events.tolerance_ms,
        config=cfg.to_dict(),
        frame=data.frame,
        info={
            "train_subjects": sorted({r.subject for r in data.train}),
            "val_subjects": sorted({r.subject for r in data.val}),
        },
    )


class _Trainer:
    """One float training run's parts: sampler, optimizer, schedule, EMA, teachers; one epoch; validation.

    ``tm.model`` is the trained module on CPU, a CPU copy of it on other
    devices; under ``torchrun`` each rank cuts only the windows of its shard.
    """

    def __init__(self, cfg: Config, data: PreparedData, tm: TrainedModel, model: nn.Module,
                 ctx: gd.DistContext, log: Callable[..., None]) -> None:
        tc = cfg.train
        self.cfg, self.data, self.tm, self.model, self.ctx, self.log = cfg, data, tm, model, ctx, log
        rate = cfg.data.rate_hz
        self.window = max(2, int(round(tc.window_s * rate)))
        self.sampler = WindowSampler(
            [r.signals for r in data.train],
            [loss_labels(r.labels, tc.boundary_ignore, tm.delay) for r in data.train],
            self.window, int(round(tc.burn_in_s * rate)), tc.seed, tm.normalizer,
            imu_triads(data.channels), mirror_signs(data.channels))
        self.mine = gd.shard_recordings(self.sampler.lens, ctx.world_size) == ctx.rank
        model.to(ctx.device)
        self.opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt, max_lr=tc.lr, total_steps=tc.epochs * tc.steps_per_epoch, pct_start=0.15)
        self.loss_sum = nn.CrossEntropyLoss(ignore_index=UNLABELED, reduction="sum")
        self.val_loss = nn.CrossEntropyLoss(ignore_index=UNLABELED)
        self.teachers = Teachers(tc.teachers, tm, ctx.device) if tc.teachers and not model.closed_form else None
        self.ema = WeightAverage(model, tc.ema_decay) if tc.ema_decay > 0 and not model.closed_form else None
        self._report(log)
        self.net: nn.Module = model
        if ctx.distributed:
            self.net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

    def _report(self, log: Callable[..., None]) -> None:
        """Log the options that apply or are ignored, and the distributed layout (rank 0)."""
        cfg, ctx, name = self.cfg, self.ctx, self.cfg.model.name
        if not ctx.is_main:
            return
        if self.teachers is not None:
            log(f"distillation from {len(self.teachers.models)} teacher(s), weight {cfg.train.distill_weight}")
        if cfg.train.teachers and self.model.closed_form:
            log(f"train.teachers ignored: {name} is fitted in closed form to the labels")
        if cfg.train.ema_decay > 0 and self.model.closed_form:
            log(f"train.ema_decay ignored: {name} is fitted in closed form (no optimizer steps to average)")
        if ctx.distributed:
            log(f"distributed training: {ctx.world_size} processes ({ctx.backend}), global batch "
                f"{cfg.train.batch_size} windows per step, {int(self.mine.sum())} of {len(self.mine)} "
                "recordings on rank 0")
            if len(self.mine) < ctx.world_size:
                log(f"warning: {len(self.mine)} training recordings for {ctx.world_size} processes; "
                    "the processes without one only wait for the others")

    def restore(self, saved: tuple[TrainState, dict], out: Path) -> TrainState:
        """Load the components of an interrupted run; return its loop state."""
        state, parts = saved
        self.model.load_state_dict(parts["model"])
        self.opt.load_state_dict(parts["optimizer"])
        self.sched.load_state_dict(parts["scheduler"])
        self.sampler.rng.bit_generator.state = parts["sampler_rng"]
        if self.ema is not None:
            if parts.get("ema") is None:
                raise ConfigError(f"{out}: the interrupted run kept no weight average; resume without train.ema_decay")
            self.ema.load_state_dict(parts["ema"])
        world = parts.get("world_size") or 1
        self.log(f"resuming {out} after epoch {state.epoch} of {self.cfg.train.epochs}"
                 + (f" (saved by {world} process(es))" if world > 1 else ""))
        return state

    def parts(self) -> dict:
        """What the resume file holds besides the loop state."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "sampler_rng": self.sampler.rng.bit_generator.state,
            "ema": None if self.ema is None else self.ema.state_dict(),
            "world_size": self.ctx.world_size,
        }

    def epoch(self, epoch: int) -> tuple[float, dict]:
        """Train one epoch; (mean training loss, pre-clip gradient norms mean / max)."""
        self.net.train()
        tc = self.cfg.train
        if self.model.closed_form:
            data, tm = self.data, self.tm
            report = self.model.fit_closed_form(
                [tm.normalizer(r.signals).astype(np.float32) for r in data.train],
                [loss_labels(r.labels, tc.boundary_ignore, tm.delay) for r in data.train],
                [str(r.subject) for r in data.train], self.log)
            tm.info["fit"] = to_plain(report)
            return float(report.get("train_loss", float("nan"))), {}
        norms: list[float] = []
        total = 0.0
        for _ in range(tc.steps_per_epoch):
            loss, gnorm = self.step()
            total += loss
            norms.append(gnorm)
        return total / tc.steps_per_epoch, {"grad_norm": float(np.mean(norms)), "grad_norm_max": float(np.max(norms))}

    def step(self) -> tuple[float, float]:
        """One optimizer step on one global batch; (mean loss per labelled step, pre-clip gradient norm)."""
        tc, ctx = self.cfg.train, self.ctx
        plan = self.sampler.plan(tc.batch_size, tc.augment_gain, tc.augment_noise, tc.augment_rotation_deg,
                                 tc.augment_time_warp, tc.augment_mirror)
        idx = np.flatnonzero(self.mine[plan.rec])
        if len(idx):
            xn, yn = self.sampler.materialize(plan, idx)
            xb, yb = torch.from_numpy(xn), torch.from_numpy(yn)
        else:  # no window of this step lies in this rank's shard: a zero-weight dummy keeps DDP in step
            xb = torch.zeros((1, self.window, len(self.data.channels)))
            yb = torch.full((1, self.window), UNLABELED, dtype=torch.int64)
        xb, yb = xb.to(ctx.device, non_blocking=True), yb.to(ctx.device, non_blocking=True)
        logits, _ = self.net(xb)
        part = self.loss_sum(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
        if self.teachers is not None:
            part = distill_loss(part, logits, self.teachers.probs(xb), yb, tc.distill_weight)
        extra = self.model.auxiliary_loss(xb, logits)
        if extra is not None:
            part = part + extra
        stats = torch.stack([part.detach().double(), (yb != UNLABELED).sum().double()])
        gd.all_reduce_sum(stats, ctx)
        total, count = float(stats[0]), max(float(stats[1]), 1.0)
        self.opt.zero_grad(set_to_none=True)
        (part * (ctx.world_size / count)).backward()
        params = list(self.model.parameters())
        if tc.grad_clip > 0:
            gnorm = nn.utils.clip_grad_norm_(params, tc.grad_clip)
        else:
            gnorm = nn.utils.get_total_norm([q.grad for q in params if q.grad is not None])
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return total / count, float(gnorm)

    def validate(self, epoch: int) -> EpochScore:
        """Score the weights to keep (the EMA when on) on the validation recordings (rank 0)."""
        model, tm = self.model, self.tm
        on_cpu = self.ctx.device.type == "cpu"
        model.eval()
        live = None
        if self.ema is not None:
            if on_cpu:  # tm.model is the trained module: set the live weights aside
                live = {k: v.detach().clone() for k, v in model.state_dict().items()}
            tm.model.load_state_dict(to_cpu(self.ema.state))
        elif not on_cpu:
            tm.model.load_state_dict(to_cpu(model.state_dict()))
        val = validation_metrics(tm, self.data.val, self.val_loss)
        best = {k: v.detach().cpu().clone() for k, v in tm.model.state_dict().items()}
        if live is not None:
            model.load_state_dict(live)
        row = {
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
            "val_macro_f1": val["macro_f1"],
            "val_event_f1": val["event_f1"],
            "val_median_abs_error_ms": val["event_median_abs_error_ms"],
        }
        summary = f"val loss {val['loss']:.4f}  macro-F1 {val['macro_f1']:.4f}  event F1 {val['event_f1']:.4f}"
        metrics = to_plain(val)
        return EpochScore(val["score"], row, summary, lambda: best, metrics)


def _finish(cfg: Config, tm: TrainedModel, state: TrainState, trainer: _Trainer, out: Path, interrupted: bool,
            resumed_after: int | None, test_recs: list[Recording] | None, test_skipped: list[Skipped],
            skipped: list[Skipped]) -> dict:
    """Load the best epoch into ``tm``, test it, write the run folder; return the metrics."""
    tm.model.load_state_dict(state.best_state)
    tm.model.eval()
    n_params = tm.model.n_params()
    tm.info.update({"best_epoch": state.best_epoch, "train_time_s": state.elapsed_s, "n_params": n_params})
    step_time = state.train_step_s
    windows = len(state.history) * cfg.train.steps_per_epoch * cfg.train.batch_size
    metrics = {
        "model": cfg.model.name,
        "n_params": n_params,
        "best_epoch": state.best_epoch,
        "epochs_run": len(state.history),
        "train_time_s": state.elapsed_s,
        "interrupted": interrupted,
        "resumed_after_epoch": resumed_after,
        "world_size": trainer.ctx.world_size,
        "device": str(trainer.ctx.device),
        "batch_size": cfg.train.batch_size,
        "train_step_time_s": step_time,
        "train_windows_per_s": windows / step_time if step_time > 0 else float("nan"),
        "train_samples_per_s": windows * trainer.window / step_time if step_time > 0 else float("nan"),
        "train_subjects": tm.info["train_subjects"],
        "val_subjects": tm.info["val_subjects"],
        "val": state.best_val,
        "history": state.history,
        "skipped": [x.to_dict() for x in skipped],
    }
    if test_recs is not None:
        metrics["test"] = evaluate_model(tm, test_recs)
        metrics["test"]["skipped"] = [x.to_dict() for x in test_skipped]
    tm.info["weights_sha256"] = tm.weights_hash()
    tm.save(out / MODEL_FILE)
    write_text(out / CONFIG_FILE, dump_toml(cfg))
    write_json(out / METRICS_FILE, metrics)
    from gaitedge.training.plots import plot_confusion, plot_curves

    plot_curves(state.history, out / CURVES_FILE, best_epoch=state.best_epoch)
    final = metrics.get("test") or state.best_val
    plot_confusion(np.asarray(final["confusion"]), tm.classes, out / CONFUSION_FILE,
                   title="test" if "test" in metrics else "validation")
    return metrics
