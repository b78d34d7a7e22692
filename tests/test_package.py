"""The installable package: a wheel, installed into a fresh environment without the
repository on the path, has its shipped configs and trains from another folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import DATA_ROOT, REPO, needs_data


@pytest.mark.slow
@needs_data
def test_wheel_installs_and_trains_from_another_folder(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: building writes build/ and egg-info beside the source
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "actbench", source / "actbench",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    dist = tmp_path / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "-q", "-w", str(dist), str(source)]  # fmt: skip
    subprocess.run(build, check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = dist.glob("actbench-*.whl")
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel],
        check=True,
        capture_output=True,
    )
    # The dependencies (torch, ...) come from this environment's site-packages: a path entry,
    # whose .pth files (the editable actbench among them) Python does not run.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "ACTBENCH_DATA": str(DATA_ROOT), "PYTHONPATH": ""}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600
        )

    where = run("-c", "import actbench; print(actbench.__file__)")
    assert where.stdout.strip().startswith(str(site)), where  # the wheel, not the checkout
    listed = run("-m", "actbench", "list")
    assert listed.returncode == 0 and "  prelu " in listed.stdout, listed.stderr
    trained = run(
        "-m", "actbench", "train", "--config", "prelu.yaml", "--set", "train.epochs=1",
        "--set", "data.train_subset=500", "--set", "train.device=cpu",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "completed prelu lenet" in trained.stdout
    (run_dir,) = (work / "runs").iterdir()
    assert (run_dir / "summary.json").is_file()
    sweep = run("-m", "actbench", "sweep", "--config", "sweeps/activations.yaml", "--dry-run")
    assert sweep.returncode == 0 and "35 runs: 35 new" in sweep.stdout, sweep.stderr
