"""stgcn: Spatial Temporal Graph Convolutional Networks for skeleton-based action recognition."""

from stgcn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from stgcn.convert import convert_original
from stgcn.errors import CheckpointError, ConfigError, DataError, StgcnError
from stgcn.graph import Graph
from stgcn.layouts import Layout, get_layout, load_layout
from stgcn.model import STGCN, GraphConfig, STGCNConfig

__version__ = "0.1.0"

__all__ = [
    "STGCN", "STGCNConfig", "GraphConfig", "Graph", "Layout", "get_layout", "load_layout",
    "Checkpoint", "save_checkpoint", "load_checkpoint", "convert_original",
    "StgcnError", "ConfigError", "CheckpointError", "DataError", "__version__",
]
