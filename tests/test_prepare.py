"""``stgcn prepare`` / ``stgcn info`` end to end, parallel == serial, bounded streaming, atomicity."""

from __future__ import annotations

import json
import logging
import shutil
import sys

import numpy as np
import pytest

from stgcn.cli import main
from stgcn.data.prepare import _ordered_map, prepare
from stgcn.errors import ConfigError
from tests.source_writers import msr_text


def _msr_folder(root, n=6, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir()
    for i in range(n):
        x = rng.normal(size=(int(rng.integers(2, 9)), 20, 3))
        (root / f"a{i % 3 + 1:02d}_s{i % 4 + 1:02d}_e01_skeleton3D.txt").write_text(msr_text(x))
    return root


def test_cli_prepare_and_info_nw_ucla(shared_data, tmp_path, capsys):
    out = tmp_path / "ucla"
    assert main(["prepare", "nw-ucla", str(shared_data / "nw_ucla" / "all_sqe"), str(out), "--no-progress",
                 "--dtype", "float16", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "1484 clips (train 1020, test 464), 10 classes, layout kinect-v1" in printed
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "kinect-v1 (20 joints), channels x,y,z, persons 1, dtype float16" in info
    assert "min 1  median 31  mean 39.4  max 201" in info
    assert "pick up with one hand" in info and "total" in info
    assert main(["info", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["splits"] == {"train": 1020, "test": 464} and data["per_class"]["carry"]["test"] == 45
    # float16 store: well under a quarter of the original padded layout
    padded = 1484 * 3 * 300 * 20 * 2 * 4
    assert data["bytes"] < padded / 4


def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys):
    src = tmp_path / "ucla"
    src.mkdir()
    (src / "a01_s01_e00_v01.json").write_text(json.dumps({"file_name": "a01_s01_e00_v01",
                                                          "skeletons": [[[0.0, 0.0, 1.0]] * 20] * 3}))
    (src / "a01_s01_e01_v01.json").write_text('{"file_name": "a01_s01_e01_v01", "skeletons": [[[0.0, 0.0')
    assert main(["prepare", "nw-ucla", str(src), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "a01_s01_e01_v01.json: not valid JSON" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ucla"]     # no store, no partial directory
    assert main(["info", str(tmp_path / "nothing")]) == 2
    assert "not a dataset store directory" in capsys.readouterr().err


def test_unknown_format_and_option():
    with pytest.raises(ConfigError, match="valid formats are nw-ucla, msr-action3d, utkinect, ntu, kinetics-json"):
        prepare("openpose", ".", "x")
    with pytest.raises(ConfigError, match="format 'nw-ucla'.*test_split"):
        prepare("nw-ucla", ".", "x", test_split=1)


def test_parallel_prepare_equals_serial(tmp_path):
    src = _msr_folder(tmp_path / "msr", n=12)
    a = prepare("msr-action3d", src, tmp_path / "a", workers=0)
    b = prepare("msr-action3d", src, tmp_path / "b", workers=2, chunk=2)
    assert a.names == b.names and a.manifest["splits"] == b.manifest["splits"]
    assert (tmp_path / "a" / "frames.bin").read_bytes() == (tmp_path / "b" / "frames.bin").read_bytes()


def test_ordered_map_keeps_order_and_bounds_work_in_flight():
    pulled = []

    def units():
        for i in range(40):
            pulled.append(i)
            yield i

    results = []
    for r in _ordered_map(abs, units(), workers=2, window=4):
        results.append(r)
        assert len(pulled) <= len(results) + 4            # never more than `window` units ahead
    assert results == list(range(40))


def test_progress_bar_optional(tmp_path, monkeypatch, caplog, capsys):
    src = _msr_folder(tmp_path / "msr")
    pytest.importorskip("tqdm")
    prepare("msr-action3d", src, tmp_path / "a", workers=0, progress=True)
    assert "prepare msr-action3d" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm", None)           # as if the extra were not installed
    with caplog.at_level(logging.WARNING):
        store = prepare("msr-action3d", src, tmp_path / "b", workers=0, progress=True)
    assert len(store) == 6
    assert "no progress bar: tqdm is not installed (pip install 'stgcn[data]')" in caplog.text


def test_overwrite_replaces_atomically(tmp_path, capsys):
    src = _msr_folder(tmp_path / "msr")
    out = tmp_path / "s"
    assert main(["prepare", "msr-action3d", str(src), str(out), "--no-progress"]) == 0
    assert main(["prepare", "msr-action3d", str(src), str(out), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    shutil.copy(src / "a01_s01_e01_skeleton3D.txt", src / "a05_s07_e01_skeleton3D.txt")
    assert main(["prepare", "msr-action3d", str(src), str(out), "--no-progress", "--overwrite"]) == 0
    assert "7 clips" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msr", "s"]
