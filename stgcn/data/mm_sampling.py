"""The frame sampler of MMAction2's ``UniformSampleFrames`` and PYSKL's ``UniformSample``: test mode (fixed seed,
as upstream) and training mode (an explicit generator)."""

from __future__ import annotations

from typing import Any

import numpy as np

from stgcn.errors import ConfigError, DataError
from stgcn.utils.checks import is_int

__all__ = ["sample_test_indices", "sample_train_indices", "FRAMEWORKS"]

FRAMEWORKS = ("mmaction2", "pyskl")


def sample_test_indices(num_frames: int, clip_len: int, num_clips: int, *, seed: int = 255,
                        framework: str = "mmaction2", p_interval: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Frame indices of the uniform sampler in test mode, drawn exactly as upstream does from ``seed``.

    Per clip: fewer frames than ``clip_len`` loop from a start spread over the clips; up to twice
    ``clip_len`` keep consecutive frames with random skips; longer videos take one random frame per equal bin.
    PYSKL first draws a crop ratio in ``p_interval`` and an offset per clip.

    Shape:
        Returns (num_clips * clip_len,) int64, each in [0, num_frames).
    """
    if framework not in FRAMEWORKS:
        raise ConfigError(f"framework must be one of {', '.join(map(repr, FRAMEWORKS))}, got {framework!r}")
    if not is_int(num_frames) or num_frames < 1:
        raise DataError(f"cannot sample frames from a sequence of {num_frames!r} frames")
    rng = np.random.RandomState(seed)  # upstream: np.random.seed(seed), then the legacy global generator
    clips = []
    for i in range(num_clips):
        n, off = num_frames, 0
        if framework == "pyskl":
            ratio = rng.rand() * (p_interval[1] - p_interval[0]) + p_interval[0]
            n = int(ratio * num_frames)
            off = rng.randint(num_frames - n + 1)
        if n < clip_len:
            start = i if n < num_clips else i * n // num_clips
            inds = np.arange(start, start + clip_len)
        else:
            inds = _long_clip(n, clip_len, rng.choice, rng.randint)
        clips.append(inds + off)
    return np.mod(np.concatenate(clips), num_frames).astype(np.int64)


def sample_train_indices(num_frames: int, clip_len: int, rng: np.random.Generator, *,
                         p_interval: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Frame indices of one clip of the uniform sampler in training mode, drawn from ``rng``.

    As upstream's ``_get_train_clips``: a crop of ``ratio * num_frames`` frames at a random offset (``ratio``
    uniform in ``p_interval``; the whole clip by default), then: fewer frames than ``clip_len`` loop from a random
    start; up to twice ``clip_len`` keep consecutive frames with random skips; longer ones take one random frame
    per equal bin. The generator differs from upstream's global one, so the draws (not their law) differ.

    Shape:
        Returns (clip_len,) int64, each in [0, num_frames).
    """
    if not is_int(num_frames) or num_frames < 1:
        raise DataError(f"cannot sample frames from a sequence of {num_frames!r} frames")
    ratio = rng.random() * (p_interval[1] - p_interval[0]) + p_interval[0]
    n = max(int(ratio * num_frames), 1)
    off = int(rng.integers(num_frames - n + 1))
    if n < clip_len:
        start = int(rng.integers(n))
        inds = np.arange(start, start + clip_len)
    else:
        inds = _long_clip(n, clip_len, rng.choice, rng.integers)
    return np.mod(inds + off, num_frames).astype(np.int64)


def _long_clip(n: int, clip_len: int, choice: Any, randint: Any) -> np.ndarray:
    """Indices for ``n >= clip_len`` frames: consecutive frames with ``n - clip_len`` random skips (``n`` below
    twice ``clip_len``), else one random frame per bin ``[j * n // clip_len, (j + 1) * n // clip_len)``."""
    if n < 2 * clip_len:
        skips = choice(clip_len + 1, n - clip_len, replace=False)
        offset = np.zeros(clip_len + 1, dtype=np.int64)
        offset[skips] = 1
        return np.arange(clip_len) + np.cumsum(offset)[:-1]
    bids = np.array([j * n // clip_len for j in range(clip_len + 1)])
    return bids[:clip_len] + randint(np.diff(bids))
