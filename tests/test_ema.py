"""Weight averaging during training (train.ema_decay): the average, what is saved, resume."""

import pytest
import torch
from torch import nn

from gaitedge.checkpoint import load_checkpoint
from gaitedge.config import Config
from gaitedge.errors import ConfigError
from gaitedge.train import STATE_FILE, WeightAverage, train
from tiny import tiny_config


def tiny(ema: float, epochs: int = 3) -> Config:
    return tiny_config(steps_per_epoch=8, epochs=epochs, ema_decay=ema)


def test_weight_average_follows_its_formula():
    torch.manual_seed(0)
    m = nn.BatchNorm1d(3)  # float parameters and an integer buffer (num_batches_tracked)
    avg = WeightAverage(m, 0.9)
    expect = m.weight.detach().clone()
    for n in range(1, 6):
        with torch.no_grad():
            m.weight.add_(torch.randn(3))
            m.num_batches_tracked += 1
        avg.update(m)
        d = min(0.9, (1 + n) / (10 + n))
        expect = d * expect + (1 - d) * m.weight.detach()
        torch.testing.assert_close(avg.state["weight"], expect)
        assert int(avg.state["num_batches_tracked"]) == n  # copied, not averaged
    assert not torch.equal(avg.state["weight"], m.weight.detach())


def test_saved_model_is_the_average_and_resume_keeps_it(tmp_path):
    ref_tm, _, ref_dir = train(tiny(0.9), out_dir=tmp_path / "ref", progress=False, log=lambda *_: None)
    state = torch.load(ref_dir / STATE_FILE, weights_only=False)
    assert state["ema"]["n"] == 3 * 8  # one update per optimizer step
    best = state["best_epoch"]
    saved = ref_tm.model.state_dict()
    assert all(torch.equal(saved[k], state["best_state"][k]) for k in saved)
    assert best == 3  # (this seed) the last epoch wins: the saved weights are the final average
    assert all(torch.equal(saved[k], state["ema"]["state"][k]) for k in saved)
    assert any(not torch.equal(state["ema"]["state"][k], state["model"][k]) for k in saved)

    # interrupted after epoch 2 (state saved), then resumed: the same weights as the uninterrupted run
    class Stop(Exception):
        pass

    def stop_at_epoch_3(msg, *_):
        if str(msg).startswith("epoch   3"):
            raise Stop

    with pytest.raises(Stop):
        train(tiny(0.9), out_dir=tmp_path / "cut", progress=False, log=stop_at_epoch_3)
    assert not (tmp_path / "cut" / "model.pt").exists()
    train(tiny(0.9), out_dir=tmp_path / "cut", progress=False, log=lambda *_: None, resume=True)
    assert load_checkpoint(tmp_path / "cut").weights_hash() == ref_tm.weights_hash()

    # without averaging the same seed gives other weights
    plain, _, _ = train(tiny(0.0), out_dir=tmp_path / "plain", progress=False, log=lambda *_: None)
    assert plain.weights_hash() != ref_tm.weights_hash()


def test_bad_decay_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="train.ema_decay must be in"):
        train(tiny(1.0), out_dir=tmp_path / "x", progress=False, log=lambda *_: None)


def test_closed_form_fit_ignores_the_average(tmp_path):
    """An ESN readout is fitted in closed form: no optimizer steps, nothing to average."""
    logs: list[str] = []
    cfg = tiny(0.9, epochs=1)
    cfg.model.name, cfg.model.hidden = "esn", 24
    with_ema, _, _ = train(cfg, out_dir=tmp_path / "a", progress=False, log=lambda m, *_: logs.append(str(m)))
    assert any("train.ema_decay ignored: esn is fitted in closed form" in m for m in logs)
    cfg.train.ema_decay = 0.0
    plain, _, _ = train(cfg, out_dir=tmp_path / "b", progress=False, log=lambda *_: None)
    assert with_ema.weights_hash() == plain.weights_hash()
