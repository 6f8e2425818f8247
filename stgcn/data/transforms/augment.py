"""Training augmentation on ``(T, M, V, C)`` clips: the original ST-GCN random move, random 3-D rotations and
random per-axis scaling, each as "draw the parameters" + "apply them to a batch" so a batch is augmented in one
vectorised pass."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["move_curves", "apply_moves", "random_move", "rotation_matrix", "random_rotation", "apply_rotations",
           "random_rotate_3d", "random_scales", "apply_scales"]


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


def random_scales(rng: np.random.Generator, max_scale: float, num_axes: int) -> np.ndarray:
    """Per-axis scale factors uniform in ``[1 - max_scale, 1 + max_scale]`` (PYSKL's ``RandomScale``).

    Shape:
        returns (num_axes,)
    """
    return 1.0 + rng.uniform(-max_scale, max_scale, size=num_axes)


def apply_scales(x: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Multiply the first ``A`` coordinate channels of each clip by its factors (zero points stay zero).

    Shape:
        x: (B, T, M, V, C >= A), scales: (B, A) -> (B, T, M, V, C)
    """
    a = scales.shape[1]
    out = x.astype(np.float32, copy=True)
    out[..., :a] *= scales.astype(np.float32)[:, None, None, None, :]
    return out
