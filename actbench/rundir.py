"""The run directory: its files, the summary.json schema, and the only code that reads or
writes runs. Every whole-file write is atomic (temp file + rename) and CSV rows are appended
as complete lines, so even SIGKILL leaves a readable run. Every reader goes through
`load_run`, which validates and returns a typed `Run`, or raises `DamagedRun`."""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import pickle
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actbench import config as cfgmod
from actbench import fastpath
from actbench.errors import ActbenchError

# ---------------------------------------------------------------------------- the format

# 1: actbench 0.1.0 (no schema_version, no fingerprint); 2: fingerprint; 3: act_params.csv
# and act_shapes.csv (every learned activation parameter; read from a_values.csv before);
# 4: every summary.json field declared below (an undeclared one is damage); 5: machine and
# sessions (where and when it trained); 6: status stalled stored (a dead network ended early,
# train.stop_dead) with dead_site
SCHEMA_VERSION = 6


class Determinism(str, Enum):
    """How two runs of the same config on the same machine compare, file by file."""

    BYTES = "bytes"  # byte for byte
    CONTENT = "content"  # the same values, except timings and who ran it
    NONE = "none"  # binary state (weights, checkpoints): equal tensors, not equal bytes


@dataclass(frozen=True)
class RunFile:
    name: str
    determinism: Determinism
    what: str


# Every file a run folder holds (its lock lives beside it, see RunDir.lock_path). Whatever
# moves runs between processes (the Ray backend) sends exactly these.
FILES: tuple[RunFile, ...] = (
    RunFile("config.yaml", Determinism.BYTES, "the resolved config"),
    RunFile("summary.json", Determinism.CONTENT, "what the run is, how it ended, its numbers"),
    RunFile("metrics.csv", Determinism.CONTENT, "one row per epoch (seconds: wall clock)"),
    RunFile("a_values.csv", Determinism.BYTES, "PReLU's a per site and channel, per epoch"),
    RunFile("act_params.csv", Determinism.BYTES, "every learned activation parameter, per epoch"),
    RunFile("act_shapes.csv", Determinism.BYTES, "the learned functions on a grid, per epoch"),
    RunFile("features2d.npz", Determinism.CONTENT, "LeNet++'s 2-D test-set features"),
    RunFile("model.pt", Determinism.NONE, "final weights"),
    RunFile("checkpoint.pt", Determinism.NONE, "everything a resume needs"),
)
CONFIG, SUMMARY, METRICS, SLOPES, PARAMS, SHAPES, FEATURES, MODEL, CHECKPOINT = (
    f.name for f in FILES
)
SWEEP_TABLES = {"csv": "summary.csv", "markdown": "summary.md"}  # a sweep folder's tables
# A tune folder holds its trials' run folders and these:
TUNE_SPEC = "tune.yaml"  # the tune file as run (marks the folder as a tune)
STUDY_DB = "study.db"  # the Optuna studies (SQLite), unless --storage names another
TUNED = "tuned.yaml"  # the sweep of each study's best settings over fresh seeds
ATTEMPTS = ".attempts"  # failed attempts a sweep redid, moved aside: <sweep>/.attempts/<name>.N
METRIC_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "lr")
VAL_FIELDS = ("val_loss", "val_acc")  # metrics.csv of a run with a validation split: after lr
SLOPE_FIELDS = ("epoch", "layer", "channel", "a")
# channel: empty for a parameter shared by the site's channels; index: within one channel's
# slice (0 for a scalar such as PReLU's a)
PARAM_FIELDS = ("epoch", "site", "param", "channel", "index", "value")
# y over the site's channels at x: lowest, median (lower middle), highest
SHAPE_FIELDS = ("epoch", "site", "x", "y_min", "y_median", "y_max")
SHAPE_GRID = (-4.0, 4.0, 33)  # x from, to, points (step 0.25): where act_shapes.csv is taken
MAX_INDEX = 2**20  # channels or elements of one site's parameter: far above any real net's


def _epoch(text: str) -> int:
    value = float(text)
    if not (value.is_integer() and 0 <= value <= cfgmod.MAX_EPOCHS):
        raise ValueError(f"epoch {text} is not an epoch number")
    return int(value)


def _index(text: str) -> int:
    value = int(text)
    if not 0 <= value < MAX_INDEX:
        raise ValueError(f"index {text} outside 0..{MAX_INDEX - 1}")
    return value


def _fraction(text: str) -> float:
    """An accuracy 0..1; NaN where there was none (the epoch a run diverged)."""
    value = float(text)
    if not (math.isnan(value) or 0 <= value <= 1):
        raise ValueError(f"{text} is not a fraction 0..1")
    return value


def _loss(text: str) -> float:
    """Cross-entropy, nats: >= 0, or inf / NaN (a diverged epoch)."""
    value = float(text)
    if value < 0:
        raise ValueError(f"loss {text} is negative")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{text} is not a duration in seconds")
    return value


def _lr(text: str) -> float:
    """A learning rate >= 0; NaN in runs older than the column."""
    value = float(text)
    if not (math.isnan(value) or (math.isfinite(value) and value >= 0)):
        raise ValueError(f"lr {text} is not a learning rate")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


# How each CSV column is read and checked (learned values may be NaN after a divergence).
COLUMN_TYPES: dict[str, Callable[[str], Any]] = {
    "epoch": _epoch,
    "train_loss": _loss,
    "train_acc": _fraction,
    "test_loss": _loss,
    "test_acc": _fraction,
    "seconds": _seconds,
    "lr": _lr,
    "val_loss": _loss,
    "val_acc": _fraction,
    "layer": str,
    "site": str,
    "param": str,
    "channel": _index,
    "index": _index,
    "a": float,
    "value": float,
    "x": _finite,
    "y_min": float,
    "y_median": float,
    "y_max": float,
}


def _types(fields: tuple[str, ...]) -> dict[str, Callable[[str], Any]]:
    return {f: COLUMN_TYPES[f] for f in fields}


class Status(str, Enum):
    """A run's status. summary.json stores the first seven; readers derive the others."""

    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    PRUNED = "pruned"  # a tuning trial stopped early by its pruner: evidence, never compared
    # stored: its network died (train.stop_dead); derived: completed near chance (CHANCE)
    STALLED = "stalled"
    INCOMPLETE = "incomplete"  # derived: 'running' but its process is gone

    def __str__(self) -> str:
        return self.value


STORED = (
    Status.RUNNING,
    Status.COMPLETED,
    Status.DIVERGED,
    Status.INTERRUPTED,
    Status.FAILED,
    Status.PRUNED,
    Status.STALLED,
)
FINISHED = (Status.COMPLETED, Status.STALLED, Status.DIVERGED, Status.PRUNED)  # nothing to train
COUNTED = (Status.COMPLETED, Status.STALLED)  # runs whose numbers the tables count
STALE_AFTER = 15 * 60  # seconds without a heartbeat before a 'running' run counts as dead
MAX_FILE = 50_000_000  # bytes; no text file of a run comes near this
HOST = socket.gethostname()
MACHINE = fastpath.describe_machine()
NODE_ENV = "ACTBENCH_NODE"  # set in a Ray task: summary.json records the node that trained it
# What runs written before the schema had a version were trained with where today's defaults
# differ (runs of actbench 0.1.0 ran in fp32 NCHW unless their config said otherwise).
LEGACY_DEFAULTS = {"train": {"precision": "fp32", "channels_last": False}}
LEGACY_TEST_IMAGES = 10_000  # MNIST and Fashion-MNIST test sets
# A completed run whose final test accuracy is below chance (1 in 10 classes) plus this margin
# learned nothing: "stalled" (e.g. LeNet++'s 2-D ReLU bottleneck stuck at ~10-11%). It still
# counts in the numbers: it is what that activation gave.
CHANCE = 0.1
STALL_MARGIN = 0.05


class SiteStats(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    mean: float
    min: float
    max: float
    n: int


Fraction = float | None  # 0..1


class Calibration(BaseModel):
    """How a run's execution path was chosen under `auto`: each accuracy-neutral candidate
    timed on this machine (calibrate.py), the fastest kept."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    settings: list[str]  # the config keys it decided, e.g. ["train.channels_last"]
    chosen: str  # the candidate kept, e.g. "fp32 channels_last"
    step_ms: dict[str, Annotated[float, Field(gt=0)]]  # candidate -> median ms per step
    batch_size: int = Field(ge=1)
    threads: int = Field(ge=1)  # CPU threads it was timed with
    seconds: float = Field(ge=0)  # the calibration's own wall time
    measured: str  # when it was timed (UTC, ISO 8601); earlier than the run when cached
    host: str | None = None  # where it was timed (a sweep on Ray: the precision, on the driver)


class Summary(BaseModel):
    """summary.json: what the run is, how it ended, its headline numbers. Built by
    `Summary.of` (identity from the config) and written only by RunDir.write_summary."""

    # numbers must be finite (JSON has no NaN); a field not declared here is damage
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    schema_version: int = 1  # absent: written by actbench 0.1.0
    name: str
    status: Status = Field(strict=False)  # stored as its value
    fingerprint: str | None = None  # None: written before run identity existed
    dataset: str
    net: str
    activation: str  # the label, e.g. prelu-channel
    activation_name: str | None = None  # the registry name or import path
    activation_source: str | None = None  # a user activation: its class and package
    seed: int = Field(ge=0, le=cfgmod.MAX_SEED)
    epochs: int = 0  # completed
    epochs_planned: int | None = None
    final_test_acc: Fraction = Field(None, ge=0, le=1)
    final_test_loss: float | None = None
    final_train_loss: float | None = None
    best_test_acc: Fraction = Field(None, ge=0, le=1)  # optimistic: selected on the test set
    best_epoch: int | None = None
    test_images: int | None = Field(LEGACY_TEST_IMAGES, ge=1)  # None: test set not read
    # validation split (data.val_size > 0): the epoch is selected on it, never on the test set
    val_images: int | None = Field(None, ge=1)
    val_seed: int | None = None  # the seed of the permutation that drew it
    final_val_acc: Fraction = Field(None, ge=0, le=1)
    final_val_loss: float | None = None
    best_val_acc: Fraction = Field(None, ge=0, le=1)
    best_val_epoch: int | None = None
    selected_test_acc: Fraction = Field(None, ge=0, le=1)  # test accuracy at best_val_epoch
    # a tuning trial: its Optuna study and trial number
    study: str | None = None
    trial: int | None = None
    params: int | None = None
    train_seconds: float = 0.0
    device: str | None = None
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    # the execution path's calibration(s) under `auto`; empty: set by the config or by rule
    calibration: list[Calibration] = Field(default_factory=list)
    torch_version: str | None = None
    actbench_version: str | None = None
    slopes: dict[str, SiteStats] = Field(default_factory=dict)  # PReLU's a, by site
    # every learned activation parameter: site -> parameter (name[index] for vectors) -> stats
    # over the site's channels (n = 1 when shared)
    act_params: dict[str, dict[str, SiteStats]] = Field(default_factory=dict)
    dead_units: dict[str, float] = Field(default_factory=dict)
    final_per_class_acc: list[float] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    diverged_epoch: int | None = None
    # stalled early: the activation site that output 0 for every unit on every training image
    # at its last two epoch ends (train.stop_dead)
    dead_site: str | None = None
    resume_from_epoch: int | None = None  # interrupted: the last checkpoint's epoch
    error: str | None = None  # failed: why
    # who and where: written by write_summary
    heartbeat: float = 0.0
    pid: int | None = None
    host: str | None = None
    node: str | None = None  # the Ray node that trained it
    machine: str | None = None  # its processor (fastpath.describe_machine); None: before 5
    # when it trained: [start, end] per invocation that trained it (unix seconds, the
    # writer's clock), end at its last summary; empty: before schema 5
    sessions: list[Annotated[tuple[float, float], Field(strict=False)]] = Field(
        default_factory=list
    )

    @classmethod
    def of(cls, name: str, cfg: cfgmod.Config, status: Status, **fields: Any) -> Summary:
        """A summary of the run `cfg` defines: identity and image counts from the config, the
        rest given."""
        fields = images_read(cfg) | fields
        return cls(
            schema_version=SCHEMA_VERSION,
            name=name,
            status=status,
            fingerprint=cfgmod.fingerprint(cfg),
            dataset=cfg.data.dataset,
            net=cfg.model.net,
            activation=cfgmod.activation_label(cfg.activation),
            activation_name=cfg.activation.name,
            seed=cfg.seed,
            epochs_planned=cfg.train.epochs,
            **fields,
        )

    @property
    def intervals(self) -> list[tuple[float, float]]:
        """When it trained; before schema 5 inferred as one interval ending at its last
        heartbeat and as long as its epochs (approximate if it was resumed); [] if unknown."""
        if self.sessions:
            return list(self.sessions)
        if self.heartbeat > 0:
            return [(self.heartbeat - self.train_seconds, self.heartbeat)]
        return []

    @property
    def identity(self) -> dict[str, Any]:
        """The fields that name a run in tables and data frames (status as its value)."""
        return {k: getattr(self, k) for k in IDENTITY} | {"status": self.status.value}

    @property
    def headline(self) -> dict[str, float | None]:
        """The run's headline accuracies, by field name (TensorBoard's hparam metrics)."""
        return {k: getattr(self, k) for k in HEADLINE}


def images_read(cfg: cfgmod.Config) -> dict[str, int | None]:
    """summary.json's test_images and val_images for the run `cfg` defines (None: not read)."""
    return {
        "test_images": (cfg.data.test_subset or cfgmod.TEST_IMAGES)
        if cfg.train.eval_test
        else None,
        "val_images": cfg.data.val_size or None,
    }


NO_IMAGES = {
    "test_images": "no test set (train.eval_test: false)",
    "val_images": "no validation split (data.val_size: 0)",
}
IDENTITY = ("name", "activation", "net", "dataset", "seed", "status", "fingerprint")
HEADLINE = ("final_test_acc", "best_test_acc")


class LegacySummary(Summary):
    """Schemas 1-3: fields of other releases were allowed (and are kept, unread)."""

    model_config = ConfigDict(extra="allow")


@dataclass
class Run:
    """A validated run directory: what compare, plot, report, evaluate and sweep see."""

    path: Path
    summary: Summary  # status resolved (running -> incomplete if dead, stalled)
    config: dict[str, Any]  # the resolved config as written (legacy runs: defaults filled in)
    cfg: cfgmod.Config
    metrics: list[dict[str, float]] = field(default_factory=list)
    slopes: list[dict[str, Any]] = field(default_factory=list)  # a_values.csv rows
    params: list[dict[str, Any]] = field(default_factory=list)  # act_params.csv rows
    shapes: list[dict[str, Any]] = field(default_factory=list)  # act_shapes.csv rows

    @property
    def status(self) -> Status:
        return self.summary.status

    @property
    def fingerprint(self) -> str:
        assert self.summary.fingerprint is not None  # load_run fills it from config.yaml
        return self.summary.fingerprint

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def completed(self) -> bool:
        """Counts in the numbers: the run trained all its epochs without diverging, or stalled
        (near chance at the end, or stopped early when its network died)."""
        return self.status in COUNTED and self.summary.final_test_acc is not None

    @property
    def dir(self) -> RunDir:
        return RunDir(self.path)

    @property
    def has_features(self) -> bool:
        return (self.path / FEATURES).is_file()

    def features(self) -> dict[str, Any]:
        """features2d.npz: pre and post (N, 2), labels (N,); ValueError if damaged."""
        return read_features(self.path / FEATURES)


class DamagedRun(ActbenchError):
    """A run directory whose files fail validation; commands skip it with a warning."""


# ---------------------------------------------------------------------------- helpers


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _refuse_special(path: Path) -> None:
    """ActbenchError if something other than a regular file is at path: a symlink, FIFO or
    device is never replaced nor written through."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ActbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise ActbenchError(f"refusing to write {path}: it is {what}; name another file")


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a whole file so readers see the old or the new content, never half of it. The
    temp file is created exclusively and never through a symlink; a symlink or special file
    at `path` is refused, never replaced."""
    raw = data.encode() if isinstance(data, str) else data
    _refuse_special(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
    try:
        try:
            fd = os.open(tmp, flags, 0o644)
        except FileExistsError:  # left by a killed process of the same pid, or planted
            if not tmp.is_symlink() and tmp.is_file():
                tmp.unlink()
            else:
                raise ActbenchError(f"refusing to write {path}: {tmp} is in the way") from None
            fd = os.open(tmp, flags, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
        raise ActbenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def _csv_text(header: tuple[str, ...] | None, rows: list[tuple[Any, ...]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _append_rows(path: Path, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Append complete lines (one write call), never through a symlink or into a special
    file; a failed write (disk full) is a one-line ActbenchError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ActbenchError(f"refusing to write {path}: not a regular file")
            fh.write(_csv_text(None if st.st_size else header, rows))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        why = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror or exc
        raise ActbenchError(f"cannot write {path}: {why}") from None


def _header(path: Path) -> tuple[str, ...] | None:
    """A CSV file's columns, or None if it does not exist or is empty."""
    if not os.path.lexists(path):
        return None
    try:
        first = read_text(path).split("\n", 1)[0]
    except (OSError, ValueError) as exc:
        raise ActbenchError(f"cannot write {path}: {exc}") from None
    return tuple(next(csv.reader([first]))) if first else None


def _check_regular(path: Path) -> None:
    """ValueError unless path is a regular file reached without following a symlink."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise ValueError("a symlink (run files are never followed elsewhere)")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")


def _read_bytes(path: Path) -> bytes:
    """A run file's bytes, refusing symlinks, FIFOs and devices (opened non-blocking and
    checked before a byte is read, so a FIFO never hangs a reader) and files larger than any
    run file should be."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("a symlink (run files are never followed elsewhere)") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > MAX_FILE:
            raise ValueError(f"{st.st_size} bytes, more than any run file should hold")
        return fh.read(MAX_FILE + 1)


def read_text(path: Path) -> str:
    """A small text file (a run file, a cache entry), read as _read_bytes does."""
    return _read_bytes(path).decode("utf-8")


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a run CSV, ignoring a last line cut short by a kill."""
    if not os.path.lexists(path):
        return []
    text = read_text(path)
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _proc_start(pid: int) -> str | None:
    """When process `pid` started, as the kernel counts it (Linux: clock ticks since boot,
    prefixed by the boot's id), or None where that cannot be read. A lock names its owner
    with it, so a reused pid (after a reboot, or the owner's exit) is not taken for it."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat_line[stat_line.rfind(")") + 2 :].split()  # after "pid (comm) "
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None  # field 22: starttime


def _owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the process a lock names still runs (another host's: assumed so)."""
    if owner.get("host") != HOST:
        return True
    pid = owner["pid"]
    if not pid_alive(pid):
        return False
    started = owner.get("started")
    return started is None or _proc_start(pid) in (None, started)


def default_name(label: str, net: str, seed: int, prefix: str | None = None) -> str:
    """<prefix->label-net-s<seed>-<YYYYmmdd-HHMMSS> ($SOURCE_DATE_EPOCH fixes the time)."""
    fixed = os.environ.get("SOURCE_DATE_EPOCH")
    when = time.gmtime(int(fixed)) if fixed and fixed.isdigit() else time.localtime()
    stamp = time.strftime("%Y%m%d-%H%M%S", when)
    return "-".join(p for p in (prefix, label, net, f"s{seed}", stamp) if p)


class RunLocked(ActbenchError):
    """Another live process is training this run."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


def refuse_link(path: Path) -> None:
    """An output folder (report, plot, export --out, and the export's folder per run) is
    never a symlink: writing through it would change files elsewhere. Its ancestors may be
    links, and so may a runs folder (where the user keeps the runs)."""
    if path.is_symlink():
        raise ActbenchError(
            f"cannot write in {path}: it is a symlink (actbench never writes through one; "
            "give the folder it points to)"
        )


# What marks a file in an output folder as actbench's own, to be regenerated in place: a
# report's first line, and the program named in a PNG's Software text chunk (matplotlib
# names itself; every figure actbench draws is matplotlib's).
REPORT_HEADS = ("# actbench report", "# actbench tuning report")
PNG_SOFTWARE = (b"Matplotlib",)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def refuse_foreign(out: Path, names: list[str]) -> None:
    """ActbenchError, before anything is written, if a file about to be written in the output
    folder `out` exists and is not one actbench writes there (a report.md of the user's, a
    photo named curves.png): such a file is never replaced."""
    for name in names:
        path = out / name
        if os.path.lexists(path) and not _ours(path):
            raise ActbenchError(
                f"--out {out}: {name} there was not written by actbench and is never "
                "replaced; choose another --out, or move that file"
            )


def _ours(path: Path) -> bool:
    try:
        _check_regular(path)
        with path.open("rb") as f:
            head = f.read(1 << 16)  # a PNG's text chunks come before its image data
    except (OSError, ValueError):
        return False
    if path.suffix == ".png":
        return any(_png_text(head, b"Software").startswith(p) for p in PNG_SOFTWARE)
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip()
    return first in REPORT_HEADS


def _png_text(data: bytes, key: bytes) -> bytes:
    """A PNG's tEXt value for `key` among the chunks before its image data (b"" if none)."""
    if not data.startswith(PNG_SIGNATURE):
        return b""
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + size]
        if kind == b"IDAT":
            break
        if kind == b"tEXt" and body.startswith(key + b"\0"):
            return body[len(key) + 1 :]
        at += 12 + size  # length, type, data, CRC
    return b""


def _mkdir(path: Path) -> None:
    """mkdir -p with one-line errors (a file in the way, no permission, ...)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ActbenchError(f"cannot create folder {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ActbenchError(f"cannot write in {path}: permission denied")


def check_can_create(path: Path) -> None:
    """One-line ActbenchError now if folder `path` could not be created later (a file in the
    way, no permission); creates nothing."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        why = "it is a file" if existing == path else f"{existing} is a file"
        raise ActbenchError(f"cannot create folder {path}: {why}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ActbenchError(f"cannot write in {existing}: permission denied")


def ensure_dir(path: Path) -> Path:
    """A writable folder at path (created if needed), or a one-line ActbenchError."""
    _mkdir(path)
    return path


def contained(parent: Path, name: str) -> Path:
    """parent/name, checked to stay inside parent (name: one safe path component)."""
    cfgmod.check_name(name)
    path = parent / name
    if path.resolve().parent != parent.resolve():
        raise ActbenchError(f"name {name!r} would leave {parent}")
    return path


# ---------------------------------------------------------------------------- writing


@dataclass
class RunDir:
    path: Path
    # set while this process trains the run (begin_training): when it started, and the
    # run's earlier intervals; write_summary then records where and when it trained
    _training: tuple[float, list[tuple[float, float]]] | None = field(
        default=None, repr=False, compare=False
    )

    def begin_training(self, earlier: list[tuple[float, float]]) -> None:
        """From now on this process trains the run: its summaries record this machine and
        the interval from now to each write, after `earlier` (the run's earlier intervals)."""
        self._training = (time.time(), list(earlier))

    @classmethod
    def create(cls, parent: Path, name: str, unique: bool = True) -> RunDir:
        """Make parent/name; with unique, add -2, -3, ... rather than reuse a folder."""
        _mkdir(parent)
        for n in range(1, 1000):
            path = contained(parent, name if n == 1 else f"{name}-{n}")
            try:
                path.mkdir()  # atomic: two processes can never get the same folder
                return cls(path)
            except FileExistsError:
                if not unique:
                    raise ActbenchError(
                        f"run directory {path} already exists; choose another --name, or "
                        f"continue it with --resume {path}"
                    ) from None
            except OSError as exc:
                raise ActbenchError(f"cannot create {path}: {exc.strerror or exc}") from None
        raise ActbenchError(f"too many runs named {name} in {parent}")

    # Locks live beside the folder (<parent>/.<name>.lock), so a sweep can claim a run before
    # its folder exists or is inspected.
    @property
    def lock_path(self) -> Path:
        return self.path.parent / f".{self.path.name}.lock"

    def lock(self) -> None:
        """Claim the run for this process; a lock left by a dead process is taken over."""
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self.lock_owner()
                if owner is None or not _owner_alive(owner):
                    self.lock_path.unlink(missing_ok=True)
                    continue
                if owner.get("pid") == os.getpid() and owner.get("host") == HOST:
                    return  # already ours
                raise RunLocked(
                    f"{self.path} is being trained by process {owner.get('pid')} on "
                    f"{owner.get('host')}; wait for it or stop it first",
                    owner.get("pid"),
                ) from None
            except OSError as exc:
                raise ActbenchError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            with os.fdopen(fd, "w") as fh:
                json.dump(
                    {"pid": os.getpid(), "host": HOST, "started": _proc_start(os.getpid())}, fh
                )
            return
        raise RunLocked(f"could not lock {self.path}")

    def lock_owner(self) -> dict[str, Any] | None:
        try:  # never through a symlink, never blocking on a FIFO
            owner = json.loads(_read_bytes(self.lock_path))
        except (OSError, ValueError):
            return None
        ok = isinstance(owner, dict) and isinstance(owner.get("pid"), int)
        return owner if ok else None

    def unlock(self) -> None:
        owner = self.lock_owner()
        if owner and owner.get("pid") == os.getpid():
            self.lock_path.unlink(missing_ok=True)

    def locked_by_other(self) -> int | None:
        """The pid of another live process holding this run's lock, else None."""
        owner = self.lock_owner()
        if not owner or (owner.get("pid") == os.getpid() and owner.get("host") == HOST):
            return None
        return owner["pid"] if _owner_alive(owner) else None

    def has_summary(self) -> bool:
        """Whether summary.json is there (anything by that name: readers validate it)."""
        return os.path.lexists(self.path / SUMMARY)

    def write_config(self, text: str) -> None:
        atomic_write(self.path / CONFIG, text)

    def write_summary(self, summary: Summary) -> None:
        """summary.json, stamped with the schema, this process and the time (the heartbeat
        readers use to tell a live run from a dead one)."""
        now = time.time()
        training: dict[str, Any] = {}
        if self._training is not None:  # a process that only marks it (a driver) keeps them
            started, earlier = self._training
            training = {"machine": MACHINE, "sessions": [*earlier, (started, now)]}
        summary = summary.model_copy(
            update={
                "schema_version": SCHEMA_VERSION,
                "heartbeat": now,
                "pid": os.getpid(),
                "host": HOST,
                # set by the Ray backend: the node that trained it
                "node": os.environ.get(NODE_ENV) or summary.node,
                **training,
            }
        )
        text = json.dumps(summary.model_dump(mode="json"), indent=2) + "\n"
        atomic_write(self.path / SUMMARY, text)

    def mark_interrupted(self) -> None:
        """A run whose process is gone mid-epoch (a Ray node or driver lost): 'interrupted',
        resumable from its last checkpoint. Leaves any other status alone."""
        path = self.path / SUMMARY
        if not path.is_file():
            return
        summary = _parse_summary(read_text(path))
        if summary.status == Status.RUNNING:
            update = {"status": Status.INTERRUPTED, "resume_from_epoch": summary.epochs}
            self.write_summary(summary.model_copy(update=update))

    def append_metrics(self, row: dict[str, Any], validation: bool = False) -> None:
        """One epoch's row, in the columns the file already has (a resumed older run keeps
        its own), else METRIC_FIELDS plus VAL_FIELDS with a validation split."""
        header = _header(self.path / METRICS) or (
            METRIC_FIELDS + VAL_FIELDS if validation else METRIC_FIELDS
        )
        _append_rows(self.path / METRICS, header, [tuple(row.get(k) for k in header)])

    def append_slopes(self, epoch: int, slopes: list[tuple[str, int, float]]) -> None:
        if slopes:
            _append_rows(self.path / SLOPES, SLOPE_FIELDS, [(epoch, *s) for s in slopes])

    def append_params(self, epoch: int, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            _append_rows(self.path / PARAMS, PARAM_FIELDS, [(epoch, *r) for r in rows])

    def append_shapes(self, epoch: int, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            _append_rows(self.path / SHAPES, SHAPE_FIELDS, [(epoch, *r) for r in rows])

    def upgrade(self, run: Run) -> None:
        """Write the files of today's schema that an older run lacks (act_params.csv and
        act_shapes.csv, from what load_run migrated), before a resume appends to them. Each
        file appears whole; act_params.csv last, as load_run reads both once it exists."""
        for name, header, rows in ((SHAPES, SHAPE_FIELDS, run.shapes),
                                   (PARAMS, PARAM_FIELDS, run.params)):  # fmt: skip
            if rows and not (self.path / name).exists():
                atomic_write(
                    self.path / name,
                    _csv_text(header, [tuple(r.get(k) for k in header) for r in rows]),
                )

    def truncate(self, epoch: int) -> None:
        """Drop per-epoch rows after `epoch` (a resumed run redoes them); each file keeps
        its own columns."""
        for name in (METRICS, SLOPES, PARAMS, SHAPES):
            path = self.path / name
            header = _header(path)
            if header is None:
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

    def load_torch(self, name: str) -> Any:
        """A checkpoint or weights file, loaded with weights_only=True: tensors and plain
        containers only, so a crafted pickle can never run code."""
        import torch

        path = self.path / name
        if not path.is_file():
            raise ActbenchError(f"{self.path}: no {name} to load")
        try:
            _check_regular(path)
        except ValueError as exc:
            raise ActbenchError(f"refusing to load {path}: {exc}") from None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ActbenchError(
                f"refusing to load {path}: it holds objects other than tensors and plain "
                f"values ({first[:120]}); only files written by actbench are loaded"
            ) from None
        except Exception as exc:  # torch raises many types for a damaged file
            raise ActbenchError(f"{path}: cannot be read ({type(exc).__name__})") from None

    def set_aside(self) -> Path:
        """Move this folder to <parent>/.attempts/<name>.N (never deleted); returns the new path."""
        attempts = ensure_dir(self.path.parent / ATTEMPTS)
        for n in range(1, 10_000):
            target = attempts / f"{self.path.name}.{n}"
            if not target.exists():
                try:
                    self.path.rename(target)
                except OSError as exc:
                    raise ActbenchError(f"cannot move {self.path} aside: {exc}") from None
                return target
        raise ActbenchError(f"too many earlier attempts of {self.path.name} in {attempts}")


# ---------------------------------------------------------------------------- reading


def _status(summary: Summary) -> Status:
    """The stored status, with a 'running' run whose process is gone shown as incomplete and
    a completed one that ended near chance as stalled."""
    final = summary.final_test_acc if summary.test_images else summary.final_val_acc
    if summary.status == Status.COMPLETED and final is not None and final < CHANCE + STALL_MARGIN:
        return Status.STALLED
    if summary.status != Status.RUNNING:
        return summary.status
    stale = time.time() - summary.heartbeat > STALE_AFTER
    dead = summary.host == HOST and not pid_alive(summary.pid or 0)
    return Status.INCOMPLETE if stale or dead else Status.RUNNING


def _parse_summary(text: str) -> Summary:
    """summary.json text -> Summary (schema 4 on: every field declared); ValueError or
    ValidationError if damaged."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    version = raw.get("schema_version", 1)
    model = Summary if isinstance(version, int) and version >= 4 else LegacySummary
    summary = model.model_validate(raw)
    if summary.status not in STORED:
        raise ValueError(f"status {summary.status.value!r} is derived, never stored")
    if summary.status == Status.STALLED and (summary.schema_version < 6 or not summary.dead_site):
        raise ValueError("status 'stalled' is stored only with its dead_site (schema 6 on)")
    return summary


def read_status(path: Path) -> Status | None:
    """The stored status of a run folder's summary.json, or None where none can be read
    (even a summary that fails validation otherwise)."""
    try:
        raw = json.loads(read_text(path / SUMMARY))
        return Status(raw["status"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _fill(base: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in defaults.items():
        if isinstance(value, dict):
            out[key] = _fill(out.get(key) if isinstance(out.get(key), dict) else {}, value)
        else:
            out.setdefault(key, value)
    return out


def _typed_rows(
    path: Path, types: dict[str, Callable[[str], Any]], required: tuple[str, ...]
) -> list[dict[str, Any]]:
    """A run CSV's rows, each cell read and checked by its column's type."""
    rows = read_csv(path)
    if rows and not set(required) <= set(rows[0]):
        raise ValueError(f"columns {list(rows[0])}; expected {', '.join(required)}")
    out = []
    for i, row in enumerate(rows, start=2):
        if None in row:
            raise ValueError(f"line {i}: more cells than columns")
        if None in row.values():
            raise ValueError(f"line {i}: fewer cells than columns")
        try:
            typed = {k: types[k](row[k]) for k in types if row.get(k) not in (None, "")}
        except ValueError as exc:
            raise ValueError(f"line {i}: {exc}") from None
        if not all(k in typed for k in required):
            raise ValueError(f"line {i}: missing values")
        out.append(typed)
    return out


def _agrees(summary: Summary, cfg: cfgmod.Config, fingerprint: str) -> None:
    """ValueError unless summary.json describes the run config.yaml defines (compare groups
    and pairs by summary fields, so they must be the config's), and a completed run has its
    numbers."""
    expected = {
        "activation": cfgmod.activation_label(cfg.activation),
        "net": cfg.model.net,
        "dataset": cfg.data.dataset,
        "seed": cfg.seed,
    }
    for key, value in expected.items():
        if getattr(summary, key) != value:
            raise ValueError(f"{key} {getattr(summary, key)!r} but config.yaml says {value!r}")
    # The statistics count correct images out of these: they must be what the config read.
    # Only a run with no accuracy to count (failed, interrupted) may state none.
    counted = summary.status in COUNTED
    for key, value in images_read(cfg).items():
        if getattr(summary, key) not in ((value,) if counted else (value, None)):
            reads = f"{value} images" if value else NO_IMAGES[key]
            raise ValueError(f"{key} {getattr(summary, key)} but config.yaml reads {reads}")
    if summary.fingerprint is not None and summary.fingerprint != fingerprint:
        raise ValueError(f"fingerprint {summary.fingerprint[:20]!r} is not config.yaml's")
    finals = (summary.final_test_acc, summary.best_test_acc)
    if not cfg.train.eval_test:
        finals = (summary.final_val_acc, summary.best_val_acc)
    if summary.status in COUNTED and None in finals:
        raise ValueError("a completed run without its final and best accuracy")
    cfgmod.check_name(summary.name, "name")


def _metrics_agree(summary: Summary, metrics: list[dict[str, float]]) -> None:
    """ValueError unless a counted run's metrics.csv is the curve its summary.json ends
    on: one row per epoch, in order, the last one's test (or validation) accuracy the
    summary's final one. Tables read the summary and plots the curve: they must not differ."""
    if summary.status not in COUNTED:
        return  # in flight, or stopped early: its rows may run one epoch ahead of the summary
    epochs = [row["epoch"] for row in metrics]
    if epochs != list(range(1, summary.epochs + 1)):
        raise ValueError(f"epochs {_span(epochs)} but summary.json says {summary.epochs} completed")
    key, final = "test_acc", summary.final_test_acc
    if summary.test_images is None:
        key, final = "val_acc", summary.final_val_acc
    last = metrics[-1].get(key) if metrics else None
    if last is not None and final is not None and not math.isnan(last) and last != final:
        raise ValueError(f"last {key} {last} but summary.json's final is {final}")


def site_stats(values: list[float]) -> dict[str, float]:
    """summary.json's numbers for one site's parameter (or slope): over its channels."""
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values),
            "n": len(values)}  # fmt: skip


def param_summary(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, dict[str, float]]]:
    """summary.json's act_params from one epoch's act_params.csv rows (site, param, channel,
    index, value): per site and parameter element (name, or name[index] for vectors)."""
    sizes: dict[tuple[str, str], int] = {}
    for site, param, _, index, _ in rows:
        sizes[site, param] = max(sizes.get((site, param), 0), index + 1)
    out: dict[str, dict[str, list[float]]] = {}
    for site, param, _, index, value in rows:
        key = param if sizes[site, param] == 1 else f"{param}[{index}]"
        out.setdefault(site, {}).setdefault(key, []).append(value)
    return {site: {k: site_stats(v) for k, v in ps.items()} for site, ps in out.items()}


def slope_summary(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, dict[str, float]]]:
    """summary.json's slopes from one epoch's a_values.csv rows (site, channel, a): per site,
    over its channels."""
    by_site: dict[str, list[float]] = {}
    for site, _, a in rows:
        by_site.setdefault(site, []).append(a)
    return {site: site_stats(v) for site, v in by_site.items()}


def _params_agree(summary: Summary, params: list[dict[str, Any]]) -> None:
    """ValueError unless a counted run's act_params.csv ends at its last epoch and gives there
    the learned parameters its summary.json states: the tables read the summary, the export
    and the plots of learned parameters the file, so they must not differ."""
    rows = [(r["site"], r["param"], r.get("channel"), r["index"], r["value"]) for r in params]
    _stats_agree(summary, [r["epoch"] for r in params], rows, param_summary, _act_params(summary))


def _slopes_agree(summary: Summary, slopes: list[dict[str, Any]]) -> None:
    """The same for PReLU's a in a_values.csv (the slope plots) and summary.json's slopes
    (the slope-pattern finding)."""
    rows = [(r["layer"], r["channel"], r["a"]) for r in slopes]
    stated = {site: {"a": v} for site, v in summary.slopes.items()}
    _stats_agree(summary, [r["epoch"] for r in slopes], rows, _as_param_a, stated)


def _as_param_a(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, dict[str, float]]]:
    return {site: {"a": v} for site, v in slope_summary(rows).items()}


def _stats_agree(
    summary: Summary,
    epochs: list[int],
    rows: list[tuple[Any, ...]],
    summarise: Callable[[list[tuple[Any, ...]]], dict[str, Any]],
    stated: dict[str, Any],
) -> None:
    if summary.status not in COUNTED:
        return  # in flight, or stopped early: its rows may run one epoch ahead
    last = summary.epochs
    if epochs and max(epochs) != last:
        raise ValueError(f"rows up to epoch {max(epochs)} but summary.json says {last} trained")
    found = summarise([r for e, r in zip(epochs, rows, strict=True) if e == last])
    said = {s: {k: _plain(v) for k, v in ps.items()} for s, ps in stated.items()}
    for site in sorted(set(said) | set(found)):
        for key in sorted(set(said.get(site, {})) | set(found.get(site, {}))):
            a, b = said.get(site, {}).get(key), found.get(site, {}).get(key)
            where = f"{site} {key} at epoch {last}"
            if a is None or b is None:
                raise ValueError(
                    f"{where}: {'none' if b is None else 'rows'} but summary.json states "
                    f"{'none' if a is None else 'it'}"
                )
            for field_, x in b.items():
                if not math.isclose(x, a[field_], rel_tol=1e-9, abs_tol=1e-12):
                    raise ValueError(f"{where}: {field_} {x!r} but summary.json says {a[field_]!r}")


def _plain(stats: SiteStats | dict[str, float]) -> dict[str, float]:
    return stats.model_dump() if isinstance(stats, SiteStats) else stats


def _act_params(summary: Summary) -> dict[str, dict[str, SiteStats]]:
    """The learned parameters a summary states; schema 2 stated PReLU's a as slopes only."""
    if not summary.act_params and summary.slopes:
        return {site: {"a": v} for site, v in summary.slopes.items()}
    return summary.act_params


def _span(epochs: list[float]) -> str:
    return f"{epochs[0]:g}..{epochs[-1]:g} ({len(epochs)} rows)" if epochs else "none"


def load_run(path: Path) -> Run:
    """Read and validate a run directory; DamagedRun names the file and the reason."""
    where = path / SUMMARY
    if path.is_symlink():
        raise DamagedRun(f"{path}: a symlink; run folders are never followed elsewhere")
    if not os.path.lexists(where):
        raise ActbenchError(f"{path}: not a run directory (no {SUMMARY})")
    try:
        summary = _parse_summary(read_text(where))
        where = path / CONFIG
        data = cfgmod.load_yaml_text(read_text(where))
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        if summary.schema_version < 2:
            data = _fill(data, LEGACY_DEFAULTS)
        cfg = cfgmod.from_mapping(data, reading=True)
        if cfg.train.precision == "auto" or cfg.train.channels_last == "auto":
            raise ValueError("train.precision / train.channels_last not resolved")
        fingerprint = cfgmod.fingerprint(cfg)
        where = path / SUMMARY
        _agrees(summary, cfg, fingerprint)
        where = path / METRICS
        metrics = _typed_rows(where, _types(METRIC_FIELDS + VAL_FIELDS), METRIC_FIELDS[:6])
        _metrics_agree(summary, metrics)
        where = path / SLOPES
        slopes = _typed_rows(where, _types(SLOPE_FIELDS), SLOPE_FIELDS)
        _slopes_agree(summary, slopes)
        where = path / PARAMS
        if where.exists() or summary.schema_version >= 3:
            params = _typed_rows(where, _types(PARAM_FIELDS), PARAM_FIELDS[:3])
            for row in params:
                if "index" not in row or "value" not in row:
                    raise ValueError(f"a row without index or value: {row}")
            where = path / SHAPES
            shapes = _typed_rows(where, _types(SHAPE_FIELDS), SHAPE_FIELDS)
            where = path / PARAMS
            _params_agree(summary, params)
        else:  # schema 2: PReLU's a was the only learned parameter recorded
            params, shapes = _migrate_slopes(slopes, cfg.activation.per_channel)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise DamagedRun(f"{where}: damaged ({loc}: {err['msg']})") from None
    except (OSError, ValueError, ArithmeticError, csv.Error, yaml.YAMLError, ActbenchError) as exc:
        if isinstance(exc, yaml.YAMLError):
            exc = ValueError("invalid YAML")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DamagedRun(f"{where}: damaged ({str(reason)[:200]})") from None
    except RecursionError:
        raise DamagedRun(f"{where}: damaged (nested too deeply)") from None
    update: dict[str, Any] = {"status": _status(summary), "fingerprint": fingerprint}
    update["act_params"] = _act_params(summary)
    summary = summary.model_copy(update=update)
    return Run(path, summary, cfgmod.to_dict(cfg), cfg, metrics, slopes, params, shapes)


def read_features(path: Path) -> dict[str, Any]:
    """features2d.npz: pre and post (N, 2) floats, labels (N,); ValueError if the file is
    damaged, not a regular file, or declares more data than a test set holds."""
    import zipfile

    import numpy as np

    try:
        _check_regular(path)
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():  # what each array says it holds, before loading it
                with zf.open(info) as member:
                    fmt = np.lib.format
                    major, _ = fmt.read_magic(member)
                    read_header = (
                        fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(member)
                declared = math.prod(shape) * dtype.itemsize
                if info.file_size > MAX_FILE or declared > info.file_size:
                    raise ValueError(f"{info.filename} declares more data than it holds")
        with np.load(path, allow_pickle=False) as npz:
            feats = {k: npz[k] for k in ("pre", "post", "labels")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(str(exc)) from None
    n = len(feats["labels"])
    if not (feats["pre"].shape == feats["post"].shape == (n, 2) and feats["labels"].ndim == 1):
        raise ValueError("unexpected shapes")
    numeric = (np.issubdtype(feats[k].dtype, np.number) for k in ("pre", "post", "labels"))
    if not all(numeric) or np.iscomplexobj(feats["pre"]) or np.iscomplexobj(feats["post"]):
        raise ValueError("arrays that are not real numbers")
    if not (np.isfinite(feats["pre"]).all() and np.isfinite(feats["post"]).all()):
        raise ValueError("values that are not finite")
    return feats


def read_files(path: Path) -> dict[str, bytes]:
    """Every declared file the run folder holds, by name (what travels between machines)."""
    return {f.name: _read_bytes(path / f.name) for f in FILES if (path / f.name).is_file()}


def _migrate_slopes(
    slopes: list[dict[str, Any]], per_channel: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """act_params and act_shapes rows of a schema-2 PReLU run, from its a_values.csv."""
    import numpy as np

    params = [
        {
            "epoch": r["epoch"],
            "site": r["layer"],
            "param": "a",
            **({"channel": r["channel"]} if per_channel else {}),
            "index": 0,
            "value": r["a"],
        }
        for r in slopes
    ]
    by_site: dict[tuple[int, str], list[float]] = {}
    for r in slopes:
        by_site.setdefault((r["epoch"], r["layer"]), []).append(r["a"])
    lo, hi, n = SHAPE_GRID
    shapes = []
    for (epoch, site), a in by_site.items():
        for x in np.linspace(lo, hi, n).tolist():
            ys = sorted(x if x >= 0 else ai * x for ai in a)
            row = (ys[0], ys[(len(ys) - 1) // 2], ys[-1])
            shapes.append(
                {"epoch": epoch, "site": site, "x": x}
                | dict(zip(SHAPE_FIELDS[3:], row, strict=True))
            )
    return params, shapes


def is_run(path: Path) -> bool:
    """Whether path holds a run's files (valid or not: the loader judges them)."""
    return os.path.lexists(path / SUMMARY) or os.path.lexists(path / CONFIG)


def collect(paths: list[Path]) -> tuple[list[Run], list[str]]:
    """Runs under the given paths (a run, or a folder of runs or of sweep folders), and one
    warning line for every path or run that could not be used."""
    runs, warnings = [], []
    seen: set[Path] = set()

    def visit(path: Path, depth: int, explicit: bool) -> None:
        try:
            path.name.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8: nothing actbench wrote
            warnings.append(f"skipping {str(path)!a}: its name is not valid UTF-8")
            return
        try:
            real = path.resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # a symlink loop
            warnings.append(f"skipping {path}: {exc}")
            return
        if real in seen:
            return
        if not explicit and path.is_symlink() and not is_run(path):
            # a linked folder found inside one given: it could pull in runs from anywhere
            warnings.append(f"skipping {path}: a link to a folder (give its target instead)")
            return
        if is_run(path):
            seen.add(real)
            try:
                runs.append(load_run(path))
            except ActbenchError as exc:
                warnings.append(f"skipping {exc}")
            return
        if path.is_dir() and depth < 3:
            seen.add(real)  # given twice (compare a a): read once, and no false warning
            try:
                children = sorted(
                    p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")
                )
            except OSError as exc:
                warnings.append(f"skipping {path}: {exc.strerror or exc}")
                return
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


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
