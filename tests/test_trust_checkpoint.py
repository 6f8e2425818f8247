"""Checkpoint integrity: zip CRCs, the content hash, finite weights; ENOSPC/EROFS/EISDIR name the output."""

from __future__ import annotations

import errno
import zipfile

import pytest
import torch

from stgcn.convert.original import load_original_state_dict
from stgcn.engine.checkpoint import load_checkpoint, save_checkpoint
from stgcn.errors import CheckpointError, StgcnError
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.stgcn import STGCN
from stgcn.utils import atomic
from stgcn.utils.atomic import OutputError, atomic_path, atomic_write_text


def tiny() -> STGCN:
    torch.manual_seed(0)
    return STGCN(STGCNConfig(num_classes=3, in_channels=2, graph=GraphConfig("coco-17"), blocks=((8, 1), (16, 2))))


def _data_span(path) -> tuple[int, int]:
    """Byte offsets of the largest stored member's data in a zip file."""
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.compress_size)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        n, m = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    start = info.header_offset + 30 + n + m
    return start, start + info.compress_size


def _one_line(e: BaseException, name: str) -> None:
    assert name in str(e) and "\n" not in str(e)


def test_flipped_bytes_are_caught_by_the_zip_crc(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny())
    start, end = _data_span(path)
    data = bytearray(path.read_bytes())
    for i in range(start + 8, min(start + 72, end)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC") as info:
        load_checkpoint(path)
    _one_line(info.value, "m.pt")


def test_truncated_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny())
    data = path.read_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 30):
        path.write_bytes(data[:n])
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        _one_line(info.value, "m.pt")


def test_content_hash_catches_a_rewritten_weight(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny())
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw["sha256"], str) and len(raw["sha256"]) == 64
    raw["state_dict"]["fc.weight"][0, 0] += 1.0  # a valid zip, a valid model: only the hash tells
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="sha256") as info:
        load_checkpoint(path)
    _one_line(info.value, "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["config"]["dropout"] = 0.3
    raw["state_dict"]["fc.weight"][0, 0] -= 1.0
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)


def test_old_checkpoint_without_hash_loads(tmp_path, caplog):
    path = tmp_path / "m.pt"
    model = tiny().eval()
    save_checkpoint(path, model)
    raw = torch.load(path, weights_only=True)
    del raw["sha256"]
    torch.save(raw, path)
    with caplog.at_level("DEBUG", logger="stgcn.engine.checkpoint"):
        ck = load_checkpoint(path)
    assert "no content hash" in caplog.text
    x = torch.randn(1, 2, 8, 17, 1)
    with torch.no_grad():
        torch.testing.assert_close(ck.model(x), model(x))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_an_error(tmp_path, value):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny())
    raw = torch.load(path, weights_only=True)
    del raw["sha256"]
    raw["state_dict"]["fc.weight"][1, 2] = value
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="'fc.weight' holds NaN or infinite"):
        load_checkpoint(path)
    model = tiny()
    with torch.no_grad():
        model.fc.weight.fill_(value)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        save_checkpoint(tmp_path / "nan.pt", model)
    assert not (tmp_path / "nan.pt").exists()


def test_original_import_checks_crc_and_finite(tmp_path):
    path = tmp_path / "orig.pt"
    torch.save({"fcn.weight": torch.randn(4, 64, 1, 1) + 100.0}, path)
    assert set(load_original_state_dict(path)) == {"fcn.weight"}
    start, end = _data_span(path)
    data = bytearray(path.read_bytes())
    data[start + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC"):
        load_original_state_dict(path)
    torch.save({"fcn.weight": torch.full((2, 2), float("nan"))}, path)
    with pytest.raises(CheckpointError, match="NaN"):
        load_original_state_dict(path)


# ---------------------------------------------------------------- output errors name the real output
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_write_errors_name_the_output_and_leave_no_temp(tmp_path, monkeypatch, code):
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(code, "simulated")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(atomic, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    out = tmp_path / "final.pt"
    with pytest.raises(OutputError) as info:
        save_checkpoint(out, tiny())
    msg = str(info.value)
    assert msg.startswith(f"{out}: cannot write") and ".final.pt." not in msg and "\n" not in msg
    assert info.value.errno == code and isinstance(info.value, OSError | StgcnError)
    assert list(tmp_path.iterdir()) == []


def test_directory_in_the_way_is_named(tmp_path):
    out = tmp_path / "out.txt"
    out.mkdir()
    with pytest.raises(OutputError, match=r"out\.txt: cannot write \(it is a directory\)"):
        atomic_write_text(out, "x")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_torch_writer_failure_becomes_an_output_error(tmp_path):
    out = tmp_path / "model.ts"
    with pytest.raises(OutputError, match="model.ts: cannot write"):
        with atomic_path(out):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    assert list(tmp_path.iterdir()) == []


def test_sweep_temps(tmp_path):
    (tmp_path / ".last.pt.abc.pt").write_bytes(b"x")
    (tmp_path / "last.pt").write_bytes(b"y")
    assert atomic.sweep_temps(tmp_path / "last.pt") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
