"""compare: tables, statistics checked against hand-computed values and scipy, formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from actbench import compare, rundir, stats
from actbench.cli import app

from .conftest import REPO
from .helpers import fake_run

cli = CliRunner()
RELU, PRELU = {"name": "relu"}, {"name": "prelu"}
# Final accuracies (fractions) by seed.
RELU_ACC = {0: 0.980, 1: 0.970, 2: 0.985}
PRELU_ACC = {0: 0.984, 1: 0.976, 2: 0.991}


@pytest.fixture
def paired(tmp_path: Path) -> Path:
    for seed, acc in RELU_ACC.items():
        fake_run(tmp_path, RELU, seed, acc)
    for seed, acc in PRELU_ACC.items():
        fake_run(
            tmp_path,
            PRELU,
            seed,
            acc,
            slopes={"conv1": {"mean": (a := 0.2 + seed / 100), "min": a, "max": a, "n": 1}},
        )
    return tmp_path


def _json(result) -> list[dict]:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_paired_statistics_match_hand_computation(paired: Path) -> None:
    tables = _json(cli.invoke(app, ["compare", str(paired), "--baseline", "relu", "-f", "json"]))
    rows = {r["group"]: r for r in tables[0]["rows"]}
    prelu = rows["prelu"]
    # prelu accuracies 98.4, 97.6, 99.1: mean 98.3667, sample std 0.75056
    assert prelu["n"] == 3
    assert prelu["final_acc_mean"] == pytest.approx(98.367, abs=1e-3)
    assert prelu["final_acc_std"] == pytest.approx(0.751, abs=1e-3)
    # CI: mean +- t(0.975, 2) * std / sqrt(3) = 98.3667 +- 4.302653 * 0.433333
    assert prelu["ci95_low"] == pytest.approx(96.502, abs=1e-3)
    assert prelu["ci95_high"] == 100.0  # the t interval (to 100.231) cut to what accuracy allows
    # Paired differences 0.4, 0.6, 0.6: mean 0.5333, sd 0.11547, t = 8.0 on 2 df
    assert prelu["diff_vs_baseline"] == pytest.approx(0.533, abs=1e-3)
    assert prelu["diff_ci95_low"] == pytest.approx(0.533 - 4.302653 * 0.066667, abs=1e-3)
    assert prelu["p_t"] == pytest.approx(0.01527, abs=1e-4)
    assert prelu["test"] == "paired t"  # 3 pairs: too few for Wilcoxon
    assert prelu["verdict"] == "better"
    assert rows["relu"]["verdict"] == "baseline"


def test_unpaired_groups_fall_back_to_welch(tmp_path: Path) -> None:
    relu = [0.980, 0.970, 0.985]
    prelu = [0.984, 0.976, 0.991, 0.979]
    for seed, acc in enumerate(relu):
        fake_run(tmp_path, RELU, seed, acc)
    for seed, acc in enumerate(prelu, start=10):
        fake_run(tmp_path, PRELU, seed, acc)
    tables = _json(cli.invoke(app, ["compare", str(tmp_path), "--baseline", "relu", "-f", "json"]))
    row = next(r for r in tables[0]["rows"] if r["group"] == "prelu")
    expected = sps.ttest_ind([100 * a for a in prelu], [100 * a for a in relu], equal_var=False)
    assert row["test"] == "Welch t (unpaired)"
    assert row["p_t"] == pytest.approx(expected.pvalue, rel=1e-3)
    assert row["p_wilcoxon"] is None
    assert row["verdict"] == "not distinguishable"  # p = 0.37


@pytest.mark.parametrize("df", [1, 2, 4, 7.3, 30, 200])
def test_t_distribution_matches_scipy(df: float) -> None:
    assert stats.t_quantile(df) == pytest.approx(sps.t.ppf(0.975, df), rel=1e-9)
    for t in (0.1, 1.0, 2.5, 8.0):
        assert stats.t_pvalue(t, df) == pytest.approx(2 * sps.t.sf(t, df), rel=1e-8)


def _scipy_wilcoxon(d: list[int]) -> float:
    """scipy's p: exact enumeration where it has one (n <= 50 untied; tied: permutations,
    exhaustive up to 2^13 patterns), else the normal approximation with tie correction."""
    return float(sps.wilcoxon(d).pvalue)


@pytest.mark.parametrize("n", range(2, 61))
def test_wilcoxon_matches_scipy_tied_and_untied(n: int) -> None:
    rng = np.random.default_rng(n)
    untied = [int(v) * (1 if rng.random() < 0.6 else -1) for v in rng.permutation(n) + 1]
    assert stats.wilcoxon_pvalue(untied) == pytest.approx(_scipy_wilcoxon(untied), rel=1e-9)
    tied = [int(v) for v in rng.integers(-3, 6, n) * 10]  # image counts: heavy ties, zeros
    if n > 50:  # both use the normal approximation; scipy decides that on n before zeros
        tied = [v or 10 for v in tied]  # are dropped, we after, so keep zeros out here
    if not any(tied):
        tied[0] = 10
    ours = stats.wilcoxon_pvalue(tied)
    if n <= 13 or n > 50:  # scipy enumerates every sign pattern, or approximates as we do
        assert ours == pytest.approx(_scipy_wilcoxon(tied), rel=1e-9)
    else:  # ties at 14..50: we stay exact, scipy approximates; check against its
        # permutation test instead, within that test's Monte Carlo error
        method = sps.PermutationMethod(n_resamples=3_000, rng=0)
        assert ours == pytest.approx(sps.wilcoxon(tied, method=method).pvalue, abs=0.04)  # > 4 sd


def test_float_noise_does_not_break_ties(tmp_path: Path) -> None:
    counts = [9821, 9761, 9850, 9802, 9788, 9833]  # correct test images of relu, seeds 0-5
    diffs = [40, 40, 40, -20, 60, 40]
    for seed, (c, d) in enumerate(zip(counts, diffs, strict=True)):
        fake_run(tmp_path, RELU, seed, c / 10_000)
        fake_run(tmp_path, PRELU, seed, c / 10_000 + d / 10_000)  # float noise as in training
    noisy = {100 * (c / 10_000 + 40 / 10_000) - 100 * c / 10_000 for c in counts}
    assert len(noisy) > 1  # in % as floats, the equal differences are not equal
    tables = _json(cli.invoke(app, ["compare", str(tmp_path), "--baseline", "relu", "-f", "json"]))
    prelu = next(r for r in tables[0]["rows"] if r["group"] == "prelu")
    assert prelu["p_wilcoxon"] == pytest.approx(_scipy_wilcoxon(diffs), rel=1e-3)  # 0.0625
    assert prelu["diff_vs_baseline"] == pytest.approx(sum(diffs) / 6 / 100, abs=1e-3)


def test_paired_with_five_seeds_adds_wilcoxon() -> None:
    group = [(s, 98.0 + 0.1 * s) for s in range(5)]
    base = [(s, 97.9 + 0.05 * s) for s in range(5)]
    diff = stats.versus(dict(group), dict(base))
    assert diff.test == "paired t + Wilcoxon" and diff.n == 5
    assert diff.p_wilcoxon == pytest.approx(0.0625)


def test_every_format_carries_the_same_numbers(paired: Path) -> None:
    runs, _ = rundir.collect([paired])
    tables = compare.build_tables(runs, baseline="relu")
    as_json = json.loads(compare.render(tables, "json"))
    csv_text = compare.render(tables, "csv")
    md_text = compare.render(tables, "markdown")
    term = compare.render(tables, "table", color=False, wide=True)
    sections = csv_text.strip().split("\n\n")
    assert len(sections) == len(as_json) == 2  # accuracy table, slope table
    for section, table in zip(sections, as_json, strict=True):
        lines = section.splitlines()
        assert lines[0] == f"# {table['title']}"
        rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
        assert len(rows) == len(table["rows"])
        for row, ref in zip(rows, table["rows"], strict=True):
            for key, value in ref.items():
                text = compare.cell(value, "")
                assert row[key] == text
                if value is not None and text:
                    assert f" {text} " in md_text  # markdown cell
                    assert text in term
    assert as_json[1]["rows"][0]["prelu mean"] == pytest.approx(0.21)  # mean a over seeds


def test_error_metric_reports_100_minus_accuracy(paired: Path) -> None:
    tables = _json(
        cli.invoke(app, ["compare", str(paired), "--metric", "error", "-f", "json", "--per-run"])
    )
    rows = tables[0]["rows"]
    assert [r["final_err_%"] for r in rows] == sorted(r["final_err_%"] for r in rows)
    assert rows[0]["final_err_%"] == pytest.approx(100 - 99.1)


def test_output_file_and_bad_paths(paired: Path, tmp_path: Path) -> None:
    (paired / "not-a-run").mkdir()
    broken = fake_run(paired, {"name": "elu"}, 0, 0.9)
    (broken / "summary.json").write_text("{ truncated")
    out = tmp_path / "out" / "table.md"
    result = cli.invoke(app, ["compare", str(paired), "--format", "markdown", "--output", str(out)])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"warning: skipping {broken}/summary.json: damaged (Expecting property name enclosed "
        "in double quotes: line 1 column 3 (char 2))"
    ]
    assert out.read_text().startswith("### Test accuracy (%) by activation")
    assert result.stdout == f"wrote {out}\n"


def test_nothing_usable_exits_2(tmp_path: Path) -> None:
    result = cli.invoke(app, ["compare", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"warning: skipping {tmp_path / 'missing'}: does not exist",
        f"error: no usable run directories in {tmp_path / 'missing'}",
    ]


def test_unknown_baseline_and_group_field(paired: Path) -> None:
    result = cli.invoke(app, ["compare", str(paired), "--baseline", "gelu"])
    assert (
        result.exit_code == 2
        and "--baseline: no group 'gelu'; groups: prelu, relu" in result.stderr
    )
    result = cli.invoke(app, ["compare", str(paired), "--group-by", "optim.lrr"])
    assert result.exit_code == 2 and "--group-by: unknown field 'optim.lrr'" in result.stderr
    result = cli.invoke(app, ["compare", str(paired), "--group-by", "seed"])
    assert result.exit_code == 2 and "--group-by: 'seed' is what each group's" in result.stderr


def test_a_group_by_that_pools_different_settings_says_so(tmp_path: Path) -> None:
    for seed in range(2):
        fake_run(tmp_path / "a", RELU, seed, 0.98)
        fake_run(tmp_path / "b", RELU, seed, 0.97, overrides={"optim": {"lr": 0.05}})
    (default,) = _json(cli.invoke(app, ["compare", str(tmp_path), "-f", "json"]))
    assert [row["group"] for row in default["rows"]] == ["0.01", "0.05"]
    assert not any("pooled" in note for note in default["notes"])
    args = ["compare", str(tmp_path), "--group-by", "activation", "-f", "json"]
    (pooled,) = _json(cli.invoke(app, args))
    assert [row["group"] for row in pooled["rows"]] == ["relu"]
    assert pooled["notes"][-1] == (
        "pooled: --group-by put runs of different settings in one group, and its numbers mix "
        "them: relu (optim.lr)"
    )


def test_stale_running_run_shows_as_incomplete(tmp_path: Path) -> None:
    path = fake_run(tmp_path, RELU, 0, None)
    summary = json.loads((path / "summary.json").read_text())
    summary["status"] = "running"
    summary["pid"] = 2**22 + 7  # no such process
    (path / "summary.json").write_text(json.dumps(summary))
    tables = _json(cli.invoke(app, ["compare", str(tmp_path), "-f", "json"]))
    assert tables[0]["rows"][0]["status"] == "incomplete"


def test_hundred_runs_group_by_seed_count(tmp_path: Path) -> None:
    for i in range(100):
        fake_run(tmp_path, [RELU, PRELU][i % 2], i // 2, 0.95 + (i % 7) / 1000)
    tables = _json(cli.invoke(app, ["compare", str(tmp_path), "-f", "json"]))
    assert [r["n"] for r in tables[0]["rows"]] == [50, 50]


def test_repeated_seed_counts_once(paired: Path) -> None:
    fake_run(paired / "again", RELU, 0, 0.975)  # relu seed 0 trained a second time
    tables = _json(cli.invoke(app, ["compare", str(paired), "--baseline", "relu", "-f", "json"]))
    rows = {r["group"]: r for r in tables[0]["rows"]}
    assert rows["relu"]["n"] == 3  # distinct seeds: a repeat is not an independent sample
    # seed 0's two runs (98.0, 97.5) are averaged, then averaged with seeds 1 and 2
    assert rows["relu"]["final_acc_mean"] == pytest.approx((97.75 + 97.0 + 98.5) / 3)
    assert rows["prelu"]["test"] == "paired t"  # still the same seeds on both sides
    assert any("seed(s) 0 trained more than once" in n for n in tables[0]["notes"])


def test_five_copies_of_one_seed_are_n_1(tmp_path: Path) -> None:
    for i in range(5):
        fake_run(tmp_path / f"copy{i}", RELU, 0, 0.98)
    for seed in range(2):
        fake_run(tmp_path, PRELU, seed, 0.985)
    tables = _json(cli.invoke(app, ["compare", str(tmp_path), "--baseline", "relu", "-f", "json"]))
    rows = {r["group"]: r for r in tables[0]["rows"]}
    assert rows["relu"]["n"] == 1
    assert rows["relu"]["final_acc_std"] is None and rows["relu"]["ci95_low"] is None
    assert rows["prelu"]["verdict"] == "no test (n < 2)"
    assert rows["prelu"]["diff_vs_baseline"] is None


def test_terminal_table_fits_100_columns(paired: Path) -> None:
    for seed in range(3):  # a long group label and a stalled run
        fake_run(paired, {"name": "leaky_relu", "negative_slope": 0.2}, seed, 0.11 + seed / 1000)
    result = cli.invoke(app, ["compare", str(paired), "--baseline", "relu"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = next(line for line in lines if line.lstrip().startswith("group"))
    for column in ("n", "final acc %", "95% CI", "diff [95% CI]", "p / Holm", "verdict",
                   "trained"):  # fmt: skip
        assert column in header
    row = next(line for line in lines if line.lstrip().startswith("prelu "))
    assert "98.37 ± 0.75" in row and "[96.50, 100.00]" in row and "better" in row
    stalled = next(line for line in lines if line.lstrip().startswith("leaky_relu(0.2)"))
    assert stalled.rstrip().endswith("0/3")  # trained in none of its three seeds
    wide = cli.invoke(app, ["compare", str(paired), "--baseline", "relu", "--wide"]).stdout
    assert "p_wilcoxon" in wide and "best_acc" in wide and max(map(len, wide.splitlines())) > 100


def test_compare_output_is_pinned(paired: Path) -> None:
    """The whole terminal output on fixed runs: any change to a number or a word shows here."""
    result = cli.invoke(app, ["compare", str(paired), "--baseline", "relu"])
    assert result.exit_code == 0, result.output
    assert result.stdout == PINNED


PINNED = """\
Test accuracy (%) by activation

group  n  final acc %   95% CI           diff [95% CI]      p / Holm       verdict   trained
─────  ─  ────────────  ───────────────  ─────────────────  ─────────────  ────────  ───────
prelu  3  98.37 ± 0.75  [96.50, 100.00]  0.53 [0.25, 0.82]  0.015 / 0.015  better    3/3
relu   3  97.83 ± 0.76  [95.94, 99.73]   -                  -              baseline  3/3

  n: distinct seeds of completed runs; final: test accuracy (%) at the last epoch; std: sample std
    over seeds; ci95: t interval of the mean, cut to 0..100
  diff: group minus baseline 'relu' on final accuracy; paired over matched seeds when both groups
    hold the same seeds, else Welch's t-test; p: raw, Holm: adjusted over the 1 comparisons shown;
    verdict on Holm's p < 0.05; effect_size: Cohen's d of the paired differences; wins: seeds where
    the group beat the baseline; mde: the smallest difference this many seeds detect with 80% power
    at the observed spread under Holm's correction (at its strictest level, alpha / comparisons; a
    'not distinguishable' above it means too few seeds, not equal)

Learned activation parameters by site: prelu

net    site   param  prelu (n)
─────  ─────  ─────  ─────────────────
lenet  conv1  a      0.210 ± 0.010 (3)

  mean over seeds of each run's value at the last epoch; channel-wise parameters: the mean over the
    site's channels first; n: distinct seeds
"""


@pytest.mark.parametrize("folder", ["mnist-lenet", "fashion-lenet", "mnist-lenetpp"])
def test_shipped_results_compare_within_100_columns(folder: str) -> None:
    """The README's command on the committed answer (7 groups, 'not distinguishable')."""
    path = REPO / "results" / folder
    result = cli.invoke(app, ["compare", str(path), "--baseline", "relu"])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    summary = (path / "report.md").read_text()
    for row in compare.records(compare.build_tables(rundir.collect([path])[0], baseline="relu")[0]):
        cells = [row[k] for k in ("group", "n", "trained", "final_acc_mean")]
        assert "| " + " | ".join(compare.cell(c, "-") for c in cells) + " |" in summary


def test_runs_left_out_say_why(tmp_path: Path) -> None:
    """A run that finished without a test accuracy (validation only) is named with that reason,
    not as if 'completed' were why it is missing; other runs by their status."""
    fake_run(tmp_path, {"name": "relu"}, 0, 0.98)
    validation_only = {"data": {"val_size": 100}, "train": {"eval_test": False}}
    fake_run(tmp_path, {"name": "relu"}, 1, None, overrides=validation_only,
             final_val_acc=0.97, best_val_acc=0.97, best_test_acc=None)  # fmt: skip
    fake_run(tmp_path, {"name": "relu"}, 2, 0.5, status=rundir.Status.INTERRUPTED)
    runs, _ = rundir.collect([tmp_path])
    table, _ = compare.grouped_table(compare.grouping(runs), "accuracy", None)
    assert table.notes[-1] == (
        "not in the numbers: relu-lenet-mnist-s2 (interrupted); relu-lenet-mnist-s1 (completed, "
        "no test accuracy: train.eval_test false)"
    )


def test_the_mde_is_taken_at_holm_level_over_the_tests_made(tmp_path: Path) -> None:
    """Three groups, three pairs, but only one t test (a group with no spread gets none): the
    tested pair's mde is where its paired t test reaches 80% power at alpha / 1, not / 3."""
    for seed, (a, b) in enumerate([(0.981, 0.975), (0.984, 0.976), (0.980, 0.979)]):
        fake_run(tmp_path, {"name": "prelu"}, seed, a)
        fake_run(tmp_path, {"name": "elu"}, seed, b)
        fake_run(tmp_path, {"name": "relu"}, seed, 0.97)  # zero variance: no t test
    runs, _ = rundir.collect([tmp_path])
    _, _, pairs = compare.all_pairs(compare.grouping(runs), "accuracy")
    tested = [r for r in pairs if r.p_t is not None]
    assert len(pairs) == 3 and len(tested) == 1
    d = [100 * (a - b) for a, b in [(0.981, 0.975), (0.984, 0.976), (0.980, 0.979)]]
    sd = np.std(d, ddof=1)
    crit = sps.t.ppf(1 - 0.05 / 2, 2)
    nc = tested[0].mde / sd * 3**0.5
    assert sps.nct.sf(crit, 2, nc) + sps.nct.cdf(-crit, 2, nc) == pytest.approx(0.8, abs=1e-3)


def test_a_folder_given_twice_is_read_once_without_a_warning(paired: Path) -> None:
    once, _ = rundir.collect([paired])
    twice, warnings = rundir.collect([paired, paired, paired / "relu-lenet-mnist-s0"])
    assert [r.path for r in twice] == [r.path for r in once] and warnings == []
