"""Skeleton animations: a clip drawn with its layout into a GIF or MP4.

* :func:`render_clip` draws a skeleton sequence with its layout into a GIF or MP4, optionally with the
  predicted label of each frame's window. 2-D data is drawn as it is; 3-D data is projected orthographically
  on the camera's image plane (the depth axis dropped). Which axis is up is found from the data (the mean
  head-above-feet direction), so image coordinates (y down) and world coordinates (y or z up) both come out
  upright, and 3-D camera frames are shown as the camera saw them (see :func:`_orientation`).
* :func:`render_file` does the same for the clip in a file (``stgcn render``), optionally labelled by a
  checkpoint.

Layout and edge-importance pictures are in :mod:`stgcn.inference.plots`, the file writers in
:mod:`stgcn.inference.media`; their names are re-exported here.

Needs the ``plot`` extra (matplotlib; imageio-ffmpeg for MP4). Figures are built with matplotlib's object
API and the Agg canvas, so no global pyplot state is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.channels import is_score
from stgcn.errors import ConfigError, DataError
from stgcn.graph.identity import match_joints
from stgcn.graph.layouts import Layout, get_layout
from stgcn.graph.roles import resolve_role
from stgcn.inference.clips import as_clip, read_clips
from stgcn.inference.media import (
    ANIMATION_SUFFIXES,
    IMAGE_SUFFIXES,
    VideoWriter,
    _check_suffix,
    _matplotlib,
    write_animation,
)
from stgcn.inference.plots import (
    _frame_axes,
    _side_colour,
    edge_importance,
    plot_edge_importance,
    plot_layout,
    reference_pose,
)

# re-exported: the names of this module before it was split (plots, media)
__all__ = [
    "reference_pose", "plot_layout", "plot_edge_importance", "render_clip",
    "write_animation", "VideoWriter", "edge_importance", "render_file", "ANIMATION_SUFFIXES", "IMAGE_SUFFIXES",
]


# ------------------------------------------------------------------------------------------ animation
def _coordinate_channels(num_channels: int, channels: Sequence[str] | None) -> tuple[list[int], int | None]:
    """Indices of the coordinate channels (at most 3) and of the score channel, if any."""
    if channels is None:
        return list(range(min(num_channels, 3))), None
    if len(channels) != num_channels:
        raise DataError(f"{len(channels)} channel names ({', '.join(channels)}) for data with {num_channels} "
                        f"channels")
    score = [i for i, c in enumerate(channels) if is_score(c)]
    coords = [i for i, c in enumerate(channels) if not is_score(c)][:3]
    if len(coords) < 2:
        raise DataError(f"need at least two coordinate channels to draw, got {list(channels)}")
    return coords, (score[0] if score else None)


def _orientation(xyz: np.ndarray, valid: np.ndarray, layout: Layout) -> tuple[int, float, int, float]:
    """``(horizontal axis, its sign, vertical axis, its sign)`` for an upright camera view.

    Up is the coordinate axis along which the head-like joints are farthest from the foot-like ones (on
    average over the clip; by name, else the head/neck and pelvis/hip roles of the layout); without such joints,
    the second axis pointing down (image coordinates). 2-D data keeps its x axis. For 3-D data the remaining
    axis is the depth; when the skeleton lies clearly on one side of the origin along it (a camera frame:
    depth > 0), the frame is taken as right-handed and the
    horizontal direction is ``depth x up``, which shows the scene as the camera saw it (Kinect's x, which
    points to the sensor's left, is mirrored; an x-right, y-down, z-forward frame is kept).
    """
    names = [j.lower() for j in layout.joints]
    top = [i for i, n in enumerate(names) if any(k in n for k in ("head", "nose", "eye", "ear", "neck"))]
    bottom = [i for i, n in enumerate(names) if any(k in n for k in ("ankle", "foot", "heel", "knee", "hip"))]
    # names that say nothing: the layout's roles (explicit, else by name: stgcn.graph.roles)
    top = top or [j for r in ("head", "neck") if (j := resolve_role(layout, r)) is not None]
    bottom = bottom or [j for r in ("pelvis", "left_hip", "right_hip") if (j := resolve_role(layout, r)) is not None]
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
    sliding window whose centre is nearest (as :func:`stgcn.inference.windows.frame_labels` with ``causal=False``),
    and the title the whole-clip prediction.

    Returns:
        A summary: ``{"out", "frames", "layout", "prediction" (top-k or None)}``.
    """
    from stgcn.inference.predict import Predictor

    predictor = Predictor.from_checkpoint(checkpoint) if checkpoint is not None else None
    read_as: str | Layout | None = layout
    if layout is None and predictor is not None:
        read_as = predictor.layout  # the checkpoint's own layout, inline when custom
    clips = read_clips(path, read_as, target="--layout" if layout is not None else "the checkpoint")
    if len(clips) != 1:
        raise DataError(f"{path}: holds {len(clips)} clips; render takes a file with one clip")
    item = clips[0]
    name, meta = item.name, item.meta
    lay = read_as or meta.get("layout")
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
        match_joints(lay, predictor.layout, data_what=str(path), target_what="the checkpoint")
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
