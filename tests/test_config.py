"""Training configs: YAML <-> dataclasses, unknown keys and wrong types as one-line errors, --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stgcn.cli import main
from stgcn.engine.config import (
    TrainConfig,
    config_from_dict,
    dump_config,
    load_config,
    parse_config,
    parse_override,
)
from stgcn.errors import ConfigError
from stgcn.models.config import DEFAULT_BLOCKS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BASE = {"data": {"store": "some/store"}}


def _error(data: dict, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(data, overrides, source="cfg.yaml")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("cfg.yaml: ")
    return msg


def test_defaults_and_sections():
    cfg = parse_config(BASE)
    assert isinstance(cfg, TrainConfig)
    assert cfg.data.store == "some/store" and cfg.data.train_split == "train" and cfg.data.test_split == "test"
    assert cfg.model.blocks == DEFAULT_BLOCKS and cfg.model.num_classes is None
    assert cfg.optim.name == "sgd" and cfg.optim.nesterov is True and cfg.optim.momentum == 0.9
    assert cfg.train.amp == "none" and cfg.train.grad_clip is None


def test_nested_values_are_typed():
    cfg = parse_config({"data": {"store": "s", "preprocess": {"length": 52, "channels": ["x", "y", "z"]},
                                 "augment": {"rotate_3d": 30}, "synthetic": {"num_classes": 3}},
                        "model": {"blocks": [[8, 1], [16, 2]], "graph": {"layout": "kinect-v1"}},
                        "optim": {"milestones": [10, 50], "lr": 1, "betas": [0.9, 0.99]}})
    assert cfg.data.preprocess.length == 52 and cfg.data.preprocess.channels == ("x", "y", "z")
    assert cfg.data.augment.rotate_3d == 30.0
    assert cfg.data.synthetic is not None and cfg.data.synthetic.num_classes == 3
    assert cfg.model.blocks == ((8, 1), (16, 2))
    assert cfg.optim.milestones == (10, 50) and cfg.optim.betas == (0.9, 0.99)
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)  # an int is a valid float


def test_round_trip_through_yaml():
    cfg = parse_config({"data": {"store": "s", "preprocess": {"length": 20}}, "model": {"blocks": [[8, 1]]},
                        "optim": {"schedule": "cosine", "warmup_epochs": 2}, "train": {"grad_clip": 5}})
    text = dump_config(cfg)
    assert config_from_dict(yaml.safe_load(text)) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_key_names_the_valid_keys():
    msg = _error({**BASE, "optim": {"lrr": 0.1}})
    assert "optim: unknown key 'lrr'" in msg and "valid keys are name, lr, momentum" in msg
    msg = _error({**BASE, "optimiser": {}})
    assert "unknown key 'optimiser'" in msg and "data, model, optim, train" in msg
    msg = _error({"data": {"store": "s", "preprocess": {"lenght": 3}}})
    assert "data.preprocess: unknown key 'lenght'" in msg and "length" in msg


@pytest.mark.parametrize(("section", "values", "expected"), [
    ("optim", {"lr": "fast"}, "optim.lr: expected float, got 'fast'"),
    ("train", {"epochs": 1.5}, "train.epochs: expected int, got 1.5"),
    ("train", {"epochs": True}, "train.epochs: expected int, got True"),
    ("train", {"quiet": "yes"}, "train.quiet: expected bool, got 'yes'"),
    ("model", {"blocks": [[8, 1], [16]]}, "model.blocks[1]: expected [int, int], got [16]"),
    ("optim", {"milestones": 10}, "optim.milestones: expected a list of int, got 10"),
])
def test_wrong_type_is_one_line(section, values, expected):
    assert expected in _error({**BASE, section: values})


@pytest.mark.parametrize(("section", "values", "expected"), [
    ("optim", {"name": "adam"}, "valid optimizers are sgd, adamw"),
    ("optim", {"schedule": "poly"}, "valid schedules are step, cosine, constant"),
    ("train", {"amp": "fp8"}, "valid modes are none, bf16, fp16"),
    ("train", {"device": "tpu"}, "valid devices are auto, cpu, cuda, cuda:N"),
    ("model", {"dropout": 1.5}, "dropout"),
    ("model", {"graph": {"layout": "no-such-layout"}}, "valid layouts are"),
    ("optim", {"milestones": [50, 10]}, "increasing"),
])
def test_invalid_values(section, values, expected):
    assert expected in _error({**BASE, section: values})


def test_missing_store():
    assert "missing required key 'data'" in _error({})
    assert "data: missing required key 'store'" in _error({"data": {}})


@pytest.mark.parametrize(("text", "key", "value"), [
    ("optim.lr=0.05", ["optim", "lr"], 0.05),
    ("train.epochs=3", ["train", "epochs"], 3),
    ("model.blocks=[[8, 1], [16, 2]]", ["model", "blocks"], [[8, 1], [16, 2]]),
    ("train.amp=bf16", ["train", "amp"], "bf16"),
    ("train.quiet=true", ["train", "quiet"], True),
    ("train.quiet=False", ["train", "quiet"], False),
    ("train.grad_clip=null", ["train", "grad_clip"], None),
    ("data.store='123'", ["data", "store"], "123"),
    ("data.store=runs/a b", ["data", "store"], "runs/a b"),
])
def test_parse_override(text, key, value):
    assert parse_override(text) == (key, value)


def test_override_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    text = f"data.store=__import__('pathlib').Path({str(marker)!r}).touch()"
    key, value = parse_override(text)
    assert isinstance(value, str) and not marker.exists()


def test_overrides_apply_and_are_type_checked():
    cfg = parse_config(BASE, ["optim.lr=0.01", "model.blocks=[[8,1]]", "data.preprocess.length=30",
                              "data.synthetic.seed=4", "train.grad_clip=1"])
    assert cfg.optim.lr == 0.01 and cfg.model.blocks == ((8, 1),) and cfg.data.preprocess.length == 30
    assert cfg.data.synthetic.seed == 4 and cfg.train.grad_clip == 1.0
    assert "optim.lr: expected float, got 'abc'" in _error(BASE, ["optim.lr=abc"])
    assert "optim: unknown key 'lrr'" in _error(BASE, ["optim.lrr=1"])
    assert "expected section.key=value" in _error(BASE, ["optim.lr"])


def test_model_resolution_from_the_store():
    cfg = parse_config(BASE)
    m = cfg.model.resolve(10, 3, "kinect-v1")
    assert m.num_classes == 10 and m.in_channels == 3 and m.graph.layout == "kinect-v1"
    cfg = parse_config({**BASE, "model": {"num_classes": 12, "in_channels": 2, "graph": {"layout": "coco-17"}}})
    m = cfg.model.resolve(10, 3, "kinect-v1")
    assert m.num_classes == 12 and m.in_channels == 2 and m.graph.layout == "coco-17"


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  store: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line \d"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.data.store
    assert cfg.optim.lr > 0 and cfg.train.epochs >= 1
    assert config_from_dict(yaml.safe_load(dump_config(cfg))) == cfg


def test_shipped_configs_exist():
    names = {p.name for p in CONFIGS.glob("*.yaml")}
    for stream in ("joint", "bone", "joint-motion", "bone-motion"):
        assert f"nw-ucla-{stream}.yaml" in names
    assert {"quick.yaml", "msr-action3d-xsub.yaml", "msr-action3d-as1.yaml", "msr-action3d-as2.yaml",
            "msr-action3d-as3.yaml", "ntu60-xsub.yaml", "ntu60-xview.yaml", "kinetics.yaml"} <= names
    pyskl = {p.name for p in (CONFIGS / "pyskl").glob("*.yaml")}
    assert {f"ntu{n}-xsub-{d}-joint.yaml" for n in (60, 120) for d in ("2d", "3d")} | {"nw-ucla-joint.yaml"} <= pyskl


def test_cli_config_errors_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  store: s\noptim:\n  lrr: 0.1\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "unknown key 'lrr'" in err
    cfg.write_text("data:\n  store: s\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--set", "train.epochs=many"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.epochs: expected int, got 'many'" in err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------ the shared reader and helpers
def test_model_section_is_an_stgcn_config_resolved_from_the_store():
    from stgcn.models.config import STGCNConfig

    cfg = parse_config({**BASE, "model": {"graph": {"strategy": "distance"}}})
    assert isinstance(cfg.model, STGCNConfig) and not cfg.model.is_resolved
    assert cfg.model.graph.layout is None and cfg.model.in_channels is None  # left to the store
    m = cfg.model.resolve(5, 2, "coco-17")
    assert m.is_resolved and m.graph.strategy == "distance" and m.graph.layout == "coco-17"


def test_nested_errors_name_the_dotted_key():
    assert "model.graph.max_hop: expected int, got 'x'" in _error({**BASE, "model": {"graph": {"max_hop": "x"}}})
    assert "model.graph.max_hop must be an integer >= 1, got 0" in _error({**BASE, "model": {"graph": {"max_hop": 0}}})
    msg = _error({**BASE, "model": {"graph": {"hops": 2}}})
    assert "model.graph: unknown key 'hops'; valid keys are layout, strategy, max_hop" in msg


def test_device_helper():
    import torch

    from stgcn.utils.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device 'bogus' is not valid; valid devices are auto, cpu, cuda"):
        resolve_device("bogus", name="--device")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="train.device 'cuda': CUDA is not available.*valid devices here"):
            resolve_device("cuda", name="train.device")


def test_cudnn_benchmark_is_an_opt_in_bool():
    assert parse_config(BASE).train.cudnn_benchmark is False
    assert parse_config(BASE, ["train.cudnn_benchmark=true"]).train.cudnn_benchmark is True
    assert "train.cudnn_benchmark" in _error(BASE, ["train.cudnn_benchmark=fast"])
