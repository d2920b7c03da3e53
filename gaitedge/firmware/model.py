"""Which quantized model a firmware build or a weights blob is made from."""

from __future__ import annotations

from pathlib import Path

from gaitedge.errors import ModelError
from gaitedge.rundir import MODEL_FILE, QUANT_FILE, run_folder


def load_quant_model(source, log=None):
    """A :class:`~gaitedge.quant.QuantModel` from ``source``.

    ``source`` may be a QuantModel, a ``quant.npz`` file, or a run directory (or its
    ``model.pt``).  A run with ``quant.npz`` (``gaitedge quantize``) uses it; otherwise
    the float model is quantized here with the default settings, calibrated on the
    run's training subjects (as ``gaitedge export c`` does).
    """
    from gaitedge.quant import QuantModel

    if isinstance(source, QuantModel):
        return source
    p = Path(source)
    if p.is_file() and p.suffix == ".npz":
        return QuantModel.load(p)
    if not p.exists():
        raise ModelError(f"{source}: no such run directory or file")
    run = run_folder(p)
    has_pt = (run / MODEL_FILE).is_file()
    if (run / QUANT_FILE).is_file():
        qm = QuantModel.load(run / QUANT_FILE)
        if has_pt and qm.float_weights_sha256:
            from gaitedge.checkpoint import load_checkpoint

            if load_checkpoint(run).weights_hash() != qm.float_weights_sha256:
                raise ModelError(f"{run / QUANT_FILE} was made from other weights than {run / MODEL_FILE}; "
                                 "quantize again ('gaitedge quantize')")
        return qm
    if not has_pt:
        raise ModelError(f"{source}: not a run directory (no {MODEL_FILE} or {QUANT_FILE})")
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.quant.quantizer import check_supported, quantize_model
    from gaitedge.quant.workflow import load_training_data

    tm = load_checkpoint(run)
    check_supported(tm.model)
    if log:
        log(f"{run / QUANT_FILE} not found: calibrating on the run's training data (see 'gaitedge quantize')")
    train, _ = load_training_data(tm)
    return quantize_model(tm, train)
