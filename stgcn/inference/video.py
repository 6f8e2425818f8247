"""Video -> pose -> action: the logic of ``stgcn video`` and ``stgcn pose``.

:func:`annotate_video` runs MediaPipe Pose on a video (:mod:`stgcn.inference.pose`), maps the landmarks to the
checkpoint's layout, turns them into the model's input the way the model expects it
(:func:`pose_to_model_input`), predicts the whole clip and sliding windows over it, and writes an MP4 with
the skeleton drawn over each frame plus the label and score of that frame's window, and/or a JSON report. The
windows are classified in a background thread while the poses are extracted (:mod:`stgcn.inference.background`). With
``max_people`` other than 1 it is the offline case of the live pipeline: every person is tracked and classified
(:mod:`stgcn.inference.video_tracks`), and the report gains one entry per track. The video is decoded once.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.channels import fit_image_coordinates, model_input_channels
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import Layout, get_layout
from stgcn.inference.background import WindowWorker, split_threads, torch_threads
from stgcn.inference.pose import POSE_LAYOUTS, PoseSequence, extract_pose, landmarks_to_layout, read_video_frames
from stgcn.inference.predict import Predictor
from stgcn.inference.results import Prediction, WindowPrediction
from stgcn.inference.video_tracks import TrackResult, classify_tracks, track_landmarks
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
    tracks: list[TrackResult] = field(default_factory=list)
    people_per_frame: np.ndarray | None = None

    def to_dict(self, predictor: Predictor) -> dict[str, Any]:
        """JSON-serialisable report."""
        names = predictor.class_names
        return {
            "video": self.pose.source,
            "width": self.pose.width,
            "height": self.pose.height,
            "fps": self.pose.fps,
            "num_frames": self.pose.num_frames,
            "frames_with_person": int(self.pose.detected.sum()) if self.people_per_frame is None else
            int((self.people_per_frame > 0).sum()),
            "layout": predictor.layout.name,
            "window": self.window,
            "stride": self.stride,
            "min_frames": predictor.min_frames,
            "short": predictor.short,
            "prediction": self.prediction.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "frame_labels": [None if i is None else names[i] for i in self.labels],
            "tracks": [t.to_dict(names) for t in self.tracks],
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
                   on_frame: Callable[[int], None] | None = None, backend: str = "auto",
                   max_people: int | None = 1, save_keypoints: str | Path | None = None) -> VideoResult:
    """Video -> pose -> ST-GCN: whole-clip and per-window predictions per person, optionally an annotated MP4.

    The video is decoded once (frames are kept in memory for ``out``, up to :data:`KEEP_FRAMES_BYTES`, beyond
    which it is read again).

    Args:
        video: Input video file.
        predictor: The model (its layout must be one of :data:`stgcn.inference.pose.POSE_LAYOUTS`).
        out: Annotated MP4 to write (skeletons, each frame's window label and score, the clip's label).
        window: Sliding-window length in frames (``None``: the predictor's default).
        stride: Frames between windows (``None``: ``window // 2``).
        topk: Classes kept per prediction.
        model_complexity: Pose model (1 = full, the one shipped; see
            :func:`stgcn.inference.estimators.check_model_complexity`).
        max_frames: Stop reading the video after this many frames.
        on_frame: Progress callback, called with the frame index during pose extraction and drawing.
        backend: Pose backend, ``auto``, ``mediapipe`` or ``litert`` (:func:`stgcn.inference.pose.extract_pose`).
        max_people: 1: one person (:func:`extract_pose`, MediaPipe's single-person tracking); more or ``None``
            (no limit): every person, tracked (:mod:`stgcn.inference.video_tracks`; the LiteRT backend). The
            top-level prediction is then the track seen in the most frames.
        save_keypoints: Also write the skeletons as a keypoints clip (``.json``/``.npz``, pixels, with fps):
            one person slot per track.

    Returns:
        The :class:`VideoResult`.
    """
    if out is not None and Path(out).suffix.lower() != ".mp4":
        raise ConfigError(f"{out}: the annotated video must end in .mp4")
    if save_keypoints is not None and Path(save_keypoints).suffix.lower() not in (".json", ".npz"):
        raise ConfigError(f"{save_keypoints}: the keypoints file must end in .json or .npz")
    kept: list[np.ndarray] | None = [] if out is not None else None

    def keep(i: int, frame: np.ndarray) -> None:
        nonlocal kept
        if kept is not None:
            kept.append(frame)
            if len(kept) * frame.nbytes > KEEP_FRAMES_BYTES:
                kept = None  # too long to hold: read again for the annotated video
        if on_frame is not None:
            on_frame(i)

    window, stride = predictor.resolve_window(window, stride)
    if max_people == 1:
        from stgcn.inference.pose import video_info

        info = video_info(video)
        worker = WindowWorker(predictor, window, stride, topk, lambda lm: pose_to_model_input(
            PoseSequence(lm, info.width, info.height, info.fps), predictor))
        # the windows run next to the pose stage: the model gets its share of the cores (1 of 2), also for the
        # last windows (a second thread gains little there and costs much when other processes use the cores)
        with torch_threads(split_threads()[1]):
            try:
                pose = extract_pose(video, model_complexity=model_complexity, max_frames=max_frames,
                                    backend=backend, on_frame=lambda i, f, lm: (worker.add(lm), keep(i, f)))
            finally:
                worker.close()
            if not pose.detected.any():
                raise DataError(f"{video}: no person found in any of its {pose.num_frames} frames")
            x = pose_to_model_input(pose, predictor)
            prediction = predictor.predict(x, topk=topk)
            windows = worker.finish(x)
        labels = frame_labels(windows, pose.num_frames, causal=False)
        track = TrackResult(0, 0, pose, prediction, windows, labels)
        result = VideoResult(pose, prediction, windows, labels, window, stride, [track],
                             pose.detected.astype(int))
    else:
        result = _track_video(video, predictor, window, stride, topk, model_complexity, max_frames, backend,
                              max_people, keep)
    if save_keypoints is not None:
        save_tracks(save_keypoints, result, predictor.layout.name)
    if out is not None:
        _write_annotated(video, out, result, predictor, max_frames, on_frame, kept)
    return result


KEEP_FRAMES_BYTES = 1 << 30


def _track_video(video: str | Path, predictor: Predictor, window: int, stride: int, topk: int,
                 model_complexity: int, max_frames: int | None, backend: str, max_people: int | None,
                 keep: Callable[[int, np.ndarray], None]) -> VideoResult:
    from stgcn.inference.estimators import open_estimator
    from stgcn.inference.pose import video_info

    info = video_info(video)
    estimator = open_estimator(backend, max_people=max_people, model_complexity=model_complexity)
    try:
        tracks, num_frames, counts = track_landmarks(
            read_video_frames(video, max_frames), estimator, width=info.width, height=info.height, fps=info.fps,
            source=str(video), on_frame=lambda i, f, _p: keep(i, f))
    finally:
        estimator.close()
    if not tracks:
        raise DataError(f"{video}: no person found in any of its {num_frames} frames")
    classify_tracks(tracks, predictor, window, stride, topk)
    main = max(tracks, key=lambda t: (int(t.pose.detected.sum()), -t.id))
    landmarks = np.zeros((num_frames, 1, 33, 4), np.float32)
    landmarks[main.first_frame:main.last_frame + 1] = main.pose.landmarks
    pose = PoseSequence(landmarks, info.width, info.height, info.fps, str(video))
    labels: list[int | None] = [None] * num_frames
    labels[main.first_frame:main.last_frame + 1] = main.labels or []
    logger.info("%s: %d frames, %d tracks; main track %d", video, num_frames, len(tracks), main.id)
    return VideoResult(pose, main.prediction, main.windows or [], labels, window, stride, tracks,  # type: ignore[arg-type]
                       counts)


def save_tracks(path: str | Path, result: VideoResult, layout: str) -> None:
    """Write every track's skeletons as one keypoints clip (pixels; person slot m = the m-th track), with the
    video's fps (an extra ``fps`` entry the readers ignore).

    Shape:
        The file holds (T, M, V, 2) coordinates and (T, M, V) scores.
    """
    from stgcn.data.readers.keypoints import save_keypoints

    pose = result.pose
    t = pose.num_frames
    kp = np.zeros((t, max(len(result.tracks), 1), get_layout(layout).num_joints, 3), np.float32)
    for m, track in enumerate(result.tracks):
        kp[track.first_frame:track.last_frame + 1, m] = track.pose.keypoints(layout, ("x", "y", "score"))[:, 0]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_keypoints(path, np.ascontiguousarray(kp[..., :2]), layout=layout, scores=np.ascontiguousarray(kp[..., 2]),
                   channels=["x", "y"], image_size=(pose.width, pose.height))
    _add_fps(path, pose.fps)


def _add_fps(path: Path, fps: float) -> None:
    """Record the frame rate in a keypoints file written by :func:`save_keypoints`."""
    from stgcn.utils.atomic import atomic_open, atomic_write_text

    if path.suffix.lower() == ".json":
        obj = json.loads(path.read_text(encoding="utf-8"))
        obj["fps"] = float(fps)
        atomic_write_text(path, json.dumps(obj))
    else:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["fps"] = np.array(float(fps))
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)


def _write_annotated(video: str | Path, out: str | Path, result: VideoResult, predictor: Predictor,
                     max_frames: int | None, on_frame: Callable[[int], None] | None,
                     frames: list[np.ndarray] | None) -> None:
    from stgcn.inference.media import VideoWriter

    pose = result.pose
    layout = predictor.layout
    clip_line = f"clip: {result.prediction.label} {result.prediction.score:.2f}"
    multi = len(result.tracks) > 1 or result.tracks[0].first_frame > 0
    source = frames if frames is not None else read_video_frames(video, max_frames)
    with VideoWriter(out, pose.fps) as writer:
        for f, frame in enumerate(source):
            if f >= pose.num_frames:
                break
            if multi:
                writer.write(_draw_tracks(frame, f, result, layout, predictor.class_names))
            else:
                pixels = landmarks_to_layout(pose.landmarks[f], layout)[..., [0, 1, 3]]
                win = _nearest_window(result.windows, f)
                lines = [f"{win.prediction.label} {win.prediction.score:.2f}",
                         f"window {win.start}-{win.end - 1}  {clip_line}"]
                writer.write(draw_frame(frame, pixels, layout, lines))
            if on_frame is not None:
                on_frame(f)
    logger.info("wrote %s (%d frames)", out, writer.frames)


def _nearest_window(windows: list[WindowPrediction], f: int) -> WindowPrediction:
    centres = np.array([(w.start + w.end - 1) / 2 for w in windows])
    return windows[int(np.argmin(np.abs(centres - f)))]


def _draw_tracks(frame: np.ndarray, f: int, result: VideoResult, layout: Layout, names: list[str]) -> np.ndarray:
    from stgcn.inference.live_run import draw_people

    people, ids, labels = [], [], {}
    for track in result.tracks:
        if not track.first_frame <= f <= track.last_frame:
            continue
        lm = track.pose.landmarks[f - track.first_frame]
        if not np.any(lm != 0):
            continue
        people.append(landmarks_to_layout(lm, layout)[0][..., [0, 1, 3]])
        ids.append(track.id)
        idx = track.labels[f - track.first_frame] if track.labels else None
        if idx is not None and track.windows:
            win = _nearest_window(track.windows, f)
            labels[track.id] = f"{names[idx]} {win.prediction.score:.2f}"
    kp = np.stack(people) if people else np.zeros((0, layout.num_joints, 3), np.float32)
    return draw_people(frame, kp, ids, labels, layout, [f"{len(result.tracks)} people tracked"])


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
    if not pose.detected.any():  # as stgcn video: a file of empty frames is not a skeleton clip
        raise DataError(f"{video}: no person found in any of its {pose.num_frames} frames")
    coords = ("x", "y", "z") if depth else ("x", "y")
    kp = pose.keypoints(layout, (*coords, "score"), normalize=normalize)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_keypoints(out, np.ascontiguousarray(kp[..., :-1]), layout=layout, scores=np.ascontiguousarray(kp[..., -1]),
                   channels=list(coords), image_size=None if normalize else (pose.width, pose.height))
    _add_fps(out, pose.fps)
    return pose
