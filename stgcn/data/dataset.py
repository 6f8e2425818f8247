"""A torch ``Dataset`` over a dataset store, and the one loader (and sampler) of training and evaluation.

Randomness never comes from global state: every item gets its own generator
``np.random.default_rng([seed, epoch_seed, index])``. :class:`EpochSampler` derives the order and ``epoch_seed``
of each epoch from ``(seed, epoch)`` alone and passes the seed along with the position, so the same seed gives
the same batches, whatever the number of workers, whether workers persist across epochs, and whether a run
was interrupted and resumed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from stgcn.data.store import SkeletonStore, open_store
from stgcn.errors import ConfigError, DataError
from stgcn.utils.checks import check_int
from stgcn.utils.limits import MAX_WORKERS

__all__ = ["SkeletonDataset", "build_loader", "EpochSampler"]


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


def _derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends only on ``parts``."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


class EpochSampler(Sampler):
    """Dataset keys ``(position, epoch_seed)`` for one process, fixed by ``(seed, epoch)`` alone.

    An epoch is ``repeat`` passes over the positions, each in its own random order (or in order when
    ``shuffle`` is False) and with its own augmentation seed. With ``pad`` (training) the concatenated order is
    padded by wrapping around to a multiple of ``num_replicas``; process ``rank`` takes every
    ``num_replicas``-th key. Iterating moves on to the next epoch unless :meth:`set_epoch` selects one.

    Args:
        size: Dataset length.
        seed: Base seed.
        shuffle: Random order.
        repeat: Passes per epoch.
        num_replicas: Number of processes.
        rank: This process.
        positions: The dataset positions to sample (default: all ``range(size)``), in this order.
        pad: Pad to a multiple of ``num_replicas`` so every process gets as many keys (training); without it
            the shards differ by at most one key and no clip is seen twice (evaluation).
    """

    def __init__(self, size: int, *, seed: int, shuffle: bool = True, repeat: int = 1, num_replicas: int = 1,
                 rank: int = 0, positions: Sequence[int] | None = None, pad: bool = True) -> None:
        self.positions = np.arange(size) if positions is None else np.asarray(positions, dtype=np.int64)
        if len(self.positions) < 1:
            raise DataError("cannot sample from an empty split")
        self.size, self.seed, self.shuffle, self.repeat = len(self.positions), int(seed), shuffle, repeat
        self.num_replicas, self.rank, self.pad = num_replicas, rank, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and seeds :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        total = self.size * self.repeat
        if self.pad:
            return math.ceil(total / self.num_replicas)
        return len(range(self.rank, total, self.num_replicas))

    def keys(self) -> list[tuple[int, int]]:
        """All keys of this process for the current epoch."""
        order, seeds = [], []
        for p in range(self.repeat):
            if self.shuffle:
                rng = np.random.default_rng(_derive_seed(self.seed, self.epoch, p, 1))
                order.append(self.positions[rng.permutation(self.size)])
            else:
                order.append(self.positions)
            seeds.append(np.full(self.size, _derive_seed(self.seed, self.epoch, p, 2), dtype=np.int64))
        pos, sd = np.concatenate(order), np.concatenate(seeds)
        total = len(self) * self.num_replicas
        if self.pad and total > len(pos):
            pad = np.resize(np.arange(len(pos)), total - len(pos))
            pos, sd = np.concatenate([pos, pos[pad]]), np.concatenate([sd, sd[pad]])
        return [(int(i), int(s)) for i, s in zip(pos[self.rank::self.num_replicas], sd[self.rank::self.num_replicas],
                                                 strict=True)]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        keys = self.keys()
        self.epoch += 1  # the next iteration is the next epoch, unless set_epoch says otherwise
        return iter(keys)


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
    sampler: EpochSampler | Sequence[int] | None = None,
    pin_memory: bool = False,
    persistent_workers: bool | None = None,
    repeat: int = 1,
    num_replicas: int = 1,
    rank: int = 0,
) -> DataLoader:
    """The DataLoader of training and evaluation: order and augmentation fixed by ``(seed, epoch)``.

    Args:
        dataset: The dataset (items ``(x, label, index)``).
        batch_size: Clips per batch (per process).
        shuffle: Random order each epoch. Must be False when ``sampler`` is given.
        num_workers: Worker processes (0: load in the main process).
        seed: Seed of the order and of the per-epoch augmentation seeds.
        drop_last: Drop the last incomplete batch.
        sampler: An :class:`EpochSampler`, or the dataset positions to load, in order.
        pin_memory: Pin batches (for CUDA).
        persistent_workers: Keep workers between epochs (default: when ``num_workers > 0``).
        repeat: Passes over the dataset per epoch (``shuffle`` only).
        num_replicas: Processes sharing each epoch; with ``shuffle`` each gets an equal (wrapped-around) shard,
            without it a disjoint one (evaluation).
        rank: This process.

    Returns:
        A DataLoader yielding ``(x (N, C, T, V, M), labels (N,), indices (N,))``; its ``sampler`` is the
        :class:`EpochSampler` (call ``loader.sampler.set_epoch(epoch)`` to pick an epoch).
    """
    check_int(batch_size, "batch_size", minimum=1)
    check_int(num_workers, "num_workers", minimum=0, maximum=MAX_WORKERS)
    if sampler is not None and shuffle:
        raise ConfigError("pass either shuffle=True or a sampler, not both")
    if not isinstance(sampler, EpochSampler):
        sampler = EpochSampler(len(dataset), seed=seed, shuffle=shuffle, repeat=repeat, num_replicas=num_replicas,
                               rank=rank, positions=sampler, pad=shuffle)
    if persistent_workers is None:
        persistent_workers = num_workers > 0
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(worker_init_fn=_worker_init, persistent_workers=persistent_workers, prefetch_factor=4)
    # the generator only seeds worker processes; passing one keeps the global torch RNG untouched
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=drop_last,
                      pin_memory=pin_memory, generator=torch.Generator().manual_seed(int(seed)), **kwargs)
