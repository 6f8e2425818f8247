"""Channel names of keypoint data and the rules that use them, written once.

A clip's values per joint are named channels: the coordinates ``x``, ``y`` (and ``z``) and, for detected
keypoints, a detection score (named ``score``, ``confidence``, ``c`` or ``visibility``: :data:`SCORE_CHANNELS`).
This module holds:

* :func:`is_score`: whether a channel name names a score;
* :func:`select_channels`: coordinates + scores -> the channels a model takes, by name;
* :func:`model_input_channels`: which channels to feed a model with ``in_channels`` inputs from a clip with
  given coordinates (and scores or not);
* :func:`normalize_original`: the original ST-GCN normalisation of 2-D pixel coordinates,
  ``(x / W - 0.5, y / H - 0.5)`` (``z / W``), with joints that were not detected set to 0;
* :func:`fit_image_coordinates`: pixel coordinates of a ``W x H`` image in the convention a checkpoint's
  stored preprocessing expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from stgcn.errors import DataError

if TYPE_CHECKING:
    from stgcn.data.transforms import PreprocessConfig

__all__ = [
    "SCORE_CHANNELS", "COORDINATE_CHANNELS", "is_score", "select_channels", "model_input_channels",
    "normalize_original", "fit_image_coordinates",
]

SCORE_CHANNELS = ("score", "confidence", "c", "visibility")
COORDINATE_CHANNELS = ("x", "y", "z")


def is_score(name: str) -> bool:
    """Whether a channel name (any case) names a detection score (:data:`SCORE_CHANNELS`)."""
    return name.lower() in SCORE_CHANNELS


def select_channels(keypoints: np.ndarray, scores: np.ndarray | None, channels: Sequence[str], *,
                    error: type[Exception] = DataError) -> np.ndarray:
    """Assemble named channels from coordinates and scores.

    ``x``/``y``/``z`` take coordinate 0/1/2 of ``keypoints``; score names (:data:`SCORE_CHANNELS`, any case)
    take ``scores``, or ones when there are none.

    Args:
        keypoints: The coordinates, ``x, y[, z]`` in this order.
        scores: Detection scores, or ``None``.
        channels: The names of the channels to return, in order.
        error: The exception type raised for a bad name (a data file's fault by default; a caller's option
            passes :class:`~stgcn.errors.ConfigError`).

    Shape:
        keypoints: (..., C), scores: keypoints' shape without C -> (..., len(channels)) float32.

    Raises:
        error: a coordinate the clip lacks (e.g. ``z`` from a 2-D clip) or an unknown channel name.
    """
    out = []
    for name in channels:
        key = name.lower()
        if key in COORDINATE_CHANNELS:
            index = COORDINATE_CHANNELS.index(key)
            if index >= keypoints.shape[-1]:
                raise error(f"the model expects channel {name!r} but the clip has only "
                            f"{keypoints.shape[-1]} coordinates")
            out.append(keypoints[..., index])
        elif key in SCORE_CHANNELS:
            out.append(scores if scores is not None else np.ones(keypoints.shape[:-1], dtype=np.float32))
        else:
            raise error(f"unknown channel {name!r}; valid channels are x, y, z, score")
    return np.stack(out, axis=-1).astype(np.float32)


def model_input_channels(in_channels: int, coordinates: Sequence[str], has_scores: bool,
                         stored: Sequence[str] | None = None) -> list[str]:
    """The channels to feed a model with ``in_channels`` inputs per joint from a clip.

    The stored preprocessing's channel names (``stored``) when it has them; else the clip's coordinates,
    plus ``score`` when the model takes one channel more (:func:`select_channels` gives scores of 1 when the
    clip has none).

    Raises:
        DataError: the model takes another number of channels.
    """
    if stored is not None:
        return list(stored)
    coords = list(coordinates)
    if in_channels == len(coords):
        return coords
    if in_channels == len(coords) + 1:
        return coords + ["score"]
    raise DataError(f"the model takes {in_channels} channels per joint; the clip has {', '.join(coords)}"
                    f"{' and scores' if has_scores else ''}")


def normalize_original(x: np.ndarray, image_size: tuple[float, float], channels: Sequence[str] = ("x", "y"), *,
                       score_channel: int | None = None) -> np.ndarray:
    """Pixel coordinates to the original ST-GCN convention: ``x / W - 0.5``, ``y / H - 0.5``, ``z / W``.

    Joints that were not detected (score 0 when there is a score channel, else ``x`` and ``y`` both 0) are set
    to 0 in every channel, as the original Kinetics feeder and demo do.

    Args:
        x: The keypoints.
        image_size: ``(W, H)``.
        channels: Names of the leading channels of ``x``; channels without a name, or with another name than
            ``x``, ``y``, ``z`` or a score name, are left as they are.
        score_channel: Index of the score channel; ``None``: the first channel named as a score, if any.

    Shape:
        x: (..., C) -> same shape, float32.
    """
    names = [c.lower() for c in channels]
    width, height = np.float32(image_size[0]), np.float32(image_size[1])
    out = x.astype(np.float32, copy=True)
    if score_channel is None:
        score_channel = next((i for i, n in enumerate(names) if n in SCORE_CHANNELS), None)
    if score_channel is not None:
        missing = out[..., score_channel] == 0
    else:
        coords = [i for i, n in enumerate(names) if n in ("x", "y")]
        missing = np.all(out[..., coords] == 0, axis=-1)
    for i, name in enumerate(names):
        if name == "x":
            out[..., i] = out[..., i] / width - np.float32(0.5)
        elif name == "y":
            out[..., i] = out[..., i] / height - np.float32(0.5)
        elif name == "z":
            out[..., i] = out[..., i] / width
    out[missing] = 0
    return out


def _stored_image_size(preprocess: PreprocessConfig | dict[str, Any]) -> tuple[float, float] | None:
    size = preprocess.get("image_size") if isinstance(preprocess, dict) else preprocess.image_size
    return None if size is None else (float(size[0]), float(size[1]))


def fit_image_coordinates(x: np.ndarray, image_size: tuple[float, float],
                          preprocess: PreprocessConfig | dict[str, Any] | None,
                          channels: Sequence[str]) -> np.ndarray:
    """Pixel coordinates of a ``W x H`` image in the convention a model expects.

    * no stored preprocessing (a converted original checkpoint): the original ST-GCN's
      ``(x / W - 0.5, y / H - 0.5)`` (``z / W``), joints with score 0 (or x = y = 0 without scores) set to 0
      (:func:`normalize_original`);
    * preprocessing that normalises by an image size ``(w, h)`` itself: rescaled to a ``w x h`` image, so that
      the stored normalisation again gives ``x / W - 0.5``;
    * other preprocessing: unchanged (the model was trained on coordinates as stored).

    Shape:
        x: (T, M, V, C) with channels named by ``channels`` -> same shape.
    """
    if preprocess is None:
        return normalize_original(x, image_size, channels)
    stored = _stored_image_size(preprocess)
    if stored is None:
        return x
    width, height = float(image_size[0]), float(image_size[1])
    scale = {"x": stored[0] / width, "y": stored[1] / height, "z": stored[0] / width}
    out = x.astype(np.float32, copy=True)
    for i, name in enumerate(c.lower() for c in channels):
        if name in scale:
            out[..., i] = out[..., i] * np.float32(scale[name])
    return out
