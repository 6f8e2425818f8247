"""Prediction with a trained model: whole clips, sliding windows over long sequences, and live streams.

A :class:`Predictor` is built from a checkpoint and applies the preprocessing stored in it (the
``PreprocessConfig`` the model was trained with), so raw keypoints go in and class names with scores come out.

A converted MMAction2/PYSKL checkpoint stores its upstream test pipeline (:class:`MMPipelineConfig`) instead:
raw keypoints (2-D: pixels ``x, y, score``; 3-D: ``x, y, z``) go through :func:`apply_mm_pipeline` (its
normalisation, features, ``num_clips`` sampled clips of ``clip_len`` frames), the model runs on every clip and
the clips are combined as upstream ``average_clips`` does: with ``'prob'`` the softmax of each clip, averaged,
so the reported scores are upstream's scores. (:meth:`Predictor.logits` then returns the log of those averaged
probabilities, whose softmax they are.) Sliding windows and streams run the whole pipeline on each window, as
on a clip of its own.

Three ways in:

* :meth:`Predictor.predict`: one clip ``(T, V, C)`` or ``(T, M, V, C)`` -> the top-k classes.
  :meth:`Predictor.predict_batch` takes ``(N, C, T, V, M)`` (the original ST-GCN's data layout) or a list of
  clips. Multi-clip testing (``preprocess.num_clips > 1``) combines the K clips as ``preprocess.average_clips`` says.
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
``min(receptive field, L)`` and, under ``loop`` and ``zero``, the stored preprocessing (its ``resize``
mode) alone decides how a short clip reaches L frames; ``error`` still refuses a clip shorter than
``min_frames``, as it promises. ``min_frames=1`` runs every window as it is. Padding is applied to the raw frames,
before the stored preprocessing, so motion features and centring see a consistent sequence; it is logged
once per predictor.

The pieces live in their own modules and are re-exported here: :mod:`stgcn.inference.clips` (reading input
files), :mod:`stgcn.inference.windows` (window bounds, frame labels, receptive field),
:mod:`stgcn.inference.stream` (:class:`PredictionStream`), :mod:`stgcn.inference.results` (:class:`Prediction`)
and :func:`stgcn.data.channels.fit_image_coordinates`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stgcn.data.channels import fit_image_coordinates, model_input_channels
from stgcn.data.mm_pipeline import MMPipelineConfig, apply_mm_pipeline, clip_annotation, combine_clip_logits
from stgcn.data.transforms import PreprocessConfig, build_transform, take_frames, temporal_indices
from stgcn.engine.checkpoint import Checkpoint, load_checkpoint, preprocess_from_dict
from stgcn.errors import ConfigError, DataError
from stgcn.graph.identity import match_joints, remap_joints
from stgcn.graph.layouts import Layout, get_layout
from stgcn.inference.clips import ClipInput, as_clip, read_clips
from stgcn.inference.convention import check_coordinates, pixels_to_model
from stgcn.inference.results import Prediction, WindowPrediction
from stgcn.inference.stream import PredictionStream
from stgcn.inference.windows import frame_labels, temporal_receptive_field, window_bounds
from stgcn.models.config import STGCNConfig
from stgcn.models.stgcn import STGCN
from stgcn.utils.checks import check_int
from stgcn.utils.device import resolve_device
from stgcn.utils.limits import MAX_FRAMES

# re-exported: the names of this module before it was split (clips, results, stream, windows, channels)
__all__ = [
    "Predictor", "Prediction", "WindowPrediction", "PredictionStream", "SHORT_POLICIES",
    "temporal_receptive_field", "frame_labels", "window_bounds", "as_clip", "read_clips", "ClipInput",
    "fit_image_coordinates",
]

logger = logging.getLogger(__name__)

SHORT_POLICIES = ("loop", "zero", "error")
# Precisions of the optimized model (optimize_for_inference's dtype): "bf16" is the opt-in lower precision,
# fast only where the hardware has bfloat16 arithmetic (README "Performance").
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


class Predictor:
    """A model with its class names and preprocessing, ready to classify raw keypoints.

    Args:
        model: The network (put in eval mode here).
        class_names: Names in label order; ``None`` names classes ``class_<i>``.
        preprocess: The checkpoint's ``PreprocessConfig`` or ``MMPipelineConfig`` (or its stored dict); ``None``
            feeds inputs to the model as given (e.g. a converted original checkpoint, whose openpose-18 inputs
            are ``(x - 0.5, y - 0.5, score)`` already).
        device: Where the model runs.
        min_frames: Fewest frames a model input may have before ``short`` applies; ``None``: see the
            module docstring.
        short: ``loop``, ``zero`` or ``error`` (see the module docstring).
        batch_size: Windows per forward pass in :meth:`sliding_window` and :meth:`predict_batch`.
        optimize: Run the BatchNorm-folded inference copy (:func:`stgcn.inference.optimize.optimize_for_inference`;
            the same logits within float rounding, faster); ``False`` runs ``model`` itself.
        precision: ``"fp32"`` (default) or ``"bf16"``: the optimized copy in bfloat16 (an opt-in: logits differ
            by about 1e-2, predictions rarely; faster only on CPUs with native bfloat16 such as AVX512-BF16 or
            AMX, and on GPUs, slower on other CPUs). Needs ``optimize``.
    """

    def __init__(self, model: STGCN, *, class_names: Sequence[str] | None = None,
                 preprocess: PreprocessConfig | MMPipelineConfig | dict[str, Any] | None = None,
                 device: str | torch.device = "cpu", min_frames: int | None = None, short: str = "loop",
                 batch_size: int = 32, optimize: bool = True, precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; valid precisions are {', '.join(PRECISIONS)}")
        if precision != "fp32" and not (optimize and isinstance(model, STGCN)):
            raise ConfigError(f"precision {precision} runs the optimized model: it needs optimize=True and an STGCN")
        self.config: STGCNConfig = model.config
        self.device = resolve_device(device)
        self.precision = precision
        model = model.to(self.device).eval()
        if optimize and isinstance(model, STGCN):
            from stgcn.inference.optimize import optimize_for_inference

            model = optimize_for_inference(model, dtype=PRECISIONS[precision])
        self.model = model
        self.layout: Layout = get_layout(self.config.graph.layout)
        n = self.config.num_classes
        if class_names is not None and len(class_names) != n:
            raise ConfigError(f"{len(class_names)} class names for a model with {n} classes")
        self.class_names = [str(c) for c in class_names] if class_names is not None else [
            f"class_{i}" for i in range(n)]
        if preprocess is not None:
            preprocess = preprocess_from_dict(preprocess)
        self.preprocess: PreprocessConfig | MMPipelineConfig | None = preprocess
        self._mm = preprocess if isinstance(preprocess, MMPipelineConfig) else None
        self._transform = None if preprocess is None or self._mm is not None else build_transform(
            preprocess, train=False, layout=self.layout)
        if short not in SHORT_POLICIES:
            raise ConfigError(f"unknown short-window policy {short!r}; valid policies are "
                              f"{', '.join(SHORT_POLICIES)}")
        self.short = short
        self.receptive_field = temporal_receptive_field(self.config)
        fixed = self.fixed_length
        if min_frames is None:
            min_frames = self.receptive_field if fixed is None else min(self.receptive_field, fixed)
        self.min_frames = check_int(min_frames, "min_frames", maximum=MAX_FRAMES)
        self.batch_size = check_int(batch_size, "batch_size")
        self._warned_short = False

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | Checkpoint, *, device: str | torch.device = "cpu",
                        min_frames: int | None = None, short: str = "loop", batch_size: int = 32,
                        optimize: bool = True, precision: str = "fp32") -> Predictor:
        """Build a predictor from a checkpoint file (or a loaded :class:`~stgcn.engine.checkpoint.Checkpoint`)."""
        ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        return cls(ck.model, class_names=ck.class_names, preprocess=ck.preprocess, device=device,
                   min_frames=min_frames, short=short, batch_size=batch_size, optimize=optimize,
                   precision=precision)

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
        stored = None if self.preprocess is None else self.preprocess.channels
        channels = model_input_channels(self.config.in_channels, coordinates, has_scores, stored)
        if stored is None and not has_scores and len(channels) > len(coordinates):
            logger.info("the clip has no scores; the model's score channel is set to 1")
        return channels

    def input_from(self, clip: ClipInput, *, remap: str | None = None) -> np.ndarray:
        """A clip read from a file (:func:`read_clips`) as this model's raw input: its channels assembled
        (:meth:`input_channels`) and pixel coordinates brought to the model's convention
        (:func:`fit_image_coordinates`) when the file gives the image size (Kinetics-skeleton JSON: coordinates in
        [0, 1], an image size of 1 x 1). Raw ``.npy`` arrays pass as they are.

        A clip whose file names a layout must have the model's joints in its order
        (:func:`stgcn.graph.identity.match_joints`; ``remap="by-name"`` reorders the same joints).

        Shape:
            Returns (T, M, V, C).
        """
        index = None if clip.meta.get("layout") is None else match_joints(
            clip.meta["layout"], self.layout, data_what=clip.name, target_what="the model", remap=remap)
        coords = clip.meta.get("channels")
        if coords is None:
            return remap_joints(clip.keypoints, index)
        channels = self.input_channels(coords, clip.scores is not None)
        x = clip.array(channels)
        image_size = clip.meta.get("image_size")
        if image_size is None and clip.meta.get("format") == "kinetics-json":
            image_size = (1.0, 1.0)  # Kinetics-skeleton coordinates are fractions of the frame
        if image_size is not None:
            x = fit_image_coordinates(x, tuple(image_size), self.preprocess, channels)
        return remap_joints(x, index)

    def _pad_raw(self, clip: np.ndarray, where: str) -> np.ndarray:
        """Apply the short-window policy to raw frames (T, M, V, C) when the model input keeps T."""
        t = clip.shape[0]
        # with a fixed input length L, a model input below min_frames > L is _pad_input's business
        need = self.min_frames if self.fixed_length is None else min(self.min_frames, self.fixed_length)
        if t >= need:
            return clip
        if self.short == "error":  # also with a fixed input length: 'error' is a promise to the caller
            raise DataError(
                f"{where}: {t} frames is shorter than the model's {need}-frame minimum "
                f"(temporal receptive field {self.receptive_field}); use a longer window, short='loop' or "
                f"'zero', or min_frames=1 to run it as it is")
        if self.fixed_length is not None:  # the stored preprocessing brings the clip to its length
            return clip
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
        check_coordinates(clip, self.preprocess, where=where)
        v = self.layout.num_joints
        if clip.shape[2] != v:
            raise DataError(f"{where}: {clip.shape[2]} joints per person; the model's layout "
                            f"{self.layout.name!r} has {v}")
        if self._mm is not None:
            try:
                x = apply_mm_pipeline(clip_annotation(clip, self._mm), self._mm)  # (K, M, T, V, C)
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
            x = np.ascontiguousarray(x.transpose(0, 4, 2, 3, 1))
        elif self._transform is None:
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
                logits = self._combine(self.model(batch).float().cpu().numpy().reshape(len(chunk), k, -1))
                for i, row in zip(chunk, logits, strict=True):
                    out[i] = row
        return np.stack(out)  # type: ignore[arg-type]

    def _combine(self, logits: np.ndarray) -> np.ndarray:
        """Per-input logits of its K clips (N, K, classes) -> (N, classes): the mean, or with
        ``average_clips='prob'`` (an MM pipeline or a PreprocessConfig) the log of the mean of the clips' softmax
        (whose softmax is that mean), by :func:`~stgcn.data.mm_pipeline.combine_clip_logits`."""
        if getattr(self.preprocess, "average_clips", "score") != "prob":
            return logits.mean(axis=1)
        return combine_clip_logits(torch.from_numpy(logits).double(), "prob").numpy()

    def _prediction(self, logits: np.ndarray, topk: int) -> Prediction:
        z = logits.astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        k = min(check_int(topk, "topk"), self.num_classes)  # more than there are: all of them
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

    def predict(self, clip: np.ndarray, topk: int = 5, *, image_size: tuple[float, float] | None = None) -> Prediction:
        """Top-k classes of one clip.

        Args:
            clip: Raw keypoints in the layout's joint order.
            topk: Classes kept.
            image_size: ``(W, H)`` when ``clip`` is in pixels: brought to the checkpoint's convention first
                (:func:`stgcn.inference.convention.pixels_to_model`). Without it, pixels given to a model that
                expects normalised coordinates raise :class:`DataError`.

        Shape:
            clip: (T, V, C) or (T, M, V, C).
        """
        if np.ndim(clip) not in (3, 4):
            raise DataError(f"predict takes one clip (T, V, C) or (T, M, V, C), got shape {np.shape(clip)}; "
                            f"use predict_batch for (N, C, T, V, M)")
        if image_size is not None:
            clip = pixels_to_model(clip, image_size, self.preprocess)
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
               num_persons: int | None = None, image_size: tuple[float, float] | None = None) -> PredictionStream:
        """A :class:`PredictionStream` over this predictor (``window``/``stride`` as :meth:`sliding_window`;
        ``image_size``: frames in pixels, as :meth:`predict`)."""
        window, stride = self.resolve_window(window, stride)
        return PredictionStream(self, window, stride, topk=topk, num_persons=num_persons, image_size=image_size)

    def resolve_window(self, window: int | None, stride: int | None) -> tuple[int, int]:
        """``(window, stride)`` with the defaults filled in: :attr:`default_window` and ``window // 2``."""
        window = self.default_window if window is None else window
        stride = max(1, window // 2) if stride is None else stride
        return check_int(window, "window", maximum=MAX_FRAMES), check_int(stride, "stride", maximum=MAX_FRAMES)

    def _predict_window(self, frames: np.ndarray, start: int, end: int, topk: int) -> WindowPrediction:
        x = self.prepare(frames, where=f"frames {start}-{end}")
        return WindowPrediction(start, end, self._prediction(self._forward([x])[0], topk))
