"""Reliability 3: signals a scheduler sends to one process, symlinks and special files, runs
killed before their first epoch, hostile run folders, and the smaller edges."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from actbench import config, rundir
from actbench.cli import app
from actbench.errors import ActbenchError
from actbench.rundir import RunDir

from .conftest import DATA_ROOT, REPO, needs_data
from .helpers import fake_run, summaries, wait_for

cli = CliRunner()
RELU = {"name": "relu"}
BOUND = 300  # seconds: a subprocess that takes longer has hung


def _one_line(result, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    (line,) = result.stderr.splitlines()
    return line


# ---------------------------------------------------------------------------- signals


SWEEP = "name: sig\nbase: relu.yaml\nseeds: 2\naxes:\n  activation: [{name: relu}, {name: prelu}]\n"
# 3,000 images x 3 epochs, 4 runs on 2 workers: when the first epoch ends, two runs are in
# flight and two not started, so at least two end interrupted whatever the machine's speed
SLOW_RUNS = ["--set", "data.train_subset=3000", "--set", "train.epochs=3",
             "--set", "data.test_subset=1000", "--set", "train.device=cpu"]  # fmt: skip


def _start_sweep(tmp_path: Path) -> subprocess.Popen[str]:
    spec = tmp_path / "sig.yaml"
    spec.write_text(SWEEP)
    cmd = [sys.executable, "-m", "actbench", "sweep", "-c", str(spec), *SLOW_RUNS,
           "--runs-dir", str(tmp_path), "--workers", "2"]  # fmt: skip
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, "ACTBENCH_DATA": str(DATA_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # no terminal: only the signals this test sends arrive
    )


def _running_pids(folder: Path) -> set[int]:
    """Worker processes training a run now (the pid each run's summary names)."""
    return {s["pid"] for s in summaries(folder).values() if s["status"] == "running"}


def _rerun_completes(tmp_path: Path) -> None:
    proc = _start_sweep(tmp_path)
    _, err = proc.communicate(timeout=BOUND)
    assert proc.returncode == 0, err
    runs, _ = rundir.collect([tmp_path / "sig"])
    assert sorted(r.status for r in runs) == ["completed"] * 4


@pytest.mark.slow
@needs_data
def test_sigterm_to_the_sweep_process_alone_stops_every_worker(tmp_path: Path) -> None:
    """As Slurm, systemd or timeout send it (SIGINT to the parent alone: test_tune)."""
    signum = signal.SIGTERM
    proc = _start_sweep(tmp_path)
    folder = tmp_path / "sig"
    try:
        wait_for(
            lambda: any(s["epochs"] >= 1 for s in summaries(folder).values()), proc, bound=BOUND
        )
        workers = _running_pids(folder)
        os.kill(proc.pid, signum)  # the parent's pid only, as a scheduler sends it
        out, err = proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert workers and not any(rundir.pid_alive(p) for p in workers)  # none left behind
    last = out.splitlines()[-1]
    counts = {
        word: int(n) for n, word in (p.split()[:2] for p in last.split(" of ")[0].split(", "))
    }
    assert counts["interrupted"] >= 2 and counts["completed"] + counts["interrupted"] == 4, last
    statuses = [s["status"] for s in summaries(folder).values()]
    assert "running" not in statuses and statuses.count("interrupted") >= 1
    _rerun_completes(tmp_path)


@pytest.mark.slow
@needs_data
def test_workers_stop_when_the_sweep_process_is_killed(tmp_path: Path) -> None:
    proc = _start_sweep(tmp_path)
    folder = tmp_path / "sig"
    try:
        wait_for(
            lambda: any(s["epochs"] >= 1 for s in summaries(folder).values()), proc, bound=BOUND
        )
        workers = _running_pids(folder)
        proc.kill()  # SIGKILL: the parent can do nothing
        proc.communicate(timeout=BOUND)
        wait_for(lambda: not any(rundir.pid_alive(p) for p in workers), bound=BOUND)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left, if the test failed
            os.killpg(proc.pid, signal.SIGKILL)
    assert workers
    statuses = [s["status"] for s in summaries(folder).values()]
    assert "running" not in statuses and "interrupted" in statuses  # stopped cleanly
    _rerun_completes(tmp_path)


# ---------------------------------------------------------------------------- symlinks


def test_a_planted_temp_symlink_never_redirects_a_write(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / f".{rundir.SUMMARY}.{os.getpid()}.tmp").symlink_to(victim)
    with pytest.raises(ActbenchError, match="in the way"):
        rundir.atomic_write(run / rundir.SUMMARY, "{}")
    assert victim.read_text() == "precious"
    (run / rundir.METRICS).symlink_to(victim)
    with pytest.raises(ActbenchError, match="symlink"):
        RunDir(run).append_metrics(dict.fromkeys(rundir.METRIC_FIELDS, 1))
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_output_onto_a_symlink_or_fifo_is_refused_and_left_alone(tmp_path: Path, kind: str) -> None:
    fake_run(tmp_path / "runs", RELU, 0, 0.98)
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    out = tmp_path / "out.csv"
    if kind == "symlink":
        out.symlink_to(target)
    else:
        os.mkfifo(out)
    result = cli.invoke(app, ["compare", str(tmp_path / "runs"), "-f", "csv", "-o", str(out)])
    line = _one_line(result)
    assert line.startswith(f"error: refusing to write {out}: it is ")
    assert out.is_symlink() if kind == "symlink" else out.is_fifo()
    assert target.read_text() == "keep"


def test_a_sweep_never_writes_through_a_symlinked_run_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    done = fake_run(outside, RELU, 0, 0.98)
    (done / rundir.SUMMARY).write_text(
        (done / rundir.SUMMARY).read_text().replace('"completed"', '"interrupted"')
    )
    before = {p.name: p.read_bytes() for p in done.iterdir()}
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: relu.yaml\nseeds: 1\n")
    (tmp_path / "runs" / "s").mkdir(parents=True)
    (tmp_path / "runs" / "s" / done.name).symlink_to(done)
    result = cli.invoke(app, ["sweep", "-c", str(spec), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "damaged" in result.stdout and "left alone" in result.stdout
    assert {p.name: p.read_bytes() for p in done.iterdir()} == before


# ---------------------------------------------------------------------------- early kills


def _killed_before_first_epoch(folder: Path, cfg: config.Config, name: str) -> Path:
    """What SIGKILL (or a full disk) leaves before the first summary.json: config.yaml and
    a checkpoint's temp file."""
    path = folder / name
    path.mkdir(parents=True)
    (path / rundir.CONFIG).write_text(config.dump(cfg))
    (path / f".{rundir.CHECKPOINT}.12345.tmp").write_bytes(b"partial")
    return path


def test_a_run_killed_before_its_first_summary_is_planned_for_redo(tmp_path: Path) -> None:
    from actbench import calibrate, plan

    cfg = calibrate.resolve(config.load("relu.yaml"))
    path = _killed_before_first_epoch(tmp_path, cfg, "relu-lenet-mnist-s0")
    assert plan.plan_run(path, cfg).action == plan.Action.REDO


@pytest.mark.slow
@needs_data
def test_a_sweep_moves_a_run_killed_before_its_first_epoch_aside_and_trains_it(
    tmp_path: Path,
) -> None:
    from actbench import calibrate

    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbase: relu.yaml\nseeds: 1\n")
    quick = ["--set", "data.train_subset=500", "--set", "data.test_subset=1000", "--set",
             "train.epochs=1"]  # fmt: skip
    cfg = calibrate.resolve(config.load("relu.yaml", [q for q in quick if q != "--set"]))
    _killed_before_first_epoch(tmp_path / "s", cfg, "relu-lenet-mnist-s0")
    env = {"ACTBENCH_DATA": str(DATA_ROOT)}
    first = cli.invoke(app, ["sweep", "-c", str(spec), "--runs-dir", str(tmp_path), *quick],
                       env=env)  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "1 completed, 0 failed, 0 skipped" in first.stdout
    aside = tmp_path / "s" / rundir.ATTEMPTS / "relu-lenet-mnist-s0.1"
    assert (aside / rundir.CONFIG).is_file()  # kept, never deleted


def test_a_full_disk_while_appending_metrics_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ActbenchError) as err:
        RunDir(tmp_path).append_metrics(dict.fromkeys(rundir.METRIC_FIELDS, 1))
    assert str(err.value) == f"cannot write {tmp_path / rundir.METRICS}: No space left on device"


# ---------------------------------------------------------------------------- hostile runs


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _huge_npz() -> bytes:
    """An npz whose 'pre' array header declares 10^12 x 2 floats but holds a few bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)}
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pre.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 16)
        zf.writestr("post.npy", b"")
        zf.writestr("labels.npy", b"")
    return buf.getvalue()


def _fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


def _text(edit: Callable[[str], str]) -> Callable[[Path], None]:
    return lambda path: path.write_text(edit(path.read_text()))


CSVS = (rundir.METRICS, rundir.SLOPES, rundir.PARAMS, rundir.SHAPES)
CASES: list[tuple[str, str, Callable[[Path], None]]] = [
    *[(f, "fifo", _fifo) for f in (rundir.SUMMARY, rundir.CONFIG, *CSVS, rundir.FEATURES)],
    *[(f, "dev-zero", _dev_zero) for f in (rundir.CONFIG, *CSVS, rundir.FEATURES)],
    *[(f, "extra cell", _text(lambda t: t.replace("\n", ",9\n", 2))) for f in CSVS],
    *[(f, "missing cell", _text(lambda t: t[: t.rfind(",")] + "\n")) for f in CSVS],
    (rundir.METRICS, "accuracy 7", _text(lambda t: t.replace(",0.98,", ",7,", 1))),
    (rundir.METRICS, "seconds inf", _text(lambda t: t.replace(",6.0,", ",inf,", 1))),
    (rundir.METRICS, "negative loss", _text(lambda t: t.replace("\n1,", "\n1,-5", 1))),
    (rundir.PARAMS, "channel 1e18", _text(lambda t: t.replace(",0,0.25", f",{10**18},0.25"))),
    (rundir.SHAPES, "x nan", _text(lambda t: t.replace(",-4.0,", ",nan,", 1))),
    (rundir.FEATURES, "huge declared", lambda p: p.write_bytes(_huge_npz())),
    (rundir.FEATURES, "truncated", lambda p: p.write_bytes(p.read_bytes()[:40])),
    (rundir.FEATURES, "non-finite", lambda p: p.write_bytes(_npz(
        pre=np.full((3, 2), np.inf), post=np.zeros((3, 2)), labels=np.zeros(3, int)))),
]  # fmt: skip


def _hostile_run(parent: Path) -> Path:
    """A completed PReLU run holding every file of the format (features too)."""
    run = fake_run(parent, {"name": "prelu"}, 0, 0.98,
                   slopes={"conv1": {"mean": 0.5, "min": 0.5, "max": 0.5, "n": 1}})  # fmt: skip
    lo, hi, n = rundir.SHAPE_GRID
    RunDir(run).append_shapes(0, [("conv1", x, x, x, x) for x in np.linspace(lo, hi, n)])
    (run / rundir.FEATURES).write_bytes(
        _npz(pre=np.zeros((3, 2)), post=np.zeros((3, 2)), labels=np.zeros(3, int))
    )
    return run


@contextlib.contextmanager
def _bounded(seconds: int = 60) -> Iterator[None]:
    """A hang (a reader blocked on a FIFO, reading /dev/zero) fails the test, not the suite."""

    def hung(*_: object) -> None:
        raise AssertionError(f"still reading after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize(("file", "what", "damage"), CASES, ids=[f"{f}-{w}" for f, w, _ in CASES])
def test_every_reader_holds_against_a_hostile_file(
    tmp_path: Path, file: str, what: str, damage: Callable[[Path], None]
) -> None:
    """Every reader goes through the run-format loader: a damaged file makes its run damaged
    (one warning line, the other runs go on), with no hang and no huge allocation. Features
    are read by the LeNet++ plot alone, which passes over a damaged file."""
    runs = tmp_path / "runs"
    bad = _hostile_run(runs)
    fake_run(runs, {"name": "prelu"}, 1, 0.97)
    damage(bad / file)
    with _bounded():
        if file == rundir.FEATURES:
            with pytest.raises(ValueError):
                rundir.load_run(bad).features()
            command = ["plot", str(runs), "--out", str(tmp_path / "plots")]
        else:
            with pytest.raises(rundir.DamagedRun):
                rundir.load_run(bad)
            command = ["compare", str(runs), "-f", "json"]
        result = cli.invoke(app, command)
    assert result.exit_code == 0, result.output
    if file != rundir.FEATURES:
        (warning,) = result.stderr.splitlines()
        assert warning.startswith(f"warning: skipping {bad}/{file}: damaged"), warning


def test_a_folder_name_that_is_not_utf8_is_skipped_with_a_warning(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    fake_run(runs, RELU, 0, 0.98)
    os.mkdir(os.fsencode(runs) + b"/bad-\xff-name")
    (Path(os.fsdecode(os.fsencode(runs) + b"/bad-\xff-name")) / rundir.CONFIG).write_text("x")
    done = subprocess.run([sys.executable, "-m", "actbench", "compare", str(runs)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "is not valid UTF-8" in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------------------- smaller ones


def test_a_ray_address_where_nothing_listens_is_one_line() -> None:
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        started = time.monotonic()
        args = ["--backend", "ray", "--address", f"127.0.0.1:{port}", "--runs-dir", "/tmp/x"]
        result = cli.invoke(app, ["sweep", "-c", "activations.yaml", *args])
    assert time.monotonic() - started < 30
    line = _one_line(result)
    assert line.startswith(f"error: --address 127.0.0.1:{port}: no Ray cluster reachable")


def test_the_actbench_script_imports_a_user_activation_from_the_current_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "myacts.py").write_text(
        "import torch\nclass Mine(torch.nn.Module):\n"
        "    def forward(self, x):\n        return torch.relu(x)\n"
    )
    script = Path(sys.executable).parent / "actbench"
    done = subprocess.run(
        [str(script), "train", "-c", "relu.yaml", "--set", "activation.name=myacts:Mine",
         "--data-dir", str(tmp_path / "nodata"), "--runs-dir", str(tmp_path / "runs")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "mnist not found" in done.stderr and "cannot import" not in done.stderr


def test_a_given_name_of_97_characters_is_allowed(tmp_path: Path) -> None:
    result = cli.invoke(app, ["train", "-c", "relu.yaml", "--name", "n" * 97,
                              "--data-dir", str(tmp_path / "nodata")])  # fmt: skip
    assert "mnist not found" in _one_line(result)  # got past the name, to the data


def test_user_arguments_2_and_2_0_are_one_experiment() -> None:
    from actbench import calibrate

    a, b = (
        calibrate.resolve(config.load("relu.yaml", ["activation.name=tests.user_acts:Scaled",
                                                  f"activation.k={k}"]))
        for k in ("2", "2.0")
    )  # fmt: skip
    assert config.activation_label(a.activation) == config.activation_label(b.activation)
    assert config.fingerprint(a) == config.fingerprint(b)


def test_a_failed_download_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from actbench import data

    class Offline:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried x\nno net")

    monkeypatch.setattr(data, "_dataset_class", lambda name: Offline)
    result = cli.invoke(app, ["train", "-c", "relu.yaml", "--set", "data.download=true",
                              "--data-dir", str(tmp_path)])  # fmt: skip
    assert "downloading mnist" in _one_line(result) and "no net" in result.stderr


def test_plot_with_no_completed_run_says_so_and_writes_nothing(tmp_path: Path) -> None:
    fake_run(tmp_path / "runs", RELU, 0, None, status="diverged", diverged_epoch=1)
    result = cli.invoke(app, ["plot", str(tmp_path / "runs"), "--out", str(tmp_path / "p")])
    assert _one_line(result).startswith("error: nothing to plot: no completed run")
    assert not (tmp_path / "p").exists()


def test_exporting_twice_replaces_the_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    run = fake_run(tmp_path / "runs", RELU, 0, 0.98)
    out = tmp_path / "tb"
    for _ in range(2):
        assert (
            cli.invoke(app, ["export", "tensorboard", str(run), "--out", str(out)]).exit_code == 0
        )
    events = sorted(p.name for p in (out / run.name).rglob("events.out.tfevents.*"))
    assert len(events) == 2, events  # the scalars and the hparams, once each


def test_a_lock_naming_a_reused_pid_is_taken_over(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    live = os.getppid()  # alive, but not the process that took the lock
    run.lock_path.write_text(json.dumps({"pid": live, "host": rundir.HOST, "started": "x:1"}))
    run.lock()
    assert json.loads(run.lock_path.read_text())["pid"] == os.getpid()
    run.unlock()
    run.lock_path.write_text(json.dumps({"pid": live, "host": rundir.HOST,
                                         "started": rundir._proc_start(live)}))  # fmt: skip
    with pytest.raises(rundir.RunLocked):
        run.lock()


@pytest.mark.slow
@needs_data
def test_a_user_activation_failing_mid_training_leaves_a_failed_run(tmp_path: Path) -> None:
    result = cli.invoke(
        app,
        ["train", "-c", "relu.yaml", "--set", "activation.name=tests.user_acts:FailsInTraining",
         "--set", "data.train_subset=2000", "--set", "data.test_subset=1000",
         "--set", "train.epochs=2", "--runs-dir", str(tmp_path), "--name", "r"],
        env={"ACTBENCH_DATA": str(DATA_ROOT)},
    )  # fmt: skip
    assert result.exit_code != 0
    summary = json.loads((tmp_path / "r" / rundir.SUMMARY).read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == "RuntimeError: activation blew a fuse"
