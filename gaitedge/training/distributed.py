"""Multi-process training helpers on top of ``torch.distributed``.

:func:`gaitedge.training.train.train` runs unchanged under ``torchrun``: it reads the
launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, and
``MASTER_ADDR`` / ``MASTER_PORT`` for the rendezvous), joins a process group
(gloo on CPU, nccl on CUDA) and wraps the model in
:class:`torch.nn.parallel.DistributedDataParallel`.  Without those variables (or
with ``WORLD_SIZE=1``) it is an ordinary single process and nothing here
touches ``torch.distributed``.

How the work is split (see :func:`shard_recordings` and
:class:`gaitedge.data.windows.WindowSampler`):

- every process loads and preprocesses the whole training set, so the
  normalization statistics are the same everywhere;
- the training recordings are partitioned into one shard per rank, balanced by
  number of samples; a rank only ever cuts training windows from its own shard;
- each optimizer step draws one *global* batch of ``train.batch_size`` windows
  from a random stream that is identical on every rank (which recording, where,
  which augmentation); every rank computes the windows that fall into its
  shard, and the losses are summed over all ranks and divided by the global
  number of labelled samples.  The gradient is therefore the one a single
  process computes for the same batch: ``train.batch_size`` is the effective
  (global) batch whatever the number of processes, the per-rank batch is about
  ``batch_size / world_size`` and varies from step to step, and a run gives the
  same result as a single-process run up to floating-point summation order.
"""

from __future__ import annotations

import os
import pickle
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from gaitedge.errors import ConfigError


@dataclass
class DistContext:
    """Where this process sits in a (possibly one-process) training job."""

    #: global rank, 0 .. world_size - 1 (0 in a single process).
    rank: int = 0
    #: number of processes in the job.
    world_size: int = 1
    #: rank within this machine (selects the GPU).
    local_rank: int = 0
    #: device the model trains on.
    device: torch.device = torch.device("cpu")
    #: ``torch.distributed`` backend ("gloo", "nccl"), "" in a single process.
    backend: str = ""
    #: whether this module created the process group (and so destroys it).
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: validates, logs, writes the run directory."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """The torch device for ``--device`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``).

    ``cuda`` picks GPU ``local_rank`` (one GPU per process under torchrun).
    Raises ConfigError when CUDA is asked for and no GPU is usable.
    """
    name = (name or "cpu").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name}: no CUDA GPU is available here (torch {torch.__version__}, "
                f"CUDA build {torch.version.cuda or 'none'}); use --device cpu"
            )
        index = int(name.partition(":")[2]) if ":" in name else local_rank
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: GPU {index} requested, {torch.cuda.device_count()} present")
        return torch.device("cuda", index)
    raise ConfigError(f"--device {name!r}: expected cpu, cuda, cuda:N or auto")


def setup(device: str | None = None) -> DistContext:
    """Join the job described by torchrun's environment (or stay a single process).

    Uses an already initialised default process group if there is one;
    otherwise, with ``WORLD_SIZE > 1``, initialises one from the environment
    (``init_method="env://"``) with gloo on CPU or nccl on CUDA.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank)
        dev = resolve_device(device, local)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        return DistContext(rank, world, local, dev, dist.get_backend(), owns_group=False)
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device, local)
    if world <= 1:
        return DistContext(0, 1, 0, dev)
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistContext(rank, world, local, dev, backend, owns_group=True)


def cleanup(ctx: DistContext, ok: bool = True) -> None:
    """Destroy the process group if :func:`setup` created it.

    ``ok``: every rank got here normally; they then meet at a barrier first,
    so none tears down its connections while a peer is still finishing the
    last collective.  After an error there is no barrier (the peers may be
    gone).
    """
    if ctx.owns_group and dist.is_initialized():
        if ok:
            barrier(ctx)
        dist.destroy_process_group()


#: the tensors of the latest collectives issued here, kept referenced until
#: long after the collective.  A backend worker thread drops its own reference
#: to a finished collective's tensors a moment after the caller has moved on;
#: if that were the last reference to a Python-created tensor, the thread would
#: need the GIL to free it, and doing so while the interpreter is shutting down
#: aborts the process (seen with gloo, whose threads outlive
#: ``destroy_process_group`` once a DistributedDataParallel model was built).
_HELD: deque[torch.Tensor] = deque(maxlen=16)


def broadcast(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (pickled; identity in one process)."""
    if not ctx.distributed:
        return obj
    dev = ctx.device if ctx.backend == "nccl" else torch.device("cpu")
    payload = pickle.dumps(obj) if ctx.rank == src else b""
    size = torch.tensor([len(payload)], dtype=torch.int64, device=dev)
    _HELD.append(size)
    dist.broadcast(size, src=src)
    if ctx.rank == src:
        data = torch.from_numpy(np.frombuffer(payload, dtype=np.uint8).copy()).to(dev)
    else:
        data = torch.empty(int(size.item()), dtype=torch.uint8, device=dev)
    _HELD.append(data)
    dist.broadcast(data, src=src)
    return obj if ctx.rank == src else pickle.loads(data.cpu().numpy().tobytes())


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise sum of ``t`` over all ranks (in place; returned for chaining)."""
    if ctx.distributed:
        _HELD.append(t)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in one process)."""
    if ctx.distributed:
        if ctx.backend == "nccl":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def shard_recordings(lengths: list[int] | np.ndarray, world_size: int) -> np.ndarray:
    """Owner rank of each recording: a deterministic partition balanced by samples.

    Recordings are taken longest first and each goes to the rank holding the
    fewest samples so far (ties to the lower rank).  Every rank then owns about
    ``1 / world_size`` of the training samples, which is also its expected share
    of each batch, since windows are drawn in proportion to recording length.
    Returns an int array ``owner[i]`` in ``0 .. world_size - 1``.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    owner = np.zeros(len(lengths), dtype=np.int64)
    if world_size <= 1:
        return owner
    load = np.zeros(world_size, dtype=np.int64)
    for i in sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i)):
        r = int(np.argmin(load))
        owner[i] = r
        load[r] += lengths[i]
    return owner


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """torch RNG seed for one rank's epoch (dropout masks): resumable without saved RNG state."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0] % (2**63))
