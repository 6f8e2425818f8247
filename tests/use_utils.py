"""Helpers for the tests of using a trained model (predict, stream, render, export, video)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from stgcn.engine.checkpoint import save_checkpoint
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.stgcn import STGCN

SMALL_BLOCKS = ((8, 1), (16, 2))
CLASS_NAMES = ["wave", "jump", "sit", "kick"]


def small_model(layout: str = "openpose-18", *, in_channels: int = 3, seed: int = 0, blocks=SMALL_BLOCKS,
                temporal_kernel: int = 9, edge_importance: bool = True, num_classes: int = 4) -> STGCN:
    """A small random ST-GCN in eval mode, with non-trivial BatchNorm statistics and edge importance."""
    torch.manual_seed(seed)
    model = STGCN(STGCNConfig(num_classes=num_classes, in_channels=in_channels, graph=GraphConfig(layout=layout),
                              temporal_kernel=temporal_kernel, blocks=blocks, edge_importance=edge_importance))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        if edge_importance:
            for block in model.blocks:
                block.gcn.edge_importance.mul_(1 + 0.3 * torch.rand(block.gcn.edge_importance.shape, generator=g))
    return model.eval()


def small_checkpoint(path: Path, *, preprocess: dict[str, Any] | None = None, **kwargs: Any) -> Path:
    """Save :func:`small_model` with class names :data:`CLASS_NAMES` to ``path``."""
    model = small_model(**kwargs)
    names = CLASS_NAMES if model.config.num_classes == len(CLASS_NAMES) else None
    save_checkpoint(path, model, class_names=names, preprocess=preprocess)
    return path


def random_clip(t: int, m: int = 1, v: int = 18, c: int = 3, seed: int = 0) -> np.ndarray:
    """A (T, M, V, C) float32 clip with values in [-0.5, 0.5) and a last channel in (0, 1] (a score)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, size=(t, m, v, c)).astype(np.float32)
    if c >= 3:
        x[..., -1] = rng.uniform(0.05, 1.0, size=(t, m, v))
    return x


def assert_trains_like_baseline(model: STGCN, x: torch.Tensor, y: torch.Tensor, steps: int = 2) -> None:
    """``steps`` SGD steps of ``model`` (float64) and of its baseline copy (the original structure) on the same
    batch, with a weight update between steps (so cached weights must follow); then every weight and BatchNorm
    statistic must agree within 1e-10.

    Shape:
        x: (N, C, T, V, M) float64; y: (N,) class indices.
    """
    import torch.nn.functional as F

    from stgcn.models.reference import baseline_from_stgcn, copy_weights

    base = baseline_from_stgcn(model).double()
    for module in (model, base):
        module.train()
        for _ in range(steps):
            module.zero_grad()
            F.cross_entropy(module(x), y).backward()
            with torch.no_grad():
                for p in module.parameters():
                    p.sub_(0.1 * p.grad)
    back = STGCN(model.config).double()
    copy_weights(base, back)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, back.state_dict()[key], atol=1e-10, rtol=1e-9, msg=key)
