"""Converted MMAction2/PYSKL checkpoints end to end: stored test pipeline, Predictor, `stgcn predict`, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stgcn.cli.main import main
from stgcn.data.mm_pipeline import MMPipelineConfig, apply_mm_pipeline, clip_annotation
from stgcn.data.readers.keypoints import save_keypoints
from stgcn.data.transforms import PreprocessConfig
from stgcn.engine.checkpoint import load_checkpoint, preprocess_from_dict, preprocess_to_dict, save_checkpoint
from stgcn.errors import CheckpointError, ConfigError
from stgcn.inference.predict import Predictor

FIXTURES = Path("/work/shared/data/mm_fixtures")
NAMES = ["mma2_stgcn_coco2d_joint", "mma2_stgcn_ntu3d_joint", "pyskl_stgcn_ntu3d_joint"]


def _config_name(fx: dict) -> str:
    path = fx["config"]["config_file"]
    return Path(path).stem if fx["config"]["framework"] == "mmaction2" else path[len("configs/stgcn/"):-3]


@pytest.fixture(scope="module", params=NAMES)
def stored(request, tmp_path_factory):
    path = FIXTURES / f"{request.param}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    fx = torch.load(path, weights_only=True)
    tmp = tmp_path_factory.mktemp("mm")
    torch.save(fx["checkpoint"], tmp / "w.pth")
    out = tmp / "model.pt"
    framework = fx["config"]["framework"]
    assert main(["convert", framework, str(tmp / "w.pth"), "--config", _config_name(fx), "--out", str(out)]) == 0
    return fx, out, tmp


def _clip(fx: dict) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int] | None]:
    """The annotation as a (T, M, V, C) clip, its scores and image size (W, H)."""
    ann = fx["annotation"]
    kp = ann["keypoint"].numpy().transpose(1, 0, 2, 3)
    if "keypoint_score" not in ann:
        return kp, None, None
    h, w = (int(v) for v in ann["img_shape"])
    return kp, ann["keypoint_score"].numpy().transpose(1, 0, 2), (w, h)


def test_checkpoint_stores_the_tagged_pipeline(stored):
    fx, out, _ = stored
    ck = load_checkpoint(out)
    assert isinstance(ck.preprocess, MMPipelineConfig)
    raw = torch.load(out, weights_only=True)
    assert raw["preprocess"]["kind"] == "mm_pipeline"
    assert ck.class_names is not None and len(ck.class_names) == 60
    assert ck.metadata["source_format"] == fx["config"]["framework"]


def test_predictor_on_raw_annotation_matches_upstream_scores(stored):
    fx, out, _ = stored
    kp, scores, size = _clip(fx)
    predictor = Predictor.from_checkpoint(out)
    clip = kp if scores is None else np.concatenate([kp, scores[..., None]], axis=-1)
    if size is not None:  # pixels of the annotation's image, brought to the stored img_shape
        from stgcn.data.channels import fit_image_coordinates

        clip = fit_image_coordinates(clip, size, predictor.preprocess, ["x", "y", "score"])
    pred = predictor.predict(clip, topk=60)
    assert np.abs(pred.probabilities - fx["scores"].numpy()).max() < 1e-5
    assert abs(sum(pred.scores) - 1) < 1e-5


def test_cli_predict_json_on_a_clip_file_matches_upstream_scores(stored, capsys):
    fx, out, tmp = stored
    kp, scores, size = _clip(fx)
    ck = load_checkpoint(out)
    clip_file = tmp / "clip.json"
    channels = ["x", "y"] if scores is not None else ["x", "y", "z"]
    save_keypoints(clip_file, kp, layout=ck.config.graph.layout, scores=scores, channels=channels, image_size=size)
    capsys.readouterr()
    assert main(["predict", str(out), str(clip_file), "--json", "--topk", "60"]) == 0
    (result,) = json.loads(capsys.readouterr().out)  # --json is always a list, one object per clip
    got = np.zeros(60)
    for item in result["topk"]:
        got[item["index"]] = item["score"]
    assert np.abs(got - fx["scores"].numpy()).max() < 1e-5
    assert result["topk"][0]["label"] == ck.class_names[int(np.argmax(fx["scores"].numpy()))]


def test_sliding_window_runs_the_pipeline_per_window(stored):
    fx, out, _ = stored
    if fx["config"]["framework"] != "pyskl":
        pytest.skip("one fixture is enough (slow CPU)")
    kp, scores, _ = _clip(fx)
    clip = kp if scores is None else np.concatenate([kp, scores[..., None]], axis=-1)
    predictor = Predictor.from_checkpoint(out)
    assert predictor.default_window == 100 and predictor.fixed_length == 100
    windows = predictor.sliding_window(clip[:60], 40, 20, topk=3)
    assert [(w.start, w.end) for w in windows] == [(0, 40), (20, 60)]
    whole = predictor.predict(clip[20:60], topk=3)
    assert np.allclose(windows[1].prediction.probabilities, whole.probabilities, atol=1e-6)


def test_preprocess_dict_round_trip_and_strict_kinds():
    mm = MMPipelineConfig(prenormalize="2d", dataset="coco", clip_len=100, num_clips=10)
    d = preprocess_to_dict(mm)
    assert d["kind"] == "mm_pipeline" and preprocess_from_dict(d) == mm
    ours = PreprocessConfig()
    assert "kind" not in preprocess_to_dict(ours)  # the files of before keep their format
    assert preprocess_from_dict(ours.to_dict()) == ours
    assert preprocess_from_dict({"kind": "stgcn", **ours.to_dict()}) == ours
    with pytest.raises(ConfigError, match="valid kinds"):
        preprocess_from_dict({"kind": "other"})
    with pytest.raises(ConfigError, match="unknown key"):
        preprocess_from_dict({"kind": "mm_pipeline", "bogus": 1})


def test_bad_stored_pipeline_is_a_checkpoint_error(tmp_path):
    from stgcn.models.config import GraphConfig, STGCNConfig
    from stgcn.models.stgcn import STGCN

    model = STGCN(STGCNConfig(num_classes=3, in_channels=3, graph=GraphConfig(layout="coco-17"),
                              blocks=((8, 1),)))
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, preprocess=MMPipelineConfig(prenormalize="2d", dataset="coco"))
    assert isinstance(load_checkpoint(path).preprocess, MMPipelineConfig)
    obj = torch.load(path, weights_only=True)
    obj["preprocess"]["feats"] = ["xyz"]
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="invalid preprocessing"):
        load_checkpoint(path)


def test_eval_runs_the_mm_pipeline_like_the_predictor(tmp_path):
    from stgcn.data.synthetic import make_synthetic_store
    from stgcn.engine.evaluate import evaluate
    from stgcn.models.config import GraphConfig, STGCNConfig
    from stgcn.models.stgcn import STGCN

    st = make_synthetic_store(tmp_path / "store", num_classes=3, clips_per_class=3, layout="kinect-v1")
    torch.manual_seed(0)
    model = STGCN(STGCNConfig(num_classes=3, in_channels=6, graph=GraphConfig(layout="kinect-v1"),
                              blocks=((8, 1), (8, 2)))).eval()
    pipeline = MMPipelineConfig(feats=("j", "jm"), clip_len=12, num_clips=2, num_person=1)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, preprocess=pipeline)
    result = evaluate(path, st, split="test")
    predictor = Predictor.from_checkpoint(path, optimize=False)
    indices = st.split("test")
    assert result.scores.scores.shape == (len(indices), 3) and result.scores.clips == 2
    for row, i in zip(result.scores.scores, indices, strict=True):
        expected = predictor.logits(st.clip(int(i)))[0]
        assert np.allclose(row, expected, atol=1e-5)
    assert 0 <= result.metrics["top1"] <= 1


@pytest.fixture(scope="module")
def weights_2d(tmp_path_factory):
    path = FIXTURES / "mma2_stgcn_coco2d_joint.pt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    out = tmp_path_factory.mktemp("w2d") / "stgcn_8xb16-joint-u100-80e_ntu60-xsub-keypoint-2d_20221129-484a394a.pth"
    torch.save(torch.load(path, weights_only=True)["checkpoint"], out)
    return out


NAME_2D = "stgcn_8xb16-joint-u100-80e_ntu60-xsub-keypoint-2d"


def test_cli_convert_bad_inputs_are_one_line_errors_and_write_nothing(weights_2d, tmp_path, capsys):
    out = tmp_path / "m.pt"
    foreign = tmp_path / "original.pt"
    torch.save({"st_gcn_networks.0.gcn.conv.weight": torch.zeros(3)}, foreign)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(weights_2d.read_bytes()[:5000])
    cases = [
        (["mmaction2", str(foreign), "--config", NAME_2D], "not an MMAction2/PYSKL ST-GCN"),
        (["mmaction2", str(truncated), "--config", NAME_2D], "not a readable PyTorch checkpoint"),
        (["mmaction2", str(weights_2d), "--config", "stgcn_8xb16-joint-u100-80e_ntu60-xsub-keypoint-3d"], "gcn.A"),
        (["mmaction2", str(weights_2d), "--config", "nope"], "valid names are stgcn_8xb16"),
        (["pyskl", str(weights_2d), "--config", "stgcn_pyskl_ntu60_xsub_hrnet/j"], "MMAction2 checkpoint"),
        (["mmaction2", "nope", ], "valid names are"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(["convert", *args, "--out", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, (args, err)
        assert not out.exists() and not list(tmp_path.glob("*.tmp*"))


def test_cli_convert_infers_the_config_from_a_published_file_name(weights_2d, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["convert", "mmaction2", str(weights_2d), "--out", str(out)]) == 0
    assert load_checkpoint(out).metadata["config"] == NAME_2D


def test_cli_convert_catalogue_name_downloads_and_converts(weights_2d, tmp_path, monkeypatch, capsys):
    """`stgcn convert mmaction2 NAME`: the catalogue's URL (here a local file:// URL, no network) is
    downloaded into $STGCN_HOME and converted in one step."""
    import hashlib
    import shutil

    from stgcn.convert import catalogue

    digest = hashlib.sha256(weights_2d.read_bytes()).hexdigest()[:8]
    published = tmp_path / "served" / f"{NAME_2D}_20221129-{digest}.pth"  # random weights: their own hash
    published.parent.mkdir()
    shutil.copy(weights_2d, published)
    models = catalogue._models()
    for entry in models:
        if entry["name"] == NAME_2D:
            entry["url"] = published.as_uri()
    monkeypatch.setattr(catalogue, "_models", lambda: models)
    monkeypatch.setenv("STGCN_HOME", str(tmp_path / "home"))
    out = tmp_path / "m.pt"
    assert main(["convert", "mmaction2", NAME_2D, "--out", str(out)]) == 0
    assert (tmp_path / "home" / "checkpoints" / published.name).is_file()
    ck = load_checkpoint(out)
    assert ck.metadata["config"] == NAME_2D and ck.metadata["top1"] == 88.95
    assert isinstance(ck.preprocess, MMPipelineConfig) and ck.preprocess.num_clips == 10


def test_cli_models_table_and_json(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "framework", "dataset"] and len(lines) == 65
    assert main(["models", "--framework", "pyskl", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert entries and all(e["framework"] == "pyskl" and "url" in e for e in entries)


def test_video_path_feeds_an_mm_2d_model_through_the_predictor():
    """`stgcn video`: MediaPipe pixels of a W x H frame reach PreNormalize2D as (x - W/2) / (W/2)."""
    from stgcn.inference.pose import PoseSequence
    from stgcn.inference.video import model_channels, pose_to_model_input
    from stgcn.models.config import GraphConfig, STGCNConfig
    from stgcn.models.stgcn import STGCN

    model = STGCN(STGCNConfig(num_classes=4, in_channels=3, graph=GraphConfig(layout="coco-17"),
                              blocks=((8, 1),)))
    pipeline = MMPipelineConfig(prenormalize="2d", dataset="coco", clip_len=8, num_clips=2)
    predictor = Predictor(model, preprocess=pipeline, optimize=False)
    assert model_channels(predictor) == ("x", "y", "score")
    rng = np.random.default_rng(0)
    lm = np.concatenate([rng.uniform(0, 340, (12, 1, 33, 1)), rng.uniform(0, 256, (12, 1, 33, 1)),
                         np.zeros((12, 1, 33, 1)), rng.uniform(0.5, 1, (12, 1, 33, 1))], axis=-1).astype(np.float32)
    pose = PoseSequence(lm, width=340, height=256, fps=30.0)
    x = pose_to_model_input(pose, predictor)  # pixels rescaled to the stored img_shape (1080, 1920)
    direct = pose.keypoints("coco-17", ("x", "y", "score"))
    ann = {"keypoint": direct[..., :2].transpose(1, 0, 2, 3), "keypoint_score": direct[..., 2].transpose(1, 0, 2),
           "img_shape": (256, 340)}
    expected = apply_mm_pipeline(ann, pipeline)  # upstream with the video's own image size
    got = apply_mm_pipeline(clip_annotation(x, pipeline), pipeline)
    assert np.abs(got - expected).max() < 1e-5
    pred = predictor.predict(x, topk=4)
    assert abs(sum(pred.scores) - 1) < 1e-6
