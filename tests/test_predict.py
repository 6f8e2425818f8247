"""Predictor: inputs, stored preprocessing, short windows, sliding windows, `stgcn predict`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stgcn.cli import main
from stgcn.data.readers.keypoints import save_keypoints
from stgcn.data.transforms import PreprocessConfig, build_transform
from stgcn.engine.checkpoint import load_checkpoint
from stgcn.errors import ConfigError, DataError
from stgcn.inference.predict import (
    Prediction,
    Predictor,
    WindowPrediction,
    fit_image_coordinates,
    frame_labels,
    read_clips,
    temporal_receptive_field,
    window_bounds,
)
from stgcn.models.config import STGCNConfig
from tests.use_utils import CLASS_NAMES, random_clip, small_checkpoint, small_model


def _logits(checkpoint, x: np.ndarray) -> np.ndarray:
    """Logits of the checkpoint's eager model (not the predictor's folded copy) for a (T, M, V, C) clip fed as
    it is."""
    model = load_checkpoint(checkpoint).model
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x.transpose(3, 0, 2, 1)))[None]).numpy()[0]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


# ------------------------------------------------------------------------------------ receptive field
def _measured_receptive_field(config: STGCNConfig, t: int = 200) -> int:
    """Input frames with a non-negligible gradient for one output frame in the middle of the last block."""
    model = small_model(blocks=config.blocks, temporal_kernel=config.temporal_kernel)
    x = torch.rand(1, 3, t, 18, 1, requires_grad=True)
    n, c, tt, v, m = x.shape
    h = model.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, tt))
    h = h.view(n, m, v, c, tt).permute(0, 1, 3, 4, 2).reshape(n * m, c, tt, v)
    for block in model.blocks:
        h = block(h, model.A)
    h[:, :, h.shape[2] // 2].abs().sum().backward()
    grad = x.grad.abs().sum(dim=(0, 1, 3, 4)).numpy()
    # the tiled temporal convolution (stgcn.ops.tiled_conv) leaves float rounding (~1e-8 relative) outside the field
    frames = np.flatnonzero(grad > 1e-5 * grad.max())
    return int(frames[-1] - frames[0] + 1)


@pytest.mark.parametrize("blocks,kernel,expected", [
    (((8, 1),), 9, 9),
    (((8, 1), (8, 2), (8, 2)), 5, 1 + 4 + 4 + 8),
    (((8, 1), (16, 2), (16, 1)), 9, 1 + 8 + 8 + 16),
])
def test_receptive_field_formula_and_gradient(blocks, kernel, expected):
    config = STGCNConfig(num_classes=2, blocks=blocks, temporal_kernel=kernel)
    assert temporal_receptive_field(config) == expected
    assert _measured_receptive_field(config) == expected


def test_receptive_field_of_the_paper_model():
    # 10 blocks, Gamma = 9, strides 2 at blocks 5 and 8: 1 + 5*8 + 3*16 + 2*32
    assert temporal_receptive_field(STGCNConfig(num_classes=2)) == 153


# ------------------------------------------------------------------------------------------ inputs
def test_predict_shapes_agree_and_topk(tmp_path):
    ck = small_checkpoint(tmp_path / "ck.pt")
    p = Predictor.from_checkpoint(ck, min_frames=1)
    clip = random_clip(40, m=1)
    expected = _softmax(_logits(ck, clip))
    pred = p.predict(clip, topk=3)
    assert isinstance(pred, Prediction)
    order = np.argsort(-expected)[:3]
    assert pred.indices == tuple(int(i) for i in order)
    assert pred.labels == tuple(CLASS_NAMES[i] for i in order)
    np.testing.assert_allclose(pred.scores, expected[order], rtol=1e-5)
    assert pred.label == pred.labels[0] and pred.score == pred.scores[0]
    # (T, V, C), (T, 1, V, C), (N, C, T, V, M) and a list give the same logits
    np.testing.assert_allclose(p.logits(clip[:, 0]), p.logits(clip), atol=1e-6)
    batch = np.stack([clip, random_clip(40, seed=1)]).transpose(0, 4, 1, 3, 2)  # (2, C, T, V, M)
    by_batch = p.predict_batch(batch, topk=2)
    assert len(by_batch) == 2
    np.testing.assert_allclose(by_batch[0].probabilities, pred.probabilities, atol=1e-6)
    np.testing.assert_allclose(p.logits([clip, random_clip(40, seed=1)]), p.logits(batch), atol=1e-6)
    assert pred.to_dict()["topk"][0] == {"index": pred.indices[0], "label": pred.label, "score": pred.score}
    assert len(p.predict(clip, topk=100).indices) == 4


def test_predict_rejects_bad_input(tmp_path):
    p = Predictor.from_checkpoint(small_checkpoint(tmp_path / "ck.pt"))
    clip = random_clip(30)
    bad = clip.copy()
    bad[3, 0, 2, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        p.predict(bad)
    with pytest.raises(DataError, match="25 joints per person; the model's layout 'openpose-18' has 18"):
        p.predict(random_clip(30, v=25))
    with pytest.raises(DataError, match="shape"):
        p.predict(np.zeros((4, 18)))
    with pytest.raises(DataError, match="predict_batch"):
        p.predict(clip.transpose(3, 0, 2, 1)[None])
    with pytest.raises(DataError, match="2 channels per joint after preprocessing; the model takes 3"):
        p.predict(clip[..., :2])
    with pytest.raises(ConfigError, match="valid policies are loop, zero, error"):
        Predictor.from_checkpoint(tmp_path / "ck.pt", short="pad")


def test_reference_logits_of_the_original_code(shared_data):
    """Batch input (N, C, T, V, M) without stored preprocessing reproduces the original code's logits."""
    from stgcn.convert.original import convert_original

    model = convert_original(shared_data / "st_gcn_kinetics" / "st_gcn.kinetics.fp32_from_int8.pt",
                             layout="openpose-18", strategy="spatial", num_classes=400)
    names = (shared_data / "kinetics_demo" / "kinetics400_label_name.txt").read_text().splitlines()
    ref = np.load(shared_data / "st_gcn_kinetics" / "reference_logits_original_code.npz")
    p = Predictor(model, class_names=names, min_frames=1)
    for name in ("clean_and_jerk", "random_2person_T300"):
        got = p.logits(ref[f"input__{name}"][None])[0]
        np.testing.assert_allclose(got, ref[f"logits__{name}"], atol=1e-4)
    pred = p.predict(ref["input__clean_and_jerk"].transpose(1, 3, 2, 0))
    assert pred.label == "clean and jerk" and pred.score > 0.95


# ----------------------------------------------------------------------------------- preprocessing
def test_stored_preprocessing_is_applied(tmp_path):
    pre = PreprocessConfig(length=None, channels=("x", "y", "score"), image_size=(340, 256), center="frame")
    ck = small_checkpoint(tmp_path / "ck.pt", preprocess=pre.to_dict())
    p = Predictor.from_checkpoint(ck, min_frames=1)
    rng = np.random.default_rng(0)
    pixels = random_clip(30)
    pixels[..., 0] = rng.uniform(0, 340, pixels.shape[:3])
    pixels[..., 1] = rng.uniform(0, 256, pixels.shape[:3])
    by_hand = pixels.copy()
    by_hand[..., 0] = pixels[..., 0] / 340 - 0.5
    by_hand[..., 1] = pixels[..., 1] / 256 - 0.5
    by_hand[..., :2] -= by_hand[:, :1, 1:2, :2]  # centre on the neck (openpose-18 centre joint) per frame
    np.testing.assert_allclose(p.logits(pixels)[0], _logits(ck, by_hand), atol=1e-5)


def test_multi_clip_testing_averages_logits(tmp_path):
    pre = PreprocessConfig(length=20, resize="pad", num_clips=3)
    ck = small_checkpoint(tmp_path / "ck.pt", preprocess=pre.to_dict())
    p = Predictor.from_checkpoint(ck)
    clip = random_clip(50)
    views = build_transform(pre, train=False, layout="openpose-18").clips(clip)  # (3, C, 20, V, M)
    assert views.shape[0] == 3
    with torch.no_grad():
        expected = load_checkpoint(ck).model(torch.from_numpy(views)).numpy().mean(axis=0)
    np.testing.assert_allclose(p.logits(clip)[0], expected, atol=1e-5)


# -------------------------------------------------------------------------------------- short inputs
def test_short_window_policies(tmp_path):
    ck = small_checkpoint(tmp_path / "ck.pt")  # receptive field 1 + 8 + 8 = 17
    clip = random_clip(6)
    p = Predictor.from_checkpoint(ck)
    assert p.min_frames == p.receptive_field == 17
    looped = clip[np.arange(17) % 6]
    np.testing.assert_allclose(p.logits(clip)[0], _logits(ck, looped), atol=1e-5)
    zero = Predictor.from_checkpoint(ck, short="zero")
    padded = np.concatenate([clip, np.zeros((11, *clip.shape[1:]), np.float32)])
    np.testing.assert_allclose(zero.logits(clip)[0], _logits(ck, padded), atol=1e-5)
    with pytest.raises(DataError, match="6 frames is shorter than the model's 17-frame minimum"):
        Predictor.from_checkpoint(ck, short="error").predict(clip)
    as_is = Predictor.from_checkpoint(ck, min_frames=1)
    np.testing.assert_allclose(as_is.logits(clip)[0], _logits(ck, clip), atol=1e-5)
    long_enough = random_clip(17)
    np.testing.assert_allclose(p.logits(long_enough)[0], _logits(ck, long_enough), atol=1e-5)


def test_fixed_length_preprocessing_sets_min_frames(tmp_path):
    pre = PreprocessConfig(length=12, resize="loop")
    ck = small_checkpoint(tmp_path / "ck.pt", preprocess=pre.to_dict())
    p = Predictor.from_checkpoint(ck)
    assert p.min_frames == 12 and p.default_window == 12
    clip = random_clip(5)  # the stored resize loops it to 12 frames: what the model was trained on
    np.testing.assert_allclose(p.logits(clip)[0], _logits(ck, clip[np.arange(12) % 5]), atol=1e-5)
    with pytest.raises(DataError, match="5 frames is shorter than the model's 12-frame minimum"):
        Predictor.from_checkpoint(ck, short="error").predict(clip)  # 'error' is not ignored for a fixed length
    with pytest.raises(DataError, match="shorter than min_frames=16"):
        Predictor.from_checkpoint(tmp_path / "ck.pt", min_frames=16, short="error").predict(random_clip(12))


# ---------------------------------------------------------------------------------- sliding windows
def test_window_bounds():
    assert window_bounds(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert window_bounds(11, 4, 3) == [(0, 4), (3, 7), (6, 10), (7, 11)]
    assert window_bounds(11, 4, 3, include_tail=False) == [(0, 4), (3, 7), (6, 10)]
    assert window_bounds(3, 4, 3) == [(0, 3)]
    assert window_bounds(4, 4, 1) == [(0, 4)]
    assert window_bounds(0, 4, 1) == []
    with pytest.raises(ConfigError):
        window_bounds(10, 0, 1)


def _window(start: int, end: int, index: int) -> WindowPrediction:
    probs = np.zeros(3, np.float32)
    probs[index] = 1
    return WindowPrediction(start, end, Prediction((index,), (f"c{index}",), (1.0,), probs))


def test_frame_labels_causal_and_centred():
    windows = [_window(0, 4, 0), _window(3, 7, 1), _window(6, 10, 2)]
    assert frame_labels(windows, 10, causal=True) == [None, None, None, 0, 0, 0, 1, 1, 1, 2]
    # centres 1.5, 4.5, 7.5: ties go to the earlier window
    assert frame_labels(windows, 10, causal=False) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert frame_labels([], 3) == [None, None, None]


def test_sliding_window_predicts_each_window(tmp_path):
    ck = small_checkpoint(tmp_path / "ck.pt")
    p = Predictor.from_checkpoint(ck, batch_size=2)
    clip = random_clip(45, m=2)
    windows = p.sliding_window(clip, window=20, stride=10, topk=2)
    assert [(w.start, w.end) for w in windows] == [(0, 20), (10, 30), (20, 40), (25, 45)]
    for w in windows:
        np.testing.assert_allclose(w.prediction.probabilities, _softmax(_logits(ck, clip[w.start:w.end])),
                                   atol=1e-5)
    assert [(w.start, w.end) for w in p.sliding_window(clip)] == [(0, 17), (8, 25), (16, 33), (24, 41), (28, 45)]


# --------------------------------------------------------------------------------- files and pixels
def test_fit_image_coordinates():
    x = np.array([[[[170.0, 64.0, 0.9], [0.0, 0.0, 0.0], [340.0, 256.0, 0.5]]]], np.float32)  # (1, 1, 3, 3)
    channels = ("x", "y", "score")
    original = fit_image_coordinates(x, (340, 256), None, channels)
    np.testing.assert_allclose(original[0, 0], [[0.0, -0.25, 0.9], [0, 0, 0], [0.5, 0.5, 0.5]])
    pre = PreprocessConfig(image_size=(680, 128), channels=channels)
    np.testing.assert_allclose(fit_image_coordinates(x, (340, 256), pre, channels)[0, 0],
                               [[340, 32, 0.9], [0, 0, 0], [680, 128, 0.5]])
    stored = PreprocessConfig(channels=channels)
    np.testing.assert_array_equal(fit_image_coordinates(x, (340, 256), stored, channels), x)


def test_read_clips_and_input_from(tmp_path):
    p = Predictor.from_checkpoint(small_checkpoint(tmp_path / "ck.pt"), min_frames=1)
    clip = random_clip(25)
    pixels = clip[..., :2] * np.float32(100) + np.float32(100)
    save_keypoints(tmp_path / "clip.json", pixels, layout="openpose-18", scores=clip[..., 2], image_size=(340, 256))
    (item,) = read_clips(tmp_path / "clip.json")
    assert item.channels == ["x", "y", "score"]
    x = p.input_from(item)
    expected = np.concatenate([pixels[..., :1] / 340 - 0.5, pixels[..., 1:2] / 256 - 0.5, clip[..., 2:]], axis=-1)
    np.testing.assert_allclose(x, expected, atol=1e-6)
    np.save(tmp_path / "batch.npy", np.stack([clip, clip]).transpose(0, 4, 1, 3, 2))
    items = read_clips(tmp_path / "batch.npy")
    assert [i.name for i in items] == [f"{tmp_path / 'batch.npy'}[0]", f"{tmp_path / 'batch.npy'}[1]"]
    np.testing.assert_array_equal(p.input_from(items[1]), clip)
    with pytest.raises(DataError, match="not a readable .npy"):
        (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
        read_clips(tmp_path / "bad.npy")


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_predict(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "ck.pt")
    clip = random_clip(40)
    np.save(tmp_path / "clip.npy", clip)
    assert main(["predict", str(ck), str(tmp_path / "clip.npy"), "--topk", "2"]) == 0
    out = capsys.readouterr().out
    pred = Predictor.from_checkpoint(ck).predict(clip, topk=2)
    assert out.startswith(f"{tmp_path / 'clip.npy'} (40 frames): {pred.labels[0]} {pred.scores[0]:.3f}")
    assert main(["predict", str(ck), str(tmp_path / "clip.npy"), "--json", "--window", "20", "--stride", "10"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)  # one input: still a list, the same shape as for several
    assert doc["frames"] == 40 and [w["start"] for w in doc["windows"]] == [0, 10, 20]
    assert len(doc["frame_labels"]) == 40 and set(doc["frame_labels"]) <= set(CLASS_NAMES)
    assert doc["topk"][0]["label"] == pred.label
    np.save(tmp_path / "batch.npy", np.stack([clip, random_clip(40, seed=3)]).transpose(0, 4, 1, 3, 2))
    assert main(["predict", str(ck), str(tmp_path / "batch.npy"), str(tmp_path / "clip.npy"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_cli_predict_errors(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "ck.pt")
    assert main(["predict", str(ck), str(tmp_path / "missing.npy")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.npy'}: no such file"
    np.save(tmp_path / "ntu.npy", random_clip(20, v=25))
    assert main(["predict", str(ck), str(tmp_path / "ntu.npy")]) == 2
    assert "25 joints per person" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope.pt"), str(tmp_path / "ntu.npy")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def test_predictor_does_not_need_class_names(tmp_path):
    from stgcn.engine.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "ck.pt", small_model())
    p = Predictor.from_checkpoint(load_checkpoint(tmp_path / "ck.pt"))
    assert p.class_names == ["class_0", "class_1", "class_2", "class_3"]


def test_optimized_and_eager_predictors_agree(tmp_path):
    ck = small_checkpoint(tmp_path / "ck.pt")
    fast, eager = Predictor.from_checkpoint(ck), Predictor.from_checkpoint(ck, optimize=False)
    assert type(fast.model).__name__ == "FusedSTGCN" and type(eager.model).__name__ == "STGCN"
    clip = random_clip(50, m=2)
    np.testing.assert_allclose(fast.logits(clip), eager.logits(clip), atol=1e-5)


def test_kinetics_skeleton_json_is_centred_as_the_original(tmp_path):
    """Kinetics-skeleton coordinates are fractions of the frame: a checkpoint without stored preprocessing
    gets the original feeder's (x - 0.5, y - 0.5, score), undetected joints 0."""
    frames = [{"frame_index": 1, "skeleton": [{"pose": [0.25, 0.75] * 18, "score": [0.5] * 17 + [0.0]}]}]
    (tmp_path / "clip.json").write_text(json.dumps({"data": frames, "label": "x", "label_index": 0}))
    (item,) = read_clips(tmp_path / "clip.json")
    x = Predictor(small_model()).input_from(item)
    np.testing.assert_allclose(x[0, 0, 0], [-0.25, 0.25, 0.5])
    np.testing.assert_array_equal(x[0, 0, 17], 0)


def test_bf16_predictor_runs_the_optimized_model_in_bfloat16(tmp_path):
    ck = small_checkpoint(tmp_path / "ck.pt")
    fp32, bf16 = Predictor.from_checkpoint(ck), Predictor.from_checkpoint(ck, precision="bf16")
    assert bf16.precision == "bf16" and bf16.model.dtype == torch.bfloat16 and fp32.model.dtype == torch.float32
    clip = random_clip(50, m=2)
    a, b = fp32.logits(clip), bf16.logits(clip)
    assert b.dtype == a.dtype and np.abs(b - a).max() < 0.05 * max(1.0, np.abs(a).max())
    assert not np.array_equal(a, b)  # it really ran in bfloat16


def test_precision_is_checked(tmp_path):
    ck = small_checkpoint(tmp_path / "ck.pt")
    with pytest.raises(ConfigError, match="valid precisions are fp32, bf16"):
        Predictor.from_checkpoint(ck, precision="fp16")
    with pytest.raises(ConfigError, match="needs optimize=True"):
        Predictor.from_checkpoint(ck, precision="bf16", optimize=False)


def test_cli_predict_bf16(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "ck.pt")
    clip = random_clip(40)
    np.save(tmp_path / "clip.npy", clip)
    assert main(["predict", str(ck), str(tmp_path / "clip.npy"), "--json", "--precision", "bf16"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    pred = Predictor.from_checkpoint(ck, precision="bf16").predict(clip)
    assert doc["topk"][0]["label"] == pred.label
    assert abs(doc["topk"][0]["score"] - pred.scores[0]) < 1e-6
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(ck), str(tmp_path / "clip.npy"), "--precision", "fp16"])
    assert exc.value.code == 2
