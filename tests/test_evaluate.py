"""Evaluation: hand-computed metrics, the confusion matrix, K-clip averaging, score files and the eval CLI."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
import torch

from stgcn.cli import main
from stgcn.data.synthetic import make_synthetic_store
from stgcn.data.transforms import PreprocessConfig, build_transform
from stgcn.engine.checkpoint import load_checkpoint, save_checkpoint
from stgcn.engine.evaluate import (
    EvalResult,
    Scores,
    compute_metrics,
    confusion_matrix,
    evaluate,
    load_scores,
    save_evaluation,
    save_scores,
)
from stgcn.errors import DataError
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.stgcn import STGCN

# 6 samples, 3 classes; predictions (argmax): 0, 1, 1, 2, 0, 2; labels: 0, 1, 2, 2, 1, 1
SCORES = np.array([[3.0, 1, 0], [0, 2, 1], [0, 5, 4], [1, 0, 2], [2, 1, 0.5], [0, 1, 3]])
LABELS = np.array([0, 1, 2, 2, 1, 1])


def test_metrics_by_hand():
    m, cm = compute_metrics(SCORES, LABELS, ["a", "b", "c"])
    assert cm.tolist() == [[1, 0, 0], [1, 1, 1], [0, 1, 1]]
    assert m["top1"] == pytest.approx(3 / 6)
    assert m["per_class"] == {"a": 1.0, "b": pytest.approx(1 / 3), "c": 0.5}
    assert m["mean_class"] == pytest.approx((1 + 1 / 3 + 0.5) / 3)
    assert m["top5"] == 1.0  # k = min(5, C) = 3
    log_softmax = SCORES - np.log(np.exp(SCORES).sum(axis=1, keepdims=True))
    assert m["loss"] == pytest.approx(-log_softmax[np.arange(6), LABELS].mean())
    assert m["num_samples"] == 6


def test_top5_and_absent_classes():
    scores = np.tile(np.arange(7, dtype=float), (2, 1))  # ranking 6 > 5 > 4 > 3 > 2 > 1 > 0
    m, cm = compute_metrics(scores, np.array([2, 1]))
    assert m["top5"] == 0.5 and m["top1"] == 0.0  # class 2 is 5th, class 1 is 6th
    assert m["per_class"]["0"] is None and m["per_class"]["2"] == 0.0
    assert m["mean_class"] == 0.0  # only classes with samples count
    assert confusion_matrix(np.array([6, 6]), np.array([2, 1]), 7)[2, 6] == 1


def test_metric_input_errors():
    with pytest.raises(DataError, match="class indices"):
        compute_metrics(SCORES, np.array([0, 1, 2, 3, 0, 0]))
    with pytest.raises(DataError, match="class names"):
        compute_metrics(SCORES, LABELS, ["a"])


def test_scores_round_trip_and_errors(tmp_path):
    s = Scores(SCORES.astype(np.float32), LABELS, [f"clip{i}" for i in range(6)], ["a", "b", "c"], 3, "test")
    save_scores(tmp_path / "s.npz", s)
    back = load_scores(tmp_path / "s.npz")
    assert np.array_equal(back.scores, s.scores) and np.array_equal(back.labels, s.labels)
    assert back.names == s.names and back.class_names == s.class_names and back.clips == 3 and back.split == "test"
    with pytest.raises(DataError, match="cannot read scores"):
        load_scores(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="missing scores, labels, names, class_names"):
        load_scores(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="junk.npz"):
        load_scores(tmp_path / "junk.npz")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    store = make_synthetic_store(root / "store", num_classes=3, clips_per_class=6, seed=1)
    cfg = STGCNConfig(num_classes=3, graph=GraphConfig(layout="kinect-v1"), blocks=((8, 1), (16, 2)))
    torch.manual_seed(0)
    model = STGCN(cfg).eval()
    pre = PreprocessConfig(length=20, resize="uniform", center="first")
    save_checkpoint(root / "model.pt", model, class_names=store.class_names, preprocess=pre.to_dict())
    return root, store, pre


def test_evaluate_matches_a_direct_forward(setup):
    root, store, pre = setup
    result = evaluate(root / "model.pt", store, split="test", batch_size=3)
    idx = store.split("test")
    tf = build_transform(pre, train=False, layout=store.layout)
    x = torch.from_numpy(np.stack([tf(store.clip(int(i))) for i in idx]))
    model = load_checkpoint(root / "model.pt").model
    with torch.no_grad():
        want = model(x).numpy()
    assert result.scores.names == [store.name(int(i)) for i in idx]
    assert np.array_equal(result.scores.labels, store.labels[idx])
    assert np.allclose(result.scores.scores, want, atol=1e-5)
    assert result.metrics["top1"] == pytest.approx(float((want.argmax(1) == store.labels[idx]).mean()))


def test_k_clip_testing_averages_the_clips(setup):
    root, store, pre = setup
    result = evaluate(root / "model.pt", store, split="test", clips=3)
    assert result.scores.clips == 3
    model = load_checkpoint(root / "model.pt").model
    idx = store.split("test")
    want = []
    for k in range(3):  # clip k of 3 = the frame at fraction (k + 0.5) / 3 of each segment
        tf = build_transform(PreprocessConfig(**{**pre.to_dict(), "num_clips": 3}), train=False, layout=store.layout)
        xs = torch.from_numpy(np.stack([tf(store.clip(int(i)))[k] for i in idx]))
        with torch.no_grad():
            want.append(model(xs).numpy())
    assert np.allclose(result.scores.scores, np.mean(want, axis=0), atol=1e-5)
    single = evaluate(root / "model.pt", store, split="test", clips=1)
    assert not np.allclose(single.scores.scores, result.scores.scores)


def test_evaluate_rejects_a_store_of_another_layout(setup, tmp_path):
    root, _, _ = setup
    other = make_synthetic_store(tmp_path / "coco", num_classes=3, clips_per_class=3, layout="coco-17")
    with pytest.raises(DataError, match=r"'coco-17' \(17 joints.*the model expects 'kinect-v1' \(20 joints"):
        evaluate(root / "model.pt", other)


def test_save_evaluation_files(setup, tmp_path):
    pytest.importorskip("matplotlib")
    result = EvalResult(Scores(SCORES.astype(np.float32), LABELS, [f"c{i}" for i in range(6)], ["a", "b", "c"]),
                        *compute_metrics(SCORES, LABELS, ["a", "b", "c"]))
    files = save_evaluation(tmp_path / "out", result, extra={"checkpoint": "x.pt"})
    assert set(files) == {"metrics", "per_class", "confusion", "scores", "confusion_png"}
    metrics = json.loads(files["metrics"].read_text())
    assert metrics["top1"] == 0.5 and metrics["checkpoint"] == "x.pt" and metrics["per_class"]["b"] == 1 / 3
    rows = list(csv.reader(files["confusion"].open()))
    assert rows[0] == ["true \\ predicted", "a", "b", "c"] and rows[2] == ["b", "1", "1", "1"]
    rows = list(csv.reader(files["per_class"].open()))
    assert rows[1] == ["a", "1.000000", "1", "1"] and rows[2][2:] == ["1", "3"]
    assert files["confusion_png"].read_bytes()[:4] == b"\x89PNG"


def test_no_matplotlib_skips_the_png_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = EvalResult(Scores(SCORES.astype(np.float32), LABELS, [f"c{i}" for i in range(6)], ["a", "b", "c"]),
                        *compute_metrics(SCORES, LABELS, ["a", "b", "c"]))
    with caplog.at_level("WARNING"):
        files = save_evaluation(tmp_path, result)
    assert "confusion_png" not in files and not (tmp_path / "confusion.png").exists()
    assert "pip install 'stgcn[plot]'" in caplog.text


def test_cli_eval(setup, tmp_path, capsys):
    root, store, _ = setup
    assert main(["eval", str(root / "model.pt"), str(store.path), "--clips", "2", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "[test, 2 clip(s)]" in out
    assert (root / "eval-test-2clips" / "scores.npz").is_file()
    assert not (root / "eval-test-2clips" / "confusion.png").exists()
    assert main(["eval", str(root / "model.pt"), str(store.path), "--split", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown split 'nope'; valid splits are train, test" in err and err.count("\n") == 1
    assert main(["eval", str(tmp_path / "missing.pt"), str(store.path)]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def test_one_store_compatibility_check(tmp_path):
    from stgcn.data.synthetic import make_synthetic_store
    from stgcn.engine.compat import check_store_fits
    from stgcn.errors import ConfigError
    from stgcn.models.config import GraphConfig, STGCNConfig

    st = make_synthetic_store(tmp_path / "s", num_classes=3, clips_per_class=3, layout="kinect-v1", seed=0)
    ok = STGCNConfig(num_classes=3, in_channels=3, graph=GraphConfig("kinect-v1"))
    check_store_fits(ok, st, 3)
    with pytest.raises(DataError, match=r"'kinect-v1' \(20 joints.*the model expects 'coco-17' \(17 joints"):
        check_store_fits(STGCNConfig(num_classes=3, graph=GraphConfig("coco-17")), st)
    with pytest.raises(DataError, match="'kinect-v1-msr'.*the same joints in another order"):
        check_store_fits(STGCNConfig(num_classes=3, graph=GraphConfig("kinect-v1-msr")), st)
    with pytest.raises(ConfigError, match="the store has 3 classes; the model predicts 2"):
        check_store_fits(STGCNConfig(num_classes=2, graph=GraphConfig("kinect-v1")), st, error=ConfigError)
    with pytest.raises(DataError, match="preprocessed clips have 2 channels; the model expects 3"):
        check_store_fits(ok, st, 2)
