"""Typed run configuration: YAML files list only what differs from these defaults."""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from actbench.errors import ActbenchError

DATASETS = ("mnist", "fashion_mnist")
NETS = ("lenet", "lenetpp")
INITS = ("auto", "torch")
OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("fp32", "bf16")


@dataclass
class DataConfig:
    dataset: str = "mnist"  # mnist | fashion_mnist
    root: str | None = None  # None: $ACTBENCH_DATA, else ./data
    train_subset: int | None = None  # first N training images (quick runs); None = all
    download: bool = False  # let torchvision download (needs internet)


@dataclass
class ModelConfig:
    net: str = "lenet"  # lenet (LeNet-style, 2 conv + 2 fc) | lenetpp (LeNet++, 6 conv, 2-D fc)
    # torch: framework default, what the shipped recipes were tuned with (He init trains ReLU
    # LeNet slower and blows up LeNet++ at lr 0.01, momentum 0.9); auto: He/LeCun normal
    # matched to the activation.
    init: str = "torch"


@dataclass
class ActivationConfig:
    """Activation name plus its parameters; only those the activation uses may be set."""

    name: str = "relu"
    negative_slope: float = 0.01  # leaky_relu: slope for x < 0
    per_channel: bool = False  # prelu: one learned a per channel instead of one per site
    init: float = 0.25  # prelu: initial a, as in the PReLU paper
    lower: float = 1 / 8  # rrelu: slopes drawn from U(lower, upper) in training (torch default)
    upper: float = 1 / 3  # rrelu
    alpha: float = 1.0  # elu, celu: saturation value for x -> -inf


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.01
    momentum: float = 0.5  # sgd only; the classic PyTorch MNIST example's value
    weight_decay: float = 0.0  # on every parameter except PReLU slopes
    slope_weight_decay: float = 0.0  # on PReLU slopes: decay pulls a to 0, i.e. towards ReLU


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    test_batch_size: int = 1000
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    threads: int = 0  # CPU threads for torch; 0 = torch's default (one per core)
    precision: str = "fp32"  # fp32 | bf16 (autocast); runs at different precision don't compare
    channels_last: bool = False  # NHWC memory format for conv layers
    compile: bool = False  # torch.compile the model (falls back to eager where unavailable)


@dataclass
class Config:
    name: str | None = None  # run-name prefix
    seed: int = 0  # seeds python, numpy, torch and the batch order
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    activation: ActivationConfig = field(default_factory=ActivationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# Which ActivationConfig fields each activation reads; the registry in activations.py is
# checked against this table by the tests so the two cannot drift apart.
ACTIVATION_PARAMS: dict[str, tuple[str, ...]] = {
    "relu": (),
    "leaky_relu": ("negative_slope",),
    "prelu": ("per_channel", "init"),
    "rrelu": ("lower", "upper"),
    "elu": ("alpha",),
    "selu": (),
    "celu": ("alpha",),
    "gelu": (),
    "silu": (),
    "mish": (),
    "softplus": (),
    "hardswish": (),
    "tanh": (),
    "sigmoid": (),
}


def activation_label(act: ActivationConfig) -> str:
    """Short name of the variant, e.g. relu, prelu-channel, leaky_relu(0.2)."""
    label = act.name + ("-channel" if act.name == "prelu" and act.per_channel else "")
    defaults = ActivationConfig()
    changed = [
        f"{getattr(act, p):g}"
        for p in ACTIVATION_PARAMS.get(act.name, ())
        if p != "per_channel" and getattr(act, p) != getattr(defaults, p)
    ]
    return f"{label}({','.join(changed)})" if changed else label


# ---------------------------------------------------------------------------- loading


def suggest(key: str, allowed: typing.Iterable[str]) -> str:
    """The ' (did you mean ...?)' hint for the closest allowed name, or an empty string."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _allowed(options: typing.Iterable[str]) -> str:
    return ", ".join(options)


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check value against a field's type hint; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
    if hint is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok:
        raise ActbenchError(
            f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}"
        )
    return float(value) if hint is float else value


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, dict):
        raise ActbenchError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ActbenchError(
                f"unknown key '{prefix}{key}'{suggest(str(key), names)}; "
                f"allowed in {where}: {_allowed(names)}"
            )
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, f"{prefix}{key}")
    return cls(**kwargs)


def check_choice(path: str, value: str, options: typing.Sequence[str]) -> None:
    """ActbenchError naming path, value and the allowed options unless value is one."""
    if value not in options:
        raise ActbenchError(
            f"{path}: unknown value {value!r}{suggest(value, options)}; "
            f"allowed: {_allowed(options)}"
        )


def validate(cfg: Config, set_keys: typing.Iterable[str] = ()) -> Config:
    """Reject impossible values; set_keys are the activation keys the user wrote."""
    check_choice("data.dataset", cfg.data.dataset, DATASETS)
    check_choice("model.net", cfg.model.net, NETS)
    check_choice("model.init", cfg.model.init, INITS)
    check_choice("activation.name", cfg.activation.name, list(ACTIVATION_PARAMS))
    check_choice("optim.name", cfg.optim.name, OPTIMIZERS)
    check_choice("train.precision", cfg.train.precision, PRECISIONS)
    uses = ACTIVATION_PARAMS[cfg.activation.name]
    for key in set_keys:
        if key != "name" and key not in uses:
            raise ActbenchError(
                f"activation.{key} does not apply to {cfg.activation.name}; "
                f"its parameters: {_allowed(uses) or 'none'}"
            )
    positive = {
        "optim.lr": cfg.optim.lr,
        "train.epochs": cfg.train.epochs,
        "train.batch_size": cfg.train.batch_size,
        "train.test_batch_size": cfg.train.test_batch_size,
    }
    if cfg.data.train_subset is not None:
        positive["data.train_subset"] = cfg.data.train_subset
    for path, value in positive.items():
        if not value > 0:
            raise ActbenchError(f"{path}: must be > 0, got {value}")
    for path, value in {
        "optim.momentum": cfg.optim.momentum,
        "optim.weight_decay": cfg.optim.weight_decay,
        "optim.slope_weight_decay": cfg.optim.slope_weight_decay,
        "train.threads": cfg.train.threads,
        "activation.negative_slope": cfg.activation.negative_slope,
        "activation.alpha": cfg.activation.alpha,
        "activation.lower": cfg.activation.lower,
    }.items():
        if not value >= 0:  # also rejects NaN
            raise ActbenchError(f"{path}: must be >= 0, got {value}")
    if not cfg.optim.momentum < 1:
        raise ActbenchError(f"optim.momentum: must be < 1, got {cfg.optim.momentum}")
    act = cfg.activation
    if act.name == "rrelu" and not act.lower <= act.upper:
        raise ActbenchError(
            f"activation.lower ({act.lower:g}) must be <= activation.upper ({act.upper:g})"
        )
    if act.name in ("elu", "celu") and act.alpha == 0:
        raise ActbenchError("activation.alpha: must be > 0, got 0")
    dev = cfg.train.device
    cuda_n = dev.startswith("cuda:") and dev[5:].isdigit()
    if not (dev in ("auto", "cpu", "cuda", "mps") or cuda_n):
        raise ActbenchError(
            f"train.device: unknown value {dev!r}; allowed: auto, cpu, cuda, cuda:N, mps"
        )
    if cfg.data.train_subset is not None and cfg.data.train_subset > 60_000:
        raise ActbenchError(
            f"data.train_subset: must be <= 60000 (the training set size), "
            f"got {cfg.data.train_subset}"
        )
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b=value' into (['a', 'b'], value parsed as a YAML scalar)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ActbenchError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. train.epochs=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # not valid YAML (e.g. 'a: b: c'): keep it as a plain string
    if isinstance(value, (dict, list)):
        raise ActbenchError(f"--set {text!r}: the value must be a single scalar")
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Set each 'a.b=value' into a copy of the raw config mapping."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for text in overrides:
        path, value = parse_override(text)
        _check_path(path, text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return out


def _check_path(path: list[str], text: str) -> None:
    cls: Any = Config
    for i, part in enumerate(path):
        names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
        where = ".".join(path[:i]) or "config"
        if part not in names:
            raise ActbenchError(
                f"--set {text!r}: unknown key '{'.'.join(path[: i + 1])}'"
                f"{suggest(part, names)}; allowed in {where}: {_allowed(names) or 'none'}"
            )
        cls = typing.get_type_hints(cls)[part]
    if dataclasses.is_dataclass(cls):
        raise ActbenchError(f"--set {text!r}: {'.'.join(path)} is a section; set one of its keys")


def from_mapping(data: Any) -> Config:
    """Build and validate a Config from a raw mapping (YAML document or sweep entry)."""
    if data is None:
        data = {}
    cfg = _build(Config, data, "")
    act = data.get("activation") if isinstance(data, dict) else None
    return validate(cfg, set_keys=act.keys() if isinstance(act, dict) else ())


def repo_root() -> Path:
    """The checkout holding configs/ (the package's parent in an editable install)."""
    return Path(__file__).resolve().parent.parent


def find_file(name: str | os.PathLike[str], folder: str) -> Path:
    """Resolve a path as given, else inside ./<folder>, else inside the repo's <folder>."""
    path = Path(name)
    candidates = [path, Path(folder) / path, repo_root() / folder / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise ActbenchError(f"config file not found: {name} (looked in {looked})")


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; syntax errors become one line with the line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ActbenchError(f"cannot read {path}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ActbenchError(f"{path}:{where}: invalid YAML: {problem}") from None


def load(name: str | os.PathLike[str], overrides: typing.Iterable[str] = ()) -> Config:
    """Load a config file (looked up in configs/ too) and apply --set overrides."""
    path = find_file(name, "configs")
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ActbenchError(
            f"{path}: the top level must be a mapping of sections, got {type(data).__name__}"
        )
    try:
        return from_mapping(apply_overrides(data, overrides))
    except ActbenchError as exc:
        raise ActbenchError(f"{path}: {exc}") from None


def to_dict(cfg: Config) -> dict[str, Any]:
    """The fully resolved config, with only the activation parameters that apply."""
    out = dataclasses.asdict(cfg)
    uses = ACTIVATION_PARAMS[cfg.activation.name]
    out["activation"] = {k: v for k, v in out["activation"].items() if k == "name" or k in uses}
    return out


def dump(cfg: Config) -> str:
    """YAML text of the resolved config, sections in definition order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def default_data_root() -> Path:
    """$ACTBENCH_DATA, else ./data."""
    return Path(os.environ.get("ACTBENCH_DATA") or "data")
