"""The execution path `auto` picks, with the CPU's bf16 capability mocked both ways."""

from __future__ import annotations

import pytest

from actbench import config, fastpath


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(fastpath, "cpu_flags", lambda: frozenset(flags))

    return set_flags


@pytest.mark.parametrize(
    ("flags", "net", "precision", "channels_last"),
    [
        (("avx2", "avx512f", "avx512_bf16"), "lenetpp", "bf16", True),
        (("avx2", "amx_bf16"), "lenetpp", "bf16", True),
        (("avx2", "avx512f"), "lenetpp", "fp32", True),  # bf16 emulated: 11-14x slower
        (("avx2", "avx512_bf16"), "lenet", "fp32", True),  # bf16 does not pay on LeNet
        ((), "lenet", "fp32", True),
    ],
)
def test_shipped_configs_pick_the_fast_path(
    cpu, flags: tuple[str, ...], net: str, precision: str, channels_last: bool
) -> None:
    cpu(*flags)
    name = "lenetpp_prelu.yaml" if net == "lenetpp" else "prelu.yaml"
    cfg = fastpath.resolve(config.load(name, ["train.device=cpu"]))
    assert (cfg.train.precision, cfg.train.channels_last) == (precision, channels_last)


def test_explicit_choices_are_kept(cpu) -> None:
    cpu("avx512_bf16")
    sets = ["train.device=cpu", "train.precision=fp32", "train.channels_last=false"]
    cfg = fastpath.resolve(config.load("lenetpp_prelu.yaml", sets))
    assert (cfg.train.precision, cfg.train.channels_last) == ("fp32", False)


def test_the_fingerprint_follows_the_resolved_precision(cpu) -> None:
    cpu("avx512_bf16")
    native = fastpath.resolve(config.load("lenetpp_relu.yaml", ["train.device=cpu"]))
    cpu()
    emulated = fastpath.resolve(config.load("lenetpp_relu.yaml", ["train.device=cpu"]))
    assert config.fingerprint(native) != config.fingerprint(emulated)
    assert config.differences(native, emulated) == ["train.precision: 'bf16' != 'fp32'"]
