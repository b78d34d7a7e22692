"""Sweeps: expansion, names, overrides, skip / resume / redo, and failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actbench import config, plan, sweep
from actbench.cli import app
from actbench.rundir import RunDir

from .conftest import DATA_ROOT, QUICK, needs_data
from .helpers import fake_run

cli = CliRunner()


def test_activations_sweep_expands_to_35_named_runs() -> None:
    plan = sweep.load("sweeps/activations.yaml", ["train.epochs=2", "data.train_subset=5000"])
    assert plan.name == "activations" and len(plan.runs) == 35
    names = [n for n, _ in plan.runs]
    assert len(set(names)) == 35
    assert names[:2] == ["relu-lenet-mnist-s0", "relu-lenet-mnist-s1"]
    labels = {
        c.activation.name + ("-channel" if c.activation.per_channel else "") for _, c in plan.runs
    }
    assert labels == {"relu", "leaky_relu", "prelu", "prelu-channel", "rrelu", "elu", "selu"}
    assert {c.seed for _, c in plan.runs} == set(range(5))
    assert all(c.train.epochs == 2 and c.data.train_subset == 5000 for _, c in plan.runs)
    assert all(c.optim.momentum == 0.5 and c.model.net == "lenet" for _, c in plan.runs)


def test_lenetpp_sweep_keeps_its_recipe() -> None:
    plan = sweep.load("lenetpp.yaml")
    assert len(plan.runs) == 9
    assert all(c.model.net == "lenetpp" and c.optim.momentum == 0.9 for _, c in plan.runs)
    assert {n.rsplit("-s", 1)[0] for n, _ in plan.runs} == {
        "relu-lenetpp-mnist",
        "prelu-lenetpp-mnist",
        "prelu-channel-lenetpp-mnist",
    }


def test_other_axes_enter_the_name(tmp_path: Path) -> None:
    spec = tmp_path / "lr.yaml"
    spec.write_text(
        "base: prelu.yaml\nseeds: [3]\naxes:\n  optim.lr: [0.01, 0.1]\n"
        "  model.net: [lenet, lenetpp]\n"
    )
    names = [n for n, _ in sweep.load(spec).runs]
    assert names == [
        "prelu-lenet-mnist-lr0.01-s3",
        "prelu-lenetpp-mnist-lr0.01-s3",
        "prelu-lenet-mnist-lr0.1-s3",
        "prelu-lenetpp-mnist-lr0.1-s3",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds: 0\n", "seeds must be a count 1..1000 or a list of ints, got 0"),
        ("name: ../x\n", "sweep name: '../x' is not allowed"),
        ("name: /abs\n", "sweep name: '/abs' is not allowed"),
        ("axis: {}\n", "unknown key 'axis' (did you mean 'axes'?)"),
        ("axes:\n  activation: [{name: swishy}]\n", "activation.name: unknown value 'swishy'"),
        ("axes:\n  optim.lr: 0.1\n", "axes must map keys to non-empty lists"),
    ],
)
def test_bad_sweeps_exit_2(tmp_path: Path, text: str, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    result = cli.invoke(app, ["sweep", "--config", str(spec), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "r").exists()


def _cfg(act: dict, seed: int) -> config.Config:
    return config.from_mapping(
        {"activation": act, "seed": seed, "train": {"precision": "fp32", "channels_last": False}}
    )


def test_plan_of_existing_runs(tmp_path: Path) -> None:
    relu = {"name": "relu"}
    done = fake_run(tmp_path, relu, 0, 0.98)
    assert plan.plan_run(done, _cfg(relu, 0)).action == "skip"
    assert plan.plan_run(tmp_path / "missing", _cfg(relu, 0)).action == "new"
    other = plan.plan_run(done, _cfg(relu, 0).model_copy(update={"seed": 5}))
    assert (other.action, other.detail) == ("mismatch", "seed: 0 != 5")
    broken = fake_run(tmp_path, relu, 1, 0.98)
    (broken / "summary.json").write_text("{")
    assert plan.plan_run(broken, _cfg(relu, 1)).action == "damaged"  # never redone
    cut = fake_run(tmp_path, relu, 2, 0.98)
    summary = json.loads((cut / "summary.json").read_text())
    (cut / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    assert plan.plan_run(cut, _cfg(relu, 2)).action == "redo"  # no checkpoint to resume from
    (cut / "checkpoint.pt").write_bytes(b"x")
    assert plan.plan_run(cut, _cfg(relu, 2)).action == "resume"
    RunDir(done).lock()  # held by this (live) process: not another's
    assert plan.plan_run(done, _cfg(relu, 0)).action == "skip"


@pytest.mark.slow
@needs_data
def test_sweep_skips_redoes_and_survives_failures(tmp_path: Path) -> None:
    mnist_only = tmp_path / "data"  # Fashion-MNIST missing: its runs fail on every machine
    mnist_only.mkdir()
    (mnist_only / "MNIST").symlink_to(DATA_ROOT / "MNIST")
    spec = tmp_path / "mini.yaml"
    spec.write_text(
        "name: mini\nbase: relu.yaml\nseeds: 2\naxes:\n"
        "  activation: [{name: relu}, {name: prelu, per_channel: true}]\n"
        "  data.dataset: [mnist, fashion_mnist]\n"
    )
    sets = [a for s in QUICK for a in ("--set", s)]
    args = ["sweep", "--config", str(spec), "--runs-dir", str(tmp_path), *sets]
    args += ["--data-dir", str(mnist_only)]
    first = cli.invoke(app, [*args, "--workers", "2"])
    assert first.exit_code == 1  # the fashion runs fail here, the others complete
    assert (
        first.stdout.splitlines()[-1]
        == f"4 completed, 4 failed, 0 skipped of 8 runs in {tmp_path / 'mini'}"
    )
    assert "fashion_mnist not found" in first.stdout
    folder = tmp_path / "mini"
    assert (folder / "summary.csv").is_file() and (folder / "summary.md").is_file()
    completed = sorted(p.name for p in folder.iterdir() if p.is_dir() and "-mnist-" in p.name)
    assert completed == [
        "prelu-channel-lenet-mnist-s0",
        "prelu-channel-lenet-mnist-s1",
        "relu-lenet-mnist-s0",
        "relu-lenet-mnist-s1",
    ]
    model = (folder / completed[0] / "model.pt").stat().st_mtime_ns

    again = cli.invoke(app, args)
    assert "4 completed" not in again.stdout and "4 skipped" in again.stdout
    assert (folder / completed[0] / "model.pt").stat().st_mtime_ns == model  # untouched

    shutil.rmtree(folder / completed[2])
    third = cli.invoke(app, args)
    lines = [line for line in third.stdout.splitlines() if "completed " in line and "/8]" in line]
    assert [line.split()[2] for line in lines] == [completed[2]]


@pytest.mark.slow
@needs_data
def test_failed_runs_are_redone_and_kept_aside(tmp_path: Path) -> None:
    spec = tmp_path / "one.yaml"
    spec.write_text("name: one\nbase: relu.yaml\nseeds: 1\n")
    args = ["sweep", "--config", str(spec), "--runs-dir", str(tmp_path)]
    args += [a for s in QUICK for a in ("--set", s)]
    missing = cli.invoke(app, [*args, "--data-dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "1 failed" in missing.stdout
    run = tmp_path / "one" / "relu-lenet-mnist-s0"
    assert not run.exists()  # data missing: nothing was created
    # A run that failed after its folder existed (here: written by hand as a failure record).
    quick = {"data": {"train_subset": 2000, "test_subset": 1000}, "train": {"epochs": 1}}  # QUICK
    fake_run(tmp_path / "one", {"name": "relu"}, 0, None, status="failed", overrides=quick)
    (run / "notes.txt").write_text("mine")
    redo = cli.invoke(app, [*args, "--data-dir", str(DATA_ROOT)])
    assert redo.exit_code == 0, redo.output
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    kept = tmp_path / "one" / ".attempts" / "relu-lenet-mnist-s0.1"
    assert (kept / "notes.txt").read_text() == "mine"


@pytest.mark.slow
@needs_data
def test_an_error_in_the_driver_stops_the_runs_in_flight(tmp_path: Path) -> None:
    """When the driver's own code raises while runs train (a tune's storage failing as it
    records a trial), the runs in flight stop within a batch, resumable, and the error
    comes out; nothing trains on unseen for hours."""
    quick = {"train_subset": 100, "test_subset": 100, "root": str(DATA_ROOT)}
    long = _cfg({"name": "relu"}, 0).model_copy(deep=True)
    long.data = long.data.model_copy(update=quick)
    long.train = long.train.model_copy(update={"epochs": 300, "device": "cpu"})
    broken = long.model_copy(deep=True)
    broken.data.root = str(tmp_path / "no-data")  # fails at once: no MNIST there
    runs = plan.Sweep("mini", [("long", long), ("broken", broken)])

    def on_outcome(outcome: plan.Outcome) -> None:
        raise RuntimeError(f"could not record {outcome.name}")

    with pytest.raises(RuntimeError, match="could not record broken"):
        sweep.execute(runs, tmp_path, workers=2, on_outcome=on_outcome)
    # the long run may still have been starting (no folder yet): either way it never trains on
    summary = tmp_path / "long" / "summary.json"
    stopped = json.loads(summary.read_text()) if summary.exists() else None
    assert stopped is None or (stopped["status"] == "interrupted" and stopped["epochs"] < 300)
