"""Typed run configuration (pydantic): YAML files list only what differs from these defaults.

Also the run's identity: `fingerprint` hashes every field that changes what is trained or
measured, and none that only say where or how fast it ran."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from actbench import plugins, registry
from actbench.errors import ActbenchError

DATASETS = tuple(registry.DATASETS)
NETS = tuple(registry.NETWORKS)
INITS = ("auto", "torch")
OPTIMIZERS = tuple(registry.OPTIMIZERS)
PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = tuple(registry.SCHEDULES)

TRAIN_IMAGES = 60_000  # training images of every data set here (MNIST, Fashion-MNIST)
TEST_IMAGES = 10_000  # and test images
# Bounds for integers (README: config reference). Wide enough for any real run, narrow enough
# that nothing downstream overflows (numpy seeds are 32-bit).
MAX_SEED = 2**32 - 1
MAX_EPOCHS = 10_000
MAX_BATCH = TRAIN_IMAGES  # the largest training set
MAX_THREADS = 1024
# A run or sweep name is one path component: letters, digits and . _ - = , ( ) +, not
# starting with a dot, at most MAX_NAME characters.
MAX_NAME = 100
NAME_CHARS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=,()+-]*")
MAX_YAML_BYTES = 1_000_000  # a config is a few hundred bytes; refuse anything absurd


def check_name(value: str, what: str = "name") -> str:
    """ActbenchError unless value is a safe single path component."""
    if len(value) > MAX_NAME or not NAME_CHARS.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ActbenchError(
            f"{what}: {shown!r} is not allowed; a name is 1-{MAX_NAME} characters of letters, "
            "digits and . _ - = , ( ) +, not starting with a dot (no '/', no '..')"
        )
    return value


class _Section(BaseModel):
    # strict: no silent str -> number coercion; ints are still accepted for floats.
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, validate_assignment=True
    )


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Finite = Annotated[float, Field(ge=0, le=1e6)]


def Choice(path: str, options: typing.Sequence[str]) -> Any:
    """A str field that must be one of options, with a did-you-mean hint."""
    return Annotated[str, AfterValidator(lambda v: check_choice(path, v, options))]


# Which ActivationConfig fields each activation reads (from the registry).
ACTIVATION_PARAMS: dict[str, tuple[str, ...]] = {
    name: spec.params for name, spec in registry.ACTIVATIONS.items()
}


class DataConfig(_Section):
    dataset: Choice("data.dataset", DATASETS) = "mnist"  # mnist | fashion_mnist
    root: str | None = None  # None: $ACTBENCH_DATA, else ./data
    # first N training images (quick runs); None = all
    train_subset: Annotated[int, Field(ge=1, le=TRAIN_IMAGES)] | None = None
    # first N test images (quick runs: a test pass of LeNet++ costs as much as training on
    # several thousand images); None = all. Reports state every accuracy's test_images.
    test_subset: Annotated[int, Field(ge=1, le=TEST_IMAGES)] | None = None
    # augmentation: each training image moved by a random whole number of pixels, up to
    # `shift` each way (edges repeated), redrawn every epoch; 0 = off. Test images never move.
    shift: Annotated[int, Field(ge=0, le=registry.IMAGE_SIDE // 2)] = 0
    # Validation split: this many training images held out (never trained on), drawn by a
    # permutation seeded with val_seed (null: the run's seed, so it varies with the seed and
    # pairs across activations as seeds do); train_subset then takes the first N of the rest.
    # 0 = no split. Epochs are selected on it, never on the test set.
    val_size: Annotated[int, Field(ge=0, le=TRAIN_IMAGES - 1)] = 0
    val_seed: Seed | None = None
    download: bool = False  # let torchvision download (needs internet)

    @field_validator("test_subset")
    @classmethod
    def _test_subset(cls, v: int | None) -> int | None:
        return None if v == TEST_IMAGES else v  # every test image: the same run as null


class ModelConfig(_Section):
    net: Choice("model.net", NETS) = "lenet"  # lenet (LeNet-style) | lenetpp (LeNet++)
    # torch: framework default, what the shipped recipes were tuned with (He init trains ReLU
    # LeNet slower and blows up LeNet++ at lr 0.01, momentum 0.9); auto: He/LeCun normal
    # matched to the activation.
    init: Choice("model.init", INITS) = "torch"


# A user activation's keyword argument: a YAML scalar or a list of them.
Scalar = bool | int | Annotated[float, Field(allow_inf_nan=False)] | str | None
ArgValue = Scalar | Annotated[list[Scalar], Field(max_length=1000)]


def is_builtin(name: str) -> bool:
    return name in registry.ACTIVATIONS


class ActivationConfig(_Section):
    """Activation name plus its parameters; only those the activation uses may be set. A
    user activation (an entry point's name, or 'module:Class') takes every other key of the
    section as a keyword argument of its class."""

    # built-in (actbench list), an installed entry point's name, or an import path
    name: str = "relu"
    negative_slope: Finite = 0.01  # leaky_relu: slope for x < 0
    per_channel: bool = False  # prelu: one learned a per channel instead of one per site
    init: Annotated[float, Field(ge=-1e3, le=1e3)] = 0.25  # prelu: initial a (PReLU paper)
    lower: Finite = 1 / 8  # rrelu: slopes drawn from U(lower, upper) in training (torch default)
    upper: Finite = 1 / 3  # rrelu
    alpha: Annotated[float, Field(gt=0, le=1e6)] = 1.0  # elu, celu: value for x -> -inf
    # user activations: their keyword arguments, written beside name in YAML
    args: dict[str, ArgValue] = Field(default_factory=dict, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _user_args(cls, data: Any) -> Any:
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str) and not is_builtin(name):
            return {"name": name, "args": {k: v for k, v in data.items() if k != "name"}}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        if is_builtin(v) or plugins.is_import_path(v):
            return v
        # Reading a run: its entry point need not be installed here (nothing is imported).
        if (info.context or {}).get("reading") and plugins.ENTRY_NAME.fullmatch(v):
            return v
        if v in plugins.entry_points():
            return v
        known = [*registry.ACTIVATIONS, *plugins.entry_points()]
        shown = v if len(v) <= 40 else v[:40] + "..."
        raise ActbenchError(
            f"activation.name: unknown value {shown!r}{suggest(v, known)}; allowed: "
            f"{', '.join(known)}, or a class by import path (package.module:Class)"
        )


class OptimConfig(_Section):
    name: Choice("optim.name", OPTIMIZERS) = "sgd"  # sgd | adam | adamw
    lr: Annotated[float, Field(gt=0, le=1e6)] = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.5  # sgd only; classic MNIST example's
    weight_decay: Finite = 0.0  # on every parameter except learned activation parameters
    # on learned activation parameters (PReLU's a, a user activation's): decay pulls them to
    # 0, e.g. PReLU towards ReLU
    slope_weight_decay: Finite = 0.0
    # Learning-rate schedule (torch.optim.lr_scheduler), stepped after every batch; its
    # parameters are in epochs and apply only to the schedule named.
    schedule: Choice("optim.schedule", SCHEDULES) = "none"  # none | step | ... (below)
    step_size: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 1  # step: epochs between decays
    milestones: list[Annotated[int, Field(ge=1, le=MAX_EPOCHS)]] = Field(  # multistep: epochs
        default_factory=lambda: [5, 8], max_length=100
    )
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1  # step, multistep: lr factor per decay
    min_lr: Finite = 0.0  # cosine: the lr it anneals to
    max_lr: Annotated[float, Field(gt=0, le=1e6)] = 0.1  # onecycle: peak lr
    pct_start: Annotated[float, Field(gt=0, lt=1)] = 0.3  # onecycle: fraction spent warming up


class TrainConfig(_Section):
    epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 10
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 64
    test_batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 1000
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    threads: Annotated[int, Field(ge=0, le=MAX_THREADS)] = 0  # CPU threads; 0 = torch's default
    # auto: bf16 autocast where the hardware computes bf16 natively (and the network gains
    # from it), else fp32. Part of the fingerprint: runs at different precision don't pair.
    precision: Choice("train.precision", PRECISIONS) = "auto"  # auto | fp32 | bf16
    channels_last: bool | Literal["auto"] = "auto"  # NHWC convs; auto: where measured faster
    compile: bool = False  # torch.compile the model (falls back to eager where unavailable)
    # false: the test set is never read (tuning trials); runs are judged on validation
    eval_test: bool = True
    # End a dead network early, as stalled: one activation site (with no dropout or RReLU
    # before it) output 0 for every unit on every training image at two consecutive epoch
    # ends (checked after an epoch below the stall line). Nothing below that site gets a
    # gradient again, so more epochs would only repeat the same chance-level accuracy.
    # Never changes a run that is not dead.
    stop_dead: bool = True
    # Not a setting: how calibrate.resolve decided the `auto` values above (rundir.Calibration
    # records), carried with the config to the process that trains it (summary.json).
    _calibration: list[Any] = PrivateAttr(default_factory=list)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not (v in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d{1,3}", v)):
            raise ActbenchError(
                f"train.device: unknown value {v!r}; allowed: auto, cpu, cuda, cuda:N, mps"
            )
        return v


class Config(_Section):
    name: str | None = None  # run-name prefix
    seed: Seed = 0  # seeds python, numpy, torch and the batch order
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    activation: ActivationConfig = Field(default_factory=ActivationConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)


SECTIONS: dict[str, type[_Section]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "activation": ActivationConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}

# Which OptimConfig schedule fields each schedule reads.
SCHEDULE_PARAMS = {name: s.params for name, s in registry.SCHEDULES.items()}
SCHEDULE_KEYS = tuple(dict.fromkeys(k for keys in SCHEDULE_PARAMS.values() for k in keys))

# Fields that say where or how fast a run happened, not what it trained or measured: left
# out of the fingerprint and of compare's grouping (README: run identity).
WHERE_FIELDS = (
    "name",
    "data.root",
    "data.download",
    "train.device",
    "train.threads",
    "train.channels_last",
    "train.compile",
    "train.stop_dead",  # when a dead network ends, not what it measures (see TrainConfig)
)


def _label_value(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(_label_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(value))  # run names allow only these


def activation_label(act: ActivationConfig) -> str:
    """Short name of the variant, e.g. relu, prelu-channel, leaky_relu(0.2), and for user
    activations their name (import path with '.' for ':') and arguments: pade(degree=5)."""
    if not is_builtin(act.name):
        label = act.name.replace(":", ".")
        shown = ",".join(f"{_label_value(k)}={_label_value(v)}" for k, v in act.args.items())
        return f"{label}({shown})" if shown else label
    label = act.name + ("-channel" if act.name == "prelu" and act.per_channel else "")
    defaults = ActivationConfig()
    changed = [
        f"{getattr(act, p):g}"
        for p in ACTIVATION_PARAMS.get(act.name, ())
        if p != "per_channel" and getattr(act, p) != getattr(defaults, p)
    ]
    return f"{label}({','.join(changed)})" if changed else label


# ---------------------------------------------------------------------------- errors


def suggest(key: str, allowed: typing.Iterable[str]) -> str:
    """The ' (did you mean ...?)' hint for the closest allowed name, or an empty string."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_choice(path: str, value: str, options: typing.Sequence[str]) -> str:
    """value, or an ActbenchError naming path, value and the allowed options."""
    if value not in options:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ActbenchError(
            f"{path}: unknown value {shown!r}{suggest(value, options)}; "
            f"allowed: {', '.join(options)}"
        )
    return value


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the field at `loc` (for listing the allowed keys)."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        sub = field.annotation if field else None
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            return None
        model = sub
    return model


def _short(value: Any) -> str:
    import reprlib

    short = reprlib.Repr()  # bounded: never walks a huge or deeply nested value
    short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlevel = 40, 40, 3, 3, 2
    return short.repr(value)


def _one_line(error: ValidationError) -> str:
    """pydantic's first error as one line: the dotted key, what was wrong, what is allowed."""
    err = error.errors(include_url=False)[0]
    loc = tuple(str(p)[:60] for p in err["loc"])  # a key can be any length: show its start
    path = ".".join(loc) or "config"
    kind = err["type"]
    if loc[:2] == ("activation", "args") and len(loc) > 2:
        return (
            f"activation.{loc[2]}: an activation argument is a finite number, a string, true/"
            f"false, null or a list of these; got {_short(error.errors()[0].get('input'))}"
        )
    if kind == "extra_forbidden":
        model = _model_at(loc)
        names = [n for n in (model.model_fields if model else ()) if n != "args"]
        where = ".".join(str(p) for p in loc[:-1]) or "config"
        return (
            f"unknown key '{path}'{suggest(str(loc[-1]), names)}; "
            f"allowed in {where}: {', '.join(names)}"
        )
    if kind == "value_error":  # our own validators: the message is already complete
        inner = err.get("ctx", {}).get("error")
        return str(inner) if inner is not None else err["msg"]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path}: expected a mapping of keys, got {type(err['input']).__name__}"
    msg = err["msg"].replace("Input should be", "must be").replace("Input", "value")
    return f"{path}: {msg}, got {_short(err.get('input'))}"


# ---------------------------------------------------------------------------- building


def validate(
    cfg: Config, act_keys: typing.Iterable[str], optim_keys: typing.Iterable[str]
) -> Config:
    """Cross-field rules; act_keys / optim_keys are the keys the user wrote in those sections."""
    uses = ACTIVATION_PARAMS.get(cfg.activation.name)
    for key in act_keys if uses is not None else ():  # user activations: checked on import
        if key != "name" and key not in uses:
            raise ActbenchError(
                f"activation.{key} does not apply to {cfg.activation.name}; "
                f"its parameters: {', '.join(uses) or 'none'}"
            )
    sched = SCHEDULE_PARAMS[cfg.optim.schedule]
    for key in optim_keys:
        if key in SCHEDULE_KEYS and key not in sched:
            raise ActbenchError(
                f"optim.{key} does not apply to schedule {cfg.optim.schedule}; "
                f"its parameters: {', '.join(sched) or 'none'}"
            )
    data = cfg.data
    if data.val_size + (data.train_subset or 0) > TRAIN_IMAGES:
        raise ActbenchError(
            f"data.val_size ({data.val_size}) + data.train_subset ({data.train_subset}) is more "
            f"than the {TRAIN_IMAGES} training images"
        )
    if data.val_size == 0 and data.val_seed is not None:
        raise ActbenchError("data.val_seed applies only with a split (data.val_size > 0)")
    if not cfg.train.eval_test and data.test_subset is not None:
        raise ActbenchError("data.test_subset applies only when the test set is read "
                            "(train.eval_test: true)")  # fmt: skip
    if not cfg.train.eval_test and data.val_size == 0:
        raise ActbenchError(
            "train.eval_test: false needs a validation split (data.val_size > 0) to judge by"
        )
    act = cfg.activation
    if act.name == "rrelu" and not act.lower <= act.upper:
        raise ActbenchError(
            f"activation.lower ({act.lower:g}) must be <= activation.upper ({act.upper:g})"
        )
    if cfg.optim.schedule == "multistep":
        # Milestones past the last epoch are allowed (never reached), so a shortened run of
        # a shipped recipe (--set train.epochs=1) stays valid.
        ms = cfg.optim.milestones
        if not ms or ms != sorted(set(ms)):
            raise ActbenchError(f"optim.milestones: {ms} must be increasing epochs, e.g. [5, 8]")
    return cfg


def from_mapping(data: Any, reading: bool = False) -> Config:
    """Build and validate a Config from a raw mapping (YAML document or sweep entry);
    reading: a run's config.yaml (an entry point activation need not be installed)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ActbenchError(f"config: expected a mapping of keys, got {type(data).__name__}")
    try:
        cfg = Config.model_validate(data, context={"reading": reading})
    except ValidationError as exc:
        raise ActbenchError(_one_line(exc)) from None
    except RecursionError:
        raise ActbenchError("config: nested too deeply") from None

    def keys(section: str) -> typing.Iterable[str]:
        value = data.get(section)
        return value.keys() if isinstance(value, dict) else ()

    return validate(cfg, keys("activation"), keys("optim"))


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b=value' into (['a', 'b'], value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ActbenchError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. train.epochs=2")
    try:
        value = load_yaml_text(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # not valid YAML (e.g. 'a: b: c'): keep it as a plain string
    except (RecursionError, ValueError) as exc:
        raise ActbenchError(f"--set {text[:60]!r}: not a usable value ({_why(exc)})") from None
    if isinstance(value, dict):
        raise ActbenchError(f"--set {text!r}: the value must be a scalar or a [list]")
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
    model: Any = Config
    for i, part in enumerate(path):
        names = list(model.model_fields) if model is not None else []
        where = ".".join(path[:i]) or "config"
        if model is ActivationConfig and part != "args":
            return  # a user activation's argument, or a built-in's key: checked with the rest
        if part not in names:
            raise ActbenchError(
                f"--set {text!r}: unknown key '{'.'.join(path[: i + 1])}'"
                f"{suggest(part, names)}; allowed in {where}: {', '.join(names) or 'none'}"
            )
        sub = model.model_fields[part].annotation
        model = sub if isinstance(sub, type) and issubclass(sub, BaseModel) else None
    if model is not None:
        raise ActbenchError(f"--set {text!r}: {'.'.join(path)} is a section; set one of its keys")


# ---------------------------------------------------------------------------- YAML


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases (an alias bomb expands exponentially), reading
    1e-3 (no dot) as a float as YAML 1.2 does."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name / *name) are not allowed", mark
            )
        return super().compose_node(parent, index)


_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _why(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]


def load_yaml_text(text: str) -> Any:
    """Parse YAML text with the hardened loader."""
    return yaml.load(text, Loader=_YamlLoader)


PACKAGE = Path(__file__).resolve().parent  # ships configs/ and sweeps/ as package data


def find_file(name: str | os.PathLike[str], folder: str) -> Path:
    """A config (folder 'configs') or sweep ('sweeps') file: the path as given if it exists,
    else the shipped file of that name, from any working directory. 'prelu', 'prelu.yaml'
    and 'configs/prelu.yaml' all name the shipped configs/prelu.yaml."""
    path = Path(name)
    shipped = path.parts[1:] if path.parts[:1] == (folder,) else path.parts
    candidates = [path, PACKAGE / folder / Path(*shipped)] if shipped else [path]
    if path.suffix not in (".yaml", ".yml") and shipped:
        candidates.append(PACKAGE / folder / Path(*shipped).with_suffix(".yaml"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    available = ", ".join(sorted(p.stem for p in (PACKAGE / folder).glob("*.yaml")))
    raise ActbenchError(
        f"config file not found: {name} (not a file here, nor a shipped {folder[:-1]}: {available})"
    )


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; errors become one line with the file (and line/column)."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ActbenchError(f"{path}: {size} bytes; a config is at most {MAX_YAML_BYTES}")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ActbenchError(f"cannot read {path}: {reason}") from None
    try:
        return load_yaml_text(text)
    except (RecursionError, ValueError) as exc:  # absurd nesting, a 5000-digit integer
        raise ActbenchError(f"{path}: not a usable config ({_why(exc)})") from None
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


# ---------------------------------------------------------------------------- output, identity


def to_dict(cfg: Config) -> dict[str, Any]:
    """The fully resolved config, with only the activation and schedule parameters that apply."""
    out = cfg.model_dump()
    act = cfg.activation
    if is_builtin(act.name):
        uses = ACTIVATION_PARAMS[act.name]
        out["activation"] = {k: v for k, v in out["activation"].items() if k == "name" or k in uses}
    else:
        out["activation"] = {"name": act.name, **act.args}
    sched = SCHEDULE_PARAMS[cfg.optim.schedule]
    out["optim"] = {k: v for k, v in out["optim"].items() if k not in SCHEDULE_KEYS or k in sched}
    return out


class _YamlDumper(yaml.SafeDumper):
    """Quotes the strings _YamlLoader would read as numbers (e.g. '1e-3'), so a config
    written to a run reads back the same."""


_YamlDumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def dump(cfg: Config) -> str:
    """YAML text of the resolved config, sections in definition order."""
    return dump_mapping(to_dict(cfg))


def dump_mapping(data: dict[str, Any]) -> str:
    """YAML text that reads back as the same mapping (numeric-looking strings quoted)."""
    return yaml.dump(data, Dumper=_YamlDumper, sort_keys=False)


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config mapping -> {"section.key": value}."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# Fields added after runs were published, with the value that leaves training as it was: at
# that value they stay out of the identity, so earlier runs keep their fingerprint.
LATER_FIELDS: dict[str, Any] = {
    "data.shift": 0,
    "data.test_subset": None,
    "data.val_size": 0,
    "data.val_seed": None,
    "train.eval_test": True,
}


def _same_number(value: Any) -> Any:
    """A user activation's argument as identity sees it: 2.0 is 2 (one label, so one
    fingerprint), in lists too; booleans stay booleans."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_same_number(v) for v in value]
    return value


def identity(cfg: Config) -> dict[str, Any]:
    """The fields that define what a run trains and measures (flat, sorted)."""
    flat = flatten(to_dict(cfg))
    if not is_builtin(cfg.activation.name):  # its arguments are untyped: 2 and 2.0 alike
        flat = {k: _same_number(v) if k.startswith("activation.") else v for k, v in flat.items()}
    return {
        k: flat[k]
        for k in sorted(flat)
        if k not in WHERE_FIELDS and not (k in LATER_FIELDS and flat[k] == LATER_FIELDS[k])
    }


def fingerprint(cfg: Config) -> str:
    """16 hex digits of SHA-256 over identity(cfg): equal exactly when the runs are the same
    experiment. Precision must be resolved (not 'auto') first."""
    if cfg.train.precision == "auto":
        raise ValueError("fingerprint of an unresolved config (train.precision: auto)")
    text = json.dumps(identity(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(a: Config, b: Config) -> list[str]:
    """'key: a != b' for every identity field where the two configs differ."""
    ia, ib = {**LATER_FIELDS, **identity(a)}, {**LATER_FIELDS, **identity(b)}
    return [
        f"{k}: {ia.get(k)!r} != {ib.get(k)!r}"
        for k in dict.fromkeys([*ia, *ib])
        if ia.get(k) != ib.get(k)
    ]


def default_data_root() -> Path:
    """$ACTBENCH_DATA, else ./data."""
    return Path(os.environ.get("ACTBENCH_DATA") or "data")
