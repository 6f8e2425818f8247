"""Temporal steps on ``(T, M, V, C)`` clips: which frames make a fixed-length input, and the original's random
shift. Pure numpy; the random ones take an explicit :class:`numpy.random.Generator`."""

from __future__ import annotations

import numpy as np

from stgcn.data.mm_sampling import sample_test_indices, sample_train_indices
from stgcn.data.transforms.config import RESIZE_MODES
from stgcn.data.transforms.spatial import _present
from stgcn.errors import ConfigError, DataError

__all__ = ["temporal_indices", "take_frames", "random_shift"]


def temporal_indices(
    num_frames: int,
    length: int | None,
    mode: str = "pad",
    *,
    rng: np.random.Generator | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """Frame indices that bring a clip of ``num_frames`` frames to ``length`` frames (-1: a zero frame).

    Modes:
        * ``pad``: a longer clip is cropped (random window with ``rng``; else window ``clip_index`` of
          ``num_clips`` evenly spaced ones, the centre one for a single clip); a shorter one is padded with
          zero frames at the end.
        * ``loop``: as ``pad`` but a shorter clip is repeated from its start until ``length`` frames.
        * ``uniform``: split the clip into ``length`` equal segments and take one frame from each (a random
          frame with ``rng``; else the frame at fraction ``(clip_index + 0.5) / num_clips`` of each
          segment); a shorter clip repeats frames.
        * ``pyskl``: PYSKL's / MMAction2's ``UniformSample(Frames)`` (:mod:`stgcn.data.mm_sampling`): a clip
          shorter than ``length`` loops from a start (random in training; ``clip_index * num_frames // num_clips``
          at test), one up to twice as long keeps consecutive frames with random skips, a longer one takes a
          random frame per bin. Test draws come from PYSKL's fixed seed 255, as upstream's 10-clip test.

    ``length=None`` keeps every frame.
    """
    if num_frames < 1:
        raise DataError("empty clip: expected at least one frame")
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize mode {mode!r} is not valid; valid modes are {', '.join(RESIZE_MODES)}")
    if length is None:
        return np.arange(num_frames)
    if mode == "pyskl":
        if rng is not None:
            return sample_train_indices(num_frames, length, rng)
        all_clips = sample_test_indices(num_frames, length, num_clips, framework="pyskl")
        return all_clips[clip_index * length:(clip_index + 1) * length]
    if mode == "uniform":
        width = num_frames / length                         # segment k is [k * width, (k + 1) * width)
        frac = rng.random(length) if rng is not None else (clip_index + 0.5) / num_clips
        pos = (np.arange(length) + frac) * width
        return np.minimum(pos.astype(np.int64), num_frames - 1)
    if num_frames >= length:
        room = num_frames - length
        if rng is not None:
            start = int(rng.integers(0, room + 1))
        else:
            start = int(round((clip_index + 0.5) / num_clips * room))
        return np.arange(start, start + length)
    if mode == "loop":
        return np.arange(length) % num_frames
    idx = np.full(length, -1, dtype=np.int64)
    idx[:num_frames] = np.arange(num_frames)
    return idx


def take_frames(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Gather frames by index; index -1 gives an all-zero frame.

    Shape:
        x: (T, M, V, C), indices: (L,) -> (L, M, V, C)
    """
    out = x[np.maximum(indices, 0)]
    if (indices < 0).any():
        out[indices < 0] = 0
    return out


def random_shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The original's random shift: move the span of non-zero frames to a random offset (zeros around it).

    Shape:
        x: (T, M, V, C) -> same shape
    """
    valid = np.flatnonzero(_present(x).any(axis=1))
    out = np.zeros_like(x)
    if valid.size == 0:
        return out
    begin, end = int(valid[0]), int(valid[-1]) + 1
    size = end - begin
    bias = int(rng.integers(0, x.shape[0] - size + 1))
    out[bias:bias + size] = x[begin:end]
    return out
