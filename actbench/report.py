"""A one-page Markdown report over runs: the answer, tables, learned activation parameters,
plots, the configs that differ."""

from __future__ import annotations

import time
from typing import Any

import yaml

from actbench import __version__, compare
from actbench.config import flatten
from actbench.render import cell, render
from actbench.rundir import Run

CAPTIONS = {
    "forest.png": "Difference to the baseline per group, with its 95% interval",
    "curves.png": "Test accuracy and training loss per epoch (band: ±1 std over seeds)",
    "final_acc.png": "Final test accuracy, one dot per seed",
    "slopes.png": "Learned PReLU slopes per site at the last epoch",
    "slope_trajectories.png": "PReLU slopes over epochs (epoch 0: initial value)",
    "slope_hist.png": "Channel-wise PReLU: distribution of the per-channel slopes",
    "activations.png": "The activation functions, PReLU with its learned slopes",
    "learned_shapes.png": "Learned activation functions per site: at initialisation, after "
    "the first epoch and after the last (band: lowest to highest over channels)",
    "features2d.png": "LeNet++ 2-D features of the test images",
}


def _common_config(runs: list[Run], varying: list[str]) -> dict:
    flat = [flatten(r.config) for r in runs]
    shared = {
        k: v
        for k, v in flat[0].items()
        if k not in varying
        and k not in compare.NOT_GROUPING
        and not k.startswith("activation.")
        and all(f.get(k) == v for f in flat)
    }
    nested: dict = {}
    for key, value in shared.items():
        node = nested
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return nested


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.2g}"


def _outcomes(r: dict[str, Any], total: int) -> str:
    parts = [f"{r[k]} of {total} {k}" for k in ("stalled", "diverged") if r[k]]
    return f" ({'; '.join(parts)})" if parts else ""


def sentence(r: dict[str, Any], baseline: str) -> str:
    """One plain sentence for a group's row of compare's grouped table."""
    total = r["n"] + r["diverged"] + r["not_completed"]
    ran = _outcomes(r, total)
    if r["n"] == 0:
        return f"**{r['group']}**: no completed run{ran}."
    mean = f"{r['final_acc_mean']:.2f}%"
    if r["verdict"] == "baseline":
        spread = f" ± {r['final_acc_std']:.2f}" if r["final_acc_std"] is not None else ""
        return f"**{r['group']}** (baseline): {mean}{spread} over {r['n']} seeds{ran}."
    if r["diff_vs_baseline"] is None:
        return f"**{r['group']}**: {mean}; {r['verdict']} against {baseline}{ran}."
    diff, lo, hi = r["diff_vs_baseline"], r["diff_ci95_low"], r["diff_ci95_high"]
    how = f"paired over {r['n']} seeds" if r["test"].startswith("paired") else "Welch's t-test"
    stats = f"95% CI {lo:.2f} to {hi:.2f}, {how}, p = {_p(r['p_t'])}"
    if r["p_wilcoxon"] is not None:
        stats += f", Wilcoxon p = {_p(r['p_wilcoxon'])}"
    if r["verdict"] in ("better", "worse"):
        verb = "beats" if r["verdict"] == "better" else "trails"
        return (
            f"**{r['group']}** {verb} {baseline} by {abs(diff):.2f} points of test accuracy "
            f"({stats}){ran}."
        )
    return (
        f"**{r['group']}** is not distinguishable from {baseline}: {diff:+.2f} points "
        f"({stats}){ran}."
    )


def build(runs: list[Run], plots: list[str], baseline: str | None = None) -> str:
    """report.md text: the answer (one sentence per group against the baseline, the forest
    plot), the slope table, then the details; `plots` are PNG file names beside it."""
    g = compare.grouping(runs)
    keys = g.keys
    tables = compare.build_tables(runs, group_by=keys, baseline=baseline)
    sizes = sorted({r.summary["test_images"] for r in runs})
    lines = [
        "# actbench report",
        "",
        f"{len(runs)} runs, generated {time.strftime('%Y-%m-%d %H:%M')} by actbench "
        f"{__version__}. Accuracies are on the {', '.join(f'{n:,}' for n in sizes)} test images.",
        "",
        "## The answer",
        "",
    ]
    rows = compare.records(tables[0])
    if baseline is not None:
        lines += [f"- {sentence(r, baseline)}" for r in rows]
    else:
        lines += [
            f"- **{r['group']}**: {r['final_acc_mean']:.2f}% over {r['n']} seeds"
            if r["n"]
            else f"- **{r['group']}**: no completed run"
            for r in rows
        ]
    lines.append("")
    if "forest.png" in plots:
        lines += [f"![{CAPTIONS['forest.png']}](forest.png)", ""]
    learned = [t for t in tables if t.title.startswith("Learned activation parameters")]
    if learned:
        lines += ["## Learned activation parameters", "", render(learned, "markdown"), ""]
        if "learned_shapes.png" in plots:
            lines += [f"![{CAPTIONS['learned_shapes.png']}](learned_shapes.png)", ""]
    lines += [
        "## Details",
        "",
        render([t for t in tables if t not in learned], "markdown"),
        "## Configs that differ",
        "",
    ]
    groups: dict[str, dict] = {}
    for label, grp in g.groups.items():
        run = grp.runs[0]
        f = compare.fields(run)
        groups.setdefault(
            label,
            {
                **{k: f.get(k) for k in keys},
                **{k: v for k, v in flatten(run.config).items() if k.startswith("activation.")},
            },
        )
    columns = list(dict.fromkeys(c for g in groups.values() for c in g))
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for g in groups.values():
        lines.append("| " + " | ".join(cell(g.get(c), "-") for c in columns) + " |")
    lines += [
        "",
        "Shared by every run:",
        "",
        "```yaml",
        yaml.safe_dump(_common_config(runs, keys), sort_keys=False).rstrip(),
        "```",
        "",
    ]
    if plots:
        lines += ["## Plots", ""]
        for name in [p for p in plots if p not in ("forest.png", "learned_shapes.png")]:
            lines += [
                f"### {CAPTIONS.get(name, name)}",
                "",
                f"![{CAPTIONS.get(name, name)}]({name})",
                "",
            ]
    return "\n".join(lines)
