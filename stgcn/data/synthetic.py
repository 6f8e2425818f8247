"""A synthetic skeleton dataset with learnable, class-dependent motion: for trying the pipeline, demos and tests.

No real data is needed: :func:`make_synthetic_store` builds a rest pose for any layout (a tree embedding of
its bones), and each class swings one limb (the subtree below one joint) about an axis perpendicular to it,
at a class-specific frequency and swing plane. Every clip varies the amplitude, phase, speed, length, body
size, heading and position, adds a weaker swing of another random limb as a distractor, and jitter. The
class is therefore in the motion pattern, not in any single frame, and a small ST-GCN learns it in minutes.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.store import SkeletonStore, StoreWriter
from stgcn.errors import ConfigError
from stgcn.graph.layouts import Layout, get_layout

__all__ = ["make_synthetic_store", "synthetic_clip", "SyntheticClasses"]

log = logging.getLogger(__name__)


def _rotate(points: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate points about unit ``axis`` by per-frame ``angle`` (Rodrigues).

    Shape:
        points: (T, J, 3), axis: (3,), angle: (T,) -> (T, J, 3)
    """
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    dot = points @ axis  # (T, J)
    cross = np.cross(axis[None, None, :], points)
    return points * c + cross * s + axis * dot[..., None] * (1 - c)


class SyntheticClasses:
    """The rest pose and the per-class motion definitions of a synthetic dataset.

    Args:
        layout: The skeleton layout.
        num_classes: Number of classes; each gets a distinct (limb, swing plane, frequency) triple.
        seed: Seed of the rest pose and the assignment of motions to classes.
    """

    def __init__(self, layout: str | Layout, num_classes: int, seed: int) -> None:
        self.layout = get_layout(layout)
        lay = self.layout
        v = lay.num_joints
        parent = {j: p for j, p in lay.bone_pairs()}
        children: dict[int, list[int]] = {j: [] for j in range(v)}
        for j, p in parent.items():
            if j != p:
                children[p].append(j)
        order, queue = [], [lay.center]
        while queue:  # breadth-first from the centre joint
            j = queue.pop(0)
            order.append(j)
            queue.extend(children[j])
        rng = np.random.default_rng([seed, 1])
        pose = np.zeros((v, 3))
        for j in order:
            if j != parent[j]:
                direction = rng.normal(size=3)
                pose[j] = pose[parent[j]] + rng.uniform(0.12, 0.25) * direction / np.linalg.norm(direction)
        self.rest_pose = pose - pose.mean(axis=0)
        self.parent = parent

        def subtree(j: int) -> list[int]:
            out, stack = [], [j]
            while stack:
                k = stack.pop()
                out.append(k)
                stack.extend(children[k])
            return sorted(out)

        limbs = [j for j in order if j != lay.center and 2 <= len(subtree(j)) <= max(2, v // 2)]
        if not limbs:
            limbs = [j for j in order if j != lay.center]
        if not limbs:
            raise ConfigError(f"layout {lay.name!r} has no limb to move (it needs at least two joints)")
        combos = [(j, plane, freq) for freq in (1, 2, 3) for plane in (0, 1) for j in limbs]
        if num_classes > len(combos):
            raise ConfigError(f"layout {lay.name!r} supports at most {len(combos)} synthetic classes, "
                              f"got num_classes={num_classes}")
        first = [combos[i] for i in rng.permutation(len(limbs))]  # one class per limb first, in random order
        rest = [combos[len(limbs) + i] for i in rng.permutation(len(combos) - len(limbs))]
        self.classes = (first + rest)[:num_classes]
        self.limbs = limbs
        self.subtrees = {j: subtree(j) for j in limbs}

    @property
    def class_names(self) -> list[str]:
        """``<joint>-plane<p>-<f>x`` for each class, e.g. ``left_elbow-plane0-1x``."""
        return [f"{self.layout.joints[j]}-plane{plane}-{freq}x" for j, plane, freq in self.classes]

    def _axis(self, joint: int, plane: int) -> np.ndarray:
        limb = self.rest_pose[self.subtrees[joint]].mean(axis=0) - self.rest_pose[self.parent[joint]]
        limb = limb / max(np.linalg.norm(limb), 1e-8)
        helper = np.eye(3)[int(np.argmin(np.abs(limb)))]
        a = np.cross(limb, helper)
        a /= np.linalg.norm(a)
        return a if plane == 0 else np.cross(limb, a)

    def swing(self, pose: np.ndarray, joint: int, plane: int, angle: np.ndarray) -> np.ndarray:
        """Rotate the subtree of ``joint`` about its parent joint by ``angle`` per frame.

        Shape:
            pose: (T, V, 3), angle: (T,) -> (T, V, 3)
        """
        out = pose.copy()
        idx = self.subtrees[joint]
        pivot = pose[:, self.parent[joint]][:, None, :]
        out[:, idx] = _rotate(pose[:, idx] - pivot, self._axis(joint, plane), angle) + pivot
        return out


def synthetic_clip(classes: SyntheticClasses, label: int, rng: np.random.Generator) -> np.ndarray:
    """One random clip of class ``label``.

    Shape:
        output: (T, 1, V, 3) float32 with T in [40, 80].
    """
    joint, plane, freq = classes.classes[label]
    t = int(rng.integers(40, 81))
    time = np.arange(t) / t
    pose = np.broadcast_to(classes.rest_pose, (t, *classes.rest_pose.shape)).copy()
    speed = freq * rng.uniform(0.8, 1.25)
    angle = rng.uniform(0.7, 1.1) * np.sin(2 * math.pi * speed * time + rng.uniform(0, 2 * math.pi))
    pose = classes.swing(pose, joint, plane, angle)
    others = [j for j in classes.limbs if j != joint]
    if others:  # a weaker distractor motion of another limb
        other = others[int(rng.integers(len(others)))]
        angle = rng.uniform(0.1, 0.35) * np.sin(2 * math.pi * rng.uniform(0.5, 3) * time + rng.uniform(0, 6.3))
        pose = classes.swing(pose, other, int(rng.integers(2)), angle)
    yaw = rng.uniform(-math.pi / 6, math.pi / 6)
    pose = _rotate(pose, np.array([0.0, 1.0, 0.0]), np.full(t, yaw)) * rng.uniform(0.85, 1.15)
    pose += np.array([rng.normal(0, 0.3), rng.normal(0, 0.05), 2.5 + rng.normal(0, 0.3)])
    pose += rng.normal(0, 0.01, size=pose.shape)
    return pose[:, None].astype(np.float32)


def make_synthetic_store(
    out_dir: str | Path,
    *,
    num_classes: int = 8,
    clips_per_class: int = 30,
    layout: str | Layout = "kinect-v1",
    seed: int = 0,
    overwrite: bool = False,
) -> SkeletonStore:
    """Write a synthetic dataset store with splits ``train`` (two thirds of each class) and ``test``.

    Args:
        out_dir: Store directory to create (atomically).
        num_classes: Number of classes.
        clips_per_class: Clips per class (at least 3).
        layout: Skeleton layout (x, y, z channels, one person).
        seed: Same seed, same store.
        overwrite: Replace an existing store.

    Returns:
        The opened store. Its manifest's ``source`` records the arguments.
    """
    if num_classes < 2 or clips_per_class < 3:
        raise ConfigError(f"a synthetic store needs num_classes >= 2 and clips_per_class >= 3, got "
                          f"{num_classes} and {clips_per_class}")
    classes = SyntheticClasses(layout, num_classes, seed)
    lay = classes.layout
    rng = np.random.default_rng([seed, 2])
    n_train = max(1, round(clips_per_class * 2 / 3))
    source: dict[str, Any] = {"format": "synthetic", "num_classes": num_classes, "clips_per_class": clips_per_class,
                              "layout": lay.name, "seed": seed}
    with StoreWriter(out_dir, lay, ["x", "y", "z"], classes.class_names, "float32", num_persons=1,
                     overwrite=overwrite) as writer:
        for i in range(clips_per_class):
            for label in range(num_classes):
                split = "train" if i < n_train else "test"
                writer.add(f"c{label:02d}_{i:03d}", synthetic_clip(classes, label, rng), label, splits=[split])
        store = writer.finish(["train", "test"], source=source)
    log.info("wrote synthetic store %s: %d classes x %d clips, layout %s", out_dir, num_classes, clips_per_class,
             lay.name)
    return store
