"""The reference model (the original code's structure, the benchmarks' baseline) against our STGCN and its
fused inference copy.

Same weights must give the same logits (eval), the same gradients and BatchNorm statistics (training, in
float64 so that only the math is compared), in every memory mode. Small T keeps this fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import stgcn.inference.optimize
import stgcn.models.layers
import stgcn.models.stgcn
import stgcn.ops.layout
from stgcn.inference.optimize import FusedSTGCN, optimize_for_inference
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.reference import BaselineSTGCN, baseline_from_stgcn, copy_weights
from stgcn.models.stgcn import STGCN
from stgcn.ops.dispatch import dispatch_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "st_gcn_kinetics"

SMALL_BLOCKS = ((16, 1), (16, 1), (32, 2), (32, 1), (48, 2), (48, 1))


def _model(layout: str = "ntu-rgb+d", strategy: str = "spatial", blocks=SMALL_BLOCKS, edge_importance=True,
           dropout: float = 0.0, classes: int = 7, seed: int = 0) -> STGCN:
    """A model with every weight, mask and BN statistic random (nothing at its trivial init value)."""
    torch.manual_seed(seed)
    model = STGCN(STGCNConfig(num_classes=classes, graph=GraphConfig(layout=layout, strategy=strategy),
                              blocks=blocks, edge_importance=edge_importance, dropout=dropout))
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if "edge_importance" in name or "bn" in name else 0.05))
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def _input(model: STGCN, n: int = 3, t: int = 24, m: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, model.config.in_channels, t, model.num_joints, m, generator=g)


def test_baseline_keeps_the_original_parameter_names():
    base = baseline_from_stgcn(_model(layout="openpose-18", blocks=((64, 1), (64, 2))))
    keys = set(base.state_dict())
    assert {"A", "data_bn.running_var", "st_gcn_networks.0.gcn.conv.weight", "st_gcn_networks.0.tcn.0.weight",
            "st_gcn_networks.0.tcn.2.weight", "st_gcn_networks.0.tcn.3.bias", "st_gcn_networks.1.residual.0.weight",
            "st_gcn_networks.1.residual.1.running_mean", "edge_importance.1", "fcn.weight"} <= keys
    assert base.fcn.weight.shape == (7, 64, 1, 1)


@pytest.mark.skipif(not (DATA / "st_gcn.kinetics.fp32_from_int8.pt").exists(), reason="shared data absent")
def test_baseline_loads_the_original_checkpoint_and_reproduces_the_original_logits():
    sd = torch.load(DATA / "st_gcn.kinetics.fp32_from_int8.pt", map_location="cpu", weights_only=True)
    from stgcn.convert.original import convert_original

    ours = convert_original(sd, layout="openpose-18", strategy="spatial", num_classes=400)
    base = baseline_from_stgcn(ours).eval()
    base_keys = set(base.state_dict())
    assert base_keys == set(sd) | {"A"}  # the original's own names, one to one
    fused = optimize_for_inference(ours)
    ref = np.load(DATA / "reference_logits_original_code.npz")
    for key in ["input__clean_and_jerk"]:
        x = torch.from_numpy(ref[key])[None]
        want = torch.from_numpy(ref["logits__" + key[len("input__"):]])
        with torch.no_grad():
            for module in (base, ours, fused):
                assert (module(x)[0] - want).abs().max() < 1e-4


@pytest.mark.parametrize("layout,strategy,edge_importance", [
    ("ntu-rgb+d", "spatial", True), ("openpose-18", "uniform", True), ("coco-17", "distance", False)])
def test_same_logits_as_the_baseline(layout, strategy, edge_importance):
    model = _model(layout, strategy, edge_importance=edge_importance).eval()
    base = baseline_from_stgcn(model)
    assert not base.training
    x = _input(model)
    with torch.no_grad():
        ref = base(x)
        scale = float(ref.abs().max())
        assert scale > 0.1  # a meaningful comparison
        torch.testing.assert_close(model(x), ref, atol=1e-4 * max(1.0, scale), rtol=0)
        model.inference_chunk_size = 1
        torch.testing.assert_close(model(x), ref, atol=1e-4 * max(1.0, scale), rtol=0)
        for chunk in (None, 2):
            fused = optimize_for_inference(model, chunk_size=chunk)
            torch.testing.assert_close(fused(x), ref, atol=1e-4 * max(1.0, scale), rtol=0)
        # odd T with strides, one person
        x1 = _input(model, n=2, t=13, m=1)
        torch.testing.assert_close(optimize_for_inference(model)(x1), base(x1), atol=1e-4 * max(1.0, scale),
                                   rtol=0)


def test_fused_features_match_and_it_refuses_training():
    model = _model().eval()
    fused = optimize_for_inference(model)
    assert isinstance(fused, FusedSTGCN) and not any(True for _ in fused.parameters())
    x = _input(model, n=2)
    with torch.no_grad():
        torch.testing.assert_close(fused.forward_features(x), model.forward_features(x), atol=1e-5, rtol=1e-4)
    with pytest.raises(RuntimeError, match="inference-only"):
        fused.train()
    with pytest.raises(ValueError, match="chunk_size"):
        optimize_for_inference(model, chunk_size=0)
    with pytest.raises(ValueError, match="expected input"):
        fused(torch.zeros(1, 3, 10, 5, 1))


@pytest.mark.parametrize("t", [1, 2, 5, 33])
def test_fused_tiled_and_direct_temporal_convolutions_agree(t):
    model = _model(layout="openpose-18").eval()
    fused = optimize_for_inference(model)
    direct = optimize_for_inference(model)
    for block in direct.blocks:
        block.tiled = False
    x = _input(model, n=2, t=t)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(fused(x), want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(direct(x), want, atol=1e-5, rtol=1e-4)


def test_fused_model_gives_input_gradients_like_the_model():
    """Saliency through the fused copy: its fast in-place paths step aside when autograd is recording."""
    model = _model(layout="openpose-18").eval()
    fused = optimize_for_inference(model)
    x = _input(model, n=2, t=9)
    grads = []
    for module in (model, fused):
        xi = x.clone().requires_grad_(True)
        module(xi)[:, 1].sum().backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)


def test_fused_bfloat16_is_close_but_opt_in():
    model = _model().eval()
    x = _input(model, n=2)
    fused = optimize_for_inference(model, dtype=torch.bfloat16)
    with torch.no_grad():
        out, ref = fused(x), model(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.parametrize("native", [True, False])
def test_fused_bfloat16_takes_the_tiled_convolution_only_where_the_cpu_multiplies_bfloat16(native, monkeypatch):
    if native and not stgcn.ops.layout.native_bf16():
        pytest.skip("this CPU has no native bfloat16 products")
    monkeypatch.setattr(stgcn.inference.optimize, "native_bf16", lambda: native)
    calls = []
    tiled = stgcn.inference.optimize.tiled_temporal_conv
    monkeypatch.setattr(stgcn.inference.optimize, "tiled_temporal_conv",
                        lambda y, *args, **kwargs: calls.append(y.dtype) or tiled(y, *args, **kwargs))
    model = _model().eval()
    x = _input(model, n=2)
    fused = optimize_for_inference(model, dtype=torch.bfloat16)
    with torch.no_grad():
        out, ref = fused(x), model(x)
    temporal = {e.rsplit(" -> ", 1)[1] for entries in dispatch_report(fused).values() for e in entries
                if "temporal" in e}
    assert temporal == ({"tiled"} if native else set())  # the direct convolution is not a choice there
    assert calls == ([torch.bfloat16] * len(model.blocks) if native else [])
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_block_modules_accept_plain_nchw_tensors():
    model = _model().eval()
    block = model.blocks[2]  # stride 2 with a projection residual
    base = baseline_from_stgcn(model).st_gcn_networks[2]
    x = torch.randn(2, 16, 11, model.num_joints)
    with torch.no_grad():
        want = base(x, model.A * model.blocks[2].gcn.edge_importance)
        torch.testing.assert_close(block(x, model.A), want, atol=1e-5, rtol=1e-4)
        g = block.gcn(x, model.A)
        assert g.shape == (2, 32, 11, model.num_joints)
        assert block.tcn(g).shape == (2, 32, 6, model.num_joints)


@pytest.mark.parametrize("mode", ["recompute", "recompute-everything", "store", "checkpoint"])
def test_training_step_matches_the_baseline_in_float64(mode, monkeypatch):
    if mode == "recompute-everything":  # tiny tensors are stored by default: force the recompute kernels
        mode = "recompute"
        monkeypatch.setattr(stgcn.models.layers, "RECOMPUTE_MIN_BYTES", 0)
        monkeypatch.setattr(stgcn.models.stgcn, "RECOMPUTE_MIN_BYTES", 0)
    model = _model(layout="coco-17", blocks=((8, 1), (8, 1), (16, 2), (16, 1), (24, 2))).double()
    model.memory_mode = mode
    base = baseline_from_stgcn(model).double()
    x = _input(model, n=2, t=12).double()
    y = torch.tensor([0, 5])
    for module in (model, base):
        module.train()
        for _ in range(2):  # two steps: running statistics and num_batches_tracked advance once per step
            module.zero_grad()
            F.cross_entropy(module(x), y).backward()
    back = STGCN(model.config).double()
    copy_weights(base, back)
    ours_sd, base_sd = model.state_dict(), back.state_dict()
    for key in ours_sd:
        torch.testing.assert_close(ours_sd[key], base_sd[key], atol=1e-10, rtol=1e-9, msg=key)
    base_params = dict(base.named_parameters())
    pairs = {"blocks.2.gcn.edge_importance": "edge_importance.2", "blocks.2.gcn.conv.weight":
             "st_gcn_networks.2.gcn.conv.weight", "blocks.3.tcn.conv.weight": "st_gcn_networks.3.tcn.2.weight",
             "blocks.3.tcn.bn1.weight": "st_gcn_networks.3.tcn.0.weight", "data_bn.weight": "data_bn.weight",
             "blocks.4.residual.conv.weight": "st_gcn_networks.4.residual.0.weight"}
    ours_params = dict(model.named_parameters())
    for ours_key, base_key in pairs.items():
        torch.testing.assert_close(ours_params[ours_key].grad, base_params[base_key].grad, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(model.fc.weight.grad, base.fcn.weight.grad.view(7, -1), atol=1e-10, rtol=1e-8)


def test_memory_mode_is_validated():
    model = _model()
    with pytest.raises(ValueError, match="valid modes are recompute, store, checkpoint"):
        model.memory_mode = "fast"


def test_copy_weights_round_trip_and_errors():
    model = _model()
    base = baseline_from_stgcn(model)
    back = STGCN(model.config)
    copy_weights(base, back)
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    other = BaselineSTGCN(model.A, 3, 7, ((16, 1),))
    with pytest.raises(ValueError, match="do not correspond"):
        copy_weights(model, other)
    with pytest.raises(ValueError, match="needs an STGCN and a BaselineSTGCN"):
        copy_weights(model, back)
