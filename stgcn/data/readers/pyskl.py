"""PYSKL / MMAction2 skeleton annotation pickles.

The file is ``{"split": {name: [frame_dir, ...]}, "annotations": [ann, ...]}`` (or a bare list of
annotations) where each annotation holds ``frame_dir`` (the clip name), ``label``, ``keypoint``
(M, T, V, C), optionally ``keypoint_score`` (M, T, V), ``total_frames`` and ``img_shape`` (height, width).

The pickle is read with the restricted unpickler of :mod:`stgcn.utils.safe_pickle` (numpy arrays and builtin
containers only): a pickle from the internet cannot run code. It is loaded whole (the format has no index),
so memory grows with the file.

Channels: 2-D keypoints with scores become ``x, y, score``; 3-D ones ``x, y, z``. ``normalize=True`` divides
2-D pixel coordinates by each clip's ``img_shape`` (to [0, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.readers.base import (
    ClipRecord,
    DatasetFormat,
    ReaderOption,
    Skipped,
    SourcePlan,
    check_keypoints,
    chunked,
    class_names_from,
    layout_for_joints,
    numbered_class_names,
    numeric_array,
)
from stgcn.errors import DataError
from stgcn.graph.layouts import Layout
from stgcn.utils import safe_pickle  # the module (not its function): safe_pickle itself imports readers.base
from stgcn.utils.checks import is_int

__all__ = ["read_pyskl_annotations", "pyskl_clip", "plan_pyskl", "FORMAT"]

_DEFAULT_LAYOUTS = {17: "coco-17", 25: "ntu-rgb+d"}


def read_pyskl_annotations(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Load a PYSKL pickle safely.

    Returns:
        ``(annotations, splits)``; ``splits`` is ``{"all": [every frame_dir]}`` for a bare list.

    Raises:
        DataError: a forbidden global (code), a corrupt pickle, or the wrong structure.
    """
    obj = safe_pickle.load_pickle(path)
    if isinstance(obj, dict):
        if "annotations" not in obj:
            raise DataError(f"{path}: expected a dict with 'annotations' (and 'split'), got keys {list(obj)[:8]}")
        anns, splits = obj["annotations"], obj.get("split")
    elif isinstance(obj, list):
        anns, splits = obj, None
    else:
        raise DataError(f"{path}: expected a dict with 'split' and 'annotations' or a list of annotations")
    if not isinstance(anns, list) or not anns:
        raise DataError(f"{path}: 'annotations' must be a non-empty list")
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or "keypoint" not in ann or "label" not in ann:
            raise DataError(f"{path}: annotation {i} must be a dict with 'frame_dir', 'label' and 'keypoint'")
        if not isinstance(ann.get("frame_dir", f"clip_{i:06d}"), str):
            raise DataError(f"{path}: annotation {i}: 'frame_dir' must be a string")
    if splits is None:
        splits = {"all": [str(a.get("frame_dir", f"clip_{i:06d}")) for i, a in enumerate(anns)]}
    if not isinstance(splits, dict) or not all(
            isinstance(k, str) and isinstance(v, list | tuple) and all(isinstance(n, str) for n in v)
            for k, v in splits.items()):
        raise DataError(f"{path}: 'split' must map split names to lists of frame_dir names")
    return anns, {k: list(v) for k, v in splits.items()}


def pyskl_clip(ann: dict[str, Any], where: str, *, normalize: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """One annotation's keypoints as (T, M, V, C) and its scores (T, M, V) or None."""
    kp = numeric_array(ann["keypoint"], where, "keypoint")
    if kp.ndim != 4:
        raise DataError(f"{where}: keypoint has shape {kp.shape}; expected (M, T, V, C)")
    m, t, v, _ = kp.shape
    scores = None
    if ann.get("keypoint_score") is not None:
        scores = numeric_array(ann["keypoint_score"], where, "keypoint_score")
        if scores.shape != (m, t, v):
            raise DataError(f"{where}: keypoint_score has shape {scores.shape}; expected {(m, t, v)}")
        scores = scores.transpose(1, 0, 2)
    x = kp.transpose(1, 0, 2, 3)
    check_keypoints(x, where, None, scores=scores, coordinates=True, allow_empty=True)
    if normalize:
        shape = ann.get("img_shape")
        if not isinstance(shape, list | tuple) or len(shape) != 2 or not all(is_int(s) and s > 0 for s in shape):
            raise DataError(f"{where}: normalize needs img_shape (height, width) > 0, got {shape!r}")
        x = x.copy()
        x[..., 0] /= float(shape[1])
        x[..., 1] /= float(shape[0])
    return x, scores


def _work(unit: list[tuple[str, Any, Any, Any, tuple[str, ...]]], *, where: str, with_scores: bool, dims: int,
          num_classes: int, max_persons: int, normalize: bool) -> list[ClipRecord | Skipped]:
    out: list[ClipRecord | Skipped] = []
    for name, keypoint, score, img_shape, (label, splits) in unit:
        w = f"{where}: {name}"
        ann = {"keypoint": keypoint, "keypoint_score": score, "img_shape": img_shape}
        x, scores = pyskl_clip(ann, w, normalize=normalize)
        if x.shape[3] != dims or (scores is not None) != with_scores:
            raise DataError(f"{w}: keypoints ({x.shape[3]}-D, scores {scores is not None}) differ from the first "
                            f"clip ({dims}-D, scores {with_scores})")
        if not is_int(label) or not 0 <= label < num_classes:
            raise DataError(f"{w}: label {label!r} is not a class index in [0, {num_classes})")
        if x.shape[0] == 0 or x.shape[1] == 0:
            out.append(Skipped(name, "no frame or no person"))
            continue
        if scores is not None:
            x = np.concatenate([x, scores[..., None]], axis=-1)
        out.append(ClipRecord(name, np.ascontiguousarray(x[:, :max_persons]), int(label), splits))
    return out


def plan_pyskl(
    src: str | Path,
    *,
    layout: str | Path | Layout | dict[str, Any] | None = None,
    class_names: str | Path | Sequence[str] | None = None,
    max_persons: int | None = None,
    normalize: bool = False,
    chunk: int = 64,
) -> SourcePlan:
    """Plan the conversion of a PYSKL annotation pickle.

    Args:
        src: The ``.pkl`` file.
        layout: Layout; default from V (17: ``coco-17``, 25: ``ntu-rgb+d``).
        class_names: File with one name per line, or the names; default ``class_0`` ... by the largest label.
        max_persons: Persons kept (the first ones); default the most in any clip.
        normalize: Divide 2-D coordinates by each clip's ``img_shape``.
        chunk: Clips per work unit.
    """
    src = Path(src)
    anns, splits = read_pyskl_annotations(src)
    first = anns[0]
    x0, s0 = pyskl_clip(first, f"{src}: {first.get('frame_dir', 'clip 0')}")
    v, dims, with_scores = x0.shape[2], x0.shape[3], s0 is not None
    lay = layout_for_joints(src, v, layout, _DEFAULT_LAYOUTS)
    channels = (["x", "y", "z"] if dims == 3 else ["x", "y"]) + (["score"] if with_scores else [])
    labels = []
    for i, ann in enumerate(anns):
        label = ann["label"]
        if not is_int(label) or label < 0:
            raise DataError(f"{src}: annotation {i}: label {label!r} is not a non-negative integer")
        labels.append(int(label))
    if class_names is None:
        names_list = numbered_class_names(max(labels) + 1, src)
    else:
        names_list = class_names_from(class_names)
    membership: dict[str, list[str]] = {}
    for split, members in splits.items():
        for name in members:
            membership.setdefault(name, []).append(split)
    names = [str(a.get("frame_dir", f"clip_{i:06d}")) for i, a in enumerate(anns)]
    if len(set(names)) != len(names):
        raise DataError(f"{src}: frame_dir names repeat")
    unknown = sorted(set(membership) - set(names))
    if unknown:
        raise DataError(f"{src}: split lists name clips that have no annotation, e.g. {unknown[0]!r}")
    persons = 0
    for name, a in zip(names, anns, strict=True):
        kp = a["keypoint"]
        if not isinstance(kp, np.ndarray) or kp.ndim != 4:
            raise DataError(f"{src}: {name}: keypoint must be an array (M, T, V, C), got "
                            f"{getattr(kp, 'shape', type(kp).__name__)}")
        persons = max(persons, int(kp.shape[0]))
    m = min(persons, max_persons) if max_persons else persons
    items = [(n, a["keypoint"], a.get("keypoint_score"), a.get("img_shape"),
              (int(a["label"]), tuple(membership.get(n, ())))) for n, a in zip(names, anns, strict=True)]
    return SourcePlan(
        format="pyskl",
        layout=lay,
        channels=channels,
        class_names=names_list,
        num_persons=max(m, 1),
        units=chunked(items, chunk),
        work=partial(_work, where=str(src), with_scores=with_scores, dims=dims, num_classes=len(names_list),
                     max_persons=max(m, 1), normalize=normalize),
        splits=list(splits),
        source={"format": "pyskl", "path": str(src.resolve()), "normalize": normalize},
    )


FORMAT = DatasetFormat(
    name="pyskl",
    help="PYSKL / MMAction2 annotation pickle (read with a restricted unpickler)",
    src_help="the .pkl file",
    plan=plan_pyskl,
    options=(
        ReaderOption("layout", str, None, "layout name or file (default: from V: 17 coco-17, 25 ntu-rgb+d)",
                     accepts=(Path, Layout, dict)),
        ReaderOption("class_names", Path, None, "text file of class names, one per line", accepts=(list, tuple)),
        ReaderOption("max_persons", int, None, "persons kept per clip (default: the most in a clip)", minimum=1),
        ReaderOption("normalize", bool, False, "divide 2-D coordinates by each clip's img_shape (to [0, 1])",
                     flag=True),
        ReaderOption("chunk", int, 64, "clips per work unit", minimum=1, cli=False),
    ),
)
