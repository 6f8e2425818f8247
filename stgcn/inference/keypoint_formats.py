"""Multi-person keypoints of one frame from other pose estimators, as JSON, and their mapping between layouts.

:func:`parse_frame` reads one frame (one JSON value, e.g. one line of a JSON-lines stream) in any of:

* stgcn's own: ``{"frame": 12, "time": 0.4, "image_size": [W, H], "people": [[[x, y, score], ...], ...]}``
  (each person also as ``{"keypoints": [[x, y, score], ...]}``; ``frame``, ``time``, ``image_size`` optional);
* OpenPose ``--write_json``: ``{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, ...]}, ...]}`` (BODY_25 or
  COCO-18);
* MMPose / RTMPose: ``{"instances": [{"keypoints": [[x, y], ...], "keypoint_scores": [...]}, ...]}`` or a bare
  list of such instances;
* Ultralytics YOLO-pose ``Results.to_json()``: a list of ``{"keypoints": {"x": [...], "y": [...],
  "visible": [...]}, ...}`` (COCO-17).

Coordinates are pixels; the people are not tracked (the pipeline's tracker gives them ids). The layout follows
from the number of joints: 17 COCO-17, 18 OpenPose COCO-18, 25 OpenPose BODY_25, 33 MediaPipe/BlazePose.
:func:`convert_layout` maps between these and the model's layout (``openpose-18``, ``coco-17`` or
``mediapipe-pose-33`` as :mod:`stgcn.inference.pose` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout
from stgcn.utils.limits import MAX_PERSONS, check_max

__all__ = ["KeypointFrame", "parse_frame", "convert_layout", "LAYOUT_BY_JOINTS", "BODY_25_TO_OPENPOSE_18",
           "COCO_17_TO_OPENPOSE_18", "OPENPOSE_18_TO_COCO_17"]

LAYOUT_BY_JOINTS = {17: "coco-17", 18: "openpose-18", 25: "body-25", 33: "mediapipe-pose-33"}
# OpenPose BODY_25 joint of each OpenPose COCO-18 joint (BODY_25 adds a mid-hip and the feet)
BODY_25_TO_OPENPOSE_18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# COCO-17 keypoint of each OpenPose COCO-18 joint; None = neck (the shoulders' midpoint)
COCO_17_TO_OPENPOSE_18 = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
# OpenPose COCO-18 joint of each COCO-17 keypoint
OPENPOSE_18_TO_COCO_17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)


@dataclass
class KeypointFrame:
    """One frame's people as parsed.

    Attributes:
        people: (P, J, 3) float32 ``x, y, score`` in pixels.
        frame: The frame index the JSON gave, else ``None``.
        time: The time (seconds) the JSON gave, else ``None``.
        image_size: ``(W, H)`` the JSON gave, else ``None``.
    """

    people: np.ndarray
    frame: int | None = None
    time: float | None = None
    image_size: tuple[float, float] | None = None


def _person(obj: Any, where: str) -> np.ndarray:
    """One person's keypoints (J, 3) from any of the accepted person forms."""
    scores = None
    if isinstance(obj, dict):
        if "pose_keypoints_2d" in obj:
            obj = np.asarray(obj["pose_keypoints_2d"], dtype=np.float32).reshape(-1, 3)
        elif isinstance(obj.get("keypoints"), dict):  # ultralytics
            k = obj["keypoints"]
            vis = k.get("visible", k.get("conf", [1.0] * len(k["x"])))
            obj = np.stack([k["x"], k["y"], vis], axis=-1)
        elif "keypoints" in obj:
            scores = obj.get("keypoint_scores")
            obj = obj["keypoints"]
        else:
            raise DataError(f"{where}: a person needs 'keypoints' or 'pose_keypoints_2d', got keys {sorted(obj)}")
    try:
        kp = np.asarray(obj, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{where}: keypoints must be numbers") from None
    if kp.ndim == 1 and kp.size % 3 == 0:
        kp = kp.reshape(-1, 3)
    if kp.ndim == 3 and kp.shape[0] == 1:  # mmpose sometimes nests one instance
        kp = kp[0]
    if kp.ndim != 2 or kp.shape[1] not in (2, 3):
        raise DataError(f"{where}: a person's keypoints must be (J, 2) or (J, 3), got shape {kp.shape}")
    if kp.shape[1] == 2:
        s = np.ones(len(kp), np.float32) if scores is None else np.asarray(scores, np.float32).reshape(-1)
        if len(s) != len(kp):
            raise DataError(f"{where}: {len(s)} keypoint scores for {len(kp)} keypoints")
        kp = np.concatenate([kp, s[:, None]], axis=1)
    if not np.isfinite(kp).all():
        raise DataError(f"{where}: keypoints contain NaN or inf")
    return kp


def parse_frame(obj: Any, where: str = "frame") -> KeypointFrame:
    """One frame's people from any of the formats in the module docstring.

    Raises:
        DataError: an unrecognised structure, or people with different numbers of joints.
    """
    frame = time = size = None
    if isinstance(obj, dict):
        frame, time, size = obj.get("frame"), obj.get("time"), obj.get("image_size")
        for key in ("people", "instances", "predictions", "detections"):
            if key in obj:
                obj = obj[key]
                break
        else:
            raise DataError(f"{where}: expected 'people' (or OpenPose/MMPose/YOLO keys), got keys {sorted(obj)}")
    if isinstance(obj, list) and len(obj) == 1 and isinstance(obj[0], list) and obj[0] and \
            isinstance(obj[0][0], dict):
        obj = obj[0]  # mmpose: predictions per image, one image
    if not isinstance(obj, list):
        raise DataError(f"{where}: people must be a list")
    check_max(len(obj), f"{where}: the number of people", MAX_PERSONS, DataError)
    people = [_person(p, f"{where}, person {i}") for i, p in enumerate(obj)]
    if len({len(p) for p in people}) > 1:
        raise DataError(f"{where}: people with different numbers of joints ({sorted({len(p) for p in people})})")
    arr = np.stack(people) if people else np.zeros((0, 0, 3), np.float32)
    if size is not None:
        size = (float(size[0]), float(size[1]))
    return KeypointFrame(arr, None if frame is None else int(frame), None if time is None else float(time), size)


def _builtin_name(target: str | Layout) -> str:
    """The built-in layout a model's layout is (by its joints, in order: a renamed copy counts, a custom layout
    that reuses a built-in's name with other joints does not), else its own name."""
    if isinstance(target, str):
        return target
    for name, builtin in BUILTIN_LAYOUTS.items():
        if builtin.joints == target.joints:
            return name
    return target.name if target.name not in BUILTIN_LAYOUTS else f"{target.name} (custom)"


def convert_layout(people: np.ndarray, target: str | Layout, source: str | None = None) -> np.ndarray:
    """People's keypoints from their layout (``source``, else from the joint count) to ``target``.

    Supported: the same layout; BODY_25 -> OpenPose-18 / COCO-17; COCO-17 <-> OpenPose-18 (the neck is the
    shoulders' midpoint with the smaller score); MediaPipe-33 -> any (:func:`stgcn.inference.pose.landmarks_to_layout`).
    A :class:`~stgcn.graph.layouts.Layout` target is matched to a built-in by its joints (names, in order), not its
    name, so a custom layout that reuses a built-in's name with other joints is refused.

    Shape:
        people: (P, J, 3) ``x, y, score`` -> (P, V, 3).
    """
    target = _builtin_name(target)
    people = np.asarray(people, dtype=np.float32)
    if source is None:
        if people.shape[1] not in LAYOUT_BY_JOINTS:
            raise DataError(f"cannot tell the layout of {people.shape[1]} joints per person; known are "
                            + ", ".join(f"{n} ({name})" for n, name in LAYOUT_BY_JOINTS.items()))
        source = LAYOUT_BY_JOINTS[people.shape[1]]
    if source == target:
        return people
    if source == "mediapipe-pose-33":
        from stgcn.inference.pose import landmarks_to_layout

        lm = np.concatenate([people[..., :2], np.zeros_like(people[..., :1]), people[..., 2:]], axis=-1)
        return landmarks_to_layout(lm, target)[..., [0, 1, 3]]
    if source == "body-25":
        people, source = people[:, list(BODY_25_TO_OPENPOSE_18)], "openpose-18"
        if target == source:
            return people
    if source == "openpose-18" and target == "coco-17":
        return people[:, list(OPENPOSE_18_TO_COCO_17)]
    if source == "coco-17" and target == "openpose-18":
        out = people[:, [0 if i is None else i for i in COCO_17_TO_OPENPOSE_18]].copy()
        left, right = people[:, 5], people[:, 6]
        out[:, 1, :2] = (left[:, :2] + right[:, :2]) / 2
        out[:, 1, 2] = np.minimum(left[:, 2], right[:, 2])
        return out
    raise ConfigError(f"cannot map keypoints of layout {source!r} to the model's layout {target!r}; supported "
                      f"targets are openpose-18, coco-17 and mediapipe-pose-33 (from 33 joints only)")
