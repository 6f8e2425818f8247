"""Bounds on sizes that come from a file or an option: one-line errors naming the limit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from stgcn.errors import DataError
from stgcn.utils.safe_pickle import loads_pickle


def test_shared_reference_blow_up_is_refused():
    x: list = [0.0] * 100
    for _ in range(6):
        x = [x] * 100  # 100**7 elements when expanded, a few kB pickled
    data = pickle.dumps({"annotations": x}, protocol=4)
    assert len(data) < 10_000
    with pytest.raises(DataError, match="shared references expand to more than") as info:
        loads_pickle(data, "hostile.pkl")
    assert str(info.value).startswith("hostile.pkl: ") and "\n" not in str(info.value)


def test_self_containing_pickle_is_refused():
    a: list = []
    a.append(a)
    with pytest.raises(DataError, match="contains itself"):
        loads_pickle(pickle.dumps(a), "loop.pkl")


def test_ordinary_pickles_still_load():
    obj = {"split": {"xsub_train": ["a", "b"]},
           "annotations": [{"keypoint": np.zeros((1, 30, 17, 2), np.float32), "label": i} for i in range(50)]}
    out = loads_pickle(pickle.dumps(obj), "ok.pkl")
    assert len(out["annotations"]) == 50 and out["annotations"][3]["keypoint"].shape == (1, 30, 17, 2)
    shared = np.zeros(5)
    assert len(loads_pickle(pickle.dumps([shared] * 1000), "s.pkl")) == 1000


# ---------------------------------------------------------------- model config bounds
@pytest.mark.parametrize(("kw", "message"), [
    ({"num_classes": 10**12}, "num_classes must be <= 100000"),
    ({"blocks": [[10**9, 1]]}, r"blocks\[0\] channels must be <= 16384"),
    ({"in_channels": 10**7}, "in_channels must be <= 16384"),
    ({"graph": {"layout": "coco-17", "max_hop": 10**6}}, "max_hop must be <= 32"),
])
def test_model_sizes_are_bounded(kw, message):
    from stgcn.errors import ConfigError
    from stgcn.models.config import STGCNConfig

    d = {"num_classes": 3, "graph": {"layout": "coco-17"}, **kw}
    with pytest.raises(ConfigError, match=message):
        STGCNConfig.from_dict(d)


def test_checkpoint_with_huge_num_classes_is_one_line(tmp_path):
    import torch

    from stgcn.cli import main
    from stgcn.engine.checkpoint import save_checkpoint
    from stgcn.models.config import GraphConfig, STGCNConfig
    from stgcn.models.stgcn import STGCN

    path = tmp_path / "m.pt"
    save_checkpoint(path, STGCN(STGCNConfig(num_classes=2, in_channels=2, graph=GraphConfig("coco-17"),
                                            blocks=((4, 1),))))
    raw = torch.load(path, weights_only=True)
    raw["config"]["num_classes"] = 10**12
    torch.save(raw, path)
    from stgcn.engine.checkpoint import load_checkpoint
    from stgcn.errors import CheckpointError

    with pytest.raises(CheckpointError, match="num_classes must be <= 100000"):
        load_checkpoint(path)
    assert main(["export", str(path), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 2


def test_class_names_as_a_string_is_an_error(tmp_path):
    import torch

    from stgcn.engine.checkpoint import load_checkpoint, save_checkpoint
    from stgcn.errors import CheckpointError, ConfigError
    from stgcn.models.config import GraphConfig, STGCNConfig
    from stgcn.models.stgcn import STGCN

    model = STGCN(STGCNConfig(num_classes=3, in_channels=2, graph=GraphConfig("coco-17"), blocks=((4, 1),)))
    with pytest.raises(ConfigError, match="class_names must be a list"):
        save_checkpoint(tmp_path / "m.pt", model, class_names="abc")
    save_checkpoint(tmp_path / "m.pt", model, class_names=["a", "b", "c"])
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    for bad in ("abc", [1, 2, 3]):
        raw["class_names"] = bad
        torch.save(raw, tmp_path / "m.pt")
        with pytest.raises(CheckpointError, match="class_names must be a list of strings"):
            load_checkpoint(tmp_path / "m.pt")


def test_names_are_escaped_for_terminals_and_csv():
    from stgcn.utils.safe_text import csv_safe, terminal_safe

    assert terminal_safe("wave\nerror: forged\x1b[31m") == "wave\\nerror: forged\\x1b[31m"
    assert terminal_safe("café kick") == "café kick"
    assert csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)" and csv_safe("walk") == "walk"
