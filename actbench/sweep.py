"""Sweeps: a base config times axes times seeds, trained into one folder, resumable."""

from __future__ import annotations

import concurrent.futures as cf
import copy
import itertools
import multiprocessing as mp
import os
import re
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from actbench import calibrate
from actbench import config as cfgmod
from actbench.config import Config
from actbench.errors import ActbenchError, one_line_warnings
from actbench.plan import (
    Action,
    Ending,
    Event,
    Feed,
    Outcome,
    Sweep,
    TrialRef,
    check_plans,
    decided,
    ended,
    plan_all,
    plan_run,
)

SWEEP_KEYS = ("name", "base", "seeds", "axes", "variants")
MAX_SEEDS = 1000
MAX_RUNS = 100_000
# --workers auto: CPU threads per worker, by network. Measured on 2 cores (README: sweeps):
# two 1-thread LeNet runs side by side do 1.2x the work of one 2-thread run, since small
# convs parallelise poorly inside one process.
THREADS_PER_WORKER = {"lenet": 1, "lenetpp": 1}
NOT_STARTED = "not started; run the sweep again to train it"
WORKER_LOST = "its worker process died; run the sweep again to resume it"
EXIT_INTERRUPTED = 130  # a worker whose parent died


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ActbenchError(f"axes: {dotted} goes through a non-mapping value")
    node[parts[-1]] = copy.deepcopy(value)


def _axis_name(key: str, value: Any) -> str | None:
    """The part of a run name an axis value adds (None: already in label, net or dataset)."""
    if key in ("activation", "model.net", "data.dataset") or key.startswith("activation."):
        return None
    if isinstance(value, dict):
        return key.split(".")[-1] + "=" + ",".join(f"{k}{v}" for k, v in value.items())
    return f"{key.split('.')[-1]}{value}"


def run_name(cfg: Config, extra: list[str]) -> str:
    """label-net-dataset[-axis values]-s<seed>: the same sweep always gives the same names."""
    parts = [cfgmod.activation_label(cfg.activation), cfg.model.net, cfg.data.dataset, *extra]
    name = "-".join([*parts, f"s{cfg.seed}"])
    return re.sub(r"[^A-Za-z0-9._=,()+-]", "_", name)[: cfgmod.MAX_NAME]


def read_spec(
    path: str | os.PathLike[str], folder: str, keys: tuple[str, ...]
) -> tuple[Path, dict[str, Any], str]:
    """A sweep or tune file (looked up in the shipped `folder` too): its path, its mapping
    with only `keys`, and its name (the file's stem by default)."""
    spec_path = cfgmod.find_file(path, folder)
    spec = cfgmod.read_yaml(spec_path)
    if not isinstance(spec, dict):
        raise ActbenchError(f"{spec_path}: the top level must be a mapping")
    for key in spec:
        if key not in keys:
            raise ActbenchError(
                f"{spec_path}: unknown key {key!r}{cfgmod.suggest(str(key), keys)}; "
                f"allowed: {', '.join(keys)}"
            )
    name = spec.get("name") or spec_path.stem
    if not isinstance(name, str):
        raise ActbenchError(f"{spec_path}: name must be a string, got {type(name).__name__}")
    try:
        cfgmod.check_name(name, f"{folder[:-1]} name")
    except ActbenchError as exc:
        raise ActbenchError(f"{spec_path}: {exc}") from None
    return spec_path, spec, name


def read_base(spec_path: Path, base: Any) -> dict[str, Any]:
    """The base config mapping: a config's path or shipped name, or a mapping written inline
    (as tuned.yaml does)."""
    if base is None:
        return {}
    if isinstance(base, dict):
        return copy.deepcopy(base)
    if not isinstance(base, str):
        raise ActbenchError(f"{spec_path}: base must be a config's path or name, or a mapping")
    data = cfgmod.read_yaml(cfgmod.find_file(base, "configs")) or {}
    if not isinstance(data, dict):
        raise ActbenchError(f"{spec_path}: base {base} is not a mapping")
    return data


def read_seeds(spec_path: Path, seeds: Any, key: str = "seeds") -> list[int]:
    """A count (0..n-1) or a list of seeds."""
    if isinstance(seeds, int) and not isinstance(seeds, bool) and 0 < seeds <= MAX_SEEDS:
        return list(range(seeds))
    if not (
        isinstance(seeds, list)
        and 0 < len(seeds) <= MAX_SEEDS
        and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ActbenchError(
            f"{spec_path}: {key} must be a count 1..{MAX_SEEDS} or a list of ints, "
            f"got {cfgmod._short(seeds)}"
        )
    return seeds


def read_axes(spec_path: Path, axes: Any, overrides: Sequence[str]) -> dict[str, list[Any]]:
    """Dotted config keys -> the values each takes; --set may not overlap an axis."""
    axes = axes or {}
    if not isinstance(axes, dict) or not all(isinstance(v, list) and v for v in axes.values()):
        raise ActbenchError(f"{spec_path}: axes must map keys to non-empty lists of values")
    for key in axes:
        if not isinstance(key, str) or not key or key.split(".")[0] in ("seed", "name"):
            raise ActbenchError(
                f"{spec_path}: axis {cfgmod._short(key)} is not allowed; axes are dotted config "
                "keys (seeds come from seeds:, names are made from the axes)"
            )
    for text in overrides:
        key = cfgmod.parse_override(text)[0]
        for axis in axes:
            a = axis.split(".")
            if key[: len(a)] == a or a[: len(key)] == key:
                raise ActbenchError(
                    f"--set {text!r} overlaps the sweep axis {axis!r}: it would give every "
                    "value of the axis the same setting; change the sweep file instead"
                )
    return axes


def combinations(
    base: dict[str, Any], axes: dict[str, list[Any]]
) -> list[tuple[dict[str, Any], list[str], dict[str, Any]]]:
    """(config mapping, name parts, the axis values) for every combination of axis values."""
    out = []
    for combo in itertools.product(*axes.values()):
        data = copy.deepcopy(base)
        for key, value in zip(axes, combo, strict=True):
            _set_path(data, key, value)
        extra = [a for a in (_axis_name(k, v) for k, v in zip(axes, combo, strict=True)) if a]
        out.append((data, extra, dict(zip(axes, combo, strict=True))))
    return out


def validated(spec_path: Path, data: dict[str, Any], overrides: Sequence[str]) -> Config:
    """One run's config from its mapping and --set, checked (a user activation imported and
    built now, before any run starts) and resolved for its fingerprint."""
    try:
        cfg = cfgmod.from_mapping(cfgmod.apply_overrides(data, overrides))
        if not cfgmod.is_builtin(cfg.activation.name):
            from actbench import activations  # imports torch and the user's class

            activations.preflight(cfg.activation)
    except ActbenchError as exc:
        raise ActbenchError(f"{spec_path}: {exc}") from None
    # the fingerprint needs the precision it will run at; the layout is timed by the worker
    return calibrate.resolve(cfg, layout=False)


def read_variants(spec_path: Path, variants: Any) -> list[tuple[str, dict[str, Any]]]:
    """(name, settings) per variant: each a run-name prefix and dotted keys -> values set
    onto the base (tuned.yaml: each activation with its own tuned settings)."""
    if variants is None:
        return []
    ok = (
        isinstance(variants, list)
        and variants
        and all(
            isinstance(v, dict) and set(v) == {"name", "set"} and isinstance(v["set"], dict)
            for v in variants
        )
    )
    if not ok:
        raise ActbenchError(
            f"{spec_path}: variants must be a list of {{name: ..., set: {{key: value}}}}"
        )
    for v in variants:
        cfgmod.check_name(str(v["name"]), "variant name")
    return [(str(v["name"]), v["set"]) for v in variants]


def load(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Sweep:
    """Expand a sweep file (looked up in sweeps/ too) into validated run configs."""
    spec_path, spec, name = read_spec(path, "sweeps", SWEEP_KEYS)
    base = read_base(spec_path, spec.get("base"))
    seeds = read_seeds(spec_path, spec.get("seeds", 1))
    axes = read_axes(spec_path, spec.get("axes"), overrides)
    variants = read_variants(spec_path, spec.get("variants"))
    total = len(seeds) * max(1, len(variants))
    for values in axes.values():
        total *= len(values)
    if total > MAX_RUNS:
        raise ActbenchError(f"{spec_path}: {total} runs planned; a sweep holds at most {MAX_RUNS}")
    bases: list[tuple[str | None, dict[str, Any]]] = [(None, base)]
    if variants:
        bases = []
        for variant, settings in variants:
            data = copy.deepcopy(base)
            for key, value in settings.items():
                _set_path(data, str(key), value)
            bases.append((variant, data))
    runs = []
    for variant, data_base in bases:
        for data, extra, _ in combinations(data_base, axes):
            for seed in seeds:
                cfg = validated(spec_path, {**data, "seed": seed}, overrides)
                if variant is None:
                    runs.append((run_name(cfg, extra), cfg))
                else:
                    runs.append(("-".join([variant, *extra, f"s{seed}"]), cfg))
    check_unique(spec_path, runs)
    return Sweep(name, runs)


def check_unique(spec_path: Path, runs: list[tuple[str, Config]]) -> None:
    """No two planned runs share a name or a fingerprint."""
    from collections import Counter

    for what, keys in (
        ("name", [n for n, _ in runs]),
        ("fingerprint (the same experiment)", [cfgmod.fingerprint(c) for _, c in runs]),
    ):
        dupes = [k for k, count in Counter(keys).items() if count > 1]
        if dupes:
            raise ActbenchError(
                f"{spec_path}: runs share a {what} ({', '.join(dupes[:3])}); repeated axis "
                "values, or an axis value the base config already has?"
            )


# ---------------------------------------------------------------------------- workers

_events: Any = None  # queue of progress events, set in each worker
_stop: Any = None  # a worker: the parent's "stop now" event (SIGINT/SIGTERM to the parent)
_orphaned = threading.Event()  # a worker whose parent died (SIGKILL)
_idle = threading.Event()  # a worker: no run in progress
PARENT_POLL = 1.0  # seconds between a worker's checks that its parent is alive


def _init_worker(queue: Any, stop: Any = None, parent: int | None = None) -> None:
    global _events, _stop
    _events, _stop = queue, stop
    one_line_warnings()
    _idle.set()
    if parent is None:  # in the parent's own process
        return
    # A terminal's Ctrl-C reaches every process of the group: the run in progress handles
    # it (runner.interruptible); an idle worker has nothing to stop and stays quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM to an idle worker (the group's, or the pool ending): leave without a trace.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(EXIT_INTERRUPTED))
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    """In a worker: once the parent is gone (killed), stop the run in progress at its next
    batch (it ends interrupted, resumable), then exit: no orphan trains on."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    _orphaned.set()
    _idle.wait()
    os._exit(EXIT_INTERRUPTED)


def _should_stop() -> bool:
    return _orphaned.is_set() or (_stop is not None and _stop.is_set())


def train_one(
    name: str, cfg: Config, folder: Path, threads: int, trial: TrialRef | None = None
) -> Outcome:
    """Train (or resume, skip or redo) one run of a sweep under its lock; never raises."""
    from actbench import runner
    from actbench.rundir import RunDir, RunLocked, Status, Summary

    path = folder / name
    if threads and not cfg.train.threads:
        cfg.train.threads = threads
    epoch = [0]

    def progress(done: int, total: int, _loss: float) -> None:
        if _events is not None:
            _events.put((name, epoch[0] + 1, cfg.train.epochs, done, total))

    def on_epoch(result: Any) -> None:
        epoch[0] = result.epoch

    if _should_stop():  # queued before the parent was told to stop
        return Outcome(name, Ending.INTERRUPTED, NOT_STARTED)
    run = RunDir(path)
    trainer = None
    _idle.clear()
    try:
        run.lock()
    except RunLocked as exc:
        _idle.set()
        return Outcome(name, Ending.SKIPPED, f"being trained by process {exc.pid}")
    except ActbenchError as exc:
        _idle.set()
        return Outcome(name, Ending.FAILED, str(exc))
    try:
        plan = plan_run(path, cfg)  # again, under the lock: another sweep may have finished it
        settled = decided(name, plan)
        if settled is not None:
            return settled
        if plan.action == Action.RESUME:
            run, trainer = runner.prepare_resume(path)
            epoch[0] = trainer.epoch
            summary = runner.execute(
                run, trainer, resumed=True, progress=progress, on_epoch=on_epoch,
                should_stop=_should_stop, trial=trial,
            )  # fmt: skip
        else:
            trainer = runner.prepare(cfg)
            if plan.action == Action.REDO:
                RunDir(path).set_aside()  # the failed attempt is kept, never deleted
            run = RunDir.create(folder, name, unique=False)
            summary = runner.execute(
                run, trainer, progress=progress, on_epoch=on_epoch, should_stop=_should_stop,
                trial=trial,
            )  # fmt: skip
    except Exception as exc:  # one broken run must not stop the sweep
        detail = str(exc) if isinstance(exc, ActbenchError) else traceback.format_exc(limit=3)
        if trainer is not None and run.path.is_dir() and not run.has_summary():
            run.write_summary(Summary.of(name, trainer.cfg, Status.FAILED, error=str(exc)))
        return Outcome(name, Ending.FAILED, detail.strip().splitlines()[-1])
    finally:
        run.unlock()
        _idle.set()
        if _stop is not None and runner.last_signal == signal.SIGTERM:
            # A pool worker told to terminate: its run is saved (interrupted); leave now,
            # as the pool that sent it expects, rather than wait for work that never comes.
            os._exit(EXIT_INTERRUPTED)
    return ended(name, summary)


def parse_workers(text: str, sweep: Sweep) -> tuple[int, int]:
    """(workers, threads per worker; 0 = torch's default) from --workers N or auto."""
    cores = os.cpu_count() or 1
    if text == "auto":
        nets = {cfg.model.net for _, cfg in sweep.runs}
        per = max(THREADS_PER_WORKER.get(n, 1) for n in nets) if nets else 1
        workers = max(1, min(cores // per, len(sweep.runs)))
        return workers, max(1, cores // workers)
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise ActbenchError(f"--workers: {text!r} is not allowed; give 1..256 or auto")
    workers = int(text)
    return workers, (max(1, cores // workers) if workers > 1 else 0)


def execute(
    sweep: Sweep,
    folder: Path,
    workers: int = 1,
    on_event: Event | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    beside: bool = False,
    threads: int = 0,
    ray: dict[str, Any] | None = None,
) -> list[Outcome]:
    """Train every run of the sweep into `folder`, `workers` at a time, or as Ray tasks when
    `ray` holds the Ray options (address, cpus_per_run, gpus_per_run). Raises before
    training anything if a planned folder holds another experiment."""
    from actbench.rundir import ensure_dir

    plans = plan_all(sweep, folder, beside)
    check_plans(folder, {n: p for n, _, p in plans})
    ensure_dir(folder)
    outcomes: list[Outcome] = []
    todo = []

    def report(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    for name, cfg, plan in plans:  # decided here: no worker start-up for them
        settled = decided(name, plan)
        if settled is not None:
            report(settled)
        else:
            todo.append((name, cfg))
    pending = [(name, cfg, sweep.trials.get(name)) for name, cfg in todo]

    def feed() -> list[tuple[str, Config, TrialRef | None]]:
        out = pending[:]  # all at once: the backend queues them
        pending.clear()
        return out

    if ray is not None:
        from actbench import ray_backend

        ray_backend.execute(feed, folder, report, on_event, **ray)
    else:
        train_fed(feed, folder, min(workers, len(todo)), threads, report, on_event)
    for name, _, _ in pending:  # stopped before the backend took them
        report(Outcome(name, Ending.INTERRUPTED, NOT_STARTED))
    return outcomes


def train_fed(
    feed: Feed,
    folder: Path,
    workers: int,
    threads: int,
    report: Callable[[Outcome], None],
    on_event: Event | None,
) -> None:
    """Train the runs feed() hands out, `workers` at a time. feed is asked again whenever a
    worker frees, after the run that ended there is reported, so what it hands out next may
    depend on it (tune asks a new trial then); [] from it means none for now, and with none
    in flight the work is done. The runs are planned by the caller (decided ones reported).
    SIGINT / SIGTERM to this process (a scheduler signals it alone) or to the whole group (a
    terminal's Ctrl-C): runs in flight stop within a batch, feed is not asked again."""
    from actbench.runner import interruptible

    with interruptible() as stop:
        if workers > 1:
            _pool(feed, folder, workers, threads, stop, report, on_event)
            return
        _init_worker(_Forward(on_event))
        try:
            while not stop() and (runs := feed()):
                for name, cfg, trial in runs:
                    if stop():
                        report(Outcome(name, Ending.INTERRUPTED, NOT_STARTED))
                    else:
                        report(train_one(name, cfg, folder, threads, trial))
        finally:
            _init_worker(None)


def _pool(
    feed: Feed,
    folder: Path,
    workers: int,
    threads: int,
    stop: Callable[[], bool],
    report: Callable[[Outcome], None],
    on_event: Event | None,
) -> None:
    """train_fed in `workers` spawned processes; once stop() is true, tell them to stop (the
    runs in flight end interrupted within a batch) and start no other run."""
    ctx = mp.get_context("spawn")  # torch and fork do not mix
    queue, halt = ctx.Queue(), ctx.Event()
    init = (queue, halt, os.getpid())
    with cf.ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=init) as pool:
        names: dict[cf.Future[Outcome], str] = {}  # in flight or queued

        def fill() -> None:
            while len(names) < workers and not halt.is_set() and not stop() and (runs := feed()):
                for n, c, t in runs:
                    names[pool.submit(train_one, n, c, folder, threads, t)] = n

        def stop_all() -> None:
            """The runs in flight end interrupted within a batch; none queued starts."""
            halt.set()
            for fut in names:
                fut.cancel()  # those no worker has taken yet

        try:
            fill()
            while names:
                if stop() and not halt.is_set():
                    stop_all()
                done, _ = cf.wait(names, timeout=0.25, return_when=cf.FIRST_COMPLETED)
                _drain(queue, on_event)
                for fut in done:
                    name = names.pop(fut)
                    if fut.cancelled():
                        report(Outcome(name, Ending.INTERRUPTED, NOT_STARTED))
                        continue
                    try:
                        report(fut.result())
                    except BrokenProcessPool:  # a worker was killed (OOM, a signal to it alone)
                        halt.set()
                        report(Outcome(name, Ending.INTERRUPTED, WORKER_LOST))
                fill()
            _drain(queue, on_event)
        except BaseException:  # feed or report raised (a tune's storage, a clash)
            stop_all()
            raise


class _Forward:
    """In-process stand-in for the worker queue."""

    def __init__(self, on_event: Event | None) -> None:
        self.on_event = on_event

    def put(self, event: tuple[str, int, int, int, int]) -> None:
        if self.on_event is not None:
            self.on_event(*event)


def _drain(queue: Any, on_event: Event | None) -> None:
    import queue as queue_mod

    while True:
        try:
            event = queue.get_nowait()
        except queue_mod.Empty:
            return
        if on_event is not None:
            on_event(*event)


def write_summaries(folder: Path) -> list[Path]:
    """summary.csv and summary.md over the sweep folder's runs (compare's default tables)."""
    from actbench import compare
    from actbench.rundir import SWEEP_TABLES, atomic_write, collect

    runs, _ = collect([folder])
    if not any(r.completed for r in runs):
        return []
    tables = compare.build_tables(runs)
    written = []
    for fmt, fname in SWEEP_TABLES.items():
        atomic_write(folder / fname, compare.render(tables, fmt))
        written.append(folder / fname)
    return written
