"""Settings of the tiny synthetic training runs shared by the tests (not a test module)."""

from gaitedge.config import Config

#: ``gaitedge train`` arguments: 5 synthetic subjects (syn5 validates), GRU-16, one thread.
TINY_TRAIN = [
    "--data", "synthetic?n=5&trials=2",
    "--set", "model.hidden=16",
    "--set", "train.steps_per_epoch=12",
    "--set", "train.batch_size=16",
    "--set", "train.window_s=2.5",
    "--set", "train.patience=50",
    "--set", "data.val_subjects=['syn5']",
    "--set", "train.threads=1",
]


def tiny_config(**train) -> Config:
    """The same run as ``TINY_TRAIN`` as a :class:`Config`; keyword arguments override ``[train]`` keys."""
    cfg = Config()
    cfg.data.train = "synthetic?n=5&trials=2"
    cfg.data.val_subjects = ["syn5"]
    cfg.model.hidden = 16
    cfg.train.steps_per_epoch = 12
    cfg.train.batch_size = 16
    cfg.train.window_s = 2.5
    cfg.train.patience = 50
    cfg.train.threads = 1
    for key, value in train.items():
        if not hasattr(cfg.train, key):
            raise KeyError(f"train.{key}")
        setattr(cfg.train, key, value)
    return cfg
