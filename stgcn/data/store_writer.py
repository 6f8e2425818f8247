"""Writing a dataset store: :class:`StoreWriter` streams clips into a hidden temporary directory and moves it
into place atomically (the layout on disk is described in :mod:`stgcn.data.store`).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from stgcn.data.store_reader import (
    DTYPES,
    FORMAT_VERSION,
    FRAMES,
    LABELS,
    MANIFEST,
    NAMES,
    OFFSETS,
    SkeletonStore,
    open_store,
)
from stgcn.errors import DataError
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout, get_layout
from stgcn.utils.checks import is_int

__all__ = ["StoreWriter", "sweep_stale"]

log = logging.getLogger(__name__)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """Create a new uniquely named directory (permissions from the umask, unlike ``mkdtemp``)."""
    while True:
        path = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process / not a pid: keep
        return True
    return True


def sweep_stale(out_dir: Path) -> list[Path]:
    """Remove the hidden partial (``.NAME.partial-PID-*``) and replaced (``.NAME.old-PID-*``) folders of earlier
    writes to ``out_dir`` whose process is gone (a crash, a kill, a full disk); returns what was removed."""
    removed = []
    for kind in ("partial", "old"):
        for path in out_dir.parent.glob(f".{glob.escape(out_dir.name)}.{kind}-*"):
            pid = path.name.rsplit(f".{kind}-", 1)[1].split("-", 1)[0]
            if not (path.is_dir() and pid.isdigit()) or _pid_alive(int(pid)):
                continue
            if kind == "old" and not out_dir.exists():  # the replaced store is the only copy: keep it
                log.warning("%s holds the store that an interrupted overwrite of %s replaced; move it back "
                            "with: mv %s %s", path, out_dir, path / "store", out_dir)
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            log.info("removed %s, left by an interrupted write of %s", path, out_dir)
    return removed


def _layout_entry(layout: Layout) -> str | dict[str, Any]:
    """A built-in layout is stored by name, any other one as its full dict."""
    builtin = BUILTIN_LAYOUTS.get(layout.name)
    return layout.name if builtin == layout else layout.to_dict()


class StoreWriter:
    """Stream clips into a new store; nothing is visible at ``out_dir`` until :meth:`finish`.

    Use as a context manager so that an exception discards the partial store::

        with StoreWriter(out, "kinect-v1", ["x", "y", "z"], class_names) as writer:
            for name, clip, label in clips:
                writer.add(name, clip, label, splits=["train"])
            writer.finish()

    Args:
        out_dir: Directory to create.
        layout: Layout name, file, dict or :class:`~stgcn.layouts.Layout`; every clip must have its V joints.
        channels: Channel names, e.g. ``["x", "y", "z"]`` or ``["x", "y", "score"]``.
        class_names: Class names; labels are indices into this list.
        dtype: ``"float32"`` or ``"float16"`` (half the size; about 3 significant digits).
        num_persons: Persons M per frame. ``None`` takes M from the first clip added.
        overwrite: Replace an existing store at ``out_dir`` (the old one is removed only after the new
            one is complete).
    """

    def __init__(
        self,
        out_dir: str | Path,
        layout: str | Path | Layout | dict[str, Any],
        channels: Sequence[str],
        class_names: Sequence[str],
        dtype: str = "float32",
        *,
        num_persons: int | None = None,
        overwrite: bool = False,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.layout = get_layout(layout)
        self.channels = [str(c) for c in channels]
        self.class_names = [str(c) for c in class_names]
        if dtype not in DTYPES:
            raise DataError(f"store dtype {dtype!r} is not supported; valid dtypes are {', '.join(DTYPES)}")
        if not self.channels:
            raise DataError("a store needs at least one channel")
        if not self.class_names:
            raise DataError("a store needs at least one class name")
        if num_persons is not None and num_persons < 1:
            raise DataError(f"num_persons must be >= 1, got {num_persons}")
        if self.out_dir.exists() and not overwrite:
            raise DataError(f"{self.out_dir}: already exists (pass overwrite=True / --overwrite to replace it)")
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.num_persons = num_persons
        self.overwrite = overwrite
        try:
            self.out_dir.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale(self.out_dir)
            self._tmp = _fresh_dir(self.out_dir.parent, f".{self.out_dir.name}.partial-")
            self._frames = open(self._tmp / FRAMES, "wb")  # closed in finish/abort
        except OSError as e:
            if hasattr(self, "_tmp"):
                shutil.rmtree(self._tmp, ignore_errors=True)
            raise DataError(f"{self.out_dir}: cannot create the store ({e.strerror or e})") from None
        self._offsets: list[int] = [0]
        self._labels: list[int] = []
        self._names: list[str] = []
        self._name_set: set[str] = set()
        self._splits: dict[str, list[int]] = {}
        self._done = False

    def __len__(self) -> int:
        return len(self._labels)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None or not self._done:
            self.abort()

    def add(self, name: str, keypoints: np.ndarray, label: int, splits: Iterable[str] = ()) -> int:
        """Append one clip; returns its index in the store.

        Args:
            name: Unique clip name (no newline).
            keypoints: The clip. Its values must be finite; it needs at least one frame.
            label: Class index in ``[0, len(class_names))``.
            splits: Names of the splits this clip belongs to.

        Shape:
            keypoints: (T, M, V, C) with V the layout's joints and C the store's channels; M may be smaller
            than the store's persons (zero persons are appended).
        """
        if self._done:
            raise DataError(f"{self.out_dir}: the store is already finished")
        name = str(name)
        if not name or "\n" in name or "\r" in name:
            raise DataError(f"clip name {name!r} must be non-empty and on one line")
        if name in self._name_set:
            raise DataError(f"{name}: clip name is already in the store (names must be unique)")
        x = np.asarray(keypoints)
        v, c = self.layout.num_joints, len(self.channels)
        if x.ndim != 4 or x.shape[2] != v or x.shape[3] != c:
            raise DataError(
                f"{name}: keypoints have shape {tuple(x.shape)}; expected (T, M, {v}, {c}) for layout "
                f"{self.layout.name!r} and channels {self.channels}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise DataError(f"{name}: empty clip (shape {tuple(x.shape)}); expected at least one frame and person")
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise DataError(f"{name}: keypoints must be real numbers, got dtype {x.dtype}")
        if not np.isfinite(x).all():
            raise DataError(f"{name}: keypoints contain NaN or inf")
        if self.dtype == np.float16 and np.abs(x).max() > 65504:
            raise DataError(f"{name}: values exceed the float16 range (65504); use dtype float32")
        if self.num_persons is None:
            self.num_persons = int(x.shape[1])
        m = self.num_persons
        if x.shape[1] > m:
            raise DataError(f"{name}: clip has {x.shape[1]} persons; this store holds at most {m}")
        if not is_int(label) or not 0 <= label < len(self.class_names):
            raise DataError(f"{name}: label {label!r} is not a class index in [0, {len(self.class_names)})")
        if x.shape[1] < m:
            pad = np.zeros((x.shape[0], m - x.shape[1], v, c), dtype=x.dtype)
            x = np.concatenate([x, pad], axis=1)
        try:
            self._frames.write(np.ascontiguousarray(x, dtype=self.dtype).tobytes())
        except OSError as e:
            self._write_failed(e)
        index = len(self._labels)
        self._offsets.append(self._offsets[-1] + int(x.shape[0]))
        self._labels.append(int(label))
        self._names.append(name)
        self._name_set.add(name)
        for split in splits:
            self._splits.setdefault(str(split), []).append(index)
        return index

    def finish(
        self,
        splits: dict[str, Sequence[int]] | Sequence[str] | None = None,
        *,
        source: dict[str, Any] | None = None,
        counts: dict[str, Any] | None = None,
    ) -> SkeletonStore:
        """Write the manifest and move the store into place atomically; returns the opened store.

        Args:
            splits: Extra splits as ``{name: indices}``, or the names of splits that must exist (a listed
                split that got no clip is kept as an empty split). Splits given to :meth:`add` are kept.
            source: Where the data came from (format, path, options), stored in the manifest.
            counts: Extra counts to record (e.g. skipped clips); clip, frame, split and class counts are
                added automatically.
        """
        if self._done:
            raise DataError(f"{self.out_dir}: the store is already finished")
        n = len(self._labels)
        if n == 0:
            self.abort()
            raise DataError(f"{self.out_dir}: no clips to write (the source gave no valid clip)")
        all_splits = {k: list(v) for k, v in self._splits.items()}
        if isinstance(splits, dict):
            for key, idx in splits.items():
                idx = [int(i) for i in idx]
                if any(not 0 <= i < n for i in idx):
                    self.abort()
                    raise DataError(f"split {key!r} holds an index outside [0, {n})")
                all_splits[str(key)] = idx
        elif splits is not None:  # the listed splits first, in the given order
            listed = {str(key): all_splits.get(str(key), []) for key in splits}
            all_splits = {**listed, **{k: v for k, v in all_splits.items() if k not in listed}}
        labels = np.asarray(self._labels, dtype=np.int64)
        offsets = np.asarray(self._offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        full_counts: dict[str, Any] = {
            "clips": n,
            "frames": int(offsets[-1]),
            "per_split": {k: len(v) for k, v in all_splits.items()},
            "per_class": {name: int((labels == i).sum()) for i, name in enumerate(self.class_names)},
            "length_min": int(lengths.min()),
            "length_median": float(np.median(lengths)),
            "length_mean": float(lengths.mean()),
            "length_max": int(lengths.max()),
        }
        full_counts.update(counts or {})
        manifest = {
            "format_version": FORMAT_VERSION,
            "layout": _layout_entry(self.layout),
            "layout_fingerprint": self.layout.fingerprint,
            "channels": self.channels,
            "class_names": self.class_names,
            "dtype": self.dtype.name,
            "num_persons": int(self.num_persons or 1),
            "num_joints": self.layout.num_joints,
            "source": source or {},
            "counts": full_counts,
            "splits": all_splits,
        }
        try:
            self._frames.close()
            np.save(self._tmp / OFFSETS, offsets)
            np.save(self._tmp / LABELS, labels)
            (self._tmp / NAMES).write_text("\n".join(self._names) + "\n", encoding="utf-8")
            with open(self._tmp / MANIFEST, "w", encoding="utf-8") as f:
                json.dump(manifest, f, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            self._move_into_place()
        except OSError as e:
            self._write_failed(e)
        except BaseException:
            self.abort()
            raise
        self._done = True
        log.debug("wrote store %s: %d clips, %d frames", self.out_dir, n, int(offsets[-1]))
        return open_store(self.out_dir)

    def _move_into_place(self) -> None:
        old = None
        if self.out_dir.exists():
            if not self.overwrite:
                raise DataError(f"{self.out_dir}: already exists (pass overwrite=True / --overwrite)")
            old = _fresh_dir(self.out_dir.parent, f".{self.out_dir.name}.old-")
            os.replace(self.out_dir, old / "store")
        os.replace(self._tmp, self.out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _write_failed(self, e: OSError) -> NoReturn:
        """Discard the partial store and raise the one-line error naming the store (e.g. a full disk)."""
        self.abort()
        raise DataError(f"{self.out_dir}: cannot write the store ({e.strerror or e}); the partial output "
                        f"was removed") from None

    def abort(self) -> None:
        """Discard the partial store (safe to call more than once, also when the disk is full)."""
        if not self._frames.closed:
            try:
                self._frames.close()  # flushes the buffer: fails again on a full disk
            except OSError:
                pass
        if not self._done and self._tmp.exists():
            shutil.rmtree(self._tmp, ignore_errors=True)
