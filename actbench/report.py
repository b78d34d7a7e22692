"""A one-page Markdown report over runs: tables, slope table, plots, the configs that differ."""

from __future__ import annotations

import time

import yaml

from actbench import __version__, compare
from actbench.config import flatten
from actbench.render import cell, render
from actbench.rundir import Run

CAPTIONS = {
    "curves.png": "Test accuracy and training loss per epoch (band: ±1 std over seeds)",
    "final_acc.png": "Final test accuracy, one dot per seed",
    "slopes.png": "Learned PReLU slopes per site at the last epoch",
    "slope_trajectories.png": "PReLU slopes over epochs (epoch 0: initial value)",
    "slope_hist.png": "Channel-wise PReLU: distribution of the per-channel slopes",
    "activations.png": "The activation functions, PReLU with its learned slopes",
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


def build(runs: list[Run], plots: list[str], baseline: str | None = None) -> str:
    """report.md text; `plots` are PNG file names beside it."""
    g = compare.grouping(runs)
    keys = g.keys
    tables = compare.build_tables(runs, baseline=baseline)
    lines = [
        "# actbench report",
        "",
        f"{len(runs)} runs, generated {time.strftime('%Y-%m-%d %H:%M')} by actbench "
        f"{__version__}. Accuracies are on the 10,000 test images.",
        "",
        "## Results",
        "",
        render(tables, "markdown"),
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
        for name in plots:
            lines += [
                f"### {CAPTIONS.get(name, name)}",
                "",
                f"![{CAPTIONS.get(name, name)}]({name})",
                "",
            ]
    return "\n".join(lines)
