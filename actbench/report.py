"""A one-page Markdown report over runs: the answer, tables, learned activation parameters,
plots, the configs that differ."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from actbench import __version__, compare
from actbench.compare import Comparison, GroupRow
from actbench.config import flatten
from actbench.render import Table, cell, render
from actbench.rundir import REPORT_HEADS, TUNED, Run, Status
from actbench.tune import read_tune_space as tune_space
from actbench.tune import read_tune_spec as tune_spec

CAPTIONS = {
    "forest.png": "Difference to the baseline per group, with its 95% interval",
    "gap.png": "Paired difference to the baseline per epoch (band: 95% t interval over "
    "seeds): speed or final quality?",
    "curves.png": "Test accuracy and training loss per epoch (band: ±1 std over seeds)",
    "final_acc.png": "Final test accuracy, one dot per seed",
    "slopes.png": "Learned PReLU slopes per site at the last epoch (bar: mean over seeds; dots: "
    "each seed)",
    "slope_trajectories.png": "PReLU slopes over epochs (epoch 0: initial value)",
    "slope_hist.png": "Channel-wise PReLU: distribution of the per-channel slopes (seeds pooled)",
    "activations.png": "The activation functions, PReLU with its learned slopes",
    "learned_shapes.png": "Learned activation functions per site: at initialisation, after "
    "the first epoch and after the last (band: lowest to highest over the channels of every "
    "seed)",
    "features2d.png": "LeNet++ 2-D features of the test images",
    "lr_sensitivity.png": "Validation accuracy against the learning rate: every trial a dot, "
    "pruned trials an x where they stopped, the chosen trial circled",
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


def _outcomes(r: GroupRow) -> str:
    parts = [f"{count} of {r.runs} {what}" for what, count in
             ((Status.STALLED, r.stalled), (Status.DIVERGED, r.diverged)) if count]  # fmt: skip
    return f" ({'; '.join(parts)})" if parts else ""


def sentence(r: GroupRow, baseline: str, base: GroupRow | None = None) -> str:
    """One plain sentence for a group's row of compare's grouped table (base: the baseline's
    row, for the pass/fail counts)."""
    ran = _outcomes(r)
    if r.n == 0:
        return f"**{r.group}**: no completed run{ran}."
    mean = f"{r.final_mean:.2f}%"
    if r.verdict == "baseline":
        spread = f" ± {r.final_std:.2f}" if r.final_std is not None else ""
        return f"**{r.group}** (baseline): {mean}{spread} over {r.n} seeds{ran}."
    if (r.test or "").startswith("stalls") and base is not None:
        return (
            f"**{r.group}** trained in {r.trained} of {r.n} seeds, {baseline} in "
            f"{base.trained} of {base.n}: {r.verdict} (Fisher's exact test p = {_p(r.p)}, "
            f"Holm {_p(r.p_holm)}); no accuracy difference is tested against runs that all "
            f"stalled. {r.group} reached {mean}."
        )
    tested = r.verdict in ("better", "worse", "not distinguishable")
    if not tested or None in (r.diff_vs_baseline, r.diff_ci95_low, r.diff_ci95_high):
        return f"**{r.group}**: {mean}; {r.verdict} against {baseline}{ran}."
    diff, lo, hi = r.diff_vs_baseline, r.diff_ci95_low, r.diff_ci95_high
    how = f"paired over {r.n} seeds" if (r.test or "").startswith("paired") else "Welch's t-test"
    kind = "bootstrap" if r.interval == "bootstrap" else "t"
    stats = f"95% {kind} CI {lo:.2f} to {hi:.2f}, {how}"
    if r.p is not None:
        stats += f", p = {_p(r.p)}, Holm-adjusted {_p(r.p_holm)}"
    if r.effect_size is not None:
        stats += f", d = {r.effect_size:.2f}, won {r.wins} seeds"
    if r.verdict in ("better", "worse"):
        verb = "beats" if r.verdict == "better" else "trails"
        return (
            f"**{r.group}** {verb} {baseline} by {abs(diff):.2f} points of test accuracy "
            f"({stats}){ran}."
        )
    power = ""
    if r.mde is not None:
        power = (
            f" With {r.n} seeds this design detects differences of {r.mde:.2f} points or more "
            "(80% power after Holm's correction)"
            + (": a smaller one may exist." if abs(diff) < r.mde else ".")
        )
    return (
        f"**{r.group}** is {r.verdict} from {baseline}: {diff:+.2f} points ({stats}){ran}.{power}"
    )


def top_sentence(c: Comparison) -> str:
    """The answer in one line: the groups not distinguishable from the best, after Holm's
    correction over every pair."""
    if not c.top:
        return ""
    rest = [r.group for r in c.rows if r.n and r.group not in c.top]
    beats = f"; each of the others ({', '.join(rest)}) is below the best" if rest else ""
    return (
        f"**Top group**: {', '.join(c.top)}: the best by mean final test accuracy "
        "and every activation not distinguishable from it (every pair tested, Holm-adjusted, "
        f"p < 0.05){beats}. The all-pairs table below says which differences the evidence "
        "allows."
    )


def compute_sentence(c: compare.Compute) -> str:
    """The total compute of a folder of runs, in one line."""
    each = " or ".join(str(t) if t else "torch's default" for t in c.threads)
    cpu = (
        f"{c.cpu_hours:.2f} CPU-hours ({each} thread{'s' * (c.threads != [1])} per run)"
        if c.cpu_hours is not None
        else "CPU-hours not known (a run used torch's default thread count)"
    )
    caveats = []
    if c.inferred:
        caveats.append(f"the intervals of {c.inferred} inferred from their last heartbeat, "
                       "recorded before schema 5")  # fmt: skip
    if c.untimed:
        caveats.append(f"{c.untimed} left out: no record of when they trained")
    wall = f"{c.wall_hours:.2f} h of wall time while at least one trained" + (
        f" ({'; '.join(caveats)})" if caveats else ""
    )
    runs = f"{c.runs} run{'s' * (c.runs != 1)}"
    return (
        f"**Compute**: {runs} trained for {c.train_hours:.2f} h in all: {cpu}; {wall}; "
        f"on {'; '.join(c.machines)}."
    )


def build(c: Comparison, plots: list[str]) -> str:
    """report.md text: the answer (one sentence per group against the baseline, the forest
    plot), the slope table, then the details; `plots` are PNG file names beside it."""
    runs, g, baseline = c.runs, c.grouping, c.baseline
    keys = g.keys
    sizes = sorted({n for r in runs if (n := r.summary.test_images) is not None})
    lines = [
        REPORT_HEADS[0],
        "",
        f"{len(runs)} runs, generated {time.strftime('%Y-%m-%d %H:%M')} by actbench "
        f"{__version__}. Accuracies are on the {', '.join(f'{n:,}' for n in sizes)} test images.",
        "",
        *([compute_sentence(c.compute), ""] if c.compute else []),
        "## The answer",
        "",
    ]
    if c.top:
        lines += [top_sentence(c), ""]
    if baseline is not None:
        by_label = {r.group: r for r in c.rows}
        for r in c.rows:
            base = compare.baseline_of(c, r.group) or baseline
            lines.append(f"- {sentence(r, base, by_label.get(base))}")
    else:
        lines += [
            f"- **{r.group}**: {r.final_mean:.2f}% over {r.n} seeds"
            if r.n
            else f"- **{r.group}**: no completed run"
            for r in c.rows
        ]
    lines.append("")
    for name in ("forest.png", "gap.png"):
        if name in plots:
            lines += [f"![{CAPTIONS[name]}]({name})", ""]
    learned = c.learned
    if learned:
        lines += ["## Learned activation parameters", ""]
        for p in compare.slope_pattern(g):
            verdict = ("agrees with that pattern" if p.agrees
                       else f"agrees with that pattern in {p.largest_in} of {p.seeds} seeds only"
                       if p.largest_in else "disagrees with that pattern")  # fmt: skip
            lines += [
                f"- **{p.group}** on {p.net}: the first site's slope ({p.first}) is "
                f"{p.first_mean:.3f} on average and the largest of the conv sites in "
                f"{p.largest_in} of {p.seeds} seeds (deeper conv sites reach "
                f"{p.deepest_max[1]:.3f} at {p.deepest_max[0]}). He et al. (2015, Table 1) "
                "found the first conv layer's channel-shared slope the largest "
                f"({compare.HE_FIRST_SLOPE}): this {verdict}."
            ]
        lines += ["", render(learned, "markdown"), ""]
        if c.every_seed:
            lines += [render(c.every_seed, "markdown"), ""]
        if "learned_shapes.png" in plots:
            lines += [f"![{CAPTIONS['learned_shapes.png']}](learned_shapes.png)", ""]
    lines += [
        "## Details",
        "",
        render([t for t in c.tables if t not in learned], "markdown"),
        "## Configs that differ",
        "",
    ]
    per_group = {label: compare.fields(grp.runs[0]) for label, grp in g.groups.items()}
    # every field that differs between groups (tuned settings too, which name no group)
    differ = [
        k
        for k in dict.fromkeys(k for f in per_group.values() for k in f)
        if k not in compare.NOT_GROUPING and len({repr(f.get(k)) for f in per_group.values()}) > 1
    ]
    groups: dict[str, dict] = {}
    for label, grp in g.groups.items():
        f = per_group[label]
        groups[label] = {
            **{k: f.get(k) for k in keys},
            **{k: v for k, v in flatten(grp.runs[0].config).items() if k.startswith("activation.")},
            **{k: f.get(k) for k in differ if k not in keys},
        }
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
        for name in [p for p in plots if p not in ("forest.png", "gap.png", "learned_shapes.png")]:
            lines += [
                f"### {CAPTIONS.get(name, name)}",
                "",
                f"![{CAPTIONS.get(name, name)}]({name})",
                "",
            ]
    return "\n".join(lines)


EDGE = 0.15  # a best value in this outer fraction of its range may have a better one outside


def tune_table(studies: list[Any], space: dict[str, Any] | None = None) -> Table:
    """One row per study: trials by outcome, the best trial's objective and settings; a note
    for each best value near the edge of its range in space (key -> tune.Param)."""
    keys = list(dict.fromkeys(k for s in studies for t in s.trials for k in t.params))
    rows = []
    for s in studies:
        best = s.best
        rows.append([
            s.name,
            len(s.trials),
            s.count(Status.COMPLETED),
            s.count(Status.PRUNED),
            s.count(Status.DIVERGED, Status.FAILED),
            None if best is None else round(100 * best.value, 2),
            None if best is None else best.number,
            *[None if best is None else best.params.get(k) for k in keys],
        ])  # fmt: skip
    rows.sort(key=lambda r: -(r[5] or 0.0))
    notes = [
        "every study had the same trial budget and search space; pruned trials stopped early "
        "on validation accuracy and are never chosen; the test set was never read"
    ]
    dead = {s.name: sum(t.dead for t in s.trials) for s in studies}
    if any(dead.values()):
        notes.append(
            "completed includes trials stopped early as stalled, their network dead (a site "
            "output 0 on every training image at two epoch ends; train.stop_dead), told to "
            "the study at their validation accuracy: "
            + ", ".join(f"{name} {k}" for name, k in dead.items() if k)
        )
    for s in studies:
        for key, param in (space or {}).items():
            value = None if s.best is None else s.best.params.get(key)
            where = None if value is None else param.position(value)
            if where is None or EDGE <= where <= 1 - EDGE:
                continue
            low = where < EDGE
            share = max(1, round(100 * (where if low else 1 - where)))
            span = f"{cell(param.low, '')}..{cell(param.high, '')}"
            if 0 <= where <= 1:
                lies = f"lies in the {'lowest' if low else 'highest'} {share}% of its range {span}"
                lies += f"{' (log scale)' if param.log else ''}: a better setting may lie "
                lies += f"{'below' if low else 'above'} it (every study had this range)"
            else:  # a tune file edited after its trials ran
                lies = f"lies outside its range {span}"
            notes.append(f"{s.name}'s best {key}, {cell(value, '')}, {lies}")
    return Table(
        "Tuning: each study's best trial (validation accuracy, %)",
        [
            "name",  # the study's
            "trials",
            Status.COMPLETED.value,  # trials with that status
            Status.PRUNED.value,
            "diverged/failed",
            "best_val_%",
            "best_trial",
            *keys,
        ],
        rows,
        notes,
    )


def _shown(path: Path) -> str:
    """A path as a reader runs it: relative to the working directory when under it (a
    shipped report names no machine's folders)."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def build_tune(
    folder: Path, studies: list[Any], plots: list[str], used: compare.Compute | None = None
) -> str:
    """report.md of a tune folder: the best settings per study, the lr sensitivity picture,
    what the trials took, and what to run next."""
    spec = tune_spec(folder)
    lines = [
        REPORT_HEADS[1],
        "",
        f"{sum(len(s.trials) for s in studies)} trials in {len(studies)} studies, generated "
        f"{time.strftime('%Y-%m-%d %H:%M')} by actbench {__version__}. Objective: "
        f"{spec.get('objective', 'val_acc')} on the validation split; sampler "
        f"{spec.get('sampler', 'tpe')}, pruner {spec.get('pruner', 'none')}, "
        f"{spec.get('trials')} trials per study, tuning seeds {spec.get('seeds', [1000])}.",
        "",
        *([compute_sentence(used), ""] if used else []),
        render([tune_table(studies, tune_space(folder))], "markdown"),
    ]
    if "lr_sensitivity.png" in plots:
        lines += [f"![{CAPTIONS['lr_sensitivity.png']}](lr_sensitivity.png)", ""]
    if (folder / TUNED).is_file():
        lines += ["The fair comparison trains each study's best settings over fresh seeds:",
                  "", "```", f"actbench sweep -c {_shown(folder / TUNED)}", "```", ""]  # fmt: skip
    lines += ["## The tune file", "", "```yaml", yaml.safe_dump(spec, sort_keys=False).rstrip(),
              "```", ""]  # fmt: skip
    return "\n".join(lines)
