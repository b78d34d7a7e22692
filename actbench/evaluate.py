"""Re-evaluate a stored run on the test set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from actbench.errors import ActbenchError
from actbench.rundir import CHECKPOINT, MODEL, load_run

if TYPE_CHECKING:
    from actbench.train import Evaluation


def evaluate_run(path: Path, data_dir: Path | None = None) -> tuple[Evaluation, str]:
    """Test loss, accuracy and per-class accuracy of a run's final (else last saved) weights,
    and which weights file they came from."""
    from actbench.train import Trainer

    record = load_run(path)
    cfg = record.cfg
    cfg.train.device = "auto"  # the machine evaluating may differ from the one that trained
    cfg.train.compile = False
    cfg.train.eval_test = True  # a tuning trial never read the test set; evaluating does
    if data_dir is not None:
        cfg.data.root = str(data_dir)
    if (path / MODEL).is_file():
        weights, source = record.dir.load_torch(MODEL), MODEL
    elif (path / CHECKPOINT).is_file():
        state = record.dir.load_torch(CHECKPOINT)
        if not isinstance(state, dict) or "model" not in state:
            raise ActbenchError(f"{path / CHECKPOINT}: not an actbench checkpoint")
        weights, source = state["model"], f"{CHECKPOINT} (last epoch)"
    else:
        raise ActbenchError(f"{path}: no {MODEL} or {CHECKPOINT} to evaluate")
    trainer = Trainer(cfg)
    try:
        trainer.model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise ActbenchError(
            f"{path}/{source.split()[0]} does not fit its config.yaml: {first}"
        ) from None
    return trainer.evaluate(), source
