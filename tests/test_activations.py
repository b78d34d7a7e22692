"""The activation registry and the networks built from it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from actbench import activations, data, models, registry
from actbench.config import ActivationConfig, ModelConfig
from actbench.errors import ActbenchError

NETS = list(registry.NETWORKS)
# Expected sites and their channel counts, in network order.
SITES = {
    "lenet": {"conv1": 10, "conv2": 20, "fc1": 50},
    "lenetpp": {
        "conv1_1": 32,
        "conv1_2": 32,
        "conv2_1": 64,
        "conv2_2": 64,
        "conv3_1": 128,
        "conv3_2": 128,
        "fc1": 2,
    },
}


def test_registries_are_complete() -> None:
    for name in ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu"):
        assert name in registry.ACTIVATIONS
    for name, spec in registry.ACTIVATIONS.items():
        assert isinstance(activations.create(ActivationConfig(name=name), 3), nn.Module)
        assert set(spec.params) <= set(ActivationConfig.model_fields), name
        assert spec.gain(ActivationConfig(name=name)) > 0
    for name, net in registry.NETWORKS.items():
        model = models.build(ModelConfig(net=name), ActivationConfig(), 0)
        assert tuple(models.activation_sites(model)) == net.sites
    for name, ds in registry.DATASETS.items():
        assert set(ds.sha256) == set(data.FILES), name
        assert 0 < ds.mean < 1 and 0 < ds.std < 1


def test_registries_import_without_torch() -> None:
    import subprocess
    import sys

    code = "import sys, actbench.registry, actbench.config; print('torch' in sys.modules)"
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"


def test_unknown_activation_lists_valid_names() -> None:
    with pytest.raises(ActbenchError, match=r"activation.name: unknown value 'swishy'.*relu"):
        activations.create(ActivationConfig(name="swishy"), 3)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("name", list(registry.ACTIVATIONS))
def test_every_activation_trains_on_every_net(name: str, net: str) -> None:
    model = models.build(ModelConfig(net=net), ActivationConfig(name=name), seed=0)
    out = model(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    sites = models.activation_sites(model)
    assert list(sites) == list(SITES[net])
    # One module instance per site: a shared PReLU would silently tie the slopes.
    assert len({id(m) for m in sites.values()}) == len(sites)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_prelu_slope_counts(net: str, per_channel: bool) -> None:
    act = ActivationConfig(name="prelu", per_channel=per_channel, init=0.3)
    model = models.build(ModelConfig(net=net), act, seed=0)
    for site, module in models.activation_sites(model).items():
        assert isinstance(module, nn.PReLU)
        assert module.weight.numel() == (SITES[net][site] if per_channel else 1)
    rows = models.slopes(models.activation_params(model, act), act)
    expected = sum(SITES[net].values()) if per_channel else len(SITES[net])
    assert len(rows) == expected
    assert all(a == pytest.approx(0.3) for _, _, a in rows)
    assert len(models.activation_parameters(model)) == len(SITES[net])


def test_prelu_gradient_of_a_is_sum_over_negative_inputs() -> None:
    prelu = activations.create(ActivationConfig(name="prelu", per_channel=True), 2)
    x = torch.tensor([[[1.5, -2.0], [-0.5, 3.0]], [[-1.0, -4.0], [2.0, 0.0]]]).unsqueeze(0)
    upstream = torch.tensor([[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]]).unsqueeze(0)
    prelu(x).backward(upstream)
    # channel 0: (-2.0 * 0.2) + (-0.5 * 0.3); channel 1: (-1.0 * 0.5) + (-4.0 * 0.6)
    assert prelu.weight.grad.tolist() == pytest.approx([-0.55, -2.9])


def test_rrelu_random_in_training_mean_slope_in_eval() -> None:
    cfg = ActivationConfig(name="rrelu", lower=0.1, upper=0.3)
    rrelu = activations.create(cfg, 1)
    x = -torch.ones(10_000)
    rrelu.train()
    slopes = -rrelu(x)
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3
    assert slopes.std() > 0.03  # uniform on [0.1, 0.3]: std 0.0577
    rrelu.eval()
    assert torch.allclose(-rrelu(x), torch.full_like(x, 0.2))


@pytest.mark.parametrize(
    ("act", "gain2"),
    [
        (ActivationConfig(name="relu"), 2.0),
        (ActivationConfig(name="prelu", init=0.25), 2.0 / (1 + 0.25**2)),
        (ActivationConfig(name="leaky_relu", negative_slope=0.2), 2.0 / (1 + 0.2**2)),
        (ActivationConfig(name="rrelu", lower=0.1, upper=0.3), 2.0 / (1 + 0.2**2)),
        (ActivationConfig(name="selu"), 1.0),  # LeCun normal
    ],
)
def test_auto_init_variance_matches_formula(act: ActivationConfig, gain2: float) -> None:
    model = models.build(ModelConfig(net="lenet", init="auto"), act, seed=0)
    for layer, is_last in ((model.conv2, False), (model.fc1, False), (model.fc2, True)):
        fan_in = layer.weight[0].numel()
        expected = (1.0 if is_last else gain2) / fan_in
        assert layer.weight.var().item() == pytest.approx(expected, rel=0.08)
        assert torch.all(layer.bias == 0)


def test_same_seed_same_draws_whatever_the_activation() -> None:
    auto = ModelConfig(init="auto")
    relu = models.build(auto, ActivationConfig(name="relu"), seed=3)
    prelu = models.build(auto, ActivationConfig(name="prelu"), seed=3)
    ratio = prelu.fc1.weight / relu.fc1.weight
    assert torch.allclose(ratio, torch.full_like(ratio, math.sqrt(1 / (1 + 0.25**2))), atol=1e-5)
    assert torch.equal(relu.fc2.weight, prelu.fc2.weight)  # gain 1 for both
    other = models.build(auto, ActivationConfig(name="relu"), seed=4)
    assert not torch.equal(relu.fc1.weight, other.fc1.weight)
    # The framework default draws from the global RNG: identical weights for every activation.
    plain = [models.build(ModelConfig(), ActivationConfig(name=n), seed=3) for n in ("relu", "elu")]
    assert torch.equal(plain[0].conv2.weight, plain[1].conv2.weight)


def test_flatten_sizes_are_computed() -> None:
    lenet = models.build(ModelConfig(net="lenet"), ActivationConfig(), 0)
    lenetpp = models.build(ModelConfig(net="lenetpp"), ActivationConfig(), 0)
    assert lenet.fc1.in_features == 20 * 4 * 4
    assert lenetpp.fc1.in_features == 128 * 3 * 3
    pre, post = lenetpp.embed(torch.randn(5, 1, 28, 28))
    assert pre.shape == post.shape == (5, 2)
