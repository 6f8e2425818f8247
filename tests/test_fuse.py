"""Late fusion: weighted sums by hand, alignment by clip name, disagreement errors, the fuse CLI."""

from __future__ import annotations

import numpy as np
import pytest

from stgcn.cli import main
from stgcn.engine.evaluate import Scores, save_scores
from stgcn.engine.fuse import fuse_files, fuse_scores
from stgcn.errors import ConfigError, DataError

NAMES = ["a", "b", "c", "d"]
CLASSES = ["x", "y", "z"]
LABELS = np.array([0, 1, 2, 0])
# stream 1 alone: argmax 0, 1, 0, 1 -> 2/4; stream 2 alone: argmax 1, 1, 2, 0 -> 3/4
S1 = np.array([[2.0, 0, 0], [0, 1, 0], [1, 0, 0.5], [0, 3, 0]], dtype=np.float32)
S2 = np.array([[0.0, 1, 0], [0, 2, 0], [0, 0, 2], [2, 0, 0]], dtype=np.float32)


def _scores(s, names=NAMES, labels=LABELS, classes=CLASSES, clips=1):
    return Scores(np.asarray(s, np.float32), np.asarray(labels), list(names), list(classes), clips, "test")


def test_weighted_logit_sum_by_hand():
    result = fuse_scores([_scores(S1), _scores(S2)], [1.0, 2.0])
    assert np.allclose(result.scores.scores, S1 + 2 * S2)
    # fused argmax: [2,2,0]->0 ok, [0,5,0]->1 ok, [1,0,4.5]->2 ok, [4,3,0]->0 ok
    assert result.metrics["top1"] == 1.0
    assert fuse_scores([_scores(S1)]).metrics["top1"] == 0.5


def test_softmax_mode():
    result = fuse_scores([_scores(S1), _scores(S2)], mode="softmax")

    def softmax(x):
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    assert np.allclose(result.scores.scores, softmax(S1) + softmax(S2), atol=1e-6)


def test_streams_are_aligned_by_clip_name():
    perm = [2, 0, 3, 1]
    shuffled = _scores(S2[perm], names=[NAMES[i] for i in perm], labels=LABELS[perm])
    result = fuse_scores([_scores(S1), shuffled])
    assert result.scores.names == NAMES
    assert np.allclose(result.scores.scores, S1 + S2)


def test_disagreements_are_one_line_errors():
    ref = _scores(S1)
    cases = [
        (_scores(S2, names=["a", "b", "c", "e"]), "the clips differ"),
        (_scores(S2[:3], names=NAMES[:3], labels=LABELS[:3]), "scores 3 clips"),
        (_scores(S2, labels=[0, 1, 2, 1]), "labels differ from first.npz's (first at clip 'd')"),
        (_scores(S2, classes=["x", "y", "w"]), "class names differ"),
    ]
    for other, message in cases:
        with pytest.raises(DataError) as e:
            fuse_scores([ref, other], sources=["first.npz", "second.npz"])
        assert message in str(e.value) and str(e.value).startswith("second.npz") and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="one weight per file"):
        fuse_scores([ref, ref], [1.0])
    with pytest.raises(ConfigError, match="valid modes are logits, softmax"):
        fuse_scores([ref, ref], mode="max")
    with pytest.raises(ConfigError, match="not all 0"):
        fuse_scores([ref, ref], [0, 0])


def test_fuse_files_and_cli(tmp_path, capsys):
    save_scores(tmp_path / "joint.npz", _scores(S1))
    (tmp_path / "bone").mkdir()
    save_scores(tmp_path / "bone" / "scores.npz", _scores(S2, clips=2))
    fused, streams = fuse_files([tmp_path / "joint.npz", tmp_path / "bone"], [1, 2])
    assert [s.metrics["top1"] for s in streams] == [0.5, 0.75] and fused.metrics["top1"] == 1.0
    assert main(["fuse", str(tmp_path / "joint.npz"), str(tmp_path / "bone"), "--weights", "1", "2",
                 "--out", str(tmp_path / "fused"), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "fused (logits): top-1 100.00%" in out and "top-1 50.00%" in out and "top-1 75.00%" in out
    assert (tmp_path / "fused" / "scores.npz").is_file() and (tmp_path / "fused" / "metrics.json").is_file()
    assert main(["fuse", str(tmp_path / "joint.npz"), str(tmp_path / "nope.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.npz" in err and err.count("\n") == 1
