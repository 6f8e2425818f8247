"""Live recognition: keypoint sources and formats, the decision layer, the pipeline, `stgcn live`."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from stgcn.cli import main
from stgcn.errors import ConfigError, DataError
from stgcn.inference.decisions import UNKNOWN, Decider, Trigger, parse_trigger
from stgcn.inference.keypoint_formats import convert_layout, parse_frame
from stgcn.inference.live import LivePipeline
from stgcn.inference.predict import Predictor
from stgcn.inference.sources import KeypointSource, open_source, source_kind
from tests.test_tracker import person
from tests.use_utils import CLASS_NAMES, small_checkpoint, small_model


def test_parse_frame_formats():
    kp = person(100, 100)
    ours = parse_frame({"frame": 3, "time": 0.1, "image_size": [640, 480], "people": [kp.tolist()]})
    assert ours.people.shape == (1, 18, 3) and ours.frame == 3 and ours.image_size == (640.0, 480.0)
    openpose = parse_frame({"people": [{"pose_keypoints_2d": np.zeros((25, 3)).ravel().tolist()}]})
    assert openpose.people.shape == (1, 25, 3)
    mmpose = parse_frame([{"keypoints": np.ones((17, 2)).tolist(), "keypoint_scores": [0.5] * 17}])
    assert mmpose.people.shape == (1, 17, 3) and mmpose.people[0, 0, 2] == 0.5
    yolo = parse_frame([{"name": "person", "keypoints": {"x": [1.0] * 17, "y": [2.0] * 17, "visible": [0.9] * 17}}])
    assert yolo.people.shape == (1, 17, 3) and yolo.people[0, 3].tolist() == pytest.approx([1, 2, 0.9])
    assert parse_frame({"people": []}).people.shape[0] == 0
    with pytest.raises(DataError, match="expected 'people'"):
        parse_frame({"persons": []})


def test_convert_layout_coco_and_body25_to_openpose():
    coco = np.arange(17 * 3, dtype=np.float32).reshape(1, 17, 3)
    op = convert_layout(coco, "openpose-18")
    assert op.shape == (1, 18, 3)
    np.testing.assert_array_equal(op[0, 2], coco[0, 6])  # right shoulder
    np.testing.assert_allclose(op[0, 1, :2], (coco[0, 5, :2] + coco[0, 6, :2]) / 2)  # neck
    np.testing.assert_array_equal(convert_layout(op, "coco-17"), coco)  # round trip
    body25 = np.arange(25 * 3, dtype=np.float32).reshape(1, 25, 3)
    np.testing.assert_array_equal(convert_layout(body25, "openpose-18")[0, 8], body25[0, 9])  # right hip
    with pytest.raises(ConfigError, match="cannot map"):
        convert_layout(coco, "mediapipe-pose-33")


def test_decider_threshold_smoothing_and_triggers():
    names = ["a", "b", "c"]
    d = Decider(names, smooth=2, threshold=0.5)
    assert d.update(np.array([0.9, 0.05, 0.05]), 0.0).label == "a"
    mixed = d.update(np.array([0.1, 0.8, 0.1]), 0.5)  # mean of the two: (0.5, 0.425, 0.075)
    assert mixed.label == "a" and mixed.score == pytest.approx(0.5)
    assert d.update(np.array([0.5, 0.1, 0.4]), 1.0).label == UNKNOWN  # mean (0.3, 0.45, 0.25): b under 0.5
    maj = Decider(names, smooth=3, mode="majority")
    for p in ([0.6, 0.4, 0], [0.1, 0.9, 0], [0.7, 0.3, 0]):
        out = maj.update(np.array(p), 0)
    assert out.label == "a"
    trig = parse_trigger("b>=0.8:1s", names)
    assert trig == Trigger("b", 0.8, 1.0) and parse_trigger("b >= 0.5 for 500ms").duration == 0.5
    d = Decider(names, triggers=(trig,))
    fired = [d.update(np.array(p), t).fired for t, p in ((0.0, [0, 0.9, 0.1]), (0.5, [0, 0.9, 0.1]),
                                                         (1.0, [0, 0.9, 0.1]), (1.5, [0, 0.9, 0.1]),
                                                         (2.0, [0.9, 0.1, 0]), (2.5, [0, 0.9, 0.1]))]
    assert [bool(f) for f in fired] == [False, False, True, False, False, False]  # once per episode
    with pytest.raises(ConfigError, match="has no class 'falling'"):
        parse_trigger("falling>=0.8:1s", names)
    with pytest.raises(ConfigError, match="LABEL>=SCORE:DURATION"):
        parse_trigger("falling", names)


def _write_lines(path, frames: int = 60, late: int = 20, leave: int = 45) -> None:
    """Two synthetic people: A from frame 0 to ``leave``, B entering at ``late``; the image is 400 x 300."""
    with path.open("w") as f:
        for i in range(frames):
            people = []
            if i < leave:
                people.append(person(100 + i, 150, seed=1).tolist())
            if i >= late:
                people.append(person(300 - i, 140, seed=2).tolist())
            f.write(json.dumps({"frame": i, "image_size": [400, 300], "people": people}) + "\n")
            if i == 5:
                f.write("not json\n")  # a bad line is logged and skipped


def test_pipeline_tracks_people_causally(tmp_path):
    path = tmp_path / "kp.jsonl"
    _write_lines(path)
    pipeline = LivePipeline(Predictor(small_model(), class_names=CLASS_NAMES), window=20, stride=10, smooth=2)
    events = []
    with KeypointSource(path) as source:
        for frame in source:
            events += pipeline.step(frame.index, frame.time, frame.people, image_size=frame.image_size)
        assert source.skipped == 1
    events += pipeline.close()
    starts = [(e["track"], e["frame"]) for e in events if e["event"] == "track_start"]
    assert starts == [(0, 0), (1, 20)]  # the late entrant gets its own track
    preds = [e for e in events if e["event"] == "prediction"]
    for e in preds:
        assert e["window"][1] - 1 == e["frame"] and e["label"] in CLASS_NAMES and e["latency_ms"] >= 0
        assert e["window"][1] - e["window"][0] <= 20
    a = [tuple(e["window"]) for e in preds if e["track"] == 0]
    assert a[:3] == [(0, 20), (10, 30), (20, 40)] and a[-1] == (25, 45)  # A's last frames, flushed at its end
    b = [tuple(e["window"]) for e in preds if e["track"] == 1]
    assert b[0] == (20, 40)
    ends = [e for e in events if e["event"] == "track_end"]
    assert {e["track"] for e in ends} == {0, 1} and ends[0]["last_frame"] == 44


def test_background_model_gives_the_same_events_in_the_same_order(tmp_path):
    """The model in a background thread: the same events, in the same order, only handed out later."""
    path = tmp_path / "kp.jsonl"
    _write_lines(path)
    runs = []
    for background in (False, True):
        pipeline = LivePipeline(Predictor(small_model(), class_names=CLASS_NAMES), window=20, stride=10, smooth=2,
                                background=background)
        events, per_step = [], []
        with KeypointSource(path) as source:
            for frame in source:
                out = pipeline.step(frame.index, frame.time, frame.people, image_size=frame.image_size)
                per_step.append(len(out))
                events += out
        events += pipeline.close()
        assert pipeline._worker is None and not pipeline._outbox  # everything waited for, the thread ended
        times = pipeline.times.to_dict()
        assert times["forward_passes"] >= 1 and times["stgcn_cpu_ms_per_frame"] > 0
        runs.append((events, sum(per_step)))
    (sync, _), (bg, _) = runs

    def key(e):
        return {k: v for k, v in e.items() if k not in ("latency_ms", "score", "topk", "raw")}

    assert [key(e) for e in bg] == [key(e) for e in sync]
    for a, b in zip(sync, bg, strict=True):
        if a["event"] == "prediction":
            assert b["score"] == pytest.approx(a["score"], abs=1e-4) and b["raw"]["label"] == a["raw"]["label"]


def test_live_command_on_keypoint_lines(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "ck.pt")
    path = tmp_path / "kp.jsonl"
    _write_lines(path)
    assert main(["live", "--source", str(path), "--checkpoint", str(ck), "--window", "20", "--stride", "10",
                 "--trigger", "wave>=0.0:0s", "--stats", "--model-threads", "1"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    kinds = {e["event"] for e in lines}
    assert kinds == {"track_start", "prediction", "trigger", "track_end", "stats"}
    pred = next(e for e in lines if e["event"] == "prediction")
    assert set(pred) >= {"time", "frame", "track", "label", "score", "topk", "latency_ms"}
    assert lines[-1]["frames"] == 60
    assert main(["live", "--source", str(path), "--checkpoint", str(ck), "--trigger", "fall>=0.8:1s"]) == 2
    assert "has no class 'fall'" in capsys.readouterr().err
    assert main(["live", "--source", str(path), "--checkpoint", str(ck), "--window", "20", "--sync"]) == 0
    sync = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in sync if e["event"] != "prediction"] == [
        e["event"] for e in lines if e["event"] not in ("prediction", "trigger", "stats")]
    assert main(["live", "--source", str(path), "--checkpoint", str(ck), "--pose-threads", "0"]) == 2
    assert "--pose-threads must be an integer >= 1" in capsys.readouterr().err


def test_live_stdin_and_missing_image_size(tmp_path, monkeypatch, capsys):
    ck = small_checkpoint(tmp_path / "ck.pt")
    lines = "".join(json.dumps({"people": [person(50, 60).tolist()]}) + "\n" for _ in range(5))
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["live", "--source", "-", "--checkpoint", str(ck), "--image-size", "200,150"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in out] == ["track_start", "prediction", "track_end"]
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["live", "--source", "-", "--checkpoint", str(ck)]) == 2
    assert "--image-size" in capsys.readouterr().err


def test_sources_fail_with_one_line(tmp_path, capsys):
    pytest.importorskip("cv2")
    assert source_kind("0") == "camera" and source_kind("rtsp://h/x") == "stream" and source_kind("-") == "keypoints"
    with pytest.raises(DataError, match="no such video file"):
        open_source(str(tmp_path / "missing.mp4"))
    ck = small_checkpoint(tmp_path / "ck.pt")
    assert main(["live", "--source", "99", "--checkpoint", str(ck)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: cannot open camera 99")


def test_pixels_are_caught_or_converted():
    p = Predictor(small_model())
    rng = np.random.default_rng(0)
    pixels = np.concatenate([rng.uniform(20, 300, (30, 18, 2)), np.ones((30, 18, 1))], -1).astype(np.float32)
    with pytest.raises(DataError, match="look like pixels"):
        p.predict(pixels)
    converted = p.predict(pixels, image_size=(340, 256))
    norm = pixels.copy()
    norm[..., 0] = norm[..., 0] / 340 - 0.5
    norm[..., 1] = norm[..., 1] / 256 - 0.5
    np.testing.assert_allclose(converted.probabilities, p.predict(norm).probabilities, atol=1e-6)
    s = p.stream(window=10, stride=10, image_size=(340, 256))
    out = [s.push(f) for f in pixels[:10]]
    np.testing.assert_allclose(out[-1].prediction.probabilities, p.predict(norm[:10]).probabilities, atol=1e-5)


def test_model_complexity_outside_the_wheel_is_one_line():
    from stgcn.inference.estimators import check_model_complexity

    check_model_complexity(1, "mediapipe")
    with pytest.raises(ConfigError, match="full model only"):
        check_model_complexity(2, "litert")
    with pytest.raises(ConfigError, match="must be 0, 1 or 2"):
        check_model_complexity(3, "mediapipe")
    mediapipe = pytest.importorskip("mediapipe")
    from pathlib import Path

    if (Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_lite.tflite").is_file():
        pytest.skip("the lite model is installed here")
    with pytest.raises(ConfigError, match="would be downloaded.*only model_complexity 1"):
        check_model_complexity(0, "mediapipe")
