"""Pictures of a layout and of a model: the layout with each partition of its graph, and a model's learned
edge importance per block, on a 2-D reference pose of the skeleton.

* :func:`plot_layout` draws a layout (joint indices, centre joint) and each partition of its graph as arrows
  from source to target joint, widths proportional to the normalised weights.
* :func:`plot_edge_importance` draws, for every block of a model, the learned edge-importance mask on the
  skeleton (edge colour = mean mask value over the partitions that hold the edge; joint colour = the
  self-connection's).

Layout pictures need 2-D joint positions; :func:`reference_pose` gives a front-view standing pose for every
joint whose name it knows (all built-in layouts) and a tree drawing rooted at the centre joint otherwise.
Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stgcn.errors import ConfigError
from stgcn.graph.layouts import Layout, get_layout
from stgcn.graph.roles import joint_side, name_words, split_side
from stgcn.inference.media import IMAGE_SUFFIXES, _check_suffix, _matplotlib, _save_figure

__all__ = ["reference_pose", "plot_layout", "plot_edge_importance", "edge_importance"]

_LEFT, _RIGHT, _MIDDLE = "#1f77b4", "#d62728", "#444444"


# ------------------------------------------------------------------------------------- reference pose
# Front view of a person facing the viewer (their left on the right, +x), y up, about 1.75 units tall.
_BODY: dict[str, tuple[float, float]] = {
    "head": (0.0, 1.72), "nose": (0.0, 1.62), "neck": (0.0, 1.50), "spine_shoulder": (0.0, 1.42),
    "shoulder_center": (0.0, 1.45), "spine": (0.0, 1.20), "spine_mid": (0.0, 1.20),
    "hip_center": (0.0, 0.95), "spine_base": (0.0, 0.95), "pelvis": (0.0, 0.95), "mid_hip": (0.0, 0.95),
    "mouth_left": (0.04, 1.56), "mouth_right": (-0.04, 1.56),
}
_SIDED: dict[str, tuple[float, float]] = {  # left side; the right side mirrors x
    "eye": (0.05, 1.68), "eye_inner": (0.03, 1.68), "eye_outer": (0.075, 1.68), "ear": (0.11, 1.64),
    "shoulder": (0.20, 1.42), "elbow": (0.32, 1.15), "wrist": (0.40, 0.90), "hand": (0.43, 0.82),
    "hand_tip": (0.46, 0.72), "thumb": (0.36, 0.80), "pinky": (0.45, 0.78), "index": (0.41, 0.76),
    "hip": (0.11, 0.93), "knee": (0.13, 0.50), "ankle": (0.14, 0.08), "foot": (0.19, 0.01),
    "heel": (0.12, 0.0), "foot_index": (0.21, -0.01),
}
_FINGERS = {"thumb": 140.0, "index": 105.0, "middle": 90.0, "ring": 75.0, "pinky": 60.0}


def _named_position(name: str) -> tuple[float, float] | None:
    n = "_".join(name_words(name))
    if n in _BODY:
        return _BODY[n]
    side, part = split_side(name)
    if side is not None and part in _SIDED:
        x, y = _SIDED[part]
        return (1.0 if side == "left" else -1.0) * x, y
    # hand landmarks: wrist, <finger>_<cmc|mcp|pip|ip|dip|tip>
    if n == "wrist":
        return 0.0, 0.0
    finger, _, joint = n.partition("_")
    if finger in _FINGERS:
        steps = ({"cmc": 0.3, "mcp": 0.6, "ip": 0.9, "tip": 1.2} if finger == "thumb"
                 else {"mcp": 0.9, "pip": 1.25, "dip": 1.5, "tip": 1.75})
        if joint in steps:
            a = np.deg2rad(_FINGERS[finger])
            return float(steps[joint] * np.cos(a)), float(steps[joint] * np.sin(a))
    return None


def _tree_positions(layout: Layout) -> np.ndarray:
    """A tidy tree drawing rooted at the centre joint: depth down, leaves spread evenly."""
    v = layout.num_joints
    nbrs: dict[int, list[int]] = {i: [] for i in range(v)}
    for a, b in layout.edges:
        nbrs[a].append(b)
        nbrs[b].append(a)
    pos = np.zeros((v, 2))
    seen: set[int] = set()
    next_x = [0.0]

    def place(u: int, depth: int) -> float:
        seen.add(u)
        kids = [w for w in sorted(nbrs[u]) if w not in seen]
        for w in kids:
            seen.add(w)
        xs = [place(w, depth + 1) for w in kids]
        x = float(np.mean(xs)) if xs else next_x[0]
        if not xs:
            next_x[0] += 1.0
        pos[u] = (x, -depth)
        return x

    for root in [layout.center] + list(range(v)):
        if root not in seen:
            place(root, 0)
    span = max(np.ptp(pos[:, 0]), np.ptp(pos[:, 1]), 1.0)
    return pos / span


def reference_pose(layout: str | Layout) -> np.ndarray:
    """2-D joint positions for drawing a layout: a standing front-view pose when every joint name is known
    (``left_``/``right_`` body parts by the conventions of :mod:`stgcn.graph.roles`, head/spine names, MediaPipe
    hand landmarks; a joint with an explicit role where that role would be), else a tree drawing.

    Shape:
        Returns (V, 2), y up.
    """
    lay = get_layout(layout)
    roles = {j: role for role, j in lay.roles}  # unknown name, known role: placed as the role
    named = [_named_position(j) or (_named_position(roles[i]) if i in roles else None)
             for i, j in enumerate(lay.joints)]
    if all(p is not None for p in named) and len(set(named)) == len(named):
        return np.asarray(named, dtype=np.float64)
    return _tree_positions(lay)


def _side_colour(layout: Layout, a: int, b: int) -> str:
    """The colour of edge ``(a, b)``: left or right when both joints are on that side
    (:func:`stgcn.graph.roles.joint_side`: roles, names, flip partners), else the middle colour."""
    sides = {joint_side(layout, a), joint_side(layout, b)}
    if sides == {"left"}:
        return _LEFT
    if sides == {"right"}:
        return _RIGHT
    return _MIDDLE


# -------------------------------------------------------------------------------- layout + partitions
def plot_layout(layout: str | Layout, out: str | Path, *, strategy: str = "spatial", max_hop: int = 1,
                dilation: int = 1, normalization: str = "notes") -> None:
    """Draw a layout and each partition of its graph to a picture (PNG, PDF, SVG or JPEG).

    The first panel shows the skeleton with joint indices and the centre joint ringed; each further panel
    one partition ``A[k]``: an arrow from source joint ``v`` to target ``w`` for every non-zero off-diagonal
    weight (width proportional to it) and a ring on every joint with a self weight.
    """
    from stgcn.graph.partitions import Graph

    out = Path(out)
    _check_suffix(out, IMAGE_SUFFIXES, "a picture")
    g = Graph(layout, strategy, max_hop, dilation, normalization)
    lay = g.layout
    pos = reference_pose(lay)
    figure_cls, _ = _matplotlib()
    panels = g.K + 1
    cols = min(panels, 4)
    rows = -(-panels // cols)
    fig = figure_cls(figsize=(3.6 * cols, 4.6 * rows), dpi=110, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    ax = axes[0]
    _draw_skeleton(ax, lay, pos, colour_sides=True)
    for i, (x, y) in enumerate(pos):
        ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7, color="#222222")
    ax.scatter(*pos[lay.center], s=160, facecolors="none", edgecolors="#2ca02c", linewidths=2, zorder=4)
    ax.set_title(f"{lay.name}: V={lay.num_joints}, {len(lay.edges)} edges\ncentre {lay.center} "
                 f"({lay.joints[lay.center]}) ringed", fontsize=9)
    a_max = float(np.abs(g.A).max()) or 1.0
    colours = ["#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22"]
    for k in range(g.K):
        ax = axes[k + 1]
        colour = colours[k % len(colours)]
        _draw_skeleton(ax, lay, pos, colour="#dddddd", joint_colour="#bbbbbb")
        a = g.A[k]
        for v, w in zip(*np.nonzero(a), strict=True):
            weight = float(a[v, w]) / a_max
            if v == w:
                ax.scatter(*pos[v], s=60 + 140 * weight, facecolors="none", edgecolors=colour,
                           linewidths=1.5, zorder=3)
            else:
                ax.annotate("", xy=pos[w], xytext=pos[v], zorder=3,
                            arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 0.5 + 2.5 * weight,
                                        "shrinkA": 3, "shrinkB": 3, "mutation_scale": 8,
                                        "connectionstyle": "arc3,rad=0.2"})
        nonzero = int((a != 0).sum())
        ax.set_title(f"partition {k}: {g.partition_names[k]}\n{nonzero} non-zero weights "
                     f"(arrows source -> target)", fontsize=9)
    for ax in axes[panels:]:
        ax.set_axis_off()
    fig.suptitle(f"{lay.name} graph, strategy={g.strategy}, max_hop={g.max_hop}, dilation={g.dilation}, "
                 f"normalization={g.normalization}", fontsize=10)
    _save_figure(fig, out)


def _draw_skeleton(ax: Any, layout: Layout, pos: np.ndarray, *, colour: str | None = None,
                   joint_colour: str = "#333333", colour_sides: bool = False) -> None:
    from matplotlib.collections import LineCollection

    segments = [(pos[a], pos[b]) for a, b in layout.edges]
    colours = [(_side_colour(layout, a, b) if colour_sides else colour or _MIDDLE) for a, b in layout.edges]
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=2, zorder=1))
    ax.scatter(pos[:, 0], pos[:, 1], s=14, c=joint_colour, zorder=2)
    _frame_axes(ax, pos)


def _frame_axes(ax: Any, pos: np.ndarray, margin: float = 0.12) -> None:
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    pad = margin * max(float((hi - lo).max()), 1e-6)
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------------------------ edge importance
def edge_importance(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per block, the learned mask averaged over the partitions that use each edge and joint.

    Returns:
        ``(edges, joints)``: (num_blocks, num_edges) mean of ``M[k, a, b]`` and ``M[k, b, a]`` over the
        partitions k where ``A[k]`` is non-zero there (the layout's edge order), and (num_blocks, V) the same
        for the self-connections. NaN where no partition holds the entry.
    """
    a = model.A.detach().cpu().numpy()
    layout = get_layout(model.config.graph.layout)
    edges_out, joints_out = [], []
    for block in model.blocks:
        m = block.gcn.edge_importance.detach().cpu().numpy()
        used = a != 0
        per_edge = []
        for u, w in layout.edges:
            vals = np.concatenate([m[:, u, w][used[:, u, w]], m[:, w, u][used[:, w, u]]])
            per_edge.append(vals.mean() if vals.size else np.nan)
        diag = np.arange(layout.num_joints)
        mask = used[:, diag, diag]
        vals = m[:, diag, diag]
        count = mask.sum(0)
        per_joint = np.where(count > 0, (vals * mask).sum(0) / np.maximum(count, 1), np.nan)
        edges_out.append(per_edge)
        joints_out.append(per_joint)
    return np.asarray(edges_out, dtype=np.float64), np.asarray(joints_out, dtype=np.float64)


def plot_edge_importance(model: Any, out: str | Path, *, title: str = "") -> None:
    """Draw each block's learned edge importance on the skeleton (one panel per block, shared colour scale).

    Raises:
        ConfigError: the model was built without learnable edge importance.
    """
    out = Path(out)
    _check_suffix(out, IMAGE_SUFFIXES, "a picture")
    if not model.config.edge_importance:
        raise ConfigError("this model has no learned edge importance (its config has edge_importance: false)")
    figure_cls, _ = _matplotlib()
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    layout = get_layout(model.config.graph.layout)
    pos = reference_pose(layout)
    edges, joints = edge_importance(model)
    finite = np.concatenate([edges[np.isfinite(edges)], joints[np.isfinite(joints)]])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-6:
        lo, hi = lo - 0.5, hi + 0.5
    norm = Normalize(lo, hi)
    cmap = colormaps["viridis"]
    n = len(edges)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig = figure_cls(figsize=(2.9 * cols + 0.8, 3.6 * rows), dpi=110, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for i in range(n):
        ax = axes[i]
        e = edges[i]
        widths = 1.0 + 5.0 * np.nan_to_num(norm(e), nan=0.0).clip(0, 1)
        colours = [cmap(norm(x)) if np.isfinite(x) else (0.8, 0.8, 0.8, 1.0) for x in e]
        ax.add_collection(LineCollection([(pos[a], pos[b]) for a, b in layout.edges], colors=colours,
                                         linewidths=widths, zorder=1))
        jc = [cmap(norm(x)) if np.isfinite(x) else (0.8, 0.8, 0.8, 1.0) for x in joints[i]]
        ax.scatter(pos[:, 0], pos[:, 1], s=28, c=jc, edgecolors="#222222", linewidths=0.5, zorder=2)
        _frame_axes(ax, pos)
        c_out, stride = model.config.blocks[i]
        ax.set_title(f"block {i} ({c_out} ch, stride {stride})\nedges {np.nanmin(e):.2f}..{np.nanmax(e):.2f}",
                     fontsize=8)
    for ax in axes[n:]:
        ax.set_axis_off()
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes[:n].tolist(), shrink=0.8,
                 label="importance (1 = initial)")
    fig.suptitle(f"{title or f'edge importance per block, layout {layout.name}'}\n"
                 f"edge colour and width: mask mean over the partitions using it; joints: self-connection",
                 fontsize=9)
    _save_figure(fig, out)
