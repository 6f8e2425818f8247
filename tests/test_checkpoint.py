"""Self-describing checkpoints: round trip, strictness, one-line errors, atomic writes."""

from __future__ import annotations

import json

import pytest
import torch

from stgcn.cli import main
from stgcn.data.transforms import PreprocessConfig
from stgcn.engine.checkpoint import load_checkpoint, save_checkpoint
from stgcn.errors import CheckpointError, ConfigError
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.stgcn import STGCN


def tiny(**kw) -> STGCN:
    torch.manual_seed(0)
    return STGCN(STGCNConfig(num_classes=3, in_channels=2, graph=GraphConfig("coco-17"),
                             blocks=((8, 1), (16, 2)), **kw))


def test_round_trip_rebuilds_model_from_file_alone(tmp_path):
    model = tiny().eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, class_names=["a", "b", "c"], preprocess={"length": 32},
                    metadata={"epoch": 3})
    ck = load_checkpoint(path)
    assert ck.class_names == ["a", "b", "c"] and ck.preprocess == PreprocessConfig(length=32)
    assert ck.metadata == {"epoch": 3}
    assert ck.config == model.config and not ck.model.training
    x = torch.randn(2, 2, 10, 17, 1)
    with torch.no_grad():
        torch.testing.assert_close(ck.model(x), model(x))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "stgcn" and raw["format_version"] == 1
    assert raw["preprocess"] == PreprocessConfig(length=32).to_dict()  # stored as plain data


def test_preprocessing_is_parsed_strictly_at_load(tmp_path):
    model = tiny().eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, preprocess=PreprocessConfig(length=20, center="first"))
    assert load_checkpoint(path).preprocess == PreprocessConfig(length=20, center="first")
    raw = torch.load(path, weights_only=True)
    raw["preprocess"] = {"window": 32}
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="invalid preprocessing.*unknown key 'window'"):
        load_checkpoint(path)
    json.dumps(raw["config"])  # the config is plain data
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left behind


def test_custom_layout_is_embedded(tmp_path):
    layout = tmp_path / "tri.json"
    layout.write_text('{"joints": ["a", "b", "c"], "edges": [[0, 1], [1, 2]], "center": 1}')
    model = STGCN(STGCNConfig(num_classes=2, graph=GraphConfig(str(layout)), blocks=((4, 1),)))
    save_checkpoint(tmp_path / "m.pt", model)
    layout.unlink()
    assert load_checkpoint(tmp_path / "m.pt").model.A.shape == (3, 3, 3)


def test_errors_are_one_line(tmp_path):
    model = tiny()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model)
    data = path.read_bytes()
    cases = {
        "absent.pt": None,
        "truncated.pt": data[: len(data) // 2],
        "text.pt": b"hello",
    }
    for name, content in cases.items():
        target = tmp_path / name
        if content is not None:
            target.write_bytes(content)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(target)
        assert name in str(info.value) and "\n" not in str(info.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"st_gcn_networks.0.gcn.conv.weight": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="stgcn convert original"):
        load_checkpoint(foreign)
    newer = tmp_path / "newer.pt"
    torch.save({**torch.load(path, weights_only=True), "format_version": 99}, newer)
    with pytest.raises(CheckpointError, match="format_version 99 is not supported"):
        load_checkpoint(newer)


def test_strict_weights(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny())
    raw = torch.load(path, weights_only=True)
    raw["state_dict"].pop("fc.bias")
    torch.save(raw, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"weights do not match the saved config.*fc\.bias"):
        load_checkpoint(tmp_path / "missing.pt")
    raw = torch.load(path, weights_only=True)
    raw["config"]["num_classes"] = 9
    torch.save(raw, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(tmp_path / "shape.pt")


def test_class_names_must_match(tmp_path):
    with pytest.raises(ConfigError, match="2 class names given for a model with 3 classes"):
        save_checkpoint(tmp_path / "m.pt", tiny(), class_names=["a", "b"])


def test_cli_graph_text_and_json(capsys):
    assert main(["graph", "openpose-18", "--strategy", "spatial"]) == 0
    out = capsys.readouterr().out
    assert "V (joints)     18" in out and "K (partitions) 3" in out and "centripetal_1" in out
    assert main(["graph", "ntu-rgb+d", "--strategy", "distance", "--normalization", "original", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["V"] == 25 and data["K"] == 2 and [p["nonzero"] for p in data["partitions"]] == [25, 48]
    assert main(["graph", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown layout 'nope'")
