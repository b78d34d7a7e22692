"""Activation classes a user might name by import path (tests.user_acts:Name)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from actbench.rundir import NODE_ENV


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


class WithLayer(nn.Module):
    """Holds its own bias-free linear layer (weights 0.5) that network init must not touch."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Linear(1, 1, bias=False)
        nn.init.constant_(self.mix.weight, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


class BadGain(nn.Module):
    @staticmethod
    def init_gain() -> float:
        return 1 / 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Tagged(nn.Module):
    """String and tuple arguments."""

    def __init__(self, tag: str, coeffs: tuple[float, ...] = (1.0,)) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(coeffs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) * self.scale[0]


class FlatOnly(nn.Module):
    """Learns a slope but only accepts (N, features) inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"expected 2 dimensions, got {x.dim()}")
        return self.a * x


class BroadcastSlope(nn.Module):
    """PReLU with its slope stored as (1, C, 1, 1), broadcast against conv outputs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.arange(channels, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a if x.dim() == 4 else self.a.view(1, -1)
        return torch.where(x > 0, x, a * x)


class FailsInTraining(nn.Module):
    """Fine at construction and shape checks (eval mode), raises once training has taken
    `after` steps: a user activation that breaks mid-run."""

    calls = 0

    def __init__(self, after: int = 5) -> None:
        super().__init__()
        self.after = after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            FailsInTraining.calls += 1
            if FailsInTraining.calls > self.after:
                raise RuntimeError("activation blew a fuse")
        return torch.relu(x)


class Dead(nn.Module):
    """0 for every input, with no gradient: a network dead from its first layer, as a ReLU
    network is once every unit of a layer has died."""

    init_gain = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(-x.abs())


class HeldOnNode(nn.Module):
    """ReLU that, trained on the Ray node `node`, stops its run in the run's second epoch
    (its first training batch after an evaluation): it writes `<folder>/held-<pid>` and waits
    for its node to die. A test kills the node on that file, knowing the run is mid-way,
    whatever the machine's speed. On any other node (or outside Ray) a plain ReLU."""

    init_gain = 1.0

    def __init__(self, node: str, folder: str) -> None:
        super().__init__()
        self.node, self.folder = node, folder
        self.trained = self.evaluated = False  # since construction: one run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            self.evaluated = self.trained
        elif self.evaluated and os.environ.get(NODE_ENV) == self.node:
            (Path(self.folder) / f"held-{os.getpid()}").write_text("")
            while True:  # until the node dies, taking this process with it
                time.sleep(1)
        else:
            self.trained = True
        return torch.relu(x)
