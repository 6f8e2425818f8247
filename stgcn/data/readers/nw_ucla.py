"""Northwestern-UCLA Multiview Action3D, as the CTR-GCN ``all_sqe`` JSON release.

One JSON per clip: ``{"file_name": "a01_s01_e00_v01", "skeletons": [T][20][3]}`` (Kinect v1 joints, x y z
in metres). The name holds the action, subject, episode and view.

Standard protocol (CTR-GCN and most later papers): train on views 1 and 2 (1,020 clips), test on view 3
(464 clips); the ten action ids a01-a06, a08, a09, a11, a12 become labels 0-9.
"""

from __future__ import annotations

import re
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
    numeric_array,
    read_json,
)
from stgcn.errors import DataError
from stgcn.graph.layouts import get_layout

__all__ = [
    "NW_UCLA_ACTIONS", "NW_UCLA_CLASS_NAMES", "parse_nw_ucla_name", "read_nw_ucla_file", "plan_nw_ucla", "FORMAT",
]

# action id -> name, in label order (Wang et al., CVPR 2014)
NW_UCLA_ACTIONS: dict[int, str] = {
    1: "pick up with one hand", 2: "pick up with two hands", 3: "drop trash", 4: "walk around",
    5: "sit down", 6: "stand up", 8: "donning", 9: "doffing", 11: "throw", 12: "carry",
}
NW_UCLA_CLASS_NAMES = list(NW_UCLA_ACTIONS.values())
_LABEL = {action: i for i, action in enumerate(NW_UCLA_ACTIONS)}
_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)")


def parse_nw_ucla_name(name: str) -> dict[str, int]:
    """``"a01_s02_e03_v01"`` -> ``{"action": 1, "subject": 2, "episode": 3, "view": 1}``.

    Raises:
        DataError: the name does not follow the pattern.
    """
    m = _NAME.fullmatch(name)
    if m is None:
        raise DataError(f"{name}: not a NW-UCLA clip name; expected aAA_sSS_eEE_vVV (e.g. a01_s01_e00_v01)")
    action, subject, episode, view = (int(g) for g in m.groups())
    return {"action": action, "subject": subject, "episode": episode, "view": view}


def read_nw_ucla_file(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one clip file.

    Returns:
        ``(keypoints, meta)``; meta holds the name fields (action, subject, episode, view) and ``name``.

    Shape:
        keypoints: (T, 1, 20, 3) float32
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or "skeletons" not in data:
        raise DataError(f"{path}: expected a JSON object with 'file_name' and 'skeletons' ([T][20][3])")
    name = data.get("file_name", path.stem)
    if not isinstance(name, str):
        raise DataError(f"{path}: 'file_name' must be a string")
    arr = numeric_array(data["skeletons"], str(path), "skeletons")
    if arr.ndim != 3 or arr.shape[1:] != (20, 3):
        raise DataError(f"{path}: skeletons have shape {tuple(arr.shape)}; expected (T, 20, 3)")
    x = check_keypoints(arr[:, None], str(path), get_layout("kinect-v1"), 3)
    meta: dict[str, Any] = {"name": name}
    if _NAME.fullmatch(name):
        meta.update(parse_nw_ucla_name(name))
    return x, meta


def _work(paths: list[str], *, test_view: int) -> list[ClipRecord | Skipped]:
    out: list[ClipRecord | Skipped] = []
    for p in paths:
        x, meta = read_nw_ucla_file(p)
        info = parse_nw_ucla_name(Path(p).stem)
        if meta["name"] != Path(p).stem:
            raise DataError(f"{p}: file_name {meta['name']!r} does not match the file name")
        if info["action"] not in _LABEL:
            raise DataError(f"{p}: action a{info['action']:02d} is not a NW-UCLA action; expected one of "
                            + ", ".join(f"a{a:02d}" for a in NW_UCLA_ACTIONS))
        split = "test" if info["view"] == test_view else "train"
        out.append(ClipRecord(Path(p).stem, x, _LABEL[info["action"]], (split,)))
    return out


def plan_nw_ucla(src: str | Path, *, test_view: int = 3, chunk: int = 32) -> SourcePlan:
    """Plan the conversion of a folder of NW-UCLA JSON files (e.g. ``all_sqe``).

    Args:
        src: The folder.
        test_view: View held out for testing (standard: 3); the other views form ``train``.
        chunk: Files per work unit.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: not a directory; expected the NW-UCLA folder of aAA_sSS_eEE_vVV.json files")
    files = sorted(p for p in src.glob("*.json") if _NAME.fullmatch(p.stem))
    if not files:
        raise DataError(f"{src}: no NW-UCLA clip files (aAA_sSS_eEE_vVV.json) found")
    if test_view not in (1, 2, 3):
        raise DataError(f"test view {test_view} is not a NW-UCLA view; valid views are 1, 2, 3")
    return SourcePlan(
        format="nw-ucla",
        layout=get_layout("kinect-v1"),
        channels=["x", "y", "z"],
        class_names=list(NW_UCLA_CLASS_NAMES),
        num_persons=1,
        units=chunked([str(f) for f in files], chunk),
        work=partial(_work, test_view=test_view),
        splits=["train", "test"],
        source={"format": "nw-ucla", "path": str(src.resolve()), "test_view": test_view,
                "protocol": f"cross-view: train views {[v for v in (1, 2, 3) if v != test_view]}, "
                            f"test view {test_view}"},
    )


FORMAT = DatasetFormat(
    name="nw-ucla",
    help="Northwestern-UCLA (CTR-GCN all_sqe JSON release); train views 1-2, test view 3",
    src_help="folder of aAA_sSS_eEE_vVV.json files",
    plan=plan_nw_ucla,
    options=(
        ReaderOption("test_view", int, 3, "held-out view (default 3)", choices=(1, 2, 3)),
        ReaderOption("chunk", int, 32, "files per work unit", minimum=1, cli=False),
    ),
)
