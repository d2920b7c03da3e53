"""The epoch loop every trainer runs: train an epoch, validate, keep the best, decide when to stop.

:func:`fit` owns the order of events and the bookkeeping in a
:class:`~gaitedge.training.state.TrainState`; what an epoch of training is
and how a model is scored come from the caller (:mod:`gaitedge.training.train`
for float training, :mod:`gaitedge.quant.qat` for quantization-aware
fine-tuning through a fake-quantized wrapper).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from gaitedge.training import distributed as gd
from gaitedge.training.state import TrainState


@dataclass
class EpochScore:
    """What validating one epoch gives :func:`fit`.

    ``score`` picks the best epoch (higher is better); ``row`` is merged into the
    epoch's history row; ``summary`` is the text logged after the training loss;
    ``weights`` returns the state dict to keep when this epoch is the best so far;
    ``metrics`` is kept as ``TrainState.best_val`` when it is.
    """

    score: float
    row: dict
    summary: str
    weights: Callable[[], dict[str, torch.Tensor]]
    metrics: dict | None = None


@dataclass
class StopRules:
    """When :func:`fit` stops before its last epoch.

    ``patience``: epochs without improvement (None: never); ``deadline``: wall
    clock (``time.time()``) after which no further epoch starts; ``one_pass``:
    stop after the first epoch (models fitted in closed form); ``on_epoch``: a
    hook given each history row plus ``score`` that stops training by returning True.
    ``budget`` names the deadline in the log line.
    """

    patience: int | None = None
    deadline: float = math.inf
    budget: str = "time budget"
    one_pass: bool = False
    on_epoch: Callable[[dict], bool | None] | None = None


@dataclass
class FitOptions:
    """How :func:`fit` reports and persists: log function, progress-bar label, per-epoch seeding."""

    log: Callable[..., None] = print
    #: label of a tqdm progress bar (None: no bar, one log line per epoch)
    progress: str | None = None
    #: text before "epoch N" in the log lines
    prefix: str = ""
    #: seed torch's generator at the start of each epoch from (seed, epoch, rank); None: leave it
    seed: int | None = None
    #: called with the state after each validated epoch (e.g. to write the resume file)
    save: Callable[[TrainState], None] | None = None
    #: ``time.time()`` when this session of the run started (elapsed time counts from it)
    started: float = field(default_factory=time.time)


def fit(
    train_epoch: Callable[[int], tuple[float, dict]],
    validate: Callable[[int], EpochScore],
    state: TrainState,
    epochs: int,
    stop: StopRules | None = None,
    opts: FitOptions | None = None,
    ctx: gd.DistContext | None = None,
) -> bool:
    """Run epochs ``state.epoch + 1 .. epochs``; return True when interrupted (Ctrl-C).

    ``train_epoch(epoch)`` trains one epoch and returns (mean training loss, extra
    history entries); ``validate(epoch)`` scores the model (main process only).
    ``state`` is updated in place: history, best epoch and its weights, the
    early-stopping counter, ``done`` and the time spent.  Under ``torchrun``
    every process calls :func:`fit`; rank 0 validates and its stop decision is
    broadcast.  An interruption keeps the best epoch so far (rank 0; other ranks re-raise).
    """
    stop = stop or StopRules()
    opts = opts or FitOptions()
    main = ctx is None or ctx.is_main
    bar = None
    if opts.progress and main:
        from tqdm import tqdm

        bar = tqdm(total=epochs, initial=state.epoch, desc=opts.progress, unit="epoch", dynamic_ncols=True)
    t0 = opts.started - state.elapsed_s
    try:
        for epoch in range(state.epoch + 1, epochs + 1):
            if state.done:
                break
            if opts.seed is not None:
                torch.manual_seed(gd.epoch_seed(opts.seed, epoch, ctx.rank if ctx else 0))
            ts = time.time()
            loss, extra = train_epoch(epoch)
            state.train_step_s += time.time() - ts
            halt = False
            if main:
                halt = _after_epoch(epoch, loss, extra, validate(epoch), state, stop, opts, bar, t0)
                state.epoch, state.elapsed_s = epoch, time.time() - t0
                state.done = halt or epoch == epochs
                if opts.save is not None:
                    opts.save(state)
            if ctx is not None:
                halt = gd.broadcast(halt, ctx)
            if halt:
                break
    except KeyboardInterrupt:
        opts.log("interrupted: keeping the best epoch so far")
        if not main:
            raise
        return True
    finally:
        if bar is not None:
            bar.close()
        state.elapsed_s = time.time() - t0
    return False


def _after_epoch(epoch: int, loss: float, extra: dict, val: EpochScore, state: TrainState, stop: StopRules,
                 opts: FitOptions, bar, t0: float) -> bool:  # noqa: ANN001
    """Record epoch ``epoch`` in ``state``, log it; True when training should stop here."""
    row = {"epoch": epoch, "train_loss": loss, **val.row, "elapsed_s": time.time() - t0, **extra}
    state.history.append(row)
    improved = val.score > state.best_score
    if improved:
        state.best_score, state.best_epoch = val.score, epoch
        state.best_val = val.metrics
        state.best_state = val.weights()
        state.stale = 0
    else:
        state.stale += 1
    msg = f"{opts.prefix}epoch {epoch:3d}  loss {loss:.4f}  {val.summary}" + ("  *" if improved else "")
    if bar is not None:
        bar.update(1)
        bar.write(msg)
    else:
        opts.log(msg)
    halt = False
    if stop.one_pass:
        halt = True
    elif stop.patience is not None and state.stale >= stop.patience:
        opts.log(f"early stop: no validation improvement for {state.stale} epochs")
        halt = True
    elif time.time() > stop.deadline:
        opts.log(f"stopping: {stop.budget} reached")
        halt = True
    if stop.on_epoch is not None and stop.on_epoch({**row, "score": val.score}) and not halt:
        opts.log("stopping: the on_epoch hook asked to stop")
        halt = True
    return halt
