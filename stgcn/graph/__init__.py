"""Skeleton graphs: joint layouts (:mod:`.layouts`) and the adjacency partitions built on them (:mod:`.partitions`)."""

from stgcn.graph.layouts import Layout, get_layout, load_layout
from stgcn.graph.partitions import NORMALIZATIONS, STRATEGIES, Graph

__all__ = ["Graph", "Layout", "get_layout", "load_layout", "STRATEGIES", "NORMALIZATIONS"]
