"""One training run, start to finish: epochs, checkpoints, divergence, interruption, resume."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from actbench import __version__, models, plugins
from actbench import config as cfgmod
from actbench.config import Config
from actbench.errors import ActbenchError, RunFailed
from actbench.plan import TrialRef
from actbench.rundir import (
    CHANCE,
    CHECKPOINT,
    MODEL,
    STALL_MARGIN,
    RunDir,
    RunLocked,
    Status,
    Summary,
    default_name,
    load_run,
    param_summary,
    slope_summary,
)
from actbench.train import EpochResult, Progress, Trainer, diverged

HEARTBEAT_EVERY = 30.0  # seconds between summary.json rewrites inside a long epoch
# Epoch ends in a row at which a site must be dead before a run stops as stalled: after the
# first, the momentum of earlier gradients can still move the weights below it; after a
# further epoch without a gradient it has decayed (by momentum ** steps, ~0 for 0.9).
DEAD_EPOCHS = 2


class StopFlag:
    """Set by the first SIGINT/SIGTERM; training stops at the next batch boundary."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None


_active: StopFlag | None = None  # the flag of the outermost interruptible() in this process
last_signal: int | None = None  # the last SIGINT / SIGTERM this process received


@contextlib.contextmanager
def interruptible() -> Iterator[StopFlag]:
    """First Ctrl-C / SIGTERM: finish cleanly. Second: exit at once (files stay valid, as
    every write is atomic). Nested (a run inside a sweep's process): the outer flag, so a
    signal between two runs is not lost."""
    global _active
    if _active is not None:
        yield _active
        return
    flag = StopFlag()

    def handler(signum: int, _frame: Any) -> None:
        global last_signal
        last_signal = signum
        if flag.signum is not None:
            os._exit(128 + signum)
        flag.signum = signum

    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _active = flag
    try:
        yield flag
    finally:
        _active = None
        for s, h in old.items():
            signal.signal(s, h)


def resolve(cfg: Config) -> Config:
    """The config as it will run: execution path decided, data root made absolute (so
    config.yaml records where the data came from)."""
    from actbench import calibrate
    from actbench.data import resolve_root

    cfg = calibrate.resolve(cfg)
    cfg.data.root = str(resolve_root(cfg.data).absolute())
    return cfg


def prepare(cfg: Config) -> Trainer:
    """Load data and build the model before any file is written (bad data: no run dir)."""
    return Trainer(resolve(cfg))


def config_text(cfg: Config) -> str:
    """config.yaml: the resolved config, headed by which of its values calibration chose."""
    chosen = [key for c in cfg.train._calibration for key in c.settings]
    head = (
        f"# {', '.join(chosen)}: chosen by timing each candidate path "
        "(summary.json: calibration says where and what)\n"
        if chosen
        else ""
    )
    return head + cfgmod.dump(cfg)


def run_name(cfg: Config) -> str:
    return default_name(cfg_label(cfg), cfg.model.net, cfg.seed, cfg.name)


def cfg_label(cfg: Config) -> str:
    return cfgmod.activation_label(cfg.activation)


def record_activations(run: RunDir, trainer: Trainer, epoch: int) -> None:
    """Append the learned activation parameters and shapes after `epoch` (0: initial)."""
    act = trainer.cfg.activation
    params = models.activation_params(trainer.model, act)
    run.append_slopes(epoch, models.slopes(params, act))
    run.append_params(epoch, params)
    run.append_shapes(epoch, models.activation_shapes(trainer.model))


def build_summary(
    run: RunDir,
    cfg: Config,
    trainer: Trainer,
    rows: list[EpochResult],
    status: Status,
    trial: TrialRef | None = None,
    dead_site: str | None = None,
) -> Summary:
    """summary.json: what the run is, how it ended, and its headline numbers."""
    import torch

    params = models.activation_params(trainer.model, cfg.activation)
    tested = [r for r in rows if not math.isnan(r.test_acc)]
    best = max(tested, key=lambda r: r.test_acc, default=None)
    last = tested[-1] if tested else None
    validated = [r for r in rows if not math.isnan(r.val_acc)]
    best_val = max(validated, key=lambda r: r.val_acc, default=None)
    last_val = validated[-1] if validated else None
    splits = trainer.splits
    selected = best_val.test_acc if best_val and not math.isnan(best_val.test_acc) else None
    return Summary.of(
        run.path.name,
        cfg,
        status,
        epochs=len(rows),
        final_test_acc=last.test_acc if last else None,
        final_test_loss=last.test_loss if last else None,
        final_train_loss=(last or last_val).train_loss if (last or last_val) else None,
        best_test_acc=best.test_acc if best else None,
        best_epoch=best.epoch if best else None,
        final_val_acc=last_val.val_acc if last_val else None,
        final_val_loss=last_val.val_loss if last_val else None,
        best_val_acc=best_val.val_acc if best_val else None,
        best_val_epoch=best_val.epoch if best_val else None,
        selected_test_acc=selected,
        val_images=len(splits.val.y) if splits.val is not None else None,
        val_seed=splits.val_seed,
        test_images=len(splits.test.y) if splits.test is not None else None,
        params=trainer.param_count(),
        train_seconds=sum(r.seconds for r in rows),
        device=str(trainer.device),
        precision=cfg.train.precision,
        channels_last=cfg.train.channels_last,
        compile=cfg.train.compile,
        calibration=list(cfg.train._calibration),
        torch_version=torch.__version__,
        actbench_version=__version__,
        slopes=slope_summary(models.slopes(params, cfg.activation)),
        act_params=param_summary(params),
        notes=list(trainer.notes),
        activation_source=(
            None if cfgmod.is_builtin(cfg.activation.name) else plugins.source(cfg.activation.name)
        ),
        diverged_epoch=rows[-1].epoch if status == Status.DIVERGED else None,
        dead_site=dead_site,
        study=trial.study if trial else None,
        trial=trial.number if trial else None,
    )


def execute(
    run: RunDir,
    trainer: Trainer,
    *,
    resumed: bool = False,
    progress: Progress | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    trial: TrialRef | None = None,
) -> Summary:
    """Train `run` to its configured epochs (resumed: the trainer holds its checkpoint);
    returns the final summary. Status: completed, diverged, stalled (a dead network ended
    early, train.stop_dead), interrupted (a signal, or should_stop() true at a batch boundary)
    or, for a tuning trial, pruned (its study's pruner said so after an epoch). An exception
    records the run as failed, with the error, and is raised again."""
    cfg = trainer.cfg
    run.lock()
    rows: list[EpochResult] = []
    try:
        return _train_epochs(run, trainer, resumed, rows, progress, on_epoch, should_stop, trial)
    except RunLocked:
        raise
    except ActbenchError as exc:  # a write failed (disk full, ...): resumable from its checkpoint
        raise RunFailed(f"{exc} (the run resumes from its last checkpoint)") from None
    except Exception as exc:  # user code (an activation) may raise anything
        if run.has_summary():  # the run's own record says why it ended
            failed = build_summary(run, cfg, trainer, rows, Status.FAILED, trial)
            failed.error = f"{type(exc).__name__}: {exc}"[:1000]
            with contextlib.suppress(ActbenchError):
                run.write_summary(failed)
        raise
    finally:
        run.unlock()


def _train_epochs(
    run: RunDir,
    trainer: Trainer,
    resumed: bool,
    rows: list[EpochResult],
    progress: Progress | None,
    on_epoch: Callable[[EpochResult], None] | None,
    should_stop: Callable[[], bool] | None,
    trial: TrialRef | None,
) -> Summary:
    """execute's body, under the run's lock; `rows` collects the epochs as they end."""
    cfg = trainer.cfg
    dead: list[str | None] = []  # per epoch end: the dead site found there (train.stop_dead)
    prune = None
    if trial is not None and trial.pruner != "none":  # without a pruner: no study to open
        from actbench.pruning import judge

        prune = judge(trial)
    if resumed:
        earlier = load_run(run.path)
        run.begin_training(earlier.summary.intervals)
        run.upgrade(earlier)
        run.truncate(trainer.epoch)
        rows.extend(EpochResult(**m) for m in load_run(run.path).metrics)
        if rows:  # the check at the checkpoint's epoch end, as an uninterrupted run made it
            dead.append(_dead_after(trainer, rows[-1]))
    else:
        run.begin_training([])
        run.write_config(config_text(cfg))
        record_activations(run, trainer, 0)
        run.save_torch(CHECKPOINT, trainer.state_dict())
    summary = build_summary(run, cfg, trainer, rows, Status.RUNNING, trial)
    run.write_summary(summary)

    last_beat = time.monotonic()

    def beat(done: int, total: int, loss: float) -> None:
        nonlocal last_beat
        if time.monotonic() - last_beat > HEARTBEAT_EVERY:
            run.write_summary(summary)
            last_beat = time.monotonic()
        if progress is not None:
            progress(done, total, loss)

    status = Status.COMPLETED
    with interruptible() as flag:

        def stop() -> bool:
            return flag() or (should_stop is not None and should_stop())

        while trainer.epoch < cfg.train.epochs:
            last = trainer.epoch + 1 == cfg.train.epochs
            result = trainer.run_epoch(beat, stop, details=last)
            if result is None:
                status = Status.INTERRUPTED
                break
            if not diverged(result.train_loss):
                started = time.perf_counter()
                dead.append(_dead_after(trainer, result, stop))
                result.seconds += time.perf_counter() - started  # part of the epoch's cost
            rows.append(result)
            run.append_metrics(asdict(result), validation=trainer.splits.val is not None)
            record_activations(run, trainer, result.epoch)
            if diverged(result.train_loss):
                status = Status.DIVERGED
                break
            run.save_torch(CHECKPOINT, trainer.state_dict())
            summary = build_summary(run, cfg, trainer, rows, Status.RUNNING, trial)
            run.write_summary(summary)
            if on_epoch is not None:
                on_epoch(result)
            more = trainer.epoch < cfg.train.epochs
            if prune is not None and more and prune(result.epoch, result.val_acc):
                status = Status.PRUNED
                break
            if dead[-1] and dead[-DEAD_EPOCHS:] == [dead[-1]] * DEAD_EPOCHS:
                status = Status.STALLED
                break
            if stop():
                status = Status.INTERRUPTED if trainer.epoch < cfg.train.epochs else status
                break

    summary = build_summary(run, cfg, trainer, rows, status, trial,
                            dead[-1] if status == Status.STALLED else None)  # fmt: skip
    if status in (Status.COMPLETED, Status.STALLED):
        # The last epoch's test pass also measured dead units and 2-D features, unless
        # this run resumed after it or stopped dead before it (then measure them now).
        final = trainer.last_eval
        if final is None or final.dead_units is None:
            final = trainer.evaluate(details=True)
        summary.dead_units = final.dead_units or {}
        summary.final_per_class_acc = final.per_class_acc
        run.save_torch(MODEL, trainer.model.state_dict())
        if final.features2d is not None:
            run.save_features(final.features2d)
    if status == Status.INTERRUPTED:
        summary.resume_from_epoch = trainer.epoch if rows else 0
    run.write_summary(summary)
    return summary


def _dead_after(
    trainer: Trainer, result: EpochResult, should_stop: Callable[[], bool] | None = None
) -> str | None:
    """The site dead at the end of this epoch (Trainer.dead_site), checked only under
    train.stop_dead, after an epoch below the stall line with epochs still to train."""
    cfg = trainer.cfg.train
    if not cfg.stop_dead or trainer.epoch >= cfg.epochs:
        return None
    if result.train_acc >= CHANCE + STALL_MARGIN:
        return None
    return trainer.dead_site(should_stop)


def train(
    cfg: Config,
    runs_dir: Path,
    name: str | None = None,
    progress: Progress | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
    on_start: Callable[[RunDir], None] | None = None,
) -> tuple[RunDir, Summary]:
    """Prepare, create the run directory, train. Nothing is written if preparation fails."""
    unique = name is None  # a name the user gave is never suffixed: it exists, it is an error
    name = name or run_name(cfg)
    room = len("-999") if unique else 0  # a generated name may get a suffix
    if len(name) + room > cfgmod.MAX_NAME:  # before the data is loaded
        raise ActbenchError(
            f"run name {name[:40]!r}... would be {len(name)} characters, more than "
            f"{cfgmod.MAX_NAME}; shorten name: (the prefix) or give --name"
        )
    trainer = prepare(cfg)
    run = RunDir.create(runs_dir, name, unique=unique)
    if on_start is not None:
        on_start(run)
    return run, execute(run, trainer, progress=progress, on_epoch=on_epoch)


def prepare_resume(path: Path, data_dir: Path | None = None) -> tuple[RunDir, Trainer]:
    """The run, and a trainer built from its config.yaml holding its last checkpoint."""
    record = load_run(path)
    why = {
        Status.COMPLETED: "already completed; nothing to resume",
        Status.STALLED: "stalled (near chance, or its network died); nothing to resume",
        Status.DIVERGED: "diverged; resuming would diverge again (train anew with a lower lr)",
        Status.RUNNING: f"still running (process {record.summary.pid})",
        Status.PRUNED: "a tuning trial its pruner stopped; it is kept as evidence, as it is",
    }.get(record.status)
    if why is not None:
        raise ActbenchError(f"{path}: {why}")
    cfg = record.cfg
    if cfgmod.fingerprint(cfg) != record.fingerprint:
        raise ActbenchError(
            f"{path}: config.yaml no longer matches the run's fingerprint "
            f"{record.fingerprint} (was it edited?); train a new run instead"
        )
    run = RunDir(path)
    state = run.load_torch(CHECKPOINT)
    if data_dir is not None:
        cfg.data.root = str(data_dir)
    cfg.train._calibration = list(record.summary.calibration)  # how its path was chosen
    trainer = Trainer(cfg)
    trainer.load_state_dict(state)
    return run, trainer
