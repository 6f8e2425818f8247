"""Multi-person tracking by detection: stable ids for the people a pose estimator finds frame by frame.

Each frame's people (keypoints in pixels, score last) are matched to the tracks of the previous frames by a
similarity that mixes the overlap (IoU) of their boxes with an object-keypoint similarity (OKS-like: the mean
over joints seen in both of ``exp(-d^2 / (2 (k s)^2))``, ``s`` the track's box scale). A track's position is
predicted at constant velocity over frames where it was not seen, so people who cross keep their ids.
Matching is greedy on the similarity (best pair first; a handful of people per frame needs nothing more).

A track that finds no match is *lost*; within ``max_age`` frames it can still be matched again
(re-identification after an occlusion or a missed detection), after that it *ends*. A detection that matches
no track starts a new one, so people entering late get their own id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stgcn.errors import DataError
from stgcn.utils.checks import check_int, check_number

__all__ = ["Track", "Tracker", "TrackUpdate", "boxes_from_keypoints"]

_OKS_K = 0.1


def boxes_from_keypoints(keypoints: np.ndarray, min_score: float = 0.0) -> np.ndarray:
    """Boxes around each person's joints with a score above ``min_score`` (all joints when none is).

    Shape:
        keypoints: (P, V, C) pixels, ``x, y`` first and the score last -> (P, 4) ``x0, y0, x1, y1``.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] < 3:
        raise DataError(f"keypoints must have shape (P, V, C >= 3) with the score last, got {kp.shape}")
    out = np.zeros((kp.shape[0], 4))
    for p in range(kp.shape[0]):
        seen = kp[p, :, -1] > min_score
        xy = kp[p, seen if seen.any() else slice(None), :2]
        out[p] = [*xy.min(0), *xy.max(0)]
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(np.prod(np.clip(a[2:] - a[:2], 0, None)) + np.prod(np.clip(b[2:] - b[:2], 0, None))) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One tracked person.

    Attributes:
        id: Stable id (0, 1, 2, ... in order of appearance).
        first_frame: Frame index where it appeared.
        last_seen: Last frame index where it was matched.
        box: Box ``x0, y0, x1, y1`` at ``last_seen``.
        keypoints: (V, C) keypoints at ``last_seen`` (score last).
        velocity: Box centre motion in pixels per frame (smoothed).
        hits: Frames in which it was matched.
    """

    id: int
    first_frame: int
    last_seen: int
    box: np.ndarray
    keypoints: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    hits: int = 1

    def predicted(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Box and keypoints moved at constant velocity to ``frame``."""
        shift = self.velocity * (frame - self.last_seen)
        kp = self.keypoints.copy()
        kp[:, :2] += shift
        return self.box + np.concatenate([shift, shift]), kp


@dataclass
class TrackUpdate:
    """What one :meth:`Tracker.update` did.

    Attributes:
        ids: Track id of each detection, in the detections' order.
        started: Tracks created in this frame.
        ended: Tracks that ended in this frame (lost for more than ``max_age`` frames).
    """

    ids: list[int]
    started: list[Track]
    ended: list[Track]


class Tracker:
    """Stable ids for the people of a frame sequence (see the module docstring).

    Args:
        max_age: Frames a track may go unseen and still be matched again; after that it ends.
        min_similarity: Least similarity in [0, 1] for a detection to continue a track.
        iou_weight: Weight of the box IoU in the similarity; the keypoint similarity gets ``1 - iou_weight``.
        min_score: Joint score above which a joint counts as seen (boxes, keypoint similarity).
    """

    def __init__(self, *, max_age: int = 30, min_similarity: float = 0.2, iou_weight: float = 0.5,
                 min_score: float = 0.1) -> None:
        self.max_age = check_int(max_age, "max_age", minimum=0)
        self.min_similarity = check_number(min_similarity, "min_similarity", minimum=0, maximum=1)
        self.iou_weight = check_number(iou_weight, "iou_weight", minimum=0, maximum=1)
        self.min_score = float(min_score)
        self.tracks: list[Track] = []
        self._next_id = 0
        self._frame = -1

    def similarity(self, track: Track, frame: int, box: np.ndarray, keypoints: np.ndarray) -> float:
        """Similarity in [0, 1] of a detection to a track's predicted position in ``frame``."""
        tbox, tkp = track.predicted(frame)
        iou = _iou(tbox, box)
        both = (tkp[:, -1] > self.min_score) & (keypoints[:, -1] > self.min_score)
        if both.any():
            scale = max(np.sqrt(np.prod(np.clip(tbox[2:] - tbox[:2], 1.0, None))), 1.0)
            d2 = np.sum((tkp[both, :2] - keypoints[both, :2]) ** 2, axis=-1)
            oks = float(np.mean(np.exp(-d2 / (2 * (_OKS_K * 2 * scale) ** 2))))
        else:
            oks = 0.0
        return self.iou_weight * iou + (1 - self.iou_weight) * oks

    def update(self, frame: int, keypoints: np.ndarray) -> TrackUpdate:
        """Match one frame's people to the tracks.

        Args:
            frame: Frame index (increasing; gaps are allowed).
            keypoints: The frame's people in pixels, score last.

        Shape:
            keypoints: (P, V, C); P may be 0.
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        if frame <= self._frame:
            raise DataError(f"tracker: frame {frame} after frame {self._frame}; frames must increase")
        self._frame = frame
        boxes = boxes_from_keypoints(kp, self.min_score) if len(kp) else np.zeros((0, 4))
        pairs = sorted(((self.similarity(t, frame, boxes[p], kp[p]), ti, p)
                        for ti, t in enumerate(self.tracks) for p in range(len(kp))), reverse=True)
        ids: list[int | None] = [None] * len(kp)
        used: set[int] = set()
        for sim, ti, p in pairs:
            if sim < self.min_similarity:
                break
            if ti in used or ids[p] is not None:
                continue
            used.add(ti)
            track = self.tracks[ti]
            centre_new, centre_old = (boxes[p, :2] + boxes[p, 2:]) / 2, (track.box[:2] + track.box[2:]) / 2
            step = (centre_new - centre_old) / (frame - track.last_seen)
            track.velocity = step if track.hits == 1 else 0.5 * track.velocity + 0.5 * step
            track.box, track.keypoints, track.last_seen = boxes[p], kp[p].copy(), frame
            track.hits += 1
            ids[p] = track.id
        started = []
        for p in range(len(kp)):
            if ids[p] is None:
                track = Track(self._next_id, frame, frame, boxes[p], kp[p].copy())
                self._next_id += 1
                self.tracks.append(track)
                started.append(track)
                ids[p] = track.id
        ended = [t for t in self.tracks if frame - t.last_seen > self.max_age]
        self.tracks = [t for t in self.tracks if frame - t.last_seen <= self.max_age]
        return TrackUpdate([int(i) for i in ids if i is not None], started, ended)

    def close(self) -> list[Track]:
        """End every track (end of the sequence); returns them."""
        ended, self.tracks = self.tracks, []
        return ended
