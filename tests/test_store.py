"""The dataset store: round trip, dtype, atomic writes, and one-line errors for broken stores."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from stgcn.data.store import StoreWriter, describe_store, open_store
from stgcn.errors import DataError
from stgcn.graph.layouts import Layout

V = 20  # kinect-v1


def _clip(t: int, m: int = 1, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(t, m, V, c)).astype(np.float32)


def _write(path, clips, dtype="float32", **kwargs):
    with StoreWriter(path, "kinect-v1", ["x", "y", "z"], ["a", "b", "c"], dtype, **kwargs) as w:
        for i, (clip, label, splits) in enumerate(clips):
            w.add(f"clip{i}", clip, label, splits)
        return w.finish(["train", "test", "val"], source={"format": "test"}, counts={"extra": 7})


def test_round_trip_keeps_lengths_values_labels_and_splits(tmp_path):
    clips = [(_clip(5, seed=1), 0, ["train"]), (_clip(1, seed=2), 2, ["test"]), (_clip(12, seed=3), 1, ["train"])]
    store = _write(tmp_path / "s", clips)
    assert len(store) == 3
    assert store.lengths.tolist() == [5, 1, 12]
    for i, (clip, label, _) in enumerate(clips):
        got = store.clip(i)
        assert got.dtype == np.float32 and got.shape == clip.shape
        np.testing.assert_array_equal(got, clip)
        assert store.label(i) == label
        assert store.name(i) == f"clip{i}"
    assert store.split("train").tolist() == [0, 2]
    assert store.split("test").tolist() == [1]
    assert store.split("val").tolist() == []          # listed in finish, empty
    assert store.split_names == ["train", "test", "val"]
    m = store.manifest
    assert m["format_version"] == 1 and m["layout"] == "kinect-v1" and m["channels"] == ["x", "y", "z"]
    assert m["class_names"] == ["a", "b", "c"] and m["source"] == {"format": "test"}
    assert m["counts"]["clips"] == 3 and m["counts"]["frames"] == 18 and m["counts"]["extra"] == 7
    assert m["counts"]["per_split"] == {"train": 2, "test": 1, "val": 0}
    assert m["counts"]["per_class"] == {"a": 1, "b": 1, "c": 1}
    assert store.clip(-1).shape == (12, 1, V, 3)       # negative index like a sequence


def test_frames_are_concatenated_without_padding(tmp_path):
    store = _write(tmp_path / "s", [(_clip(3), 0, []), (_clip(7), 1, [])])
    size = (tmp_path / "s" / "frames.bin").stat().st_size
    assert size == (3 + 7) * 1 * V * 3 * 4
    assert store.offsets.tolist() == [0, 3, 10]
    assert isinstance(store.frames, np.memmap)


def test_float16_halves_the_size_and_rounds(tmp_path):
    clip = _clip(4)
    store = _write(tmp_path / "h", [(clip, 0, [])], dtype="float16")
    assert (tmp_path / "h" / "frames.bin").stat().st_size == 4 * V * 3 * 2
    got = store.clip(0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, clip, rtol=1e-3, atol=1e-3)
    assert store.manifest["dtype"] == "float16"


def test_float16_refuses_values_beyond_its_range(tmp_path):
    with StoreWriter(tmp_path / "h", "kinect-v1", ["x", "y", "z"], ["a"], "float16") as w:
        with pytest.raises(DataError, match="float16 range"):
            w.add("big", np.full((2, 1, V, 3), 1e6, np.float32), 0)


def test_fewer_persons_are_padded_with_zero_persons(tmp_path):
    with StoreWriter(tmp_path / "s", "kinect-v1", ["x", "y", "z"], ["a"], num_persons=2) as w:
        w.add("one", _clip(3, m=1), 0)
        w.add("two", _clip(3, m=2), 0)
        store = w.finish()
    one = store.clip(0)
    assert one.shape == (3, 2, V, 3) and not one[:, 1].any()
    with StoreWriter(tmp_path / "t", "kinect-v1", ["x", "y", "z"], ["a"], num_persons=1) as w:
        with pytest.raises(DataError, match="2 persons; this store holds at most 1"):
            w.add("two", _clip(3, m=2), 0)


@pytest.mark.parametrize(
    ("clip", "label", "match"),
    [
        (np.zeros((3, 1, 19, 3), np.float32), 0, r"expected \(T, M, 20, 3\)"),
        (np.zeros((3, 1, V, 2), np.float32), 0, r"expected \(T, M, 20, 3\)"),
        (np.zeros((0, 1, V, 3), np.float32), 0, "empty clip"),
        (np.full((2, 1, V, 3), np.nan, np.float32), 0, "NaN or inf"),
        (np.full((2, 1, V, 3), np.inf, np.float32), 0, "NaN or inf"),
        (np.zeros((2, 1, V, 3), np.float32), 3, r"not a class index in \[0, 3\)"),
        (np.zeros((2, 1, V, 3), np.float32), -1, "not a class index"),
        (np.array([["a"]]), 0, "expected"),
    ],
)
def test_add_rejects_bad_clips_with_one_line(tmp_path, clip, label, match):
    with StoreWriter(tmp_path / "s", "kinect-v1", ["x", "y", "z"], ["a", "b", "c"]) as w:
        with pytest.raises(DataError, match=match) as e:
            w.add("bad", clip, label)
        assert "\n" not in str(e.value)


def test_duplicate_names_are_refused(tmp_path):
    with StoreWriter(tmp_path / "s", "kinect-v1", ["x", "y", "z"], ["a"]) as w:
        w.add("x", _clip(2), 0)
        with pytest.raises(DataError, match="already in the store"):
            w.add("x", _clip(2), 0)


def test_nothing_is_visible_until_finish_and_an_exception_leaves_nothing(tmp_path):
    out = tmp_path / "s"
    with pytest.raises(RuntimeError):
        with StoreWriter(out, "kinect-v1", ["x", "y", "z"], ["a"]) as w:
            w.add("a", _clip(2), 0)
            assert not out.exists()
            raise RuntimeError("interrupted")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []            # the partial directory is gone too


def test_existing_store_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "s"
    _write(out, [(_clip(2), 0, [])])
    with pytest.raises(DataError, match="already exists"):
        StoreWriter(out, "kinect-v1", ["x", "y", "z"], ["a"])
    store = _write(out, [(_clip(4), 1, []), (_clip(1), 0, [])], overwrite=True)
    assert len(store) == 2 and store.lengths.tolist() == [4, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_empty_store_is_refused(tmp_path):
    w = StoreWriter(tmp_path / "s", "kinect-v1", ["x", "y", "z"], ["a"])
    with pytest.raises(DataError, match="no clips"):
        w.finish()
    assert list(tmp_path.iterdir()) == []


def test_custom_layout_is_stored_as_a_dict(tmp_path):
    lay = Layout(name="tri", joints=("a", "b", "c"), edges=((0, 1), (1, 2)), center=1)
    with StoreWriter(tmp_path / "s", lay, ["x", "y"], ["k"]) as w:
        w.add("c", np.ones((2, 1, 3, 2), np.float32), 0)
        store = w.finish()
    assert isinstance(store.manifest["layout"], dict)
    assert open_store(tmp_path / "s").layout == lay


def test_store_pickles_by_path(tmp_path):
    store = _write(tmp_path / "s", [(_clip(3), 0, ["train"])])
    store.clip(0)                                        # open the memory map first
    again = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(again.clip(0), store.clip(0))
    assert len(pickle.dumps(store)) < 500


def test_unknown_split_lists_the_valid_ones(tmp_path):
    store = _write(tmp_path / "s", [(_clip(3), 0, ["train"])])
    with pytest.raises(DataError, match="unknown split 'xsub'; valid splits are train, test, val"):
        store.split("xsub")


def test_out_of_range_index(tmp_path):
    store = _write(tmp_path / "s", [(_clip(3), 0, [])])
    with pytest.raises(IndexError):
        store.clip(1)


def test_broken_stores_give_one_line_errors(tmp_path):
    out = tmp_path / "s"
    _write(out, [(_clip(3), 0, []), (_clip(2), 1, [])])
    frames = out / "frames.bin"
    data = frames.read_bytes()
    frames.write_bytes(data[:-8])
    with pytest.raises(DataError, match="truncated or corrupt store"):
        open_store(out)
    frames.write_bytes(data)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(DataError, match="format_version 99"):
        open_store(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        open_store(out)
    (out / "manifest.json").unlink()
    with pytest.raises(DataError, match="manifest.json: missing"):
        open_store(out)
    with pytest.raises(DataError, match="not a dataset store directory"):
        open_store(tmp_path / "nowhere")


def test_describe_store_counts_per_split_and_class(tmp_path):
    store = _write(tmp_path / "s", [(_clip(5), 0, ["train"]), (_clip(1), 2, ["test"]), (_clip(12), 0, ["train"])])
    info = describe_store(store)
    assert info["clips"] == 3 and info["frames"] == 18
    assert info["splits"] == {"train": 2, "test": 1, "val": 0}
    assert info["per_class"]["a"] == {"all": 2, "train": 2, "test": 0, "val": 0}
    assert info["per_class"]["c"] == {"all": 1, "train": 0, "test": 1, "val": 0}
    assert info["length"]["min"] == 1 and info["length"]["max"] == 12 and info["length"]["median"] == 5
    json.dumps(info)
