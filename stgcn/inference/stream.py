"""Live prediction: frames in one at a time, a prediction every ``stride`` frames over the last ``window``
frames (see :class:`PredictionStream`; :meth:`stgcn.inference.predict.Predictor.stream` makes one)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stgcn.errors import DataError
from stgcn.inference.results import WindowPrediction

if TYPE_CHECKING:
    from stgcn.inference.predict import Predictor

__all__ = ["PredictionStream", "PendingWindows", "emit_many", "take_windows", "predict_windows"]


class PredictionStream:
    """Frames in one at a time; a prediction every ``stride`` frames over the last ``window`` frames.

    The stream holds at most ``window`` frames (a ring buffer) and each emission runs the model once on one
    window, so memory and per-frame latency are bounded by the window, whatever the stream's length.
    Emissions happen after frame ``window``, ``window + stride``, ... and cover the same frames as
    :meth:`Predictor.sliding_window`; :meth:`flush` at the end of a stream emits the tail window
    (``include_tail=True``) or, for a stream shorter than ``window``, one window over all of it.

    Args:
        predictor: The predictor to run.
        window: Frames per window.
        stride: Frames between emissions.
        topk: Classes kept per emission.
        num_persons: Persons per frame M; frames with fewer are padded with absent (all-zero) persons,
            frames with more keep the first M. ``None``: the stored preprocessing's ``max_persons``, else
            the first frame's M.
        image_size: ``(W, H)`` when frames are in pixels: each is brought to the checkpoint's convention
            (:func:`stgcn.inference.convention.pixels_to_model`).

    Shape:
        frame: (V, C) or (M, V, C).
    """

    def __init__(self, predictor: Predictor, window: int, stride: int, *, topk: int = 5,
                 num_persons: int | None = None, image_size: tuple[float, float] | None = None) -> None:
        self.predictor = predictor
        self.image_size = image_size
        self.window = window
        self.stride = stride
        self.topk = topk
        pre = predictor.preprocess
        self.num_persons = num_persons if num_persons is not None else (pre.max_persons if pre else None)
        self._buffer: deque[np.ndarray] = deque(maxlen=window)
        self.frames_seen = 0
        self._last_end = 0
        self.latest: WindowPrediction | None = None

    def reset(self) -> None:
        """Forget all frames (start a new sequence)."""
        self._buffer.clear()
        self.frames_seen = 0
        self._last_end = 0
        self.latest = None

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        f = np.asarray(frame, dtype=np.float32)
        if f.ndim == 2:
            f = f[None]
        v = self.predictor.layout.num_joints
        if f.ndim != 3 or f.shape[1] != v:
            raise DataError(f"frame {self.frames_seen}: shape {tuple(np.shape(frame))}; expected (V, C) or "
                            f"(M, V, C) with V={v}")
        if not np.isfinite(f).all():
            raise DataError(f"frame {self.frames_seen}: keypoints contain NaN or inf")
        if self.image_size is not None:
            from stgcn.inference.convention import pixels_to_model

            f = pixels_to_model(f, self.image_size, self.predictor.preprocess)
        if self.num_persons is None:
            self.num_persons = f.shape[0]
        m = self.num_persons
        if f.shape[0] != m:
            padded = np.zeros((m, v, f.shape[2]), dtype=np.float32)
            padded[:min(m, f.shape[0])] = f[:m]
            f = padded
        if self._buffer and f.shape != self._buffer[-1].shape:
            raise DataError(f"frame {self.frames_seen}: {f.shape[2]} channels; earlier frames have "
                            f"{self._buffer[-1].shape[2]}")
        return f

    def push(self, frame: np.ndarray) -> WindowPrediction | None:
        """Add one frame; returns the new window prediction when one is due, else ``None``."""
        if self.add(frame):
            return self._emit()
        return None

    def add(self, frame: np.ndarray) -> bool:
        """Add one frame without predicting; whether a window is due (for :func:`emit_many`)."""
        self._buffer.append(self._frame(frame))
        self.frames_seen += 1
        t = self.frames_seen
        return t >= self.window and (t - self.window) % self.stride == 0

    @property
    def has_tail(self) -> bool:
        """Whether frames were added since the last emission (what :meth:`flush` would predict)."""
        return self.frames_seen > 0 and self._last_end != self.frames_seen

    def flush(self) -> WindowPrediction | None:
        """End of stream: predict the frames not yet covered by an emission (if any)."""
        if self.frames_seen == 0 or self._last_end == self.frames_seen:
            return None
        return self._emit()

    def _emit(self) -> WindowPrediction:
        return emit_many([self])[0]


@dataclass
class PendingWindows:
    """The current windows of some streams, copied and prepared, not yet predicted (see :func:`take_windows`).

    Attributes:
        streams: The streams, in order.
        inputs: Each stream's prepared model input (K, C, T, V, M).
        bounds: Each window's ``(start, end)`` frames in its stream.
    """

    streams: list[PredictionStream]
    inputs: list[np.ndarray]
    bounds: list[tuple[int, int]]


def take_windows(streams: Sequence[PredictionStream]) -> PendingWindows:
    """Copy and prepare the current window of each stream (streams of one predictor) and mark it as emitted
    (what :meth:`PredictionStream.flush` covers), so that the streams can take more frames while
    :func:`predict_windows` runs, e.g. in another thread."""
    streams = list(streams)
    if not streams:
        return PendingWindows([], [], [])
    predictor = streams[0].predictor
    inputs, bounds = [], []
    for s in streams:
        if s.predictor is not predictor:
            raise DataError("emit_many: the streams use different predictors")
        end = s.frames_seen
        start = end - len(s._buffer)
        inputs.append(predictor.prepare(np.stack(s._buffer), where=f"frames {start}-{end}"))
        bounds.append((start, end))
        s._last_end = end
    return PendingWindows(streams, inputs, bounds)


def predict_windows(pending: PendingWindows) -> list[WindowPrediction]:
    """Predict windows taken by :func:`take_windows` in one batched forward pass; each stream records its
    prediction (``latest``)."""
    if not pending.streams:
        return []
    predictor = pending.streams[0].predictor
    logits = predictor._forward(pending.inputs)
    out = []
    for s, (start, end), row in zip(pending.streams, pending.bounds, logits, strict=True):
        result = WindowPrediction(start, end, predictor._prediction(row, s.topk))
        s.latest = result
        out.append(result)
    return out


def emit_many(streams: Sequence[PredictionStream]) -> list[WindowPrediction]:
    """Predict the current window of each stream in one batched forward pass (streams of one predictor).

    Each stream records its prediction as :meth:`PredictionStream.push` would (``latest``, what
    :meth:`PredictionStream.flush` covers). Used by the live pipeline to run every tracked person's due window at
    once (:func:`take_windows`, then :func:`predict_windows`).
    """
    return predict_windows(take_windows(streams))
