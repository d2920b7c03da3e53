"""Gait-template memory: binarized stride templates in a Hopfield network.

Pipeline (each step a function of its own):

1. **Strides** (:func:`segment_strides`): a stride runs from one heel strike of the
   recording (``Recording.events["heel_strike"]``) to the next.  Strides whose
   duration differs from the recording's median stride by more than ``tolerance``
   (default 25 %) are left out: they span turns, stops or annotation slips.
2. **Resampling** (:func:`resample_stride`): every channel of a stride is linearly
   interpolated (``np.interp``) at ``bins`` equally spaced points from its first to
   its last sample, so every stride becomes ``[bins, channels]`` whatever its
   duration (time-normalised gait cycle).
3. **Binarization** (:class:`StrideEncoder`): each feature (phase bin x channel) is
   z-scored with a centre and scale learnt from the reference strides, and the bit is
   the sign of the z-score (+1 for z >= 0, else -1).  The centre is the mean of the
   per-template mean strides (each template weighs the same, however many strides it
   has), the scale the standard deviation over all reference strides.  Centring on
   the shared gait cycle leaves the pattern of how a template's strides *deviate*
   from it, which keeps templates far less correlated than raw stride shapes (a
   Hebbian memory cannot keep strongly correlated patterns apart).  Bits are ordered
   bin-major: bit ``k * C + c`` is channel ``c`` at phase bin ``k``.
4. **Templates**: one per label (subject, sensor location, ... chosen by ``key``),
   the majority bit of the label's binarized strides (the sign of their mean
   z-score, ties +1), stored with the Hebbian rule in a :class:`HopfieldNetwork`.
5. **Recall** (:meth:`GaitTemplateMemory.recall_bits`): a probe stride's bits start
   the network, which runs to a fixed point (asynchronous sweeps by default).  The
   settled state is reported as the stored template it equals, the negation of one
   (``reversed``, an attractor of every Hebbian memory) or a ``spurious`` state; the
   template closest to the settled state is given as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from gaitedge.data.recording import Recording
from gaitedge.errors import DataError
from gaitedge.memory.hopfield import HopfieldNetwork, Mode

#: Default channels: one foot IMU's accelerometer and gyroscope.
DEFAULT_CHANNELS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
#: Default phase bins per stride.
DEFAULT_BINS = 32
#: Default largest relative deviation of a stride's duration from the recording's median stride.
DEFAULT_TOLERANCE = 0.25

KeyFn = Callable[[Recording], str]


@dataclass
class Stride:
    """One stride: its recording, sample span ``[start, end)`` and resampled signals ``[bins, C]``."""

    recording: str
    subject: str
    location: str
    start: int
    end: int
    rate_hz: float
    signals: np.ndarray

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / self.rate_hz


def segment_strides(rec: Recording, tolerance: float = DEFAULT_TOLERANCE) -> list[tuple[int, int]]:
    """``[start, end)`` sample spans between consecutive heel strikes, durations within
    ``tolerance`` of the median stride duration.  DataError if the recording has no
    heel-strike events."""
    if not 0 < tolerance:
        raise DataError(f"stride duration tolerance must be > 0, got {tolerance}")
    hs = rec.events.get("heel_strike")
    if hs is None:
        raise DataError(f"{rec.name}: no heel-strike events; strides are cut at heel strikes")
    hs = np.unique(np.asarray(hs, dtype=np.int64))
    hs = hs[(hs >= 0) & (hs < len(rec))]
    if len(hs) < 2:
        return []
    d = np.diff(hs)
    med = float(np.median(d))
    keep = np.abs(d - med) <= tolerance * med
    keep &= d >= 2
    return [(int(a), int(b)) for a, b, k in zip(hs[:-1], hs[1:], keep) if k]


def resample_stride(seg: np.ndarray, bins: int) -> np.ndarray:
    """Linear interpolation of every column of ``seg [T, C]`` at ``bins`` points spanning it."""
    seg = np.asarray(seg, dtype=np.float64)
    if seg.ndim != 2 or len(seg) < 2:
        raise DataError(f"a stride needs at least 2 samples of [T, C] signals, got shape {seg.shape}")
    if bins < 2:
        raise DataError(f"bins must be >= 2, got {bins}")
    t = np.linspace(0.0, len(seg) - 1.0, bins)
    x = np.arange(len(seg), dtype=np.float64)
    return np.stack([np.interp(t, x, seg[:, c]) for c in range(seg.shape[1])], axis=1)


def extract_strides(rec: Recording, channels: Sequence[str] = DEFAULT_CHANNELS, bins: int = DEFAULT_BINS,
                    tolerance: float = DEFAULT_TOLERANCE) -> list[Stride]:
    """The recording's strides (:func:`segment_strides`) resampled to ``[bins, len(channels)]``."""
    sel = rec.select_channels(list(channels))
    return [Stride(rec.name, rec.subject, rec.location, a, b, rec.rate_hz, resample_stride(sel.signals[a:b], bins))
            for a, b in segment_strides(rec, tolerance)]


@dataclass
class StrideEncoder:
    """Stride -> bipolar bits: per-feature z-score with stored ``center`` / ``scale``, then sign."""

    channels: list[str]
    bins: int
    center: np.ndarray
    scale: np.ndarray

    @property
    def n(self) -> int:
        """Bits per stride (``bins * len(channels)``)."""
        return self.bins * len(self.channels)

    @classmethod
    def fit(cls, strides: Sequence[Stride], groups: Sequence[str], channels: Sequence[str], bins: int) -> "StrideEncoder":
        """Centre = mean of the per-group mean strides; scale = std over all strides."""
        x = _features(strides, bins, len(channels))
        g = np.asarray(groups)
        means = np.stack([x[g == lab].mean(0) for lab in dict.fromkeys(groups)])
        scale = x.std(0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        return cls(list(channels), bins, means.mean(0), scale)

    def zscore(self, strides: Sequence[Stride]) -> np.ndarray:
        return (_features(strides, self.bins, len(self.channels)) - self.center) / self.scale

    def encode(self, strides: Sequence[Stride]) -> np.ndarray:
        """``[S, n]`` int8 bits, +1 where the z-score is >= 0, else -1."""
        return np.where(self.zscore(strides) >= 0, 1, -1).astype(np.int8)


def _features(strides: Sequence[Stride], bins: int, n_ch: int) -> np.ndarray:
    if not len(strides):
        raise DataError("no strides to encode")
    x = np.stack([s.signals for s in strides]).astype(np.float64)
    if x.shape[1:] != (bins, n_ch):
        raise DataError(f"strides of shape {x.shape[1:]}; the encoder expects ({bins}, {n_ch})")
    return x.reshape(len(x), -1)


def corrupt(bits: np.ndarray, noise: float = 0.0, partial: float = 0.0, bins: int | None = None,
            rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A noisy / partial copy of probe bits ``[S, n]`` or ``[n]``.

    ``noise``: that fraction of the bits of each probe (rounded) is flipped, chosen at
    random.  ``partial``: the last ``ceil(partial * bins)`` phase bins of every channel
    are unknown (the stride was only partly seen) and are replaced by random bits.
    """
    if not 0.0 <= noise <= 1.0 or not 0.0 <= partial <= 1.0:
        raise DataError(f"noise and partial are fractions in [0, 1], got {noise} and {partial}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    b = np.array(bits, dtype=np.int8, copy=True)
    single = b.ndim == 1
    b = np.atleast_2d(b)
    s, n = b.shape
    if partial > 0:
        if bins is None or n % bins:
            raise DataError(f"partial probes need the number of phase bins (dividing {n} bits)")
        cut = int(np.ceil(partial * bins))
        per_bin = n // bins
        lost = slice((bins - cut) * per_bin, n)
        b[:, lost] = rng.choice(np.array([-1, 1], np.int8), size=(s, n - (bins - cut) * per_bin))
    k = int(round(noise * n))
    if k:
        for row in b:
            idx = rng.choice(n, size=k, replace=False)
            row[idx] = -row[idx]
    return b[0] if single else b


def key_function(key: str | KeyFn) -> KeyFn:
    """``subject``, ``location`` or ``recording`` (or a callable ``Recording -> str``)."""
    if callable(key):
        return key
    table: dict[str, KeyFn] = {
        "subject": lambda r: str(r.subject),
        "location": lambda r: str(r.location),
        "recording": lambda r: r.name,
    }
    if key not in table:
        raise DataError(f"unknown template key {key!r}; use one of {', '.join(table)}")
    return table[key]


def _natural(s: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def holdout_last(recordings: Sequence[Recording], group: str | KeyFn = "subject"
                 ) -> tuple[list[Recording], list[Recording]]:
    """Split per group: the recordings of each group's last source file (natural order of the
    file stem with the sensor suffix removed, e.g. IPOL trial ``3-5``) are held out as probes,
    the rest build templates.  Groups with a single source are kept whole for templates."""
    fn = key_function(group)
    by: dict[str, list[Recording]] = {}
    for r in recordings:
        by.setdefault(fn(r), []).append(r)
    keep, held = [], []
    for recs in by.values():
        trials = sorted({_trial_of(r) for r in recs}, key=_natural)
        last = trials[-1] if len(trials) > 1 else None
        for r in recs:
            (held if _trial_of(r) == last else keep).append(r)
    return keep, held


def _trial_of(r: Recording) -> str:
    stem = Path(r.source).stem if r.source else r.name
    return re.sub(r"_(lf|rf|lb)$", "", stem)


@dataclass
class TemplateRecall:
    """What one probe stride settled on.

    Attributes:
        label: the template the network settled on, or None (spurious / reversed).
        kind: ``stored`` (a stored template), ``reversed`` (the negation of a stored
            template, named in ``negation_of``) or ``spurious`` (neither).
        nearest: label of the template with the largest overlap with the settled state.
        overlap: that overlap (1.0 when it settled on the template).
        probe_nearest: label of the template closest to the probe before recall.
        outcome, steps, energy: as :class:`gaitedge.memory.hopfield.Recall`.
        negation_of: for ``reversed``, the template whose negation the state is.
    """

    label: str | None
    kind: Literal["stored", "reversed", "spurious"]
    nearest: str
    overlap: float
    probe_nearest: str
    outcome: str
    steps: int
    energy: float
    negation_of: str | None = None


@dataclass
class MemoryScore:
    """Recall statistics of a set of probe strides with known labels."""

    probes: int
    recalled: float          # fraction settling on their own template
    wrong: float             # fraction settling on another stored template
    spurious: float          # fraction settling on a spurious or reversed state
    nearest_after: float     # fraction whose settled state is closest to their own template
    nearest_probe: float     # fraction whose probe is closest to their own template (no dynamics)
    chance: float            # 1 / number of templates
    per_label: dict[str, float] = field(default_factory=dict)


class GaitTemplateMemory:
    """Binarized stride templates stored in a Hopfield network (see the module docstring).

    Build with :meth:`fit`; recall with :meth:`recall_bits`, :meth:`recall` or
    :meth:`evaluate`; export the int8 network with :meth:`export_c`.
    """

    def __init__(self, labels: Sequence[str], templates: np.ndarray, encoder: StrideEncoder, key: str | KeyFn = "subject",
                 tolerance: float = DEFAULT_TOLERANCE, mode: Mode = "async", max_iter: int = 100) -> None:
        self.labels = [str(v) for v in labels]
        if len(set(self.labels)) != len(self.labels):
            raise DataError(f"template labels must be unique, got {self.labels}")
        self.templates = np.asarray(templates, dtype=np.int8)
        if self.templates.shape != (len(self.labels), encoder.n):
            raise DataError(f"{self.templates.shape} templates for {len(self.labels)} labels of {encoder.n} bits")
        for i in range(len(self.labels)):
            for j in range(i):
                if np.array_equal(self.templates[i], self.templates[j]):
                    raise DataError(f"templates {self.labels[j]!r} and {self.labels[i]!r} are identical; the memory "
                                    "cannot tell them apart (more bins or channels may help)")
        self.encoder = encoder
        self.key = key
        self.tolerance = tolerance
        self.mode: Mode = mode
        self.max_iter = max_iter
        self.network = HopfieldNetwork.from_patterns(self.templates)

    @classmethod
    def fit(cls, recordings: Sequence[Recording], key: str | KeyFn = "subject",
            channels: Sequence[str] = DEFAULT_CHANNELS, bins: int = DEFAULT_BINS,
            tolerance: float = DEFAULT_TOLERANCE, mode: Mode = "async", max_iter: int = 100) -> "GaitTemplateMemory":
        """One template per label (``key`` of each recording) from all strides of ``recordings``."""
        fn = key_function(key)
        strides: list[Stride] = []
        groups: list[str] = []
        for r in recordings:
            st = extract_strides(r, channels, bins, tolerance)
            strides += st
            groups += [fn(r)] * len(st)
        labels = sorted(dict.fromkeys(groups), key=_natural)
        if len(labels) < 1:
            raise DataError("no strides found: the recordings need heel-strike events at least two strides apart")
        enc = StrideEncoder.fit(strides, groups, channels, bins)
        z = enc.zscore(strides)
        g = np.asarray(groups)
        templates = np.stack([np.where(z[g == lab].mean(0) >= 0, 1, -1) for lab in labels]).astype(np.int8)
        return cls(labels, templates, enc, key=key, tolerance=tolerance, mode=mode, max_iter=max_iter)

    @property
    def n(self) -> int:
        return self.encoder.n

    def strides(self, rec: Recording) -> list[Stride]:
        """The recording's strides, cut and resampled as the templates were."""
        return extract_strides(rec, self.encoder.channels, self.encoder.bins, self.tolerance)

    def encode(self, strides: Sequence[Stride]) -> np.ndarray:
        return self.encoder.encode(strides)

    def recall_bits(self, bits) -> TemplateRecall:
        """Run the network from one probe ``[n]`` and name what it settled on."""
        probe = np.asarray(bits)
        res = self.network.run(probe, mode=self.mode, max_iter=self.max_iter, record=False)
        k, reversed_ = self.network.match(res.state)
        ov = self.network.overlaps(res.state)
        near = int(np.argmax(ov))
        pnear = int(np.argmax(self.network.overlaps(probe)))
        if k is not None and not reversed_:
            kind, label = "stored", self.labels[k]
        else:
            kind, label = ("reversed" if k is not None else "spurious"), None
        return TemplateRecall(label, kind, self.labels[near], float(ov[near]), self.labels[pnear],
                              res.outcome, res.steps, res.energy,
                              negation_of=self.labels[k] if kind == "reversed" else None)

    def recall(self, rec: Recording, noise: float = 0.0, partial: float = 0.0,
               rng: np.random.Generator | int | None = 0) -> list[tuple[Stride, TemplateRecall]]:
        """Recall every stride of a recording (optionally corrupted, see :func:`corrupt`)."""
        st = self.strides(rec)
        if not st:
            return []
        bits = corrupt(self.encode(st), noise, partial, self.encoder.bins, rng)
        return [(s, self.recall_bits(b)) for s, b in zip(st, bits)]

    def evaluate(self, recordings: Sequence[Recording], noise: float = 0.0, partial: float = 0.0,
                 rng: np.random.Generator | int | None = 0) -> MemoryScore:
        """Recall statistics over the strides of recordings whose label has a template."""
        fn = key_function(self.key)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        rows: list[tuple[str, TemplateRecall]] = []
        for r in recordings:
            lab = fn(r)
            if lab not in self.labels:
                raise DataError(f"{r.name}: label {lab!r} has no template (templates: {', '.join(self.labels)})")
            rows += [(lab, tr) for _, tr in self.recall(r, noise, partial, rng)]
        if not rows:
            raise DataError("no probe strides in these recordings")
        truth = np.array([lab for lab, _ in rows])
        got = np.array([tr.label if tr.label is not None else "" for _, tr in rows])
        ok = got == truth
        per = {lab: float(ok[truth == lab].mean()) for lab in self.labels if (truth == lab).any()}
        return MemoryScore(
            probes=len(rows),
            recalled=float(ok.mean()),
            wrong=float(((got != "") & ~ok).mean()),
            spurious=float((got == "").mean()),
            nearest_after=float(np.mean([tr.nearest == lab for lab, tr in rows])),
            nearest_probe=float(np.mean([tr.probe_nearest == lab for lab, tr in rows])),
            chance=1.0 / len(self.labels),
            per_label=per,
        )

    def export_c(self, out_dir: str | Path, symbol: str = "ge_hopfield_data") -> list[Path]:
        """Write ``hopfield_data.h/.c`` (int8 weights, templates, labels) for ``ge_hopfield.c``."""
        from gaitedge.quant.hopfield import export_c

        return export_c(self.network.weights_int8(), out_dir, patterns=self.templates, labels=self.labels,
                        symbol=symbol)
