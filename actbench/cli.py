"""actbench command line: parse, call the library, render. torch is imported only by the
commands that train or evaluate, so `actbench --help` answers at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from actbench.errors import ActbenchError, one_line_warnings

if TYPE_CHECKING:
    from actbench.rundir import Summary
    from actbench.train import EpochResult


class _Group(TyperGroup):
    """Bad input (ActbenchError, or a usage error such as an unknown option) becomes one line
    on stderr and exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ActbenchError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        from typer._click.exceptions import ClickException, NoArgsIsHelpError

        one_line_warnings()

        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as exc:
            exc.show()
            code = 2
        except ClickException as exc:
            message = " ".join(exc.format_message().split())
            command = exc.ctx.command_path if getattr(exc, "ctx", None) else "actbench"
            typer.echo(f"error: {message} (see: {command} --help)", err=True)
            code = 2
        except typer.Abort:
            code = EXIT_INTERRUPTED
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_Group,
    help="Which activation should this network use? Train, compare and plot activations "
    "on MNIST from YAML configs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_INTERRUPTED = 130


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _fmt_epoch(r: EpochResult, total: int) -> str:
    return (
        f"epoch {r.epoch:>{len(str(total))}}/{total}  train_loss {r.train_loss:.4f}  "
        f"train_acc {100 * r.train_acc:6.2f}%  test_loss {r.test_loss:.4f}  "
        f"test_acc {100 * r.test_acc:6.2f}%  {r.seconds:6.1f}s"
    )


class _Display:
    """Rich progress bar on a terminal; one plain line per epoch otherwise (CI logs)."""

    def __init__(self, epochs: int, first_epoch: int = 0) -> None:
        self.epochs = epochs
        self.epoch = first_epoch + 1
        self.tty = sys.stderr.isatty()
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> _Display:
        if self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def batch(self, done: int, total: int, loss: float) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.task = self.progress.add_task(
                "train", total=total, epoch=self.epoch, epochs=self.epochs, loss=loss
            )
        self.progress.update(self.task, completed=done, loss=loss, epoch=self.epoch)

    def epoch_done(self, r: EpochResult) -> None:
        line = _fmt_epoch(r, self.epochs)
        if self.progress is not None:
            self.progress.console.print(line)
        else:
            typer.echo(line)
        self.epoch = r.epoch + 1


def _report_end(run_path: Path, summary: Summary) -> None:
    from actbench.rundir import Status

    if summary.status == Status.COMPLETED:
        assert summary.final_test_acc is not None and summary.best_test_acc is not None
        typer.echo(
            f"completed {summary.activation} {summary.net}: final test accuracy "
            f"{100 * summary.final_test_acc:.2f}% (best {100 * summary.best_test_acc:.2f}% at "
            f"epoch {summary.best_epoch}), {summary.train_seconds:.1f}s -> {run_path}"
        )
    elif summary.status == Status.STALLED:
        final = summary.final_test_acc if summary.test_images else summary.final_val_acc
        _err(
            f"stalled: stopped after epoch {summary.epochs}, {summary.dead_site} is dead (every "
            "unit output 0 for every training image at consecutive epoch ends, so nothing below "
            f"it can learn); final accuracy {100 * (final or 0):.2f}%. Run kept in {run_path}; "
            "to train every epoch anyway, train anew with --set train.stop_dead=false"
        )
    elif summary.status == Status.DIVERGED:
        _err(
            f"diverged: the training loss blew up in epoch {summary.diverged_epoch}; "
            f"try a smaller optim.lr. Run kept in {run_path}"
        )
    else:
        _err(
            f"interrupted after epoch {summary.epochs}; continue with: "
            f"actbench train --resume {run_path}"
        )
    for note in summary.notes:
        _err(f"note: {note}")
    if summary.calibration:
        from actbench.calibrate import describe

        for found in summary.calibration:
            _err(f"note: {', '.join(found.settings)} calibrated: {describe(found)}")


@app.command()
def train(
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        help="YAML config: a path, or a shipped config's name (prelu, prelu.yaml).",
    ),
    set_: list[str] = typer.Option(
        [], "--set", "-s", help="Override a key: --set train.epochs=2 (repeatable)."
    ),
    runs_dir: Path = typer.Option(Path("runs"), help="Parent folder for run directories."),
    data_dir: Path = typer.Option(None, help="Data root (holds MNIST/raw); beats the config."),
    name: str = typer.Option(None, help="Run directory name (default: label-net-seed-time)."),
    resume: Path = typer.Option(None, help="Continue an interrupted run directory."),
) -> None:
    """Train one config and write a run directory."""
    from actbench import config as cfgmod
    from actbench import runner
    from actbench.rundir import Status, check_can_create

    if resume is not None:
        if config is not None or set_:
            raise ActbenchError("--resume takes the run's own config; drop --config/--set")
        run, trainer = runner.prepare_resume(resume, data_dir)
        typer.echo(f"resuming {run.path} after epoch {trainer.epoch}")
        with _Display(trainer.cfg.train.epochs, trainer.epoch) as display:
            summary = runner.execute(
                run, trainer, resumed=True, progress=display.batch, on_epoch=display.epoch_done
            )
    else:
        if config is None:
            raise ActbenchError("missing --config FILE (e.g. --config prelu.yaml)")
        if name is not None:
            cfgmod.check_name(name, "--name")
        cfg = cfgmod.load(config, set_)
        check_can_create(runs_dir)  # before the data is loaded
        if data_dir is not None:
            cfg.data.root = str(data_dir)
        with _Display(cfg.train.epochs) as display:
            run, summary = runner.train(
                cfg,
                runs_dir,
                name,
                display.batch,
                display.epoch_done,
                on_start=lambda r: typer.echo(f"run directory: {r.path}"),
            )
    _report_end(run.path, summary)
    if summary.status == Status.INTERRUPTED:
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary.status == Status.DIVERGED:
        raise typer.Exit(1)


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    data_dir: Path = typer.Option(None, help="Data root, if not where the run found it."),
) -> None:
    """Reload a run's weights and print test loss, accuracy and per-class accuracy."""
    from actbench import evaluate as ev

    result, weights = ev.evaluate_run(run_dir, data_dir)
    typer.echo(f"run: {run_dir}")
    typer.echo(f"weights: {weights}")
    typer.echo(f"test loss: {result.loss:.4f}")
    typer.echo(f"test accuracy: {100 * result.acc:.2f}%")
    typer.echo("per-class accuracy:")
    for cls, acc in enumerate(result.per_class_acc):
        typer.echo(f"  {cls}: {100 * acc:6.2f}%")


@app.command()
def compare(
    paths: list[Path] = typer.Argument(..., help="Run directories or folders of runs."),
    format_: str = typer.Option("table", "--format", "-f", help="table | csv | markdown | json"),
    output: Path = typer.Option(None, "--output", "-o", help="Write the tables to this file."),
    group_by: str = typer.Option(
        None, help="Comma-separated fields to group by (default: fields that vary, not seed)."
    ),
    per_run: bool = typer.Option(False, "--per-run", help="One row per run, no grouping."),
    baseline: str = typer.Option(None, help="Group label to test every other group against."),
    metric: str = typer.Option("accuracy", help="accuracy | error (100 - accuracy), in %."),
    wide: bool = typer.Option(
        False,
        "--wide",
        help="Every column (default: a 100-column summary), and the best test epoch's "
        "accuracy, labelled optimistic.",
    ),
    pairs: str = typer.Option(
        None, "--pairs", help="all: test every pair of groups (Holm over all pairs)."
    ),
) -> None:
    """Tables of final test accuracy over runs, aggregated over seeds, with corrected tests."""
    from actbench import compare as cmp

    if format_ not in cmp.FORMATS:
        raise ActbenchError(f"--format: unknown {format_!r}; allowed: {', '.join(cmp.FORMATS)}")
    runs = _load_runs(paths)
    keys = [k.strip() for k in group_by.split(",") if k.strip()] if group_by else None
    if pairs not in (None, "all"):
        raise ActbenchError(f"--pairs: unknown {pairs!r}; allowed: all")
    tables = cmp.compare(
        runs, group_by=keys, per_run=per_run, baseline=baseline, metric=metric,
        pairs=pairs == "all", optimistic=wide,
    ).tables  # fmt: skip
    if output is not None:
        from actbench.rundir import atomic_write, ensure_dir

        if output.is_dir():
            raise ActbenchError(f"--output {output} is a folder; name a file")
        ensure_dir(output.parent)
        atomic_write(output, cmp.render(tables, format_, color=False))
        typer.echo(f"wrote {output}")
    else:
        typer.echo(cmp.render(tables, format_, wide=wide), nl=False)


@app.command()
def sweep(
    config: Path = typer.Option(
        ..., "--config", "-c", help="Sweep YAML: a path, or a shipped sweep's name."
    ),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a key in every run."),
    runs_dir: Path = typer.Option(Path("runs"), help="Parent of the sweep folder."),
    name: str = typer.Option(None, help="Sweep folder name (default: the sweep file's name)."),
    data_dir: Path = typer.Option(None, help="Data root (holds MNIST/raw); beats the configs."),
    workers: str = typer.Option(
        "auto", help="Runs trained at a time (processes): a number, or auto (cores and net)."
    ),
    backend: str = typer.Option(
        "local", help="local (a process pool on this machine) | ray (tasks on a Ray cluster)."
    ),
    address: str = typer.Option(
        None,
        help="--backend ray: the cluster (auto, ray://HOST:PORT, HOST:PORT); none: a "
        "local Ray started for the sweep.",
    ),
    cpus_per_run: float = typer.Option(1.0, help="--backend ray: CPUs per run (its threads)."),
    gpus_per_run: float = typer.Option(
        0.0, help="--backend ray: GPUs per run; fractions share a GPU (0.25: four runs)."
    ),
    beside: bool = typer.Option(
        False,
        "--beside",
        help="Where a planned folder holds a different experiment, train the new run next to "
        "it (name suffixed with its fingerprint) instead of stopping.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the planned runs; train none."),
) -> None:
    """Train every run of a sweep (axes x seeds) into runs/<sweep>/, skipping finished ones."""
    from actbench import config as cfgmod
    from actbench import sweep as sw
    from actbench.plan import Action, check_plans, plan_all
    from actbench.rundir import check_can_create

    plan = sw.load(config, set_)
    if data_dir is not None:  # a path as given (not YAML): where every run finds its data
        for _, cfg in plan.runs:
            cfg.data.root = str(data_dir)
    if name is not None:
        plan.name = cfgmod.check_name(name, "--name")
    folder = runs_dir / plan.name
    n_workers, threads = sw.parse_workers(workers, plan)
    check_can_create(folder)
    ray_options = _backend(backend, address, cpus_per_run, gpus_per_run)
    if dry_run:
        plans = plan_all(plan, folder, beside)
        for name, _, p in plans:
            typer.echo(f"{p.action.value:<8} {folder / name}  {p.detail}".rstrip())
        counts = {a.value: sum(p.action == a for _, _, p in plans) for a in Action}
        typer.echo(
            f"{len(plans)} runs: "
            + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            + f"; {n_workers} worker(s) x {threads or 'default'} thread(s)"
        )
        check_plans(folder, {n: p for n, _, p in plans})
        return
    import time

    started = time.monotonic()
    with _SweepDisplay(len(plan.runs)) as display:
        outcomes = sw.execute(
            plan, folder, n_workers, display.event, display.outcome, beside, threads, ray_options
        )
    for path in sw.write_summaries(folder):
        typer.echo(f"wrote {path}")
    typer.echo(f"wall time {(time.monotonic() - started) / 60:.1f} min")
    _exit_for(outcomes, f" of {len(plan.runs)} runs in {folder}")


def _exit_for(outcomes: list[Any], where: str) -> None:
    """Print the count of each ending; exit 130 if any run was interrupted, 1 if any failed
    or was left alone."""
    from actbench.plan import SHOWN, Ending

    count = {e: sum(o.status == e for o in outcomes) for e in Ending}
    typer.echo(", ".join(f"{v} {e}" for e, v in count.items() if v or e in SHOWN) + where)
    if count[Ending.INTERRUPTED]:
        raise typer.Exit(EXIT_INTERRUPTED)
    if count[Ending.FAILED] or count[Ending.DAMAGED] or count[Ending.MISMATCH]:
        raise typer.Exit(1)


def _backend(
    backend: str, address: str | None, cpus_per_run: float, gpus_per_run: float
) -> dict[str, Any] | None:
    """The Ray options for --backend ray (None: local), checked before anything is written."""
    if backend not in ("local", "ray"):
        raise ActbenchError(f"--backend: unknown {backend!r}; allowed: local, ray")
    if backend == "local":
        if address is not None:
            raise ActbenchError("--address applies to --backend ray only")
        return None
    from actbench.ray_backend import import_ray

    import_ray()  # not installed: say so before anything is planned or written
    import math

    if not (math.isfinite(cpus_per_run) and cpus_per_run > 0) or not (
        math.isfinite(gpus_per_run) and gpus_per_run >= 0
    ):
        raise ActbenchError("--cpus-per-run must be > 0 and --gpus-per-run >= 0")
    return {"address": address, "cpus_per_run": cpus_per_run, "gpus_per_run": gpus_per_run}


@app.command()
def tune(
    config: Path = typer.Option(
        ..., "--config", "-c", help="Tune YAML: a path, or a shipped tune's name (tunes/)."
    ),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a key of the base config."),
    trials: int = typer.Option(None, help="Trials per study (default: the file's trials)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Parent of the tune folder."),
    name: str = typer.Option(None, help="Tune folder name (default: the tune file's name)."),
    data_dir: Path = typer.Option(None, help="Data root (holds MNIST/raw); beats the configs."),
    workers: str = typer.Option("auto", help="Trial runs trained at a time: a number, or auto."),
    backend: str = typer.Option("local", help="local | ray, as for sweep."),
    address: str = typer.Option(None, help="--backend ray: the cluster, as for sweep."),
    cpus_per_run: float = typer.Option(1.0, help="--backend ray: CPUs per trial run."),
    gpus_per_run: float = typer.Option(0.0, help="--backend ray: GPUs per trial run."),
    storage: str = typer.Option(
        None, help="Optuna storage URL (default: sqlite:///<tune folder>/study.db)."
    ),
) -> None:
    """Tune each activation on a validation split with Optuna; write tuned.yaml."""
    from actbench import config as cfgmod
    from actbench import sweep as sw
    from actbench import tune as tn
    from actbench.plan import Sweep
    from actbench.rundir import check_can_create

    spec = tn.load(config, set_, trials)
    if data_dir is not None:  # a path as given (not YAML): where every trial finds its data
        for study in spec.studies:
            sw._set_path(study.data, "data.root", str(data_dir))
    if name is not None:
        spec.name = cfgmod.check_name(name, "--name")
    folder = runs_dir / spec.name
    check_can_create(folder)
    ray_options = _backend(backend, address, cpus_per_run, gpus_per_run)
    # a study trains one trial at a time: a worker per study and seed at most
    runs = [(s.name, cfgmod.from_mapping(s.data)) for s in spec.studies for _ in spec.seeds]
    example = Sweep(spec.name, runs)
    n_workers, threads = sw.parse_workers(workers, example)
    if storage is not None:
        tn.open_storage(storage)  # bad URL: one line, before anything is written
    import time

    started = time.monotonic()
    with _SweepDisplay(len(spec.studies) * spec.trials * len(spec.seeds)) as display:
        done = tn.run(
            spec, folder, workers=n_workers, threads=threads, storage=storage, ray=ray_options,
            on_event=display.event, on_outcome=display.outcome,
        )  # fmt: skip
    typer.echo(f"wall time {(time.monotonic() - started) / 60:.1f} min")
    if done.tuned is not None:
        typer.echo(f"wrote {done.tuned}; the fair comparison: actbench sweep -c {done.tuned}")
    elif not done.interrupted:
        typer.echo("tuned.yaml not written: a study has trials left (held by another process?)")
    _exit_for(done.outcomes, f" trial runs in {folder}")


class _SweepDisplay:
    """One overall bar (runs done of total) plus a line per run in progress; plain lines
    per finished run when not on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _SweepDisplay:
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                transient=True,
            )
            self.progress.__enter__()
            self.overall = self.progress.add_task("[bold]runs", total=self.total, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def event(self, name: str, epoch: int, epochs: int, done: int, total: int) -> None:
        if self.progress is None:
            return
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(f"  {name}", total=total, info="")
        self.progress.update(
            self.tasks[name], completed=done, total=total, info=f"epoch {epoch}/{epochs}"
        )

    def outcome(self, o: Any) -> None:
        self.done += 1
        line = f"[{self.done}/{self.total}] {o.status.value:<9} {o.name}  {o.detail}".rstrip()
        if self.progress is None:
            typer.echo(line)
            return
        if o.name in self.tasks:
            self.progress.remove_task(self.tasks.pop(o.name))
        self.progress.update(self.overall, completed=self.done)
        if not o.status.skipped:
            self.progress.console.print(line)


def _load_runs(paths: list[Path]) -> list[Any]:
    from actbench import rundir

    runs, warnings = rundir.collect(paths)
    for w in warnings:
        _err(f"warning: {w}")
    if not runs:
        raise ActbenchError("no usable run directories in " + " ".join(map(str, paths)))
    return runs


def _write_plots(figures: dict[str, Any], out: Path, also: tuple[str, ...] = ()) -> list[Path]:
    """The figures as PNGs in `out`; `also`: the other files the caller writes there next,
    checked with the figures before anything is written."""
    from actbench import plots
    from actbench.rundir import atomic_write, ensure_dir, refuse_foreign, refuse_link

    refuse_link(out)
    refuse_foreign(out, [*figures, *also])
    ensure_dir(out)
    for name, plot in figures.items():
        atomic_write(out / name, plots.png_bytes(plot))
    return [out / name for name in figures]


@app.command()
def plot(
    paths: list[Path] = typer.Argument(..., help="Run directories or folders of runs."),
    out: Path = typer.Option(Path("plots"), "--out", help="Folder for the PNG files."),
) -> None:
    """Write PNG plots: curves, final accuracies, PReLU slopes, activations, 2-D features."""
    from actbench import plots

    runs = _load_runs(paths)
    figures, skipped = plots.make_all(runs)
    for line in skipped:
        _err(f"warning: {line}")
    if not figures:
        raise ActbenchError("nothing to plot: no completed run among " + " ".join(map(str, paths)))
    for path in _write_plots(figures, out):
        typer.echo(path)


@app.command()
def report(
    paths: list[Path] = typer.Argument(..., help="Run directories or folders of runs."),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder for report.md and plots."),
    baseline: str = typer.Option(
        None, help="Group label to test the others against (default: relu, if present)."
    ),
) -> None:
    """Write report.md: the answer, a forest plot, slope table, plots, configs that differ."""
    from actbench import compare as cmp
    from actbench import plots
    from actbench import report as rep
    from actbench import tune as tn
    from actbench.rundir import atomic_write

    runs = _load_runs(paths)
    if len(paths) == 1 and tn.is_tune(paths[0]):  # a tune folder: its trials, not a comparison
        studies = tn.results(paths[0], runs)
        figures = {k: v for k, v in [("lr_sensitivity.png", plots.lr_sensitivity(studies))] if v}
        text = rep.build_tune(paths[0], studies, list(figures), cmp.compute_used(runs))
        _write_plots(figures, out, also=("report.md",))
        atomic_write(out / "report.md", text)
        typer.echo(out / "report.md")
        return
    comparison = cmp.for_report(runs, baseline)  # bad input fails before anything is drawn
    figures, skipped = plots.make_all(runs, comparison)
    for line in skipped:
        _err(f"warning: {line}")
    text = rep.build(comparison, list(figures))
    _write_plots(figures, out, also=("report.md",))
    atomic_write(out / "report.md", text)
    typer.echo(out / "report.md")


export_app = typer.Typer(
    cls=_Group, help="Export runs to other tools' formats.", no_args_is_help=True
)
app.add_typer(export_app, name="export")


@export_app.command("tensorboard")
def export_tensorboard(
    paths: list[Path] = typer.Argument(..., help="Run directories or folders of runs."),
    out: Path = typer.Option(..., "--out", help="Folder for the event files (one per run)."),
) -> None:
    """Write TensorBoard event files: metrics, PReLU slopes and hparams per run."""
    from actbench import export
    from actbench.rundir import check_can_create, refuse_link

    export._writer_class()  # not installed: say so before reading anything
    refuse_link(out)
    check_can_create(out)
    for folder in export.tensorboard(_load_runs(paths), out):
        typer.echo(folder)


@app.command()
def calibrate(
    config: list[str] = typer.Option(
        ["relu.yaml", "lenetpp_relu.yaml"],
        "--config",
        "-c",
        help="Config(s) whose network, batch size, device and threads to time (repeatable).",
    ),
    set_: list[str] = typer.Option(
        [], "--set", "-s", help="Override a key: --set train.threads=1 (repeatable)."
    ),
) -> None:
    """Time the execution paths `auto` chooses among on this machine, again, and cache the
    fastest (what train, sweep and tune then use)."""
    from actbench import calibrate as cal
    from actbench import config as cfgmod
    from actbench.calibrate import recalibrate
    from actbench.fastpath import device_type

    configs = [cfgmod.load(name, set_) for name in config]  # all checked before any timing
    for cfg in configs:
        found, cands = recalibrate(cfg)
        head = f"{cfg.model.net}, batch {cfg.train.batch_size}, {device_type(cfg.train.device)}"
        if found is None:
            typer.echo(f"{head}: one path allowed here ({cands[0].label}); nothing to time")
            continue
        typer.echo(
            f"{head}, {found.threads} thread(s): {len(cands)} paths timed in {found.seconds:.1f}s"
        )
        for label, ms in found.step_ms.items():
            kept = "  <- kept" if label == found.chosen else ""
            typer.echo(f"  {label:<19} {ms:8.2f} ms per step{kept}")
    folder = cal.cache_dir()
    typer.echo(f"cached in {folder}" if folder else "not cached: no home folder")


@app.command("list")
def list_() -> None:
    """The activations (built-in, with their parameters, and installed user ones), networks
    and data sets."""
    from actbench.config import ActivationConfig
    from actbench.registry import ACTIVATIONS, DATASETS, NETWORKS

    defaults = ActivationConfig()
    typer.echo("activations:")
    for name, spec in ACTIVATIONS.items():
        shown = ", ".join(f"{p}={getattr(defaults, p)!r:.6}" for p in spec.params)
        typer.echo(f"  {name:<11} {shown:<30} {spec.description}".rstrip())
    from actbench import plugins

    users = plugins.entry_points()
    typer.echo(f"user activations (entry points, group {plugins.GROUP}):")
    for name, plugin in users.items():
        shadowed = " (hidden by the built-in of that name)" if name in ACTIVATIONS else ""
        typer.echo(f"  {name:<11} {plugin.target} from {plugin.dist}{shadowed}")
    if not users:
        typer.echo("  none installed")
    typer.echo("  or any class by import path: activation: {name: 'package.module:Class', ...}")
    typer.echo("networks:")
    for name, net in NETWORKS.items():
        typer.echo(f"  {name:<11} {net.description}; sites: {', '.join(net.sites)}")
    typer.echo("datasets:")
    for name, ds in DATASETS.items():
        typer.echo(f"  {name:<13} {ds.description}")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
