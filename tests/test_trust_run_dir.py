"""Run-directory durability: metrics lines are never torn or repeated, stale temp files are swept."""

from __future__ import annotations

import errno
import json

import pytest

from stgcn.engine import run_dir as rd
from stgcn.engine.run_dir import append_jsonl, truncate_jsonl
from stgcn.engine.train import train
from stgcn.utils import atomic
from stgcn.utils.atomic import OutputError
from tests.train_utils import tiny_config


def _epochs(path):
    return [json.loads(x)["epoch"] for x in path.read_text().splitlines()]


def test_append_is_atomic_and_replaces_a_repeated_epoch(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"epoch": 1, "a": 1})
    append_jsonl(path, {"epoch": 2, "a": 2})
    append_jsonl(path, {"epoch": 2, "a": 3})
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"epoch": 1, "a": 1}, {"epoch": 2, "a": 3}]


def test_full_disk_keeps_the_previous_metrics(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"epoch": 1})
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OutputError, match="metrics.jsonl: cannot write .No space left on device"):
        append_jsonl(path, {"epoch": 2})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


def test_repair_drops_torn_repeated_and_later_lines(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"epoch": 1, "x": 0}\n{"epoch": 1, "x": 1}\n{"epoch": 2}\n[3]\n\xff\xfe{"epoch": 3, "tr')
    truncate_jsonl(path, 2)
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"epoch": 1, "x": 1}, {"epoch": 2}]
    assert "dropped 2" in caplog.text
    truncate_jsonl(path, 0)
    assert path.read_text() == ""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("data") / "synthetic"


def test_torn_metrics_and_stale_temps_are_repaired_on_resume(store, tmp_path):
    cfg = tiny_config(store, train={"epochs": 2})
    run = tmp_path / "run"
    train(cfg, run, stop_after=1)
    metrics = run / "metrics.jsonl"
    assert _epochs(metrics) == [1]
    # a killed second epoch: its line written twice and torn, and temp files of last.pt / final.pt left behind
    line = metrics.read_text().splitlines()[0].replace('"epoch": 1', '"epoch": 2')
    metrics.write_text(metrics.read_text() + line + "\n" + metrics.read_text() + line[:20])
    (run / ".last.pt.k1l2.pt").write_bytes(b"partial")
    (run / ".final.pt.zz.pt").write_bytes(b"partial")
    result = train(cfg, run, resume=True)
    assert result.finished and _epochs(metrics) == [1, 2]
    assert not list(run.glob(".*"))


def test_a_new_run_starts_fresh_metrics(store, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 1, "tor')  # killed before its first last.pt
    train(tiny_config(store, train={"epochs": 1}), run)
    assert _epochs(run / "metrics.jsonl") == [1]
    assert rd.read_train_state(run / "last.pt")["epoch"] == 1
