"""Which quantized model a firmware build or a weights blob is made from."""

from __future__ import annotations

from pathlib import Path

from gaitedge.errors import ModelError


def load_quant_model(source, log=None):
    """A :class:`~gaitedge.quant.QuantModel` from ``source``.

    ``source`` may be a QuantModel, a ``quant.npz`` file, or a run directory (or its
    ``model.pt``).  A run with ``quant.npz`` uses it; otherwise the float model is
    quantized here with the default settings, calibrated on the training subjects of
    the run's own training data (``gaitedge.quant.quantize_model``).
    """
    from gaitedge.quant import QuantModel

    if isinstance(source, QuantModel):
        return source
    p = Path(source)
    if p.is_file() and p.suffix == ".npz":
        return QuantModel.load(p)
    run = p if p.is_dir() else p.parent
    if (run / "quant.npz").is_file():
        return QuantModel.load(run / "quant.npz")
    if not (run / "model.pt").is_file() and not (p.is_file() and p.suffix == ".pt"):
        raise ModelError(f"{source}: not a run directory, model.pt or quant.npz")
    return quantize_run(p, log=log)


def quantize_run(run, log=None):
    from gaitedge.checkpoint import load_checkpoint
    from gaitedge.data.spec import load_spec
    from gaitedge.quant import calibration_recordings, quantize_model

    tm = load_checkpoint(run)
    dcfg = tm.config.get("data", {})
    spec = dcfg.get("train", "synthetic")
    if log:
        log(f"quantizing {run} (no quant.npz), calibrating on {spec}")
    recs = load_spec(spec, other_foot=dcfg.get("other_foot", False), lower_back=dcfg.get("lower_back", False))
    return quantize_model(tm, calibration_recordings(tm, recs))
