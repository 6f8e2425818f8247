"""ST-GCN: Spatial Temporal Graph Convolutional Networks (Yan, Xiong, Lin, AAAI 2018).

Reads top to bottom: configs, the graph convolution, the temporal convolution, the block, the network.

Per block:  x -> GraphConv (1x1 conv to K*C_out channels, mixed over joints by each partition of A, summed
over partitions) -> BN -> ReLU -> Gamma x 1 temporal conv (stride on T) -> BN -> Dropout -> + residual -> ReLU.
Network:    data BN over V*C per person -> blocks -> global average pool over (T, V) -> mean over persons
-> linear classifier.

The implementation keeps that math but not the original's memory layout or order of operations (see
"Internal layout" below): on a (V, T, N, C) layout the graph convolution is one matrix product per connected
joint pair, the temporal convolution is a tiled real-DFT algorithm with 2-4x fewer multiplications
(:mod:`stgcn.ops.tiled_conv`), and a training step stores about half the activations (``memory_mode``). Results
equal the textbook computation up to float rounding. For inference,
:func:`stgcn.optimize.optimize_for_inference` also folds the BatchNorms away.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from stgcn.errors import ConfigError
from stgcn.models.config import STGCNConfig
from stgcn.ops.tiled_conv import TiledConvPlan, plan_temporal_conv, tiled_conv_backward, tiled_temporal_conv

__all__ = ["STGCN", "GraphConv", "TemporalConv", "STGCNBlock", "MEMORY_MODES"]

# Internal layout. The modules below take and return (N, C, T, V) tensors, but inside the network the
# activations are stored as (V, T, N, C) contiguous (joint-major, then time, channels last) and handed from
# block to block as permuted views of that memory, never copied. In that layout the joint mixing is one
# matrix product over V, the 1x1 convolutions are matrix products over C, each frame of a joint is one
# contiguous (N*C) row for the tiled temporal convolution (stgcn.ops.tiled_conv), and BatchNorm and the other
# convolutions see a channels-last (V, C, T, N) image (oneDNN's fast path on CPU). Only rounding differs from
# the textbook order of operations.

MEMORY_MODES = ("recompute", "store", "checkpoint")


def _to_vtnc(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V) -> (V, T, N, C) contiguous; free for tensors that came out of a block."""
    h = x.permute(3, 2, 0, 1)
    return h if h.is_contiguous() else h.contiguous()


def _from_vtnc(h: torch.Tensor) -> torch.Tensor:
    """(V, T, N, C) -> the same memory viewed as (N, C, T, V)."""
    return h.permute(2, 3, 1, 0)


def _as_image(h: torch.Tensor) -> torch.Tensor:
    """(V, T, N, C) contiguous -> (V, C, T, N) channels-last view (time is the image height)."""
    return h.permute(0, 3, 1, 2)


def _from_image(y: torch.Tensor) -> torch.Tensor:
    """(V, C, T, N) -> (V, T, N, C) contiguous; a view when ``y`` is channels-last."""
    h = y.permute(0, 2, 3, 1)
    return h if h.is_contiguous() else h.contiguous()


def _plain_ops() -> bool:
    """True while tracing, scripting, exporting or compiling: use only standard aten ops."""
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
        return True
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _mix_then_project(h: torch.Tensor, amat: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
    """``sum_k (A_k^T-mix of h) @ wk[k]``: mix joints first, then the 1x1 convolution over (k, c_in).

    Shape:
        h: (V, B, C_in) contiguous; amat: (K*W, V), rows (k, w); wk: (K, C_in, C_out); output: (W, B, C_out).
    """
    v, b, c_in = h.shape
    k, _, c_out = wk.shape
    z = torch.mm(amat, h.view(v, b * c_in)).view(k, v * b, c_in)  # (K, W*B, C_in)
    out = torch.mm(z[0], wk[0])
    in_place = not _autocast_on(h.device.type)  # autocast does not cover in-place ops
    for i in range(1, k):
        out = out.addmm_(z[i], wk[i]) if in_place else torch.addmm(out, z[i], wk[i])
    return out.view(v, b, c_out)


class _MixFirstGraphConv(torch.autograd.Function):
    """:func:`_mix_then_project` storing only its input: the mixed tensor (K times larger) is recomputed in
    backward, which costs one (K*W, V) x (V, B*C_in) product."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, amat: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h, amat, wk)
        return _mix_then_project(h, amat, wk)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, amat, wk = ctx.saved_tensors
        v, b, c_in = h.shape
        k, _, c_out = wk.shape
        need_h, need_a, need_w = ctx.needs_input_grad
        h2 = h.view(v, b * c_in)
        g = grad.contiguous().view(v * b, c_out)  # rows (w, b)
        grad_h = grad_amat = grad_wk = None
        if need_w:
            z = torch.mm(amat, h2).view(k, v * b, c_in)  # recomputed
            grad_wk = torch.stack([torch.mm(z[i].t(), g) for i in range(k)])
            del z
        if need_h or need_a:
            gz = g.new_empty((k, v * b, c_in))
            for i in range(k):
                torch.mm(g, wk[i].t(), out=gz[i])
            gz = gz.view(k * v, b * c_in)
            if need_h:
                grad_h = torch.mm(amat.t(), gz).view(v, b, c_in)
            if need_a:
                grad_amat = torch.mm(gz, h2.t())
        return grad_h, grad_amat, grad_wk


def _edge_list(A: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:  # noqa: N803
    """The (source v, target w) joint pairs that some partition of ``A`` connects, grouped by target.

    Shape:
        A: (K, V, W); output: two tuples of E joint indices.
    """
    pairs = (A != 0).any(0).t().nonzero().tolist()  # rows (w, v), sorted by w then v
    return tuple(v for _, v in pairs), tuple(w for w, _ in pairs)


def _edge_weights(a: torch.Tensor, wk: torch.Tensor, src: tuple[int, ...], dst: tuple[int, ...]) -> torch.Tensor:
    """One (C_in, C_out) matrix per connected pair: ``sum_k a[k, v, w] * wk[k]``.

    Shape:
        a: (K, V, W); wk: (K, C_in, C_out); output: (E, C_in, C_out).
    """
    k, c_in, c_out = wk.shape
    ae = a[:, list(src), list(dst)]  # (K, E)
    return torch.mm(ae.t(), wk.reshape(k, c_in * c_out)).view(len(src), c_in, c_out)


def _edge_conv(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, src: tuple[int, ...],
               dst: tuple[int, ...], out: torch.Tensor | None = None) -> torch.Tensor:
    """``out[w] = bias[w] + sum over pairs (v, w) of h[v] @ weight[pair]``: the graph convolution as one
    product per connected joint pair, with no K-times larger intermediate.

    With ``out`` given (no autograd), products accumulate into it in place; otherwise the result is built
    from standard differentiable ops (for autograd under autocast).

    Shape:
        h: (V, B, C_in); weight: (E, C_in, C_out); bias: (W, C_out) or None; output: (W, B, C_out).
    """
    num_targets = h.shape[0]
    rows: list[torch.Tensor | None] = [None] * num_targets
    for e, (v, w) in enumerate(zip(src, dst, strict=True)):
        acc = rows[w]
        if out is not None:  # the bias is added at the end in one pass (addmm's broadcast copy is slow)
            if acc is None:
                rows[w] = torch.mm(h[v], weight[e], out=out[w])
            else:
                acc.addmm_(h[v], weight[e])
        elif acc is None:
            rows[w] = torch.addmm(bias[w], h[v], weight[e]) if bias is not None else torch.mm(h[v], weight[e])
        else:
            rows[w] = torch.addmm(acc, h[v], weight[e])
    for w, acc in enumerate(rows):  # a joint nothing reaches: bias only
        if acc is None:
            fill = bias[w].expand(h.shape[1], -1) if bias is not None else h.new_zeros(h.shape[1], weight.shape[2])
            rows[w] = out[w].zero_() if out is not None else fill
    if out is None:
        return torch.stack(rows)
    return out if bias is None else out.add_(bias.unsqueeze(1))


class _EdgeGraphConv(torch.autograd.Function):
    """:func:`_edge_conv` with a hand-written backward: it stores only its input and the (E, C_in, C_out)
    weights, and computes each gradient with one product per joint pair."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                src: tuple[int, ...], dst: tuple[int, ...]) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.edges = (src, dst)
        ctx.has_bias = bias is not None
        out = h.new_empty((h.shape[0], h.shape[1], weight.shape[2]))  # (W, B, C_out)
        return _edge_conv(h, weight, bias, src, dst, out=out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, weight = ctx.saved_tensors
        src, dst = ctx.edges
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        g = grad.contiguous()  # (W, B, C_out)
        grad_h = grad_w = grad_b = None
        if need_h:
            grad_h = h.new_zeros(h.shape)  # (V, B, C_in)
            for e, (v, w) in enumerate(zip(src, dst, strict=True)):
                grad_h[v].addmm_(g[w], weight[e].t())
        if need_w:
            grad_w = torch.empty_like(weight)  # (E, C_in, C_out)
            for e, (v, w) in enumerate(zip(src, dst, strict=True)):
                torch.mm(h[v].t(), g[w], out=grad_w[e])
        if need_b and ctx.has_bias:
            grad_b = g.sum(1)  # (W, C_out)
        return grad_h, grad_w, grad_b, None, None


def _bn_train_args(bn: nn.modules.batchnorm._BatchNorm) -> tuple[Any, Any, float]:
    """Running stats and momentum for a training-mode BN call, updating num_batches_tracked as nn.BatchNorm."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        return bn.running_mean, bn.running_var, factor
    return None, None, factor


def _conv_forward(r: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int],
                  padding: tuple[int, int], plan: TiledConvPlan | None) -> torch.Tensor:
    """The temporal convolution of a (V, C, T, N) channels-last image, tiled when ``plan`` is given."""
    if plan is None:
        return F.conv2d(r, weight, bias, stride, padding)
    with torch.no_grad():
        y = tiled_temporal_conv(r.permute(0, 2, 3, 1), plan, bias)  # (V, T', N, C_out)
    return y.permute(0, 3, 1, 2)


def _conv_backward(grad: torch.Tensor, r: torch.Tensor, weight: torch.Tensor, has_bias: bool,
                   stride: tuple[int, int], padding: tuple[int, int], plan: TiledConvPlan | None,
                   needs: tuple[bool, bool, bool]) -> tuple[torch.Tensor | None, ...]:
    """Gradients of :func:`_conv_forward` with respect to r, weight and bias."""
    if plan is None:
        return torch.ops.aten.convolution_backward(
            grad.contiguous(memory_format=torch.channels_last) if r.is_contiguous(
                memory_format=torch.channels_last) else grad,
            r, weight, [weight.shape[0]] if has_bias else None, list(stride), list(padding), [1, 1],
            False, [0, 0], 1, [needs[0], needs[1], has_bias and needs[2]])
    grad_r, grad_w, grad_b = tiled_conv_backward(r.permute(0, 2, 3, 1), grad.permute(0, 2, 3, 1), weight[..., 0],
                                                 plan, (needs[0], needs[1], has_bias and needs[2]))
    return (None if grad_r is None else grad_r.permute(0, 3, 1, 2),
            None if grad_w is None else grad_w.unsqueeze(3), grad_b)


class _TiledConv(torch.autograd.Function):
    """The tiled temporal convolution (:mod:`stgcn.ops.tiled_conv`) with its hand-written backward.

    Shape:
        r: (V, C_in, T, N) channels-last; weight: (C_out, C_in, Gamma, 1); output: (V, C_out, T', N).
    """

    @staticmethod
    def forward(ctx: Any, r: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
                plan: TiledConvPlan) -> torch.Tensor:
        ctx.save_for_backward(r, weight)
        ctx.conf = (stride, plan, bias is not None)
        return _conv_forward(r, weight, bias, (stride, 1), (0, 0), plan)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        r, weight = ctx.saved_tensors
        stride, plan, has_bias = ctx.conf
        grads = _conv_backward(grad, r, weight, has_bias, (stride, 1), (0, 0), plan,
                               tuple(ctx.needs_input_grad[:3]))
        return *grads, None, None


class _BNReLUConv(torch.autograd.Function):
    """Training-mode BN -> ReLU -> temporal convolution (direct, or tiled when a plan is given), storing the
    BN input but not the ReLU output (recomputed in backward from the saved batch statistics: one
    elementwise pass)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, bn_weight: torch.Tensor, bn_bias: torch.Tensor,
                conv_weight: torch.Tensor, conv_bias: torch.Tensor | None, running_mean: torch.Tensor | None,
                running_var: torch.Tensor | None, momentum: float, eps: float, stride: tuple[int, int],
                padding: tuple[int, int], plan: TiledConvPlan | None) -> torch.Tensor:
        y, mean, invstd = torch.ops.aten.native_batch_norm(x, bn_weight, bn_bias, running_mean, running_var,
                                                           True, momentum, eps)
        out = _conv_forward(y.relu_(), conv_weight, conv_bias, stride, padding, plan)
        ctx.save_for_backward(x, bn_weight, bn_bias, conv_weight, mean, invstd)
        ctx.conf = (eps, stride, padding, conv_bias is not None, None if plan is None else plan.d_in.shape[1])
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, bn_weight, bn_bias, conv_weight, mean, invstd = ctx.saved_tensors
        eps, stride, padding, has_bias, tile_length = ctx.conf
        plan = None if tile_length is None else plan_temporal_conv(  # rebuilt rather than kept: a few MB each
            conv_weight[..., 0], stride[0], x.shape[2], tile_length, exact=False)
        alpha = invstd * bn_weight
        beta = bn_bias - mean * alpha
        r = torch.addcmul(beta.view(1, -1, 1, 1), x, alpha.view(1, -1, 1, 1)).relu_()
        need_x = any(ctx.needs_input_grad[:3])
        grad_r, grad_cw, grad_cb = _conv_backward(grad, r, conv_weight, has_bias, stride, padding, plan,
                                                  (need_x, ctx.needs_input_grad[3], ctx.needs_input_grad[4]))
        grad_x = grad_bw = grad_bb = None
        if need_x:
            grad_y = torch.ops.aten.threshold_backward(grad_r, r, 0)
            del r, grad_r
            grad_x, grad_bw, grad_bb = torch.ops.aten.native_batch_norm_backward(
                grad_y, x, bn_weight, None, None, mean, invstd, True, eps, list(ctx.needs_input_grad[:3]))
        return grad_x, grad_bw, grad_bb, grad_cw, grad_cb, None, None, None, None, None, None, None


class GraphConv(nn.Module):
    """The spatial graph convolution: ``f_out = sum_k (A_k * M_k)^T-mix of (W_k f_in + b_k)``.

    A 1x1 convolution produces K*C_out channels, ordered (k, c); partition ``k``'s slice is mixed over joints
    by ``A[k] * edge_importance[k]`` and the K results are summed. The products are associative, which
    allows two orders:

    - On CPU, when the graph connects at most 2*K*V (source, target) joint pairs (every built-in layout
      with max_hop 1 and the distance or spatial strategy): ``out[w] = sum over pairs (v, w) of
      x[v] @ (sum_k a[k, v, w] W_k)``, one (C_in x C_out) product per pair. That is the 1x1 convolution's
      work (E ~ K*V products), without the K-times larger tensor and without a separate mixing pass;
      backward stores only the input.
    - Otherwise the joints are mixed on the side with fewer channels: after the 1x1 convolution when
      C_in >= C_out (as in the original), before it otherwise. When gradients are needed the mixing comes
      first and, in ``memory_mode == "recompute"`` (the default), the K-times larger mixed tensor is
      recomputed in backward rather than stored.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        num_partitions: K.
        num_joints: V.
        edge_importance: Whether the (K, V, V) mask is a learnable parameter (else a buffer of ones).

    Shape:
        x: (N, C_in, T, V); A: (K, V, V); output: (N, C_out, T, V).
    """

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int, num_joints: int,
                 edge_importance: bool = True) -> None:
        super().__init__()
        self.num_partitions = num_partitions
        self.out_channels = out_channels
        self.memory_mode = "recompute"
        self.conv = nn.Conv2d(in_channels, num_partitions * out_channels, kernel_size=1)
        mask = torch.ones(num_partitions, num_joints, num_joints)
        if edge_importance:
            self.edge_importance = nn.Parameter(mask)
        else:
            self.register_buffer("edge_importance", mask)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:  # noqa: N803
        return _from_vtnc(self.forward_vtnc(_to_vtnc(x), A))

    def forward_vtnc(self, h: torch.Tensor, A: torch.Tensor) -> torch.Tensor:  # noqa: N803
        """Same computation on the internal layout. Shape: h (V, T, N, C_in) contiguous -> (V, T, N, C_out)."""
        v, t, n, c_in = h.shape
        k, c_out = self.num_partitions, self.out_channels
        a = A * self.edge_importance  # (K, V, W): source v -> target w
        wk = self.conv.weight.view(k, c_out, c_in).transpose(1, 2)  # (K, C_in, C_out)
        bias = self.conv.bias
        grad = torch.is_grad_enabled() and (h.requires_grad or a.requires_grad or wk.requires_grad)
        # On CPU, when the graph connects at most 2*K*V joint pairs: one product per pair (at most twice the
        # 1x1 convolution's work, no K-times larger tensor). On a GPU a few large products win.
        # (Not while tracing or compiling: a few large standard ops make a smaller graph.)
        src, dst = _edge_list(A) if h.device.type == "cpu" and not _plain_ops() else ((), ())
        if 0 < len(src) <= 2 * k * v:
            bias_wc = None if bias is None else torch.mm(a.sum(1).t(), bias.view(k, c_out))  # (W, C_out)
            weight = _edge_weights(a, wk, src, dst)  # (E, C_in, C_out)
            h3 = h.view(v, n * t, c_in)
            autocast = _autocast_on(h.device.type)
            if grad and not autocast:
                out = _EdgeGraphConv.apply(h3, weight, bias_wc, src, dst)
            elif grad or autocast:
                out = _edge_conv(h3, weight, bias_wc, src, dst)
            else:
                out = _edge_conv(h3, weight, bias_wc, src, dst, out=h.new_empty((v, n * t, c_out)))
        elif grad or c_in < c_out:
            amat = a.transpose(1, 2).reshape(k * v, v)  # rows (k, w), columns v
            h3 = h.view(v, n * t, c_in)
            if grad and self.memory_mode == "recompute" and not _autocast_on(h.device.type):
                out = _MixFirstGraphConv.apply(h3, amat, wk)
            else:
                out = _mix_then_project(h3, amat, wk)
            if bias is not None:  # the 1x1 conv's bias, mixed: sum_k b_k[c] * sum_v a[k, v, w]
                bias_wc = torch.mm(a.sum(1).t(), bias.view(k, c_out)).unsqueeze(1)  # (W, 1, C_out)
                out = out + bias_wc if grad else out.add_(bias_wc)
        else:  # inference, C_in >= C_out: the 1x1 convolution per partition, then one mixing product
            y = torch.matmul(h.view(v * n * t, c_in), wk)  # (K, V*B, C_out)
            amat = a.permute(2, 0, 1).reshape(v, k * v)  # rows w, columns (k, v)
            out = torch.mm(amat, y.view(k * v, n * t * c_out)).view(v, n * t, c_out)
            if bias is not None:
                out.add_(torch.mm(a.sum(1).t(), bias.view(k, c_out)).unsqueeze(1))
        return out.view(v, t, n, c_out)


class TemporalConv(nn.Module):
    """BN -> ReLU -> Gamma x 1 convolution over time (stride on T only) -> BN -> Dropout.

    On CPU (float32/float64) the convolution runs as the tiled real-DFT algorithm of
    :mod:`stgcn.ops.tiled_conv`, forward and backward, with about 2-4x fewer multiplications than a direct
    convolution (same result up to float rounding); set ``tiled = False`` for the direct convolution. In
    training with ``memory_mode == "recompute"`` (the default) the ReLU output is not stored for the
    backward pass but recomputed from the first BN's input and batch statistics (same gradients).

    Shape:
        x: (N, C, T, V); output: (N, C, ceil(T / stride), V).
    """

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.memory_mode = "recompute"
        self.tiled = True
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, (kernel_size, 1), (stride, 1), ((kernel_size - 1) // 2, 0))
        self.bn2 = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _from_vtnc(self.forward_vtnc(_to_vtnc(x)))

    def forward_vtnc(self, g: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: g (V, T, N, C) contiguous -> (V, T', N, C)."""
        return _from_image(self.forward_image(_as_image(g)))

    def forward_image(self, x: torch.Tensor) -> torch.Tensor:
        """Same computation on a (V, C, T, N) channels-last image (time is the height) -> (V, C, T', N)."""
        conv, bn = self.conv, self.bn1
        autocast = _autocast_on(x.device.type)
        plan = None
        if (self.tiled and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not autocast
                and not _plain_ops() and x.is_contiguous(memory_format=torch.channels_last)):
            plan = plan_temporal_conv(conv.weight[..., 0], conv.stride[0], x.shape[2], exact=False)
        if self.memory_mode == "recompute" and bn.training and bn.affine and torch.is_grad_enabled() and not autocast:
            running_mean, running_var, momentum = _bn_train_args(bn)
            y = _BNReLUConv.apply(x, bn.weight, bn.bias, conv.weight, conv.bias, running_mean, running_var,
                                  momentum, bn.eps, conv.stride, conv.padding, plan)
        elif plan is not None:
            y = _TiledConv.apply(F.relu(bn(x)), conv.weight, conv.bias, conv.stride[0], plan)
        else:
            y = conv(F.relu(bn(x)))
        return self.dropout(self.bn2(y))


class ResidualProjection(nn.Module):
    """1x1 convolution (stride on T) + BN, for a residual whose channels or length change.

    Shape:
        x: (N, C_in, T, V); output: (N, C_out, ceil(T / stride), V).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _from_vtnc(self.forward_vtnc(_to_vtnc(x)))

    def forward_vtnc(self, h: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: h (V, T, N, C_in) -> (V, T', N, C_out)."""
        stride = self.conv.stride[0]
        hs = h[:, ::stride] if stride > 1 else h
        v, t, n, c_in = hs.shape
        w = self.conv.weight.view(self.conv.out_channels, c_in)
        y = F.linear(hs.reshape(v * t * n, c_in), w, self.conv.bias).view(v, t, n, -1)
        return _from_image(self.bn(_as_image(y)))


class STGCNBlock(nn.Module):
    """One ST-GCN unit: graph conv, temporal conv, residual, ReLU.

    Args:
        residual: ``False`` for no residual (the first block, as in the original); otherwise the identity
            when shapes allow, else :class:`ResidualProjection`.

    Shape:
        x: (N, C_in, T, V); A: (K, V, V); output: (N, C_out, ceil(T / stride), V).
    """

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int, num_joints: int,
                 temporal_kernel: int, stride: int = 1, dropout: float = 0.0, residual: bool = True,
                 edge_importance: bool = True) -> None:
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, num_partitions, num_joints, edge_importance)
        self.tcn = TemporalConv(out_channels, temporal_kernel, stride, dropout)
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = ResidualProjection(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:  # noqa: N803
        return _from_vtnc(self.forward_vtnc(_to_vtnc(x), A))

    def forward_vtnc(self, h: torch.Tensor, A: torch.Tensor) -> torch.Tensor:  # noqa: N803
        """Same computation on the internal layout. Shape: h (V, T, N, C_in) -> (V, T', N, C_out)."""
        g = self.gcn.forward_vtnc(h, A)  # (V, T, N, C_out)
        c_in, c_out = self.gcn.conv.in_channels, self.gcn.out_channels
        if (self.tcn.memory_mode == "recompute" and self.training and torch.is_grad_enabled()
                and g.requires_grad and not _autocast_on(g.device.type) and c_in * c_out <= _RECOMPUTE_MAX_WORK):
            # the temporal convolution's BN keeps g for backward: keep a recipe instead (h is kept anyway)
            hooks = _RecomputedInput(g, functools.partial(self._graph_conv_again, h, A))
            with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
                y = self.tcn.forward_image(_as_image(g))  # (V, C_out, T', N)
        else:
            y = self.tcn.forward_image(_as_image(g))
        if self.residual is not None:
            res = h if isinstance(self.residual, nn.Identity) else self.residual.forward_vtnc(h)
            # in place on the BN/dropout output (which backward does not need), not on a view of it: autograd
            # would copy the whole tensor for an in-place op on a view
            y = y.add_(_as_image(res))
        return _from_image(F.relu_(y))

    def _graph_conv_again(self, h: torch.Tensor, A: torch.Tensor) -> torch.Tensor:  # noqa: N803
        with torch.no_grad():
            return _as_image(self.gcn.forward_vtnc(h, A))


# Graph convolutions recomputed in backward (memory_mode "recompute") are those up to C_in * C_out = 128 * 128:
# the paper's blocks 1-7, about 40% of the graph convolutions' work for 70% of the memory they would keep.
_RECOMPUTE_MAX_WORK = 128 * 128


class _RecomputedInput:
    """Saved-tensor hooks that store a recipe instead of one tensor (identified by its memory and shape)
    and run the recipe when backward needs the tensor."""

    def __init__(self, tensor: torch.Tensor, recompute: Any) -> None:
        image = _as_image(tensor)
        self.key = (image.data_ptr(), tuple(image.shape), image.stride())
        self.recompute = recompute

    def pack(self, t: torch.Tensor) -> Any:
        return self if (t.data_ptr(), tuple(t.shape), t.stride()) == self.key else t

    def unpack(self, packed: Any) -> torch.Tensor:
        return self.recompute() if packed is self else packed


class _FrozenBNStats:
    """Context that restores a module's BatchNorm running statistics on exit: activation checkpointing runs a
    block's forward twice, and the statistics must be updated once."""

    def __init__(self, module: nn.Module) -> None:
        self.bns = [m for m in module.modules()
                    if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        self.saved: list[list[torch.Tensor]] = []

    def __enter__(self) -> None:
        self.saved = [[b.clone() for b in (m.running_mean, m.running_var, m.num_batches_tracked)] for m in self.bns]

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for m, saved in zip(self.bns, self.saved, strict=True):
                for b, s in zip((m.running_mean, m.running_var, m.num_batches_tracked), saved, strict=True):
                    b.copy_(s)
        self.saved = []


def _checkpoint_contexts(module: nn.Module) -> tuple[contextlib.AbstractContextManager, _FrozenBNStats]:
    return contextlib.nullcontext(), _FrozenBNStats(module)


class STGCN(nn.Module):
    """Spatial Temporal Graph Convolutional Network.

    Args:
        config: The architecture; see :class:`STGCNConfig`.

    Attributes (user options; none changes the logits, the gradients or the BatchNorm statistics):
        memory_mode: What a training step keeps for backward. ``"recompute"`` (default): everything but
            the graph convolution's output, the first BN's ReLU output and (on the partition path) the
            K-times larger joint-mixed tensor, which backward recomputes (about 10% more compute, 25% less
            memory). ``"store"``: everything (plain autograd). ``"checkpoint"``: only
            each block's input, the whole block being recomputed in backward (activation checkpointing:
            least memory, about a third more compute).
        inference_chunk_size: In eval mode, run the batch this many clips at a time (``None``: all at
            once). Helps CPU cache locality at large batches; never used in training, where BatchNorm
            must see the whole batch.

    Shape:
        x: (N, C, T, V, M) — batch, channels, frames, joints, persons. Output: (N, num_classes) logits.
    """

    def __init__(self, config: STGCNConfig) -> None:
        super().__init__()
        self.config = config
        graph = config.graph.build()
        self.register_buffer("A", torch.from_numpy(graph.A))  # (K, V, V)
        k, v = graph.K, graph.V
        self.num_joints = v
        self.data_bn = nn.BatchNorm1d(config.in_channels * v)
        blocks = []
        c_in = config.in_channels
        for i, (c_out, stride) in enumerate(config.blocks):
            blocks.append(STGCNBlock(
                c_in, c_out, k, v, config.temporal_kernel, stride,
                dropout=0.0 if i == 0 else config.dropout, residual=i > 0,
                edge_importance=config.edge_importance))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.num_features = c_in
        self.fc = nn.Linear(c_in, config.num_classes)
        self.memory_mode = "recompute"
        self.inference_chunk_size: int | None = None

    @property
    def memory_mode(self) -> str:
        return self._memory_mode

    @memory_mode.setter
    def memory_mode(self, mode: str) -> None:
        if mode not in MEMORY_MODES:
            raise ConfigError(f"unknown memory_mode {mode!r}; valid modes are {', '.join(MEMORY_MODES)}")
        self._memory_mode = mode
        for module in self.modules():
            if isinstance(module, GraphConv | TemporalConv):
                module.memory_mode = "store" if mode == "checkpoint" else mode

    def _check_input(self, x: torch.Tensor) -> None:
        c, v = self.config.in_channels, self.num_joints
        if x.dim() != 5 or x.shape[1] != c or x.shape[3] != v or x.shape[2] < 1 or x.shape[4] < 1:
            raise ValueError(f"expected input of shape (N, C={c}, T>=1, V={v}, M>=1), got {tuple(x.shape)}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features, persons averaged.

        Shape:
            x: (N, C, T, V, M); output: (N, num_features).
        """
        self._check_input(x)
        chunk = self.inference_chunk_size
        if chunk is not None and not self.training and x.shape[0] > chunk:
            return torch.cat([self.forward_features(part) for part in x.split(chunk)])
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)  # (N*M, V*C, T): data BN per person
        x = self.data_bn(x)
        h = x.view(n * m, v, c, t).permute(1, 3, 0, 2).contiguous()  # (V, T, N*M, C), see _to_vtnc
        checkpoint = self.memory_mode == "checkpoint" and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if checkpoint:
                h = torch.utils.checkpoint.checkpoint(
                    block.forward_vtnc, h, self.A, use_reentrant=False,
                    context_fn=functools.partial(_checkpoint_contexts, block))
            else:
                h = block.forward_vtnc(h, self.A)
        f = h.sum(dim=0).mean(dim=0) / v  # global average pool over (V, T) -> (N*M, C_last)
        return f.view(n, m, -1).mean(dim=1)  # average persons -> (N, C_last)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Classifier. Shape: features (N, num_features) -> (N, num_classes)."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
