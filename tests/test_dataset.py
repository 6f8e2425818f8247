"""SkeletonDataset and build_loader: items, seeded reproducible batches, multi-clip items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stgcn.data.dataset import SkeletonDataset, build_loader
from stgcn.data.store import StoreWriter
from stgcn.data.transforms import AugmentConfig, PreprocessConfig, build_transform
from stgcn.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("ds") / "store"
    with StoreWriter(out, "kinect-v1", ["x", "y", "z"], ["a", "b", "c"]) as w:
        for i in range(40):
            t = int(rng.integers(3, 30))
            w.add(f"c{i}", rng.normal(size=(t, 1, 20, 3)).astype(np.float32), i % 3, ["train" if i < 30 else "test"])
        return w.finish()


def _train_transform():
    pre = PreprocessConfig(length=12, resize="uniform", channels=("x", "y", "z"))
    return build_transform(pre, AugmentConfig(random_move=True, rotate_3d=15), train=True, layout="kinect-v1")


def test_items_are_tensor_label_index(store):
    ds = SkeletonDataset(store, "test", _train_transform(), seed=0)
    assert len(ds) == 10
    x, label, index = ds[0]
    assert isinstance(x, torch.Tensor) and x.shape == (3, 12, 20, 1) and x.dtype == torch.float32
    assert index == 30 and label == store.label(30)
    assert ds.labels.tolist() == [store.label(i) for i in range(30, 40)]
    assert ds.class_names == ["a", "b", "c"]


def test_no_transform_gives_the_raw_clip(store):
    ds = SkeletonDataset(store.path, [3, 5])
    x, label, index = ds[1]
    assert index == 5
    np.testing.assert_array_equal(x.numpy(), store.clip(5).transpose(3, 0, 2, 1))


def test_split_errors(store):
    with pytest.raises(DataError, match="valid splits are train, test"):
        SkeletonDataset(store, "val")
    with pytest.raises(ConfigError, match="clip indices"):
        SkeletonDataset(store, [0, 99])


def _batches(loader):
    return [(x.clone(), y.clone(), i.clone()) for x, y, i in loader]


def test_same_seed_same_batches_whatever_the_workers(store):
    ds = SkeletonDataset(store, "train", _train_transform(), seed=7)
    a = _batches(build_loader(ds, 8, shuffle=True, num_workers=0, seed=3))
    b = _batches(build_loader(ds, 8, shuffle=True, num_workers=2, seed=3))
    assert len(a) == 4 and [len(t[1]) for t in a] == [8, 8, 8, 6]
    for (xa, ya, ia), (xb, yb, ib) in zip(a, b, strict=True):
        assert torch.equal(ia, ib) and torch.equal(ya, yb) and torch.equal(xa, xb)
    c = _batches(build_loader(ds, 8, shuffle=True, num_workers=0, seed=4))
    assert not all(torch.equal(p[2], q[2]) for p, q in zip(a, c, strict=True))


def test_each_epoch_differs_but_is_reproducible(store):
    ds = SkeletonDataset(store, "train", _train_transform(), seed=0)
    loader = build_loader(ds, 30, shuffle=False, num_workers=0, seed=1)
    e1, e2 = _batches(loader), _batches(loader)
    assert torch.equal(e1[0][2], e2[0][2])                      # same order (no shuffle)
    assert not torch.equal(e1[0][0], e2[0][0])                  # fresh augmentation each epoch
    again = build_loader(ds, 30, shuffle=False, num_workers=0, seed=1)
    r1, r2 = _batches(again), _batches(again)
    assert torch.equal(e1[0][0], r1[0][0]) and torch.equal(e2[0][0], r2[0][0])


def test_drop_last_and_multi_clip_batches(store):
    pre = PreprocessConfig(length=6, resize="uniform", num_clips=3)
    ds = SkeletonDataset(store, "test", build_transform(pre, train=False, layout="kinect-v1"))
    batches = _batches(build_loader(ds, 4, shuffle=False, drop_last=True, seed=0))
    assert len(batches) == 2
    assert batches[0][0].shape == (4, 3, 3, 6, 20, 1)


def test_loader_argument_errors(store):
    ds = SkeletonDataset(store, "test")
    with pytest.raises(ConfigError, match="either shuffle"):
        build_loader(ds, 4, shuffle=True, sampler=[0, 1])
    with pytest.raises(ConfigError, match="batch_size"):
        build_loader(ds, 0, shuffle=False)


def test_a_custom_sampler_is_used(store):
    ds = SkeletonDataset(store, "test", seed=0)
    got = _batches(build_loader(ds, 1, shuffle=False, sampler=[3, 1], seed=0))
    assert [b[2].item() for b in got] == [33, 31]


def test_batched_fetch_equals_item_by_item(store):
    for train in (True, False):
        pre = PreprocessConfig(length=10, resize="uniform", num_clips=1 if train else 2, stream="bone_motion")
        aug = AugmentConfig(random_move=True, random_shift=True, rotate_3d=30, move_steps=(1, 2, 3))
        ds = SkeletonDataset(store, "train", build_transform(pre, aug, train=train, layout="kinect-v1"), seed=5)
        keys = [(3, 11), (0, 11), (7, 12), (3, 12)]
        batched = ds.__getitems__(keys)
        for key, (x, label, index) in zip(keys, batched, strict=True):
            x1, label1, index1 = ds[key]
            assert (label, index) == (label1, index1)
            torch.testing.assert_close(x, x1, rtol=1e-6, atol=1e-6)


def test_eval_shards_are_disjoint_and_cover_the_split():
    from stgcn.data.dataset import EpochSampler

    shards = [EpochSampler(7, seed=0, shuffle=False, num_replicas=3, rank=r, pad=False) for r in range(3)]
    got = sorted(i for s in shards for i, _ in s.keys())
    assert got == list(range(7)) and [len(s) for s in shards] == [3, 2, 2]
    picked = EpochSampler(10, seed=0, shuffle=False, positions=[3, 1], pad=False)
    assert [i for i, _ in picked] == [3, 1]
