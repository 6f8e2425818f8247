"""Video -> pose -> action: landmark mapping, `stgcn pose`, `stgcn video`, the Kinetics demo clip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stgcn.cli import main
from stgcn.data.channels import normalize_original
from stgcn.data.transforms import PreprocessConfig
from stgcn.errors import ConfigError
from stgcn.inference.pose import MEDIAPIPE_TO_COCO_17, PoseSequence, landmarks_to_layout
from stgcn.inference.predict import Predictor
from stgcn.inference.video import model_channels, pose_to_model_input
from tests.use_utils import small_checkpoint, small_model


def _landmarks(t: int = 2) -> np.ndarray:
    """(T, 1, 33, 4) landmarks: x = 10 * index + frame, y = 5 * index, z = -index, visibility 0.5 + index / 100."""
    lm = np.zeros((t, 1, 33, 4), np.float32)
    idx = np.arange(33, dtype=np.float32)
    for f in range(t):
        lm[f, 0, :, 0] = 10 * idx + f
        lm[f, 0, :, 1] = 5 * idx
        lm[f, 0, :, 2] = -idx
        lm[f, 0, :, 3] = 0.5 + idx / 100
    return lm


def test_mediapipe_to_openpose_18():
    lm = _landmarks()
    op = landmarks_to_layout(lm, "openpose-18")
    assert op.shape == (2, 1, 18, 4)
    # nose, right shoulder (mp 12), left wrist (mp 15), right eye (mp 5), left ear (mp 7)
    for joint, mp in ((0, 0), (2, 12), (7, 15), (14, 5), (17, 7), (8, 24), (13, 27)):
        np.testing.assert_array_equal(op[:, 0, joint], lm[:, 0, mp])
    # neck: midpoint of the shoulders (mp 11 and 12), the smaller of their scores
    np.testing.assert_allclose(op[1, 0, 1], [115 + 1, 57.5, -11.5, 0.61])
    coco = landmarks_to_layout(lm, "coco-17")
    np.testing.assert_array_equal(coco[0, 0], lm[0, 0, list(MEDIAPIPE_TO_COCO_17)])
    np.testing.assert_array_equal(landmarks_to_layout(lm, "mediapipe-pose-33"), lm)
    with pytest.raises(ConfigError, match="supported layouts are openpose-18, coco-17, mediapipe-pose-33"):
        landmarks_to_layout(lm, "ntu-rgb+d")


def test_original_normalisation_and_model_input():
    lm = _landmarks(1)
    lm[0, 0, 15] = 0  # left wrist undetected (score 0)
    pose = PoseSequence(lm, width=340, height=256, fps=30.0, source="x.mp4")
    norm = normalize_original(landmarks_to_layout(lm, "openpose-18"), (340, 256), ("x", "y", "z", "score"))
    np.testing.assert_allclose(norm[0, 0, 0], [0 / 340 - 0.5, 0 / 256 - 0.5, 0, 0.5])
    np.testing.assert_allclose(norm[0, 0, 2], [120 / 340 - 0.5, 60 / 256 - 0.5, -12 / 340, 0.62], rtol=1e-6)
    np.testing.assert_array_equal(norm[0, 0, 7], 0)  # undetected joint: all zero
    # no stored preprocessing (a converted original checkpoint): the original demo's (x/W-0.5, y/H-0.5, score)
    p = Predictor(small_model())
    assert model_channels(p) == ("x", "y", "score")
    np.testing.assert_allclose(pose_to_model_input(pose, p), norm[..., [0, 1, 3]])
    # stored normalisation by image size (680, 128): pixels rescaled to that frame
    pre = PreprocessConfig(channels=("x", "y", "score"), image_size=(680, 128))
    p2 = Predictor(small_model(), preprocess=pre)
    x2 = pose_to_model_input(pose, p2)
    np.testing.assert_allclose(x2[0, 0, 2], [240, 30, 0.62], rtol=1e-6)
    with pytest.raises(ConfigError, match="cannot be made from MediaPipe Pose"):
        pose_to_model_input(pose, Predictor(small_model(layout="ntu-rgb+d")))


@pytest.fixture
def demo_video(shared_data):
    pytest.importorskip("mediapipe")
    pytest.importorskip("imageio_ffmpeg")
    path = shared_data / "kinetics_demo" / "clean_and_jerk.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_pose_command(demo_video, shared_data, tmp_path, capsys):
    from stgcn.data.sources import read_clip_file

    out = tmp_path / "clip.json"
    assert main(["pose", str(demo_video), "--out", str(out), "--max-frames", "12"]) == 0
    assert capsys.readouterr().out.strip() == (f"wrote {out}: 12 frames (12 with a person), layout openpose-18, "
                                               f"340x256 at 29.97 fps")
    x, scores, meta = read_clip_file(out)
    assert x.shape == (12, 1, 18, 2) and scores.shape == (12, 1, 18)
    assert meta["layout"].name == "openpose-18" and meta["image_size"] == [340.0, 256.0]
    assert 0 < x[..., 0].min() and x[..., 0].max() < 340 and 0.5 < scores.mean() <= 1
    # normalised as the original demo: the skeletons the original code's reference logits were computed on
    norm = tmp_path / "norm.json"
    # (with MediaPipe's legacy solution, which made them; the default backend is LiteRT where it is installed)
    assert main(["pose", str(demo_video), "--out", str(norm), "--max-frames", "12", "--normalize",
                 "--backend", "mediapipe"]) == 0
    x, scores, meta = read_clip_file(norm)
    ref = np.load(shared_data / "st_gcn_kinetics" / "reference_logits_original_code.npz")["input__clean_and_jerk"]
    np.testing.assert_allclose(x[:, 0].transpose(2, 0, 1), ref[:2, :12, :, 0], atol=1e-6)
    np.testing.assert_allclose(scores[:, 0], ref[2, :12, :, 0], atol=1e-6)
    npz = tmp_path / "clip33.npz"
    assert main(["pose", str(demo_video), "--out", str(npz), "--max-frames", "3", "--layout", "mediapipe-pose-33",
                 "--depth", "--normalize"]) == 0
    x, scores, meta = read_clip_file(npz)
    assert x.shape == (3, 1, 33, 3) and meta["channels"] == ["x", "y", "z"] and meta["image_size"] is None
    assert np.abs(x[..., :2]).max() <= 0.5


def test_video_command_small_model(demo_video, tmp_path, capsys):
    import imageio_ffmpeg

    ck = small_checkpoint(tmp_path / "ck.pt")
    out, report = tmp_path / "annotated.mp4", tmp_path / "report.json"
    assert main(["video", str(demo_video), "--checkpoint", str(ck), "--out", str(out), "--json", str(report),
                 "--max-frames", "30", "--window", "20", "--stride", "10"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{demo_video}: 30 frames, a person in 30\nclip: ")
    doc = json.loads(report.read_text())
    assert doc["num_frames"] == 30 and doc["width"] == 340 and doc["layout"] == "openpose-18"
    assert [(w["start"], w["end"]) for w in doc["windows"]] == [(0, 20), (10, 30)]
    assert len(doc["frame_labels"]) == 30 and None not in doc["frame_labels"]
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"] == (340, 256)
    frames = [np.frombuffer(f, np.uint8).reshape(256, 340, 3) for f in reader]
    assert len(frames) == 30
    # the label box (black background, white text) is drawn in the top-left corner
    corner = frames[0][:20, :60].astype(int)
    assert (corner.sum(-1) < 60).mean() > 0.3 and (corner.min(-1) > 200).any()
    assert main(["video", str(demo_video), "--checkpoint", str(ck), "--out", str(tmp_path / "a.avi")]) == 2
    assert "must end in .mp4" in capsys.readouterr().err


@pytest.mark.slow
def test_kinetics_demo_clip_is_clean_and_jerk(demo_video, shared_data, tmp_path, capsys):
    """The original Kinetics weights, converted, on MediaPipe skeletons of the demo clip (about 20 s)."""
    from stgcn.convert.original import convert_original
    from stgcn.engine.checkpoint import save_checkpoint

    model = convert_original(shared_data / "st_gcn_kinetics" / "st_gcn.kinetics.fp32_from_int8.pt",
                             layout="openpose-18", strategy="spatial", num_classes=400)
    names = (shared_data / "kinetics_demo" / "kinetics400_label_name.txt").read_text().splitlines()
    save_checkpoint(tmp_path / "kinetics.pt", model, class_names=names)
    report, out = tmp_path / "report.json", tmp_path / "annotated.mp4"
    assert main(["video", str(demo_video), "--checkpoint", str(tmp_path / "kinetics.pt"), "--json", str(report),
                 "--out", str(out)]) == 0
    doc = json.loads(report.read_text())
    assert doc["num_frames"] == 300 and doc["frames_with_person"] == 300
    top = doc["prediction"]["topk"][0]
    assert top["label"] == "clean and jerk" and top["score"] > 0.9
    assert doc["windows"][-1]["topk"][0]["label"] == "clean and jerk"
    assert "clip: clean and jerk" in capsys.readouterr().out
    assert out.stat().st_size > 10_000


@pytest.mark.slow
def test_kinetics_demo_clip_is_clean_and_jerk_with_litert(shared_data, tmp_path, capsys):
    """The same clip through the LiteRT BlazePose backend (every supported Python, no MediaPipe needed)."""
    pytest.importorskip("ai_edge_litert.interpreter", reason="the LiteRT pose backend needs ai-edge-litert")
    pytest.importorskip("cv2", reason="reading videos needs OpenCV")
    from stgcn.convert.original import convert_original
    from stgcn.engine.checkpoint import save_checkpoint

    video = shared_data / "kinetics_demo" / "clean_and_jerk.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    model = convert_original(shared_data / "st_gcn_kinetics" / "st_gcn.kinetics.fp32_from_int8.pt",
                             layout="openpose-18", strategy="spatial", num_classes=400)
    names = (shared_data / "kinetics_demo" / "kinetics400_label_name.txt").read_text().splitlines()
    save_checkpoint(tmp_path / "kinetics.pt", model, class_names=names)
    report = tmp_path / "report.json"
    assert main(["video", str(video), "--checkpoint", str(tmp_path / "kinetics.pt"), "--json", str(report),
                 "--backend", "litert"]) == 0
    doc = json.loads(report.read_text())
    assert doc["num_frames"] == 300 and doc["frames_with_person"] == 300
    top = doc["prediction"]["topk"][0]
    assert top["label"] == "clean and jerk" and top["score"] > 0.9
    assert doc["windows"][-1]["topk"][0]["label"] == "clean and jerk"
    assert "clip: clean and jerk" in capsys.readouterr().out


def test_missing_video_extra_is_named(shared_data, tmp_path, monkeypatch, capsys):
    import sys

    pytest.importorskip("cv2")
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as if mediapipe were not installed
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter"):  # nor LiteRT, the other pose backend
        monkeypatch.setitem(sys.modules, name, None)
    video = shared_data / "kinetics_demo" / "clean_and_jerk.mp4"
    assert main(["pose", str(video), "--out", str(tmp_path / "clip.json")]) == 2
    assert "pip install 'stgcn[video]' (mediapipe==0.10.14)" in capsys.readouterr().err
    assert main(["pose", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "clip.json")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.mp4'}: no such video file"


@pytest.fixture
def two_people_video(shared_data, tmp_path_factory):
    """The weightlifter (left) and the tai chi clip (right) side by side, 680 x 256, built with ffmpeg."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    pytest.importorskip("ai_edge_litert.interpreter", reason="several people need the LiteRT pose backend")
    pytest.importorskip("cv2", reason="reading videos needs OpenCV")
    import subprocess

    demo = shared_data / "kinetics_demo"
    if not (demo / "clean_and_jerk.mp4").is_file() or not (demo / "ta_chi.mp4").is_file():
        pytest.skip("kinetics demo clips not found")
    out = tmp_path_factory.mktemp("two") / "two.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(demo / "clean_and_jerk.mp4"),
                    "-i", str(demo / "ta_chi.mp4"), "-filter_complex", "[0:v][1:v]hstack=inputs=2,format=yuv420p",
                    "-t", "10", "-c:v", "libx264", "-preset", "veryfast", str(out)], check=True)
    return out


def _tracks_by_side(doc):
    left = right = None
    for t in doc["tracks"]:
        xs = [(b[0] + b[2]) / 2 for b in t["boxes"] if b is not None]
        if np.median(xs) < 340:
            left = t
        else:
            right = t
    return left, right


def test_video_tracks_two_people(two_people_video, tmp_path, capsys):
    from stgcn.data.sources import read_clip_file

    ck = small_checkpoint(tmp_path / "ck.pt")
    report, kp = tmp_path / "report.json", tmp_path / "kp.json"
    assert main(["video", str(two_people_video), "--checkpoint", str(ck), "--json", str(report), "--max-frames",
                 "30", "--window", "20", "--stride", "10", "--max-people", "2", "--backend", "litert",
                 "--save-keypoints", str(kp)]) == 0
    doc = json.loads(report.read_text())
    assert doc["width"] == 680 and len(doc["tracks"]) == 2
    left, right = _tracks_by_side(doc)
    for t in (left, right):
        assert t["first_frame"] == 0 and t["last_frame"] == 29 and len(t["boxes"]) == 30
        assert [(w["start"], w["end"]) for w in t["windows"]] == [(0, 20), (10, 30)]
        assert t["label"] == t["prediction"]["topk"][0]["label"] and 0 < t["score"] <= 1
    x, scores, meta = read_clip_file(kp)
    assert x.shape == (30, 2, 18, 2) and meta["image_size"] == [680.0, 256.0]
    assert json.loads(kp.read_text())["fps"] == pytest.approx(29.97, abs=0.01)
    assert "track 1: frames 0-29" in capsys.readouterr().out


def test_live_command_on_a_video(two_people_video, tmp_path, capsys):
    import imageio_ffmpeg

    ck = small_checkpoint(tmp_path / "ck.pt")
    out = tmp_path / "live.mp4"
    assert main(["live", "--source", str(two_people_video), "--checkpoint", str(ck), "--max-frames", "25",
                 "--window", "20", "--stride", "10", "--out", str(out), "--stats"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert sorted(e["track"] for e in events if e["event"] == "track_start") == [0, 1]
    preds = [e for e in events if e["event"] == "prediction"]
    assert {e["track"] for e in preds} == {0, 1} and all(e["window"][1] <= e["frame"] + 1 for e in preds)
    stats = events[-1]
    assert stats["event"] == "stats" and stats["frames"] == 25
    # frames read ahead in a thread (its time counted), the model in the background, every stage timed
    assert stats["decode_ms_per_frame"] > 0 and stats["pose_cpu_ms_per_frame"] > 0 and stats["forward_passes"] >= 2
    assert stats["frames_per_s"] == pytest.approx(25 / stats["wall_s"], rel=0.02)
    reader = imageio_ffmpeg.read_frames(str(out))
    assert next(reader)["size"] == (680, 256)


@pytest.mark.slow
def test_two_people_weightlifter_is_still_clean_and_jerk(two_people_video, shared_data, tmp_path, capsys):
    """Two stable tracks with their own labels; the weightlifter stays "clean and jerk" (about 40 s)."""
    from stgcn.convert.original import convert_original
    from stgcn.engine.checkpoint import save_checkpoint

    model = convert_original(shared_data / "st_gcn_kinetics" / "st_gcn.kinetics.fp32_from_int8.pt",
                             layout="openpose-18", strategy="spatial", num_classes=400)
    names = (shared_data / "kinetics_demo" / "kinetics400_label_name.txt").read_text().splitlines()
    save_checkpoint(tmp_path / "kinetics.pt", model, class_names=names)
    report = tmp_path / "report.json"
    assert main(["video", str(two_people_video), "--checkpoint", str(tmp_path / "kinetics.pt"), "--json",
                 str(report), "--max-people", "2", "--backend", "litert"]) == 0
    doc = json.loads(report.read_text())
    assert len(doc["tracks"]) == 2
    left, right = _tracks_by_side(doc)
    assert left["label"] == "clean and jerk" and left["score"] > 0.9
    assert right["label"] != "clean and jerk"
    for t in (left, right):  # stable: each person is one track over (nearly) the whole clip
        assert t["first_frame"] <= 5 and t["last_frame"] >= 295 and t["frames_seen"] >= 290
    assert doc["prediction"]["topk"][0]["label"] == "clean and jerk"
