"""PC-RNN study: how many relaxation steps the fixed-point model runs per sample, and what it costs.

Takes the trained ``pcrnn`` model-table run (``benchmarks/bench_models.py --rows pcrnn``,
trained with ``relax_steps = K_train``), uses its post-training quantization
(``quant.npz``, calibrated on the training subjects; made if missing), then changes only the kernel's relaxation
count ``K`` (``extra[0]`` of the ``pcrnn`` layer) and for each ``K``

* scores the integer pipeline (the Python twin, bit-exact with the C runtime) on
  the test subjects 12-15 (macro-F1, event F1), and
* counts the Cortex-M4 instructions of ``ge_step()`` exactly (QEMU mps2-an386,
  TCG plugin, ``-O2 -DGE_USE_DSP``) over the first steps of a test recording,
  checking that the firmware's outputs equal the twin's.

The section ``## PC-RNN: relaxation steps per sample`` of BENCHMARKS.md is rewritten.

Usage::

    python benchmarks/bench_pcrnn.py [--run runs/bench_models/pcrnn] [--ks 1,2,4,8] [--steps 200]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


from benchlib import cpu_model, load_avg, tool_version, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SECTION = "## PC-RNN: relaxation steps per sample"
TEST_SPEC = "ipol?subjects=12-15"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/bench_models/pcrnn")
    ap.add_argument("--ks", default="1,2,4,8", help="relaxation steps to measure (comma-separated)")
    ap.add_argument("--steps", type=int, default=200, help="ge_step calls counted on the M4")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)

    from bench_models import _load_mcu, m4_streaming
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.data.spec import load_spec
    from gaitedge.quant.evaluate import evaluate_quant, recording_counts
    from gaitedge.quant.workflow import load_quant, quantize_run

    run = Path(args.run)
    tm = load_checkpoint(run)
    if tm.model.family != "pcrnn":
        raise SystemExit(f"{run}: a {tm.model.family} model, not pcrnn")
    other = tm.config["data"]["other_foot"]
    t0 = time.time()
    test = load_spec(TEST_SPEC, other_foot=other)
    if not (run / "quant.npz").is_file():
        quantize_run(run, log=print)
    qm0 = load_quant(run)
    mcu = _load_mcu()
    missing = mcu.toolchain_missing()
    counts = recording_counts(qm0, test[0])[: args.steps]
    k_train = tm.model.relax_steps
    lines = ["| K at inference | int macro-F1 | int event F1 | M4 instr/step | C == Python |",
             "|---|---|---|---|---|"]
    for k in [int(v) for v in args.ks.split(",") if v]:
        qm = copy.deepcopy(qm0)
        qm.layers[0].extra = qm.layers[0].extra.copy()
        qm.layers[0].extra[0] = k
        m = evaluate_quant(qm, test, tm.tolerance_ms)
        m4 = None if missing else m4_streaming(qm, counts, mcu)
        instr, same = (None, None) if m4 is None else (m4["instr_median"], m4["c_equals_python"])
        mark = " (trained)" if k == k_train else ""
        lines.append(f"| {k}{mark} | {m['macro_f1']:.3f} | {m['event_f1']:.3f} | "
                     f"{'—' if instr is None else f'{instr:,}'} | "
                     f"{'—' if same is None else ('yes' if same else 'NO')} |")
        print(lines[-1], flush=True)
    hp = tm.model.hparams()
    body = (
        f"The model-table `pcrnn` run (H2 = {hp['hidden']}, H1 = {hp['hidden1']}, trained with "
        f"K = {k_train} relaxation steps per sample, tau1 = {hp['tau1']:g}, tau2 = {hp['tau2']:g} samples), "
        "quantized once after training; only the fixed-point kernel's relaxation count K changes. "
        "*int* columns: the integer pipeline (Python twin, bit-exact with the C runtime) on IPOL subjects 12-15. "
        f"*M4 instr/step*: median exact instruction count of one `ge_step()` over the first {len(counts)} steps "
        "of a test recording on the emulated Cortex-M4 (QEMU mps2-an386, `-O2 -DGE_USE_DSP`); *C == Python*: "
        "the firmware's outputs equal the twin's at every one of those steps. The cost grows linearly in K "
        "(four matrix passes per relaxation step, plus the prior's once per sample). Training back-propagates "
        "through exactly K_train steps: fewer steps at inference leave the levels short of where training "
        "took them, more steps move them further towards the relaxed fixed point.\n\n"
        f"Command: `python benchmarks/bench_pcrnn.py --ks {args.ks} --steps {args.steps}`. Machine: "
        f"{cpu_model()} (load {load_avg()}); {tool_version(['qemu-system-arm', '--version'])}. "
        f"Measured {datetime.now(timezone.utc).strftime('%Y-%m-%d')} in {time.time() - t0:.0f} s.\n\n"
        + "\n".join(lines) + "\n"
    )
    write_section(args.out, SECTION, body)
    print(f"wrote {SECTION!r} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
