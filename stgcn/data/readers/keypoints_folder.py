"""``stgcn prepare keypoints``: a folder of custom clips (our keypoints JSON/NPZ files and OpenPose folders).

For ``stgcn prepare keypoints SRC OUT``: every ``*.json``/``*.npz`` clip file and every OpenPose folder under
SRC is one clip, named by its file stem / folder name. Its label comes from ``--labels`` (a CSV with a
header ``name,label[,split]``) or else from the file; its split from the CSV, else the file, else the first
sub-folder of SRC it lies in (``SRC/train/...``), else ``all``. Class names come from ``--class-names``, else
the sorted string labels (or ``class_<i>`` for integer labels). The store's channels are the coordinates
plus ``score`` when the clips have scores; all clips must agree in layout and channels.

Layouts: with ``--layout`` every clip file that names a layout must name one of the same joints in the same order
(files that name none are read as it); without it the first clip's layout is the store's and every other clip
must name the same layout identity (joints, edges, centre: :mod:`stgcn.graph.identity`). A mismatch is one error
naming both files and layouts. ``--remap-joints by-name`` reorders clips whose layout has the same joint names in
another order.
"""

from __future__ import annotations

import csv
import io
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
    chunked,
    class_names_from,
    numbered_class_names,
    read_text,
)
from stgcn.data.readers.keypoints import read_keypoints_file
from stgcn.data.readers.openpose import is_openpose_folder, read_openpose_folder
from stgcn.errors import DataError
from stgcn.graph.identity import REMAP_CHOICES, check_remap, match_joints
from stgcn.graph.layouts import Layout, get_layout
from stgcn.utils.checks import is_int

__all__ = ["read_labels_csv", "plan_keypoints", "FORMAT"]


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


def _read_clip(path: str, kind: str, layout: Any, max_persons: int, remap: str = "none", target: str = ""
               ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    if kind == "openpose":
        return read_openpose_folder(path, layout, max_persons=max_persons)
    return read_keypoints_file(path, layout, remap=remap, target=target or "the store")


def _work(unit: list[tuple[str, str, int, tuple[str, ...]]], *, layout: Layout, channels: list[str],
          with_scores: bool, max_persons: int, remap: str = "none") -> list[ClipRecord | Skipped]:
    out: list[ClipRecord | Skipped] = []
    for path, kind, label, splits in unit:
        x, scores, meta = _read_clip(path, kind, layout, max_persons, remap)
        if not np.any(x):  # as the Kinetics and MSR readers: skipped and counted in the manifest
            out.append(Skipped(meta["name"], "no skeleton in any frame (every keypoint is zero)"))
            continue
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
    remap_joints: str = "none",
    chunk: int = 32,
) -> SourcePlan:
    """Plan the conversion of a folder of keypoints clips and OpenPose folders (rules in the module doc).

    Args:
        src: The folder.
        layout: The store's layout: files that name none are read as it; files that name one must name its
            joints in its order (module docstring).
        labels: CSV with header ``name,label[,split]``.
        class_names: File with one name per line, or the names.
        max_persons: Persons kept per clip (default: the most in a clip file; 2 for OpenPose folders).
        remap_joints: ``"by-name"``: reorder clips whose layout has the store layout's joints in another order;
            ``"none"``: refuse them.
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
    remap = check_remap(remap_joints)
    lay = get_layout(layout) if layout is not None else None
    target = "--layout" if lay is not None else ""
    infos = []
    persons = 0
    channels: list[str] | None = None
    with_scores: bool | None = None
    for path, kind in clips:
        name = path.name if kind == "openpose" else path.stem
        x, scores, meta = _read_clip(str(path), kind, lay, max_persons or 2, remap, target)
        if lay is None:
            lay, target = meta["layout"], f"the first clip ({path})"
        elif layout is None and meta.get("declared_layout") is not None:  # clip vs the first clip: one identity
            match_joints(meta["declared_layout"], lay, data_what=str(path), target_what=target, remap=remap,
                         graph=True)
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
        if all(is_int(v) or (isinstance(v, str) and v.isdigit()) for v in raw):
            names_list = numbered_class_names(max(int(v) for v in raw) + 1, src)
        else:
            names_list = sorted({str(v) for v in raw})
    else:
        names_list = class_names_from(class_names)
    index = {n: k for k, n in enumerate(names_list)}
    items = []
    for path, kind, _name, label, split in infos:
        if isinstance(label, str) and label in index:
            k = index[label]
        elif is_int(label) or (isinstance(label, str) and label.isdigit()):
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
        work=partial(_work, layout=lay, channels=all_channels, with_scores=with_scores, max_persons=m, remap=remap),
        splits=splits,
        source={"format": "keypoints", "path": str(src.resolve()),
                "labels": str(labels) if labels is not None else "from the files"},
    )


FORMAT = DatasetFormat(
    name="keypoints",
    help="our keypoints JSON/NPZ clips and OpenPose JSON folders (custom data)",
    src_help="folder of clip files / OpenPose folders (optionally in split sub-folders)",
    plan=plan_keypoints,
    options=(
        ReaderOption("layout", str, None, "layout name or file of the store; clip files that name a layout must "
                     "match it (default: the first clip's)",
                     accepts=(Path, Layout, dict)),
        ReaderOption("labels", Path, None, "CSV with columns name,label[,split]"),
        ReaderOption("class_names", Path, None, "text file of class names, one per line", accepts=(list, tuple)),
        ReaderOption("max_persons", int, None,
                     "persons kept per clip (default: the most in a clip file; 2 for OpenPose folders)", minimum=1),
        ReaderOption("remap_joints", str, "none", "reorder clips whose layout has the same joint names in another "
                     "order (by-name) or refuse them (none)", choices=REMAP_CHOICES),
        ReaderOption("chunk", int, 32, "clips per work unit", minimum=1, cli=False),
    ),
)
