"""Clip transforms: pure numpy functions and the pipeline that turns a stored clip into a model input.

Every function takes the clip as ``(T, M, V, C)`` (the store's order), returns a new array and never
mutates its input; the random ones take an explicit :class:`numpy.random.Generator`.

Two configs describe a pipeline:

* :class:`PreprocessConfig`: the deterministic part, identical at training and test time, and saved in a
  checkpoint so that prediction preprocesses exactly as training did (persons kept, 2-D normalisation by
  image size, centring, view normalisation, temporal length/sampling, feature stream, multi-clip testing).
* :class:`AugmentConfig`: training-only augmentation (the original ST-GCN's random shift and random move,
  random 3-D rotation).

:func:`build_transform` combines them into a picklable callable ``transform(clip, rng)`` that returns the
model input ``(C, T, V, M)`` float32 (or ``(K, C, T, V, M)`` for K-clip testing).

Pipeline order: persons -> 2-D normalisation -> centring -> view normalisation -> temporal resizing ->
augmentation (training only) -> feature stream -> ``(C, T, V, M)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import Layout, get_layout

__all__ = [
    "PreprocessConfig", "AugmentConfig", "Transform", "build_transform", "RESIZE_MODES", "STREAMS",
    "CENTER_MODES", "SCORE_CHANNELS", "select_persons", "normalize_2d", "center_on_joint", "view_normalize",
    "body_rotation", "rotation_matrix",
    "temporal_indices", "take_frames", "random_shift", "random_move", "move_curves", "apply_moves",
    "random_rotate_3d", "random_rotation", "apply_rotations", "feature_stream",
]

RESIZE_MODES = ("pad", "loop", "uniform")
STREAMS = ("joint", "bone", "joint_motion", "bone_motion")
CENTER_MODES = ("none", "frame", "first")
SCORE_CHANNELS = ("score", "confidence", "c", "visibility")


def _present(x: np.ndarray) -> np.ndarray:
    """(T, M) mask of person-frames that hold any non-zero value (zero ones are absent or padding)."""
    return np.any(x != 0, axis=(2, 3))


def select_persons(x: np.ndarray, max_persons: int) -> np.ndarray:
    """Keep the first ``max_persons`` persons; append all-zero persons when the clip has fewer.

    Shape:
        x: (T, M, V, C) -> (T, max_persons, V, C)
    """
    t, m, v, c = x.shape
    if m >= max_persons:
        return x[:, :max_persons].copy()
    out = np.zeros((t, max_persons, v, c), dtype=x.dtype)
    out[:, :m] = x
    return out


def normalize_2d(x: np.ndarray, image_size: tuple[float, float], score_channel: int | None = None) -> np.ndarray:
    """Pixel coordinates to the original ST-GCN convention: ``x / width - 0.5``, ``y / height - 0.5``.

    Joints that were not detected (score 0 when a score channel is given, else both coordinates 0) are set
    to 0 in every channel, as the original Kinetics feeder does.

    Shape:
        x: (T, M, V, C) with x, y in channels 0 and 1 -> same shape
    """
    from stgcn.data.channels import normalize_original

    return normalize_original(x, image_size, ("x", "y"), score_channel=score_channel)


def center_on_joint(x: np.ndarray, joint: int, mode: str = "frame", num_coords: int = 3) -> np.ndarray:
    """Subtract the position of ``joint`` of the first person from every person.

    ``mode="frame"`` subtracts that joint's position in the same frame, ``mode="first"`` its position in
    the first frame where the first person is present (the whole clip moves rigidly, so global motion is
    kept). Absent person-frames (all zero) stay zero; only the first ``num_coords`` channels change.

    Shape:
        x: (T, M, V, C) -> same shape
    """
    if mode not in CENTER_MODES:
        raise ConfigError(f"center mode {mode!r} is not valid; valid modes are {', '.join(CENTER_MODES)}")
    out = x.astype(np.float32, copy=True)
    if mode == "none":
        return out
    k = min(num_coords, x.shape[-1])
    present = _present(x)
    if mode == "frame":
        origin = x[:, 0, joint, :k]                                  # (T, k)
        origin = np.where(present[:, :1], origin, 0)                 # frames without person 0: no shift
        out[..., :k] -= origin[:, None, None, :]
    else:
        frames = np.flatnonzero(present[:, 0])
        if frames.size == 0:
            return out
        out[..., :k] -= x[frames[0], 0, joint, :k]
    if not present.all():
        out[~present] = 0
    return out


def _find(layout: Layout, *names: str) -> int | None:
    for name in names:
        if name in layout.joints:
            return layout.joints.index(name)
    return None


def view_joints(layout: Layout) -> tuple[int, int, int, int]:
    """Joints that define the body frame for :func:`view_normalize`: (bottom, top, right, left).

    Raises:
        ConfigError: the layout lacks a pelvis/spine joint or the two shoulders (or hips).
    """
    bottom = _find(layout, "hip_center", "spine_base", "pelvis", "mid_hip")
    top = _find(layout, "spine", "spine_mid", "shoulder_center", "spine_shoulder", "neck")
    right = _find(layout, "right_shoulder", "right_hip")
    left = _find(layout, "left_shoulder", "left_hip")
    if bottom is None or top is None or right is None or left is None:
        raise ConfigError(
            f"view normalisation needs joints named hip_center/spine_base, spine/spine_mid/neck and "
            f"left_/right_shoulder; layout {layout.name!r} has {list(layout.joints)}")
    return bottom, top, right, left


def body_rotation(x: np.ndarray, joints: tuple[int, int, int, int], frame: int | None = None) -> np.ndarray | None:
    """The rotation :func:`view_normalize` applies: rows are the body's x, y, z axes in ``frame`` (default:
    the first frame where the first person is present); ``None`` when there is no such frame or the axes are
    degenerate.

    Shape:
        x: (T, M, V, C >= 3) -> (3, 3)
    """
    if frame is None:
        frames = np.flatnonzero(np.any(x[:, 0] != 0, axis=(1, 2)))
        if frames.size == 0:
            return None
        frame = int(frames[0])
    bottom, top, right, left = joints
    p = x[frame, 0, [bottom, top, right, left], :3].tolist()
    z = [p[1][i] - p[0][i] for i in range(3)]
    nz = math.sqrt(z[0] ** 2 + z[1] ** 2 + z[2] ** 2)
    if nz < 1e-8:
        return None
    z = [v / nz for v in z]
    across = [p[3][i] - p[2][i] for i in range(3)]
    dot = across[0] * z[0] + across[1] * z[1] + across[2] * z[2]
    xa = [across[i] - dot * z[i] for i in range(3)]
    nx = math.sqrt(xa[0] ** 2 + xa[1] ** 2 + xa[2] ** 2)
    if nx < 1e-8:
        return None
    xa = [v / nx for v in xa]
    y = [z[1] * xa[2] - z[2] * xa[1], z[2] * xa[0] - z[0] * xa[2], z[0] * xa[1] - z[1] * xa[0]]
    return np.array([xa, y, z], dtype=np.float32)


def view_normalize(x: np.ndarray, joints: tuple[int, int, int, int]) -> np.ndarray:
    """Rotate a 3-D clip into the first person's body frame of the first frame they are present in.

    The new z axis runs along the spine (``bottom -> top``); the new x axis runs from the right to the
    left shoulder (made orthogonal to z); y completes a right-handed frame. This is the rotation part of
    the NTU "pre-normalisation" used by 2s-AGCN/CTR-GCN, done as one rotation. Centre the clip first
    (:func:`center_on_joint`) so the rotation turns it about the body. Absent person-frames stay zero.

    Shape:
        x: (T, M, V, C >= 3) with x, y, z in channels 0-2 -> same shape
    """
    out = x.astype(np.float32, copy=True)
    rot = body_rotation(x, joints)
    if rot is not None:
        out[..., :3] = out[..., :3] @ rot.T   # zero points stay zero under a rotation
    return out


def temporal_indices(
    num_frames: int,
    length: int | None,
    mode: str = "pad",
    *,
    rng: np.random.Generator | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """Frame indices that bring a clip of ``num_frames`` frames to ``length`` frames (-1: a zero frame).

    Modes:
        * ``pad``: a longer clip is cropped (random window with ``rng``; else window ``clip_index`` of
          ``num_clips`` evenly spaced ones, the centre one for a single clip); a shorter one is padded with
          zero frames at the end.
        * ``loop``: as ``pad`` but a shorter clip is repeated from its start until ``length`` frames.
        * ``uniform``: split the clip into ``length`` equal segments and take one frame from each (a random
          frame with ``rng``; else the frame at fraction ``(clip_index + 0.5) / num_clips`` of each
          segment); a shorter clip repeats frames.

    ``length=None`` keeps every frame.
    """
    if num_frames < 1:
        raise DataError("empty clip: expected at least one frame")
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize mode {mode!r} is not valid; valid modes are {', '.join(RESIZE_MODES)}")
    if length is None:
        return np.arange(num_frames)
    if mode == "uniform":
        width = num_frames / length                         # segment k is [k * width, (k + 1) * width)
        frac = rng.random(length) if rng is not None else (clip_index + 0.5) / num_clips
        pos = (np.arange(length) + frac) * width
        return np.minimum(pos.astype(np.int64), num_frames - 1)
    if num_frames >= length:
        room = num_frames - length
        if rng is not None:
            start = int(rng.integers(0, room + 1))
        else:
            start = int(round((clip_index + 0.5) / num_clips * room))
        return np.arange(start, start + length)
    if mode == "loop":
        return np.arange(length) % num_frames
    idx = np.full(length, -1, dtype=np.int64)
    idx[:num_frames] = np.arange(num_frames)
    return idx


def take_frames(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Gather frames by index; index -1 gives an all-zero frame.

    Shape:
        x: (T, M, V, C), indices: (L,) -> (L, M, V, C)
    """
    out = x[np.maximum(indices, 0)]
    if (indices < 0).any():
        out[indices < 0] = 0
    return out


def random_shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The original's random shift: move the span of non-zero frames to a random offset (zeros around it).

    Shape:
        x: (T, M, V, C) -> same shape
    """
    valid = np.flatnonzero(_present(x).any(axis=1))
    out = np.zeros_like(x)
    if valid.size == 0:
        return out
    begin, end = int(valid[0]), int(valid[-1]) + 1
    size = end - begin
    bias = int(rng.integers(0, x.shape[0] - size + 1))
    out[bias:bias + size] = x[begin:end]
    return out


def _key_frame_curves(keys: np.ndarray, nodes: np.ndarray, num_frames: int) -> np.ndarray:
    """Per-frame values linearly interpolated between key values at ``nodes``, as the original's
    ``np.linspace(keys[i], keys[i + 1], nodes[i + 1] - nodes[i])`` per segment (each segment runs from its
    first key to its last, both included).

    Shape:
        keys: (P, K) for P parameters at K nodes -> (P, num_frames)
    """
    if len(nodes) == 2:  # one segment (the default): a plain linspace from the first key to the last
        frac = np.arange(num_frames) / max(num_frames - 1, 1)
        return keys[:, :1] + (keys[:, 1:] - keys[:, :1]) * frac
    t = np.arange(num_frames)
    seg = np.minimum(np.searchsorted(nodes, t, side="right") - 1, len(nodes) - 2)
    n = nodes[seg + 1] - nodes[seg]
    frac = (t - nodes[seg]) / np.maximum(n - 1, 1)
    return keys[:, seg] + (keys[:, seg + 1] - keys[:, seg]) * frac


def move_curves(
    rng: np.random.Generator,
    num_frames: int,
    *,
    angles: Sequence[float] = (-10.0, -5.0, 0.0, 5.0, 10.0),
    scales: Sequence[float] = (0.9, 1.0, 1.1),
    translations: Sequence[float] = (-0.2, -0.1, 0.0, 0.1, 0.2),
    move_steps: Sequence[int] = (1,),
) -> np.ndarray:
    """The per-frame parameters of :func:`random_move`: angle (radians), scale, x and y translation.

    Shape:
        returns (4, num_frames)
    """
    t = num_frames
    steps = int(move_steps[int(rng.integers(len(move_steps)))]) if len(move_steps) > 1 else int(move_steps[0])
    nodes = np.append(np.arange(0, t, t * 1.0 / steps).round().astype(int), t) if steps > 1 else np.array([0, t])
    k = len(nodes)
    u = rng.random((4, k)).tolist()
    keys = np.array([[cand[int(v * len(cand))] for v in row]
                     for row, cand in zip(u, (angles, scales, translations, translations), strict=True)],
                    dtype=np.float64)
    curves = _key_frame_curves(keys, nodes, t)
    curves[0] *= np.pi / 180
    return curves


def apply_moves(x: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Rotate, scale and translate x, y of each frame of each clip by its :func:`move_curves`.

    Shape:
        x: (B, T, M, V, C), curves: (B, 4, T) -> (B, T, M, V, C)
    """
    a, s, tx, ty = (curves[:, i].astype(np.float32)[:, :, None, None] for i in range(4))
    cos, sin = np.cos(a) * s, np.sin(a) * s
    out = x.astype(np.float32, copy=True)
    px, py = x[..., 0], x[..., 1]
    out[..., 0] = cos * px - sin * py + tx
    out[..., 1] = sin * px + cos * py + ty
    return out


def random_move(
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    angles: Sequence[float] = (-10.0, -5.0, 0.0, 5.0, 10.0),
    scales: Sequence[float] = (0.9, 1.0, 1.1),
    translations: Sequence[float] = (-0.2, -0.1, 0.0, 0.1, 0.2),
    move_steps: Sequence[int] = (1,),
) -> np.ndarray:
    """The original ST-GCN random move (yysijie/st-gcn ``feeder/tools.py``): rotate, scale and translate
    x and y, each drawn from its candidates at ``steps + 1`` key frames and interpolated over time.

    Angles are in degrees. Only channels 0 and 1 change (the whole frame, zero padding included, as the
    original).

    Shape:
        x: (T, M, V, C) -> same shape
    """
    curves = move_curves(rng, x.shape[0], angles=angles, scales=scales, translations=translations,
                         move_steps=move_steps)
    return apply_moves(x[None], curves[None])[0]


def rotation_matrix(ax: float, ay: float, az: float) -> np.ndarray:
    """3-D rotation ``Rz @ Ry @ Rx`` for angles in radians. Shape: (3, 3)."""
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    return np.array([
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ])


def random_rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """A rotation ``Rz @ Ry @ Rx`` with angles uniform in ``[-max_angle, max_angle]`` degrees. Shape: (3, 3)."""
    ax, ay, az = rng.uniform(-max_angle, max_angle, size=3) * (math.pi / 180)
    return rotation_matrix(ax, ay, az)


def apply_rotations(x: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Rotate x, y, z of each clip by its rotation.

    Shape:
        x: (B, T, M, V, C >= 3), rotations: (B, 3, 3) -> (B, T, M, V, C)
    """
    b = x.shape[0]
    out = x.astype(np.float32, copy=True)
    rt = rotations.astype(np.float32).transpose(0, 2, 1)
    out[..., :3] = (out[..., :3].reshape(b, -1, 3) @ rt).reshape(*x.shape[:-1], 3)
    return out


def random_rotate_3d(x: np.ndarray, rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """Rotate x, y, z by one random rotation: angles about each axis uniform in ``[-max_angle, max_angle]``
    degrees. Zero points (absent joints, padding) stay zero.

    Shape:
        x: (T, M, V, C >= 3) -> same shape
    """
    return apply_rotations(x[None], random_rotation(rng, max_angle)[None])[0]


def feature_stream(x: np.ndarray, stream: str, bone_pairs: Sequence[tuple[int, int]],
                   num_coords: int | None = None, *, time_axis: int = 0) -> np.ndarray:
    """One of the four input streams of two-stream models.

    * ``joint``: the coordinates.
    * ``bone``: ``x[joint] - x[parent]`` for the layout's ``(joint, parent)`` bone pairs (one per joint).
    * ``joint_motion``: ``x[t + 1] - x[t]``, zero at the last frame.
    * ``bone_motion``: the motion of the bones.

    Only the first ``num_coords`` channels (default: all) change; the others (a score) are kept.

    Shape:
        x: (T, M, V, C) -> same shape (or (B, T, M, V, C) with ``time_axis=1``)
    """
    if stream not in STREAMS:
        raise ConfigError(f"feature stream {stream!r} is not valid; valid streams are {', '.join(STREAMS)}")
    k = x.shape[-1] if num_coords is None else num_coords
    out = x.astype(np.float32, copy=True)
    if stream in ("bone", "bone_motion"):
        joints = np.fromiter((j for j, _ in bone_pairs), dtype=np.int64)
        parents = np.fromiter((p for _, p in bone_pairs), dtype=np.int64)
        out[..., joints, :k] = x[..., joints, :k] - x[..., parents, :k]
    if stream in ("joint_motion", "bone_motion"):
        base = np.moveaxis(out[..., :k], time_axis, 0).copy()
        moved = np.moveaxis(out, time_axis, 0)           # a view: writes go to out
        moved[:-1, ..., :k] = base[1:] - base[:-1]
        moved[-1, ..., :k] = 0
    return out


def _tuple(value: Any, where: str) -> tuple:
    if isinstance(value, list | tuple):
        return tuple(value)
    raise ConfigError(f"{where} must be a list, got {value!r}")


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}; valid keys are {names}")
    return cls(**data)


@dataclass(frozen=True)
class PreprocessConfig:
    """The deterministic preprocessing, shared by training, evaluation and prediction.

    Args:
        length: Frames per model input T; ``None`` keeps each clip's own length (batch size 1 only).
        resize: How a clip reaches ``length`` frames: ``pad`` (crop / zero-pad at the end), ``loop``
            (crop / repeat) or ``uniform`` (one frame per equal segment). See :func:`temporal_indices`.
        num_clips: Clips per sample at test time (K-clip testing averages the K logits). Ignored in
            training.
        max_persons: Persons M per input; ``None`` keeps the store's M.
        channels: Input channel names (e.g. ``("x", "y", "z")``, ``("x", "y", "score")``). Channels named
            score/confidence/visibility are not coordinates: they are never moved or rotated. ``None``: all
            channels are coordinates.
        image_size: ``(width, height)`` to normalise 2-D pixel coordinates: ``x / width - 0.5``. Use
            ``(1, 1)`` for coordinates already in [0, 1] (the original Kinetics convention).
        center: ``none``, ``frame`` (subtract the centre joint in every frame) or ``first`` (subtract its
            position in the first frame).
        center_joint: Joint name or index to centre on; ``None`` uses the layout's centre joint.
        view_normalize: Rotate 3-D clips into the body frame of the first frame (see
            :func:`view_normalize`).
        stream: Feature stream: ``joint``, ``bone``, ``joint_motion`` or ``bone_motion``.
    """

    length: int | None = 64
    resize: str = "uniform"
    num_clips: int = 1
    max_persons: int | None = None
    channels: tuple[str, ...] | None = None
    image_size: tuple[float, float] | None = None
    center: str = "none"
    center_joint: int | str | None = None
    view_normalize: bool = False
    stream: str = "joint"

    def __post_init__(self) -> None:
        if self.length is not None and (isinstance(self.length, bool) or not isinstance(self.length, int)
                                        or self.length < 1):
            raise ConfigError(f"preprocess length must be a positive integer or None, got {self.length!r}")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"preprocess resize {self.resize!r} is not valid; valid modes are "
                              f"{', '.join(RESIZE_MODES)}")
        if isinstance(self.num_clips, bool) or not isinstance(self.num_clips, int) or self.num_clips < 1:
            raise ConfigError(f"preprocess num_clips must be a positive integer, got {self.num_clips!r}")
        if self.max_persons is not None and (not isinstance(self.max_persons, int) or self.max_persons < 1):
            raise ConfigError(f"preprocess max_persons must be a positive integer or None, got "
                              f"{self.max_persons!r}")
        if self.channels is not None:
            chans = _tuple(self.channels, "preprocess channels")
            if not chans or not all(isinstance(c, str) for c in chans):
                raise ConfigError(f"preprocess channels must be channel names, got {self.channels!r}")
            object.__setattr__(self, "channels", chans)
        if self.image_size is not None:
            size = _tuple(self.image_size, "preprocess image_size")
            if len(size) != 2 or not all(isinstance(s, int | float) and not isinstance(s, bool) and s > 0
                                         for s in size):
                raise ConfigError(f"preprocess image_size must be (width, height) > 0, got {self.image_size!r}")
            object.__setattr__(self, "image_size", (float(size[0]), float(size[1])))
        if self.center not in CENTER_MODES:
            raise ConfigError(f"preprocess center {self.center!r} is not valid; valid modes are "
                              f"{', '.join(CENTER_MODES)}")
        if self.stream not in STREAMS:
            raise ConfigError(f"preprocess stream {self.stream!r} is not valid; valid streams are "
                              f"{', '.join(STREAMS)}")

    @property
    def num_coords(self) -> int | None:
        """Number of leading coordinate channels (``None``: all channels)."""
        if self.channels is None:
            return None
        coords = [c for c in self.channels if c.lower() not in SCORE_CHANNELS]
        return len(coords)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (what a checkpoint stores)."""
        d = asdict(self)
        for key in ("channels", "image_size"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`~stgcn.errors.ConfigError`."""
        return _from_dict(cls, data)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-only augmentation (all off by default).

    Args:
        random_shift: The original's random shift: place the non-zero span at a random offset (useful with
            ``resize="pad"``).
        random_move: The original's random move (:func:`random_move`) with the candidates below.
        move_angles: Rotation candidates in degrees.
        move_scales: Scale candidates.
        move_translations: Translation candidates.
        move_steps: Candidates for the number of interpolation segments.
        rotate_3d: Maximum angle in degrees of a random 3-D rotation about each axis (0: off).
    """

    random_shift: bool = False
    random_move: bool = False
    move_angles: tuple[float, ...] = (-10.0, -5.0, 0.0, 5.0, 10.0)
    move_scales: tuple[float, ...] = (0.9, 1.0, 1.1)
    move_translations: tuple[float, ...] = (-0.2, -0.1, 0.0, 0.1, 0.2)
    move_steps: tuple[int, ...] = (1,)
    rotate_3d: float = 0.0

    def __post_init__(self) -> None:
        for key in ("move_angles", "move_scales", "move_translations", "move_steps"):
            value = _tuple(getattr(self, key), f"augment {key}")
            if not value or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                raise ConfigError(f"augment {key} must be a non-empty list of numbers, got {value!r}")
            object.__setattr__(self, key, value)
        if not all(isinstance(s, int) and s >= 1 for s in self.move_steps):
            raise ConfigError(f"augment move_steps must be positive integers, got {self.move_steps!r}")
        if not isinstance(self.rotate_3d, int | float) or not 0 <= self.rotate_3d <= 180:
            raise ConfigError(f"augment rotate_3d must be an angle in [0, 180] degrees, got {self.rotate_3d!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        d = asdict(self)
        for key in ("move_angles", "move_scales", "move_translations", "move_steps"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`~stgcn.errors.ConfigError`."""
        return _from_dict(cls, data)


class Transform:
    """A stored clip -> model input. Build with :func:`build_transform`; picklable (DataLoader workers).

    ``transform(clip, rng)`` returns one input ``(C, T, V, M)`` in training or when
    ``preprocess.num_clips == 1``, else ``(K, C, T, V, M)``; :meth:`clips` always returns
    ``(K, C, T, V, M)`` (K = 1 in training).
    """

    def __init__(self, preprocess: PreprocessConfig, augment: AugmentConfig | None, *, train: bool,
                 layout: Layout) -> None:
        self.preprocess = preprocess
        self.augment = augment if train else None
        self.train = train
        self.layout = layout
        p = preprocess
        self.num_coords = p.num_coords
        coords = p.num_coords if p.num_coords is not None else None
        if p.channels is not None and p.channels[:coords] != tuple(
                c for c in p.channels if c.lower() not in SCORE_CHANNELS):
            raise ConfigError(f"preprocess channels {list(p.channels)}: coordinate channels must come first")
        self.score_channel = None
        if p.channels is not None:
            scores = [i for i, c in enumerate(p.channels) if c.lower() in SCORE_CHANNELS]
            self.score_channel = scores[0] if scores else None
        if p.center_joint is None:
            self.center_joint = layout.center
        elif isinstance(p.center_joint, str):
            if p.center_joint not in layout.joints:
                raise ConfigError(f"center joint {p.center_joint!r} is not a joint of layout {layout.name!r}; "
                                  f"valid joints are {', '.join(layout.joints)}")
            self.center_joint = layout.joints.index(p.center_joint)
        else:
            if not 0 <= p.center_joint < layout.num_joints:
                raise ConfigError(f"center joint {p.center_joint} is outside [0, {layout.num_joints}) for "
                                  f"layout {layout.name!r}")
            self.center_joint = int(p.center_joint)
        self.view_joints = view_joints(layout) if p.view_normalize else None
        three_d = p.view_normalize or (self.augment is not None and self.augment.rotate_3d > 0)
        if three_d and coords is not None and coords < 3:
            raise ConfigError(f"view normalisation and 3-D rotation need x, y, z channels; channels are "
                              f"{list(p.channels or ())}")
        if p.image_size is not None and coords is not None and coords < 2:
            raise ConfigError("2-D normalisation by image size needs x and y channels")
        self.bone_pairs = layout.bone_pairs()

    def __repr__(self) -> str:
        return f"Transform(train={self.train}, preprocess={self.preprocess}, augment={self.augment})"

    def _check(self, clip: np.ndarray) -> None:
        v = self.layout.num_joints
        if clip.ndim != 4 or clip.shape[2] != v:
            raise DataError(f"clip has shape {tuple(clip.shape)}; expected (T, M, {v}, C) for layout "
                            f"{self.layout.name!r}")
        if self.preprocess.channels is not None and clip.shape[3] != len(self.preprocess.channels):
            raise DataError(f"clip has {clip.shape[3]} channels; expected {len(self.preprocess.channels)} "
                            f"({', '.join(self.preprocess.channels)})")
        if clip.shape[0] == 0 or clip.shape[1] == 0:
            raise DataError(f"empty clip (shape {tuple(clip.shape)}); expected at least one frame and person")

    def _prepare(self, clip: np.ndarray) -> np.ndarray:
        """The clip-level deterministic steps (before temporal resizing)."""
        p = self.preprocess
        x = clip
        if p.max_persons is not None:
            x = select_persons(x, p.max_persons)
        if p.image_size is not None:
            x = normalize_2d(x, p.image_size, self.score_channel)
        nc = self.num_coords if self.num_coords is not None else x.shape[-1]
        if p.center == "first" and self.view_joints is not None:
            return self._center_first_and_view(x)
        if p.center != "none":
            x = center_on_joint(x, self.center_joint, p.center, num_coords=nc)
        if self.view_joints is not None:
            x = view_normalize(x, self.view_joints)
        return x

    def _center_first_and_view(self, x: np.ndarray) -> np.ndarray:
        """``view_normalize(center_on_joint(x, j, "first"))`` as one affine map (same result, one pass)."""
        present = np.any(x != 0, axis=(2, 3))
        frames = np.flatnonzero(present[:, 0])
        if frames.size == 0:
            return x.astype(np.float32, copy=True)
        first = int(frames[0])
        origin = x[first, 0, self.center_joint, :3].astype(np.float32)
        rot = body_rotation(x, self.view_joints, first) if self.view_joints is not None else None
        if x.shape[-1] == 3:
            out = (x - origin) if rot is None else (x - origin) @ rot.T
            out = out.astype(np.float32, copy=False)
        else:
            out = x.astype(np.float32, copy=True)
            out[..., :3] -= origin
            if rot is not None:
                out[..., :3] = out[..., :3] @ rot.T
        if not present.all():
            out[~present] = 0
        return out

    def _finish(self, xs: list[np.ndarray], rngs: Sequence[np.random.Generator | None]) -> np.ndarray:
        """Augmentation (training), feature stream and the (C, T, V, M) layout, for equally long clips.

        Each clip draws its random parameters from its own generator, in a fixed order (shift, move,
        rotation), so a clip gets the same result alone or in a batch.

        Shape:
            xs: B x (T, M, V, C) -> (B, C, T, V, M)
        """
        a = self.augment
        curves, rotations = [], []
        if a is not None:
            for i, rng in enumerate(rngs):
                if rng is None:
                    continue
                if a.random_shift:
                    xs[i] = random_shift(xs[i], rng)
                if a.random_move:
                    curves.append(move_curves(rng, xs[i].shape[0], angles=a.move_angles, scales=a.move_scales,
                                              translations=a.move_translations, move_steps=a.move_steps))
                if a.rotate_3d > 0:
                    rotations.append(random_rotation(rng, a.rotate_3d))
        x = np.stack(xs)
        if curves:
            x = apply_moves(x, np.stack(curves))
        if rotations:
            x = apply_rotations(x, np.stack(rotations))
        if self.preprocess.stream != "joint":
            x = feature_stream(x, self.preprocess.stream, self.bone_pairs, self.num_coords, time_axis=1)
        return np.ascontiguousarray(x.transpose(0, 4, 1, 3, 2), dtype=np.float32)

    def _resized(self, clip: np.ndarray, rng: np.random.Generator | None, clip_index: int = 0) -> np.ndarray:
        clip = np.asarray(clip)
        self._check(clip)
        p = self.preprocess
        x = self._prepare(clip)
        idx = temporal_indices(x.shape[0], p.length, p.resize, rng=rng, clip_index=clip_index,
                               num_clips=p.num_clips)
        return take_frames(x, idx)

    def clips(self, clip: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """All K inputs of a clip (K = ``num_clips`` at test time, 1 in training).

        Shape:
            clip: (T, M, V, C) -> (K, C, T', V, M')
        """
        if self.train:
            if rng is None:
                raise ConfigError("a training transform needs an np.random.Generator")
            return self._finish([self._resized(clip, rng)], [rng])
        k = self.preprocess.num_clips
        return self._finish([self._resized(clip, None, i) for i in range(k)], [None] * k)

    def batch(self, clips: Sequence[np.ndarray], rngs: Sequence[np.random.Generator | None]) -> np.ndarray:
        """Transform several clips at once (vectorised augmentation); ``batch(cs, rs)[i]`` equals
        ``transform(cs[i], rs[i])``. Needs a fixed ``length`` when there is more than one clip.

        Shape:
            clips: B x (T, M, V, C) -> (B, C, T', V, M') or (B, K, C, T', V, M') for K-clip testing
        """
        if len(clips) != len(rngs):
            raise ConfigError(f"{len(clips)} clips but {len(rngs)} generators")
        if not self.train:
            return np.stack([self(c) for c in clips])
        if len(clips) > 1 and self.preprocess.length is None:
            raise ConfigError("batched transforms need a fixed preprocess length")
        if any(r is None for r in rngs):
            raise ConfigError("a training transform needs an np.random.Generator")
        return self._finish([self._resized(c, r) for c, r in zip(clips, rngs, strict=True)], rngs)

    def __call__(self, clip: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Shape: (T, M, V, C) -> (C, T', V, M') or, for K-clip testing, (K, C, T', V, M')."""
        out = self.clips(clip, rng)
        return out[0] if out.shape[0] == 1 and (self.train or self.preprocess.num_clips == 1) else out


def build_transform(
    preprocess: PreprocessConfig,
    augment: AugmentConfig | None = None,
    *,
    train: bool,
    layout: str | Layout | dict[str, Any],
) -> Transform:
    """The transform a dataset applies to each stored clip.

    Args:
        preprocess: Deterministic preprocessing (saved with the checkpoint).
        augment: Training augmentation; ignored when ``train`` is False.
        train: Random temporal sampling/cropping and augmentation (needs an rng per call) vs deterministic.
        layout: The clips' layout (for the centre joint, bone pairs and view normalisation).

    Returns:
        A picklable callable ``transform(clip, rng) -> np.ndarray``.

    Shape:
        clip: (T, M, V, C) -> (C, T, V, M), or (K, C, T, V, M) for K-clip testing.
    """
    return Transform(preprocess, augment, train=train, layout=get_layout(layout))
