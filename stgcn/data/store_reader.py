"""Reading a dataset store: :class:`SkeletonStore` (memory-mapped, read-only), :func:`open_store` and
:func:`describe_store`. The layout on disk is described in :mod:`stgcn.data.store`; the names of its files
and its format version are defined here, where the store is validated on opening (the manifest by
:mod:`stgcn.data.store_manifest`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.store_manifest import read_manifest
from stgcn.errors import DataError
from stgcn.utils.checks import is_int

__all__ = ["FORMAT_VERSION", "DTYPES", "SkeletonStore", "open_store", "describe_store"]

FORMAT_VERSION = 1
DTYPES = ("float32", "float16")
MANIFEST = "manifest.json"
FRAMES = "frames.bin"
OFFSETS = "offsets.npy"
LABELS = "labels.npy"
NAMES = "names.txt"


class SkeletonStore:
    """A read-only, memory-mapped dataset store (see the module docstring for the layout on disk).

    Open with :func:`open_store`. Safe to pass to DataLoader workers: it pickles as its path and re-opens
    the memory map in each process.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"{self.path}: not a dataset store directory (create one with `stgcn prepare`)")
        self.manifest, self.layout = read_manifest(self.path / MANIFEST, FORMAT_VERSION, DTYPES)
        m = self.manifest
        self.channels: list[str] = list(m["channels"])
        self.class_names: list[str] = list(m["class_names"])
        self.num_persons = int(m["num_persons"])
        self.dtype = np.dtype(m["dtype"]).newbyteorder("<")
        self._offsets = self._load_npy(OFFSETS, np.int64)
        self._labels = self._load_npy(LABELS, np.int64)
        n = len(self._labels)
        if self._offsets.shape != (n + 1,) or self._offsets[0] != 0 or np.any(np.diff(self._offsets) <= 0):
            raise DataError(f"{self.path / OFFSETS}: expected {n + 1} increasing offsets starting at 0")
        if n and (self._labels.min() < 0 or self._labels.max() >= len(self.class_names)):
            raise DataError(f"{self.path / LABELS}: a label is outside [0, {len(self.class_names)})")
        self._frame_shape = (self.num_persons, self.layout.num_joints, len(self.channels))
        expected = int(self._offsets[-1]) * int(np.prod(self._frame_shape)) * self.dtype.itemsize
        try:
            size = (self.path / FRAMES).stat().st_size
        except OSError:
            raise DataError(f"{self.path / FRAMES}: missing; the store is incomplete") from None
        if size != expected:
            raise DataError(f"{self.path / FRAMES}: {size} bytes, expected {expected} (truncated or corrupt store)")
        self._names: list[str] | None = None
        self._frames: np.ndarray | None = None
        self._split_cache: dict[str, np.ndarray] = {}
        for key, idx in m["splits"].items():
            arr = np.asarray(idx, dtype=np.int64)
            if arr.size and (arr.min() < 0 or arr.max() >= n):
                raise DataError(f"{self.path / MANIFEST}: split {key!r} holds an index outside [0, {n})")
            self._split_cache[key] = arr

    def _load_npy(self, fname: str, dtype: type) -> np.ndarray:
        try:
            arr = np.load(self.path / fname, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{self.path / fname}: missing or unreadable ({e})") from None
        if arr.ndim != 1 or arr.dtype != dtype:
            raise DataError(f"{self.path / fname}: expected a 1-D {np.dtype(dtype).name} array")
        return arr

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self._labels)

    def __repr__(self) -> str:
        return (f"SkeletonStore({str(self.path)!r}, clips={len(self)}, layout={self.layout.name!r}, "
                f"channels={self.channels}, splits={list(self._split_cache)})")

    @property
    def frames(self) -> np.ndarray:
        """All frames, memory-mapped. Shape: (F, M, V, C)."""
        if self._frames is None:
            self._frames = np.memmap(self.path / FRAMES, dtype=self.dtype, mode="r",
                                     shape=(int(self._offsets[-1]), *self._frame_shape))
        return self._frames

    @property
    def offsets(self) -> np.ndarray:
        """Clip boundaries in :attr:`frames`. Shape: (N + 1,)."""
        return self._offsets

    @property
    def labels(self) -> np.ndarray:
        """Class index of every clip. Shape: (N,)."""
        return self._labels

    @property
    def lengths(self) -> np.ndarray:
        """Number of frames of every clip. Shape: (N,)."""
        return np.diff(self._offsets)

    @property
    def names(self) -> list[str]:
        """Clip names, in store order."""
        if self._names is None:
            try:
                names = (self.path / NAMES).read_text(encoding="utf-8").split("\n")[:-1]
            except OSError:
                raise DataError(f"{self.path / NAMES}: missing; the store is incomplete") from None
            if len(names) != len(self):
                raise DataError(f"{self.path / NAMES}: {len(names)} names, expected {len(self)}")
            self._names = names
        return self._names

    @property
    def split_names(self) -> list[str]:
        """Names of the splits this store defines."""
        return list(self._split_cache)

    def _check(self, i: int) -> int:
        n = len(self)
        if not is_int(i) or not -n <= i < n:
            raise IndexError(f"clip index {i!r} out of range for a store of {n} clips")
        return int(i) % n

    def clip(self, i: int) -> np.ndarray:
        """Clip ``i`` as a new float32 array (reads only that clip's bytes).

        Shape:
            (T, M, V, C)
        """
        i = self._check(i)
        return np.array(self.frames[self._offsets[i]:self._offsets[i + 1]], dtype=np.float32)

    def label(self, i: int) -> int:
        """Class index of clip ``i``."""
        return int(self._labels[self._check(i)])

    def name(self, i: int) -> str:
        """Name of clip ``i``."""
        return self.names[self._check(i)]

    def split(self, name: str) -> np.ndarray:
        """Indices of the clips in split ``name``.

        Raises:
            DataError: unknown split (the message lists the valid ones).
        """
        if name not in self._split_cache:
            raise DataError(f"{self.path}: unknown split {name!r}; valid splits are "
                            f"{', '.join(self._split_cache) or '(none)'}")
        return self._split_cache[name].copy()


def open_store(path: str | Path) -> SkeletonStore:
    """Open a store written by :class:`StoreWriter` / ``stgcn prepare``.

    Raises:
        DataError: not a store, an incomplete or truncated store, or an unsupported format version.
    """
    return SkeletonStore(path)


def describe_store(store: SkeletonStore) -> dict[str, Any]:
    """A JSON-serialisable summary: clips per split and class, frame-length statistics, layout, channels.

    What ``stgcn info`` prints.
    """
    lengths = store.lengths
    labels = store.labels
    splits = {name: store.split(name) for name in store.split_names}
    per_class: dict[str, dict[str, int]] = {}
    for i, cname in enumerate(store.class_names):
        row = {"all": int((labels == i).sum())}
        for name, idx in splits.items():
            row[name] = int((labels[idx] == i).sum())
        per_class[cname] = row
    size = sum(f.stat().st_size for f in store.path.iterdir() if f.is_file())
    counts = store.manifest.get("counts", {})
    return {
        "path": str(store.path),
        "source": store.manifest.get("source", {}),
        "layout": store.layout.name,
        "layout_fingerprint": store.layout.fingerprint,
        "num_joints": store.layout.num_joints,
        "channels": store.channels,
        "num_persons": store.num_persons,
        "dtype": store.dtype.name,
        "clips": len(store),
        "frames": int(lengths.sum()),
        "bytes": size,
        "length": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                   "mean": float(lengths.mean()), "max": int(lengths.max()),
                   "p95": float(np.percentile(lengths, 95))},
        "skipped": int(counts.get("skipped", 0)),
        "splits": {name: len(idx) for name, idx in splits.items()},
        "class_names": store.class_names,
        "per_class": per_class,
    }
