"""Pictures: skeleton animations, a layout and its partitions, a model's learned edge importance.

* :func:`render_clip` draws a skeleton sequence with its layout into a GIF or MP4, optionally with the
  predicted label of each frame's window. 2-D data is drawn as it is; 3-D data is projected orthographically
  on the camera's image plane (the depth axis dropped). Which axis is up is found from the data (the mean
  head-above-feet direction), so image coordinates (y down) and world coordinates (y or z up) both come out
  upright, and 3-D camera frames are shown as the camera saw them (see :func:`_orientation`).
* :func:`plot_layout` draws a layout (joint indices, centre joint) and each partition of its graph as arrows
  from source to target joint, widths proportional to the normalised weights.
* :func:`plot_edge_importance` draws, for every block of a model, the learned edge-importance mask on the
  skeleton (edge colour = mean mask value over the partitions that hold the edge; joint colour = the
  self-connection's).

Layout pictures need 2-D joint positions; :func:`reference_pose` gives a front-view standing pose for every
joint whose name it knows (all built-in layouts) and a tree drawing rooted at the centre joint otherwise.

Needs the ``plot`` extra (matplotlib; imageio-ffmpeg for MP4). Figures are built with matplotlib's object
API and the Agg canvas, so no global pyplot state is touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.errors import ConfigError, DataError, StgcnError
from stgcn.graph.layouts import Layout, get_layout
from stgcn.utils.atomic import atomic_path, temp_path_beside

__all__ = [
    "reference_pose", "plot_layout", "plot_edge_importance", "render_clip",
    "write_animation", "VideoWriter", "edge_importance", "render_file", "ANIMATION_SUFFIXES", "IMAGE_SUFFIXES",
]

logger = logging.getLogger(__name__)

ANIMATION_SUFFIXES = (".gif", ".mp4")
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
_SCORE_NAMES = ("score", "confidence", "c", "visibility")
_LEFT, _RIGHT, _MIDDLE = "#1f77b4", "#d62728", "#444444"


# ------------------------------------------------------------------------------------------ output files
def _matplotlib() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``, or a clear error naming the extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise StgcnError("plots need matplotlib, which the 'plot' extra installs: pip install 'stgcn[plot]'") from None
    return Figure, FigureCanvasAgg


def _check_suffix(out: Path, allowed: Sequence[str], what: str) -> str:
    suffix = out.suffix.lower()
    if suffix not in allowed:
        raise ConfigError(f"{out}: {what} must end in {', '.join(allowed)}")
    return suffix


def _save_figure(fig: Any, out: Path) -> None:
    _check_suffix(out, IMAGE_SUFFIXES, "a picture")
    _, canvas_cls = _matplotlib()
    canvas_cls(fig)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lower()[1:].replace("jpg", "jpeg"), dpi=fig.dpi)


class VideoWriter:
    """MP4 (H.264, yuv420p) writer over imageio-ffmpeg's bundled FFmpeg; frames go in one at a time.

    Writes to a temporary file that replaces ``path`` on :meth:`close` (use as a context manager).

    Shape:
        frame: (H, W, 3) uint8 RGB; H and W even (odd sizes are padded by one pixel).
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        try:
            import imageio_ffmpeg
        except ImportError:
            raise StgcnError("writing MP4 needs imageio-ffmpeg, which the 'plot' and 'video' extras install: "
                             "pip install 'stgcn[plot]'") from None
        self._ffmpeg = imageio_ffmpeg
        self.path = Path(path)
        self.fps = float(fps)
        self._tmp = temp_path_beside(self.path.with_suffix(".mp4"))
        self._gen: Any = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one frame."""
        frame = np.asarray(frame, dtype=np.uint8)[..., :3]
        h, w = frame.shape[:2]
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            h, w = frame.shape[:2]
        if self._gen is None:
            self._size = (w, h)
            self._gen = self._ffmpeg.write_frames(str(self._tmp), (w, h), fps=self.fps, codec="libx264",
                                                  pix_fmt_out="yuv420p", macro_block_size=1)
            self._gen.send(None)
        elif (w, h) != self._size:
            raise DataError(f"{self.path}: frame {self.frames} is {w}x{h}; earlier frames are "
                            f"{self._size[0]}x{self._size[1]}")
        self._gen.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            raise DataError(f"{self.path}: no frames to write")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop and remove the temporary file; ``path`` is left untouched."""
        if self._gen is not None:
            with contextlib.suppress(Exception):
                self._gen.close()
            self._gen = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_animation(frames: Iterable[np.ndarray], out: str | Path, fps: float) -> int:
    """Write RGB frames to a GIF (Pillow) or an MP4 (imageio-ffmpeg), atomically.

    Returns:
        The number of frames written.

    Shape:
        frames: each (H, W, 3) uint8.
    """
    out = Path(out)
    suffix = _check_suffix(out, ANIMATION_SUFFIXES, "an animation")
    if suffix == ".mp4":
        with VideoWriter(out, fps) as writer:
            for frame in frames:
                writer.write(frame)
        return writer.frames
    try:
        from PIL import Image
    except ImportError:
        raise StgcnError("writing GIF needs Pillow, which the 'plot' extra installs: "
                         "pip install 'stgcn[plot]'") from None
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)[..., :3]) for f in frames]
    if not images:
        raise DataError(f"{out}: no frames to write")
    # a shared adaptive palette keeps colours steady across frames
    palette = images[0].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    frames_p = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    with atomic_path(out) as tmp:
        frames_p[0].save(tmp, format="GIF", save_all=True, append_images=frames_p[1:],
                         duration=max(20, round(1000 / fps)), loop=0, optimize=False)
    return len(images)


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
    n = name.lower()
    if n in _BODY:
        return _BODY[n]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for part in (n.removeprefix(f"{side}_"), n.removesuffix(f"_{side}")):
            if part != n and part in _SIDED:
                x, y = _SIDED[part]
                return sign * x, y
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
    (``left_``/``right_`` body parts, head/spine names, MediaPipe hand landmarks), else a tree drawing.

    Shape:
        Returns (V, 2), y up.
    """
    lay = get_layout(layout)
    named = [_named_position(j) for j in lay.joints]
    if all(p is not None for p in named) and len(set(named)) == len(named):
        return np.asarray(named, dtype=np.float64)
    return _tree_positions(lay)


def _side_colour(layout: Layout, a: int, b: int) -> str:
    names = (layout.joints[a].lower(), layout.joints[b].lower())
    if all("left" in n for n in names):
        return _LEFT
    if all("right" in n for n in names):
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


# ------------------------------------------------------------------------------------------ animation
def _coordinate_channels(num_channels: int, channels: Sequence[str] | None) -> tuple[list[int], int | None]:
    """Indices of the coordinate channels (at most 3) and of the score channel, if any."""
    if channels is None:
        return list(range(min(num_channels, 3))), None
    if len(channels) != num_channels:
        raise DataError(f"{len(channels)} channel names ({', '.join(channels)}) for data with {num_channels} "
                        f"channels")
    score = [i for i, c in enumerate(channels) if c.lower() in _SCORE_NAMES]
    coords = [i for i, c in enumerate(channels) if c.lower() not in _SCORE_NAMES][:3]
    if len(coords) < 2:
        raise DataError(f"need at least two coordinate channels to draw, got {list(channels)}")
    return coords, (score[0] if score else None)


def _orientation(xyz: np.ndarray, valid: np.ndarray, layout: Layout) -> tuple[int, float, int, float]:
    """``(horizontal axis, its sign, vertical axis, its sign)`` for an upright camera view.

    Up is the coordinate axis along which the head-like joints are farthest from the foot-like ones (on
    average over the clip); without such joints, the second axis pointing down (image coordinates). 2-D data
    keeps its x axis. For 3-D data the remaining axis is the depth; when the skeleton lies clearly on one
    side of the origin along it (a camera frame: depth > 0), the frame is taken as right-handed and the
    horizontal direction is ``depth x up``, which shows the scene as the camera saw it (Kinect's x, which
    points to the sensor's left, is mirrored; an x-right, y-down, z-forward frame is kept).
    """
    names = [j.lower() for j in layout.joints]
    top = [i for i, n in enumerate(names) if any(k in n for k in ("head", "nose", "eye", "ear", "neck"))]
    bottom = [i for i, n in enumerate(names) if any(k in n for k in ("ankle", "foot", "heel", "knee", "hip"))]
    d = xyz.shape[-1]
    up_axis, up_sign = 1, -1.0
    if top and bottom:
        diffs = np.zeros(d)
        for axis in range(d):
            t = xyz[..., top, axis][valid[..., top]]
            b = xyz[..., bottom, axis][valid[..., bottom]]
            if t.size and b.size:
                diffs[axis] = t.mean() - b.mean()
        if np.abs(diffs).max() > 0:
            up_axis = int(np.argmax(np.abs(diffs)))
            up_sign = 1.0 if diffs[up_axis] > 0 else -1.0
    if d < 3:
        return (0 if up_axis != 0 else 1), 1.0, up_axis, up_sign
    rest = [a for a in range(3) if a != up_axis]
    points = xyz[valid]
    extent = float(np.ptp(points[:, up_axis])) or 1.0
    depth_axis = max(rest, key=lambda a: abs(float(points[:, a].mean())))
    depth_mean = float(points[:, depth_axis].mean())
    if abs(depth_mean) < 0.5 * extent:  # centred data: no camera frame to go by, keep the first axis
        h_axis = rest[0]
        return h_axis, 1.0, up_axis, up_sign
    up_vec, depth_vec = np.zeros(3), np.zeros(3)
    up_vec[up_axis] = up_sign
    depth_vec[depth_axis] = 1.0 if depth_mean > 0 else -1.0
    right = np.cross(depth_vec, up_vec)
    h_axis = int(np.argmax(np.abs(right)))
    return h_axis, float(np.sign(right[h_axis])), up_axis, up_sign


def render_clip(clip: np.ndarray, layout: str | Layout, out: str | Path, *, fps: float = 30.0,
                channels: Sequence[str] | None = None, frame_text: Callable[[int], str] | None = None,
                title: str = "", size: tuple[int, int] = (480, 480)) -> int:
    """Animate a skeleton sequence to a GIF or MP4.

    Args:
        clip: The keypoints.
        layout: Their layout.
        out: ``.gif`` or ``.mp4`` file.
        fps: Frames per second of the animation.
        channels: Channel names (e.g. ``x, y, score``); score channels are not drawn but a zero score hides a
            joint. ``None``: the first (up to) three channels are coordinates.
        frame_text: Text under the title for each frame (e.g. the predicted label).
        title: Figure title.
        size: Width and height in pixels.

    Returns:
        The number of frames written.

    Shape:
        clip: (T, V, C) or (T, M, V, C).
    """
    from stgcn.inference.predict import as_clip

    lay = get_layout(layout)
    out = Path(out)
    _check_suffix(out, ANIMATION_SUFFIXES, "an animation")
    figure_cls, canvas_cls = _matplotlib()
    from matplotlib.collections import LineCollection

    x = as_clip(clip, where="render input")
    t, m, v, c = x.shape
    if v != lay.num_joints:
        raise DataError(f"render input has {v} joints; layout {lay.name!r} has {lay.num_joints}")
    coords, score = _coordinate_channels(c, channels)
    if len(coords) < 2:
        raise DataError(f"render input has {c} channel(s); need at least x and y")
    xyz = x[..., coords]
    valid = np.any(xyz != 0, axis=-1)
    if score is not None:
        valid &= x[..., score] > 0
    if not valid.any():
        raise DataError("render input has no visible joint (all zero)")
    h_axis, h_sign, v_axis, v_sign = _orientation(xyz, valid, lay)
    pts = np.stack([h_sign * xyz[..., h_axis], v_sign * xyz[..., v_axis]], axis=-1)  # (T, M, V, 2), up = +y
    dpi = 100
    fig = figure_cls(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    canvas = canvas_cls(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.84))
    _frame_axes(ax, pts[valid], margin=0.08)
    ax.set_facecolor("#fafafa")
    edge_colours = [_side_colour(lay, a, b) for a, b in lay.edges]
    person_alpha = [1.0, 0.55, 0.4, 0.3]
    lines = [ax.add_collection(LineCollection([], linewidths=2.5, zorder=1)) for _ in range(m)]
    dots = [ax.scatter([], [], s=12, c="#222222", zorder=2) for _ in range(m)]
    fig.text(0.5, 0.95, title or lay.name, ha="center", va="center", fontsize=11)
    sub = fig.text(0.5, 0.895, "", ha="center", va="center", fontsize=10, color="#333333")

    def frames() -> Iterator[np.ndarray]:
        for f in range(t):
            for p in range(m):
                segs, cols = [], []
                for (a, b), col in zip(lay.edges, edge_colours, strict=True):
                    if valid[f, p, a] and valid[f, p, b]:
                        segs.append((pts[f, p, a], pts[f, p, b]))
                        cols.append(col)
                lines[p].set_segments(segs)
                lines[p].set_color(cols)
                lines[p].set_alpha(person_alpha[min(p, 3)])
                dots[p].set_offsets(pts[f, p][valid[f, p]] if valid[f, p].any() else np.empty((0, 2)))
            text = f"frame {f + 1}/{t}"
            if frame_text is not None:
                text += "   " + frame_text(f)
            sub.set_text(text)
            canvas.draw()
            yield np.asarray(canvas.buffer_rgba())[..., :3].copy()

    return write_animation(frames(), out, fps)


def render_file(path: str | Path, out: str | Path, *, checkpoint: str | Path | None = None,
                layout: str | None = None, channels: Sequence[str] | None = None, fps: float | None = None,
                window: int | None = None, stride: int | None = None, size: tuple[int, int] = (480, 480)) -> dict:
    """``stgcn render``: animate the clip in a file, optionally with a checkpoint's label per window.

    The layout comes from ``layout``, else the checkpoint, else the file's metadata; channel names from
    ``channels``, else the file's metadata. With a checkpoint each frame shows the label and score of the
    sliding window whose centre is nearest (as :func:`stgcn.predict.frame_labels` with ``causal=False``),
    and the title the whole-clip prediction.

    Returns:
        A summary: ``{"out", "frames", "layout", "prediction" (top-k or None)}``.
    """
    from stgcn.inference.predict import Predictor, read_clips

    predictor = Predictor.from_checkpoint(checkpoint) if checkpoint is not None else None
    if layout is None and predictor is not None:
        layout = predictor.layout.name
    clips = read_clips(path, layout)
    if len(clips) != 1:
        raise DataError(f"{path}: holds {len(clips)} clips; render takes a file with one clip")
    item = clips[0]
    name, meta = item.name, item.meta
    lay = layout or meta.get("layout")
    if lay is None:
        raise ConfigError(f"{path}: the file does not name its layout; pass --layout (one of the built-ins or a "
                          f"layout file) or --checkpoint")
    lay = get_layout(lay)
    if channels is None:
        channels = item.channels
    clip = item.array()
    fps = float(fps or meta.get("fps") or 30.0)
    text = None
    title = f"{Path(name).name} ({lay.name})"
    summary: dict[str, Any] = {"out": str(out), "layout": lay.name, "prediction": None}
    if predictor is not None:
        if predictor.layout.num_joints != lay.num_joints:
            raise DataError(f"{path}: layout {lay.name!r} has {lay.num_joints} joints; the checkpoint's layout "
                            f"{predictor.layout.name!r} has {predictor.layout.num_joints}")
        model_input = predictor.input_from(item)
        whole = predictor.predict(model_input)
        windows = predictor.sliding_window(model_input, window, stride)
        centres = np.array([(w.start + w.end - 1) / 2 for w in windows])
        title = f"{title}: {whole.label} {whole.score:.2f}"
        summary["prediction"] = whole.to_dict()
        summary["windows"] = [w.to_dict() for w in windows]

        def text(f: int) -> str:
            w = windows[int(np.argmin(np.abs(centres - f)))]
            return f"{w.prediction.label} {w.prediction.score:.2f}"

    summary["frames"] = render_clip(clip, lay, out, fps=fps, channels=channels, frame_text=text, title=title,
                                    size=size)
    return summary
