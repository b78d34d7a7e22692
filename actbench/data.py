"""MNIST / Fashion-MNIST as normalised tensors held in memory (on the GPU when there is one)."""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from actbench.config import DataConfig, default_data_root
from actbench.errors import ActbenchError
from actbench.registry import DATASETS, IMAGE_SIDE

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX headers: ubyte 3-D / 1-D
TRAIN_PREFIX, TEST_PREFIX = "train-", "t10k-"  # how the training and test sets' files start
FILES = {  # name -> (magic, count)
    "train-images-idx3-ubyte": (IMAGE_MAGIC, 60_000),
    "train-labels-idx1-ubyte": (LABEL_MAGIC, 60_000),
    "t10k-images-idx3-ubyte": (IMAGE_MAGIC, 10_000),
    "t10k-labels-idx1-ubyte": (LABEL_MAGIC, 10_000),
}
SIDE = IMAGE_SIDE  # image height and width in pixels


@dataclass
class Split:
    x: torch.Tensor  # (N, 1, 28, 28) float32, normalised
    y: torch.Tensor  # (N,) int64 class labels


def resolve_root(cfg: DataConfig) -> Path:
    """The data root in use: data.root, else $ACTBENCH_DATA, else ./data."""
    return Path(cfg.root) if cfg.root else default_data_root()


@functools.lru_cache(maxsize=16)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_files(dataset: str, root: Path, test: bool = True) -> None:
    """Raise ActbenchError naming the first missing, unreadable, truncated or corrupted raw
    file (the test set's only with `test`)."""
    try:
        _check_files(dataset, root, test)
    except OSError as exc:
        raise ActbenchError(
            f"cannot read data file {exc.filename}: {exc.strerror or exc}; check its permissions"
        ) from None


def _check_files(dataset: str, root: Path, test: bool) -> None:
    spec = DATASETS[dataset]
    raw = root / spec.folder / "raw"
    files = {n: v for n, v in FILES.items() if test or n.startswith(TRAIN_PREFIX)}
    missing = [name for name in files if not (raw / name).is_file()]
    if missing:
        raise ActbenchError(
            f"{dataset} not found: {raw} lacks {', '.join(missing)}. Put the uncompressed IDX "
            f"files there, point data.root, --data-dir or $ACTBENCH_DATA at the folder holding "
            f"{spec.folder}/raw, or set data.download=true on a machine with internet"
        )
    for name, (magic, _) in files.items():
        path = raw / name
        dims = _dims(name)
        expected = 4 + 4 * len(dims) + math.prod(dims)
        with path.open("rb") as fh:
            header = fh.read(4 + 4 * len(dims))
        got = tuple(int.from_bytes(header[i : i + 4], "big") for i in range(0, len(header), 4))
        stat = path.stat()
        if got != (magic, *dims) or stat.st_size != expected:
            raise ActbenchError(
                f"corrupted data file {path}: expected an IDX file of {expected} bytes with "
                f"header {(magic, *dims)}, found {stat.st_size} bytes with header {got}; "
                f"replace it with the original"
            )
        known = spec.sha256.get(name)
        if known and _sha256(path, stat.st_size, stat.st_mtime_ns) != known:
            raise ActbenchError(
                f"corrupted data file {path}: its SHA-256 does not match the original's; "
                f"replace it with the original"
            )


def _dataset_class(dataset: str) -> type:
    from torchvision import datasets  # slow import: only when data is really loaded

    return getattr(datasets, DATASETS[dataset].torchvision)


def _download(dataset: str, root: Path) -> None:
    cls = _dataset_class(dataset)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network errors come in many types; all mean the same here
        first = " ".join(str(exc).split())[:200]  # torchvision's message spans lines
        raise ActbenchError(f"downloading {dataset} into {root} failed: {first}") from None


@dataclass
class Splits:
    train: Split
    val: Split | None  # data.val_size > 0
    test: Split | None  # None: the test set was not read (train.eval_test: false)
    val_seed: int | None  # the seed that drew the validation split


def _dims(name: str) -> tuple[int, ...]:
    """A raw file's dimensions: (N, 28, 28) images or (N,) labels."""
    magic, count = FILES[name]
    return (count, SIDE, SIDE) if magic == IMAGE_MAGIC else (count,)


def _read(dataset: str, root: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 28, 28) uint8, labels (N,) uint8) of one set's raw IDX files. check_files
    passed them (header, size, SHA-256), so the data is the bytes after the header. Read here
    rather than by torchvision's reader: importing torchvision costs every run process about
    2 s (measured: torch 2.8 s, torch + torchvision 5.1 s)."""
    raw = root / DATASETS[dataset].folder / "raw"
    out = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        dims = _dims(prefix + kind)
        data = bytearray((raw / (prefix + kind)).read_bytes())
        out.append(torch.frombuffer(data, dtype=torch.uint8, offset=4 + 4 * len(dims)).view(dims))
    return out[0], out[1]


def val_indices(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, training) indices into n training images: `size` of them drawn by a CPU
    permutation seeded with `seed` (the same on every machine), the rest in their order."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:size].sort().values, order[size:].sort().values


def _normalise(
    images: torch.Tensor, labels: torch.Tensor, dataset: str, device: torch.device
) -> Split:
    mean, std = DATASETS[dataset].mean, DATASETS[dataset].std
    # In place: one float copy instead of three full-size temporaries (peak RSS).
    x = images.float().div_(255.0).sub_(mean).div_(std).unsqueeze(1)
    return Split(x.to(device), labels.long().to(device))


def load(cfg: DataConfig, device: torch.device, seed: int, test: bool = True) -> Splits:
    """Training (after the validation split and train_subset), validation and test (the
    first test_subset) splits, normalised once and moved to `device`; without `test` the test
    files are never opened."""
    root = resolve_root(cfg)
    if cfg.download:
        _download(cfg.dataset, root)
    check_files(cfg.dataset, root, test=test)
    images, labels = _read(cfg.dataset, root, TRAIN_PREFIX)
    val, val_seed = None, None
    if cfg.val_size:
        val_seed = seed if cfg.val_seed is None else cfg.val_seed
        held, kept = val_indices(len(labels), cfg.val_size, val_seed)
        val = _normalise(images[held], labels[held], cfg.dataset, device)
        images, labels = images[kept], labels[kept]
    if cfg.train_subset is not None:
        images, labels = images[: cfg.train_subset], labels[: cfg.train_subset]
    train = _normalise(images, labels, cfg.dataset, device)
    test_split = None
    if test:
        images, labels = _read(cfg.dataset, root, TEST_PREFIX)
        if cfg.test_subset is not None:
            images, labels = images[: cfg.test_subset], labels[: cfg.test_subset]
        test_split = _normalise(images, labels, cfg.dataset, device)
    return Splits(train, val, test_split, val_seed)


def random_shift(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of x (N, C, H, W) moved by its own (dy, dx), each uniform in -shift..shift
    pixels, with the edge pixels repeated into the gap. torchvision's RandomCrop draws one crop
    per call, so a batch would move as one; this gathers a crop per image instead."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (2, n), device=x.device, generator=generator)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (N, H) rows of padded
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
    # (N, 1, H, 1) and (N, 1, 1, W) broadcast against the channel index (1, C, 1, 1).
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
