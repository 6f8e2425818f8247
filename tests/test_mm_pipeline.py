"""The MMAction2 / PYSKL test pipeline: fixtures, sampler, features, normalisation, formatting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stgcn.data.mm_pipeline import (
    MMPipelineConfig,
    apply_mm_pipeline,
    average_clips,
    bone_pairs,
    sample_test_indices,
    to_stgcn_input,
)
from stgcn.errors import ConfigError, DataError

FIXTURES = Path("/work/shared/data/mm_fixtures")
SETTINGS = {
    "mma2_stgcn_coco2d_joint": MMPipelineConfig(prenormalize="2d", dataset="coco", clip_len=100, num_clips=10),
    "mma2_stgcn_ntu3d_joint": MMPipelineConfig(prenormalize="3d", clip_len=100, num_clips=10),
    "pyskl_stgcn_ntu3d_joint": MMPipelineConfig(framework="pyskl", prenormalize="3d", clip_len=100, num_clips=10),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_fixture_pipeline(name):
    path = FIXTURES / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    fx = torch.load(path, weights_only=True)
    cfg = SETTINGS[name]
    out = apply_mm_pipeline(fx["annotation"], cfg)
    assert out.dtype == np.float32 and out.shape == tuple(fx["model_input"].shape)
    assert np.abs(out - fx["model_input"].numpy()).max() <= 1e-6
    inds = sample_test_indices(out.shape[2] and int(fx["annotation"]["total_frames"]), 100, 10,
                               framework=cfg.framework)
    assert np.array_equal(inds, fx["pipeline_trace"]["frame_inds"].numpy())


# ------------------------------------------------------------------------------------------- sampler
@pytest.mark.parametrize("framework", ["mmaction2", "pyskl"])
def test_sampler_short_clips_loop_from_spread_starts(framework):
    inds = sample_test_indices(30, 100, 10, framework=framework).reshape(10, 100)
    for i in range(10):
        assert np.array_equal(inds[i], (np.arange(100) + i * 30 // 10) % 30)
    tiny = sample_test_indices(5, 100, 10, framework=framework).reshape(10, 100)
    assert np.array_equal(tiny[3], (np.arange(100) + 3) % 5)  # fewer frames than clips: start = clip index


def test_sampler_medium_clips_keep_consecutive_frames_with_skips():
    inds = sample_test_indices(150, 100, 10).reshape(10, 100)
    for row in inds:
        steps = np.diff(row)
        assert set(steps) <= {1, 2} and row[0] in (0, 1) and row[-1] < 150
        assert (steps == 2).sum() + row[0] + (149 - row[-1]) == 50  # 50 frames skipped in all
    assert not all(np.array_equal(inds[0], r) for r in inds[1:])


def test_sampler_long_clips_one_frame_per_bin_and_seeded():
    inds = sample_test_indices(300, 100, 10).reshape(10, 100)
    assert ((inds >= 3 * np.arange(100)) & (inds < 3 * np.arange(100) + 3)).all()
    assert np.array_equal(sample_test_indices(300, 100, 10), sample_test_indices(300, 100, 10))
    assert not np.array_equal(sample_test_indices(300, 100, 10), sample_test_indices(300, 100, 10, seed=1))


def test_pyskl_sampler_differs_for_long_clips_only():
    assert np.array_equal(sample_test_indices(80, 100, 10), sample_test_indices(80, 100, 10, framework="pyskl"))
    a, b = sample_test_indices(124, 100, 10), sample_test_indices(124, 100, 10, framework="pyskl")
    assert (a != b).sum() > 100
    crop = sample_test_indices(300, 100, 2, framework="pyskl", p_interval=(0.5, 0.5)).reshape(2, 100)
    assert (crop.max(1) - crop.min(1) < 150).all()  # each clip samples from a half-length crop


def test_sampler_refuses_empty_sequences():
    with pytest.raises(DataError, match="0 frames"):
        sample_test_indices(0, 100, 10)


# ----------------------------------------------------------------------------------- bone and motion
def _ann(m=1, t=6, v=17, c=2, seed=0, **extra):
    rng = np.random.default_rng(seed)
    ann = {"keypoint": rng.uniform(10, 500, (m, t, v, c)).astype(np.float32), **extra}
    if c == 2:
        ann["keypoint_score"] = rng.uniform(0.5, 1, (m, t, v)).astype(np.float32)
    return ann


def test_bone_and_motion_features_coco():
    ann = _ann()
    cfg = MMPipelineConfig(dataset="coco", feats=("j", "b", "jm", "bm"), num_person=1)
    out = apply_mm_pipeline(ann, cfg)[0, 0]  # (T, V, 12)
    j = np.concatenate([ann["keypoint"][0], ann["keypoint_score"][0][..., None]], -1)
    assert np.allclose(out[..., :3], j)
    b = out[..., 3:6]
    for v1, v2 in bone_pairs("coco"):
        assert np.allclose(b[:, v1, :2], j[:, v1, :2] - j[:, v2, :2])
        assert np.allclose(b[:, v1, 2], (j[:, v1, 2] + j[:, v2, 2]) / 2)  # score averaged, not differenced
    jm = out[..., 6:9]
    assert np.allclose(jm[:-1, :, :2], j[1:, :, :2] - j[:-1, :, :2]) and (jm[-1] == 0).all()
    assert np.allclose(jm[:-1, :, 2], (j[1:, :, 2] + j[:-1, :, 2]) / 2)
    bm = out[..., 9:]
    assert np.allclose(bm[:-1, :, :2], b[1:, :, :2] - b[:-1, :, :2], atol=1e-4)


def test_bone_and_motion_features_ntu_3d():
    ann = _ann(v=25, c=3)
    out = apply_mm_pipeline(ann, MMPipelineConfig(feats=("b", "jm"), num_person=1))[0, 0]
    x = ann["keypoint"][0]
    assert np.allclose(out[:, 21, :3], x[:, 21] - x[:, 22]) and (out[:, 20, :3] == 0).all()  # their pairs
    assert np.allclose(out[:, 22, :3], x[:, 22] - x[:, 7])
    assert np.allclose(out[:-1, :, 3:], x[1:] - x[:-1], atol=1e-4)  # z differenced too (no score channel)


# ----------------------------------------------------------------------------------- normalisation
def test_prenormalize_2d_mmaction2_and_pyskl():
    ann = _ann(t=2, img_shape=(480, 640))
    ann["keypoint"][0, 0, 3] = 0
    ann["keypoint_score"][0, 0, 3] = 0
    ann["keypoint_score"][0, 1, 4] = 0.005
    mm = apply_mm_pipeline(ann, MMPipelineConfig(prenormalize="2d", dataset="coco", num_person=1))[0, 0]
    assert np.allclose(mm[0, 3], [-1, -1, 0])
    assert np.allclose(mm[1, 0, :2], (ann["keypoint"][0, 1, 0] - [320, 240]) / [320, 240])
    py = apply_mm_pipeline(ann, MMPipelineConfig(framework="pyskl", prenormalize="2d", dataset="coco",
                                                 num_person=1))[0, 0]
    assert np.allclose(py[0, 3], [0, 0, 0]) and np.allclose(py[1, 4], [0, 0, 0.005])
    assert np.allclose(py[1, 0], mm[1, 0])


def test_prenormalize_3d_drops_frames_swaps_centres_and_aligns():
    rng = np.random.default_rng(1)
    kp = rng.normal(0, 0.5, (2, 8, 25, 3)).astype(np.float32)
    kp[0, :5] = 0  # person 0 present in 3 frames, person 1 in all 8 minus one
    kp[1, 2] = 0
    out = apply_mm_pipeline({"keypoint": kp}, MMPipelineConfig(prenormalize="3d", num_person=2))[0]
    assert out.shape == (2, 7, 25, 3)  # frame 2 (no main person) dropped; person 1 became person 0
    assert np.allclose(out[0, 0, 1], 0, atol=1e-6)
    shoulders = out[0, 0, 8] - out[0, 0, 4]  # the last rotation puts left -> right shoulder on +x
    assert np.allclose(shoulders[1:], 0, atol=1e-5) and shoulders[0] > 0
    spine_only = apply_mm_pipeline({"keypoint": kp}, MMPipelineConfig(prenormalize="3d", align_shoulder=False))[0]
    spine = spine_only[0, 0, 1] - spine_only[0, 0, 0]
    assert np.allclose(spine[:2], 0, atol=1e-5) and spine[2] > 0
    assert (out[1, :2] == 0).all()  # absent joints stay zero after centring


def test_format_pads_loops_and_cuts_persons():
    ann = _ann(m=1, v=17, c=2)
    zero = apply_mm_pipeline(ann, MMPipelineConfig(dataset="coco"))
    assert zero.shape == (1, 2, 6, 17, 3) and (zero[0, 1] == 0).all()
    loop = apply_mm_pipeline(ann, MMPipelineConfig(dataset="coco", format_mode="loop"))
    assert np.array_equal(loop[0, 1], loop[0, 0])
    pyskl_loop = apply_mm_pipeline(ann, MMPipelineConfig(framework="pyskl", dataset="coco", format_mode="loop"))
    assert (pyskl_loop[0, 1] == 0).all()  # PYSKL's loop check runs after padding: it never loops
    three = apply_mm_pipeline(_ann(m=3), MMPipelineConfig(dataset="coco"))
    assert three.shape[1] == 2


def test_pad_to_and_layout_conversion():
    ann = _ann(t=5, v=25, c=3)
    out = apply_mm_pipeline(ann, MMPipelineConfig(pad_to=12, pad_mode="zero"))
    assert out.shape == (1, 2, 12, 25, 3) and (out[0, :, 5:] == 0).all()
    looped = apply_mm_pipeline(ann, MMPipelineConfig(pad_to=12))
    assert np.array_equal(looped[0, 0, 5:10], looped[0, 0, :5])
    with pytest.raises(DataError, match="PadTo"):
        apply_mm_pipeline(_ann(t=20, v=25, c=3), MMPipelineConfig(pad_to=12))
    x = to_stgcn_input(out)
    assert x.shape == (1, 3, 12, 25, 2) and torch.equal(x[0, :, 3, 7, 1], torch.from_numpy(out[0, 1, 3, 7]))


def test_average_clips():
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert torch.allclose(average_clips(logits), (logits.softmax(1)).mean(0))
    assert torch.allclose(average_clips(logits, "score"), torch.tensor([1.0, 0.5]))


def test_config_round_trip_and_errors():
    cfg = MMPipelineConfig(framework="pyskl", prenormalize="2d", dataset="coco", feats=["j", "bm"], clip_len=100,
                           num_clips=10, p_interval=0.5)
    assert MMPipelineConfig.from_dict(cfg.to_dict()) == cfg and cfg.p_interval == (0.5, 0.5)
    with pytest.raises(ConfigError, match="unknown key"):
        MMPipelineConfig.from_dict({"frobnicate": 1})
    with pytest.raises(ConfigError, match="feats"):
        MMPipelineConfig(feats=("x",))
    with pytest.raises(ConfigError, match="framework must be one of"):
        MMPipelineConfig(framework="mmcv")
    with pytest.raises(DataError, match="keypoint must be"):
        apply_mm_pipeline({"keypoint": np.zeros((2, 3))}, MMPipelineConfig())
