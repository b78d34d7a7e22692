"""What a sweep (or a tune) will do with each run folder, and what became of each run: the
vocabulary both backends (local processes, Ray) speak. Imports no backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from actbench import config as cfgmod
from actbench.config import Config
from actbench.errors import ActbenchError
from actbench.rundir import (
    CHECKPOINT,
    FINISHED,
    DamagedRun,
    RunDir,
    Status,
    Summary,
    load_run,
    read_status,
)


@dataclass(frozen=True)
class TrialRef:
    """The Optuna trial a run belongs to (a tuning trial): where its study lives, so the
    process training it can report each epoch's validation accuracy and ask to prune."""

    storage: str  # an Optuna storage URL (sqlite:///.../study.db)
    study: str
    trial_id: int
    number: int
    pruner: str  # tune.PRUNERS
    epochs: int  # the trial's epochs: the pruner's largest resource


# The runs to start next, asked again whenever a worker frees ([]: none for now): what both
# backends train. (run name, config, the tuning trial it belongs to or None)
Feed = Callable[[], list[tuple[str, Config, TrialRef | None]]]


@dataclass
class Sweep:
    name: str
    runs: list[tuple[str, Config]]  # (deterministic run name, config), in plan order
    trials: dict[str, TrialRef] = field(default_factory=dict)  # run name -> its trial


class Action(str, Enum):
    """What a sweep does with one planned run folder."""

    NEW = "new"
    SKIP = "skip"  # finished: completed, stalled or diverged
    RESUME = "resume"  # interrupted or incomplete, with a checkpoint
    REDO = "redo"  # failed (or killed before its first checkpoint): moved aside, trained anew
    LOCKED = "locked"  # another live process trains it
    DAMAGED = "damaged"  # files fail validation: left alone
    MISMATCH = "mismatch"  # holds another experiment (fingerprint)

    def __str__(self) -> str:
        return self.value


class Ending(str, Enum):
    """What became of a planned run in this invocation."""

    COMPLETED = Status.COMPLETED.value
    DIVERGED = Status.DIVERGED.value
    INTERRUPTED = Status.INTERRUPTED.value
    FAILED = Status.FAILED.value
    PRUNED = Status.PRUNED.value
    STALLED = Status.STALLED.value  # its network died: ended early (train.stop_dead)
    SKIPPED = "skipped"
    DAMAGED = Action.DAMAGED.value
    MISMATCH = Action.MISMATCH.value

    def __str__(self) -> str:
        return self.value

    @property
    def skipped(self) -> bool:
        return self is Ending.SKIPPED


SHOWN = (Ending.COMPLETED, Ending.FAILED, Ending.SKIPPED)  # counted even when 0


@dataclass
class Outcome:
    name: str
    status: Ending
    detail: str = ""  # why skipped / the error / the accuracy line


def ended(name: str, summary: Summary) -> Outcome:
    """The outcome of a run that trained in this invocation, from its final summary: its
    final test accuracy, else (a tuning trial) its validation accuracy."""
    test, val = summary.final_test_acc, summary.final_val_acc
    detail = f"{100 * test:.2f}%" if test is not None else ""
    if test is None and val is not None:
        detail = f"validation {100 * val:.2f}%"
    return Outcome(name, Ending(summary.status.value), detail)


# (run name, epoch, epochs, batches done, batches) -> None
Event = Callable[[str, int, int, int, int], None]


@dataclass
class Plan:
    """What a sweep will do with one run folder."""

    action: Action
    detail: str = ""  # why: the status found, the owner, the damage, the differing keys


def plan_run(path: Path, cfg: Config) -> Plan:
    """Decide from what is in `path` (nothing is changed): a folder counts as this run only
    when its fingerprint equals cfg's."""
    if not path.exists() and not path.is_symlink():
        return Plan(Action.NEW)
    if path.is_symlink() or not path.is_dir():
        return Plan(Action.DAMAGED, f"{path}: not a folder (a symlink or a file)")
    pid = RunDir(path).locked_by_other()
    if pid is not None:
        return Plan(Action.LOCKED, f"being trained by process {pid}")
    if not RunDir(path).has_summary():
        # killed (or out of disk) before its first summary.json: nothing to resume from
        return Plan(Action.REDO, "stopped before its first epoch")
    try:
        run = load_run(path)
    except DamagedRun as exc:
        if read_status(path) == Status.FAILED:  # an older release's bare failure record
            return Plan(Action.REDO, "failed before")
        return Plan(Action.DAMAGED, str(exc))
    except ActbenchError as exc:
        return Plan(Action.DAMAGED, str(exc))
    if run.fingerprint != cfgmod.fingerprint(cfg):
        differ = "; ".join(cfgmod.differences(run.cfg, cfg)) or "fingerprints differ"
        return Plan(Action.MISMATCH, differ)
    if run.status in FINISHED:
        return Plan(Action.SKIP, run.status.value)
    if run.status == Status.RUNNING:
        return Plan(Action.LOCKED, f"running in process {run.summary.pid}")
    if run.status in (Status.INTERRUPTED, Status.INCOMPLETE) and (path / CHECKPOINT).is_file():
        return Plan(Action.RESUME, f"{run.status} after epoch {run.summary.epochs}")
    return Plan(Action.REDO, run.status.value)


def check_plans(folder: Path, plans: dict[str, Plan]) -> None:
    """Stop before training anything when a planned folder holds another experiment."""
    clash = {name: p for name, p in plans.items() if p.action == Action.MISMATCH}
    if not clash:
        return
    name, first = next(iter(clash.items()))
    raise ActbenchError(
        f"{len(clash)} run folder(s) in {folder} hold a different experiment than planned, e.g. "
        f"{name} ({first.detail}); nothing was trained. Use another sweep name or --runs-dir, "
        f"or add --beside to train the new runs next to the old ones"
    )


def beside_name(name: str, cfg: Config) -> str:
    """The name a run gets with --beside when its planned folder holds another experiment."""
    return f"{name}-{cfgmod.fingerprint(cfg)[:8]}"


def plan_all(sweep: Sweep, folder: Path, beside: bool = False) -> list[tuple[str, Config, Plan]]:
    """(name, config, plan) per run; with beside, runs whose folder holds another experiment
    move to beside_name."""
    out = []
    for name, cfg in sweep.runs:
        plan = plan_run(folder / name, cfg)
        if beside and plan.action == Action.MISMATCH:
            name = beside_name(name, cfg)
            plan = plan_run(folder / name, cfg)
        out.append((name, cfg, plan))
    return out


def decided(name: str, plan: Plan) -> Outcome | None:
    """The outcome of a run its plan settles without training (finished, locked, damaged,
    another experiment), else None."""
    if plan.action in (Action.SKIP, Action.LOCKED):
        return Outcome(name, Ending.SKIPPED, plan.detail)
    if plan.action in (Action.DAMAGED, Action.MISMATCH):
        return Outcome(name, Ending(plan.action.value), plan.detail + "; left alone")
    return None
