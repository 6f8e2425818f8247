"""Readers: the real shared datasets (protocol split sizes pinned) and small files in each published format."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest

from stgcn.data.prepare import prepare
from stgcn.data.readers.keypoints import BODY25_TO_OPENPOSE18, read_keypoints_file, save_keypoints
from stgcn.data.readers.msr_action3d import MSR_ACTION_NAMES, MSR_ACTION_SETS
from stgcn.data.readers.ntu import (
    NTU60_MISSING_SAMPLES,
    NTU120_MISSING_SAMPLES,
    NTU_CLASS_NAMES,
    parse_ntu_name,
    read_ntu_file,
    select_bodies,
)
from stgcn.data.readers.nw_ucla import NW_UCLA_CLASS_NAMES
from stgcn.data.readers.utkinect import read_utkinect_labels
from stgcn.data.sources import read_clip_file, to_channels
from stgcn.errors import DataError
from stgcn.graph.layouts import get_layout
from tests.source_writers import (
    msr_text,
    ntu_text,
    pyskl_annotation,
    utkinect_text,
    write_kinetics,
    write_openpose_folder,
    write_pyskl,
    write_stgcn_npy,
)

# ------------------------------------------------------------------------------------ NW-UCLA (real)


@pytest.fixture(scope="module")
def nw_ucla_store(shared_data, tmp_path_factory):
    return prepare("nw-ucla", shared_data / "nw_ucla" / "all_sqe", tmp_path_factory.mktemp("nw") / "s", workers=2)


def test_nw_ucla_standard_split(nw_ucla_store):
    s = nw_ucla_store
    print(f"\nNW-UCLA: {len(s)} clips, train {len(s.split('train'))}, test {len(s.split('test'))}")
    assert len(s) == 1484
    assert len(s.split("train")) == 1020 and len(s.split("test")) == 464
    assert s.class_names == NW_UCLA_CLASS_NAMES and len(s.class_names) == 10
    assert s.layout.name == "kinect-v1" and s.channels == ["x", "y", "z"] and s.num_persons == 1
    names = s.names
    assert all(names[i].endswith("_v03") for i in s.split("test"))
    assert not any(names[i].endswith("_v03") for i in s.split("train"))
    # a01..a06, a08, a09, a11, a12 -> 0..9
    actions = [1, 2, 3, 4, 5, 6, 8, 9, 11, 12]
    for i in range(0, len(s), 97):
        assert s.label(i) == actions.index(int(names[i][1:3]))
    assert s.lengths.min() == 1 and s.lengths.max() == 201 and int(s.lengths.sum()) == 58534


def test_nw_ucla_clip_matches_the_json(nw_ucla_store, shared_data):
    s = nw_ucla_store
    i = s.names.index("a05_s03_e01_v02")
    raw = json.loads((shared_data / "nw_ucla" / "all_sqe" / "a05_s03_e01_v02.json").read_text())
    np.testing.assert_allclose(s.clip(i)[:, 0], np.array(raw["skeletons"], np.float32))
    assert s.label(i) == 4


# ---------------------------------------------------------------------------------------- MSR (real)
# pinned split sizes (all 567 files; a13_s09_e02 is all zeros and skipped)
MSR_SIZES = {"all": (291, 275, 1), "AS1": (119, 106, 1), "AS2": (118, 113, 0), "AS3": (114, 112, 0)}


@pytest.mark.parametrize("action_set", list(MSR_SIZES))
def test_msr_action3d_cross_subject_split_sizes(shared_data, tmp_path, action_set, caplog):
    with caplog.at_level(logging.WARNING):
        s = prepare("msr-action3d", shared_data / "msr_action3d", tmp_path / "s", action_set=action_set, workers=0)
    train, test = len(s.split("train")), len(s.split("test"))
    skipped = s.manifest["counts"]["skipped"]
    print(f"\nMSR Action3D {action_set}: train {train}, test {test}, skipped {skipped}")
    assert (train, test, skipped) == MSR_SIZES[action_set]
    assert len(s.class_names) == (20 if action_set == "all" else 8)
    subjects = [int(n.split("_")[1][1:]) for n in s.names]
    assert all(subjects[i] % 2 == 1 for i in s.split("train"))
    assert all(subjects[i] % 2 == 0 for i in s.split("test"))
    if skipped:
        assert "a13_s09_e02" in s.manifest["counts"]["skipped_samples"]
        assert "a13_s09_e02" in caplog.text and "all-zero" in caplog.text
    assert s.layout.name == "kinect-v1-msr"


def test_msr_action_sets_and_names_match_the_protocol_files(shared_data):
    sio = pytest.importorskip("scipy.io")
    proto = shared_data / "msr_action3d" / "protocol_vemulapalli2014"
    sets = sio.loadmat(proto / "tr_te_splits.mat")["action_sets"][0]
    assert [tuple(int(a) for a in s.ravel()) for s in sets] == list(MSR_ACTION_SETS.values())
    names = [str(n[0]) for n in sio.loadmat(proto / "action_names.mat")["action_names"][0]]
    assert tuple(names) == MSR_ACTION_NAMES


def test_msr_reader_by_hand(tmp_path):
    x = np.arange(2 * 20 * 3, dtype=np.float32).reshape(2, 20, 3) / 10
    f = tmp_path / "a02_s03_e01_skeleton3D.txt"
    f.write_text(msr_text(x))
    got, _, meta = read_clip_file(f)
    np.testing.assert_allclose(got[:, 0], x, atol=1e-6)
    assert meta["format"] == "msr-action3d" and meta["layout"].name == "kinect-v1-msr"
    assert (meta["action"], meta["subject"], meta["episode"]) == (2, 3, 1)


# ---------------------------------------------------------------------------------- UTKinect (real)
@pytest.mark.parametrize("boundaries", ["original", "modified"])
def test_utkinect_segments_and_cross_subject_split(shared_data, tmp_path, boundaries):
    s = prepare("utkinect", shared_data / "utkinect_action3d", tmp_path / "s", boundaries=boundaries, workers=0)
    print(f"\nUTKinect ({boundaries}): train {len(s.split('train'))}, test {len(s.split('test'))}")
    assert (len(s.split("train")), len(s.split("test"))) == (100, 99)      # s10_e02 carry is NaN NaN
    assert s.manifest["counts"]["skipped_samples"] == {
        "s10_e02_carry": "segment not annotated (NaN boundaries in the label file)"}
    assert s.class_names[0] == "walk" and len(s.class_names) == 10


def test_utkinect_boundaries_differ_where_the_label_files_differ(shared_data, tmp_path):
    root = shared_data / "utkinect_action3d"
    orig = read_utkinect_labels(root / "actionLabel.txt")
    mod = read_utkinect_labels(root / "actionLabel_modified.txt")
    assert orig["s01_e02"][0] == ("walk", 154, 192) and mod["s01_e02"][0] == ("walk", 154, 270)
    a = prepare("utkinect", root, tmp_path / "a", workers=0)
    b = prepare("utkinect", root, tmp_path / "b", boundaries="modified", workers=0)
    i = a.names.index("s01_e02_walk")
    assert b.lengths[i] > a.lengths[i]


def test_utkinect_segment_selects_frames_by_id(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 20, 3)).astype(np.float32)
    (tmp_path / "joints_s01_e01.txt").write_text(utkinect_text([10, 12, 12, 14, 16, 18], x))
    (tmp_path / "actionLabel.txt").write_text("s01_e01\nwalk: 12 14\nsitDown: 16 30\ncarry:  NaN NaN\n")
    s = prepare("utkinect", tmp_path, tmp_path / "s", workers=0)
    assert s.names == ["s01_e01_walk", "s01_e01_sitDown"]
    np.testing.assert_allclose(s.clip(0)[:, 0], x[1:4], atol=1e-6)     # ids 12, 12, 14
    np.testing.assert_allclose(s.clip(1)[:, 0], x[4:6], atol=1e-6)
    assert s.split("train").tolist() == [0, 1]


# --------------------------------------------------------------------------------------- NTU (real)
NTU_EXPECTED = {  # name: (action, bodies, frames)
    "S001C001P001R001A011": (11, 1, 82),
    "S001C003P008R002A058": (58, 2, 70),
    "S002C001P003R001A003": (3, 1, 100),
    "S003C001P015R001A034": (34, 1, 71),
    "S004C002P003R001A017": (17, 1, 124),
}


def test_ntu_samples_parse_with_actions_and_body_counts(shared_data):
    for name, (action, bodies, frames) in NTU_EXPECTED.items():
        x, meta = read_ntu_file(shared_data / "ntu_samples" / f"{name}.skeleton")
        assert meta["action"] == action and meta["num_tracks"] == bodies and x.shape == (frames, bodies, 25, 3)
        assert np.abs(x).sum(axis=(0, 2, 3)).min() > 0           # every kept body has data
    assert NTU_CLASS_NAMES[57] == "handshaking"


def test_ntu_store_and_splits(shared_data, tmp_path):
    s = prepare("ntu", shared_data / "ntu_samples", tmp_path / "s", workers=0)
    assert s.split_names == ["xsub_train", "xsub_test", "xview_train", "xview_test"]
    names = s.names
    got = {k: sorted(names[i] for i in s.split(k)) for k in s.split_names}
    assert got["xsub_train"] == ["S001C001P001R001A011", "S001C003P008R002A058", "S003C001P015R001A034"]
    assert got["xview_train"] == ["S001C003P008R002A058", "S004C002P003R001A017"]
    assert [s.label(names.index(n)) for n in NTU_EXPECTED] == [a - 1 for a, _, _ in NTU_EXPECTED.values()]
    assert s.num_persons == 2 and len(s.class_names) == 60
    one = s.clip(names.index("S001C001P001R001A011"))
    assert one.shape == (82, 2, 25, 3) and not one[:, 1].any()
    s120 = prepare("ntu", shared_data / "ntu_samples", tmp_path / "t", variant="ntu120", workers=0)
    assert s120.split_names == ["xsub_train", "xsub_test", "xset_train", "xset_test"]
    assert sorted(names[i][:4] for i in s120.split("xset_train")) == ["S002", "S004"]
    assert len(s120.class_names) == 120


def test_ntu_name_parsing():
    assert parse_ntu_name("S018C002P042R001A120") == {"setup": 18, "camera": 2, "performer": 42,
                                                       "replication": 1, "action": 120}
    with pytest.raises(DataError, match="SsssCcccPpppRrrrAaaa"):
        parse_ntu_name("S1C2P3R4A5")


def test_ntu_missing_lists():
    assert len(NTU60_MISSING_SAMPLES) == 302 and len(NTU120_MISSING_SAMPLES) == 535
    assert NTU60_MISSING_SAMPLES < NTU120_MISSING_SAMPLES
    assert "S001C002P005R002A008" in NTU60_MISSING_SAMPLES and "S017C003P020R001A059" in NTU60_MISSING_SAMPLES
    assert "S032C003P067R002A077" in NTU120_MISSING_SAMPLES
    assert all(parse_ntu_name(n)["setup"] <= 17 for n in NTU60_MISSING_SAMPLES)


def test_ntu_missing_samples_are_skipped_and_counted(tmp_path, caplog):
    body = np.random.default_rng(0).normal(size=(25, 3))
    text = ntu_text([[("7", body)], [("7", body + 0.1)]])
    (tmp_path / "S001C002P005R002A008.skeleton").write_text(text)     # in the published list
    (tmp_path / "S001C001P001R001A001.skeleton").write_text(text)
    (tmp_path / "S001C001P002R001A001.skeleton").write_text("2\n0\n0\n")  # no body at all
    with caplog.at_level(logging.WARNING):
        s = prepare("ntu", tmp_path, tmp_path / "s", workers=0)
    assert s.names == ["S001C001P001R001A001"]
    assert s.manifest["counts"]["skipped"] == 2
    assert "S001C002P005R002A008" in caplog.text
    custom = tmp_path / "missing.txt"
    custom.write_text("# my list\nS001C001P001R001A001.skeleton\n")
    t = prepare("ntu", tmp_path, tmp_path / "t", workers=0, missing_list=custom)
    assert t.names == ["S001C002P005R002A008"]


def test_ntu_body_selection_rule():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(25, 3))
    frames = []
    for f in range(6):
        bodies = [("noise", base)]                                 # static: zero motion energy
        if f < 3:
            bodies.append(("a", base + f))                          # moving body, lost after frame 2 ...
        else:
            bodies.append(("a2", base + f))                         # ... found again under a new ID
        bodies.append(("b", base * 2 + 0.5 * f))
        frames.append(bodies)
    x, tracks = select_bodies(frames, 2)
    assert tracks == 4 and x.shape == (6, 2, 25, 3)
    # energy = sum over x, y, z of the std of all joint positions: b (twice the spread) > a, a2 > noise.
    # b takes slot 0; a and a2 (the same person under two IDs) share slot 1; the static body is dropped
    np.testing.assert_allclose(x[:, 0], [base * 2 + 0.5 * f for f in range(6)], rtol=1e-6)
    np.testing.assert_allclose(x[:, 1], [base + f for f in range(6)], rtol=1e-6)


def test_ntu_reader_errors(tmp_path):
    f = tmp_path / "S001C001P001R001A001.skeleton"
    body = np.zeros((25, 3))
    good = ntu_text([[("1", body + 1)]])
    for text, match in [
        (good[:-40], "truncated"),
        ("1\n1\n" + "1 0 1 1 1 1 0 0 0 2\n24\n", "24 joints"),
        ("999999999\n", r"frame count 999999999 is outside"),
        ("x\n", "must be an integer"),
        (good.replace("300.1", "abc", 1), "non-numeric"),
        (good + "5\n", "unexpected values"),
        ("", "truncated"),
    ]:
        f.write_text(text)
        with pytest.raises(DataError, match=match):
            read_ntu_file(f)


# ------------------------------------------------------------------------------------ kinetics-json
def test_kinetics_json_release(tmp_path):
    write_kinetics(tmp_path / "k", {"train": {"v1": (5, 3, 2), "v2": (3, 1, 0), "v3": (4, 0, 1)},
                                    "val": {"v4": (2, 2, 1)}})
    s = prepare("kinetics-json", tmp_path / "k", tmp_path / "s", workers=0)
    assert s.split_names == ["train", "val"] and s.names == ["v1", "v2", "v4"]
    assert s.channels == ["x", "y", "score"] and s.layout.name == "openpose-18" and s.num_persons == 2
    assert s.class_names == ["class 0", "class 1", "class 2"]
    assert s.manifest["counts"]["no_skeleton_in_label_file"] == 1
    raw = json.loads((tmp_path / "k" / "kinetics_train" / "v1.json").read_text())
    clip = s.clip(0)
    assert clip.shape == (5, 2, 18, 3)
    for t, frame in enumerate(raw["data"]):                         # persons ranked by summed score
        people = sorted(frame["skeleton"], key=lambda p: -sum(p["score"]))[:2]
        for m, p in enumerate(people):
            np.testing.assert_allclose(clip[t, m, :, 0], p["pose"][0::2], atol=1e-6)
            np.testing.assert_allclose(clip[t, m, :, 2], p["score"], atol=1e-6)
    x, scores, meta = read_clip_file(tmp_path / "k" / "kinetics_train" / "v1.json")
    assert meta["format"] == "kinetics-json" and x.shape == (5, 2, 18, 2) and scores.shape == (5, 2, 18)


# ----------------------------------------------------------------------------------------- stgcn-npy
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_stgcn_npy_trims_padding_and_reads_labels_safely(tmp_path, protocol):
    rng = np.random.default_rng(0)
    data = np.zeros((3, 3, 10, 18, 2), np.float32)
    data[0, :, :4, :, 0] = rng.random((3, 4, 18))
    data[1, :, :10] = rng.random((3, 10, 18, 2))
    write_stgcn_npy(tmp_path / "d", "train", data, ["a", "b", "c"], [1, 0, 2], protocol=protocol)
    write_stgcn_npy(tmp_path / "d", "val", data[:1], ["d"], [np.int64(2)], protocol=protocol)
    s = prepare("stgcn-npy", tmp_path / "d", tmp_path / "s", workers=0)
    assert s.names == ["a", "b", "d"] and s.manifest["counts"]["skipped"] == 1      # c is all zero
    assert s.lengths.tolist() == [4, 10, 4]
    assert s.channels == ["x", "y", "score"] and s.layout.name == "openpose-18"
    np.testing.assert_array_equal(s.clip(1), data[1].transpose(1, 3, 2, 0))
    assert [s.label(i) for i in range(3)] == [1, 0, 2] and s.split("val").tolist() == [2]


def test_stgcn_npy_refuses_a_malicious_label_pickle(tmp_path):
    data = np.ones((1, 3, 4, 25, 1), np.float32)
    np.save((tmp_path / "d").mkdir() or tmp_path / "d" / "train_data.npy", data)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "d" / "train_label.pkl").write_bytes(pickle.dumps((["a"], [Evil()])))
    with pytest.raises(DataError, match="refusing to load.*io.open"):
        prepare("stgcn-npy", tmp_path / "d", tmp_path / "s", workers=0)
    assert not marker.exists() and not (tmp_path / "s").exists()


# --------------------------------------------------------------------------------------------- pyskl
def test_pyskl_pickle_with_splits_and_scores(tmp_path):
    anns = [pyskl_annotation("c0", 0, 1, 5, seed=0), pyskl_annotation("c1", 2, 2, 7, seed=1),
            pyskl_annotation("c2", 1, 1, 3, seed=2)]
    write_pyskl(tmp_path / "a.pkl", anns, {"xsub_train": ["c0", "c2"], "xsub_val": ["c1"]})
    s = prepare("pyskl", tmp_path / "a.pkl", tmp_path / "s", workers=0)
    assert s.layout.name == "coco-17" and s.channels == ["x", "y", "score"] and s.num_persons == 2
    assert s.split("xsub_train").tolist() == [0, 2] and s.split("xsub_val").tolist() == [1]
    clip = s.clip(1)
    np.testing.assert_allclose(clip[..., :2], anns[1]["keypoint"].transpose(1, 0, 2, 3), rtol=1e-6)
    np.testing.assert_allclose(clip[..., 2], anns[1]["keypoint_score"].transpose(1, 0, 2), rtol=1e-6)
    n = prepare("pyskl", tmp_path / "a.pkl", tmp_path / "n", workers=0, normalize=True)
    np.testing.assert_allclose(n.clip(1)[..., 0], clip[..., 0] / 1920, rtol=1e-5)


def test_pyskl_3d_list_without_split(tmp_path):
    anns = [pyskl_annotation(f"c{i}", i, 2, 4, v=25, c=3, scores=False, seed=i) for i in range(2)]
    write_pyskl(tmp_path / "b.pkl", anns, None, protocol=2)
    s = prepare("pyskl", tmp_path / "b.pkl", tmp_path / "s", workers=0)
    assert s.layout.name == "ntu-rgb+d" and s.channels == ["x", "y", "z"] and s.split_names == ["all"]


def test_pyskl_malicious_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    ann = pyskl_annotation("c0", 0, 1, 3)
    ann["label"] = Evil()
    write_pyskl(tmp_path / "evil.pkl", [ann], None)
    with pytest.raises(DataError, match=r"evil.pkl: refusing to load: the pickle references posix.system"):
        prepare("pyskl", tmp_path / "evil.pkl", tmp_path / "s", workers=0)
    assert not marker.exists()


# ----------------------------------------------------------------------------------------- keypoints
def test_keypoints_json_npz_and_openpose_with_csv_labels(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "clips"
    (src / "train").mkdir(parents=True)
    (src / "test").mkdir()
    lay = get_layout("openpose-18")
    k1 = rng.random((4, 1, 18, 2)).astype(np.float32) * 100
    s1 = rng.random((4, 1, 18)).astype(np.float32)
    save_keypoints(src / "train" / "clip1.json", k1, layout="openpose-18", scores=s1)
    save_keypoints(src / "train" / "clip2.npz", k1[:2], layout=lay, scores=s1[:2])
    body25 = [np.concatenate([rng.random((25, 2)) * 100, rng.random((25, 1))], axis=1) for _ in range(3)]
    write_openpose_folder(src / "test" / "video3", [[body25[0], body25[1]], [], [body25[2]]])
    (tmp_path / "labels.csv").write_text("name,label\nclip1,wave\nclip2,jump\nvideo3,wave\n")
    s = prepare("keypoints", src, tmp_path / "s", labels=tmp_path / "labels.csv", workers=0)
    assert s.class_names == ["jump", "wave"] and s.channels == ["x", "y", "score"]
    assert s.split_names == ["test", "train"] and s.names == ["video3", "clip1", "clip2"]
    assert [s.label(i) for i in range(3)] == [1, 1, 0]
    np.testing.assert_allclose(s.clip(1)[:, :1, :, :2], k1, rtol=1e-6)
    np.testing.assert_allclose(s.clip(1)[:, :1, :, 2], s1, rtol=1e-6)
    video = s.clip(0)
    assert video.shape == (3, 2, 18, 3) and not video[1].any()
    first = sorted([body25[0], body25[1]], key=lambda p: -p[:, 2].sum())[0]
    np.testing.assert_allclose(video[0, 0], first[list(BODY25_TO_OPENPOSE18)], atol=1e-3)


def test_keypoints_labels_from_the_files_and_read_clip_file(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((3, 2, 21, 3)).astype(np.float32)
    save_keypoints(tmp_path / "a.npz", x, layout="mediapipe-hand-21", label="ok", split="train")
    save_keypoints(tmp_path / "b.json", x[:1], layout="mediapipe-hand-21", label="stop", split="test")
    s = prepare("keypoints", tmp_path, tmp_path / "s", workers=0)
    assert s.class_names == ["ok", "stop"] and s.channels == ["x", "y", "z"] and s.layout.name == "mediapipe-hand-21"
    got, scores, meta = read_clip_file(tmp_path / "a.npz")
    np.testing.assert_array_equal(got, x)
    assert scores is None and meta["format"] == "keypoints-npz" and meta["label"] == "ok"


def test_keypoints_custom_layout_file(tmp_path):
    (tmp_path / "tri.json").write_text(json.dumps({"joints": ["a", "b", "c"], "edges": [["a", "b"], ["b", "c"]],
                                                   "center": "b"}))
    (tmp_path / "clip.json").write_text(json.dumps({"keypoints": np.ones((2, 1, 3, 2)).tolist(),
                                                    "layout": "tri.json", "label": 0}))
    x, _, meta = read_keypoints_file(tmp_path / "clip.json")
    assert meta["layout"].name == "tri" and x.shape == (2, 1, 3, 2)


def test_keypoints_errors(tmp_path):
    f = tmp_path / "c.json"
    for obj, match in [
        ({"keypoints": np.ones((2, 1, 17, 2)).tolist(), "layout": "openpose-18"}, "17 joints per person; layout"),
        ({"keypoints": np.ones((0, 1, 18, 2)).tolist(), "layout": "openpose-18"}, "empty clip"),
        ({"keypoints": [[[[1, 2]] * 18]], "layout": "nope"}, "unknown layout 'nope'"),
        ({"keypoints": [[[["a", 2]] * 18]], "layout": "openpose-18"}, "must be numbers"),
        ({"keypoints": [[[[1, 2]] * 18], [[[1, 2]] * 17]], "layout": "openpose-18"}, "ragged"),
        ({"layout": "openpose-18"}, "no 'keypoints'"),
        ({"keypoints": np.ones((1, 1, 18, 2)).tolist()}, "no 'layout'"),
    ]:
        f.write_text(json.dumps(obj))
        with pytest.raises(DataError, match=match):
            read_keypoints_file(f)
    f.write_text('{"keypoints": [[[[NaN, 1]]]], "layout": "openpose-18"}')
    with pytest.raises(DataError):
        read_keypoints_file(f)


def test_to_channels():
    x = np.ones((2, 1, 3, 2), np.float32)
    s = np.full((2, 1, 3), 0.5, np.float32)
    assert to_channels(x, s, ["x", "y", "score"])[..., 2].tolist() == s.tolist()
    assert to_channels(x, None, ["x", "y", "score"])[..., 2].min() == 1.0
    with pytest.raises(DataError, match="'z'"):
        to_channels(x, s, ["x", "y", "z"])


def test_read_clip_file_on_every_real_format(shared_data):
    cases = [
        (shared_data / "nw_ucla" / "all_sqe" / "a01_s01_e00_v01.json", "nw-ucla", "kinect-v1", (44, 1, 20, 3)),
        (shared_data / "msr_action3d" / "a01_s01_e01_skeleton3D.txt", "msr-action3d", "kinect-v1-msr", None),
        (shared_data / "ntu_samples" / "S001C003P008R002A058.skeleton", "ntu", "ntu-rgb+d", (70, 2, 25, 3)),
        (shared_data / "utkinect_action3d" / "joints_s01_e01.txt", "utkinect", "kinect-v1", (560, 1, 20, 3)),
    ]
    for path, fmt, layout, shape in cases:
        x, scores, meta = read_clip_file(path)
        assert meta["format"] == fmt and meta["layout"].name == layout and scores is None
        assert x.dtype == np.float32 and x.ndim == 4 and (shape is None or x.shape == shape)
    with pytest.raises(DataError, match="is in layout 'kinect-v1'.*expects 'coco-17'"):
        read_clip_file(cases[0][0], layout="coco-17")


def test_read_clip_file_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_clip_file(tmp_path / "missing.json")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(DataError, match="unsupported clip file"):
        read_clip_file(tmp_path / "x.csv")
    (tmp_path / "y.json").write_text('{"hello": 1}')
    with pytest.raises(DataError, match="unrecognised JSON clip"):
        read_clip_file(tmp_path / "y.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="OpenPose"):
        read_clip_file(tmp_path / "empty")
