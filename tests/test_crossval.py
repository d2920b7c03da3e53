from gaitedge.config import Config
from gaitedge.crossval import cross_validate, mean_sd
from gaitedge.data import synth_dataset


def test_folds_hold_out_their_subjects(tmp_path):
    recs = synth_dataset(subjects=4, trials=1, seed=2, other_foot=False)
    cfg = Config()
    cfg.model.hidden = 8
    cfg.train.epochs = 1
    cfg.train.steps_per_epoch = 2
    cfg.train.batch_size = 4
    cfg.train.window_s = 2.0
    cfg.train.threads = 1
    rows = list(cross_validate(cfg, recs, k=2, seed=0, out_root=tmp_path, extra_eval={"again": recs},
                               log=lambda *_: None))
    assert len(rows) == 2
    assert sorted(s for r in rows for s in r["test_subjects"]) == ["syn1", "syn2", "syn3", "syn4"]
    import json

    for r in rows:
        m = json.loads((tmp_path / f"fold{r['fold']}" / "metrics.json").read_text())
        trained_on = set(m["train_subjects"]) | set(m["val_subjects"])
        assert trained_on.isdisjoint(r["test_subjects"])
        assert r["again"]["macro_f1"] == r["macro_f1"]  # same recordings, same figures
    skipped = list(cross_validate(cfg, recs, k=2, seed=0, out_root=tmp_path,
                                  skip={tuple(rows[0]["test_subjects"])}, log=lambda *_: None))
    assert [r["fold"] for r in skipped] == [1]
    mean, sd = mean_sd(rows, "macro_f1")
    assert 0.0 <= mean <= 1.0 and sd >= 0.0
