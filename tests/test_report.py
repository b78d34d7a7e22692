"""The report a person reads in a minute: the answer first, a forest plot with compare's
numbers, stalled runs marked and counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actbench import compare, plots, rundir
from actbench.cli import app

from .helpers import fake_run

cli = CliRunner()
RELU, PRELU, ELU = {"name": "relu"}, {"name": "prelu"}, {"name": "elu"}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    for seed in range(5):
        fake_run(runs, PRELU, seed, 0.9850 + seed / 10_000)
        fake_run(runs, ELU, seed, 0.9830 + (seed % 2) / 1000)
        # relu on LeNet++'s 2-D bottleneck: two seeds stuck near chance
        fake_run(runs, RELU, seed, 0.1135 if seed < 2 else 0.9820 + seed / 10_000)
    return runs


def test_a_run_near_chance_is_stalled_and_counted(runs: Path) -> None:
    stalled = rundir.load_run(runs / "relu-lenet-mnist-s0")
    assert stalled.status == "stalled" and stalled.completed
    assert rundir.load_run(runs / "relu-lenet-mnist-s2").status == "completed"
    rows = {
        r["group"]: r
        for r in compare.records(
            compare.build_tables(rundir.collect([runs])[0], baseline="relu")[0]
        )
    }
    assert (rows["relu"]["n"], rows["relu"]["stalled"], rows["relu"]["diverged"]) == (5, 2, 0)
    assert rows["relu"]["final_acc_mean"] == pytest.approx((11.35 * 2 + 98.22 + 98.23 + 98.24) / 5)


def test_forest_plot_draws_compares_numbers(runs: Path) -> None:
    found, _ = rundir.collect([runs])
    c = compare.for_report(found, "relu")
    table = compare.records(c.tables[0])
    figures, _ = plots.make_all(found, c)
    drawn = figures["forest.png"].data
    assert set(drawn) == {"prelu", "elu"}
    for r in table:
        if r["group"] in drawn:
            assert drawn[r["group"]] == (
                r["diff_vs_baseline"],
                r["diff_ci95_low"],
                r["diff_ci95_high"],
            )
    assert list(figures["final_acc.png"].data) == ["prelu", "elu", "relu"]  # by result
    legend = [t.get_text() for t in figures["curves.png"].figure.axes[0].get_legend().get_texts()]
    assert "relu (n=5, 2 stalled)" in legend  # stalled runs count, and every figure says so
    forest_labels = [t.get_text() for t in figures["forest.png"].figure.axes[0].get_yticklabels()]
    assert forest_labels == ["elu (n=5)", "prelu (n=5)"]


def test_report_opens_with_the_answer(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = cli.invoke(app, ["report", str(runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    top, bullets = text.split("## The answer\n\n", 1)[1].split("\n\n", 2)[:2]
    answer = bullets.splitlines()
    table = {
        r["group"]: r
        for r in json.loads(
            cli.invoke(app, ["compare", str(runs), "--baseline", "relu", "-f", "json"]).stdout
        )[0]["rows"]
    }
    prelu, elu = table["prelu"], table["elu"]
    assert top.startswith("**Top group**: prelu, relu: the best by mean final test accuracy")
    assert answer[0] == (
        f"- **prelu** is not distinguishable from relu: {prelu['diff_vs_baseline']:+.2f} points "
        f"(95% t CI {prelu['diff_ci95_low']:.2f} to {prelu['diff_ci95_high']:.2f}, paired over 5 "
        f"seeds, p = {prelu['p_t']:.2g}, Holm-adjusted {prelu['p_holm']:.2g}, "
        f"d = {prelu['effect_size']:.2f}, won {prelu['wins']} seeds). With 5 seeds this design "
        f"detects differences of {prelu['mde']:.2f} points or more (80% power after Holm's "
        "correction): a smaller one may exist."
    )
    assert answer[1].startswith("- **elu** is not distinguishable from relu:")
    assert answer[2] == "- **relu** (baseline): 63.48% ± 47.59 over 5 seeds (2 of 5 stalled)."
    assert elu["verdict"] == "not distinguishable"
    after = text.split("## The answer", 1)[1]
    assert after.index("](forest.png)") < after.index("## Details")
    assert (out / "forest.png").is_file()


def _retime(run: Path, *trained: tuple[float, float]) -> None:
    """Record a fake run as trained in `trained` (unix seconds), its epochs as long."""
    path = run / rundir.SUMMARY
    summary = json.loads(path.read_text())
    seconds = sum(end - start for start, end in trained)
    summary.update(sessions=trained, heartbeat=trained[-1][1], train_seconds=seconds)
    path.write_text(json.dumps(summary))


def test_report_states_the_compute_the_runs_took(tmp_path: Path) -> None:
    """CPU-hours are each run's epochs x its threads; wall time counts runs side by side
    once and the idle time between invocations not at all, a resumed run's too."""
    runs = tmp_path / "runs"
    two = {"train": {"threads": 2}}
    a, b, c = (fake_run(runs, RELU, seed, 0.98, overrides=two) for seed in range(3))
    h, t0 = 3600.0, 1e9
    # two workers: a for 1 h beside b's first 0.5 h; b, interrupted, resumes 2 h later
    # for another 0.5 h beside c
    _retime(a, (t0, t0 + h))
    _retime(b, (t0 + h / 2, t0 + h), (t0 + 3 * h, t0 + 3.5 * h))
    _retime(c, (t0 + 3 * h, t0 + 3.5 * h))
    found, _ = rundir.collect([runs])
    used = compare.compute_used(found)
    assert (used.train_hours, used.cpu_hours, used.wall_hours) == (2.5, 5.0, 1.5)
    out = tmp_path / "report"
    assert cli.invoke(app, ["report", str(runs), "--out", str(out)]).exit_code == 0
    assert (
        "**Compute**: 3 runs trained for 2.50 h in all: 5.00 CPU-hours (2 threads per run); "
        f"1.50 h of wall time while at least one trained; on {rundir.HOST}: processor not "
        "recorded.\n"  # fake runs: no process trained them
    ) in (out / "report.md").read_text()
    # before schema 5: no intervals, one inferred from the heartbeat; torch's default threads
    d = fake_run(runs, ELU, 0, 0.98)
    summary = json.loads((d / rundir.SUMMARY).read_text())
    summary.update(sessions=[], heartbeat=t0 + 10 * h, train_seconds=h)
    (d / rundir.SUMMARY).write_text(json.dumps(summary))
    used = compare.compute_used(rundir.collect([runs])[0])
    assert (used.cpu_hours, used.wall_hours, used.inferred) == (None, 2.5, 1)
    assert used.threads == [0, 2]


def test_a_driver_marking_a_run_interrupted_keeps_where_and_when_it_trained(
    tmp_path: Path,
) -> None:
    path = fake_run(tmp_path, RELU, 0, None, status=rundir.Status.RUNNING)
    trainer = rundir.RunDir(path)
    trainer.begin_training([(1e9, 1e9 + 60)])
    trainer.write_summary(rundir.load_run(path).summary)
    trained = rundir.load_run(path).summary
    rundir.RunDir(path).mark_interrupted()  # e.g. the Ray driver, on another machine
    marked = rundir.load_run(path).summary
    assert marked.status == "interrupted" and trained.machine == rundir.MACHINE
    assert (marked.machine, marked.sessions) == (trained.machine, trained.sessions)
    assert len(trained.sessions) == 2


def test_report_lists_every_seeds_learned_slope(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed, (a1, a2) in enumerate([(0.25, 0.5), (-0.125, 0.75)]):
        slopes = {
            s: {"mean": a, "min": a, "max": a, "n": 1} for s, a in (("conv1", a1), ("conv2", a2))
        }
        fake_run(runs, PRELU, seed, 0.985, slopes=slopes)
        fake_run(runs, RELU, seed, 0.984)
    out = tmp_path / "report"
    assert cli.invoke(app, ["report", str(runs), "--out", str(out)]).exit_code == 0
    text = (out / "report.md").read_text()
    table = text.split("### Learned activation parameters, every seed: prelu\n\n", 1)[1]
    assert table.split("\n\n")[0] == (
        "| group | site | param | s0 | s1 |\n"
        "|---|---|---|---|---|\n"
        "| prelu | conv1 | a | 0.25 | -0.125 |\n"
        "| prelu | conv2 | a | 0.5 | 0.75 |"
    )


def test_the_gap_band_stays_within_what_a_difference_of_accuracies_can_be(tmp_path: Path) -> None:
    """Two seeds that disagree (ReLU trains in one, not the other) give a t interval of the
    difference far wider than +-100 points: the band is cut there, the mean line kept."""
    runs, one = tmp_path / "runs", {"train": {"epochs": 1}}
    for seed, relu in enumerate([0.10, 0.95]):
        fake_run(runs, PRELU, seed, 0.985, overrides=one)
        fake_run(runs, RELU, seed, relu, overrides=one)
    found, _ = rundir.collect([runs])
    figures, _ = plots.make_all(found, compare.for_report(found, "relu"))
    gap = figures["gap.png"].data["prelu"]
    assert (gap["low"], gap["mean"], gap["high"]) == ([-100.0], [pytest.approx(46.0)], [100.0])


@pytest.mark.parametrize(
    ("conv1", "verdict"),
    [
        ((0.75, 1.0), "agrees with that pattern"),
        ((0.75, 0.25), "agrees with that pattern in 1 of 2 seeds only"),
        ((0.25, 0.25), "disagrees with that pattern"),
    ],
)
def test_the_report_says_in_how_many_seeds_the_first_slope_is_the_largest(
    tmp_path: Path, conv1: tuple[float, float], verdict: str
) -> None:
    """He et al. (2015) found the first conv layer's slope the largest: the report agrees
    only when every seed does, and says so seed-counted when some do."""
    runs = tmp_path / "runs"
    for seed, a1 in enumerate(conv1):
        slopes = {
            s: {"mean": a, "min": a, "max": a, "n": 1} for s, a in (("conv1", a1), ("conv2", 0.5))
        }
        fake_run(runs, PRELU, seed, 0.985, slopes=slopes)
        fake_run(runs, RELU, seed, 0.984)
    out = tmp_path / "report"
    assert cli.invoke(app, ["report", str(runs), "--out", str(out)]).exit_code == 0
    largest = sum(a > 0.5 for a in conv1)
    mean = sum(conv1) / 2
    assert (
        f"- **prelu** on lenet: the first site's slope (conv1) is {mean:.3f} on average and the "
        f"largest of the conv sites in {largest} of 2 seeds (deeper conv sites reach 0.500 at "
        "conv2). He et al. (2015, Table 1) found the first conv layer's channel-shared slope "
        f"the largest (0.681): this {verdict}.\n"
    ) in (out / "report.md").read_text()


def test_a_run_stopped_dead_counts_but_leaves_no_dent_in_the_per_epoch_plots(
    tmp_path: Path,
) -> None:
    """A run that stopped early because its network died (train.stop_dead) has 2 of its 5
    epochs: it counts in the numbers, and the per-epoch plots draw its group over the 5
    epochs of the others, saying it is left out."""
    runs = tmp_path / "runs"
    five = {"train": {"epochs": 5}}
    for seed in range(4):
        fake_run(runs, PRELU, seed, 0.985, overrides=five, curve=[0.9, 0.95, 0.97, 0.98, 0.985])
        if seed:
            fake_run(runs, RELU, seed, 0.98, overrides=five, curve=[0.9, 0.94, 0.96, 0.97, 0.98])
    dead = fake_run(runs, RELU, 0, 0.1135, overrides=five, curve=[0.1135, 0.1135],
                    status="stalled", dead_site="conv1", epochs=2)  # fmt: skip
    assert rundir.load_run(dead).status == "stalled" and rundir.load_run(dead).completed
    found, _ = rundir.collect([runs])
    c = compare.for_report(found, "relu")
    rows = {r["group"]: r for r in compare.records(c.tables[0])}
    assert (rows["relu"]["n"], rows["relu"]["stalled"], rows["relu"]["trained"]) == (4, 1, 3)
    figures, _ = plots.make_all(found, c)
    assert figures["curves.png"].data["relu"]["test"] == pytest.approx([90, 94, 96, 97, 98])
    legend = [t.get_text() for t in figures["curves.png"].figure.axes[0].get_legend().get_texts()]
    assert "relu (n=4, 1 stalled, 1 stopped dead, not drawn)" in legend
    assert figures["gap.png"].data["prelu"]["epochs"] == [1, 2, 3, 4, 5]  # 3 paired seeds
    legend = [t.get_text() for t in figures["gap.png"].figure.axes[0].get_legend().get_texts()]
    assert legend == ["prelu - relu (n=3; relu: 1 stopped dead, not drawn)"]
    notes = " ".join(c.tables[0].notes)
    assert "or stopped early when a layer died (1 run: every unit of a site output 0" in notes
