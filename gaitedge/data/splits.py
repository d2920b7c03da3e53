"""Subject-wise splits: no subject ever appears on both sides of a split."""

from __future__ import annotations

import numpy as np

from gaitedge.data.recording import Recording
from gaitedge.errors import ConfigError


def subjects_of(recs: list[Recording]) -> list[str]:
    """Distinct subject ids, sorted naturally (numeric ids numerically)."""
    ids = {r.subject for r in recs}
    return sorted(ids, key=lambda s: (0, int(s), s) if s.isdigit() else (1, 0, s))


def by_subjects(recs: list[Recording], subjects: list[str]) -> list[Recording]:
    """Recordings whose subject is in ``subjects``."""
    wanted = {str(s) for s in subjects}
    return [r for r in recs if r.subject in wanted]


def split_subjects(
    recs: list[Recording], val_fraction: float = 0.2, seed: int = 0, val_subjects: list[str] | None = None
) -> tuple[list[Recording], list[Recording]]:
    """Split into (train, validation) by subject.

    ``val_subjects`` picks the validation subjects explicitly; otherwise a seeded
    random ``val_fraction`` of subjects (at least one) is held out.
    """
    subs = subjects_of(recs)
    if len(subs) < 2:
        raise ConfigError(f"a subject-wise split needs at least 2 subjects, the data has {len(subs)}")
    if val_subjects is not None:
        val = [str(s) for s in val_subjects]
        unknown = sorted(set(val) - set(subs))
        if unknown:
            raise ConfigError(f"validation subject(s) {unknown} not in the data (subjects: {subs})")
    else:
        rng = np.random.default_rng(seed)
        n_val = max(1, int(round(val_fraction * len(subs))))
        n_val = min(n_val, len(subs) - 1)
        val = [subs[i] for i in sorted(rng.choice(len(subs), size=n_val, replace=False))]
    train = [r for r in recs if r.subject not in set(val)]
    return train, by_subjects(recs, val)


def kfold_subjects(recs: list[Recording], k: int, seed: int = 0) -> list[list[str]]:
    """Partition the subjects into ``k`` test folds (leave-subjects-out), seeded shuffle."""
    subs = subjects_of(recs)
    if not 2 <= k <= len(subs):
        raise ConfigError(f"k-fold needs 2 <= k <= number of subjects ({len(subs)}), got k={k}")
    order = np.random.default_rng(seed).permutation(len(subs))
    return [[subs[i] for i in sorted(order[f::k])] for f in range(k)]


def parse_subjects(text: str) -> list[str]:
    """Parse ``"1-3,7"`` into ``["1", "2", "3", "7"]`` (non-numeric ids pass through)."""
    out: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part and all(p.strip().isdigit() for p in part.split("-", 1)):
            a, b = (int(p) for p in part.split("-", 1))
            if a > b:
                raise ConfigError(f"subject range {part!r} runs backwards")
            out.extend(str(i) for i in range(a, b + 1))
        else:
            out.append(part)
    return out
