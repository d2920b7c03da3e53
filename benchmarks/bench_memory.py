"""Associative memories: Hopfield capacity, IPOL gait-template recall, Cortex-M4 instructions.

* **Capacity** (``gaitedge.memory.capacity``): n units, ``--trials`` networks per load,
  every stored pattern probed with 10 % of its bits flipped; recall = the final state
  equals the pattern.  Asynchronous sweeps and synchronous steps.  The plot goes to
  ``benchmarks/figures/memory_capacity.png``.
* **IPOL gait templates** (``gaitedge.memory.templates``, left-foot IMU, 6 channels x
  32 phase bins = 192 bits): one template per subject for three subjects at a time
  (1-3, 4-6, ..., 13-15), each subject's last trial held out as probes; clean, noisy
  (bits flipped) and partial (the end of the stride unseen) probes.  The same with
  all 15 subjects in one memory, a BAM that maps each template to a 16-bit label code,
  and a two-template left-foot / right-foot memory (subjects 1-11 store, 12-15 probe).
* **Cortex-M4** (QEMU ``mps2-an386``, ``arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb``):
  guest instructions of ``ge_hopfield_sync_step``, ``ge_hopfield_async_sweep``,
  ``ge_hopfield_energy``, a whole ``ge_hopfield_run`` and the BAM passes, counted
  exactly by the TCG plugin of ``gaitedge/csrc/bench`` (method in
  ../shared/notes/EMULATOR.md), marker overhead subtracted.  The firmware prints its
  recall result, which must equal the Python integer twin.

Usage::

    python benchmarks/bench_memory.py [--n 100] [--trials 200] [--no-mcu]

writes the section ``## Associative memories (Hopfield, BAM)`` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchlib import cpu_model, load_avg, tool_version, write_section

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Associative memories (Hopfield, BAM)"
FIGURE = ROOT / "benchmarks" / "figures" / "memory_capacity.png"
TRIPLES = [[str(3 * g + i) for i in (1, 2, 3)] for g in range(5)]
PROBE_KINDS = [("clean", 0.0, 0.0), ("10 % bits flipped", 0.1, 0.0), ("20 % bits flipped", 0.2, 0.0),
               ("last 25 % of the stride unseen", 0.0, 0.25), ("last 50 % unseen", 0.0, 0.5)]


def capacity(n: int, trials: int) -> dict:
    from gaitedge.memory.capacity import capacity_experiment, plot_capacity

    out = {}
    for mode in ("async", "sync"):
        t0, c0 = time.time(), time.process_time()
        out[mode] = capacity_experiment(n=n, trials=trials, noise=0.1, mode=mode, seed=0)
        out[mode + "_s"] = (time.time() - t0, time.process_time() - c0)
    plot_capacity(out["async"], FIGURE)
    return out


def _pool(scores) -> dict:
    n = sum(s.probes for s in scores)
    agg = {k: sum(getattr(s, k) * s.probes for s in scores) / n
           for k in ("recalled", "wrong", "spurious", "nearest_after", "nearest_probe")}
    agg["probes"] = n
    agg["chance"] = float(np.mean([s.chance for s in scores]))
    return agg


def bam_label_recall(mem, held, code_bits: int = 16) -> tuple[float, float, int]:
    """A BAM storing (template, label code) pairs: fraction of probe strides whose recalled
    code is their own label's, and fraction ending on a code that is no label's."""
    from scipy.linalg import hadamard

    from gaitedge.memory import BAM
    from gaitedge.memory.templates import key_function

    codes = hadamard(code_bits)[1 : 1 + len(mem.labels)]
    bam = BAM.from_pairs(mem.templates, codes)
    fn = key_function(mem.key)
    right = none = total = 0
    for r in held:
        strides = mem.strides(r)
        for b in (mem.encode(strides) if strides else []):
            res = bam.recall(a=b)
            hit = np.flatnonzero((codes == res.b).all(1))
            total += 1
            none += hit.size == 0
            right += hit.size > 0 and mem.labels[hit[0]] == fn(r)
    return right / total, none / total, total


def ipol_recall() -> dict | None:
    from gaitedge.data.spec import default_ipol_root
    from gaitedge.data.ipol import load_ipol
    from gaitedge.memory import GaitTemplateMemory, holdout_last

    try:
        root = default_ipol_root()
        left = load_ipol(root, feet=("left",))
    except Exception as exc:  # no dataset here
        print(f"IPOL data not found ({exc}); skipping the template benchmark")
        return None
    res: dict = {"triples": {}, "per_triple": []}
    t0 = time.process_time()
    mems = []
    for subs in TRIPLES:
        keep, held = holdout_last([r for r in left if r.subject in subs])
        mems.append((GaitTemplateMemory.fit(keep), held))
    for name, noise, partial in PROBE_KINDS:
        scores = [m.evaluate(h, noise=noise, partial=partial, rng=1) for m, h in mems]
        res["triples"][name] = _pool(scores)
        if name == "clean":
            res["per_triple"] = [(subs, s.recalled, s.spurious, s.probes) for subs, s in zip(TRIPLES, scores)]
    sync = []
    for m, h in mems:
        m.mode = "sync"
        sync.append(m.evaluate(h))
        m.mode = "async"
    res["triples_sync"] = _pool(sync)
    bam = [bam_label_recall(m, h) for m, h in mems]
    tot = sum(b[2] for b in bam)
    res["bam"] = (sum(b[0] * b[2] for b in bam) / tot, sum(b[1] * b[2] for b in bam) / tot, tot)
    keep, held = holdout_last(left)
    res["all15"] = _pool([GaitTemplateMemory.fit(keep).evaluate(held)])
    right = load_ipol(root, feet=("right",))
    both = left + right
    foot = GaitTemplateMemory.fit([r for r in both if int(r.subject) <= 11], key="location")
    test = [r for r in both if int(r.subject) > 11]
    res["foot"] = {name: _pool([foot.evaluate(test, noise=nz, partial=pa, rng=1)])
                   for name, nz, pa in (PROBE_KINDS[0], PROBE_KINDS[2], PROBE_KINDS[4])}
    res["cpu_s"] = time.process_time() - t0
    res["mem_ipol"] = mems[0]
    return res


# ----------------------------------------------------------------------------- Cortex-M4

BENCH_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "ge_hopfield.h"
#include "ge_bam.h"
#include "hopfield_data.h"
#include "bam_data.h"
#include "bench_probe.h"

__attribute__((noinline)) void ge_bench_begin(void) { __asm__ volatile(""); }
__attribute__((noinline)) void ge_bench_end(void) { __asm__ volatile(""); }

static int8_t mem[GE_HOPFIELD_DATA_MEM_BYTES];
static int8_t bmem[GE_BAM_DATA_MEM_BYTES];

int main(void)
{
    ge_hopfield_state st;
    ge_hopfield_result r;
    ge_bam_state bs;
    ge_bam_result br;
    int32_t e = 0;
    uint16_t ch = 0;
    unsigned i;
    int t;
    if (ge_hopfield_init(&st, &ge_hopfield_data, mem, sizeof mem) != GE_OK) exit(2);
    if (ge_bam_init(&bs, &ge_bam_data, bmem, sizeof bmem) != GE_OK) exit(3);
    for (t = 0; t < 3; t++) { ge_bench_begin(); ge_bench_end(); }
    ge_hopfield_set(&st, bench_probe);
    for (t = 0; t < 3; t++) { ge_bench_begin(); ge_hopfield_sync_step(&st, &ch); ge_bench_end(); }
    ge_hopfield_set(&st, bench_probe);
    for (t = 0; t < 3; t++) { ge_bench_begin(); ge_hopfield_async_sweep(&st, &ch); ge_bench_end(); }
    ge_bench_begin(); ge_hopfield_energy(&ge_hopfield_data, st.o, &e); ge_bench_end();
    ge_hopfield_set(&st, bench_probe);
    ge_bench_begin(); ge_hopfield_run(&st, GE_HOPFIELD_ASYNC, 100, &r); ge_bench_end();
    printf("run %d %d %lu %ld %ld", r.outcome, r.period, (unsigned long)r.steps, (long)r.energy,
           (long)ge_hopfield_match(ge_hopfield_data_patterns, GE_HOPFIELD_DATA_M, GE_HOPFIELD_DATA_N, st.o));
    for (i = 0; i < GE_HOPFIELD_DATA_N; i++) printf(" %d", st.o[i]);
    printf("\n");
    ge_bam_set(&bs, bench_probe, NULL);
    ge_bench_begin(); ge_bam_forward(&bs, &ch); ge_bench_end();
    ge_bench_begin(); ge_bam_backward(&bs, &ch); ge_bench_end();
    ge_bam_set(&bs, bench_probe, NULL);
    ge_bench_begin(); ge_bam_run(&bs, GE_BAM_FROM_A, 100, &br); ge_bench_end();
    printf("bam %d %lu %ld", br.outcome, (unsigned long)br.steps, (long)br.energy);
    for (i = 0; i < GE_BAM_DATA_N_B; i++) printf(" %d", bs.b[i]);
    printf("\ndone %ld\n", (long)e);
    exit(0);
}
"""
ICOUNT_NAMES = ["sync_step"] * 3 + ["async_sweep"] * 3 + ["energy", "run_async", "bam_forward", "bam_backward",
                                                            "bam_run"]


def _load_mcu():
    from gaitedge.firmware import mcu

    return mcu


def measure_mcu(name: str, patterns: np.ndarray, codes: np.ndarray, probe: np.ndarray, work: Path, mcu) -> dict:
    from gaitedge.quant import bam as qbam
    from gaitedge.quant import hopfield as qhop

    work.mkdir(parents=True)
    w = qhop.hebbian_int8(patterns)
    qhop.export_c(w, work, patterns=patterns)
    bw = qbam.hebbian_int8(patterns, codes)
    qbam.export_c(bw, work, a_patterns=patterns, b_patterns=codes)
    (work / "bench_probe.h").write_text(
        "#include <stdint.h>\nstatic const int8_t bench_probe[%d] = {%s};\n"
        % (len(probe), ", ".join(str(int(v)) for v in probe)))
    (work / "bench_memory.c").write_text(BENCH_MAIN)
    rt = mcu.runtime_root()
    fw = mcu.build_arm_program([(rt / "src" / "ge_hopfield.c", mcu.WARN), (rt / "src" / "ge_bam.c", mcu.WARN),
                                (work / "hopfield_data.c", mcu.WARN), (work / "bam_data.c", mcu.WARN),
                                (work / "bench_memory.c", ["-std=c99", "-Wall", "-Wextra", "-Werror"])],
                               work, [rt / "include"])
    elf = fw.elf
    run = mcu.run_qemu(elf, mcu.build_plugin(work), timeout=300)
    if run.rc != 0:
        raise SystemExit(f"{name}: firmware failed (rc {run.rc})\n{run.stdout[-2000:]}")
    ic = np.array(run.icounts)
    over = int(ic[:3].min())
    counts = dict(zip(ICOUNT_NAMES, (ic[3:] - over).tolist()))
    counts["sync_step"] = int(np.median(ic[3:6] - over))
    counts["async_sweep"] = int(np.median(ic[6:9] - over))
    lines = {ln.split()[0]: list(map(int, ln.split()[1:])) for ln in run.stdout.splitlines() if ln.strip()}
    t = qhop.run(w, probe, qhop.ASYNC, 100)
    want = [t.outcome, t.period, t.steps, t.energy, qhop.match(patterns, t.state), *t.state.tolist()]
    tb = qbam.run(bw, a=probe, max_iter=100)
    exact = lines["run"] == want and lines["bam"] == [tb.outcome, tb.steps, tb.energy, *tb.b.tolist()]
    sizes = mcu.object_sizes([fw.objects["ge_hopfield"], fw.objects["ge_bam"]])
    m, n = patterns.shape
    return {"name": name, "n": n, "m": m, "n_b": codes.shape[1], "icount": counts, "exact": exact,
            "run_steps": t.steps, "code": {k: v["text"] for k, v in sizes.items()},
            "macs": n * n, "weights": n * n, "ram": 3 * n}


def mcu_bench(ipol: dict | None) -> list[dict] | None:
    mcu = _load_mcu()
    missing = mcu.toolchain_missing()
    if missing:
        print(f"skipping the Cortex-M4 measurement: {', '.join(missing)} not installed")
        return None
    from scipy.linalg import hadamard

    from gaitedge.memory import corrupt

    rng = np.random.default_rng(0)
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as td:
        x = rng.choice([-1, 1], size=(10, 100))
        out.append(measure_mcu("random n = 100, m = 10", x, hadamard(16)[1:11], corrupt(x[3], noise=0.1, rng=1),
                               Path(td) / "random", mcu))
        if ipol is not None:
            mem, held = ipol["mem_ipol"]
            probe = mem.encode(mem.strides(held[1]))[0]
            out.append(measure_mcu("IPOL subjects 1-3, n = 192, m = 3", mem.templates.astype(int),
                                   hadamard(16)[1:4], probe, Path(td) / "ipol", mcu))
    return out


# ----------------------------------------------------------------------------- report


def render(cap: dict, ipol: dict | None, mcu: list[dict] | None, args) -> str:
    a, s = cap["async"], cap["sync"]
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = [
        f"Command: `python benchmarks/bench_memory.py --n {args.n} --trials {args.trials}`  ",
        f"Machine: {cpu_model()}, load average {load_avg()} when measured; "
        f"{tool_version(['arm-none-eabi-gcc', '--version'])}; {tool_version(['qemu-system-arm', '--version'])}. "
        f"Date: {date}.",
        "",
        f"### Capacity (random patterns, n = {a.n})",
        "",
        f"Hebbian storage, {a.trials} networks per load, every stored pattern probed with 10 % of its bits "
        "flipped; *recalled* = the network settles exactly on the pattern, *stable* = the stored pattern "
        f"is a fixed point. Plot: [benchmarks/figures/memory_capacity.png](benchmarks/figures/memory_capacity.png) "
        f"(asynchronous). Time: {cap['async_s'][1]:.1f} s CPU (async), {cap['sync_s'][1]:.1f} s CPU (sync).",
        "",
        "| m | load m/n | recalled (async) | recalled (sync) | stable | bit error (async) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for i in range(len(a.m)):
        lines.append(f"| {a.m[i]} | {a.loads[i]:.2f} | {a.recall[i]:.3f} | {s.recall[i]:.3f} | {a.stable[i]:.3f} "
                     f"| {a.bit_error[i]:.4f} |")
    half = a.loads[np.argmax(a.recall < 0.5)] if (a.recall < 0.5).any() else float("nan")
    lines += ["", f"Recall falls below 50 % at load {half:.2f} (classical Hebbian capacity estimate 0.138 n)."]
    if ipol is not None:
        tr = ipol["triples"]
        lines += [
            "",
            "### Gait-template memory on IPOL (left foot, 6 channels x 32 phase bins = 192 bits)",
            "",
            "One template per subject, three subjects per memory (1-3, 4-6, ..., 13-15); each subject's last "
            "trial is held out and its strides probe the memory (chance 1/3). *Recalled*: the network "
            "(asynchronous sweeps) settles exactly on the probe's own template; *spurious*: on no template "
            "(or a reversed one); *nearest probe*: the template with the largest overlap with the probe "
            "itself, no dynamics (for comparison).",
            "",
            "| probe | strides | recalled | wrong template | spurious | nearest after settling | nearest probe |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, _, _ in PROBE_KINDS:
            v = tr[name]
            lines.append(f"| {name} | {v['probes']} | {v['recalled']:.1%} | {v['wrong']:.1%} | {v['spurious']:.1%} "
                         f"| {v['nearest_after']:.1%} | {v['nearest_probe']:.1%} |")
        v = ipol["triples_sync"]
        lines.append(f"| clean, synchronous steps | {v['probes']} | {v['recalled']:.1%} | {v['wrong']:.1%} "
                     f"| {v['spurious']:.1%} | {v['nearest_after']:.1%} | {v['nearest_probe']:.1%} |")
        per = ", ".join(f"{'-'.join((t[0], t[-1]))}: {r:.0%}" for t, r, _, _ in ipol["per_triple"])
        b = ipol["bam"]
        v15 = ipol["all15"]
        lines += [
            "",
            f"Clean recall per memory: {per}.  A BAM storing (template, 16-bit Hadamard label code) pairs "
            f"of the same triples recalls the right label code for {b[0]:.1%} of the {b[2]} clean strides "
            f"({b[1]:.1%} end on no label's code).",
            "",
            f"All 15 subjects in one memory (192 bits, load 0.078 but strongly correlated templates): "
            f"{v15['recalled']:.1%} recalled, {v15['spurious']:.1%} spurious of {v15['probes']} strides, while the "
            f"probe's nearest template is its own for {v15['nearest_probe']:.1%} (chance {v15['chance']:.1%}): "
            "a Hebbian memory does not keep that many similar gait templates apart.",
            "",
            "Left foot vs right foot (two templates; subjects 1-11 store, all strides of subjects 12-15 probe, "
            "chance 1/2). With two templates the centring makes them exact negatives, so every probe settles "
            "on one of them:",
            "",
            "| probe | strides | recalled |",
            "|---|---:|---:|",
        ]
        for name, v in ipol["foot"].items():
            lines.append(f"| {name} | {v['probes']} | {v['recalled']:.1%} |")
        lines += ["", f"IPOL part: {ipol['cpu_s']:.1f} s CPU (Python reference network)."]
    if mcu:
        lines += [
            "",
            "### Cortex-M4 (QEMU mps2-an386, exact instruction counts)",
            "",
            "`arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mthumb`, portable C; guest instructions per call "
            "(median of 3 where repeated), marker overhead subtracted. The firmware's recall result equals the "
            "Python integer twin: " + ", ".join(f"{r['name']}: {'yes' if r['exact'] else 'NO'}" for r in mcu) + ".",
            "",
            "| memory | sync step | per weight | async sweep | energy | run to fixed point (async) "
            "| BAM fwd + bwd | weights (flash) | state (RAM) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in mcu:
            ic = r["icount"]
            lines.append(
                f"| {r['name']} | {ic['sync_step']:,} | {ic['sync_step'] / r['macs']:.2f} | {ic['async_sweep']:,} "
                f"| {ic['energy']:,} | {ic['run_async']:,} ({r['run_steps']} sweeps) "
                f"| {ic['bam_forward'] + ic['bam_backward']:,} ({r['n']} x {r['n_b']}) | {r['weights']:,} B "
                f"| {r['ram']} B |")
        code = mcu[0]["code"]
        lines += ["", f"Code: ge_hopfield.o {code['ge_hopfield']} B, ge_bam.o {code['ge_bam']} B (.text)."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="units of the capacity experiment (default 100)")
    ap.add_argument("--trials", type=int, default=200, help="networks per load (default 200)")
    ap.add_argument("--no-mcu", action="store_true", help="skip the Cortex-M4 measurement")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="Markdown file to update")
    args = ap.parse_args()
    cap = capacity(args.n, args.trials)
    print(f"capacity: {cap['async_s'][1]:.1f} s CPU async, {cap['sync_s'][1]:.1f} s sync")
    ipol = ipol_recall()
    mcu = None if args.no_mcu else mcu_bench(ipol)
    body = render(cap, ipol, mcu, args)
    print(body)
    write_section(args.out, SECTION, body)
    print(f"wrote {SECTION!r} into {args.out} and {FIGURE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
