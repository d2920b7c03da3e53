"""``gaitedge export onnx|c`` and ``gaitedge quantize``: a trained run for other runtimes."""

from __future__ import annotations

import argparse
from pathlib import Path

from gaitedge.cli.common import parse_lsb
from gaitedge.errors import GaitedgeError
from gaitedge.rundir import MODEL_FILE, QUANT_FILE, QUANT_REPORT_FILE, run_folder


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the ``gaitedge`` sub-command parser."""
    x = sub.add_parser("export", help="export a trained run for other runtimes")
    xsub = x.add_subparsers(dest="export_command", required=True)
    xo = xsub.add_parser("onnx", help="write model.onnx (sequence) and model_step.onnx (streaming step)")
    xo.add_argument("run", help="run directory (or its model.pt)")
    xo.add_argument("--out", help="output folder (default: the run directory)")
    xo.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    xo.set_defaults(func=cmd_export_onnx)

    xc = xsub.add_parser("c", help="write a C library of the model for the fixed-point runtime "
                                   "(CMake, Zephyr, Arduino, PlatformIO)")
    xc.add_argument("run", help="run directory (or its model.pt); uses RUN/quant.npz when present")
    xc.add_argument("--out", help="output folder (default: ./gaitedge_<family><hidden>)")
    xc.add_argument("--layout", choices=["library", "flat"],
                    help="library (default): include/ + src/ with only the kernels the model uses, a generated "
                         "gaitedge_config.h, CMakeLists.txt, Zephyr module, Arduino / PlatformIO metadata, "
                         "examples/main.c, README.md; flat: model_data.h/.c and every runtime file in one folder")
    xc.add_argument("--quant", help="quantized model file (default RUN/quant.npz)")
    xc.add_argument("--symbol", default="ge_model_data", help="C name of the model descriptor (default ge_model_data)")
    xc.add_argument("--lsb", action="append", metavar="CHANNEL=VALUE",
                    help="sensor resolution in channel units per count when quantizing here (repeatable)")
    xc.add_argument("--no-runtime", action="store_true", help="write only model_data.h/.c (into --out itself)")
    xc.add_argument("--window", type=int, default=256,
                    help="whole-window models: longest window in samples the window API's arena is sized for "
                         "(default 256)")
    xc.set_defaults(func=cmd_export_c)

    q = sub.add_parser("quantize", help="int8/int16 fixed-point model for the C runtime (optionally fine-tuned)")
    q.add_argument("run", help="run directory (or its model.pt)")
    q.add_argument("--out", help="output folder (default: the run; with --finetune RUN-qat)")
    q.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="quantization-aware fine-tuning for this many epochs (default 0: post-training only)")
    q.add_argument("--lr", type=float, default=3e-4, help="fine-tuning learning rate (default 3e-4)")
    q.add_argument("--steps", type=int, help="fine-tuning steps per epoch (default: the run's config)")
    q.add_argument("--test", help="held-out data spec: compare float and quantized metrics")
    q.add_argument("--calib", help="calibration data spec (default: the run's training data and subjects)")
    q.add_argument("--lsb", action="append", metavar="CHANNEL=VALUE",
                   help="sensor resolution in channel units per count (default: +-16 g, +-2000 dps at 16 bit)")
    q.add_argument("--input-percentile", type=float, default=99.9,
                   help="input range = this percentile of |normalized input| on the calibration data "
                        "(default 99.9; 100 = the maximum)")
    q.add_argument("--force", action="store_true", help="overwrite a fine-tuned run folder")
    q.set_defaults(func=cmd_quantize)


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.export import export_onnx

    tm = load_checkpoint(args.run)
    run = run_folder(args.run)
    paths = export_onnx(tm, Path(args.out) if args.out else run, opset=args.opset)
    print(f"exported {tm.model.family} ({len(tm.channels)} channels -> {', '.join(tm.classes)}, {tm.rate_hz:g} Hz)")
    print(f"  {paths.sequence}  (sequence: x [batch, time, channels] -> logits [batch, time, classes])")
    if paths.step is not None:
        print(f"  {paths.step}  (step: x [batch, channels] + state -> logits [batch, classes] + state)")
    else:
        print(f"  no step graph: {tm.model.family} is a whole-window (non-causal) model; run model.onnx over windows")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from gaitedge.quant.quantizer import saturation_summary
    from gaitedge.quant.workflow import format_comparison, load_quant, quantize_run

    if args.finetune < 0:
        raise GaitedgeError("--finetune must be >= 0 epochs")
    rep = quantize_run(args.run, out=args.out, finetune_epochs=args.finetune, lr=args.lr, calib=args.calib,
                       test=args.test, lsb=parse_lsb(args.lsb), input_percentile=args.input_percentile,
                       steps_per_epoch=args.steps, force=args.force)
    qm = load_quant(rep["out"])
    print("\n".join(saturation_summary(qm)))
    table = format_comparison(rep)
    if table:
        print(table)
    out = Path(rep["out"])
    print(f"quantized model: {out / QUANT_FILE} (weights sha256 {rep['weights_sha256'][:16]}...)")
    print(f"report: {out / QUANT_REPORT_FILE}" + (f"; fine-tuned checkpoint: {out / MODEL_FILE}" if args.finetune else ""))
    return 0


def cmd_export_c(args: argparse.Namespace) -> int:
    from gaitedge.export.c_export import export_c
    from gaitedge.export.c_library import library_name
    from gaitedge.export.c_window import window_summary
    from gaitedge.quant.workflow import load_quant_model

    if not (run_folder(args.run) / MODEL_FILE).is_file():
        raise GaitedgeError(f"{args.run}: no {MODEL_FILE} here; give a run folder (or its {MODEL_FILE})")
    qm = load_quant_model(args.run, quant=args.quant, lsb=parse_lsb(args.lsb), log=print)
    if qm.architecture == "window":
        if args.layout == "library":
            raise GaitedgeError(f"{qm.family} is a whole-window model: its export has the flat layout only "
                                f"(leave out --layout library)")
        if not args.out:
            raise GaitedgeError("a whole-window model needs --out DIR")
        print(f"note: {qm.family} is a whole-window (non-causal) model, so it cannot stream through ge_step(); "
              f"exporting it for the window API (ge_window_run() in ge_window.h, arena for windows of up to "
              f"{args.window} samples)")
    out = Path(args.out) if args.out else Path(library_name(qm))
    res = export_c(qm, out, symbol=args.symbol, copy_runtime=not args.no_runtime, layout=args.layout,
                   window=args.window)
    print(window_summary(res) if qm.architecture == "window" else res.summary())
    if res.report.get("layout") == "library":
        srcs = res.report["library_sources"]
        print(f"wrote the C library {res.report['name']} to {res.out_dir}: {len(res.files)} files; src/: "
              f"{len(srcs)} sources ({', '.join(srcs)}); CMakeLists.txt (target gaitedge::model), zephyr/, "
              f"library.properties, library.json, examples/main.c, README.md")
        print(f"build it:  cmake -S {res.out_dir} -B {res.out_dir}/build && cmake --build {res.out_dir}/build")
    else:
        print(f"wrote {len(res.files)} files to {res.out_dir}: model_data.h, model_data.c"
              + (", gaitedge_config.h and the runtime sources" if res.report["runtime_copied"] else ""))
    return 0
