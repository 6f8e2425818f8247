"""The graph convolution kernels of stgcn.ops.graph_conv: every order of the products gives the einsum of the
definition, in value and gradient."""

from __future__ import annotations

import torch

from stgcn.ops.graph_conv import (
    EdgeGraphConv,
    MixFirstGraphConv,
    edge_conv,
    edge_list,
    edge_weights,
    mix_first_matrix,
    mix_then_project,
    mixed_bias,
    project_first_matrix,
    project_then_mix,
)


def _pairs_and_mixing(v: int = 5, k: int = 2, seed: int = 0):
    """A random (K, V, W) mixing whose joint 4 nothing reaches, and its (source, target) pair list."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(k, v, v, dtype=torch.float64, generator=g) * (torch.rand(k, v, v, generator=g) < 0.5)
    a[:, :, 4] = 0.0
    src, dst = edge_list(a)
    return a, src, dst, g


def test_pairwise_graph_conv_equals_partition_mixing():
    a, src, dst, g = _pairs_and_mixing()
    assert 4 not in dst and list(dst) == sorted(dst)
    wk = torch.randn(2, 3, 4, dtype=torch.float64, generator=g)  # (K, C_in, C_out)
    bias = torch.randn(5, 4, dtype=torch.float64, generator=g)
    h = torch.randn(5, 7, 3, dtype=torch.float64, generator=g)  # (V, B, C_in)
    want = torch.einsum("kvw,vbi,kio->wbo", a, h, wk)
    weight = edge_weights(a, wk, src, dst)
    torch.testing.assert_close(edge_conv(h, weight, None, src, dst), want)
    torch.testing.assert_close(edge_conv(h, weight, bias, src, dst), want + bias[:, None])
    out = torch.full((5, 7, 4), float("nan"), dtype=torch.float64)
    got = edge_conv(h, weight, bias, src, dst, out=out)
    assert got.data_ptr() == out.data_ptr()
    torch.testing.assert_close(got, want + bias[:, None])


def test_pairwise_graph_conv_gradients():
    a, src, dst, g = _pairs_and_mixing(seed=1)
    h = torch.randn(5, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(len(src), 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    bias = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: EdgeGraphConv.apply(*t, src, dst), (h, weight, bias))
    assert torch.autograd.gradcheck(lambda *t: EdgeGraphConv.apply(*t, None, src, dst), (h, weight))


def _mixing_problem(seed: int = 2, v: int = 5, k: int = 3, c_in: int = 2, c_out: int = 4, b: int = 6):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(k, v, v, dtype=torch.float64, generator=g)
    wk = torch.randn(k, c_in, c_out, dtype=torch.float64, generator=g)
    h = torch.randn(v, b, c_in, dtype=torch.float64, generator=g)
    return a, wk, h


def test_edge_list_is_grouped_by_target():
    a = torch.zeros(2, 3, 3)
    a[0, 2, 0] = 1.0  # 2 -> 0
    a[1, 0, 0] = 1.0  # 0 -> 0
    a[1, 1, 2] = 1.0  # 1 -> 2
    assert edge_list(a) == ((0, 2, 1), (0, 0, 2))


def test_mix_first_and_project_first_equal_the_definition():
    a, wk, h = _mixing_problem()
    want = torch.einsum("kvw,vbi,kio->wbo", a, h, wk)
    torch.testing.assert_close(mix_then_project(h, mix_first_matrix(a), wk), want)
    torch.testing.assert_close(project_then_mix(h, project_first_matrix(a), wk), want)


def test_mixed_bias_is_the_bias_mixed_over_joints():
    a, _, _ = _mixing_problem()
    bias = torch.randn(3 * 4, dtype=torch.float64)  # (K * C_out), ordered (k, c)
    want = torch.einsum("kvw,kc->wc", a, bias.view(3, 4))
    torch.testing.assert_close(mixed_bias(a, bias), want)


def test_mix_first_recompute_gradients():
    a, wk, h = _mixing_problem(seed=3, b=4)
    amat = mix_first_matrix(a).requires_grad_(True)
    assert torch.autograd.gradcheck(MixFirstGraphConv.apply, (h.requires_grad_(True), amat, wk.requires_grad_(True)))
    # same gradients as autograd through the plain function
    h2, amat2, wk2 = (t.detach().clone().requires_grad_(True) for t in (h, amat, wk))
    MixFirstGraphConv.apply(h, amat, wk).square().sum().backward()
    mix_then_project(h2, amat2, wk2).square().sum().backward()
    for got, want in ((h.grad, h2.grad), (amat.grad, amat2.grad), (wk.grad, wk2.grad)):
        torch.testing.assert_close(got, want)
