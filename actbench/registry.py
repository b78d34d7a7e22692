"""One registry per concept: activations, networks, data sets. Plain tables, importable
without torch (so `actbench --help` and `list` stay fast); what needs torch is named by
string and built lazily by activations.py, models.py and data.py."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def resolve(path: str) -> Any:
    """'package.module:attribute' -> the attribute (imports the module)."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------------------- activations


def _leaky(slope: float) -> float:
    return math.sqrt(2.0 / (1.0 + slope**2))


def _relu_like(_: Any) -> float:
    # Smooth ReLU-like functions (ELU, GELU, SiLU, ...) pass ~half the variance, as ReLU does.
    return math.sqrt(2.0)


@dataclass(frozen=True)
class Activation:
    module: str  # torch.nn class
    description: str
    params: tuple[str, ...] = ()  # ActivationConfig fields it takes, as keyword arguments
    # Init gain for the layer feeding it: weight std = gain / sqrt(fan_in); takes the config.
    gain: Callable[[Any], float] = _relu_like
    # Keyword arguments from (config, channels of the site), where they are not just params.
    kwargs: Callable[[Any, int], dict[str, Any]] | None = None
    # Learned parameters' names in tables and files, where the paper's differ from torch's.
    param_names: dict[str, str] = field(default_factory=dict)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("ReLU", "max(0, x)"),
    "leaky_relu": Activation(
        "LeakyReLU",
        "fixed slope for x < 0",
        ("negative_slope",),
        lambda a: _leaky(a.negative_slope),
    ),
    "prelu": Activation(
        "PReLU",
        "learned slope a for x < 0, per site or per channel",
        ("per_channel", "init"),
        lambda a: _leaky(a.init),
        lambda a, channels: {"num_parameters": channels if a.per_channel else 1, "init": a.init},
        {"weight": "a"},
    ),
    "rrelu": Activation(
        "RReLU",
        "random slope ~ U(lower, upper) in training, its mean in eval",
        ("lower", "upper"),
        lambda a: _leaky((a.lower + a.upper) / 2),
    ),
    "elu": Activation("ELU", "alpha (exp(x) - 1) for x < 0", ("alpha",)),
    "selu": Activation("SELU", "scaled ELU, self-normalising", gain=lambda a: 1.0),  # LeCun
    "celu": Activation("CELU", "continuously differentiable ELU", ("alpha",)),
    "gelu": Activation("GELU", "x Phi(x)"),
    "silu": Activation("SiLU", "x sigmoid(x) (Swish)"),
    "mish": Activation("Mish", "x tanh(softplus(x))"),
    "softplus": Activation("Softplus", "log(1 + exp(x))"),
    "hardswish": Activation("Hardswish", "piecewise-linear Swish"),
    "tanh": Activation("Tanh", "tanh(x)", gain=lambda a: 5.0 / 3.0),
    "sigmoid": Activation("Sigmoid", "1 / (1 + exp(-x))", gain=lambda a: 1.0),
}


# ---------------------------------------------------------------------------- networks


@dataclass(frozen=True)
class Network:
    cls: str  # 'module:Class', built lazily
    description: str
    sites: tuple[str, ...]  # activation sites in network order (a_values.csv's layers)
    bottleneck: str | None = None  # a site with 2 features: recorded as features2d
    # Under `auto` each accuracy-neutral execution path is timed on the machine and the
    # fastest kept (calibrate.py): the memory layout always; bf16 autocast only where bf16
    # is native and it was shown not to change this network's accuracy (benchmarks/fastpath/).
    bf16_neutral: bool = False


NETWORKS: dict[str, Network] = {
    "lenet": Network(
        "actbench.models:LeNet",
        "LeNet-style: conv 1->10, conv 10->20 + Dropout2d, fc 320->50, fc 50->10",
        ("conv1", "conv2", "fc1"),
    ),
    "lenetpp": Network(
        "actbench.models:LeNetPP",
        "LeNet++: six 5x5 convs 32-32-64-64-128-128, fc ->2 (2-D features), fc 2->10",
        ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "fc1"),
        bottleneck="fc1",
        bf16_neutral=True,  # LeNet-style: not checked (bf16 gave it no speed: 3.6 vs 3.8 s)
    ),
}


# ---------------------------------------------------------------------------- data sets

IMAGE_SIDE = 28  # every data set here: 28 x 28 grey-scale images


@dataclass(frozen=True)
class Dataset:
    torchvision: str  # class in torchvision.datasets
    folder: str  # under the data root, torchvision's layout: <folder>/raw/<file>
    mean: float  # pixel mean and std on the training set, after scaling to [0, 1]
    std: float
    description: str
    sha256: dict[str, str] = field(default_factory=dict)  # raw file -> of the original
    classes: int = 10


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        "MNIST",
        "MNIST",
        0.1307,
        0.3081,
        "handwritten digits, 60,000 training and 10,000 test images",
        {
            "train-images-idx3-ubyte": (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
            ),
            "train-labels-idx1-ubyte": (
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
            ),
            "t10k-images-idx3-ubyte": (
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
            ),
            "t10k-labels-idx1-ubyte": (
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
            ),
        },
    ),
    "fashion_mnist": Dataset(
        "FashionMNIST",
        "FashionMNIST",
        0.2860,
        0.3530,
        "Zalando clothing images, same sizes as MNIST",
        {
            "train-images-idx3-ubyte": (
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
            ),
            "train-labels-idx1-ubyte": (
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
            ),
            "t10k-images-idx3-ubyte": (
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
            ),
            "t10k-labels-idx1-ubyte": (
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
            ),
        },
    ),
}


# ---------------------------------------------------------------------------- optimizers


@dataclass(frozen=True)
class Optimizer:
    cls: str  # 'module:Class', built lazily
    description: str
    # Keyword arguments beyond lr and weight_decay, from the OptimConfig.
    kwargs: Callable[[Any], dict[str, Any]] = lambda o: {}


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(
        "torch.optim:SGD", "SGD with momentum (optim.momentum)", lambda o: {"momentum": o.momentum}
    ),
    "adam": Optimizer("torch.optim:Adam", "Adam (L2 weight decay in the gradient)"),
    "adamw": Optimizer("torch.optim:AdamW", "AdamW (decoupled weight decay)"),
}


# ---------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule, stepped after every batch: its parameters are given in
    epochs (OptimConfig fields) and converted to steps by `kwargs`."""

    cls: str | None  # torch.optim.lr_scheduler class; None: constant lr
    description: str
    params: tuple[str, ...] = ()  # the OptimConfig fields it reads
    # (optim config, epochs, steps per epoch) -> keyword arguments of cls
    kwargs: Callable[[Any, int, int], dict[str, Any]] = lambda o, epochs, spe: {}


_LRS = "torch.optim.lr_scheduler:"
SCHEDULES: dict[str, Schedule] = {
    "none": Schedule(None, "constant lr"),
    "step": Schedule(
        _LRS + "StepLR",
        "lr x gamma every step_size epochs",
        ("step_size", "gamma"),
        lambda o, epochs, spe: {"step_size": o.step_size * spe, "gamma": o.gamma},
    ),
    "multistep": Schedule(
        _LRS + "MultiStepLR",
        "lr x gamma after each milestone epoch",
        ("milestones", "gamma"),
        lambda o, epochs, spe: {"milestones": [m * spe for m in o.milestones], "gamma": o.gamma},
    ),
    "cosine": Schedule(
        _LRS + "CosineAnnealingLR",
        "lr annealed to min_lr on a half cosine over the run",
        ("min_lr",),
        lambda o, epochs, spe: {"T_max": epochs * spe, "eta_min": o.min_lr},
    ),
    # momentum stays as configured (cycle_momentum would override optim.momentum)
    "onecycle": Schedule(
        _LRS + "OneCycleLR",
        "warm up to max_lr, then anneal (momentum left as configured)",
        ("max_lr", "pct_start"),
        lambda o, epochs, spe: {
            "max_lr": o.max_lr,
            "total_steps": epochs * spe,
            "pct_start": o.pct_start,
            "cycle_momentum": False,
        },
    ),
}
