"""Pictures: reference poses, layout/partition plots, edge-importance plots, skeleton animations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stgcn.cli import main
from stgcn.data.transforms import PreprocessConfig
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout
from stgcn.inference.render import _orientation, edge_importance, reference_pose, render_clip
from tests.use_utils import small_checkpoint, small_model

pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")


def _png(path) -> np.ndarray:
    with PIL.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def _gif_frames(path) -> list[np.ndarray]:
    with PIL.open(path) as im:
        assert im.format == "GIF"
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
    return frames


# ------------------------------------------------------------------------------------- reference pose
@pytest.mark.parametrize("name", list(BUILTIN_LAYOUTS))
def test_reference_pose_of_builtin_layouts(name):
    lay = BUILTIN_LAYOUTS[name]
    pos = reference_pose(lay)
    assert pos.shape == (lay.num_joints, 2)
    assert len({tuple(p) for p in pos}) == lay.num_joints  # no two joints drawn on top of each other
    for i, joint in enumerate(lay.joints):  # a front view: the person's left is on the right
        if joint.startswith("left_") and joint.replace("left_", "right_") in lay.joints:
            assert pos[i, 0] > pos[lay.joints.index(joint.replace("left_", "right_")), 0]
    if "nose" in lay.joints and "left_ankle" in lay.joints:
        assert pos[lay.joints.index("nose"), 1] > pos[lay.joints.index("left_ankle"), 1]


def test_reference_pose_falls_back_to_a_tree():
    lay = Layout("chain", ("a", "b", "c", "d"), ((0, 1), (1, 2), (1, 3)), center=1)
    pos = reference_pose(lay)
    # root b on top, its neighbours a, c, d one level down and spread out
    assert pos[1, 1] > pos[0, 1] == pos[2, 1] == pos[3, 1]
    assert len({pos[0, 0], pos[2, 0], pos[3, 0]}) == 3


# --------------------------------------------------------------------------------------- orientation
def test_orientation_of_image_and_camera_frames():
    lay = BUILTIN_LAYOUTS["openpose-18"]
    xy = np.zeros((1, 1, 18, 2), np.float32)
    xy[..., 1] = np.linspace(0, 100, 18)  # joints further down the list lower in the image (y down)
    xy[0, 0, 0, 1] = 0   # nose at the top
    xy[0, 0, 13, 1] = 100  # left ankle at the bottom
    valid = np.ones((1, 1, 18), bool)
    assert _orientation(xy, valid, lay) == (0, 1.0, 1, -1.0)  # x kept, y flipped to point up
    kinect = BUILTIN_LAYOUTS["kinect-v1"]
    xyz = np.zeros((1, 1, 20, 3), np.float32)
    xyz[..., 2] = 3.0  # 3 m in front of the sensor
    xyz[0, 0, 3, 1] = 0.8   # head up (+y)
    xyz[0, 0, 15, 1] = -0.9  # left foot down
    xyz[0, 0, 19, 1] = -0.9
    valid = np.ones((1, 1, 20), bool)
    # right-handed x (sensor's left), y up, z forward: the camera's view has x pointing left
    assert _orientation(xyz, valid, kinect) == (0, -1.0, 1, 1.0)
    xyz[..., 2] -= 3.0  # centred data: no camera frame, keep x
    assert _orientation(xyz, valid, kinect) == (0, 1.0, 1, 1.0)


# ---------------------------------------------------------------------------------------- plots
def test_graph_plot(tmp_path, capsys):
    out = tmp_path / "graph.png"
    assert main(["graph", "openpose-18", "--plot", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    img = _png(out)
    # four panels side by side (skeleton + root/centripetal/centrifugal), with drawn content
    assert img.shape[1] > 3 * img.shape[0] and img.std() > 10
    assert main(["graph", "ntu-rgb+d", "--strategy", "distance", "--max-hop", "2", "--plot",
                 str(tmp_path / "g.svg")]) == 0
    assert (tmp_path / "g.svg").read_text().startswith("<?xml")
    assert main(["graph", "openpose-18", "--plot", str(tmp_path / "g.txt")]) == 2
    assert "must end in .png, .pdf, .svg" in capsys.readouterr().err


def test_edge_importance_values():
    model = small_model(blocks=((8, 1),))
    a = model.A.numpy()
    m = np.arange(a.size, dtype=np.float32).reshape(a.shape) / a.size
    with torch.no_grad():
        model.blocks[0].gcn.edge_importance.copy_(torch.from_numpy(m))
    edges, joints = edge_importance(model)
    lay = BUILTIN_LAYOUTS["openpose-18"]
    for e, (u, w) in enumerate(lay.edges):
        vals = [m[k, s, t] for k in range(a.shape[0]) for s, t in ((u, w), (w, u)) if a[k, s, t] != 0]
        assert len(vals) == 2  # spatial strategy: the edge is centripetal one way, centrifugal the other
        assert edges[0, e] == pytest.approx(np.mean(vals))
    np.testing.assert_allclose(joints[0], m[0, np.arange(18), np.arange(18)], rtol=1e-6)  # self: partition 0


def test_plot_graph_command(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "ck.pt", blocks=((8, 1), (8, 1), (16, 2)))
    out = tmp_path / "importance.png"
    assert main(["plot-graph", str(ck), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    img = _png(out)
    assert img.shape[1] > img.shape[0] and img.std() > 10
    small_checkpoint(tmp_path / "flat.pt", edge_importance=False)
    assert main(["plot-graph", str(tmp_path / "flat.pt"), "--out", str(out)]) == 2
    assert "has no learned edge importance" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- render
def _walking_clip(t: int = 12) -> np.ndarray:
    """openpose-18 reference pose in image coordinates (y down), moving right by 5 px a frame."""
    pos = reference_pose("openpose-18")
    x = np.zeros((t, 1, 18, 3), np.float32)
    for f in range(t):
        x[f, 0, :, 0] = 200 + 100 * pos[:, 0] + 5 * f
        x[f, 0, :, 1] = 300 - 100 * pos[:, 1]
        x[f, 0, :, 2] = 0.9
    return x


def test_render_gif_moves_and_hides_undetected_joints(tmp_path):
    clip = _walking_clip()
    clip[:, 0, 4, 2] = 0  # right wrist never detected
    out = tmp_path / "walk.gif"
    assert render_clip(clip, "openpose-18", out, fps=10, channels=("x", "y", "score")) == 12
    frames = _gif_frames(out)
    assert len(frames) == 12 and frames[0].shape == (480, 480, 3)
    dark = [np.argwhere(f.sum(axis=-1) < 200) for f in frames]  # joints are near-black dots
    assert dark[-1][:, 1].mean() > dark[0][:, 1].mean() + 10  # the skeleton moved right
    with pytest.raises(ConfigError, match="must end in .gif, .mp4"):
        render_clip(clip, "openpose-18", tmp_path / "walk.avi")
    with pytest.raises(DataError, match="no visible joint"):
        render_clip(np.zeros_like(clip), "openpose-18", out)


def test_render_command_with_checkpoint_gif_and_mp4(tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg")
    import imageio_ffmpeg

    pre = PreprocessConfig(length=None, channels=("x", "y", "score"), image_size=(400, 400))
    ck = small_checkpoint(tmp_path / "ck.pt", preprocess=pre.to_dict())
    np.save(tmp_path / "clip.npy", _walking_clip(30))
    gif = tmp_path / "anim.gif"
    assert main(["render", str(tmp_path / "clip.npy"), "--out", str(gif), "--checkpoint", str(ck),
                 "--channels", "x,y,score", "--window", "20", "--stride", "5"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {gif}: 30 frames, layout openpose-18, clip: ")
    assert len(_gif_frames(gif)) == 30
    mp4 = tmp_path / "anim.mp4"
    assert main(["render", str(tmp_path / "clip.npy"), "--out", str(mp4), "--layout", "openpose-18",
                 "--fps", "15"]) == 0
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert meta["size"] == (480, 480) and meta["fps"] == 15
    assert sum(1 for _ in reader) == 30
    assert main(["render", str(tmp_path / "clip.npy"), "--out", str(mp4)]) == 2
    assert "does not name its layout" in capsys.readouterr().err


def test_render_reads_3d_files(shared_data, tmp_path):
    out = tmp_path / "ntu.gif"
    assert main(["render", str(shared_data / "ntu_samples" / "S002C001P003R001A003.skeleton"), "--out",
                 str(out)]) == 0
    frames = _gif_frames(out)
    assert len(frames) == 100


def test_missing_plot_extra_is_named(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    assert main(["graph", "openpose-18", "--plot", str(tmp_path / "g.png")]) == 2
    assert "need matplotlib, which the 'plot' extra installs: pip install 'stgcn[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()
