"""Export runs to other tools' formats: TensorBoard event files, one folder per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actbench.config import flatten
from actbench.errors import ActbenchError
from actbench.rundir import Run, check_can_create, ensure_dir, refuse_link

INSTALL_TENSORBOARD = "pip install 'actbench[tensorboard]'  (or: pip install tensorboard)"
METRIC_TAGS = {  # metrics.csv column -> TensorBoard tag
    "train_loss": "train/loss",
    "train_acc": "train/accuracy",
    "test_loss": "test/loss",
    "test_acc": "test/accuracy",
    "lr": "train/lr",
}


def _writer_class() -> Any:
    try:
        import tensorboard  # noqa: F401  (SummaryWriter needs it)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ActbenchError(f"TensorBoard is not installed; {INSTALL_TENSORBOARD}") from None
    return SummaryWriter


EVENTS = "events.out.tfevents.*"  # the event files SummaryWriter names (and nothing else)


def _hparam(value: Any) -> Any:
    """TensorBoard's HParams take numbers, strings and booleans only."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def _scalar(run: Run, row: dict[str, Any]) -> bool:
    """Whether the row's parameter holds one value per channel (or per site)."""
    return row["param"] in run.summary.act_params.get(row["site"], {})


def tensorboard(runs: list[Run], out: Path) -> list[Path]:
    """Write out/<run name>/ event files per run: metrics per epoch, learned activation
    parameters (mean over channels as scalars, act_params/<site>/<param>, and a histogram per
    epoch for channel-wise ones), and the config as hparams with the final metrics, so the
    HParams view compares runs. Returns the folders."""
    import math

    import numpy as np

    writer_class = _writer_class()
    refuse_link(out)
    ensure_dir(out)
    names: list[str] = []
    used: set[str] = set()
    for run in runs:
        # the folder's own name (resolved: a run given as "." or ".." has none), never a path
        # from a file's contents
        base = run.path.resolve().name
        name = base
        for n in range(2, 10_000):
            if name not in used:
                break
            name = f"{base}-{n}"  # runs of the same name from different folders
        used.add(name)
        names.append(name)
        refuse_link(out / name)  # every folder checked before any is written
        check_can_create(out / name)
    folders = []
    for run, name in zip(runs, names, strict=True):
        folder = ensure_dir(out / name)
        # An export replaces the previous one: TensorBoard would show both event files.
        for old in folder.glob(EVENTS):
            if old.is_file() and not old.is_symlink():
                old.unlink()
        writer = writer_class(log_dir=str(folder))
        try:
            for m in run.metrics:
                for column, tag in METRIC_TAGS.items():
                    if column in m and math.isfinite(m[column]):
                        writer.add_scalar(tag, m[column], global_step=m["epoch"])
            by_epoch: dict[tuple[int, str, str], list[float]] = {}
            for p in run.params:  # channel-wise: one value per channel
                key = (
                    p["param"]
                    if p["index"] == 0 and _scalar(run, p)
                    else f"{p['param']}[{p['index']}]"
                )
                by_epoch.setdefault((p["epoch"], p["site"], key), []).append(p["value"])
            for (epoch, site, key), values in sorted(by_epoch.items()):
                tag = f"{site}/{key}"
                writer.add_scalar(f"act_params/{tag}", float(np.mean(values)), global_step=epoch)
                if len(values) > 1:
                    writer.add_histogram(f"act_params_channels/{tag}", np.array(values), epoch)
            hparams = {k: _hparam(v) for k, v in flatten(run.config).items() if v is not None}
            hparams.update(activation_label=run.summary.activation, status=run.status.value)
            final = {f"hparam/{k}": v for k, v in run.summary.headline.items() if v is not None}
            writer.add_hparams(hparams, final, run_name=".")
        finally:
            writer.close()
        folders.append(folder)
    return folders
