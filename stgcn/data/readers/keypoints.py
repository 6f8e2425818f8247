"""Custom data: our keypoints clip files (JSON or NPZ) and OpenPose per-frame JSON folders.

This is how MediaPipe, YOLO-pose, RTMPose or OpenPose users bring their own clips.

**Keypoints JSON** (one clip per file)::

    {"keypoints": [[[[x, y], ...V joints], ...M persons], ...T frames],   # (T, M, V, C), C = 2 or 3
     "scores": [[[s, ...V], ...M], ...T],        # optional (T, M, V) detection confidences
     "layout": "coco-17",                        # a built-in name, a layout file (relative to this file)
                                                 #   or a layout object (see stgcn.graph.layouts)
     "label": "waving",                          # optional: class name or class index
     "split": "train",                           # optional
     "channels": ["x", "y"],                     # optional; default x, y (C = 2) or x, y, z (C = 3)
     "image_size": [1920, 1080]}                 # optional (width, height), informative

**Keypoints NPZ**: the same keys as arrays (``keypoints``, ``scores``; ``layout``, ``label``, ``split`` as 0-d
string or integer arrays; ``channels`` a 1-d string array). Saved with ``np.savez``; read with
``allow_pickle=False``.

**OpenPose folder**: a directory of OpenPose's per-frame ``*_keypoints.json`` files (``--write_json``), frames
in file-name order. ``pose_keypoints_2d`` holds ``x, y, confidence`` per joint: 18 joints (COCO) give layout
``openpose-18``; 25 joints (BODY_25) are mapped to ``openpose-18`` (MidHip and the six foot points dropped)
unless a 25-joint layout is given. In each frame the persons are ranked by summed confidence and the best
``max_persons`` kept.

For ``stgcn prepare keypoints SRC OUT``: every ``*.json``/``*.npz`` clip file and every OpenPose folder under
SRC is one clip, named by its file stem / folder name. Its label comes from ``--labels`` (a CSV with a
header ``name,label[,split]``) or else from the file; its split from the CSV, else the file, else the first
sub-folder of SRC it lies in (``SRC/train/...``), else ``all``. Class names come from ``--class-names``, else
the sorted string labels (or ``class_<i>`` for integer labels). The store's channels are the coordinates
plus ``score`` when the clips have scores; all clips must agree in layout and channels.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.readers.base import (
    MAX_FRAMES,
    MAX_PERSONS,
    ClipRecord,
    Skipped,
    SourcePlan,
    chunked,
    numeric_array,
    read_json,
    read_text,
)
from stgcn.data.readers.stgcn_npy import read_class_names
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout, get_layout
from stgcn.utils.atomic import atomic_open, atomic_write_text

__all__ = [
    "read_keypoints_file", "read_openpose_folder", "read_openpose_frames", "is_openpose_folder", "read_labels_csv",
    "BODY25_TO_OPENPOSE18", "plan_keypoints", "save_keypoints",
]

# BODY_25 index of each openpose-18 joint (nose, neck, shoulders/elbows/wrists, hips/knees/ankles, eyes, ears)
BODY25_TO_OPENPOSE18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
_OPENPOSE_FRAME = "*_keypoints.json"
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


def _default_channels(c: int) -> list[str]:
    return ["x", "y"] if c == 2 else ["x", "y", "z"]


def _validate(x: np.ndarray, scores: np.ndarray | None, lay: Layout, channels: list[str], where: str) -> None:
    if x.size == 0:
        raise DataError(f"{where}: empty clip (keypoints of shape {x.shape}); expected at least one frame")
    if x.ndim != 4:
        raise DataError(f"{where}: keypoints have shape {x.shape}; expected (T, M, V, C)")
    t, m, v, c = x.shape
    if t == 0:
        raise DataError(f"{where}: empty clip (0 frames); expected at least one frame")
    if m == 0:
        raise DataError(f"{where}: no person in the clip; expected at least one")
    if t > MAX_FRAMES or m > MAX_PERSONS:
        raise DataError(f"{where}: {t} frames x {m} persons is beyond the limits ({MAX_FRAMES}, {MAX_PERSONS})")
    if v != lay.num_joints:
        raise DataError(f"{where}: {v} joints per person; layout {lay.name!r} has {lay.num_joints}")
    if c not in (2, 3):
        raise DataError(f"{where}: {c} coordinates per joint; expected 2 (x, y) or 3 (x, y, z)")
    if len(channels) != c:
        raise DataError(f"{where}: {len(channels)} channel names {channels} for {c} coordinates")
    if not np.isfinite(x).all():
        raise DataError(f"{where}: keypoints contain NaN or inf")
    if scores is not None:
        if scores.shape != (t, m, v):
            raise DataError(f"{where}: scores have shape {scores.shape}; expected {(t, m, v)}")
        if not np.isfinite(scores).all():
            raise DataError(f"{where}: scores contain NaN or inf")


def _scalar(value: Any, where: str, key: str) -> Any:
    """A 0-d npz entry (or JSON value) as a Python str/int, or None."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise DataError(f"{where}: '{key}' must be a single value, got shape {value.shape}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, str | int):
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
    except Exception as e:  # noqa: BLE001 - zlib/format errors of a corrupt archive
        raise DataError(f"{path}: corrupt .npz ({type(e).__name__})") from None


def read_keypoints_file(
    path: str | Path, layout: str | Path | Layout | dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Read one keypoints JSON or NPZ clip.

    Args:
        path: The ``.json`` or ``.npz`` file.
        layout: Overrides the file's layout (then the file needs none).

    Returns:
        ``(keypoints, scores, meta)``; meta has ``layout`` (Layout), ``channels``, ``label``, ``split``,
        ``image_size`` and ``name``.

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
    if layout is not None:
        lay = get_layout(layout)
    elif layout_value is None:
        raise DataError(f"{where}: no 'layout'; give one in the file or pass the layout (--layout)")
    else:
        lay = _resolve_layout(layout_value, path.parent, where)
    if channels is None:
        channels = _default_channels(x.shape[-1]) if x.ndim == 4 else []
    _validate(x, scores, lay, list(channels), where)
    image_size = data.get("image_size")
    if image_size is not None:
        size = numeric_array(image_size, where, "image_size")
        if size.shape != (2,) or not (size > 0).all():
            raise DataError(f"{where}: 'image_size' must be [width, height] > 0")
        image_size = [float(size[0]), float(size[1])]
    meta = {"name": path.stem, "layout": lay, "channels": list(channels),
            "label": _scalar(data.get("label"), where, "label"), "split": _scalar(data.get("split"), where, "split"),
            "image_size": image_size}
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
    chans = list(channels) if channels is not None else _default_channels(x.shape[-1]) if x.ndim == 4 else []
    _validate(x, None if scores is None else np.asarray(scores, dtype=np.float32), lay, chans, str(path))
    layout_entry: Any = lay.name if BUILTIN_LAYOUTS.get(lay.name) == lay else lay.to_dict()
    if path.suffix.lower() == ".json":
        obj: dict[str, Any] = {"keypoints": x.tolist(), "layout": layout_entry, "channels": chans}
        if scores is not None:
            obj["scores"] = np.asarray(scores, dtype=np.float32).tolist()
        for key, value in (("label", label), ("split", split), ("image_size", image_size)):
            if value is not None:
                obj[key] = list(value) if key == "image_size" else value
        atomic_write_text(path, json.dumps(obj))
    elif path.suffix.lower() == ".npz":
        arrays: dict[str, Any] = {"keypoints": x, "channels": np.array(chans),
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
    if max_persons < 1:
        raise DataError(f"max_persons must be >= 1, got {max_persons}")
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
    if not np.isfinite(out).all():
        raise DataError(f"{path}: keypoints contain NaN or inf")
    meta = {"name": name, "layout": lay, "channels": ["x", "y"], "label": None, "split": None,
            "image_size": None, "body_25": v_in == 25}
    return out[..., :2].copy(), out[..., 2].copy(), meta


def read_labels_csv(path: str | Path) -> dict[str, tuple[str, str | None]]:
    """A CSV with a header ``name,label[,split]`` -> ``{name: (label, split or None)}``."""
    text = read_text(path)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise DataError(f"{path}: not valid CSV ({e})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path}: empty CSV; expected a header name,label[,split]")
    header = [h.strip().lower() for h in rows[0]]
    if "name" not in header or "label" not in header:
        raise DataError(f"{path}: the header must name the columns name and label (and optionally split), "
                        f"got {rows[0]}")
    i_name, i_label = header.index("name"), header.index("label")
    i_split = header.index("split") if "split" in header else None
    out: dict[str, tuple[str, str | None]] = {}
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {n} has {len(row)} columns; the header has {len(header)}")
        name = row[i_name].strip()
        if not name or name in out:
            raise DataError(f"{path}: line {n}: clip name {name!r} is empty or repeated")
        split = row[i_split].strip() if i_split is not None else None
        out[name] = (row[i_label].strip(), split or None)
    return out


def _find_clips(src: Path) -> list[tuple[Path, str]]:
    """Every clip under ``src`` as ``(path, kind)``; kind is ``file`` or ``openpose``."""
    clips: list[tuple[Path, str]] = []

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                if is_openpose_folder(entry):
                    clips.append((entry, "openpose"))
                else:
                    walk(entry)
            elif entry.suffix.lower() in (".json", ".npz") and not entry.name.endswith("_keypoints.json"):
                clips.append((entry, "file"))

    walk(src)
    return clips


def _read_clip(path: str, kind: str, layout: Any, max_persons: int
               ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    if kind == "openpose":
        return read_openpose_folder(path, layout, max_persons=max_persons)
    return read_keypoints_file(path, layout)


def _work(unit: list[tuple[str, str, int, tuple[str, ...]]], *, layout: Layout, channels: list[str],
          with_scores: bool, max_persons: int) -> list[ClipRecord | Skipped]:
    out: list[ClipRecord | Skipped] = []
    for path, kind, label, splits in unit:
        x, scores, meta = _read_clip(path, kind, layout, max_persons)
        coords = channels[:-1] if with_scores else channels
        if meta["channels"] != coords:
            raise DataError(f"{path}: channels {meta['channels']}; other clips have {coords}")
        if (scores is not None) != with_scores:
            raise DataError(f"{path}: {'has' if scores is not None else 'has no'} scores, unlike the first clip")
        if scores is not None:
            x = np.concatenate([x, scores[..., None]], axis=-1)
        out.append(ClipRecord(meta["name"], np.ascontiguousarray(x[:, :max_persons]), label, splits))
    return out


def plan_keypoints(
    src: str | Path,
    *,
    layout: str | Path | Layout | dict[str, Any] | None = None,
    labels: str | Path | None = None,
    class_names: str | Path | Sequence[str] | None = None,
    max_persons: int | None = None,
    chunk: int = 32,
) -> SourcePlan:
    """Plan the conversion of a folder of keypoints clips and OpenPose folders (rules in the module doc).

    Args:
        src: The folder.
        layout: Layout of every clip (overrides the files').
        labels: CSV with header ``name,label[,split]``.
        class_names: File with one name per line, or the names.
        max_persons: Persons kept per clip (default: the most in a clip file; 2 for OpenPose folders).
        chunk: Clips per work unit.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: not a directory; expected a folder of keypoints clips or OpenPose folders")
    clips = _find_clips(src)
    if is_openpose_folder(src):
        clips.append((src, "openpose"))
    if not clips:
        raise DataError(f"{src}: no keypoints clip (.json/.npz) or OpenPose folder (*_keypoints.json) found")
    table = read_labels_csv(labels) if labels is not None else None
    lay = get_layout(layout) if layout is not None else None
    infos = []
    persons = 0
    channels: list[str] | None = None
    with_scores: bool | None = None
    for path, kind in clips:
        name = path.name if kind == "openpose" else path.stem
        x, scores, meta = _read_clip(str(path), kind, lay, max_persons or 2)
        if lay is None:
            lay = meta["layout"]
        elif meta["layout"].joints != lay.joints:
            raise DataError(f"{path}: layout {meta['layout'].name!r} differs from the first clip's {lay.name!r}")
        coords = meta["channels"]
        if channels is None:
            channels, with_scores = coords, scores is not None
        elif coords != channels or (scores is not None) != with_scores:
            raise DataError(f"{path}: channels {coords} (scores: {scores is not None}) differ from the first "
                            f"clip's {channels} (scores: {with_scores})")
        persons = max(persons, x.shape[1])
        label, split = meta["label"], meta["split"]
        if table is not None:
            if name not in table:
                raise DataError(f"{labels}: no row for clip {name!r} ({path})")
            label, csv_split = table[name]
            split = csv_split or split
        if label is None:
            raise DataError(f"{path}: no label: give --labels CSV or a 'label' in the file")
        if split is None:
            rel = path.relative_to(src).parts
            split = rel[0] if len(rel) > 1 else "all"
        infos.append((str(path), kind, name, label, str(split)))
    names = [i[2] for i in infos]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[0]
        raise DataError(f"{src}: clip name {dup!r} appears more than once (clip names must be unique)")
    if class_names is None:
        raw = [i[3] for i in infos]
        if all(isinstance(v, int) or (isinstance(v, str) and v.isdigit()) for v in raw):
            names_list = [f"class_{k}" for k in range(max(int(v) for v in raw) + 1)]
        else:
            names_list = sorted({str(v) for v in raw})
    elif isinstance(class_names, str | Path):
        names_list = read_class_names(class_names)
    else:
        names_list = [str(n) for n in class_names]
    index = {n: k for k, n in enumerate(names_list)}
    items = []
    for path, kind, _name, label, split in infos:
        if isinstance(label, str) and label in index:
            k = index[label]
        elif isinstance(label, int) or (isinstance(label, str) and label.isdigit()):
            k = int(label)
            if not 0 <= k < len(names_list):
                raise DataError(f"{path}: label {label} is not a class index in [0, {len(names_list)})")
        else:
            raise DataError(f"{path}: unknown label {label!r}; valid labels are {', '.join(names_list)}")
        items.append((path, kind, k, (split,)))
    assert lay is not None and channels is not None and with_scores is not None
    m = min(persons, max_persons) if max_persons else persons
    all_channels = channels + (["score"] if with_scores else [])
    splits = list(dict.fromkeys(i[3][0] for i in items))
    return SourcePlan(
        format="keypoints",
        layout=lay,
        channels=all_channels,
        class_names=names_list,
        num_persons=m,
        units=chunked(items, chunk),
        work=partial(_work, layout=lay, channels=all_channels, with_scores=with_scores, max_persons=m),
        splits=splits,
        source={"format": "keypoints", "path": str(src.resolve()),
                "labels": str(labels) if labels is not None else "from the files"},
    )
