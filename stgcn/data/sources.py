"""One entry point for single clips of any supported format (``stgcn predict`` reads through it).

:func:`read_clip_file` recognises the file by its name and content and returns the coordinates, the
detection scores (or None) and metadata with the clip's layout; :func:`to_channels` then assembles the
channels a model expects (e.g. ``x, y, score``).

Supported: our keypoints JSON/NPZ (:mod:`stgcn.data.readers.keypoints`), an OpenPose per-frame JSON folder or a
single OpenPose frame (:mod:`stgcn.data.readers.openpose`), a NW-UCLA JSON, a Kinetics-skeleton JSON, an MSR
Action3D ``*_skeleton3D.txt``, a UTKinect ``joints_*.txt`` sequence and an NTU ``.skeleton`` file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.readers.base import check_keypoints, read_json
from stgcn.data.readers.keypoints import read_keypoints_file
from stgcn.data.readers.kinetics_json import parse_kinetics_clip
from stgcn.data.readers.msr_action3d import read_msr_action3d_file
from stgcn.data.readers.ntu import read_ntu_file
from stgcn.data.readers.nw_ucla import read_nw_ucla_file
from stgcn.data.readers.openpose import is_openpose_folder, read_openpose_folder, read_openpose_frames
from stgcn.data.readers.utkinect import read_utkinect_sequence
from stgcn.errors import DataError
from stgcn.graph.identity import match_joints, remap_joints
from stgcn.graph.layouts import Layout, get_layout

__all__ = ["read_clip_file", "to_channels", "CLIP_FORMATS"]

CLIP_FORMATS = ("keypoints-json", "keypoints-npz", "openpose-folder", "openpose-frame", "nw-ucla", "kinetics-json",
                "msr-action3d", "utkinect", "ntu")


def read_clip_file(
    path: str | Path, layout: str | Path | Layout | dict[str, Any] | None = None, *, remap: str | None = None,
    target: str = "the layout it is read as",
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Read one clip of any supported format.

    Every clip goes through the one keypoint rule of the readers
    (:func:`~stgcn.data.readers.base.check_keypoints`) with the layout it is read as.

    Args:
        path: A clip file or an OpenPose JSON folder.
        layout: The layout to read it as; required when the file does not determine one, checked otherwise
            (:func:`stgcn.graph.identity.match_joints`: the same joints in the same order).
        remap: ``"by-name"``: reorder a clip whose layout has ``layout``'s joints in another order.
        target: What ``layout`` is, for the error message (e.g. ``"the model"``).

    Returns:
        ``(keypoints, scores, meta)``. ``meta`` holds at least ``format`` (one of :data:`CLIP_FORMATS`),
        ``layout`` (a :class:`~stgcn.graph.layouts.Layout`), ``channels`` (the coordinate names) and ``name``.

    Shape:
        keypoints: (T, M, V, C) float32 coordinates (C = 2 or 3); scores: (T, M, V) float32 or None.

    Raises:
        DataError: missing, unrecognised or malformed file (one line naming it).
    """
    path = Path(path)
    x, scores, meta = _read_any(path, layout, remap, target)
    lay = get_layout(layout) if layout is not None else meta["layout"]
    if meta.get("layout") is not None and meta["layout"] is not lay:  # a layout the format determines
        index = match_joints(meta["layout"], lay, data_what=str(path), target_what=target, remap=remap)
        x, scores = remap_joints(x, index), remap_joints(scores, index, axis=-1)
    check_keypoints(x, str(path), lay, channels=meta["channels"], scores=scores, coordinates=True)
    return x, scores, {**meta, "layout": lay}


def _read_any(path: Path, layout: Any, remap: str | None = None, target: str = ""
              ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """The clip at ``path`` by its name and content; ``meta["layout"]`` is the layout the file determines."""
    if path.is_dir():
        if not is_openpose_folder(path):
            raise DataError(f"{path}: a folder must hold OpenPose *_keypoints.json frame files")
        x, s, meta = read_openpose_folder(path, layout)
        return x, s, {**meta, "format": "openpose-folder"}
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        x, s, meta = read_keypoints_file(path, layout, remap=remap, target=target)
        return x, s, {**meta, "format": "keypoints-npz"}
    if suffix == ".skeleton":
        x, meta = read_ntu_file(path)
        return x, None, {**meta, "format": "ntu", "layout": get_layout("ntu-rgb+d"), "channels": ["x", "y", "z"]}
    if suffix == ".txt":
        if path.name.endswith("_skeleton3D.txt"):
            x, meta = read_msr_action3d_file(path)
            return x, None, {**meta, "format": "msr-action3d", "layout": get_layout("kinect-v1-msr"),
                             "channels": ["x", "y", "z"]}
        if path.name.startswith("joints_"):
            ids, x = read_utkinect_sequence(path)
            return x, None, {"name": path.stem, "frame_ids": ids, "format": "utkinect",
                             "layout": get_layout("kinect-v1"), "channels": ["x", "y", "z"]}
        raise DataError(f"{path}: unrecognised .txt clip; expected an MSR Action3D *_skeleton3D.txt or a "
                        "UTKinect joints_*.txt file")
    if suffix != ".json":
        raise DataError(f"{path}: unsupported clip file; expected .json, .npz, .skeleton, .txt or an OpenPose "
                        "folder")
    obj = read_json(path)
    if isinstance(obj, dict) and "keypoints" in obj:
        x, s, meta = read_keypoints_file(path, layout, remap=remap, target=target)
        return x, s, {**meta, "format": "keypoints-json"}
    if isinstance(obj, dict) and "skeletons" in obj:
        x, meta = read_nw_ucla_file(path)
        return x, None, {**meta, "format": "nw-ucla", "layout": get_layout("kinect-v1"), "channels": ["x", "y", "z"]}
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        x = parse_kinetics_clip(obj, str(path))
        return x[..., :2].copy(), x[..., 2].copy(), {
            "name": path.stem, "format": "kinetics-json", "layout": get_layout("openpose-18"), "channels": ["x", "y"],
            "label": obj.get("label"), "label_index": obj.get("label_index")}
    if isinstance(obj, dict) and isinstance(obj.get("people"), list):
        x, s, meta = read_openpose_frames([path], path.stem, layout, where=str(path))
        return x, s, {**meta, "format": "openpose-frame"}
    raise DataError(f"{path}: unrecognised JSON clip; expected keys 'keypoints' (stgcn keypoints), 'skeletons' "
                    "(NW-UCLA), 'data' (Kinetics-skeleton) or 'people' (OpenPose)")


def to_channels(keypoints: np.ndarray, scores: np.ndarray | None, channels: Sequence[str]) -> np.ndarray:
    """Assemble the model's channels from coordinates and scores.

    ``channels`` names the model's input channels (e.g. ``["x", "y", "score"]``): ``x``/``y``/``z`` take
    the coordinates, ``score``/``confidence`` the scores (ones when the clip has none).

    Shape:
        keypoints: (T, M, V, C), scores: (T, M, V) -> (T, M, V, len(channels))

    Raises:
        DataError: a coordinate the clip lacks (e.g. ``z`` from a 2-D clip) or an unknown channel name.
    """
    from stgcn.data.channels import select_channels

    return select_channels(keypoints, scores, channels)
