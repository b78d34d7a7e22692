"""Activation registry: name -> constructor taking the channel count of its site."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from torch import nn

from actbench.config import ACTIVATION_PARAMS, ActivationConfig, check_choice


class Activation(NamedTuple):
    build: Callable[[int, ActivationConfig], nn.Module]
    # Init gain for the layer feeding this activation: weight std = gain / sqrt(fan_in).
    gain: Callable[[ActivationConfig], float]


def _leaky_gain(slope: float) -> float:
    return math.sqrt(2.0 / (1.0 + slope**2))


def _relu_like(_: ActivationConfig) -> float:
    # Smooth ReLU-like functions (ELU, GELU, SiLU, ...) pass ~half the variance, as ReLU does.
    return math.sqrt(2.0)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(lambda c, a: nn.ReLU(), _relu_like),
    "leaky_relu": Activation(
        lambda c, a: nn.LeakyReLU(a.negative_slope), lambda a: _leaky_gain(a.negative_slope)
    ),
    "prelu": Activation(
        lambda c, a: nn.PReLU(c if a.per_channel else 1, init=a.init),
        lambda a: _leaky_gain(a.init),
    ),
    "rrelu": Activation(
        lambda c, a: nn.RReLU(a.lower, a.upper), lambda a: _leaky_gain((a.lower + a.upper) / 2)
    ),
    "elu": Activation(lambda c, a: nn.ELU(a.alpha), _relu_like),
    "selu": Activation(lambda c, a: nn.SELU(), lambda a: 1.0),  # LeCun normal: var 1/fan_in
    "celu": Activation(lambda c, a: nn.CELU(a.alpha), _relu_like),
    "gelu": Activation(lambda c, a: nn.GELU(), _relu_like),
    "silu": Activation(lambda c, a: nn.SiLU(), _relu_like),
    "mish": Activation(lambda c, a: nn.Mish(), _relu_like),
    "softplus": Activation(lambda c, a: nn.Softplus(), _relu_like),
    "hardswish": Activation(lambda c, a: nn.Hardswish(), _relu_like),
    "tanh": Activation(lambda c, a: nn.Tanh(), lambda a: 5.0 / 3.0),
    "sigmoid": Activation(lambda c, a: nn.Sigmoid(), lambda a: 1.0),
}
assert ACTIVATIONS.keys() == ACTIVATION_PARAMS.keys(), "registry and config table disagree"


def create(cfg: ActivationConfig, channels: int) -> nn.Module:
    """A new activation module for a site with `channels` channels (or features)."""
    check_choice("activation.name", cfg.name, list(ACTIVATIONS))
    return ACTIVATIONS[cfg.name].build(channels, cfg)


def gain(cfg: ActivationConfig) -> float:
    """Init gain for weights feeding this activation: std = gain / sqrt(fan_in)."""
    check_choice("activation.name", cfg.name, list(ACTIVATIONS))
    return ACTIVATIONS[cfg.name].gain(cfg)
