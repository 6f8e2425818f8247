"""The two configs of a transform pipeline: :class:`PreprocessConfig` (deterministic, saved in checkpoints)
and :class:`AugmentConfig` (training only), read from plain data by :func:`stgcn.utils.dataclass_config.from_dict`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stgcn.data.channels import SCORE_CHANNELS
from stgcn.errors import ConfigError
from stgcn.utils.dataclass_config import from_dict, to_dict

__all__ = ["PreprocessConfig", "AugmentConfig", "RESIZE_MODES", "STREAMS", "CENTER_MODES", "SCORE_CHANNELS",
           "PRENORMALIZE_MODES", "CLIP_AVERAGES"]

RESIZE_MODES = ("pad", "loop", "uniform", "pyskl")
STREAMS = ("joint", "bone", "joint_motion", "bone_motion")
CENTER_MODES = ("none", "frame", "first")
PRENORMALIZE_MODES = ("none", "pyskl-2d", "pyskl-3d")
CLIP_AVERAGES = ("score", "prob")


def _tuple(value: Any, where: str) -> tuple:
    if isinstance(value, list | tuple):
        return tuple(value)
    raise ConfigError(f"{where} must be a list, got {value!r}")


@dataclass(frozen=True)
class PreprocessConfig:
    """The deterministic preprocessing, shared by training, evaluation and prediction.

    Args:
        length: Frames per model input T; ``None`` keeps each clip's own length (batch size 1 only).
        resize: How a clip reaches ``length`` frames: ``pad`` (crop / zero-pad at the end), ``loop``
            (crop / repeat), ``uniform`` (one frame per equal segment) or ``pyskl`` (PYSKL's / MMAction2's
            ``UniformSample``: short clips loop, K test clips from a fixed seed). See :func:`temporal_indices`.
        num_clips: Clips per sample at test time (K-clip testing combines them as ``average_clips`` says).
            Ignored in training.
        max_persons: Persons M per input; ``None`` keeps the store's M.
        channels: Input channel names (e.g. ``("x", "y", "z")``, ``("x", "y", "score")``). Channels named
            score/confidence/visibility are not coordinates: they are never moved or rotated. ``None``: all
            channels are coordinates.
        image_size: ``(width, height)`` to normalise 2-D pixel coordinates: ``x / width - 0.5``. Use
            ``(1, 1)`` for coordinates already in [0, 1] (the original Kinetics convention).
        center: ``none``, ``frame`` (subtract the centre joint in every frame) or ``first`` (subtract its
            position in the first frame).
        center_joint: Joint name or index to centre on; ``None`` uses the layout's centre joint.
        view_normalize: Rotate 3-D clips into the body frame of the first frame (see
            :func:`view_normalize`).
        stream: Feature stream: ``joint``, ``bone``, ``joint_motion`` or ``bone_motion``.
        prenormalize: ``none``, ``pyskl-3d`` (PYSKL's ``PreNormalize3D``: drop the frames without the main
            person, put the person present longer first, centre on joint 1 (25 joints) or the last joint of the
            first frame, rotate joints 0 -> 1 onto +z then 8 -> 4 onto -x; x, y, z channels) or ``pyskl-2d``
            (PYSKL's ``PreNormalize2D`` in ``fix`` mode: pixels to [-1, 1] by ``image_size``, joints with a
            score <= 0.01 set to (0, 0); x, y, score channels). Replaces ``center``, ``view_normalize`` and the
            ``image_size`` scaling; see :func:`stgcn.data.mm_pipeline.prenormalize_clip`.
        average_clips: How K-clip testing combines the clips: ``score`` (mean of the logits) or ``prob`` (mean of
            the softmax probabilities, as MMAction2 / PYSKL; the stored scores are then the log of that mean).
    """

    length: int | None = 64
    resize: str = "uniform"
    num_clips: int = 1
    max_persons: int | None = None
    channels: tuple[str, ...] | None = None
    image_size: tuple[float, float] | None = None
    center: str = "none"
    center_joint: int | str | None = None
    view_normalize: bool = False
    stream: str = "joint"
    prenormalize: str = "none"
    average_clips: str = "score"

    def __post_init__(self) -> None:
        if self.length is not None and (isinstance(self.length, bool) or not isinstance(self.length, int)
                                        or self.length < 1):
            raise ConfigError(f"preprocess length must be a positive integer or None, got {self.length!r}")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"preprocess resize {self.resize!r} is not valid; valid modes are "
                              f"{', '.join(RESIZE_MODES)}")
        if isinstance(self.num_clips, bool) or not isinstance(self.num_clips, int) or self.num_clips < 1:
            raise ConfigError(f"preprocess num_clips must be a positive integer, got {self.num_clips!r}")
        if self.max_persons is not None and (not isinstance(self.max_persons, int) or self.max_persons < 1):
            raise ConfigError(f"preprocess max_persons must be a positive integer or None, got "
                              f"{self.max_persons!r}")
        if self.channels is not None:
            chans = _tuple(self.channels, "preprocess channels")
            if not chans or not all(isinstance(c, str) for c in chans):
                raise ConfigError(f"preprocess channels must be channel names, got {self.channels!r}")
            object.__setattr__(self, "channels", chans)
        if self.image_size is not None:
            size = _tuple(self.image_size, "preprocess image_size")
            if len(size) != 2 or not all(isinstance(s, int | float) and not isinstance(s, bool) and s > 0
                                         for s in size):
                raise ConfigError(f"preprocess image_size must be (width, height) > 0, got {self.image_size!r}")
            object.__setattr__(self, "image_size", (float(size[0]), float(size[1])))
        if self.center not in CENTER_MODES:
            raise ConfigError(f"preprocess center {self.center!r} is not valid; valid modes are "
                              f"{', '.join(CENTER_MODES)}")
        if self.stream not in STREAMS:
            raise ConfigError(f"preprocess stream {self.stream!r} is not valid; valid streams are "
                              f"{', '.join(STREAMS)}")
        if self.prenormalize not in PRENORMALIZE_MODES:
            raise ConfigError(f"preprocess prenormalize {self.prenormalize!r} is not valid; valid modes are "
                              f"{', '.join(PRENORMALIZE_MODES)}")
        if self.prenormalize != "none" and (self.center != "none" or self.view_normalize):
            raise ConfigError(f"preprocess prenormalize {self.prenormalize!r} centres and aligns the clip itself; "
                              f"set center: none and view_normalize: false")
        if self.prenormalize == "pyskl-2d" and self.image_size is None:
            raise ConfigError("preprocess prenormalize 'pyskl-2d' needs image_size (width, height)")
        if self.prenormalize == "pyskl-3d" and self.image_size is not None:
            raise ConfigError("preprocess prenormalize 'pyskl-3d' takes 3-D coordinates; unset image_size")
        if self.average_clips not in CLIP_AVERAGES:
            raise ConfigError(f"preprocess average_clips {self.average_clips!r} is not valid; valid modes are "
                              f"{', '.join(CLIP_AVERAGES)}")

    @property
    def num_coords(self) -> int | None:
        """Number of leading coordinate channels (``None``: all channels)."""
        if self.channels is None:
            return None
        coords = [c for c in self.channels if c.lower() not in SCORE_CHANNELS]
        return len(coords)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (what a checkpoint stores)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | PreprocessConfig, where: str = "preprocess") -> PreprocessConfig:
        """Inverse of :meth:`to_dict` (an existing config is returned as is); unknown keys and wrong types raise
        :class:`~stgcn.errors.ConfigError`."""
        return from_dict(cls, data, where)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-only augmentation (all off by default).

    Args:
        random_shift: The original's random shift: place the non-zero span at a random offset (useful with
            ``resize="pad"``).
        random_move: The original's random move (:func:`random_move`) with the candidates below.
        move_angles: Rotation candidates in degrees.
        move_scales: Scale candidates.
        move_translations: Translation candidates.
        move_steps: Candidates for the number of interpolation segments.
        rotate_3d: Maximum angle in degrees of a random 3-D rotation about each axis (0: off).
        random_scale: Scale each coordinate axis by its own factor uniform in ``[1 - s, 1 + s]`` (PYSKL's
            ``RandomScale``; 0: off). Makes a model less sensitive to body size and camera distance.
    """

    random_shift: bool = False
    random_move: bool = False
    move_angles: tuple[float, ...] = (-10.0, -5.0, 0.0, 5.0, 10.0)
    move_scales: tuple[float, ...] = (0.9, 1.0, 1.1)
    move_translations: tuple[float, ...] = (-0.2, -0.1, 0.0, 0.1, 0.2)
    move_steps: tuple[int, ...] = (1,)
    rotate_3d: float = 0.0
    random_scale: float = 0.0

    def __post_init__(self) -> None:
        for key in ("move_angles", "move_scales", "move_translations", "move_steps"):
            value = _tuple(getattr(self, key), f"augment {key}")
            if not value or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                raise ConfigError(f"augment {key} must be a non-empty list of numbers, got {value!r}")
            object.__setattr__(self, key, value)
        if not all(isinstance(s, int) and s >= 1 for s in self.move_steps):
            raise ConfigError(f"augment move_steps must be positive integers, got {self.move_steps!r}")
        if not isinstance(self.rotate_3d, int | float) or not 0 <= self.rotate_3d <= 180:
            raise ConfigError(f"augment rotate_3d must be an angle in [0, 180] degrees, got {self.rotate_3d!r}")
        if (isinstance(self.random_scale, bool) or not isinstance(self.random_scale, int | float)
                or not 0 <= self.random_scale < 1):
            raise ConfigError(f"augment random_scale must be in [0, 1), got {self.random_scale!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | AugmentConfig, where: str = "augment") -> AugmentConfig:
        """Inverse of :meth:`to_dict`; unknown keys and wrong types raise :class:`~stgcn.errors.ConfigError`."""
        return from_dict(cls, data, where)
