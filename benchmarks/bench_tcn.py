"""TCN families: receptive field, ring-buffer streaming cost and fixed-point formats.

Reads the ``tcn``, ``tcn_gru`` and ``tcn_lstm`` rows that ``bench_models.py`` stored in
``benchmarks/results/models.json`` (their trained runs and quantized models' calibration reports) and
writes the section ``## TCN families (receptive field, streaming, formats)`` of
BENCHMARKS.md:

* receptive field in samples and ms;
* multiply-adds per sample of the streamed blocks (ring buffers: each conv sees
  every sample once) against recomputing the receptive-field window at every
  sample, and the ring buffers' RAM;
* the calibrated activation formats Q(15-f).f per block and the saturation on
  calibration data, float vs integer macro-F1 and the Cortex-M4 instructions per
  step from the model table.

Usage: ``python benchmarks/bench_tcn.py`` (after the three ``bench_models.py`` rows).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from benchlib import cpu_model, write_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "models.json"
SECTION = "## TCN families (receptive field, streaming, formats)"
FAMILIES = ("tcn", "tcn_gru", "tcn_lstm")


def block_macs(model) -> tuple[int, int]:
    """(multiply-adds per sample streamed, per sample when the receptive-field window is recomputed)."""
    stream = 0
    for b in model.blocks:
        stream += b.kernel_size * b.c_in * b.c_out + b.kernel_size * b.c_out * b.c_out
        stream += b.c_in * b.c_out if b.down is not None else 0
    # without state, block l must produce its output over the part of the window the blocks
    # above still need: the last block 1 output, block l-1 2 (K-1) d_l more, ...
    need, window = 1, 0
    for b in reversed(model.blocks):
        n_out = need
        n_mid = need + b.span  # conv1 outputs conv2 needs
        window += n_mid * b.kernel_size * b.c_in * b.c_out + n_out * b.kernel_size * b.c_out * b.c_out
        window += n_out * b.c_in * b.c_out if b.down is not None else 0
        need = n_mid + b.span
    return stream, window


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.quant.workflow import load_quant

    rows = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    mine = {n: r for n, r in rows.items() if r["family"] in FAMILIES}
    if not mine:
        raise SystemExit("no tcn rows in models.json; run bench_models.py --rows tcn:hidden=24,... first")
    lines = ["| model | params | receptive field | block MACs/sample streamed | recomputing the window "
             "| ring buffers RAM B | formats conv1 / out (f of Q(15-f).f) | saturated (calibration) "
             "| macro-F1 float / int | M4 instr/step |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(mine, key=lambda n: (mine[n]["family"], n)):
        r = mine[name]
        run = ROOT / r["run"] if not Path(r["run"]).is_absolute() else Path(r["run"])
        tm = load_checkpoint(run)
        m = tm.model
        q = load_quant(run).report
        stream, window = block_macs(m)
        ring = sum(2 * (b.span * (b.c_in + b.c_out)) for b in m.blocks)
        fa, fo = q.get("tcn_conv1_frac", []), q.get("tcn_out_frac", [])
        sat = max(q.get("tcn_conv1_sat_frac", [0]) + q.get("tcn_out_sat_frac", [0]))
        ptq = r.get("ptq") or {}
        lines.append(
            f"| {name} | {r['n_params']:,} | {m.receptive_field} samples = {m.receptive_field_ms(tm.rate_hz):.0f} ms "
            f"| {stream:,} | {window:,} ({window / stream:.0f}x) | {ring:,} "
            f"| {' '.join(map(str, fa))} / {' '.join(map(str, fo))} | {100 * sat:.4f} % "
            f"| {r['float']['macro_f1']:.3f} / {ptq.get('macro_f1', float('nan')):.3f} "
            f"| {r.get('instr_median', 0):,} |")
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    body = (
        f"{SECTION}\n\n"
        "The TCN rows of the model table, seen from the streaming side. Each residual block runs on the device "
        "as one `GE_LAYER_TCN` layer whose ring buffers (the last (K-1) d inputs and conv1 outputs) live in the "
        "arena, so each convolution sees every sample once; *recomputing the window* is what a stateless "
        "implementation would spend per sample to produce the same output (analytic count over the receptive "
        "field). Ring-buffer RAM assumes int16 at the model's true widths (the arena pads widths to multiples of "
        "4). Formats are the calibrated fraction bits of each block's conv1 output and block output "
        "(QUANTIZATION.md, \"TCN blocks\"); *saturated* is the largest fraction of calibration values beyond "
        "32767 in any of them.\n\n"
        f"Command: `python benchmarks/bench_tcn.py` (after `python benchmarks/bench_models.py --rows "
        f"\"tcn:hidden=24\"`, `\"tcn_gru:hidden=48\"`, `\"tcn_lstm:hidden=40\"` with `--epochs 20`). "
        f"Machine: {cpu_model()}. Date: {date}.\n\n" + "\n".join(lines) + "\n"
    )
    write_section(ROOT / "BENCHMARKS.md", SECTION, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
