"""Custom data: our keypoints clip files (JSON or NPZ), read and written.

This is how MediaPipe, YOLO-pose, RTMPose or OpenPose users bring their own clips.

**Keypoints JSON** (one clip per file)::

    {"keypoints": [[[[x, y], ...V joints], ...M persons], ...T frames],   # (T, M, V, C), C = 2 or 3
     "scores": [[[s, ...V], ...M], ...T],        # optional (T, M, V) detection confidences
     "layout": "coco-17",                        # a built-in name, a layout file (relative to this file)
                                                 #   or a layout object (see stgcn.graph.layouts)
     "label": "waving",                          # optional: class name or class index
     "split": "train",                           # optional
     "channels": ["x", "y"],                     # optional; default x, y (C = 2) or x, y, z (C = 3)
     "image_size": [1920, 1080],                 # optional (width, height), informative
     "layout_fingerprint": "635ae410a6d4ee65"}   # optional: written by save_keypoints, checked when read

**Keypoints NPZ**: the same keys as arrays (``keypoints``, ``scores``; ``layout``, ``label``, ``split`` as 0-d
string or integer arrays; ``channels`` a 1-d string array). Saved with ``np.savez``; read with
``allow_pickle=False``.

A clip read "as" another layout (``layout=`` of :func:`read_keypoints_file`: the model's, the store's) must declare
that layout's joints in the same order, or none (:func:`stgcn.graph.identity.match_joints`); with
``remap="by-name"`` the same joints in another order are reordered. A declared layout that does not resolve (an
unknown name, a missing file) is an error even then.

The OpenPose per-frame JSON folders live in :mod:`stgcn.data.readers.openpose` and ``stgcn prepare keypoints``
(folders of clips) in :mod:`stgcn.data.readers.keypoints_folder`; this module re-exports the OpenPose readers.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.readers.base import check_keypoints, numeric_array, read_json
from stgcn.data.readers.openpose import (
    BODY25_TO_OPENPOSE18,
    is_openpose_folder,
    read_openpose_folder,
    read_openpose_frames,
)
from stgcn.errors import ConfigError, DataError
from stgcn.graph.identity import check_recorded_fingerprint, match_joints, remap_joints
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout, get_layout
from stgcn.utils.atomic import atomic_open, atomic_write_text
from stgcn.utils.checks import is_int

__all__ = [
    "read_keypoints_file", "save_keypoints", "default_channels",
    # re-exported from stgcn.data.readers.openpose
    "BODY25_TO_OPENPOSE18", "is_openpose_folder", "read_openpose_folder", "read_openpose_frames",
]

_MAX_NPZ_BYTES = 2 * 1024**3


def _resolve_layout(value: Any, base: Path, where: str) -> Layout:
    try:
        if isinstance(value, dict):
            return Layout.from_dict(value, where=f"{where}: layout")
        if isinstance(value, str):
            if value.lower().endswith((".json", ".yaml", ".yml")) and not Path(value).is_absolute():
                return get_layout(str(base / value))
            return get_layout(value)
    except ConfigError as e:
        raise DataError(f"{where}: {e}") from None
    raise DataError(f"{where}: 'layout' must be a layout name, a layout file or a layout object")


def default_channels(c: int) -> list[str]:
    """The coordinate names of ``c`` coordinates: x, y (2) or x, y, z (3)."""
    return ["x", "y"] if c == 2 else ["x", "y", "z"]


def _scalar(value: Any, where: str, key: str) -> Any:
    """A 0-d npz entry (or JSON value) as a Python str/int, or None."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise DataError(f"{where}: '{key}' must be a single value, got shape {value.shape}")
        value = value.item()
    if not isinstance(value, str) and not is_int(value):
        raise DataError(f"{where}: '{key}' must be a string or an integer, got {type(value).__name__}")
    return value


def _load_npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as z:
            total = 0
            for info in z.zip.infolist():
                total += info.file_size
            if total > _MAX_NPZ_BYTES:
                raise DataError(f"{path}: arrays of {total} bytes are more than the {_MAX_NPZ_BYTES}-byte limit")
            return {k: z[k] for k in z.files}
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, zipfile.LargeZipFile) as e:
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable .npz of numeric arrays ({reason})") from None
    except Exception as e:  # zlib/format errors of a corrupt archive
        raise DataError(f"{path}: corrupt .npz ({type(e).__name__})") from None


def read_keypoints_file(
    path: str | Path, layout: str | Path | Layout | dict[str, Any] | None = None, *, remap: str | None = None,
    target: str = "the layout it is read as",
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Read one keypoints JSON or NPZ clip.

    Args:
        path: The ``.json`` or ``.npz`` file.
        layout: The layout to read the clip as: the layout of a file that names none; a file that names one
            must name one of the same joints in the same order (module docstring).
        remap: ``"by-name"``: reorder a file whose layout has ``layout``'s joints in another order.
        target: What ``layout`` is, for the error message (e.g. ``"the model"``).

    Returns:
        ``(keypoints, scores, meta)``; meta has ``layout`` (Layout: the one the returned data is in),
        ``declared_layout`` (the file's own, or None), ``channels``, ``label``, ``split``, ``image_size`` and
        ``name``.

    Raises:
        DataError: a malformed file, a declared layout that does not resolve or whose recorded fingerprint
            differs, or one that does not match ``layout`` (one line naming both layouts).

    Shape:
        keypoints: (T, M, V, C) float32; scores: (T, M, V) float32 or None
    """
    path = Path(path)
    where = str(path)
    if path.suffix.lower() == ".npz":
        data: dict[str, Any] = _load_npz(path)
        layout_value = _scalar(data.get("layout"), where, "layout")
        if isinstance(layout_value, str) and layout_value.lstrip().startswith("{"):
            try:
                layout_value = json.loads(layout_value)
            except ValueError:
                raise DataError(f"{where}: 'layout' is not a valid layout JSON object") from None
        channels = data.get("channels")
        if channels is not None:
            if not isinstance(channels, np.ndarray) or channels.dtype.kind != "U" or channels.ndim != 1:
                raise DataError(f"{where}: 'channels' must be a 1-d array of names")
            channels = [str(c) for c in channels]
    elif path.suffix.lower() == ".json":
        data = read_json(path)
        if not isinstance(data, dict):
            raise DataError(f"{where}: expected a JSON object with 'keypoints' (T, M, V, C) and 'layout'")
        layout_value = data.get("layout")
        channels = data.get("channels")
        if channels is not None and (not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)):
            raise DataError(f"{where}: 'channels' must be a list of names")
    else:
        raise DataError(f"{where}: a keypoints clip must be a .json or .npz file")
    if "keypoints" not in data:
        raise DataError(f"{where}: no 'keypoints' entry; expected keypoints (T, M, V, C)")
    x = numeric_array(data["keypoints"], where, "keypoints")
    scores = None if data.get("scores") is None else numeric_array(data["scores"], where, "scores")
    declared = None if layout_value is None else _resolve_layout(layout_value, path.parent, where)
    if declared is not None:
        check_recorded_fingerprint(declared, _scalar(data.get("layout_fingerprint"), where, "layout_fingerprint"),
                                   where)
    if layout is None and declared is None:
        raise DataError(f"{where}: no 'layout'; give one in the file or pass the layout (--layout)")
    lay = declared if declared is not None else get_layout(layout)  # type: ignore[arg-type]
    if channels is None:
        channels = default_channels(x.shape[-1]) if x.ndim == 4 else []
    check_keypoints(x, where, lay, channels=list(channels), scores=scores, coordinates=True)
    if declared is not None and layout is not None:
        wanted = get_layout(layout)
        index = match_joints(declared, wanted, data_what=where, target_what=target, remap=remap)
        x, scores, lay = remap_joints(x, index), remap_joints(scores, index, axis=-1), wanted
    image_size = data.get("image_size")
    if image_size is not None:
        size = numeric_array(image_size, where, "image_size")
        if size.shape != (2,) or not (size > 0).all():
            raise DataError(f"{where}: 'image_size' must be [width, height] > 0")
        image_size = [float(size[0]), float(size[1])]
    split = _scalar(data.get("split"), where, "split")
    if split is not None and not isinstance(split, str):
        raise DataError(f"{where}: 'split' must be a split name (a string), got {split!r}")
    fps = data.get("fps")
    if fps is not None:
        fps = numeric_array(fps, where, "fps")
        if fps.size != 1 or not np.isfinite(fps).all() or float(fps.reshape(())) <= 0:
            raise DataError(f"{where}: 'fps' must be a finite frame rate > 0")
    meta = {"name": path.stem, "layout": lay, "declared_layout": declared, "channels": list(channels),
            "label": _scalar(data.get("label"), where, "label"), "split": split, "image_size": image_size}
    return x, scores, meta


def save_keypoints(
    path: str | Path,
    keypoints: np.ndarray,
    *,
    layout: str | Layout,
    scores: np.ndarray | None = None,
    label: str | int | None = None,
    split: str | None = None,
    channels: Sequence[str] | None = None,
    image_size: tuple[float, float] | None = None,
) -> None:
    """Write one clip in the keypoints JSON or NPZ format (by suffix), atomically.

    Shape:
        keypoints: (T, M, V, C); scores: (T, M, V)
    """
    path = Path(path)
    lay = get_layout(layout)
    x = np.asarray(keypoints, dtype=np.float32)
    chans = list(channels) if channels is not None else default_channels(x.shape[-1]) if x.ndim == 4 else []
    check_keypoints(x, str(path), lay, channels=chans, coordinates=True,
                    scores=None if scores is None else np.asarray(scores, dtype=np.float32))
    layout_entry: Any = lay.name if BUILTIN_LAYOUTS.get(lay.name) == lay else lay.to_dict()
    if path.suffix.lower() == ".json":
        obj: dict[str, Any] = {"keypoints": x.tolist(), "layout": layout_entry, "layout_fingerprint": lay.fingerprint,
                               "channels": chans}
        if scores is not None:
            obj["scores"] = np.asarray(scores, dtype=np.float32).tolist()
        for key, value in (("label", label), ("split", split), ("image_size", image_size)):
            if value is not None:
                obj[key] = list(value) if key == "image_size" else value
        atomic_write_text(path, json.dumps(obj))
    elif path.suffix.lower() == ".npz":
        arrays: dict[str, Any] = {"keypoints": x, "channels": np.array(chans),
                                  "layout_fingerprint": np.array(lay.fingerprint),
                                  "layout": np.array(layout_entry if isinstance(layout_entry, str)
                                                     else json.dumps(layout_entry))}
        if scores is not None:
            arrays["scores"] = np.asarray(scores, dtype=np.float32)
        for key, value in (("label", label), ("split", split), ("image_size", image_size)):
            if value is not None:
                arrays[key] = np.array(value)
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
    else:
        raise DataError(f"{path}: a keypoints clip must end in .json or .npz")
