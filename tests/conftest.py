"""Shared fixtures: the real data root, and shrunk copies of the shipped configs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "actbench" / "configs"


def _data_root() -> Path | None:
    for candidate in (os.environ.get("ACTBENCH_DATA"), REPO / "data", REPO.parent / "shared/data"):
        if candidate and (Path(candidate) / "MNIST/raw/train-images-idx3-ubyte").is_file():
            return Path(candidate)
    return None


DATA_ROOT = _data_root()

# The execution path `auto` takes is timed once per key (calibrate.py) and cached: the tests
# (and the processes they start, which inherit this) share one cache of their own, so a
# user's cache is neither read nor written, and every test of a session sees the same choice.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="actbench-tests-cache-")
needs_data = pytest.mark.skipif(DATA_ROOT is None, reason="real MNIST not found")


@pytest.fixture
def data_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    if DATA_ROOT is None:
        pytest.skip("real MNIST not found")
    monkeypatch.setenv("ACTBENCH_DATA", str(DATA_ROOT))
    return DATA_ROOT


# Shrinks a shipped config to seconds: small training and test subsets (a pass over all 10,000
# test images costs more than training on 2,000: LeNet++ or emulated bf16 take minutes), one
# epoch, CPU.
QUICK = ["data.train_subset=2000", "data.test_subset=1000", "train.epochs=1", "train.device=cpu"]


@pytest.fixture(autouse=True)
def _close_figures() -> object:
    """Tests that draw without saving (to read Plot.data) leave no figure open."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
