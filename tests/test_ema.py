"""Weight averaging during training (train.ema_decay): the average, what is saved, resume."""

import numpy as np
import pytest
import torch
from torch import nn

from gaitedge.checkpoint import load_checkpoint
from gaitedge.config import Config
from gaitedge.errors import ConfigError
from gaitedge.rundir import STATE_FILE
from gaitedge.training.ema import WeightAverage
from gaitedge.training.train import train
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
    logs.clear()
    cfg.train.teachers = [str(tmp_path / "any")]  # not even loaded
    train(cfg, out_dir=tmp_path / "c", progress=False, log=lambda m, *_: logs.append(str(m)), force=True)
    assert any("train.teachers ignored: esn is fitted in closed form" in m for m in logs)
    cfg.train.teachers = []
    cfg.train.ema_decay = 0.0
    plain, _, _ = train(cfg, out_dir=tmp_path / "b", progress=False, log=lambda *_: None)
    assert with_ema.weights_hash() == plain.weights_hash()


# ---------------------------------------------------------------------------- distillation


def test_distillation_from_teachers(tmp_path):
    from gaitedge.data.spec import load_spec

    quiet = dict(progress=False, log=lambda *_: None)
    # a teacher trained briefly: its probabilities differ clearly from the labels
    teacher, _, t_dir = train(tiny(0.0, epochs=1), out_dir=tmp_path / "teacher", **quiet)
    base, _, _ = train(tiny(0.0), out_dir=tmp_path / "base", **quiet)

    cfg = tiny(0.0)
    cfg.train.teachers, cfg.train.distill_weight = [str(t_dir)], 0.0
    inert, _, _ = train(cfg, out_dir=tmp_path / "w0", **quiet)
    assert inert.weights_hash() == base.weights_hash()  # weight 0: the labels alone, bit for bit

    logs: list[str] = []
    cfg.train.distill_weight = 1.0  # the teacher's probabilities alone
    student, _, _ = train(cfg, out_dir=tmp_path / "w1", progress=False, log=lambda m, *_: logs.append(str(m)))
    assert any("distillation from 1 teacher(s), weight 1.0" in m for m in logs)

    # the student learned the teacher's labelling: it agrees with it more than the same run on labels does
    recs = load_spec("synthetic?n=5&trials=2&subjects=syn5", other_foot=True)

    def agreement(tm) -> float:
        return float(np.mean(np.concatenate([tm.predict(r)[1].argmax(1) == teacher.predict(r)[1].argmax(1)
                                             for r in recs])))

    assert agreement(student) > agreement(base) + 0.05, (agreement(student), agreement(base))

    bad = tiny(0.0)
    bad.train.teachers = [str(tmp_path / "nowhere")]
    with pytest.raises(ConfigError, match="train.teachers: .*nowhere"):
        train(bad, out_dir=tmp_path / "bad", **quiet)
    other = tiny(0.0)
    other.data.other_foot = False  # 6 channels: the teacher reads 12
    other.train.teachers = [str(t_dir)]
    with pytest.raises(ConfigError, match="train.teachers: .*channels"):
        train(other, out_dir=tmp_path / "bad2", **quiet)
    assert teacher.channels != [c for c in teacher.channels if not c.startswith("other_")]
    bad_w = tiny(0.0)
    bad_w.train.distill_weight = 1.5
    with pytest.raises(ConfigError, match="train.distill_weight must be in"):
        train(bad_w, out_dir=tmp_path / "bad3", **quiet)


def test_cross_validation_gives_each_fold_its_own_teacher(tmp_path):
    from gaitedge.config import load_config
    from gaitedge.training.crossval import cross_validate
    from gaitedge.data.spec import load_spec

    recs = load_spec("synthetic?n=6&trials=1", other_foot=True)
    cfg = tiny(0.0, epochs=1)
    cfg.data.val_subjects = []
    first = list(cross_validate(cfg, recs, k=2, out_root=tmp_path / "cv1", log=lambda *_: None))
    cfg.train.teachers = [str(tmp_path / "cv1" / "fold{fold}")]
    second = list(cross_validate(cfg, recs, k=2, out_root=tmp_path / "cv2", log=lambda *_: None))
    for a, b in zip(first, second):
        assert a["test_subjects"] == b["test_subjects"]
        used = load_config(tmp_path / "cv2" / f"fold{b['fold']}" / "config.toml").train.teachers
        assert used == [str(tmp_path / "cv1" / f"fold{b['fold']}")]
    assert cfg.train.teachers == [str(tmp_path / "cv1" / "fold{fold}")]  # the caller's config is untouched
