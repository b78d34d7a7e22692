"""Training through the CLI on a small real-MNIST subset: the run directory and its files."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from actbench import config, rundir, runner
from actbench.cli import app

from .conftest import DATA_ROOT, QUICK, needs_data

pytestmark = [pytest.mark.slow, needs_data]
cli = CliRunner()


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _train(runs: Path, cfg: str, *extra: str) -> Path:
    before = set(runs.iterdir()) if runs.exists() else set()
    args = ["train", "--config", cfg, "--runs-dir", str(runs), *_sets(QUICK), *_sets(list(extra))]
    result = cli.invoke(app, args, env={"ACTBENCH_DATA": str(DATA_ROOT)})
    assert result.exit_code == 0, result.output
    (run,) = set(runs.iterdir()) - before
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    _train(runs, "relu.yaml")
    _train(runs, "prelu_channel.yaml")
    return runs


def _run(runs: Path, prefix: str) -> Path:
    (path,) = [p for p in runs.iterdir() if p.name.startswith(prefix + "-lenet-s0-")]
    return path


def test_run_directory_holds_every_file(runs: Path) -> None:
    run = _run(runs, "prelu-channel")
    for name in ("config.yaml", "metrics.csv", "summary.json", "a_values.csv", "model.pt"):
        assert (run / name).is_file(), name
    assert not rundir.RunDir(run).lock_path.exists()
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["train"]["epochs"] == 1 and resolved["data"]["train_subset"] == 2000
    assert resolved["activation"] == {"name": "prelu", "per_channel": True, "init": 0.25}
    assert resolved["optim"]["slope_weight_decay"] == 0.0  # every default filled in


def test_metrics_and_summary_agree(runs: Path) -> None:
    run = _run(runs, "prelu-channel")
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert list(rows[0]) == list(rundir.METRIC_FIELDS) and len(rows) == 1
    s = json.loads((run / "summary.json").read_text())
    for key in (
        "name",
        "dataset",
        "net",
        "activation",
        "seed",
        "epochs",
        "final_test_acc",
        "best_test_acc",
        "best_epoch",
        "params",
        "train_seconds",
        "device",
        "status",
        "torch_version",
        "actbench_version",
    ):
        assert key in s, key
    assert s["status"] == "completed" and s["activation"] == "prelu-channel"
    assert s["final_test_acc"] == float(rows[0]["test_acc"])
    # 2000 images, 1 epoch of the classic recipe: ~22% on 10,000 test images, chance is 10%
    assert 0.15 < s["final_test_acc"] <= 1.0
    assert s["params"] == 21_840 + 80  # LeNet weights + one slope per channel
    assert set(s["dead_units"]) == {"conv1", "conv2", "fc1"}


def test_a_values_has_every_slope_and_matches_the_weights(runs: Path) -> None:
    run = _run(runs, "prelu-channel")
    rows = list(csv.DictReader((run / "a_values.csv").open()))
    assert list(rows[0]) == ["epoch", "layer", "channel", "a"]
    by_epoch = {e: [r for r in rows if r["epoch"] == e] for e in ("0", "1")}
    assert [len(v) for v in by_epoch.values()] == [80, 80]  # 10 + 20 + 50 per epoch
    assert all(float(r["a"]) == 0.25 for r in by_epoch["0"])
    weights = torch.load(run / "model.pt")
    for site in ("conv1", "conv2", "fc1"):
        stored = [float(r["a"]) for r in by_epoch["1"] if r["layer"] == site]
        assert stored == weights[f"acts.{site}.weight"].tolist()


def test_relu_run_has_no_slopes(runs: Path) -> None:
    run = _run(runs, "relu")
    assert not (run / "a_values.csv").exists()
    assert json.loads((run / "summary.json").read_text())["slopes"] == {}


def test_compare_lists_both_runs(runs: Path) -> None:
    result = cli.invoke(app, ["compare", str(runs), "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "# Runs (test accuracy, %)"
    table = list(csv.DictReader(lines[1:4]))
    assert sorted(r["activation"] for r in table) == ["prelu-channel", "relu"]
    accs = [float(r["final_acc_%"]) for r in table]
    assert accs == sorted(accs, reverse=True)
    assert "# Learned activation parameters at the last epoch (over channels)" in lines
    start = lines.index("# Learned activation parameters at the last epoch (over channels)") + 2
    slope_rows = lines[start : lines.index("", start)]
    assert [r.split(",")[1] for r in slope_rows] == ["conv1", "conv2", "fc1"]
    assert (
        "# Dead units at the end of training (% of units never non-zero on the test set)" in lines
    )


def test_evaluate_reproduces_the_final_accuracy(runs: Path) -> None:
    run = _run(runs, "prelu-channel")
    result = cli.invoke(app, ["evaluate", str(run)], env={"ACTBENCH_DATA": str(DATA_ROOT)})
    assert result.exit_code == 0, result.output
    acc = json.loads((run / "summary.json").read_text())["final_test_acc"]
    assert f"test accuracy: {100 * acc:.2f}%" in result.stdout
    assert result.stdout.count("%") == 11  # overall + 10 classes


def strip(run: Path) -> list[dict[str, str]]:
    """metrics.csv without the wall-clock column."""
    rows = csv.DictReader((run / "metrics.csv").open())
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_same_config_twice_gives_same_metrics(runs: Path, tmp_path: Path) -> None:
    again = _train(tmp_path, "relu.yaml")
    assert strip(again) == strip(_run(runs, "relu"))


def test_a_run_never_imports_torchvision(tmp_path: Path) -> None:
    """Importing torchvision costs every run process about 2 s (a sweep worker, each test
    that trains in a subprocess): the IDX files are read without it."""
    code = (
        "import sys; from pathlib import Path; from actbench import config, runner; "
        f"runner.train(config.load('relu.yaml', {QUICK!r}), Path({str(tmp_path)!r})); "
        "print('torchvision' in sys.modules)"
    )
    env = {**os.environ, "ACTBENCH_DATA": str(DATA_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"


def test_lenetpp_prelu_runs(tmp_path: Path) -> None:
    run = _train(tmp_path, "lenetpp_prelu.yaml", "data.train_subset=500")
    s = json.loads((run / "summary.json").read_text())
    assert s["test_images"] == 1000  # the first 1,000 test images, and every number says so
    assert s["net"] == "lenetpp" and s["status"] == "completed"
    assert list(s["slopes"]) == [
        "conv1_1",
        "conv1_2",
        "conv2_1",
        "conv2_2",
        "conv3_1",
        "conv3_2",
        "fc1",
    ]
    import numpy as np

    feats = np.load(run / "features2d.npz")
    assert feats["pre"].shape == feats["post"].shape == (1000, 2)  # the test set's features


def test_divergence_is_recorded(tmp_path: Path) -> None:
    args = [
        "train",
        "--config",
        "relu.yaml",
        "--runs-dir",
        str(tmp_path),
        *_sets([*QUICK, "optim.lr=100", "train.epochs=3"]),
    ]
    result = cli.invoke(app, args, env={"ACTBENCH_DATA": str(DATA_ROOT)})
    assert result.exit_code == 1
    assert "diverged: the training loss blew up in epoch 1" in result.stderr
    (run,) = tmp_path.iterdir()
    s = json.loads((run / "summary.json").read_text())
    assert (s["status"], s["diverged_epoch"], s["epochs"]) == ("diverged", 1, 1)
    table = cli.invoke(app, ["compare", str(tmp_path), "--format", "json"])
    (row,) = json.loads(table.stdout)[0]["rows"]
    assert row["status"] == "diverged" and row["final_acc_%"] is None


def test_a_dead_network_stops_early_as_stalled(tmp_path: Path) -> None:
    """A network whose first layer outputs 0 everywhere stops after two epochs (dead at both
    ends) as stalled, counted as a failure to train; with stop_dead off it trains on."""
    dead = [*QUICK, "activation.name=tests.user_acts:Dead", "train.epochs=4"]
    env = {"ACTBENCH_DATA": str(DATA_ROOT)}
    args = ["train", "-c", "relu.yaml", "--runs-dir", str(tmp_path / "stop"), *_sets(dead)]
    result = cli.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "stop").iterdir()
    assert result.stderr.startswith(
        "stalled: stopped after epoch 2, conv1 is dead (every unit output 0 for every training "
        "image at consecutive epoch ends, so nothing below it can learn); final accuracy "
    )
    s = json.loads((run / "summary.json").read_text())
    ending = (s["status"], s["epochs"], s["epochs_planned"], s["dead_site"])
    assert ending == ("stalled", 2, 4, "conv1")
    assert s["final_test_acc"] < rundir.CHANCE + rundir.STALL_MARGIN
    assert s["dead_units"] == {"conv1": 1.0, "conv2": 1.0, "fc1": 1.0}
    assert (run / "model.pt").is_file()
    table = cli.invoke(app, ["compare", str(tmp_path / "stop"), "--format", "json"])
    (row,) = json.loads(table.stdout)[0]["rows"]
    assert (row["status"], row["epochs"]) == ("stalled", 2)
    again = cli.invoke(app, ["train", "--resume", str(run)], env=env)
    assert again.exit_code == 2
    assert "stalled (near chance, or its network died); nothing to resume" in again.stderr

    on = ["train", "-c", "relu.yaml", "--runs-dir", str(tmp_path / "on"),
          *_sets([*dead, "train.stop_dead=false"])]  # fmt: skip
    assert cli.invoke(app, on, env=env).exit_code == 0
    (full,) = (tmp_path / "on").iterdir()
    assert rundir.load_run(full).summary.epochs == 4
    assert rundir.load_run(full).status == "stalled"  # derived: completed near chance
    # the same experiment: stop_dead changes when a dead run ends, not what it measures
    assert rundir.load_run(full).fingerprint == rundir.load_run(run).fingerprint


def test_a_resumed_dead_run_stops_where_an_uninterrupted_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after its first dead epoch end, resumed: the check at the checkpoint's
    epoch end is repeated, so it stops after epoch 2 as the run above did, not after 3."""
    monkeypatch.setenv("ACTBENCH_DATA", str(DATA_ROOT))
    sets = [*QUICK, "activation.name=tests.user_acts:Dead", "train.epochs=4"]

    def interrupt(result: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, between epochs

    cut, summary = runner.train(config.load("relu.yaml", sets), tmp_path, on_epoch=interrupt)
    assert (summary.status, summary.epochs) == ("interrupted", 1)
    run, trainer = runner.prepare_resume(cut.path)
    resumed = runner.execute(run, trainer, resumed=True)
    assert (resumed.status, resumed.epochs, resumed.dead_site) == ("stalled", 2, "conv1")


def test_stop_dead_never_changes_a_run_that_is_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run below the stall line but alive (a tiny lr: ~10% after each epoch) is checked
    for a dead site after every epoch and trains bit for bit as with stop_dead off."""
    monkeypatch.setenv("ACTBENCH_DATA", str(DATA_ROOT))
    sets = [*QUICK, "optim.lr=1e-6", "train.epochs=2"]
    (a, on), (b, off) = (
        runner.train(config.load("relu.yaml", [*sets, f"train.stop_dead={flag}"]), tmp_path / flag)
        for flag in ("true", "false")
    )
    assert on.status == off.status == "completed" and on.dead_site is None
    assert max(m["train_acc"] for m in rundir.load_run(a.path).metrics) < rundir.CHANCE + 0.05
    assert strip(a.path) == strip(b.path)
    model_a, model_b = torch.load(a.path / "model.pt"), torch.load(b.path / "model.pt")
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)


@pytest.mark.parametrize(
    "path",
    [
        ["train.precision=fp32", "train.channels_last=false"],
        ["train.precision=fp32", "train.channels_last=true"],
        ["train.precision=bf16", "train.channels_last=true"],
        [],  # auto: the path calibration chose, kept by the resumed run
    ],
    ids=["fp32-nchw", "fp32-channels_last", "bf16-channels_last", "calibrated"],
)
def test_resume_is_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: list[str]
) -> None:
    monkeypatch.setenv("ACTBENCH_DATA", str(DATA_ROOT))
    overrides = [*QUICK, "train.epochs=3", "activation.per_channel=true", *path]
    whole, _ = runner.train(config.load("prelu.yaml", overrides), tmp_path / "a")

    def interrupt_after_first(result: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, between epochs

    cut, summary = runner.train(
        config.load("prelu.yaml", overrides), tmp_path / "b", on_epoch=interrupt_after_first
    )
    assert summary.status == "interrupted" and summary.epochs == 1
    assert len(rundir.load_run(cut.path).metrics) == 1
    run, trainer = runner.prepare_resume(cut.path)
    assert trainer.epoch == 1
    summary = runner.execute(run, trainer, resumed=True)
    assert summary.status == "completed" and summary.epochs == 3

    def without_seconds(r: rundir.RunDir) -> list[dict[str, float]]:
        metrics = rundir.load_run(r.path).metrics
        return [{k: v for k, v in m.items() if k != "seconds"} for m in metrics]

    assert without_seconds(cut) == without_seconds(whole)
    assert rundir.load_run(cut.path).slopes == rundir.load_run(whole.path).slopes
    a, b = torch.load(whole.path / "model.pt"), torch.load(cut.path / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert summary.calibration == rundir.load_run(whole.path).summary.calibration
    assert bool(summary.calibration) == (path == [])
    # where and when: both invocations' intervals, in order, the last ending at the heartbeat
    record = rundir.load_run(cut.path).summary
    (s1, e1), (s2, e2) = record.sessions
    assert s1 < e1 <= s2 < e2 == record.heartbeat and record.machine == rundir.MACHINE


def _without_seconds(path: Path) -> list[dict[str, float]]:
    return [{k: v for k, v in m.items() if k != "seconds"} for m in rundir.load_run(path).metrics]


def test_a_calibrated_run_trains_bit_for_bit_like_its_path_set_explicitly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTBENCH_DATA", str(DATA_ROOT))
    overrides = [*QUICK, "train.epochs=2", "activation.per_channel=true"]
    auto, summary = runner.train(config.load("prelu.yaml", overrides), tmp_path / "auto")
    [calibration] = summary.calibration
    assert calibration.settings == ["train.channels_last"]  # LeNet: fp32 is its one precision
    text = (auto.path / rundir.CONFIG).read_text()
    head, body = text.split("\n", 1)
    assert head == (
        "# train.channels_last: chosen by timing each candidate path "
        "(summary.json: calibration says where and what)"
    )
    path = rundir.load_run(auto.path).cfg.train
    assert path.channels_last == (calibration.chosen == "fp32 channels_last")
    pinned = [f"train.precision={path.precision}", f"train.channels_last={path.channels_last}"]
    explicit, again = runner.train(
        config.load("prelu.yaml", [*overrides, *(p.lower() for p in pinned)]), tmp_path / "set"
    )
    assert again.calibration == [] and again.fingerprint == summary.fingerprint
    assert (explicit.path / rundir.CONFIG).read_text() == body
    assert _without_seconds(explicit.path) == _without_seconds(auto.path)
    for name in (rundir.SLOPES, rundir.PARAMS, rundir.SHAPES):
        assert (explicit.path / name).read_bytes() == (auto.path / name).read_bytes()
    a, b = (torch.load(r.path / rundir.MODEL) for r in (auto, explicit))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
