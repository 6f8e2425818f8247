"""Evaluation: scores of a model on a store split, metrics, confusion matrix, and per-clip score files.

:func:`predict_scores` runs a model over a loader (K-clip inputs are combined over the K clips: mean logits, or with
``preprocess.average_clips='prob'`` the log of the mean softmax, as MMAction2 / PYSKL);
:func:`compute_metrics` turns scores into top-1, top-5, mean class accuracy and per-class accuracy;
:func:`evaluate` does both for a checkpoint and a store; :func:`save_evaluation` writes ``metrics.json``,
``confusion.csv`` (+ ``confusion.png`` with matplotlib), ``per_class.csv`` and ``scores.npz``.

``scores.npz`` (read with :func:`load_scores`, used by :mod:`stgcn.engine.fuse`) holds ``scores`` (N, C) float32
logits, ``labels`` (N,) int64, ``names`` (N,) clip names, ``class_names`` (C,), ``clips`` (K, the test clips
averaged per sample) and ``split``. It loads with ``np.load(allow_pickle=False)``.

A converted MMAction2/PYSKL checkpoint (its stored preprocessing an :class:`~stgcn.data.mm_pipeline.MMPipelineConfig`)
is evaluated through its upstream test pipeline, one sample at a time on the store's raw clips; with
``average_clips='prob'`` its ``scores`` are the log of the clips' averaged softmax (so their softmax, the
reported loss and the ranking are upstream's).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stgcn.errors import DataError
from stgcn.utils.atomic import atomic_open
from stgcn.utils.checks import check_int
from stgcn.utils.device import resolve_device
from stgcn.utils.files import read_file_bytes
from stgcn.utils.limits import MAX_CLIPS
from stgcn.utils.safe_text import csv_safe

__all__ = ["EvalResult", "Scores", "predict_scores", "compute_metrics", "confusion_matrix", "evaluate",
           "save_evaluation", "save_scores", "load_scores", "format_metrics"]

log = logging.getLogger(__name__)


@dataclass
class Scores:
    """Per-clip scores of one split (what ``scores.npz`` holds).

    Shape:
        scores: (N, C) float32; labels: (N,) int64; names: N clip names.
    """

    scores: np.ndarray
    labels: np.ndarray
    names: list[str]
    class_names: list[str]
    clips: int = 1
    split: str = ""


@dataclass
class EvalResult:
    """Scores plus their metrics (see :func:`compute_metrics`) and confusion matrix (rows: true class)."""

    scores: Scores
    metrics: dict[str, Any]
    confusion: np.ndarray


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` with ``dtype``, or a no-op context for ``None``."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def predict_scores(
    model: nn.Module,
    batches: Any,
    *,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    average_clips: str = "score",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of every sample: its logits, combined over the K clips of K-clip inputs.

    Args:
        model: Returns logits (N, num_classes); put in eval mode here.
        batches: Iterable of ``(x, labels, indices)`` (a loader over a :class:`~stgcn.dataset.SkeletonDataset`).
        device: Where to run.
        amp_dtype: Autocast dtype (``torch.bfloat16``/``torch.float16``) or ``None``.
        average_clips: ``score`` (mean of the K logits) or ``prob`` (log of the mean of the K softmaxes); see
            :func:`stgcn.data.mm_pipeline.combine_clip_logits`.

    Returns:
        ``(scores, labels, indices)``: float32 (N, num_classes), int64 (N,), int64 (N,) store indices.

    Shape:
        x: (B, C, T, V, M) or (B, K, C, T, V, M).
    """
    from stgcn.data.mm_pipeline import combine_clip_logits

    device = torch.device(device)
    model.eval()
    scores, labels, indices = [], [], []
    for x, y, idx in batches:
        x = x.to(device, non_blocking=True)
        k = 1
        if x.dim() == 6:
            b, k = x.shape[:2]
            x = x.reshape(b * k, *x.shape[2:])
        with autocast_context(device, amp_dtype):
            out = model(x)
        out = combine_clip_logits(out.float().view(-1, k, out.shape[-1]), average_clips)
        scores.append(out.cpu().numpy())
        labels.append(np.asarray(y, dtype=np.int64))
        indices.append(np.asarray(idx, dtype=np.int64))
    if not scores:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(scores), np.concatenate(labels), np.concatenate(indices)


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts: ``cm[true, predicted]``. Shape: predictions, labels (N,) -> (num_classes, num_classes) int64."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return cm


def _check_finite(scores: np.ndarray, names: list[str], store: Any) -> None:
    """Refuse NaN/inf scores (they would count as class 0: chance accuracy, silently)."""
    bad = ~np.isfinite(np.asarray(scores)).all(axis=-1)
    if bad.any():
        first = names[int(np.argmax(bad))]
        raise DataError(f"{getattr(store, 'path', store)}: the model's scores are NaN or infinite for {int(bad.sum())} "
                        f"of {len(bad)} clips (first: {first}); the store's frames are not all finite")


def compute_metrics(scores: np.ndarray, labels: np.ndarray, class_names: list[str] | None = None,
                    ) -> tuple[dict[str, Any], np.ndarray]:
    """Accuracy metrics of scores against labels.

    Returns:
        ``(metrics, confusion)``. ``metrics``: ``top1``, ``top5`` (top-k with k = min(5, C)), ``mean_class``
        (mean of the per-class accuracies of the classes present), ``per_class`` ({class name: accuracy, or
        ``None`` for a class with no sample}), ``loss`` (cross-entropy of the scores as logits), ``num_samples``;
        accuracies are fractions in [0, 1].

    Shape:
        scores: (N, C); labels: (N,).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2:
        raise DataError(f"scores must have shape (N, C), got {scores.shape}")
    n, c = scores.shape
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise DataError(f"{len(names)} class names for scores of {c} classes")
    if n == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mean_class": float("nan"), "loss": float("nan"),
                "per_class": dict.fromkeys(names), "num_samples": 0}, np.zeros((c, c), np.int64)
    if labels.shape != (n,) or labels.min() < 0 or labels.max() >= c:
        raise DataError(f"labels must be {n} class indices in [0, {c})")
    k = min(5, c)
    topk = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    pred = scores.argmax(axis=1)
    cm = confusion_matrix(pred, labels, c)
    support = cm.sum(axis=1)
    per_class = [float(cm[i, i] / support[i]) if support[i] else None for i in range(c)]
    present = [a for a in per_class if a is not None]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    metrics = {
        "top1": float((pred == labels).mean()),
        "top5": float((topk == labels[:, None]).any(axis=1).mean()),
        "mean_class": float(np.mean(present)),
        "loss": float(-log_prob[np.arange(n), labels].mean()),
        "per_class": dict(zip(names, per_class, strict=True)),
        "num_samples": int(n),
    }
    return metrics, cm


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line: ``top-1 93.10%  top-5 99.78%  mean class 92.95%  (464 clips)``."""
    return (f"top-1 {100 * metrics['top1']:.2f}%  top-5 {100 * metrics['top5']:.2f}%  "
            f"mean class {100 * metrics['mean_class']:.2f}%  ({metrics['num_samples']} clips)")


def evaluate(
    checkpoint: str | Path | Any,
    store: str | Path | Any,
    *,
    split: str = "test",
    clips: int | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    amp_dtype: torch.dtype | None = None,
) -> EvalResult:
    """Evaluate a checkpoint on a split of a store, preprocessing as the checkpoint says.

    Args:
        checkpoint: A checkpoint path or a loaded :class:`~stgcn.checkpoint.Checkpoint`.
        store: A store path or an opened :class:`~stgcn.store.SkeletonStore`.
        split: Split name.
        clips: K-clip testing: average the logits of K temporal clips per sample (default: the
            checkpoint's ``num_clips``).
        batch_size: Samples per batch (each holds K clips).
        device: Where to run: a :class:`torch.device` or ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        num_workers: DataLoader workers.
        amp_dtype: Autocast dtype or ``None``.

    Raises:
        DataError: the store does not fit the model (joints, channels, classes).
        ConfigError: an invalid ``clips`` or ``device``.
    """
    from stgcn.data.dataset import SkeletonDataset, build_loader
    from stgcn.data.store import SkeletonStore, open_store
    from stgcn.data.transforms import PreprocessConfig, build_transform
    from stgcn.engine.checkpoint import Checkpoint, load_checkpoint
    from stgcn.engine.compat import check_store_fits

    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    st = store if isinstance(store, SkeletonStore) else open_store(store)
    cfg = ckpt.config
    check_store_fits(cfg, st)
    preprocess = ckpt.preprocess
    from stgcn.data.mm_pipeline import MMPipelineConfig

    if isinstance(preprocess, MMPipelineConfig):
        if clips is not None:
            clips = check_int(clips, "clips", minimum=1, maximum=MAX_CLIPS)
            preprocess = dataclasses.replace(preprocess, num_clips=clips)
        device = resolve_device(device, name="--device")
        indices = np.asarray(st.split(split), dtype=np.int64)
        scores = _mm_scores(ckpt.model.to(device), st, indices, preprocess, device, amp_dtype)
        labels = np.asarray([st.label(int(i)) for i in indices], dtype=np.int64)
        class_names = ckpt.class_names or [str(i) for i in range(cfg.num_classes)]
        names = [st.name(int(i)) for i in indices]
        _check_finite(scores, names, store)
        metrics, cm = compute_metrics(scores, labels, class_names)
        return EvalResult(Scores(scores, labels, names, list(class_names), preprocess.num_clips, split), metrics, cm)
    if preprocess is None:
        log.warning("the checkpoint stores no preprocessing; using the defaults (%s)", PreprocessConfig())
        preprocess = PreprocessConfig()
    if clips is not None:
        check_int(clips, "clips", minimum=1, maximum=MAX_CLIPS)
        preprocess = dataclasses.replace(preprocess, num_clips=int(clips))
    class_names = ckpt.class_names or [str(i) for i in range(cfg.num_classes)]
    if ckpt.class_names is not None and list(st.class_names) != list(ckpt.class_names[:len(st.class_names)]):
        log.warning("the store's class names differ from the checkpoint's; labels are compared by index")
    transform = build_transform(preprocess, train=False, layout=st.layout)
    dataset = SkeletonDataset(st, split, transform)
    device = resolve_device(device, name="--device")
    if len(dataset):
        check_store_fits(cfg, st, int(transform(st.clip(int(dataset.indices[0]))).shape[-4]))
    loader = build_loader(dataset, batch_size, shuffle=False, num_workers=num_workers, persistent_workers=False,
                          pin_memory=device.type == "cuda") if len(dataset) else []
    model = ckpt.model.to(device)
    scores, labels, indices = predict_scores(model, loader, device=device, amp_dtype=amp_dtype,
                                             average_clips=preprocess.average_clips)
    names = [st.name(int(i)) for i in indices]
    _check_finite(scores, names, store)
    metrics, cm = compute_metrics(scores, labels, class_names)
    result = Scores(scores.astype(np.float32), labels, names, list(class_names), preprocess.num_clips, split)
    return EvalResult(result, metrics, cm)


def _mm_scores(model: nn.Module, st: Any, indices: np.ndarray, pipeline: Any, device: torch.device,
               amp_dtype: torch.dtype | None) -> np.ndarray:
    """Scores of store clips through an MMAction2/PYSKL test pipeline (see the module docstring).

    Shape:
        Returns (len(indices), num_classes) float32.
    """
    from stgcn.data.channels import SCORE_CHANNELS
    from stgcn.data.mm_pipeline import apply_mm_pipeline, clip_annotation, combine_clip_logits, to_stgcn_input

    names = [c.lower() for c in st.channels]
    pick = []
    for want in pipeline.channels:
        found = [i for i, n in enumerate(names) if n == want or (want == "score" and n in SCORE_CHANNELS)]
        if not found:
            raise DataError(f"{st.path}: the checkpoint's test pipeline takes channels {', '.join(pipeline.channels)}"
                            f"; the store has {', '.join(st.channels)}")
        pick.append(found[0])
    model.eval()
    out = []
    for i in indices:
        clip = st.clip(int(i))[..., pick]
        try:
            x = to_stgcn_input(apply_mm_pipeline(clip_annotation(clip, pipeline), pipeline)).to(device)
        except DataError as e:
            raise DataError(f"{st.path}: clip {st.name(int(i))}: {e}") from None
        with torch.no_grad(), autocast_context(device, amp_dtype):
            logits = model(x).double().cpu()
        out.append(combine_clip_logits(logits[None], pipeline.average_clips)[0])
    return torch.stack(out).float().numpy() if out else np.zeros((0, model.config.num_classes), np.float32)


# --------------------------------------------------------------------------------------------- files
def _atomic_write(path: Path, write: Any, mode: str = "w") -> None:
    with atomic_open(path, mode) as f:
        write(f)


def save_scores(path: str | Path, scores: Scores) -> None:
    """Write ``scores.npz`` atomically (see the module docstring)."""
    def write(f: Any) -> None:
        np.savez(f, scores=np.asarray(scores.scores, np.float32), labels=np.asarray(scores.labels, np.int64),
                 names=np.asarray(scores.names, dtype=str), class_names=np.asarray(scores.class_names, dtype=str),
                 clips=np.int64(scores.clips), split=np.asarray(scores.split, dtype=str))

    _atomic_write(Path(path), write, "wb")


def load_scores(path: str | Path) -> Scores:
    """Read a ``scores.npz`` written by :func:`save_scores`.

    Raises:
        DataError: missing, unreadable or inconsistent file (one line naming it).
    """
    path = Path(path)
    data = read_file_bytes(path, error=DataError, what="scores file")  # a regular file: a FIFO never blocks
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            need = ("scores", "labels", "names", "class_names")
            missing = [k for k in need if k not in z.files]
            if missing:
                raise DataError(f"{path}: not an stgcn scores file (missing {', '.join(missing)}); "
                                f"create one with `stgcn eval`")
            s = Scores(z["scores"].astype(np.float32), z["labels"].astype(np.int64),
                       [str(n) for n in z["names"]], [str(c) for c in z["class_names"]],
                       int(z["clips"]) if "clips" in z.files else 1,
                       str(z["split"]) if "split" in z.files else "")
    except OSError as e:
        raise DataError(f"{path}: cannot read scores ({e.strerror or e})") from None
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:  # truncated or damaged
        raise DataError(f"{path}: not a readable scores file ({' '.join(str(e).split())[:200]})") from None
    n = len(s.names)
    if s.scores.ndim != 2 or s.scores.shape != (n, len(s.class_names)) or s.labels.shape != (n,):
        raise DataError(f"{path}: inconsistent scores file (scores {s.scores.shape}, {len(s.labels)} labels, "
                        f"{n} names, {len(s.class_names)} classes)")
    if not np.isfinite(s.scores).all():
        raise DataError(f"{path}: scores contain NaN or inf")
    return s


def _plot_confusion(path: Path, cm: np.ndarray, class_names: list[str], title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("confusion.png skipped: matplotlib is not installed (pip install 'stgcn[plot]')")
        return False
    c = len(class_names)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    size = min(4 + 0.35 * c, 40)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if c <= 60:
        ax.set_xticks(range(c), class_names, rotation=90, fontsize=8)
        ax.set_yticks(range(c), class_names, fontsize=8)
    if c <= 25:
        for i in range(c):
            for j in range(c):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    _atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120), "wb")
    plt.close(fig)
    return True


def save_evaluation(out_dir: str | Path, result: EvalResult, *, extra: dict[str, Any] | None = None,
                    plot: bool = True) -> dict[str, Path]:
    """Write ``metrics.json``, ``per_class.csv``, ``confusion.csv``, ``confusion.png`` and ``scores.npz``.

    Returns:
        The written files by kind.
    """
    out = Path(out_dir)
    s = result.scores
    files = {"metrics": out / "metrics.json", "per_class": out / "per_class.csv",
             "confusion": out / "confusion.csv", "scores": out / "scores.npz"}
    payload = {**(extra or {}), "split": s.split, "clips": s.clips, **result.metrics}
    _atomic_write(files["metrics"], lambda f: f.write(json.dumps(payload, indent=1) + "\n"))
    support = result.confusion.sum(axis=1)

    def per_class(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(["class", "accuracy", "correct", "samples"])
        for i, name in enumerate(s.class_names):
            acc = result.metrics["per_class"][name]
            w.writerow([csv_safe(name), "" if acc is None else f"{acc:.6f}", int(result.confusion[i, i]),
                        int(support[i])])

    def confusion(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(["true \\ predicted", *(csv_safe(n) for n in s.class_names)])
        for name, row in zip(s.class_names, result.confusion, strict=True):
            w.writerow([csv_safe(name), *(int(v) for v in row)])

    _atomic_write(files["per_class"], per_class)
    _atomic_write(files["confusion"], confusion)
    save_scores(files["scores"], s)
    if plot and _plot_confusion(out / "confusion.png", result.confusion, s.class_names,
                                f"{s.split}: top-1 {100 * result.metrics['top1']:.2f}%"):
        files["confusion_png"] = out / "confusion.png"
    return files
