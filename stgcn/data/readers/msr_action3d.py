"""MSR Action3D (Li, Zhang, Liu, CVPR Workshops 2010): ``aAA_sSS_eEE_skeleton3D.txt`` files.

One line per joint, frame-major, ``x y z confidence`` (20 lines per frame), joints in the dataset's own
order (layout ``kinect-v1-msr``). 20 actions, 10 subjects, 2-3 episodes each.

Protocols:

* cross-subject: odd subjects (1, 3, 5, 7, 9) train, even subjects test;
* over all 20 actions (``action_set="all"``) or within one of the three 8-action subsets AS1/AS2/AS3
  (Li et al. 2010; the sets as in Vemulapalli et al.'s ``protocol_vemulapalli2014/tr_te_splits.mat``),
  where labels are re-numbered 0-7 in action order.

Lost tracking: besides the all-zero ``a13_s09_e02``, 19 sequences (mostly "bend" and "pickup and throw", where
the tracker loses the bent-over body) hold 1,075 all-zero frames: at the start (``a07_s04_e01``: 36 of 45), in
the middle (``a20_s02_e03``: 33 of 53) or at the end (``a13_s09_e03``: 740 of 936, the "936-frame" sequence is
196 real frames and zero padding). An all-zero frame is not a pose, so the conversion drops those frames (the
clip keeps its real frames in order); without this, temporal resizing samples the zeros and the model sees a
skeleton collapsing to the origin. The sequence ``a13_s09_e02`` is all zeros (a known defect of the release): an
all-zero sequence is skipped with a warning and counted in the manifest.

Files: ``all`` (566 usable sequences) or ``vemulapalli2014``: the 557 that Vemulapalli et al. (CVPR 2014) used
(their ``files_used.mat``), i.e. without the 10 sequences listed in :data:`MSR_VEMULAPALLI_EXCLUDED` (the
all-zero one, the mostly-lost ones and a few others).
"""

from __future__ import annotations

import re
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
    finite_float32,
    read_text,
)
from stgcn.errors import DataError
from stgcn.graph.layouts import get_layout

__all__ = ["MSR_ACTION_NAMES", "MSR_ACTION_SETS", "MSR_VEMULAPALLI_EXCLUDED", "parse_msr_name",
           "read_msr_action3d_file", "drop_lost_frames", "plan_msr_action3d", "FORMAT"]

# action names in id order (a01..a20), as protocol_vemulapalli2014/action_names.mat
MSR_ACTION_NAMES: tuple[str, ...] = (
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw", "draw X",
    "draw tick", "draw circle", "hand clap", "two hand wave", "side boxing", "bend", "forward kick",
    "side kick", "jogging", "tennis swing", "tennis serve", "golf swing", "pickup and throw",
)
# 1-based action ids of the 8-action subsets
MSR_ACTION_SETS: dict[str, tuple[int, ...]] = {
    "AS1": (2, 3, 5, 6, 10, 13, 18, 20),
    "AS2": (1, 4, 7, 8, 9, 11, 12, 14),
    "AS3": (6, 14, 15, 16, 17, 18, 19, 20),
}
ACTION_SET_CHOICES = ("all", *MSR_ACTION_SETS)
# the 10 of the 567 files that protocol_vemulapalli2014/files_used.mat leaves out
MSR_VEMULAPALLI_EXCLUDED: frozenset[str] = frozenset({
    "a02_s03_e02", "a04_s03_e01", "a07_s04_e01", "a13_s09_e01", "a13_s09_e02", "a13_s09_e03", "a14_s03_e01",
    "a20_s07_e01", "a20_s07_e03", "a20_s10_e03",
})
FILES_CHOICES = ("all", "vemulapalli2014")
_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)")
_FILE = re.compile(r"(a\d+_s\d+_e\d+)_skeleton3D")
_JOINTS = 20


def parse_msr_name(name: str) -> dict[str, int]:
    """``"a01_s02_e03"`` (or the file stem ``a01_s02_e03_skeleton3D``) -> action, subject, episode.

    Raises:
        DataError: not an MSR Action3D name.
    """
    m = _NAME.fullmatch(name.removesuffix("_skeleton3D"))
    if m is None:
        raise DataError(f"{name}: not an MSR Action3D name; expected aAA_sSS_eEE (e.g. a01_s01_e01)")
    action, subject, episode = (int(g) for g in m.groups())
    return {"action": action, "subject": subject, "episode": episode}


def read_msr_action3d_file(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one ``*_skeleton3D.txt`` file.

    Returns:
        ``(keypoints, meta)``; meta has ``confidence`` (T, 20) and the name fields when the name parses.

    Shape:
        keypoints: (T, 1, 20, 3) float32

    Raises:
        DataError: empty, truncated (not a multiple of 20 joint lines), a line without 4 values, or
            non-numeric / non-finite values.
    """
    path = Path(path)
    lines = [line for line in read_text(path).splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: empty clip (no joint lines)")
    if len(lines) % _JOINTS:
        raise DataError(f"{path}: {len(lines)} joint lines is not a multiple of {_JOINTS} (truncated file?)")
    if len(lines) // _JOINTS > MAX_FRAMES:
        raise DataError(f"{path}: more than {MAX_FRAMES} frames")
    tokens = []
    for i, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 4:
            raise DataError(f"{path}: joint line {i} has {len(parts)} values; expected 4 (x y z confidence)")
        tokens.extend(parts)
    try:
        values = np.array(tokens, dtype=np.float64).reshape(-1, _JOINTS, 4)
    except ValueError:
        raise DataError(f"{path}: non-numeric value in the joint lines") from None
    values = finite_float32(values, str(path), "keypoints")
    meta: dict[str, Any] = {"name": path.stem.removesuffix("_skeleton3D"), "confidence": values[:, :, 3].copy()}
    if _NAME.fullmatch(meta["name"]):
        meta.update(parse_msr_name(meta["name"]))
    x = check_keypoints(np.ascontiguousarray(values[:, None, :, :3]), str(path), get_layout("kinect-v1-msr"), 3)
    return x, meta


def drop_lost_frames(x: np.ndarray) -> np.ndarray:
    """Remove the all-zero frames (lost tracking) of a clip, keeping the others in order.

    Shape:
        x: (T, M, V, C) -> (T', M, V, C), T' = the number of frames with any non-zero value
    """
    return x[np.any(x != 0, axis=(1, 2, 3))]


def _work(paths: list[str], *, actions: tuple[int, ...]) -> list[ClipRecord | Skipped]:
    label_of = {a: i for i, a in enumerate(actions)}
    out: list[ClipRecord | Skipped] = []
    for p in paths:
        x, meta = read_msr_action3d_file(p)
        name = meta["name"]
        x = drop_lost_frames(x)
        if not len(x):
            out.append(Skipped(name, "all-zero sequence (a known defect of the MSR Action3D release)"))
            continue
        info = parse_msr_name(name)
        split = "train" if info["subject"] % 2 == 1 else "test"
        out.append(ClipRecord(name, x, label_of[info["action"]], (split,)))
    return out


def plan_msr_action3d(src: str | Path, *, action_set: str = "all", files: str = "all",
                      chunk: int = 32) -> SourcePlan:
    """Plan the conversion of a folder of MSR Action3D skeleton files.

    Args:
        src: Folder of ``aAA_sSS_eEE_skeleton3D.txt`` files.
        action_set: ``all`` (20 actions) or ``AS1`` / ``AS2`` / ``AS3`` (8 actions each).
        files: ``all`` or ``vemulapalli2014`` (the 557 files of Vemulapalli et al. 2014).
        chunk: Files per work unit.
    """
    src = Path(src)
    if action_set not in ACTION_SET_CHOICES:
        raise DataError(f"MSR Action3D action set {action_set!r} is not valid; valid sets are "
                        f"{', '.join(ACTION_SET_CHOICES)}")
    if files not in FILES_CHOICES:
        raise DataError(f"MSR Action3D file list {files!r} is not valid; valid lists are {', '.join(FILES_CHOICES)}")
    if not src.is_dir():
        raise DataError(f"{src}: not a directory; expected the folder of aAA_sSS_eEE_skeleton3D.txt files")
    actions = tuple(range(1, 21)) if action_set == "all" else MSR_ACTION_SETS[action_set]
    paths = []
    for p in sorted(src.glob("*_skeleton3D.txt")):
        m = _FILE.fullmatch(p.stem)
        if m is None:
            continue
        info = parse_msr_name(m.group(1))
        if not 1 <= info["action"] <= 20:
            raise DataError(f"{p}: action a{info['action']:02d} is not an MSR Action3D action (a01-a20)")
        if info["action"] in actions and not (files == "vemulapalli2014" and m.group(1) in MSR_VEMULAPALLI_EXCLUDED):
            paths.append(str(p))
    if not paths:
        raise DataError(f"{src}: no MSR Action3D files (aAA_sSS_eEE_skeleton3D.txt) found")
    return SourcePlan(
        format="msr-action3d",
        layout=get_layout("kinect-v1-msr"),
        channels=["x", "y", "z"],
        class_names=[MSR_ACTION_NAMES[a - 1] for a in actions],
        num_persons=1,
        units=chunked(paths, chunk),
        work=partial(_work, actions=actions),
        splits=["train", "test"],
        source={"format": "msr-action3d", "path": str(src.resolve()), "action_set": action_set,
                "actions": list(actions), "files": files, "lost_frames": "all-zero frames dropped",
                "protocol": "cross-subject: odd subjects train, even subjects test"},
    )


FORMAT = DatasetFormat(
    name="msr-action3d",
    help="MSR Action3D skeleton txt files; cross-subject split (odd subjects train)",
    src_help="folder of aAA_sSS_eEE_skeleton3D.txt files",
    plan=plan_msr_action3d,
    options=(
        ReaderOption("action_set", str, "all", "all 20 actions or one 8-action subset (default all)",
                     choices=ACTION_SET_CHOICES),
        ReaderOption("files", str, "all", "all files or the 557 of Vemulapalli et al. 2014 (default all)",
                     choices=FILES_CHOICES),
        ReaderOption("chunk", int, 32, "files per work unit", minimum=1, cli=False),
    ),
)
