"""Activation modules from the registry: one new module per site (never shared)."""

from __future__ import annotations

from torch import nn

from actbench.config import ActivationConfig, check_choice
from actbench.registry import ACTIVATIONS


def create(cfg: ActivationConfig, channels: int) -> nn.Module:
    """A new activation module for a site with `channels` channels (or features)."""
    spec = ACTIVATIONS[check_choice("activation.name", cfg.name, list(ACTIVATIONS))]
    kwargs = (
        spec.kwargs(cfg, channels) if spec.kwargs else {p: getattr(cfg, p) for p in spec.params}
    )
    return getattr(nn, spec.module)(**kwargs)


def gain(cfg: ActivationConfig) -> float:
    """Init gain for weights feeding this activation: std = gain / sqrt(fan_in)."""
    return ACTIVATIONS[check_choice("activation.name", cfg.name, list(ACTIVATIONS))].gain(cfg)
