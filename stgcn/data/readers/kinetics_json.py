"""The Kinetics-skeleton release of the original ST-GCN (OpenPose 18 joints, coordinates in [0, 1]).

One JSON per video::

    {"data": [{"frame_index": 1, "skeleton": [{"pose": [x0, y0, x1, y1, ...], "score": [s0, s1, ...]}, ...]},
              ...],
     "label": "abseiling", "label_index": 0}

and per split a label file ``kinetics_<split>_label.json``: ``{video_id: {"has_skeleton": true,
"label": "abseiling", "label_index": 0}, ...}``. The folder layout is ``SRC/kinetics_train/*.json``,
``SRC/kinetics_train_label.json``, ``SRC/kinetics_val/...``; a plain folder of JSON files is one split
``all``.

Persons (as the original feeder): in each frame the persons, in file order, are ranked by their summed
joint score and the best ``max_persons`` kept. ``frame_index`` is 1-based; frames missing from the file are
zero. Channels ``x, y, score``; videos the label file marks ``has_skeleton: false`` are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.readers.base import (
    MAX_FRAMES,
    ClipRecord,
    DatasetFormat,
    ReaderOption,
    Skipped,
    SourcePlan,
    check_keypoints,
    chunked,
    class_names_from,
    numbered_class_names,
    read_json,
)
from stgcn.errors import DataError
from stgcn.graph.layouts import get_layout
from stgcn.utils.checks import check_int, is_int

__all__ = ["read_kinetics_json_file", "parse_kinetics_clip", "plan_kinetics_json", "FORMAT"]

_JOINTS = 18
SPLITS = ("train", "val")


def parse_kinetics_clip(obj: Any, where: str, *, max_persons: int = 2) -> np.ndarray:
    """The skeletons of one parsed Kinetics-skeleton JSON.

    Shape:
        returns (T, max_persons, 18, 3) float32 with channels x, y, score (T = the last frame_index; 0 if
        the file has no frame).
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise DataError(f"{where}: expected a JSON object with a 'data' list of frames")
    frames = obj["data"]
    parsed: list[tuple[int, np.ndarray]] = []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict) or "frame_index" not in frame or not isinstance(frame.get("skeleton"), list):
            raise DataError(f"{where}: frame {i} must be an object with 'frame_index' and a 'skeleton' list")
        index = frame["frame_index"]
        if not is_int(index) or not 1 <= index <= MAX_FRAMES:
            raise DataError(f"{where}: frame {i}: frame_index {index!r} is not an integer in [1, {MAX_FRAMES}]")
        people = np.zeros((len(frame["skeleton"]), _JOINTS, 3), dtype=np.float32)
        for p, person in enumerate(frame["skeleton"]):
            if not isinstance(person, dict) or "pose" not in person or "score" not in person:
                raise DataError(f"{where}: frame {i}, person {p} needs 'pose' and 'score'")
            pose = np.asarray(person["pose"])
            score = np.asarray(person["score"])
            if pose.dtype.kind not in "iuf" or score.dtype.kind not in "iuf":
                raise DataError(f"{where}: frame {i}, person {p}: pose and score must be lists of numbers")
            if pose.shape != (2 * _JOINTS,) or score.shape != (_JOINTS,):
                raise DataError(f"{where}: frame {i}, person {p}: pose has {pose.size} values and score "
                                f"{score.size}; expected {2 * _JOINTS} and {_JOINTS} (OpenPose 18 joints)")
            with np.errstate(over="ignore", invalid="ignore"):   # out-of-range values become inf, refused below
                people[p, :, 0] = pose[0::2]
                people[p, :, 1] = pose[1::2]
                people[p, :, 2] = score
        parsed.append((index - 1, people))
    t = max((idx for idx, _ in parsed), default=-1) + 1
    out = np.zeros((t, max_persons, _JOINTS, 3), dtype=np.float32)
    for idx, people in parsed:
        if len(people) == 0:
            continue
        order = np.argsort(-people[:, :, 2].sum(axis=1), kind="stable")[:max_persons]
        out[idx, : len(order)] = people[order]
    return check_keypoints(out, where, get_layout("openpose-18"), 3, allow_empty=True)


def read_kinetics_json_file(path: str | Path, *, max_persons: int = 2) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one video's JSON.

    Returns:
        ``(keypoints, meta)``; meta holds ``label`` and ``label_index`` when the file has them.

    Shape:
        keypoints: (T, max_persons, 18, 3) float32, channels x, y, score
    """
    path = Path(path)
    obj = read_json(path)
    x = parse_kinetics_clip(obj, str(path), max_persons=max_persons)
    meta = {"name": path.stem, "label": obj.get("label"), "label_index": obj.get("label_index")}
    return x, meta


def _work(unit: list[tuple[str, int, str]], *, max_persons: int, num_classes: int) -> list[ClipRecord | Skipped]:
    out: list[ClipRecord | Skipped] = []
    for path, label, split in unit:
        name = Path(path).stem
        x, meta = read_kinetics_json_file(path, max_persons=max_persons)
        if label < 0:
            label = meta["label_index"]
            if not is_int(label):
                raise DataError(f"{path}: no label: the file has no integer 'label_index' and no label file")
        if not 0 <= label < num_classes:
            raise DataError(f"{path}: label_index {label} is outside [0, {num_classes}) (class names)")
        if x.shape[0] == 0 or not np.any(x):
            out.append(Skipped(name, "no skeleton in any frame"))
            continue
        out.append(ClipRecord(name, x, label, (split,)))
    return out


def _read_label_file(path: Path) -> dict[str, dict[str, Any]]:
    labels = read_json(path)
    if not isinstance(labels, dict):
        raise DataError(f"{path}: expected an object {{video_id: {{has_skeleton, label, label_index}}}}")
    for vid, info in labels.items():
        if not isinstance(info, dict) or not is_int(info.get("label_index")) or info["label_index"] < 0:
            raise DataError(f"{path}: entry {vid!r} needs a non-negative integer 'label_index'")
    return labels


def plan_kinetics_json(
    src: str | Path,
    *,
    max_persons: int = 2,
    class_names: str | Path | Sequence[str] | None = None,
    chunk: int = 64,
) -> SourcePlan:
    """Plan the conversion of the Kinetics-skeleton release (or a folder of its JSON files).

    Args:
        src: Folder with ``kinetics_train/``, ``kinetics_val/`` and their label files, or a folder of JSONs.
        max_persons: Persons kept per frame, by summed joint score (original: 2).
        class_names: File with one name per line (e.g. the 400 Kinetics names), or the names; default the
            names found in the label files by ``label_index``.
        chunk: Files per work unit.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: not a directory; expected the Kinetics-skeleton folder")
    max_persons = check_int(max_persons, "max_persons", minimum=1, error=DataError)
    parts = [(s, src / f"kinetics_{s}", src / f"kinetics_{s}_label.json") for s in SPLITS
             if (src / f"kinetics_{s}").is_dir()]
    if not parts:
        parts = [("all", src, None)]
    units_items: list[tuple[str, int, str]] = []
    found_names: dict[int, str] = {}
    skipped: list[str] = []
    for split, folder, label_file in parts:
        labels = _read_label_file(label_file) if label_file is not None and label_file.is_file() else None
        for path in sorted(folder.glob("*.json")):
            if labels is None:
                units_items.append((str(path), -1, split))
                continue
            info = labels.get(path.stem)
            if info is None:
                raise DataError(f"{path}: video {path.stem} is not in {label_file.name}")
            if info.get("has_skeleton") is False:
                skipped.append(path.stem)
                continue
            found_names.setdefault(info["label_index"], str(info.get("label", f"class_{info['label_index']}")))
            units_items.append((str(path), int(info["label_index"]), split))
    if not units_items:
        raise DataError(f"{src}: no Kinetics-skeleton JSON files found")
    if class_names is None:
        size = max(found_names, default=-1) + 1
        if size == 0:
            raise DataError(f"{src}: no label file; give the class names (--class-names)")
        names_list = numbered_class_names(size, src, found_names)
    else:
        names_list = class_names_from(class_names)
    return SourcePlan(
        format="kinetics-json",
        layout=get_layout("openpose-18"),
        channels=["x", "y", "score"],
        class_names=names_list,
        num_persons=max_persons,
        units=chunked(units_items, chunk),
        work=partial(_work, max_persons=max_persons, num_classes=len(names_list)),
        splits=[split for split, *_ in parts],
        source={"format": "kinetics-json", "path": str(src.resolve()), "max_persons": max_persons,
                "persons": "per frame, ranked by summed joint score"},
        counts={"no_skeleton_in_label_file": len(skipped)},
    )


FORMAT = DatasetFormat(
    name="kinetics-json",
    help="Kinetics-skeleton release (one JSON per video + label JSON)",
    src_help="folder with kinetics_train/, kinetics_val/ and their *_label.json files",
    plan=plan_kinetics_json,
    options=(
        ReaderOption("max_persons", int, 2, "persons kept per frame, by score (default 2)", minimum=1),
        ReaderOption("class_names", Path, None, "text file of class names, one per line", accepts=(list, tuple)),
        ReaderOption("chunk", int, 64, "files per work unit", minimum=1, cli=False),
    ),
)
