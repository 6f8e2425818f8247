"""Transforms: hand-computed small cases, purity (no mutation), determinism, and the assembled pipeline."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from stgcn.data.transforms import (
    AugmentConfig,
    PreprocessConfig,
    build_transform,
    center_on_joint,
    feature_stream,
    normalize_2d,
    random_move,
    random_rotate_3d,
    random_shift,
    rotation_matrix,
    select_persons,
    take_frames,
    temporal_indices,
    view_joints,
    view_normalize,
)
from stgcn.data.transforms.augment import _key_frame_curves
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import get_layout

KINECT = get_layout("kinect-v1")


def _clip(t=6, m=1, v=20, c=3, seed=0):
    return np.random.default_rng(seed).normal(size=(t, m, v, c)).astype(np.float32)


# ---------------------------------------------------------------------------------------- temporal
def test_pad_mode_pads_short_clips_with_zero_frames_at_the_end():
    assert temporal_indices(3, 5, "pad").tolist() == [0, 1, 2, -1, -1]


def test_loop_mode_repeats_short_clips():
    assert temporal_indices(3, 7, "loop").tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_crop_is_centred_at_test_and_evenly_spaced_for_several_clips():
    assert temporal_indices(10, 4, "pad").tolist() == [3, 4, 5, 6]          # round(0.5 * 6) = 3
    starts = [temporal_indices(10, 4, "pad", clip_index=k, num_clips=3)[0] for k in range(3)]
    assert starts == [1, 3, 5]                                                # round((k + .5) / 3 * 6)


def test_crop_is_random_in_training_and_stays_inside():
    rng = np.random.default_rng(0)
    starts = {int(temporal_indices(10, 4, "loop", rng=rng)[0]) for _ in range(200)}
    assert starts == set(range(7))


def test_uniform_sampling_takes_one_frame_per_segment():
    # 10 frames in 5 segments of 2: the middle of each segment at test time
    assert temporal_indices(10, 5, "uniform").tolist() == [1, 3, 5, 7, 9]
    assert temporal_indices(10, 5, "uniform", clip_index=0, num_clips=2).tolist() == [0, 2, 4, 6, 8]
    assert temporal_indices(10, 5, "uniform", clip_index=1, num_clips=2).tolist() == [1, 3, 5, 7, 9]
    rng = np.random.default_rng(1)
    for _ in range(50):
        idx = temporal_indices(10, 5, "uniform", rng=rng)
        assert all(2 * k <= i < 2 * k + 2 for k, i in enumerate(idx))
    # a short clip repeats frames
    assert temporal_indices(2, 4, "uniform").tolist() == [0, 0, 1, 1]


def test_no_length_keeps_every_frame():
    assert temporal_indices(4, None, "uniform").tolist() == [0, 1, 2, 3]


def test_temporal_errors():
    with pytest.raises(DataError, match="empty clip"):
        temporal_indices(0, 4)
    with pytest.raises(ConfigError, match="valid modes are pad, loop, uniform"):
        temporal_indices(3, 4, "stretch")


def test_take_frames_zero_fills_minus_one():
    x = _clip(3)
    out = take_frames(x, np.array([2, -1, 0]))
    np.testing.assert_array_equal(out[0], x[2])
    assert not out[1].any()
    np.testing.assert_array_equal(out[2], x[0])


# ------------------------------------------------------------------------------------------ spatial
def test_select_persons_truncates_and_pads():
    x = _clip(2, m=3)
    np.testing.assert_array_equal(select_persons(x, 2), x[:, :2])
    out = select_persons(x, 5)
    assert out.shape == (2, 5, 20, 3) and not out[:, 3:].any()


def test_normalize_2d_follows_the_original_convention():
    x = np.array([[[[960.0, 540.0, 0.9], [0.0, 0.0, 0.0], [1920.0, 0.0, 0.5]]]], np.float32)   # (1, 1, 3, 3)
    out = normalize_2d(x, (1920, 1080), score_channel=2)
    np.testing.assert_allclose(out[0, 0, 0], [0.0, 0.0, 0.9])
    np.testing.assert_allclose(out[0, 0, 1], [0.0, 0.0, 0.0])      # undetected joint stays 0
    np.testing.assert_allclose(out[0, 0, 2], [0.5, -0.5, 0.5])


def test_center_per_frame_and_first_frame():
    x = np.zeros((2, 2, 3, 3), np.float32)
    x[0, 0] = [[1, 1, 1], [2, 2, 2], [3, 3, 3]]
    x[1, 0] = [[2, 2, 2], [4, 4, 4], [6, 6, 6]]
    x[0, 1] = [[5, 5, 5], [5, 5, 5], [5, 5, 5]]          # person 1 present only in frame 0
    out = center_on_joint(x, 1, "frame")
    np.testing.assert_allclose(out[0, 0, :, 0], [-1, 0, 1])
    np.testing.assert_allclose(out[1, 0, :, 0], [-2, 0, 2])
    np.testing.assert_allclose(out[0, 1, :, 0], [3, 3, 3])   # relative to person 0's joint
    assert not out[1, 1].any()                                 # absent person stays zero
    out = center_on_joint(x, 1, "first")
    np.testing.assert_allclose(out[1, 0, :, 0], [0, 2, 4])     # frame 1 minus frame 0's joint (2)


def test_view_normalize_turns_the_body_frame_into_the_axes():
    lay = KINECT
    bottom, top, right, left = view_joints(lay)
    x = np.zeros((2, 1, 20, 3), np.float32)
    rot = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    body = np.zeros((20, 3))
    body[top] = [0, 0, 0.5]
    body[left] = [0.2, 0, 0.5]
    body[right] = [-0.2, 0, 0.5]
    body[3] = [0.05, 0.1, 0.7]
    x[0, 0] = body @ rot.T                    # the body, turned
    x[1, 0] = (body + [0, 0, 0.1]) @ rot.T
    out = view_normalize(x, (bottom, top, right, left))
    np.testing.assert_allclose(out[0, 0], body, atol=1e-6)
    np.testing.assert_allclose(out[1, 0], body + [0, 0, 0.1], atol=1e-6)


def test_view_joints_needs_named_joints():
    with pytest.raises(ConfigError, match="view normalisation needs"):
        view_joints(get_layout("mediapipe-hand-21"))


def test_random_shift_moves_the_nonzero_span():
    x = np.zeros((6, 1, 2, 1), np.float32)
    x[0:2] = 1.0
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        out = random_shift(x, rng)
        nz = np.flatnonzero(out.any(axis=(1, 2, 3)))
        assert len(nz) == 2 and nz[1] == nz[0] + 1
        seen.add(int(nz[0]))
    assert seen == set(range(5))


def test_key_frame_curves_match_the_originals_linspace_segments():
    rng = np.random.default_rng(3)
    for t, steps in [(10, 1), (17, 2), (31, 3), (5, 4), (1, 1)]:
        nodes = np.append(np.arange(0, t, t * 1.0 / steps).round().astype(int), t)
        keys = rng.normal(size=(4, len(nodes)))
        want = np.zeros((4, t))
        for i in range(len(nodes) - 1):               # the original's loop
            for p in range(4):
                want[p, nodes[i]:nodes[i + 1]] = np.linspace(keys[p, i], keys[p, i + 1], nodes[i + 1] - nodes[i])
        np.testing.assert_allclose(_key_frame_curves(keys, nodes, t), want)


def test_random_move_with_fixed_candidates_is_the_exact_similarity():
    x = _clip(4)
    out = random_move(x, np.random.default_rng(0), angles=(30.0,), scales=(2.0,), translations=(0.5,))
    a = math.radians(30)
    ex = 2 * (math.cos(a) * x[..., 0] - math.sin(a) * x[..., 1]) + 0.5
    ey = 2 * (math.sin(a) * x[..., 0] + math.cos(a) * x[..., 1]) + 0.5
    np.testing.assert_allclose(out[..., 0], ex, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[..., 1], ey, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[..., 2], x[..., 2])


def test_random_move_interpolates_between_key_frames():
    x = np.zeros((5, 1, 1, 2), np.float32)
    x[..., 0] = 1.0
    # translation keys are drawn from {0, 1}: the first frame gets the first key, the last the last
    rng = np.random.default_rng(5)
    for _ in range(20):
        out = random_move(x, rng, angles=(0.0,), scales=(1.0,), translations=(0.0, 1.0))
        tx = out[:, 0, 0, 0] - 1.0
        assert tx[0] in (0.0, 1.0) and tx[-1] in (0.0, 1.0)
        np.testing.assert_allclose(np.diff(tx), (tx[-1] - tx[0]) / 4, atol=1e-6)


def test_random_rotate_3d_preserves_lengths_and_zero_points():
    x = _clip(5, m=2)
    x[:, 1] = 0
    out = random_rotate_3d(x, np.random.default_rng(0), 30.0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    assert not out[:, 1].any()
    assert not np.allclose(out, x)


def test_feature_streams_by_hand():
    lay = get_layout("kinect-v1")
    x = _clip(3)
    pairs = lay.bone_pairs()
    bone = feature_stream(x, "bone", pairs)
    for j, p in pairs:
        np.testing.assert_allclose(bone[:, :, j], x[:, :, j] - x[:, :, p])
    assert not bone[:, :, lay.center].any()                    # the centre's bone is zero
    motion = feature_stream(x, "joint_motion", pairs)
    np.testing.assert_allclose(motion[:-1], x[1:] - x[:-1])
    assert not motion[-1].any()
    bm = feature_stream(x, "bone_motion", pairs)
    np.testing.assert_allclose(bm[:-1], bone[1:] - bone[:-1], atol=1e-6)
    np.testing.assert_array_equal(feature_stream(x, "joint", pairs), x)


def test_feature_streams_keep_the_score_channel():
    x = _clip(3, v=18)
    x[..., 2] = np.abs(x[..., 2])
    pairs = get_layout("openpose-18").bone_pairs()
    out = feature_stream(x, "bone_motion", pairs, num_coords=2)
    np.testing.assert_array_equal(out[..., 2], x[..., 2])


# ----------------------------------------------------------------------------------------- configs
def test_configs_round_trip_through_dicts():
    p = PreprocessConfig(length=32, resize="pad", num_clips=3, max_persons=2, channels=("x", "y", "score"),
                         image_size=(1920, 1080), center="frame", center_joint="neck", stream="bone")
    d = p.to_dict()
    assert d["channels"] == ["x", "y", "score"] and d["image_size"] == [1920.0, 1080.0]
    assert PreprocessConfig.from_dict(d) == p
    a = AugmentConfig(random_move=True, move_angles=[-5, 5], rotate_3d=10)
    assert AugmentConfig.from_dict(a.to_dict()) == a
    assert a.move_angles == (-5, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length": 0}, "length must be a positive integer"),
        ({"resize": "warp"}, "valid modes are pad, loop, uniform"),
        ({"stream": "velocity"}, "valid streams are joint, bone, joint_motion, bone_motion"),
        ({"center": "middle"}, "valid modes are none, frame, first"),
        ({"num_clips": 0}, "num_clips must be a positive integer"),
        ({"image_size": (0, 5)}, "image_size must be"),
    ],
)
def test_preprocess_config_validates(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PreprocessConfig(**kwargs)


def test_from_dict_lists_valid_keys():
    with pytest.raises(ConfigError, match="unknown key.*'window'.*valid keys"):
        PreprocessConfig.from_dict({"window": 3})


# ---------------------------------------------------------------------------------------- pipeline
def test_transform_output_layout_and_purity():
    x = _clip(40, m=1)
    before = x.copy()
    pre = PreprocessConfig(length=16, channels=("x", "y", "z"), center="first", view_normalize=True,
                           max_persons=2, stream="bone")
    aug = AugmentConfig(random_move=True, random_shift=True, rotate_3d=20)
    train = build_transform(pre, aug, train=True, layout="kinect-v1")
    out = train(x, np.random.default_rng(0))
    assert out.shape == (3, 16, 20, 2) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(x, before)
    again = train(x, np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)                    # same generator state, same output
    assert not np.array_equal(out, train(x, np.random.default_rng(1)))
    test = build_transform(pre, aug, train=False, layout="kinect-v1")
    np.testing.assert_array_equal(test(x), test(x))
    np.testing.assert_array_equal(x, before)


def test_test_transform_is_the_deterministic_pipeline_by_hand():
    x = _clip(10)
    pre = PreprocessConfig(length=5, resize="uniform", center="frame", center_joint=2)
    out = build_transform(pre, train=False, layout="kinect-v1")(x)
    want = (x - x[:, :1, 2:3])[[1, 3, 5, 7, 9]]
    np.testing.assert_allclose(out, want.transpose(3, 0, 2, 1), atol=1e-6)


def test_multi_clip_testing_returns_k_inputs():
    x = _clip(30)
    pre = PreprocessConfig(length=8, resize="uniform", num_clips=4)
    t = build_transform(pre, train=False, layout="kinect-v1")
    out = t(x)
    assert out.shape == (4, 3, 8, 20, 1)
    assert not np.array_equal(out[0], out[1])
    train = build_transform(pre, train=True, layout="kinect-v1")
    assert train(x, np.random.default_rng(0)).shape == (3, 8, 20, 1)      # one clip in training
    assert t.clips(x).shape == (4, 3, 8, 20, 1)


def test_2d_pipeline_with_scores_reproduces_the_original_centering():
    x = np.zeros((2, 1, 18, 3), np.float32)
    x[..., 0], x[..., 1], x[..., 2] = 0.75, 0.25, 0.9
    x[:, :, 5, 2] = 0                                    # joint 5 undetected
    pre = PreprocessConfig(length=4, resize="pad", channels=("x", "y", "score"), image_size=(1, 1))
    out = build_transform(pre, train=False, layout="openpose-18")(x)
    assert out.shape == (3, 4, 18, 1)
    np.testing.assert_allclose(out[:, :2, 0, 0].T, [[0.25, -0.25, 0.9]] * 2)
    assert not out[:, :2, 5].any() and not out[:, 2:].any()


def test_training_transform_needs_a_generator():
    t = build_transform(PreprocessConfig(length=4), train=True, layout="kinect-v1")
    with pytest.raises(ConfigError, match="Generator"):
        t(_clip(5))


def test_transform_rejects_bad_clips_and_configs():
    t = build_transform(PreprocessConfig(length=4, channels=("x", "y", "z")), train=False, layout="kinect-v1")
    with pytest.raises(DataError, match=r"expected \(T, M, 20, C\)"):
        t(_clip(5, v=18))
    with pytest.raises(DataError, match="expected 3"):
        t(_clip(5, c=2))
    with pytest.raises(DataError, match="empty clip"):
        t(np.zeros((0, 1, 20, 3), np.float32))
    with pytest.raises(ConfigError, match="not a joint of layout"):
        build_transform(PreprocessConfig(center_joint="tail"), train=False, layout="kinect-v1")
    with pytest.raises(ConfigError, match="need x, y, z"):
        build_transform(PreprocessConfig(channels=("x", "y", "score")), AugmentConfig(rotate_3d=10), train=True,
                        layout="openpose-18")


def test_transform_pickles():
    t = build_transform(PreprocessConfig(length=4), AugmentConfig(random_move=True), train=True, layout="kinect-v1")
    t2 = pickle.loads(pickle.dumps(t))
    x = _clip(9)
    np.testing.assert_array_equal(t(x, np.random.default_rng(3)), t2(x, np.random.default_rng(3)))


def test_rotation_matrix_is_rz_ry_rx():
    ax, ay, az = 0.3, -0.7, 1.1
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    np.testing.assert_allclose(rotation_matrix(ax, ay, az), rz @ ry @ rx, atol=1e-12)


def test_fused_centring_and_view_normalisation_equal_the_two_steps():
    x = _clip(9, m=2, seed=4)
    x[:2, 0] = 0                                        # person 0 appears at frame 2
    x[5:, 1] = 0
    pre = PreprocessConfig(length=None, center="first", center_joint="spine", view_normalize=True)
    got = build_transform(pre, train=False, layout="kinect-v1")(x)
    want = view_normalize(center_on_joint(x, 1, "first"), view_joints(KINECT))
    np.testing.assert_allclose(got, want.transpose(3, 0, 2, 1), atol=1e-5)
