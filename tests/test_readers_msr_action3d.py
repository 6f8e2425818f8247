"""MSR Action3D: the joint order and bones against the dataset's own body model, lost-tracking frames, and the
file list of Vemulapalli et al. 2014 (real data where present, small written files otherwise)."""

from __future__ import annotations

import numpy as np
import pytest

from stgcn.data.prepare import prepare
from stgcn.data.readers.msr_action3d import (
    MSR_VEMULAPALLI_EXCLUDED,
    drop_lost_frames,
    plan_msr_action3d,
    read_msr_action3d_file,
)
from stgcn.data.transforms.spatial import view_joints
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import get_layout
from tests.source_writers import msr_text

MSR = get_layout("kinect-v1-msr")


def _pose(t: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.1, 1.0, size=(t, 20, 3)).astype(np.float32)


# ------------------------------------------------------------------------------------ lost tracking
def test_drop_lost_frames_keeps_the_real_frames_in_order():
    x = _pose(6)[:, None]
    x[[0, 2, 5]] = 0
    np.testing.assert_array_equal(drop_lost_frames(x), x[[1, 3, 4]])
    assert drop_lost_frames(np.zeros((4, 1, 20, 3), np.float32)).shape == (0, 1, 20, 3)


def test_prepare_drops_all_zero_frames_and_skips_all_zero_sequences(tmp_path):
    src = tmp_path / "msr"
    src.mkdir()
    x = _pose(10)
    x[[0, 1, 5, 9]] = 0                        # lost at the start, in the middle and at the end
    (src / "a01_s01_e01_skeleton3D.txt").write_text(msr_text(x))
    (src / "a02_s02_e01_skeleton3D.txt").write_text(msr_text(_pose(4, 1)))
    (src / "a03_s01_e01_skeleton3D.txt").write_text(msr_text(np.zeros((3, 20, 3))))
    s = prepare("msr-action3d", src, tmp_path / "s", workers=0)
    i = s.names.index("a01_s01_e01")
    np.testing.assert_allclose(s.clip(i)[:, 0], x[[2, 3, 4, 6, 7, 8]], atol=1e-6)
    assert s.lengths.tolist() == [6, 4] and s.manifest["counts"]["skipped"] == 1
    assert s.manifest["source"]["lost_frames"] == "all-zero frames dropped"
    raw, _ = read_msr_action3d_file(src / "a01_s01_e01_skeleton3D.txt")
    assert raw.shape == (10, 1, 20, 3)          # the file reader itself returns the file as it is


def test_files_option_leaves_out_vemulapalli_exclusions(tmp_path):
    src = tmp_path / "msr"
    src.mkdir()
    for name in ("a02_s03_e02", "a02_s03_e01", "a04_s04_e01"):
        (src / f"{name}_skeleton3D.txt").write_text(msr_text(_pose(3)))
    every = prepare("msr-action3d", src, tmp_path / "a", workers=0)
    used = prepare("msr-action3d", src, tmp_path / "b", workers=0, files="vemulapalli2014")
    assert sorted(every.names) == ["a02_s03_e01", "a02_s03_e02", "a04_s04_e01"]
    assert sorted(used.names) == ["a02_s03_e01", "a04_s04_e01"]
    assert used.manifest["source"]["files"] == "vemulapalli2014"
    with pytest.raises(ConfigError, match="'files': '557' is not valid; valid values are all, vemulapalli2014"):
        prepare("msr-action3d", src, tmp_path / "c", workers=0, files="557")
    with pytest.raises(DataError, match="valid lists are all, vemulapalli2014"):
        plan_msr_action3d(src, files="557")


# ------------------------------------------------------------------------------------------ real data
def test_layout_bones_and_indices_are_the_datasets_body_model(shared_data):
    sio = pytest.importorskip("scipy.io")
    bm = sio.loadmat(shared_data / "msr_action3d" / "protocol_vemulapalli2014" / "body_model.mat",
                     squeeze_me=True, struct_as_record=False)["body_model"]
    bones = {frozenset((int(a) - 1, int(b) - 1)) for a, b in bm.bones}
    assert bones == {frozenset(e) for e in MSR.edges if e[0] != e[1]}
    for key, joint in (("left_hip_index", "left_hip"), ("right_hip_index", "right_hip"),
                       ("hip_center_index", "hip_center"), ("head_index", "head"), ("left_wrist_index", "left_wrist"),
                       ("right_wrist_index", "right_wrist"), ("left_ankle_index", "left_ankle"),
                       ("right_ankle_index", "right_ankle")):
        assert MSR.joints[int(getattr(bm, key)) - 1] == joint


def test_joint_names_match_the_body_in_real_frames(shared_data):
    """Heights (y up) follow the names in every frame of a standing action: head > shoulders > hips > knees >
    ankles; view normalisation finds hip_center, spine and the two shoulders."""
    x, _ = read_msr_action3d_file(shared_data / "msr_action3d" / "a01_s01_e01_skeleton3D.txt")
    y = x[:, 0, :, 1]
    j = MSR.joints.index
    assert (y[:, j("head")] > y[:, j("shoulder_center")]).all()
    assert (y[:, j("shoulder_center")] > y[:, j("spine")]).all()
    assert (y[:, j("spine")] > y[:, j("hip_center")]).all()
    for side in ("left", "right"):
        assert (y[:, j("hip_center")] > y[:, j(f"{side}_knee")]).all()
        assert (y[:, j(f"{side}_knee")] > y[:, j(f"{side}_ankle")]).all()
    assert [MSR.joints[i] for i in view_joints(MSR)] == ["hip_center", "spine", "right_shoulder", "left_shoulder"]
    # units: metres in all three axes (z is the distance to the camera, about 2.6 m). The release's bones have
    # fixed lengths (the skeletons were fitted to one body model), which holds only when the axes share one unit
    pairs = [(a, b) for a, b in MSR.edges if a != b]

    def bone_cv(z_scale: float) -> float:
        p = x[:, 0] * np.array([1, 1, z_scale], np.float32)
        lengths = np.stack([np.linalg.norm(p[:, a] - p[:, b], axis=-1) for a, b in pairs], 1)
        return float(np.median(lengths.std(0) / lengths.mean(0)))

    assert bone_cv(1.0) < 1e-4 and bone_cv(2.0) > 1e-2 and bone_cv(0.5) > 1e-2
    assert 1.2 < float(np.median(y[:, j("head")] - y[:, j("left_ankle")])) < 2.0


def test_real_store_has_no_lost_frames_and_the_557_file_list(shared_data, tmp_path):
    sio = pytest.importorskip("scipy.io")
    s = prepare("msr-action3d", shared_data / "msr_action3d", tmp_path / "s", workers=0, files="vemulapalli2014")
    used = {str(n).strip().removesuffix(".txt").removesuffix("_skeleton3D") for n in sio.loadmat(
        shared_data / "msr_action3d" / "protocol_vemulapalli2014" / "files_used.mat", squeeze_me=True)["files_used"]}
    assert len(used) == 557 and set(s.names) == used
    every = {p.name.removesuffix("_skeleton3D.txt") for p in (shared_data / "msr_action3d").glob("*_skeleton3D.txt")}
    assert every - used == set(MSR_VEMULAPALLI_EXCLUDED)
    assert all(np.any(s.clip(i) != 0, axis=(1, 2, 3)).all() for i in range(len(s)))
    full = prepare("msr-action3d", shared_data / "msr_action3d", tmp_path / "all", workers=0)
    assert int(full.lengths[full.names.index("a13_s09_e03")]) == 196    # 936 lines: 196 frames + zero padding
    assert int(full.lengths[full.names.index("a20_s02_e03")]) == 20     # 33 of 53 frames lost mid-action
