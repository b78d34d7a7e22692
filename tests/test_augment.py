"""data.shift: random translation of training images, seeded and resumable, and invisible to
the fingerprint of runs written before it existed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from actbench import config, data, rundir
from actbench.errors import ActbenchError

from .conftest import QUICK, REPO


def _offsets(x: torch.Tensor, out: torch.Tensor, shift: int) -> list[tuple[int, int]]:
    """For each image, the (dy, dx) whose edge-padded crop of x equals out (exactly one)."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    found = []
    for n in range(len(x)):
        hits = [
            (dy - shift, dx - shift)
            for dy in range(2 * shift + 1)
            for dx in range(2 * shift + 1)
            if torch.equal(padded[n, :, dy : dy + h, dx : dx + w], out[n])
        ]
        assert len(hits) == 1, (n, hits)
        found.append(hits[0])
    return found


def test_each_image_moves_by_its_own_offset_within_the_bound() -> None:
    x = torch.randn(200, 3, 9, 7)  # distinct pixels: every crop is unique
    out = data.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    offsets = _offsets(x, out, 2)
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in offsets)
    assert len(set(offsets)) == 25  # every offset of the 5 x 5 drawn across 200 images
    again = data.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # the generator alone decides


def test_shift_is_validated_and_in_the_fingerprint_only_when_used() -> None:
    with pytest.raises(ActbenchError, match=re.escape("data.shift: must be less than or equal")):
        config.load("relu.yaml", ["data.shift=15"])
    with pytest.raises(ActbenchError, match=re.escape("data.shift: must be greater than or equal")):
        config.load("relu.yaml", ["data.shift=-1"])
    plain = config.from_mapping({"train": {"precision": "fp32"}})
    shifted = config.from_mapping({"train": {"precision": "fp32"}, "data": {"shift": 2}})
    assert "data.shift" not in config.identity(plain)
    assert config.identity(shifted)["data.shift"] == 2
    assert config.differences(plain, shifted) == ["data.shift: 0 != 2"]


def test_runs_written_before_shift_existed_keep_their_fingerprint() -> None:
    path = REPO / "results" / "mnist-lenet" / "prelu-lenet-mnist-s0"
    assert "shift" not in (path / "config.yaml").read_text()
    run = rundir.load_run(path)  # checks summary.json's fingerprint against config.yaml's
    assert run.cfg.data.shift == 0


def test_shift_moves_training_images_only(data_root: Path, tmp_path: Path) -> None:
    from actbench import calibrate
    from actbench.train import Trainer

    def trainer(shift: int) -> Trainer:
        cfg = config.load("prelu.yaml", [*QUICK, "data.train_subset=256", f"data.shift={shift}"])
        return Trainer(calibrate.resolve(cfg))

    still, moved = trainer(0), trainer(2)
    assert torch.equal(still.train_set.x, moved.train_set.x)  # the data itself is untouched
    assert still.train_epoch() != moved.train_epoch()  # training saw other images
    drawn = moved.batch_gen.get_state()
    first = moved.evaluate()
    assert torch.equal(moved.batch_gen.get_state(), drawn)  # a shift would draw offsets
    assert moved.evaluate() == first
