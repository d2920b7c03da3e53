"""Power cut during a weight update (host build, flash in a file, ``--power-cut N``).

The update of the new model is cut at a byte of every flash operation's start and end,
at every byte of the commit record, during the slot erase and at a seeded sample of
other bytes; after each cut the board restarts on that flash and must run exactly the
old weights (commit record incomplete) or exactly the new ones (complete), switching at
one cut point.  The setup and the cut itself live in ``benchmarks/powercut.py``, which
``benchmarks/bench_power_cut.py`` runs over every byte.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fwtools import have, tmpdir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import powercut as pc  # noqa: E402

sys.path.remove(str(ROOT / "benchmarks"))

pytestmark = pytest.mark.skipif(not have("gcc"), reason="no host C compiler")
#: random cut points per scenario besides the boundaries and the commit record
N_RANDOM = 150


@pytest.fixture(scope="module")
def models():
    return pc.make_models(hidden=16)


@pytest.fixture(scope="module")
def image(models):
    from gaitedge.firmware import build_firmware

    return build_firmware(models[0], tmpdir("powercut-host"), board="host").image


@pytest.fixture(scope="module", params=[2, 1], ids=["over-committed-slot", "into-erased-slot"])
def setup(request, models, image) -> pc.Setup:
    h = request.param
    return pc.prepare(image, tmpdir(f"powercut-{h}"), models, pc.sample_counts(models[0]), history=h)


def test_old_and_new_weights_answer_differently(setup):
    a = setup.answers
    assert not a["old"].same_results(a["new"])
    for other in ("builtin", "stale"):
        if other in a:
            assert not a[other].same_results(a["old"]) and not a[other].same_results(a["new"])
    assert (a["old"].generation, a["new"].generation) == (setup.history, setup.history + 1)


def test_units_of_one_update(setup):
    """One erase, the 64-byte header, chunks of at most 512 bytes, the 32-byte commit record."""
    m = setup.marks
    sizes = np.diff([0, *m])
    assert sizes[0] == 1 and sizes[1] == 64 and sizes[-1] == pc.COMMIT_BYTES
    chunks = sizes[2:-1]
    assert chunks.sum() == len(setup.blob_new) - 64 and len(chunks) >= 2
    assert all(c <= 512 and c % 8 == 0 for c in chunks[:-1])
    assert setup.units == 1 + len(setup.blob_new) + pc.COMMIT_BYTES
    assert setup.record_start < setup.transition <= setup.units


@pytest.mark.parametrize("where", ["erase", "header", "first chunk", "mid chunk", "last chunk end", "record"])
def test_a_cut_leaves_exactly_the_bytes_before_it(setup, where):
    """The flash file after a cut at unit k: the erase done (or half done at k = 0), the
    first k - 1 programmed bytes in place, everything else as before."""
    k = {"erase": 0, "header": 30, "first chunk": 65, "mid chunk": 65 + 300,
         "last chunk end": setup.record_start - 1, "record": setup.record_start + 13}[where]
    flash = tmpdir(f"powercut-bytes-{setup.history}") / "cut.bin"
    fired, status = pc.cut_update(setup, k, flash)
    assert fired and status == pc.EXIT_POWER_CUT
    base, full, got = setup.base_flash.read_bytes(), setup.full_flash.read_bytes(), flash.read_bytes()
    lo, hi = setup.target * pc.SLOT_BYTES, (setup.target + 1) * pc.SLOT_BYTES
    assert got[:lo] == base[:lo] and got[hi:] == base[hi:]
    want = bytearray(base[lo:hi])
    if k == 0:
        want[: pc.SLOT_BYTES // 2] = b"\xff" * (pc.SLOT_BYTES // 2)  # the erase got half way
    else:
        want[:] = b"\xff" * pc.SLOT_BYTES
        n_blob = min(k - 1, setup.record_start - 1)  # header and payload bytes programmed
        want[:n_blob] = full[lo : lo + n_blob]
        n_rec = max(0, k - setup.record_start)
        end = pc.SLOT_BYTES - pc.COMMIT_BYTES
        want[end : end + n_rec] = full[lo + end : lo + end + n_rec]
    assert got[lo:hi] == bytes(want)


def test_power_cut_leaves_old_or_new_weights_never_a_mixture(setup):
    points = setup.cut_points(N_RANDOM, seed=1234 + setup.history)
    assert 0 in points and setup.units in points  # the erase, and no cut at all
    t0 = time.perf_counter()
    outcomes = [pc.run_cut(setup, k) for k in points]
    seconds = time.perf_counter() - t0
    bad = [f"k={o.k}: {o.detail}" for o in outcomes if o.kind == "other"]
    assert not bad, f"{len(bad)} of {len(points)} cut points neither old nor new: " + "; ".join(bad[:10])
    for o in outcomes:
        assert o.cut_fired == (o.k < setup.units), o
        assert o.exit_status == (pc.EXIT_POWER_CUT if o.cut_fired else None), o
        assert o.kind == ("new" if o.k >= setup.transition else "old"), o
    assert pc.transition_of(outcomes) == setup.transition
    assert seconds < 120, f"{len(points)} cut points took {seconds:.0f} s"


@pytest.mark.parametrize("at", ["erase", "payload", "record"])
def test_after_a_cut_the_next_update_completes(setup, at):
    k = {"erase": 0, "payload": 65 + 200, "record": setup.record_start + 20}[at]
    flash = tmpdir(f"powercut-again-{setup.history}") / "cut.bin"
    assert pc.run_cut(setup, k, flash).kind == "old"
    with pc.CutEmulator(setup.image, flash) as emu, pc.connect(emu) as dev:
        res = dev.flash(setup.blob_new)
        assert res.generation == setup.history + 1
    with pc.CutEmulator(setup.image, flash) as emu, pc.connect(emu) as dev:
        got = pc.board_answer(dev, setup.counts)
    assert pc.classify(setup, got) == ("new", "")
