"""The temporal convolution kernels of stgcn.ops.temporal_conv against nn.BatchNorm2d / F.conv2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stgcn.ops.temporal_conv import BNReLUConv, TiledConv, bn_train_args, conv_relu
from stgcn.ops.tiled_conv import plan_temporal_conv


def _image(v: int = 3, c: int = 4, t: int = 11, n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(v, c, t, n, dtype=torch.float64, generator=g)
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("stride", [1, 2])
def test_tiled_conv_gradients_match_direct_convolution(stride):
    x = _image().requires_grad_(True)
    conv = nn.Conv2d(4, 5, (9, 1), (stride, 1), (4, 0)).double()
    plan = plan_temporal_conv(conv.weight[..., 0], stride, x.shape[2], exact=False)
    y = TiledConv.apply(x, conv.weight, conv.bias, stride, plan)
    want = conv(x)
    torch.testing.assert_close(y, want)
    g = torch.randn_like(want)
    got = torch.autograd.grad(y, (x, conv.weight, conv.bias), g)
    ref = torch.autograd.grad(want, (x, conv.weight, conv.bias), g)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("tiled", [False, True])
def test_bn_relu_conv_equals_the_modules_and_updates_running_stats_once(tiled):
    bn = nn.BatchNorm2d(4).double()
    conv = nn.Conv2d(4, 4, (9, 1), (2, 1), (4, 0)).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    ref_bn = nn.BatchNorm2d(4).double()
    ref_bn.load_state_dict(bn.state_dict())
    x = _image(seed=1).requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    plan = plan_temporal_conv(conv.weight[..., 0], 2, x.shape[2], exact=False) if tiled else None
    mean, var, momentum = bn_train_args(bn)
    y = BNReLUConv.apply(x, bn.weight, bn.bias, conv.weight, conv.bias, mean, var, momentum, bn.eps,
                         conv.stride, conv.padding, plan)
    conv_params = (conv.weight, conv.bias)
    want = F.conv2d(F.relu(ref_bn(x2)), *conv_params, conv.stride, conv.padding)
    torch.testing.assert_close(y, want)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(bn, name), getattr(ref_bn, name), msg=name)
    g = torch.randn_like(want)
    got = torch.autograd.grad(y, (x, bn.weight, bn.bias, *conv_params), g)
    ref = torch.autograd.grad(want, (x2, ref_bn.weight, ref_bn.bias, *conv_params), g)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_residual", [False, True])
def test_conv_relu_with_and_without_residual(dtype, with_residual):
    """bfloat16 works on every CPU (standard convolution where oneDNN has no bfloat16 kernel)."""
    x = _image().float()
    w = torch.randn(4, 4, 9, 1).contiguous(memory_format=torch.channels_last)
    b = torch.randn(4)
    res = _image(t=6, seed=2).float() if with_residual else None
    want = F.conv2d(x, w, b, (2, 1), (4, 0))
    want = torch.relu(want + res if res is not None else want)
    with torch.no_grad():
        got = conv_relu(x.to(dtype), w.to(dtype), b.to(dtype), 2, 4, None if res is None else res.to(dtype))
    assert got.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 0.1
    torch.testing.assert_close(got.float(), want, atol=tol * float(want.abs().max()), rtol=0)
