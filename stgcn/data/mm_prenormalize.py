"""The ``PreNormalize3D`` and ``PreNormalize2D`` steps of the MMAction2 / PYSKL skeleton pipelines, with their
dtypes, used by :func:`stgcn.data.mm_pipeline.apply_mm_pipeline` and
:func:`stgcn.data.mm_pipeline.prenormalize_clip` (training and test transforms)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stgcn.errors import DataError

if TYPE_CHECKING:
    from stgcn.data.mm_pipeline import MMPipelineConfig

__all__ = ["prenormalize_3d", "prenormalize_2d"]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _angle(v1: np.ndarray, v2: np.ndarray) -> float:
    if np.abs(v1).sum() < 1e-6 or np.abs(v2).sum() < 1e-6:
        return 0.0
    return float(np.arccos(np.clip(np.dot(_unit(v1), _unit(v2)), -1.0, 1.0)))


def _rotation(axis: np.ndarray, theta: float) -> np.ndarray:
    """Rotation by ``theta`` about ``axis`` (the 2s-AGCN quaternion formula upstream uses)."""
    if np.abs(axis).sum() < 1e-6 or np.abs(theta) < 1e-6:
        return np.eye(3)
    axis = np.asarray(axis) / np.sqrt(np.dot(axis, axis))
    a = np.cos(theta / 2.0)
    b, c, d = -axis * np.sin(theta / 2.0)
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    return np.array([[aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)],
                     [2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)],
                     [2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc]])


def _align_to(skeleton: np.ndarray, pair: tuple[int, int], target: list[int], top_minus_bottom: bool) -> np.ndarray:
    first, second = skeleton[0, 0, pair[0]], skeleton[0, 0, pair[1]]
    vec = second - first if top_minus_bottom else first - second
    matrix = _rotation(np.cross(vec, target), _angle(vec, np.asarray(target)))
    return np.einsum("abcd,kd->abck", skeleton, matrix)


def prenormalize_3d(kp: np.ndarray, cfg: MMPipelineConfig) -> np.ndarray:
    """``PreNormalize3D``: drop frames without the main person, put the person with more valid frames first,
    centre, align (MMAction2's or PYSKL's variant, as ``cfg.framework`` says).

    Shape:
        kp: (M, T, V, 3) -> (M, T', V, 3)
    """
    m, t = kp.shape[:2]
    if kp.sum() == 0:
        return kp
    if m not in (1, 2):
        raise DataError(f"PreNormalize3D handles 1 or 2 persons, the annotation has {m}")
    valid = [[i for i in range(t) if not np.all(np.isclose(kp[p, i], 0))] for p in range(m)]
    if m == 2 and len(valid[0]) < len(valid[1]):
        kp = kp[:, np.array(valid[1])][[1, 0]]
    else:
        kp = kp[:, np.array(valid[0])]
    if cfg.align_center:
        center = kp[0, 0, 1].copy() if kp.shape[2] == 25 else kp[0, 0, -1].copy()
        kp = (kp - center) * ((kp != 0).sum(-1) > 0)[..., None]
    if cfg.align_spine:
        kp = _align_to(kp, cfg.zaxis, [0, 0, 1], top_minus_bottom=True)
    if cfg.align_shoulder if cfg.framework == "mmaction2" else cfg.align_spine:
        kp = _align_to(kp, cfg.xaxis, [1, 0, 0], top_minus_bottom=False)
    return kp


def prenormalize_2d(kp: np.ndarray, score: np.ndarray | None, img_shape: tuple[int, int],
                     cfg: MMPipelineConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """``PreNormalize2D``: pixels to [-1, 1] by ``img_shape`` (height, width). MMAction2 returns the score apart;
    PYSKL appends it as a third channel, zeroes joints with a score at or below ``cfg.score_threshold`` and
    has an ``auto`` mode (the skeletons' bounding box).

    Shape:
        kp: (M, T, V, 2), score: (M, T, V) -> (M, T, V, 2) and the score (MMAction2) or (M, T, V, 3) and None
    """
    h, w = img_shape
    if cfg.framework == "mmaction2":
        kp[..., 0] = (kp[..., 0] - (w / 2)) / (w / 2)
        kp[..., 1] = (kp[..., 1] - (h / 2)) / (h / 2)
        return kp, score
    kp = kp.astype(np.float32)
    if score is not None:
        kp = np.concatenate([kp, score.astype(np.float32)[..., None]], axis=-1)
    keep = kp[..., 2] > cfg.score_threshold if kp.shape[-1] == 3 else None
    if cfg.norm_mode == "auto":
        pts = kp[keep] if keep is not None else kp.reshape(-1, kp.shape[-1])
        x_max, x_min, y_max, y_min = ((pts[:, 0].max(), pts[:, 0].min(), pts[:, 1].max(), pts[:, 1].min())
                                      if len(pts) else (0, 0, 0, 0))
        if x_max - x_min > 10 and y_max - y_min > 10:
            kp[..., 0] = (kp[..., 0] - (x_max + x_min) / 2) / (x_max - x_min) * 2
            kp[..., 1] = (kp[..., 1] - (y_max + y_min) / 2) / (y_max - y_min) * 2
    else:
        kp[..., 0] = (kp[..., 0] - (w / 2)) / (w / 2)
        kp[..., 1] = (kp[..., 1] - (h / 2)) / (h / 2)
    if keep is not None:
        kp[..., 0][~keep] = 0
        kp[..., 1][~keep] = 0
    return kp, None
