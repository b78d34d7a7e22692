"""Say only what the evidence allows: Holm over the family shown, every pair, pass/fail apart
from accuracy, effect sizes and power; checked on the shipped runs and against scipy."""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from actbench import compare, rundir, stats
from actbench.cli import app

from .conftest import REPO

cli = CliRunner()
RESULTS = REPO / "results"


def _rows(*args: str, table: int = 0) -> dict[str, dict]:
    result = cli.invoke(app, ["compare", *args, "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)[table]["rows"]
    return {r.get("group") or (r["a"], r["b"]): r for r in rows}


def test_mnist_lenet_against_relu_is_holm_corrected() -> None:
    rows = _rows(str(RESULTS / "mnist-lenet"), "--baseline", "relu")
    tested = [g for g, r in rows.items() if r["p_t"] is not None]
    assert len(tested) == 6
    adjusted = stats.holm([rows[g]["p_t"] for g in tested])
    for g, p in zip(tested, adjusted, strict=True):
        assert rows[g]["p_holm"] == pytest.approx(p, rel=1e-3)
    assert rows["elu"]["p_t"] == pytest.approx(0.035, abs=5e-4)
    assert rows["elu"]["p_holm"] == pytest.approx(0.14, abs=5e-3)
    assert rows["elu"]["verdict"] == "not distinguishable"
    assert rows["prelu"]["verdict"] == "better"
    for field in ("p_holm", "trained", "effect_size", "mde"):
        assert field in rows["prelu"]


def test_holm_matches_statsmodels_on_the_shipped_family() -> None:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rows = _rows(str(RESULTS / "mnist-lenet"), "--baseline", "relu")
    raw = [r["p_t"] for r in rows.values() if r["p_t"] is not None]
    expected = multitest.multipletests(raw, method="holm")[1]
    assert [r["p_holm"] for r in rows.values() if r["p_t"] is not None] == pytest.approx(
        list(expected), rel=1e-3
    )


def test_every_pair_prelu_vs_elu_is_not_distinguishable() -> None:
    pairs = _rows(str(RESULTS / "mnist-lenet"), "--pairs", "all", table=2)
    assert len(pairs) == 21  # 7 groups
    assert pairs[("prelu", "elu")]["verdict"] == "not distinguishable"
    assert pairs[("prelu", "relu")]["verdict"] == "better"
    raw = [r["p_t"] for r in pairs.values()]
    assert [r["p_holm"] for r in pairs.values()] == pytest.approx(stats.holm(raw), rel=1e-3)


def test_the_report_names_the_top_group() -> None:
    runs, _ = rundir.collect([RESULTS / "mnist-lenet"])
    c = compare.for_report(runs, "relu")
    assert c.top[0] == "prelu" and "elu" in c.top and "relu" not in c.top


def test_lenetpp_against_a_relu_that_stalled_in_every_seed() -> None:
    """No p value or interval of an accuracy difference against 3 stalled runs: the finding
    is trained 3 of 3 against 0 of 3, with Fisher's exact test (p = 0.1)."""
    scipy_stats = pytest.importorskip("scipy.stats")
    result = cli.invoke(app, ["compare", str(RESULTS / "mnist-lenetpp"), "--baseline", "relu"])
    assert result.exit_code == 0
    rows = _rows(str(RESULTS / "mnist-lenetpp"), "--baseline", "relu")
    assert rows["relu"]["trained"] == 0 and rows["relu"]["n"] == 3
    for group in ("prelu", "prelu-channel"):
        r = rows[group]
        assert r["trained"] == 3
        assert (r["diff_vs_baseline"], r["diff_ci95_low"], r["diff_ci95_high"], r["p_t"]) == (
            None, None, None, None)  # fmt: skip
        assert r["p_fisher"] == pytest.approx(scipy_stats.fisher_exact([[3, 0], [0, 3]])[1])
        assert r["verdict"] == "not distinguishable"  # 3 seeds cannot show it
    line = next(x for x in result.stdout.splitlines() if x.startswith("relu "))
    assert line.rstrip().endswith("0/3")


def test_effect_size_wins_and_mde_against_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    runs, _ = rundir.collect([RESULTS / "mnist-lenet"])
    rows = _rows(str(RESULTS / "mnist-lenet"), "--baseline", "relu")
    acc = {(r.summary.activation, r.summary.seed): 100 * r.summary.final_test_acc for r in runs}
    d = [acc["prelu", s] - acc["relu", s] for s in range(5)]
    assert rows["prelu"]["effect_size"] == pytest.approx(
        statistics.fmean(d) / statistics.stdev(d), abs=0.01
    )
    assert rows["prelu"]["wins"] == f"{sum(x > 0 for x in d)} of 5"
    # the mde is where a paired t test with 5 pairs reaches 80% power (noncentral t) at Holm's
    # strictest level: alpha over the 6 comparisons with the baseline
    sd, n = statistics.stdev(d), 5
    crit = scipy_stats.t.ppf(1 - 0.05 / 6 / 2, n - 1)
    nc = rows["prelu"]["mde"] / sd * n**0.5
    power = scipy_stats.nct.sf(crit, n - 1, nc) + scipy_stats.nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.8, abs=0.01)


def test_a_difference_interval_never_leaves_what_accuracies_allow(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .helpers import fake_run

    for seed in range(3):  # a baseline that stalled in one seed: a t interval past 100 points
        fake_run(tmp_path, {"name": "relu"}, seed, 0.11 if seed == 0 else 0.99)
        fake_run(tmp_path, {"name": "prelu"}, seed, 0.99 + seed / 1000)
    rows = _rows(str(tmp_path), "--baseline", "relu")
    r = rows["prelu"]
    assert -100 <= r["diff_ci95_low"] <= r["diff_ci95_high"] <= 100
    assert r["interval"] == "bootstrap"


def test_gap_plot_ends_at_compares_difference_and_fashion_is_flagged_still_improving() -> None:
    from actbench import plots

    runs, _ = rundir.collect([RESULTS / "fashion-lenet"])
    c = compare.for_report(runs, "relu")
    drawn = plots.make_all(runs, c)[0]["gap.png"].data
    for row in c.rows:
        if row.diff_vs_baseline is not None:
            assert drawn[row.group]["mean"][-1] == pytest.approx(row.diff_vs_baseline, abs=1e-3)
            assert drawn[row.group]["epochs"] == list(range(1, 11))
    notes = " ".join(c.tables[0].notes)
    assert "still improving" in notes and "a 10-epoch result" in notes
