"""Run directories made from fixed numbers, for testing compare without training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actbench import config
from actbench.rundir import RunDir


def fake_run(parent: Path, act: dict[str, Any], seed: int, acc: float | None, **extra: Any) -> Path:
    """A completed run of the LeNet-style net with the given final accuracy (fraction)."""
    resolved = {"precision": "fp32", "channels_last": False}
    cfg = config.from_mapping({"activation": act, "seed": seed, "train": resolved})
    label = config.activation_label(cfg.activation)
    run = RunDir.create(parent, f"{label}-lenet-mnist-s{seed}", unique=False)
    run.write_config(config.dump(cfg))
    summary = {
        "name": run.path.name,
        "fingerprint": config.fingerprint(cfg),
        "dataset": "mnist",
        "net": "lenet",
        "activation": label,
        "seed": seed,
        "epochs": 10,
        "final_test_acc": acc,
        "best_test_acc": acc,
        "best_epoch": 10,
        "params": 21840,
        "train_seconds": 60.0,
        "status": "completed",
        "precision": "fp32",
        **extra,
    }
    run.write_summary(summary)
    return run.path
