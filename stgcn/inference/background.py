"""The model next to the pose stage: sliding windows classified in a background thread while a video's poses are
still being extracted, and the CPU threads shared between the two.

On a small CPU the pose models and the ST-GCN compete for the same cores, and two thread pools that together ask
for more threads than there are cores slow each other down badly (their workers spin while waiting for each
other). :func:`split_threads` shares the cores out; :func:`torch_threads` applies PyTorch's share for a block
(new threads, e.g. a worker, take the value current when they first run a parallel operation).
:class:`WindowWorker` runs the regular windows ``(s, s + window)`` of a sequence in one background thread as soon
as their last frame is in (PyTorch releases the GIL while it computes), so that by the end of the video only the
tail window and the whole clip remain. :class:`BatchWorker` is the live pipeline's model thread: windows taken
from the streams go in, and those queued while a forward pass runs are merged into the next one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from stgcn.inference.results import WindowPrediction
from stgcn.inference.stream import PendingWindows
from stgcn.inference.windows import window_bounds
from stgcn.utils.checks import check_int

if TYPE_CHECKING:
    from stgcn.inference.predict import Predictor

__all__ = ["split_threads", "torch_threads", "WindowWorker", "BatchWorker"]

logger = logging.getLogger(__name__)


def split_threads(cpus: int | None = None) -> tuple[int, int]:
    """Default ``(pose, model)`` CPU threads when the pose stage and the ST-GCN run at the same time.

    The pose stage runs on every frame, the model on one window per person every ``stride`` frames (a small
    share of the time): the pose models get every core up to 2, then all but one, at most 4 (beyond which they
    gain little); the model the cores left, at least 1. On 2 cores: 2 and 1 (measured on the development machine
    under load: 19.5 frames/s against 15 with one pose thread; the two overlap only while a window is
    classified).
    """
    cpus = max(1, cpus if cpus is not None else (os.cpu_count() or 1))
    pose = cpus if cpus <= 2 else min(4, cpus - 1)
    return pose, max(1, cpus - pose)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``threads`` for the block, restored after (``None``: unchanged)."""
    import torch

    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(check_int(threads, "threads"))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class WindowWorker:
    """Classify the regular sliding windows of a growing sequence in one background thread.

    Frames go in one at a time with :meth:`add`; when frame ``s + window - 1`` of a window starting at
    ``s = 0, stride, 2 * stride, ...`` is in, that window is converted (``to_input``) and predicted in the
    background. :meth:`finish` waits for them and predicts what is left (the tail window, or the one window of a
    sequence shorter than ``window``) in the calling thread: the result equals
    :meth:`~stgcn.inference.predict.Predictor.sliding_window` on the whole sequence (float rounding aside). The
    predictor must not be used from another thread until :meth:`finish` returns.

    Args:
        predictor: The model.
        window: Frames per window.
        stride: Frames between window starts.
        topk: Classes kept per window.
        to_input: Frames as added -> the model's raw input (a per-frame conversion, so that converting a slice
            equals slicing the converted sequence).

    Shape:
        each frame: anything ``np.stack`` stacks; ``to_input(frames)``: (T, M, V, C).
    """

    def __init__(self, predictor: Predictor, window: int, stride: int, topk: int,
                 to_input: Callable[[np.ndarray], np.ndarray]) -> None:
        self.predictor = predictor
        self.window, self.stride, self.topk = window, stride, topk
        self.to_input = to_input
        self._frames: list[np.ndarray] = []
        self._next_start = 0
        self._futures: dict[tuple[int, int], Future] = {}
        self._executor: ThreadPoolExecutor | None = None

    def add(self, frame: np.ndarray) -> None:
        """One more frame; submits the window it completes, if any."""
        self._frames.append(frame)
        start = self._next_start
        if len(self._frames) == start + self.window:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stgcn-windows")
            frames = np.stack(self._frames[start:])
            self._futures[(start, start + self.window)] = self._executor.submit(self._predict, frames, start)
            self._next_start += self.stride

    def _predict(self, frames: np.ndarray, start: int) -> WindowPrediction:
        end = start + len(frames)
        x = self.predictor.prepare(self.to_input(frames), where=f"frames {start}-{end}")
        return WindowPrediction(start, end, self.predictor._prediction(self.predictor._forward([x])[0], self.topk))

    def close(self) -> None:
        """Wait for the background windows and end the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def finish(self, x: np.ndarray) -> list[WindowPrediction]:
        """The windows of the whole sequence (its model input ``x``, converted from every frame added): the
        background ones, the rest predicted now, in order.

        Shape:
            x: (T, M, V, C).
        """
        self.close()
        bounds = window_bounds(len(x), self.window, self.stride, include_tail=True)
        done = {b: f.result() for b, f in self._futures.items()}
        missing = [b for b in bounds if b not in done]
        if missing:
            inputs = [self.predictor.prepare(x[s:e], where=f"frames {s}-{e}") for s, e in missing]
            for (s, e), row in zip(missing, self.predictor._forward(inputs), strict=True):
                done[(s, e)] = WindowPrediction(s, e, self.predictor._prediction(row, self.topk))
        logger.debug("%d of %d windows classified while the video was read", len(bounds) - len(missing), len(bounds))
        return [done[b] for b in bounds]


class BatchWorker:
    """One background thread running batched forward passes of taken windows (:class:`PendingWindows`).

    Every :meth:`submit` returns a future of its windows' results. Jobs queued while a forward pass runs are merged
    into the next pass (one batch instead of several when the model falls behind the frames), and each job's
    future gets its own part of the results; jobs finish in the order they were submitted.

    Args:
        run: The forward pass, ``run(pending) -> one result per window``.
    """

    def __init__(self, run: Callable[[PendingWindows], list]) -> None:
        self.run = run
        self.passes = 0
        self._queue: queue.SimpleQueue[tuple[PendingWindows, Future] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, pending: PendingWindows) -> Future:
        """Queue windows for the next forward pass; a future of their results."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="stgcn-model", daemon=True)
            self._thread.start()
        future: Future = Future()
        self._queue.put((pending, future))
        return future

    def _loop(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while True:  # everything queued meanwhile goes into the same pass
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            merged = PendingWindows([s for p, _ in jobs for s in p.streams], [x for p, _ in jobs for x in p.inputs],
                                    [b for p, _ in jobs for b in p.bounds])
            try:
                results = self.run(merged)
            except BaseException as e:  # handed to whoever waits for these jobs
                for _, future in jobs:
                    future.set_exception(e)
                continue
            self.passes += 1
            start = 0
            for pending, future in jobs:
                future.set_result(results[start:start + len(pending.streams)])
                start += len(pending.streams)

    def close(self) -> None:
        """Finish the queued jobs and end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
