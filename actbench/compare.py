"""Groups of runs and their statistics: the numbers behind compare, plot and report.

One grouping (`grouping`) and one rule for which runs count (completed ones; others are
listed by name with their status) serve every table and figure. Accuracies are handled as
integer counts of correct test images, so differences carry no float noise and tied
differences stay tied. Reads only what run directories hold, never code defaults."""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from actbench import config as cfgmod
from actbench import stats
from actbench.errors import ActbenchError
from actbench.render import FORMATS, Brief, Table, cell, render
from actbench.rundir import CHANCE, STALL_MARGIN, Run, Status, Summary

__all__ = ["FORMATS", "Comparison", "Table", "build_tables", "cell", "compare", "grouping",
           "render"]  # fmt: skip

METRICS = ("accuracy", "error")
# Config fields that never define a group: seeds are what groups average over; the rest
# describe where or how fast a run happened, not what it tested.
NOT_GROUPING = {"seed", *cfgmod.WHERE_FIELDS}


def fields(run: Run) -> dict[str, Any]:
    """Groupable fields of a run: its labels, then every other resolved config value."""
    s = run.summary
    flat = {
        k: v
        for k, v in cfgmod.flatten(run.config).items()
        if k not in ("model.net", "data.dataset", "activation.name")
    }
    return {"activation": s.activation, "net": s.net, "dataset": s.dataset, **flat}


NAMING = ("activation", "net", "dataset")  # fields that always name a group when they vary


def default_group_keys(runs: list[Run]) -> list[str]:
    """Every field whose value differs between runs, except the seed and where-it-ran fields;
    an activation's parameters only where its label (e.g. leaky_relu(0.2)) does not already
    tell the runs apart, so that a group never holds two different experiments."""
    per_run = [fields(r) for r in runs]
    keys = list(dict.fromkeys(k for f in per_run for k in f))
    varying = [
        k for k in keys if k not in NOT_GROUPING and len({repr(f.get(k)) for f in per_run}) > 1
    ]
    plain = [k for k in varying if not k.startswith("activation.")] or ["activation"]
    keys = varying if _merges(runs, per_run, plain) else plain
    # A setting that follows from the others (tuned.yaml: each activation's own lr) splits no
    # group: leave it out of the labels (the report's configs table shows it); what a run
    # is (activation, net, data set) always names its group.
    for key in [k for k in keys if k not in NAMING]:
        fewer = [k for k in keys if k != key]
        if _partition(per_run, fewer) == _partition(per_run, keys):
            keys = fewer
    return keys


def _partition(per_run: list[dict[str, Any]], keys: list[str]) -> set[frozenset[int]]:
    """Which runs share a label under keys."""
    groups: dict[tuple[str, ...], set[int]] = {}
    for i, f in enumerate(per_run):
        groups.setdefault(tuple(repr(f.get(k)) for k in keys), set()).add(i)
    return {frozenset(g) for g in groups.values()}


def _merges(runs: list[Run], per_run: list[dict[str, Any]], keys: list[str]) -> bool:
    """Whether grouping by keys would put runs of different experiments in one group."""
    seen: dict[tuple[str, ...], str] = {}
    for run, f in zip(runs, per_run, strict=True):
        label = tuple(repr(f.get(k)) for k in keys)
        identity = repr({k: v for k, v in cfgmod.identity(run.cfg).items() if k != "seed"})
        if seen.setdefault(label, identity) != identity:
            return True
    return False


@dataclass
class Group:
    """Runs that differ only in seed (and where they ran)."""

    label: str
    runs: list[Run]

    @property
    def counted(self) -> list[Run]:
        """The runs in the numbers: completed ones."""
        return [r for r in self.runs if r.completed]

    @property
    def left_out(self) -> list[Run]:
        return [r for r in self.runs if not r.completed]

    def by_seed(self) -> dict[int, list[Run]]:
        out: dict[int, list[Run]] = {}
        for r in self.counted:
            out.setdefault(r.summary.seed, []).append(r)
        return out


def _why_out(run: Run) -> str:
    """Why a run is left out of the numbers (Group.left_out): its status, or, where it
    finished, that it has no test accuracy (validation only: train.eval_test false)."""
    if run.status in (Status.COMPLETED, Status.STALLED):
        return f"{run.status}, no test accuracy: train.eval_test false"
    return f"{run.status}"


@dataclass
class Grouping:
    keys: list[str]
    groups: dict[str, Group] = field(default_factory=dict)
    # group label -> the settings its runs differ in (only a --group-by the user chose pools
    # runs of different experiments; the default grouping never does)
    pooled: dict[str, list[str]] = field(default_factory=dict)


def grouping(runs: list[Run], group_by: list[str] | None = None) -> Grouping:
    """The groups every table and figure uses: by `group_by`, else by every varying field."""
    keys = group_by or default_group_keys(runs)
    per_run = [fields(r) for r in runs]
    known = list(dict.fromkeys(k for f in per_run for k in f))
    for key in keys:
        # a field only some runs have (e.g. optim.milestones) is fine; the seed is what a
        # group's statistics run over, never a group of its own
        if key not in known or key == "seed":
            allowed = ", ".join(k for k in known if k != "seed")
            what = f"unknown field {key!r}"
            if key == "seed":
                what = "'seed' is what each group's statistics run over, not a group"
            raise ActbenchError(f"--group-by: {what}; allowed: {allowed}")
    out = Grouping(keys)
    members: dict[str, list[dict[str, Any]]] = {}
    for run, f in zip(runs, per_run, strict=True):
        label = " / ".join(str(f.get(k, "-")) for k in keys)
        out.groups.setdefault(label, Group(label, [])).runs.append(run)
        members.setdefault(label, []).append(f)
    for label, fs in members.items():
        differ = [
            k
            for k in dict.fromkeys(k for f in fs for k in f)
            if k not in NOT_GROUPING and len({repr(f.get(k)) for f in fs}) > 1
        ]
        if differ:
            out.pooled[label] = differ
    return out


# ---------------------------------------------------------------------------- per-group numbers


Fraction = Callable[[Summary], "float | None"]  # which accuracy of a run: final, best, ...


def _final(s: Summary) -> float | None:
    return s.final_test_acc


def _best(s: Summary) -> float | None:
    return s.best_test_acc


def _selected(s: Summary) -> float | None:
    return s.selected_test_acc


def _count(run: Run, key: Fraction, metric: str) -> int:
    """Correct (accuracy) or wrong (error) test images of a run, as an integer."""
    n = run.summary.test_images
    value = key(run.summary)
    assert value is not None  # counted runs have their accuracies (load_run checks)
    correct = round(value * n)
    return correct if metric == "accuracy" else n - correct


def seed_values(group: Group, key: Fraction, metric: str) -> dict[int, float]:
    """One value per distinct seed (counts; repeats of a seed averaged: they are not
    independent samples)."""
    out = {}
    for seed, members in group.by_seed().items():
        have = [r for r in members if key(r.summary) is not None]
        if have:
            out[seed] = statistics.fmean(_count(r, key, metric) for r in have)
    return out


def _scale(groups: list[Group]) -> float:
    """Percentage points per counted image; one test-set size per comparison."""
    # None: no test pass (train.eval_test false); such a run has no accuracy to scale
    sizes = {n for g in groups for r in g.counted if (n := r.summary.test_images) is not None}
    if len(sizes) > 1:
        raise ActbenchError(
            f"runs were tested on different numbers of images ({sorted(sizes)}): accuracies "
            "over different test images do not compare (another data set, or data.test_subset); "
            "compare them separately"
        )
    return 100 / (sizes.pop() if sizes else 10_000)


def _r(x: float | None, digits: int = 3) -> float | None:
    """Per-run values and parameters kept to `digits` decimals; group statistics are kept
    whole and rounded once, where they are rendered."""
    return None if x is None else round(x, digits)


def _p(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.4g}")


def _sort_key(value: float | None, metric: str) -> float:
    if value is None:
        return float("inf")
    return -value if metric == "accuracy" else value


def per_run_table(runs: list[Run], metric: str, optimistic: bool = False) -> Table:
    """One row per run; the validation-selected accuracy where runs have a split, the best
    test epoch's (optimistic) only when asked."""
    m = "acc" if metric == "accuracy" else "err"

    def pct(run: Run, key: Fraction) -> float | None:
        if key(run.summary) is None or not run.summary.test_images:
            return None
        return _r(_count(run, key, metric) * 100 / run.summary.test_images)

    columns: dict[str, Callable[[Run], Any]] = {
        "name": lambda r: r.name,
        "dataset": lambda r: r.summary.dataset,
        "net": lambda r: r.summary.net,
        "activation": lambda r: r.summary.activation,
        "seed": lambda r: r.summary.seed,
        "epochs": lambda r: r.summary.epochs,
        "status": lambda r: r.status.value,
        "precision": lambda r: r.summary.precision,
        f"final_{m}_%": lambda r: pct(r, _final),
    }
    if any(r.summary.selected_test_acc is not None for r in runs):
        columns[f"selected_{m}_%"] = lambda r: pct(r, _selected)
    if optimistic:
        columns[f"optimistic_best_{m}_%"] = lambda r: pct(r, _best)
    columns["params"] = lambda r: r.summary.params
    columns["train_s"] = lambda r: _r(r.summary.train_seconds, 1)
    rows = [[get(r) for get in columns.values()] for r in runs]
    final = list(columns).index(f"final_{m}_%")
    rows.sort(key=lambda row: _sort_key(row[final], metric))
    return Table(f"Runs (test {metric}, %)", list(columns), rows)


def _baseline_for(label: str, labels: list[str], baseline: str, keys: list[str]) -> str | None:
    """The baseline group matched to `label`: the exact label, or the group that differs from
    `label` only in the field where `baseline` is a value (e.g. same net, activation relu)."""
    if baseline in labels:
        return baseline
    parts = label.split(" / ")
    for i in range(len(keys)):
        candidate = " / ".join([*parts[:i], baseline, *parts[i + 1 :]])
        if candidate in labels:
            return candidate
    return None


def _verdict(diff: stats.Difference, metric: str) -> str:
    if diff.diff_mean is None or diff.test.startswith("none"):
        return f"no test ({diff.test.removeprefix('none ').strip('()')})"
    if not diff.distinguishable:
        return "not distinguishable"
    better = diff.diff_mean > 0 if metric == "accuracy" else diff.diff_mean < 0
    return "better" if better else "worse"


@dataclass
class GroupRow:
    """One group's numbers in the grouped table (percent of test images; accuracy or error
    as the comparison's metric says)."""

    group: str
    n: int = 0  # distinct seeds of completed runs
    trained: int = 0  # of those, runs that did not stall (pass/fail, apart from accuracy)
    final_mean: float | None = None
    final_std: float | None = None
    ci95_low: float | None = None
    ci95_high: float | None = None
    trained_mean: float | None = None  # final accuracy over the trained runs only
    selected_mean: float | None = None  # test accuracy at the best validation epoch
    selected_std: float | None = None
    best_mean: float | None = None  # selected on the test set: optimistic (--wide only)
    best_std: float | None = None
    final_min: float | None = None
    final_max: float | None = None
    train_s_mean: float | None = None
    stalled: int = 0
    diverged: int = 0
    not_completed: int = 0  # interrupted, incomplete, failed (diverged counted apart)
    diff_vs_baseline: float | None = None
    diff_ci95_low: float | None = None
    diff_ci95_high: float | None = None
    interval: str | None = None  # how the difference's interval was made: t | bootstrap
    p: float | None = None  # raw p of the test named in `test` (t, else Fisher on stalls)
    p_t: float | None = None  # raw
    p_wilcoxon: float | None = None
    p_fisher: float | None = None  # stall counts (trained k of n) against the baseline's
    p_holm: float | None = None  # the family's adjusted p: the verdict's
    effect_size: float | None = None  # Cohen's d of the paired differences
    wins: str | None = None  # seeds where the group beat the baseline, "k of n"
    mde: float | None = None  # smallest difference this design detects (80% power), points
    test: str | None = None
    verdict: str | None = None  # better | worse | not distinguishable | baseline | ...
    # (sd of the paired differences in points, pairs): the mde's inputs, kept until the
    # family's size sets its level (holm_verdicts); not a column
    _spread: tuple[float, int] | None = field(default=None, repr=False, compare=False)

    @property
    def runs(self) -> int:
        """Every run of the group, counted or not."""
        return self.n + self.diverged + self.not_completed


# GroupRow fields shown only against a baseline
_VERSUS = ("diff_vs_baseline", "diff_ci95_low", "diff_ci95_high", "interval", "p", "p_t",
           "p_wilcoxon", "p_fisher", "p_holm", "effect_size", "wins", "mde", "test",
           "verdict")  # fmt: skip
_OPTIMISTIC = ("best_mean", "best_std")  # selected on the test set: --wide only
_SELECTED = ("selected_mean", "selected_std")  # only when runs have a validation split


def _group_columns(
    metric: str, baseline: bool, optimistic: bool, selected: bool
) -> list[tuple[str, str]]:
    """(column name, GroupRow field) of the grouped table, in order: the field's name, with
    the metric in the accuracy fields (final_mean -> final_acc_mean; the test-selected best
    as optimistic_best_acc_mean)."""
    m = "acc" if metric == "accuracy" else "err"
    out = []
    for f in dataclass_fields(GroupRow):
        if (
            f.name.startswith("_")
            or (f.name in _VERSUS and not baseline)
            or (f.name in _OPTIMISTIC and not optimistic)
            or (f.name in _SELECTED and not selected)
        ):
            continue
        when, _, stat = f.name.partition("_")
        metric_field = when in ("final", "best", "selected", "trained") and stat
        column = f"{when}_{m}_{stat}" if metric_field else f.name
        if f.name in _OPTIMISTIC:
            column = "optimistic_" + column
        out.append((column, f.name))
    return out


ALPHA = 0.05  # family-wise error rate of every verdict (Holm)
# A group whose mean accuracy rose by more than this (points) over its last 20% of epochs was
# cut short: its final number is a snapshot of a moving curve.
STILL_IMPROVING = 0.1


def curve(runs: list[Run], column: str) -> list[float]:
    """Mean over runs of a metrics.csv column (val_acc, test_acc) per epoch, in percent,
    over the epochs every run has."""
    per_run = [
        {int(m["epoch"]): m[column] for m in r.metrics if not math.isnan(m.get(column, math.nan))}
        for r in runs
    ]
    epochs = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    return [100 * statistics.fmean(p[e] for p in per_run) for e in epochs]


def improving(groups: dict[str, Group]) -> tuple[list[str], int]:
    """'label (+0.4 points in the last 2 of 10 epochs, validation)' for every group still
    rising at the end (on validation where runs have a split, else on test), and the most
    epochs such a group trained."""
    out, most = [], 0
    for label, grp in groups.items():
        runs = [r for r in grp.counted if r.status != Status.STALLED]
        column = "val_acc" if runs and all(r.summary.val_images for r in runs) else "test_acc"
        values = curve(runs, column)
        rise = stats.still_improving(values)
        if rise is not None and rise > STILL_IMPROVING:
            window = min(len(values) - 1, max(1, round(0.2 * len(values))))
            where = "validation" if column == "val_acc" else "test"
            out.append(f"{label} (+{rise:.2f} points in the last {window} of {len(values)} "
                       f"epochs, {where})")  # fmt: skip
            most = max(most, len(values))
    return out, most


def _trained(group: Group) -> tuple[int, int]:
    """(seeds that trained, seeds counted), like n: a stalled run is a failure to train (a
    seed trained twice counts as trained if any of its runs did)."""
    seeds = group.by_seed()
    trained = sum(any(r.status != Status.STALLED for r in runs) for runs in seeds.values())
    return trained, len(seeds)


def versus(a: Group, b: Group, metric: str, scale: float) -> GroupRow:
    """a against b: the difference of final accuracies per seed (paired t over matched
    seeds, else Welch) with its effect size, wins and minimum detectable effect; the stall
    counts with Fisher's exact test. No t-test or t interval where either group stalled in
    every run or has zero variance; an interval past what accuracies allow is replaced by a
    bounded paired bootstrap. p_holm and the verdict are set by the family (holm_verdicts)."""
    row = GroupRow(a.label)
    (ta, na), (tb, nb) = _trained(a), _trained(b)
    if (na - ta) + (nb - tb):  # some run stalled: compare the pass/fail outcomes too
        row.p_fisher = _p(stats.fisher_exact(ta, na - ta, tb, nb - tb))
    fa, fb = seed_values(a, _final, metric), seed_values(b, _final, metric)
    if not fa or not fb:
        row.test = "none (no completed run)"
        return row
    if ta == 0 or tb == 0:
        who = a.label if ta == 0 else b.label
        row.test = f"stalls only: {who} stalled in every run (Fisher's exact test)"
        return row
    diff = stats.versus(fa, fb)
    if diff.diff_mean is None or diff.test.startswith("none"):  # n < 2
        row.test = diff.test
        return row
    constant = [g.label for g, f in ((a, fa), (b, fb)) if len(set(f.values())) == 1]
    row.diff_vs_baseline = (diff.diff_mean * scale) if diff.diff_mean is not None else None
    paired = diff.test.startswith("paired")
    if constant:
        row.test = f"none (zero variance in {', '.join(constant)}): bootstrap interval only"
        interval = stats.bounded_diff_interval(fa, fb, 100 / scale) if paired else None
        if interval is not None:
            row.diff_ci95_low, row.diff_ci95_high = ((x * scale) for x in interval)
            row.interval = "bootstrap"
        return row
    scaled = diff.scaled(scale)
    row.test, row.interval = diff.test, "t"
    if diff.p_t is None:  # paired, every seed differs by the same amount: sd 0, no t test
        row.test = "none (the same difference in every seed)"
    row.diff_ci95_low, row.diff_ci95_high = (scaled.ci_low), (scaled.ci_high)
    row.p_t, row.p_wilcoxon = _p(diff.p_t), _p(diff.p_wilcoxon)
    if scaled.ci_low is not None and (scaled.ci_low < -100 or scaled.ci_high > 100):
        interval = stats.bounded_diff_interval(fa, fb, 100 / scale) if paired else None
        if interval is not None:  # the t interval leaves what accuracies allow
            row.diff_ci95_low, row.diff_ci95_high = ((x * scale) for x in interval)
            row.interval = "bootstrap"
    if paired:
        d = [fa[s] - fb[s] for s in sorted(fa)]
        effect = stats.effect_size(d)
        row.effect_size = effect
        won, _, matched = stats.wins(fa, fb) if metric == "accuracy" else stats.wins(fb, fa)
        row.wins = f"{won} of {matched}"
        sd = statistics.stdev(d) if len(d) > 1 else None
        row._spread = (sd * scale, len(d)) if sd else None
    return row


def _family_p(row: GroupRow) -> float | None:
    """What a comparison adds to its family: the t test's p, else (stalls only) Fisher's."""
    if row.p_t is not None:
        return row.p_t
    return row.p_fisher if (row.test or "").startswith("stalls") else None


def holm_verdicts(rows: list[GroupRow], higher: list[bool]) -> None:
    """Holm-adjust the family's p values (every comparison shown) and set each verdict on
    the adjusted p: better / worse (`higher`: the group did better than what it was compared
    with), not distinguishable, or why there is no test. The minimum detectable effect is
    taken at the level alpha / k of Holm's strictest step (k tests): Holm rejects whatever
    that level rejects, so it detects an effect of that size with at least 80% power; at the
    unadjusted alpha the mde would promise more than the verdict's procedure delivers."""
    raw = [_family_p(r) for r in rows]
    adjusted = stats.holm(raw)
    tests = max(1, sum(p is not None for p in raw))
    unit: dict[int, float | None] = {}  # pairs -> mde at sd 1: linear in sd, and a solve at
    # 2 pairs and a small alpha takes a second, so once per family and n
    for row, p, p_holm, up in zip(rows, raw, adjusted, higher, strict=True):
        row.p, row.p_holm = p, _p(p_holm)
        if row._spread is not None:
            sd, pairs = row._spread
            if pairs not in unit:
                unit[pairs] = stats.mde(1.0, pairs, alpha=ALPHA / tests)
            per_sd = unit[pairs]
            row.mde = per_sd * sd if per_sd is not None else None
        if p_holm is None:
            why = (row.test or "no test").split(":")[0].removeprefix("none ").strip("()")
            row.verdict = f"no test ({why})"
        elif p_holm >= ALPHA:
            row.verdict = "not distinguishable"
        else:
            row.verdict = "better" if up else "worse"


def _higher(row: GroupRow, a: Group, b: Group, metric: str) -> bool:
    """Whether a did better than b: by the difference (a t test), else by how often it
    trained (stalls)."""
    if row.p_t is not None and row.diff_vs_baseline is not None:
        return row.diff_vs_baseline > 0 if metric == "accuracy" else row.diff_vs_baseline < 0
    (ta, na), (tb, nb) = _trained(a), _trained(b)
    return ta * nb > tb * na


def group_rows(g: Grouping, metric: str, baseline: str | None) -> tuple[list[GroupRow], list[str]]:
    """Each group's statistics (best first) and the notes that qualify them."""
    groups = g.groups
    if baseline is not None and _baseline_for(next(iter(groups)), list(groups), baseline,
                                              g.keys) is None:  # fmt: skip
        raise ActbenchError(f"--baseline: no group {baseline!r}; groups: {', '.join(groups)}")
    scale = _scale(list(groups.values()))
    rows, notes, family, higher = [], [], [], []
    for label, grp in groups.items():
        final = list(seed_values(grp, _final, metric).values())
        diverged = sum(r.status == Status.DIVERGED for r in grp.runs)
        row = GroupRow(label)
        base = None if baseline is None else _baseline_for(label, list(groups), baseline, g.keys)
        if base is not None and base != label:
            row = versus(grp, groups[base], metric, scale)
            family.append(row)
            higher.append(_higher(row, grp, groups[base], metric))
        elif baseline is not None:
            row.verdict = "baseline" if base == label else "no baseline"
        row.trained, _ = _trained(grp)
        row.stalled = sum(r.status == Status.STALLED for r in grp.runs)
        row.diverged, row.not_completed = diverged, len(grp.left_out) - diverged
        rows.append(row)
        repeats = [s for s, rs in grp.by_seed().items() if len(rs) > 1]
        if repeats:
            notes.append(
                f"{label}: seed(s) {', '.join(map(str, repeats))} trained more than once; "
                "their runs are averaged and count once in n"
            )
        if not final:
            continue
        d = stats.describe(final).scaled(scale)
        b = stats.describe(list(seed_values(grp, _best, metric).values())).scaled(scale)
        row.n = d.n
        row.final_mean, row.final_std = (d.mean), (d.std)
        if d.ci_low is not None and d.ci_high is not None:  # an accuracy stays in 0..100
            row.ci95_low, row.ci95_high = (max(d.ci_low, 0.0)), (min(d.ci_high, 100.0))
        row.best_mean, row.best_std = (b.mean), (b.std)
        row.final_min, row.final_max = (d.min), (d.max)
        trained = [r for r in grp.counted if r.status != Status.STALLED]
        if trained:
            row.trained_mean = (statistics.fmean(_count(r, _final, metric) for r in trained)
                                  * scale)  # fmt: skip
        selected = seed_values(grp, _selected, metric)
        if selected:
            sel = stats.describe(list(selected.values())).scaled(scale)
            row.selected_mean, row.selected_std = (sel.mean), (sel.std)
        row.train_s_mean = _r(statistics.fmean(r.summary.train_seconds for r in grp.counted), 1)
    holm_verdicts(family, higher)
    rows.sort(key=lambda r: _sort_key(r.final_mean, metric))
    return rows, notes


def grouped_table(
    g: Grouping, metric: str, baseline: str | None, optimistic: bool = False
) -> tuple[Table, list[GroupRow]]:
    """The grouped table, and its rows as named fields (what report and plots read);
    optimistic adds the best test epoch's accuracy (selected on the test set)."""
    m = "acc" if metric == "accuracy" else "err"
    brief = [
        Brief("group", "{}", ("group",), wrap=True),
        Brief("n", "{}", ("n",)),
        Brief(f"final {m} %", "{} ± {}", (f"final_{m}_mean", f"final_{m}_std")),
        Brief("95% CI", "[{}, {}]", ("ci95_low", "ci95_high")),
    ]
    if baseline is not None:
        brief += [
            Brief(
                "diff [95% CI]",
                "{} [{}, {}]",
                ("diff_vs_baseline", "diff_ci95_low", "diff_ci95_high"),
                wrap=True,
            ),
            Brief("p / Holm", "{} / {}", ("p", "p_holm"), number=".2g"),
            Brief("verdict", "{}", ("verdict",), wrap=True),
        ]
    brief.append(Brief("trained", "{}/{}", ("trained", "n")))
    group_data, repeats = group_rows(g, metric, baseline)
    selected = any(r.selected_mean is not None for r in group_data)
    spec = _group_columns(metric, baseline is not None, optimistic, selected)
    rows = [[getattr(r, attr) for _, attr in spec] for r in group_data]
    notes = [
        f"n: distinct seeds of completed runs; final: test {metric} (%) at the last epoch; "
        "std: sample std over seeds; ci95: t interval of the mean, cut to 0..100",
        *repeats,
    ]
    if selected:
        notes.append(
            f"selected: test {metric} at the epoch with the best validation accuracy (chosen "
            "on the validation split, never on the test set)"
        )
    if optimistic:
        notes.append(
            f"optimistic_best: the best test {metric} over epochs, chosen on the test set "
            "itself: biased upwards, not a result"
        )
    rising, epochs = improving(g.groups)
    if rising:
        notes.append(
            f"still improving (mean accuracy rose more than {STILL_IMPROVING:g} points over the "
            f"last 20% of epochs): a {epochs}-epoch result, not a converged one: "
            + "; ".join(rising)
        )
    if g.pooled:
        notes.append(
            "pooled: --group-by put runs of different settings in one group, and its numbers "
            "mix them: "
            + "; ".join(f"{label} ({', '.join(keys)})" for label, keys in g.pooled.items())
        )
    left = [r for grp in g.groups.values() for r in grp.left_out]
    if left:
        why: dict[str, list[str]] = {}
        for r in left:
            why.setdefault(_why_out(r), []).append(r.name)
        notes.append(
            "not in the numbers: "
            + "; ".join(f"{', '.join(names)} ({reason})" for reason, names in why.items())
        )
    if baseline is not None:
        notes.append(
            f"diff: group minus baseline {baseline!r} on final {metric}; paired over matched "
            "seeds when both groups hold the same seeds, else Welch's t-test; p: raw, Holm: "
            f"adjusted over the {sum(r.p_holm is not None for r in group_data)} comparisons "
            f"shown; verdict on Holm's p < {ALPHA:g}; effect_size: Cohen's d of the paired "
            "differences; wins: seeds where the group beat the baseline; mde: the smallest "
            "difference this many seeds detect with 80% power at the observed spread under "
            "Holm's correction (at its strictest level, alpha / comparisons; a 'not "
            "distinguishable' above it means too few seeds, not equal)"
        )
    if any(r.stalled or r.diverged for r in group_data):
        died = [r.name for grp in g.groups.values() for r in grp.counted if r.summary.dead_site]
        early = (
            f" or stopped early when a layer died ({len(died)} run{'s' * (len(died) != 1)}: "
            "every unit of a site output 0 on every training image at two epoch ends)"
        )
        notes.append(
            f"stalled: completed below {100 * (CHANCE + STALL_MARGIN):g}% test accuracy"
            f"{early if died else ''} "
            "(chance is 10%), counted in the numbers but a failure to train: trained k/n "
            "counts the others; stall counts are compared with Fisher's exact test, and no "
            "t-test or t interval is computed against a group that stalled in every run; "
            "diverged: stopped, left out"
        )
    if any(r.interval == "bootstrap" for r in group_data):
        notes.append(
            "interval bootstrap: the t interval breaks here (zero variance, or past what "
            "accuracies allow), so a paired percentile bootstrap (10,000 resamples) is shown; "
            "with few seeds it is too narrow"
        )
    title = f"Test {metric} (%) by {', '.join(g.keys)}"
    table = Table(title, [c for c, _ in spec], rows, notes, brief)
    return table, group_data


def all_pairs(g: Grouping, metric: str) -> tuple[Table, Table, list[GroupRow]]:
    """Every pair of groups compared (a minus b), Holm-adjusted over all pairs: the long
    table (CSV / JSON) and the matrix of differences with their adjusted p."""
    groups = [grp for grp in g.groups.values() if grp.counted]
    scale = _scale(groups)
    means = {grp.label: statistics.fmean(seed_values(grp, _final, metric).values())
             for grp in groups}  # fmt: skip
    order = sorted(groups, key=lambda grp: _sort_key(means[grp.label], metric))
    pairs, higher, names = [], [], []
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            row = versus(a, b, metric, scale)
            pairs.append(row)
            higher.append(_higher(row, a, b, metric))
            names.append((a.label, b.label))
    holm_verdicts(pairs, higher)
    columns = ["a", "b", "diff", "ci95_low", "ci95_high", "p_t", "p_fisher", "p_holm",
               "effect_size", "wins", "mde", "test", "verdict"]  # fmt: skip
    rows = [
        [a, b, r.diff_vs_baseline, r.diff_ci95_low, r.diff_ci95_high, r.p_t, r.p_fisher,
         r.p_holm, r.effect_size, r.wins, r.mde, r.test, r.verdict]
        for (a, b), r in zip(names, pairs, strict=True)
    ]  # fmt: skip
    note = (
        f"every pair: a minus b on final test {metric} (%), best group first; Holm-adjusted "
        f"over the {sum(r.p_holm is not None for r in pairs)} tests; verdict on Holm's p < "
        f"{ALPHA:g}; mde: the smallest difference detected with 80% power under that correction"
    )
    long = Table(f"All pairs: test {metric} (%)", columns, rows, [note])
    labels = [grp.label for grp in order]
    cell_of = {names[i]: pairs[i] for i in range(len(pairs))}
    matrix_rows = []
    for a in labels:
        row: list[Any] = [a]
        for b in labels:
            r = cell_of.get((a, b))
            row.append(
                None if r is None else
                f"{r.diff_vs_baseline:+.2f} (p {r.p_holm:.2g})" if r.diff_vs_baseline is not None
                and r.p_holm is not None else (r.verdict or "")
            )  # fmt: skip
        matrix_rows.append(row)
    matrix = Table(
        f"All pairs: row minus column, points of test {metric} (Holm-adjusted p)",
        ["group", *labels],
        matrix_rows,
        [note],
    )
    return long, matrix, pairs


def top_group(g: Grouping, metric: str = "accuracy") -> tuple[list[str], Table]:
    """The best group by mean final accuracy and every group not distinguishable from it
    after Holm's correction over all pairs; and the pairs table it rests on."""
    long, _, pairs = all_pairs(g, metric)
    means = {grp.label: statistics.fmean(seed_values(grp, _final, metric).values())
             for grp in g.groups.values() if grp.counted}  # fmt: skip
    pvals = {(r[0], r[1]): p.p_holm for r, p in zip(long.rows, pairs, strict=True)}
    return stats.top_group(means, pvals, ALPHA, metric == "accuracy"), long


def _per_seed(pairs: Any) -> list[float]:
    """One value per distinct seed from (seed, value) pairs, repeats of a seed averaged."""
    by_seed: dict[int, list[float]] = {}
    for seed, value in pairs:
        by_seed.setdefault(seed, []).append(value)
    return [statistics.fmean(v) for v in by_seed.values()]


def baseline_of(c: Comparison, label: str) -> str | None:
    """The baseline group that `label` is compared with (per net, per data set, ...)."""
    if c.baseline is None:
        return None
    return _baseline_for(label, list(c.grouping.groups), c.baseline, c.grouping.keys)


def default_baseline(g: Grouping) -> str | None:
    """relu where the runs hold a relu group (the usual reference), else none."""
    labels = list(g.groups)
    return "relu" if labels and _baseline_for(labels[0], labels, "relu", g.keys) else None


def _site_order(runs: list[Run], key: Callable[[Summary], dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(site for r in runs for site in key(r.summary)))


def params_per_run(runs: list[Run]) -> Table | None:
    """Every learned activation parameter of each run at its last epoch, over channels."""
    rows = [
        [r.name, site, key, _r(v.mean, 4), _r(v.min, 4), _r(v.max, 4), v.n]
        for r in runs
        for site, params in r.summary.act_params.items()
        for key, v in params.items()
    ]
    if not rows:
        return None
    return Table(
        "Learned activation parameters at the last epoch (over channels)",
        ["run", "site", "param", "mean", "min", "max", "channels"],
        rows,
    )


def params_by_group(g: Grouping) -> list[Table]:
    """One table per activation with learned parameters, PReLU paper Table 1 style: a row
    per site and parameter, a column triple per group; completed runs only, as in the
    accuracy table."""
    kinds = _learning({k: grp.counted for k, grp in g.groups.items()})
    return [_params_table(name, groups) for name, groups in kinds.items()]


def _learning(groups: dict[str, list[Run]]) -> dict[str, dict[str, list[Run]]]:
    """Activation name -> group -> its runs with learned activation parameters."""
    kinds: dict[str, dict[str, list[Run]]] = {}
    for label, runs in groups.items():
        for r in runs:
            if r.summary.act_params:
                kinds.setdefault(r.cfg.activation.name, {}).setdefault(label, []).append(r)
    return kinds


def params_every_seed(g: Grouping) -> list[Table]:
    """The seeds behind params_by_group's means: one table per activation with learned
    parameters, a row per group, site and parameter, a column per seed (each run's value at
    its last epoch; channel-wise: the mean over the site's channels); completed runs only."""
    tables = []
    for name, groups in _learning(per_net({k: grp.counted for k, grp in g.groups.items()})).items():
        members = [r for rs in groups.values() for r in rs]
        seeds = sorted({r.summary.seed for r in members})
        rows = []
        for label, runs in groups.items():
            keys = dict.fromkeys(
                (site, key) for r in runs for site, ps in r.summary.act_params.items() for key in ps
            )
            for site, key in keys:
                have = [r for r in runs if key in r.summary.act_params.get(site, {})]
                cells = [
                    [r.summary.act_params[site][key].mean for r in have if r.summary.seed == seed]
                    for seed in seeds
                ]
                rows.append([label, site, key, *(_r(statistics.fmean(v), 4) if v else None
                                                 for v in cells)])  # fmt: skip
        note = (
            "each run's value at its last epoch, by seed; channel-wise parameters: the mean over "
            "the site's channels; repeats of a seed averaged"
        )
        columns = ["group", "site", "param", *(f"s{seed}" for seed in seeds)]
        tables.append(Table(f"Learned activation parameters, every seed: {name}", columns, rows,
                            [note]))  # fmt: skip
    return tables


def _params_table(name: str, groups: dict[str, list[Run]]) -> Table:
    members = [r for rs in groups.values() for r in rs]
    nets = list(dict.fromkeys(r.summary.net for r in members))
    columns = ["net", "site", "param"]
    columns += [f"{lab} {s}" for lab in groups for s in ("mean", "std", "n")]
    rows, split = [], []
    for net in nets:
        on_net = [r for r in members if r.summary.net == net]
        keys = dict.fromkeys(
            (site, key) for r in on_net for site, ps in r.summary.act_params.items() for key in ps
        )
        for site, key in keys:
            row: list[Any] = [net, site, key]
            for runs in groups.values():
                vals = _per_seed(
                    (r.summary.seed, r.summary.act_params[site][key].mean)
                    for r in runs
                    if r.summary.net == net and key in r.summary.act_params.get(site, {})
                )
                if vals:
                    d = stats.describe(vals)
                    row += [_r(d.mean, 4), _r(d.std, 4), d.n]
                    if disagree(vals):
                        label = next(lab for lab, rs in groups.items() if rs is runs)
                        shown = ", ".join(f"{v:.2f}" for v in sorted(vals))
                        split.append(f"{label} {site} {key} ({shown})")
                else:
                    row += [None, None, 0]
            rows.append(row)
    note = (
        "mean over seeds of each run's value at the last epoch; channel-wise parameters: "
        "the mean over the site's channels first; n: distinct seeds"
    )
    notes = [note]
    if split:
        notes.append(
            "seeds disagree (signs differ, or the seeds spread wider than the mean is large): "
            "the mean describes no run there: " + "; ".join(split)
        )
    brief = [Brief(c, "{}", (c,)) for c in ("net", "site", "param")]
    brief += [Brief(f"{lab} (n)", "{} ± {} ({})", tuple(f"{lab} {s}" for s in ("mean", "std", "n")),
                    number=".3f") for lab in groups]  # fmt: skip
    return Table(f"Learned activation parameters by site: {name}", columns, rows, notes, brief)


def disagree(values: list[float]) -> bool:
    """Seeds that learned different things: values of both signs, or a spread (max - min)
    wider than the mean's size (e.g. 0.02, 0.05, 0.08, 1.39, 1.94: mean 0.70)."""
    if len(values) < 2:
        return False
    low, high = min(values), max(values)
    return (low < 0 < high) or high - low > abs(statistics.fmean(values))


def per_net(groups: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """Each group whose runs span several networks split into 'label [net]' groups: sites
    belong to a network (LeNet's fc1 is not LeNet++'s), so per-site numbers never mix nets."""
    out: dict[str, list[Run]] = {}
    for label, runs in groups.items():
        nets = list(dict.fromkeys(r.summary.net for r in runs))
        for net in nets:
            key = label if len(nets) == 1 else f"{label} [{net}]"
            out[key] = [r for r in runs if r.summary.net == net]
    return out


def _dead(s: Summary) -> dict[str, float]:
    return s.dead_units


def dead_units(runs: list[Run], g: Grouping | None) -> Table | None:
    """Per site, % of units that output 0 for every test image ("dying ReLU")."""
    if g is not None:
        groups = per_net(
            {k: [r for r in grp.counted if r.summary.dead_units] for k, grp in g.groups.items()}
        )
    else:
        groups = {r.name: [r] for r in runs if r.summary.dead_units}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        return None
    sites = _site_order([r for v in groups.values() for r in v], _dead)
    rows = []
    for label, members in groups.items():
        row: list[Any] = [label, len({r.summary.seed for r in members})]
        for site in sites:
            vals = _per_seed(
                (r.summary.seed, 100 * r.summary.dead_units[site])
                for r in members
                if site in r.summary.dead_units
            )
            row.append(_r(statistics.fmean(vals), 2) if vals else None)
        rows.append(row)
    return Table(
        "Dead units at the end of training (% of units never non-zero on the test set)",
        ["group" if g is not None else "run", "n", *sites],
        rows,
    )


def records(table: Table) -> list[dict[str, Any]]:
    """A table's rows as dicts keyed by column (for notebooks and tests)."""
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


@dataclass
class Compute:
    """What training some runs took, as a results folder states it."""

    runs: int
    train_hours: float  # the runs' epochs (train_seconds), summed
    cpu_hours: float | None  # each run's hours x its threads; None: a run used torch's default
    wall_hours: float  # while at least one of them trained (the runs with a known interval)
    inferred: int  # runs whose interval is inferred from their last heartbeat (before schema 5)
    untimed: int  # runs with no interval at all (no heartbeat): not in wall_hours
    threads: list[int]  # the distinct train.threads (0: torch's default)
    machines: list[str]  # each distinct "host: processor"


def compute_used(runs: list[Run]) -> Compute:
    """Training time in all, CPU-hours and wall time of `runs` (every run in the folder,
    whatever its status: a pruned trial's epochs cost as much as a completed one's). The
    wall time is the union of the intervals the runs trained in (summary.json `sessions`), so
    runs side by side count once and idle time between invocations not at all."""
    seconds = [r.summary.train_seconds for r in runs]
    threads = [r.cfg.train.threads for r in runs]
    wall, reached = 0.0, -math.inf
    for start, end in sorted(i for r in runs for i in r.summary.intervals):
        wall += max(0.0, end - max(start, reached))
        reached = max(reached, end)

    def where(s: Summary) -> str:
        return f"{s.host or 'host not recorded'}: {s.machine or 'processor not recorded'}"

    return Compute(
        runs=len(runs),
        train_hours=sum(seconds) / 3600,
        cpu_hours=None if 0 in threads else sum(map(operator.mul, seconds, threads)) / 3600,
        wall_hours=wall / 3600,
        inferred=sum(1 for r in runs if not r.summary.sessions and r.summary.heartbeat > 0),
        untimed=sum(1 for r in runs if not r.summary.intervals),
        threads=sorted(set(threads)),
        machines=list(dict.fromkeys(where(r.summary) for r in runs)),
    )


@dataclass
class Comparison:
    """Everything compare, report and plot show of some runs, computed once."""

    runs: list[Run]
    grouping: Grouping
    metric: str
    baseline: str | None
    tables: list[Table]
    rows: list[GroupRow] = field(default_factory=list)  # grouped: the first table's rows
    learned: list[Table] = field(default_factory=list)  # learned-parameter tables (in tables)
    top: list[str] = field(default_factory=list)  # the top group (report: every pair tested)
    every_seed: list[Table] = field(default_factory=list)  # report: learned parameters by seed
    compute: Compute | None = None  # report: what training the runs took


def compare(
    runs: list[Run],
    group_by: list[str] | None = None,
    per_run: bool = False,
    baseline: str | None = None,
    metric: str = "accuracy",
    pairs: bool = False,
    optimistic: bool = False,
) -> Comparison:
    """Per-run table when every group has one run (or per_run), else grouped statistics
    (with pairs: every pair of groups tested, Holm over all pairs); then the
    learned-parameter and dead-unit tables where runs hold them. optimistic adds the best
    test epoch's accuracy (chosen on the test set)."""
    if metric not in METRICS:
        raise ActbenchError(f"--metric: unknown {metric!r}; allowed: {', '.join(METRICS)}")
    g = grouping(runs, group_by)  # also rejects unknown fields
    grouped = not per_run and (
        group_by is not None
        or baseline is not None
        or pairs
        or any(len(grp.runs) > 1 for grp in g.groups.values())
    )
    if grouped:
        return _grouped(runs, g, baseline, metric, pairs, optimistic)
    learned = [t for t in [params_per_run(runs)] if t is not None]
    tables = [per_run_table(runs, metric, optimistic), *learned, dead_units(runs, None)]
    return Comparison(runs, g, metric, baseline, [t for t in tables if t is not None], [], learned)


def _grouped(
    runs: list[Run],
    g: Grouping,
    baseline: str | None,
    metric: str,
    pairs: bool = False,
    optimistic: bool = False,
) -> Comparison:
    first, rows = grouped_table(g, metric, baseline, optimistic)
    extra: list[Table] = []
    if pairs:
        long, matrix, _ = all_pairs(g, metric)
        extra = [matrix, long]
    learned = params_by_group(g)
    tables = [t for t in (first, *extra, *learned, dead_units(runs, g)) if t is not None]
    return Comparison(runs, g, metric, baseline, tables, rows, learned)


def for_report(runs: list[Run], baseline: str | None = None) -> Comparison:
    """The grouped comparison a report shows: default groups, against `baseline` (default:
    relu where there is one), every pair tested for the top group. ActbenchError for runs that
    never read the test set (tune trials): a report answers on test accuracy."""
    blind = [r for r in runs if not r.cfg.train.eval_test]
    if blind:
        raise ActbenchError(
            f"{len(blind)} of these runs never read the test set ({blind[0].path.name} ...: "
            "train.eval_test false, tune trials); report their tune folder on its own "
            "(actbench report <tune folder>) and the evaluation runs apart"
        )
    g = grouping(runs)
    c = _grouped(runs, g, baseline or default_baseline(g), "accuracy", pairs=True)
    if sum(1 for grp in g.groups.values() if grp.counted) > 1:
        c.top, _ = top_group(g)
    c.every_seed = params_every_seed(g)
    c.compute = compute_used(runs)
    return c


def build_tables(
    runs: list[Run],
    group_by: list[str] | None = None,
    per_run: bool = False,
    baseline: str | None = None,
    metric: str = "accuracy",
) -> list[Table]:
    """compare(...)'s tables."""
    return compare(runs, group_by, per_run, baseline, metric).tables


# He et al. 2015 ("Delving deep into rectifiers", Table 1): the channel-shared PReLU learned
# its largest slope in the first conv layer (0.681), smaller ones deeper.
HE_FIRST_SLOPE = 0.681


@dataclass
class SlopePattern:
    group: str
    net: str
    first: str  # the first site
    first_mean: float  # its slope, mean over seeds
    deepest_max: tuple[str, float]  # the deeper site with the largest mean slope
    largest_in: int  # seeds where the first site had the largest slope
    seeds: int

    @property
    def agrees(self) -> bool:
        """With He et al.: the first site's slope the largest in every seed."""
        return self.largest_in == self.seeds


def slope_pattern(g: Grouping) -> list[SlopePattern]:
    """Per channel-shared PReLU group and net, seed by seed: is the first site's learned
    slope the largest, as in He et al. 2015?"""
    out = []
    for label, runs in per_net({k: grp.counted for k, grp in g.groups.items()}).items():
        shared = [r for r in runs if r.cfg.activation.name == "prelu"
                  and not r.cfg.activation.per_channel and r.summary.slopes]  # fmt: skip
        if not shared:
            continue
        # He et al.'s pattern is over conv layers (their fully connected ones differ)
        sites = [s for s in shared[0].summary.slopes if s.startswith("conv")]
        if len(sites) < 2:
            continue
        means = {s: statistics.fmean(r.summary.slopes[s].mean for r in shared) for s in sites}
        deeper = max(sites[1:], key=means.__getitem__)
        largest = sum(
            all(r.summary.slopes[sites[0]].mean >= r.summary.slopes[s].mean for s in sites[1:])
            for r in shared
        )
        out.append(SlopePattern(label, shared[0].summary.net, sites[0], means[sites[0]],
                                (deeper, means[deeper]), largest, len(shared)))  # fmt: skip
    return out
