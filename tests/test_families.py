"""Every registered model family trains from its bare name, with its own size defaults."""

import tomllib

import pytest

from gaitedge.checkpoint import load_checkpoint
from gaitedge.cli import main
from gaitedge.config import Config, ModelConfig, dump_toml, from_dict
from gaitedge.errors import ConfigError, ModelError
from gaitedge.models import available, family_defaults
from gaitedge.training.train import with_family_defaults

FAMILIES = available()


def test_there_are_nineteen_families():
    assert len(FAMILIES) == 19


@pytest.mark.parametrize("name", FAMILIES)
def test_train_from_the_bare_name(name, tmp_path, capsys):
    out = tmp_path / name
    rc = main(["train", "--model", name, "--data", "synthetic?n=3&trials=1", "--epochs", "1",
               "--set", "train.steps_per_epoch=1", "--set", "train.batch_size=2", "--set", "train.window_s=1.0",
               "--set", "train.burn_in_s=0.1", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    saved = tomllib.loads((out / "config.toml").read_text())["model"]
    defaults = family_defaults(name)
    # the run folder records the sizes the family chose, not a global default
    assert {k: saved[k] for k in ("hidden", "layers", "dropout")} == {k: defaults[k] for k in ("hidden", "layers", "dropout")}
    tm = load_checkpoint(out)
    assert tm.model.family == name


def test_family_defaults_differ_where_the_family_says():
    assert family_defaults("deep_esn")["layers"] == 2
    assert family_defaults("esn")["layers"] == 1
    assert family_defaults("tcn")["hidden"] != family_defaults("gru")["hidden"]
    with pytest.raises(ModelError, match="unknown model"):
        family_defaults("nope")


def test_explicit_sizes_win_over_family_defaults():
    cfg = with_family_defaults(Config(model=ModelConfig(name="deep_esn", layers=3, hidden=16)))
    assert (cfg.model.layers, cfg.model.hidden, cfg.model.dropout) == (3, 16, 0.0)
    # unset sizes stay unset through TOML and back; a set one round-trips
    raw = Config(model=ModelConfig(name="tcn", hidden=8))
    back = from_dict(tomllib.loads(dump_toml(raw)))
    assert back.model.hidden == 8 and back.model.layers is None


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="model.layers"):
        Config(model=ModelConfig(layers=0)).check()
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict({"model": {"hidden": "big"}})
