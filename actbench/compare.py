"""Accuracy tables over run directories: one row per run, or per group with statistics.
Reads only what run directories hold (summary.json, config.yaml), never code defaults."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from actbench import stats
from actbench.errors import ActbenchError
from actbench.rundir import Run

FORMATS = ("table", "csv", "markdown", "json")
METRICS = ("accuracy", "error")
# Config fields that never define a group: seeds are what groups average over; the rest
# describe where a run happened, not what it tested.
NOT_GROUPING = {"seed", "name", "data.root", "data.download", "train.device", "train.threads"}


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config mapping -> {"section.key": value}."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def fields(run: Run) -> dict[str, Any]:
    """Groupable fields of a run: its labels, then every other resolved config value."""
    s = run.summary
    flat = {
        k: v
        for k, v in flatten(run.config).items()
        if not k.startswith("activation.") and k not in ("model.net", "data.dataset")
    }
    return {
        "activation": s.get("activation"),
        "net": s.get("net"),
        "dataset": s.get("dataset"),
        **flat,
    }


def default_group_keys(runs: list[Run]) -> list[str]:
    """Every field whose value differs between runs, except the seed and where-it-ran fields."""
    per_run = [fields(r) for r in runs]
    keys = list(dict.fromkeys(k for f in per_run for k in f))
    varying = [
        k for k in keys if k not in NOT_GROUPING and len({repr(f.get(k)) for f in per_run}) > 1
    ]
    return varying or ["activation"]


def _pct(x: float | None, metric: str) -> float | None:
    if x is None:
        return None
    return round(100 * x if metric == "accuracy" else 100 * (1 - x), 3)


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def _p(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.4g}")


def _sort_key(value: float | None, metric: str) -> float:
    if value is None:
        return float("inf")
    return -value if metric == "accuracy" else value


def per_run_table(runs: list[Run], metric: str) -> Table:
    m = "acc" if metric == "accuracy" else "err"
    columns = [
        "name",
        "dataset",
        "net",
        "activation",
        "seed",
        "epochs",
        "status",
        "precision",
        f"final_{m}_%",
        f"best_{m}_%",
        "params",
        "train_s",
    ]
    rows = []
    for run in runs:
        s = run.summary
        rows.append(
            [
                s.get("name", run.path.name),
                s.get("dataset"),
                s.get("net"),
                s.get("activation"),
                s.get("seed"),
                s.get("epochs"),
                s.get("status"),
                s.get("precision", "fp32"),
                _pct(s.get("final_test_acc"), metric),
                _pct(s.get("best_test_acc"), metric),
                s.get("params"),
                _r(s.get("train_seconds"), 1),
            ]
        )
    rows.sort(key=lambda r: _sort_key(r[8], metric))
    return Table(f"Runs (test {metric}, %)", columns, rows)


def _groups(runs: list[Run], keys: list[str]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        f = fields(run)
        for key in keys:
            if key not in f:
                allowed = ", ".join(k for k in f if k != "seed")
                raise ActbenchError(f"--group-by: unknown field {key!r}; allowed: {allowed}")
        groups.setdefault(" / ".join(str(f[k]) for k in keys), []).append(run)
    return groups


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


def grouped_table(runs: list[Run], keys: list[str], metric: str, baseline: str | None) -> Table:
    m = "acc" if metric == "accuracy" else "err"
    groups = _groups(runs, keys)
    columns = [
        "group",
        "n",
        f"final_{m}_mean",
        f"final_{m}_std",
        "ci95_low",
        "ci95_high",
        f"best_{m}_mean",
        f"best_{m}_std",
        f"final_{m}_min",
        f"final_{m}_max",
        "train_s_mean",
        "not_completed",
    ]
    if baseline is not None:
        columns += [
            "diff_vs_baseline",
            "diff_ci95_low",
            "diff_ci95_high",
            "p_t",
            "p_wilcoxon",
            "test",
            "verdict",
        ]
        if _baseline_for(next(iter(groups)), list(groups), baseline, keys) is None:
            raise ActbenchError(f"--baseline: no group {baseline!r}; groups: {', '.join(groups)}")
    # (seed, final metric) of each group's completed runs; a seed may repeat (same config
    # trained twice), which rules out pairing but still counts in n.
    finals = {
        label: [
            (r.summary.get("seed"), _pct(r.summary["final_test_acc"], metric))
            for r in members
            if r.summary.get("status") == "completed"
            and r.summary.get("final_test_acc") is not None
        ]
        for label, members in groups.items()
    }
    rows, notes = [], []
    for label, members in groups.items():
        done = [r for r in members if r.summary.get("status") == "completed"]
        final = [v for _, v in finals[label]]
        best = [_pct(r.summary["best_test_acc"], metric) for r in done]
        skipped = len(members) - len(done)
        if not final:
            rows.append([label, 0, *[None] * 9, skipped, *[None] * (len(columns) - 12)])
            continue
        d, b = stats.describe(final), stats.describe(best)
        seconds = [r.summary.get("train_seconds", 0.0) for r in done]
        row = [
            label,
            d.n,
            _r(d.mean),
            _r(d.std),
            _r(d.ci_low),
            _r(d.ci_high),
            _r(b.mean),
            _r(b.std),
            _r(d.min),
            _r(d.max),
            _r(sum(seconds) / len(seconds), 1),
            skipped,
        ]
        if baseline is not None:
            base = _baseline_for(label, list(groups), baseline, keys)
            if base == label or base is None:
                row += [None] * 6 + ["baseline" if base == label else "no baseline"]
            else:
                diff = stats.versus(finals[label], finals[base])
                better = (
                    (diff.diff_mean or 0) > 0 if metric == "accuracy" else (diff.diff_mean or 0) < 0
                )
                verdict = "not distinguishable"
                if diff.distinguishable:
                    verdict = "better" if better else "worse"
                row += [
                    _r(diff.diff_mean),
                    _r(diff.ci_low),
                    _r(diff.ci_high),
                    _p(diff.p_t),
                    _p(diff.p_wilcoxon),
                    diff.test,
                    verdict,
                ]
        rows.append(row)
    rows.sort(key=lambda r: _sort_key(r[2], metric))
    notes.append(
        f"final/best: test {metric} (%) at the last / best epoch; std: sample std over seeds; "
        "ci95: t interval of the mean; runs that did not complete are left out of the numbers"
    )
    if baseline is not None:
        notes.append(
            f"diff: group minus baseline {baseline!r} on final {metric}; paired over matched "
            "seeds when both groups have the same seeds, else Welch's t-test; 'not "
            "distinguishable' when the difference's 95% CI contains 0"
        )
    title = f"Test {metric} (%) by {', '.join(keys)}"
    return Table(title, columns, rows, notes)


def _site_order(runs: list[Run], key: str) -> list[str]:
    return list(dict.fromkeys(site for r in runs for site in (r.summary.get(key) or {})))


def slopes_per_run(runs: list[Run]) -> Table | None:
    rows = [
        [
            r.summary.get("name", r.path.name),
            site,
            _r(v["mean"], 4),
            _r(v["min"], 4),
            _r(v["max"], 4),
            v["n"],
        ]
        for r in runs
        for site, v in (r.summary.get("slopes") or {}).items()
    ]
    if not rows:
        return None
    return Table(
        "Learned PReLU slopes a at the last epoch (over channels)",
        ["run", "layer", "a_mean", "a_min", "a_max", "channels"],
        rows,
    )


def slopes_by_variant(runs: list[Run]) -> Table | None:
    """PReLU paper Table 1 style: one row per site, one column pair per PReLU variant."""
    with_slopes = [r for r in runs if r.summary.get("slopes")]
    if not with_slopes:
        return None
    nets = list(dict.fromkeys(r.summary["net"] for r in with_slopes))
    labels = list(dict.fromkeys(r.summary["activation"] for r in with_slopes))
    columns = ["net", "layer"] + [f"{lab} {s}" for lab in labels for s in ("mean", "std", "n")]
    rows = []
    for net in nets:
        members = [r for r in with_slopes if r.summary["net"] == net]
        for site in _site_order(members, "slopes"):
            row: list[Any] = [net, site]
            for lab in labels:
                vals = [
                    r.summary["slopes"][site]["mean"]
                    for r in members
                    if r.summary["activation"] == lab and site in r.summary["slopes"]
                ]
                if vals:
                    d = stats.describe(vals)
                    row += [_r(d.mean, 4), _r(d.std, 4), d.n]
                else:
                    row += [None, None, 0]
            rows.append(row)
    note = "mean over seeds of each run's mean a over the site's channels (channel-wise runs)"
    return Table("Learned PReLU slopes by site", columns, rows, [note])


def dead_units(runs: list[Run], keys: list[str] | None) -> Table | None:
    """Per site, % of units that output 0 for every test image ("dying ReLU")."""
    with_dead = [r for r in runs if r.summary.get("dead_units")]
    if not with_dead:
        return None
    sites = _site_order(with_dead, "dead_units")
    groups = (
        _groups(with_dead, keys)
        if keys
        else {r.summary.get("name", r.path.name): [r] for r in with_dead}
    )
    rows = []
    for label, members in groups.items():
        row: list[Any] = [label, len(members)]
        for site in sites:
            vals = [
                100 * r.summary["dead_units"][site]
                for r in members
                if site in r.summary["dead_units"]
            ]
            row.append(_r(sum(vals) / len(vals), 2) if vals else None)
        rows.append(row)
    return Table(
        "Dead units at the end of training (% of units never non-zero on the test set)",
        ["group" if keys else "run", "n", *sites],
        rows,
    )


def build_tables(
    runs: list[Run],
    group_by: list[str] | None = None,
    per_run: bool = False,
    baseline: str | None = None,
    metric: str = "accuracy",
) -> list[Table]:
    """Per-run table when every group has one run (or per_run), else grouped statistics;
    then the slope and dead-unit tables where runs hold them."""
    if metric not in METRICS:
        raise ActbenchError(f"--metric: unknown {metric!r}; allowed: {', '.join(METRICS)}")
    keys = group_by or default_group_keys(runs)
    groups = _groups(runs, keys)  # also rejects unknown fields
    grouped = not per_run and (
        group_by is not None or baseline is not None or any(len(g) > 1 for g in groups.values())
    )
    tables = [
        grouped_table(runs, keys, metric, baseline) if grouped else per_run_table(runs, metric)
    ]
    slope_table = slopes_by_variant(runs) if grouped else slopes_per_run(runs)
    dead = dead_units(runs, keys if grouped else None)
    return tables + [t for t in (slope_table, dead) if t is not None]


# ---------------------------------------------------------------------------- rendering


def cell(value: Any, empty: str) -> str:
    """One table cell as text, identical in every format."""
    if value is None:
        return empty
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3e}"
    return str(value)


def render(tables: list[Table], fmt: str, color: bool | None = None) -> str:
    """The tables as text in one of FORMATS; every format carries the same numbers."""
    if fmt == "json":
        return (
            json.dumps(
                [
                    {
                        "title": t.title,
                        "notes": t.notes,
                        "rows": [dict(zip(t.columns, row, strict=True)) for row in t.rows],
                    }
                    for t in tables
                ],
                indent=2,
            )
            + "\n"
        )
    out = io.StringIO()
    for i, t in enumerate(tables):
        if i:
            out.write("\n")
        if fmt == "csv":
            out.write(f"# {t.title}\n")
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(t.columns)
            writer.writerows([[cell(v, "") for v in row] for row in t.rows])
        elif fmt == "markdown":
            out.write(f"### {t.title}\n\n| {' | '.join(t.columns)} |\n")
            out.write("|" + "|".join("---" for _ in t.columns) + "|\n")
            for row in t.rows:
                out.write("| " + " | ".join(cell(v, "-") for v in row) + " |\n")
            for note in t.notes:
                out.write(f"\n_{note}_\n")
        else:
            out.write(_rich_table(t, color))
    return out.getvalue()


# Adjacent column pairs shown as one cell in the terminal table: suffixes and cell format.
_PAIRS = (
    ("_mean", "_std", "{} ± {}", ""),
    ("_low", "_high", "[{}, {}]", ""),
    ("_min", "_max", "{} – {}", "_range"),
)


def _merged(t: Table) -> tuple[list[str], list[list[str]]]:
    """Columns and cells for the terminal, with mean/std, CI and min/max pairs merged."""
    columns, picks = [], []
    i = 0
    while i < len(t.columns):
        col, nxt = t.columns[i], t.columns[i + 1] if i + 1 < len(t.columns) else ""
        pair = next(
            (p for p in _PAIRS if col.endswith(p[0]) and nxt == col[: -len(p[0])] + p[1]), None
        )
        if pair:
            columns.append(col[: -len(pair[0])] + pair[3])
            picks.append((i, i + 1, pair[2]))
            i += 2
        else:
            columns.append(col)
            picks.append((i, None, "{}"))
            i += 1
    rows = []
    for row in t.rows:
        cells = []
        for a, b, fmt in picks:
            if b is None or row[b] is None:
                cells.append(cell(row[a], "-"))
            else:
                cells.append(fmt.format(cell(row[a], "-"), cell(row[b], "-")))
        rows.append(cells)
    return columns, rows


def _rich_table(t: Table, color: bool | None) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    columns, rows = _merged(t)
    table = RichTable(title=t.title, box=box.SIMPLE_HEAVY, title_justify="left")
    for col in columns:
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, width=1000)
    console.print(table, crop=False)
    for note in t.notes:
        console.print(f"  {note}", style="dim", soft_wrap=True)
    out = [line.rstrip() for line in buf.getvalue().splitlines()]
    return "\n".join(out) + "\n"
