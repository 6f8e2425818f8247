"""Pose estimation from video with MediaPipe Pose, and the mapping of its landmarks to skeleton layouts.

MediaPipe's legacy ``mediapipe.solutions.pose`` (pinned to ``mediapipe==0.10.14``, extra ``video``, whose
wheel ships the ``pose_landmark_full`` model so nothing is downloaded) tracks one person per frame and gives
33 landmarks: x and y as fractions of the image width and height, z (depth relative to the hips, on the
scale of x) and a visibility in [0, 1].

:func:`extract_pose` keeps them in pixels, ``(x * W, y * H, z * W, visibility)``, with all-zero landmarks in
frames where no person was found. :func:`landmarks_to_layout` maps them to a layout:

* ``mediapipe-pose-33``: the landmarks as they are;
* ``openpose-18``: the OpenPose COCO-18 joints (the layout of the original Kinetics model); MediaPipe has
  no neck, so the neck is the midpoint of the shoulders, with the smaller of their two scores;
* ``coco-17``: the 17 COCO keypoints, all of which MediaPipe has.

:meth:`PoseSequence.keypoints` with ``normalize=True`` gives the original ST-GCN demo's normalisation for
OpenPose input, ``(x / W - 0.5, y / H - 0.5, score)``, with joints that were not detected set to 0
(:func:`stgcn.data.channels.normalize_original`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.channels import normalize_original, select_channels
from stgcn.errors import ConfigError, DataError, StgcnError
from stgcn.graph.layouts import Layout, get_layout

__all__ = [
    "PoseSequence", "POSE_LAYOUTS", "MEDIAPIPE_TO_OPENPOSE_18", "MEDIAPIPE_TO_COCO_17", "extract_pose",
    "landmarks_to_layout", "read_video_frames", "video_info", "VideoInfo", "POSE_BACKENDS", "resolve_backend",
]

logger = logging.getLogger(__name__)

POSE_LAYOUTS = ("openpose-18", "coco-17", "mediapipe-pose-33")

# MediaPipe landmark index of each OpenPose COCO-18 joint; None = neck (shoulders' midpoint).
MEDIAPIPE_TO_OPENPOSE_18: tuple[int | None, ...] = (
    0,     # nose
    None,  # neck = midpoint of left (11) and right (12) shoulders
    12,    # right_shoulder
    14,    # right_elbow
    16,    # right_wrist
    11,    # left_shoulder
    13,    # left_elbow
    15,    # left_wrist
    24,    # right_hip
    26,    # right_knee
    28,    # right_ankle
    23,    # left_hip
    25,    # left_knee
    27,    # left_ankle
    5,     # right_eye
    2,     # left_eye
    8,     # right_ear
    7,     # left_ear
)

# MediaPipe landmark index of each COCO-17 keypoint.
MEDIAPIPE_TO_COCO_17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

_LEFT_SHOULDER, _RIGHT_SHOULDER = 11, 12


def _import_cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise StgcnError("reading videos needs OpenCV, which the 'video' extra installs: "
                         "pip install 'stgcn[video]'") from None
    return cv2


MEDIAPIPE_HINT = "pip install 'stgcn[video]' (mediapipe==0.10.14)"
POSE_BACKENDS = ("auto", "mediapipe", "litert")


def _import_mediapipe() -> Any:
    try:
        import mediapipe as mp
        solutions = mp.solutions
    except (ImportError, AttributeError):
        raise StgcnError("pose extraction needs MediaPipe with its legacy 'solutions' API, which the 'video' "
                         f"extra installs where MediaPipe 0.10.14 has wheels (Python <= 3.12): {MEDIAPIPE_HINT}; "
                         "on any Python, --backend litert runs the same models") from None
    return solutions


def resolve_backend(backend: str = "auto", model_complexity: int = 1) -> str:
    """The pose backend to use: ``mediapipe`` (legacy ``solutions.pose``) or ``litert`` (:mod:`blazepose`).

    The one rule for ``auto``: LiteRT when ``ai-edge-litert`` is installed and the full model is asked
    (``model_complexity`` 1, the only one LiteRT runs: it finds every person, runs on every Python and takes
    about two thirds of MediaPipe's CPU time per frame), else MediaPipe when it is importable with its legacy
    API, else LiteRT (which then says that it has the full model only).

    Raises:
        ConfigError: unknown backend. StgcnError: ``auto`` and neither is installed (says what to install).
    """
    if backend not in POSE_BACKENDS:
        raise ConfigError(f"unknown pose backend {backend!r}; valid backends are {', '.join(POSE_BACKENDS)}")
    if backend != "auto":
        return backend
    try:
        import ai_edge_litert.interpreter  # noqa: F401
        litert = True
    except ImportError:
        litert = False
    if litert and model_complexity == 1:
        return "litert"
    try:
        _import_mediapipe()
        return "mediapipe"
    except StgcnError:
        pass
    if not litert:
        raise StgcnError("pose extraction needs MediaPipe's legacy 'solutions' API or LiteRT, which the 'video' "
                         f"extra installs: {MEDIAPIPE_HINT} on Python <= 3.12, pip install 'stgcn[video]' "
                         "(ai-edge-litert) on every Python")
    return "litert"


@dataclass(frozen=True)
class VideoInfo:
    """A video's size, frame rate and (container-reported, possibly approximate) frame count."""

    width: int
    height: int
    fps: float
    num_frames: int


def video_info(path: str | Path) -> VideoInfo:
    """Open a video and read its properties.

    Raises:
        DataError: missing or unreadable file.
    """
    cv2 = _import_cv2()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"{path}: cannot open as a video (unknown format or corrupt file)")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if width <= 0 or height <= 0:
        raise DataError(f"{path}: cannot read the video's frame size")
    return VideoInfo(width, height, fps, max(count, 0))


def read_video_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video frame by frame (one frame in memory at a time).

    Yields:
        Frames as (H, W, 3) uint8 arrays in RGB order.

    Raises:
        DataError: missing or unreadable file, or a video without frames.
    """
    cv2 = _import_cv2()
    video_info(path)  # existence and readability checks
    cap = cv2.VideoCapture(str(path))
    count = 0
    try:
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if count == 0:
        raise DataError(f"{path}: no frame could be decoded")


@dataclass
class PoseSequence:
    """MediaPipe Pose landmarks of a video, in pixels.

    Attributes:
        landmarks: (T, 1, 33, 4) float32: ``x, y`` in pixels, ``z`` (depth relative to the hips, on the
            scale of x, in pixels), visibility. All zero in frames without a detected person.
        width: Frame width W in pixels.
        height: Frame height H in pixels.
        fps: Frames per second.
        source: The video file.
    """

    landmarks: np.ndarray
    width: int
    height: int
    fps: float
    source: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.landmarks.shape[0])

    @property
    def detected(self) -> np.ndarray:
        """(T,) bool: frames in which a person was found."""
        return np.any(self.landmarks[:, 0] != 0, axis=(1, 2))

    def keypoints(self, layout: str | Layout = "openpose-18", channels: tuple[str, ...] = ("x", "y", "score"),
                  *, normalize: bool = False) -> np.ndarray:
        """The landmarks in a layout's joint order.

        Args:
            layout: ``openpose-18``, ``coco-17`` or ``mediapipe-pose-33``.
            channels: Which channels, in order, from ``x``, ``y``, ``z`` and ``score`` (or another score name,
                :data:`stgcn.data.channels.SCORE_CHANNELS`).
            normalize: Divide x (and z) by W and y by H and subtract 0.5 from x and y, zeroing undetected
                joints (the original demo's normalisation,
                :func:`stgcn.data.channels.normalize_original`); else pixels.

        Shape:
            Returns (T, 1, V, len(channels)) float32.
        """
        kp = landmarks_to_layout(self.landmarks, layout)
        if normalize:
            kp = normalize_original(kp, (self.width, self.height), ("x", "y", "z", "score"))
        return select_channels(kp[..., :3], kp[..., 3], channels, error=ConfigError)


def landmarks_to_layout(landmarks: np.ndarray, layout: str | Layout) -> np.ndarray:
    """Map MediaPipe's 33 landmarks to another layout's joints (see the module docstring).

    Shape:
        landmarks: (..., 33, 4) with ``x, y, z, visibility`` -> (..., V, 4).
    """
    lay = get_layout(layout)
    if landmarks.shape[-2:] != (33, 4):
        raise DataError(f"MediaPipe landmarks must have shape (..., 33, 4), got {tuple(landmarks.shape)}")
    if lay.name == "mediapipe-pose-33":
        return landmarks.astype(np.float32, copy=True)
    if lay.name == "coco-17":
        return landmarks[..., list(MEDIAPIPE_TO_COCO_17), :].astype(np.float32)
    if lay.name != "openpose-18":
        raise ConfigError(f"cannot map MediaPipe Pose landmarks to layout {lay.name!r}; supported layouts are "
                          f"{', '.join(POSE_LAYOUTS)}")
    idx = [0 if i is None else i for i in MEDIAPIPE_TO_OPENPOSE_18]
    out = landmarks[..., idx, :].astype(np.float32)
    left, right = landmarks[..., _LEFT_SHOULDER, :], landmarks[..., _RIGHT_SHOULDER, :]
    neck = (left + right) / 2
    neck[..., 3] = np.minimum(left[..., 3], right[..., 3])
    out[..., 1, :] = neck
    return out


def extract_pose(video: str | Path, *, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, max_frames: int | None = None,
                 on_frame: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                 backend: str = "auto") -> PoseSequence:
    """Track one person's 33 BlazePose landmarks through every frame of a video.

    Args:
        video: Video file (anything OpenCV's FFmpeg backend reads).
        model_complexity: 0 (lite), 1 (full, the default and the model shipped in the 0.10.14 wheel) or 2
            (heavy): 0 and 2 only with MediaPipe and when already downloaded, else a one-line ConfigError
            (:func:`stgcn.inference.estimators.check_model_complexity`). The LiteRT backend has the full model only.
        min_detection_confidence: Person-detection threshold.
        min_tracking_confidence: Landmark-tracking (presence) threshold.
        max_frames: Stop after this many frames.
        on_frame: Called as ``on_frame(index, frame_rgb, landmarks (1, 33, 4))`` after each frame (for
            progress or live drawing).
        backend: ``mediapipe`` (legacy ``solutions.pose``, tracking mode), ``litert`` (the same BlazePose
            models under LiteRT, :class:`stgcn.inference.blazepose.BlazePose` with one person: the tracked,
            else the most confident one) or ``auto`` (:func:`resolve_backend`: LiteRT when installed, else MediaPipe).

    Returns:
        The landmarks of every frame, in pixels.

    Raises:
        DataError: unreadable video. ConfigError: bad option. StgcnError: MediaPipe/LiteRT/OpenCV missing.
    """
    from stgcn.inference.estimators import check_model_complexity

    if model_complexity not in (0, 1, 2):
        raise ConfigError(f"model_complexity must be 0, 1 or 2, got {model_complexity!r}")
    info = video_info(video)
    backend = resolve_backend(backend, model_complexity)
    check_model_complexity(model_complexity, backend)
    rows: list[np.ndarray] = []
    for i, (frame, lm) in enumerate(_track(video, backend, model_complexity, min_detection_confidence,
                                           min_tracking_confidence, max_frames)):
        rows.append(lm)
        if on_frame is not None:
            on_frame(i, frame, lm)
    landmarks = np.stack(rows)
    found = int(np.any(landmarks != 0, axis=(1, 2, 3)).sum())
    logger.info("%s (%s): %d frames, a person found in %d", video, backend, len(rows), found)
    return PoseSequence(landmarks, info.width, info.height, info.fps, str(video))


def _track(video: str | Path, backend: str, model_complexity: int, min_detection_confidence: float,
           min_tracking_confidence: float, max_frames: int | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(frame_rgb, landmarks (1, 33, 4))`` per frame, all-zero landmarks where nobody was found."""
    if backend == "litert":
        from stgcn.inference.blazepose import BlazePose

        pose = BlazePose(max_people=1, min_detection_confidence=min_detection_confidence,
                         min_tracking_confidence=min_tracking_confidence)
        for frame in read_video_frames(video, max_frames):
            people = pose.process(frame)
            lm = np.zeros((1, 33, 4), dtype=np.float32)
            if len(people):
                lm[0] = people[0]
            yield frame, lm
        return
    solutions = _import_mediapipe()
    with warnings.catch_warnings(), solutions.pose.Pose(static_image_mode=False, model_complexity=model_complexity,
                             smooth_landmarks=True, enable_segmentation=False,
                             min_detection_confidence=min_detection_confidence,
                             min_tracking_confidence=min_tracking_confidence) as pose:
        # mediapipe 0.10.14 calls a protobuf API that newer protobuf releases flag as deprecated
        warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
        for frame in read_video_frames(video, max_frames):
            h, w = frame.shape[:2]
            result = pose.process(frame)
            lm = np.zeros((1, 33, 4), dtype=np.float32)
            if result.pose_landmarks is not None:
                lm[0] = [(p.x * w, p.y * h, p.z * w, p.visibility) for p in result.pose_landmarks.landmark]
            yield frame, lm
