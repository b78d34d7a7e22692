"""The execution path a run uses when its config says `auto`: precision and memory layout per
network and device, chosen from what the hardware supports at run time.

The choices come from measurements (README: Performance): channels_last speeds up both
networks on CPU (max-pooling is ~5x faster in NHWC); bf16 autocast pays only on LeNet++ and
only where the CPU computes bf16 natively (AVX512-BF16 or AMX). Without native bf16 it is
emulated and 11-14x slower, so it is never chosen there."""

from __future__ import annotations

import functools
from pathlib import Path

from actbench import registry
from actbench.config import Config

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo is unavailable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_native_bf16() -> bool:
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def native_bf16(device_type: str) -> bool:
    """Whether bf16 matmuls/convs run natively (not emulated) on this device type."""
    if device_type == "cpu":
        return cpu_has_native_bf16()
    if device_type == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def device_type(name: str) -> str:
    """cpu / cuda / mps for a train.device value ('auto' asks torch what is there)."""
    if name != "auto":
        return name.split(":")[0]
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps and mps.is_available() else "cpu"


def resolve(cfg: Config) -> Config:
    """A copy of cfg with train.precision and train.channels_last decided (no 'auto' left)."""
    cfg = cfg.model_copy(deep=True)
    net = registry.NETWORKS[cfg.model.net]
    dev = None
    if cfg.train.precision == "auto":
        dev = device_type(cfg.train.device)
        cfg.train.precision = "bf16" if net.bf16_pays and native_bf16(dev) else "fp32"
    if cfg.train.channels_last == "auto":
        dev = dev or device_type(cfg.train.device)
        cfg.train.channels_last = dev in ("cpu", "cuda") and net.channels_last
    return cfg
