"""Importing MMAction2 / PYSKL ST-GCN checkpoints: parity with the upstream fixtures, configs, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from stgcn.convert.catalogue import class_names, get_model_entry, list_models
from stgcn.convert.mm_config import model_spec, read_mm_config
from stgcn.convert.mmaction2 import _upstream_spatial, convert_mm, convert_mmaction2, convert_pyskl, resolve_mm_config
from stgcn.data.mm_pipeline import apply_mm_pipeline, average_clips, to_stgcn_input
from stgcn.errors import CheckpointError, ConfigError
from stgcn.graph.partitions import Graph

FIXTURES = Path("/work/shared/data/mm_fixtures")
NAMES = ["mma2_stgcn_coco2d_joint", "mma2_stgcn_ntu3d_joint", "pyskl_stgcn_ntu3d_joint"]


def _fixture(name: str) -> dict:
    path = FIXTURES / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return torch.load(path, weights_only=True)


def _config_name(fx: dict) -> str:
    path = fx["config"]["config_file"]
    if fx["config"]["framework"] == "mmaction2":
        return Path(path).stem
    return path[len("configs/stgcn/"):-3]


@pytest.fixture(scope="module", params=NAMES)
def converted(request, tmp_path_factory):
    fx = _fixture(request.param)
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    torch.save(fx["checkpoint"], path)
    conv = convert_mm(path, config=_config_name(fx), framework=fx["config"]["framework"])
    x = apply_mm_pipeline(fx["annotation"], conv.preprocessing)  # one forward per fixture: the CPU is slow
    with torch.no_grad():
        logits = conv.model(to_stgcn_input(x))
    return fx, conv, path, x, logits


def test_fixture_logits_match_upstream(converted):
    fx, conv, _, x, logits = converted
    assert np.abs(x - fx["model_input"].numpy()).max() <= 1e-6  # so these logits are the model_input's
    assert logits.shape == fx["clip_logits"].shape
    assert (logits - fx["clip_logits"]).abs().max().item() < 1e-4


def test_fixture_pipeline_model_and_averaging_match_scores(converted):
    fx, conv, _, _, logits = converted
    scores = average_clips(logits, conv.preprocessing.average_clips)
    assert (scores - fx["scores"]).abs().max().item() < 1e-5
    assert conv.class_names is not None and len(conv.class_names) == 60


def test_fixture_via_upstream_py_config(converted, tmp_path):
    fx, conv, path, _, _ = converted
    cfg = tmp_path / "cfg.py"
    cfg.write_text(f"model = {fx['config']['model']!r}\ntest_pipeline = {fx['config']['test_pipeline']!r}\n")
    again = convert_mm(path, config=cfg, framework=fx["config"]["framework"])
    assert again.preprocessing == conv.preprocessing
    for key, value in conv.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key


def test_fixture_graph_equals_original_spatial(converted):
    fx, conv, _, _, _ = converted
    a = fx["checkpoint"]["state_dict"]["backbone.gcn.3.gcn.A"]
    assert torch.equal(conv.model.A, a)
    assert torch.equal(conv.model.blocks[3].gcn.edge_importance.detach(), fx["checkpoint"]["state_dict"][
        "backbone.gcn.3.gcn.PA"])


# ------------------------------------------------------------------ synthetic checkpoints (no fixtures)
def _upstream_forward(sd: dict, x: torch.Tensor, head: str, strides: list[int]) -> torch.Tensor:
    """The upstream computation as the fixtures' README describes it (eval mode). x: (N, M, T, V, C)."""
    import torch.nn.functional as F

    def bn(y, p):
        return F.batch_norm(y, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"],
                            False, 0.0, 1e-5)

    n, m, t, v, c = x.shape
    y = bn(x.permute(0, 1, 3, 4, 2).reshape(n * m, v * c, t), "backbone.data_bn.")
    y = y.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
    for i, stride in enumerate(strides):
        p = f"backbone.gcn.{i}."
        if i == 0:
            res = 0
        elif p + "residual.conv.weight" in sd:
            res = bn(F.conv2d(y, sd[p + "residual.conv.weight"], sd[p + "residual.conv.bias"], (stride, 1)),
                     p + "residual.bn.")
        else:
            res = y
        z = F.conv2d(y, sd[p + "gcn.conv.weight"], sd[p + "gcn.conv.bias"])
        k = sd[p + "gcn.A"].shape[0]
        z = z.view(z.shape[0], k, -1, z.shape[2], v)
        z = torch.einsum("nkctv,kvw->nctw", z, sd[p + "gcn.A"] * sd[p + "gcn.PA"])
        z = torch.relu(bn(z, p + "gcn.bn."))
        z = bn(F.conv2d(z, sd[p + "tcn.conv.weight"], sd[p + "tcn.conv.bias"], (stride, 1), (4, 0)), p + "tcn.bn.")
        y = torch.relu(z + res)
    feat = y.mean(dim=(2, 3)).view(n, m, -1).mean(1)
    return F.linear(feat, sd[head + "weight"], sd[head + "bias"])


def _random_upstream(framework: str, layout: str, mode: str, num_classes: int = 60, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    a = (torch.from_numpy(Graph(layout, "spatial", normalization="original").A) if mode == "stgcn_spatial"
         else torch.from_numpy(_upstream_spatial(layout)))
    k, v = a.shape[0], a.shape[1]
    sd: dict[str, torch.Tensor] = {}

    def bn(p, ch):
        sd[p + "weight"] = 0.6 + 0.8 * torch.rand(ch, generator=g)
        sd[p + "bias"] = 0.1 * torch.randn(ch, generator=g)
        sd[p + "running_mean"] = 0.1 * torch.randn(ch, generator=g)
        sd[p + "running_var"] = 0.5 + torch.rand(ch, generator=g)
        sd[p + "num_batches_tracked"] = torch.tensor(7)

    def conv(p, cout, cin, kt=1):
        sd[p + "weight"] = torch.randn(cout, cin, kt, 1, generator=g) / (cin * kt) ** 0.5
        sd[p + "bias"] = 0.05 * torch.randn(cout, generator=g)

    bn("backbone.data_bn.", 3 * v)
    cin = 3
    for i, (cout, stride) in enumerate([(64, 1)] * 4 + [(128, 2), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1)]):
        p = f"backbone.gcn.{i}."
        sd[p + "gcn.PA"] = 1 + 0.3 * torch.randn(k, v, v, generator=g)
        sd[p + "gcn.A"] = a.clone()
        conv(p + "gcn.conv.", k * cout, cin)
        bn(p + "gcn.bn.", cout)
        conv(p + "tcn.conv.", cout, cout, 9)
        bn(p + "tcn.bn.", cout)
        if i > 0 and (cin != cout or stride != 1):
            conv(p + "residual.conv.", cout, cin)
            bn(p + "residual.bn.", cout)
        cin = cout
    head = "cls_head.fc." if framework == "mmaction2" else "cls_head.fc_cls."
    sd[head + "weight"] = torch.randn(num_classes, 256, generator=g) / 16
    sd[head + "bias"] = 0.05 * torch.randn(num_classes, generator=g)
    return sd


def _write_config(path: Path, layout: str, mode: str, num_classes: int = 60, **backbone) -> Path:
    extra = "".join(f", {k}={v!r}" for k, v in backbone.items())
    path.write_text(
        "model = dict(type='RecognizerGCN',\n"
        f"    backbone=dict(type='STGCN', graph_cfg=dict(layout={layout!r}, mode={mode!r}){extra}),\n"
        f"    cls_head=dict(type='GCNHead', num_classes={num_classes}, in_channels=256))\n"
        "test_pipeline = [dict(type='PreNormalize3D'), dict(type='GenSkeFeat', dataset='nturgb+d', feats=['j']),\n"
        "    dict(type='UniformSampleFrames', clip_len=20, num_clips=2, test_mode=True), dict(type='PoseDecode'),\n"
        "    dict(type='FormatGCNInput', num_person=2), dict(type='PackActionInputs')]\n")
    return path


@pytest.mark.parametrize("layout, mode", [("nturgb+d", "spatial"), ("coco", "stgcn_spatial"),
                                          ("openpose", "spatial")])
def test_synthetic_matches_reference_forward(tmp_path, layout, mode):
    ours = {"nturgb+d": "ntu-rgb+d-mmaction", "coco": "coco-17", "openpose": "openpose-18"}[layout]
    sd = _random_upstream("mmaction2", ours, mode)
    torch.save({"meta": {"epoch": 1}, "state_dict": sd}, tmp_path / "w.pth")
    conv = convert_mmaction2(tmp_path / "w.pth", config=_write_config(tmp_path / "c.py", layout, mode,
                                                                          tcn_dropout=0.5))
    assert conv.model.config.dropout == 0.5
    x = torch.randn(1, 2, 12, sd["backbone.gcn.0.gcn.A"].shape[1], 3)
    with torch.no_grad():
        ref = _upstream_forward(sd, x, "cls_head.fc.", [1, 1, 1, 1, 2, 1, 1, 2, 1, 1])
        got = conv.model(x.permute(0, 4, 2, 3, 1))
    assert (got - ref).abs().max().item() < 1e-4


# ------------------------------------------------------------------------------------------ bad input
@pytest.fixture
def synthetic(tmp_path):
    sd = _random_upstream("mmaction2", "ntu-rgb+d-mmaction", "stgcn_spatial")
    cfg = _write_config(tmp_path / "c.py", "nturgb+d", "stgcn_spatial")
    return sd, cfg, tmp_path


def _save(sd: dict, path: Path) -> Path:
    torch.save({"meta": {}, "state_dict": sd}, path)
    return path


def test_missing_and_extra_keys_are_named(synthetic):
    sd, cfg, tmp = synthetic
    missing = dict(sd)
    del missing["backbone.gcn.2.tcn.bn.running_var"]
    with pytest.raises(CheckpointError, match=r"missing key.*backbone\.gcn\.2\.tcn\.bn\.running_var"):
        convert_mmaction2(_save(missing, tmp / "m.pth"), config=cfg)
    extra = {**sd, "backbone.gcn.2.extra.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"unexpected key.*backbone\.gcn\.2\.extra\.weight"):
        convert_mmaction2(_save(extra, tmp / "e.pth"), config=cfg)


def test_shapes_checked_against_config(synthetic):
    sd, _, tmp = synthetic
    cfg120 = _write_config(tmp / "c120.py", "nturgb+d", "stgcn_spatial", num_classes=120)
    with pytest.raises(CheckpointError, match=r"cls_head\.fc\.weight has shape \(60, 256\)"):
        convert_mmaction2(_save(sd, tmp / "w.pth"), config=cfg120)
    coco = _write_config(tmp / "coco.py", "coco", "stgcn_spatial")
    with pytest.raises(CheckpointError, match="gcn.A has shape"):
        convert_mmaction2(tmp / "w.pth", config=coco)
    wrong_graph = {**sd, "backbone.gcn.0.gcn.A": torch.from_numpy(Graph("ntu-rgb+d", "spatial",
                                                                          normalization="original").A)}
    with pytest.raises(CheckpointError, match="differs from the 'stgcn_spatial' graph"):
        convert_mmaction2(_save(wrong_graph, tmp / "g.pth"), config=_write_config(tmp / "n.py", "nturgb+d",
                                                                                  "stgcn_spatial"))


def test_other_architectures_and_frameworks_refused(synthetic):
    sd, cfg, tmp = synthetic
    with pytest.raises(CheckpointError, match="looks like a MMAction2 checkpoint"):
        convert_pyskl(_save(sd, tmp / "w.pth"), config=cfg)
    original_style = {"data_bn.weight": torch.ones(75), "st_gcn_networks.0.gcn.conv.weight": torch.ones(3)}
    with pytest.raises(CheckpointError, match="not an MMAction2/PYSKL ST-GCN checkpoint"):
        convert_mmaction2(_save(original_style, tmp / "o.pth"), config=cfg)


def test_truncated_and_missing_files(synthetic):
    sd, cfg, tmp = synthetic
    data = _save(sd, tmp / "w.pth").read_bytes()
    (tmp / "t.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"t\.pth"):
        convert_mmaction2(tmp / "t.pth", config=cfg)
    with pytest.raises(CheckpointError, match="no such file"):
        convert_mmaction2(tmp / "absent.pth", config=cfg)


def test_unknown_config_name_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown config name 'stgcn_nope'.*stgcn_pyskl_ntu60_xsub_3dkp/j"):
        resolve_mm_config("stgcn_nope", "pyskl")


@pytest.mark.parametrize("option, match", [
    ("data_bn_type='MVC'", "data_bn_type='MVC' is not supported.*M\\*V\\*C"),
    ("gcn_adaptive='init'", "gcn_adaptive='init' is not supported"),
    ("tcn_type='mstcn'", "tcn_type='mstcn' is not supported"),
    ("frobnicate=1", "frobnicate"),
])
def test_unsupported_backbone_options(tmp_path, option, match):
    cfg = tmp_path / "c.py"
    cfg.write_text(f"model = dict(type='RecognizerGCN', backbone=dict(type='STGCN', {option}, "
                   "graph_cfg=dict(layout='coco', mode='stgcn_spatial')), cls_head=dict(type='GCNHead', "
                   "num_classes=60, in_channels=256))\ntest_pipeline = []\n")
    with pytest.raises(ConfigError, match=match):
        resolve_mm_config(cfg, "mmaction2")


class _Custom:
    def __init__(self, value):
        self.value = value


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/stgcn_mm_pwned",))


def test_restricted_reader_for_foreign_metadata(synthetic):
    sd, cfg, tmp = synthetic
    marker = Path("/tmp/stgcn_mm_pwned")
    marker.unlink(missing_ok=True)
    path = tmp / "meta.pth"
    torch.save({"meta": {"obj": _Custom(3), "evil": _Evil(), "seed": np.int64(4)}, "state_dict": sd}, path)
    with pytest.raises(Exception):  # noqa: B017 - the weights-only loader refuses, whatever its type
        torch.load(path, weights_only=True)
    conv = convert_mmaction2(path, config=cfg)
    assert not marker.exists()
    assert torch.equal(conv.model.fc.weight, sd["cls_head.fc.weight"])


# ------------------------------------------------------------------------------------- catalogue
def test_catalogue_lists_every_zoo_checkpoint():
    models = list_models()
    assert len(list_models("mmaction2")) == 16 and len(list_models("pyskl")) == 48
    for e in models:
        assert e["stream"] in ("J", "B", "JM", "BM") and 50 < e["top1"] < 100
        assert e["url"].startswith("http") and e["num_classes"] == len(class_names(e["class_names"]))
        if e["framework"] == "mmaction2":
            assert e["url"].endswith(f"-{e['sha256']}.pth")
    entry = get_model_entry("stgcn_8xb16-joint-u100-80e_ntu60-xsub-keypoint-2d")
    assert entry["sha256"] == "484a394a" and entry["layout"] == "coco-17" and entry["top1"] == 88.95


@pytest.mark.parametrize("entry", list_models(), ids=lambda e: e["name"])
def test_catalogue_entries_resolve(entry):
    spec, pipeline, info = resolve_mm_config(entry["name"], entry["framework"])
    assert spec.num_classes == entry["num_classes"] and spec.layout == entry["layout"]
    assert pipeline.feats == (entry["stream"].lower(),)
    if "vanilla" in entry["name"]:
        assert pipeline.pad_to == 300 and pipeline.clip_len is None and spec.dropout == 0.5
    else:
        assert (pipeline.clip_len, pipeline.num_clips) == (100, 10)


def test_class_names():
    assert class_names("ntu60")[:2] == ["drink water", "eat meal/snack"]
    assert len(class_names("ntu120")) == 120 and class_names("ntu120")[:60] == class_names("ntu60")
    with pytest.raises(ConfigError, match="valid ones are ntu60, ntu120"):
        class_names("kinetics")


# ------------------------------------------------------------------------------------------ config files
def test_config_base_inheritance(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "b.py").write_text(
        "model = dict(type='RecognizerGCN', backbone=dict(type='STGCN', graph_cfg=dict(layout='coco', "
        "mode='stgcn_spatial')), cls_head=dict(type='GCNHead', num_classes=60, in_channels=256))\nlr = 0.1 * 2\n")
    (tmp_path / "c.py").write_text("_base_ = 'base/b.py'\nmodel = dict(cls_head=dict(num_classes=120))\n"
                                   "data = dict(val=dict(pipeline=[dict(type='PoseDecode')]))\n"
                                   "data['test'] = data['val']\noptim = make_optimizer()\n")
    cfg = read_mm_config(tmp_path / "c.py")
    assert model_spec(cfg["model"]).num_classes == 120 and cfg["lr"] == 0.2
    assert cfg["data"]["test"]["pipeline"] == [{"type": "PoseDecode"}]
    (tmp_path / "d.py").write_text("_base_ = ['missing/base.py']\n")
    with pytest.raises(ConfigError, match="_base_ 'missing/base.py' is not at"):
        read_mm_config(tmp_path / "d.py")


@pytest.mark.parametrize("text, match", [
    ("import os\nmodel = dict()\n", "Import statement is not read"),
    ("def f():\n    pass\n", "FunctionDef statement"),
    ("model = dict(type='RecognizerGCN', backbone=build())\n", "model.backbone uses an expression"),
    ("model = dict(\n", "not valid Python"),
])
def test_config_refusals(tmp_path, text, match):
    (tmp_path / "c.py").write_text(text)
    with pytest.raises(ConfigError, match=match):
        resolve_mm_config(tmp_path / "c.py", "mmaction2")


def test_mmaction_ntu_layout_differs_from_original_around_the_hands():
    ours = Graph("ntu-rgb+d-mmaction", "spatial", normalization="original").A
    original = Graph("ntu-rgb+d", "spatial", normalization="original").A
    changed = np.argwhere(np.abs(ours - original) > 1e-9)
    assert len(changed) == 18
    assert set(changed[:, 1:].ravel()) <= {6, 7, 10, 11, 21, 22, 23, 24}  # wrists, hands, tips, thumbs
