"""Pictures of runs: curves, final accuracies, learned slopes, activations, LeNet++ features.
Each function returns the figure and the numbers it drew (read from the run files)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from actbench.compare import Comparison, Grouping, GroupRow, grouping, per_net
from actbench.rundir import CHANCE, FEATURES, STALL_MARGIN, Run, Status

STALLED_PCT = 100 * (CHANCE + STALL_MARGIN)  # below it a run learned nothing (rundir)
plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "figure.dpi": 110})


@dataclass
class Plot:
    figure: Figure
    data: dict[str, Any]  # what was drawn, for checking against the run files


def _groups(g: Grouping) -> dict[str, list[Run]]:
    """compare's groups, each with the runs that count (completed), best mean final accuracy
    first; empty groups dropped."""
    groups = {label: grp.counted for label, grp in g.groups.items() if grp.counted}
    mean = {k: statistics.fmean(r.summary.final_test_acc for r in v) for k, v in groups.items()}
    return dict(sorted(groups.items(), key=lambda kv: -mean[kv[0]]))


def _prelu_groups(g: Grouping) -> dict[str, list[Run]]:
    out = {label: [r for r in runs if r.slopes] for label, runs in _groups(g).items()}
    return per_net({label: runs for label, runs in out.items() if runs})


def _per_epoch(runs: list[Run]) -> list[Run]:
    """The runs a per-epoch plot draws: one that stopped early because its network died
    (dead_site) lacks the later epochs, and averaging it into the epochs it has would bend
    its group's line where it ends; it is left out (the legend says so) unless every run of
    the group stopped."""
    full = [r for r in runs if r.summary.dead_site is None]
    return full or runs


def _legend(label: str, runs: list[Run], drawn: list[Run] | None = None) -> str:
    """'label (n=5)', plus how many of the runs stalled (they count, but say so) and how
    many of those a per-epoch plot leaves out (`drawn`: the runs it draws)."""
    stalled = sum(r.status == Status.STALLED for r in runs)
    seeds = len({r.summary.seed for r in runs})
    left = len(runs) - len(drawn) if drawn is not None else 0
    extra = f", {stalled} stalled" if stalled else ""
    extra += f", {left} stopped dead, not drawn" if left else ""
    return f"{label} (n={seeds}{extra})"


def _forest_label(row: GroupRow) -> str:
    counts = ((Status.STALLED, row.stalled), (Status.DIVERGED, row.diverged))
    extra = "".join(f", {count} {what}" for what, count in counts if count)
    return f"{row.group} (n={row.n}{extra})"


FOCUS_GAP = 20.0  # points: values this far below every trained run's are drawn off scale


def _focus(ax: Any, trained: list[float], stalled: dict[str, float]) -> None:
    """Keep the y axis on the trained runs' range when stalled runs sit far below it: the
    differences that matter stay visible, and each stalled group is marked at the bottom
    edge with its value (a marked break)."""
    if not trained or not stalled or min(stalled.values()) > min(trained) - FOCUS_GAP:
        return
    low, high = min(trained), max(trained)
    pad = max(0.5, 0.1 * (high - low))
    ax.set_ylim(low - 2 * pad, min(100.0, high + pad))
    for i, (label, value) in enumerate(stalled.items()):
        ax.annotate(f"▼ {label}: {value:.2f}% (stalled, off scale)", xy=(0.01, 0.02 + 0.06 * i),
                    xycoords="axes fraction", fontsize=8, color="tab:red")  # fmt: skip


def curves(g: Grouping, metric: str = "accuracy") -> Plot:
    """Test accuracy (or error) and training loss per epoch; band: ±1 std over seeds."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    data: dict[str, Any] = {}
    for label, members in _groups(g).items():
        drawn = _per_epoch(members)
        series = [r.metrics for r in drawn]
        epochs = min(len(s) for s in series)
        if epochs == 0:
            continue
        acc = np.array([[m["test_acc"] for m in s[:epochs]] for s in series]) * 100
        if metric == "error":
            acc = 100 - acc
        loss = np.array([[m["train_loss"] for m in s[:epochs]] for s in series])
        x = np.arange(1, epochs + 1)
        for ax, values in ((ax_acc, acc), (ax_loss, loss)):
            mean, std = values.mean(0), values.std(0, ddof=1) if len(values) > 1 else 0 * x
            (line,) = ax.plot(x, mean, marker="o", ms=3, label=_legend(label, members, drawn))
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        data[label] = {"test": acc.mean(0).tolist(), "train_loss": loss.mean(0).tolist()}
    if metric == "accuracy":
        stalled = {k: v["test"][-1] for k, v in data.items() if v["test"][-1] < STALLED_PCT}
        kept = [x for k, v in data.items() if k not in stalled for x in v["test"]]
        _focus(ax_acc, kept, stalled)
    ax_acc.set(
        title=f"Test {metric} per epoch (mean ± 1 std over seeds)",
        xlabel="epoch",
        ylabel=f"test {metric} (%)",
    )
    ax_loss.set(title="Training loss per epoch", xlabel="epoch", ylabel="cross-entropy (nats)")
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.tight_layout()
    return Plot(fig, data)


def final_accuracy(g: Grouping) -> Plot:
    """Final test accuracy per group, one dot per run, with the group mean; a faint line
    joins each seed's runs across groups (runs of one seed start from the same weights)."""
    groups = _groups(g)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups)), 4.5))
    data = {}
    seeds = sorted({r.summary.seed for runs in groups.values() for r in runs})
    offset = {
        s: (k - (len(seeds) - 1) / 2) * 0.24 / max(1, len(seeds) - 1) for k, s in enumerate(seeds)
    }
    by_seed: dict[int, list[tuple[float, float]]] = {}
    for i, (label, members) in enumerate(groups.items()):
        accs = [100 * r.summary.final_test_acc for r in members]
        xs = [i + offset[r.summary.seed] for r in members]
        stalled = [r.status == Status.STALLED for r in members]
        dots = ax.scatter(xs, accs, s=28, alpha=0.8, zorder=3)
        if any(stalled):  # stalled runs: a cross over the dot
            ax.scatter([x for x, st in zip(xs, stalled, strict=True) if st],
                       [y for y, st in zip(accs, stalled, strict=True) if st],
                       marker="x", s=60, color=dots.get_facecolor()[0], zorder=4)  # fmt: skip
        ax.hlines(statistics.fmean(accs), i - 0.3, i + 0.3, color="k", lw=2, zorder=4)
        for r, x, y in zip(members, xs, accs, strict=True):
            by_seed.setdefault(r.summary.seed, []).append((x, y))
        data[label] = accs
    if len(seeds) > 1:
        for points in by_seed.values():
            ax.plot(*zip(*points, strict=True), color="0.6", lw=0.6, alpha=0.6, zorder=2)
    stalled_groups = {k: statistics.fmean(v) for k, v in data.items()
                      if all(a < STALLED_PCT for a in v)}  # fmt: skip
    kept = [a for k, v in data.items() if k not in stalled_groups for a in v if a >= STALLED_PCT]
    _focus(ax, kept, stalled_groups)
    ax.set_xticks(range(len(groups)), list(groups), rotation=20, ha="right")
    ax.set(
        title="Final test accuracy, one dot per seed (bar: mean; x: stalled; lines join a seed)",
        xlabel=" / ".join(g.keys),
        ylabel="test accuracy (%)",
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return Plot(fig, data)


def _final_slopes(run: Run) -> dict[str, list[float]]:
    """Per site, the channel slopes at the last epoch in a_values.csv."""
    rows = run.slopes
    if not rows:
        return {}
    last = max(r["epoch"] for r in rows)
    out: dict[str, list[float]] = {}
    for r in rows:
        if r["epoch"] == last:
            out.setdefault(r["layer"], []).append(r["a"])
    return out


def slopes(g: Grouping) -> Plot:
    """Learned a per site at the end of training: channel-shared vs channel-wise side by side
    (channel-wise: mean over channels); bars: mean over seeds, dots: every seed (a bimodal
    site shows as two clusters, not as an error bar past zero)."""
    groups = _prelu_groups(g)
    prelu = [r for runs in groups.values() for r in runs]
    nets = list(dict.fromkeys(r.summary.net for r in prelu))
    fig, axes = plt.subplots(
        1, max(1, len(nets)), figsize=(6.5 * max(1, len(nets)), 4.5), squeeze=False
    )
    data: dict[str, Any] = {}
    for ax, net in zip(axes[0], nets, strict=False):
        members = [r for r in prelu if r.summary.net == net]
        variants = [lab for lab, runs in groups.items() if runs[0].summary.net == net]
        sites = list(dict.fromkeys(s for r in members for s in _final_slopes(r)))
        width = 0.8 / len(variants)
        for j, variant in enumerate(variants):
            per_seed = [_final_slopes(r) for r in groups[variant]]
            means = [[statistics.fmean(f[s]) for f in per_seed] for s in sites]
            mean = [statistics.fmean(m) for m in means]
            std = [statistics.stdev(m) if len(m) > 1 else 0.0 for m in means]
            x = np.arange(len(sites)) + (j - (len(variants) - 1) / 2) * width
            bars = ax.bar(x, mean, width, alpha=0.55, label=f"{variant} (n={len(per_seed)})")
            for xi, seeds in zip(x, means, strict=True):
                ax.scatter([xi] * len(seeds), seeds, s=14, color=bars.patches[0].get_facecolor(),
                           edgecolors="k", linewidths=0.5, alpha=1.0, zorder=3)  # fmt: skip
            data[f"{net}/{variant}"] = dict(zip(sites, mean, strict=True))
            data[f"{net}/{variant}/seeds"] = dict(zip(sites, means, strict=True))
            data[f"{net}/{variant}/std"] = dict(zip(sites, std, strict=True))
        ax.set_xticks(range(len(sites)), sites)
        ax.axhline(0, color="k", lw=0.8)
        ax.set(
            title=f"Learned PReLU slopes at the last epoch ({net}): bar = mean, dot = seed",
            xlabel="activation site",
            ylabel="a (slope for x < 0)",
        )
        ax.legend(fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return Plot(fig, data)


def slope_trajectories(g: Grouping) -> Plot:
    """a over epochs per site (mean over channels and seeds), epoch 0 = initial value."""
    groups = _prelu_groups(g)
    variants = list(groups)
    fig, axes = plt.subplots(
        1, max(1, len(variants)), figsize=(6 * max(1, len(variants)), 4.5), squeeze=False
    )
    data: dict[str, Any] = {}
    for ax, variant in zip(axes[0], variants, strict=False):
        members = _per_epoch(groups[variant])
        table: dict[str, dict[int, list[float]]] = {}
        for run in members:
            per_run: dict[tuple[str, int], list[float]] = {}
            for row in run.slopes:
                per_run.setdefault((row["layer"], row["epoch"]), []).append(row["a"])
            for (site, epoch), values in per_run.items():
                table.setdefault(site, {}).setdefault(epoch, []).append(statistics.fmean(values))
        for site, by_epoch in table.items():
            epochs = sorted(by_epoch)
            ys = [statistics.fmean(by_epoch[e]) for e in epochs]
            ax.plot(epochs, ys, marker="o", ms=3, label=site)
            data[f"{variant}/{site}"] = dict(zip(epochs, ys, strict=True))
        ax.set(
            title=f"Slope trajectories: {variant} (n={len(members)})",
            xlabel="epoch",
            ylabel="a (mean over channels and seeds)",
        )
        ax.legend(fontsize=9, ncol=2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return Plot(fig, data)


def _channel_wise(g: Grouping) -> dict[str, list[Run]]:
    out = {
        label: [r for r in runs if any(len(v) > 1 for v in _final_slopes(r).values())]
        for label, runs in _prelu_groups(g).items()
    }
    return {label: runs for label, runs in out.items() if runs}


def slope_histograms(g: Grouping) -> Plot:
    """Distribution of the per-channel a in each site, channel-wise runs (seeds pooled)."""
    pooled: dict[str, list[float]] = {}
    for label, runs in _channel_wise(g).items():
        for run in runs:
            for site, values in _final_slopes(run).items():
                pooled.setdefault(f"{label}: {site}", []).extend(values)
    n = max(1, len(pooled))
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.2 * rows), squeeze=False)
    for ax, (site, values) in zip(axes.flat, pooled.items(), strict=False):
        ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="tab:purple", alpha=0.8)
        ax.axvline(statistics.fmean(values), color="k", ls="--", lw=1, label="mean")
        ax.set(title=f"{site} ({len(values)} slopes)", xlabel="a (slope for x < 0)",
               ylabel="channels, all seeds")  # fmt: skip
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(pooled) :]:
        ax.axis("off")
    fig.suptitle("Channel-wise PReLU: learned a per channel at the last epoch (seeds pooled)")
    fig.tight_layout()
    return Plot(fig, {k: sorted(v) for k, v in pooled.items()})


def activation_functions(g: Grouping) -> Plot:
    """The activation functions of the groups on x in [-4, 4]; PReLU drawn once per site with
    that site's learned mean slope from the first PReLU run."""
    import torch

    from actbench import activations
    from actbench.config import is_builtin

    x = torch.linspace(-4, 4, 401)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    data: dict[str, Any] = {}
    seen: set[str] = set()
    for runs in _groups(g).values():
        run = runs[0]
        label = run.summary.activation
        if run.cfg.activation.name == "prelu" or label in seen:
            continue
        seen.add(label)
        if not is_builtin(run.cfg.activation.name):
            # User code is never imported to draw: its recorded function at the last epoch,
            # first site (learned_shapes.png has every site).
            curve = _shape_at(run, None)
            if curve:
                site, xs, ys = next(iter(curve.values()))
                ax.plot(xs, ys, lw=1.8, label=f"{label} ({site}, learned)")
                data[label] = ys
            continue
        module = activations.create(run.cfg.activation, 1).eval()  # RReLU: mean slope
        with torch.no_grad():
            y = module(x)
        ax.plot(x, y, lw=1.8, label=label)
        data[label] = y.tolist()
    prelu = [r for runs in _prelu_groups(g).values() for r in runs]
    if prelu:
        chosen = prelu[0]
        for site, values in _final_slopes(chosen).items():
            a = statistics.fmean(values)
            ax.plot(
                x, torch.where(x > 0, x, a * x), ls="--", lw=1.2, label=f"prelu {site}: a={a:.3f}"
            )
            data[f"prelu/{site}"] = a
        ax.set_title(
            f"Activation functions (PReLU slopes learned by {chosen.path.name})", fontsize=10
        )
    else:
        ax.set_title("Activation functions")
    if not data:  # PReLU runs without recorded slopes: nothing to draw
        plt.close(fig)
        return None
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(0, color="k", lw=0.6)
    ax.set(xlabel="x (pre-activation)", ylabel="f(x)", ylim=(-2.5, 4.2))
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return Plot(fig, data)


def _shape_at(run: Run, epoch: int | None) -> dict[str, tuple[str, list[float], list[float]]]:
    """Per site: (site, x, median y) recorded at `epoch` (None: the last recorded)."""
    if not run.shapes:
        return {}
    epoch = max(r["epoch"] for r in run.shapes) if epoch is None else epoch
    out: dict[str, tuple[str, list[float], list[float]]] = {}
    for r in run.shapes:
        if r["epoch"] == epoch:
            _, xs, ys = out.setdefault(r["site"], (r["site"], [], []))
            xs.append(r["x"])
            ys.append(r["y_median"])
    return out


def _shape_groups(g: Grouping) -> dict[str, list[Run]]:
    out = {label: [r for r in _per_epoch(runs) if r.shapes] for label, runs in _groups(g).items()}
    return per_net({label: runs for label, runs in out.items() if runs})


def learned_shapes(g: Grouping) -> Plot:
    """Each site's learned function on [-4, 4] for every group whose activation has learned
    parameters: at initialisation (epoch 0), after epoch 1 and after the last epoch; line:
    mean over seeds of the median over channels; band: lowest to highest over channels and
    seeds at the last epoch."""
    groups = _shape_groups(g)
    sites = {label: list(dict.fromkeys(r["site"] for r in runs[0].shapes))
             for label, runs in groups.items()}  # fmt: skip
    cols = max(len(v) for v in sites.values())
    fig, axes = plt.subplots(len(groups), cols, figsize=(2.6 * cols, 2.4 * len(groups) + 0.6),
                             squeeze=False, sharex=True, sharey=True)  # fmt: skip
    data: dict[str, Any] = {}
    for row, (label, runs) in enumerate(groups.items()):
        last = min(max(r["epoch"] for r in run.shapes) for run in runs)
        epochs = list(dict.fromkeys((0, 1, last)))
        data[label] = {}
        for col, site in enumerate(sites[label]):
            ax = axes[row][col]
            drawn: dict[str, Any] = {}
            for epoch, style in zip(epochs, (":", "--", "-"), strict=False):
                rows = [[r for r in run.shapes if r["epoch"] == epoch and r["site"] == site]
                        for run in runs]  # fmt: skip
                rows = [rs for rs in rows if rs]
                if not rows:
                    continue
                xs = [r["x"] for r in rows[0]]
                ys = np.mean([[r["y_median"] for r in rs] for rs in rows], axis=0)
                ax.plot(xs, ys, ls=style, lw=1.5 if epoch == last else 1.0,
                        color="C0" if epoch == last else "0.4", label=f"epoch {epoch}")  # fmt: skip
                if epoch == last:
                    low = np.min([[r["y_min"] for r in rs] for rs in rows], axis=0)
                    high = np.max([[r["y_max"] for r in rs] for rs in rows], axis=0)
                    ax.fill_between(xs, low, high, color="C0", alpha=0.2, lw=0)
                drawn[f"epoch {epoch}"] = ys.tolist()
            data[label][site] = drawn
            ax.axhline(0, color="k", lw=0.5)
            ax.axvline(0, color="k", lw=0.5)
            ax.grid(alpha=0.3)
            ax.set_title(f"{label}: {site}" if col == 0 else site, fontsize=9)
            if row == len(groups) - 1:
                ax.set_xlabel("x", fontsize=8)
        for col in range(len(sites[label]), cols):
            axes[row][col].axis("off")
        axes[row][0].set_ylabel("f(x) " + _legend(label, runs).replace(label + " ", ""), fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(
        "Learned activation functions per site (line: mean over seeds of the median over "
        "channels; band at the last epoch: lowest to highest over every channel of every seed, "
        "so over seeds where the parameter is shared)",
        fontsize=10,
    )
    fig.tight_layout()
    return Plot(fig, data)


def features2d(g: Grouping, points: int = 5000, skipped: list[str] | None = None) -> Plot | None:
    """LeNet++ 2-D bottleneck features of the test set, coloured by class: one column per
    group (its first run with a readable features file), after (top) and before (bottom)
    the activation. `skipped` gains a line for each damaged features file passed over."""
    with_feats: dict[str, tuple[Run, dict[str, Any]]] = {}
    for label, runs in _groups(g).items():
        for run in runs:
            if label not in with_feats and run.has_features:
                try:
                    with_feats[label] = (run, run.features())
                except ValueError as exc:  # damaged: try the group's next run
                    if skipped is not None:
                        skipped.append(f"skipping {run.path / FEATURES}: damaged ({exc})")
    if not with_feats:
        return None
    cols = len(with_feats)
    fig, axes = plt.subplots(
        2, cols, figsize=(4.2 * cols, 8.2), squeeze=False, layout="constrained"
    )
    data: dict[str, Any] = {}
    for j, (label, (run, feats)) in enumerate(with_feats.items()):
        idx = np.random.default_rng(0).permutation(len(feats["labels"]))[:points]
        for i, key in enumerate(("post", "pre")):
            ax = axes[i, j]
            pts = feats[key][idx]
            sc = ax.scatter(
                pts[:, 0],
                pts[:, 1],
                c=feats["labels"][idx],
                cmap="tab10",
                s=2,
                alpha=0.6,
                vmin=-0.5,
                vmax=9.5,
            )
            where = "after" if key == "post" else "before"
            ax.set(title=f"{label} (seed {run.summary.seed}): {where} activation",
                   xlabel="feature 1", ylabel="feature 2")  # fmt: skip
        data[label] = {"run": run.path.name, "n": len(idx)}
    fig.colorbar(sc, ax=axes, ticks=range(10), label="digit class", shrink=0.6)
    fig.suptitle("LeNet++ 2-D features of the test images")
    return Plot(fig, data)


def forest(table: list[GroupRow], baseline: str) -> Plot:
    """Difference of each group's final accuracy to the baseline with its 95% interval
    (compare's numbers: its grouped rows), zero marked."""
    rows = [r for r in table if r.diff_vs_baseline is not None]
    rows.sort(key=lambda r: r.diff_vs_baseline or 0.0)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.45 * max(1, len(rows))))
    for y, r in enumerate(rows):
        lo, hi = r.diff_ci95_low, r.diff_ci95_high
        color = {"better": "tab:green", "worse": "tab:red"}.get(r.verdict or "", "0.35")
        ax.plot([lo, hi], [y, y], color=color, lw=2.5, solid_capstyle="butt")
        ax.plot(r.diff_vs_baseline, y, "o", color=color, ms=7)
    ax.axvline(0, color="k", lw=1, ls="--")
    for verdict, color in (("better (Holm p < 0.05)", "tab:green"),
                           ("worse (Holm p < 0.05)", "tab:red"),
                           ("not distinguishable / no test", "0.35")):  # fmt: skip
        ax.plot([], [], "o-", color=color, label=verdict)
    ax.legend(fontsize=8, loc="best")
    ax.set_yticks(range(len(rows)), [_forest_label(r) for r in rows])
    ax.set(
        title=f"Difference to {baseline} in final test accuracy (95% interval; stalled "
        "baselines are compared by Fisher's test, not drawn)",
        xlabel=f"points of test accuracy vs {baseline} (%)",
        ylim=(-0.7, len(rows) - 0.3),
    )
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return Plot(
        fig, {r.group: (r.diff_vs_baseline, r.diff_ci95_low, r.diff_ci95_high) for r in rows}
    )


PLOTS: dict[str, Callable[[Grouping], Plot | None]] = {
    "curves.png": curves,
    "final_acc.png": final_accuracy,
    "slopes.png": slopes,
    "slope_trajectories.png": slope_trajectories,
    "slope_hist.png": slope_histograms,
    "activations.png": activation_functions,
    "learned_shapes.png": learned_shapes,
    "features2d.png": features2d,
}


def needs(name: str, g: Grouping) -> bool:
    """Whether the groups' counted runs hold what this plot draws."""
    if not _groups(g):
        return False
    if name in ("slopes.png", "slope_trajectories.png"):
        return bool(_prelu_groups(g))
    if name == "slope_hist.png":
        return bool(_channel_wise(g))
    if name == "learned_shapes.png":
        return bool(_shape_groups(g))
    if name == "features2d.png":
        return any(r.has_features for runs in _groups(g).values() for r in runs)
    return True


def make_all(runs: list[Run], c: Comparison | None = None) -> tuple[dict[str, Plot], list[str]]:
    """Every plot the runs have data for, by file name, over compare's groups; with a
    comparison against a baseline, the forest plot of every group's difference to it first.
    Also a line for each damaged plot file passed over (the run itself still counts)."""
    g = c.grouping if c is not None else grouping(runs)
    out = {}
    skipped: list[str] = []
    if c is not None and c.baseline and any(r.diff_vs_baseline is not None for r in c.rows):
        out["forest.png"] = forest(c.rows, c.baseline)
    if c is not None and c.baseline:
        drawn = gap(c)
        if drawn is not None:
            out["gap.png"] = drawn
    for name, fn in PLOTS.items():
        if needs(name, g):
            plot = features2d(g, skipped=skipped) if fn is features2d else fn(g)
            if plot is not None:
                out[name] = plot
    return out, skipped


def png_bytes(plot: Plot) -> bytes:
    import io

    buf = io.BytesIO()
    plot.figure.savefig(buf, format="png", bbox_inches="tight")
    plt.close(plot.figure)
    return buf.getvalue()


SENSITIVITY_RANGE = 15.0  # points of accuracy below the best trial the y axis shows


def lr_sensitivity(studies: list[Any], objective: str = "validation accuracy") -> Plot | None:
    """Validation accuracy against the learning rate, per study (activation): every trial a
    dot, pruned trials an x where they were stopped, the chosen trial circled."""
    drawn = [s for s in studies if any("optim.lr" in t.params for t in s.trials)]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    data: dict[str, Any] = {}
    for i, study in enumerate(drawn):
        color = f"C{i % 10}"
        done = [t for t in study.trials if t.value is not None and t.status != Status.PRUNED]
        pruned = [t for t in study.trials if t.value is not None and t.status == Status.PRUNED]
        xs, ys = [t.params["optim.lr"] for t in done], [100 * t.value for t in done]
        ax.scatter(xs, ys, color=color, s=22, label=f"{study.name} ({len(study.trials)} trials)")
        if pruned:
            ax.scatter([t.params["optim.lr"] for t in pruned], [100 * t.value for t in pruned],
                       color=color, marker="x", s=22, alpha=0.6)  # fmt: skip
        if study.best is not None:
            ax.scatter([study.best.params["optim.lr"]], [100 * study.best.value], s=160,
                       facecolors="none", edgecolors=color, linewidths=1.8)  # fmt: skip
        chosen = study.best.params["optim.lr"] if study.best else None
        data[study.name] = {"lr": xs, "acc": ys, "chosen": chosen}
    ax.scatter([], [], color="0.4", marker="x", label="pruned (where it was stopped)")
    ax.scatter([], [], s=160, facecolors="none", edgecolors="0.4", label="chosen trial")
    ax.set_xscale("log")
    every = [100 * t.value for s in drawn for t in s.trials if t.value is not None]
    chosen = [100 * s.best.value for s in drawn if s.best is not None]
    top = max(every, default=100.0)
    # zoomed on the best trials, but never past a study's chosen one: each circle is drawn
    floor = max(min(every, default=0.0), min([top - SENSITIVITY_RANGE, *chosen]))
    bottom = floor - max(0.5, 0.04 * (top - floor))  # room for a circle's radius
    hidden = sum(v < bottom for v in every)
    ax.set_ylim(bottom, top + max(0.5, 0.04 * (top - floor)))
    title = "Sensitivity to the learning rate: every tuning trial"
    if hidden:
        title += f"\n({hidden} trials below {bottom:.1f}%, off the axis)"
    ax.set(xlabel="learning rate (optim.lr, log scale)", ylabel=f"{objective} (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return Plot(fig, data)


def _per_seed_metrics(runs: list[Run]) -> dict[int, list[dict[int, float]]]:
    """seed -> each of its runs' test accuracy (%) by epoch (repeats of a seed averaged by
    the caller, as compare does)."""
    out: dict[int, list[dict[int, float]]] = {}
    for r in runs:
        out.setdefault(r.summary.seed, []).append(
            {int(m["epoch"]): 100 * m["test_acc"] for m in r.metrics}
        )
    return out


def gap(c: Comparison) -> Plot | None:
    """Each group's paired difference to the baseline per epoch (mean over matched seeds,
    band: its 95% t interval, cut to the -100..100 points a difference of accuracies can
    take): whether an advantage is speed or final quality. Runs stopped dead are not drawn
    (as in the other per-epoch plots) and the legend says how many."""
    from actbench import stats
    from actbench.compare import baseline_of

    fig, ax = plt.subplots(figsize=(8, 4.8))
    data: dict[str, Any] = {}
    drawn = {label: _per_epoch(grp.counted) for label, grp in c.grouping.groups.items()}
    left = {label: len(grp.counted) - len(drawn[label]) for label, grp in c.grouping.groups.items()}
    by_seed = {
        label: {
            seed: {e: statistics.fmean(m.get(e, math.nan) for m in ms) for e in ms[0]}
            for seed, ms in _per_seed_metrics(runs).items()
        }
        for label, runs in drawn.items()
    }
    shown = [(r, baseline_of(c, r.group)) for r in c.rows if r.n]
    for i, (row, base) in enumerate((r, b) for r, b in shown if b and b != r.group):
        seeds = sorted(set(by_seed[row.group]) & set(by_seed[base]))
        epochs = sorted(set.intersection(*(set(by_seed[g][s]) for g in (row.group, base)
                                           for s in seeds))) if seeds else []  # fmt: skip
        means, lows, highs = [], [], []
        for e in epochs:
            d = stats.describe([by_seed[row.group][s][e] - by_seed[base][s][e] for s in seeds])
            means.append(d.mean)
            low, high = (d.mean, d.mean) if d.ci_low is None else (d.ci_low, d.ci_high)
            lows.append(low if math.isnan(low) else max(-100.0, low))  # NaN: no band drawn
            highs.append(high if math.isnan(high) else min(100.0, high))
        if not epochs:
            continue
        color = f"C{i % 10}"
        gone = "".join(f"; {g}: {left[g]} stopped dead, not drawn" for g in (row.group, base)
                       if left[g])  # fmt: skip
        label = f"{row.group} - {base} (n={len(seeds)}{gone})"
        ax.plot(epochs, means, marker="o", ms=3, color=color, label=label)
        ax.fill_between(epochs, lows, highs, color=color, alpha=0.15)
        data[row.group] = {"epochs": epochs, "mean": means, "low": lows, "high": highs}
    if not data:
        plt.close(fig)
        return None
    ax.axhline(0, color="k", lw=1, ls="--")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(
        xlabel="epoch",
        ylabel=f"test accuracy minus the baseline's ({c.baseline}), points",
        title="Paired difference to the baseline per epoch (band: 95% t interval over seeds)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return Plot(fig, data)
