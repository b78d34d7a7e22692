"""Config loading, validation and --set overrides, through the library and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actbench import config, sweep
from actbench.cli import app
from actbench.errors import ActbenchError

from .conftest import CONFIGS

runner = CliRunner()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    cfg = config.load(path)
    assert cfg.model.net in config.NETS
    assert cfg.train.epochs == 10
    if cfg.model.net == "lenetpp":
        assert (cfg.optim.momentum, cfg.optim.weight_decay, cfg.train.batch_size) == (
            0.9,
            5e-4,
            128,
        )
        assert cfg.optim.slope_weight_decay == 0
    else:
        assert (cfg.optim.lr, cfg.optim.momentum, cfg.train.batch_size) == (0.01, 0.5, 64)
        assert cfg.train.test_batch_size == 1000


@pytest.mark.parametrize(
    "name", ["prelu_channel", "prelu_channel.yaml", "configs/prelu_channel.yaml"]
)
def test_shipped_configs_are_found_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)  # not the repo root: the package's shipped configs
    cfg = config.load(name)
    assert (cfg.activation.name, cfg.activation.per_channel) == ("prelu", True)
    assert sweep.load("sweeps/activations.yaml").name == "activations"
    assert sweep.load("lenetpp").name == "lenetpp"


def test_a_file_that_exists_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("prelu.yaml").write_text("activation: {name: elu}\n")
    assert config.load("prelu.yaml").activation.name == "elu"
    assert config.load("prelu").activation.name == "prelu"  # not a file here: the shipped one
    with pytest.raises(ActbenchError, match=r"config file not found: nope .* prelu_channel"):
        config.load("nope")


def test_overrides_parse_yaml_scalars() -> None:
    cfg = config.load(
        "prelu.yaml",
        [
            "train.epochs=2",
            "activation.per_channel=true",
            "optim.lr=1e-3",
            "name=quick",
            "data.train_subset=500",
            "data.root=null",
        ],
    )
    assert cfg.train.epochs == 2 and cfg.activation.per_channel is True
    assert cfg.optim.lr == 0.001 and cfg.name == "quick" and cfg.data.train_subset == 500
    assert config.activation_label(cfg.activation) == "prelu-channel"


def test_resolved_config_lists_only_the_activations_parameters() -> None:
    data = config.to_dict(config.load("leaky_relu.yaml"))
    assert data["activation"] == {"name": "leaky_relu", "negative_slope": 0.01}
    assert data["optim"]["slope_weight_decay"] == 0.0
    assert config.from_mapping(data) == config.load("leaky_relu.yaml")


def test_labels_name_the_variant() -> None:
    label = config.activation_label
    assert label(config.ActivationConfig(name="prelu")) == "prelu"
    assert label(config.ActivationConfig(name="prelu", per_channel=True)) == "prelu-channel"
    assert (
        label(config.ActivationConfig(name="leaky_relu", negative_slope=0.2)) == "leaky_relu(0.2)"
    )
    assert label(config.ActivationConfig(name="leaky_relu")) == "leaky_relu"


BAD = [
    ({"activation": {"name": "swishy"}}, "activation.name: unknown value 'swishy'"),
    ({"optim": {"lrr": 0.1}}, "unknown key 'optim.lrr' (did you mean 'lr'?)"),
    ({"trian": {}}, "unknown key 'trian' (did you mean 'train'?)"),
    ({"optim": {"lr": 0}}, "optim.lr: must be greater than 0, got 0"),
    ({"optim": {"lr": "fast"}}, "optim.lr: must be a valid number, got 'fast'"),
    ({"train": {"epochs": 0}}, "train.epochs: must be greater than or equal to 1, got 0"),
    ({"train": {"epochs": 2.5}}, "train.epochs: must be a valid integer, got 2.5"),
    ({"train": {"epochs": True}}, "train.epochs: must be a valid integer, got True"),
    (
        {"activation": {"name": "rrelu", "lower": 0.5, "upper": 0.1}},
        "activation.lower (0.5) must be <= activation.upper (0.1)",
    ),
    (
        {"activation": {"name": "relu", "per_channel": True}},
        "activation.per_channel does not apply to relu; its parameters: none",
    ),
    ({"model": {"net": "resnet"}}, "allowed: lenet, lenetpp"),
    ({"data": {"dataset": "cifar"}}, "data.dataset: unknown value 'cifar'"),
    ({"train": {"device": "tpu"}}, "train.device: unknown value 'tpu'"),
    ({"model": "lenet"}, "model: expected a mapping of keys, got str"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_values_are_named(data: dict, message: str) -> None:
    with pytest.raises(ActbenchError) as err:
        config.from_mapping(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trian.epochs=2", "unknown key 'trian' (did you mean 'train'?)"),
        ("train.epochs", "expected KEY.PATH=VALUE"),
        ("train=3", "train is a section; set one of its keys"),
        ("train.epochs.x=1", "unknown key 'train.epochs.x'"),
        ("train.epochs=[1, 2]", "train.epochs: must be a valid integer, got [1, 2]"),
        ("train={a: 1}", "the value must be a scalar or a [list]"),
    ],
)
def test_bad_overrides(text: str, message: str) -> None:
    with pytest.raises(ActbenchError, match=re.escape(message)):
        config.load("relu.yaml", [text])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("activation:\n  name: swishy\n", "activation.name: unknown value 'swishy'"),
        ("optim:\n  lrr: 0.1\n", "unknown key 'optim.lrr' (did you mean 'lr'?)"),
        ("optim:\n  lr: [0.1\n", "line 3, column 1: invalid YAML"),
        ("- relu\n- prelu\n", "the top level must be a mapping of sections, got list"),
    ],
)
def test_cli_config_errors_exit_2_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    runs = tmp_path / "runs"
    result = runner.invoke(
        app, ["train", "--config", str(_write(tmp_path, text)), "--runs-dir", str(runs)]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not runs.exists()  # nothing written


def test_cli_missing_config_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr and "nope.yaml" in result.stderr


def test_cli_list_shows_registry_and_nets() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "  prelu       per_channel=False, init=0.25" in result.stdout  # a boolean
    for name in config.ACTIVATION_PARAMS:
        assert f"  {name}" in result.stdout
    assert "  lenetpp" in result.stdout
