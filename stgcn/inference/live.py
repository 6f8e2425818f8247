"""Live, multi-person recognition: people per frame in, one tracked, causal label per person out, as events.

:class:`LivePipeline` takes each frame's people (keypoints in the model's layout, pixels, from a pose estimator
or a keypoint source), gives them stable ids (:class:`stgcn.inference.tracker.Tracker`) and keeps one
:class:`~stgcn.inference.stream.PredictionStream` per track: created when the track appears (so people who
enter late are classified too), closed when the track ends. Every ``stride`` frames a track's last ``window``
frames are classified; all tracks due at a frame run in one batched forward pass
(:func:`stgcn.inference.stream.take_windows`, then :func:`~stgcn.inference.stream.predict_windows`; with
``background=True`` in a background thread). A label uses only frames up to the current one (causal). Frames in
which a tracked person is not seen are added as absent (all-zero) skeletons once the person is seen again;
the unseen frames at the end of a track are dropped.

Events are JSON-serialisable dicts, ``event`` one of:

* ``track_start`` / ``track_end``: ``time``, ``frame``, ``track``;
* ``prediction``: ``time`` and ``frame`` (of the window's last frame), ``track``, ``label`` (smoothed,
  ``unknown`` under the threshold, :class:`stgcn.inference.decisions.Decider`), ``score``, ``topk``
  (``[{label, score}]``, smoothed), ``window`` (``[start, end)`` frames), ``raw`` (this window's own top-1
  ``{label, score}``) and ``latency_ms`` (from reading the frame to the label);
* ``trigger``: ``time``, ``frame``, ``track``, ``label``, ``score``, ``condition`` (a
  :class:`~stgcn.inference.decisions.Trigger` that held long enough).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from stgcn.data.channels import select_channels
from stgcn.errors import DataError
from stgcn.inference.background import BatchWorker
from stgcn.inference.decisions import Decider, Trigger
from stgcn.inference.stream import PendingWindows, PredictionStream, predict_windows, take_windows
from stgcn.inference.tracker import Tracker

if TYPE_CHECKING:
    from stgcn.inference.predict import Predictor

__all__ = ["LivePipeline", "StageTimes", "StageClock"]

logger = logging.getLogger(__name__)


@dataclass
class StageTimes:
    """Time spent per stage over a run (the benchmark's breakdown).

    ``decode``, ``pose``, ``tracking`` and ``stgcn`` are wall seconds of each stage's own work; the ``*_cpu``
    fields the CPU seconds of the thread that did it (``time.thread_time``, which other processes on the machine
    inflate far less than wall time). With the model in a background thread (``LivePipeline(background=True)``)
    ``stgcn`` overlaps the other stages, and so does ``decode`` when the frames are read ahead in a thread
    (:class:`stgcn.inference.sources.Prefetch`), so the frame rate is ``frames / wall`` (the loop's wall time, set
    by :func:`stgcn.inference.live_run.run_live`), not the sum of the stages; ``stgcn_wait`` and ``decode_wait``
    are the times the loop waited for the model (at the end of the source) and for a frame.
    """

    decode: float = 0.0
    pose: float = 0.0
    tracking: float = 0.0
    stgcn: float = 0.0
    decode_cpu: float = 0.0
    pose_cpu: float = 0.0
    tracking_cpu: float = 0.0
    stgcn_cpu: float = 0.0
    stgcn_wait: float = 0.0
    decode_wait: float = 0.0
    frames: int = 0
    forward_passes: int = 0
    warmup: float = 0.0
    wall: float = 0.0

    def to_dict(self) -> dict[str, float]:
        per = max(self.frames, 1)
        out: dict[str, float] = {"frames": self.frames, "forward_passes": self.forward_passes,
                                 "warmup_s": round(self.warmup, 3), "wall_s": round(self.wall, 3)}
        for name in ("decode", "pose", "tracking", "stgcn"):
            out[f"{name}_ms_per_frame"] = round(1000 * getattr(self, name) / per, 3)
            out[f"{name}_cpu_ms_per_frame"] = round(1000 * getattr(self, f"{name}_cpu") / per, 3)
        total = self.decode + self.pose + self.tracking + self.stgcn
        out["total_ms_per_frame"] = round(1000 * total / per, 3)
        out["stgcn_wait_ms_per_frame"] = round(1000 * self.stgcn_wait / per, 3)
        out["decode_wait_ms_per_frame"] = round(1000 * self.decode_wait / per, 3)
        wall = self.wall if self.wall > 0 else total
        out["frames_per_s"] = round(self.frames / wall, 2) if wall > 0 else 0.0
        return out


class StageClock:
    """Wall and thread-CPU seconds since the last :meth:`lap`."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.thread_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


@dataclass
class _TrackState:
    id: int
    first_frame: int
    stream: PredictionStream
    decider: Decider
    gap: int = 0  # unseen frames not yet added (added when the person is seen again)
    last_event: dict[str, Any] | None = None
    windows: list[Any] = field(default_factory=list)


class LivePipeline:
    """Tracks, per-track streams and decisions (see the module docstring).

    Args:
        predictor: The model.
        window: Frames per window (``None``: the predictor's default).
        stride: Frames between a track's windows (``None``: ``window // 2``).
        topk: Classes per event.
        threshold: Smoothed score under which the label is ``unknown``.
        smooth: Windows to smooth over.
        smooth_mode: ``mean`` or ``majority``.
        triggers: Per-class conditions to fire ``trigger`` events on.
        tracker: The tracker (``None``: a :class:`Tracker` with its defaults).
        keep_windows: Keep every track's window predictions (``tracks_windows``), for offline reports.
        background: Run the model in one background thread (PyTorch releases the GIL), so that the next frames'
            pose and tracking go on while a window is classified; windows due while a forward pass runs are
            batched into the next one (:class:`stgcn.inference.background.BatchWorker`). The events and their order
            are the same as without it; a prediction is returned by the first :meth:`step` after its forward pass
            finished (and :meth:`close` waits for all). The predictor must not be used from another thread
            meanwhile.
    """

    def __init__(self, predictor: Predictor, *, window: int | None = None, stride: int | None = None,
                 topk: int = 5, threshold: float = 0.0, smooth: int = 1, smooth_mode: str = "mean",
                 triggers: tuple[Trigger, ...] = (), tracker: Tracker | None = None,
                 keep_windows: bool = False, background: bool = False) -> None:
        from stgcn.inference.video import model_channels

        self.predictor = predictor
        self.window, self.stride = predictor.resolve_window(window, stride)
        self.topk = topk
        self.channels = model_channels(predictor)
        self.tracker = tracker if tracker is not None else Tracker()
        self._decider_args = {"smooth": smooth, "mode": smooth_mode, "threshold": threshold, "triggers": triggers,
                              "topk": topk}
        Decider(predictor.class_names, **self._decider_args)  # check the options now
        self.keep_windows = keep_windows
        self.background = background
        self.tracks: dict[int, _TrackState] = {}
        self.ended: list[_TrackState] = []
        self.times = StageTimes()
        self._last_frame = -1
        self._last_time = 0.0
        self.last_ids: list[int] = []
        self._worker: BatchWorker | None = None
        self._times_lock = threading.Lock()  # the model stage's times are added from both threads
        # events in their final order: ready lists, or a forward pass in flight with what turns it into events
        self._outbox: deque[tuple[Future | None, Callable[[Any], list[dict[str, Any]]]]] = deque()

    def warm_up(self) -> None:
        """Run the model once on an empty window before the first frame (the first forward pass of a shape sets up
        its kernels, which would otherwise delay the first label); the time goes to ``times.warmup``."""
        start = time.perf_counter()
        empty = np.zeros((self.window, 1, self.predictor.layout.num_joints, len(self.channels)), np.float32)
        self.predictor.logits([empty])
        self.times.warmup += time.perf_counter() - start

    def _model_input(self, person: np.ndarray, image_size: tuple[float, float] | None) -> np.ndarray:
        """One person (V, 3 or 4) pixels, score last -> (1, V, C) in the model's channels and convention."""
        from stgcn.inference.convention import pixels_to_model

        coords = person[:, :-1]
        if coords.shape[1] == 2 and "z" in self.channels:
            coords = np.concatenate([coords, np.zeros_like(coords[:, :1])], axis=1)
        x = select_channels(coords, person[:, -1], self.channels)[None]
        if self.predictor.preprocess is None or self.predictor.preprocess.image_size is not None:
            if image_size is None:
                raise DataError("keypoint frames without an image size, which this model needs to normalise pixel "
                                "coordinates; give image_size in the frames or --image-size W,H")
            x = pixels_to_model(x, image_size, self.predictor.preprocess, self.channels)
        return x

    def _new_track(self, track_id: int, frame: int) -> _TrackState:
        stream = PredictionStream(self.predictor, self.window, self.stride, topk=self.topk, num_persons=1)
        return _TrackState(track_id, frame, stream, Decider(self.predictor.class_names, **self._decider_args))

    def step(self, frame: int, t: float, people: np.ndarray, *, image_size: tuple[float, float] | None = None,
             wall: float | None = None) -> list[dict[str, Any]]:
        """One frame's people in; the events ready by now out (this frame's; with ``background``, predictions
        as their forward passes finish, in the same order).

        Args:
            frame: Frame index (increasing).
            t: Source time in seconds.
            people: Keypoints in the model's layout, pixels, ``x, y[, z], score``.
            image_size: ``(W, H)`` of the frame.
            wall: ``time.perf_counter()`` when the frame was read (latency figures); ``None``: now.

        Shape:
            people: (P, V, 3 or 4); P may be 0.
        """
        wall = time.perf_counter() if wall is None else wall
        self._last_frame, self._last_time = frame, t
        clock = StageClock()
        people = np.asarray(people, dtype=np.float32)
        if people.size == 0:
            people = np.zeros((0, self.predictor.layout.num_joints, 3), np.float32)
        elif people.ndim != 3 or people.shape[1] != self.predictor.layout.num_joints:
            raise DataError(f"frame {frame}: people must be (P, {self.predictor.layout.num_joints}, 3 or 4) in the "
                            f"model's layout, got shape {people.shape}")
        update = self.tracker.update(frame, people)
        self.last_ids = update.ids
        started = []
        for tr in update.started:
            self.tracks[tr.id] = self._new_track(tr.id, frame)
            started.append({"event": "track_start", "time": t, "frame": frame, "track": tr.id})
        self._post(started)
        seen = dict(zip(update.ids, range(len(people)), strict=True))
        due = []
        for tid, state in self.tracks.items():
            if tid not in seen:
                state.gap += 1
                continue
            empty = np.zeros((1, self.predictor.layout.num_joints, len(self.channels)), np.float32)
            for _ in range(state.gap):
                if state.stream.add(empty):
                    due.append(state)
            state.gap = 0
            if state.stream.add(self._model_input(people[seen[tid]], image_size)):
                due.append(state)
        wall_s, cpu_s = clock.lap()
        self.times.tracking += wall_s
        self.times.tracking_cpu += cpu_s
        self._emit(due, t, wall)
        for tr in update.ended:
            self._end(self.tracks.pop(tr.id), t, wall)
        self._add_model_time(*clock.lap())
        return self._drain(block=False)

    def _post(self, events: list[dict[str, Any]]) -> None:
        if events:
            self._outbox.append((None, lambda _: events))

    def _drain(self, block: bool) -> list[dict[str, Any]]:
        """The events at the head of the outbox whose forward passes are done (``block``: all, waiting)."""
        out: list[dict[str, Any]] = []
        while self._outbox:
            future, make = self._outbox[0]
            if future is not None and not future.done():
                if not block:
                    break
                start = time.perf_counter()
                future.result()
                self.times.stgcn_wait += time.perf_counter() - start
            self._outbox.popleft()
            out += make(None if future is None else future.result())
        return out

    def _forward(self, pending: PendingWindows) -> list[Any]:
        """The batched forward pass of taken windows (in the background thread when ``background``)."""
        clock = StageClock()
        results = predict_windows(pending)
        wall_s, cpu_s = clock.lap()
        if self.background:  # in the main thread it is counted with the rest of the stage
            self._add_model_time(wall_s, cpu_s)
        with self._times_lock:
            self.times.forward_passes += 1
        return results

    def _add_model_time(self, wall_s: float, cpu_s: float) -> None:
        with self._times_lock:
            self.times.stgcn += wall_s
            self.times.stgcn_cpu += cpu_s

    def _emit(self, due: list[_TrackState], t: float, wall: float, flush: bool = False) -> None:
        """Classify the due tracks' windows in one batch; their events go to the outbox."""
        # a track due twice in one frame (a gap filled at once) is predicted at its latest window only
        unique = list({id(s): s for s in due}.values())
        if not unique:
            return
        pending = take_windows([s.stream for s in unique])

        def make(results: list[Any]) -> list[dict[str, Any]]:
            return self._events(unique, results, t, wall, flush)

        if not self.background:
            results = self._forward(pending)
            self._outbox.append((None, lambda _: make(results)))
            return
        if self._worker is None:
            self._worker = BatchWorker(self._forward)
        self._outbox.append((self._worker.submit(pending), make))

    def _events(self, states: list[_TrackState], results: list[Any], t: float, wall: float,
                flush: bool) -> list[dict[str, Any]]:
        """Prediction (and trigger) events of the tracks' window results, through each track's decider."""
        now = time.perf_counter()
        events = []
        for state, result in zip(states, results, strict=True):
            start, end = state.first_frame + result.start, state.first_frame + result.end
            if self.keep_windows:
                state.windows.append((start, end, result.prediction))
            decision = state.decider.update(result.prediction.probabilities, t)
            event = {"event": "prediction", "time": round(t, 4), "frame": end - 1, "track": state.id,
                     "label": decision.label, "score": round(decision.score, 4),
                     "topk": [{"label": n, "score": round(s, 4)} for n, s in decision.topk],
                     "window": [start, end],
                     "raw": {"label": result.prediction.label, "score": round(result.prediction.score, 4)},
                     "latency_ms": round(1000 * (now - wall), 2)}
            if flush:
                event["final"] = True
            state.last_event = event
            events.append(event)
            for trig in decision.fired:
                idx = state.decider.class_names.index(trig.label)
                score = float(np.mean([h[idx] for h in state.decider._history]))
                events.append({"event": "trigger", "time": round(t, 4), "frame": end - 1, "track": state.id,
                               "label": trig.label, "score": round(score, 4), "condition": str(trig)})
        return events

    def _end(self, state: _TrackState, t: float, wall: float) -> None:
        """Close a track: predict its frames not yet covered (the track's last frames), then ``track_end``."""
        if state.stream.has_tail:
            self._emit([state], t, wall, flush=True)
        self.ended.append(state)
        last = state.first_frame + state.stream.frames_seen - 1
        self._post([{"event": "track_end", "time": round(t, 4), "frame": self._last_frame, "track": state.id,
                     "last_frame": last}])

    def close(self) -> list[dict[str, Any]]:
        """End of the source (or Ctrl-C): close every track, with its last prediction; the remaining events (all
        forward passes waited for)."""
        clock = StageClock()
        try:
            for tr in self.tracker.close():
                state = self.tracks.pop(tr.id, None)
                if state is not None:
                    self._end(state, self._last_time, time.perf_counter())
            self._add_model_time(*clock.lap())
            return self._drain(block=True)
        finally:
            if self._worker is not None:
                self._worker.close()
                self._worker = None
