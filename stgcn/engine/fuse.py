"""Late fusion of several streams' per-clip scores (``scores.npz`` from ``stgcn eval``).

The fused score of a clip is ``sum_i w_i * s_i``, where ``s_i`` is stream i's logits (``mode="logits"``, as
2s-AGCN and CTR-GCN ensemble their streams) or its softmax probabilities (``mode="softmax"``, insensitive
to the streams' logit scales). The files must describe the same clips: same clip names (in any order; the
first file's order is kept), same labels and same class names; otherwise a one-line
:class:`~stgcn.errors.DataError` names the file that disagrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stgcn.engine.evaluate import EvalResult, Scores, compute_metrics, load_scores
from stgcn.errors import ConfigError, DataError

__all__ = ["fuse_scores", "fuse_files", "FUSE_MODES"]

FUSE_MODES = ("logits", "softmax")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fuse_scores(streams: Sequence[Scores], weights: Sequence[float] | None = None, *, mode: str = "logits",
                sources: Sequence[str] | None = None) -> EvalResult:
    """Weighted late fusion of streams that score the same clips.

    Args:
        streams: Two or more score sets (one may also pass a single one: its own metrics).
        weights: One weight per stream (default: all 1).
        mode: ``logits`` or ``softmax``.
        sources: Names of the streams for error messages (file paths).

    Raises:
        ConfigError: bad weights or mode.
        DataError: the streams disagree on clip names, labels or class names.

    Shape:
        each stream's scores: (N, C) -> fused scores (N, C).
    """
    if mode not in FUSE_MODES:
        raise ConfigError(f"fusion mode {mode!r} is not valid; valid modes are {', '.join(FUSE_MODES)}")
    if not streams:
        raise ConfigError("nothing to fuse: give at least one scores file")
    names = list(sources) if sources is not None else [f"stream {i + 1}" for i in range(len(streams))]
    w = [1.0] * len(streams) if weights is None else [float(x) for x in weights]
    if len(w) != len(streams):
        raise ConfigError(f"{len(w)} weights for {len(streams)} scores files; give one weight per file")
    if not all(np.isfinite(x) and x >= 0 for x in w) or sum(w) == 0:
        raise ConfigError(f"weights must be finite, >= 0 and not all 0, got {w}")
    ref, ref_name = streams[0], names[0]
    order_ref = {n: i for i, n in enumerate(ref.names)}
    if len(order_ref) != len(ref.names):
        raise DataError(f"{ref_name}: clip names are not unique")
    fused = np.zeros(ref.scores.shape, dtype=np.float64)
    for s, name, weight in zip(streams, names, w, strict=True):
        if list(s.class_names) != list(ref.class_names):
            raise DataError(f"{name}: class names differ from {ref_name}'s ({len(s.class_names)} vs "
                            f"{len(ref.class_names)} classes)")
        if len(s.names) != len(ref.names) or set(s.names) != set(order_ref):
            extra = sorted(set(s.names) - set(order_ref))[:3]
            missing = sorted(set(order_ref) - set(s.names))[:3]
            raise DataError(f"{name}: scores {len(s.names)} clips, {ref_name} {len(ref.names)}; the clips differ "
                            f"(e.g. only in {name}: {extra}, only in {ref_name}: {missing})")
        pos = np.array([order_ref[n] for n in s.names])
        labels = np.empty_like(s.labels)
        labels[pos] = s.labels
        if not np.array_equal(labels, ref.labels):
            bad = ref.names[int(np.flatnonzero(labels != ref.labels)[0])]
            raise DataError(f"{name}: labels differ from {ref_name}'s (first at clip {bad!r})")
        scores = np.empty(s.scores.shape, dtype=np.float64)
        scores[pos] = s.scores
        fused += weight * (_softmax(scores) if mode == "softmax" else scores)
    clips = sorted({s.clips for s in streams})
    result = Scores(fused.astype(np.float32), ref.labels.copy(), list(ref.names), list(ref.class_names),
                    clips[0] if len(clips) == 1 else 0, ref.split)
    metrics, cm = compute_metrics(result.scores, result.labels, result.class_names)
    return EvalResult(result, metrics, cm)


def fuse_files(paths: Sequence[str | Path], weights: Sequence[float] | None = None, *,
               mode: str = "logits") -> tuple[EvalResult, list[EvalResult]]:
    """Load ``scores.npz`` files (or run directories holding one) and fuse them.

    Returns:
        ``(fused, per_stream)``: the fused result and each stream's own result.
    """
    files = []
    for p in paths:
        p = Path(p)
        files.append(p / "scores.npz" if p.is_dir() else p)
    streams = [load_scores(p) for p in files]
    per_stream = [fuse_scores([s], sources=[str(p)]) for s, p in zip(streams, files, strict=True)]
    return fuse_scores(streams, weights, mode=mode, sources=[str(p) for p in files]), per_stream
