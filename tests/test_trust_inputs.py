"""Input hygiene of the shared readers: special files, symlink loops, sizes, UTF-8, nesting depth."""

from __future__ import annotations

import os

import pytest

from stgcn.data.readers.base import read_class_names, read_json, read_text
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import load_layout
from stgcn.utils.files import read_file_bytes


def _fifo(tmp_path, name):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / name
    os.mkfifo(path)
    return path


def test_fifo_is_refused_without_blocking(tmp_path):
    path = _fifo(tmp_path, "clip.json")
    with pytest.raises(DataError, match=r"clip\.json: cannot read file \(it is a FIFO"):
        read_json(path)
    with pytest.raises(ConfigError, match="it is a FIFO"):
        load_layout(_fifo(tmp_path, "layout.json"))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_behind_a_symlink_is_not_read(tmp_path):
    link = tmp_path / "names.txt"
    link.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="character device"):
        read_class_names(link)


def test_symlink_loop_is_named(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(DataError, match=r"a\.json: cannot read file \(a symlink loop\)"):
        read_json(a)
    with pytest.raises(ConfigError, match="symlink loop"):
        load_layout(a)


def test_directory_and_size_limit(tmp_path):
    with pytest.raises(DataError, match="it is a directory"):
        read_text(tmp_path)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 100)
    with pytest.raises(DataError, match="100 bytes is larger than the 10-byte limit"):
        read_file_bytes(big, max_bytes=10)
    assert read_file_bytes(big, max_bytes=100) == b"x" * 100


def test_non_utf8_files_are_one_line(tmp_path):
    for name in ("layout.json", "layout.yaml"):
        path = tmp_path / name
        path.write_bytes(b'{"joints": ["\xff\xfe"]}')
        with pytest.raises(ConfigError, match=f"{name}: not UTF-8 text") as info:
            load_layout(path)
        assert "\n" not in str(info.value)
    names = tmp_path / "names.txt"
    names.write_bytes(b"walk\n\xe9cole\n")
    with pytest.raises(DataError, match=r"names\.txt: not UTF-8 text \(bad byte at offset 5\)"):
        read_class_names(names)


def test_deep_nesting_never_raises_recursion_error(tmp_path):
    deep_json = tmp_path / "deep.json"
    deep_json.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="nested more than 100 levels"):
        read_json(deep_json)
    with pytest.raises(ConfigError, match="nested more than 100 levels"):
        load_layout(deep_json)
    medium = tmp_path / "medium.json"
    medium.write_text("[" * 500 + "]" * 500)
    with pytest.raises(DataError, match="nested more than 100 levels"):
        read_json(medium)
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match=r"deep\.yaml: nested more than 100 levels") as info:
        load_layout(deep_yaml)
    assert "\n" not in str(info.value)


def test_invalid_yaml_layout_is_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("joints: [a, b\nedges: {")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML") as info:
        load_layout(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("loader", ["stgcn", "original"])
def test_checkpoint_readers_refuse_a_fifo_without_blocking(tmp_path, loader):
    from stgcn.convert.original import load_original_state_dict
    from stgcn.engine.checkpoint import load_checkpoint
    from stgcn.errors import CheckpointError

    path = _fifo(tmp_path, "m.pt")
    with pytest.raises(CheckpointError, match=r"m\.pt: not a regular file"):
        (load_checkpoint if loader == "stgcn" else load_original_state_dict)(path)


def test_read_npy_checks_its_header_before_allocating(tmp_path):
    import io

    import numpy as np

    from stgcn.utils.files import read_npy

    b = io.BytesIO()
    np.save(b, np.zeros((4, 18, 3), np.float32))
    data = b.getvalue()
    end = data.index(b"\n")
    header = data[:end].replace(b"(4, 18, 3)", b"(10000000000, 18, 3)")
    lie = header[: end - (len(header) - end)].ljust(end) + data[end:]  # same header length
    (tmp_path / "lie.npy").write_bytes(lie)
    with pytest.raises(DataError, match=r"lie\.npy: .*declares shape \(10000000000, 18, 3\)"):
        read_npy(tmp_path / "lie.npy")
    b = io.BytesIO()
    np.save(b, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "obj.npy").write_bytes(b.getvalue())
    with pytest.raises(DataError, match="Python objects"):
        read_npy(tmp_path / "obj.npy")
    with pytest.raises(DataError, match="it is a FIFO"):
        read_npy(_fifo(tmp_path, "f.npy"))
    (tmp_path / "ok.npy").write_bytes(data)
    assert read_npy(tmp_path / "ok.npy").shape == (4, 18, 3)
