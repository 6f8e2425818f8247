"""Atomic writes: all-or-nothing, plain-file permissions, no temporary left behind."""

from __future__ import annotations

import os
import stat

import pytest

from stgcn.utils.atomic import atomic_open, atomic_path, atomic_write_text


def test_replaces_target_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_failure_keeps_previous_content(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target, "wb") as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "pic.png") as tmp:
            assert tmp.suffix == ".png" and tmp.parent == tmp_path
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "pic.png").stat().st_mode) == 0o644


def test_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_open(tmp_path / "x", "a"):
            pass


def test_a_later_writer_removes_the_temporary_files_of_dead_writers(tmp_path):
    import subprocess
    import sys

    from stgcn.utils.atomic import atomic_write_text

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    out = tmp_path / "model.onnx"
    left = tmp_path / f".model.onnx.{dead_pid}.abc123.onnx"  # what a killed export leaves
    live = tmp_path / f".model.onnx.{os.getppid()}.def456.onnx"  # a writer still running
    legacy = tmp_path / ".model.onnx.ghi789.onnx"  # no pid in the name: left alone
    other = tmp_path / f".other.onnx.{dead_pid}.abc.onnx"  # another output's
    for p in (left, live, legacy, other):
        p.write_text("partial")
    atomic_write_text(out, "done")
    assert out.read_text() == "done"
    assert not left.exists() and live.exists() and legacy.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name, legacy.name, other.name])
