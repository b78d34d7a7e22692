"""Bad input, interruption, SIGKILL, resume and concurrency."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from actbench import config, data, rundir
from actbench.cli import app
from actbench.errors import ActbenchError
from actbench.rundir import RunDir

from .conftest import DATA_ROOT, REPO, needs_data

cli = CliRunner()

# ---------------------------------------------------------------------------- data


def _fake_raw(root: Path, sizes: dict[str, int] | None = None) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.FILES:
        (raw / name).write_bytes(b"\0" * (sizes or {}).get(name, 16))
    return raw


def test_missing_data_names_folder_and_files(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = cli.invoke(
        app,
        [
            "train",
            "-c",
            "relu.yaml",
            "--data-dir",
            str(tmp_path / "nodata"),
            "--runs-dir",
            str(runs),
        ],
    )
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"error: mnist not found: {tmp_path / 'nodata' / 'MNIST' / 'raw'} lacks "
    )
    assert "train-images-idx3-ubyte" in line and "data.download=true" in line
    assert not runs.exists()


def test_truncated_file_is_named(tmp_path: Path) -> None:
    raw = _fake_raw(tmp_path)
    with pytest.raises(ActbenchError) as err:
        data.check_files("mnist", tmp_path)
    assert str(err.value).startswith(f"corrupted data file {raw / 'train-images-idx3-ubyte'}:")
    assert "expected an IDX file of 47040016 bytes" in str(err.value)


@needs_data
def test_checksum_mismatch_is_named(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.FILES:
        shutil.copy(DATA_ROOT / "MNIST" / "raw" / name, raw / name)
    target = raw / "t10k-labels-idx1-ubyte"
    body = bytearray(target.read_bytes())
    body[100] = (body[100] + 1) % 10  # one label changed: size and header still right
    target.write_bytes(bytes(body))
    with pytest.raises(ActbenchError, match=f"corrupted data file {target}: its SHA-256"):
        data.check_files("mnist", tmp_path)


# ---------------------------------------------------------------------------- config fuzzing

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=8)
)
_keys = st.sampled_from(
    ["seed", "name", "data", "model", "activation", "optim", "train", "lr", "net", "epochs", "x"]
)
_docs = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=12,
)
_paths = [
    f"{s}.{k}"
    for s, cls in (
        ("data", config.DataConfig),
        ("model", config.ModelConfig),
        ("activation", config.ActivationConfig),
        ("optim", config.OptimConfig),
        ("train", config.TrainConfig),
    )
    for k in cls.model_fields
] + ["seed", "name", "train", "nope.x", ""]
_sets = st.tuples(st.sampled_from(_paths), st.sampled_from(["=", ":", ""]), st.text(max_size=10))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=_docs, raw=st.text(max_size=40), sets=st.lists(_sets, max_size=3))
def test_loader_gives_a_config_or_a_clean_error(
    tmp_path: Path, doc: object, raw: str, sets: list[tuple[str, str, str]]
) -> None:
    overrides = [k + sep + v for k, sep, v in sets]
    for text in (yaml.safe_dump(doc), raw):
        path = tmp_path / "fuzz.yaml"
        path.write_text(text)
        try:
            cfg = config.load(path, overrides)
        except ActbenchError as exc:
            assert "\n" not in str(exc).strip()
        else:
            assert config.from_mapping(config.to_dict(cfg)) == cfg


# ---------------------------------------------------------------------------- run dirs


def test_evaluate_and_plot_reject_non_runs(tmp_path: Path) -> None:
    result = cli.invoke(app, ["evaluate", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path}: not a run directory (no summary.json)\n"
    result = cli.invoke(app, ["plot", str(tmp_path), "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "no run directories inside" in result.stderr and not (tmp_path / "p").exists()


def test_same_name_gives_distinct_directories(tmp_path: Path) -> None:
    a = rundir.RunDir.create(tmp_path, "relu-lenet-s0-20260101-000000")
    b = rundir.RunDir.create(tmp_path, "relu-lenet-s0-20260101-000000")
    assert a.path != b.path and b.path.name.endswith("-2")
    with pytest.raises(ActbenchError, match="already exists; choose another --name"):
        rundir.RunDir.create(tmp_path, a.path.name, unique=False)


def test_locks(tmp_path: Path) -> None:
    run = rundir.RunDir.create(tmp_path, "r")
    assert run.lock_path == tmp_path / ".r.lock"  # beside the folder: claimable before it exists
    other = {"pid": os.getppid(), "host": rundir.HOST}  # a live process that is not us
    run.lock_path.write_text(json.dumps(other))
    assert run.locked_by_other() == os.getppid()
    with pytest.raises(rundir.RunLocked, match=f"being trained by process {os.getppid()}"):
        run.lock()
    run.lock_path.write_text(json.dumps({"pid": 2**22 + 11, "host": rundir.HOST}))
    assert run.locked_by_other() is None
    run.lock()  # a dead owner's lock is taken over
    assert json.loads(run.lock_path.read_text())["pid"] == os.getpid()
    run.unlock()
    assert not run.lock_path.exists()


def test_truncated_csv_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss\n1,0.5\n2,0.4")  # killed mid-write of row 2
    assert rundir.read_csv(path) == [{"epoch": "1", "train_loss": "0.5"}]


# ---------------------------------------------------------------------------- real processes

ARGS = ["--set", "data.train_subset=3000", "--set", "data.test_subset=1000", "--set",
        "train.epochs=3", "--set", "train.device=cpu"]  # fmt: skip


def _start(runs: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "ACTBENCH_DATA": str(DATA_ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "actbench", "train", "-c", "prelu.yaml", "--runs-dir", str(runs)]
    return subprocess.Popen(
        [*cmd, *ARGS, *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen[str], prefix: str) -> str:
    """Read the process's stdout until a line starts with prefix (what the run reports,
    never a clock); fails if the process ends first."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"process ended before printing {prefix!r}: {proc.communicate()}")


def _run_dir(runs: Path) -> Path:
    (path,) = [p for p in runs.iterdir() if p.is_dir()]
    return path


def _resume(run: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACTBENCH_DATA": str(DATA_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "actbench", "train", "--resume", str(run)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_then_resume(tmp_path: Path, signum: int) -> None:
    proc = _start(tmp_path)
    _wait_for_line(proc, "epoch 1/3")  # epoch 1 is done and checkpointed; epoch 2 is running
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    run = _run_dir(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    done = summary["epochs"]  # where the stop landed is the run's to report, not the clock's
    assert proc.returncode == 130, err
    assert summary["status"] == "interrupted" and done in (1, 2)
    assert f"interrupted after epoch {done}; continue with: actbench train --resume {run}" in err
    assert not RunDir(run).lock_path.exists()
    resumed = _resume(run)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} after epoch {done}" in resumed.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["epochs"]) == ("completed", 3)
    assert [int(r["epoch"]) for r in rundir.read_csv(run / "metrics.csv")] == [1, 2, 3]


@pytest.mark.slow
@needs_data
def test_second_signal_exits_at_once(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    _wait_for_line(proc, "epoch 1/3")
    # Stopped, the process holds both signals pending and handles them back to back on
    # SIGCONT: the first asks for a clean stop, the second must end it at once.
    proc.send_signal(signal.SIGSTOP)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM  # a clean stop would exit 130
    assert "interrupted after epoch" not in err
    run = _run_dir(tmp_path)
    assert rundir.load_run(run).status == "incomplete"  # files valid, process gone
    assert all(line.count(",") == 6 for line in (run / "metrics.csv").read_text().splitlines())


@pytest.mark.slow
@needs_data
def test_sigkill_leaves_a_readable_resumable_run(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    _wait_for_line(proc, "epoch 1/3")
    proc.kill()
    proc.communicate()
    run = _run_dir(tmp_path)
    assert rundir.load_run(run).status == "incomplete"  # 'running', process gone
    table = cli.invoke(app, ["compare", str(tmp_path), "-f", "json"])
    assert json.loads(table.stdout)[0]["rows"][0]["status"] == "incomplete"
    done = _resume(run)
    assert done.returncode == 0, done.stderr
    assert rundir.load_run(run).status == "completed"
    assert [int(r["epoch"]) for r in rundir.read_csv(run / "metrics.csv")] == [1, 2, 3]


@pytest.mark.slow
@needs_data
def test_two_trainings_with_the_same_name_get_two_directories(tmp_path: Path) -> None:
    # SOURCE_DATE_EPOCH pins the time stamp, so both processes want the very same folder.
    extra = ["--set", "train.epochs=1", "--set", "data.train_subset=500", "--set",
             "data.test_subset=1000"]  # fmt: skip
    procs = [_start(tmp_path, *extra, env={"SOURCE_DATE_EPOCH": "1767225600"}) for _ in range(2)]
    for p in procs:
        p.communicate(timeout=300)
        assert p.returncode == 0
    dirs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert dirs == ["prelu-lenet-s0-20260101-000000", "prelu-lenet-s0-20260101-000000-2"]


def test_divergence_threshold() -> None:
    from actbench.train import diverged

    assert diverged(float("nan")) and diverged(float("inf")) and diverged(23.1)
    assert not diverged(2.31) and not diverged(0.05)  # ln(10): uniform guessing
