"""The multi-person tracker on synthetic people: crossing, occluded, entering, leaving."""

from __future__ import annotations

import numpy as np
import pytest

from stgcn.errors import ConfigError, DataError
from stgcn.inference.tracker import Tracker, boxes_from_keypoints


def person(cx: float, cy: float, *, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """An 18-joint standing skeleton (V, 3) centred at (cx, cy), about 40 x 120 pixels, scores 1."""
    rng = np.random.default_rng(seed)
    offsets = np.stack([rng.uniform(-20, 20, 18), np.linspace(-60, 60, 18)], axis=-1) * scale
    kp = np.ones((18, 3), np.float32)
    kp[:, :2] = offsets + [cx, cy]
    return kp


def run(tracker: Tracker, frames: list[list[np.ndarray]]) -> list[list[int]]:
    out = []
    for f, people in enumerate(frames):
        kp = np.stack(people) if people else np.zeros((0, 18, 3), np.float32)
        out.append(tracker.update(f, kp).ids)
    return out


def test_boxes_from_keypoints_ignore_unseen_joints():
    kp = person(100, 100)[None]
    kp[0, 0] = [500, 500, 0]  # an undetected joint far away
    box = boxes_from_keypoints(kp, 0.1)[0]
    assert box[2] < 130 and box[3] <= 160


def test_two_people_crossing_keep_their_ids():
    """A walks right, B walks left; they pass each other (boxes overlap for several frames)."""
    frames = []
    for f in range(60):
        a = person(50 + 5 * f, 100, seed=1)
        b = person(350 - 5 * f, 110, seed=2)
        frames.append([b, a] if f % 2 else [a, b])  # the detector's order changes every frame
    ids = run(Tracker(), frames)
    for f, row in enumerate(ids):
        a_id, b_id = (row[1], row[0]) if f % 2 else (row[0], row[1])
        assert (a_id, b_id) == (0, 1), f"frame {f}: {row}"


def test_occluded_person_is_reidentified_within_max_age():
    frames = [[person(100 + 2 * f, 100)] for f in range(20)]
    frames += [[] for _ in range(10)]  # hidden for 10 frames (walking on)
    frames += [[person(100 + 2 * f, 100)] for f in range(30, 40)]
    tracker = Tracker(max_age=15)
    assert {i for row in run(tracker, frames) for i in row} == {0}
    # beyond max_age the person comes back as someone new
    tracker = Tracker(max_age=5)
    ids = run(tracker, frames)
    assert ids[0] == [0] and ids[-1] == [1]


def test_entering_and_leaving_people():
    tracker = Tracker(max_age=3)
    started, ended = [], []
    for f in range(30):
        people = [person(100, 100)] if f < 20 else []  # A leaves at frame 20
        if f >= 10:
            people.append(person(300, 100, seed=3))  # B enters late, at frame 10
        u = tracker.update(f, np.stack(people))
        started += [(f, t.id) for t in u.started]
        ended += [(f, t.id) for t in u.ended]
    assert started == [(0, 0), (10, 1)]
    assert ended == [(23, 0)]  # last seen at 19, ended after max_age 3 frames unseen
    assert [t.id for t in tracker.close()] == [1]


def test_tracker_checks():
    with pytest.raises(ConfigError, match="max_age"):
        Tracker(max_age=-1)
    tracker = Tracker()
    tracker.update(3, np.zeros((0, 18, 3)))
    with pytest.raises(DataError, match="frames must increase"):
        tracker.update(3, np.zeros((0, 18, 3)))
