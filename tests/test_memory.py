"""Associative memories: Hopfield network and BAM (reference library, int8 twin, C kernels),
the gait-template memory on strides, the capacity experiment and ``gaitedge memory``.

The C kernels (``ge_hopfield.c``, ``ge_bam.c``) are compiled with
``gcc -std=c99 -Wall -Wextra -Werror -pedantic -fsanitize=address,undefined`` into a
small harness (below) and must print exactly what the Python twins
(``gaitedge.quant.hopfield`` / ``gaitedge.quant.bam``) compute.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gaitedge import resources
from gaitedge.cli import main as cli_main
from gaitedge.data.recording import Recording
from gaitedge.errors import DataError, ModelError
from gaitedge.memory import (
    BAM,
    GaitTemplateMemory,
    HopfieldNetwork,
    capacity_experiment,
    corrupt,
    extract_strides,
    holdout_last,
    plot_capacity,
    resample_stride,
    segment_strides,
    sign_keep,
)
from gaitedge.quant import bam as qbam
from gaitedge.quant import hopfield as qhop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fwtools import SANITIZE, sanitizers_work  # noqa: E402

RUNTIME = resources.runtime_dir()
GCC = shutil.which("gcc")
ARM_GCC = shutil.which("arm-none-eabi-gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="no host C compiler (gcc)")

# ----------------------------------------------------------------------------- worked examples

W_CYCLE = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
W_STABLE = np.array([[0, -2, 2], [-2, 0, -2], [2, -2, 0]])
X6 = np.array([
    [1, -1, 1, -1, 1, -1],    # x1
    [-1, 1, -1, 1, -1, 1],    # x2 = -x1
    [1, 1, -1, -1, 1, 1],     # x3
    [-1, -1, 1, 1, -1, -1],   # x4 = -x3
])
PROBE6 = np.array([1, -1, 1, -1, 1, 1])
BAM_A = np.array([[1, -1, 1], [-1, 1, -1]])
BAM_B = np.array([[-1, 1], [1, -1]])


def test_two_cycle_under_synchronous_updates():
    net = HopfieldNetwork(W_CYCLE)
    o0 = np.array([1, -1, 1, -1])
    o1 = net.step_sync(o0)
    assert o1.tolist() == [-1, 1, -1, 1]
    o2 = net.step_sync(o1)
    assert o2.tolist() == o0.tolist()
    assert not net.is_fixed_point(o0)
    r = net.run(o0, mode="sync")
    assert (r.outcome, r.period, r.steps) == ("cycle", 2, 2)
    assert r.state.tolist() == o0.tolist()
    # E = -1/2 sum_{i != j} w_ij o_i o_j: o0 pairs (0,1) and (2,3) disagree -> E = +2, and so does o1
    assert r.energies == [2.0, 2.0, 2.0]
    # the int8 twin says the same
    t = qhop.run(W_CYCLE, o0, qhop.SYNC)
    assert (t.outcome, t.period, t.steps, t.energy, t.state.tolist()) == (qhop.CYCLE, 2, 2, 2, o0.tolist())
    # asynchronous sweeps (ascending order) cannot cycle: unit 0 flips to -1, then units 1..3
    # follow their partners -> [-1, -1, -1, -1], a fixed point with E = -2
    ra = net.run(o0, mode="async")
    assert (ra.outcome, ra.period, ra.steps, ra.energy) == ("fixed_point", 1, 2, -2.0)
    assert ra.state.tolist() == [-1, -1, -1, -1]


def test_stable_state():
    net = HopfieldNetwork(W_STABLE)
    o0 = np.array([1, -1, 1])
    assert net.net(o0).tolist() == [4.0, -4.0, 4.0]
    assert net.step_sync(o0).tolist() == o0.tolist()
    assert net.sweep_async(o0).tolist() == o0.tolist()
    assert net.is_fixed_point(o0)
    r = net.run(o0, mode="sync")
    assert (r.outcome, r.period, r.steps, r.state.tolist()) == ("fixed_point", 1, 1, o0.tolist())
    assert r.energy == -6.0  # -1/2 * (o . W o) = -1/2 * (4 + 4 + 4)


def test_six_unit_memory_by_hand():
    """Hand computation.

    x2 = -x1 and x4 = -x3, so W = 2 (x1 x1^T + x3 x3^T) - 4 I, i.e. w_ij = 2 (x1_i x1_j + x3_i x3_j)
    for i != j: w03 = w34 = w12 = w25 = -4, w04 = w15 = +4, all other off-diagonal weights 0.

    Probe p = [1, -1, 1, -1, 1, 1] (x1 with its last bit flipped; x1 . p = 4, x3 . p = 2),
    W p = 8 x1 + 4 x3 - 4 p:
        net = [8, 0, 0, -8, 8, -8]
    Synchronous: units 1 and 2 have net 0 and keep -1 and +1; unit 5 goes to -1:
        o(1) = [1, -1, 1, -1, 1, -1] = x1, and W x1 = 12 x1 - 4 x1 = 8 x1, so o(2) = o(1):
        a fixed point after 2 steps, the stored pattern x1.
    Asynchronous (ascending order 0..5): units 0-4 see the same net inputs as above and keep
        their values; unit 5 sees net = 4 o1 - 4 o2 = -8 and flips to -1 -> x1 after the first
        sweep, unchanged in the second.
    Energies: E(p) = -1/2 p . W p = -1/2 (8 + 0 + 0 + 8 + 8 - 8) = -8;
        E(x1) = -1/2 x1 . 8 x1 = -24 (the minimum; E(x3) = -1/2 x3 . (2*6 x3 - 4 x3) = -24 too).
    """
    net = HopfieldNetwork.from_patterns(X6)
    expected_w = np.zeros((6, 6))
    for i, j, v in [(0, 3, -4), (3, 4, -4), (1, 2, -4), (2, 5, -4), (0, 4, 4), (1, 5, 4)]:
        expected_w[i, j] = expected_w[j, i] = v
    assert np.array_equal(net.weights, expected_w)
    assert net.net(PROBE6).tolist() == [8, 0, 0, -8, 8, -8]
    assert net.energy(PROBE6) == -8.0
    for mode in ("sync", "async"):
        r = net.run(PROBE6, mode=mode)
        assert r.state.tolist() == X6[0].tolist(), mode
        assert (r.outcome, r.period, r.steps) == ("fixed_point", 1, 2), mode
        assert r.energies == [-8.0, -24.0, -24.0], mode
        assert net.match(r.state) == (0, False)  # stored pattern x1, not spurious
    assert net.energy(X6[2]) == -24.0
    # every stored pattern is a fixed point here
    assert all(net.is_fixed_point(x) for x in X6)
    # the int8 twin
    w8 = qhop.hebbian_int8(X6)
    assert np.array_equal(w8, expected_w)
    for mode in (qhop.SYNC, qhop.ASYNC):
        t = qhop.run(w8, PROBE6, mode)
        assert (t.outcome, t.period, t.steps, t.energy) == (qhop.FIXED_POINT, 1, 2, -24)
        assert qhop.match(X6, t.state) == 0
    assert qhop.energy(w8, PROBE6) == -8


def test_bam_worked_example():
    bam = BAM.from_pairs(BAM_A, BAM_B)
    assert bam.weights.tolist() == [[-2, 2], [2, -2], [-2, 2]]
    u = np.array([1, -1, 1])
    assert (u @ bam.weights).tolist() == [-6, 6]
    b = bam.forward(u, np.ones(2))
    assert b.tolist() == [-1, 1]
    assert (bam.weights @ b).tolist() == [4, -4, 4]
    assert bam.backward(b, u).tolist() == [1, -1, 1]
    r = bam.recall(a=u)
    assert (r.a.tolist(), r.b.tolist(), r.outcome, r.steps, r.energy) == ([1, -1, 1], [-1, 1], "fixed_point", 2, -12.0)
    assert bam.match(a=r.a, b=r.b) == 0
    # from layer B: [1, -1] recalls the second pair
    r2 = bam.recall(b=np.array([1, -1]))
    assert (r2.a.tolist(), r2.b.tolist()) == ([-1, 1, -1], [1, -1])
    # twin
    w8 = qbam.hebbian_int8(BAM_A, BAM_B)
    assert w8.tolist() == [[-2, 2], [2, -2], [-2, 2]]
    t = qbam.run(w8, a=u)
    assert (t.a.tolist(), t.b.tolist(), t.outcome, t.steps, t.energy) == ([1, -1, 1], [-1, 1], qbam.FIXED_POINT, 2, -12)


# ----------------------------------------------------------------------------- properties


def _random_symmetric(rng, n, lo=-5, hi=5):
    a = rng.integers(lo, hi + 1, size=(n, n))
    w = np.triu(a, 1)
    return w + w.T


def test_energy_never_increases_under_asynchronous_updates():
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(2, 24))
        w = _random_symmetric(rng, n) if trial % 2 else qhop.hebbian_int8(rng.choice([-1, 1], size=(3, n)))
        net = HopfieldNetwork(w)
        o = rng.choice([-1, 1], size=n).astype(np.int8)
        e = net.energy(o)
        for _sweep in range(5):
            for i in rng.permutation(n):  # any order: one unit at a time
                new = o.copy()
                new[i] = sign_keep(net.net(o)[i], o[i])
                e_new = net.energy(new)
                assert e_new <= e, (trial, i)
                if new[i] != o[i]:
                    assert e_new < e  # a flip lowers E strictly
                o, e = new, e_new
        # so asynchronous iteration always ends at a fixed point, with non-increasing energy
        r = net.run(rng.choice([-1, 1], size=n), mode="async", max_iter=200)
        assert r.outcome == "fixed_point" and net.is_fixed_point(r.state)
        assert all(b <= a for a, b in zip(r.energies, r.energies[1:]))


def test_reference_and_twin_agree_on_random_networks():
    rng = np.random.default_rng(1)
    for _ in range(25):
        n = int(rng.integers(4, 40))
        m = int(rng.integers(1, 8))
        x = rng.choice([-1, 1], size=(m, n))
        w8 = qhop.hebbian_int8(x)
        net = HopfieldNetwork.from_patterns(x)
        assert np.array_equal(net.weights, w8)
        assert np.array_equal(net.weights_int8(), w8)
        probes = rng.choice([-1, 1], size=(6, n))
        for mode, qmode in (("sync", qhop.SYNC), ("async", qhop.ASYNC)):
            batch = qhop.run(w8, probes, qmode)
            for b, p in enumerate(probes):
                r = net.run(p, mode=mode)
                assert r.state.tolist() == batch.state[b].tolist()
                assert qhop.OUTCOME_NAMES[int(batch.outcome[b])] == r.outcome
                assert (int(batch.period[b]), int(batch.steps[b]), int(batch.energy[b])) == (r.period, r.steps, r.energy)
        # BAM: reference and twin
        nb = int(rng.integers(2, 12))
        y = rng.choice([-1, 1], size=(m, nb))
        bw = qbam.hebbian_int8(x, y)
        bam = BAM.from_pairs(x, y)
        for p in probes[:3]:
            r = bam.recall(a=p)
            t = qbam.run(bw, a=p)
            assert (r.a.tolist(), r.b.tolist(), r.steps, r.energy) == (t.a.tolist(), t.b.tolist(), t.steps, t.energy)
            # the energy never rises along the passes
            es = [bam.energy(a, b) for a, b in r.trajectory]
            assert all(e2 <= e1 for e1, e2 in zip(es, es[1:]))


def test_capacity_curve(tmp_path):
    res = capacity_experiment(n=100, ms=[2, 5, 14, 30], trials=40, noise=0.1, mode="async", seed=3)
    assert res.recall[0] == 1.0 and res.recall[1] >= 0.98   # load 0.02, 0.05
    assert res.recall[3] <= 0.1                             # load 0.3: far beyond 0.138 n
    assert np.all(np.diff(res.recall) <= 0.02)              # falls with the load
    assert res.stable[0] == 1.0 and res.stable[3] < 0.3
    sync = capacity_experiment(n=100, ms=[2, 30], trials=40, noise=0.1, mode="sync", seed=3)
    assert sync.recall[0] == 1.0 and sync.recall[1] <= 0.1
    png = plot_capacity(res, tmp_path / "cap" / "capacity.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_capacity_batch_equals_reference():
    """The batched experiment applies the same update rule as HopfieldNetwork.run_many."""
    from gaitedge.memory.capacity import _hebbian_batch, _settle

    rng = np.random.default_rng(5)
    x = rng.choice(np.array([-1, 1], np.int8), size=(4, 6, 40))
    probes = corrupt(x.reshape(-1, 40), noise=0.15, rng=rng).reshape(x.shape)
    for mode in ("async", "sync"):
        got = _settle(_hebbian_batch(x), probes, mode, 50)
        for t in range(4):
            net = HopfieldNetwork.from_patterns(x[t])
            want, fixed = net.run_many(probes[t], mode=mode, max_iter=50)
            if mode == "async":
                assert np.array_equal(got[t], want)
            else:  # rows in a 2-cycle may stop at either state
                assert np.array_equal(got[t][fixed], want[fixed])


# ----------------------------------------------------------------------------- errors


def test_clear_errors():
    with pytest.raises(DataError, match=r"found 0 at index \(0, 1\)"):
        HopfieldNetwork.from_patterns([[1, 0, -1]])
    with pytest.raises(DataError, match=r"has 4 units, the network has 6"):
        HopfieldNetwork.from_patterns(X6).run([1, -1, 1, -1])
    with pytest.raises(ModelError, match="symmetric"):
        HopfieldNetwork([[0, 1], [2, 0]])
    with pytest.raises(ModelError, match="zero diagonal"):
        HopfieldNetwork([[1, 1], [1, 0]])
    with pytest.raises(DataError, match="4 A patterns but 2 B patterns"):
        BAM.from_pairs(X6, BAM_B)
    with pytest.raises(DataError, match="layer A: has 2 units"):
        BAM.from_pairs(BAM_A, BAM_B).recall(a=[1, 1])
    with pytest.raises(DataError, match="permutation"):
        HopfieldNetwork(W_STABLE).sweep_async([1, 1, 1], order=[0, 0, 1])
    with pytest.raises(DataError, match="probe: values must be"):
        qhop.run(W_STABLE, [1, 2, 1])


def test_int8_overflow_is_refused(tmp_path):
    x = np.ones((127, 5), dtype=int)
    assert qhop.hebbian_int8(x).max() == 127            # 127 equal patterns still fit
    x128 = np.ones((128, 5), dtype=int)
    with pytest.raises(ModelError, match=r"do not fit int8: \|w\[0,1\]\| = 128 > 127 with 128 stored patterns"):
        qhop.hebbian_int8(x128)
    net = HopfieldNetwork.from_patterns(x128)             # the float network is fine...
    with pytest.raises(ModelError, match="128 stored patterns"):
        net.weights_int8()                                # ...but not as int8
    with pytest.raises(ModelError, match="128 stored pairs"):
        qbam.hebbian_int8(np.ones((128, 3)), np.ones((128, 2)))
    with pytest.raises(ModelError, match="outside the int8 range"):
        qhop.export_c(np.array([[0, 200], [200, 0]]), tmp_path)
    with pytest.raises(ModelError, match="outside the int8 range"):
        qhop.check_weights(np.array([[0, -128], [-128, 0]]))
    assert not list(tmp_path.iterdir())                   # nothing written
    # many different random patterns stay small: weights grow like sqrt(m)
    rng = np.random.default_rng(0)
    assert np.abs(qhop.hebbian_int8(rng.choice([-1, 1], size=(200, 64)))).max() <= 127


# ----------------------------------------------------------------------------- C == twin

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "ge_hopfield.h"
#include "ge_bam.h"

static long rd(void) { long v; if (scanf("%ld", &v) != 1) { fprintf(stderr, "bad input\n"); exit(9); } return v; }
static int8_t *rdvec(size_t n) { size_t i; int8_t *v = malloc(n ? n : 1); for (i = 0; i < n; i++) v[i] = (int8_t)rd(); return v; }
static void pvec(const int8_t *v, size_t n) { size_t i; for (i = 0; i < n; i++) printf(" %d", v[i]); }

#define CHECK(c) do { if (!(c)) { printf("FAIL line %d: %s\n", __LINE__, #c); return 1; } } while (0)

static int hop(void)
{
    long n = rd(), m, np, it, k, i;
    int8_t *w = rdvec((size_t)(n * n)), *pat, *mem = malloc(GE_HOPFIELD_MEM_BYTES(n));
    ge_hopfield_params p; ge_hopfield_state st; ge_hopfield_result r; int32_t e; uint16_t ch;
    p.n = (uint16_t)n; p.w = w;
    m = rd(); pat = rdvec((size_t)(m * n)); np = rd(); it = rd();
    printf("check %d\n", ge_hopfield_check(&p));
    if (ge_hopfield_init(&st, &p, mem, GE_HOPFIELD_MEM_BYTES(n)) != GE_OK) return 2;
    for (k = 0; k < np; k++) {
        int8_t *x = rdvec((size_t)n);
        CHECK(ge_hopfield_energy(&p, x, &e) == GE_OK);
        printf("E %ld\n", (long)e);
        CHECK(ge_hopfield_set(&st, x) == GE_OK);
        CHECK(ge_hopfield_run(&st, GE_HOPFIELD_SYNC, (uint32_t)it, &r) == GE_OK);
        printf("S %d %d %lu %ld", r.outcome, r.period, (unsigned long)r.steps, (long)r.energy); pvec(st.o, (size_t)n);
        printf(" M %ld\n", (long)ge_hopfield_match(pat, (uint16_t)m, (uint16_t)n, st.o));
        CHECK(ge_hopfield_set(&st, x) == GE_OK);
        CHECK(ge_hopfield_run(&st, GE_HOPFIELD_ASYNC, (uint32_t)it, &r) == GE_OK);
        printf("A %d %d %lu %ld", r.outcome, r.period, (unsigned long)r.steps, (long)r.energy); pvec(st.o, (size_t)n);
        printf(" M %ld\n", (long)ge_hopfield_match(pat, (uint16_t)m, (uint16_t)n, st.o));
        CHECK(ge_hopfield_set(&st, x) == GE_OK);
        for (i = 0; i < 3; i++) { CHECK(ge_hopfield_sync_step(&st, &ch) == GE_OK); printf("s %u", ch); pvec(st.o, (size_t)n); printf("\n"); }
        CHECK(ge_hopfield_set(&st, x) == GE_OK);
        for (i = 0; i < 3; i++) { CHECK(ge_hopfield_async_sweep(&st, &ch) == GE_OK); printf("a %u", ch); pvec(st.o, (size_t)n); printf("\n"); }
        free(x);
    }
    free(w); free(pat); free(mem);
    return 0;
}

static int bam(void)
{
    long na = rd(), nb = rd(), np, it, k;
    int8_t *w = rdvec((size_t)(na * nb)), *mem = malloc(GE_BAM_MEM_BYTES(na, nb));
    ge_bam_params p; ge_bam_state st; ge_bam_result r; uint16_t c1, c2;
    p.n_a = (uint16_t)na; p.n_b = (uint16_t)nb; p.w = w;
    np = rd(); it = rd();
    printf("check %d\n", ge_bam_check(&p));
    if (ge_bam_init(&st, &p, mem, GE_BAM_MEM_BYTES(na, nb)) != GE_OK) return 2;
    for (k = 0; k < np; k++) {
        long from = rd();
        int8_t *x = rdvec((size_t)(from ? nb : na)), *ones = malloc((size_t)(na + nb)), *y = NULL;
        long i;
        for (i = 0; i < na + nb; i++) ones[i] = 1;
        CHECK(ge_bam_set(&st, ones, ones + na) == GE_OK);
        CHECK(ge_bam_set(&st, from ? NULL : x, from ? x : NULL) == GE_OK);
        CHECK(ge_bam_run(&st, from ? GE_BAM_FROM_B : GE_BAM_FROM_A, (uint32_t)it, &r) == GE_OK);
        printf("R %d %lu %ld", r.outcome, (unsigned long)r.steps, (long)r.energy);
        pvec(st.a, (size_t)na); printf(" |"); pvec(st.b, (size_t)nb); printf("\n");
        CHECK(ge_bam_set(&st, ones, ones + na) == GE_OK);
        CHECK(ge_bam_set(&st, from ? NULL : x, from ? x : NULL) == GE_OK);
        CHECK(ge_bam_forward(&st, &c1) == GE_OK);
        CHECK(ge_bam_backward(&st, &c2) == GE_OK);
        printf("fb %u %u", c1, c2); pvec(st.a, (size_t)na); printf(" |"); pvec(st.b, (size_t)nb); printf("\n");
        free(x); free(ones); free(y);
    }
    free(w); free(mem);
    return 0;
}

static int statuses(void)
{
    static const int8_t w_ok[4] = {0, 3, 3, 0}, w_asym[4] = {0, 3, 2, 0}, w_diag[4] = {1, 3, 3, 0};
    static const int8_t w_min[4] = {0, -128, -128, 0};
    int8_t mem[6], small[5], x_bad[2] = {1, 0}, x_ok[2] = {1, -1};
    ge_hopfield_params p = {2, w_ok}, pa = {2, w_asym}, pd = {2, w_diag}, pm = {2, w_min}, p0 = {0, w_ok}, pn = {2, NULL};
    ge_hopfield_params pbig = {GE_HOPFIELD_MAX_N + 1u, w_ok};
    ge_hopfield_state st = {0, 0, 0, 0, 0}, st0 = {0, 0, 0, 0, 0};
    ge_hopfield_result r;
    ge_bam_params bp = {2, 2, w_ok}, bm = {2, 2, w_min}, b0 = {0, 2, w_ok};
    ge_bam_state bs = {0, 0, 0}, bs0 = {0, 0, 0};
    ge_bam_result br;
    int32_t e;
    uint16_t ch;
    CHECK(ge_hopfield_check(NULL) == GE_ERR_NULL);
    CHECK(ge_hopfield_check(&pn) == GE_ERR_NULL);
    CHECK(ge_hopfield_check(&p) == GE_OK);
    CHECK(ge_hopfield_check(&pa) == GE_ERR_MODEL);
    CHECK(ge_hopfield_check(&pd) == GE_ERR_MODEL);
    CHECK(ge_hopfield_check(&pm) == GE_ERR_MODEL);
    CHECK(ge_hopfield_check(&p0) == GE_ERR_MODEL);
    CHECK(ge_hopfield_check(&pbig) == GE_ERR_MODEL);
    CHECK(ge_hopfield_init(&st, &p, small, sizeof small) == GE_ERR_BUFFER);
    CHECK(ge_hopfield_init(&st, &pa, mem, sizeof mem) == GE_ERR_MODEL);
    CHECK(ge_hopfield_init(NULL, &p, mem, sizeof mem) == GE_ERR_NULL);
    CHECK(ge_hopfield_sync_step(&st0, &ch) == GE_ERR_STATE);
    CHECK(ge_hopfield_async_sweep(NULL, &ch) == GE_ERR_NULL);
    CHECK(ge_hopfield_run(&st0, GE_HOPFIELD_SYNC, 5, &r) == GE_ERR_STATE);
    CHECK(ge_hopfield_init(&st, &p, mem, sizeof mem) == GE_OK);
    CHECK(st.o[0] == 1 && st.o[1] == 1);
    CHECK(ge_hopfield_set(&st, x_bad) == GE_ERR_STATE);
    CHECK(ge_hopfield_set(&st, NULL) == GE_ERR_NULL);
    CHECK(ge_hopfield_set(&st, x_ok) == GE_OK);
    CHECK(ge_hopfield_run(&st, (ge_hopfield_mode)7, 5, &r) == GE_ERR_UNSUPPORTED);
    CHECK(ge_hopfield_run(&st, GE_HOPFIELD_SYNC, 5, NULL) == GE_ERR_NULL);
    CHECK(ge_hopfield_run(&st, GE_HOPFIELD_SYNC, 0, &r) == GE_OK);
    CHECK(r.outcome == GE_HOPFIELD_MAX_ITER && r.period == 0 && r.steps == 0 && r.energy == 3);
    CHECK(ge_hopfield_run(&st, GE_HOPFIELD_SYNC, 1, &r) == GE_OK);   /* [1,-1] -> [-1,1]: not yet a cycle */
    CHECK(r.outcome == GE_HOPFIELD_MAX_ITER && r.steps == 1 && st.o[0] == -1);
    CHECK(ge_hopfield_run(&st, GE_HOPFIELD_SYNC, 5, &r) == GE_OK);   /* back to [1,-1]: the history shows a 2-cycle */
    CHECK(r.outcome == GE_HOPFIELD_CYCLE && r.period == 2 && r.steps == 1);
    CHECK(ge_hopfield_energy(&p, NULL, &e) == GE_ERR_NULL);
    CHECK(ge_hopfield_match(NULL, 1, 2, x_ok) == -1);
    CHECK(ge_bam_check(NULL) == GE_ERR_NULL);
    CHECK(ge_bam_check(&bm) == GE_ERR_MODEL);
    CHECK(ge_bam_check(&b0) == GE_ERR_MODEL);
    CHECK(ge_bam_init(&bs, &bp, small, 3) == GE_ERR_BUFFER);
    CHECK(ge_bam_forward(&bs0, &ch) == GE_ERR_STATE);
    CHECK(ge_bam_init(&bs, &bp, mem, 4) == GE_OK);
    CHECK(ge_bam_set(&bs, x_ok, x_bad) == GE_ERR_STATE && bs.a[1] == 1); /* nothing changed */
    CHECK(ge_bam_run(&bs, (ge_bam_direction)3, 5, &br) == GE_ERR_UNSUPPORTED);
    CHECK(ge_bam_run(&bs, GE_BAM_FROM_A, 0, &br) == GE_OK && br.outcome == GE_BAM_MAX_ITER && br.steps == 0);
    CHECK(ge_bam_energy(&bp, x_ok, x_ok, &e) == GE_OK && e == 6); /* -( [1,-1] W [1,-1] ) with W = [[0,3],[3,0]] */
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return 8;
    if (argv[1][0] == 'h') return hop();
    if (argv[1][0] == 'b') return bam();
    return statuses();
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    if GCC is None:
        pytest.skip("no host C compiler (gcc)")
    d = tmp_path_factory.mktemp("memory-c")
    (d / "harness.c").write_text(HARNESS)
    exe = d / "harness"
    flags = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic"]
    if sanitizers_work():
        flags += SANITIZE
    srcs = [d / "harness.c", RUNTIME / "src" / "ge_hopfield.c", RUNTIME / "src" / "ge_bam.c"]
    res = subprocess.run([GCC, *flags, f"-I{RUNTIME / 'include'}", *map(str, srcs), "-o", str(exe)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return exe


def _vec(v) -> str:
    return "".join(f" {int(x)}" for x in np.ravel(v))


def c_hopfield(exe: Path, w, patterns, probes, max_iter: int = 100) -> str:
    w = np.asarray(w)
    patterns = np.asarray(patterns).reshape(-1, w.shape[0])
    text = (f"{w.shape[0]}{_vec(w)}\n{len(patterns)}{_vec(patterns)}\n{len(probes)} {max_iter}\n"
            + "\n".join(_vec(p) for p in probes) + "\n")
    r = subprocess.run([str(exe), "hop"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def twin_hopfield(w, patterns, probes, max_iter: int = 100) -> str:
    out = ["check 0"]
    for x in probes:
        out.append(f"E {qhop.energy(w, x)}")
        for tag, mode in (("S", qhop.SYNC), ("A", qhop.ASYNC)):
            r = qhop.run(w, x, mode, max_iter)
            out.append(f"{tag} {r.outcome} {r.period} {r.steps} {r.energy}{_vec(r.state)} M {qhop.match(patterns, r.state)}"
                       if len(patterns) else f"{tag} {r.outcome} {r.period} {r.steps} {r.energy}{_vec(r.state)} M -1")
        for tag, fn in (("s", "sync_step"), ("a", "async_sweep")):
            st = qhop.State(w)
            st.set(x)
            for _ in range(3):
                ch = getattr(st, fn)()
                out.append(f"{tag} {int(ch)}{_vec(st.o)}")
    return "\n".join(out) + "\n"


def c_bam(exe: Path, w, probes, max_iter: int = 100) -> str:
    w = np.asarray(w)
    text = f"{w.shape[0]} {w.shape[1]}{_vec(w)}\n{len(probes)} {max_iter}\n"
    text += "\n".join(f"{layer}{_vec(v)}" for layer, v in probes) + "\n"
    r = subprocess.run([str(exe), "bam"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def twin_bam(w, probes, max_iter: int = 100) -> str:
    out = ["check 0"]
    for layer, v in probes:
        r = qbam.run(w, a=None if layer else v, b=v if layer else None, max_iter=max_iter)
        out.append(f"R {r.outcome} {r.steps} {r.energy}{_vec(r.a)} |{_vec(r.b)}")
        st = qbam.State(w)
        st.set(a=None if layer else v, b=v if layer else None)
        c1, c2 = st.forward(), st.backward()
        out.append(f"fb {int(c1)} {int(c2)}{_vec(st.a)} |{_vec(st.b)}")
    return "\n".join(out) + "\n"


@needs_gcc
def test_c_worked_examples(harness):
    for w, probes in ((W_CYCLE, [[1, -1, 1, -1]]), (W_STABLE, [[1, -1, 1]])):
        assert c_hopfield(harness, w, [], probes) == twin_hopfield(w, [], probes)
    c = c_hopfield(harness, W_CYCLE, [], [[1, -1, 1, -1]])
    assert "S 2 2 2 2 1 -1 1 -1 M -1" in c               # 2-cycle after 2 steps, back at o(0)
    assert "s 4 -1 1 -1 1\ns 4 1 -1 1 -1" in c           # o(1), o(2) = o(0)
    w8 = qhop.hebbian_int8(X6)
    c = c_hopfield(harness, w8, X6, [PROBE6])
    assert c == twin_hopfield(w8, X6, [PROBE6])
    assert "E -8\nS 1 1 2 -24 1 -1 1 -1 1 -1 M 0\nA 1 1 2 -24 1 -1 1 -1 1 -1 M 0\n" in c
    bw = qbam.hebbian_int8(BAM_A, BAM_B)
    c = c_bam(harness, bw, [(0, [1, -1, 1]), (1, [1, -1])])
    assert c == twin_bam(bw, [(0, [1, -1, 1]), (1, [1, -1])])
    assert c.splitlines()[1] == "R 1 2 -12 1 -1 1 | -1 1"


@needs_gcc
def test_c_equals_twin_on_random_patterns(harness):
    rng = np.random.default_rng(7)
    cases = [(int(rng.integers(2, 70)), int(rng.integers(1, 12))) for _ in range(14)] + [(300, 40), (16, 127)]
    for n, m in cases:
        x = rng.choice([-1, 1], size=(m, n))
        w = qhop.hebbian_int8(x)
        noisy = np.where(rng.random((m, n)) < 0.15, -x, x)
        probes = np.concatenate([x[:4], noisy[:6], rng.choice([-1, 1], size=(4, n))])
        assert c_hopfield(harness, w, x, probes, max_iter=60) == twin_hopfield(w, x, probes, max_iter=60), (n, m)
        nb = int(rng.integers(1, 40))
        y = rng.choice([-1, 1], size=(m, nb))
        bw = qbam.hebbian_int8(x, y)
        bprobes = [(0, p) for p in probes[:5]] + [(1, np.where(rng.random(nb) < 0.2, -v, v)) for v in y[:4]]
        assert c_bam(harness, bw, bprobes) == twin_bam(bw, bprobes), (n, m, nb)
    # general symmetric int8 matrices (not Hebbian), including cycles and max_iter stops
    for _ in range(8):
        n = int(rng.integers(2, 50))
        w = _random_symmetric(rng, n, -127, 127)
        probes = rng.choice([-1, 1], size=(6, n))
        for it in (1, 3, 100):
            assert c_hopfield(harness, w, [], probes, it) == twin_hopfield(w, [], probes, it)
        bw = rng.integers(-127, 128, size=(n, int(rng.integers(1, 30))))
        bprobes = [(0, p) for p in probes[:3]]
        assert c_bam(harness, bw, bprobes, 2) == twin_bam(bw, bprobes, 2)


@needs_gcc
def test_c_status_codes(harness):
    r = subprocess.run([str(harness), "status"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


@needs_gcc
def test_exported_data_compiles_and_recalls(tmp_path):
    """export_c output + ge_hopfield.c / ge_bam.c: recall from the generated arrays equals the twin."""
    rng = np.random.default_rng(11)
    x = rng.choice([-1, 1], size=(4, 40))
    w = qhop.hebbian_int8(x)
    paths = qhop.export_c(w, tmp_path, patterns=x, labels=["walk", 'say "hi"', "stairs", "run\\fast"])
    assert [p.name for p in paths] == ["hopfield_data.h", "hopfield_data.c"]
    bpaths = qbam.export_c(qbam.hebbian_int8(x, x[:, :8]), tmp_path, a_patterns=x, b_patterns=x[:, :8],
                           labels=list("abcd"))
    assert [p.name for p in bpaths] == ["bam_data.h", "bam_data.c"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    probe = np.where(rng.random(40) < 0.1, -x[2], x[2])
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdio.h>\n#include "hopfield_data.h"\n#include "bam_data.h"\n'
        "int main(void) {\n"
        f"  static const int8_t probe[40] = {{{', '.join(str(int(v)) for v in probe)}}};\n"
        "  int8_t mem[GE_HOPFIELD_DATA_MEM_BYTES], bmem[GE_BAM_DATA_MEM_BYTES]; int32_t k;\n"
        "  ge_hopfield_state st; ge_hopfield_result r; ge_bam_state bs; ge_bam_result br;\n"
        "  if (ge_hopfield_init(&st, &ge_hopfield_data, mem, sizeof mem) != GE_OK) return 2;\n"
        "  ge_hopfield_set(&st, probe); ge_hopfield_run(&st, GE_HOPFIELD_ASYNC, 50, &r);\n"
        "  k = ge_hopfield_match(ge_hopfield_data_patterns, GE_HOPFIELD_DATA_M, GE_HOPFIELD_DATA_N, st.o);\n"
        '  printf("%d %lu %ld %ld %s\\n", r.outcome, (unsigned long)r.steps, (long)r.energy, (long)k,'
        ' k >= 0 ? ge_hopfield_data_labels[k] : "-");\n'
        "  if (ge_bam_init(&bs, &ge_bam_data, bmem, sizeof bmem) != GE_OK) return 3;\n"
        "  ge_bam_set(&bs, probe, NULL); ge_bam_run(&bs, GE_BAM_FROM_A, 50, &br);\n"
        '  printf("%d %lu %ld %s\\n", br.outcome, (unsigned long)br.steps, (long)br.energy, ge_bam_data_labels[0]);\n'
        "  return 0;\n}\n")
    exe = tmp_path / "main"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"] + (SANITIZE if sanitizers_work() else [])
    srcs = [main, tmp_path / "hopfield_data.c", tmp_path / "bam_data.c", RUNTIME / "src" / "ge_hopfield.c",
            RUNTIME / "src" / "ge_bam.c"]
    res = subprocess.run([GCC, *flags, f"-I{RUNTIME / 'include'}", f"-I{tmp_path}", *map(str, srcs), "-o", str(exe)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    t = qhop.run(w, probe, qhop.ASYNC, 50)
    assert t.outcome == qhop.FIXED_POINT and qhop.match(x, t.state) == 2
    assert out[0] == f"{t.outcome} {t.steps} {t.energy} 2 stairs"
    tb = qbam.run(qbam.hebbian_int8(x, x[:, :8]), a=probe, max_iter=50)
    assert out[1] == f"{tb.outcome} {tb.steps} {tb.energy} a"


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
def test_cortex_m4_build(tmp_path):
    for name in ("ge_hopfield", "ge_bam"):
        res = subprocess.run([ARM_GCC, "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-O2", "-Wall", "-Wextra", "-Werror",
                              "-pedantic", f"-I{RUNTIME / 'include'}", "-c", str(RUNTIME / "src" / f"{name}.c"),
                              "-o", str(tmp_path / f"{name}.o")], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert (tmp_path / f"{name}.o").stat().st_size > 0


# ----------------------------------------------------------------------------- stride templates


def _gait_recording(subject: str, period: int, style: int, n_strides: int = 12, seed: int = 0,
                    source: str = "") -> Recording:
    """A two-channel recording of n_strides strides of `period` samples, a heel strike at each
    start.  Each channel's stride is a sum of 6 harmonics whose weights are drawn from `style`
    (a subject's gait), plus noise drawn from `seed`."""
    rng = np.random.default_rng(seed)
    t = np.arange(period * n_strides + 5)
    ph = 2 * np.pi * (t % period) / period
    coef = np.random.default_rng(style).normal(size=(2, 6, 2))
    k = np.arange(1, 7)[:, None]
    sig = np.stack([(coef[c, :, 0, None] * np.sin(k * ph) + coef[c, :, 1, None] * np.cos(k * ph)).sum(0)
                    for c in range(2)], 1)
    sig += 0.1 * rng.normal(size=sig.shape)
    hs = np.arange(0, len(t), period)
    return Recording(sig.astype(np.float32), ["acc_x", "gyr_x"], ["m/s^2", "rad/s"], 100.0,
                     events={"heel_strike": hs, "toe_off": hs + period // 2}, subject=subject,
                     location="left_foot", source=source or f"{subject}-1.txt")


def test_stride_segmentation_and_resampling():
    rec = _gait_recording("a", 100, style=1)
    hs = rec.events["heel_strike"].copy()
    hs = np.sort(np.append(hs, [hs[5] + 50]))       # a spurious extra heel strike: two half strides
    rec.events["heel_strike"] = hs
    spans = segment_strides(rec)
    assert (500, 550) not in spans and (550, 600) not in spans and (400, 500) in spans
    assert len(spans) == 11 and all(b - a == 100 for a, b in spans)
    seg = np.stack([np.arange(11.0), np.arange(11.0) ** 2], 1)
    r = resample_stride(seg, 6)
    assert np.allclose(r[:, 0], [0, 2, 4, 6, 8, 10]) and np.allclose(r[[0, -1], 1], [0, 100])
    st = extract_strides(rec, ["gyr_x", "acc_x"], bins=16)
    assert st[0].signals.shape == (16, 2) and st[0].duration_s == 1.0
    no_events = Recording(rec.signals, rec.channels, rec.units, 100.0)
    with pytest.raises(DataError, match="no heel-strike events"):
        segment_strides(no_events)
    with pytest.raises(DataError, match="missing channel"):
        extract_strides(rec, ["gyr_z"])


def test_corrupt_noise_and_partial():
    bits = np.ones((3, 40), np.int8)
    noisy = corrupt(bits, noise=0.1, rng=0)
    assert ((noisy == -1).sum(1) == 4).all()
    part = corrupt(bits, partial=0.25, bins=10, rng=0)
    assert (part[:, :28] == 1).all() and set(np.unique(part[:, 28:])) == {-1, 1}  # bins 7-9 of 10
    with pytest.raises(DataError, match="fractions"):
        corrupt(bits, noise=1.5)


def test_template_memory_on_crafted_strides():
    """Three 'subjects' with different stride shapes: held-out strides recall their own template."""
    recs = []
    for k, period in enumerate((100, 110, 95)):
        for trial in (1, 2):
            recs.append(_gait_recording(f"s{k}", period, style=4 + k, seed=10 * k + trial, source=f"s{k}-{trial}.txt"))
    keep, held = holdout_last(recs)
    assert {r.source for r in held} == {"s0-2.txt", "s1-2.txt", "s2-2.txt"}
    mem = GaitTemplateMemory.fit(keep, channels=["acc_x", "gyr_x"], bins=24)
    assert mem.labels == ["s0", "s1", "s2"] and mem.templates.shape == (3, 48)
    score = mem.evaluate(held)
    assert score.recalled == 1.0 and score.spurious == 0.0 and score.chance == pytest.approx(1 / 3)
    (stride, tr), *_ = mem.recall(held[1])
    assert tr.label == "s1" and tr.kind == "stored" and tr.outcome == "fixed_point" and tr.overlap == 1.0
    # a spurious state is reported as such: the majority mixture of the three templates
    mix = np.where(mem.templates.astype(int).sum(0) >= 0, 1, -1)
    if mem.network.is_fixed_point(mix) and mem.network.match(mix)[0] is None:
        assert mem.recall_bits(mix).kind == "spurious"
    rev = mem.recall_bits(-mem.templates[0])
    assert rev.kind == "reversed" and rev.label is None and rev.negation_of == "s0"
    with pytest.raises(DataError, match="has no template"):
        mem.evaluate([_gait_recording("zz", 100, style=9)])


@pytest.fixture(scope="module")
def ipol_left(ipol_root):
    from gaitedge.data.ipol import load_ipol

    return load_ipol(ipol_root, feet=("left",))


def test_ipol_subject_memory(ipol_left):
    """Templates of three subjects at a time (subjects 1-3, 4-6, ..., 13-15), each subject's last
    trial held out: its clean strides settle on the right subject's template far more often than
    chance (1/3).  Measured: 131 of 229 strides (57 %), spurious 37 %."""
    probes = recalled = 0
    for g in range(5):
        subs = {str(3 * g + i) for i in (1, 2, 3)}
        keep, held = holdout_last([r for r in ipol_left if r.subject in subs])
        mem = GaitTemplateMemory.fit(keep)
        assert mem.n == 192 and len(mem.labels) == 3
        s = mem.evaluate(held)
        probes += s.probes
        recalled += s.recalled * s.probes
        assert s.nearest_probe > s.chance
    assert probes > 200
    assert recalled / probes >= 0.47, recalled / probes


def test_ipol_foot_memory(ipol_left, ipol_root):
    """Left-foot vs right-foot templates from subjects 1-11 recall the foot of subjects 12-15's
    strides (chance 1/2); measured 90.6 % clean, about the same with 20 % of the bits flipped."""
    from gaitedge.data.ipol import load_ipol

    right = load_ipol(ipol_root, feet=("right",))
    recs = ipol_left + right
    mem = GaitTemplateMemory.fit([r for r in recs if int(r.subject) <= 11], key="location")
    test = [r for r in recs if int(r.subject) > 11]
    clean = mem.evaluate(test)
    assert clean.probes > 600 and clean.recalled >= 0.82, clean
    noisy = mem.evaluate([r for r in test if r.subject == "12"], noise=0.2, rng=1)
    assert noisy.recalled >= 0.8, noisy


def test_ipol_template_memory_exports_int8(ipol_left, tmp_path):
    mem = GaitTemplateMemory.fit([r for r in ipol_left if r.subject in ("1", "2", "3")])
    paths = mem.export_c(tmp_path)
    text = paths[1].read_text()
    assert "int8_t ge_hopfield_data_w[36864]" in text and '{"1", "2", "3"}' in text
    # the int8 twin settles exactly where the reference network does
    strides = mem.strides([r for r in ipol_left if r.subject == "2"][-1])
    bits = mem.encode(strides)
    w8 = mem.network.weights_int8()
    for b in bits[:5]:
        ref = mem.network.run(b, mode="async")
        t = qhop.run(w8, b, qhop.ASYNC)
        assert t.state.tolist() == ref.state.tolist() and t.energy == ref.energy and t.steps == ref.steps


# ----------------------------------------------------------------------------- command line


def test_cli_capacity_and_errors(tmp_path, capsys):
    assert cli_main(["memory", "capacity", "--n", "40", "--trials", "20", "--out", str(tmp_path / "cap")]) == 0
    out = capsys.readouterr().out
    assert "recalled" in out and (tmp_path / "cap" / "capacity.png").is_file()
    rows = (tmp_path / "cap" / "capacity.csv").read_text().splitlines()
    assert rows[0] == "m,load,recall,stable,bit_error" and len(rows) > 10
    assert cli_main(["memory", "capacity", "--noise", "0.7", "--out", str(tmp_path / "x")]) == 2
    assert "gaitedge: error: noise is the fraction of flipped probe bits" in capsys.readouterr().err


def test_cli_recall_synthetic(capsys):
    assert cli_main(["memory", "recall", "--data", "synthetic?n=3&trials=2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 templates by subject (syn1, syn2, syn3) of 192 bits")
    assert "recalled their own template" in out
    assert cli_main(["memory", "recall", "--data", "synthetic?n=3&trials=2", "--store-subjects", "syn9"]) == 2
    assert "gaitedge: error: --store-subjects: subject(s) syn9 not in" in capsys.readouterr().err
    assert cli_main(["memory", "recall", "--data", "synthetic?n=3&trials=2", "--channels", "acc_x,nope"]) == 2
    assert "missing channel(s) nope" in capsys.readouterr().err
