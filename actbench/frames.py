"""Runs as pandas DataFrames, for notebooks: read through the run schema (damaged runs are
skipped with a warning), one row per run, per run and epoch, or per slope."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from actbench.config import flatten
from actbench.rundir import Run, collect

if TYPE_CHECKING:
    import pandas as pd

Paths = str | os.PathLike[str]
KEYS = ("name", "activation", "net", "dataset", "seed", "status", "fingerprint")  # per row


def runs(*paths: Paths) -> list[Run]:
    """The runs under paths (runs, or folders of runs), warning once per damaged one."""
    from pathlib import Path

    found, problems = collect([Path(p) for p in paths])
    for problem in problems:
        warnings.warn(problem, stacklevel=3)
    return found


def _keys(run: Run) -> dict[str, Any]:
    return {k: run.summary[k] for k in KEYS}


def load_runs(*paths: Paths) -> pd.DataFrame:
    """One row per run: name, path, status, fingerprint, every summary field (nested ones
    as dicts) and every config field as a `config.`-prefixed dotted column."""
    import pandas as pd

    rows = [
        {
            **_keys(r),
            "path": str(r.path),
            **{k: v for k, v in r.summary.items() if k not in KEYS},
            **{f"config.{k}": v for k, v in flatten(r.config).items()},
        }
        for r in runs(*paths)
    ]
    return pd.DataFrame(rows)


def load_metrics(*paths: Paths) -> pd.DataFrame:
    """Long format: one row per run and epoch (metrics.csv), with the run's keys."""
    import pandas as pd

    rows = [{**_keys(r), **m} for r in runs(*paths) for m in r.metrics]
    return pd.DataFrame(rows, columns=[*KEYS, "epoch", "train_loss", "train_acc", "test_loss",
                                       "test_acc", "seconds", "lr"])  # fmt: skip


def load_slopes(*paths: Paths) -> pd.DataFrame:
    """One row per run, epoch, site and channel (a_values.csv; epoch 0 = initial a)."""
    import pandas as pd

    rows = [
        {**_keys(r), "epoch": s["epoch"], "site": s["layer"], "channel": s["channel"], "a": s["a"]}
        for r in runs(*paths)
        for s in r.slopes
    ]
    return pd.DataFrame(rows, columns=[*KEYS, "epoch", "site", "channel", "a"])


def load_act_params(*paths: Paths) -> pd.DataFrame:
    """One row per run, epoch, site, parameter, channel and index (act_params.csv; epoch 0 =
    initial values; channel is NaN for a parameter shared by the site's channels)."""
    import pandas as pd

    columns = ["epoch", "site", "param", "channel", "index", "value"]
    rows = [{**_keys(r), **{k: p.get(k) for k in columns}} for r in runs(*paths) for p in r.params]
    return pd.DataFrame(rows, columns=[*KEYS, *columns])
