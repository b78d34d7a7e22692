"""The two networks, with one activation module per site and activation-matched init."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from actbench import activations, plugins, registry
from actbench.config import ActivationConfig, ModelConfig
from actbench.errors import ActbenchError
from actbench.rundir import SHAPE_GRID

INPUT_SHAPE = (1, registry.IMAGE_SIDE, registry.IMAGE_SIDE)  # grey images: channels, height, width


def _flat_size(features: Callable[[torch.Tensor], torch.Tensor], module: nn.Module) -> int:
    """Features per image after the conv stack, from a dry run (eval mode: no RNG drawn)."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        size = features(torch.zeros(1, *INPUT_SHAPE)).flatten(1).shape[1]
    module.train(was_training)
    return size


def _add_site(model: nn.Module, name: str, act: ActivationConfig, shape: tuple[int, ...]) -> None:
    """A new activation module at site `name`; shape: (channels, 1, 1) after a conv (what a
    per-channel module broadcasts over), (features,) after a linear layer."""
    model.acts[name] = activations.create(act, shape[0])
    model.site_shapes[name] = shape


class LeNet(nn.Module):
    """LeNet-style net of the PyTorch MNIST example: 2 conv + 2 fc layers."""

    def __init__(self, act: ActivationConfig, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.pool = nn.MaxPool2d(2)
        # Sites in network order; their keys name the site in a_values.csv / act_params.csv.
        self.acts = nn.ModuleDict()
        self.site_shapes: dict[str, tuple[int, ...]] = {}  # one sample's shape at the site
        _add_site(self, "conv1", act, (10, 1, 1))
        _add_site(self, "conv2", act, (20, 1, 1))
        self.fc1 = nn.Linear(_flat_size(self.features, self), 50)  # 20 * 4 * 4 = 320
        _add_site(self, "fc1", act, (50,))
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
        self.site_shapes: dict[str, tuple[int, ...]] = {}
        in_ch = INPUT_SHAPE[0]
        for i, out_ch in enumerate(self.widths):
            name = f"conv{i // 2 + 1}_{i % 2 + 1}"
            self.convs[name] = nn.Conv2d(in_ch, out_ch, kernel_size=5, padding=2)
            _add_site(self, name, act, (out_ch, 1, 1))
            in_ch = out_ch
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(_flat_size(self.features, self), 2)  # 128 * 3 * 3 = 1152 -> 2
        _add_site(self, "fc1", act, (2,))
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
    inside_acts = {id(m) for act_module in activation_sites(model).values()
                   for m in act_module.modules()}  # fmt: skip
    # The network's layers only: layers inside a user activation keep their own init.
    layers = [m for m in model.modules()
              if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in inside_acts]  # fmt: skip
    act_gain = activations.gain(act)
    for layer in layers:
        fan_in = layer.weight[0].numel()
        gain = 1.0 if layer is layers[-1] else act_gain  # last layer: no activation follows
        noise = torch.randn(layer.weight.shape, generator=gen)
        with torch.no_grad():
            layer.weight.copy_(noise * (gain / math.sqrt(fan_in)))
            if layer.bias is not None:
                layer.bias.zero_()


def build(cfg: ModelConfig, act: ActivationConfig, seed: int) -> nn.Module:
    """A freshly initialised network."""
    torch.manual_seed(seed)  # init: torch draws framework defaults from the global RNG
    try:
        model = registry.resolve(registry.NETWORKS[cfg.net].cls)(act)
    except ActbenchError:
        raise
    except Exception as exc:  # a user activation failing in the flatten-size dry run
        what = f"activation: {act.name} fails on a (N, channels, H, W) input"
        raise plugins.failure(what, exc) from None
    if cfg.init == "auto":
        init_weights(model, act, seed)
    return model


def activation_sites(model: nn.Module) -> dict[str, nn.Module]:
    """Activation modules by site name, in network order."""
    return dict(model.acts.items())


# Modules that compute differently in training than in evaluation (random masks or slopes).
# User activations are taken to compute the same in both (README: dead networks).
NOISY = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
         nn.FeatureAlphaDropout, nn.RReLU)  # fmt: skip


@torch.no_grad()
def sites_before_noise(model: nn.Module, x: torch.Tensor) -> list[str]:
    """The sites whose input passes through no NOISY module, found by calling the model on x
    (one or a few images) in eval mode: there a unit computes the same in training as in
    evaluation, so one that outputs 0 for every image in evaluation gets no gradient."""
    calls: list[nn.Module] = []  # sites and NOISY modules, in the order the model calls them
    sites = {id(m): name for name, m in activation_sites(model).items()}
    hooks = [m.register_forward_pre_hook(lambda mod, _inp: calls.append(mod))
             for m in model.modules() if id(m) in sites or isinstance(m, NOISY)]  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    out: list[str] = []
    for module in calls:
        if id(module) in sites:  # an RReLU site's own input is still noise-free: it counts
            out.append(sites[id(module)])
        if isinstance(module, NOISY):
            break
    return list(dict.fromkeys(out))


def activation_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every learned parameter of the activation modules (PReLU's a, a user activation's
    coefficients): excluded from ordinary weight decay."""
    return [p for module in activation_sites(model).values() for p in module.parameters()]


# One row per learned value: (site, parameter, channel or None when shared by the site's
# channels, index within the channel's slice, value).
ParamRow = tuple[str, str, int | None, int, float]


def activation_params(model: nn.Module, act: ActivationConfig) -> list[ParamRow]:
    """Every learned activation parameter, in network order. A parameter whose first
    dimension, after leading 1s (a (1, C, 1, 1) broadcast shape), is the site's channel count
    is channel-wise (one slice per channel)."""
    rows: list[ParamRow] = []
    for site, module in activation_sites(model).items():
        channels = model.site_shapes[site][0]
        for pname, p in module.named_parameters():
            label = activations.param_label(act, pname)
            values = p.detach().float().cpu()
            while values.ndim > 1 and values.shape[0] == 1:
                values = values[0]
            if values.ndim >= 1 and channels > 1 and values.shape[0] == channels:
                for c in range(channels):
                    flat = values[c].reshape(-1).tolist()
                    rows += [(site, label, c, i, v) for i, v in enumerate(flat)]
            else:
                rows += [
                    (site, label, None, i, v) for i, v in enumerate(values.reshape(-1).tolist())
                ]
    return rows


# (site, x, lowest, median and highest y over the site's channels)
ShapeRow = tuple[str, float, float, float, float]


def activation_shapes(model: nn.Module) -> list[ShapeRow]:
    """The function each site with learned parameters computes on rundir.SHAPE_GRID, in eval
    mode and fp32, so a run shows its learned shapes without importing the activation's code."""
    rows: list[ShapeRow] = []
    lo, hi, n = SHAPE_GRID
    for site, module in activation_sites(model).items():
        params = list(module.parameters())
        if not params:
            continue
        shape = model.site_shapes[site]
        x = torch.linspace(lo, hi, n, device=params[0].device)
        inputs = x.view(n, *([1] * len(shape))).expand(n, *shape).contiguous()
        was_training = module.training
        module.eval()
        with (
            torch.no_grad(),
            torch.random.fork_rng(devices=[]),
            torch.autocast(x.device.type, enabled=False),
        ):
            y = module(inputs).float().reshape(n, shape[0], -1)[..., 0]  # (n, channels)
        module.train(was_training)
        low, med, high = y.min(1).values, y.median(1).values, y.max(1).values
        rows += [
            (site, a, b, c, d)
            for a, b, c, d in zip(
                x.tolist(), low.tolist(), med.tolist(), high.tolist(), strict=True
            )
        ]
    return rows


def slopes(rows: list[ParamRow], act: ActivationConfig) -> list[tuple[str, int, float]]:
    """(site, channel, a) for every PReLU slope (a_values.csv), from activation_params."""
    if act.name != "prelu":
        return []
    return [(site, channel or 0, a) for site, _, channel, _, a in rows]
