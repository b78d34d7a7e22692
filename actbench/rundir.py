"""Run directories: the only code that writes files. Every whole-file write is atomic
(temp file + rename) and CSV rows are appended as complete lines, so even SIGKILL leaves a
readable run."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actbench.errors import ActbenchError

CONFIG = "config.yaml"
SUMMARY = "summary.json"
METRICS = "metrics.csv"
SLOPES = "a_values.csv"
MODEL = "model.pt"
CHECKPOINT = "checkpoint.pt"
FEATURES = "features2d.npz"
LOCK = ".lock"
METRIC_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")
SLOPE_FIELDS = ("epoch", "layer", "channel", "a")
STALE_AFTER = 15 * 60  # seconds without a heartbeat before a 'running' run counts as dead
HOST = socket.gethostname()


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a whole file so readers see the old or the new content, never half of it."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _append_rows(path: Path, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if not path.exists():
        writer.writerow(header)
    writer.writerows(rows)
    with open(path, "a", encoding="utf-8") as fh:  # one write call: complete lines only
        fh.write(buf.getvalue())
        fh.flush()
        os.fsync(fh.fileno())


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a run CSV, ignoring a last line cut short by a kill."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_name(label: str, net: str, seed: int, prefix: str | None = None) -> str:
    """<prefix->label-net-s<seed>-<YYYYmmdd-HHMMSS>."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return "-".join(p for p in (prefix, label, net, f"s{seed}", stamp) if p)


class RunLocked(ActbenchError):
    """Another live process is training this run."""


@dataclass
class RunDir:
    path: Path

    # ------------------------------------------------------------------ creation, locking

    @classmethod
    def create(cls, parent: Path, name: str, unique: bool = True) -> RunDir:
        """Make parent/name; with unique, add -2, -3, ... rather than reuse a folder."""
        parent.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            path = parent / (name if n == 1 else f"{name}-{n}")
            try:
                path.mkdir()  # atomic: two processes can never get the same folder
                return cls(path)
            except FileExistsError:
                if not unique:
                    raise ActbenchError(
                        f"run directory {path} already exists; choose another --name, or "
                        f"continue it with --resume {path}"
                    ) from None
        raise ActbenchError(f"too many runs named {name} in {parent}")

    def lock(self) -> None:
        """Claim the run for this process; a lock left by a dead process is taken over."""
        lock = self.path / LOCK
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self._lock_owner()
                if owner and owner.get("host") == HOST and not pid_alive(owner["pid"]):
                    lock.unlink(missing_ok=True)
                    continue
                raise RunLocked(
                    f"{self.path} is being trained by process {owner.get('pid') if owner else '?'}"
                    f" on {owner.get('host') if owner else '?'}; wait for it or stop it first"
                ) from None
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": HOST}, fh)
            return
        raise RunLocked(f"could not lock {self.path}")

    def _lock_owner(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / LOCK).read_text())
        except (OSError, ValueError):
            return None

    def unlock(self) -> None:
        owner = self._lock_owner()
        if owner and owner.get("pid") == os.getpid():
            (self.path / LOCK).unlink(missing_ok=True)

    def locked_by_other(self) -> bool:
        """True while another live process holds this run's lock."""
        owner = self._lock_owner()
        if not owner or owner.get("pid") == os.getpid():
            return False
        return owner.get("host") != HOST or pid_alive(owner["pid"])

    # ------------------------------------------------------------------ writing

    def write_config(self, text: str) -> None:
        atomic_write(self.path / CONFIG, text)

    def write_summary(self, summary: dict[str, Any]) -> None:
        summary = {**summary, "heartbeat": time.time(), "pid": os.getpid(), "host": HOST}
        atomic_write(self.path / SUMMARY, json.dumps(summary, indent=2, allow_nan=True) + "\n")

    def append_metrics(self, row: dict[str, Any]) -> None:
        _append_rows(self.path / METRICS, METRIC_FIELDS, [tuple(row[k] for k in METRIC_FIELDS)])

    def append_slopes(self, epoch: int, slopes: list[tuple[str, int, float]]) -> None:
        if slopes:
            _append_rows(self.path / SLOPES, SLOPE_FIELDS, [(epoch, *s) for s in slopes])

    def truncate(self, epoch: int) -> None:
        """Drop metric and slope rows after `epoch` (a resumed run redoes them)."""
        for name, header in ((METRICS, METRIC_FIELDS), (SLOPES, SLOPE_FIELDS)):
            path = self.path / name
            if not path.exists():
                continue
            keep = [r for r in read_csv(path) if int(r["epoch"]) <= epoch]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(keep)
            atomic_write(path, buf.getvalue())

    def save_torch(self, name: str, obj: Any) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(obj, buf)
        atomic_write(self.path / name, buf.getvalue())

    def save_features(self, arrays: dict[str, Any]) -> None:
        import numpy as np

        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(self.path / FEATURES, buf.getvalue())

    # ------------------------------------------------------------------ reading

    def load_torch(self, name: str) -> Any:
        import torch

        path = self.path / name
        if not path.is_file():
            raise ActbenchError(f"{self.path}: no {name} to load")
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # torch raises many types for a damaged file
            raise ActbenchError(f"{path}: cannot be read ({exc})") from None

    def metrics(self) -> list[dict[str, float]]:
        return [{k: float(v) for k, v in r.items()} for r in read_csv(self.path / METRICS)]

    def slopes(self) -> list[dict[str, Any]]:
        return [
            {
                "epoch": int(r["epoch"]),
                "layer": r["layer"],
                "channel": int(r["channel"]),
                "a": float(r["a"]),
            }
            for r in read_csv(self.path / SLOPES)
        ]


@dataclass
class Run:
    """A run directory as compare, plot and evaluate see it."""

    path: Path
    summary: dict[str, Any]
    config: dict[str, Any]

    @property
    def dir(self) -> RunDir:
        return RunDir(self.path)


def _status(summary: dict[str, Any]) -> str:
    """The stored status, with a 'running' run whose process is gone shown as incomplete."""
    status = summary.get("status", "unknown")
    if status != "running":
        return status
    stale = time.time() - float(summary.get("heartbeat", 0)) > STALE_AFTER
    dead = summary.get("host") == HOST and not pid_alive(int(summary.get("pid", 0)))
    return "incomplete" if stale or dead else "running"


def read_run(path: Path) -> Run:
    """Load summary.json and config.yaml; ActbenchError if `path` is not a readable run."""
    import yaml

    if not (path / SUMMARY).is_file():
        raise ActbenchError(f"{path}: not a run directory (no {SUMMARY})")
    try:
        summary = json.loads((path / SUMMARY).read_text(encoding="utf-8"))
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # C parser: compare reads many
        config = yaml.load((path / CONFIG).read_text(encoding="utf-8"), Loader=loader)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ActbenchError(f"{path}: corrupt run ({type(exc).__name__}: {exc})") from None
    if not isinstance(summary, dict) or not isinstance(config, dict):
        raise ActbenchError(f"{path}: corrupt run (summary or config is not a mapping)")
    summary["status"] = _status(summary)
    return Run(path, summary, config)


def is_run(path: Path) -> bool:
    return (path / SUMMARY).is_file() or (path / CONFIG).is_file()


def collect(paths: list[Path]) -> tuple[list[Run], list[str]]:
    """Runs under the given paths (a run, or a folder of runs or of sweep folders), and a
    warning for every path or run that could not be used."""
    runs, warnings = [], []
    seen: set[Path] = set()

    def visit(path: Path, depth: int, explicit: bool) -> None:
        real = path.resolve()
        if real in seen:
            return
        if is_run(path):
            seen.add(real)
            try:
                runs.append(read_run(path))
            except ActbenchError as exc:
                warnings.append(f"skipping {exc}")
            return
        if path.is_dir() and depth < 3:
            children = sorted(p for p in path.iterdir() if p.is_dir())
            before = len(runs) + len(warnings)
            for child in children:
                visit(child, depth + 1, explicit=False)
            if explicit and len(runs) + len(warnings) == before:
                warnings.append(f"skipping {path}: no run directories inside")
        elif explicit:
            what = "does not exist" if not path.exists() else "is not a run directory"
            warnings.append(f"skipping {path}: {what}")

    for p in paths:
        visit(Path(p), 0, explicit=True)
    return runs, warnings
