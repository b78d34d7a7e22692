"""Precision, memory format and torch.compile options: they train, and fall back cleanly."""

from __future__ import annotations

import pytest
import torch

from actbench import calibrate, config
from actbench.train import Trainer

from .conftest import needs_data

pytestmark = [pytest.mark.slow, needs_data]
SMALL = ["data.train_subset=3000", "data.test_subset=1000", "train.device=cpu", "train.epochs=2"]
# The fallback tests compare a run with its eager twin for equality, which any size shows
TINY = ["data.train_subset=500", "data.test_subset=500", "train.device=cpu", "train.epochs=1"]


def _accuracy(*overrides: str, size: list[str] = SMALL) -> tuple[float, Trainer]:
    trainer = Trainer(calibrate.resolve(config.load("prelu.yaml", [*size, *overrides])))
    for _ in range(trainer.cfg.train.epochs):
        trainer.train_epoch()
    return trainer.evaluate().acc, trainer


@pytest.mark.usefixtures("data_root")
def test_bf16_and_channels_last_train_like_fp32() -> None:
    fp32, _ = _accuracy("train.precision=fp32", "train.channels_last=false")
    fast, trainer = _accuracy("train.precision=bf16", "train.channels_last=true")
    assert trainer.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # 3000 images, 2 epochs: ~60%; same seed and data, so only rounding differs
    assert fp32 > 0.5 and abs(fast - fp32) < 0.03


@pytest.mark.usefixtures("data_root")
def test_compile_falls_back_when_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    acc, trainer = _accuracy("train.compile=true", size=TINY)
    assert trainer.notes == ["torch.compile unavailable, running eager: no compiler here"]
    eager, _ = _accuracy(size=TINY)
    assert acc == eager


@pytest.mark.usefixtures("data_root")
def test_compile_failing_at_first_call_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def lazy(model: torch.nn.Module) -> object:
        def call(x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("inductor failed")

        return call

    monkeypatch.setattr(torch, "compile", lazy)
    acc, trainer = _accuracy("train.compile=true", size=TINY)
    assert trainer.notes == ["torch.compile failed, running eager: inductor failed"]
    assert acc == _accuracy(size=TINY)[0]
