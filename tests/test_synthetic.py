"""The synthetic dataset: deterministic, well-formed, and its classes carry a learnable motion signal."""

from __future__ import annotations

import numpy as np
import pytest

from stgcn.data.synthetic import SyntheticClasses, make_synthetic_store
from stgcn.errors import ConfigError


def test_store_layout_splits_and_determinism(tmp_path):
    a = make_synthetic_store(tmp_path / "a", num_classes=5, clips_per_class=9, seed=3)
    b = make_synthetic_store(tmp_path / "b", num_classes=5, clips_per_class=9, seed=3)
    c = make_synthetic_store(tmp_path / "c", num_classes=5, clips_per_class=9, seed=4)
    assert len(a) == 45 and a.layout.name == "kinect-v1" and a.channels == ["x", "y", "z"]
    assert len(a.split("train")) == 30 and len(a.split("test")) == 15
    assert sorted(np.bincount(a.labels[a.split("test")]).tolist()) == [3] * 5
    assert len(set(a.class_names)) == 5
    assert a.manifest["source"] == {"format": "synthetic", "num_classes": 5, "clips_per_class": 9,
                                    "layout": "kinect-v1", "seed": 3}
    for i in (0, 17, 44):
        x = a.clip(i)
        assert x.shape[1:] == (1, 20, 3) and 40 <= x.shape[0] <= 80 and np.isfinite(x).all()
        assert np.array_equal(x, b.clip(i))
    assert not np.array_equal(a.clip(0), c.clip(0))


@pytest.mark.parametrize("layout", ["openpose-18", "ntu-rgb+d", "coco-17", "mediapipe-hand-21"])
def test_other_layouts(tmp_path, layout):
    s = make_synthetic_store(tmp_path / "s", num_classes=4, clips_per_class=3, layout=layout)
    assert s.layout.name == layout and s.clip(0).shape[2] == s.layout.num_joints


def test_the_class_moves_its_limb():
    classes = SyntheticClasses("kinect-v1", 6, seed=0)
    rng = np.random.default_rng(0)
    from stgcn.data.synthetic import synthetic_clip

    for label, (joint, _, _) in enumerate(classes.classes):
        moving = classes.subtrees[joint]
        still = [j for j in range(20) if j not in moving and j != joint]
        energy = np.zeros(20)
        for _ in range(5):
            x = synthetic_clip(classes, label, rng)[:, 0]
            energy += (x - x[:, classes.layout.center:classes.layout.center + 1]).std(axis=0).sum(axis=1)
        # the class's limb moves more than the average joint outside it (the distractor is weaker)
        assert energy[moving].mean() > 1.5 * energy[still].mean()


def test_nearest_centroid_on_motion_energy_beats_chance(tmp_path):
    s = make_synthetic_store(tmp_path / "s", num_classes=8, clips_per_class=15, seed=0)

    def features(i):
        x = s.clip(i)[:, 0]
        return (x - x[:, :1]).std(axis=0).ravel()

    tr, te = s.split("train"), s.split("test")
    f = np.stack([features(i) for i in tr])
    centroids = np.stack([f[s.labels[tr] == c].mean(axis=0) for c in range(8)])
    g = np.stack([features(i) for i in te])
    pred = ((g[:, None] - centroids[None]) ** 2).sum(-1).argmin(axis=1)
    assert (pred == s.labels[te]).mean() > 0.6  # chance: 0.125


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="at most"):
        make_synthetic_store(tmp_path / "s", num_classes=500, clips_per_class=3)
    with pytest.raises(ConfigError, match="clips_per_class >= 3"):
        make_synthetic_store(tmp_path / "s", num_classes=3, clips_per_class=1)
