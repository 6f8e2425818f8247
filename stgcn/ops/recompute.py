"""Trading compute for memory in a training step: saved-tensor recompute hooks and activation checkpointing.

- :class:`RecomputedInput`: ``torch.autograd.graph.saved_tensors_hooks`` that store a recipe instead of one
  particular tensor and rerun the recipe when backward needs it.
- :class:`FrozenBNStats` / :func:`checkpoint_contexts`: ``torch.utils.checkpoint`` runs a block's forward
  twice; the BatchNorm running statistics must be updated once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["RecomputedInput", "FrozenBNStats", "checkpoint_contexts"]


class RecomputedInput:
    """Saved-tensor hooks that store a recipe instead of one tensor (identified by its memory, shape and
    strides) and run the recipe when backward needs the tensor.

    Args:
        tensor: The tensor not to keep, exactly as autograd will save it (same view).
        recompute: Returns an equal tensor (same shape and strides), e.g. by rerunning a module under no_grad.

    Example::

        hooks = RecomputedInput(g, lambda: layer_again(h))
        with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
            y = next_layer(g)
    """

    def __init__(self, tensor: torch.Tensor, recompute: Callable[[], torch.Tensor]) -> None:
        self.key = (tensor.data_ptr(), tuple(tensor.shape), tensor.stride())
        self.recompute = recompute

    def pack(self, t: torch.Tensor) -> Any:
        return self if (t.data_ptr(), tuple(t.shape), t.stride()) == self.key else t

    def unpack(self, packed: Any) -> torch.Tensor:
        return self.recompute() if packed is self else packed


class FrozenBNStats:
    """Context that restores a module's BatchNorm running statistics on exit: activation checkpointing runs a
    block's forward twice, and the statistics must be updated once."""

    def __init__(self, module: nn.Module) -> None:
        self.bns = [m for m in module.modules()
                    if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        self.saved: list[list[torch.Tensor]] = []

    def __enter__(self) -> None:
        self.saved = [[b.clone() for b in (m.running_mean, m.running_var, m.num_batches_tracked)] for m in self.bns]

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for m, saved in zip(self.bns, self.saved, strict=True):
                for b, s in zip((m.running_mean, m.running_var, m.num_batches_tracked), saved, strict=True):
                    b.copy_(s)
        self.saved = []


def checkpoint_contexts(module: nn.Module) -> tuple[contextlib.AbstractContextManager, FrozenBNStats]:
    """``context_fn`` for ``torch.utils.checkpoint.checkpoint`` (use ``functools.partial(checkpoint_contexts,
    module)``): the first forward runs normally, the recomputation leaves BatchNorm statistics unchanged."""
    return contextlib.nullcontext(), FrozenBNStats(module)
