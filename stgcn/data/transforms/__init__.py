"""Clip transforms: pure numpy functions and the pipeline that turns a stored clip into a model input.

Every function takes the clip as ``(T, M, V, C)`` (the store's order), returns a new array and never
mutates its input; the random ones take an explicit :class:`numpy.random.Generator`.

Two configs describe a pipeline:

* :class:`PreprocessConfig`: the deterministic part, identical at training and test time, and saved in a
  checkpoint so that prediction preprocesses exactly as training did (persons kept, 2-D normalisation by
  image size, centring, view normalisation, temporal length/sampling, feature stream, multi-clip testing).
* :class:`AugmentConfig`: training-only augmentation (the original ST-GCN's random shift and random move,
  random 3-D rotation).

:func:`build_transform` combines them into a picklable callable ``transform(clip, rng)`` that returns the
model input ``(C, T, V, M)`` float32 (or ``(K, C, T, V, M)`` for K-clip testing).

Pipeline order: persons -> 2-D normalisation -> centring -> view normalisation -> temporal resizing ->
augmentation (training only) -> feature stream -> ``(C, T, V, M)``.
"""

from stgcn.data.transforms.augment import (
    apply_moves,
    apply_rotations,
    move_curves,
    random_move,
    random_rotate_3d,
    random_rotation,
    rotation_matrix,
)
from stgcn.data.transforms.config import (
    CENTER_MODES,
    RESIZE_MODES,
    SCORE_CHANNELS,
    STREAMS,
    AugmentConfig,
    PreprocessConfig,
)
from stgcn.data.transforms.pipeline import Transform, build_transform
from stgcn.data.transforms.spatial import (
    body_rotation,
    center_on_joint,
    feature_stream,
    normalize_2d,
    select_persons,
    view_joints,
    view_normalize,
)
from stgcn.data.transforms.temporal import random_shift, take_frames, temporal_indices

__all__ = [
    "PreprocessConfig", "AugmentConfig", "Transform", "build_transform", "RESIZE_MODES", "STREAMS",
    "CENTER_MODES", "SCORE_CHANNELS", "select_persons", "normalize_2d", "center_on_joint", "view_normalize",
    "view_joints", "body_rotation", "rotation_matrix",
    "temporal_indices", "take_frames", "random_shift", "random_move", "move_curves", "apply_moves",
    "random_rotate_3d", "random_rotation", "apply_rotations", "feature_stream",
]
