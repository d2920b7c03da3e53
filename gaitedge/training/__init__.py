"""Training and everything that scores a trained model.

* :mod:`~gaitedge.training.train` — :func:`train`: data -> model -> run folder
* :mod:`~gaitedge.training.loop` — :func:`fit`, the epoch loop (float training and QAT)
* :mod:`~gaitedge.training.state` — :class:`TrainState` and the resume file
* :mod:`~gaitedge.training.ema`, :mod:`~gaitedge.training.distill` — weight averaging, distillation
* :mod:`~gaitedge.training.distributed` — torchrun process groups and sharding
* :mod:`~gaitedge.training.evaluate`, :mod:`~gaitedge.training.crossval`,
  :mod:`~gaitedge.training.sweep` — scoring, cross-validation, Optuna sweeps
* :mod:`~gaitedge.training.plots` — curves and confusion matrices

Window sampling and augmentation are data-layer code (:mod:`gaitedge.data.windows`,
:mod:`gaitedge.data.augment`).  Submodules are imported where used; importing
this package loads nothing else.
"""
