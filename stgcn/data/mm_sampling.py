"""The test-mode frame sampler of MMAction2's ``UniformSampleFrames`` and PYSKL's ``UniformSample``."""

from __future__ import annotations

import numpy as np

from stgcn.errors import ConfigError, DataError
from stgcn.utils.checks import is_int

__all__ = ["sample_test_indices", "FRAMEWORKS"]

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
        elif n < 2 * clip_len:
            skips = rng.choice(clip_len + 1, n - clip_len, replace=False)
            offset = np.zeros(clip_len + 1, dtype=np.int64)
            offset[skips] = 1
            inds = np.arange(clip_len) + np.cumsum(offset)[:-1]
        else:
            bids = np.array([j * n // clip_len for j in range(clip_len + 1)])
            inds = bids[:clip_len] + rng.randint(np.diff(bids))
        clips.append(inds + off)
    return np.mod(np.concatenate(clips), num_frames).astype(np.int64)
