"""Command-line settings of the tiny synthetic training runs shared by the CLI tests (not a test module)."""

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
