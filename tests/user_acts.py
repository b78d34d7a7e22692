"""Activation classes a user might name by import path (tests.user_acts:Name)."""

from __future__ import annotations

import torch
from torch import nn


class Scaled(nn.Module):
    """k * relu(x): a required argument, no channel count, no learned parameter."""

    init_gain = 1.0

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k * torch.relu(x)


class Broken(nn.Module):
    def __init__(self) -> None:
        raise RuntimeError("cannot build this")


class NotAModule:
    pass
