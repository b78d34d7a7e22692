"""Training and evaluation: data resident as tensors, batches sliced from a seeded permutation."""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actbench import activations, data, fastpath, models, plugins, registry
from actbench.config import Config, OptimConfig, is_builtin
from actbench.errors import ActbenchError

# (batches done, batches in the epoch, running mean train loss) -> None; called every
# PROGRESS_EVERY batches. Reading the loss syncs a GPU, so not every batch.
Progress = Callable[[int, int, float], None]
PROGRESS_EVERY = 50
# A running train loss this far above the loss of uniform guessing (ln 10 = 2.30 nats) means
# the run has blown up even when the numbers stay finite (e.g. optim.lr: 100).
DIVERGED_LOSS = 10 * math.log(10)


def diverged(loss: float) -> bool:
    """NaN, infinite, or far worse than guessing."""
    return not math.isfinite(loss) or loss > DIVERGED_LOSS


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    train_acc: float  # fraction 0..1
    test_loss: float
    test_acc: float  # fraction 0..1
    seconds: float  # train + validation + test pass, wall clock
    lr: float = math.nan  # learning rate the epoch's last step used (nan: older runs)
    val_loss: float = math.nan  # nan: no validation split
    val_acc: float = math.nan


class _Stopped(Exception):
    """evaluate's should_stop said stop between batches."""


@dataclass
class Evaluation:
    """One pass over a held-out split in eval mode."""

    images: int
    loss: float  # mean cross-entropy, nats
    acc: float  # fraction 0..1
    per_class_acc: list[float]  # fraction per class 0..9
    dead_units: dict[str, float] | None = None  # details: per site, fraction never non-zero
    features2d: dict[str, Any] | None = None  # details, LeNet++: the 2-D bottleneck features


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an unavailable device is a user error."""
    if name == "auto":
        return torch.device(fastpath.device_type(name))
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ActbenchError(f"train.device: {name} requested but CUDA is not available here")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ActbenchError(
            f"train.device: {name} requested but only {torch.cuda.device_count()} GPU(s) exist"
        )
    if name == "mps" and not (torch.backends.mps.is_available()):
        raise ActbenchError("train.device: mps requested but MPS is not available here")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(cfg: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Learned activation parameters (PReLU slopes, ...) get their own weight decay (default
    0, which keeps PReLU from drifting to ReLU); every other parameter gets weight_decay."""
    slope_ids = {id(p) for p in models.activation_parameters(model)}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in slope_ids]},
        {
            "params": [p for p in model.parameters() if id(p) in slope_ids],
            "weight_decay": cfg.slope_weight_decay,
        },
    ]
    groups = [g for g in groups if g["params"]]
    entry = registry.OPTIMIZERS[cfg.name]
    cls = registry.resolve(entry.cls)
    return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, **entry.kwargs(cfg))


def make_scheduler(
    cfg: OptimConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """torch's scheduler for optim.schedule (registry.SCHEDULES), stepped after every batch:
    its parameters are given in epochs and converted to steps there."""
    entry = registry.SCHEDULES[cfg.schedule]
    if entry.cls is None:
        return None
    return registry.resolve(entry.cls)(optimizer, **entry.kwargs(cfg, epochs, steps_per_epoch))


def training_step(
    forward: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    autocast: contextlib.AbstractContextManager[Any],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step (the Trainer's, and what calibrate.py times): forward under `autocast`,
    cross-entropy in fp32, backward, update. Returns (logits, loss)."""
    with autocast:
        out = forward(x)
        loss = F.cross_entropy(out.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return out, loss


class Trainer:
    """Model, optimizer, data and RNG state of one run; call train_epoch, then evaluate."""

    def __init__(self, cfg: Config) -> None:
        if cfg.train.precision == "auto" or cfg.train.channels_last == "auto":
            raise ValueError("Trainer needs a resolved config (calibrate.resolve)")
        self.cfg = cfg
        activations.check(cfg.activation)  # a user activation: imported and checked first
        self.device = resolve_device(cfg.train.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        seed_everything(cfg.seed)
        # The model first: a broken user activation is reported before the data is read.
        self.model = models.build(cfg.model, cfg.activation, cfg.seed).to(self.device)
        if not is_builtin(cfg.activation.name):
            self._check_shapes()
        self.splits = data.load(cfg.data, self.device, cfg.seed, test=cfg.train.eval_test)
        self.train_set = self.splits.train
        self.memory_format = (
            torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        )
        self.model.to(memory_format=self.memory_format)
        self.optimizer = make_optimizer(cfg.optim, self.model)
        steps = -(-len(self.train_set.y) // cfg.train.batch_size)
        self.scheduler = make_scheduler(cfg.optim, self.optimizer, cfg.train.epochs, steps)
        # Batch order has its own generator (on the data's device, so the permutation is
        # drawn there), separate from the global RNG that dropout and RReLU draw from.
        self.batch_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.epoch = 0  # epochs completed
        self.last_lr = cfg.optim.lr  # lr of the latest training step
        self.last_eval: Evaluation | None = None  # the latest evaluate() result
        self.notes: list[str] = []  # things the user should know (e.g. compile fell back)
        self._exact_sites: list[str] | None = None  # sites_before_noise, found once
        note = activations.gain_note(cfg.activation) if cfg.model.init == "auto" else None
        if note:
            self.notes.append(note)
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        if cfg.train.compile:
            self.forward = self._compiled_forward()
        self.autocast_dtype = torch.bfloat16 if cfg.train.precision == "bf16" else None

    def _check_shapes(self) -> None:
        """A user activation must compute what the run records (act_shapes.csv) before any
        file is written."""
        try:
            models.activation_shapes(self.model)
        except Exception as exc:  # user code may raise anything
            raise plugins.failure(
                f"activation: {self.cfg.activation.name} fails on a (N, channels, 1, 1) or "
                "(N, features) input",
                exc,
            ) from None

    # ------------------------------------------------------------------ compile / autocast

    def _compiled_forward(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """torch.compile'd model; falls back to eager at the first call that fails."""
        try:
            compiled = torch.compile(self.model)
        except Exception as exc:  # compile support varies by platform and version
            self.notes.append(f"torch.compile unavailable, running eager: {exc}")
            return self.model

        failed: list[str] = []

        def forward(x: torch.Tensor) -> torch.Tensor:
            if not failed:
                try:
                    return compiled(x)
                except Exception as exc:
                    failed.append(str(exc))
                    self.notes.append(f"torch.compile failed, running eager: {exc}")
            return self.model(x)

        return forward

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _batch(
        self, split: data.Split, idx: torch.Tensor | slice, shift: int = 0
    ) -> tuple[torch.Tensor, ...]:
        x = split.x[idx]
        if shift:
            x = data.random_shift(x, shift, self.batch_gen)
        if self.memory_format is torch.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, split.y[idx]

    # ------------------------------------------------------------------ train / evaluate

    def train_epoch(
        self, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None
    ) -> tuple[float, float] | None:
        """One pass over the training set: (mean loss, accuracy), or None if stopped early.
        A diverged loss ends the epoch at once; the running mean so far is returned."""
        self.model.train()
        n = len(self.train_set.y)
        bs = self.cfg.train.batch_size
        order = torch.randperm(n, device=self.device, generator=self.batch_gen)
        steps = (n + bs - 1) // bs
        # Accumulate on the device; the host reads these only every PROGRESS_EVERY batches.
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        for step in range(steps):
            if should_stop is not None and should_stop():
                return None
            idx = order[step * bs : (step + 1) * bs]
            x, y = self._batch(self.train_set, idx, self.cfg.data.shift)
            out, loss = training_step(self.forward, self.optimizer, x, y, self._autocast())
            self.last_lr = self.optimizer.param_groups[0]["lr"]  # what this step used
            if self.scheduler is not None:
                self.scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (out.argmax(1) == y).sum()
            seen += len(y)
            if (step + 1) % PROGRESS_EVERY == 0 or step + 1 == steps:
                mean_loss = loss_sum.item() / seen
                if diverged(mean_loss):
                    self.epoch += 1
                    return mean_loss, correct.item() / seen
                if progress is not None:
                    progress(step + 1, steps, mean_loss)
        self.epoch += 1
        return loss_sum.item() / n, correct.item() / n

    @torch.no_grad()
    def evaluate(
        self,
        details: bool = False,
        split: data.Split | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Evaluation:
        """Loss, accuracy and per-class accuracy on `split` (default: the test set, else the
        validation split) in eval mode (RReLU uses its mean slope, no dropout). With
        details, in the same pass: per site the fraction of units that output 0 for every
        image, and for LeNet++ the 2-D bottleneck features. _Stopped if should_stop() turns
        true between batches."""
        self.model.eval()
        test = split or self.splits.test or self.splits.val
        assert test is not None  # the config guarantees a split to evaluate on
        n = len(test.y)
        bs = self.cfg.train.test_batch_size
        loss_sum = torch.zeros((), device=self.device)
        correct_per_class = torch.zeros(10, device=self.device)
        alive: dict[str, torch.Tensor] = {}
        feats: dict[str, list[torch.Tensor]] = {"pre": [], "post": []}
        hooks = []
        if details:
            sites = models.activation_sites(self.model)
            bottleneck = registry.NETWORKS[self.cfg.model.net].bottleneck
            for site, module in sites.items():

                def hook(_m: nn.Module, inp: Any, out: torch.Tensor, site: str = site) -> None:
                    fired = (out != 0).any(0)
                    alive[site] = fired if site not in alive else alive[site] | fired
                    if site == bottleneck:
                        feats["pre"].append(inp[0].float().cpu())
                        feats["post"].append(out.float().cpu())

                hooks.append(module.register_forward_hook(hook))
        try:
            for start in range(0, n, bs):
                if should_stop is not None and should_stop():
                    raise _Stopped
                x, y = self._batch(test, slice(start, start + bs))
                with self._autocast():
                    out = self.model(x).float()  # eager: hooks and eval graphs stay simple
                loss_sum += F.cross_entropy(out, y, reduction="sum")
                hit = (out.argmax(1) == y).float()
                correct_per_class.index_add_(0, y, hit)
        finally:
            for h in hooks:
                h.remove()
        per_class_n = torch.bincount(test.y, minlength=10).clamp(min=1)
        result = Evaluation(
            n,
            loss_sum.item() / n,
            correct_per_class.sum().item() / n,
            (correct_per_class / per_class_n).tolist(),
        )
        if details:
            result.dead_units = {
                site: 1.0 - mask.float().mean().item() for site, mask in alive.items()
            }
            if feats["pre"]:
                result.features2d = {
                    "pre": torch.cat(feats["pre"]).numpy(),
                    "post": torch.cat(feats["post"]).numpy(),
                    "labels": test.y.cpu().numpy(),
                }
        return result

    def dead_site(self, should_stop: Callable[[], bool] | None = None) -> str | None:
        """The first activation site whose every unit outputs 0 for every training image (a
        pass in eval mode, no augmentation), among the sites that compute the same in
        training (models.sites_before_noise); None if there is none, or if should_stop()
        turned true during the pass. Below such a site the network gets no gradient."""
        if self._exact_sites is None:
            self._exact_sites = models.sites_before_noise(self.model, self.train_set.x[:1])
        try:
            found = self.evaluate(True, self.train_set, should_stop).dead_units or {}
        except _Stopped:
            return None
        dead = (s for s, share in found.items() if share == 1.0 and s in self._exact_sites)
        return next(dead, None)

    def run_epoch(
        self,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        details: bool = False,
    ) -> EpochResult | None:
        """Train one epoch, then validate and test (keeping the last evaluation, the test
        set's where it is read, in last_eval); None if stopped before the epoch finished."""
        t0 = time.perf_counter()
        trained = self.train_epoch(progress, should_stop)
        if trained is None:
            return None
        train_loss, train_acc = trained
        self.last_eval = None
        nan = float("nan")
        val, test = (nan, nan), (nan, nan)
        if not diverged(train_loss):
            if self.splits.val is not None:
                on_val = self.evaluate(details and self.splits.test is None, self.splits.val)
                val = (on_val.loss, on_val.acc)
                self.last_eval = on_val
            if self.splits.test is not None:
                self.last_eval = self.evaluate(details, self.splits.test)
                test = (self.last_eval.loss, self.last_eval.acc)
        return EpochResult(
            self.epoch,
            train_loss,
            train_acc,
            *test,
            time.perf_counter() - t0,
            self.last_lr,
            *val,
        )

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: weights, optimizer, schedule, every RNG,
        epoch; tensors and plain values only, so it loads with weights_only=True."""
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "torch_rng": torch.get_rng_state(),
            "batch_rng": self.batch_gen.get_state(),
            "python_rng": random.getstate(),
            "numpy_rng": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint; ActbenchError if it does not fit this run's network."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            kind, keys, pos, has_gauss, gauss = state["numpy_rng"]
            np_state = (kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss)
            py_version, py_keys, py_gauss = state["python_rng"]
            torch.set_rng_state(state["torch_rng"])
            self.batch_gen.set_state(state["batch_rng"])
            random.setstate((py_version, tuple(py_keys), py_gauss))
            np.random.set_state(np_state)
            epoch = state["epoch"]
            if not isinstance(epoch, int) or not 0 <= epoch <= self.cfg.train.epochs:
                raise ValueError(f"epoch {epoch!r} outside 0..{self.cfg.train.epochs}")
            self.epoch = epoch
        except (
            RuntimeError,
            KeyError,
            ValueError,
            TypeError,
            AttributeError,
            IndexError,
            OverflowError,
        ) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise ActbenchError(
                f"checkpoint does not fit this run's config ({type(exc).__name__}: {first})"
            ) from None
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
