"""Run-directory workflows behind ``gaitedge quantize`` and ``gaitedge export c``.

``quantize_run``: calibrate on the run's training subjects, optionally fine-tune
with fake quantization, write ``quant.npz`` (and, after fine-tuning, a new run
directory holding the fine-tuned float checkpoint), and compare float and
integer metrics on held-out data.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from gaitedge.checkpoint import TrainedModel, load_checkpoint
from gaitedge.data.mounting import mount_all
from gaitedge.data.recording import Recording
from gaitedge.data.splits import by_subjects
from gaitedge.errors import ConfigError, DataError, ModelError
from gaitedge.quant.model import QuantModel
from gaitedge.quant.quantizer import DEFAULT_INPUT_PERCENTILE, calibration_recordings, check_supported, quantize_model
from gaitedge.rundir import CONFIG_FILE, MODEL_FILE, QUANT_FILE, QUANT_REPORT_FILE, run_folder, to_json, write_text


def load_training_data(tm: TrainedModel, spec: str | None = None) -> tuple[list[Recording], list[Recording]]:
    """(training, validation) recordings of the run: its data spec split by its recorded subjects."""
    from gaitedge.data.spec import load_spec

    d = tm.config.get("data", {}) if tm.config else {}
    spec = spec or d.get("train")
    if not spec:
        raise ConfigError("the run does not record its training data; pass --calib DATA")
    recs = load_spec(spec, other_foot=d.get("other_foot", False), lower_back=d.get("lower_back", False))
    recs = mount_all(recs, d.get("mounting", ""), "data.mounting")
    train = calibration_recordings(tm, recs)
    val_subjects = tm.info.get("val_subjects", [])
    val = by_subjects(recs, val_subjects) if val_subjects else []
    return train, val


def load_quant(run: str | Path) -> QuantModel:
    """The quantized model of a run (``run`` is the run folder or a file in it)."""
    return QuantModel.load(run_folder(run) / QUANT_FILE)


def load_quant_model(source: "str | Path | QuantModel", quant: str | Path | None = None,
                     lsb: dict[str, float] | None = None, log: Callable[[str], None] | None = None) -> QuantModel:
    """The fixed-point model a firmware build, weights blob or C export is made from.

    ``source``: a QuantModel, a ``quant.npz`` file, or a run folder (or a file in
    it).  ``quant`` names the quantized model file explicitly (default: the run's
    ``quant.npz``).  A run without one is quantized here with the default settings,
    calibrated on its training subjects (``lsb``: sensor resolution in channel units
    per count); ``log`` is told so.  A ``quant.npz`` made from other weights than the
    run's ``model.pt`` is refused (ModelError), as is a file that does not exist.
    """
    if isinstance(source, QuantModel):
        return source
    p = Path(source)
    if quant is None and p.is_file() and p.suffix == ".npz":
        return QuantModel.load(p)
    if not p.exists():
        raise ModelError(f"{source}: no such run directory or file")
    run = run_folder(p)
    qpath = Path(quant) if quant is not None else run / QUANT_FILE
    has_pt = (run / MODEL_FILE).is_file()
    if qpath.is_file():
        qm = QuantModel.load(qpath)
        if has_pt and qm.float_weights_sha256 and load_checkpoint(run).weights_hash() != qm.float_weights_sha256:
            raise ModelError(f"{qpath} was made from other weights than {run / MODEL_FILE}; "
                             "quantize again ('gaitedge quantize')")
        return qm
    if quant is not None:
        raise ModelError(f"{qpath}: no quantized model here")
    if not has_pt:
        raise ModelError(f"{source}: not a run directory (no {MODEL_FILE} or {QUANT_FILE})")
    tm = load_checkpoint(run)
    check_supported(tm.model)
    if log:
        log(f"{qpath} not found: calibrating on the run's training data (see 'gaitedge quantize')")
    train, _ = load_training_data(tm)
    return quantize_model(tm, train, lsb=lsb)


def _metrics_row(m: dict) -> dict:
    return {k: m[k] for k in ("accuracy", "macro_f1", "event_f1", "event_median_abs_error_ms") if k in m}


def compare_on(tm: TrainedModel, qm: QuantModel, recs: list[Recording]) -> dict:
    """Float vs integer metrics on the same recordings."""
    from gaitedge.quant.evaluate import evaluate_quant
    from gaitedge.training.evaluate import evaluate_model

    fm = evaluate_model(tm, recs)
    im = evaluate_quant(qm, recs, tm.tolerance_ms)
    return {"subjects": fm["subjects"], "n_recordings": fm["n_recordings"], "float": _metrics_row(fm),
            "quantized": _metrics_row(im)}


def quantize_run(
    run: str | Path,
    out: str | Path | None = None,
    finetune_epochs: int = 0,
    lr: float = 3e-4,
    calib: str | None = None,
    test: str | None = None,
    lsb: dict[str, float] | None = None,
    input_percentile: float | None = DEFAULT_INPUT_PERCENTILE,
    steps_per_epoch: int | None = None,
    force: bool = False,
    log=print,
) -> dict:
    """Quantize a trained run (optionally with QAT); returns the report written to ``quant.json``.

    Without fine-tuning the result goes into the run directory (or ``out``);
    with it, ``out`` (default ``RUN-qat``) becomes a new run directory with the
    fine-tuned ``model.pt``, ``config.toml`` and the quantized model.
    """
    src = run_folder(run)
    tm = load_checkpoint(src)
    train, val = load_training_data(tm, calib)
    log(f"calibrating on {len(train)} training recordings (subjects {', '.join(sorted({r.subject for r in train}))})")
    qm = quantize_model(tm, train, lsb=lsb, input_percentile=input_percentile)
    report: dict = {"source_run": str(src), "ptq": {}}
    test_recs = None
    if test:
        from gaitedge.data.spec import load_spec

        d = tm.config.get("data", {}) if tm.config else {}
        test_recs = load_spec(test, other_foot=d.get("other_foot", False), lower_back=d.get("lower_back", False))
        test_recs = mount_all(test_recs, d.get("mounting", ""), "data.mounting")
        overlap = {r.subject for r in test_recs} & set(tm.info.get("train_subjects", []))
        if overlap:
            raise DataError(f"test data shares subject(s) {sorted(overlap)} with the training data")
        report["ptq"]["test"] = compare_on(tm, qm, test_recs)
        report["test"] = test
    if finetune_epochs > 0:
        if qm.architecture == "window":
            raise ConfigError(f"--finetune: quantization-aware fine-tuning covers the streaming stacks; {tm.model.family} "
                              f"is a whole-window model (post-training quantization only)")
        from gaitedge.quant.qat import QAT_FAMILIES, finetune

        if tm.model.family not in QAT_FAMILIES:
            raise ConfigError(f"--finetune: quantization-aware fine-tuning covers {', '.join(QAT_FAMILIES)}; "
                              f"{tm.model.family} is quantized post-training only (drop --finetune)")
        if not val:
            raise DataError("fine-tuning needs the run's validation subjects (none recorded)")
        dst = Path(out) if out else src.with_name(src.name + "-qat")
        if (dst / MODEL_FILE).exists() and not force and dst.resolve() != src.resolve():
            raise ConfigError(f"{dst}: already holds a model; choose another --out or pass --force")
        tm, qm, history = finetune(tm, qm, train, val, epochs=finetune_epochs, lr=lr,
                                   steps_per_epoch=steps_per_epoch, log=log)
        report["qat"] = {"epochs": finetune_epochs, "lr": lr, "best_epoch": tm.info.get("qat_best_epoch"),
                         "history": history}
        if test_recs is not None:
            report["qat"]["test"] = compare_on(tm, qm, test_recs)
        dst.mkdir(parents=True, exist_ok=True)
        tm.save(dst / MODEL_FILE)
        if (src / CONFIG_FILE).is_file() and dst.resolve() != src.resolve():
            shutil.copyfile(src / CONFIG_FILE, dst / CONFIG_FILE)
    else:
        dst = Path(out) if out else src
        dst.mkdir(parents=True, exist_ok=True)
    qm.report["workflow"] = {k: v for k, v in report.items() if k != "qat"}
    qm.save(dst / QUANT_FILE)
    report["out"] = str(dst)
    report["weights_sha256"] = qm.weights_hash()
    write_text(dst / QUANT_REPORT_FILE, to_json(report))
    return report


def format_comparison(rep: dict) -> str:
    """A small table: float vs PTQ (vs QAT) on the test data of a ``quantize_run`` report."""
    rows = []
    t = rep.get("ptq", {}).get("test")
    if not t:
        return ""
    rows.append(("float", t["float"]))
    rows.append(("int8/int16 PTQ", t["quantized"]))
    q = rep.get("qat", {}).get("test")
    if q:
        rows.append(("float after QAT", q["float"]))
        rows.append(("int8/int16 QAT", q["quantized"]))
    lines = [f"test subjects {', '.join(t['subjects'])} ({t['n_recordings']} recordings)",
             f"{'model':<18}{'accuracy':>10}{'macro-F1':>10}{'event F1':>10}"]
    for name, m in rows:
        lines.append(f"{name:<18}{m['accuracy']:>10.4f}{m['macro_f1']:>10.4f}{m['event_f1']:>10.4f}")
    return "\n".join(lines)
