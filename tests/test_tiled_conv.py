"""The tiled real-DFT temporal convolution against direct convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stgcn.ops.tiled_conv import (
    TILE_LENGTHS,
    WEIGHT_READ_MACS,
    choose_tile_length,
    dft_transforms,
    plan_temporal_conv,
    tiled_conv_backward,
    tiled_cost,
    tiled_temporal_conv,
)


@pytest.mark.parametrize("length", TILE_LENGTHS)
@pytest.mark.parametrize("taps", [1, 3, 5, 9])
def test_transforms_compute_one_tile_of_correlation(length, taps):
    d_in, g, d_out = dft_transforms(length, taps)
    m = length - taps + 1
    assert d_in.shape == (3 * length // 2 - 1, length) and g.shape == (d_in.shape[0], taps)
    assert d_out.shape == (m, d_in.shape[0])
    gen = torch.Generator().manual_seed(length * 10 + taps)
    x = torch.randn(length, dtype=torch.float64, generator=gen)
    w = torch.randn(taps, dtype=torch.float64, generator=gen)
    want = torch.stack([sum(w[j] * x[u + j] for j in range(taps)) for u in range(m)])
    torch.testing.assert_close(d_out @ ((d_in @ x) * (g @ w)), want, atol=1e-12, rtol=1e-10)


def test_transform_lengths_are_checked():
    with pytest.raises(ValueError, match="even and longer than the kernel"):
        dft_transforms(15, 9)
    with pytest.raises(ValueError, match="even and longer than the kernel"):
        dft_transforms(8, 9)


def _direct(x, w, b, stride):
    """x (V, T, B, C_in), w (C_out, C_in, Gamma) -> (V, T', B, C_out) by conv2d."""
    image = x.permute(0, 3, 1, 2)  # (V, C_in, T, B)
    y = F.conv2d(image, w.unsqueeze(3), b, (stride, 1), ((w.shape[2] - 1) // 2, 0))
    return y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("gamma", [1, 3, 9])
@pytest.mark.parametrize("frames", [1, 2, 3, 7, 33, 150])
def test_matches_direct_convolution_with_bias_residual_relu(stride, gamma, frames):
    gen = torch.Generator().manual_seed(stride * 1000 + gamma * 100 + frames)
    w = torch.randn(6, 5, gamma, dtype=torch.float64, generator=gen) / gamma
    b = torch.randn(6, dtype=torch.float64, generator=gen)
    x = torch.randn(4, frames, 3, 5, dtype=torch.float64, generator=gen)
    want = _direct(x, w, b, stride)
    res = torch.randn(want.shape, dtype=torch.float64, generator=gen)
    lengths = [n for n in TILE_LENGTHS if n > -(-gamma // stride)]
    for length in [None, *lengths]:
        plan = plan_temporal_conv(w, stride, frames, tile_length=length)
        plan = plan.to(torch.float32)
        with torch.no_grad():
            y = tiled_temporal_conv(x.float(), plan, b.float(), res.float(), relu=True)
        assert y.shape == want.shape and y.dtype == torch.float32
        torch.testing.assert_close(y.double(), (want + res).relu(), atol=2e-5, rtol=1e-5)
        plain = tiled_temporal_conv(x.float(), plan)
        torch.testing.assert_close(plain.double(), want - b.view(1, 1, 1, -1), atol=2e-5, rtol=1e-5)


def test_writes_into_a_given_output_and_groups_joints():
    """Wide rows force one joint per cache group; the result must not depend on grouping."""
    torch.manual_seed(3)
    w = torch.randn(16, 16, 9)
    x = torch.randn(5, 40, 300, 16)  # 300 * 16 floats per frame: one joint per group
    plan = plan_temporal_conv(w, 1, 40)
    out = torch.full((5, 40, 300, 16), float("nan"))
    with torch.no_grad():
        y = tiled_temporal_conv(x, plan, out=out)
    assert y.data_ptr() == out.data_ptr()
    torch.testing.assert_close(y, _direct(x, w, None, 1), atol=1e-4, rtol=1e-4)


def test_plan_picks_a_listed_tile_length_in_the_weights_precision():
    for dtype in (torch.float32, torch.float64):
        w = torch.randn(8, 4, 9, dtype=dtype)
        for stride, frames in [(1, 300), (1, 75), (2, 300), (2, 150)]:
            plan = plan_temporal_conv(w, stride, frames)
            assert plan.d_in.shape[1] in TILE_LENGTHS and plan.stride == stride
            assert plan.weight.shape == (stride, plan.d_in.shape[0], 4, 8) and plan.weight.dtype == dtype


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("gamma", [1, 3, 9])
@pytest.mark.parametrize("frames", [1, 2, 7, 33, 100])
def test_backward_matches_autograd_of_direct_convolution(stride, gamma, frames):
    gen = torch.Generator().manual_seed(stride * 1000 + gamma * 100 + frames)
    w = torch.randn(5, 4, gamma, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, generator=gen, requires_grad=True)
    x = torch.randn(3, frames, 2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    y = _direct(x, w, b, stride)
    g = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    want = torch.autograd.grad(y, (x, w, b), g)
    for length in (None, 16):
        plan = plan_temporal_conv(w, stride, frames, tile_length=length)
        got = tiled_conv_backward(x.detach(), g, w.detach(), plan)
        for a, e in zip(got, want, strict=True):
            torch.testing.assert_close(a, e, atol=1e-10, rtol=1e-9)
    gx, gw, gb = tiled_conv_backward(x.detach(), g, w.detach(), plan, needs=(False, True, False))
    assert gx is None and gb is None and gw.shape == w.shape


@pytest.mark.parametrize("stride", [1, 2])
def test_large_weights_group_enough_rows_and_results_do_not_depend_on_grouping(stride, monkeypatch):
    """When the transformed weights exceed the cache target, a group takes at least _MIN_GROUP_ROWS rows (else
    one joint of a short clip per group re-reads the weights); forward and backward are unchanged."""
    import stgcn.ops.tiled_conv as tiled

    gen = torch.Generator().manual_seed(11 + stride)
    w = torch.randn(12, 10, 9, dtype=torch.float64, generator=gen) / 9
    x = torch.randn(6, 13, 4, 10, dtype=torch.float64, generator=gen)  # 6 joints, 13 frames, 4 samples
    g = torch.randn(6, -(-13 // stride), 4, 12, dtype=torch.float64, generator=gen)
    plan = plan_temporal_conv(w, stride, 13)
    tiles = -(-g.shape[1] // plan.tile)
    weight_bytes = 8 * stride * plan.d_in.shape[0] * 10 * 12
    results = []
    for cache, min_rows, expected in [(1 << 30, 512, 6), (weight_bytes - 1, 512, 6),
                                      (weight_bytes - 1, 2 * tiles * 4, 2), (1, 1, 1)]:
        monkeypatch.setattr(tiled, "_CACHE_BYTES", cache)
        monkeypatch.setattr(tiled, "_MIN_GROUP_ROWS", min_rows)
        assert tiled._group_size(x, plan, tiles, 12) == expected
        with torch.no_grad():
            results.append((tiled_temporal_conv(x, plan), *tiled_conv_backward(x, g, w, plan)))
    want = _direct(x, w, None, stride)
    for got in results:
        torch.testing.assert_close(got[0], want, atol=1e-10, rtol=1e-9)
        for a, b in zip(got[1:], results[0][1:], strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("stride, frames", [(1, 52), (2, 52), (1, 13), (1, 100), (2, 300)])
def test_tiled_cost_names_the_plans_tile_length_and_fewer_multiply_adds_than_direct(stride, frames):
    w = torch.randn(64, 64, 9)
    plan = plan_temporal_conv(w, stride, frames)
    frames_out = -(-frames // stride)
    length, macs = tiled_cost(9, stride, frames_out, 64, 64)
    assert length == plan.d_in.shape[1] and length % 2 == 0 and length <= 64
    assert 0 < macs < 9 * 64 * 64 * frames_out  # a direct convolution's multiply-adds per (joint, sample) row


def _total_cost(length, stride, frames_out, c, rows, taps):
    """Hand count of one call: per row, tiles x (P R (L + C) C + m R C); plus the weight reads P R C^2."""
    m, r = length - taps + 1, 3 * length // 2 - 1
    tiles = -(-frames_out // m)
    return rows * tiles * (stride * r * (length + c) * c + m * r * c) + WEIGHT_READ_MACS * stride * r * c * c


def test_weight_reads_shorten_the_tiles_of_a_one_person_window_and_not_of_a_batch():
    """The 256-channel stride-2 convolution of a 150-frame OpenPose-18 window (75 frames in, 18 rows): by
    multiply-adds per row one 42-frame tile (38 outputs, R = 62 transformed weight matrices); with the weight
    reads counted 4 tiles of 14 (R = 20): more multiply-adds (11.3 M against 10.1 M per row), a third of the
    weights. At batch 16 (288 rows) the multiply-adds dominate and the choice is the per-row one."""
    taps = 5  # 9 taps in 2 phases
    assert choose_tile_length(9, 2, 75, 256, 256) == 42
    assert choose_tile_length(9, 2, 75, 256, 256, rows=18) == 14
    assert choose_tile_length(9, 2, 75, 256, 256, rows=18 * 16) == 42
    lengths = [n for n in TILE_LENGTHS if n > taps]
    costs = {n: _total_cost(n, 2, 38, 256, 18, taps) for n in lengths}
    assert min(costs, key=costs.get) == 14  # the rule is the hand count's minimum
    assert _total_cost(14, 2, 38, 256, 18, taps) < _total_cost(42, 2, 38, 256, 18, taps)
    w = torch.randn(256, 256, 9)
    assert plan_temporal_conv(w, 2, 75, rows=18).weight.shape == (2, 20, 256, 256)
    assert plan_temporal_conv(w, 2, 75).weight.shape == (2, 62, 256, 256)


@pytest.mark.parametrize("stride", [1, 2])
def test_bfloat16_forward_and_backward_are_about_as_close_as_direct_bfloat16_convolution(stride):
    """The kernels run as they are in bfloat16 (the fused model's and the autocast training step's opt-in on CPUs
    with native bfloat16): within a few times the error of oneDNN's direct bfloat16 convolution of float64."""
    gen = torch.Generator().manual_seed(7 + stride)
    w = torch.randn(32, 32, 9, dtype=torch.float64, generator=gen) / 9
    x = torch.randn(5, 52, 4, 32, dtype=torch.float64, generator=gen, requires_grad=True)
    wq = w.requires_grad_(True)
    out = _direct(x, wq, None, stride)
    g = torch.randn(out.shape, dtype=torch.float64, generator=gen)
    want_gx, want_gw = torch.autograd.grad(out, (x, wq), g)
    want = out.detach()
    bf = torch.bfloat16
    xb, wb, gb = x.detach().to(bf), w.detach().to(bf), g.to(bf)
    plan = plan_temporal_conv(w.detach().float(), stride, 52, exact=False).to(bf)
    with torch.no_grad():
        y = tiled_temporal_conv(xb, plan)
        direct = _direct(xb, wb, None, stride)
    gx, gw, _ = tiled_conv_backward(xb, gb, wb, plan, needs=(True, True, False))
    assert y.dtype == gx.dtype == gw.dtype == bf

    def rel(a, b):
        return float((a.double() - b).norm() / b.norm())

    assert rel(y, want) < max(3 * rel(direct, want), 0.02), (rel(y, want), rel(direct, want))
    assert rel(gx, want_gx) < 0.03 and rel(gw, want_gw) < 0.03, (rel(gx, want_gx), rel(gw, want_gw))
