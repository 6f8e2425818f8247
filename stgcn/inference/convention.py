"""The input-convention guard: pixel keypoints brought to a checkpoint's coordinate convention, and pixels fed
to a model that expects normalised coordinates caught instead of classified.

A checkpoint without stored preprocessing (a converted original ST-GCN) was trained on the original
normalisation ``(x / W - 0.5, y / H - 0.5)``, values within about +-0.5. Pixel coordinates (tens to hundreds)
fed to it give confident nonsense (the Kinetics model says "exercising with an exercise ball", p = 1.000, for
every demo clip in pixels). :func:`check_coordinates` raises :class:`~stgcn.errors.DataError` for such input;
:func:`pixels_to_model` converts pixels with the image size (:func:`stgcn.data.channels.fit_image_coordinates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from stgcn.data.channels import fit_image_coordinates
from stgcn.errors import DataError

if TYPE_CHECKING:
    from stgcn.data.transforms import PreprocessConfig

__all__ = ["raw_channel_names", "check_coordinates", "pixels_to_model", "PIXEL_LIMIT"]

# median |x|, |y| of the seen joints above which normalised coordinates (within +-0.5) are taken for pixels
PIXEL_LIMIT = 2.0


def raw_channel_names(num_channels: int, stored: Sequence[str] | None = None) -> list[str]:
    """Names of a raw clip's channels: the stored preprocessing's, else ``x, y`` (2), ``x, y, score`` (3),
    ``x, y, z, score`` (4).

    Raises:
        DataError: another number of channels and no stored names.
    """
    if stored is not None and len(stored) == num_channels:
        return list(stored)
    names = {2: ["x", "y"], 3: ["x", "y", "score"], 4: ["x", "y", "z", "score"]}.get(num_channels)
    if names is None:
        raise DataError(f"cannot name {num_channels} channels per joint; pixel input needs 2 (x, y), 3 (x, y, "
                        f"score) or 4 (x, y, z, score)")
    return names


def check_coordinates(clip: np.ndarray, preprocess: PreprocessConfig | dict[str, Any] | None, *,
                      where: str = "input") -> None:
    """Raise when a model that expects the original normalised coordinates gets what looks like pixels.

    Only checkpoints without stored preprocessing are checked (their convention is known: within +-0.5); the
    test is the median ``|x|, |y|`` of the joints that are not all zero, against :data:`PIXEL_LIMIT`.

    Shape:
        clip: (..., V, C) with ``x, y`` first.
    """
    if preprocess is not None:
        return
    xy = np.asarray(clip)[..., :2]
    seen = np.any(xy != 0, axis=-1)
    if not seen.any():
        return
    median = float(np.median(np.abs(xy[seen])))
    if median > PIXEL_LIMIT:
        raise DataError(f"{where}: the coordinates look like pixels (median |x|, |y| = {median:.3g}) but the model "
                        f"expects the original ST-GCN's normalised (x / W - 0.5, y / H - 0.5), within +-0.5; pass "
                        f"image_size=(W, H) to convert them (stgcn predict: a keypoints file with its image_size)")


def pixels_to_model(clip: np.ndarray, image_size: tuple[float, float],
                    preprocess: PreprocessConfig | dict[str, Any] | None,
                    channels: Sequence[str] | None = None) -> np.ndarray:
    """Pixel keypoints of a ``W x H`` image in the convention of a checkpoint with this stored preprocessing.

    Args:
        clip: Keypoints in pixels.
        image_size: ``(W, H)``.
        preprocess: The checkpoint's stored preprocessing (``None``: the original normalisation).
        channels: Channel names; ``None``: :func:`raw_channel_names`.

    Shape:
        clip: (..., V, C) -> same shape, float32.
    """
    x = np.asarray(clip, dtype=np.float32)
    stored = None if preprocess is None else (preprocess.get("channels") if isinstance(preprocess, dict)
                                              else preprocess.channels)
    names = list(channels) if channels is not None else raw_channel_names(x.shape[-1], stored)
    if len(names) != x.shape[-1]:
        raise DataError(f"{len(names)} channel names for {x.shape[-1]} channels")
    w, h = float(image_size[0]), float(image_size[1])
    if not (w > 0 and h > 0):
        raise DataError(f"image_size must be (W, H) > 0, got {tuple(image_size)}")
    return fit_image_coordinates(x, (w, h), preprocess, names)
