"""Re-evaluate a stored run on the test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actbench import config as cfgmod
from actbench.errors import ActbenchError
from actbench.rundir import CHECKPOINT, MODEL, read_run


def evaluate_run(path: Path, data_dir: Path | None = None) -> dict[str, Any]:
    """Test loss, accuracy and per-class accuracy of a run's final (else last saved) weights."""
    from actbench.train import Trainer

    record = read_run(path)
    cfg = cfgmod.from_mapping(record.config)
    cfg.train.device = "auto"  # the machine evaluating may differ from the one that trained
    cfg.train.compile = False
    if data_dir is not None:
        cfg.data.root = str(data_dir)
    if (path / MODEL).is_file():
        weights, source = record.dir.load_torch(MODEL), MODEL
    elif (path / CHECKPOINT).is_file():
        weights, source = record.dir.load_torch(CHECKPOINT)["model"], f"{CHECKPOINT} (last epoch)"
    else:
        raise ActbenchError(f"{path}: no {MODEL} or {CHECKPOINT} to evaluate")
    trainer = Trainer(cfg)
    try:
        trainer.model.load_state_dict(weights)
    except (RuntimeError, KeyError) as exc:
        raise ActbenchError(f"{path}/{MODEL} does not match its config.yaml: {exc}") from None
    return {**trainer.evaluate(), "weights": source}
