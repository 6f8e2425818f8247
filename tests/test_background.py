"""The model next to the pose stage: windows classified in a background thread, CPU threads shared."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stgcn.errors import ConfigError, DataError
from stgcn.inference.background import WindowWorker, split_threads, torch_threads
from stgcn.inference.predict import Predictor
from tests.use_utils import CLASS_NAMES, small_model


def _frames(t: int, seed: int = 0) -> np.ndarray:
    """Raw 'pixels' per frame (1, 18, 3): a per-frame conversion makes them the model's input."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (t, 1, 18, 2))
    return np.concatenate([xy, rng.uniform(0.5, 1, (t, 1, 18, 1))], -1).astype(np.float32)


def _to_input(frames: np.ndarray) -> np.ndarray:
    out = frames.copy()
    out[..., :2] = out[..., :2] / 200 - 0.5
    return out


@pytest.mark.parametrize(("frames", "window", "stride"), [(47, 20, 7), (20, 20, 5), (13, 20, 10), (61, 20, 20)])
def test_window_worker_equals_sliding_window(frames, window, stride):
    predictor = Predictor(small_model(), class_names=CLASS_NAMES)
    raw = _frames(frames)
    worker = WindowWorker(predictor, window, stride, 3, _to_input)
    for f in raw:
        worker.add(f)
    x = _to_input(raw)
    got = worker.finish(x)
    want = predictor.sliding_window(x, window, stride, topk=3)
    assert [(w.start, w.end) for w in got] == [(w.start, w.end) for w in want]
    for a, b in zip(got, want, strict=True):
        assert a.prediction.labels == b.prediction.labels
        np.testing.assert_allclose(a.prediction.probabilities, b.prediction.probabilities, atol=1e-5)
    # the regular windows ran in the background as their last frame came in
    assert len(worker._futures) == (0 if frames < window else (frames - window) // stride + 1)
    assert worker._executor is None


def test_window_worker_close_without_finish_and_errors_surface():
    predictor = Predictor(small_model(), class_names=CLASS_NAMES)
    worker = WindowWorker(predictor, 10, 5, 1, lambda f: f)  # pixels, not the model's convention
    for f in _frames(12):
        worker.add(f)
    worker.close()
    with pytest.raises(DataError, match="frames 0-10: the coordinates look like pixels"):
        worker.finish(_frames(12))


def test_torch_threads_and_split():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"), torch_threads(0):
        pass
    assert split_threads(1) == (1, 1) and split_threads(2) == (2, 1) and split_threads(3) == (2, 1)
    assert split_threads(4) == (3, 1) and split_threads(8) == (4, 4) and split_threads(16) == (4, 12)


def test_batch_worker_merges_what_queues_while_it_runs():
    import threading

    from stgcn.inference.background import BatchWorker
    from stgcn.inference.stream import PendingWindows

    gate = threading.Event()
    sizes = []

    def run(pending):
        gate.wait(10)  # the first pass holds the thread until every job is queued
        sizes.append(len(pending.streams))
        return [b for b in pending.bounds]

    worker = BatchWorker(run)
    jobs = [PendingWindows([object()] * n, [None] * n, [(i, k) for k in range(n)]) for i, n in enumerate((1, 2, 1, 3))]
    futures = [worker.submit(p) for p in jobs]
    gate.set()
    assert [f.result(10) for f in futures] == [[(0, 0)], [(1, 0), (1, 1)], [(2, 0)], [(3, 0), (3, 1), (3, 2)]]
    worker.close()
    assert sum(sizes) == 7 and len(sizes) < 4 and worker.passes == len(sizes)  # the queued jobs ran together

    def broken(pending):
        raise ValueError("model failed")

    worker = BatchWorker(broken)
    with pytest.raises(ValueError, match="model failed"):
        worker.submit(jobs[0]).result(10)
    worker.close()
