"""Generate the model the C fuzz targets are built with (deterministic, not committed).

    python tests/fuzz/c/make_model.py OUT_DIR

Writes a tiny untrained six-channel GRU (hidden 8, three classes) quantized on
synthetic gait, as the firmware build would: ``OUT_DIR/model/`` (``gaitedge
export c``), ``OUT_DIR/gen/fw_model.[ch]`` (architecture hash, blob binding) and
``OUT_DIR/weights.blob``.  Nothing is rewritten when ``OUT_DIR/stamp`` already
names this script's content.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))


def tiny_quant_model(family: str = "gru", **hparams):
    """The QuantModel of the fuzz targets (same bytes on every run); other families make seeds."""
    import numpy as np
    import torch

    from gaitedge.checkpoint import TrainedModel
    from gaitedge.data.preprocess import Normalizer
    from gaitedge.data.spec import load_spec
    from gaitedge.models import build_model
    from gaitedge.quant import calibration_recordings, quantize_model

    torch.manual_seed(0)
    channels = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
    tm = TrainedModel(build_model(family, 6, 3, hidden=8, **hparams), ("rest", "stance", "swing"), channels,
                      ["m/s^2"] * 3 + ["rad/s"] * 3, 100.0,
                      Normalizer(np.zeros(6, np.float32), np.full(6, 3.0, np.float32)), 0.0, 2, 3, 50.0)
    recs = load_spec("synthetic?n=1&trials=1")
    return quantize_model(tm, calibration_recordings(tm, recs))


def main(out: Path) -> None:
    stamp = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    if (out / "stamp").is_file() and (out / "stamp").read_text() == stamp:
        return
    from gaitedge.export.packing import write_blob
    from gaitedge.export.c_export import export_c
    from gaitedge.firmware.codegen import fw_model_c, fw_model_h

    qm = tiny_quant_model()
    out.mkdir(parents=True, exist_ok=True)
    export_c(qm, out / "model", copy_runtime=False, measure_code=False)
    (out / "gen").mkdir(exist_ok=True)
    (out / "gen" / "fw_model.h").write_text(fw_model_h(qm))
    (out / "gen" / "fw_model.c").write_text(fw_model_c(qm))
    write_blob(qm, out / "weights.blob")
    (out / "stamp").write_text(stamp)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
