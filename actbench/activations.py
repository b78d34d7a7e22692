"""Activation modules from the registry or user code: one new module per site (never shared)."""

from __future__ import annotations

from torch import nn

from actbench import plugins
from actbench.config import ActivationConfig, check_choice, is_builtin
from actbench.errors import ActbenchError
from actbench.registry import ACTIVATIONS


def check(cfg: ActivationConfig) -> type | None:
    """The user activation's class with its arguments checked (imports it), or None for a
    built-in; one-line ActbenchError if it cannot be imported or does not take the arguments."""
    if is_builtin(cfg.name):
        return None
    cls = plugins.load(cfg.name)
    if not issubclass(cls, nn.Module):
        raise ActbenchError(f"activation.name: {plugins.target(cfg.name)} is not a torch.nn.Module")
    plugins.check_args(cfg.name, cls, cfg.args)
    return cls


def create(cfg: ActivationConfig, channels: int) -> nn.Module:
    """A new activation module for a site with `channels` channels (or features)."""
    cls = check(cfg)
    if cls is None:
        spec = ACTIVATIONS[check_choice("activation.name", cfg.name, list(ACTIVATIONS))]
        kwargs = (
            spec.kwargs(cfg, channels) if spec.kwargs else {p: getattr(cfg, p) for p in spec.params}
        )
        return getattr(nn, spec.module)(**kwargs)
    kwargs = dict(cfg.args)
    if plugins.takes_channels(cls):
        kwargs[plugins.CHANNELS] = channels
    try:
        return cls(**kwargs)
    except Exception as exc:  # user code may raise anything
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise ActbenchError(
            f"activation: {plugins.target(cfg.name)} could not be built ({why[:160]})"
        ) from None


def gain(cfg: ActivationConfig) -> float:
    """Init gain for weights feeding this activation: std = gain / sqrt(fan_in)."""
    cls = check(cfg)
    if cls is None:
        return ACTIVATIONS[check_choice("activation.name", cfg.name, list(ACTIVATIONS))].gain(cfg)
    declared = plugins.gain(cls, cfg.args)
    return plugins.DEFAULT_GAIN if declared is None else declared


def preflight(cfg: ActivationConfig) -> None:
    """Import, check the arguments, build one module and read its gain: what a run of this
    activation needs, checked before a sweep starts any run."""
    create(cfg, 2)
    gain(cfg)


def gain_note(cfg: ActivationConfig) -> str | None:
    """What the run should say when a user activation declares no init gain."""
    cls = check(cfg)
    if cls is None or plugins.gain(cls, cfg.args) is not None:
        return None
    return (
        f"{cfg.name} declares no {plugins.GAIN}; model.init: auto used the default gain "
        f"sqrt(2) (ReLU's)"
    )


def param_label(cfg: ActivationConfig, name: str) -> str:
    """What a learned parameter is called in tables: PReLU's weight is the paper's a."""
    spec = ACTIVATIONS.get(cfg.name)
    return spec.param_names.get(name, name) if spec else name
