"""stgcn: Spatial Temporal Graph Convolutional Networks for skeleton-based action recognition."""

from importlib import import_module
from typing import Any

from stgcn.errors import CheckpointError, ConfigError, DataError, StgcnError

# The public names, imported on first use (PEP 562): ``import stgcn`` and the ``stgcn`` command start without
# torch, so the CLI's error boundary (Ctrl-C, bad options) is in place before the heavy imports run.
_LAZY = {
    "convert_original": "stgcn.convert.original", "SkeletonDataset": "stgcn.data.dataset",
    "build_loader": "stgcn.data.dataset", "read_clip_file": "stgcn.data.sources", "open_store": "stgcn.data.store",
    "AugmentConfig": "stgcn.data.transforms", "PreprocessConfig": "stgcn.data.transforms",
    "build_transform": "stgcn.data.transforms", "Checkpoint": "stgcn.engine.checkpoint",
    "load_checkpoint": "stgcn.engine.checkpoint", "save_checkpoint": "stgcn.engine.checkpoint",
    "Layout": "stgcn.graph.layouts", "get_layout": "stgcn.graph.layouts", "load_layout": "stgcn.graph.layouts",
    "Graph": "stgcn.graph.partitions", "Predictor": "stgcn.inference.predict",
    "PredictionStream": "stgcn.inference.stream", "GraphConfig": "stgcn.models.config",
    "STGCNConfig": "stgcn.models.config", "STGCN": "stgcn.models.stgcn",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stgcn' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "STGCN", "STGCNConfig", "GraphConfig", "Graph", "Layout", "get_layout", "load_layout",
    "Checkpoint", "save_checkpoint", "load_checkpoint", "convert_original",
    "open_store", "read_clip_file", "PreprocessConfig", "AugmentConfig", "build_transform",
    "SkeletonDataset", "build_loader", "Predictor", "PredictionStream",
    "StgcnError", "ConfigError", "CheckpointError", "DataError", "__version__",
]
