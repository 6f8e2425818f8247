"""BlazePose (MediaPipe Pose's detector and full landmark model) under LiteRT, for every person in a frame.

The two models, ``pose_detection.tflite`` and ``pose_landmark_full.tflite`` from the ``mediapipe==0.10.14``
wheel (Apache-2.0, see ``stgcn/inference/pose_models/NOTICE``), ship inside this package, so this works offline
on every supported Python with ``ai-edge-litert`` (the ``video`` extra). Per frame:

1. people already tracked get their region of interest from the previous frame's landmarks (as MediaPipe's
   legacy ``solutions.pose`` does); the detector (224 x 224 letterboxed input, SSD anchors, weighted NMS) runs
   only while fewer than ``max_people`` are tracked, and regions that overlap a tracked person are dropped;
2. each region (a rotated square around the hips, 1.25 x the body size) is cropped to 256 x 256 and the
   landmark model gives 33 landmarks (refined on its heatmaps) plus two auxiliary points for the next region;
3. a person whose presence score falls below ``min_tracking_confidence`` is dropped (the detector looks
   again in the next frame); landmarks are smoothed with MediaPipe's one-euro settings.

Landmarks are ``x, y`` in pixels, ``z`` (depth relative to the hips, on the scale of x) in pixels and a
visibility in [0, 1], as :func:`stgcn.inference.pose.extract_pose` gives them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from stgcn.errors import StgcnError
from stgcn.inference.background import split_threads
from stgcn.inference.blazepose_ops import (
    DETECTOR_SIZE,
    LANDMARK_SIZE,
    OneEuro,
    Roi,
    apply_matrix,
    decode_detections,
    letterbox_matrix,
    refine_from_heatmap,
    roi_from_points,
    roi_matrix,
    sigmoid,
    ssd_anchors,
    warp,
    weighted_nms,
)
from stgcn.utils.checks import check_int, check_number

__all__ = ["BlazePose", "Detection", "model_path", "import_litert", "LITERT_HINT"]

logger = logging.getLogger(__name__)

DETECTOR_MODEL = "pose_detection.tflite"
LANDMARK_MODEL = "pose_landmark_full.tflite"
LITERT_HINT = "pip install 'stgcn[video]' (or pip install ai-edge-litert)"
_NMS_IOU = 0.3
_SAME_PERSON_IOU = 0.5
_TILE_ASPECT = 4 / 3


def import_litert():
    """The LiteRT ``Interpreter`` class.

    Raises:
        StgcnError: ``ai-edge-litert`` is not installed (the message says what to install).
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise StgcnError(f"the LiteRT pose backend needs ai-edge-litert: {LITERT_HINT}") from None
    return Interpreter


def model_path(name: str) -> Path:
    """Path of a model file shipped in ``stgcn/inference/pose_models``."""
    path = Path(str(resources.files("stgcn.inference.pose_models").joinpath(name)))
    if not path.is_file():
        raise StgcnError(f"{path}: the BlazePose model file is missing from the stgcn installation; "
                         f"reinstall stgcn")
    return path


def _import_cv2():
    try:
        import cv2
    except ImportError:
        return None
    return cv2


@dataclass(frozen=True)
class Detection:
    """One detector hit in image pixels: box ``xmin, ymin, xmax, ymax``, the 4 keypoints (hip centre, full
    body size/rotation point, shoulder centre, upper body point) and the score."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float

    def roi(self) -> Roi:
        return roi_from_points(self.keypoints[0], self.keypoints[1])


@dataclass
class _Timing:
    """Calls of one model, with their wall and thread-CPU seconds (a context manager per call)."""

    calls: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    _start: tuple[float, float] = (0.0, 0.0)

    def __enter__(self) -> None:
        self._start = (time.perf_counter(), time.thread_time())

    def __exit__(self, *exc: object) -> None:
        self.calls += 1
        self.wall += time.perf_counter() - self._start[0]
        self.cpu += time.thread_time() - self._start[1]

    def to_dict(self) -> dict[str, float]:
        per = max(self.calls, 1)
        return {"calls": self.calls, "wall_ms_per_call": round(1000 * self.wall / per, 3),
                "cpu_ms_per_call": round(1000 * self.cpu / per, 3)}


@dataclass
class _Track:
    roi: Roi
    landmark_filter: OneEuro = field(default_factory=lambda: OneEuro(0.05, 80.0))
    aux_filter: OneEuro = field(default_factory=lambda: OneEuro(0.01, 10.0))
    visibility: np.ndarray | None = None
    aux_visibility: np.ndarray | None = None


class BlazePose:
    """Multi-person BlazePose on video frames (see the module docstring).

    Args:
        max_people: Most people per frame (None: no limit; 1 is MediaPipe's legacy single-person solution).
        min_detection_confidence: Detector score threshold.
        min_tracking_confidence: Landmark-model presence threshold to keep tracking a person.
        smooth: Smooth landmarks over frames (one-euro filter, MediaPipe's settings, 30 frames per second).
        num_threads: LiteRT CPU threads (``None``: the pose stage's share of the cores,
            :func:`stgcn.inference.background.split_threads`; 2 on 2 cores).
        detect_every: While at least one person is tracked and fewer than ``max_people``, run the detector on
            every n-th frame only (new people are then found within n frames; 1: every frame, as MediaPipe).

    Attributes:
        timings: ``detector`` and ``landmarks``: calls and their wall and calling-thread CPU time
            (``timings[name].to_dict()``: ms per call), where the pose stage's time goes.

    Raises:
        StgcnError: ``ai-edge-litert`` missing.
    """

    def __init__(self, *, max_people: int | None = None, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, smooth: bool = True, num_threads: int | None = None,
                 detect_every: int = 1) -> None:
        check_number(min_detection_confidence, "min_detection_confidence", minimum=0, maximum=1)
        check_number(min_tracking_confidence, "min_tracking_confidence", minimum=0, maximum=1)
        interpreter = import_litert()
        if max_people is not None:
            check_int(max_people, "max_people")
        self.max_people = max_people
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.smooth = smooth
        num_threads = split_threads()[0] if num_threads is None else check_int(num_threads, "num_threads")
        self._detector = interpreter(model_path=str(model_path(DETECTOR_MODEL)), num_threads=num_threads)
        self._landmarker = interpreter(model_path=str(model_path(LANDMARK_MODEL)), num_threads=num_threads)
        self._detector.allocate_tensors()
        self._landmarker.allocate_tensors()
        self._anchors = ssd_anchors()
        self._cv2 = _import_cv2()
        self._tracks: list[_Track] = []
        self.detect_every = check_int(detect_every, "detect_every")
        self._frames = 0
        self.timings = {"detector": _Timing(), "landmarks": _Timing()}

    def reset(self) -> None:
        """Forget the tracked people (start of a new video)."""
        self._tracks = []
        self._frames = 0

    def _run(self, interpreter, tensor: np.ndarray) -> dict[str, np.ndarray]:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None].astype(np.float32))
        interpreter.invoke()
        return {d["name"]: interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()}

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Run the person detector on a whole frame.

        Shape:
            frame: (H, W, 3) uint8 RGB.

        Returns:
            Detections after non-maximum suppression, best first, in image pixels.
        """
        h, w = frame.shape[:2]
        all_boxes, all_kps, all_scores = [], [], []
        for x0, y0, tw, th in _tiles(w, h):
            m = letterbox_matrix(tw, th)
            m[:, 2] += (x0, y0)
            tensor = warp(frame, m, DETECTOR_SIZE, replicate=False, cv2=self._cv2) / 127.5 - 1.0
            out = self._run(self._detector, tensor)
            raw_boxes, raw_scores = out["Identity"], out["Identity_1"]
            boxes, kps, scores = decode_detections(raw_boxes, raw_scores, self._anchors,
                                                   self.min_detection_confidence)
            all_boxes.append(apply_matrix(m, boxes.reshape(-1, 2, 2) * DETECTOR_SIZE).reshape(-1, 4))
            all_kps.append(apply_matrix(m, kps * DETECTOR_SIZE))
            all_scores.append(scores)
        boxes_px, kps_px, scores = weighted_nms(np.concatenate(all_boxes), np.concatenate(all_kps),
                                                np.concatenate(all_scores), _NMS_IOU)
        return [Detection(b, k, float(s)) for b, k, s in zip(boxes_px, kps_px, scores, strict=True)]

    def landmarks(self, frame: np.ndarray, roi: Roi) -> tuple[np.ndarray, np.ndarray, float]:
        """Run the landmark model on one region.

        Returns:
            ``landmarks`` (33, 4) and ``auxiliary`` (2, 4) as ``x, y, z, visibility`` in pixels, and the
            presence score in [0, 1].
        """
        m = roi_matrix(roi)
        tensor = warp(frame, m, LANDMARK_SIZE, replicate=True, cv2=self._cv2) / 255.0
        out = self._run(self._landmarker, tensor)
        raw = out["Identity"].reshape(39, 5).astype(np.float64)
        presence = float(np.asarray(out["Identity_1"]).reshape(-1)[0])
        xy = refine_from_heatmap(raw[:, :2] / LANDMARK_SIZE, out["Identity_3"])
        pts = np.empty((39, 4), np.float64)
        pts[:, :2] = apply_matrix(m, xy * LANDMARK_SIZE)
        pts[:, 2] = raw[:, 2] / LANDMARK_SIZE * roi.size
        pts[:, 3] = sigmoid(raw[:, 3])
        return pts[:33], pts[33:35], presence

    def _filter(self, track: _Track, lms: np.ndarray, aux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.smooth:
            return lms, aux
        scale = 1.0 / max(roi_from_points(aux[0, :2], aux[1, :2]).size / 1.25, 1e-6)
        lms, aux = lms.copy(), aux.copy()
        for arr, filt, vis_name in ((lms, track.landmark_filter, "visibility"),
                                    (aux, track.aux_filter, "aux_visibility")):
            prev = getattr(track, vis_name)
            vis = arr[:, 3] if prev is None else 0.1 * arr[:, 3] + 0.9 * prev
            setattr(track, vis_name, vis)
            arr[:, :3] = filt(arr[:, :3], scale)
            arr[:, 3] = vis
        return lms, aux

    def process(self, frame: np.ndarray) -> np.ndarray:
        """Landmarks of every person found in a frame, tracked from the previous frames.

        Shape:
            frame: (H, W, 3) uint8 RGB -> (P, 33, 4) float32 ``x, y, z, visibility`` in pixels, tracked people
            first (in the order they were found), then new ones by detector score.
        """
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise StgcnError(f"expected an (H, W, 3) RGB frame, got shape {tuple(frame.shape)}")
        candidates = list(self._tracks)
        self._frames += 1
        due = not candidates or self._frames % self.detect_every == 0
        if due and (self.max_people is None or len(candidates) < self.max_people):
            taken = [t.roi.bounds() for t in candidates]
            with self.timings["detector"]:
                detections = self.detect(frame)
            for det in detections:
                roi = det.roi()
                if any(_box_iou(roi.bounds(), b) > _SAME_PERSON_IOU for b in taken):
                    continue
                candidates.append(_Track(roi))
                taken.append(roi.bounds())
                if self.max_people is not None and len(candidates) >= self.max_people:
                    break
        people, tracks, boxes = [], [], []
        for track in candidates:
            with self.timings["landmarks"]:
                lms, aux, presence = self.landmarks(frame, track.roi)
            if presence < self.min_tracking_confidence:
                continue
            lms, aux = self._filter(track, lms, aux)
            box = np.concatenate([lms[:, :2].min(0), lms[:, :2].max(0)])
            if any(_box_iou(box, b) > _SAME_PERSON_IOU for b in boxes):
                continue  # two regions converged on the same person
            track.roi = roi_from_points(aux[0, :2], aux[1, :2])
            people.append(lms)
            tracks.append(track)
            boxes.append(box)
        self._tracks = tracks
        if not people:
            return np.zeros((0, 33, 4), np.float32)
        return np.stack(people).astype(np.float32)


def _tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Detector tiles ``(x0, y0, w, h)``: the whole frame when its aspect ratio is at most 4:3, else windows of
    4:3 along the long side overlapping by half (a wide frame letterboxed whole shrinks people below what the
    detector finds reliably: upside-down or missed detections)."""
    long, short = max(width, height), min(width, height)
    side = int(round(short * _TILE_ASPECT))
    if long <= side:
        return [(0, 0, width, height)]
    n = int(np.ceil((long - side) / (side / 2))) + 1
    starts = np.linspace(0, long - side, n).round().astype(int)
    if width >= height:
        return [(int(s), 0, side, height) for s in starts]
    return [(0, int(s), width, side) for s in starts]


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2])) - inter
    return inter / union if union > 0 else 0.0
