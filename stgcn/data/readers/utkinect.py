"""UTKinect-Action3D (Xia, Chen, Aggarwal, CVPR Workshops 2012).

20 long sequences ``joints_sSS_eEE.txt`` (10 subjects x 2 episodes): per line a frame id then 20 joints as
``x y z`` (Kinect v1 SDK order, layout ``kinect-v1``). The label file gives, per sequence, the first and
last frame id of each of the 10 actions::

    s01_e01
    walk: 252 390
    sitDown: 572 686
    ...

``actionLabel.txt`` holds the original boundaries, ``actionLabel_modified.txt`` corrected ones (option
``boundaries``). A segment is every line whose frame id lies in ``[first, last]`` (frame ids are timestamps
and may repeat; every line is a frame). A segment marked ``NaN NaN`` (one ``carry`` in the release) is
skipped and counted.

Split: cross-subject, odd subjects train and even subjects test.
"""

from __future__ import annotations

import math
import re
from functools import partial
from pathlib import Path

import numpy as np

from stgcn.data.readers.base import (
    MAX_FRAMES,
    ClipRecord,
    DatasetFormat,
    ReaderOption,
    Skipped,
    SourcePlan,
    check_keypoints,
    finite_float32,
    read_text,
)
from stgcn.errors import DataError
from stgcn.graph.layouts import get_layout

__all__ = ["UTKINECT_ACTIONS", "UTKINECT_CLASS_NAMES", "read_utkinect_sequence", "read_utkinect_labels",
           "plan_utkinect", "FORMAT"]

# label-file action key -> class name, in label order
UTKINECT_ACTIONS: dict[str, str] = {
    "walk": "walk", "sitDown": "sit down", "standUp": "stand up", "pickUp": "pick up", "carry": "carry",
    "throw": "throw", "push": "push", "pull": "pull", "waveHands": "wave hands", "clapHands": "clap hands",
}
UTKINECT_CLASS_NAMES = list(UTKINECT_ACTIONS.values())
LABEL_FILES = {"original": "actionLabel.txt", "modified": "actionLabel_modified.txt"}
_SEQ = re.compile(r"s(\d+)_e(\d+)")
_JOINTS = 20


def read_utkinect_sequence(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``joints_sSS_eEE.txt`` sequence.

    Returns:
        ``(frame_ids, keypoints)``: frame ids (T,) int64 and keypoints (T, 1, 20, 3) float32.

    Raises:
        DataError: empty, a line without 61 values, non-numeric or non-finite values.
    """
    path = Path(path)
    lines = [line for line in read_text(path).splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: empty sequence (no frame lines)")
    if len(lines) > MAX_FRAMES:
        raise DataError(f"{path}: more than {MAX_FRAMES} frames")
    tokens = []
    for i, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 1 + 3 * _JOINTS:
            raise DataError(f"{path}: line {i} has {len(parts)} values; expected 61 (frame id + 20 x 'x y z')")
        tokens.extend(parts)
    try:
        values = np.array(tokens, dtype=np.float64).reshape(len(lines), 1 + 3 * _JOINTS)
    except ValueError:
        raise DataError(f"{path}: non-numeric value in the frame lines") from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}: values contain NaN or inf")
    ids = values[:, 0]
    if np.any(ids != np.round(ids)) or np.any(ids < 0) or np.any(ids > 2**53):
        raise DataError(f"{path}: frame ids must be non-negative integers (at most 2**53)")
    x = finite_float32(values[:, 1:], str(path), "joint values")
    return ids.astype(np.int64), check_keypoints(x.reshape(-1, 1, _JOINTS, 3), str(path), get_layout("kinect-v1"), 3)


def read_utkinect_labels(path: str | Path) -> dict[str, list[tuple[str, float, float]]]:
    """Parse a UTKinect label file.

    Returns:
        ``{"s01_e01": [(action_key, first_id, last_id), ...], ...}``; a missing segment has NaN ids.

    Raises:
        DataError: a line that is neither a sequence header nor ``action: first last`` with a known
            action, or a segment before any header.
    """
    path = Path(path)
    out: dict[str, list[tuple[str, float, float]]] = {}
    current: str | None = None
    for i, raw in enumerate(read_text(path).splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if _SEQ.fullmatch(line):
            current = line
            if current in out:
                raise DataError(f"{path}: line {i}: sequence {current} is listed twice")
            out[current] = []
            continue
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or len(parts) != 2:
            raise DataError(f"{path}: line {i}: expected 'sSS_eEE' or 'action: first last', got {line[:60]!r}")
        if current is None:
            raise DataError(f"{path}: line {i}: a segment before any 'sSS_eEE' header")
        if key.strip() not in UTKINECT_ACTIONS:
            raise DataError(f"{path}: line {i}: unknown action {key.strip()[:30]!r}; expected one of "
                            f"{', '.join(UTKINECT_ACTIONS)}")
        try:
            first, last = float(parts[0]), float(parts[1])
        except ValueError:
            raise DataError(f"{path}: line {i}: frame ids must be numbers, got {rest.strip()[:40]!r}") from None
        if math.isinf(first) or math.isinf(last):
            raise DataError(f"{path}: line {i}: infinite frame id")
        out[current].append((key.strip(), first, last))
    if not out:
        raise DataError(f"{path}: no sequence in the label file")
    return out


def _work(unit: tuple[str, str, list[tuple[str, float, float]]]) -> list[ClipRecord | Skipped]:
    path, seq, segments = unit
    ids, x = read_utkinect_sequence(path)
    subject = int(_SEQ.fullmatch(seq).group(1))  # type: ignore[union-attr]
    split = "train" if subject % 2 == 1 else "test"
    labels = list(UTKINECT_ACTIONS)
    out: list[ClipRecord | Skipped] = []
    for key, first, last in segments:
        name = f"{seq}_{key}"
        if math.isnan(first) or math.isnan(last):
            out.append(Skipped(name, "segment not annotated (NaN boundaries in the label file)"))
            continue
        keep = (ids >= first) & (ids <= last)
        if not keep.any():
            out.append(Skipped(name, f"no frame with id in [{first:g}, {last:g}]"))
            continue
        out.append(ClipRecord(name, x[keep], labels.index(key), (split,)))
    return out


def plan_utkinect(src: str | Path, *, boundaries: str = "original") -> SourcePlan:
    """Plan the conversion of the UTKinect-Action3D folder.

    Args:
        src: Folder with ``joints_sSS_eEE.txt`` and the label files.
        boundaries: ``original`` (``actionLabel.txt``) or ``modified`` (``actionLabel_modified.txt``).
    """
    src = Path(src)
    if boundaries not in LABEL_FILES:
        raise DataError(f"UTKinect boundaries {boundaries!r} is not valid; valid values are "
                        f"{', '.join(LABEL_FILES)}")
    if not src.is_dir():
        raise DataError(f"{src}: not a directory; expected the UTKinect folder (joints_sSS_eEE.txt + labels)")
    label_file = src / LABEL_FILES[boundaries]
    if not label_file.is_file():
        raise DataError(f"{label_file}: missing; the UTKinect folder needs {LABEL_FILES[boundaries]}")
    labels = read_utkinect_labels(label_file)
    units = []
    for seq, segments in labels.items():
        path = src / f"joints_{seq}.txt"
        if not path.is_file():
            raise DataError(f"{path}: missing; {label_file.name} lists sequence {seq}")
        units.append((str(path), seq, segments))
    return SourcePlan(
        format="utkinect",
        layout=get_layout("kinect-v1"),
        channels=["x", "y", "z"],
        class_names=list(UTKINECT_CLASS_NAMES),
        num_persons=1,
        units=units,
        work=partial(_work),
        splits=["train", "test"],
        source={"format": "utkinect", "path": str(src.resolve()), "boundaries": boundaries,
                "label_file": label_file.name, "protocol": "cross-subject: odd subjects train, even test"},
    )


FORMAT = DatasetFormat(
    name="utkinect",
    help="UTKinect-Action3D sequences cut into action segments; cross-subject split",
    src_help="folder with joints_sSS_eEE.txt and actionLabel.txt",
    plan=plan_utkinect,
    options=(
        ReaderOption("boundaries", str, "original",
                     "segment boundaries from actionLabel.txt (original) or actionLabel_modified.txt",
                     choices=tuple(LABEL_FILES)),
    ),
)
