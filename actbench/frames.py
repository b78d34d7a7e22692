"""Runs as pandas DataFrames, for notebooks: read through the run schema (damaged runs are
skipped with a warning), one row per run, per run and epoch, or per slope."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from actbench.config import flatten
from actbench.rundir import (
    IDENTITY,
    METRIC_FIELDS,
    PARAM_FIELDS,
    SLOPE_FIELDS,
    VAL_FIELDS,
    Run,
    collect,
)

if TYPE_CHECKING:
    import pandas as pd

Paths = str | os.PathLike[str]
KEYS = IDENTITY  # columns that say which run a row belongs to


def runs(*paths: Paths) -> list[Run]:
    """The runs under paths (runs, or folders of runs), warning once per damaged one."""
    from pathlib import Path

    found, problems = collect([Path(p) for p in paths])
    for problem in problems:
        warnings.warn(problem, stacklevel=3)
    return found


def _keys(run: Run) -> dict[str, Any]:
    return run.summary.identity


def load_runs(*paths: Paths) -> pd.DataFrame:
    """One row per run: name, path, status, fingerprint, every summary field (nested ones
    as dicts) and every config field as a `config.`-prefixed dotted column."""
    import pandas as pd

    rows = [
        {
            **_keys(r),
            "path": str(r.path),
            **{k: v for k, v in r.summary.model_dump(mode="json").items() if k not in KEYS},
            **{f"config.{k}": v for k, v in flatten(r.config).items()},
        }
        for r in runs(*paths)
    ]
    return pd.DataFrame(rows)


def load_metrics(*paths: Paths) -> pd.DataFrame:
    """Long format: one row per run and epoch (metrics.csv), with the run's keys."""
    import pandas as pd

    rows = [{**_keys(r), **m} for r in runs(*paths) for m in r.metrics]
    return pd.DataFrame(rows, columns=[*KEYS, *METRIC_FIELDS, *VAL_FIELDS])


def load_slopes(*paths: Paths) -> pd.DataFrame:
    """One row per run, epoch, site and channel (a_values.csv; epoch 0 = initial a)."""
    import pandas as pd

    # a_values.csv calls the site "layer" (its schema-1 name); the frame says "site"
    columns = ["site" if f == "layer" else f for f in SLOPE_FIELDS]
    rows = [
        {**_keys(r), **dict(zip(columns, (s[f] for f in SLOPE_FIELDS), strict=True))}
        for r in runs(*paths)
        for s in r.slopes
    ]
    return pd.DataFrame(rows, columns=[*KEYS, *columns])


def load_act_params(*paths: Paths) -> pd.DataFrame:
    """One row per run, epoch, site, parameter, channel and index (act_params.csv; epoch 0 =
    initial values; channel is NaN for a parameter shared by the site's channels)."""
    import pandas as pd

    rows = [
        {**_keys(r), **{k: p.get(k) for k in PARAM_FIELDS}} for r in runs(*paths) for p in r.params
    ]
    return pd.DataFrame(rows, columns=[*KEYS, *PARAM_FIELDS])
