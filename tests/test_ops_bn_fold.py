"""BatchNorm folding (stgcn.ops.bn_fold): the folded layer equals layer-then-BN in eval mode."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.ops.bn_fold import bn_affine, fold_bn_into_conv, fold_bn_into_graph_conv


def _random_bn(c: int, seed: int) -> nn.BatchNorm2d:
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(c).double().eval()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    return bn


def test_bn_affine_is_the_eval_bn():
    bn = _random_bn(3, 0)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    scale, shift = bn_affine(bn)
    torch.testing.assert_close(x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1), bn(x))


def test_fold_bn_into_conv():
    bn = _random_bn(4, 1)
    conv = nn.Conv2d(3, 4, (9, 1), (2, 1), (4, 0)).double()
    x = torch.randn(2, 3, 11, 5, dtype=torch.float64)
    w, b = fold_bn_into_conv(conv, bn)
    torch.testing.assert_close(F.conv2d(x, w, b, conv.stride, conv.padding), bn(conv(x)))


def test_fold_bn_into_graph_conv():
    k, v, c_in, c_out = 3, 5, 2, 4
    bn = _random_bn(c_out, 2)
    conv = nn.Conv2d(c_in, k * c_out, 1).double()
    a = torch.randn(k, v, v, dtype=torch.float64)
    x = torch.randn(2, c_in, 6, v, dtype=torch.float64)  # (N, C_in, T, V)
    y = conv(x).view(2, k, c_out, 6, v)
    want = bn(torch.einsum("nkctv,kvw->nctw", y, a))
    w, bias = fold_bn_into_graph_conv(a, conv, k, bn)  # (K, C_in, C_out), (W, C_out)
    got = torch.einsum("kvw,nitv,kio->notw", a, x, w) + bias.t()[None, :, None, :]
    torch.testing.assert_close(got, want)
