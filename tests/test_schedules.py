"""Learning-rate schedules: config validation, the lr per epoch, and bit-for-bit resume in the
middle of a schedule."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
import torch

from actbench import config, rundir, runner
from actbench.errors import ActbenchError

from .conftest import DATA_ROOT, QUICK, needs_data


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["optim.schedule=warmup"], "optim.schedule: unknown value 'warmup'"),
        (["optim.gamma=0.5"], "optim.gamma does not apply to schedule none"),
        (["optim.schedule=step", "optim.max_lr=1"], "optim.max_lr does not apply to schedule step"),
        (["optim.schedule=multistep", "optim.milestones=[8, 5]"], "must be increasing epochs"),
        (["optim.schedule=multistep", "optim.milestones=[]"], "must be increasing epochs"),
        (["optim.schedule=step", "optim.gamma=0"], "optim.gamma: must be greater than 0"),
        (["optim.schedule=onecycle", "optim.pct_start=1"], "optim.pct_start: must be less than 1"),
    ],
)
def test_bad_schedules_are_named(sets: list[str], message: str) -> None:
    with pytest.raises(ActbenchError, match=re.escape(message)):
        config.load("relu.yaml", sets)


def test_lenetpp_configs_share_one_recipe() -> None:
    for name in ("lenetpp_relu", "lenetpp_prelu", "lenetpp_prelu_channel"):
        cfg = config.load(f"{name}.yaml")
        assert config.to_dict(cfg)["optim"] == {
            "name": "sgd",
            "lr": 0.01,
            "momentum": 0.9,
            "weight_decay": 0.0005,
            "slope_weight_decay": 0.0,
            "schedule": "cosine",
            "min_lr": 0.0,
        }, name
        assert (cfg.data.shift, cfg.train.batch_size, cfg.train.epochs) == (2, 128, 10), name


SCHEDULES = {
    "multistep": ["optim.schedule=multistep", "optim.milestones=[1, 2]", "optim.gamma=0.5"],
    "cosine": ["optim.schedule=cosine", "optim.min_lr=0.001"],
    "onecycle": ["optim.schedule=onecycle", "optim.max_lr=0.05"],
    # augmentation draws its offsets from the batch generator, which checkpoints carry
    "cosine-shift": ["optim.schedule=cosine", "data.shift=2"],
}


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_resume_mid_schedule_is_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schedule: str
) -> None:
    monkeypatch.setenv("ACTBENCH_DATA", str(DATA_ROOT))
    overrides = [*QUICK, "data.train_subset=1000", "train.epochs=3", *SCHEDULES[schedule]]
    whole, _ = runner.train(config.load("prelu.yaml", overrides), tmp_path / "a")

    def interrupt_after_first(result: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, between epochs

    cut, summary = runner.train(
        config.load("prelu.yaml", overrides), tmp_path / "b", on_epoch=interrupt_after_first
    )
    assert summary.status == "interrupted"
    run, trainer = runner.prepare_resume(cut.path)
    runner.execute(run, trainer, resumed=True)

    def lrs_and_losses(path: Path) -> list[tuple[float, float, float]]:
        return [(m["lr"], m["train_loss"], m["test_acc"]) for m in rundir.load_run(path).metrics]

    assert lrs_and_losses(cut.path) == lrs_and_losses(whole.path)
    lrs = [lr for lr, _, _ in lrs_and_losses(whole.path)]
    if schedule == "multistep":
        assert lrs == pytest.approx([0.01, 0.005, 0.0025])  # x0.5 after epochs 1 and 2
    assert len(set(lrs)) > 1  # the lr really moved
    a, b = torch.load(whole.path / "model.pt"), torch.load(cut.path / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
