import pytest

from gaitedge.config import Config, apply_override, dump_toml, from_dict, load_config
from gaitedge.errors import ConfigError

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_defaults_and_roundtrip(tmp_path):
    cfg = Config()
    cfg.model.name = "lstm"
    cfg.data.val_subjects = ["1", "2"]
    p = tmp_path / "c.toml"
    p.write_text(dump_toml(cfg))
    assert load_config(p).to_dict() == cfg.to_dict()


def test_unknown_key_and_table_name_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[train]\nepochz = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml: unknown key 'epochz' in \[train\]"):
        load_config(p)
    p.write_text("[trian]\nepochs = 3\n")
    with pytest.raises(ConfigError, match=r"unknown table \[trian\]"):
        load_config(p)
    p.write_text("[train]\nepochs = 'many'\n")
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(p)
    p.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml")


def test_overrides():
    cfg = Config()
    apply_override(cfg, "train.lr=0.01")
    apply_override(cfg, "data.train=ipol?subjects=1-3")
    apply_override(cfg, "model.hidden=8")
    assert cfg.train.lr == 0.01 and cfg.data.train == "ipol?subjects=1-3" and cfg.model.hidden == 8
    with pytest.raises(ConfigError):
        apply_override(cfg, "train.nothing=1")
    with pytest.raises(ConfigError):
        apply_override(cfg, "lr=1")


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    from gaitedge.models import available

    assert cfg.model.name in available()
    assert from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
