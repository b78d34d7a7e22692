"""The two networks, with one activation module per site and activation-matched init."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from actbench import activations, registry
from actbench.config import ActivationConfig, ModelConfig

INPUT_SHAPE = (1, 28, 28)  # MNIST / Fashion-MNIST: channels, height, width


def _flat_size(features: Callable[[torch.Tensor], torch.Tensor], module: nn.Module) -> int:
    """Features per image after the conv stack, from a dry run (eval mode: no RNG drawn)."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        size = features(torch.zeros(1, *INPUT_SHAPE)).flatten(1).shape[1]
    module.train(was_training)
    return size


class LeNet(nn.Module):
    """LeNet-style net of the PyTorch MNIST example: 2 conv + 2 fc layers."""

    def __init__(self, act: ActivationConfig, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.pool = nn.MaxPool2d(2)
        # Sites in network order; their keys name the layer in a_values.csv.
        self.acts = nn.ModuleDict(
            {"conv1": activations.create(act, 10), "conv2": activations.create(act, 20)}
        )
        self.fc1 = nn.Linear(_flat_size(self.features, self), 50)  # 20 * 4 * 4 = 320
        self.acts["fc1"] = activations.create(act, 50)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(50, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.acts["conv1"](self.pool(self.conv1(x)))
        x = self.acts["conv2"](self.pool(self.conv2_drop(self.conv2(x))))
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.acts["fc1"](self.fc1(self.features(x))))
        return self.fc2(x)


class LeNetPP(nn.Module):
    """LeNet++: three pairs of 5x5 convs (32-32-64-64-128-128), a 2-D fc layer, 10 classes."""

    widths = (32, 32, 64, 64, 128, 128)

    def __init__(self, act: ActivationConfig, num_classes: int = 10) -> None:
        super().__init__()
        self.convs = nn.ModuleDict()
        self.acts = nn.ModuleDict()
        in_ch = INPUT_SHAPE[0]
        for i, out_ch in enumerate(self.widths):
            name = f"conv{i // 2 + 1}_{i % 2 + 1}"
            self.convs[name] = nn.Conv2d(in_ch, out_ch, kernel_size=5, padding=2)
            self.acts[name] = activations.create(act, out_ch)
            in_ch = out_ch
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(_flat_size(self.features, self), 2)  # 128 * 3 * 3 = 1152 -> 2
        self.acts["fc1"] = activations.create(act, 2)
        self.fc2 = nn.Linear(2, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for i, (name, conv) in enumerate(self.convs.items()):
            x = self.acts[name](conv(x))
            if i % 2 == 1:  # pool after each pair: 28 -> 14 -> 7 -> 3
                x = self.pool(x)
        return x.flatten(1)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 2-D bottleneck features before and after its activation, each (N, 2)."""
        pre = self.fc1(self.features(x))
        return pre, self.acts["fc1"](pre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.embed(x)[1])


def init_weights(model: nn.Module, act: ActivationConfig, seed: int) -> None:
    """He normal with the activation's gain (LeCun for SELU), zero biases; the classifier
    gets gain 1. One generator draws the same numbers whatever the activation."""
    gen = torch.Generator().manual_seed(seed)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    act_gain = activations.gain(act)
    for layer in layers:
        fan_in = layer.weight[0].numel()
        gain = 1.0 if layer is layers[-1] else act_gain  # last layer: no activation follows
        noise = torch.randn(layer.weight.shape, generator=gen)
        with torch.no_grad():
            layer.weight.copy_(noise * (gain / math.sqrt(fan_in)))
            layer.bias.zero_()


def build(cfg: ModelConfig, act: ActivationConfig, seed: int) -> nn.Module:
    """A freshly initialised network."""
    torch.manual_seed(seed)  # init: torch draws framework defaults from the global RNG
    model = registry.resolve(registry.NETWORKS[cfg.net].cls)(act)
    if cfg.init == "auto":
        init_weights(model, act, seed)
    return model


def activation_sites(model: nn.Module) -> dict[str, nn.Module]:
    """Activation modules by site name, in network order."""
    return dict(model.acts.items())


def slope_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The learned PReLU slopes (excluded from ordinary weight decay)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.PReLU)]


def slopes(model: nn.Module) -> list[tuple[str, int, float]]:
    """(site, channel, a) for every PReLU slope, in network order."""
    rows = []
    for site, module in activation_sites(model).items():
        if isinstance(module, nn.PReLU):
            values = module.weight.detach().float().cpu().tolist()
            rows += [(site, channel, a) for channel, a in enumerate(values)]
    return rows
