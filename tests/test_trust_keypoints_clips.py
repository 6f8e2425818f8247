"""`stgcn prepare keypoints` on malformed clip files: bad `split` / `fps` are one-line errors naming the file; an
all-zero clip is skipped and counted (as the Kinetics and MSR readers skip clips without a skeleton)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stgcn.cli.main import main
from stgcn.data.readers.keypoints import save_keypoints


def _folder(tmp_path, bad: dict | None = None, zero: bool = False):
    src = tmp_path / "clips"
    rng = np.random.default_rng(0)
    for i in range(4):
        x = rng.uniform(0.1, 1.0, (12, 1, 18, 2)).astype(np.float32)
        save_keypoints(src / f"c{i}.json", x, layout="openpose-18", label=i % 2, split="train" if i < 2 else "test")
    if zero:
        save_keypoints(src / "z.json", np.zeros((12, 1, 18, 2), np.float32), layout="openpose-18", label=0,
                       split="train")
    if bad is not None:
        path = src / "c0.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **bad}))
    return src


@pytest.mark.parametrize("bad, reason", [({"split": 3}, "'split' must be a split name"),
                                         ({"fps": float("nan")}, "'fps' must be a finite frame rate"),
                                         ({"fps": 0}, "'fps' must be a finite frame rate")])
def test_bad_field_is_one_line_naming_the_file(tmp_path, capsys, bad, reason):
    src = _folder(tmp_path, bad)
    assert main(["prepare", "keypoints", str(src), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "c0.json" in err[0] and reason in err[0]
    assert not (tmp_path / "out").exists()


def test_all_zero_clip_is_skipped_and_counted(tmp_path, capsys):
    src = _folder(tmp_path, zero=True)
    assert main(["prepare", "keypoints", str(src), str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "4 clips" in out and "skipped 1" in out


def test_stgcn_graph_escapes_names_from_a_layout_file(tmp_path, capsys):
    layout = tmp_path / "evil.json"
    layout.write_text(json.dumps({"name": "evil\x1b[31m", "joints": ["a\nerror: forged", "b", "c"],
                                  "edges": [[0, 1], [1, 2]], "center": 0}))
    assert main(["graph", str(layout)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\nerror: forged" not in out
    assert "evil\\x1b[31m" in out and "a\\nerror: forged" in out
