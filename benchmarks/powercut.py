"""Power cuts during a weight update of the host firmware: the setup and one cut point.

Shared by ``tests/test_power_cut.py`` (a sample of cut points) and
``benchmarks/bench_power_cut.py`` (every cut point).  The host board
(``boards/host/board.c``) runs with its weight slots in a file and, with
``--power-cut N``, loses power during the flash operation that would spend unit N of
its programming budget (one unit per programmed byte, one per erase; an erase cut
short leaves the first half of its region erased and the rest with the old bytes).

The scenario (``history=2``): a flash file holding generation 1 (the *stale* model,
slot A) and generation 2 (the *old* model, slot B, in force).  The update sends the
*new* model, which goes into slot A: an erase of slot A, the blob header, the payload
chunks, the commit record.  With ``history=1`` the file holds only the old model
(generation 1, slot A) and the update goes into the erased slot B.  After a cut at
unit k the board is restarted on that file without the cut; it must boot, answer
INFO and compute exactly the old model's results or exactly the new model's: the
old model's for every k before the commit record is complete in flash, the new
model's from there on.  The built-in model (compiled into the
firmware) and the stale one are a fourth and a third set of weights, so falling back
to either is told apart from old and new.
"""

from __future__ import annotations

import random
import select
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge.device import DeviceClient, Emulator
from gaitedge.export.packing import build_blob
from gaitedge.errors import DeviceError

#: exit status of the host board when its --power-cut budget runs out
EXIT_POWER_CUT = 86
#: bytes of one weight slot of the host board, and of the commit record at its end (fw_blob.h)
SLOT_BYTES = 0x80000
COMMIT_BYTES = 32
#: a budget no update reaches: the board only counts (and prints the count)
COUNT_ONLY = 1 << 62
_USED = "power-cut: "
_FIELDS = ("label", "raw_label", "event", "event_sample", "logits")


class CutEmulator(Emulator):
    """The host board with ``--power-cut N`` (``power_cut=None``: without the option)."""

    def __init__(self, image, flash_file, power_cut: int | None = None, **kw) -> None:
        super().__init__(image, flash_file=flash_file, **kw)
        self.power_cut = power_cut

    def command(self, port: int) -> list[str]:
        """The host board's command line, with ``--power-cut`` when a budget is set."""
        cmd = super().command(port)
        if self.power_cut is not None:
            cmd += ["--power-cut", str(int(self.power_cut))]
        return cmd

    def full_log(self) -> str:
        """Everything the board printed on stderr so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")


class SocketPort:
    """The part of a pyserial port :class:`DeviceClient` uses, on a loopback TCP socket.

    pyserial's ``socket://`` port sleeps 0.3 s in ``close()`` (for servers that need
    time before a reconnect); the boards here are fresh processes, and a run closes
    thousands of links."""

    def __init__(self, port: int) -> None:
        self.portstr = f"socket://127.0.0.1:{port}"
        self.timeout: float | None = 0.05
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> int:
        """Send everything (OSError when the board is gone)."""
        self.sock.sendall(data)
        return len(data)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes that arrive within ``timeout`` (b"" if none; OSError at EOF)."""
        ready, _, _ = select.select([self.sock], [], [], self.timeout or 0)
        if not ready:
            return b""
        data = self.sock.recv(n)
        if not data:
            raise OSError("socket disconnected")
        return data

    def close(self) -> None:
        """Close the socket at once."""
        self.sock.close()


def connect(emu: Emulator, **kw) -> DeviceClient:
    """A :class:`DeviceClient` on a started host board (``kw``: timeout, retries)."""
    return DeviceClient(SocketPort(emu.port), **kw)


def unit_marks(log: str) -> list[int]:
    """The running unit totals a board with ``--power-cut`` printed, one per flash operation."""
    out = []
    for line in log.splitlines():
        if _USED in line and line.rstrip().endswith("flash units used"):
            out.append(int(line.split(_USED, 1)[1].split()[0]))
    return out


@dataclass
class Answer:
    """What a board reports for the fixed input: INFO's weights and generation, the results."""

    model_hash: str
    generation: int
    results: dict[str, np.ndarray]

    def same_results(self, other: "Answer") -> bool:
        """Whether the inference results are identical, field by field."""
        return all(np.array_equal(self.results[k], other.results[k]) for k in _FIELDS)


def board_answer(dev, counts: np.ndarray) -> Answer:
    """INFO and the results of ``counts`` (after RESET_STATE) from a connected board."""
    info = dev.info()
    dev.reset()
    res = dev.samples(counts)
    return Answer(info.model_hash, int(info.generation), {k: np.asarray(getattr(res, k)) for k in _FIELDS})


def make_models(n: int = 4, hidden: int = 8):
    """``n`` quantized 12-channel GRUs of one architecture, weights from seeds 0..n-1 (untrained)."""
    import torch

    from gaitedge.checkpoint import TrainedModel
    from gaitedge.data.preprocess import Normalizer
    from gaitedge.data.spec import load_spec
    from gaitedge.models import build_model
    from gaitedge.quant import quantize_model

    recs = load_spec("synthetic?n=2&trials=1", other_foot=True)
    r0 = recs[0]
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        model = build_model("gru", len(r0.channels), len(r0.classes), hidden=hidden)
        with torch.no_grad():
            model.head.weight.mul_(4.0)  # livelier logits
        model.eval()
        tm = TrainedModel(model=model, classes=r0.classes, channels=list(r0.channels), units=list(r0.units),
                          rate_hz=r0.rate_hz, normalizer=Normalizer(np.zeros(1), np.ones(1)), lowpass_hz=0.0,
                          filter_order=2, min_run=2, tolerance_ms=50.0, delay=0)
        tm.normalizer = Normalizer.fit([tm.preprocess(r).signals for r in recs])
        out.append(quantize_model(tm, recs))
    return out


def sample_counts(qm, n: int = 120) -> np.ndarray:
    """A fixed input: the first ``n`` samples of a synthetic recording as sensor counts."""
    from gaitedge.data.spec import load_spec
    from gaitedge.quant.evaluate import recording_counts

    rec = load_spec("synthetic?n=1&trials=1&seed=3", other_foot=True)[0]
    return recording_counts(qm, rec)[:n]


@dataclass
class Setup:
    """Everything one cut point needs, measured once by :func:`prepare`."""

    image: Path
    work: Path
    base_flash: Path  #: the flash file before the update (see :func:`prepare`)
    counts: np.ndarray
    blob_new: bytes
    answers: dict[str, Answer]  #: "builtin", "stale", "old", "new"
    marks: list[int]  #: unit totals after each flash operation of one full update (last: the units)
    record: bytes  #: the commit record the update writes
    history: int = 2  #: updates done before (1 or 2): the old model's generation
    target: int = 0  #: the slot the update writes (0: A, 1: B)
    seconds_prepare: float = 0.0

    @property
    def units(self) -> int:
        """Flash units (programmed bytes + erases) of one full update."""
        return self.marks[-1]

    @property
    def record_start(self) -> int:
        """Unit index of the commit record's first byte."""
        return self.marks[-2]

    @property
    def transition(self) -> int:
        """The first cut point after which the commit record is complete in flash.

        A byte still erased (0xFF) holds its final value already, so trailing 0xFF bytes
        of the record need not be programmed for the record to be complete."""
        last = max((i for i, b in enumerate(self.record) if b != 0xFF), default=-1)
        return self.record_start + last + 1

    @property
    def full_flash(self) -> Path:
        """The flash file after the update completed."""
        return self.work / "full.bin"

    def boundaries(self) -> list[int]:
        """Cut points at and just before the start of every flash operation (erase, header,
        each payload chunk, commit record), and the cut that no longer happens (the units)."""
        pts = {0, self.units}
        for m in self.marks:
            pts.update((m - 1, m))
        return sorted(p for p in pts if 0 <= p <= self.units)

    def record_points(self) -> list[int]:
        """A cut at every byte of the commit record."""
        return list(range(self.record_start, self.units + 1))

    def cut_points(self, n_random: int, seed: int = 0, every: bool = False) -> list[int]:
        """Boundaries + commit-record bytes + ``n_random`` other points (seeded); or all."""
        if every:
            return list(range(self.units + 1))
        pts = set(self.boundaries()) | set(self.record_points())
        rest = [k for k in range(self.units) if k not in pts]
        pts.update(random.Random(seed).sample(rest, min(n_random, len(rest))))
        return sorted(pts)


def prepare(image, work: str | Path, models, counts: np.ndarray, history: int = 2) -> Setup:
    """Build the starting flash file and measure one full update of the new model.

    ``models``: (builtin, stale, old, new) QuantModels of the firmware's architecture,
    the first being the one compiled into ``image``.  ``history``: updates done before,
    2 (stale as generation 1 in slot A, old as generation 2 in slot B: the update
    erases and rewrites slot A, which holds committed weights) or 1 (old as generation
    1 in slot A: the update goes into the never written slot B)."""
    if history not in (1, 2):
        raise ValueError("history is 1 or 2 updates")
    t0 = time.perf_counter()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    _, stale, old, new = models
    base = work / "base.bin"
    base.unlink(missing_ok=True)
    answers: dict[str, Answer] = {}
    with CutEmulator(image, base) as emu, connect(emu) as dev:
        answers["builtin"] = board_answer(dev, counts)
        if history == 2:
            dev.flash(build_blob(stale))
            answers["stale"] = board_answer(dev, counts)
        res = dev.flash(build_blob(old))
        _expect(res, "old", "slot B" if history == 2 else "slot A", history)
    with CutEmulator(image, base) as emu, connect(emu) as dev:
        answers["old"] = board_answer(dev, counts)  # after a restart: what is committed
    blob_new = build_blob(new)
    full = work / "full.bin"
    shutil.copyfile(base, full)
    emu = CutEmulator(image, full, power_cut=COUNT_ONLY)
    emu.start()
    try:
        with connect(emu) as dev:
            target = "slot A" if history == 2 else "slot B"
            _expect(dev.flash(blob_new), "new", target, history + 1)
        marks = unit_marks(emu.full_log())
    finally:
        emu.stop()
    with CutEmulator(image, full) as emu2, connect(emu2) as dev:
        answers["new"] = board_answer(dev, counts)
    slot = 0 if target == "slot A" else 1
    end = SLOT_BYTES * (slot + 1)
    record = full.read_bytes()[end - COMMIT_BYTES : end]
    return Setup(Path(image), work, base, counts, blob_new, answers, marks, record, history, slot,
                 seconds_prepare=time.perf_counter() - t0)


def _expect(res, what: str, slot: str, generation: int) -> None:
    if (res.slot, res.generation) != (slot, generation):
        raise AssertionError(f"the {what} model went to {res.slot} generation {res.generation}, "
                             f"expected {slot} generation {generation}")


@dataclass
class Outcome:
    """What the board did after a power cut at unit ``k``."""

    k: int
    kind: str  #: "old", "new" or "other"
    detail: str = ""
    cut_fired: bool = True
    exit_status: int | None = None


def classify(setup: Setup, got: Answer) -> tuple[str, str]:
    """("old" | "new" | "other", detail) for a board's answer after a cut."""
    for name, gen in (("old", setup.history), ("new", setup.history + 1)):
        ref = setup.answers[name]
        if got.model_hash == ref.model_hash and got.same_results(ref):
            if got.generation != gen:
                return "other", f"{name} weights but generation {got.generation}"
            return name, ""
    for name in ("stale", "builtin"):
        ref = setup.answers.get(name)
        if ref is None:
            continue
        if got.model_hash == ref.model_hash and got.same_results(ref):
            return "other", f"fell back to the {name} model (generation {got.generation})"
    for name in ("old", "new"):
        if got.model_hash == setup.answers[name].model_hash:
            return "other", f"the {name} model's weights hash but other results (a mixture), generation {got.generation}"
    return "other", f"unknown weights {got.model_hash[:16]}... generation {got.generation} (a mixture?)"


def cut_update(setup: Setup, k: int, flash: Path) -> tuple[bool, int | None]:
    """Copy the starting flash to ``flash`` and send the new model with the power failing
    at unit ``k``.  Returns (the cut happened, the board's exit status)."""
    shutil.copyfile(setup.base_flash, flash)
    emu = CutEmulator(setup.image, flash, power_cut=k)
    emu.start()
    fired, status = True, None
    try:
        with connect(emu, timeout=5.0, retries=0) as dev:
            try:
                dev.flash(setup.blob_new)
                fired = False
            except DeviceError:
                pass  # the link died with the board
        if fired:
            try:
                status = emu.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                status = None  # the link died but the board did not
    finally:
        emu.stop()
    return fired, status


def run_cut(setup: Setup, k: int, flash_file: str | Path | None = None) -> Outcome:
    """Update with the power failing at unit ``k`` (:func:`cut_update`), restart the board on
    that flash without the cut, classify what it runs."""
    flash = Path(flash_file) if flash_file else setup.work / "cut.bin"
    fired, status = cut_update(setup, k, flash)
    if fired and status != EXIT_POWER_CUT:
        return Outcome(k, "other", f"the board failed with status {status} instead of the power cut", fired, status)
    try:
        with CutEmulator(setup.image, flash) as emu, connect(emu) as dev:
            got = board_answer(dev, setup.counts)
    except DeviceError as exc:
        return Outcome(k, "other", f"bricked: {exc}", fired, status)
    kind, detail = classify(setup, got)
    return Outcome(k, kind, detail, fired, status)


def transition_of(outcomes: list[Outcome]) -> int | None:
    """The first cut point answering "new" when every earlier one answers "old" and every
    later one "new" (``None`` when the outcomes are not monotonic that way)."""
    ordered = sorted(outcomes, key=lambda o: o.k)
    kinds = [o.kind for o in ordered]
    if "other" in kinds or "new" not in kinds:
        return None
    first = kinds.index("new")
    if any(kd != "new" for kd in kinds[first:]):
        return None
    return ordered[first].k


__all__ = ["Answer", "COUNT_ONLY", "CutEmulator", "EXIT_POWER_CUT", "Outcome", "Setup", "SocketPort", "board_answer",
           "classify", "connect", "cut_update", "make_models", "prepare", "run_cut", "sample_counts", "transition_of",
           "unit_marks"]
