"""The original ST-GCN (yysijie/st-gcn) data files: ``{train,val}_data.npy`` + ``{train,val}_label.pkl``.

``*_data.npy`` is (N, C, T, V, M) float32, every clip zero-padded to T frames (300 in the releases);
``*_label.pkl`` is a pickled ``(sample_names, labels)`` pair, read with the restricted unpickler of
:mod:`stgcn.utils.safe_pickle`. The array is memory-mapped and converted a chunk of clips at a time, so memory
stays bounded. Trailing all-zero frames (the padding) are dropped: the store keeps each clip's own length.

Kinetics-skeleton releases have V = 18 and channels ``x, y, score``; NTU releases V = 25 and ``x, y, z``.
"""

from __future__ import annotations

import warnings
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
    class_names_from,
    layout_for_joints,
    numbered_class_names,
    read_class_names,
)
from stgcn.errors import DataError
from stgcn.graph.layouts import Layout
from stgcn.utils import safe_pickle  # the module (not its function): safe_pickle itself imports readers.base
from stgcn.utils.checks import is_int

__all__ = ["read_stgcn_labels", "open_stgcn_data", "plan_stgcn_npy", "read_class_names", "trim_padding", "FORMAT"]

SPLITS = ("train", "val")
_DEFAULT_LAYOUTS = {18: "openpose-18", 25: "ntu-rgb+d"}


def read_stgcn_labels(path: str | Path) -> tuple[list[str], list[int]]:
    """Read a ``*_label.pkl``: the pair ``(sample_names, labels)``.

    Raises:
        DataError: not a pickle of two equally long sequences of names and non-negative integer labels,
            or a pickle that references anything but builtin containers and numpy objects.
    """
    obj = safe_pickle.load_pickle(path)
    if not isinstance(obj, list | tuple) or len(obj) != 2:
        raise DataError(f"{path}: expected a pickled (sample_names, labels) pair")
    names, labels = obj
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if isinstance(names, np.ndarray):
        names = names.tolist()
    if not isinstance(names, list | tuple) or not isinstance(labels, list | tuple):
        raise DataError(f"{path}: sample names and labels must be lists")
    if len(names) != len(labels):
        raise DataError(f"{path}: {len(names)} sample names but {len(labels)} labels")
    out_labels = []
    for name, label in zip(names, labels, strict=True):
        if not isinstance(name, str):
            raise DataError(f"{path}: sample name {name!r} is not a string")
        if not is_int(label) or label < 0:
            raise DataError(f"{path}: label {label!r} of {name} is not a non-negative integer")
        out_labels.append(int(label))
    return [str(n) for n in names], out_labels


def open_stgcn_data(path: str | Path) -> np.ndarray:
    """Memory-map a ``*_data.npy`` (N, C, T, V, M); object arrays are refused (no pickles)."""
    try:
        with warnings.catch_warnings():   # a corrupt header may look like a Python 2 one; the error says enough
            warnings.simplefilter("ignore", UserWarning)
            data = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{path}: not a numeric .npy array ({str(e).splitlines()[0]})") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read as .npy ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                        ) from None
    except Exception as e:  # a corrupt header fails inside numpy's parser in many ways
        raise DataError(f"{path}: corrupt .npy header ({type(e).__name__})") from None
    if not isinstance(data, np.ndarray) or data.ndim != 5:
        raise DataError(f"{path}: array has shape {getattr(data, 'shape', '?')}; expected (N, C, T, V, M)")
    if data.dtype.kind not in "iuf":
        raise DataError(f"{path}: array dtype {data.dtype}; expected numbers")
    if 0 in data.shape:
        raise DataError(f"{path}: empty array of shape {data.shape}")
    return data


def trim_padding(x: np.ndarray) -> np.ndarray:
    """Drop trailing all-zero frames. Shape: (T, M, V, C) -> (T', M, V, C); all-zero clips give T' = 0."""
    nonzero = np.flatnonzero(np.any(x != 0, axis=(1, 2, 3)))
    return x[: nonzero[-1] + 1] if nonzero.size else x[:0]


def _work(unit: tuple[str, str, int, list[str], list[int]], *, num_classes: int, layout: Layout
          ) -> list[ClipRecord | Skipped]:
    path, split, start, names, labels = unit
    data = open_stgcn_data(path)
    with np.errstate(over="ignore", invalid="ignore"):   # out-of-range values become inf, refused below
        block = np.asarray(data[start:start + len(names)], dtype=np.float32)      # (n, C, T, V, M)
    if not np.isfinite(block).all():
        bad = int(np.flatnonzero(~np.isfinite(block).reshape(len(names), -1).all(axis=1))[0])
        raise DataError(f"{path}: sample {start + bad} ({names[bad]}) contains NaN or inf")
    out: list[ClipRecord | Skipped] = []
    for k, (name, label) in enumerate(zip(names, labels, strict=True)):
        if label >= num_classes:
            raise DataError(f"{path}: label {label} of {name} is outside [0, {num_classes}) (class names)")
        x = trim_padding(block[k].transpose(1, 3, 2, 0))
        if x.shape[0] == 0:
            out.append(Skipped(name, "all-zero sample"))
            continue
        check_keypoints(x, f"{path}: {name}", layout)
        out.append(ClipRecord(name, np.ascontiguousarray(x), label, (split,)))
    return out


def plan_stgcn_npy(
    src: str | Path,
    *,
    layout: str | Path | Layout | dict[str, Any] | None = None,
    channels: str | Sequence[str] | None = None,
    class_names: str | Path | Sequence[str] | None = None,
    chunk: int = 64,
) -> SourcePlan:
    """Plan the conversion of an original ST-GCN data folder.

    Args:
        src: Folder with ``train_data.npy``, ``train_label.pkl`` and/or ``val_data.npy``, ``val_label.pkl``.
        layout: Layout; default from V (18: ``openpose-18``, 25: ``ntu-rgb+d``).
        channels: Channel names (comma-separated or a list); default ``x,y,score`` for V = 18 and
            ``x,y,z`` otherwise (C must match).
        class_names: A file with one name per line, or the names; default ``class_0`` ... by the largest
            label.
        chunk: Clips per work unit.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: not a directory; expected the folder with train_data.npy, train_label.pkl, ...")
    parts = []
    for split in SPLITS:
        data_file, label_file = src / f"{split}_data.npy", src / f"{split}_label.pkl"
        if data_file.exists() or label_file.exists():
            if not data_file.is_file() or not label_file.is_file():
                raise DataError(f"{src}: {split}_data.npy and {split}_label.pkl must both be present")
            parts.append((split, data_file, label_file))
    if not parts:
        raise DataError(f"{src}: no train_data.npy/train_label.pkl or val_data.npy/val_label.pkl found")
    shapes, labelled = [], []
    for split, data_file, label_file in parts:
        data = open_stgcn_data(data_file)
        names, labels = read_stgcn_labels(label_file)
        if len(names) != data.shape[0]:
            raise DataError(f"{label_file}: {len(names)} labels for {data.shape[0]} clips in {data_file.name}")
        shapes.append(data.shape)
        labelled.append((split, data_file, names, labels))
    c, v = shapes[0][1], shapes[0][3]
    if any(s[1] != c or s[3] != v for s in shapes):
        raise DataError(f"{src}: train and val arrays disagree in C or V ({shapes})")
    lay = layout_for_joints(src, v, layout, _DEFAULT_LAYOUTS)
    if channels is None:
        channels = ["x", "y", "score"] if v == 18 and c == 3 else ["x", "y", "z", "score"][:c]
    elif isinstance(channels, str):
        channels = [ch.strip() for ch in channels.split(",") if ch.strip()]
    channels = list(channels)
    if len(channels) != c:
        raise DataError(f"{src}: arrays have C = {c} channels; got channel names {channels}")
    all_names = [n for _, _, names, _ in labelled for n in names]
    if len(set(all_names)) != len(all_names):
        raise DataError(f"{src}: sample names repeat across or within the label files")
    max_label = max((max(labels) for *_, labels in labelled if labels), default=-1)
    if class_names is None:
        names_list = numbered_class_names(max_label + 1, src)
    else:
        names_list = class_names_from(class_names)
    if max_label >= len(names_list):
        raise DataError(f"{src}: label {max_label} is outside the {len(names_list)} class names")
    units = []
    for split, data_file, names, labels in labelled:
        for start in range(0, len(names), chunk):
            units.append((str(data_file), split, start, names[start:start + chunk], labels[start:start + chunk]))
    return SourcePlan(
        format="stgcn-npy",
        layout=lay,
        channels=channels,
        class_names=names_list,
        num_persons=max(int(s[4]) for s in shapes),
        units=units,
        work=partial(_work, num_classes=len(names_list), layout=lay),
        splits=[split for split, *_ in parts],
        source={"format": "stgcn-npy", "path": str(src.resolve()), "padded_frames": int(shapes[0][2])},
    )


FORMAT = DatasetFormat(
    name="stgcn-npy",
    help="the original ST-GCN {train,val}_data.npy + {train,val}_label.pkl",
    src_help="folder with train_data.npy, train_label.pkl, val_data.npy, val_label.pkl",
    plan=plan_stgcn_npy,
    options=(
        ReaderOption("layout", str, None, "layout name or file (default: from V: 18 openpose-18, 25 ntu-rgb+d)",
                     accepts=(Path, Layout, dict)),
        ReaderOption("channels", str, None, "comma-separated channel names (default x,y,score for 2-D, x,y,z)",
                     accepts=(list, tuple)),
        ReaderOption("class_names", Path, None, "text file of class names, one per line", accepts=(list, tuple)),
        ReaderOption("chunk", int, 64, "clips per work unit", minimum=1, cli=False),
    ),
)
