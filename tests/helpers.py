"""Run directories made from fixed numbers, for testing compare, plot and report without
training. They are written with actbench's own writer, so they follow the run schema."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actbench import config
from actbench.rundir import RunDir, Status, Summary


def fake_run(
    parent: Path,
    act: dict[str, Any],
    seed: int,
    acc: float | None,
    *,
    overrides: dict[str, Any] | None = None,
    curve: list[float] | None = None,
    **extra: Any,
) -> Path:
    """A completed run of the LeNet-style net with the given final accuracy (fraction);
    `curve`: test accuracy per epoch for metrics.csv (default: `acc` at every epoch);
    `slopes` in extra also writes a_values.csv and act_params.csv (PReLU's a, one channel
    per site, epochs 0 and last)."""
    resolved = {"precision": "fp32", "channels_last": False}
    data = {"activation": act, "seed": seed, **(overrides or {})}
    data["train"] = {**resolved, **data.get("train", {})}
    cfg = config.from_mapping(data)
    label = config.activation_label(cfg.activation)
    run = RunDir.create(parent, f"{label}-lenet-mnist-s{seed}", unique=False)
    run.write_config(config.dump(cfg))
    epochs = cfg.train.epochs
    curve = curve if curve is not None else [acc if acc is not None else 0.1] * epochs
    for epoch, value in enumerate(curve, start=1):
        run.append_metrics(
            {
                "epoch": epoch,
                "train_loss": 0.5 / epoch,
                "train_acc": value,
                "test_loss": 0.4 / epoch,
                "test_acc": value,
                "seconds": 6.0,
                "lr": cfg.optim.lr,
            }
        )
    slopes = extra.get("slopes") or {}
    for epoch, rows in (
        (0, [(site, 0, cfg.activation.init) for site in slopes]),
        (len(curve), [(site, 0, v["mean"]) for site, v in slopes.items()]),
    ):
        run.append_slopes(epoch, rows)
        run.append_params(epoch, [(site, "a", None, 0, a) for site, _, a in rows])
    fields = {
        "epochs": len(curve),
        "final_test_acc": acc,
        "best_test_acc": acc,
        "best_epoch": len(curve),
        "params": 21840,
        "train_seconds": 60.0,
        "precision": "fp32",
        "act_params": {site: {"a": v} for site, v in slopes.items()},
        **extra,
    }
    status = fields.pop("status", Status.COMPLETED)
    run.write_summary(Summary.of(run.path.name, cfg, status, **fields))
    return run.path


def summaries(folder: Path) -> dict[str, dict[str, Any]]:
    """Each run's summary.json under folder, by run name (one being replaced this instant is
    left out: the next poll reads it)."""
    out = {}
    for path in folder.glob("*/summary.json"):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except ValueError:
            continue
    return out


def wait_for(
    predicate: Callable[[], bool], proc: subprocess.Popen[str] | None = None, *, bound: float
) -> None:
    """Poll what the program wrote (files, processes) until predicate holds. Fails if proc
    exits first; `bound` (seconds) only catches a hang, so no outcome depends on speed."""
    deadline = time.monotonic() + bound
    while not predicate():
        assert proc is None or proc.poll() is None, proc.communicate() if proc else ""
        assert time.monotonic() < deadline, "the program never wrote what the test waits for"
        time.sleep(0.1)
