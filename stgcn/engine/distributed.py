"""Distributed training helpers: the process group from torchrun's environment, and the collectives the
trainer needs (sums, BatchNorm statistics, gathered objects). With one process every helper is a no-op."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from stgcn.errors import ConfigError
from stgcn.utils.device import resolve_device

__all__ = ["DistContext", "setup_distributed", "average_bn_stats", "all_sum", "all_gather"]


@dataclass
class DistContext:
    """This process's place in the run: rank, number of processes, local GPU index."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process (no-op with one)."""
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group when :func:`setup_distributed` created it."""
        if self.initialized_here:
            dist.destroy_process_group()


def setup_distributed(device_option: str) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, ...) and pick the device.

    Raises:
        ConfigError: WORLD_SIZE > 1 without RANK, or an unusable ``train.device``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), resolve_device(device_option, name="train.device")
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise ConfigError("WORLD_SIZE > 1 but RANK is not set: launch distributed training with torchrun") from None
    device = resolve_device(device_option, local_rank=local, distributed=True, name="train.device")
    here = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://")
        here = True
    return DistContext(rank, world, local, here), device


def average_bn_stats(model: nn.Module, d: DistContext) -> None:
    """Average BatchNorm running statistics over the processes (DDP keeps parameters, not buffers, in sync)."""
    if not d.enabled:
        return
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            for buf in (m.running_mean, m.running_var):
                if buf is not None:
                    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                    buf.div_(d.world_size)


def all_sum(values: list[float], d: DistContext, device: torch.device) -> list[float]:
    """Element-wise sums over the processes (float64)."""
    if not d.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_gather(obj: Any, d: DistContext) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` with one process)."""
    if not d.enabled:
        return [obj]
    out: list[Any] = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out
