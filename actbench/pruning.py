"""Pruning a tuning trial from the process that trains it: each epoch's validation accuracy
goes to the trial's Optuna study, whose pruner says whether to stop. Optuna is imported
only here and in tune.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from actbench.plan import TrialRef

PRUNERS = ("none", "median", "halving", "hyperband")
# Successive halving keeps the best 1 / REDUCTION of the trials at each rung (Optuna's and
# Li et al.'s default, 3).
REDUCTION = 3


def make_pruner(name: str, epochs: int) -> Any:
    """The Optuna pruner a tune file names; resources are epochs (min 1, max the trial's)."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=REDUCTION, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=epochs, reduction_factor=REDUCTION
        )
    return optuna.pruners.NopPruner()


def quiet() -> None:
    """Optuna logs every trial at INFO; actbench prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def judge(ref: TrialRef) -> Callable[[int, float], bool]:
    """(epoch, validation accuracy) -> whether the trial's pruner stops it now."""
    import optuna

    quiet()
    study = optuna.load_study(
        study_name=ref.study, storage=ref.storage, pruner=make_pruner(ref.pruner, ref.epochs)
    )
    trial = optuna.trial.Trial(study, ref.trial_id)

    def prune(epoch: int, val_acc: float) -> bool:
        if ref.pruner == "none" or math.isnan(val_acc):
            return False
        trial.report(val_acc, epoch)  # a resumed trial re-reporting an epoch is ignored
        return trial.should_prune()

    return prune
