"""Two learnable activations, written as an actbench user would write them: plain
torch.nn.Modules, registered in pyproject.toml under the `actbench.activations` entry point
group. actbench passes a site's channel count to a constructor that takes `channels`, and
reads an `init_gain` class attribute for activation-matched init (model.init: auto)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class LearnedSwish(nn.Module):
    """Swish x * sigmoid(beta x) with a learned beta per channel (Ramachandran et al. 2017);
    beta = 1 is SiLU, beta -> inf approaches ReLU, beta = 0 is x / 2."""

    init_gain = math.sqrt(2.0)  # ReLU-like: passes about half the variance

    def __init__(self, channels: int, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.full((channels,), float(beta)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # beta: (channels,) broadcast over dim 1 of (N, C) or (N, C, H, W)
        beta = self.beta.view(1, -1, *([1] * (x.dim() - 2)))
        return x * torch.sigmoid(beta * x)


# Leaky ReLU (slope 0.01) as P(x) / Q(x), least-squares fit on x in [-3, 3] by
# `python -m actbench_examples.activations` (fit_leaky_relu below), as the PAU authors ship
# fitted initial coefficients for common activations.
LEAKY_RELU_NUMERATOR = (0.03255878, 0.52957956, 1.77884826, 2.18104474, 1.01339106, 0.16571793)
LEAKY_RELU_DENOMINATOR = (0.19622509, 4.08903054, 0.10115643, 0.31326022)


class Pade(nn.Module):
    """Safe Padé activation unit (Molina et al. 2020, "Padé Activation Units", ICLR):
    P(x) / (1 + sum_k |b_k| |x|^k), numerator degree 5, denominator degree 4, one set of
    coefficients per site, initialised to approximate leaky ReLU. The |.| keeps the
    denominator >= 1, so there are no poles."""

    # No init_gain: actbench uses its default (ReLU's) and notes it in the run.

    def __init__(
        self,
        numerator: Sequence[float] = LEAKY_RELU_NUMERATOR,  # a_0 .. a_5
        denominator: Sequence[float] = LEAKY_RELU_DENOMINATOR,  # b_1 .. b_4
    ) -> None:
        super().__init__()
        self.numerator = nn.Parameter(torch.tensor(numerator, dtype=torch.float32))
        self.denominator = nn.Parameter(torch.tensor(denominator, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Horner's rule; powers of x up to 5 for the numerator, of |x| up to 4 below.
        p = torch.zeros_like(x)
        for a in reversed(self.numerator):
            p = p * x + a
        ax = x.abs()
        q = torch.zeros_like(x)
        for b in reversed(self.denominator):
            q = (q + b.abs()) * ax
        return p / (1 + q)


def fit_leaky_relu(slope: float = 0.01, steps: int = 500) -> tuple[list[float], list[float]]:
    """Coefficients of Pade closest (mean squared error on [-3, 3]) to leaky ReLU."""
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    target = torch.where(x > 0, x, slope * x)
    # Start from the linearised problem P(x) - target * Q'(x) = target (least squares).
    cols = [x**j for j in range(6)] + [-target * x.abs() ** k for k in range(1, 5)]
    start = torch.linalg.lstsq(torch.stack(cols, 1), target.unsqueeze(1)).solution.squeeze(1)
    num = start[:6].clone().requires_grad_(True)
    den = start[6:].abs().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([num, den], max_iter=steps, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        p = sum(a * x**j for j, a in enumerate(num))
        q = 1 + sum(b.abs() * x.abs() ** (k + 1) for k, b in enumerate(den))
        value = ((p / q - target) ** 2).mean()
        value.backward()
        return value

    opt.step(loss)
    return num.tolist(), den.abs().tolist()


if __name__ == "__main__":
    numerator, denominator = fit_leaky_relu()
    print("numerator", [round(v, 8) for v in numerator])
    print("denominator", [round(v, 8) for v in denominator])
