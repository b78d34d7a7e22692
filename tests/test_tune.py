"""actbench tune: bad tune files, a tune end to end on real MNIST, its resume after a signal
or a kill of the driver, the test set never read, and the report of a tune folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actbench import rundir
from actbench.cli import app

from .conftest import DATA_ROOT, REPO, needs_data
from .helpers import summaries, wait_for

optuna = pytest.importorskip("optuna")
cli = CliRunner()
BOUND = 600  # seconds: a tune that takes longer has hung
# Two activations, two trials each, on 300 images for 2 epochs: seconds per trial.
TUNE = """\
name: tiny
base: relu.yaml
set: {data.val_size: 1000, data.train_subset: 300, train.epochs: 2, train.device: cpu}
axes:
  activation: [{name: relu}, {name: prelu}]
space:
  optim.lr: {low: 0.001, high: 0.3, log: true}
  optim.momentum: [0.5, 0.9]
trials: 2
seeds: [1000]
eval_seeds: 3
sampler: random
"""


def _tune_file(tmp_path: Path, text: str = TUNE) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def _study(folder: Path, name: str) -> object:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / rundir.STUDY_DB}")


# ---------------------------------------------------------------------------- shipped tunes


TUNES = sorted(p.stem for p in (REPO / "actbench" / "tunes").glob("*.yaml"))  # the shipped ones


@pytest.mark.parametrize("name", TUNES)
def test_shipped_tunes_load_with_every_study_on_a_validation_split(name: str) -> None:
    from actbench import config, tune

    spec = tune.load(name)
    studies = [config.from_mapping(plan.data) for plan in spec.studies]
    assert studies and spec.trials >= 1
    assert all(cfg.data.val_size == 10000 for cfg in studies)
    # LeNet++'s tune and evaluation span sessions on different CPUs: one precision for all
    # of them, or runs resumed on a bf16-native CPU would stop pairing with the others.
    if name == "lenetpp":
        assert {cfg.train.precision for cfg in studies} == {"fp32"}


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("optim.momentum: [0.5", "optim.momentumm: [0.5"), "unknown key 'optim.momentumm'"),
        (("{low: 0.001, high: 0.3, log: true}", "{low: 0, high: 0.3, log: true}"),
         "a log range needs low > 0"),
        (("{low: 0.001, high: 0.3, log: true}", "{low: 0.3, high: 0.3}"), "low < high"),
        (("optim.momentum: [0.5, 0.9]", "optim.momentum: []"), "an empty list of choices"),
        (("trials: 2", "trials: 0"), "trials must be an integer 1..10000"),
        (("sampler: random", "sampler: bayes"), "sampler: unknown 'bayes'"),
        (("sampler: random", "sampler: grid"), "sampler grid needs a list of values"),
        (("seeds: [1000]", "seeds: [1]"), "tuning seeds [1] are also evaluation seeds"),
        (("data.val_size: 1000, ", ""), "tuning needs a validation split"),
        (("trials: 2", "trials: 2\nbudget: 3"), "unknown key 'budget'"),
    ],
)  # fmt: skip
def test_a_bad_tune_file_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    spec = _tune_file(tmp_path, TUNE.replace(*edit))
    result = cli.invoke(app, ["tune", "-c", str(spec), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line
    assert not (tmp_path / "runs").exists()


def test_a_storage_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    spec = _tune_file(tmp_path)
    result = cli.invoke(app, ["tune", "-c", str(spec), "--runs-dir", str(tmp_path / "runs"),
                              "--storage", "nosuchdb://nowhere"])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --storage nosuchdb://nowhere: cannot be opened")
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------- real tuning


def _tune(tmp_path: Path, *extra: str, data: Path | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "actbench", "tune", "-c", str(_tune_file(tmp_path)),
           "--runs-dir", str(tmp_path / "runs"), "--workers", "2", *extra]  # fmt: skip
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, "ACTBENCH_DATA": str(data or DATA_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # signals reach the driver only when the test sends them
    )


def _check_recorded_once(folder: Path) -> None:
    """Every study holds exactly its 2 trials, each complete, each with one run folder."""
    for study in ("relu-lenet-mnist", "prelu-lenet-mnist"):
        trials = _study(folder, study).get_trials()
        assert [t.number for t in trials] == [0, 1]
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), trials
        for t in trials:
            run = rundir.load_run(folder / f"{study}-t{t.number:03d}-s1000")
            assert run.summary.final_val_acc == pytest.approx(t.value)
            assert run.summary.test_images is None and run.summary.final_test_acc is None


@pytest.mark.slow
@needs_data
def test_tune_end_to_end_with_the_test_set_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No trial reads the test set: a data root without the test files tunes fine; tuned.yaml
    is a sweep `sweep --dry-run` accepts; the study opens with Optuna; report draws it."""
    data = tmp_path / "data" / "MNIST" / "raw"
    data.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (data / name).symlink_to(DATA_ROOT / "MNIST" / "raw" / name)
    proc = _tune(tmp_path, data=tmp_path / "data")
    out, err = proc.communicate(timeout=BOUND)
    assert proc.returncode == 0, err
    folder = tmp_path / "runs" / "tiny"
    assert out.splitlines()[-1] == f"4 completed, 0 failed, 0 skipped trial runs in {folder}"
    _check_recorded_once(folder)
    dry = cli.invoke(app, ["sweep", "-c", str(folder / rundir.TUNED), "--dry-run",
                           "--runs-dir", str(tmp_path / "runs")])  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[-1].startswith("6 runs: 6 new")  # 2 studies x 3 seeds
    monkeypatch.chdir(tmp_path)  # the report names tuned.yaml as a reader here runs it
    report = cli.invoke(app, ["report", str(folder), "--out", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| relu-lenet-mnist | 2 | 2 | 0 | 0 |" in text
    assert "\nactbench sweep -c runs/tiny/tuned.yaml\n" in text
    assert "**Compute**: 4 runs trained for " in text and rundir.MACHINE in text
    assert (tmp_path / "rep" / "lr_sensitivity.png").stat().st_size > 10_000


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_tune_resumes_after_the_driver_stops_and_records_every_trial_once(
    tmp_path: Path, how: str
) -> None:
    proc = _tune(tmp_path, "--set", "train.epochs=3", "--set", "data.train_subset=1000")
    folder = tmp_path / "runs" / "tiny"
    try:
        wait_for(
            lambda: any(s.get("epochs", 0) >= 1 for s in summaries(folder).values()),
            proc,
            bound=BOUND,
        )
        os.kill(proc.pid, getattr(signal, how))  # the driver's pid only
        _, err = proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if how == "SIGINT":
        assert proc.returncode == 130, err
    else:  # the workers notice their parent is gone and stop their runs (interrupted)
        wait_for(lambda: not any(
            s.get("status") == "running" and rundir.pid_alive(s["pid"])
            for s in summaries(folder).values()), bound=BOUND)  # fmt: skip
    again = _tune(tmp_path, "--set", "train.epochs=3", "--set", "data.train_subset=1000")
    _, err = again.communicate(timeout=BOUND)
    assert again.returncode == 0, err
    _check_recorded_once(folder)
    assert (folder / rundir.TUNED).is_file()


@pytest.mark.slow
@needs_data
def test_trials_whose_network_died_end_early_and_still_name_a_setting(tmp_path: Path) -> None:
    """A stalled trial (its network died: train.stop_dead) is told to its study as completed
    at its validation accuracy, so a study whose every trial stalls still names a setting for
    tuned.yaml, whose evaluation then shows the stall; its epochs end at the second dead one."""
    text = TUNE.replace("train.epochs: 2", "train.epochs: 4").replace(
        "[{name: relu}, {name: prelu}]", "[{name: 'tests.user_acts:Dead'}]"
    )
    args = ["tune", "-c", str(_tune_file(tmp_path, text)), "--runs-dir", str(tmp_path)]
    result = cli.invoke(app, args, env={"ACTBENCH_DATA": str(DATA_ROOT)})
    assert result.exit_code == 0, result.output
    folder = tmp_path / "tiny"
    assert result.stdout.splitlines()[-1] == (
        f"0 completed, 0 failed, 2 stalled, 0 skipped trial runs in {folder}"
    )
    study = "tests.user_acts.Dead-lenet-mnist"
    for t in _study(folder, study).get_trials():
        assert t.state == optuna.trial.TrialState.COMPLETE
        run = rundir.load_run(folder / f"{study}-t{t.number:03d}-s1000")
        assert (run.status, run.summary.epochs, run.summary.dead_site) == ("stalled", 2, "conv1")
        assert run.summary.final_val_acc == pytest.approx(t.value)
    assert (folder / rundir.TUNED).is_file()
    report = cli.invoke(app, ["report", str(folder), "--out", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "rep" / "report.md").read_text()
    assert f"| {study} | 2 | 2 | 0 | 0 |" in text  # completed: stalled trials are told so
    assert "completed includes trials stopped early as stalled, their network dead" in text
    assert text.split("told to the study at their validation accuracy: ")[1].startswith(
        f"{study} 2"
    )


@pytest.mark.slow
@needs_data
def test_a_free_worker_takes_the_next_trial_without_waiting_for_a_round(tmp_path: Path) -> None:
    """Three studies on two workers: the fourth trial is asked as soon as a worker frees,
    while a trial of the first three still trains (a round of one trial per study waited for
    all three); and a study's next trial is asked only once its last was told, so the
    sampler never sees a study's own trial still running."""
    text = TUNE.replace(
        "[{name: relu}, {name: prelu}]", "[{name: relu}, {name: prelu}, {name: elu}]"
    )
    args = ["tune", "-c", str(_tune_file(tmp_path, text)), "--runs-dir", str(tmp_path),
            "--workers", "2"]  # fmt: skip
    result = cli.invoke(app, args, env={"ACTBENCH_DATA": str(DATA_ROOT)})
    assert result.exit_code == 0, result.output
    folder = tmp_path / "tiny"
    studies = [_study(folder, f"{a}-lenet-mnist").get_trials() for a in ("relu", "prelu", "elu")]
    for first, second in studies:
        assert first.state == second.state == optuna.trial.TrialState.COMPLETE
        assert second.datetime_start >= first.datetime_complete
    asked = sorted((t for trials in studies for t in trials), key=lambda t: t.datetime_start)
    assert asked[3].datetime_start < max(t.datetime_complete for t in asked[:3])


def test_a_study_is_given_no_new_trial_while_its_last_trains(tmp_path: Path) -> None:
    """Two studies on any number of workers: one trial each in training, then nothing more
    to hand out until one is told (the sampler would see its own study's trial running)."""
    from actbench import tune as tn

    spec = tn.load(_tune_file(tmp_path))
    studies = {
        s.name: optuna.create_study(study_name=s.name, direction="maximize") for s in spec.studies
    }
    trials = tn._Trials(spec, studies, "sqlite://", tmp_path, lambda outcome: None)
    handed = [trials.feed() for _ in range(3)]
    assert [[name for name, _, _ in runs] for runs in handed] == [
        ["relu-lenet-mnist-t000-s1000"],
        ["prelu-lenet-mnist-t000-s1000"],
        [],
    ]


@pytest.mark.slow
@needs_data
def test_a_tune_folder_resumes_only_the_tune_it_holds(tmp_path: Path) -> None:
    """Run again with other settings, a tune would record them over those its trials ran
    with (tune.yaml, tuned.yaml's base): exit 2, nothing rewritten. More trials extend it;
    fewer than a study holds are refused."""
    args = ["tune", "-c", str(_tune_file(tmp_path)), "--runs-dir", str(tmp_path), "--trials", "1"]
    env = {"ACTBENCH_DATA": str(DATA_ROOT)}
    assert cli.invoke(app, args, env=env).exit_code == 0
    folder = tmp_path / "tiny"
    written = {p.name: p.read_text() for p in (folder / rundir.TUNE_SPEC, folder / rundir.TUNED)}
    other = cli.invoke(app, [*args, "--set", "train.epochs=3"], env=env)
    assert other.exit_code == 2
    assert other.stderr == (
        f"error: {folder} holds a tune run with other settings (set.train.epochs: 2 != 3); "
        "resume it as it was, or use another --name or --runs-dir\n"
    )
    assert {p: (folder / p).read_text() for p in written} == written
    more = cli.invoke(app, [*args[:-1], "2"], env=env)
    assert more.exit_code == 0, more.output
    assert [len(_study(folder, f"{a}-lenet-mnist").get_trials()) for a in ("relu", "prelu")] == [
        2,
        2,
    ]
    fewer = cli.invoke(app, args, env=env)
    assert fewer.exit_code == 2
    assert fewer.stderr.startswith("error: study relu-lenet-mnist holds 2 trials already, more")


# ---------------------------------------------------------------------------- the tune report


def _made_study(name: str, values: dict[float, float]) -> object:
    """A study as report and plots read it: trials at these learning rates -> objectives."""
    from actbench import tune as tn

    trials = [tn.TrialResult(name, i, {"optim.lr": lr}, acc, rundir.Status.COMPLETED, 10)
              for i, (lr, acc) in enumerate(values.items())]  # fmt: skip
    return tn.StudyResult(name, trials, max(trials, key=lambda t: t.value))


def test_a_best_setting_near_the_edge_of_its_range_is_noted_and_drawn() -> None:
    """A reader asks whether a study's best learning rate only looks best because the range
    stops there: the report says so for the study whose best sits in a range's outer 15%;
    the sensitivity plot's axis still shows every study's chosen trial, however low."""
    import matplotlib.pyplot as plt

    from actbench import plots
    from actbench import report as rep
    from actbench import tune as tn

    space = {"optim.lr": tn.Param("optim.lr", 0.001, 0.1, log=True),
             "optim.momentum": tn.Param("optim.momentum", choices=(0.5, 0.9))}  # fmt: skip
    studies = [
        _made_study("prelu", {0.0125: 0.99, 0.05: 0.10}),  # middle of the range: no note
        _made_study("relu", {0.00165: 0.77, 0.01: 0.118}),  # 11% from the low end (log scale)
        _made_study("elu", {0.09: 0.98}),  # 2% from the high end
    ]
    notes = rep.tune_table(studies, space).notes[1:]
    assert notes == [
        "relu's best optim.lr, 0.00165, lies in the lowest 11% of its range 0.001..0.1 (log "
        "scale): a better setting may lie below it (every study had this range)",
        "elu's best optim.lr, 0.09, lies in the highest 2% of its range 0.001..0.1 (log "
        "scale): a better setting may lie above it (every study had this range)",
    ]
    plot = plots.lr_sensitivity(studies)
    low, high = plot.figure.axes[0].get_ylim()
    plt.close(plot.figure)
    assert low < 77 and high > 99 and low > 11.8  # relu's chosen 77% drawn; its 11.8% off axis
