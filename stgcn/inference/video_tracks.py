"""Offline multi-person analysis of a video: every person tracked, each track classified as a whole and by
sliding windows, all windows of all tracks batched into the model together.

This is the offline case of the live pipeline (:mod:`stgcn.inference.live`): the same pose estimator
(:func:`stgcn.inference.estimators.open_estimator`) and tracker (:class:`stgcn.inference.tracker.Tracker`), but
labels may use the whole track (a frame takes the window whose centre is nearest, as ``stgcn video`` always
did). A track's frames run from its first to its last sighting; frames in between without the person are absent
(all-zero) skeletons, as frames without a person are for one person.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from stgcn.inference.pose import PoseSequence
from stgcn.inference.results import Prediction, WindowPrediction
from stgcn.inference.tracker import Tracker, boxes_from_keypoints
from stgcn.inference.windows import frame_labels, window_bounds

if TYPE_CHECKING:
    from stgcn.inference.predict import Predictor

__all__ = ["TrackResult", "track_landmarks", "classify_tracks"]


@dataclass
class TrackResult:
    """One tracked person of a video.

    Attributes:
        id: Track id (0, 1, ... in order of appearance).
        first_frame: First frame (video index) in which the person was seen.
        pose: The person's landmarks from ``first_frame`` to the last sighting, (L, 1, 33, 4) pixels, zero
            where unseen.
        prediction: The whole track's top-k (``None`` until classified).
        windows: Window predictions, frames as video indices.
        labels: Per track frame, the class index of the nearest window.
    """

    id: int
    first_frame: int
    pose: PoseSequence
    prediction: Prediction | None = None
    windows: list[WindowPrediction] | None = None
    labels: list[int | None] | None = None

    @property
    def last_frame(self) -> int:
        return self.first_frame + self.pose.num_frames - 1

    def boxes(self) -> list[list[float] | None]:
        """Per frame ``first_frame .. last_frame``: the box ``[x0, y0, x1, y1]`` of the seen joints, or ``None``."""
        lm = self.pose.landmarks[:, 0]
        out: list[list[float] | None] = []
        for f in range(len(lm)):
            if not np.any(lm[f] != 0):
                out.append(None)
                continue
            box = boxes_from_keypoints(lm[f][None, :, [0, 1, 3]], 0.1)[0]
            out.append([round(float(v), 1) for v in box])
        return out

    def to_dict(self, class_names: list[str]) -> dict[str, Any]:
        """The report entry of ``stgcn video --json`` (``tracks``)."""
        pred = self.prediction
        return {"id": self.id, "first_frame": self.first_frame, "last_frame": self.last_frame,
                "frames_seen": int(self.pose.detected.sum()),
                "label": None if pred is None else pred.label, "score": None if pred is None else pred.score,
                "prediction": None if pred is None else pred.to_dict(),
                "boxes": self.boxes(), "windows": [w.to_dict() for w in self.windows or []],
                "frame_labels": [None if i is None else class_names[i] for i in self.labels or []]}


def track_landmarks(frames: Iterable[np.ndarray], estimator: Any, *, width: int, height: int, fps: float,
                    source: str = "", tracker: Tracker | None = None,
                    on_frame: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                    ) -> tuple[list[TrackResult], int, np.ndarray]:
    """Pose every frame, track the people, and gather each track's landmarks.

    Args:
        frames: RGB frames (decoded once).
        estimator: ``process(frame) -> (P, 33, 4)`` (:func:`stgcn.inference.estimators.open_estimator`).
        width, height, fps, source: The video's properties, for the tracks' :class:`PoseSequence`.
        tracker: The tracker (``None``: defaults).
        on_frame: Called as ``on_frame(index, frame, people (P, 33, 4))``.

    Returns:
        ``(tracks, num_frames, people_per_frame)``, tracks by id.
    """
    tracker = tracker if tracker is not None else Tracker()
    seen: dict[int, dict[int, np.ndarray]] = {}
    counts = []
    f = -1
    for f, frame in enumerate(frames):
        people = estimator.process(frame)
        counts.append(len(people))
        kp = people[..., [0, 1, 3]] if len(people) else np.zeros((0, 33, 3), np.float32)
        update = tracker.update(f, kp)
        for tid, lm in zip(update.ids, people, strict=True):
            seen.setdefault(tid, {})[f] = lm
        if on_frame is not None:
            on_frame(f, frame, people)
    tracks = []
    for tid, by_frame in sorted(seen.items()):
        first, last = min(by_frame), max(by_frame)
        lm = np.zeros((last - first + 1, 1, 33, 4), np.float32)
        for g, row in by_frame.items():
            lm[g - first, 0] = row
        tracks.append(TrackResult(tid, first, PoseSequence(lm, width, height, fps, source)))
    return tracks, f + 1, np.array(counts, dtype=int)


def classify_tracks(tracks: list[TrackResult], predictor: Predictor, window: int, stride: int, topk: int) -> None:
    """Whole-track and sliding-window predictions of every track, all in one batched model run (by shape).

    Fills each track's ``prediction``, ``windows`` (video frame indices) and ``labels``.
    """
    from stgcn.inference.video import pose_to_model_input

    clips, owners = [], []
    for i, track in enumerate(tracks):
        x = pose_to_model_input(track.pose, predictor)
        clips.append(x)
        owners.append((i, None))
        for s, e in window_bounds(len(x), window, stride):
            clips.append(x[s:e])
            owners.append((i, (s, e)))
    if not clips:
        return
    logits = predictor.logits(clips)
    for track in tracks:
        track.windows = []
    for (i, bounds), row in zip(owners, logits, strict=True):
        track = tracks[i]
        pred = predictor._prediction(row, topk)
        if bounds is None:
            track.prediction = pred
        else:
            track.windows.append(WindowPrediction(track.first_frame + bounds[0], track.first_frame + bounds[1], pred))
    for track in tracks:
        local = [WindowPrediction(w.start - track.first_frame, w.end - track.first_frame, w.prediction)
                 for w in track.windows or []]
        track.labels = frame_labels(local, track.pose.num_frames, causal=False)
