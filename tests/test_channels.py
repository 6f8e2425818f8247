"""stgcn.data.channels: score names, channel selection, a model's input channels, the original normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from stgcn.data import channels as ch
from stgcn.data.transforms import PreprocessConfig
from stgcn.errors import ConfigError, DataError


def test_score_names():
    assert ch.SCORE_CHANNELS == ("score", "confidence", "c", "visibility")
    assert all(ch.is_score(n) for n in ("score", "Confidence", "C", "VISIBILITY"))
    assert not any(ch.is_score(n) for n in ("x", "y", "z", "scores"))


def test_transforms_and_render_use_the_same_score_names():
    from stgcn.data import transforms

    assert transforms.SCORE_CHANNELS == ch.SCORE_CHANNELS


def test_select_channels():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(4, 2, 5, 3)).astype(np.float32)
    s = rng.uniform(size=(4, 2, 5)).astype(np.float32)
    out = ch.select_channels(kp, s, ["y", "X", "visibility", "z"])
    assert out.shape == (4, 2, 5, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.stack([kp[..., 1], kp[..., 0], s, kp[..., 2]], axis=-1))
    np.testing.assert_array_equal(ch.select_channels(kp, None, ["c"])[..., 0], 1.0)
    with pytest.raises(DataError, match="expects channel 'z' but the clip has only 2 coordinates"):
        ch.select_channels(kp[..., :2], s, ["x", "z"])
    with pytest.raises(ConfigError, match="unknown channel 'w'; valid channels are x, y, z, score"):
        ch.select_channels(kp, s, ["w"], error=ConfigError)


def test_sources_to_channels_delegates():
    from stgcn.data.sources import to_channels

    kp = np.arange(2 * 1 * 3 * 2, dtype=np.float32).reshape(2, 1, 3, 2)
    np.testing.assert_array_equal(to_channels(kp, None, ["x", "y", "score"]),
                                  ch.select_channels(kp, None, ["x", "y", "score"]))


def test_model_input_channels():
    assert ch.model_input_channels(3, ["x", "y"], True) == ["x", "y", "score"]
    assert ch.model_input_channels(2, ("x", "y"), True) == ["x", "y"]
    assert ch.model_input_channels(3, ["x", "y", "z"], False) == ["x", "y", "z"]
    assert ch.model_input_channels(5, ["x", "y"], True, stored=("x", "y", "score")) == ["x", "y", "score"]
    assert ch.model_input_channels(4, ["x", "y", "z"], False) == ["x", "y", "z", "score"]
    with pytest.raises(DataError, match="the model takes 5 channels per joint; the clip has x, y and scores"):
        ch.model_input_channels(5, ["x", "y"], True)


def test_normalize_original():
    x = np.array([[[[340.0, 128.0, 34.0, 0.5], [170.0, 64.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.9]]]], np.float32)
    out = ch.normalize_original(x, (340, 256), ("x", "y", "z", "score"))
    np.testing.assert_allclose(out[0, 0, 0], [0.5, 0.0, 0.1, 0.5])
    np.testing.assert_array_equal(out[0, 0, 1], 0)  # score 0: not detected
    np.testing.assert_allclose(out[0, 0, 2], [-0.5, -0.5, 0.0, 0.9])  # detected at the origin
    # without scores, x = y = 0 marks a missing joint; unnamed channels stay as they are
    two = ch.normalize_original(x[..., :3], (340, 256))
    np.testing.assert_allclose(two[0, 0, 0], [0.5, 0.0, 34.0])
    np.testing.assert_array_equal(two[0, 0, 2], 0)
    # a score given by index; names in any order
    idx = ch.normalize_original(x[..., [1, 0, 3]], (340, 256), ("Y", "X"), score_channel=2)
    np.testing.assert_allclose(idx[0, 0, 0], [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(idx[0, 0, 1], 0)
    assert x[0, 0, 0, 0] == 340.0  # input untouched


def test_transforms_normalize_2d_delegates():
    from stgcn.data.transforms import normalize_2d

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 500, size=(3, 2, 4, 3)).astype(np.float32)
    x[0, 0, 1, 2] = 0
    np.testing.assert_array_equal(normalize_2d(x, (640, 480), 2),
                                  ch.normalize_original(x, (640, 480), ("x", "y", "score")))


def test_fit_image_coordinates_dict_or_config():
    x = np.array([[[[340.0, 128.0, 0.5]]]], np.float32)
    names = ["x", "y", "score"]
    np.testing.assert_allclose(ch.fit_image_coordinates(x, (340, 256), None, names)[0, 0, 0], [0.5, 0.0, 0.5])
    for pre in (PreprocessConfig(image_size=(680, 128)), {"image_size": [680, 128]}):
        np.testing.assert_allclose(ch.fit_image_coordinates(x, (340, 256), pre, names)[0, 0, 0], [680, 64, 0.5])
    for pre in (PreprocessConfig(), {"length": 64}):
        np.testing.assert_array_equal(ch.fit_image_coordinates(x, (340, 256), pre, names), x)


def test_old_import_places_still_work():
    from stgcn.inference.predict import fit_image_coordinates

    assert fit_image_coordinates is ch.fit_image_coordinates
