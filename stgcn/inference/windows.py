"""Sliding windows over a sequence: their frame ranges, one label per frame from them, and the temporal
receptive field of a model (the span of input frames one output frame depends on)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from stgcn.errors import ConfigError
from stgcn.models.config import STGCNConfig

if TYPE_CHECKING:
    from stgcn.inference.results import WindowPrediction

__all__ = ["temporal_receptive_field", "window_bounds", "frame_labels"]


def temporal_receptive_field(config: STGCNConfig) -> int:
    """Number of input frames one output frame of the last block depends on.

    Each temporal convolution adds ``(Gamma - 1) * J`` frames, where ``J`` is the product of the strides
    before it; graph convolutions, BatchNorm and the 1x1 residual projections add none.

    >>> temporal_receptive_field(STGCNConfig(num_classes=2))
    153
    """
    field_, jump = 1, 1
    for _, stride in config.blocks:
        field_ += (config.temporal_kernel - 1) * jump
        jump *= stride
    return field_


def window_bounds(num_frames: int, window: int, stride: int, *, include_tail: bool = True) -> list[tuple[int, int]]:
    """``(start, end)`` frame ranges of the sliding windows over ``num_frames`` frames.

    Windows of ``window`` frames start at ``0, stride, 2 * stride, ...``. With ``include_tail`` a last
    window ``(T - window, T)`` covers frames after the last regular one. A sequence shorter than
    ``window`` gives one window over all of it.
    """
    if window < 1 or stride < 1:
        raise ConfigError(f"window and stride must be positive, got window={window}, stride={stride}")
    if num_frames < 1:
        return []
    if num_frames <= window:
        return [(0, num_frames)]
    bounds = [(s, s + window) for s in range(0, num_frames - window + 1, stride)]
    if include_tail and bounds[-1][1] < num_frames:
        bounds.append((num_frames - window, num_frames))
    return bounds


def frame_labels(windows: Sequence[WindowPrediction], num_frames: int, *, causal: bool = True) -> list[int | None]:
    """One class index per frame from window predictions.

    Args:
        windows: Window predictions in order of their end frame.
        num_frames: Length of the sequence.
        causal: ``True``: frame ``f`` shows the latest window that had ended by frame ``f`` (what a live
            stream displays; ``None`` before the first window ends). ``False``: frame ``f`` takes the window
            whose centre is nearest (offline analysis; every frame labelled).
    """
    out: list[int | None] = [None] * num_frames
    if not windows:
        return out
    if causal:
        k = -1
        for f in range(num_frames):
            while k + 1 < len(windows) and windows[k + 1].end <= f + 1:
                k += 1
            out[f] = windows[k].prediction.indices[0] if k >= 0 else None
        return out
    centres = np.array([(w.start + w.end - 1) / 2 for w in windows])
    for f in range(num_frames):
        out[f] = windows[int(np.argmin(np.abs(centres - f)))].prediction.indices[0]
    return out
