"""Per-frame spatial steps on ``(T, M, V, C)`` clips: persons kept, 2-D normalisation, centring, view
normalisation and the feature streams (bones, motion). Pure numpy; inputs are never mutated."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stgcn.data.transforms.config import CENTER_MODES, STREAMS
from stgcn.errors import ConfigError
from stgcn.graph.layouts import Layout
from stgcn.graph.roles import resolve_role

__all__ = ["select_persons", "normalize_2d", "center_on_joint", "view_joints", "body_rotation", "view_normalize",
           "feature_stream"]


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


def view_joints(layout: Layout) -> tuple[int, int, int, int]:
    """Joints that define the body frame for :func:`view_normalize`: (bottom, top, right, left).

    Bottom is the ``pelvis``, top the ``spine`` (else the ``neck``), right/left the ``right_shoulder`` /
    ``left_shoulder`` (else the hips): each the layout's explicit role, else the joint-name conventions
    (:func:`stgcn.graph.roles.resolve_role`).

    Raises:
        ConfigError: the layout lacks a pelvis/spine joint or the two shoulders (or hips).
    """
    def role(*names: str) -> int | None:
        return next((j for j in (resolve_role(layout, n) for n in names) if j is not None), None)

    bottom, top = role("pelvis"), role("spine", "neck")
    right, left = role("right_shoulder", "right_hip"), role("left_shoulder", "left_hip")
    if bottom is None or top is None or right is None or left is None:
        raise ConfigError(
            f"view normalisation needs the roles pelvis, spine (or neck) and left/right shoulder (or hip): give "
            f"them as 'roles' in the layout, or name the joints hip_center/pelvis, spine/neck and "
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
