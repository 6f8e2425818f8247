"""stgcn: Spatial Temporal Graph Convolutional Networks for skeleton-based action recognition."""

from stgcn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from stgcn.convert import convert_original
from stgcn.dataset import SkeletonDataset, build_loader
from stgcn.errors import CheckpointError, ConfigError, DataError, StgcnError
from stgcn.graph import Graph
from stgcn.layouts import Layout, get_layout, load_layout
from stgcn.model import STGCN, GraphConfig, STGCNConfig
from stgcn.predict import PredictionStream, Predictor
from stgcn.sources import read_clip_file
from stgcn.store import open_store
from stgcn.transforms import AugmentConfig, PreprocessConfig, build_transform

__version__ = "0.1.0"

__all__ = [
    "STGCN", "STGCNConfig", "GraphConfig", "Graph", "Layout", "get_layout", "load_layout",
    "Checkpoint", "save_checkpoint", "load_checkpoint", "convert_original",
    "open_store", "read_clip_file", "PreprocessConfig", "AugmentConfig", "build_transform",
    "SkeletonDataset", "build_loader", "Predictor", "PredictionStream",
    "StgcnError", "ConfigError", "CheckpointError", "DataError", "__version__",
]
