"""The execution path `auto` picks: the candidates allowed (CPU bf16 capability mocked both
ways), and the calibration that times them, with its cache: written, reused, followed,
ignored with one warning when damaged or unwritable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from actbench import calibrate, config, fastpath
from actbench.errors import ActbenchWarning

from .conftest import DATA_ROOT, needs_data

LENET = ["train.device=cpu", "train.threads=1"]  # one thread: LeNet steps are ~10 ms


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(fastpath, "cpu_flags", lambda: frozenset(flags))

    return set_flags


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache of this test's own, in a process that has decided nothing yet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(calibrate, "_MEMO", {})
    return tmp_path / "cache" / "actbench" / "paths"


def _new_process() -> None:
    """What a later process starts with: the cache on disk, nothing decided in memory."""
    calibrate._MEMO.clear()


@pytest.mark.parametrize(
    ("flags", "net", "expected"),
    [
        (("avx2", "avx512f", "avx512_bf16"), "lenetpp",
         ["fp32 NCHW", "fp32 channels_last", "bf16 NCHW", "bf16 channels_last"]),
        (("avx2", "amx_bf16"), "lenetpp",
         ["fp32 NCHW", "fp32 channels_last", "bf16 NCHW", "bf16 channels_last"]),
        (("avx2", "avx512f"), "lenetpp", ["fp32 NCHW", "fp32 channels_last"]),  # emulated bf16
        (("avx2", "avx512_bf16"), "lenet", ["fp32 NCHW", "fp32 channels_last"]),  # not checked
        ((), "lenet", ["fp32 NCHW", "fp32 channels_last"]),
    ],
)  # fmt: skip
def test_only_accuracy_neutral_paths_are_candidates(
    cpu, flags: tuple[str, ...], net: str, expected: list[str]
) -> None:
    cpu(*flags)
    name = "lenetpp_prelu.yaml" if net == "lenetpp" else "prelu.yaml"
    cfg = config.load(name, ["train.device=cpu"])
    found = calibrate.candidates(cfg, "cpu", fastpath.native_bf16("cpu"))
    assert [c.label for c in found] == expected
    assert [c.label for c in calibrate.candidates(cfg, "mps", True)][-1] != "fp32 channels_last"


def test_explicit_choices_are_kept_without_timing(cpu, cache: Path) -> None:
    cpu("avx512_bf16")
    sets = ["train.device=cpu", "train.precision=fp32", "train.channels_last=false"]
    cfg = calibrate.resolve(config.load("lenetpp_prelu.yaml", sets))
    assert (cfg.train.precision, cfg.train.channels_last) == ("fp32", False)
    assert cfg.train._calibration == [] and not cache.exists()


def test_the_plain_path_is_kept_unless_clearly_slower() -> None:
    assert calibrate.fastest({"fp32 NCHW": 10.0, "fp32 channels_last": 9.8}) == "fp32 NCHW"
    assert calibrate.fastest({"fp32 NCHW": 10.0, "fp32 channels_last": 9.0}) == (
        "fp32 channels_last"
    )
    assert calibrate.fastest({"fp32 NCHW": 9.0, "fp32 channels_last": 10.0}) == "fp32 NCHW"
    assert calibrate.fastest({"bf16 NCHW": 5.0, "bf16 channels_last": 4.0}) == (
        "bf16 channels_last"
    )
    # precision first (it is in the fingerprint): bf16 only when clearly faster than fp32
    both = {"fp32 NCHW": 10.0, "fp32 channels_last": 9.0, "bf16 NCHW": 8.95,
            "bf16 channels_last": 9.5}  # fmt: skip
    assert calibrate.fastest(both) == "fp32 channels_last"
    both["bf16 channels_last"] = 6.0
    assert calibrate.fastest(both) == "bf16 channels_last"
    both["bf16 NCHW"] = 6.1  # then the layout against NCHW at that precision
    assert calibrate.fastest(both) == "bf16 NCHW"


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.json"))


def test_calibration_is_cached_then_reused_and_followed(cache: Path) -> None:
    cfg = calibrate.resolve(config.load("relu.yaml", LENET))
    [found] = cfg.train._calibration
    assert found.settings == ["train.channels_last"]
    assert set(found.step_ms) == {"fp32 NCHW", "fp32 channels_last"}
    assert found.chosen == ("fp32 channels_last" if cfg.train.channels_last else "fp32 NCHW")
    assert (found.batch_size, found.threads) == (64, 1)
    [entry] = _entries(cache)
    written = entry.read_bytes()
    assert json.loads(written)["result"]["chosen"] == found.chosen

    _new_process()
    again = calibrate.resolve(config.load("relu.yaml", LENET))  # reused: nothing re-timed
    assert again.train._calibration == cfg.train._calibration
    assert entry.read_bytes() == written
    # The cache is what decides: an entry choosing the other path is followed.
    other = "fp32 NCHW" if found.chosen == "fp32 channels_last" else "fp32 channels_last"
    data = json.loads(written)
    data["result"]["chosen"] = other
    entry.write_text(json.dumps(data))
    same = calibrate.resolve(config.load("relu.yaml", LENET))  # this process decided already
    assert same.train.channels_last == cfg.train.channels_last
    _new_process()
    followed = calibrate.resolve(config.load("relu.yaml", LENET))
    assert followed.train.channels_last == (other == "fp32 channels_last")
    # Another batch size or thread count is another entry.
    calibrate.resolve(config.load("relu.yaml", [*LENET, "train.batch_size=32"]))
    assert len(_entries(cache)) == 2


@pytest.mark.parametrize(
    "damage",
    ["not json {", '{"key": {}, "result": {}}', "fifo", "symlink", "wrong candidates"],
)
def test_a_damaged_cache_is_ignored_with_one_warning(cache: Path, damage: str) -> None:
    calibrate.resolve(config.load("relu.yaml", LENET))
    [entry] = _entries(cache)
    good = entry.read_text()
    entry.unlink()
    if damage == "fifo":
        os.mkfifo(entry)  # a reader that blocked on it would hang here
    elif damage == "symlink":
        (cache / "elsewhere.txt").write_text(good)
        entry.symlink_to(cache / "elsewhere.txt")
    elif damage == "wrong candidates":
        data = json.loads(good)
        data["result"]["step_ms"] = {"bf16 NCHW": 1.0}
        data["result"]["chosen"] = "bf16 NCHW"
        entry.write_text(json.dumps(data))
    else:
        entry.write_text(damage)
    _new_process()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = calibrate.resolve(config.load("relu.yaml", LENET))
    said = [str(w.message) for w in caught if issubclass(w.category, ActbenchWarning)]
    assert len(said) == 1
    assert said[0].startswith(f"ignored the damaged calibration cache {entry}")
    assert cfg.train.channels_last in (True, False) and cfg.train._calibration
    if damage in ("fifo", "symlink"):  # never written through: it stays, a warning each time
        assert not entry.is_file() or entry.is_symlink()
    else:  # measured again and cached again
        assert json.loads(entry.read_text())["key"] == json.loads(good)["key"]


def test_an_unwritable_cache_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(calibrate, "_MEMO", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = calibrate.resolve(config.load("relu.yaml", LENET))
    said = [str(w.message) for w in caught if issubclass(w.category, ActbenchWarning)]
    assert len(said) == 1 and said[0].startswith("calibration not cached: ")
    assert cfg.train._calibration and blocker.read_text() == "not a folder"


def test_the_fingerprint_follows_the_calibrated_precision(cpu, cache: Path) -> None:
    """Where bf16 is native, a sweep's parent lets calibration pick the precision (here: a
    cached calibration that chose bf16) and leaves the layout to the worker."""
    import torch

    cpu("avx512_bf16")  # native bf16 here, as far as actbench can tell
    cfg = config.load("lenetpp_relu.yaml", LENET)
    cands = calibrate.candidates(cfg, "cpu", True)
    key = calibrate._key(cfg, fastpath.machine_id(torch.device("cpu")), 1, cands)
    entry = calibrate._entry_path(key)
    assert entry is not None
    entry.parent.mkdir(parents=True)
    timed = {"fp32 NCHW": 900.0, "fp32 channels_last": 890.0, "bf16 NCHW": 500.0,
             "bf16 channels_last": 510.0}  # fmt: skip
    result = {"settings": [], "chosen": "bf16 NCHW", "step_ms": timed, "batch_size": 128,
              "threads": 1, "seconds": 9.0, "measured": "2026-12-01T00:00:00+00:00"}  # fmt: skip
    entry.write_text(json.dumps({"key": key, "result": result}))
    resolved = calibrate.resolve(cfg, layout=False)
    assert (resolved.train.precision, resolved.train.channels_last) == ("bf16", "auto")
    assert [c.settings for c in resolved.train._calibration] == [["train.precision"]]
    explicit = config.load("lenetpp_relu.yaml", [*LENET, "train.precision=bf16"])
    assert config.fingerprint(resolved) == config.fingerprint(explicit)
    assert config.fingerprint(resolved) != config.fingerprint(
        config.load("lenetpp_relu.yaml", [*LENET, "train.precision=fp32"])
    )


def test_calibration_draws_nothing_from_the_runs_random_generator(cache: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    calibrate.resolve(config.load("relu.yaml", LENET))  # timed at 1 thread
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


@pytest.mark.slow
@needs_data
def test_the_cli_times_again_then_says_a_damaged_cache_in_one_line(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "ACTBENCH_DATA": str(DATA_ROOT)}
    sets = ["--set", "train.threads=1", "--set", "train.device=cpu"]
    timed = subprocess.run(
        [sys.executable, "-m", "actbench", "calibrate", "-c", "relu.yaml", *sets],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert timed.returncode == 0, timed.stderr
    lines = timed.stdout.splitlines()
    assert re.fullmatch(r"lenet, batch 64, cpu, 1 thread\(s\): 2 paths timed in \d+\.\ds", lines[0])
    assert [ln.split()[:2] for ln in lines[1:3]] == [["fp32", "NCHW"], ["fp32", "channels_last"]]
    assert sum(ln.endswith("ms per step  <- kept") for ln in lines[1:3]) == 1
    assert lines[3:] == [f"cached in {cache / 'actbench' / 'paths'}"]
    [entry] = (cache / "actbench" / "paths").glob("*.json")
    entry.write_text("{")
    trained = subprocess.run(
        [sys.executable, "-m", "actbench", "train", "-c", "relu.yaml", *sets,
         "--set", "data.train_subset=500", "--set", "data.test_subset=1000",
         "--set", "train.epochs=1", "--runs-dir", str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    said = trained.stderr.splitlines()
    warned = [ln for ln in said if "calibration cache" in ln]
    why = "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    assert warned == [f"warning: ignored the damaged calibration cache {entry} ({why})"]
    assert [ln for ln in said if ln.startswith("note: train.channels_last calibrated: fp32 ")]
    assert json.loads(entry.read_text())["result"]["threads"] == 1  # measured again
