"""Array operations around the BlazePose models: anchors, detection decoding, NMS, regions of interest, crops
and landmark smoothing.

The numbers follow MediaPipe's pose graphs (``pose_detection_cpu``, ``pose_detection_to_roi``,
``pose_landmark_by_roi_cpu``, ``pose_landmark_filtering``), re-implemented in numpy. Coordinates are continuous
pixel coordinates (pixel ``i`` spans ``[i, i + 1]``), as MediaPipe's normalised coordinates times the image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DETECTOR_SIZE", "LANDMARK_SIZE", "Roi", "ssd_anchors", "decode_detections", "weighted_nms", "roi_from_points",
    "letterbox_matrix", "roi_matrix", "warp", "OneEuro", "refine_from_heatmap", "sigmoid",
]

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
_STRIDES = (8, 16, 32, 32, 32)
_ROI_SCALE = 1.25


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def ssd_anchors(size: int = DETECTOR_SIZE, strides: tuple[int, ...] = _STRIDES) -> np.ndarray:
    """Anchor centres of the pose detector (fixed-size SSD anchors, two per cell and layer).

    Layers with the same stride share one grid; every layer adds two anchors per cell (aspect ratio 1 and the
    interpolated scale), and with fixed anchor sizes only the centres matter.

    Shape:
        Returns (2254, 2) ``x, y`` in [0, 1] for the 224 input.
    """
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        cells = math.ceil(size / strides[i])
        per_cell = 2 * (j - i)
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
                      min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the detector's outputs (box and 4 keypoint offsets per anchor, score logits).

    Returns:
        ``boxes`` (N, 4) ``xmin, ymin, xmax, ymax``, ``keypoints`` (N, 4, 2) and ``scores`` (N,), all in [0, 1]
        of the detector input, for the anchors whose sigmoid score reaches ``min_score``.

    Shape:
        raw_boxes: (2254, 12); raw_scores: (2254,) or (2254, 1); anchors: (2254, 2).
    """
    scores = sigmoid(np.clip(raw_scores.reshape(-1), -100.0, 100.0))
    keep = scores >= min_score
    raw, anc, scores = raw_boxes[keep] / DETECTOR_SIZE, anchors[keep], scores[keep]
    centre = raw[:, :2] + anc
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) + anc[:, None, :]
    return boxes, keypoints, scores


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted non-maximum suppression: each kept detection is the score-weighted mean of the detections
    overlapping the best remaining one by more than ``threshold`` (IoU), with the best one's score.

    Shape:
        boxes: (N, 4); keypoints: (N, K, 2); scores: (N,) -> the same with M <= N rows, best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    alive = np.ones(len(scores), dtype=bool)
    out_b, out_k, out_s = [], [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (_iou(boxes[i], boxes) > threshold)
        group[i] = True
        w = scores[group][:, None]
        out_b.append((boxes[group] * w).sum(0) / w.sum())
        out_k.append((keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[i])
        alive &= ~group
    if not out_s:
        return np.zeros((0, 4), np.float32), np.zeros((0,) + keypoints.shape[1:], np.float32), np.zeros(0, np.float32)
    return np.stack(out_b), np.stack(out_k), np.asarray(out_s, np.float32)


@dataclass(frozen=True)
class Roi:
    """A rotated square region of the image, in pixels: centre, side and rotation (radians, clockwise on
    screen since y points down)."""

    cx: float
    cy: float
    size: float
    rotation: float

    def bounds(self) -> np.ndarray:
        """Axis-aligned ``xmin, ymin, xmax, ymax`` of the rotated square."""
        half = self.size / 2 * (abs(math.cos(self.rotation)) + abs(math.sin(self.rotation)))
        return np.array([self.cx - half, self.cy - half, self.cx + half, self.cy + half])


def roi_from_points(centre: np.ndarray, end: np.ndarray) -> Roi:
    """The body region from the hip centre and the point that encodes size and rotation (MediaPipe's
    alignment points to a rect, target angle 90 degrees, then scaled by 1.25 as a square).

    Shape:
        centre, end: (2,) pixels.
    """
    dx, dy = float(end[0] - centre[0]), float(end[1] - centre[1])
    size = 2 * math.hypot(dx, dy) * _ROI_SCALE
    rotation = math.pi / 2 - math.atan2(-dy, dx)
    rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return Roi(float(centre[0]), float(centre[1]), size, rotation)


def letterbox_matrix(width: int, height: int, size: int = DETECTOR_SIZE) -> np.ndarray:
    """The (2, 3) affine map from detector-input coordinates to image coordinates for the whole frame fitted
    into a ``size`` square with equal zero borders (keep aspect ratio)."""
    side = max(width, height)
    s = side / size
    return np.array([[s, 0, (width - side) / 2], [0, s, (height - side) / 2]], dtype=np.float64)


def roi_matrix(roi: Roi, size: int = LANDMARK_SIZE) -> np.ndarray:
    """The (2, 3) affine map from landmark-input coordinates (``size`` square) to image coordinates."""
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    k = roi.size / size
    a = np.array([[c * k, -s * k], [s * k, c * k]])
    t = np.array([roi.cx, roi.cy]) - a @ np.array([size / 2, size / 2])
    return np.concatenate([a, t[:, None]], axis=1)


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (..., 2) points with a (2, 3) affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp(image: np.ndarray, matrix: np.ndarray, size: int, *, replicate: bool, cv2=None) -> np.ndarray:
    """Sample a ``size`` square from an image: output pixel centre ``p`` reads the image at ``matrix @ p``
    (bilinear; the border zero or replicated). With ``cv2`` (OpenCV module) uses ``cv2.warpAffine``.

    Shape:
        image: (H, W, 3) uint8 -> (size, size, 3) float32 in [0, 255].
    """
    # continuous -> index coordinates: index = continuous - 0.5 on both sides
    m = matrix.astype(np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    if cv2 is not None:
        border = cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT
        return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=border, borderValue=0).astype(np.float32)
    h, w = image.shape[:2]
    ys, xs = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    sx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    sy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    img = image.astype(np.float32)

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        v = img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
        return v if replicate else v * inside[..., None]

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray, kernel: int = 7,
                        min_confidence: float = 0.5) -> np.ndarray:
    """Move each landmark to the sigmoid-weighted mean of the heatmap around it, where the heatmap is confident.

    All landmarks at once: the ``kernel`` x ``kernel`` patch around each one (cut at the heatmap's border) is
    gathered from a padded copy, the padding masked out.

    Shape:
        xy: (L, 2) in [0, 1] of the landmark input; heatmap: (h, w, L) logits -> (L, 2).
    """
    hh, hw, n = heatmap.shape
    out = xy.copy()
    r = (kernel - 1) // 2
    cols, rows = (xy[:, 0] * hw).astype(np.int64), (xy[:, 1] * hh).astype(np.int64)  # truncated, as int()
    inside = (cols >= 0) & (cols < hw) & (rows >= 0) & (rows < hh)
    idx = np.flatnonzero(inside)
    if not len(idx):
        return out
    offsets = np.arange(-r, r + 1)
    pr = rows[idx, None] + offsets  # (L', k) heatmap rows of each patch
    pc = cols[idx, None] + offsets
    valid = ((pr >= 0) & (pr < hh))[:, :, None] & ((pc >= 0) & (pc < hw))[:, None, :]  # (L', k, k)
    logits = heatmap[np.clip(pr, 0, hh - 1)[:, :, None], np.clip(pc, 0, hw - 1)[:, None, :], idx[:, None, None]]
    conf = np.where(valid, sigmoid(logits.astype(np.float64)), 0.0)
    total = conf.sum(axis=(1, 2))
    ok = (conf.max(axis=(1, 2)) >= min_confidence) & (total > 0)
    if ok.any():
        c, t = conf[ok], total[ok]
        out[idx[ok], 0] = (c.sum(axis=1) * pc[ok]).sum(axis=1) / hw / t
        out[idx[ok], 1] = (c.sum(axis=2) * pr[ok]).sum(axis=1) / hh / t
    return out


class OneEuro:
    """One-euro filter over arrays (MediaPipe's landmark smoothing), optionally with a value scale.

    Args:
        min_cutoff: Cut-off frequency (Hz) at zero speed.
        beta: How much the cut-off rises with speed.
        derivate_cutoff: Cut-off of the speed estimate.
        frequency: Samples per second.
    """

    def __init__(self, min_cutoff: float, beta: float, derivate_cutoff: float = 1.0, frequency: float = 30.0) -> None:
        self.min_cutoff, self.beta, self.derivate_cutoff, self.frequency = min_cutoff, beta, derivate_cutoff, frequency
        self._raw: np.ndarray | None = None
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.frequency)

    def __call__(self, value: np.ndarray, value_scale: float = 1.0) -> np.ndarray:
        value = value.astype(np.float64)
        speed = np.zeros_like(value) if self._raw is None else (value - self._raw) * value_scale * self.frequency
        a = self._alpha(self.derivate_cutoff)
        self._speed = speed if self._speed is None else a * speed + (1 - a) * self._speed
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self._speed))
        self._value = value if self._value is None else a * value + (1 - a) * self._value
        self._raw = value
        return self._value
