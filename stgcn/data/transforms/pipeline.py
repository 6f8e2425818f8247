"""The pipeline that turns a stored clip into a model input: :class:`Transform` and :func:`build_transform`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stgcn.data.mm_pipeline import prenormalize_clip
from stgcn.data.transforms.augment import (
    apply_moves,
    apply_rotations,
    apply_scales,
    move_curves,
    random_rotation,
    random_scales,
)
from stgcn.data.transforms.config import SCORE_CHANNELS, AugmentConfig, PreprocessConfig
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
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import Layout, get_layout

__all__ = ["Transform", "build_transform"]


class Transform:
    """A stored clip -> model input. Build with :func:`build_transform`; picklable (DataLoader workers).

    ``transform(clip, rng)`` returns one input ``(C, T, V, M)`` in training or when
    ``preprocess.num_clips == 1``, else ``(K, C, T, V, M)``; :meth:`clips` always returns
    ``(K, C, T, V, M)`` (K = 1 in training).
    """

    def __init__(self, preprocess: PreprocessConfig, augment: AugmentConfig | None, *, train: bool,
                 layout: Layout) -> None:
        self.preprocess = preprocess
        self.augment = augment if train else None
        self.train = train
        self.layout = layout
        p = preprocess
        self.num_coords = p.num_coords
        coords = p.num_coords if p.num_coords is not None else None
        if p.channels is not None and p.channels[:coords] != tuple(
                c for c in p.channels if c.lower() not in SCORE_CHANNELS):
            raise ConfigError(f"preprocess channels {list(p.channels)}: coordinate channels must come first")
        self.score_channel = None
        if p.channels is not None:
            scores = [i for i, c in enumerate(p.channels) if c.lower() in SCORE_CHANNELS]
            self.score_channel = scores[0] if scores else None
        if p.center_joint is None:
            self.center_joint = layout.center
        elif isinstance(p.center_joint, str):
            if p.center_joint not in layout.joints:
                raise ConfigError(f"center joint {p.center_joint!r} is not a joint of layout {layout.name!r}; "
                                  f"valid joints are {', '.join(layout.joints)}")
            self.center_joint = layout.joints.index(p.center_joint)
        else:
            if not 0 <= p.center_joint < layout.num_joints:
                raise ConfigError(f"center joint {p.center_joint} is outside [0, {layout.num_joints}) for "
                                  f"layout {layout.name!r}")
            self.center_joint = int(p.center_joint)
        self.view_joints = view_joints(layout) if p.view_normalize else None
        three_d = p.view_normalize or (self.augment is not None and self.augment.rotate_3d > 0)
        if three_d and coords is not None and coords < 3:
            raise ConfigError(f"view normalisation and 3-D rotation need x, y, z channels; channels are "
                              f"{list(p.channels or ())}")
        if p.image_size is not None and coords is not None and coords < 2:
            raise ConfigError("2-D normalisation by image size needs x and y channels")
        wanted = {"pyskl-3d": (3, None), "pyskl-2d": (2, 2)}.get(p.prenormalize)
        if wanted is not None and coords is not None and (coords != wanted[0] or (
                self.score_channel is not None and self.score_channel != wanted[1])):
            raise ConfigError(f"preprocess prenormalize {p.prenormalize!r} takes channels "
                              f"{'x, y, z' if wanted[0] == 3 else 'x, y (, score)'}; channels are {list(p.channels)}")
        self.bone_pairs = layout.bone_pairs()

    def __repr__(self) -> str:
        return f"Transform(train={self.train}, preprocess={self.preprocess}, augment={self.augment})"

    def _check(self, clip: np.ndarray) -> None:
        v = self.layout.num_joints
        if clip.ndim != 4 or clip.shape[2] != v:
            raise DataError(f"clip has shape {tuple(clip.shape)}; expected (T, M, {v}, C) for layout "
                            f"{self.layout.name!r}")
        if self.preprocess.channels is not None and clip.shape[3] != len(self.preprocess.channels):
            raise DataError(f"clip has {clip.shape[3]} channels; expected {len(self.preprocess.channels)} "
                            f"({', '.join(self.preprocess.channels)})")
        if clip.shape[0] == 0 or clip.shape[1] == 0:
            raise DataError(f"empty clip (shape {tuple(clip.shape)}); expected at least one frame and person")

    def _prepare(self, clip: np.ndarray) -> np.ndarray:
        """The clip-level deterministic steps (before temporal resizing)."""
        p = self.preprocess
        x = clip
        if p.max_persons is not None:
            x = select_persons(x, p.max_persons)
        if p.prenormalize != "none":
            return prenormalize_clip(x, p.prenormalize.removeprefix("pyskl-"), p.image_size)
        if p.image_size is not None:
            x = normalize_2d(x, p.image_size, self.score_channel)
        nc = self.num_coords if self.num_coords is not None else x.shape[-1]
        if p.center == "first" and self.view_joints is not None:
            return self._center_first_and_view(x)
        if p.center != "none":
            x = center_on_joint(x, self.center_joint, p.center, num_coords=nc)
        if self.view_joints is not None:
            x = view_normalize(x, self.view_joints)
        return x

    def _center_first_and_view(self, x: np.ndarray) -> np.ndarray:
        """``view_normalize(center_on_joint(x, j, "first"))`` as one affine map (same result, one pass)."""
        present = np.any(x != 0, axis=(2, 3))
        frames = np.flatnonzero(present[:, 0])
        if frames.size == 0:
            return x.astype(np.float32, copy=True)
        first = int(frames[0])
        origin = x[first, 0, self.center_joint, :3].astype(np.float32)
        rot = body_rotation(x, self.view_joints, first) if self.view_joints is not None else None
        if x.shape[-1] == 3:
            out = (x - origin) if rot is None else (x - origin) @ rot.T
            out = out.astype(np.float32, copy=False)
        else:
            out = x.astype(np.float32, copy=True)
            out[..., :3] -= origin
            if rot is not None:
                out[..., :3] = out[..., :3] @ rot.T
        if not present.all():
            out[~present] = 0
        return out

    def _finish(self, xs: list[np.ndarray], rngs: Sequence[np.random.Generator | None]) -> np.ndarray:
        """Augmentation (training), feature stream and the (C, T, V, M) layout, for equally long clips.

        Each clip draws its random parameters from its own generator, in a fixed order (shift, move,
        rotation, scale), so a clip gets the same result alone or in a batch.

        Shape:
            xs: B x (T, M, V, C) -> (B, C, T, V, M)
        """
        a = self.augment
        curves, rotations, scales = [], [], []
        if a is not None:
            for i, rng in enumerate(rngs):
                if rng is None:
                    continue
                if a.random_shift:
                    xs[i] = random_shift(xs[i], rng)
                if a.random_move:
                    curves.append(move_curves(rng, xs[i].shape[0], angles=a.move_angles, scales=a.move_scales,
                                              translations=a.move_translations, move_steps=a.move_steps))
                if a.rotate_3d > 0:
                    rotations.append(random_rotation(rng, a.rotate_3d))
                if a.random_scale > 0:
                    scales.append(random_scales(rng, a.random_scale, self._scaled_axes(xs[i])))
        x = np.stack(xs)
        if curves:
            x = apply_moves(x, np.stack(curves))
        if rotations:
            x = apply_rotations(x, np.stack(rotations))
        if scales:
            x = apply_scales(x, np.stack(scales))
        if self.preprocess.stream != "joint":
            x = feature_stream(x, self.preprocess.stream, self.bone_pairs, self.num_coords, time_axis=1)
        return np.ascontiguousarray(x.transpose(0, 4, 1, 3, 2), dtype=np.float32)

    def _scaled_axes(self, x: np.ndarray) -> int:
        """Coordinate channels that random scaling changes (all channels but scores)."""
        return self.num_coords if self.num_coords is not None else x.shape[-1]

    def _resized(self, clip: np.ndarray, rng: np.random.Generator | None, clip_index: int = 0) -> np.ndarray:
        clip = np.asarray(clip)
        self._check(clip)
        p = self.preprocess
        x = self._prepare(clip)
        idx = temporal_indices(x.shape[0], p.length, p.resize, rng=rng, clip_index=clip_index,
                               num_clips=p.num_clips)
        return take_frames(x, idx)

    def clips(self, clip: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """All K inputs of a clip (K = ``num_clips`` at test time, 1 in training).

        Shape:
            clip: (T, M, V, C) -> (K, C, T', V, M')
        """
        if self.train:
            if rng is None:
                raise ConfigError("a training transform needs an np.random.Generator")
            return self._finish([self._resized(clip, rng)], [rng])
        k = self.preprocess.num_clips
        return self._finish([self._resized(clip, None, i) for i in range(k)], [None] * k)

    def batch(self, clips: Sequence[np.ndarray], rngs: Sequence[np.random.Generator | None]) -> np.ndarray:
        """Transform several clips at once (vectorised augmentation); ``batch(cs, rs)[i]`` equals
        ``transform(cs[i], rs[i])``. Needs a fixed ``length`` when there is more than one clip.

        Shape:
            clips: B x (T, M, V, C) -> (B, C, T', V, M') or (B, K, C, T', V, M') for K-clip testing
        """
        if len(clips) != len(rngs):
            raise ConfigError(f"{len(clips)} clips but {len(rngs)} generators")
        if not self.train:
            return np.stack([self(c) for c in clips])
        if len(clips) > 1 and self.preprocess.length is None:
            raise ConfigError("batched transforms need a fixed preprocess length")
        if any(r is None for r in rngs):
            raise ConfigError("a training transform needs an np.random.Generator")
        return self._finish([self._resized(c, r) for c, r in zip(clips, rngs, strict=True)], rngs)

    def __call__(self, clip: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Shape: (T, M, V, C) -> (C, T', V, M') or, for K-clip testing, (K, C, T', V, M')."""
        out = self.clips(clip, rng)
        return out[0] if out.shape[0] == 1 and (self.train or self.preprocess.num_clips == 1) else out


def build_transform(
    preprocess: PreprocessConfig,
    augment: AugmentConfig | None = None,
    *,
    train: bool,
    layout: str | Layout | dict[str, Any],
) -> Transform:
    """The transform a dataset applies to each stored clip.

    Args:
        preprocess: Deterministic preprocessing (saved with the checkpoint).
        augment: Training augmentation; ignored when ``train`` is False.
        train: Random temporal sampling/cropping and augmentation (needs an rng per call) vs deterministic.
        layout: The clips' layout (for the centre joint, bone pairs and view normalisation).

    Returns:
        A picklable callable ``transform(clip, rng) -> np.ndarray``.

    Shape:
        clip: (T, M, V, C) -> (C, T, V, M), or (K, C, T, V, M) for K-clip testing.
    """
    return Transform(preprocess, augment, train=train, layout=get_layout(layout))
