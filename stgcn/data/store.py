"""The dataset store: one directory holding every clip of a dataset, memory-mapped, unpadded.

Every source format (:mod:`stgcn.data.prepare`) is converted into this one store, and training, evaluation and
``stgcn info`` read only the store. A store is a directory::

    manifest.json   format_version, layout, channels, class_names, splits, source, counts, shapes
    frames.bin      all frames of all clips, concatenated: raw little-endian (F, M, V, C), float16 or float32
    offsets.npy     int64 (N + 1,): clip i is frames[offsets[i]:offsets[i + 1]]
    labels.npy      int64 (N,)
    names.txt       one clip name per line

Clips keep their own length (no padding to a common length), so reading one clip touches only its bytes.
``M`` (persons) is fixed per store: a clip with fewer persons is padded with all-zero persons.

Writes are atomic: :class:`StoreWriter` builds the store in a hidden temporary directory next to the
target and renames it into place in :meth:`StoreWriter.finish`; the manifest is written last, so an
interrupted prepare never leaves a directory that :func:`open_store` accepts.

The writer lives in :mod:`stgcn.data.store_writer`, the reader in :mod:`stgcn.data.store_reader`; this module
re-exports both.
"""


from __future__ import annotations

from stgcn.data.store_reader import (
    DTYPES,
    FORMAT_VERSION,
    FRAMES,
    LABELS,
    MANIFEST,
    NAMES,
    OFFSETS,
    SkeletonStore,
    describe_store,
    open_store,
)
from stgcn.data.store_writer import StoreWriter

__all__ = ["FORMAT_VERSION", "SkeletonStore", "StoreWriter", "open_store", "describe_store", "DTYPES",
           "MANIFEST", "FRAMES", "OFFSETS", "LABELS", "NAMES"]
