"""Import of original ST-GCN checkpoints: the released Kinetics model reproduces the original code's logits,
and the ``original`` mode matches a literal transcription of the original for other layouts and strategies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stgcn.cli import main
from stgcn.convert.original import convert_original
from stgcn.engine.checkpoint import load_checkpoint
from stgcn.errors import CheckpointError
from stgcn.graph.partitions import Graph
from stgcn.models.config import DEFAULT_BLOCKS
from stgcn.models.reference import BaselineSTGCN

from .original_graph import original_adjacency

KINETICS = "st_gcn_kinetics/st_gcn.kinetics.fp32_from_int8.pt"
REFERENCE = "st_gcn_kinetics/reference_logits_original_code.npz"
LABELS = "kinetics_demo/kinetics400_label_name.txt"


@pytest.fixture(scope="module")
def kinetics_model(shared_data):
    return convert_original(shared_data / KINETICS, layout="openpose-18", strategy="spatial", num_classes=400)


@pytest.mark.parametrize("layout", ["ntu-rgb+d", "openpose-18"])
@pytest.mark.parametrize("strategy", ["uniform", "distance", "spatial"])
@pytest.mark.parametrize("max_hop", [1, 2, 3])
def test_original_graph_matches_literal_transcription(layout, strategy, max_hop):
    ours = Graph(layout, strategy, max_hop=max_hop, normalization="original").A
    np.testing.assert_array_equal(ours, original_adjacency(layout, strategy, max_hop).astype(np.float32))


def test_kinetics_reproduces_original_logits(shared_data, kinetics_model):
    ref = np.load(shared_data / REFERENCE)
    names = sorted(k[len("input__"):] for k in ref.files if k.startswith("input__"))
    assert len(names) == 5
    with torch.no_grad():
        for name in names:
            logits = kinetics_model(torch.from_numpy(ref[f"input__{name}"])[None])[0].numpy()
            np.testing.assert_allclose(logits, ref[f"logits__{name}"], atol=1e-4, rtol=0, err_msg=name)


def test_kinetics_cli_convert_gives_clean_and_jerk(shared_data, tmp_path, capsys):
    out = tmp_path / "kinetics.pt"
    assert main(["convert", "original", str(shared_data / KINETICS), "--layout", "openpose-18",
                 "--strategy", "spatial", "--num-classes", "400", "--class-names", str(shared_data / LABELS),
                 "--out", str(out)]) == 0
    assert "400 classes" in capsys.readouterr().out
    ck = load_checkpoint(out)
    x = torch.from_numpy(np.load(shared_data / REFERENCE)["input__clean_and_jerk"])[None]
    with torch.no_grad():
        probs = ck.model(x).softmax(-1)[0]
    assert ck.class_names[int(probs.argmax())] == "clean and jerk"
    assert float(probs.max()) > 0.9
    assert ck.config.graph.normalization == "original"


def _randomised_baseline(layout: str, strategy: str, in_channels: int, seed: int) -> BaselineSTGCN:
    torch.manual_seed(seed)
    a = torch.from_numpy(original_adjacency(layout, strategy)).float()
    base = BaselineSTGCN(a, in_channels, 7, DEFAULT_BLOCKS, 9, edge_importance=True)
    with torch.no_grad():  # make BN statistics and edge masks non-trivial
        for name, t in base.state_dict().items():
            if name.endswith("running_mean") or name.endswith(".bias"):
                t.normal_(0, 0.2)
            elif name.endswith("running_var") or name.endswith("bn.weight") or name.startswith("edge_importance"):
                t.uniform_(0.5, 1.5)
            elif "tcn.0.weight" in name or "tcn.3.weight" in name or "residual.1.weight" in name:
                t.uniform_(0.5, 1.5)
    return base.eval()


@pytest.mark.parametrize("strategy", ["uniform", "distance", "spatial"])
@pytest.mark.parametrize("in_channels", [2, 3])
def test_original_mode_is_general_ntu_two_persons(strategy, in_channels):
    base = _randomised_baseline("ntu-rgb+d", strategy, in_channels, seed=in_channels)
    ours = convert_original(base.state_dict(), layout="ntu-rgb+d", strategy=strategy)
    assert ours.config.in_channels == in_channels and ours.config.num_classes == 7
    x = torch.randn(3, in_channels, 24, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), base(x), rtol=1e-5, atol=1e-5)


def test_converter_is_strict(shared_data):
    sd = torch.load(shared_data / KINETICS, weights_only=True)
    extra = dict(sd, **{"st_gcn_networks.0.gcn.extra": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\).*st_gcn_networks\.0\.gcn\.extra"):
        convert_original(extra, layout="openpose-18")
    missing = {k: v for k, v in sd.items() if k != "st_gcn_networks.3.tcn.3.running_var"}
    with pytest.raises(CheckpointError, match=r"missing \['blocks\.3\.tcn\.bn2\.running_var'\]"):
        convert_original(missing, layout="openpose-18")
    with pytest.raises(CheckpointError, match="400 classes, option says 60"):
        convert_original(sd, layout="openpose-18", num_classes=60)
    with pytest.raises(CheckpointError, match="not a multiple of V=25"):
        convert_original(sd, layout="ntu-rgb+d")
    with pytest.raises(CheckpointError, match=r"A has shape \(3, 18, 18\).*\(K=1"):
        convert_original(sd, layout="openpose-18", strategy="uniform")


def test_converter_file_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        convert_original(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"bad\.pt: not a readable PyTorch state_dict"):
        convert_original(bad)
    assert main(["convert", "original", str(bad), "--out", str(tmp_path / "o.pt")]) == 2
    assert not (tmp_path / "o.pt").exists()
