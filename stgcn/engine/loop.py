"""One training epoch, one evaluation pass, and the pieces they need: the optimiser, the learning-rate
schedule, the autocast dtype."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from stgcn.engine.config import TrainConfig
from stgcn.engine.distributed import DistContext, all_gather, all_sum
from stgcn.engine.evaluate import autocast_context, compute_metrics, predict_scores
from stgcn.engine.run_dir import progress_bar
from stgcn.errors import ConfigError, StgcnError

__all__ = ["LRSchedule", "build_optimizer", "amp_dtype", "Stepper", "train_one_epoch", "evaluate_shards",
           "log_epoch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LRSchedule:
    """Learning-rate factor per iteration: linear warm-up, then step, cosine or constant.

    Args:
        iters_per_epoch: Optimiser steps per epoch.
        epochs: Total epochs.
        warmup_epochs: Warm-up epochs (the factor rises linearly to 1 over their iterations).
        schedule: ``step``, ``cosine`` or ``constant``.
        milestones: Step schedule: epochs at which the factor is multiplied by ``gamma``.
        gamma: Step decay.
        min_factor: Cosine schedule: final factor (``min_lr / lr``).
    """

    iters_per_epoch: int
    epochs: int
    warmup_epochs: int = 0
    schedule: str = "step"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    min_factor: float = 0.0

    def __call__(self, step: int) -> float:
        warmup = self.warmup_epochs * self.iters_per_epoch
        if step < warmup:
            return (step + 1) / warmup
        if self.schedule == "step":
            epoch = step // self.iters_per_epoch
            return self.gamma ** sum(epoch >= m for m in self.milestones)
        if self.schedule == "cosine":
            total = max(self.epochs * self.iters_per_epoch - warmup, 1)
            progress = min((step - warmup) / total, 1.0)
            return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW over all parameters, as ``config.optim`` says."""
    o = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                               weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    t = config.train
    if device.type == "cuda":
        if t.amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise ConfigError("train.amp bf16: this GPU does not support bfloat16; use train.amp=fp16")
        return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[t.amp]
    if t.amp != "none":
        log.info("train.amp=%s applies to CUDA only; on CPU set train.cpu_bf16=true for bf16 autocast", t.amp)
    return torch.bfloat16 if t.cpu_bf16 else None


@dataclass
class Stepper:
    """What one optimisation step needs: the model (as called, maybe DDP/compiled), the unwrapped network whose
    parameters are clipped, the optimiser, the per-iteration scheduler, the fp16 gradient scaler, the loss."""

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    criterion: nn.Module
    amp_dtype: torch.dtype | None
    grad_clip: float | None

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward/backward/update on a batch; returns the loss and the logits (detached).

        Shape:
            x: (N, C, T, V, M); y: (N,) -> loss (), logits (N, num_classes)
        """
        with autocast_context(x.device, self.amp_dtype):
            logits = self.model(x)
        loss = self.criterion(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            self.optimizer.step()
        self.scheduler.step()
        return loss.detach(), logits.detach()


def train_one_epoch(stepper: Stepper, loader: DataLoader, device: torch.device, d: DistContext, *, epoch: int,
                    epochs: int, progress: bool) -> dict[str, Any]:
    """Train over one epoch of ``loader`` (its sampler set to ``epoch``); the record's train metrics, summed over
    the processes.

    Raises:
        StgcnError: the loss is NaN or inf.
    """
    loader.sampler.set_epoch(epoch)
    stepper.model.train()
    tic = time.perf_counter()
    lr = stepper.optimizer.param_groups[0]["lr"]
    loss_t = torch.zeros((), dtype=torch.float64, device=device)
    correct_t = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    iters = len(loader)
    bar = progress_bar(iters, f"epoch {epoch + 1}/{epochs}", progress)
    for it, (x, y, _) in enumerate(loader):
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        loss, logits = stepper.step(x, y)
        n = y.shape[0]
        loss_t += loss.double() * n  # no host sync per step
        correct_t += (logits.argmax(dim=1) == y).sum()
        seen += n
        if bar is not None:
            bar.update()
            if it % 5 == 0 or it == iters - 1:
                rate = seen * d.world_size / (time.perf_counter() - tic)
                bar.set_postfix(loss=f"{loss_t.item() / seen:.3f}", acc=f"{100 * correct_t.item() / seen:.1f}%",
                                clips_s=f"{rate:.0f}", refresh=False)
    if bar is not None:
        bar.close()
    loss_sum, correct, seen = all_sum([loss_t.item(), correct_t.item(), float(seen)], d, device)
    train_time = time.perf_counter() - tic
    if not math.isfinite(loss_sum):
        raise StgcnError(f"training diverged: the loss is {loss_sum / seen} in epoch {epoch + 1} (lower "
                         f"optim.lr or set train.grad_clip)")
    return {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen, "train_top1": correct / seen,
            "train_clips_per_s": seen / train_time, "train_time_s": train_time}


def evaluate_shards(net: nn.Module, loader: DataLoader, device: torch.device, amp: torch.dtype | None,
                    d: DistContext, class_names: list[str]) -> dict[str, Any] | None:
    """Test metrics over all processes' shards (computed on every rank, identical); ``None`` without clips.

    K-clip inputs are combined as the test transform's ``preprocess.average_clips`` says.
    """
    preprocess = getattr(getattr(loader.dataset, "transform", None), "preprocess", None)
    average = getattr(preprocess, "average_clips", "score")
    scores, labels, indices = predict_scores(net, loader, device=device, amp_dtype=amp, average_clips=average)
    if d.enabled:
        parts = [p for p in all_gather((scores, labels, indices), d) if len(p[0])]
        scores = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        indices = np.concatenate([p[2] for p in parts])
        order = np.argsort(indices, kind="stable")
        scores, labels = scores[order], labels[order]
    if len(scores) == 0:
        return None
    metrics, _ = compute_metrics(scores, labels, class_names)
    return metrics


def log_epoch(r: dict[str, Any], epochs: int) -> None:
    line = (f"epoch {r['epoch']}/{epochs}  lr {r['lr']:.4g}  train loss {r['train_loss']:.4f} "
            f"top-1 {100 * r['train_top1']:.2f}%  {r['train_clips_per_s']:.0f} clips/s {r['train_time_s']:.1f}s")
    if "test_top1" in r:
        line += (f"  |  test loss {r['test_loss']:.4f} top-1 {100 * r['test_top1']:.2f}% "
                 f"top-5 {100 * r['test_top5']:.2f}% mean class {100 * r['test_mean_class']:.2f}%")
    log.info(line)

