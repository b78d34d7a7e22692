"""Sweeps on a Ray cluster, with the local backend's guarantees.

The driver owns the sweep folder: it plans every run (fingerprints, skip / resume / redo),
holds each run's lock, and is the only process that writes there. A run is a Ray task that
trains in a worker-local temporary folder and sends its files to a store actor on the
driver's node after every epoch's checkpoint; the driver writes them into the folder. A task
that starts (or restarts after its node died: Ray retries it) takes the latest files from
that store and resumes from the checkpoint, so a lost node costs at most the epoch in
progress. No shared filesystem is needed. Ray is imported only here."""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actbench.config import Config
from actbench.errors import ActbenchError
from actbench.plan import (
    Action,
    Ending,
    Event,
    Feed,
    Outcome,
    TrialRef,
    decided,
    ended,
    plan_run,
)
from actbench.rundir import (
    CHECKPOINT,
    NODE_ENV,
    RunDir,
    RunLocked,
    Summary,
    atomic_write,
    read_files,
)

INSTALL = "pip install 'actbench[ray]'  (or: pip install ray)"
RETRIES = 3  # a task whose node dies is restarted this often (from its last checkpoint)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ActbenchError(f"--backend ray needs Ray, which is not installed; {INSTALL}") from None
    return ray


CONNECT_TIMEOUT = 10.0  # seconds to reach a cluster's address before giving up


def probe(address: str) -> None:
    """One-line ActbenchError now if nothing listens at a HOST:PORT (or ray://HOST:PORT)
    address; Ray itself retries such an address for minutes."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # 'auto' and the like: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise ActbenchError(f"--address {address}: no Ray cluster reachable ({why})") from None


class _Store:
    """Lives on the driver's node: the latest files of every run, and what changed since the
    driver last asked (files and progress events)."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, bytes]] = {}
        self.updates: list[tuple[str, dict[str, bytes]]] = []
        self.events: list[tuple[Any, ...]] = []

    def seed(self, name: str, files: dict[str, bytes]) -> None:
        """A resumed run's files on disk: what its task starts from."""
        self.latest[name] = dict(files)

    def put(self, name: str, files: dict[str, bytes]) -> None:
        self.latest.setdefault(name, {}).update(files)
        self.updates.append((name, files))

    def get(self, name: str) -> dict[str, bytes]:
        return self.latest.get(name, {})

    def progress(self, event: tuple[Any, ...]) -> None:
        self.events.append(event)

    def drain(self) -> tuple[list[tuple[str, dict[str, bytes]]], list[tuple[Any, ...]]]:
        out = (self.updates, self.events)
        self.updates, self.events = [], []
        return out


def _train_task(name: str, cfg: Config, store: Any, trial: TrialRef | None = None) -> Summary:
    """One run in a Ray worker: resume from the store's files if it has any, train, and
    send the files back after every epoch; returns the final summary."""
    import ray

    from actbench import runner
    from actbench.errors import one_line_warnings

    one_line_warnings()  # a damaged calibration cache on the node: one line, as locally

    os.environ[NODE_ENV] = ray.get_runtime_context().get_node_id()
    files = ray.get(store.get.remote(name))
    with tempfile.TemporaryDirectory(prefix="actbench-") as tmp:
        path = Path(tmp) / name
        path.mkdir()

        def send(*_: Any) -> None:
            ray.get(store.put.remote(name, read_files(path)))  # delivered before going on

        def progress(done: int, total: int, _loss: float) -> None:
            store.progress.remote((name, epoch[0] + 1, cfg.train.epochs, done, total))

        epoch = [0]

        def on_epoch(result: Any) -> None:
            epoch[0] = result.epoch
            send()

        if CHECKPOINT in files:
            for fname, data in files.items():
                (path / fname).write_bytes(data)
            RunDir(path).mark_interrupted()  # its previous attempt's node is gone
            data_dir = Path(cfg.data.root) if cfg.data.root else None
            run, trainer = runner.prepare_resume(path, data_dir)
            epoch[0] = trainer.epoch
            result = runner.execute(
                run, trainer, resumed=True, progress=progress, on_epoch=on_epoch, trial=trial
            )
        else:
            trainer = runner.prepare(cfg)
            run = RunDir(path)
            result = runner.execute(run, trainer, progress=progress, on_epoch=on_epoch, trial=trial)
        send()
        return result


def execute(
    feed: Feed,
    folder: Path,
    report: Callable[[Outcome], None],
    on_event: Event | None,
    *,
    address: str | None,
    cpus_per_run: float,
    gpus_per_run: float,
) -> None:
    """Train the runs feed() hands out (planned by the caller, who reported the settled ones)
    on Ray, as sweep.train_fed does locally: feed is asked again whenever a task ends, while
    the cluster has room for another run; [] from it means none for now."""
    from actbench.runner import interruptible

    ray = import_ray()
    if address:
        probe(address)
    first = feed()
    if not first:
        return  # nothing to train: no cluster to start
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            **({} if address else {"num_cpus": os.cpu_count() or 1}),
        )
    except Exception as exc:  # connection refused, bad address, ...
        raise ActbenchError(f"cannot start or reach Ray at {address or 'local'}: {exc}") from None
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        here = ray.get_runtime_context().get_node_id()
        store = (
            ray.remote(_Store)
            .options(
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
            )
            .remote()
        )
        task = ray.remote(_train_task).options(
            num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=RETRIES
        )
        held: dict[str, tuple[RunDir, Config]] = {}
        refs: dict[Any, str] = {}

        def start(runs: list[tuple[str, Config, TrialRef | None]]) -> None:
            for name, cfg, trial in runs:
                run = RunDir(folder / name)
                try:
                    run.lock()  # the driver holds every lock for its tasks
                except RunLocked as exc:
                    report(Outcome(name, Ending.SKIPPED, f"being trained by process {exc.pid}"))
                    continue
                plan = plan_run(run.path, cfg)  # again, under the lock
                settled = decided(name, plan)
                if settled is not None:
                    run.unlock()
                    report(settled)
                    continue
                if plan.action == Action.REDO:
                    run.set_aside()
                if plan.action == Action.RESUME:
                    ray.get(store.seed.remote(name, read_files(run.path)))
                held[name] = (run, cfg)
                cfg = cfg.model_copy(deep=True)
                if not cfg.train.threads:
                    cfg.train.threads = max(1, int(cpus_per_run))
                refs[task.remote(name, cfg, store, trial)] = name

        def fill() -> None:
            # asked each time: a cluster's nodes come and go
            while (
                len(refs) < _room(ray, cpus_per_run, gpus_per_run)
                and not stop()
                and (runs := feed())
            ):
                start(runs)

        def drain() -> None:
            updates, events = ray.get(store.drain.remote())
            for name, files in updates:
                held[name][0].path.mkdir(exist_ok=True)
                for fname, data in files.items():
                    atomic_write(held[name][0].path / fname, data)
            for event in events:
                if on_event is not None:
                    on_event(*event)

        def abandon() -> list[str]:
            """Stop the tasks in flight; their runs stay resumable, marked interrupted."""
            for ref in refs:
                ray.cancel(ref, force=True)
            drain()
            for name in refs.values():
                held[name][0].mark_interrupted()
                held[name][0].unlock()
            return list(refs.values())

        with interruptible() as stop:  # Ctrl-C / SIGTERM: a flag, whatever Ray is doing
            try:
                start(first)
                fill()
                _collect(ray, refs, held, drain, report, stop, fill)
            except KeyboardInterrupt:
                stop.signum = 2
            except BaseException:  # feed or report raised (a tune's storage, a clash)
                abandon()
                raise
            if stop():
                for name in abandon():
                    report(Outcome(name, Ending.INTERRUPTED, "resume by running the sweep again"))
    finally:
        ray.shutdown()


def _room(ray: Any, cpus_per_run: float, gpus_per_run: float) -> int:
    """How many runs the cluster trains at once (at least 1): tasks beyond it would queue."""
    total = ray.cluster_resources()
    need = {"CPU": cpus_per_run, "GPU": gpus_per_run}
    return max(1, min((int(total.get(k, 0) / v) for k, v in need.items() if v), default=1))


def _collect(ray: Any, refs: dict, held: dict, drain: Callable[[], None],
             report: Callable[[Outcome], None], stop: Callable[[], bool],
             fill: Callable[[], None]) -> None:  # fmt: skip
    """Wait for the tasks, writing their files as they come and starting more as they end,
    until all ended or stop()."""
    while refs and not stop():
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
        drain()
        for ref in ready:
            name = refs.pop(ref)
            try:
                summary = ray.get(ref)
                outcome = ended(name, summary)
            except Exception as exc:  # the run failed (after Ray's retries)
                cause = getattr(exc, "cause", None) or exc
                detail = str(cause) if isinstance(cause, ActbenchError) else (
                    traceback.format_exception_only(type(cause), cause)[-1]
                )  # fmt: skip
                outcome = Outcome(name, Ending.FAILED, detail.strip().splitlines()[-1])
            held[name][0].unlock()
            report(outcome)
        fill()
