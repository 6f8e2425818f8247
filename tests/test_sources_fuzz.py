"""Property-based tests: every reader, fed truncated, corrupted and adversarial files, either returns a valid
clip or raises the one-line DataError naming the file; never another exception, a hang or code execution."""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stgcn.data.readers.keypoints import read_keypoints_file, read_openpose_folder, save_keypoints
from stgcn.data.readers.kinetics_json import read_kinetics_json_file
from stgcn.data.readers.msr_action3d import read_msr_action3d_file
from stgcn.data.readers.ntu import read_ntu_file
from stgcn.data.readers.nw_ucla import read_nw_ucla_file
from stgcn.data.readers.pyskl import pyskl_clip, read_pyskl_annotations
from stgcn.data.readers.stgcn_npy import open_stgcn_data, read_stgcn_labels
from stgcn.data.readers.utkinect import read_utkinect_labels, read_utkinect_sequence
from stgcn.data.sources import read_clip_file
from stgcn.errors import DataError
from stgcn.utils.safe_pickle import loads_pickle
from tests.source_writers import (
    kinetics_obj,
    msr_text,
    ntu_text,
    openpose_frame,
    pyskl_annotation,
    utkinect_text,
)

# modest by default so the suite stays fast; STGCN_FUZZ_EXAMPLES=1000 for a long hunt
FUZZ = settings(max_examples=int(os.environ.get("STGCN_FUZZ_EXAMPLES", "30")), deadline=3000,
                suppress_health_check=[HealthCheck.too_slow], derandomize="STGCN_FUZZ_EXAMPLES" not in os.environ)

ADVERSARIAL_TOKENS = [b"nan", b"inf", b"-inf", b"1e999", b"abc", b"99999999999999999999", b"-1", b"0", b"25",
                      b"\x00", b"\xff\xfe", b"{", b"]", b"\"x\"", b"null", b"true", b"1e-400", b"\n\n", b"   ",
                      b"4294967296", b"-9223372036854775809", b"0x10", b"1_000"]


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """``base`` truncated, with bytes flipped, and/or adversarial tokens spliced in."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "replace_token"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(ADVERSARIAL_TOKENS))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 20))]
        else:
            end = pos
            while end < len(data) and data[end:end + 1] not in (b" ", b"\n", b",", b"]"):
                end += 1
            data[pos:end] = draw(st.sampled_from(ADVERSARIAL_TOKENS))
    return bytes(data)


def _check(fn, path: Path, *args, **kwargs):
    """Run a reader: a result must be finite numbers; a failure must be the one-line DataError naming the file."""
    try:
        out = fn(path, *args, **kwargs)
    except DataError as e:
        msg = str(e)
        assert "\n" not in msg, msg
        assert path.name in msg, msg
        return None
    arrays = out if isinstance(out, tuple) else (out,)
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            assert np.isfinite(a).all()
    return out


def _tmpfile(name: str, data: bytes) -> tuple[tempfile.TemporaryDirectory, Path]:
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / name
    path.write_bytes(data)
    return tmp, path


RNG = np.random.default_rng(0)
NW_UCLA = json.dumps({"file_name": "a01_s01_e00_v01", "skeletons": RNG.normal(size=(3, 20, 3)).round(4).tolist()})
MSR = msr_text(RNG.normal(size=(2, 20, 3)))
UTK = utkinect_text([1, 2, 4], RNG.normal(size=(3, 20, 3)))
UTK_LABELS = "s01_e01\nwalk: 1 2\nsitDown: 2 4\ncarry:  NaN NaN\n"
NTU = ntu_text([[("72057594037944738", RNG.normal(size=(25, 3)))],
                [("72057594037944738", RNG.normal(size=(25, 3))), ("72057594037944739", RNG.normal(size=(25, 3)))]])
KINETICS = json.dumps(kinetics_obj(3, 2))
OPENPOSE = json.dumps(openpose_frame([RNG.random((18, 3)), RNG.random((18, 3))]))


@FUZZ
@given(st.data())
def test_nw_ucla_reader_survives_corruption(data):
    tmp, path = _tmpfile("a01_s01_e00_v01.json", data.draw(mutated(NW_UCLA.encode())))
    with tmp:
        out = _check(read_nw_ucla_file, path)
        if out is not None:
            assert out[0].shape[1:] == (1, 20, 3) and out[0].shape[0] >= 1


@FUZZ
@given(st.data())
def test_msr_reader_survives_corruption(data):
    tmp, path = _tmpfile("a01_s01_e01_skeleton3D.txt", data.draw(mutated(MSR.encode())))
    with tmp:
        out = _check(read_msr_action3d_file, path)
        if out is not None:
            assert out[0].shape[1:] == (1, 20, 3)


@FUZZ
@given(st.data())
def test_utkinect_readers_survive_corruption(data):
    tmp, path = _tmpfile("joints_s01_e01.txt", data.draw(mutated(UTK.encode())))
    with tmp:
        out = _check(read_utkinect_sequence, path)
        if out is not None:
            assert out[1].shape[1:] == (1, 20, 3) and len(out[0]) == len(out[1])
    tmp, path = _tmpfile("actionLabel.txt", data.draw(mutated(UTK_LABELS.encode())))
    with tmp:
        _check(read_utkinect_labels, path)


@FUZZ
@given(st.data())
def test_ntu_reader_survives_corruption(data):
    tmp, path = _tmpfile("S001C001P001R001A001.skeleton", data.draw(mutated(NTU.encode())))
    with tmp:
        out = _check(read_ntu_file, path)
        if out is not None:
            assert out[0].shape[2:] == (25, 3) and 1 <= out[0].shape[1] <= 2


@FUZZ
@given(frames=st.sampled_from(["0", "1", "-1", "3", "1000000", "999999999999999", "1e3", "x"]),
       bodies=st.sampled_from(["0", "1", "2", "-3", "65", "1000000000", "y"]),
       joints=st.sampled_from(["25", "0", "24", "-25", "100000000", "z"]))
def test_ntu_declared_sizes_cannot_blow_up(frames, bodies, joints):
    """Huge or negative declared counts with a tiny file end in DataError at once (no allocation, no hang)."""
    text = f"{frames}\n{bodies}\n1 0 1 1 1 1 0 0 0 2\n{joints}\n" + "0.1 " * 12 * 3
    tmp, path = _tmpfile("S001C001P001R001A001.skeleton", text.encode())
    with tmp:
        with pytest.raises(DataError):
            read_ntu_file(path)


@FUZZ
@given(st.data())
def test_kinetics_reader_survives_corruption(data):
    tmp, path = _tmpfile("vid.json", data.draw(mutated(KINETICS.encode())))
    with tmp:
        out = _check(read_kinetics_json_file, path)
        if out is not None:
            assert out[0].shape[1:] == (2, 18, 3)


@FUZZ
@given(st.data())
def test_openpose_frame_survives_corruption(data):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "video"
        folder.mkdir()
        (folder / "video_000000000000_keypoints.json").write_text(OPENPOSE)
        (folder / "video_000000000001_keypoints.json").write_bytes(data.draw(mutated(OPENPOSE.encode())))
        try:
            x, s, _ = read_openpose_folder(folder)
        except DataError as e:
            assert "\n" not in str(e) and "video" in str(e)
        else:
            assert x.shape == (2, 2, 18, 2) and np.isfinite(x).all() and np.isfinite(s).all()


def _keypoints_bytes(suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"clip{suffix}"
        save_keypoints(p, RNG.random((3, 1, 17, 2)), layout="coco-17", scores=RNG.random((3, 1, 17)), label="a")
        return p.read_bytes()


KEYPOINTS_JSON = _keypoints_bytes(".json")
KEYPOINTS_NPZ = _keypoints_bytes(".npz")


@FUZZ
@given(st.data(), st.sampled_from([".json", ".npz"]))
def test_keypoints_files_survive_corruption(data, suffix):
    base = KEYPOINTS_JSON if suffix == ".json" else KEYPOINTS_NPZ
    tmp, path = _tmpfile(f"clip{suffix}", data.draw(mutated(base)))
    with tmp:
        out = _check(read_keypoints_file, path)
        if out is not None:
            assert out[0].shape[2:] == (17, 2)


@FUZZ
@given(shape=st.lists(st.integers(0, 3), min_size=0, max_size=6),
       layout=st.sampled_from(["coco-17", "openpose-18", "bogus", 17, None, {"joints": ["a"]}]),
       values=st.sampled_from([0.5, "x", None, True, [1, 2], 1e308]))
def test_keypoints_json_adversarial_structures(shape, layout, values):
    kp = values
    for n in reversed(shape):
        kp = [kp] * n
    obj = {"keypoints": kp, "layout": layout, "label": "a"}
    tmp, path = _tmpfile("clip.json", json.dumps(obj).encode())
    with tmp:
        _check(read_keypoints_file, path)


def _npz_with(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_with_object_arrays_or_a_zip_bomb_header_is_refused():
    obj = io.BytesIO()
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("keypoints.npy", obj.getvalue())
    for data in (buf.getvalue(), _npz_with(keypoints=np.array("text")), b"PK\x03\x04" + b"\x00" * 40):
        tmp, path = _tmpfile("clip.npz", data)
        with tmp, pytest.raises(DataError, match="clip.npz"):
            read_keypoints_file(path)


# ---------------------------------------------------------------------------------------- pickles
LABEL_PICKLES = [pickle.dumps((["a", "b"], [0, np.int64(1)]), protocol=p) for p in (2, 4, 5)]
PYSKL_PICKLE = pickle.dumps({"split": {"train": ["c0"]}, "annotations": [pyskl_annotation("c0", 0, 1, 3)]},
                            protocol=4)


@FUZZ
@given(st.data(), st.sampled_from(range(len(LABEL_PICKLES))))
def test_label_pickles_survive_corruption(data, which):
    tmp, path = _tmpfile("train_label.pkl", data.draw(mutated(LABEL_PICKLES[which])))
    with tmp:
        _check(read_stgcn_labels, path)


@FUZZ
@given(st.data())
def test_pyskl_pickles_survive_corruption(data):
    tmp, path = _tmpfile("ann.pkl", data.draw(mutated(PYSKL_PICKLE)))
    with tmp:
        out = _check(read_pyskl_annotations, path)
        if out is not None:
            for ann in out[0]:
                try:
                    pyskl_clip(ann, str(path))
                except DataError as e:
                    assert "\n" not in str(e)


def _evil_pickles(marker: Path) -> list[bytes]:
    """Pickles that would run code (create ``marker``) if unpickled normally."""
    cmd = f"touch {marker}"
    raw = [
        b"cos\nsystem\n(S'" + cmd.encode() + b"'\ntR.",                                     # protocol 0 GLOBAL
        b"cbuiltins\neval\n(S'__import__(\"os\").system(\"" + cmd.encode() + b"\")'\ntR.",
        b"cbuiltins\nexec\n(S'open(\"" + str(marker).encode() + b"\", \"w\")'\ntR.",
        b"csubprocess\ncall\n((S'touch'\nS'" + str(marker).encode() + b"'\nltR.",
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c"
        + bytes([len(cmd)]) + cmd.encode() + b"\x85R.",                                     # STACK_GLOBAL
        b"cbuiltins\ngetattr\n(cbuiltins\nlist\nS'__class__'\ntR.",                          # attribute walking
        b"cnumpy\nload\n(S'x'\ntR.",                                                         # numpy, not allowed
        b"cnumpy.core.multiarray\n_reconstruct\n(cos\nsystem\n(I0\ntS'b'\ntR.",              # smuggled subtype
        b"cnumpy\nndarray\n((I999999999999\ntR.",                                             # huge allocation
        b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I99999999999\ntS'b'\ntR.",
        b"cbuiltins\nlist\n(cbuiltins\nrange\n(I999999999999\ntRtR.",                         # endless list
        b"cbuiltins\nbytearray\n(I99999999999\ntR.",                                          # huge bytes
        b"c_codecs\nencode\n(S'x'\nS'zlib'\ntR.",
    ]
    return raw


def test_malicious_pickles_never_run_code(tmp_path):
    marker = tmp_path / "pwned"
    for i, data in enumerate(_evil_pickles(marker)):
        path = tmp_path / f"evil{i}.pkl"
        path.write_bytes(data)
        with pytest.raises(DataError, match=f"evil{i}.pkl") as e:
            read_pyskl_annotations(path)
        assert "\n" not in str(e.value)
        with pytest.raises(DataError):
            read_stgcn_labels(path)
        assert not marker.exists(), f"pickle {i} ran code"


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_the_restricted_unpickler(data):
    try:
        loads_pickle(data, "random.pkl")
    except DataError as e:
        assert "\n" not in str(e)


# ---------------------------------------------------------------------------------------- npy / any
def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


NPY = _npy(RNG.random((2, 3, 4, 18, 2)).astype(np.float32))


@FUZZ
@given(st.data())
def test_npy_data_survives_corruption(data):
    tmp, path = _tmpfile("train_data.npy", data.draw(mutated(NPY)))
    with tmp:
        try:
            arr = open_stgcn_data(path)
        except DataError as e:
            assert "\n" not in str(e) and "train_data.npy" in str(e)
        else:
            assert arr.ndim == 5
            np.asarray(arr[:1])                                    # reading a clip works or raises cleanly


@FUZZ
@given(st.binary(max_size=400), st.sampled_from([".json", ".npz", ".skeleton", ".txt", ".pkl"]))
def test_read_clip_file_on_random_bytes(data, suffix):
    name = {".txt": "a01_s01_e01_skeleton3D.txt"}.get(suffix, f"clip{suffix}")
    tmp, path = _tmpfile(name, data)
    with tmp:
        _check(read_clip_file, path)
