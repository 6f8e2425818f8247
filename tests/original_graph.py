"""An independent transcription of yysijie/st-gcn's graph construction (``net/utils/graph.py``), used only by
tests to check ``normalization="original"``. Deliberately literal: self-links in the edge list, hop
distances by matrix powers truncated at max_hop, column normalisation, the per-pair loops of the spatial rule.
"""

from __future__ import annotations

import numpy as np

NTU_1BASED = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
              (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
              (23, 8), (24, 25), (25, 12)]
OPENPOSE = [(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1), (2, 1),
            (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)]
LAYOUTS = {"ntu-rgb+d": (25, [(i - 1, j - 1) for i, j in NTU_1BASED], 20), "openpose-18": (18, OPENPOSE, 1)}


def original_adjacency(layout: str, strategy: str, max_hop: int = 1, dilation: int = 1) -> np.ndarray:
    num_node, neighbor_link, center = LAYOUTS[layout]
    edge = [(i, i) for i in range(num_node)] + neighbor_link
    a = np.zeros((num_node, num_node))
    for i, j in edge:
        a[j, i] = 1
        a[i, j] = 1
    hop_dis = np.zeros((num_node, num_node)) + np.inf
    arrive = np.stack([np.linalg.matrix_power(a, d) for d in range(max_hop + 1)]) > 0
    for d in range(max_hop, -1, -1):
        hop_dis[arrive[d]] = d

    valid_hop = range(0, max_hop + 1, dilation)
    adjacency = np.zeros((num_node, num_node))
    for hop in valid_hop:
        adjacency[hop_dis == hop] = 1
    column_sums = np.sum(adjacency, 0)
    dn = np.zeros((num_node, num_node))
    for i in range(num_node):
        if column_sums[i] > 0:
            dn[i, i] = column_sums[i] ** (-1)
    norm = np.dot(adjacency, dn)

    if strategy == "uniform":
        return norm[None]
    if strategy == "distance":
        out = np.zeros((len(valid_hop), num_node, num_node))
        for i, hop in enumerate(valid_hop):
            out[i][hop_dis == hop] = norm[hop_dis == hop]
        return out
    parts = []
    for hop in valid_hop:
        root, close, further = (np.zeros((num_node, num_node)) for _ in range(3))
        for i in range(num_node):
            for j in range(num_node):
                if hop_dis[j, i] == hop:
                    if hop_dis[j, center] == hop_dis[i, center]:
                        root[j, i] = norm[j, i]
                    elif hop_dis[j, center] > hop_dis[i, center]:
                        close[j, i] = norm[j, i]
                    else:
                        further[j, i] = norm[j, i]
        if hop == 0:
            parts.append(root)
        else:
            parts.append(root + close)
            parts.append(further)
    return np.stack(parts)
