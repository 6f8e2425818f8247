"""Graph partitions, hand-computed on a 4-joint path 0-1-2-3, for every strategy x normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from stgcn.errors import ConfigError
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout
from stgcn.graph.partitions import Graph, hop_distance

a = 0.001  # the notes' alpha
PATH = Layout(name="path4", joints=("j0", "j1", "j2", "j3"), edges=((0, 1), (1, 2), (2, 3)), center=1)
PATH_C0 = Layout(name="path4c0", joints=("j0", "j1", "j2", "j3"), edges=((0, 1), (1, 2), (2, 3)), center=0)


def _src_tgt(target_source: dict[tuple[int, int], float]) -> np.ndarray:
    """Expected matrix in the module's (source, target) indexing from {(target, source): value}."""
    m = np.zeros((4, 4))
    for (i, k), value in target_source.items():
        m[k, i] = value
    return m


def test_hop_distance_true_and_truncated():
    true = hop_distance(4, PATH.edges)
    assert true[0].tolist() == [0, 1, 2, 3]
    assert true[3].tolist() == [3, 2, 1, 0]
    cut = hop_distance(4, PATH.edges, max_hop=1)
    assert cut[0].tolist() == [0, 1, np.inf, np.inf]
    disconnected = hop_distance(3, ((0, 1),))
    assert disconnected[0, 2] == np.inf and disconnected[2, 2] == 0


def test_notes_uniform():
    g = Graph(PATH, "uniform", normalization="notes")
    deg = [2 + a, 3 + a, 3 + a, 2 + a]  # rows of A + I, plus alpha
    expected = _src_tgt({(i, k): 1 / np.sqrt(deg[i] * deg[k])
                         for i in range(4) for k in range(4) if abs(i - k) <= 1})
    assert g.K == 1
    np.testing.assert_allclose(g.A[0], expected, rtol=1e-6)
    np.testing.assert_allclose(g.A[0], g.A[0].T)  # symmetric under uni-labeling


def test_notes_distance():
    g = Graph(PATH, "distance", normalization="notes")
    assert g.K == 2 and g.partition_names == ["hop_0", "hop_1"]
    np.testing.assert_allclose(g.A[0], np.eye(4) / (1 + a), rtol=1e-6)
    deg = [1 + a, 2 + a, 2 + a, 1 + a]
    expected = _src_tgt({(i, k): 1 / np.sqrt(deg[i] * deg[k]) for i in range(4) for k in range(4)
                         if abs(i - k) == 1})
    np.testing.assert_allclose(g.A[1], expected, rtol=1e-6)
    # A + I = sum_j A_j before normalisation
    assert ((g.A != 0).sum(0) == (np.abs(np.subtract.outer(range(4), range(4))) <= 1)).all()


def test_notes_spatial():
    # distances to the centre (joint 1): r = [1, 0, 1, 2]
    g = Graph(PATH, "spatial", normalization="notes")
    assert g.partition_names == ["root", "centripetal_1", "centrifugal_1"]
    np.testing.assert_allclose(g.A[0], np.eye(4) / (1 + a), rtol=1e-6)
    # centripetal (source nearer the centre than the target): 0<-1, 2<-1, 3<-2; row sums [1, 0, 1, 1]
    lam = [1 + a, a, 1 + a, 1 + a]
    expected = _src_tgt({(0, 1): 1 / np.sqrt(lam[0] * lam[1]), (2, 1): 1 / np.sqrt(lam[2] * lam[1]),
                         (3, 2): 1 / np.sqrt(lam[3] * lam[2])})
    np.testing.assert_allclose(g.A[1], expected, rtol=1e-6)
    # centrifugal (the others): 1<-0, 1<-2, 2<-3; row sums [0, 2, 1, 0]
    lam = [a, 2 + a, 1 + a, a]
    expected = _src_tgt({(1, 0): 1 / np.sqrt(lam[1] * lam[0]), (1, 2): 1 / np.sqrt(lam[1] * lam[2]),
                         (2, 3): 1 / np.sqrt(lam[2] * lam[3])})
    np.testing.assert_allclose(g.A[2], expected, rtol=1e-6)
    # the partitions tile A + I exactly once
    support = (g.A != 0).astype(int).sum(0)
    assert (support == (np.abs(np.subtract.outer(range(4), range(4))) <= 1)).all()


def test_original_uniform_and_distance():
    # columns of (A + I) divided by their sums [2, 3, 3, 2]
    cols = [2, 3, 3, 2]
    full = np.array([[1 / cols[i] if abs(i - j) <= 1 else 0 for i in range(4)] for j in range(4)])
    g = Graph(PATH, "uniform", normalization="original")
    np.testing.assert_allclose(g.A[0], full, rtol=1e-6)
    np.testing.assert_allclose(g.A[0].sum(0), np.ones(4), rtol=1e-6)  # each target averages its inputs
    d = Graph(PATH, "distance", normalization="original")
    np.testing.assert_allclose(d.A[0], np.diag([1 / 2, 1 / 3, 1 / 3, 1 / 2]), rtol=1e-6)
    np.testing.assert_allclose(d.A[1], full - np.diag([1 / 2, 1 / 3, 1 / 3, 1 / 2]), rtol=1e-6)


def test_original_spatial_centre_1():
    # truncated distances to joint 1: r = [1, 0, 1, inf]
    g = Graph(PATH, "spatial", normalization="original")
    np.testing.assert_allclose(g.A[0], np.diag([1 / 2, 1 / 3, 1 / 3, 1 / 2]), rtol=1e-6)
    a1 = np.zeros((4, 4))
    a1[0, 1] = a1[2, 1] = a1[3, 2] = 1 / 3  # source farther than target (A[source, target])
    a2 = np.zeros((4, 4))
    a2[1, 0], a2[1, 2], a2[2, 3] = 1 / 2, 1 / 3, 1 / 2
    np.testing.assert_allclose(g.A[1], a1, rtol=1e-6)
    np.testing.assert_allclose(g.A[2], a2, rtol=1e-6)


def test_original_spatial_truncation_puts_far_pairs_in_root_group():
    # centre 0, max_hop 1: r = [0, 1, inf, inf]; joints 2 and 3 both 'inf' -> equal -> root group (A[1])
    orig = Graph(PATH_C0, "spatial", normalization="original")
    assert orig.A[1][2, 3] == pytest.approx(1 / 2) and orig.A[1][3, 2] == pytest.approx(1 / 3)
    assert orig.A[2][2, 3] == 0 and orig.A[2][3, 2] == 0
    # the notes' true distances [0, 1, 2, 3] separate them: 2 -> 3 is centripetal for target 3
    notes = Graph(PATH_C0, "spatial", normalization="notes")
    assert notes.A[1][2, 3] > 0 and notes.A[2][3, 2] > 0
    assert notes.A[1][3, 2] == 0 and notes.A[2][2, 3] == 0


def test_max_hop_and_dilation_counts():
    g = Graph("ntu-rgb+d", "distance", max_hop=2, normalization="notes")
    assert g.K == 3
    g = Graph("ntu-rgb+d", "distance", max_hop=2, dilation=2, normalization="original")
    assert g.partition_names == ["hop_0", "hop_2"]
    g = Graph("ntu-rgb+d", "spatial", max_hop=2, normalization="original")
    assert g.K == 5
    g = Graph("ntu-rgb+d", "spatial", max_hop=2, normalization="notes")
    assert g.K == 5


# nonzeros per partition of the built-in layouts, max_hop 1 (pinned)
EXPECTED_COUNTS = {
    ("openpose-18", "uniform", "notes"): [52], ("openpose-18", "distance", "notes"): [18, 34],
    ("openpose-18", "spatial", "notes"): [18, 17, 17], ("openpose-18", "spatial", "original"): [18, 25, 9],
    ("ntu-rgb+d", "uniform", "notes"): [73], ("ntu-rgb+d", "distance", "original"): [25, 48],
    ("ntu-rgb+d", "spatial", "notes"): [25, 24, 24], ("ntu-rgb+d", "spatial", "original"): [25, 40, 8],
    ("coco-17", "spatial", "notes"): [17, 16, 16], ("coco-17", "spatial", "original"): [17, 22, 10],
    ("mediapipe-pose-33", "spatial", "notes"): [33, 32, 46],
    ("mediapipe-pose-33", "spatial", "original"): [33, 66, 12],
    ("mediapipe-hand-21", "spatial", "notes"): [21, 20, 22],
    ("mediapipe-hand-21", "spatial", "original"): [21, 34, 8],
    ("kinect-v1", "spatial", "notes"): [20, 19, 19], ("kinect-v1", "spatial", "original"): [20, 31, 7],
    ("kinect-v1-msr", "spatial", "notes"): [20, 19, 19], ("kinect-v1-msr", "uniform", "notes"): [58],
}


@pytest.mark.parametrize("key", sorted(EXPECTED_COUNTS))
def test_builtin_partition_counts(key):
    layout, strategy, norm = key
    g = Graph(layout, strategy, normalization=norm)
    assert [int((p != 0).sum()) for p in g.A] == EXPECTED_COUNTS[key]
    assert g.V == BUILTIN_LAYOUTS[layout].num_joints


@pytest.mark.parametrize("layout", sorted(BUILTIN_LAYOUTS))
@pytest.mark.parametrize("strategy", ["uniform", "distance", "spatial"])
def test_partitions_tile_neighbourhood(layout, strategy):
    v = BUILTIN_LAYOUTS[layout].num_joints
    neighbourhood = hop_distance(v, BUILTIN_LAYOUTS[layout].edges) <= 1
    for norm in ("notes", "original"):
        g = Graph(layout, strategy, normalization=norm)
        covered = (g.A != 0).sum(0)
        assert covered.max() == 1 and (covered == 1).sum() == neighbourhood.sum()


def test_bad_options():
    with pytest.raises(ConfigError, match="valid strategies are uniform, distance, spatial"):
        Graph("openpose-18", "nope")
    with pytest.raises(ConfigError, match="valid normalizations are notes, original"):
        Graph("openpose-18", normalization="paper")
    with pytest.raises(ConfigError, match="max_hop"):
        Graph("openpose-18", max_hop=0)
    with pytest.raises(ConfigError, match="unknown layout 'nope'; valid layouts are openpose-18"):
        Graph("nope")
