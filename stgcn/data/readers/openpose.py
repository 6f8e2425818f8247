"""OpenPose per-frame JSON (``--write_json``): a folder of ``*_keypoints.json`` files is one clip.

Frames are in file-name order. ``pose_keypoints_2d`` holds ``x, y, confidence`` per joint: 18 joints (COCO)
give layout ``openpose-18``; 25 joints (BODY_25) are mapped to ``openpose-18`` (MidHip and the six foot
points dropped) unless a 25-joint layout is given. In each frame the persons are ranked by summed
confidence and the best ``max_persons`` kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.readers.base import MAX_FRAMES, check_keypoints, numeric_array, read_json
from stgcn.errors import DataError
from stgcn.graph.layouts import Layout, get_layout
from stgcn.utils.checks import check_int

__all__ = ["BODY25_TO_OPENPOSE18", "is_openpose_folder", "read_openpose_folder", "read_openpose_frames"]

# BODY_25 index of each openpose-18 joint (nose, neck, shoulders/elbows/wrists, hips/knees/ankles, eyes, ears)
BODY25_TO_OPENPOSE18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
_OPENPOSE_FRAME = "*_keypoints.json"


def is_openpose_folder(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding OpenPose ``*_keypoints.json`` frame files."""
    path = Path(path)
    return path.is_dir() and any(path.glob(_OPENPOSE_FRAME))


def read_openpose_folder(
    path: str | Path,
    layout: str | Path | Layout | dict[str, Any] | None = None,
    *,
    max_persons: int = 2,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read a folder of OpenPose per-frame JSON files as one clip.

    Returns:
        ``(keypoints, scores, meta)``; meta has ``layout``, ``channels`` (x, y) and ``name``.

    Shape:
        keypoints: (T, max_persons, V, 2) pixels; scores: (T, max_persons, V)
    """
    path = Path(path)
    files = sorted(path.glob(_OPENPOSE_FRAME))
    if not files:
        raise DataError(f"{path}: no OpenPose *_keypoints.json frame files")
    return read_openpose_frames(files, path.name, layout, max_persons=max_persons, where=str(path))


def read_openpose_frames(
    files: Sequence[str | Path],
    name: str,
    layout: str | Path | Layout | dict[str, Any] | None = None,
    *,
    max_persons: int = 2,
    where: str = "OpenPose frames",
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """OpenPose per-frame JSON files, in the given order, as one clip (see :func:`read_openpose_folder`)."""
    path = where
    if len(files) > MAX_FRAMES:
        raise DataError(f"{path}: more than {MAX_FRAMES} frames")
    max_persons = check_int(max_persons, "max_persons", minimum=1, error=DataError)
    frames: list[np.ndarray] = []
    v_in = None
    for f in files:
        obj = read_json(f)
        if not isinstance(obj, dict) or not isinstance(obj.get("people"), list):
            raise DataError(f"{f}: expected an OpenPose frame object with a 'people' list")
        people = []
        for p, person in enumerate(obj["people"]):
            if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
                raise DataError(f"{f}: person {p} has no 'pose_keypoints_2d'")
            values = numeric_array(person["pose_keypoints_2d"], f"{f}: person {p}", "pose_keypoints_2d")
            if values.ndim != 1 or values.size % 3 or values.size == 0:
                raise DataError(f"{f}: person {p}: pose_keypoints_2d has {values.size} values; expected 3 per joint")
            if v_in is None:
                v_in = values.size // 3
            if values.size != 3 * v_in:
                raise DataError(f"{f}: person {p} has {values.size // 3} joints; earlier persons have {v_in}")
            people.append(values.reshape(v_in, 3))
        frames.append(np.stack(people) if people else np.zeros((0, v_in or 0, 3), np.float32))
    if v_in is None:
        raise DataError(f"{path}: no person in any frame")
    if layout is not None:
        lay = get_layout(layout)
    elif v_in in (18, 25):
        lay = get_layout("openpose-18")
    else:
        raise DataError(f"{path}: {v_in} joints per person; give the layout (--layout)")
    select = BODY25_TO_OPENPOSE18 if v_in == 25 and lay.num_joints == 18 else None
    v = lay.num_joints if select is not None else v_in
    if v != lay.num_joints:
        raise DataError(f"{path}: {v_in} joints per person; layout {lay.name!r} has {lay.num_joints}")
    out = np.zeros((len(frames), max_persons, v, 3), dtype=np.float32)
    for t, people in enumerate(frames):
        if len(people) == 0:
            continue
        if people.shape[1] != v_in:
            people = np.zeros((0, v_in, 3), np.float32)
        if select is not None:
            people = people[:, list(select)]
        order = np.argsort(-people[:, :, 2].sum(axis=1), kind="stable")[:max_persons]
        out[t, : len(order)] = people[order]
    check_keypoints(out[..., :2], path, lay, scores=out[..., 2])
    meta = {"name": name, "layout": lay, "channels": ["x", "y"], "label": None, "split": None,
            "image_size": None, "body_25": v_in == 25}
    return out[..., :2].copy(), out[..., 2].copy(), meta
