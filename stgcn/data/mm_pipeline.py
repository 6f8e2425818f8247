"""The MMAction2 / PYSKL skeleton test pipeline, as a typed config and a NumPy function applying it.

Upstream, a test sample goes through ``PreNormalize2D`` or ``PreNormalize3D``, ``GenSkeFeat`` (joint, bone,
joint-motion, bone-motion features), ``UniformSampleFrames`` (MMAction2) / ``UniformSample`` (PYSKL) in test
mode or ``PadTo``, ``PoseDecode`` and ``FormatGCNInput``. :func:`apply_mm_pipeline` reproduces those steps,
including their dtypes (3-D normalisation in float64, bones stored in float32, the final cast to float32) and
the samplers' random draws from a fixed seed, so the same annotation gives the same tensor as upstream.
:class:`MMPipelineConfig` holds the settings; it is what a converted checkpoint stores.

Differences between the two frameworks that this module keeps: PYSKL's ``PreNormalize2D`` appends the score
and zeroes joints whose score is at or below a threshold (MMAction2 maps a missing (0, 0) joint to (-1, -1));
PYSKL's sampler draws a crop ratio and offset per clip before sampling (``p_interval``), so for clips of at
least ``clip_len`` frames its indices differ from MMAction2's; PYSKL's ``FormatGCNInput(mode='loop')`` never
loops (its check runs after padding) while MMAction2's copies a lone person.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stgcn.data.mm_prenormalize import prenormalize_2d, prenormalize_3d
from stgcn.data.mm_sampling import FRAMEWORKS, sample_test_indices
from stgcn.errors import ConfigError, DataError
from stgcn.utils.checks import check_int, check_number, is_int

__all__ = ["MMPipelineConfig", "apply_mm_pipeline", "clip_annotation", "sample_test_indices", "bone_pairs",
           "to_stgcn_input", "average_clips", "combine_clip_logits", "prenormalize_clip", "FRAMEWORKS", "FEATURES"]

FEATURES = ("j", "b", "jm", "bm")
_DATASETS = ("coco", "nturgb+d", "openpose")

# (joint, other joint) pairs of upstream JointToBone: bone[joint] = x[joint] - x[other]
_BONES: dict[str, tuple[tuple[int, int], ...]] = {
    "nturgb+d": ((0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9),
                 (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18), (21, 22),
                 (20, 20), (22, 7), (23, 24), (24, 11)),
    "openpose": ((0, 0), (1, 0), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9), (11, 5),
                 (12, 11), (13, 12), (14, 0), (15, 0), (16, 14), (17, 15)),
    "coco": ((0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6), (9, 7), (10, 8), (11, 0),
             (12, 0), (13, 11), (14, 12), (15, 13), (16, 14)),
}


def bone_pairs(dataset: str) -> tuple[tuple[int, int], ...]:
    """Upstream ``JointToBone`` pairs ``(joint, other)`` for ``dataset`` (``coco``, ``nturgb+d``, ``openpose``)."""
    if dataset not in _BONES:
        raise ConfigError(f"unknown skeleton dataset {dataset!r}; valid ones are {', '.join(_DATASETS)}")
    return _BONES[dataset]


def _choice(name: str, value: Any, valid: tuple[Any, ...]) -> Any:
    if value not in valid:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


@dataclass(frozen=True)
class MMPipelineConfig:
    """Settings of an MMAction2 / PYSKL skeleton test pipeline.

    Args:
        framework: ``mmaction2`` or ``pyskl`` (their transforms differ in the details listed in the module doc).
        prenormalize: ``2d`` (PreNormalize2D), ``3d`` (PreNormalize3D) or ``None``.
        img_shape: Default (height, width) for ``2d`` when the annotation has no ``img_shape``.
        score_threshold: PYSKL ``2d``: joints with a score at or below it get (0, 0).
        norm_mode: PYSKL ``2d``: ``fix`` (image size) or ``auto`` (the skeletons' bounding box).
        zaxis: ``3d``: joints (bottom, top) rotated onto +z.
        xaxis: ``3d``: joints (right, left) rotated onto +x.
        align_center: ``3d``: subtract the main person's centre joint at the first kept frame.
        align_spine: ``3d``: the +z rotation (PYSKL: both rotations).
        align_shoulder: ``3d``: the +x rotation (MMAction2 only).
        dataset: Skeleton of the bone pairs and of score averaging: ``coco``, ``nturgb+d`` or ``openpose``.
        feats: Features concatenated on the channel axis, from ``j``, ``b``, ``jm``, ``bm``.
        clip_len: Frames per clip of the uniform sampler; ``None`` for no sampler.
        num_clips: Clips sampled.
        seed: Seed of the test-mode sampler.
        p_interval: PYSKL sampler's crop ratio range.
        pad_to: ``PadTo`` length instead of a sampler; ``None`` for none.
        pad_mode: ``PadTo`` mode, ``loop`` or ``zero``.
        num_person: Persons of the model input (padded with zeros or cut).
        format_mode: ``FormatGCNInput`` mode, ``zero`` or ``loop``.
        average_clips: ``prob`` (softmax per clip, then mean) or ``score`` (mean of logits).
    """

    framework: str = "mmaction2"
    prenormalize: str | None = None
    img_shape: tuple[int, int] = (1080, 1920)
    score_threshold: float = 0.01
    norm_mode: str = "fix"
    zaxis: tuple[int, int] = (0, 1)
    xaxis: tuple[int, int] = (8, 4)
    align_center: bool = True
    align_spine: bool = True
    align_shoulder: bool = True
    dataset: str = "nturgb+d"
    feats: tuple[str, ...] = ("j",)
    clip_len: int | None = None
    num_clips: int = 1
    seed: int = 255
    p_interval: tuple[float, float] = (1.0, 1.0)
    pad_to: int | None = None
    pad_mode: str = "loop"
    num_person: int = 2
    format_mode: str = "zero"
    average_clips: str = "prob"

    def __post_init__(self) -> None:
        _choice("framework", self.framework, FRAMEWORKS)
        _choice("prenormalize", self.prenormalize, (None, "2d", "3d"))
        _choice("norm_mode", self.norm_mode, ("fix", "auto"))
        _choice("dataset", self.dataset, _DATASETS)
        _choice("pad_mode", self.pad_mode, ("loop", "zero"))
        _choice("format_mode", self.format_mode, ("zero", "loop"))
        _choice("average_clips", self.average_clips, ("prob", "score"))
        feats = tuple(self.feats)
        if not feats or any(f not in FEATURES for f in feats):
            raise ConfigError(f"feats must be a non-empty list of {', '.join(FEATURES)}, got {self.feats!r}")
        object.__setattr__(self, "feats", feats)
        for name in ("img_shape", "zaxis", "xaxis"):
            value = tuple(getattr(self, name))
            if len(value) != 2 or not all(is_int(x) and x >= 0 for x in value):
                raise ConfigError(f"{name} must be two non-negative integers, got {getattr(self, name)!r}")
            object.__setattr__(self, name, tuple(int(x) for x in value))
        p = tuple(self.p_interval) if isinstance(self.p_interval, list | tuple) else (self.p_interval,) * 2
        if len(p) != 2:
            raise ConfigError(f"p_interval must be a number or two numbers, got {self.p_interval!r}")
        object.__setattr__(self, "p_interval", tuple(check_number(x, "p_interval", minimum=0, maximum=1)
                                                     for x in p))
        check_number(self.score_threshold, "score_threshold")
        for name in ("align_center", "align_spine", "align_shoulder"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.clip_len is not None:
            check_int(self.clip_len, "clip_len")
        if self.pad_to is not None:
            check_int(self.pad_to, "pad_to")
        if self.clip_len is not None and self.pad_to is not None:
            raise ConfigError("use either a sampler (clip_len) or pad_to, not both")
        check_int(self.num_clips, "num_clips")
        check_int(self.seed, "seed", minimum=0)
        check_int(self.num_person, "num_person")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :meth:`from_dict` turns back into this config."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MMPipelineConfig:
        """Build a config from :meth:`to_dict`'s output; unknown keys are an error that lists the valid ones."""
        if not isinstance(d, dict):
            raise ConfigError(f"mm pipeline: expected a mapping, got {type(d).__name__}")
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ConfigError(f"mm pipeline: unknown key(s) {unknown}; valid keys are {valid}")
        return cls(**d)

    # The attributes a Predictor, a PredictionStream and ``fit_image_coordinates`` read from a stored
    # preprocessing, so that an MM pipeline stands where a ``PreprocessConfig`` does.
    @property
    def is_2d(self) -> bool:
        """Whether the raw input is 2-D pixels with scores (``PreNormalize2D``, or a coco/openpose skeleton)."""
        return self.prenormalize == "2d" or (self.prenormalize is None and self.dataset != "nturgb+d")

    @property
    def channels(self) -> tuple[str, ...]:
        """Channels of the raw keypoints the pipeline takes: ``x, y, score`` (2-D) or ``x, y, z`` (3-D)."""
        return ("x", "y", "score") if self.is_2d else ("x", "y", "z")

    @property
    def image_size(self) -> tuple[int, int] | None:
        """``(W, H)`` the 2-D normalisation divides by (from ``img_shape``); ``None`` when none is image-based."""
        fixed = self.prenormalize == "2d" and (self.framework == "mmaction2" or self.norm_mode == "fix")
        return (self.img_shape[1], self.img_shape[0]) if fixed else None

    @property
    def length(self) -> int | None:
        """Frames T of each model input (``clip_len`` or ``pad_to``); ``None`` keeps the clip's length."""
        return self.clip_len if self.clip_len is not None else self.pad_to

    @property
    def max_persons(self) -> int:
        """Persons of the model input."""
        return self.num_person


def prenormalize_clip(clip: np.ndarray, dims: str, image_size: tuple[float, float] | None = None) -> np.ndarray:
    """PYSKL's ``PreNormalize3D`` (``dims="3d"``) or ``PreNormalize2D`` in ``fix`` mode (``"2d"``) on a clip in
    this project's layout: the steps :func:`apply_mm_pipeline` runs, for training and test transforms
    (``PreprocessConfig.prenormalize``).

    Args:
        clip: ``3d``: x, y, z channels (1 or 2 persons). ``2d``: x, y pixels, optionally a score channel.
        dims: ``2d`` or ``3d``.
        image_size: ``2d``: (width, height) of the images.

    Shape:
        clip: (T, M, V, C) -> (T', M, V, C) float32; ``3d`` keeps the T' frames where the main person is present.
    """
    _choice("dims", dims, ("2d", "3d"))
    x = np.asarray(clip)
    if x.ndim != 4:
        raise DataError(f"expected a (T, M, V, C) clip, got shape {tuple(x.shape)}")
    kp = x.transpose(1, 0, 2, 3)
    if dims == "3d":
        if x.shape[-1] != 3:
            raise DataError(f"PreNormalize3D takes x, y, z channels; the clip has {x.shape[-1]}")
        out = prenormalize_3d(kp.astype(np.float32), MMPipelineConfig(framework="pyskl", prenormalize="3d"))
    else:
        if x.shape[-1] not in (2, 3) or image_size is None:
            raise DataError(f"PreNormalize2D takes x, y (and score) channels and an image size; the clip has "
                            f"{x.shape[-1]} channels, image size {image_size}")
        w, h = image_size
        cfg = MMPipelineConfig(framework="pyskl", prenormalize="2d")
        score = kp[..., 2] if kp.shape[-1] == 3 else None
        out, _ = prenormalize_2d(kp[..., :2].copy(), score, (h, w), cfg)
    return np.ascontiguousarray(out.transpose(1, 0, 2, 3), dtype=np.float32)


def _features(kp: np.ndarray, cfg: MMPipelineConfig) -> np.ndarray:
    """GenSkeFeat: the requested features concatenated on the last axis."""
    c = kp.shape[-1]
    with_score = c == 3 and cfg.dataset in ("coco", "openpose")
    feats = {"j": kp}
    if "b" in cfg.feats or "bm" in cfg.feats:
        bone = np.zeros(kp.shape, dtype=np.float32)
        for v1, v2 in bone_pairs(cfg.dataset):
            if max(v1, v2) >= kp.shape[2]:
                raise DataError(f"the annotation has {kp.shape[2]} joints; {cfg.dataset!r} bones need more")
            bone[..., v1, :] = kp[..., v1, :] - kp[..., v2, :]
            if with_score:
                bone[..., v1, 2] = (kp[..., v1, 2] + kp[..., v2, 2]) / 2
        feats["b"] = bone
    for name, src in (("jm", "j"), ("bm", "b")):
        if name in cfg.feats:
            data = feats[src]
            motion = np.zeros_like(data)
            motion[:, :-1] = np.diff(data, axis=1)
            if with_score:
                motion[:, :-1, :, 2] = (data[:, :-1, :, 2] + data[:, 1:, :, 2]) / 2
            feats[name] = motion
    return np.concatenate([feats[f] for f in cfg.feats], axis=-1)


def _as_array(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    return np.array(value, copy=True)


def apply_mm_pipeline(annotation: dict[str, Any], cfg: MMPipelineConfig) -> np.ndarray:
    """Run the upstream test pipeline on one raw annotation.

    Args:
        annotation: ``keypoint`` (M, T, V, C) (pixels for 2-D, metres for 3-D), optional ``keypoint_score``
            (M, T, V) (2-D), optional ``img_shape`` (h, w) and ``total_frames``. Arrays may be NumPy or torch.
        cfg: The pipeline settings.

    Returns:
        float32 array in the upstream layout (num_clips, num_person, T, V, C); :func:`to_stgcn_input` turns
        it into this project's (N, C, T, V, M).

    Raises:
        DataError: a malformed annotation (shapes, no frames, too many persons for 3-D normalisation).
    """
    if not isinstance(annotation, dict) or "keypoint" not in annotation:
        raise DataError("annotation must be a mapping with a 'keypoint' array (M, T, V, C)")
    kp = _as_array(annotation["keypoint"], "keypoint")
    if kp.ndim != 4 or kp.shape[-1] not in (2, 3) or 0 in kp.shape:
        raise DataError(f"keypoint must be (M, T, V, C) with C 2 or 3 and no empty axis, got {kp.shape}")
    score = None
    if annotation.get("keypoint_score") is not None:
        score = _as_array(annotation["keypoint_score"], "keypoint_score")
        if score.shape != kp.shape[:3]:
            raise DataError(f"keypoint_score must be (M, T, V) = {kp.shape[:3]}, got {score.shape}")
    total = int(annotation.get("total_frames", kp.shape[1]))
    if total != kp.shape[1]:
        raise DataError(f"total_frames {total} differs from the keypoint array's {kp.shape[1]} frames")
    if cfg.prenormalize == "2d":
        kp, score = prenormalize_2d(kp, score, tuple(annotation.get("img_shape", cfg.img_shape)), cfg)
    elif cfg.prenormalize == "3d":
        kp = prenormalize_3d(kp, cfg)
    if score is not None:
        if kp.shape[-1] != 2:
            raise DataError("keypoint_score goes with 2-D keypoints only")
        kp = np.concatenate([kp, score[..., None]], axis=-1)
    kp = _features(kp, cfg)
    total = kp.shape[1]
    num_clips = 1
    if cfg.clip_len is not None:
        inds = sample_test_indices(total, cfg.clip_len, cfg.num_clips, seed=cfg.seed, framework=cfg.framework,
                                   p_interval=cfg.p_interval)
        num_clips = cfg.num_clips
    elif cfg.pad_to is not None:
        if total > cfg.pad_to:
            raise DataError(f"PadTo({cfg.pad_to}) cannot hold a sequence of {total} frames")
        kp = kp[:, np.mod(np.arange(cfg.pad_to), total)].copy()
        if cfg.pad_mode == "zero":
            kp[:, total:] = 0
        inds = np.arange(cfg.pad_to)
    else:
        inds = np.arange(total)
    kp = kp[:, inds].astype(np.float32)  # PoseDecode
    m = kp.shape[0]
    if m < cfg.num_person:
        kp = np.concatenate([kp, np.zeros((cfg.num_person - m,) + kp.shape[1:], kp.dtype)], axis=0)
        if cfg.format_mode == "loop" and cfg.framework == "mmaction2" and m == 1:
            kp[1:] = kp[0]
    kp = kp[:cfg.num_person]
    m, t, v, c = kp.shape
    return np.ascontiguousarray(kp.reshape(m, num_clips, t // num_clips, v, c).transpose(1, 0, 2, 3, 4))


def clip_annotation(clip: np.ndarray, cfg: MMPipelineConfig) -> dict[str, Any]:
    """Raw keypoints with the channels :attr:`MMPipelineConfig.channels` as the annotation upstream reads.

    Shape:
        clip: (T, M, V, C >= 3) -> ``keypoint`` (M, T, V, 2 or 3), ``keypoint_score`` (M, T, V) for 2-D.
    """
    kp = np.ascontiguousarray(np.asarray(clip, dtype=np.float32).transpose(1, 0, 2, 3))
    if kp.shape[-1] < 3:
        raise DataError(f"the pipeline takes channels {', '.join(cfg.channels)}; the clip has {kp.shape[-1]}")
    ann: dict[str, Any] = {"keypoint": kp[..., :2] if cfg.is_2d else kp[..., :3], "total_frames": kp.shape[1]}
    if cfg.is_2d:
        ann["keypoint_score"] = kp[..., 2]
        ann["img_shape"] = cfg.img_shape
    return ann


def to_stgcn_input(clips: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Upstream (num_clips, M, T, V, C) to this project's (N, C, T, V, M), one clip per batch entry.

    Shape:
        clips: (num_clips, M, T, V, C); output: (num_clips, C, T, V, M), float32.
    """
    x = torch.as_tensor(clips, dtype=torch.float32)
    if x.ndim != 5:
        raise DataError(f"expected (num_clips, M, T, V, C), got shape {tuple(x.shape)}")
    return x.permute(0, 4, 2, 3, 1).contiguous()


def average_clips(logits: torch.Tensor, mode: str = "prob") -> torch.Tensor:
    """Combine per-clip logits into one score per class, as upstream ``average_clips``.

    Args:
        logits: One row of class logits per clip.
        mode: ``prob``: softmax per clip, then the mean over clips; ``score``: mean of the logits.

    Shape:
        logits: (num_clips, num_classes); output: (num_classes,).
    """
    if logits.ndim != 2:
        raise DataError(f"expected (num_clips, num_classes) logits, got shape {tuple(logits.shape)}")
    return _mean_over_clips(logits[None], mode)[0]


def combine_clip_logits(logits: torch.Tensor, mode: str = "prob") -> torch.Tensor:
    """One score row per sample from its K clips' logits, averaged as :func:`average_clips`; with ``prob`` the
    row is the log of the averaged probabilities, so its softmax (and argmax) is that average.

    Shape:
        logits: (N, K, num_classes); output: (N, num_classes).
    """
    if logits.ndim != 3:
        raise DataError(f"expected (N, K, num_classes) logits, got shape {tuple(logits.shape)}")
    out = _mean_over_clips(logits, mode)
    return torch.log(out.clamp_min(1e-300)) if mode == "prob" else out


def _mean_over_clips(logits: torch.Tensor, mode: str) -> torch.Tensor:
    _choice("average_clips", mode, ("prob", "score"))
    return (logits.softmax(dim=-1) if mode == "prob" else logits).mean(dim=1)
