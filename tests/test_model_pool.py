"""``STGCNConfig.pool``: the joint-resolved head (issue 15) in training, inference, export and checkpoints."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from stgcn.engine.checkpoint import load_checkpoint, save_checkpoint
from stgcn.errors import ConfigError
from stgcn.inference.export_graph import export_graph
from stgcn.inference.optimize import optimize_for_inference
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.reference import reference_from_stgcn
from stgcn.models.stgcn import STGCN

BLOCKS = ((8, 1), (16, 2), (12, 1))


def _joint_model(seed: int = 0) -> STGCN:
    torch.manual_seed(seed)
    model = STGCN(STGCNConfig(num_classes=5, in_channels=3, graph=GraphConfig(layout="kinect-v1-msr"),
                              blocks=BLOCKS, pool="joint"))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is tested
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


def _input(n: int = 3, t: int = 20, m: int = 2) -> torch.Tensor:
    return torch.rand((n, 3, t, 20, m), generator=torch.Generator().manual_seed(5)) * 2 - 1


def _last_block(model: STGCN, x: torch.Tensor) -> torch.Tensor:
    """The last block's output (N, M, C, T', V), computed with the model's own layers."""
    n, c, t, v, m = x.shape
    h = model.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)).view(n * m, v, c, t)
    h = h.permute(1, 3, 0, 2).contiguous()
    for block in model.blocks:
        h = block.forward_vtnc(h, model.A)  # (V, T', N*M, C)
    return h.permute(2, 3, 1, 0).reshape(n, m, h.shape[3], h.shape[1], v)


def test_joint_pool_keeps_every_joint_averaged_over_time_and_persons():
    model = _joint_model()
    assert model.num_features == 20 * 12 and model.fc.in_features == 240
    x = _input()
    with torch.no_grad():
        h = _last_block(model, x)  # (N, M, C, T', V)
        expected = h.mean(dim=3).mean(dim=1).transpose(1, 2).reshape(3, -1)  # (N, V*C), joint-major
        torch.testing.assert_close(model.forward_features(x), expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(model(x), model.fc(expected), atol=1e-5, rtol=1e-5)
        model.layout = "nctv"  # the original structure (GPUs, torch.compile) pools the same way
        torch.testing.assert_close(model.forward_features(x), expected, atol=1e-6, rtol=1e-5)
        model.layout = None
        # the default head is still the global average over (T', V): the same block outputs, pooled further
        mean = STGCN(dataclasses.replace(model.config, pool="mean")).eval()
        mean.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}, strict=False)
        torch.testing.assert_close(mean.forward_features(x), h.mean(dim=(1, 3, 4)), atol=1e-6, rtol=1e-5)


def test_joint_pool_survives_folding_export_and_checkpoints(tmp_path):
    model = _joint_model(seed=2)
    x = _input(n=2, t=17, m=1)
    with torch.no_grad():
        want = model(x)
        fused = optimize_for_inference(model)
        torch.testing.assert_close(fused(x), want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(export_graph(fused)(x), want, atol=1e-5, rtol=1e-4)
    save_checkpoint(tmp_path / "joint.pt", model, class_names=list("abcde"))
    ck = load_checkpoint(tmp_path / "joint.pt")
    assert ck.config.pool == "joint"
    with torch.no_grad():
        torch.testing.assert_close(ck.model(x), want)


def test_pool_option_is_validated_and_defaults_to_the_paper():
    assert STGCNConfig(num_classes=3).pool == "mean"
    old = STGCNConfig(num_classes=3).to_dict()
    del old["pool"]  # a checkpoint written before the option existed
    assert STGCNConfig.from_dict(old).pool == "mean"
    with pytest.raises(ConfigError, match="pool 'max' is not valid; valid modes are mean, joint"):
        STGCNConfig(num_classes=3, pool="max")
    with pytest.raises(ConfigError, match="original ST-GCN pools globally"):
        reference_from_stgcn(_joint_model())
