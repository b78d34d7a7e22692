"""Sweeps: a base config times axes times seeds, trained into one folder, resumable."""

from __future__ import annotations

import concurrent.futures as cf
import copy
import itertools
import multiprocessing as mp
import os
import shutil
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actbench import config as cfgmod
from actbench.config import Config
from actbench.errors import ActbenchError

SWEEP_KEYS = ("name", "base", "seeds", "axes")


@dataclass
class Sweep:
    name: str
    runs: list[tuple[str, Config]]  # (deterministic run name, config), in plan order


@dataclass
class Outcome:
    name: str
    status: str  # completed | diverged | interrupted | failed | skipped
    detail: str = ""  # why skipped / the error / the accuracy line


# (run name, epoch, epochs, batches done, batches) -> None
Event = Callable[[str, int, int, int, int], None]


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
    return "-".join([*parts, f"s{cfg.seed}"]).replace("/", "_").replace(" ", "")


def load(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Sweep:
    """Expand a sweep file (looked up in sweeps/ too) into validated run configs."""
    spec_path = cfgmod.find_file(path, "sweeps")
    spec = cfgmod.read_yaml(spec_path)
    if not isinstance(spec, dict):
        raise ActbenchError(f"{spec_path}: the top level must be a mapping")
    for key in spec:
        if key not in SWEEP_KEYS:
            raise ActbenchError(
                f"{spec_path}: unknown key {key!r}{cfgmod.suggest(str(key), SWEEP_KEYS)}; "
                f"allowed: {', '.join(SWEEP_KEYS)}"
            )
    name = str(spec.get("name") or spec_path.stem)
    base: dict[str, Any] = {}
    if spec.get("base"):
        base = cfgmod.read_yaml(cfgmod.find_file(spec["base"], "configs")) or {}
        if not isinstance(base, dict):
            raise ActbenchError(f"{spec_path}: base {spec['base']} is not a mapping")
    seeds = spec.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
        seeds = list(range(seeds))
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        raise ActbenchError(
            f"{spec_path}: seeds must be a positive int or a list of ints, got {seeds!r}"
        )
    axes = spec.get("axes") or {}
    if not isinstance(axes, dict) or not all(isinstance(v, list) and v for v in axes.values()):
        raise ActbenchError(f"{spec_path}: axes must map keys to non-empty lists of values")
    runs = []
    for combo in itertools.product(*axes.values()):
        data = copy.deepcopy(base)
        for key, value in zip(axes, combo, strict=True):
            _set_path(data, key, value)
        for seed in seeds:
            try:
                cfg = cfgmod.from_mapping(cfgmod.apply_overrides({**data, "seed": seed}, overrides))
            except ActbenchError as exc:
                raise ActbenchError(f"{spec_path}: {exc}") from None
            extra = [a for a in (_axis_name(k, v) for k, v in zip(axes, combo, strict=True)) if a]
            runs.append((run_name(cfg, extra), cfg))
    names = [n for n, _ in runs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ActbenchError(
            f"{spec_path}: runs share a name ({', '.join(dupes)}); repeated axis values?"
        )
    return Sweep(name, runs)


def state(path: Path) -> str:
    """What a sweep will do with this run folder: new, skip, resume or redo."""
    from actbench.rundir import CHECKPOINT, RunDir, read_run

    if not path.exists():
        return "new"
    if RunDir(path).locked_by_other():
        return "skip"
    try:
        status = read_run(path).summary["status"]
    except ActbenchError:
        return "redo"
    if status in ("completed", "diverged"):
        return "skip"
    if status in ("interrupted", "incomplete") and (path / CHECKPOINT).is_file():
        return "resume"
    return "redo"


# ---------------------------------------------------------------------------- workers

_events: Any = None  # queue of progress events, set in each worker


def _init_worker(queue: Any) -> None:
    global _events
    _events = queue


def train_one(name: str, cfg: Config, folder: Path, threads: int) -> Outcome:
    """Train (or resume, or skip) one run of a sweep; never raises."""
    from actbench import runner
    from actbench.rundir import RunDir, RunLocked

    path = folder / name
    if threads and not cfg.train.threads:
        cfg.train.threads = threads
    epoch = [0]

    def progress(done: int, total: int, _loss: float) -> None:
        if _events is not None:
            _events.put((name, epoch[0] + 1, cfg.train.epochs, done, total))

    def on_epoch(result: Any) -> None:
        epoch[0] = result.epoch

    run = None
    try:
        todo = state(path)
        if todo == "skip":
            return Outcome(name, "skipped", "already done or running elsewhere")
        if todo == "resume":
            run, trainer, ckpt = runner.prepare_resume(path)
            epoch[0] = ckpt["epoch"]
            summary = runner.execute(run, trainer, state=ckpt, progress=progress, on_epoch=on_epoch)
        else:
            trainer = runner.prepare(cfg)
            if todo == "redo":
                shutil.rmtree(path)  # failed or unreadable: nothing worth keeping
            run = RunDir.create(folder, name, unique=False)
            summary = runner.execute(run, trainer, progress=progress, on_epoch=on_epoch)
    except RunLocked as exc:
        return Outcome(name, "skipped", str(exc))
    except Exception as exc:  # one broken run must not stop the sweep
        detail = str(exc) if isinstance(exc, ActbenchError) else traceback.format_exc(limit=3)
        if run is not None:
            run.write_summary({"name": name, "status": "failed", "error": str(exc)})
        return Outcome(name, "failed", detail.strip().splitlines()[-1])
    acc = summary.get("final_test_acc")
    detail = f"{100 * acc:.2f}%" if acc is not None else ""
    return Outcome(name, summary["status"], detail)


def execute(
    sweep: Sweep,
    folder: Path,
    workers: int = 1,
    on_event: Event | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Train every run of the sweep into `folder`, `workers` at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
    outcomes: list[Outcome] = []
    todo = []
    for name, cfg in sweep.runs:  # skip finished runs here: no worker start-up for them
        if state(folder / name) == "skip":
            outcomes.append(Outcome(name, "skipped", "already done or running elsewhere"))
            if on_outcome:
                on_outcome(outcomes[-1])
        else:
            todo.append((name, cfg))
    workers = min(workers, len(todo))
    if workers <= 1:
        _init_worker(_Forward(on_event))
        try:
            for name, cfg in todo:
                outcome = train_one(name, cfg, folder, threads)
                outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)
                if outcome.status == "interrupted":
                    break
        finally:
            _init_worker(None)
        return outcomes
    ctx = mp.get_context("spawn")  # torch and fork do not mix
    queue = ctx.Manager().Queue()
    with cf.ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=(queue,)) as pool:
        pending = {pool.submit(train_one, n, c, folder, threads) for n, c in todo}
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.25, return_when=cf.FIRST_COMPLETED)
                _drain(queue, on_event)
                for fut in done:
                    outcomes.append(fut.result())
                    if on_outcome:
                        on_outcome(outcomes[-1])
        except KeyboardInterrupt:
            # Workers got the same Ctrl-C and end their runs cleanly; start no new ones.
            for fut in pending:
                fut.cancel()
            for fut in cf.as_completed([f for f in pending if not f.cancelled()]):
                outcomes.append(fut.result())
    return outcomes


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
    from actbench.rundir import atomic_write, collect

    runs, _ = collect([folder])
    runs = [r for r in runs if r.summary.get("final_test_acc") is not None]
    if not runs:
        return []
    tables = compare.build_tables(runs)
    written = []
    for fmt, fname in (("csv", "summary.csv"), ("markdown", "summary.md")):
        atomic_write(folder / fname, compare.render(tables, fmt))
        written.append(folder / fname)
    return written
