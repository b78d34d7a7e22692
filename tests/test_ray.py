"""Sweeps on a real Ray cluster: a local Ray, and two Ray nodes on this machine. Each test
starts and stops only the Ray processes it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from actbench import rundir
from actbench.cli import app

from .conftest import DATA_ROOT, REPO, needs_data
from .helpers import summaries, wait_for

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, needs_data]
cli = CliRunner()
SPEC = "name: tiny\nbase: relu.yaml\nseeds: 2\naxes:\n  activation: [{name: relu}, {name: prelu}]\n"
QUICK = ["--set", "data.train_subset=300", "--set", "data.test_subset=1000", "--set",
         "train.device=cpu"]  # fmt: skip
ENV = {"ACTBENCH_DATA": str(DATA_ROOT), "RAY_AUTH_MODE": "disabled"}
BOUND = 600  # seconds: any Ray test that takes longer has hung


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    return spec


def _sweep(*args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "actbench", "sweep", *args]
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a Ctrl-C for the driver only, as a terminal would send it
    )


def _metrics(path: Path) -> list[dict[str, float]]:
    return [{k: v for k, v in m.items() if k != "seconds"} for m in rundir.load_run(path).metrics]


# Fields of summary.json that say who ran it, where and how fast: the rest must agree.
WHO = {"heartbeat", "pid", "host", "node", "machine", "sessions", "train_seconds", "device"}


def _same_files(a: Path, b: Path) -> None:
    """Every file the run format declares: present in both or neither, and equal as the
    format says (bytes; content without timings and who ran it; tensors)."""
    import torch

    for f in rundir.FILES:
        x, y = a / f.name, b / f.name
        assert x.is_file() == y.is_file(), f.name
        if not x.is_file():
            continue
        if f.determinism == rundir.Determinism.BYTES:
            assert x.read_bytes() == y.read_bytes(), f.name
        elif f.name == rundir.SUMMARY:
            sa, sb = (json.loads(p.read_text()) for p in (x, y))
            assert {k: v for k, v in sa.items() if k not in WHO} == {
                k: v for k, v in sb.items() if k not in WHO
            }
        elif f.name == rundir.METRICS:
            assert _metrics(a) == _metrics(b)  # bit for bit: 1 thread each
        elif f.determinism == rundir.Determinism.NONE:
            ta, tb = (torch.load(p, weights_only=True) for p in (x, y))
            flat_a, flat_b = (torch.utils._pytree.tree_flatten(t)[0] for t in (ta, tb))
            assert len(flat_a) == len(flat_b)
            for u, v in zip(flat_a, flat_b, strict=True):
                assert torch.equal(u, v) if isinstance(u, torch.Tensor) else u == v, f.name
        else:
            raise AssertionError(f"no comparison for {f.name}: say how in this test")


def test_ray_gives_the_local_backends_runs(tmp_path: Path) -> None:
    """PReLU and a user activation (examples' swish_beta): the same files, equal."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "name: tiny\nbase: relu.yaml\nseeds: 2\n"
        "axes:\n  activation: [{name: prelu}, {name: swish_beta}]\n"
    )
    args = ["sweep", "-c", str(spec), *QUICK, "--set", "train.epochs=2"]
    local = cli.invoke(app, [*args, "--runs-dir", str(tmp_path / "local"), "--workers", "2"],
                       env=ENV)  # fmt: skip
    assert local.exit_code == 0, local.output
    on_ray = subprocess.run(
        [sys.executable, "-m", "actbench", *args, "--runs-dir", str(tmp_path / "ray"),
         "--backend", "ray", "--cpus-per-run", "1"],
        cwd=REPO, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=BOUND,
    )  # fmt: skip
    assert on_ray.returncode == 0, on_ray.stderr
    assert on_ray.stdout.splitlines()[-1].startswith("4 completed, 0 failed, 0 skipped of 4 runs")
    a, b = tmp_path / "local" / "tiny", tmp_path / "ray" / "tiny"
    names = sorted(p.name for p in a.iterdir() if p.is_dir())
    assert names == sorted(p.name for p in b.iterdir() if p.is_dir()) and len(names) == 4
    expected = {rundir.CONFIG, rundir.SUMMARY, rundir.METRICS, rundir.PARAMS, rundir.SHAPES,
                rundir.MODEL, rundir.CHECKPOINT}  # fmt: skip
    for name in names:
        present = {f.name for f in rundir.FILES if (b / name / f.name).is_file()}
        assert expected <= present, f"{name} lacks {expected - present}"
        _same_files(a / name, b / name)
        assert rundir.load_run(b / name).params  # learned parameters read back
        assert json.loads((b / name / "summary.json").read_text())["node"]
    assert (b / "summary.csv").read_text().count("\n") == (a / "summary.csv").read_text().count(
        "\n"
    )
    # A finished sweep: every run skipped, no cluster started.
    again = cli.invoke(
        app, [*args, "--runs-dir", str(tmp_path / "ray"), "--backend", "ray"], env=ENV
    )
    assert again.exit_code == 0 and "0 completed, 0 failed, 4 skipped" in again.stdout


def test_ctrl_c_then_rerun_completes(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    # 2,000 images x 4 epochs: the runs cannot all end between the first epoch and the signal
    args = ["-c", str(spec), "--set", "data.train_subset=2000", "--set", "train.device=cpu",
            "--set", "train.epochs=4", "--set", "data.test_subset=1000",
            "--runs-dir", str(tmp_path)]  # fmt: skip
    folder = tmp_path / "tiny"
    proc = _sweep(*args, "--backend", "ray", "--cpus-per-run", "1")
    try:
        wait_for(
            lambda: any(s.get("epochs", 0) >= 1 for s in summaries(folder).values()),
            proc,
            bound=BOUND,
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    statuses = {s["status"] for s in summaries(folder).values()}
    assert "interrupted" in statuses and "running" not in statuses
    done = subprocess.run(
        [sys.executable, "-m", "actbench", "sweep", *args, "--backend", "ray"],
        cwd=REPO, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=BOUND,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name, summary in summaries(folder).items():
        assert summary["status"] == "completed", name
        assert [m["epoch"] for m in _metrics(folder / name)] == [1, 2, 3, 4]  # each once


@pytest.fixture
def two_nodes() -> Iterator[tuple[object, object]]:
    """A real Ray cluster of two nodes on this machine, one CPU each."""
    from ray.cluster_utils import Cluster

    os.environ.update(ENV)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 80 * 2**20},
    )
    try:
        worker = cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        yield cluster, worker
    finally:
        cluster.shutdown()


def test_a_node_dies_and_its_run_resumes_elsewhere(tmp_path: Path, two_nodes) -> None:  # type: ignore[no-untyped-def]
    """A run that the second node is training mid-way (its first epoch checkpointed) when
    the node dies finishes on the head, resumed: each epoch recorded once. The run holds in
    its second epoch on that node (tests.user_acts:HeldOnNode) until the node is gone, so
    the test knows it is mid-way however fast the machine."""
    cluster, worker = two_nodes
    spec = tmp_path / "held.yaml"
    act = {"name": "tests.user_acts:HeldOnNode", "node": worker.node_id, "folder": str(tmp_path)}
    variant = {"name": "held", "set": {"activation": act}}
    spec.write_text(yaml.safe_dump({"name": "tiny", "base": "relu.yaml", "seeds": 2,
                                    "variants": [variant]}))  # fmt: skip
    folder = tmp_path / "tiny"
    proc = _sweep("-c", str(spec), *QUICK, "--set", "train.epochs=3", "--runs-dir",
                  str(tmp_path), "--backend", "ray", "--address", cluster.address)  # fmt: skip
    held: list[Path] = []

    def kill_held() -> None:  # a node's death takes its processes (Ray's notice soon after)
        for path in held:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(path.name.removeprefix("held-")), signal.SIGKILL)

    try:
        # Held there, and its first epoch's files (the checkpoint it resumes from) already
        # back with the driver, which wrote them to the sweep's folder.
        wait_for(lambda: (held or held.extend(tmp_path.glob("held-*")) or held) and any(
            s.get("node") == worker.node_id and s.get("epochs", 0) >= 1
            for s in summaries(folder).values()), proc, bound=BOUND)  # fmt: skip
        cluster.remove_node(worker)
        kill_held()
        out, err = proc.communicate(timeout=BOUND)
    finally:
        kill_held()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert out.splitlines()[-1].startswith("2 completed, 0 failed, 0 skipped of 2 runs")
    runs = summaries(folder)
    for name, summary in runs.items():
        assert summary["status"] == "completed", name
        assert [m["epoch"] for m in _metrics(folder / name)] == [1, 2, 3]  # exactly once
    # The run held on the second node is the one that trained twice (its first epoch there,
    # the rest resumed from that epoch's checkpoint) and it finished on the head.
    resumed = [s for s in runs.values() if len(s["sessions"]) == 2]
    assert len(held) == 1 and len(resumed) == 1, (held, runs)
    assert resumed[0]["node"] != worker.node_id
    assert all(len(s["sessions"]) == 1 for s in runs.values() if s is not resumed[0])


def test_without_ray_exit_2_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    result = cli.invoke(app, ["sweep", "-c", str(_spec(tmp_path)), "--runs-dir", str(tmp_path),
                              "--backend", "ray"])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --backend ray needs Ray, which is not installed; ")
    assert "pip install 'actbench[ray]'" in result.stderr and not (tmp_path / "tiny").exists()


def test_a_tune_on_two_ray_nodes_gives_the_local_backends_trials(tmp_path: Path, two_nodes) -> None:  # type: ignore[no-untyped-def]
    """The same sampler seed and bit-for-bit runs: the same trials, values and tuned.yaml."""
    import optuna

    from .test_tune import TUNE

    spec = tmp_path / "tiny.yaml"
    spec.write_text(TUNE)
    cluster, _ = two_nodes
    folders = {}
    for backend in ("local", "ray"):
        extra = ["--backend", "ray", "--address", cluster.address] if backend == "ray" else []
        done = subprocess.run(
            [sys.executable, "-m", "actbench", "tune", "-c", str(spec), "--runs-dir",
             str(tmp_path / backend), "--workers", "2", *extra],
            cwd=REPO, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=BOUND,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        folders[backend] = tmp_path / backend / "tiny"
    for study in ("relu-lenet-mnist", "prelu-lenet-mnist"):
        trials = {
            b: [(t.number, t.params, t.value, t.state) for t in optuna.load_study(
                study_name=study, storage=f"sqlite:///{f / rundir.STUDY_DB}").get_trials()]
            for b, f in folders.items()
        }  # fmt: skip
        assert trials["local"] == trials["ray"] and len(trials["local"]) == 2
    tuned = {b: (f / rundir.TUNED).read_text().split("\n", 2)[2] for b, f in folders.items()}
    assert tuned["local"] == tuned["ray"]  # past the header naming the folder
