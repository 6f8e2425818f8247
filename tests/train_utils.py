"""Helpers shared by the training, evaluation, fusion and distributed tests: tiny synthetic stores and configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stgcn.engine.config import TrainConfig, parse_config

TINY_BLOCKS = [[8, 1], [16, 2]]


def tiny_config_dict(store: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A config that trains a two-block model on a small synthetic store in about a second per epoch."""
    data = {
        "data": {"store": str(store),
                 "synthetic": {"num_classes": 4, "clips_per_class": 6, "layout": "kinect-v1", "seed": 0},
                 "preprocess": {"length": 16, "center": "first"}},
        "model": {"blocks": TINY_BLOCKS},
        "optim": {"lr": 0.05, "warmup_epochs": 1, "milestones": [2]},
        "train": {"epochs": 3, "batch_size": 4, "num_workers": 0, "quiet": True, "device": "cpu"},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


def tiny_config(store: Path, **sections: dict[str, Any]) -> TrainConfig:
    return parse_config(tiny_config_dict(store, **sections))
