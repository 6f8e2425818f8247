"""Random per-axis scaling (``AugmentConfig.random_scale``): config checks, the factors, the pipeline order."""

from __future__ import annotations

import numpy as np
import pytest

from stgcn.data.transforms import AugmentConfig, PreprocessConfig, build_transform
from stgcn.data.transforms.augment import apply_scales, random_scales
from stgcn.errors import ConfigError


def _clip(t=8, seed=0):
    return np.random.default_rng(seed).normal(size=(t, 1, 20, 3)).astype(np.float32)


@pytest.mark.parametrize("value", [-0.1, 1.0, 2, True, "0.1"])
def test_random_scale_is_checked(value):
    with pytest.raises(ConfigError, match="random_scale must be in"):
        AugmentConfig(random_scale=value)


def test_random_scale_round_trips_and_defaults_off():
    a = AugmentConfig(random_scale=0.2, rotate_3d=10)
    assert AugmentConfig.from_dict(a.to_dict()) == a
    assert AugmentConfig().random_scale == 0.0


def test_factors_lie_in_range_and_apply_per_axis():
    s = random_scales(np.random.default_rng(0), 0.2, 3)
    assert s.shape == (3,) and ((0.8 <= s) & (s <= 1.2)).all() and len(set(s.tolist())) == 3
    x = _clip()[None]
    x[0, 2] = 0                                     # a zero frame stays zero
    out = apply_scales(x, s[None])
    np.testing.assert_allclose(out[..., 0], x[..., 0] * s[0], rtol=1e-6)
    np.testing.assert_allclose(out[..., 2], x[..., 2] * s[2], rtol=1e-6)
    assert not out[0, 2].any()


def test_pipeline_scales_coordinates_but_not_scores():
    x = np.concatenate([_clip(), np.full((8, 1, 20, 1), 0.5, np.float32)], axis=-1)
    pre = PreprocessConfig(length=8, channels=("x", "y", "z", "score"))
    plain = build_transform(pre, AugmentConfig(), train=True, layout="kinect-v1")(x, np.random.default_rng(3))
    scaled = build_transform(pre, AugmentConfig(random_scale=0.3), train=True, layout="kinect-v1")(
        x, np.random.default_rng(3))
    np.testing.assert_array_equal(scaled[3], plain[3])                       # the score channel
    ratio = scaled[:3] / plain[:3]
    for c in range(3):                                                      # one factor per axis
        assert np.allclose(ratio[c], ratio[c].flat[0], rtol=1e-5) and 0.7 <= ratio[c].flat[0] <= 1.3
    assert not np.allclose(ratio[0].flat[0], 1.0)


def test_scale_comes_after_the_other_draws():
    """Existing augmentations draw the same numbers with and without scaling (results stay reproducible)."""
    x = _clip(12)
    pre = PreprocessConfig(length=8)
    a = build_transform(pre, AugmentConfig(rotate_3d=20), train=True, layout="kinect-v1")
    b = build_transform(pre, AugmentConfig(rotate_3d=20, random_scale=0.1), train=True, layout="kinect-v1")
    ra, rb = np.random.default_rng(5), np.random.default_rng(5)
    out_a, out_b = a(x, ra), b(x, rb)
    ratio = out_b / np.where(out_a == 0, 1, out_a)
    assert np.allclose(ratio[0][out_a[0] != 0], ratio[0][out_a[0] != 0].flat[0], rtol=1e-4)
