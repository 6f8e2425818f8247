"""PredictionStream: frames one at a time, equal to the offline sliding window, bounded memory and work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stgcn.data.transforms import PreprocessConfig
from stgcn.errors import DataError
from stgcn.inference.predict import PredictionStream, Predictor
from tests.use_utils import random_clip, small_checkpoint


def _run_stream(stream: PredictionStream, clip: np.ndarray) -> list:
    out = []
    for frame in clip:
        w = stream.push(frame)
        if w is not None:
            out.append(w)
    tail = stream.flush()
    if tail is not None:
        out.append(tail)
    return out


def _assert_same(stream_out: list, offline: list) -> None:
    assert [(w.start, w.end) for w in stream_out] == [(w.start, w.end) for w in offline]
    for a, b in zip(stream_out, offline, strict=True):
        assert a.prediction.indices == b.prediction.indices
        np.testing.assert_allclose(a.prediction.probabilities, b.prediction.probabilities, atol=1e-6)


@pytest.mark.parametrize("t,window,stride", [
    (60, 20, 5),    # regular windows plus a tail
    (60, 20, 20),   # back to back, no tail
    (41, 20, 7),
    (20, 20, 3),    # exactly one window
    (9, 20, 4),     # shorter than the window: one (short-policy) window at flush
    (50, 17, 30),   # stride longer than the window
])
def test_stream_equals_offline_sliding_window(tmp_path, t, window, stride):
    p = Predictor.from_checkpoint(small_checkpoint(tmp_path / "ck.pt"), batch_size=4)
    clip = random_clip(t, m=2, seed=t)
    offline = p.sliding_window(clip, window, stride, topk=3)
    online = _run_stream(p.stream(window, stride, topk=3), clip)
    _assert_same(online, offline)


def test_stream_equals_offline_with_stored_preprocessing(tmp_path):
    pre = PreprocessConfig(length=None, channels=("x", "y", "score"), image_size=(340, 256), center="first",
                           stream="joint_motion", max_persons=2)
    p = Predictor.from_checkpoint(small_checkpoint(tmp_path / "ck.pt", preprocess=pre.to_dict()))
    clip = random_clip(70, m=1, seed=4) * np.array([300, 200, 1], np.float32)
    offline = p.sliding_window(clip, 24, 8)
    online = _run_stream(p.stream(24, 8), clip[:, 0])  # frames as (V, C)
    assert online[0].end == 24 and online[-1].end == 70
    _assert_same(online, offline)


def test_stream_emission_schedule_and_bounded_work(tmp_path):
    p = Predictor.from_checkpoint(small_checkpoint(tmp_path / "ck.pt"))
    calls = []
    original = p.model.forward

    def counting_forward(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return original(x)

    p.model.forward = counting_forward
    stream = p.stream(window=20, stride=5)
    emitted_at = []
    for i, frame in enumerate(random_clip(300, seed=1)):
        n_calls = len(calls)
        w = stream.push(frame)
        assert len(calls) - n_calls <= 1  # at most one forward pass per frame
        assert len(stream._buffer) <= 20   # memory bounded by the window
        if w is not None:
            emitted_at.append(i + 1)
            assert (w.start, w.end) == (i + 1 - 20, i + 1)
            assert stream.latest is w
    assert emitted_at == list(range(20, 301, 5))
    assert set(calls) == {(1, 3, 20, 18, 1)}  # every forward pass sees exactly one window
    assert stream.flush() is None  # 300 frames end on an emission
    assert stream.frames_seen == 300


def test_stream_persons_validation_and_reset(tmp_path):
    p = Predictor.from_checkpoint(small_checkpoint(tmp_path / "ck.pt"))
    stream = p.stream(window=17, stride=17, num_persons=2)
    clip = random_clip(17, m=3, seed=2)
    for i in range(16):
        stream.push(clip[i, : 1 + i % 3])  # 1, 2 or 3 persons: padded / cut to 2
    w = stream.push(clip[16, :2])
    padded = clip[:, :2].copy()
    for i in range(16):
        if i % 3 == 0:
            padded[i, 1] = 0
    np.testing.assert_allclose(w.prediction.probabilities, p.predict(padded).probabilities, atol=1e-6)
    with pytest.raises(DataError, match="expected \\(V, C\\) or \\(M, V, C\\) with V=18"):
        stream.push(np.zeros((25, 3)))
    bad = clip[0, 0].copy()
    bad[0, 0] = np.inf
    with pytest.raises(DataError, match="NaN or inf"):
        stream.push(bad)
    with pytest.raises(DataError, match="2 channels; earlier frames have 3"):
        stream.push(np.zeros((18, 2)))
    stream.reset()
    assert stream.frames_seen == 0 and stream.flush() is None and stream.latest is None


def test_emit_many_batches_streams_as_push_would():
    """Several streams' due windows in one forward pass give what each stream's own push gives."""
    from stgcn.inference.stream import emit_many
    from tests.use_utils import small_model

    p = Predictor(small_model())
    clips = [random_clip(30, seed=s) for s in (1, 2)]
    alone = [_run_stream(p.stream(window=20, stride=10), c) for c in clips]
    streams = [p.stream(window=20, stride=10) for _ in clips]
    batched: list[list] = [[], []]
    for f in range(30):
        due = [s for s, c in zip(streams, clips, strict=True) if s.add(c[f])]
        for s, w in zip(due, emit_many(due), strict=True):
            batched[streams.index(s)].append(w)
    for s, out in zip(streams, batched, strict=True):
        if s.has_tail:
            out.append(s.flush())
    for a, b in zip(alone, batched, strict=True):
        assert [(w.start, w.end) for w in a] == [(w.start, w.end) for w in b]
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x.prediction.probabilities, y.prediction.probabilities, atol=1e-5)
