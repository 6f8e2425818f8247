"""Skeleton graphs and their partitions: the adjacency tensor ``A`` (K, V, V) an ST-GCN layer mixes joints with.

Convention: ``A[k, v, w]`` is the weight with which source joint ``v`` feeds target joint ``w`` in partition
``k``; a layer computes ``out[..., w] = sum_k sum_v A[k, v, w] * h_k[..., v]``.

Strategies (Yan et al. 2018, section 3.4):
    ``uniform``: uni-labeling, one partition: the neighbourhood (all joints within ``max_hop``) plus self.
    ``distance``: one partition per valid hop ``d`` in ``range(0, max_hop + 1, dilation)``; ``d = 0`` is self.
    ``spatial``: spatial configuration: the root itself, the centripetal group (neighbours closer to the
        centre joint than the root) and the centrifugal group (the others), per valid hop.

Normalisations:
    ``notes`` (default): the paper and the project's design notes. The neighbourhood adjacency holds no
        self-loops and ``A + I = sum_j A_j``. Each partition is normalised on both sides,
        ``Lambda_j^-1/2 A_j Lambda_j^-1/2`` with ``Lambda_j^ii = sum_k A_j^ik + alpha``, ``alpha = 0.001``.
        The spatial partition measures true hop distances to the centre (unbounded breadth-first search);
        a neighbour at the same distance as the root is centrifugal ("otherwise", as the paper words it).
        Partitions ``[root, centripetal_1, centrifugal_1, centripetal_2, ...]``.
    ``original``: reproduces yysijie/st-gcn ``net/utils/graph.py`` exactly, so its checkpoints give its
        numbers. The hop matrix (self included) is normalised by column once, ``A D^-1`` (every target
        averages its inputs), and partitions are slices of that one matrix. Hop distances are truncated at
        ``max_hop``: joints farther from the centre get an infinite distance, and two infinite distances
        compare equal, so such joints land in the root group. Spatial partitions are
        ``[self, root + closer-source_1, farther-source_1, root + closer-source_2, ...]`` as there.
"""

from __future__ import annotations

import numpy as np

from stgcn.errors import ConfigError
from stgcn.graph.layouts import Layout, get_layout
from stgcn.utils.checks import check_int
from stgcn.utils.limits import MAX_HOP, check_max

__all__ = ["Graph", "STRATEGIES", "NORMALIZATIONS", "hop_distance", "ALPHA", "check_graph_options"]

STRATEGIES = ("uniform", "distance", "spatial")
NORMALIZATIONS = ("notes", "original")
ALPHA = 0.001


def hop_distance(num_joints: int, edges: tuple[tuple[int, int], ...], max_hop: int | None = None) -> np.ndarray:
    """Shortest-path hop counts between joints.

    Args:
        num_joints: V.
        edges: Undirected ``(a, b)`` pairs.
        max_hop: If given, distances above it become ``inf`` (the original code's truncation);
            ``None`` gives true distances (``inf`` only for disconnected joints).

    Shape:
        Returns (V, V), float64, symmetric, zeros on the diagonal.
    """
    adjacency = np.eye(num_joints, dtype=np.int64)
    for a, b in edges:
        adjacency[a, b] = adjacency[b, a] = 1
    limit = num_joints if max_hop is None else max_hop
    dist = np.full((num_joints, num_joints), np.inf)
    reach = np.eye(num_joints, dtype=bool)  # joints reachable within d hops
    dist[reach] = 0
    for d in range(1, limit + 1):
        new_reach = (reach.astype(np.int64) @ adjacency) > 0
        dist[new_reach & ~reach] = d
        if (new_reach == reach).all():
            break
        reach = new_reach
    return dist


def check_graph_options(strategy: str, normalization: str, max_hop: int, dilation: int, *, prefix: str = "") -> None:
    """The one rule for graph options (used by :class:`Graph` and :class:`~stgcn.models.config.GraphConfig`).

    Raises:
        ConfigError: an unknown strategy or normalization (listing the valid ones), or a hop option that is
            not an integer >= 1 (named ``{prefix}max_hop`` / ``{prefix}dilation``).
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; valid strategies are {', '.join(STRATEGIES)}")
    if normalization not in NORMALIZATIONS:
        raise ConfigError(
            f"unknown normalization {normalization!r}; valid normalizations are {', '.join(NORMALIZATIONS)}")
    check_max(check_int(max_hop, f"{prefix}max_hop", minimum=1), f"{prefix}max_hop", MAX_HOP)
    check_max(check_int(dilation, f"{prefix}dilation", minimum=1), f"{prefix}dilation", MAX_HOP)


def _original_partitions(layout: Layout, strategy: str, max_hop: int, dilation: int) -> tuple[np.ndarray, list[str]]:
    """yysijie/st-gcn Graph.get_adjacency, in the original's (source, target) indexing."""
    v = layout.num_joints
    hop = hop_distance(v, layout.edges, max_hop=max_hop)
    valid_hop = range(0, max_hop + 1, dilation)
    adjacency = np.zeros((v, v))
    for d in valid_hop:
        adjacency[hop == d] = 1
    col = adjacency.sum(0)
    inv = np.zeros(v)
    inv[col > 0] = 1.0 / col[col > 0]
    normalized = adjacency @ np.diag(inv)  # A D^-1: column w sums to 1

    if strategy == "uniform":
        return normalized[None], ["neighbourhood"]
    if strategy == "distance":
        parts = [np.where(hop == d, normalized, 0.0) for d in valid_hop]
        return np.stack(parts), [f"hop_{d}" for d in valid_hop]
    r = hop[:, layout.center]  # truncated: inf beyond max_hop, and inf == inf
    parts, names = [], []
    for d in valid_hop:
        root, close, further = np.zeros((v, v)), np.zeros((v, v)), np.zeros((v, v))
        for i in range(v):
            for j in range(v):
                if hop[j, i] == d:
                    if r[j] == r[i]:
                        root[j, i] = normalized[j, i]
                    elif r[j] > r[i]:
                        close[j, i] = normalized[j, i]
                    else:
                        further[j, i] = normalized[j, i]
        if d == 0:
            parts.append(root)
            names.append("root")
        else:
            parts += [root + close, further]
            names += [f"root+closer_{d}", f"farther_{d}"]
    return np.stack(parts), names


def _notes_partitions(layout: Layout, strategy: str, max_hop: int, dilation: int,
                      alpha: float) -> tuple[np.ndarray, list[str]]:
    """The paper's partitions with symmetric normalisation, returned in (source, target) indexing."""
    v = layout.num_joints
    hop = hop_distance(v, layout.edges)  # true distances
    hops = [d for d in range(0, max_hop + 1, dilation)]
    # B[i, k] = 1 when target i receives from source k (the notes' row convention)
    if strategy == "uniform":
        masks = [np.isin(hop, hops)]
        names = ["neighbourhood+self"]
    elif strategy == "distance":
        masks = [hop == d for d in hops]
        names = [f"hop_{d}" for d in hops]
    else:
        r = hop[:, layout.center]
        closer = r[None, :] < r[:, None]  # closer[i, k]: source k is nearer the centre than target i
        masks, names = [np.eye(v, dtype=bool)], ["root"]
        for d in hops[1:]:
            masks += [(hop == d) & closer, (hop == d) & ~closer]
            names += [f"centripetal_{d}", f"centrifugal_{d}"]
    parts = []
    for mask in masks:
        b = mask.astype(np.float64)
        scale = 1.0 / np.sqrt(b.sum(1) + alpha)  # Lambda^-1/2, Lambda_ii = sum_k B_ik + alpha
        parts.append((scale[:, None] * b * scale[None, :]).T)  # transpose to (source, target)
    return np.stack(parts), names


class Graph:
    """A skeleton graph partitioned for ST-GCN.

    Args:
        layout: A built-in layout name, a path to a layout file, or a :class:`~stgcn.layouts.Layout`.
        strategy: ``uniform``, ``distance`` or ``spatial``.
        max_hop: Largest hop distance in a neighbourhood.
        dilation: Step between the hop distances used.
        normalization: ``notes`` (the paper; default) or ``original`` (yysijie/st-gcn, bit for bit).
        alpha: The notes' regulariser added to each degree; ignored by ``original``.

    Attributes:
        A: float32 array (K, V, V); ``A[k, v, w]`` weighs source joint ``v`` into target joint ``w``.
        partition_names: One name per partition.

    Shape:
        A: (K, V, V).
    """

    def __init__(self, layout: str | Layout, strategy: str = "spatial", max_hop: int = 1, dilation: int = 1,
                 normalization: str = "notes", alpha: float = ALPHA) -> None:
        check_graph_options(strategy, normalization, max_hop, dilation)
        self.layout = get_layout(layout)
        self.strategy = strategy
        self.max_hop = max_hop
        self.dilation = dilation
        self.normalization = normalization
        if normalization == "original":
            a, names = _original_partitions(self.layout, strategy, max_hop, dilation)
        else:
            a, names = _notes_partitions(self.layout, strategy, max_hop, dilation, alpha)
        self.A = a.astype(np.float32)
        self.partition_names = names

    @property
    def K(self) -> int:  # the paper's symbol
        """Number of partitions."""
        return self.A.shape[0]

    @property
    def V(self) -> int:  # the paper's symbol
        """Number of joints."""
        return self.A.shape[1]

    def __repr__(self) -> str:
        return (f"Graph(layout={self.layout.name!r}, strategy={self.strategy!r}, max_hop={self.max_hop}, "
                f"dilation={self.dilation}, normalization={self.normalization!r}, K={self.K}, V={self.V})")
