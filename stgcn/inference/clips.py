"""Reading the inputs of ``stgcn predict`` / ``stgcn render``: raw ``.npy`` arrays and every single-clip file
the data layer reads, as :class:`ClipInput` clips (coordinates, scores and what the file says about them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.channels import select_channels
from stgcn.errors import DataError
from stgcn.graph.layouts import Layout, get_layout
from stgcn.utils.files import read_npy

__all__ = ["as_clip", "read_clips", "ClipInput"]


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


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists() and not path.is_symlink():
        raise DataError(f"{path}: no such file")
    return read_npy(path, error=DataError)


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
        return select_channels(self.keypoints, self.scores, channels if channels is not None else names)


def read_clips(path: str | Path, layout: str | Layout | None = None, *, remap: str | None = None,
               target: str = "the layout it is read as") -> list[ClipInput]:
    """The clips in an input file of ``stgcn predict`` / ``stgcn render``.

    * ``.npy``: a raw array, ``(T, V, C)`` or ``(T, M, V, C)`` for one clip, or ``(N, C, T, V, M)`` for N
      clips (the original ST-GCN's data files); used as they are;
    * any single-clip file the data layer reads (:func:`stgcn.data.sources.read_clip_file`): the keypoints
      JSON/NPZ that ``stgcn pose`` writes, OpenPose folders, NW-UCLA, Kinetics-skeleton, MSR Action3D,
      UTKinect and NTU files; a file that names its layout must name ``layout``'s joints in that order (or,
      with ``remap="by-name"``, in another order: then reordered); ``target`` says what ``layout`` is.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        arr = _load_npy(path)
        meta: dict[str, Any] = {"channels": None, "layout": None if layout is None else get_layout(layout)}
        if arr.ndim == 5:
            clips = [ClipInput(f"{path}[{i}]", as_clip(item.transpose(1, 3, 2, 0), where=f"{path}[{i}]"), None,
                               dict(meta)) for i, item in enumerate(arr)]
        else:
            clips = [ClipInput(str(path), as_clip(arr, where=str(path)), None, meta)]
        lay = meta["layout"]
        if lay is not None and clips and clips[0].keypoints.shape[2] != len(lay.joints):
            raise DataError(f"{path}: {clips[0].keypoints.shape[2]} joints per person; layout {lay.name!r} "
                            f"has {len(lay.joints)}")
        return clips
    from stgcn.data.sources import read_clip_file

    keypoints, scores, meta = read_clip_file(path, layout, remap=remap, target=target)
    keypoints = as_clip(keypoints, where=str(path))
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float32).reshape(keypoints.shape[:3])
    return [ClipInput(str(path), keypoints, scores, dict(meta))]
