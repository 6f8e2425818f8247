"""Video -> pose -> action: the logic of ``stgcn video`` and ``stgcn pose``.

:func:`annotate_video` runs MediaPipe Pose on a video (:mod:`stgcn.inference.pose`), maps the landmarks to the
checkpoint's layout, turns them into the model's input the way the model expects it
(:func:`pose_to_model_input`), predicts the whole clip and sliding windows over it, and writes an MP4 with
the skeleton drawn over each frame plus the label and score of that frame's window, and/or a JSON report.

Model input from a video: the landmarks mapped to the checkpoint's layout (:mod:`stgcn.inference.pose`), its channels
(the stored preprocessing's channel names, else by the model's input channels: 3 -> ``x, y, score``,
2 -> ``x, y``, 4 -> ``x, y, z, score``) and its coordinate convention
(:func:`stgcn.data.channels.fit_image_coordinates`): a checkpoint without stored preprocessing (a converted
original one) gets the original demo's ``(x / W - 0.5, y / H - 0.5, score)`` with undetected joints 0; one
whose preprocessing normalises by an image size gets pixels rescaled to that size; any other gets pixels.

Per-frame labels in the video come from the window whose centre is nearest to the frame (every frame is
labelled; a video shorter than the window gets the whole-clip prediction), see
:func:`stgcn.inference.windows.frame_labels`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.channels import fit_image_coordinates, model_input_channels
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import Layout
from stgcn.inference.pose import POSE_LAYOUTS, PoseSequence, extract_pose, read_video_frames
from stgcn.inference.predict import Predictor
from stgcn.inference.results import Prediction, WindowPrediction
from stgcn.inference.windows import frame_labels

__all__ = ["annotate_video", "VideoResult", "pose_to_model_input", "model_channels", "draw_frame",
           "extract_keypoints_file", "write_json"]

logger = logging.getLogger(__name__)

_LEFT, _RIGHT, _MIDDLE = (31, 119, 180), (214, 39, 40), (255, 215, 0)


@dataclass
class VideoResult:
    """What :func:`annotate_video` found."""

    pose: PoseSequence
    prediction: Prediction
    windows: list[WindowPrediction]
    labels: list[int | None]
    window: int
    stride: int

    def to_dict(self, predictor: Predictor) -> dict[str, Any]:
        """JSON-serialisable report."""
        names = predictor.class_names
        return {
            "video": self.pose.source,
            "width": self.pose.width,
            "height": self.pose.height,
            "fps": self.pose.fps,
            "num_frames": self.pose.num_frames,
            "frames_with_person": int(self.pose.detected.sum()),
            "layout": predictor.layout.name,
            "window": self.window,
            "stride": self.stride,
            "min_frames": predictor.min_frames,
            "short": predictor.short,
            "prediction": self.prediction.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "frame_labels": [None if i is None else names[i] for i in self.labels],
        }


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically (indented)."""
    from stgcn.utils.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def model_channels(predictor: Predictor) -> tuple[str, ...]:
    """The channel names the model's raw input has (see the module docstring).

    MediaPipe gives x, y, a relative depth z and a score: the model gets x and y, plus the score when it
    takes 3 channels, plus z and the score when it takes 4 (:func:`stgcn.data.channels.model_input_channels`).
    """
    pre = predictor.preprocess
    stored = None if pre is None else pre.channels
    c = predictor.config.in_channels
    if stored is None and c not in (2, 3, 4):
        raise ConfigError(f"cannot feed MediaPipe keypoints to a model with {c} input channels; supported are "
                          f"2 (x, y), 3 (x, y, score) and 4 (x, y, z, score)")
    coordinates = ("x", "y", "z") if c == 4 else ("x", "y")
    return tuple(model_input_channels(c, coordinates, True, stored))


def pose_to_model_input(pose: PoseSequence, predictor: Predictor) -> np.ndarray:
    """The pose in the model's layout, channels and coordinate convention (see the module docstring).

    Shape:
        Returns (T, 1, V, C).
    """
    layout = predictor.layout
    if layout.name not in POSE_LAYOUTS:
        raise ConfigError(f"the checkpoint's layout {layout.name!r} cannot be made from MediaPipe Pose; "
                          f"supported layouts are {', '.join(POSE_LAYOUTS)}")
    channels = model_channels(predictor)
    x = pose.keypoints(layout, channels)  # pixels; undetected joints have score 0
    return fit_image_coordinates(x, (pose.width, pose.height), predictor.preprocess, channels)


def _put_text(cv2: Any, img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, ...],
              thickness: int) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    x, y = org
    cv2.rectangle(img, (x - 3, y - th - 4), (x + tw + 3, y + base + 1), (0, 0, 0), -1)
    cv2.putText(img, text, (x, y), font, scale, colour, thickness, cv2.LINE_AA)


def draw_frame(frame: np.ndarray, keypoints: np.ndarray, layout: Layout, lines: list[str]) -> np.ndarray:
    """Draw a skeleton (pixel coordinates; joints with score 0 hidden) and text lines on an RGB frame.

    Shape:
        frame: (H, W, 3) uint8 RGB; keypoints: (M, V, >= 2) with the score last when there are 3 or more
        channels. Returns a new (H, W, 3) array.
    """
    from stgcn.inference.pose import _import_cv2

    cv2 = _import_cv2()
    img = np.ascontiguousarray(frame).copy()
    h, w = img.shape[:2]
    unit = max(1, round(min(h, w) / 240))
    visible = keypoints[..., -1] > 0 if keypoints.shape[-1] >= 3 else np.any(keypoints[..., :2] != 0, axis=-1)
    for p in range(keypoints.shape[0]):
        pts = np.round(keypoints[p, :, :2]).astype(int)
        for a, b in layout.edges:
            if visible[p, a] and visible[p, b]:
                na, nb = layout.joints[a], layout.joints[b]
                colour = (_LEFT if "left" in na and "left" in nb else
                          _RIGHT if "right" in na and "right" in nb else _MIDDLE)
                cv2.line(img, tuple(pts[a]), tuple(pts[b]), colour, 2 * unit, cv2.LINE_AA)
        for j in np.flatnonzero(visible[p]):
            cv2.circle(img, tuple(pts[j]), 2 * unit, (255, 255, 255), -1, cv2.LINE_AA)
    scale = 0.45 * unit
    y = int(18 * unit)
    for i, text in enumerate(lines):
        _put_text(cv2, img, text, (6 * unit, y), scale if i else scale * 1.2, (255, 255, 255), unit)
        y += int(20 * unit)
    return img


def annotate_video(video: str | Path, predictor: Predictor, *, out: str | Path | None = None,
                   window: int | None = None, stride: int | None = None, topk: int = 5,
                   model_complexity: int = 1, max_frames: int | None = None,
                   on_frame: Callable[[int], None] | None = None, backend: str = "auto") -> VideoResult:
    """Video -> MediaPipe Pose -> ST-GCN: whole-clip and per-window predictions, optionally an annotated MP4.

    Args:
        video: Input video file.
        predictor: The model (its layout must be one of :data:`stgcn.inference.pose.POSE_LAYOUTS`).
        out: Annotated MP4 to write (skeleton, the frame's window label and score, the clip's label).
        window: Sliding-window length in frames (``None``: the predictor's default).
        stride: Frames between windows (``None``: ``window // 2``).
        topk: Classes kept per prediction.
        model_complexity: MediaPipe Pose model (1 = full, shipped in the wheel).
        max_frames: Stop reading the video after this many frames.
        on_frame: Progress callback, called with the frame index during pose extraction and drawing.
        backend: Pose backend, ``auto``, ``mediapipe`` or ``litert`` (:func:`stgcn.inference.pose.extract_pose`).

    Returns:
        The :class:`VideoResult`.
    """
    if out is not None and Path(out).suffix.lower() != ".mp4":
        raise ConfigError(f"{out}: the annotated video must end in .mp4")
    pose = extract_pose(video, model_complexity=model_complexity, max_frames=max_frames, backend=backend,
                        on_frame=None if on_frame is None else (lambda i, _f, _l: on_frame(i)))
    if not pose.detected.any():
        raise DataError(f"{video}: MediaPipe found no person in any of its {pose.num_frames} frames")
    x = pose_to_model_input(pose, predictor)
    prediction = predictor.predict(x, topk=topk)
    window, stride = predictor.resolve_window(window, stride)
    windows = predictor.sliding_window(x, window, stride, topk=topk)
    labels = frame_labels(windows, pose.num_frames, causal=False)
    result = VideoResult(pose, prediction, windows, labels, window, stride)
    if out is not None:
        _write_annotated(video, out, result, predictor, max_frames, on_frame)
    return result


def _write_annotated(video: str | Path, out: str | Path, result: VideoResult, predictor: Predictor,
                     max_frames: int | None, on_frame: Callable[[int], None] | None) -> None:
    from stgcn.inference.media import VideoWriter
    from stgcn.inference.pose import landmarks_to_layout

    pose = result.pose
    layout = predictor.layout
    pixels = landmarks_to_layout(pose.landmarks, layout)[..., [0, 1, 3]]  # (T, 1, V, 3): x, y, score
    # the window each frame is labelled from (nearest centre), for its score
    centres = np.array([(w.start + w.end - 1) / 2 for w in result.windows])
    clip_line = f"clip: {result.prediction.label} {result.prediction.score:.2f}"
    with VideoWriter(out, pose.fps) as writer:
        for f, frame in enumerate(read_video_frames(video, max_frames)):
            if f >= pose.num_frames:
                break
            win = result.windows[int(np.argmin(np.abs(centres - f)))]
            lines = [f"{win.prediction.label} {win.prediction.score:.2f}",
                     f"window {win.start}-{win.end - 1}  {clip_line}"]
            writer.write(draw_frame(frame, pixels[f], layout, lines))
            if on_frame is not None:
                on_frame(f)
    logger.info("wrote %s (%d frames)", out, writer.frames)


def extract_keypoints_file(video: str | Path, out: str | Path, *, layout: str = "openpose-18",
                           depth: bool = False, normalize: bool = False, model_complexity: int = 1,
                           max_frames: int | None = None,
                           on_frame: Callable[[int], None] | None = None, backend: str = "auto") -> PoseSequence:
    """``stgcn pose``: a video's skeletons as a keypoints clip file (``.json`` or ``.npz``) of the data layer
    (:func:`stgcn.data.readers.keypoints.save_keypoints`), which ``stgcn predict``, ``stgcn render`` and
    ``stgcn prepare keypoints`` read.

    Args:
        video: Input video.
        out: ``.json`` or ``.npz`` file.
        layout: ``openpose-18``, ``coco-17`` or ``mediapipe-pose-33``.
        depth: Also store MediaPipe's relative depth z (pixels, on the scale of x) as a third coordinate.
        normalize: Store the original demo's ``x / W - 0.5``, ``y / H - 0.5`` (``z / W``) instead of pixels
            (undetected joints 0); the image size is then not recorded, as the coordinates no longer refer to
            it.
        model_complexity: MediaPipe Pose model.
        max_frames: Read at most this many frames.
        on_frame: Progress callback with the frame index.
        backend: Pose backend, ``auto``, ``mediapipe`` or ``litert`` (:func:`stgcn.inference.pose.extract_pose`).

    The file holds the coordinates (T, 1, V, 2 or 3), the visibility scores (T, 1, V), the layout, channel
    names and, for pixel coordinates, the image size.
    """
    from stgcn.data.readers.keypoints import save_keypoints

    if layout not in POSE_LAYOUTS:
        raise ConfigError(f"unknown pose layout {layout!r}; valid layouts are {', '.join(POSE_LAYOUTS)}")
    out = Path(out)
    if out.suffix.lower() not in (".json", ".npz"):
        raise ConfigError(f"{out}: the keypoints file must end in .json or .npz")
    pose = extract_pose(video, model_complexity=model_complexity, max_frames=max_frames, backend=backend,
                        on_frame=None if on_frame is None else (lambda i, _f, _l: on_frame(i)))
    coords = ("x", "y", "z") if depth else ("x", "y")
    kp = pose.keypoints(layout, (*coords, "score"), normalize=normalize)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_keypoints(out, np.ascontiguousarray(kp[..., :-1]), layout=layout, scores=np.ascontiguousarray(kp[..., -1]),
                   channels=list(coords), image_size=None if normalize else (pose.width, pose.height))
    return pose
