"""Skeleton graphs: joint layouts (:mod:`.layouts`: validated by :mod:`.validation`, identified by :mod:`.identity`,
body roles in :mod:`.roles`) and the adjacency partitions built on them (:mod:`.partitions`)."""

from stgcn.graph.identity import REMAP_CHOICES, describe_layout, match_joints
from stgcn.graph.layouts import Layout, get_layout, load_layout
from stgcn.graph.partitions import NORMALIZATIONS, STRATEGIES, Graph
from stgcn.graph.roles import ROLES, joint_side, resolve_role

__all__ = ["Graph", "Layout", "get_layout", "load_layout", "STRATEGIES", "NORMALIZATIONS", "ROLES", "resolve_role",
           "joint_side", "REMAP_CHOICES", "describe_layout", "match_joints"]
