"""The LiteRT BlazePose backend: geometry and decoding (numpy only), then the models against MediaPipe's own
legacy solution on the Kinetics demo clips."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from stgcn.cli import main
from stgcn.errors import ConfigError, StgcnError
from stgcn.inference.blazepose import DETECTOR_MODEL, LANDMARK_MODEL, model_path
from stgcn.inference.blazepose_ops import (
    OneEuro,
    Roi,
    apply_matrix,
    decode_detections,
    letterbox_matrix,
    refine_from_heatmap,
    roi_from_points,
    roi_matrix,
    ssd_anchors,
    warp,
    weighted_nms,
)
from stgcn.inference.pose import extract_pose, resolve_backend

# the other two clips run with the long tests (python -m pytest -m slow)
CLIPS = ("clean_and_jerk", pytest.param("skateboarding", marks=pytest.mark.slow),
         pytest.param("ta_chi", marks=pytest.mark.slow))
AGREEMENT_FRAMES = 60
MEDIAN_TOLERANCE_PX = 2.0  # median landmark distance (x, y) between the two backends, 340 x 256 clips


def test_models_ship_with_the_package():
    for name in (DETECTOR_MODEL, LANDMARK_MODEL):
        assert model_path(name).stat().st_size > 1_000_000
    assert (model_path(DETECTOR_MODEL).parent / "NOTICE").read_text().count("Apache License, Version 2.0") == 1


def test_anchors_follow_the_detector_grid():
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    # stride 8: 28 x 28 cells, 2 anchors each; then 14 x 14 x 2; then 7 x 7 x 6 (three layers of stride 32)
    np.testing.assert_allclose(a[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1], a[0])
    np.testing.assert_allclose(a[2], [1.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(a[1568], [0.5 / 14, 0.5 / 14])
    np.testing.assert_allclose(a[-1], [6.5 / 7, 6.5 / 7])
    assert len(np.unique(a[1960:], axis=0)) == 49


def test_decode_and_weighted_nms():
    anchors = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.2]], np.float32)
    raw = np.zeros((3, 12), np.float32)
    raw[:, 2:4] = 44.8  # 0.2 x 0.2 boxes
    raw[1, 0] = 2.24  # shifted right by 0.01
    raw[:, 4:6] = 22.4  # keypoint 0 at the anchor + 0.1
    scores = np.array([3.0, 1.0, -3.0], np.float32)
    boxes, kps, s = decode_detections(raw, scores, anchors, min_score=0.5)
    assert boxes.shape == (2, 4) and kps.shape == (2, 4, 2)
    np.testing.assert_allclose(boxes[0], [0.4, 0.4, 0.6, 0.6], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [0.6, 0.6], atol=1e-6)
    np.testing.assert_allclose(s, 1 / (1 + np.exp([-3.0, -1.0])))
    b, k, s2 = weighted_nms(boxes, kps, s)
    assert len(s2) == 1 and s2[0] == pytest.approx(s[0])
    w = s / s.sum()
    np.testing.assert_allclose(b[0, 0], 0.4 + 0.01 * w[1], atol=1e-6)
    assert weighted_nms(boxes[:0], kps[:0], s[:0])[0].shape == (0, 4)


def test_roi_from_hips_and_body_point():
    # upright person: the body point straight above the hips -> no rotation, side 2 * 1.25 * distance
    roi = roi_from_points(np.array([100.0, 200.0]), np.array([100.0, 120.0]))
    assert (roi.cx, roi.cy, roi.size) == (100.0, 200.0, 200.0) and roi.rotation == pytest.approx(0)
    # lying to the right (body point right of the hips): a quarter turn
    assert roi_from_points(np.zeros(2), np.array([10.0, 0.0])).rotation == pytest.approx(math.pi / 2)
    m = roi_matrix(Roi(50.0, 60.0, 128.0, math.pi / 2), size=256)
    np.testing.assert_allclose(apply_matrix(m, np.array([[128.0, 128.0], [256.0, 128.0]])), [[50, 60], [50, 124]])
    lb = letterbox_matrix(340, 256)
    np.testing.assert_allclose(apply_matrix(lb, np.array([[0.0, 0.0], [224.0, 224.0]])), [[0, -42], [340, 298]])


def test_numpy_warp_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    m = roi_matrix(Roi(30.0, 20.0, 50.0, 0.3), size=32)
    for replicate in (False, True):
        a = warp(image, m, 32, replicate=replicate)
        b = warp(image, m, 32, replicate=replicate, cv2=cv2)
        assert np.median(np.abs(a - b)) < 1.0  # OpenCV's fixed-point bilinear weights


def test_heatmap_refinement_and_one_euro():
    heat = np.full((64, 64, 1), -10.0, np.float32)
    heat[10, 20, 0] = heat[10, 22, 0] = 10.0
    np.testing.assert_allclose(refine_from_heatmap(np.array([[21 / 64, 10 / 64]]), heat), [[21 / 64, 10 / 64]],
                               atol=1e-3)
    heat[:] = -10.0  # not confident: unchanged
    np.testing.assert_array_equal(refine_from_heatmap(np.array([[0.3, 0.2]]), heat), [[0.3, 0.2]])
    f = OneEuro(0.05, 80.0)
    assert f(np.array([1.0, 2.0]))[1] == 2.0
    assert f(np.array([1.0, 2.0]))[1] == 2.0
    assert 1.0 < f(np.array([1.0, 3.0]), 0.01)[1] < 3.0  # smoothed towards the past


def _refine_loop(xy, heatmap, kernel=7, min_confidence=0.5):
    """One landmark at a time, as MediaPipe's RefineLandmarksFromHeatmapCalculator: the reference."""
    hh, hw, _ = heatmap.shape
    out, r = xy.copy(), (kernel - 1) // 2
    for i, (x, y) in enumerate(xy):
        col, row = int(x * hw), int(y * hh)
        if not (0 <= col < hw and 0 <= row < hh):
            continue
        r0, r1, c0, c1 = max(0, row - r), min(hh, row + r + 1), max(0, col - r), min(hw, col + r + 1)
        conf = 1 / (1 + np.exp(-heatmap[r0:r1, c0:c1, i].astype(np.float64)))
        if conf.max() >= min_confidence and conf.sum() > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i] = ((cols * conf).sum() / hw / conf.sum(), (rows * conf).sum() / hh / conf.sum())
    return out


def test_vectorised_heatmap_refinement_equals_the_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        xy = rng.uniform(-0.1, 1.1, (39, 2))  # some outside, many near the borders
        xy[:4] = [[0.0, 0.0], [0.999, 0.999], [-0.01, 0.5], [0.5, 1.0]]
        heat = rng.normal(0, 2, (64, 64, 39)).astype(np.float32)
        np.testing.assert_allclose(refine_from_heatmap(xy, heat), _refine_loop(xy, heat), rtol=0, atol=1e-12)


def test_backend_choice_errors(monkeypatch):
    with pytest.raises(ConfigError, match="valid backends are auto, mediapipe, litert"):
        resolve_backend("onnx")
    assert resolve_backend("litert") == "litert"
    for name in ("mediapipe", "ai_edge_litert", "ai_edge_litert.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(StgcnError, match=r"pip install 'stgcn\[video\]'"):
        resolve_backend("auto")


@pytest.fixture
def litert():
    pytest.importorskip("ai_edge_litert.interpreter", reason="the LiteRT backend needs ai-edge-litert")
    pytest.importorskip("cv2", reason="reading videos needs OpenCV")


def _clip(shared_data, name: str):
    path = shared_data / "kinetics_demo" / f"{name}.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_litert_finds_the_person_in_every_demo_frame(litert, shared_data):
    from stgcn.inference.blazepose import BlazePose
    from stgcn.inference.pose import read_video_frames

    video = _clip(shared_data, "clean_and_jerk")
    frames = list(read_video_frames(video, 5))
    pose = BlazePose()
    people = [pose.process(f) for f in frames]
    assert all(p.shape == (1, 33, 4) for p in people)  # one lifter on the platform
    assert pose.timings["detector"].calls == 5 and pose.timings["landmarks"].calls == 5
    assert pose.timings["landmarks"].to_dict()["cpu_ms_per_call"] > 0
    sparse = BlazePose(detect_every=5)  # the detector at the start (nobody tracked yet) and every 5th frame
    assert [len(sparse.process(f)) for f in frames] == [1] * 5 and sparse.timings["detector"].calls == 2
    lm = people[-1][0]
    assert 100 < lm[:, 0].mean() < 250 and 0.5 < lm[:, 3].mean() <= 1
    dets = pose.detect(frames[0])
    assert len(dets) == 1 and dets[0].score > 0.9
    x0, y0, x1, y1 = dets[0].box  # the face box
    assert x0 < lm[0, 0] < x1 and y0 < lm[0, 1] < y1
    seq = extract_pose(video, max_frames=5, backend="litert")
    assert seq.landmarks.shape == (5, 1, 33, 4) and seq.detected.all()
    with pytest.raises(ConfigError, match="full model only"):
        extract_pose(video, max_frames=1, backend="litert", model_complexity=0)


@pytest.mark.parametrize("clip", CLIPS)
def test_litert_agrees_with_mediapipe(litert, shared_data, clip):
    """Both backends run the same BlazePose models; the LiteRT one re-implements MediaPipe's graph around
    them, so the landmarks should agree to about a pixel."""
    pytest.importorskip("mediapipe", reason="the comparison needs the legacy MediaPipe solution")
    video = _clip(shared_data, clip)
    ref = extract_pose(video, max_frames=AGREEMENT_FRAMES, backend="mediapipe")
    new = extract_pose(video, max_frames=AGREEMENT_FRAMES, backend="litert")
    both = ref.detected & new.detected
    assert both.sum() >= 0.9 * ref.detected.sum() and both.sum() >= 0.9 * new.detected.sum()
    a, b = ref.landmarks[both, 0], new.landmarks[both, 0]
    dist = np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)
    assert np.median(dist) < MEDIAN_TOLERANCE_PX
    assert np.median(np.abs(a[..., 3] - b[..., 3])) < 0.05  # visibility


def test_pose_command_with_litert(litert, shared_data, tmp_path, capsys):
    video = _clip(shared_data, "clean_and_jerk")
    out = tmp_path / "clip.json"
    assert main(["pose", str(video), "--out", str(out), "--max-frames", "6", "--backend", "litert"]) == 0
    assert capsys.readouterr().out.strip() == (f"wrote {out}: 6 frames (6 with a person), layout openpose-18, "
                                               f"340x256 at 29.97 fps")
