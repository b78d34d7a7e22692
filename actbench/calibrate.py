"""The execution path `auto` takes, chosen by timing it on this machine.

A fixed rule cannot be right on every CPU: channels_last made LeNet++ 12-14% slower on an
AVX2-only Zen 3 and 5% faster on a Zen 4. So the first time a network runs at a batch size on a
machine, each accuracy-neutral candidate path (memory layout always; bf16 autocast only where it
is native and the network allows it: registry.Network.bf16_neutral) trains a few steps of
that network on random data, and the fastest is kept. The choice is cached per machine (CPU
model and flags, or GPU name), torch version, network, batch size, threads and candidates,
one JSON file per key under $XDG_CACHE_HOME/actbench/paths (default ~/.cache), so later
runs and sweep workers start at once. A damaged or unwritable cache costs one warning line and
a new measurement, never a run.

Calibration never changes what a run trains: it only picks among paths shown not to change
accuracy, it draws no number from the run's random generators, and the run records the path
it took (config.yaml) and how it was chosen (summary.json: calibration)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import statistics
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from actbench import fastpath, registry, rundir
from actbench.config import Config
from actbench.errors import ActbenchError, ActbenchWarning

CACHE_FOLDER = ("actbench", "paths")  # under $XDG_CACHE_HOME (~/.cache)
# untimed steps per candidate: the first ones pay oneDNN's kernel choice and allocations
WARMUP_STEPS = 1
MIN_ROUNDS = 3  # timed steps per candidate, at least: a median of 3 resists one stall
MAX_ROUNDS = 15  # ... and at most, when steps are quick
BUDGET_S = 3.0  # timing stops once this is spent and MIN_ROUNDS are done: "a few seconds"
HARD_LIMIT_S = 10.0  # ... or at this, warm-up included (huge batches, slow steps)
LOCK_WAIT_S = 60.0  # longest wait for another process calibrating the same key
LOCK_POLL_S = 0.1
# A candidate replaces the plain path (fp32 NCHW) only when faster by more than this: a
# smaller gap is within the noise of a few timed steps, and then the plain path is kept.
MARGIN = 0.03
# The activation of the network timed: the key has none, as the layout's cost is in the convs
# and pooling, not in the activation.
CALIBRATION_ACTIVATION = "prelu"


@dataclass(frozen=True)
class Candidate:
    precision: str  # fp32 | bf16
    channels_last: bool

    @property
    def label(self) -> str:
        return f"{self.precision} {'channels_last' if self.channels_last else 'NCHW'}"


PLAIN = Candidate("fp32", False)  # what a conventional loop runs: the reference
# Calibrations this process has made or read, by key: each key is decided once per process,
# whatever happens to the cache, so the runs a process starts agree.
_MEMO: dict[str, rundir.Calibration] = {}


def candidates(cfg: Config, device_type: str, bf16_native: bool) -> list[Candidate]:
    """The accuracy-neutral paths `cfg` allows on this device; its explicit settings fixed."""
    net = registry.NETWORKS[cfg.model.net]
    train = cfg.train
    if train.precision != "auto":
        precisions = [train.precision]
    else:
        precisions = ["fp32"] + (["bf16"] if net.bf16_neutral and bf16_native else [])
    if train.channels_last != "auto":
        layouts = [bool(train.channels_last)]
    else:  # MPS: NHWC kernels are not all there; channels_last is never tried
        layouts = [False, True] if device_type in ("cpu", "cuda") else [False]
    return [Candidate(p, cl) for p in precisions for cl in layouts]


def cache_dir() -> Path | None:
    """$XDG_CACHE_HOME/actbench/paths, or ~/.cache/...; a relative $XDG_CACHE_HOME is ignored
    (as the XDG spec says). None: no home folder to cache in."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no $HOME and no passwd entry
            return None
    return Path(base).joinpath(*CACHE_FOLDER)


def _key(
    cfg: Config, machine: dict[str, str], threads: int, cands: list[Candidate]
) -> dict[str, Any]:
    return {
        **machine,
        "net": cfg.model.net,
        "batch_size": cfg.train.batch_size,
        "threads": threads,
        "candidates": [c.label for c in cands],
    }


def _key_text(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


def _entry_path(key: dict[str, Any]) -> Path | None:
    folder = cache_dir()
    digest = hashlib.sha256(_key_text(key).encode()).hexdigest()[:20]
    return None if folder is None else folder / f"{key['net']}-b{key['batch_size']}-{digest}.json"


def _read(path: Path, key: dict[str, Any]) -> rundir.Calibration | None:
    """The cached calibration for key; None when absent; ValueError when damaged."""
    try:
        text = rundir.read_text(path)
    except (FileNotFoundError, NotADirectoryError):  # not there (the write will say why)
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("key") != key:
            raise ValueError("it is not the entry for this machine and network")
        found = rundir.Calibration.model_validate(data.get("result"))
    except (ValidationError, RecursionError) as exc:  # (JSONDecodeError is a ValueError)
        raise ValueError(" ".join(str(exc).split())[:200]) from None
    if found.chosen not in found.step_ms or set(found.step_ms) != set(key["candidates"]):
        raise ValueError("its candidates are not this key's")
    return found


@contextlib.contextmanager
def _locked(path: Path | None, problems: list[str]) -> Iterator[None]:
    """Processes calibrating the same key take turns (sweep workers that start together
    time one at a time, and all but the first read the first's result). A lock held past
    LOCK_WAIT_S (its holder stopped) is gone around, with a problem said."""
    fd = None
    if path is not None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
            fd = os.open(path.with_suffix(".lock"), flags, 0o644)
    if fd is not None:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    problems.append(f"{path.with_suffix('.lock')} held for {LOCK_WAIT_S:.0f}s")
                    break
                time.sleep(LOCK_POLL_S)
            except OSError:  # not a file flock works on: go on unlocked
                break
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure(cfg: Config, device: Any, cands: list[Candidate]) -> dict[str, float]:
    """Median ms per training step of each candidate: `cfg`'s network, optimizer and batch
    size on random data, steps interleaved (A B A B ...) so drift hits every candidate
    alike. Uses its own random generator: the global one is left as it was."""
    import torch

    from actbench import config as cfgmod
    from actbench import models
    from actbench.train import make_optimizer, training_step

    act = cfgmod.ActivationConfig(name=CALIBRATION_ACTIVATION)
    bs = cfg.train.batch_size
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        x = torch.randn(bs, *models.INPUT_SHAPE, device=device)
        y = torch.randint(0, registry.DATASETS[cfg.data.dataset].classes, (bs,), device=device)
        setups = []
        for c in cands:
            fmt = torch.channels_last if c.channels_last else torch.contiguous_format
            model = models.build(cfg.model, act, 0).to(device).to(memory_format=fmt)
            model.train()
            autocast = (
                torch.autocast(device.type, dtype=torch.bfloat16)
                if c.precision == "bf16"
                else contextlib.nullcontext()
            )
            opt = make_optimizer(cfg.optim, model)
            setups.append((model, opt, x.contiguous(memory_format=fmt), autocast))

        def step(i: int) -> float:
            model, opt, xc, autocast = setups[i]
            t0 = time.perf_counter()
            training_step(model, opt, xc, y, autocast)
            sync()
            return time.perf_counter() - t0

        begin = time.perf_counter()
        warm: list[list[float]] = [[] for _ in cands]
        for _ in range(WARMUP_STEPS):
            for i in range(len(cands)):
                warm[i].append(step(i))
        times: list[list[float]] = [[] for _ in cands]
        start = time.perf_counter()
        for r in range(MAX_ROUNDS):
            now = time.perf_counter()
            if (r >= MIN_ROUNDS and now - start > BUDGET_S) or now - begin > HARD_LIMIT_S:
                break
            for i in range(len(cands)):
                times[i].append(step(i))
        if not times[0]:  # steps so slow that warming up spent the limit: judge by those
            times = warm
    return {c.label: 1000 * statistics.median(t) for c, t in zip(cands, times, strict=True)}


def _faster(step_ms: dict[str, float], options: list[str], plain: str) -> str:
    """The fastest of options, unless `plain` is one of them and within MARGIN of it."""
    best = min(options, key=step_ms.__getitem__)
    if plain in options and step_ms[best] > step_ms[plain] * (1 - MARGIN):
        return plain
    return best


def fastest(step_ms: dict[str, float]) -> str:
    """The candidate to keep (labels "<precision> <layout>"): first the precision (bf16 only
    when its best path beats fp32's best by more than MARGIN: precision is in the
    fingerprint, so noise must not flip it), then, at that precision, channels_last only
    when more than MARGIN faster than NCHW."""
    by_precision: dict[str, list[str]] = {}
    for label in step_ms:
        by_precision.setdefault(label.split()[0], []).append(label)
    best = {p: min(labels, key=step_ms.__getitem__) for p, labels in by_precision.items()}
    kept = _faster(step_ms, list(best.values()), best.get(PLAIN.precision, ""))
    precision = kept.split()[0]
    return _faster(step_ms, by_precision[precision], f"{precision} NCHW")


def calibrate(
    cfg: Config,
    device: Any,
    machine: dict[str, str],
    cands: list[Candidate],
    *,
    again: bool = False,
) -> tuple[rundir.Calibration, bool]:
    """(the calibration for cfg's network and batch size on `device` of `machine`
    (fastpath.machine_id), whether it came from the cache). `again`: measure even when
    cached. Problems with the cache are one ActbenchWarning line; the measurement goes on
    without it."""
    import torch

    threads = cfg.train.threads or torch.get_num_threads()
    key = _key(cfg, machine, threads, cands)
    if not again and _key_text(key) in _MEMO:  # this process decided it already
        return _MEMO[_key_text(key)], True
    path = _entry_path(key)
    problems: list[str] = []
    with _locked(path, problems):
        found = None
        if not again and path is not None:
            try:
                found = _read(path, key)
            except ValueError as exc:
                problems.append(f"ignored the damaged calibration cache {path} ({exc})")
        if found is not None:
            _MEMO[_key_text(key)] = found
            _say(problems)
            return found, True
        t0 = time.perf_counter()
        with _threads(threads):
            step_ms = measure(cfg, device, cands)
        result = rundir.Calibration(
            settings=[],
            chosen=fastest(step_ms),
            step_ms={k: round(v, 3) for k, v in step_ms.items()},
            batch_size=cfg.train.batch_size,
            threads=threads,
            seconds=round(time.perf_counter() - t0, 2),
            measured=datetime.now(UTC).isoformat(timespec="seconds"),
            host=socket.gethostname(),
        )
        _MEMO[_key_text(key)] = result  # runs of this process agree, cached or not
        text = json.dumps({"key": key, "result": result.model_dump()}, indent=1) + "\n"
        if path is None:
            problems.append("calibration not cached: no home folder and no $XDG_CACHE_HOME")
        else:
            try:
                rundir.ensure_dir(path.parent)
                rundir.atomic_write(path, text)
            except ActbenchError as exc:
                problems.append(f"calibration not cached: {exc}")
    _say(problems)
    return result, False


def _say(problems: list[str]) -> None:
    if problems:  # one line, however many things were wrong
        warnings.warn("; ".join(problems), ActbenchWarning, stacklevel=3)


def describe(found: rundir.Calibration) -> str:
    """One line: what was chosen and from what, e.g. for the end of `actbench train`."""
    timed = ", ".join(f"{k} {v:.1f} ms" for k, v in found.step_ms.items())
    return (
        f"{found.chosen}: the fastest path here ({timed} per step at batch {found.batch_size}, "
        f"{found.threads} thread{'s' * (found.threads != 1)}; timed in {found.seconds:.1f}s "
        f"at {found.measured})"
    )


def recalibrate(cfg: Config) -> tuple[rundir.Calibration | None, list[Candidate]]:
    """Time cfg's candidate paths again, whatever is cached (and cache the result): (the
    calibration, or None when only one path is allowed here; the candidates)."""
    from actbench.train import resolve_device

    dev = fastpath.device_type(cfg.train.device)
    cands = candidates(cfg, dev, fastpath.native_bf16(dev))
    if len(cands) < 2:
        return None, cands
    device = resolve_device(cfg.train.device)
    found, _ = calibrate(cfg, device, fastpath.machine_id(device), cands, again=True)
    return found, cands


def resolve(cfg: Config, *, layout: bool = True) -> Config:
    """A copy of cfg with train.precision (and, with `layout`, train.channels_last) decided:
    among the accuracy-neutral candidates the config allows here, the one measured fastest
    on this machine (cached), or the only one. How it was decided travels with the copy
    (train._calibration). Without `layout` (a sweep's parent, which needs only the precision
    for the fingerprint), the layout is left to the process that trains the run, timed at
    that process's thread count."""
    cfg = cfg.model_copy(deep=True)
    train = cfg.train
    dev = fastpath.device_type(train.device)
    cands = candidates(cfg, dev, fastpath.native_bf16(dev))
    choices = {  # the keys still `auto` with more than one value among the candidates
        key: field
        for key, field, wanted in (
            ("train.precision", "precision", train.precision == "auto"),
            ("train.channels_last", "channels_last", layout and train.channels_last == "auto"),
        )
        if wanted and len({getattr(c, field) for c in cands}) > 1
    }
    chosen = cands[0]
    if choices:
        from actbench.train import resolve_device

        # Without `layout`, both layouts are still timed when auto: the precision kept is
        # that of the fastest path.
        device = resolve_device(train.device)
        found, _ = calibrate(cfg, device, fastpath.machine_id(device), cands)
        chosen = next(c for c in cands if c.label == found.chosen)
        train._calibration.append(found.model_copy(update={"settings": list(choices)}))
    if train.precision == "auto":
        train.precision = chosen.precision
    if layout and train.channels_last == "auto":
        train.channels_last = chosen.channels_last
    return cfg
