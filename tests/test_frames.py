"""The pandas API: the same runs, numbers and skip rule as compare."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import actbench
from actbench.cli import app

from .conftest import REPO
from .helpers import fake_run

SLOPES = {"conv1": {"mean": 0.3, "min": 0.3, "max": 0.3, "n": 1}}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    for seed in range(3):
        fake_run(tmp_path, {"name": "relu"}, seed, 0.98 + seed / 1000)
        fake_run(tmp_path, {"name": "prelu"}, seed, 0.985, slopes=SLOPES)
    return tmp_path


def test_load_runs_gives_one_row_per_run(runs: Path) -> None:
    df = actbench.load_runs(runs)
    assert len(df) == 6
    assert {"name", "path", "status", "fingerprint", "final_test_acc", "activation", "seed"} <= set(
        df.columns
    )
    assert "config.optim.lr" in df.columns and (df["config.optim.lr"] == 0.01).all()
    relu = df[df.activation == "relu"].sort_values("seed")
    assert relu.final_test_acc.tolist() == [0.98, 0.981, 0.982]
    # the same numbers compare prints
    table = json.loads(CliRunner().invoke(app, ["compare", str(runs), "-f", "json"]).stdout)[0][
        "rows"
    ]
    mean = next(r for r in table if r["group"] == "relu")["final_acc_mean"]
    assert 100 * relu.final_test_acc.mean() == pytest.approx(mean, abs=1e-3)


def test_long_tables(runs: Path) -> None:
    metrics = actbench.load_metrics(runs)
    assert len(metrics) == 6 * 10 and list(metrics.columns[-9:]) == [
        "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "lr",
        "val_loss", "val_acc",
    ]  # fmt: skip
    slopes = actbench.load_slopes(runs)
    assert len(slopes) == 3 * 2  # prelu runs: epochs 0 and 10, one site, one channel
    assert set(slopes.epoch) == {0, 10} and set(slopes.site) == {"conv1"}
    assert slopes[slopes.epoch == 10].a.tolist() == [0.3] * 3


def test_damaged_runs_are_skipped_with_a_warning(runs: Path) -> None:
    (runs / "relu-lenet-mnist-s1" / "summary.json").write_text("{")
    with pytest.warns(UserWarning, match="relu-lenet-mnist-s1/summary.json: damaged"):
        df = actbench.load_runs(runs)
    assert len(df) == 5


def test_import_actbench_does_not_import_pandas_or_torch() -> None:
    code = "import sys, actbench; print('pandas' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]
