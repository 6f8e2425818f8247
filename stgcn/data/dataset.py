"""A torch ``Dataset`` over a dataset store, and a loader builder with reproducible randomness.

Randomness never comes from global state: every item gets its own generator
``np.random.default_rng([seed, epoch_seed, index])``. ``build_loader`` draws ``epoch_seed`` for each epoch
from a generator seeded with ``seed`` and passes it along with the index, so the same seed gives the same
batches, whatever the number of workers and whether workers persist across epochs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from stgcn.data.store import SkeletonStore, open_store
from stgcn.errors import ConfigError

__all__ = ["SkeletonDataset", "build_loader", "EpochSeededSampler"]


class SkeletonDataset(Dataset):
    """Clips of one split of a store, transformed into model inputs.

    Args:
        store: An opened store or its path.
        split: Split name (``store.split(name)``), explicit clip indices, or ``None`` for every clip.
        transform: ``transform(clip (T, M, V, C), rng) -> np.ndarray``, usually from
            :func:`stgcn.transforms.build_transform`; ``None`` returns the clip as ``(C, T, V, M)``.
        seed: Base seed of the per-item generators.

    Items are ``(x, label, index)``: ``x`` a float32 tensor ``(C, T, V, M)`` (or ``(K, C, T, V, M)`` for
    K-clip testing), ``label`` the class index and ``index`` the clip's index in the store. An item key may
    be an int or an ``(int, epoch_seed)`` pair (what :func:`build_loader`'s sampler yields).
    """

    def __init__(
        self,
        store: SkeletonStore | str | Path,
        split: str | Sequence[int] | np.ndarray | None = None,
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.store = store if isinstance(store, SkeletonStore) else open_store(store)
        if split is None:
            self.indices = np.arange(len(self.store))
        elif isinstance(split, str):
            self.indices = self.store.split(split)
        else:
            self.indices = np.asarray(split, dtype=np.int64)
            if self.indices.ndim != 1 or (self.indices.size and (
                    self.indices.min() < 0 or self.indices.max() >= len(self.store))):
                raise ConfigError(f"clip indices must be a 1-D list in [0, {len(self.store)})")
        self.split = split if isinstance(split, str) else None
        self.transform = transform
        self.seed = int(seed)
        self._labels = self.store.labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        """Labels of the dataset's clips, in dataset order. Shape: (N,)."""
        return self._labels

    @property
    def class_names(self) -> list[str]:
        """The store's class names."""
        return self.store.class_names

    def _key(self, key: int | tuple[int, int]) -> tuple[int, int]:
        """(store index, epoch seed) of an item key."""
        if isinstance(key, tuple):
            i, epoch_seed = int(key[0]), int(key[1])
        else:
            i, epoch_seed = int(key), 0
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for a dataset of {len(self)} clips")
        return int(self.indices[i]), epoch_seed

    def _rng(self, index: int, epoch_seed: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch_seed, index])

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        index, epoch_seed = self._key(key)
        clip = self.store.clip(index)
        if self.transform is None:
            x = np.ascontiguousarray(clip.transpose(3, 0, 2, 1))
        else:
            x = self.transform(clip, self._rng(index, epoch_seed))
        return torch.from_numpy(x), int(self.store.labels[index]), index

    def __getitems__(self, keys: list[int | tuple[int, int]]) -> list[tuple[torch.Tensor, int, int]]:
        """A whole batch at once (the DataLoader calls this): one vectorised transform call when the
        transform has a ``batch`` method; the items equal ``[self[k] for k in keys]``."""
        batch = getattr(self.transform, "batch", None)
        length = getattr(getattr(self.transform, "preprocess", None), "length", None)
        if batch is None or len(keys) < 2 or length is None:
            return [self[k] for k in keys]
        parsed = [self._key(k) for k in keys]
        clips = [self.store.clip(index) for index, _ in parsed]
        x = torch.from_numpy(batch(clips, [self._rng(index, seed) for index, seed in parsed]))
        labels = self.store.labels
        return [(x[j], int(labels[index]), index) for j, (index, _) in enumerate(parsed)]


class EpochSeededSampler(Sampler):
    """Wrap an index sampler so each yielded index carries a seed for the current epoch.

    Every ``__iter__`` starts a new epoch: ``epoch_seed`` is drawn from a generator seeded with ``seed``,
    so the n-th epoch of two samplers with the same seed gets the same seed.
    """

    def __init__(self, sampler: Sampler | Sequence[int], seed: int) -> None:
        self.sampler = sampler
        self._rng = np.random.default_rng([int(seed), 0x5EED])

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        """Forward to the wrapped sampler (e.g. ``DistributedSampler.set_epoch``) when it has one."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch_seed = int(self._rng.integers(0, 2**63 - 1))
        for i in self.sampler:
            yield int(i), epoch_seed


def _worker_init(worker_id: int) -> None:
    # the work per item is numpy on small arrays: one thread per worker keeps the cores for the model
    torch.set_num_threads(1)


def build_loader(
    dataset: SkeletonDataset,
    batch_size: int,
    *,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    sampler: Sampler | Sequence[int] | None = None,
    pin_memory: bool = False,
    persistent_workers: bool | None = None,
) -> DataLoader:
    """A DataLoader whose order and augmentation are fixed by ``seed``.

    Args:
        dataset: The dataset (items ``(x, label, index)``).
        batch_size: Clips per batch.
        shuffle: Random order each epoch (from a torch generator seeded with ``seed``). Must be False when
            ``sampler`` is given.
        num_workers: Worker processes (0: load in the main process).
        seed: Seed of the order and of the per-epoch augmentation seeds.
        drop_last: Drop the last incomplete batch.
        sampler: An index sampler (e.g. a ``DistributedSampler``) used instead of shuffle/sequential.
        pin_memory: Pin batches (for CUDA).
        persistent_workers: Keep workers between epochs (default: when ``num_workers > 0``).

    Returns:
        A DataLoader yielding ``(x (N, C, T, V, M), labels (N,), indices (N,))``.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    if sampler is not None and shuffle:
        raise ConfigError("pass either shuffle=True or a sampler, not both")
    if sampler is None:
        if shuffle:
            sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(int(seed)))
        else:
            sampler = SequentialSampler(dataset)
    if persistent_workers is None:
        persistent_workers = num_workers > 0
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(worker_init_fn=_worker_init, persistent_workers=persistent_workers, prefetch_factor=4)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSeededSampler(sampler, seed),
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(int(seed)),
        **kwargs,
    )
