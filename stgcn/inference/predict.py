"""Prediction with a trained model: whole clips, sliding windows over long sequences, and live streams.

A :class:`Predictor` is built from a checkpoint and applies the preprocessing stored in it (the
``PreprocessConfig`` the model was trained with), so raw keypoints go in and class names with scores come out.

Three ways in:

* :meth:`Predictor.predict`: one clip ``(T, V, C)`` or ``(T, M, V, C)`` -> the top-k classes.
  :meth:`Predictor.predict_batch` takes ``(N, C, T, V, M)`` (the original ST-GCN's data layout) or a list of
  clips. Multi-clip testing (``preprocess.num_clips > 1``) averages the K clips' logits.
* :meth:`Predictor.sliding_window`: windows of ``window`` frames every ``stride`` frames over a long
  sequence, each predicted independently; :func:`frame_labels` turns them into one label per frame.
* :meth:`Predictor.stream`: a :class:`PredictionStream` that takes frames one at a time and emits a
  prediction every ``stride`` frames once ``window`` frames are in. It keeps only the last ``window`` frames
  (bounded memory) and runs the model on one window per emission (bounded latency), and its output equals
  :meth:`Predictor.sliding_window` on the same frames.

Short windows. Every output of an ST-GCN depends on a span of input frames, its temporal receptive field
(:func:`temporal_receptive_field`; 153 frames for the paper's 10 blocks with Gamma = 9). A window shorter
than that is seen through the convolutions' zero padding everywhere, which is not what the model was
trained on; the original demo zero-padded such windows silently. Here a model input shorter than
``min_frames`` is handled by an explicit policy, ``short``:

* ``"loop"`` (default): repeat the window's frames from its start until it has ``min_frames`` frames (the
  clip is played again, so the model sees real motion everywhere);
* ``"zero"``: append all-zero frames (absent skeletons) up to ``min_frames``, as the original demo did;
* ``"error"``: raise :class:`~stgcn.errors.DataError`.

``min_frames`` defaults to the receptive field, except for checkpoints whose preprocessing brings every
clip to a fixed length L (``preprocess.length``): the model was trained on L-frame inputs, so the default is
``min(receptive field, L)`` and the stored preprocessing (its ``resize`` mode) alone decides how a short
clip reaches L frames. ``min_frames=1`` runs every window as it is. Padding is applied to the raw frames,
before the stored preprocessing, so motion features and centring see a consistent sequence; it is logged
once per predictor.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stgcn.data.transforms import PreprocessConfig, build_transform, take_frames, temporal_indices
from stgcn.engine.checkpoint import Checkpoint, load_checkpoint
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import Layout, get_layout
from stgcn.models.config import STGCNConfig
from stgcn.models.stgcn import STGCN

__all__ = [
    "Predictor", "Prediction", "WindowPrediction", "PredictionStream", "SHORT_POLICIES",
    "temporal_receptive_field", "frame_labels", "window_bounds", "as_clip", "read_clips", "ClipInput",
    "fit_image_coordinates",
]

logger = logging.getLogger(__name__)

SHORT_POLICIES = ("loop", "zero", "error")


def temporal_receptive_field(config: STGCNConfig) -> int:
    """Number of input frames one output frame of the last block depends on.

    Each temporal convolution adds ``(Gamma - 1) * J`` frames, where ``J`` is the product of the strides
    before it; graph convolutions, BatchNorm and the 1x1 residual projections add none.

    >>> temporal_receptive_field(STGCNConfig(num_classes=2))
    153
    """
    field_, jump = 1, 1
    for _, stride in config.blocks:
        field_ += (config.temporal_kernel - 1) * jump
        jump *= stride
    return field_


@dataclass(eq=False)
class Prediction:
    """The top-k classes of one input.

    Attributes:
        indices: Class indices, best first.
        labels: Their names (``class_<i>`` when the checkpoint has no class names).
        scores: Their softmax probabilities.
        probabilities: Softmax over all classes, shape (num_classes,).
    """

    indices: tuple[int, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    probabilities: np.ndarray = field(repr=False)

    @property
    def label(self) -> str:
        """The top-1 class name."""
        return self.labels[0]

    @property
    def score(self) -> float:
        """The top-1 probability."""
        return self.scores[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable top-k: ``{"topk": [{"index", "label", "score"}, ...]}``."""
        return {"topk": [{"index": i, "label": n, "score": s}
                         for i, n, s in zip(self.indices, self.labels, self.scores, strict=True)]}


@dataclass(eq=False)
class WindowPrediction:
    """The prediction for frames ``start`` (inclusive) to ``end`` (exclusive) of a sequence."""

    start: int
    end: int
    prediction: Prediction

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, **self.prediction.to_dict()}


def as_clip(x: np.ndarray, *, where: str = "input") -> np.ndarray:
    """A single clip as ``(T, M, V, C)`` float32: ``(T, V, C)`` gains a person axis.

    Raises:
        DataError: other ranks, empty axes, NaN or inf.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise DataError(f"{where}: keypoints must be numbers, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{where}: a clip must have shape (T, V, C) or (T, M, V, C), got {tuple(x.shape)}")
    if 0 in x.shape:
        raise DataError(f"{where}: empty clip of shape {tuple(x.shape)}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{where}: keypoints contain NaN or inf")
    return x


def window_bounds(num_frames: int, window: int, stride: int, *, include_tail: bool = True) -> list[tuple[int, int]]:
    """``(start, end)`` frame ranges of the sliding windows over ``num_frames`` frames.

    Windows of ``window`` frames start at ``0, stride, 2 * stride, ...``. With ``include_tail`` a last
    window ``(T - window, T)`` covers frames after the last regular one. A sequence shorter than
    ``window`` gives one window over all of it.
    """
    if window < 1 or stride < 1:
        raise ConfigError(f"window and stride must be positive, got window={window}, stride={stride}")
    if num_frames < 1:
        return []
    if num_frames <= window:
        return [(0, num_frames)]
    bounds = [(s, s + window) for s in range(0, num_frames - window + 1, stride)]
    if include_tail and bounds[-1][1] < num_frames:
        bounds.append((num_frames - window, num_frames))
    return bounds


def frame_labels(windows: Sequence[WindowPrediction], num_frames: int, *, causal: bool = True) -> list[int | None]:
    """One class index per frame from window predictions.

    Args:
        windows: Window predictions in order of their end frame.
        num_frames: Length of the sequence.
        causal: ``True``: frame ``f`` shows the latest window that had ended by frame ``f`` (what a live
            stream displays; ``None`` before the first window ends). ``False``: frame ``f`` takes the window
            whose centre is nearest (offline analysis; every frame labelled).
    """
    out: list[int | None] = [None] * num_frames
    if not windows:
        return out
    if causal:
        k = -1
        for f in range(num_frames):
            while k + 1 < len(windows) and windows[k + 1].end <= f + 1:
                k += 1
            out[f] = windows[k].prediction.indices[0] if k >= 0 else None
        return out
    centres = np.array([(w.start + w.end - 1) / 2 for w in windows])
    for f in range(num_frames):
        out[f] = windows[int(np.argmin(np.abs(centres - f)))].prediction.indices[0]
    return out


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"{path}: not a readable .npy array ({msg})") from None


@dataclass(eq=False)
class ClipInput:
    """One clip read from a file: coordinates, optional scores and what the file says about them.

    Attributes:
        name: Where it came from (file, or ``file[i]`` for the i-th clip of an (N, C, T, V, M) array).
        keypoints: (T, M, V, C) float32. For ``.npy`` input the raw array (all channels, names unknown);
            otherwise the coordinates only, named by ``meta["channels"]``.
        scores: (T, M, V) detection scores, or ``None``.
        meta: ``channels`` (coordinate names, or ``None`` for raw arrays), ``layout`` (Layout or None),
            ``image_size`` ((W, H) of pixel coordinates, or None) and whatever else the reader reports.
    """

    name: str
    keypoints: np.ndarray
    scores: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> list[str] | None:
        """Names of the channels of :meth:`array` (``None``: a raw array whose channels are unnamed)."""
        coords = self.meta.get("channels")
        if coords is None:
            return None
        return [str(c) for c in coords] + (["score"] if self.scores is not None else [])

    def array(self, channels: Sequence[str] | None = None) -> np.ndarray:
        """The clip with the given channels (``x``, ``y``, ``z``, ``score``); default: coordinates then score.

        Shape:
            Returns (T, M, V, len(channels)).
        """
        names = self.channels
        if names is None:
            if channels is not None:
                raise DataError(f"{self.name}: a raw array has no channel names; cannot select {list(channels)}")
            return self.keypoints
        from stgcn.data.sources import to_channels

        return to_channels(self.keypoints, self.scores, channels if channels is not None else names)


def read_clips(path: str | Path, layout: str | Layout | None = None) -> list[ClipInput]:
    """The clips in an input file of ``stgcn predict`` / ``stgcn render``.

    * ``.npy``: a raw array, ``(T, V, C)`` or ``(T, M, V, C)`` for one clip, or ``(N, C, T, V, M)`` for N
      clips (the original ST-GCN's data files); used as they are;
    * any single-clip file the data layer reads (:func:`stgcn.sources.read_clip_file`): the keypoints
      JSON/NPZ that ``stgcn pose`` writes, OpenPose folders, NW-UCLA, Kinetics-skeleton, MSR Action3D,
      UTKinect and NTU files.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        arr = _load_npy(path)
        meta: dict[str, Any] = {"channels": None, "layout": None if layout is None else get_layout(layout)}
        if arr.ndim == 5:
            return [ClipInput(f"{path}[{i}]", as_clip(item.transpose(1, 3, 2, 0), where=f"{path}[{i}]"), None,
                              dict(meta)) for i, item in enumerate(arr)]
        return [ClipInput(str(path), as_clip(arr, where=str(path)), None, meta)]
    from stgcn.data.sources import read_clip_file

    keypoints, scores, meta = read_clip_file(path, layout)
    keypoints = as_clip(keypoints, where=str(path))
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float32).reshape(keypoints.shape[:3])
    return [ClipInput(str(path), keypoints, scores, dict(meta))]


def fit_image_coordinates(x: np.ndarray, image_size: tuple[float, float], preprocess: PreprocessConfig | None,
                          channels: Sequence[str]) -> np.ndarray:
    """Pixel coordinates of a ``W x H`` image in the convention a model expects.

    * no stored preprocessing (a converted original checkpoint): the original ST-GCN's
      ``(x / W - 0.5, y / H - 0.5)`` (``z / W``), joints with score 0 (or x = y = 0 without scores) set to 0;
    * preprocessing that normalises by an image size ``(w, h)`` itself: rescaled to a ``w x h`` image, so that
      the stored normalisation again gives ``x / W - 0.5``;
    * other preprocessing: unchanged (the model was trained on coordinates as stored).

    Shape:
        x: (T, M, V, C) with channels named by ``channels`` -> same shape.
    """
    names = [c.lower() for c in channels]
    if preprocess is not None and preprocess.image_size is None:
        return x
    width, height = float(image_size[0]), float(image_size[1])
    out = x.astype(np.float32, copy=True)
    if preprocess is None:  # divide, as the original code does (bit-identical inputs)
        divide = {"x": (width, 0.5), "y": (height, 0.5), "z": (width, 0.0)}
        for i, name in enumerate(names):
            if name in divide:
                out[..., i] = out[..., i] / np.float32(divide[name][0]) - np.float32(divide[name][1])
    else:
        w, h = preprocess.image_size
        scale = {"x": w / width, "y": h / height, "z": w / width}
        for i, name in enumerate(names):
            if name in scale:
                out[..., i] = out[..., i] * np.float32(scale[name])
    if preprocess is None:
        score = [i for i, n in enumerate(names) if n in ("score", "confidence", "c", "visibility")]
        if score:
            missing = x[..., score[0]] <= 0
        else:
            coords = [i for i, n in enumerate(names) if n in ("x", "y")]
            missing = np.all(x[..., coords] == 0, axis=-1)
        out[missing] = 0
    return out


class Predictor:
    """A model with its class names and preprocessing, ready to classify raw keypoints.

    Args:
        model: The network (put in eval mode here).
        class_names: Names in label order; ``None`` names classes ``class_<i>``.
        preprocess: The checkpoint's ``PreprocessConfig`` (or its dict); ``None`` feeds inputs to the model
            as given (e.g. a converted original checkpoint, whose openpose-18 inputs are
            ``(x - 0.5, y - 0.5, score)`` already).
        device: Where the model runs.
        min_frames: Fewest frames a model input may have before ``short`` applies; ``None``: see the
            module docstring.
        short: ``loop``, ``zero`` or ``error`` (see the module docstring).
        batch_size: Windows per forward pass in :meth:`sliding_window` and :meth:`predict_batch`.
        optimize: Run the BatchNorm-folded inference copy (:func:`stgcn.optimize.optimize_for_inference`;
            the same logits within float rounding, faster); ``False`` runs ``model`` itself.
    """

    def __init__(self, model: STGCN, *, class_names: Sequence[str] | None = None,
                 preprocess: PreprocessConfig | dict[str, Any] | None = None,
                 device: str | torch.device = "cpu", min_frames: int | None = None, short: str = "loop",
                 batch_size: int = 32, optimize: bool = True) -> None:
        self.config: STGCNConfig = model.config
        self.device = torch.device(device)
        model = model.to(self.device).eval()
        if optimize and isinstance(model, STGCN):
            from stgcn.inference.optimize import optimize_for_inference

            model = optimize_for_inference(model)
        self.model = model
        self.layout: Layout = get_layout(self.config.graph.layout)
        n = self.config.num_classes
        if class_names is not None and len(class_names) != n:
            raise ConfigError(f"{len(class_names)} class names for a model with {n} classes")
        self.class_names = [str(c) for c in class_names] if class_names is not None else [
            f"class_{i}" for i in range(n)]
        if isinstance(preprocess, dict):
            preprocess = PreprocessConfig.from_dict(preprocess)
        self.preprocess: PreprocessConfig | None = preprocess
        self._transform = None if preprocess is None else build_transform(preprocess, train=False,
                                                                           layout=self.layout)
        if short not in SHORT_POLICIES:
            raise ConfigError(f"unknown short-window policy {short!r}; valid policies are "
                              f"{', '.join(SHORT_POLICIES)}")
        self.short = short
        self.receptive_field = temporal_receptive_field(self.config)
        fixed = self.fixed_length
        if min_frames is None:
            min_frames = self.receptive_field if fixed is None else min(self.receptive_field, fixed)
        if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
            raise ConfigError(f"min_frames must be a positive integer, got {min_frames!r}")
        self.min_frames = min_frames
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self._warned_short = False

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | Checkpoint, *, device: str | torch.device = "cpu",
                        min_frames: int | None = None, short: str = "loop", batch_size: int = 32,
                        optimize: bool = True) -> Predictor:
        """Build a predictor from a checkpoint file (or a loaded :class:`~stgcn.checkpoint.Checkpoint`)."""
        ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        return cls(ck.model, class_names=ck.class_names, preprocess=ck.preprocess, device=device,
                   min_frames=min_frames, short=short, batch_size=batch_size, optimize=optimize)

    # ------------------------------------------------------------------------------------- properties
    @property
    def fixed_length(self) -> int | None:
        """The model input length T the stored preprocessing produces, or ``None`` when it keeps the
        clip's own length."""
        return None if self.preprocess is None else self.preprocess.length

    @property
    def default_window(self) -> int:
        """Default sliding-window length: the preprocessing's fixed length, else the receptive field."""
        fixed = self.fixed_length
        return fixed if fixed is not None else self.receptive_field

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    # ---------------------------------------------------------------------------------- preprocessing
    def input_channels(self, coordinates: Sequence[str], has_scores: bool) -> list[str]:
        """The channels to feed from a clip with these coordinate names (and scores or not).

        The stored preprocessing's channel names when it has them; else the coordinates, plus ``score``
        when the model takes one channel more (scores of 1 when the clip has none).
        """
        pre = self.preprocess
        if pre is not None and pre.channels is not None:
            return list(pre.channels)
        c, coords = self.config.in_channels, list(coordinates)
        if c == len(coords):
            return coords
        if c == len(coords) + 1:
            if not has_scores:
                logger.info("the clip has no scores; the model's score channel is set to 1")
            return coords + ["score"]
        raise DataError(f"the model takes {c} channels per joint; the clip has {', '.join(coords)}"
                        f"{' and scores' if has_scores else ''}")

    def input_from(self, clip: ClipInput) -> np.ndarray:
        """A clip read from a file (:func:`read_clips`) as this model's raw input: its channels assembled
        (:meth:`input_channels`) and pixel coordinates brought to the model's convention
        (:func:`fit_image_coordinates`) when the file gives the image size (Kinetics-skeleton JSON: coordinates in
        [0, 1], an image size of 1 x 1). Raw ``.npy`` arrays pass as they are.

        Shape:
            Returns (T, M, V, C).
        """
        coords = clip.meta.get("channels")
        if coords is None:
            return clip.keypoints
        channels = self.input_channels(coords, clip.scores is not None)
        x = clip.array(channels)
        image_size = clip.meta.get("image_size")
        if image_size is None and clip.meta.get("format") == "kinetics-json":
            image_size = (1.0, 1.0)  # Kinetics-skeleton coordinates are fractions of the frame
        if image_size is not None:
            x = fit_image_coordinates(x, tuple(image_size), self.preprocess, channels)
        return x

    def _pad_raw(self, clip: np.ndarray, where: str) -> np.ndarray:
        """Apply the short-window policy to raw frames (T, M, V, C) when the model input keeps T."""
        t = clip.shape[0]
        if t >= self.min_frames or self.fixed_length is not None:
            return clip
        if self.short == "error":
            raise DataError(
                f"{where}: {t} frames is shorter than the model's {self.min_frames}-frame minimum "
                f"(temporal receptive field {self.receptive_field}); use a longer window, short='loop' or "
                f"'zero', or min_frames=1 to run it as it is")
        if not self._warned_short:
            logger.info("windows shorter than %d frames are padded to it (policy %r; first: %d frames)",
                        self.min_frames, self.short, t)
            self._warned_short = True
        idx = temporal_indices(t, self.min_frames, "loop" if self.short == "loop" else "pad")
        return take_frames(clip, idx)

    def _pad_input(self, x: np.ndarray, where: str) -> np.ndarray:
        """The short-window policy on a preprocessed input (K, C, T, V, M) of fixed length below min_frames
        (only when ``min_frames`` was set above the preprocessing's fixed length)."""
        t = x.shape[2]
        if t >= self.min_frames:
            return x
        if self.short == "error":
            raise DataError(f"{where}: model input of {t} frames is shorter than min_frames={self.min_frames}")
        idx = temporal_indices(t, self.min_frames, "loop" if self.short == "loop" else "pad")
        out = x[:, :, np.maximum(idx, 0)]
        out[:, :, idx < 0] = 0
        return out

    def prepare(self, clip: np.ndarray, *, where: str = "input") -> np.ndarray:
        """Raw keypoints -> model input(s), with the stored preprocessing and the short-window policy.

        Shape:
            clip: (T, V, C) or (T, M, V, C) -> (K, C, T', V, M'); K > 1 only for multi-clip testing.
        """
        clip = self._pad_raw(as_clip(clip, where=where), where)
        v = self.layout.num_joints
        if clip.shape[2] != v:
            raise DataError(f"{where}: {clip.shape[2]} joints per person; the model's layout "
                            f"{self.layout.name!r} has {v}")
        if self._transform is None:
            x = np.ascontiguousarray(clip.transpose(3, 0, 2, 1))[None]  # (1, C, T, V, M)
        else:
            try:
                x = self._transform.clips(clip)
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
        x = self._pad_input(x, where)
        c = self.config.in_channels
        if x.shape[1] != c:
            raise DataError(f"{where}: {x.shape[1]} channels per joint after preprocessing; the model "
                            f"takes {c}")
        return x

    # -------------------------------------------------------------------------------------- inference
    @torch.inference_mode()
    def _forward(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Logits of a list of prepared inputs (K_i, C, T_i, V, M_i): the mean over each one's K clips.

        Same-shape inputs run together in batches of ``batch_size`` clips.
        """
        out: list[np.ndarray | None] = [None] * len(inputs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(inputs):
            groups.setdefault(x.shape, []).append(i)
        for shape, members in groups.items():
            k = shape[0]
            per_batch = max(1, self.batch_size // k)
            for j in range(0, len(members), per_batch):
                chunk = members[j:j + per_batch]
                batch = torch.from_numpy(np.concatenate([inputs[i] for i in chunk])).to(self.device)
                logits = self.model(batch).float().cpu().numpy().reshape(len(chunk), k, -1).mean(axis=1)
                for i, row in zip(chunk, logits, strict=True):
                    out[i] = row
        return np.stack(out)  # type: ignore[arg-type]

    def _prediction(self, logits: np.ndarray, topk: int) -> Prediction:
        z = logits.astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        k = max(1, min(int(topk), self.num_classes))
        order = np.argsort(-p, kind="stable")[:k]
        return Prediction(indices=tuple(int(i) for i in order),
                          labels=tuple(self.class_names[i] for i in order),
                          scores=tuple(float(p[i]) for i in order), probabilities=p.astype(np.float32))

    def _batch_clips(self, x: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
        if isinstance(x, np.ndarray | torch.Tensor):
            x = np.asarray(x)
            if x.ndim != 5:
                raise DataError(f"a batch must have shape (N, C, T, V, M), got {tuple(x.shape)}")
            return [np.ascontiguousarray(item.transpose(1, 3, 2, 0)) for item in x]  # (T, M, V, C)
        return [np.asarray(c) for c in x]

    def logits(self, x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Class logits (mean over multi-clip views), after the stored preprocessing.

        Args:
            x: One clip ``(T, V, C)`` / ``(T, M, V, C)``, a batch ``(N, C, T, V, M)`` of raw clips in the
                original ST-GCN's axis order, or a list of clips.

        Shape:
            Returns (N, num_classes); N = 1 for one clip.
        """
        if isinstance(x, np.ndarray | torch.Tensor) and np.ndim(x) in (3, 4):
            clips = [np.asarray(x)]
        else:
            clips = self._batch_clips(x)
        inputs = [self.prepare(c, where=f"input {i}" if len(clips) > 1 else "input") for i, c in enumerate(clips)]
        return self._forward(inputs)

    def predict(self, clip: np.ndarray, topk: int = 5) -> Prediction:
        """Top-k classes of one clip.

        Shape:
            clip: (T, V, C) or (T, M, V, C) raw keypoints in the layout's joint order.
        """
        if np.ndim(clip) not in (3, 4):
            raise DataError(f"predict takes one clip (T, V, C) or (T, M, V, C), got shape {np.shape(clip)}; "
                            f"use predict_batch for (N, C, T, V, M)")
        return self._prediction(self.logits(clip)[0], topk)

    def predict_batch(self, x: np.ndarray | Sequence[np.ndarray], topk: int = 5) -> list[Prediction]:
        """Top-k classes of each clip of a batch.

        Shape:
            x: (N, C, T, V, M), or a list of (T, V, C) / (T, M, V, C) clips.
        """
        return [self._prediction(row, topk) for row in self.logits(self._batch_clips(x))]

    def sliding_window(self, clip: np.ndarray, window: int | None = None, stride: int | None = None, *,
                       topk: int = 5, include_tail: bool = True) -> list[WindowPrediction]:
        """Predict every window of a long sequence (see :func:`window_bounds`).

        Args:
            clip: The whole sequence.
            window: Frames per window; ``None``: :attr:`default_window`.
            stride: Frames between window starts; ``None``: ``window // 2``.
            topk: Classes kept per window.
            include_tail: Add a last window ending at the last frame (as :meth:`PredictionStream.flush`).

        Shape:
            clip: (T, V, C) or (T, M, V, C).
        """
        clip = as_clip(clip)
        window, stride = self.resolve_window(window, stride)
        bounds = window_bounds(clip.shape[0], window, stride, include_tail=include_tail)
        out: list[WindowPrediction] = []
        # prepare lazily in chunks so that memory stays bounded on long sequences
        chunk = max(1, self.batch_size)
        for j in range(0, len(bounds), chunk):
            part = bounds[j:j + chunk]
            inputs = [self.prepare(clip[s:e], where=f"frames {s}-{e}") for s, e in part]
            for (s, e), row in zip(part, self._forward(inputs), strict=True):
                out.append(WindowPrediction(s, e, self._prediction(row, topk)))
        return out

    def stream(self, window: int | None = None, stride: int | None = None, *, topk: int = 5,
               num_persons: int | None = None) -> PredictionStream:
        """A :class:`PredictionStream` over this predictor (``window``/``stride`` as :meth:`sliding_window`)."""
        window, stride = self.resolve_window(window, stride)
        return PredictionStream(self, window, stride, topk=topk, num_persons=num_persons)

    def resolve_window(self, window: int | None, stride: int | None) -> tuple[int, int]:
        """``(window, stride)`` with the defaults filled in: :attr:`default_window` and ``window // 2``."""
        window = self.default_window if window is None else window
        stride = max(1, window // 2) if stride is None else stride
        for name, value in (("window", window), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        return window, stride

    def _predict_window(self, frames: np.ndarray, start: int, end: int, topk: int) -> WindowPrediction:
        x = self.prepare(frames, where=f"frames {start}-{end}")
        return WindowPrediction(start, end, self._prediction(self._forward([x])[0], topk))


class PredictionStream:
    """Frames in one at a time; a prediction every ``stride`` frames over the last ``window`` frames.

    The stream holds at most ``window`` frames (a ring buffer) and each emission runs the model once on one
    window, so memory and per-frame latency are bounded by the window, whatever the stream's length.
    Emissions happen after frame ``window``, ``window + stride``, ... and cover the same frames as
    :meth:`Predictor.sliding_window`; :meth:`flush` at the end of a stream emits the tail window
    (``include_tail=True``) or, for a stream shorter than ``window``, one window over all of it.

    Args:
        predictor: The predictor to run.
        window: Frames per window.
        stride: Frames between emissions.
        topk: Classes kept per emission.
        num_persons: Persons per frame M; frames with fewer are padded with absent (all-zero) persons,
            frames with more keep the first M. ``None``: the stored preprocessing's ``max_persons``, else
            the first frame's M.

    Shape:
        frame: (V, C) or (M, V, C).
    """

    def __init__(self, predictor: Predictor, window: int, stride: int, *, topk: int = 5,
                 num_persons: int | None = None) -> None:
        self.predictor = predictor
        self.window = window
        self.stride = stride
        self.topk = topk
        pre = predictor.preprocess
        self.num_persons = num_persons if num_persons is not None else (pre.max_persons if pre else None)
        self._buffer: deque[np.ndarray] = deque(maxlen=window)
        self.frames_seen = 0
        self._last_end = 0
        self.latest: WindowPrediction | None = None

    def reset(self) -> None:
        """Forget all frames (start a new sequence)."""
        self._buffer.clear()
        self.frames_seen = 0
        self._last_end = 0
        self.latest = None

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        f = np.asarray(frame, dtype=np.float32)
        if f.ndim == 2:
            f = f[None]
        v = self.predictor.layout.num_joints
        if f.ndim != 3 or f.shape[1] != v:
            raise DataError(f"frame {self.frames_seen}: shape {tuple(np.shape(frame))}; expected (V, C) or "
                            f"(M, V, C) with V={v}")
        if not np.isfinite(f).all():
            raise DataError(f"frame {self.frames_seen}: keypoints contain NaN or inf")
        if self.num_persons is None:
            self.num_persons = f.shape[0]
        m = self.num_persons
        if f.shape[0] != m:
            padded = np.zeros((m, v, f.shape[2]), dtype=np.float32)
            padded[:min(m, f.shape[0])] = f[:m]
            f = padded
        if self._buffer and f.shape != self._buffer[-1].shape:
            raise DataError(f"frame {self.frames_seen}: {f.shape[2]} channels; earlier frames have "
                            f"{self._buffer[-1].shape[2]}")
        return f

    def push(self, frame: np.ndarray) -> WindowPrediction | None:
        """Add one frame; returns the new window prediction when one is due, else ``None``."""
        self._buffer.append(self._frame(frame))
        self.frames_seen += 1
        t = self.frames_seen
        if t >= self.window and (t - self.window) % self.stride == 0:
            return self._emit()
        return None

    def flush(self) -> WindowPrediction | None:
        """End of stream: predict the frames not yet covered by an emission (if any)."""
        if self.frames_seen == 0 or self._last_end == self.frames_seen:
            return None
        return self._emit()

    def _emit(self) -> WindowPrediction:
        end = self.frames_seen
        start = end - len(self._buffer)
        result = self.predictor._predict_window(np.stack(self._buffer), start, end, self.topk)
        self._last_end = end
        self.latest = result
        return result
