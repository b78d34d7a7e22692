"""The conventional MNIST loop (pytorch/examples style): torchvision dataset with per-sample
ToTensor + Normalize, a DataLoader with batch 64, shuffle. Same network and init as actbench,
so only the data pipeline and the loop differ."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms

from actbench import config, models


def run(root: str, seed: int, epochs: int, subset: int | None, device: str) -> dict[str, Any]:
    torch.manual_seed(seed)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_ds = datasets.MNIST(root, train=True, download=False, transform=tf)
    if subset:
        train_ds = torch.utils.data.Subset(train_ds, range(subset))
    test_ds = datasets.MNIST(root, train=False, download=False, transform=tf)
    train_loader = torch.utils.data.DataLoader(train_ds, batch_size=64, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_ds, batch_size=1000)
    cfg = config.load("prelu.yaml")  # the same network and init as actbench's side
    model = models.build(cfg.model, cfg.activation, seed).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    epoch_s, test_s, acc = [], [], 0.0
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for data, target in train_loader:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data), target)
            loss.backward()
            optimizer.step()
        epoch_s.append(time.perf_counter() - t0)
        model.eval()
        t0 = time.perf_counter()
        correct = 0
        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                correct += (model(data).argmax(1) == target).sum().item()
        test_s.append(time.perf_counter() - t0)
        acc = correct / len(test_ds)
    return {"epoch_s": epoch_s, "test_s": test_s, "acc": acc, "images": len(train_ds)}


if __name__ == "__main__":  # a whole conventional training process, for the benchmark
    import argparse
    import os

    parser = argparse.ArgumentParser(description="the conventional MNIST loop")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=None)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = run(os.environ.get("ACTBENCH_DATA", "data"), 0, args.epochs, args.subset, device)
    print(f"test accuracy {100 * result['acc']:.2f}%")
