"""stgcn: Spatial Temporal Graph Convolutional Networks for skeleton-based action recognition."""

from stgcn.convert.original import convert_original
from stgcn.data.dataset import SkeletonDataset, build_loader
from stgcn.data.sources import read_clip_file
from stgcn.data.store import open_store
from stgcn.data.transforms import AugmentConfig, PreprocessConfig, build_transform
from stgcn.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from stgcn.errors import CheckpointError, ConfigError, DataError, StgcnError
from stgcn.graph.layouts import Layout, get_layout, load_layout
from stgcn.graph.partitions import Graph
from stgcn.inference.predict import Predictor
from stgcn.inference.stream import PredictionStream
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.stgcn import STGCN

__version__ = "0.1.0"

__all__ = [
    "STGCN", "STGCNConfig", "GraphConfig", "Graph", "Layout", "get_layout", "load_layout",
    "Checkpoint", "save_checkpoint", "load_checkpoint", "convert_original",
    "open_store", "read_clip_file", "PreprocessConfig", "AugmentConfig", "build_transform",
    "SkeletonDataset", "build_loader", "Predictor", "PredictionStream",
    "StgcnError", "ConfigError", "CheckpointError", "DataError", "__version__",
]
