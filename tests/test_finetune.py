"""Fine-tuning from a checkpoint (`train.init_from`, `train.freeze_blocks`, `train.head_only_epochs`)."""

from __future__ import annotations

import logging

import pytest
import torch

from stgcn.data.mm_pipeline import MMPipelineConfig
from stgcn.engine.checkpoint import load_checkpoint, save_checkpoint
from stgcn.engine.config import parse_config
from stgcn.engine.train import train
from stgcn.errors import CheckpointError, ConfigError
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.stgcn import STGCN
from tests.train_utils import TINY_BLOCKS, tiny_config, tiny_config_dict


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained 4-class checkpoint on a tiny synthetic kinect-v1 store (the model to start from)."""
    tmp = tmp_path_factory.mktemp("source")
    train(tiny_config(tmp / "store4", train={"epochs": 1}), tmp / "run")
    return tmp / "run" / "final.pt"


def _three_classes(tmp_path, **train_options):
    synthetic = {"num_classes": 3, "clips_per_class": 6, "layout": "kinect-v1", "seed": 1}
    return tiny_config_dict(tmp_path / "store3", data={"synthetic": synthetic}, train=train_options)


def _sd(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_finetune_new_head_frozen_blocks_head_only_epochs(source, tmp_path, caplog):
    cfg = parse_config(_three_classes(tmp_path, init_from=str(source), freeze_blocks=1, head_only_epochs=1))
    with caplog.at_level(logging.INFO, logger="stgcn"):
        result = train(cfg, tmp_path / "ft")
    assert "the classifier is new (3 classes instead of the checkpoint's 4)" in caplog.text
    src, out = _sd(source), _sd(tmp_path / "ft" / "final.pt")
    assert out["fc.weight"].shape == (3, TINY_BLOCKS[-1][0])
    frozen = [k for k in src if (k.startswith(("blocks.0.", "data_bn.")) and "running" not in k
                                 and "num_batches" not in k)]
    assert frozen and all(torch.equal(src[k], out[k]) for k in frozen)
    assert not torch.equal(src["blocks.1.gcn.conv.weight"], out["blocks.1.gcn.conv.weight"])
    assert result.finished and load_checkpoint(tmp_path / "ft" / "final.pt").config.num_classes == 3


def test_head_only_epochs_change_only_the_head(source, tmp_path):
    cfg = parse_config(_three_classes(tmp_path, init_from=str(source), head_only_epochs=5, epochs=1))
    train(cfg, tmp_path / "head")
    src, out = _sd(source), _sd(tmp_path / "head" / "final.pt")
    for k in src:
        if not k.startswith("fc.") and "running" not in k and "num_batches" not in k:
            assert torch.equal(src[k], out[k]), k


def test_same_classes_loads_the_head_and_resume_is_exact(source, tmp_path):
    cfg = tiny_config(tmp_path / "store4", train={"init_from": str(source), "epochs": 3, "head_only_epochs": 1})
    full = train(cfg, tmp_path / "full")
    assert full.finished
    train(cfg, tmp_path / "killed", stop_after=1)
    train(cfg, tmp_path / "killed", resume=True)
    a, b = _sd(tmp_path / "full" / "final.pt"), _sd(tmp_path / "killed" / "final.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_mismatches_are_config_errors(source, tmp_path):
    other_layout = tiny_config_dict(tmp_path / "coco", data={"synthetic": {
        "num_classes": 3, "clips_per_class": 6, "layout": "coco-17", "seed": 0}},
        train={"init_from": str(source)})
    with pytest.raises(ConfigError, match="'coco-17'.*expects 'kinect-v1'"):
        train(parse_config(other_layout), tmp_path / "r1")
    blocks = _three_classes(tmp_path, init_from=str(source))
    blocks["model"] = {"blocks": [[8, 1], [32, 2]]}
    with pytest.raises(ConfigError, match="model.blocks"):
        train(parse_config(blocks), tmp_path / "r2")
    with pytest.raises(ConfigError, match="freeze_blocks is 5"):
        train(parse_config(_three_classes(tmp_path, init_from=str(source), freeze_blocks=5)), tmp_path / "r3")
    with pytest.raises(CheckpointError, match="no such"):
        train(parse_config(_three_classes(tmp_path, init_from=str(tmp_path / "nope.pt"))), tmp_path / "r4")
    with pytest.raises(ConfigError, match="freeze_blocks must be >= 0"):
        parse_config(_three_classes(tmp_path, freeze_blocks=-1))


def test_finetune_from_a_converted_mm_style_checkpoint(tmp_path, caplog):
    """A checkpoint whose stored preprocessing is an MM pipeline (as `stgcn convert mmaction2` writes)."""
    model = STGCN(STGCNConfig(num_classes=60, in_channels=3, graph=GraphConfig(layout="coco-17",
                              normalization="original"), blocks=tuple(map(tuple, TINY_BLOCKS))))
    src = tmp_path / "mm.pt"
    save_checkpoint(src, model, preprocess=MMPipelineConfig(prenormalize="2d", dataset="coco", clip_len=100,
                                                            num_clips=10))
    cfg = tiny_config_dict(tmp_path / "coco", data={"synthetic": {
        "num_classes": 5, "clips_per_class": 6, "layout": "coco-17", "seed": 0}},
        train={"init_from": str(src), "epochs": 1})
    cfg["model"] = {}  # the architecture comes from the checkpoint
    with caplog.at_level(logging.INFO, logger="stgcn"):
        result = train(parse_config(cfg), tmp_path / "run")
    assert "instead of the checkpoint's 60" in caplog.text
    ck = load_checkpoint(tmp_path / "run" / "final.pt")
    assert ck.config.num_classes == 5 and ck.config.graph.normalization == "original"
    assert result.model.config.blocks == tuple(map(tuple, TINY_BLOCKS))


def test_the_shipped_finetune_config_parses():
    from pathlib import Path

    from stgcn.engine.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "finetune-coco17.yaml")
    assert cfg.train.init_from and cfg.train.head_only_epochs == 5
    assert cfg.data.preprocess.channels == ("x", "y", "score")
