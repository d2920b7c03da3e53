"""C export: weight packing, generated sources, reports, CLI (gaitedge quantize / export c)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gaitedge.cli import main
from gaitedge.config import Config
from gaitedge.data.spec import load_spec
from gaitedge.errors import ModelError
from gaitedge.export.c_export import arena_bytes, export_c, weight_bytes
from gaitedge.export.packing import layer_order, pack_group, pack_layer
from gaitedge.quant import QuantModel, quantize_model
from gaitedge.training.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_quant import make_tm  # noqa: E402


def _sb(w: int, shift: int) -> int:
    b = (w >> shift) & 0xFF
    return b - 256 if b >= 128 else b


def unpack_group(words: list[int], ncols: int) -> tuple[np.ndarray, np.ndarray]:
    """Python mirror of the portable C kernel's reading of a packed group."""
    bias = np.array([w - 2**32 if w >= 2**31 else w for w in words[:4]])
    out = np.zeros((4, ncols), np.int64)
    k, p = 0, 4
    while k + 4 <= ncols:
        for r in range(4):
            w = words[p]
            p += 1
            out[r, k : k + 4] = [_sb(w, 0), _sb(w, 16), _sb(w, 8), _sb(w, 24)]
        k += 4
    if ncols % 4 == 2:
        for ra in (0, 2):
            w = words[p]
            p += 1
            out[ra, k : k + 2] = [_sb(w, 0), _sb(w, 16)]
            out[ra + 1, k : k + 2] = [_sb(w, 8), _sb(w, 24)]
    assert p == len(words)
    return bias, out


@pytest.mark.parametrize("ncols", [2, 4, 6, 70, 130])
def test_pack_group_roundtrip(ncols):
    rng = np.random.default_rng(ncols)
    w = rng.integers(-127, 128, size=(4, ncols))
    b = rng.integers(-(2**31), 2**31, size=4)
    words = pack_group(w, b)
    assert all(0 <= x < 2**32 for x in words)
    bias, back = unpack_group(words, ncols)
    assert np.array_equal(back, w) and np.array_equal(bias, b)


@pytest.fixture(scope="module")
def syn():
    return load_spec("synthetic?n=3&trials=1", other_foot=True)


@pytest.mark.parametrize("family,hidden", [("lstm", 16), ("gru", 72), ("elman", 20)])
def test_layer_packing_covers_every_weight_once(syn, family, hidden):
    qm = quantize_model(make_tm(syn, family, hidden=hidden), syn[:1])
    lay = qm.layers[0]
    words, mult = pack_layer(lay)
    seen = np.zeros(lay.weight.shape, int)
    pos = 0
    for rows, c0, n in layer_order(lay):
        nw = 4 + (n // 4) * 4 + (2 if n % 2 == 0 and n % 4 == 2 else 0)
        bias, w = unpack_group([int(x) for x in words[pos : pos + nw]], n)
        pos += nw
        assert np.array_equal(w, lay.weight[rows, c0 : c0 + n])
        assert np.array_equal(bias, lay.bias[rows])
        seen[rows, c0 : c0 + n] += 1
    assert pos == len(words)
    # every non-structural weight is packed exactly once (GRU n rows skip the other segment)
    assert np.all(seen[lay.weight != 0] == 1)
    assert sorted(mult.tolist()) == sorted(lay.mult.tolist())


def test_export_writes_sources_and_report(syn, tmp_path):
    qm = quantize_model(make_tm(syn, "lstm", hidden=64), syn[:1])
    res = export_c(qm, tmp_path / "fw", measure_code=False, layout="flat")
    names = {p.name for p in res.files}
    assert {"model_data.h", "model_data.c", "gaitedge_rt.h", "ge_lstm.c", "ge_model.c", "ge_lut.c",
            "gaitedge_config.h"} <= names
    assert all(p.parent == tmp_path / "fw" for p in res.files)
    assert "#define GE_WITH_LSTM 1" in (tmp_path / "fw" / "gaitedge_config.h").read_text()
    h = (tmp_path / "fw" / "model_data.h").read_text()
    c = (tmp_path / "fw" / "model_data.c").read_text()
    assert f"#define GE_MODEL_DATA_ARENA_BYTES {arena_bytes(qm)}u" in h
    assert qm.weights_hash() in h and qm.weights_hash() in c
    assert '"rest", "stance", "swing"' in c and "GE_LAYER_LSTM" in c
    assert "float" not in c and "double" not in c
    wb = weight_bytes(qm)
    assert wb["rnn"] == 4 * 64 * (64 + 12) + 4 * (4 * 64) + 4 * (4 * 64)  # int8 weights, int32 bias and mult
    text = res.summary()
    assert "flash: weights" in text and "RAM: state + scratch" in text
    assert not list((tmp_path / "fw").glob(".gaitedge-export-*"))


def test_export_refuses_bad_symbol_without_writing(syn, tmp_path):
    qm = quantize_model(make_tm(syn, "gru"), syn[:1])
    with pytest.raises(ModelError, match="C identifier"):
        export_c(qm, tmp_path / "fw", symbol="not-valid")
    assert not (tmp_path / "fw" / "model_data.c").exists()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    cfg = Config()
    cfg.data.train = "synthetic?n=4&trials=1"
    cfg.data.other_foot = True
    cfg.model.name = "lstm"
    cfg.model.hidden = 8
    cfg.train.epochs = 1
    cfg.train.steps_per_epoch = 3
    cfg.train.batch_size = 4
    cfg.train.window_s = 1.0
    cfg.train.threads = 1
    out = tmp_path_factory.mktemp("crun") / "run"
    train(cfg, out_dir=out, progress=False, log=lambda *a: None)
    return out


def test_cli_quantize_and_export_c(run_dir, tmp_path, capsys):
    assert main(["quantize", str(run_dir), "--test", "synthetic?n=6&trials=1&subjects=6"]) == 0
    out = capsys.readouterr().out
    assert "int8/int16 PTQ" in out and "weights saturated" in out
    assert (run_dir / "quant.npz").is_file() and (run_dir / "quant.json").is_file()
    assert main(["export", "c", str(run_dir), "--out", str(tmp_path / "fw")]) == 0
    out = capsys.readouterr().out
    assert "flash: weights" in out and "RAM:" in out and "wrote the C library fw to" in out
    qm = QuantModel.load(run_dir / "quant.npz")
    assert qm.weights_hash() in (tmp_path / "fw" / "include" / "model_data.h").read_text()
    assert (tmp_path / "fw" / "src" / "ge_lstm.c").is_file() and not (tmp_path / "fw" / "src" / "ge_gru.c").exists()
    assert main(["export", "c", str(run_dir), "--out", str(tmp_path / "flat"), "--layout", "flat"]) == 0
    assert (tmp_path / "flat" / "ge_gru.c").is_file() and qm.weights_hash() in (tmp_path / "flat" / "model_data.h").read_text()


def test_cli_quantize_finetune_writes_new_run(run_dir, tmp_path, capsys):
    out = tmp_path / "qat"
    assert main(["quantize", str(run_dir), "--finetune", "1", "--steps", "1", "--out", str(out)]) == 0
    assert (out / "model.pt").is_file() and (out / "quant.npz").is_file()
    assert "qat epoch   1" in capsys.readouterr().out


def test_cli_refuses_unsupported_layer(syn, tmp_path, capsys):
    """A model family without a C kernel is refused with one error line naming the layer."""
    from torch import nn

    from gaitedge.checkpoint import TrainedModel
    from gaitedge.models.base import _REGISTRY, GaitModel, register

    @register("convtest")
    class ConvTest(GaitModel):
        def __init__(self, input_size, num_classes, hidden=8):
            super().__init__(input_size, num_classes)
            self.hidden = hidden
            self.conv = nn.Conv1d(input_size, hidden, 3, padding=2)
            self.head = nn.Linear(hidden, num_classes)

        def hparams(self):
            return {"hidden": self.hidden}

        def init_state(self, batch=1):
            return ()

        def forward(self, x, state=None):
            y = self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)
            return self.head(y), ()

    try:
        ref = make_tm(syn, "gru")
        tm = TrainedModel(model=ConvTest(12, 3), classes=ref.classes, channels=ref.channels, units=ref.units,
                          rate_hz=100.0, normalizer=ref.normalizer, lowpass_hz=0.0, filter_order=2, min_run=3,
                          tolerance_ms=50.0)
        (tmp_path / "run").mkdir()
        tm.save(tmp_path / "run" / "model.pt")
        assert main(["export", "c", str(tmp_path / "run"), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gaitedge: error:") and err.count("\n") == 1
        assert "layer 'conv' (Conv1d) has no C kernel" in err
        assert not (tmp_path / "o" / "model_data.c").exists()
    finally:
        _REGISTRY.pop("convtest", None)


def test_only_the_model_kinds_kernels_are_linked(tmp_path):
    import shutil
    import subprocess

    from gaitedge.export.c_common import kind_cflags, measure_code_bytes
    from gaitedge.resources import runtime_dir

    RUNTIME_DIR = runtime_dir()

    assert kind_cflags(["gru", "gru"]) == ["-DGE_WITH_ALL_KINDS=0", "-DGE_WITH_GRU=1"]
    assert kind_cflags(["lstm", "elman"]) == ["-DGE_WITH_ALL_KINDS=0", "-DGE_WITH_ELMAN=1", "-DGE_WITH_LSTM=1"]
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")

    def undefined(flags):
        o = tmp_path / "layers.o"
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", *flags,
                        f"-I{RUNTIME_DIR / 'include'}", "-c", str(RUNTIME_DIR / "src" / "ge_layers.c"), "-o", str(o)],
                       check=True)
        out = subprocess.run(["nm", str(o)], capture_output=True, text=True, check=True).stdout
        return {ln.split()[-1] for ln in out.splitlines() if ln.split()[0] == "U"}

    assert undefined(kind_cflags(["gru"])) == {"ge_gru_step"}
    every = undefined([])
    assert {"ge_gru_step", "ge_lstm_step", "ge_elman_step"} < every and len(every) > 3
    small, full = measure_code_bytes(cflags=kind_cflags(["gru"])), measure_code_bytes()
    if small is not None:
        assert small < full
