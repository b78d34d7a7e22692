"""Tuning: one Optuna study per activation (or any axis combination), every trial an
ordinary run folder trained by the sweep backends on a validation split, never reading the
test set; then `tuned.yaml`, the sweep that trains each activation with its own best
settings over fresh seeds. Optuna is imported only here and in pruning.py."""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actbench import config as cfgmod
from actbench import sweep as sw
from actbench.config import Config
from actbench.errors import ActbenchError
from actbench.plan import Ending, Event, Outcome, TrialRef
from actbench.pruning import PRUNERS, make_pruner, quiet
from actbench.rundir import (
    STUDY_DB,
    TUNE_SPEC,
    TUNED,
    RunDir,
    Status,
    Summary,
    atomic_write,
    ensure_dir,
)

TUNE_KEYS = ("name", "base", "set", "axes", "space", "trials", "seeds", "eval_seeds", "sampler",
             "pruner", "objective", "sampler_seed")  # fmt: skip
SAMPLERS = ("grid", "random", "tpe")
# What a trial maximises, from each of its runs' summaries: validation accuracy at the last
# epoch, or at the best one.
OBJECTIVES: dict[str, Callable[[Summary], float | None]] = {
    "val_acc": lambda s: s.final_val_acc,
    "val_acc_best": lambda s: s.best_val_acc,
}
MAX_TRIALS = 10_000
EVAL_SEEDS = 10  # tuned.yaml's default: seeds 0..9


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: a range (low..high, log scale or not; integers
    when both bounds are) or a list of choices."""

    key: str  # dotted config key
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def distribution(self) -> Any:
        import optuna

        d = optuna.distributions
        if self.choices:
            return d.CategoricalDistribution(self.choices)
        if isinstance(self.low, int) and isinstance(self.high, int):
            return d.IntDistribution(self.low, self.high, log=self.log)
        return d.FloatDistribution(self.low, self.high, log=self.log)

    def example(self) -> Any:
        return self.choices[0] if self.choices else self.low

    def position(self, value: float) -> float | None:
        """Where value lies in the range, 0 (low) .. 1 (high), on the log scale for a log
        range; None for a list of choices or a value that is not a number in its scale."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.choices or self.low is None or self.high is None or not number:
            return None
        if self.log and value <= 0:
            return None
        if self.log:
            return math.log(value / self.low) / math.log(self.high / self.low)
        return (value - self.low) / (self.high - self.low)


@dataclass
class StudyPlan:
    name: str  # the study's name: label-net-dataset[-axis values], also its runs' prefix
    data: dict[str, Any]  # the config mapping every trial of it starts from
    axes: dict[str, Any]  # its axis values (dotted key -> value)


@dataclass
class Tune:
    path: Path
    name: str
    base: dict[str, Any]  # the base config mapping, --set applied
    studies: list[StudyPlan]
    space: dict[str, Param]
    trials: int
    seeds: list[int]
    eval_seeds: list[int]
    sampler: str
    pruner: str
    objective: str
    sampler_seed: int
    spec: dict[str, Any] = field(default_factory=dict)  # the file as read (for tune.yaml)


def _param(spec_path: Path, key: Any, value: Any) -> Param:
    where = f"{spec_path}: space: {key}"
    if not isinstance(key, str) or not key:
        raise ActbenchError(f"{spec_path}: space keys are dotted config keys, got {key!r}")
    if isinstance(value, list):
        if not value:
            raise ActbenchError(f"{where}: an empty list of choices")
        return Param(key, choices=tuple(value))
    if not isinstance(value, dict) or not {"low", "high"} <= set(value) <= {"low", "high", "log"}:
        raise ActbenchError(
            f"{where}: give {{low: ..., high: ..., log: true|false}} or a list of choices"
        )
    low, high, log = value["low"], value["high"], value.get("log", False)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not all(math.isfinite(v) for v in (low, high)) or not low < high:
        raise ActbenchError(f"{where}: low < high, both finite numbers; got {low!r}, {high!r}")
    if not isinstance(log, bool):
        raise ActbenchError(f"{where}: log is true or false, got {log!r}")
    if log and low <= 0:
        raise ActbenchError(f"{where}: a log range needs low > 0, got {low!r}")
    return Param(key, low, high, log)


def _count(spec_path: Path, value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TRIALS:
        raise ActbenchError(f"{spec_path}: {key} must be an integer 1..{MAX_TRIALS}, got {value!r}")
    return value


def _choice(spec_path: Path, spec: dict[str, Any], key: str, allowed: Any, default: str) -> str:
    value = spec.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise ActbenchError(
            f"{spec_path}: {key}: unknown {value!r}{cfgmod.suggest(str(value), allowed)}; "
            f"allowed: {', '.join(allowed)}"
        )
    return value


def load(
    path: str | os.PathLike[str],
    overrides: list[str] = (),
    trials: int | None = None,  # type: ignore[assignment]
) -> Tune:
    """Read and check a tune file (looked up in the shipped tunes/ too) with --set and
    --trials; every trial config is validated before anything runs."""
    spec_path, spec, name = sw.read_spec(path, "tunes", TUNE_KEYS)
    base = sw.read_base(spec_path, spec.get("base"))
    fixed = spec.get("set") or {}  # settings on the base for every study, as --set would
    if not isinstance(fixed, dict):
        raise ActbenchError(f"{spec_path}: set must map dotted config keys to values")
    base = cfgmod.apply_overrides(_with(base, {str(k): v for k, v in fixed.items()}), overrides)
    axes = sw.read_axes(spec_path, spec.get("axes"), overrides)
    raw_space = spec.get("space")
    if not isinstance(raw_space, dict) or not raw_space:
        raise ActbenchError(f"{spec_path}: space must map config keys to ranges or choices")
    space = {k: _param(spec_path, k, v) for k, v in raw_space.items()}
    for key in space:
        if key.split(".")[0] in ("seed", "name") or any(
            key == a or key.startswith(a + ".") or a.startswith(key + ".") for a in axes
        ):
            raise ActbenchError(f"{spec_path}: space: {key} is an axis, the seed or the name")
    n_trials = trials if trials is not None else _count(spec_path, spec.get("trials"), "trials")
    if trials is not None:
        _count(spec_path, trials, "--trials")
    seeds = sw.read_seeds(spec_path, spec.get("seeds", [1000]))
    eval_seeds = sw.read_seeds(spec_path, spec.get("eval_seeds", EVAL_SEEDS), "eval_seeds")
    if set(seeds) & set(eval_seeds):
        raise ActbenchError(
            f"{spec_path}: tuning seeds {sorted(set(seeds) & set(eval_seeds))} are also "
            "evaluation seeds; keep them apart (e.g. seeds: [1000])"
        )
    sampler = _choice(spec_path, spec, "sampler", SAMPLERS, "tpe")
    pruner = _choice(spec_path, spec, "pruner", PRUNERS, "none")
    objective = _choice(spec_path, spec, "objective", tuple(OBJECTIVES), "val_acc")
    if sampler == "grid" and not all(p.choices for p in space.values()):
        raise ActbenchError(f"{spec_path}: sampler grid needs a list of values for every key")
    if sampler == "grid" and n_trials > math.prod(len(p.choices) for p in space.values()):
        points = math.prod(len(p.choices) for p in space.values())
        raise ActbenchError(f"{spec_path}: the grid has {points} points; trials must be <= it")
    if pruner != "none" and len(seeds) > 1:
        raise ActbenchError(f"{spec_path}: a pruner judges one run per trial; give one seed")
    sampler_seed = spec.get("sampler_seed", 0)
    if isinstance(sampler_seed, bool) or not isinstance(sampler_seed, int) or sampler_seed < 0:
        raise ActbenchError(f"{spec_path}: sampler_seed must be an integer >= 0")
    studies = []
    for data, extra, values in sw.combinations(base, axes):
        example = _with(data, {k: p.example() for k, p in space.items()})
        if not sw.validated(spec_path, _with(example, {"seed": seeds[0]}), ()).data.val_size:
            raise ActbenchError(
                f"{spec_path}: tuning needs a validation split: set data.val_size in the base "
                "config or with --set data.val_size=10000"
            )
        cfg = _trial_config(spec_path, example, seeds[0])
        for p in space.values():  # every bound and choice must make a valid config
            for value in p.choices or (p.low, p.high):
                _trial_config(spec_path, _with(data, {p.key: value}), seeds[0])
        label = "-".join([cfgmod.activation_label(cfg.activation), cfg.model.net,
                          cfg.data.dataset, *extra])  # fmt: skip
        longest = _run_name(label, MAX_TRIALS - 1, max(seeds))
        if len(longest) > cfgmod.MAX_NAME:
            raise ActbenchError(
                f"{spec_path}: trial run names would be {len(longest)} characters ({longest[:40]}"
                f"...), more than {cfgmod.MAX_NAME}; shorten the axis values"
            )
        studies.append(StudyPlan(label, data, values))
    dupes = {s.name for s in studies if [t.name for t in studies].count(s.name) > 1}
    if dupes:
        raise ActbenchError(f"{spec_path}: studies share a name ({', '.join(sorted(dupes))})")
    # tune.yaml records what ran: the file with --set and --trials folded in
    record = {**spec, "name": name, "trials": n_trials}
    record["set"] = {**fixed, **{".".join(cfgmod.parse_override(o)[0]): cfgmod.parse_override(o)[1]
                                 for o in overrides}}  # fmt: skip
    return Tune(spec_path, name, base, studies, space, n_trials, seeds, eval_seeds, sampler,
                pruner, objective, sampler_seed, record)  # fmt: skip


def _with(data: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(data)
    for key, value in values.items():
        sw._set_path(out, key, value)
    return out


def _trial_config(spec_path: Path, data: dict[str, Any], seed: int) -> Config:
    """A trial run's config: validation split on, the test set never read."""
    trial = _with(data, {"seed": seed, "train.eval_test": False})
    return sw.validated(spec_path, trial, ())


# ---------------------------------------------------------------------------- running


def storage_url(folder: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(folder / STUDY_DB).absolute()}"


def open_storage(url: str) -> Any:
    """Optuna's RDB storage at url; one-line ActbenchError if it cannot be opened."""
    import optuna

    quiet()
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy raises many kinds for a bad URL or server
        first = " ".join(str(exc).split())[:200]
        raise ActbenchError(f"--storage {url}: cannot be opened ({first})") from None


def _sampler(tune: Tune, offset: int) -> Any:
    """The study's sampler, seeded with sampler_seed plus the trials it already holds: the
    same seed for every study at the same stage (paired start-up trials), and a resumed
    study does not replay the trials it has."""
    import optuna

    seed = tune.sampler_seed + offset
    if tune.sampler == "grid":
        grid = {k: list(p.choices) for k, p in tune.space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _run_name(study: str, number: int, seed: int) -> str:
    return f"{study}-t{number:03d}-s{seed}"


@dataclass
class Progress:
    """What a tune did in this invocation."""

    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False
    stuck: set[tuple[str, int]] = field(default_factory=set)  # trials held by another process
    tuned: Path | None = None  # tuned.yaml, once every study has its trials


def run(
    tune: Tune,
    folder: Path,
    *,
    workers: int,
    threads: int,
    storage: str | None = None,
    ray: dict[str, Any] | None = None,
    on_event: Event | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Progress:
    """Run every study's trials into `folder`, resuming first the trials an earlier
    invocation left running, then asking a new trial whenever a worker frees, of a study
    with none in training (so at most one worker per study); every study gets the same
    number. Then write tuned.yaml."""
    import optuna

    ensure_dir(folder)
    url = storage_url(folder, storage)
    rdb = open_storage(url)
    owner = RunDir(folder)  # one tune per folder at a time: .<name>.lock beside it
    owner.lock()
    try:
        _check_same_tune(tune, folder, rdb)
        atomic_write(folder / TUNE_SPEC, cfgmod.dump_mapping(tune.spec))
        epochs = cfgmod.from_mapping(tune.studies[0].data).train.epochs
        studies = {}
        for s in tune.studies:
            held = _held(rdb, s.name)
            studies[s.name] = optuna.create_study(
                storage=rdb,
                study_name=s.name,
                direction="maximize",
                sampler=_sampler(tune, held),
                pruner=make_pruner(tune.pruner, epochs),  # as the workers judge (TPE reads it)
                load_if_exists=True,
            )
        progress = Progress()

        def report(outcome: Outcome) -> None:
            progress.outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)

        trials = _Trials(tune, studies, url, folder, report)
        from actbench.runner import interruptible

        with interruptible() as stop:  # one flag for the whole tune: no signal lost
            if ray is None:
                sw.train_fed(trials.feed, folder, workers, threads, trials.ended, on_event)
            else:
                from actbench import ray_backend

                ray_backend.execute(trials.feed, folder, trials.ended, on_event, **ray)
            progress.interrupted = trials.interrupted or bool(stop())
            progress.stuck = trials.stuck
        if not progress.interrupted and all(_finished(s) >= tune.trials for s in studies.values()):
            progress.tuned = write_tuned(tune, studies, folder)
        return progress
    finally:
        owner.unlock()


def _check_same_tune(tune: Tune, folder: Path, storage: Any) -> None:
    """A tune folder resumes the tune it holds: other settings would be recorded over the
    ones its trials ran with. Only --trials may change, and not below what a study holds."""
    if is_tune(folder):
        was = cfgmod.flatten(read_tune_spec(folder))
        now = cfgmod.flatten(cfgmod.load_yaml_text(cfgmod.dump_mapping(tune.spec)))
        changed = [
            k for k in sorted(set(was) | set(now)) if k != "trials" and was.get(k) != now.get(k)
        ]
        if changed:
            key = changed[0]
            raise ActbenchError(
                f"{folder} holds a tune run with other settings ({key}: {was.get(key)!r} != "
                f"{now.get(key)!r}); resume it as it was, or use another --name or --runs-dir"
            )
    for study in tune.studies:
        if (held := _held(storage, study.name)) > tune.trials:
            raise ActbenchError(
                f"study {study.name} holds {held} trials already, more than trials: {tune.trials}; "
                f"give --trials {held} or more"
            )


def _held(storage: Any, name: str) -> int:
    """How many trials the study `name` holds already (0: a new study)."""
    try:
        return len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
    except KeyError:
        return 0


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(t.state in done for t in study.get_trials(deepcopy=False))


class _Trials:
    """The trials to train, handed out as workers free (sw.train_fed's feed): first those an
    earlier invocation left running (resumed from their folders), then a new trial of the
    study that holds the fewest among those with none in training, the tune file's order
    breaking ties, until each holds `trials`. Each trial is told to its study once all its
    runs ended."""

    def __init__(
        self,
        tune: Tune,
        studies: dict[str, Any],
        url: str,
        folder: Path,
        report: Callable[[Outcome], None],
    ) -> None:
        from optuna.trial import TrialState

        self.tune, self.studies, self.url, self.folder = tune, studies, url, folder
        self.report = report
        self.left = [
            (plan, t)
            for plan in tune.studies
            for t in studies[plan.name].get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        ]
        self.of: dict[str, tuple[str, int]] = {}  # run name -> (study, trial number)
        self.runs: dict[tuple[str, int], list[str]] = {}  # a trial's run names
        self.outcomes: dict[str, Outcome] = {}
        self.open: set[tuple[str, int]] = set()  # trials started, a run of them not ended
        self.stuck: set[tuple[str, int]] = set()  # trials a run of is held by another process
        self.interrupted = False

    def feed(self) -> list[tuple[str, Config, TrialRef | None]]:
        """The runs of the next trial that needs training ([]: none)."""
        while not self.interrupted and (picked := self._next()) is not None:
            if todo := self._start(*picked):
                return todo
        return []

    def _next(self) -> tuple[StudyPlan, Any] | None:
        if self.left:
            return self.left.pop(0)
        # A study's next trial is asked only once its last is told: the sampler and the
        # pruner then see the same history whatever the timing (TPE counts running trials),
        # so a tune's trials do not depend on how fast each ran.
        busy = {study for study, _ in self.open}
        held = {p.name: len(self.studies[p.name].get_trials(deepcopy=False))
                for p in self.tune.studies if p.name not in busy}  # fmt: skip
        free = [p for p in self.tune.studies if p.name in held and held[p.name] < self.tune.trials]
        if not free:
            return None
        plan = min(free, key=lambda p: held[p.name])
        distributions = {k: p.distribution() for k, p in self.tune.space.items()}
        return plan, self.studies[plan.name].ask(distributions)

    def _start(self, plan: StudyPlan, trial: Any) -> list[tuple[str, Config, TrialRef]]:
        """The trial's runs to train; those already settled (finished, held elsewhere) are
        reported here, and the trial told if none is left."""
        from actbench.plan import check_plans, decided, plan_run

        key = (plan.name, trial.number)
        data = _with(plan.data, dict(trial.params))
        runs = []
        for seed in self.tune.seeds:
            name = _run_name(plan.name, trial.number, seed)
            cfg = _trial_config(self.tune.path, data, seed)
            ref = TrialRef(self.url, plan.name, trial._trial_id, trial.number, self.tune.pruner,
                           cfg.train.epochs)  # fmt: skip
            runs.append((name, cfg, ref))
            self.of[name] = key
        self.runs[key] = [name for name, _, _ in runs]
        self.open.add(key)
        plans = {name: plan_run(self.folder / name, cfg) for name, cfg, _ in runs}
        check_plans(self.folder, plans)  # another experiment there: stop, nothing trained
        todo = []
        for name, cfg, ref in runs:
            settled = decided(name, plans[name])
            if settled is None:
                todo.append((name, cfg, ref))
            else:
                self.ended(settled)
        return todo

    def ended(self, outcome: Outcome) -> None:
        """Report a run's outcome; once all the trial's runs ended, tell the study."""
        self.report(outcome)
        if outcome.status == Ending.INTERRUPTED:
            self.interrupted = True  # its trial stays running, to resume
            return
        self.outcomes[outcome.name] = outcome
        key = self.of[outcome.name]
        names = self.runs[key]
        if not all(n in self.outcomes for n in names):
            return
        self.open.discard(key)
        if not _tell(self.tune, self.studies[key[0]], key[1], names, self.outcomes, self.folder):
            self.stuck.add(key)  # a run of it is held elsewhere: not in this invocation


def _tell(
    tune: Tune,
    study: Any,
    number: int,
    names: list[str],
    outcomes: dict[str, Outcome],
    folder: Path,
) -> bool:
    """Record a trial whose runs all ended (its value: the objective's mean over its seeds);
    False if a run of it is held by another process (the trial stays running)."""
    from optuna.trial import TrialState

    from actbench.rundir import load_run

    def tell(*args: Any, **kwargs: Any) -> None:
        # GridSampler stops the study once its grid is done (after recording the trial)
        with contextlib.suppress(RuntimeError):
            study.tell(number, *args, skip_if_finished=True, **kwargs)

    endings = [outcomes[n].status for n in names]
    if Ending.SKIPPED in endings and not _all_done(folder, names):
        return False
    if any(e in (Ending.FAILED, Ending.DAMAGED, Ending.MISMATCH) for e in endings):
        tell(state=TrialState.FAIL)
        return True
    summaries = [load_run(folder / n).summary for n in names]
    if any(s.status == Status.PRUNED for s in summaries):
        tell(state=TrialState.PRUNED)
        return True
    # a diverged run (lr too high) scores 0: what it reached before blowing up must not
    # make its settings the best
    values = [
        0.0 if s.status == Status.DIVERGED else OBJECTIVES[tune.objective](s) or 0.0
        for s in summaries
    ]
    tell(statistics.fmean(values))
    return True


def _all_done(folder: Path, names: list[str]) -> bool:
    """Whether every run of a trial is finished on disk (a re-run that skipped them)."""
    from actbench.rundir import FINISHED, DamagedRun, load_run

    try:
        return all(load_run(folder / n).status in FINISHED for n in names)
    except (DamagedRun, ActbenchError):
        return False


def write_tuned(tune: Tune, studies: dict[str, Any], folder: Path) -> Path:
    """tuned.yaml: a sweep training each study's best settings over the evaluation seeds,
    reading the test set (this is the comparison the tune was for)."""
    variants = []
    for plan in tune.studies:
        study = studies[plan.name]
        from optuna.trial import TrialState

        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise ActbenchError(f"study {plan.name}: no trial completed; nothing to choose")
        settings = plan.axes | dict(study.best_trial.params)
        variants.append({"name": plan.name, "set": settings})
    base = _with(tune.base, {"train.eval_test": True})
    text = cfgmod.dump_mapping(
        {
            "name": f"{tune.name}-tuned",
            "base": base,
            "seeds": tune.eval_seeds,
            "variants": variants,
        }
    )
    header = (
        f"# Written by actbench tune from {folder}: each study's best trial "
        f"({tune.objective}, {tune.trials} trials per study, tuning seeds {tune.seeds}),\n"
        f"# trained over fresh evaluation seeds. Run it: actbench sweep -c {folder / TUNED}\n"
    )
    atomic_write(folder / TUNED, header + text)
    return folder / TUNED


# ---------------------------------------------------------------------------- reading


# A trial's status is its worst run's (stalled runs count as completed).
_WORST_FIRST = (Status.PRUNED, Status.FAILED, Status.DIVERGED, Status.INTERRUPTED,
                Status.INCOMPLETE, Status.RUNNING)  # fmt: skip


@dataclass
class TrialResult:
    study: str
    number: int
    params: dict[str, Any]  # the tuned keys' values (from the runs' configs)
    value: float | None  # the objective, mean over the trial's seeds (None: not finished)
    status: Status  # completed (stalled counts as completed), pruned, diverged, failed...
    epochs: int  # epochs its first run trained
    dead: bool = False  # a run of it stopped early, its network dead (train.stop_dead)


@dataclass
class StudyResult:
    name: str
    trials: list[TrialResult]
    best: TrialResult | None  # the highest value among finished, unpruned trials

    def count(self, *statuses: Status) -> int:
        return sum(t.status in statuses for t in self.trials)


def is_tune(folder: Path) -> bool:
    return (folder / TUNE_SPEC).is_file()


def read_tune_spec(folder: Path) -> dict[str, Any]:
    """The tune file a tune folder was run with (tune.yaml)."""
    data = cfgmod.read_yaml(folder / TUNE_SPEC)
    path = folder / TUNE_SPEC
    if not isinstance(data, dict):
        raise ActbenchError(f"{path}: not a tune file")
    _choice(path, data, "objective", OBJECTIVES, "val_acc")
    space = data.get("space") or {}
    if not isinstance(space, dict):
        raise ActbenchError(f"{path}: space: a mapping of config keys, got {space!r}")
    for key, value in space.items():
        _param(path, key, value)
    return data


def read_tune_space(folder: Path) -> dict[str, Param]:
    """The search space of the tune file a tune folder was run with."""
    path = folder / TUNE_SPEC
    space = read_tune_spec(folder).get("space") or {}
    return {key: _param(path, key, value) for key, value in space.items()}


def results(folder: Path, runs: list[Any]) -> list[StudyResult]:
    """Each study's trials, read from their run folders (no Optuna needed): what the report
    tables and lr_sensitivity.png show."""
    spec = read_tune_spec(folder)
    objective = OBJECTIVES.get(spec.get("objective", "val_acc"), OBJECTIVES["val_acc"])
    keys = list((spec.get("space") or {}).keys())
    by_trial: dict[tuple[str, int], list[Any]] = {}
    for run in runs:
        if run.summary.study is not None and run.summary.trial is not None:
            by_trial.setdefault((run.summary.study, run.summary.trial), []).append(run)
    studies: dict[str, list[TrialResult]] = {}
    for (study, number), members in sorted(by_trial.items()):
        flat = cfgmod.flatten(members[0].config)
        statuses = {r.status for r in members}
        status = next((s for s in _WORST_FIRST if s in statuses), Status.COMPLETED)
        values = [objective(r.summary) for r in members]
        value = None
        if status == Status.DIVERGED:
            value = 0.0  # as the study was told
        elif status == Status.COMPLETED and None not in values:
            value = statistics.fmean(v for v in values if v is not None)
        elif status == Status.PRUNED:  # where it was stopped: drawn, never chosen
            value = members[0].summary.final_val_acc
        params = {k: flat.get(k) for k in keys}
        trial = TrialResult(study, number, params, value, status, members[0].summary.epochs,
                            any(r.summary.dead_site for r in members))  # fmt: skip
        studies.setdefault(study, []).append(trial)
    out = []
    for name, trials in studies.items():
        finished = [t for t in trials if t.status == Status.COMPLETED and t.value is not None]
        best = max(finished, key=lambda t: (t.value, -t.number), default=None)
        out.append(StudyResult(name, trials, best))
    return out
