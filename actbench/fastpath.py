"""What the machine is and can do, for the execution path `auto` picks (calibrate.py): the
device, the CPU's model and flags, and whether bf16 is native (AVX512-BF16 or AMX, or a GPU
that supports it): emulated, bf16 made LeNet++ 11-14x slower on an AVX2-only CPU."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
from pathlib import Path
from typing import Any

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpuinfo_field(*names: str) -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith(names):
            return line.split(":", 1)[1].strip()
    return ""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo is unavailable."""
    return frozenset(_cpuinfo_field("flags", "Features").split())


def cpu_model() -> str:
    """The CPU's model name (Linux); empty where /proc/cpuinfo is unavailable."""
    return _cpuinfo_field("model name")


def describe_machine() -> str:
    """The processor a run trained on, as a reader compares machines: the CPU's model, its
    CPUs, and the vector units that decide its speed (the model name alone, e.g. 'AMD
    EPYC', does not tell a Zen 3 from a Zen 4)."""
    flags = cpu_flags()
    if "avx512f" in flags:
        isa = "AVX-512" + (", native bf16" if cpu_has_native_bf16() else ", bf16 emulated")
    elif "avx2" in flags:
        isa = "AVX2, no AVX-512, bf16 emulated"
    else:
        isa = platform.machine()
    # the CPUs this process may use (a container's or a Ray slot's), not the host's
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model() or platform.machine() or 'unknown CPU'} ({cpus} CPUs; {isa})"


def cpu_has_native_bf16() -> bool:
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def native_bf16(device_type: str) -> bool:
    """Whether bf16 matmuls/convs run natively (not emulated) on this device type."""
    if device_type == "cpu":
        return cpu_has_native_bf16()
    if device_type == "cuda":
        import torch

        return bool(  # emulated bf16 (pre-Ampere GPUs) is not native
            torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        )
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


def machine_id(device: Any) -> dict[str, str]:
    """What a calibration's timing depends on besides the network: the processor (CPU model
    and flags, or the GPU's name) and torch's version."""
    import torch

    if device.type == "cuda":
        proc = torch.cuda.get_device_name(device)
    else:
        proc = cpu_model() or platform.processor() or platform.machine()
    flags = " ".join(sorted(cpu_flags()))
    return {
        "device": device.type,
        "processor": proc,
        "cpu_flags": hashlib.sha256(flags.encode()).hexdigest()[:16],
        "torch": torch.__version__,
    }
