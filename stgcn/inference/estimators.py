"""Pose estimators for live frames: every person (LiteRT BlazePose) or one person (MediaPipe's legacy solution).

:func:`open_estimator` gives an object whose ``process(frame)`` returns the people of one RGB frame as
``(P, 33, 4)`` BlazePose landmarks in pixels (``x, y, z, visibility``), as
:func:`stgcn.inference.pose.extract_pose` does for one person. Several people need the LiteRT backend
(:class:`stgcn.inference.blazepose.BlazePose`); MediaPipe's legacy ``solutions.pose`` is the single-person
fallback.

Only the full landmark model (``model_complexity=1``) ships in the ``mediapipe==0.10.14`` wheel (and in
stgcn); the lite (0) and heavy (2) models are downloaded by MediaPipe on first use, so
:func:`check_model_complexity` fails with one line when they are not already in the installed MediaPipe.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.errors import ConfigError

__all__ = ["open_estimator", "check_model_complexity", "MODEL_COMPLEXITY_HINT"]

MODEL_COMPLEXITY_HINT = ("only model_complexity 1 (the full model) ships in the mediapipe 0.10.14 wheel; 0 (lite) "
                         "and 2 (heavy) are downloaded by MediaPipe on first use")
logger = logging.getLogger(__name__)

_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}


def check_model_complexity(model_complexity: int, backend: str) -> None:
    """Fail with one line when a MediaPipe pose model is neither shipped nor already downloaded.

    Raises:
        ConfigError: ``model_complexity`` not 0, 1 or 2, or 0/2 with the LiteRT backend, or 0/2 whose model
            file is missing from the installed MediaPipe (it would be downloaded, which fails offline).
    """
    if model_complexity not in (0, 1, 2):
        raise ConfigError(f"model_complexity must be 0, 1 or 2, got {model_complexity!r}")
    if model_complexity == 1:
        return
    if backend == "litert":
        raise ConfigError(f"the litert pose backend has the full model only (model_complexity 1), got "
                          f"{model_complexity}; valid backends for it: mediapipe")
    try:
        import mediapipe
    except ImportError:
        return  # resolve_backend reports the missing package
    path = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / _MODEL_FILES[model_complexity]
    if not path.is_file():
        raise ConfigError(f"model_complexity {model_complexity}: {path.name} is not installed and would be "
                          f"downloaded; {MODEL_COMPLEXITY_HINT}; use --model-complexity 1")


class _LiteRT:
    def __init__(self, max_people: int | None, min_detection_confidence: float, min_tracking_confidence: float,
                 num_threads: int | None, detect_every: int) -> None:
        from stgcn.inference.blazepose import BlazePose

        self._pose = BlazePose(max_people=max_people, min_detection_confidence=min_detection_confidence,
                               min_tracking_confidence=min_tracking_confidence, num_threads=num_threads,
                               detect_every=detect_every)

    def process(self, frame: np.ndarray) -> np.ndarray:
        return self._pose.process(frame)

    def timings(self) -> dict[str, dict[str, float]]:
        """Per model (``detector``, ``landmarks``): calls, wall and thread-CPU ms per call."""
        return {name: t.to_dict() for name, t in self._pose.timings.items()}

    def close(self) -> None:
        self._pose.reset()


class _MediaPipe:
    def __init__(self, model_complexity: int, min_detection_confidence: float, min_tracking_confidence: float) -> None:
        from stgcn.inference.pose import _import_mediapipe

        solutions = _import_mediapipe()
        self._pose = solutions.pose.Pose(static_image_mode=False, model_complexity=model_complexity,
                                         smooth_landmarks=True, enable_segmentation=False,
                                         min_detection_confidence=min_detection_confidence,
                                         min_tracking_confidence=min_tracking_confidence)

    def process(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
            result = self._pose.process(frame)
        if result.pose_landmarks is None:
            return np.zeros((0, 33, 4), np.float32)
        return np.array([[(p.x * w, p.y * h, p.z * w, p.visibility) for p in result.pose_landmarks.landmark]],
                        np.float32)

    def close(self) -> None:
        self._pose.close()


def open_estimator(backend: str = "auto", *, max_people: int | None = None, model_complexity: int = 1,
                   min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                   num_threads: int | None = None, detect_every: int = 1) -> Any:
    """A pose estimator with ``process(frame (H, W, 3) RGB) -> (P, 33, 4)`` and ``close()``.

    Args:
        backend: ``auto`` (:func:`stgcn.inference.pose.resolve_backend`), ``litert`` or
            ``mediapipe`` (one person only).
        max_people: Most people per frame (``None``: no limit). MediaPipe finds one.
        model_complexity: 1 (full); 0 and 2 with MediaPipe only, when installed (:func:`check_model_complexity`).
        min_detection_confidence: Person-detection threshold.
        min_tracking_confidence: Landmark presence threshold to keep tracking a person.
        num_threads: LiteRT CPU threads (``None``: the pose share of the cores,
            :func:`stgcn.inference.background.split_threads`).
        detect_every: LiteRT: look for new people every n-th frame while someone is tracked (speed).

    Raises:
        ConfigError: bad option, or several people asked of MediaPipe. StgcnError: neither backend installed.
    """
    from stgcn.inference.pose import resolve_backend

    asked = backend
    backend = resolve_backend(backend, model_complexity)
    check_model_complexity(model_complexity, backend)
    if backend == "litert":
        return _LiteRT(max_people, min_detection_confidence, min_tracking_confidence, num_threads, detect_every)
    if max_people != 1:
        if asked == "mediapipe":
            raise ConfigError("the mediapipe pose backend finds one person; several people need the litert "
                              "backend (pip install ai-edge-litert), or use --max-people 1")
        logger.warning("the mediapipe pose backend follows one person only (several people need the litert "
                       "backend: pip install ai-edge-litert, model complexity 1)")
    return _MediaPipe(model_complexity, min_detection_confidence, min_tracking_confidence)
