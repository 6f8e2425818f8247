"""The PYSKL / MMAction2 ST-GCN training recipe: PreNormalize2D/3D and UniformSample in the training and test
transforms, probability averaging of K-clip tests, and the shipped configs in configs/pyskl/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from stgcn.data.mm_pipeline import (
    MMPipelineConfig,
    apply_mm_pipeline,
    combine_clip_logits,
    prenormalize_clip,
    sample_test_indices,
)
from stgcn.data.mm_sampling import sample_train_indices
from stgcn.data.transforms import PreprocessConfig, build_transform
from stgcn.data.transforms.temporal import temporal_indices
from stgcn.engine.config import load_config
from stgcn.engine.evaluate import predict_scores
from stgcn.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
PYSKL_CONFIGS = sorted((ROOT / "configs" / "pyskl").glob("*.yaml"))


def _fixture(shared_data: Path, name: str) -> dict:
    path = shared_data / "mm_fixtures" / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return torch.load(path, weights_only=True)


# ------------------------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("n", [1, 7, 99])
def test_train_sampler_loops_short_clips_from_a_random_start(n):
    starts = set()
    for seed in range(40):
        idx = sample_train_indices(n, 100, np.random.default_rng(seed))
        assert idx.shape == (100,) and idx.dtype == np.int64
        assert np.array_equal(idx, (idx[0] + np.arange(100)) % n)  # consecutive frames, looping
        starts.add(int(idx[0]))
    assert len(starts) == n if n < 10 else len(starts) >= 20


@pytest.mark.parametrize("n", [100, 150, 199])
def test_train_sampler_skips_frames_of_medium_clips(n):
    idx = sample_train_indices(n, 100, np.random.default_rng(3))
    steps = np.diff(idx)
    assert idx.shape == (100,) and (idx >= 0).all() and (idx < n).all()
    assert set(steps.tolist()) <= {1, 2} and int(idx[0]) + int((steps - 1).sum()) <= n - 100 + idx[0]
    assert int(idx[-1]) - int(idx[0]) + 1 - 100 <= n - 100


@pytest.mark.parametrize("n", [200, 450])
def test_train_sampler_takes_one_random_frame_per_bin(n):
    bins = np.array([j * n // 100 for j in range(101)])
    seen = []
    for seed in range(5):
        idx = sample_train_indices(n, 100, np.random.default_rng(seed))
        assert ((idx >= bins[:-1]) & (idx < bins[1:])).all()
        seen.append(idx)
    assert not all(np.array_equal(seen[0], s) for s in seen[1:])


def test_train_sampler_crops_with_p_interval_and_rejects_empty_clips():
    for seed in range(20):
        idx = sample_train_indices(300, 100, np.random.default_rng(seed), p_interval=(0.5, 0.5))
        assert idx.max() - idx.min() < 150
    with pytest.raises(DataError, match="0 frames"):
        sample_train_indices(0, 100, np.random.default_rng(0))


@pytest.mark.parametrize("n", [5, 64, 130, 300])
def test_pyskl_resize_mode_at_test_is_pyskls_k_clip_sampler(n):
    want = sample_test_indices(n, 100, 10, framework="pyskl")
    got = np.concatenate([temporal_indices(n, 100, "pyskl", clip_index=i, num_clips=10) for i in range(10)])
    assert np.array_equal(got, want)
    rng = np.random.default_rng(0)
    assert np.array_equal(temporal_indices(n, 100, "pyskl", rng=rng),
                          sample_train_indices(n, 100, np.random.default_rng(0)))


# ---------------------------------------------------------------------------------------- prenormalisation
def test_transform_reproduces_pyskls_test_input_exactly(shared_data):
    """configs/pyskl's preprocessing on the PYSKL fixture's raw annotation gives upstream's model input."""
    fx = _fixture(shared_data, "pyskl_stgcn_ntu3d_joint")
    pre = load_config(ROOT / "configs" / "pyskl" / "ntu60-xsub-3d-joint.yaml").data.preprocess
    clip = fx["annotation"]["keypoint"].numpy().transpose(1, 0, 2, 3)  # (T, M, V, C)
    x = build_transform(pre, train=False, layout="ntu-rgb+d-mmaction")(clip)  # (K, C, T, V, M)
    want = fx["model_input"].numpy().transpose(0, 4, 2, 3, 1)  # (K, M, T, V, C) -> (K, C, T, V, M)
    assert x.shape == want.shape == (10, 3, 100, 25, 2)
    assert np.abs(x - want).max() <= 1e-6


def test_prenormalize_3d_matches_the_mm_pipeline_and_aligns_the_body():
    rng = np.random.default_rng(0)
    clip = rng.normal(size=(30, 2, 25, 3)).astype(np.float32)
    clip[:4, 0] = 0  # main person absent in the first frames: those frames are dropped
    clip[:, 1] = 0
    out = prenormalize_clip(clip, "3d")
    assert out.shape == (26, 2, 25, 3) and out.dtype == np.float32
    ref = apply_mm_pipeline({"keypoint": clip.transpose(1, 0, 2, 3)},
                            MMPipelineConfig(framework="pyskl", prenormalize="3d", num_person=2))
    assert np.allclose(out, ref[0].transpose(1, 0, 2, 3), atol=1e-6)
    assert np.allclose(out[0, 0, 1], 0, atol=1e-6)  # centred on joint 1 of the first kept frame
    across = out[0, 0, 8] - out[0, 0, 4]
    assert across[0] > 0 and np.allclose(across[1:], 0, atol=1e-5)  # right -> left shoulder onto +x
    with pytest.raises(DataError, match="x, y, z"):
        prenormalize_clip(clip[..., :2], "3d")


def test_prenormalize_2d_scales_pixels_and_drops_low_scores():
    clip = np.zeros((3, 1, 17, 3), np.float32)
    clip[..., 0], clip[..., 1], clip[..., 2] = 1440.0, 270.0, 0.9
    clip[1, 0, 5, 2] = 0.005
    pre = PreprocessConfig(length=None, channels=("x", "y", "score"), image_size=(1920, 1080),
                           prenormalize="pyskl-2d")
    x = build_transform(pre, train=False, layout="coco-17")(clip)  # (C, T, V, M)
    assert np.allclose(x[0, 0, 0, 0], 0.5) and np.allclose(x[1, 0, 0, 0], -0.5) and np.allclose(x[2, 0, 0, 0], 0.9)
    assert x[0, 1, 5, 0] == 0 and x[1, 1, 5, 0] == 0 and np.isclose(x[2, 1, 5, 0], 0.005)


def test_prenormalize_options_are_checked():
    with pytest.raises(ConfigError, match="valid modes are none, pyskl-2d, pyskl-3d"):
        PreprocessConfig(prenormalize="3d")
    with pytest.raises(ConfigError, match="centres and aligns the clip itself"):
        PreprocessConfig(prenormalize="pyskl-3d", center="first")
    with pytest.raises(ConfigError, match="centres and aligns the clip itself"):
        PreprocessConfig(prenormalize="pyskl-3d", view_normalize=True)
    with pytest.raises(ConfigError, match="needs image_size"):
        PreprocessConfig(prenormalize="pyskl-2d")
    with pytest.raises(ConfigError, match="unset image_size"):
        PreprocessConfig(prenormalize="pyskl-3d", image_size=(640, 480))
    with pytest.raises(ConfigError, match="takes channels x, y, z"):
        build_transform(PreprocessConfig(prenormalize="pyskl-3d", channels=("x", "y", "score")), train=False,
                        layout="coco-17")
    with pytest.raises(ConfigError, match="valid modes are score, prob"):
        PreprocessConfig(average_clips="mean")
    assert PreprocessConfig().average_clips == "score" and PreprocessConfig().prenormalize == "none"


# ------------------------------------------------------------------------------------------ clip averaging
def test_combine_clip_logits_means_probabilities_or_logits():
    logits = torch.tensor([[[4.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    prob = combine_clip_logits(logits, "prob")
    want = (logits.softmax(-1).mean(1))
    assert torch.allclose(prob.softmax(-1), want) and torch.allclose(prob.exp(), want)
    assert torch.equal(combine_clip_logits(logits, "score"), logits.mean(1))
    # the two rules can disagree: one extreme clip wins the logit average, not the probability average
    logits = torch.tensor([[[0.0, 30.0], [5.0, 0.0], [5.0, 0.0]]])
    assert combine_clip_logits(logits, "prob").argmax().item() == 0
    assert combine_clip_logits(logits, "score").argmax().item() == 1
    with pytest.raises(ConfigError, match="average_clips"):
        combine_clip_logits(logits, "max")


class _Fixed(torch.nn.Module):
    """Returns the stored logits of each input, keyed by the input's first value."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0, 0, 0, 0].long()]


def test_predict_scores_averages_k_clips_as_configured():
    table = torch.tensor([[0.0, 30.0], [5.0, 0.0], [5.0, 0.0]])
    x = torch.arange(3.0).view(1, 3, 1, 1, 1, 1).expand(1, 3, 2, 1, 1, 1).contiguous()  # (B, K, C, T, V, M)
    batches = [(x, torch.tensor([0]), torch.tensor([0]))]
    model = _Fixed(table)
    score, _, _ = predict_scores(model, batches)
    prob, _, _ = predict_scores(model, batches, average_clips="prob")
    assert np.allclose(score, table.mean(0).numpy()[None])
    assert np.allclose(np.exp(prob), table.softmax(-1).mean(0).numpy()[None], atol=1e-6)
    assert score.argmax() == 1 and prob.argmax() == 0


def test_eval_uses_the_checkpoints_clip_average(tmp_path):
    """A trained checkpoint with average_clips='prob' is evaluated with probability averaging."""
    from stgcn.engine.evaluate import evaluate
    from stgcn.engine.train import train
    from tests.train_utils import tiny_config

    cfg = tiny_config(tmp_path / "store", train={"epochs": 1})
    pre = dataclasses.replace(cfg.data.preprocess, num_clips=3, average_clips="prob", resize="pyskl")
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, preprocess=pre))
    train(cfg, tmp_path / "run")
    result = evaluate(tmp_path / "run" / "final.pt", cfg.data.store, split=cfg.data.test_split)
    probs = np.exp(result.scores.scores.astype(np.float64))
    assert result.scores.clips == 3 and np.allclose(probs.sum(axis=1), 1, atol=1e-4)


# ------------------------------------------------------------------------------------------ shipped configs
def test_pyskl_configs_follow_the_upstream_recipe():
    assert {p.name for p in PYSKL_CONFIGS} >= {"ntu60-xsub-3d-joint.yaml", "ntu60-xsub-2d-joint.yaml",
                                               "ntu120-xsub-3d-joint.yaml", "ntu120-xsub-2d-joint.yaml",
                                               "nw-ucla-joint.yaml"}
    for path in PYSKL_CONFIGS:
        cfg = load_config(path)
        p, o, t = cfg.data.preprocess, cfg.optim, cfg.train
        assert (p.length, p.resize, p.num_clips, p.average_clips, p.stream) == (100, "pyskl", 10, "prob", "joint")
        assert p.prenormalize.startswith("pyskl-") and cfg.model.dropout == 0 and cfg.model.edge_importance
        assert cfg.model.graph.normalization == "original" and cfg.data.augment == type(cfg.data.augment)()
        assert (o.name, o.lr, o.momentum, o.nesterov, o.weight_decay) == ("sgd", 0.1, 0.9, True, 5e-4)
        assert (o.schedule, o.min_lr, o.warmup_epochs, t.epochs, t.repeat) == ("cosine", 0.0, 0, 16, 5)
        text = path.read_text()
        assert "3f6795f2573953342457abdb338f8943542f13c4" in text and "stgcn prepare" in text
        if path.name.startswith("ntu"):
            assert t.batch_size == 128 and p.max_persons == 2 and cfg.data.test_split == "xsub_val"
            assert cfg.model.num_classes is None and ("ntu120" in path.name) == ("ntu120" in cfg.data.store)


def _tiny_run(config: Path, store: Path, out: Path, *extra: str) -> dict:
    import json

    from stgcn.cli.main import main

    sets = ["train.epochs=1", "train.repeat=1", "train.batch_size=2", "train.eval_batch_size=2",
            "train.num_workers=0", "train.device=cpu", "train.quiet=true", "model.blocks=[[8,1],[16,2]]",
            f"data.store={store}", *extra]
    assert main(["train", str(config), "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 0
    assert main(["eval", str(out / "final.pt"), str(store), "--split", load_config(config, [
        f"data.store={store}", *extra]).data.test_split, "--out", str(out / "eval"), "--no-plot"]) == 0
    return json.loads((out / "eval" / "metrics.json").read_text())


@pytest.mark.parametrize("variant", ["ntu60", "ntu120"])
def test_ntu_3d_configs_train_on_raw_ntu_samples(shared_data, tmp_path, variant):
    """The 3-D configs' prepare + train + eval commands, on the five raw NTU samples (1 epoch)."""
    from stgcn.cli.main import main

    src = shared_data / "ntu_samples"
    if not src.is_dir():
        pytest.skip(f"{src} is absent")
    store = tmp_path / "store"
    assert main(["prepare", "ntu", str(src), str(store), "--variant", variant]) == 0
    metrics = _tiny_run(ROOT / "configs" / "pyskl" / f"{variant}-xsub-3d-joint.yaml", store, tmp_path / "run",
                        "data.test_split=xsub_test")
    assert metrics["num_samples"] >= 1 and 0 <= metrics["top1"] <= 1


@pytest.mark.parametrize("variant", ["ntu60", "ntu120"])
def test_ntu_2d_configs_train_on_a_pyskl_annotation_file(shared_data, tmp_path, variant):
    """The 2-D configs on a PYSKL annotation pickle made from the MMAction2 fixture's HRNet-style annotation."""
    import pickle

    from stgcn.cli.main import main

    ann = _fixture(shared_data, "mma2_stgcn_coco2d_joint")["annotation"]
    base = {"keypoint": ann["keypoint"].numpy(), "keypoint_score": ann["keypoint_score"].numpy(),
            "img_shape": tuple(int(v) for v in ann["img_shape"]), "total_frames": int(ann["total_frames"])}
    anns = [{**base, "frame_dir": f"clip{i}", "label": i % 3,
             "keypoint": base["keypoint"][:, : 60 + 30 * i].copy(),
             "keypoint_score": base["keypoint_score"][:, : 60 + 30 * i].copy(), "total_frames": 60 + 30 * i}
            for i in range(4)]
    pkl = tmp_path / f"{variant}_hrnet.pkl"
    pkl.write_bytes(pickle.dumps({"split": {"xsub_train": ["clip0", "clip1", "clip2"], "xsub_val": ["clip3"]},
                                  "annotations": anns}))
    store = tmp_path / "store"
    assert main(["prepare", "pyskl", str(pkl), str(store), "--layout", "coco-17"]) == 0
    h, w = base["img_shape"]
    metrics = _tiny_run(ROOT / "configs" / "pyskl" / f"{variant}-xsub-2d-joint.yaml", store, tmp_path / "run",
                        f"data.preprocess.image_size=[{w},{h}]")
    assert metrics["num_samples"] == 1
