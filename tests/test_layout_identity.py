"""Layout identity, validation and roles: the rules of stgcn.graph.validation, the fingerprint of stgcn.graph.identity,
the role resolution of stgcn.graph.roles, and every place data meets a model or another clip (one ``error:`` line
naming both layouts, exit 2), with the explicit remapping by joint name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stgcn.cli.main import main
from stgcn.data.readers.keypoints import read_keypoints_file, save_keypoints
from stgcn.data.store import StoreWriter, open_store
from stgcn.data.transforms.spatial import view_joints
from stgcn.errors import ConfigError, DataError
from stgcn.graph.identity import match_joints
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout, get_layout, load_layout
from stgcn.graph.roles import joint_side, resolve_role, split_side
from stgcn.inference.plots import _LEFT, _MIDDLE, _RIGHT, _side_colour

from .use_utils import small_checkpoint

CHAIN = {"name": "chain", "joints": ["pelvis", "spine", "neck", "head", "l_hand", "r_hand"],
         "edges": [[0, 1], [1, 2], [2, 3], [2, 4], [2, 5]], "center": 1}


def _layout(**changes) -> Layout:
    return Layout.from_dict({**CHAIN, **changes})


# ------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("changes, message", [
    ({"joints": ["a", "a", "b", "c", "d", "e"]}, "unique; repeated: a"),
    ({"edges": [[0, 1], [1, 2], [2, 3], [2, 4], [2, 9]]}, r"edge \(2, 9\) has a joint index outside"),
    ({"edges": [[0, 1], [1, 1], [2, 3], [2, 4], [2, 5]]}, "self-loop"),
    ({"edges": [[0, 1], [1, 2], [2, 3], [2, 4], [4, 2]]}, "listed twice"),
    ({"edges": [[0, 1], [1, 2], [2, 3]]}, "not connected: 2 joint.*l_hand, r_hand.*allow_disconnected"),
    ({"center": 6}, "center 6 is not a joint index"),
    ({"flip_pairs": [["l_hand", "l_hand"]]}, "with itself"),
    ({"flip_pairs": [["l_hand", "r_hand"], ["head", "l_hand"]]}, "more than one flip pair"),
    ({"flip_pairs": [[4, 7]]}, r"flip pair \(4, 7\) has a joint index outside"),
    ({"joints": ["pelvis", "spine", "neck", "head", "l_hand", "left_foot"], "flip_pairs": [[4, 5]]},
     "two left joints"),
    ({"roles": {"hips": "pelvis"}}, "unknown role 'hips'; valid roles are pelvis"),
    ({"roles": {"pelvis": 9}}, "outside"),
    ({"roles": {"pelvis": "spine", "spine": "spine"}}, "two roles"),
    ({"roles": {"left_shoulder": "r_hand"}}, "whose name says right"),
    ({"roles": {"pelvis": "nope"}}, "'nope' is not a joint name"),
    ({"allow_disconnected": "yes"}, "must be true or false"),
])
def test_invalid_layouts_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        _layout(**changes)


def test_disconnected_layout_allowed_when_declared():
    lay = _layout(edges=[[0, 1], [1, 2], [2, 3]], allow_disconnected=True)
    assert lay.allow_disconnected and lay.to_dict()["allow_disconnected"] is True
    assert Layout.from_dict(lay.to_dict()) == lay


def test_builtin_layouts_are_valid_and_their_dict_round_trips():
    for name, lay in BUILTIN_LAYOUTS.items():
        assert Layout.from_dict(lay.to_dict()) == lay, name
    # a layout without roles writes the dict it always did (no new keys)
    assert set(_layout().to_dict()) == {"name", "joints", "edges", "center", "source", "bones", "flip_pairs"}


def test_layout_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"joints: [a, \xff]\n")
    with pytest.raises(ConfigError, match=f"{bad}: not UTF-8"):
        load_layout(bad)
    bad.write_text("joints: [a, b\nedges: {")
    with pytest.raises(ConfigError, match=f"{bad}: invalid YAML at line"):
        load_layout(bad)


# ------------------------------------------------------------------------------------------ fingerprint
def test_fingerprint_is_stable_across_processes_and_versions():
    code = ("from stgcn.graph.layouts import BUILTIN_LAYOUTS as B; "
            "print(' '.join(B[n].fingerprint for n in ('coco-17', 'kinect-v1', 'ntu-rgb+d')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    assert out == [BUILTIN_LAYOUTS[n].fingerprint for n in ("coco-17", "kinect-v1", "ntu-rgb+d")]
    # pinned: a change of these values breaks every recorded fingerprint (stores, clips, checkpoints)
    assert out == ["e630d7590aff16e0", "9f0a37a8a522535d", "635ae410a6d4ee65"]


def test_fingerprint_covers_joint_order_edges_and_centre_only():
    base = _layout().fingerprint
    swapped = _layout(joints=["pelvis", "spine", "neck", "head", "r_hand", "l_hand"])
    assert swapped.fingerprint != base
    assert _layout(edges=[[0, 1], [1, 2], [2, 3], [2, 4], [1, 5]]).fingerprint != base
    assert _layout(center=2).fingerprint != base
    assert _layout(bones=[[0, 0], [1, 0], [2, 1], [3, 2], [4, 2], [5, 2]]).fingerprint != base
    # the same graph written differently, and what a model does not take in, keep it
    assert _layout(edges=[[2, 5], [4, 2], [3, 2], [2, 1], [1, 0]]).fingerprint == base
    same = _layout(name="other", source="x", flip_pairs=[["l_hand", "r_hand"]], roles={"pelvis": "pelvis"})
    assert same.fingerprint == base


def test_match_joints_rules():
    a, b = get_layout("kinect-v1"), get_layout("kinect-v1-msr")
    assert match_joints(a, a, data_what="d", target_what="t") is None
    with pytest.raises(DataError, match=r"d is in layout 'kinect-v1-msr' .*t expects 'kinect-v1' .*another "
                                         r"order; pass --remap-joints by-name"):
        match_joints(b, a, data_what="d", target_what="t")
    index = match_joints(b, a, data_what="d", target_what="t", remap="by-name")
    assert [b.joints[i] for i in index] == list(a.joints)
    with pytest.raises(DataError, match="the joints differ"):
        match_joints(get_layout("coco-17"), get_layout("openpose-18"), data_what="d", target_what="t")
    # same joints, another graph: fine for data meeting a model, refused between clips of one store
    ntu, mm = get_layout("ntu-rgb+d"), get_layout("ntu-rgb+d-mmaction")
    assert match_joints(ntu, mm, data_what="d", target_what="t") is None
    with pytest.raises(DataError, match="another graph"):
        match_joints(ntu, mm, data_what="d", target_what="t", graph=True)
    with pytest.raises(ConfigError, match="valid choices are none, by-name"):
        match_joints(a, a, data_what="d", target_what="t", remap="byname")


# ------------------------------------------------------------------------------------------------ roles
def test_roles_explicit_then_names():
    assert split_side("l_hand") == ("left", "hand") and split_side("RHip") == ("right", "hip")
    assert split_side("mouth_left") == ("left", "mouth") and split_side("neck") == (None, "neck")
    lay = Layout.from_dict({"name": "odd", "joints": ["root", "mid", "top", "LShoulder", "RShoulder"],
                            "edges": [[0, 1], [1, 2], [2, 3], [2, 4]], "center": 1,
                            "roles": {"pelvis": "root", "spine": "mid"}})
    assert resolve_role(lay, "pelvis") == 0 and resolve_role(lay, "spine") == 1
    assert resolve_role(lay, "left_shoulder") == 3 and resolve_role(lay, "right_shoulder") == 4
    assert resolve_role(lay, "head") is None
    assert view_joints(lay) == (0, 1, 4, 3)
    with pytest.raises(ConfigError, match="give them as 'roles' in the layout"):
        view_joints(_layout(joints=["a", "b", "c", "d", "e", "f"]))


def test_builtin_view_joints_unchanged():
    # the joints view normalisation used before roles existed (names looked up in a fixed order)
    assert view_joints(get_layout("kinect-v1")) == (0, 1, 8, 4)
    assert view_joints(get_layout("ntu-rgb+d")) == (0, 1, 8, 4)
    assert view_joints(get_layout("kinect-v1-msr")) == (6, 3, 1, 0)


def test_side_colours_use_roles_names_and_flip_partners():
    lay = Layout.from_dict({"name": "s", "joints": ["c", "l_hand", "r_hand", "a", "b"],
                            "edges": [[0, 1], [0, 2], [1, 3], [2, 4]], "center": 0,
                            "flip_pairs": [["a", "b"], ["l_hand", "r_hand"]]})
    assert joint_side(lay, 1) == "left" and joint_side(lay, 2) == "right"
    assert joint_side(lay, 3) is None  # partner b has no side either
    assert _side_colour(lay, 0, 1) == _MIDDLE
    lay2 = Layout.from_dict({**lay.to_dict(), "joints": ["c", "l_hand", "r_hand", "left_x", "b"],
                             "flip_pairs": [["left_x", "b"]]})
    assert joint_side(lay2, 4) == "right" and _side_colour(lay2, 2, 4) == _RIGHT and _side_colour(lay2, 1, 3) == _LEFT


# ----------------------------------------------------------------------------- data meets model / clip
def _error_line(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:"), (code, err)
    return err[0]


def _clip(v: int, seed: int = 0, t: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(t, 1, v, 3)).astype(np.float32)


def test_prepare_keypoints_refuses_mixed_layouts(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    save_keypoints(src / "a.json", _clip(20), layout="kinect-v1", label="x")
    save_keypoints(src / "b.json", _clip(20, 1), layout="kinect-v1-msr", label="y")
    line = _error_line(capsys, ["prepare", "keypoints", str(src), str(tmp_path / "s")])
    assert f"{src / 'b.json'}" in line and "'kinect-v1-msr'" in line and f"first clip ({src / 'a.json'})" in line
    assert "'kinect-v1'" in line and "another order" in line
    # the same with --layout: names the file, its layout and the requested one
    line = _error_line(capsys, ["prepare", "keypoints", str(src), str(tmp_path / "s"), "--layout", "kinect-v1"])
    assert "b.json is in layout 'kinect-v1-msr'" in line and "--layout expects 'kinect-v1'" in line
    # remapping by name reorders the MSR-ordered clip into the store's order
    assert main(["prepare", "keypoints", str(src), str(tmp_path / "s"), "--layout", "kinect-v1",
                 "--remap-joints", "by-name", "--workers", "0"]) == 0
    store = open_store(tmp_path / "s")
    msr, ucla = get_layout("kinect-v1-msr"), get_layout("kinect-v1")
    expected = _clip(20, 1)[:, :, [msr.joints.index(j) for j in ucla.joints]]
    np.testing.assert_allclose(store.clip(store.names.index("b")), expected, rtol=1e-6)
    assert store.manifest["layout_fingerprint"] == ucla.fingerprint
    assert not list(tmp_path.glob(".s.partial-*"))


@pytest.mark.parametrize("declared, message", [
    ("no-such-layout", "unknown layout 'no-such-layout'"),
    ("typo.json", "typo.json"),
    ("coco-17", "layout 'coco-17' has 17"),
])
def test_prepare_keypoints_refuses_a_bad_declared_layout_even_with_layout(tmp_path, capsys, declared, message,
                                                                         fifteen_file):
    src = tmp_path / "src"
    src.mkdir()
    save_keypoints(src / "a.json", _clip(15), layout=_fifteen(), label="x")
    obj = json.loads((src / "a.json").read_text())
    obj["layout"] = declared
    del obj["layout_fingerprint"]
    (src / "b.json").write_text(json.dumps(obj))
    line = _error_line(capsys, ["prepare", "keypoints", str(src), str(tmp_path / "s"),
                                "--layout", str(fifteen_file)])
    assert "b.json" in line and message in line


def _fifteen() -> Layout:
    return Layout.from_dict({"name": "florence-15", "joints": [f"j{i}" for i in range(15)],
                             "edges": [[i, i + 1] for i in range(14)], "center": 7})


@pytest.fixture
def fifteen_file(tmp_path) -> Path:
    path = tmp_path / "fifteen.json"
    path.write_text(json.dumps(_fifteen().to_dict()))
    return path


def test_recorded_clip_fingerprint_is_checked(tmp_path):
    path = tmp_path / "c.json"
    save_keypoints(path, _clip(20), layout="kinect-v1")
    obj = json.loads(path.read_text())
    assert obj["layout_fingerprint"] == get_layout("kinect-v1").fingerprint
    obj["layout_fingerprint"] = "0" * 16
    path.write_text(json.dumps(obj))
    with pytest.raises(DataError, match="recorded layout fingerprint 0000000000000000 differs"):
        read_keypoints_file(path)
    npz = tmp_path / "c.npz"
    save_keypoints(npz, _clip(20), layout="kinect-v1")
    assert read_keypoints_file(npz)[2]["layout"] == get_layout("kinect-v1")


def test_predict_checks_the_clips_layout(tmp_path, capsys):
    ckpt = small_checkpoint(tmp_path / "m.pt", layout="kinect-v1")
    clip = tmp_path / "msr.json"
    x = _clip(20, 3, t=40)
    save_keypoints(clip, x, layout="kinect-v1-msr")
    line = _error_line(capsys, ["predict", str(ckpt), str(clip)])
    assert "msr.json is in layout 'kinect-v1-msr'" in line and "the model expects 'kinect-v1'" in line
    # --layout naming another layout than the model's: refused by the model check
    raw = tmp_path / "raw.json"
    obj = json.loads(clip.read_text())
    del obj["layout"], obj["layout_fingerprint"]
    raw.write_text(json.dumps(obj))
    line = _error_line(capsys, ["predict", str(ckpt), str(raw), "--layout", "kinect-v1-msr"])
    assert "'kinect-v1-msr'" in line and "the model expects 'kinect-v1'" in line
    # remapped by name: the same prediction as the clip reordered by hand
    assert main(["predict", str(ckpt), str(clip), "--remap-joints", "by-name", "--json"]) == 0
    remapped = json.loads(capsys.readouterr().out)
    msr, ucla = get_layout("kinect-v1-msr"), get_layout("kinect-v1")
    save_keypoints(tmp_path / "ucla.json", x[:, :, [msr.joints.index(j) for j in ucla.joints]], layout="kinect-v1")
    assert main(["predict", str(ckpt), str(tmp_path / "ucla.json"), "--json"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert len(remapped) == len(direct) == 1  # predict --json: always a list, one object per clip
    assert remapped[0]["topk"] == direct[0]["topk"]


def test_eval_refuses_a_store_of_another_joint_order(tmp_path, capsys):
    ckpt = small_checkpoint(tmp_path / "m.pt", layout="kinect-v1")
    with StoreWriter(tmp_path / "s", "kinect-v1-msr", ["x", "y", "z"], ["a", "b"]) as w:
        for i in range(4):
            w.add(f"c{i}", _clip(20, i, t=20), i % 2, splits=["test"])
        w.finish()
    line = _error_line(capsys, ["eval", str(ckpt), str(tmp_path / "s"), "--split", "test"])
    assert "the store is in layout 'kinect-v1-msr'" in line and "the model expects 'kinect-v1'" in line


def test_render_with_a_custom_inline_checkpoint_layout(tmp_path, fifteen_file):
    pytest.importorskip("matplotlib")
    ckpt = small_checkpoint(tmp_path / "m.pt", layout=str(fifteen_file))
    clip = tmp_path / "c.json"
    save_keypoints(clip, _clip(15, t=40), layout=_fifteen())
    out = tmp_path / "r.gif"
    assert main(["render", str(clip), "--out", str(out), "--checkpoint", str(ckpt)]) == 0
    assert out.stat().st_size > 0


# ---------------------------------------------------------------------------------------------- stores
def _small_store(path: Path, layout: str | Layout = "kinect-v1", **kwargs) -> None:
    with StoreWriter(path, layout, ["x", "y", "z"], ["a"], **kwargs) as w:
        w.add("c0", _clip(get_layout(layout).num_joints), 0, splits=["train"])
        w.finish()


def test_store_manifest_records_and_checks_the_fingerprint(tmp_path):
    _small_store(tmp_path / "s")
    manifest_path = tmp_path / "s" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["layout"] == "kinect-v1" and manifest["layout_fingerprint"] == "9f0a37a8a522535d"
    manifest_path.write_text(json.dumps({**manifest, "layout_fingerprint": "1" * 16}))
    with pytest.raises(DataError, match="manifest.json: recorded layout fingerprint 1111111111111111 differs"):
        open_store(tmp_path / "s")
    old = {k: v for k, v in manifest.items() if k != "layout_fingerprint"}  # written before fingerprints
    manifest_path.write_text(json.dumps(old))
    assert open_store(tmp_path / "s").layout.name == "kinect-v1"
    manifest_path.write_text(json.dumps({**manifest, "num_joints": 25}))
    with pytest.raises(DataError, match="num_joints 25 differs"):
        open_store(tmp_path / "s")


def test_store_write_failure_removes_the_partial_output(tmp_path, monkeypatch):
    import errno

    from stgcn.data import store_writer

    writer = StoreWriter(tmp_path / "s", "kinect-v1", ["x", "y", "z"], ["a"])

    class Full:
        closed = False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.closed = True
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, "_frames", Full())
    with pytest.raises(DataError, match=f"{tmp_path / 's'}: cannot write the store \\(No space left on device\\); "
                                        "the partial output was removed"):
        with writer:
            writer.add("c0", _clip(20), 0)
    assert not list(tmp_path.iterdir())
    assert store_writer.sweep_stale(tmp_path / "s") == []


def test_stale_partial_folders_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f".s.partial-{dead}-deadbeef"
    stale.mkdir()
    (stale / "frames.bin").write_bytes(b"x" * 100)
    mine = tmp_path / f".s.partial-{__import__('os').getpid()}-cafecafe"  # a live process's: kept
    mine.mkdir()
    old = tmp_path / f".s.old-{dead}-deadbeef"  # the only copy of a replaced store: kept
    (old / "store").mkdir(parents=True)
    _small_store(tmp_path / "s")
    assert not stale.exists() and mine.exists() and old.exists()
    _small_store(tmp_path / "s", overwrite=True)  # now the store exists: the stale old copy goes
    assert not old.exists()


def test_full_disk_on_tmpfs_leaves_nothing(tmp_path, capsys):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        src = tmp_path / "src"
        src.mkdir()
        for i in range(8):
            save_keypoints(src / f"c{i}.npz", _clip(20, i, t=1000), layout="kinect-v1", label="x")
        line = _error_line(capsys, ["prepare", "keypoints", str(src), str(mnt / "s"), "--workers", "0",
                                    "--no-progress"])
        assert f"{mnt / 's'}: cannot write the store" in line and "No space left" in line
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_checkpoint_records_and_checks_the_fingerprint(tmp_path):
    import torch

    from stgcn.engine.checkpoint import load_checkpoint
    from stgcn.errors import CheckpointError

    path = small_checkpoint(tmp_path / "m.pt", layout="kinect-v1")
    raw = torch.load(path, weights_only=True)
    assert raw["layout_fingerprint"] == get_layout("kinect-v1").fingerprint
    torch.save({**raw, "layout_fingerprint": "2" * 16}, path)
    with pytest.raises(CheckpointError, match="recorded layout fingerprint 2222222222222222 differs"):
        load_checkpoint(path)
    torch.save({k: v for k, v in raw.items() if k != "layout_fingerprint"}, path)  # an older checkpoint
    assert load_checkpoint(path).config.graph.layout == "kinect-v1"


def test_predict_checks_the_layout_a_file_format_implies(tmp_path, capsys):
    from .source_writers import msr_text

    ckpt = small_checkpoint(tmp_path / "m.pt", layout="kinect-v1")
    x = np.random.default_rng(0).uniform(0.5, 2.0, size=(40, 20, 3)).astype(np.float32)
    path = tmp_path / "a01_s01_e01_skeleton3D.txt"
    path.write_text(msr_text(x))
    line = _error_line(capsys, ["predict", str(ckpt), str(path)])
    assert "a01_s01_e01_skeleton3D.txt is in layout 'kinect-v1-msr'" in line and "the model expects 'kinect-v1'" in line
    assert main(["predict", str(ckpt), str(path), "--remap-joints", "by-name"]) == 0
