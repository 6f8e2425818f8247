"""Kernels of the temporal convolution (a Gamma x 1 convolution over time) on a (V, C, T, N) channels-last image.

- :class:`TiledConv`: the tiled real-DFT convolution of :mod:`stgcn.ops.tiled_conv` (2-4x fewer
  multiplications than direct) as an autograd Function with its hand-written backward.
- :class:`BNReLUConv`: training-mode BatchNorm -> ReLU -> convolution (direct or tiled) that does not store
  the ReLU output; backward recomputes it from the BN input and the saved batch statistics.
- :func:`conv_relu`: inference ``relu(conv(x) + residual)`` with the sum and ReLU fused into oneDNN's
  convolution on CPU where it can, standard ops otherwise.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.ops.layout import plain_ops
from stgcn.ops.tiled_conv import TiledConvPlan, plan_temporal_conv, tiled_conv_backward, tiled_temporal_conv

__all__ = ["TiledConv", "BNReLUConv", "bn_train_args", "conv_forward", "conv_backward", "conv_relu"]


def bn_train_args(bn: nn.modules.batchnorm._BatchNorm) -> tuple[Any, Any, float]:
    """Running stats and momentum for a training-mode BN call, updating num_batches_tracked as nn.BatchNorm."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        return bn.running_mean, bn.running_var, factor
    return None, None, factor


def conv_forward(r: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int],
                 padding: tuple[int, int], plan: TiledConvPlan | None) -> torch.Tensor:
    """The temporal convolution, tiled when ``plan`` is given (then with zero padding (Gamma - 1) / 2).

    Shape:
        r: (V, C_in, T, N) channels-last; weight: (C_out, C_in, Gamma, 1); output: (V, C_out, T', N).
    """
    if plan is None:
        return F.conv2d(r, weight, bias, stride, padding)
    with torch.no_grad():
        y = tiled_temporal_conv(r.permute(0, 2, 3, 1), plan, bias)  # (V, T', N, C_out)
    return y.permute(0, 3, 1, 2)  # (V, C_out, T', N) channels-last


def conv_backward(grad: torch.Tensor, r: torch.Tensor, weight: torch.Tensor, has_bias: bool,
                  stride: tuple[int, int], padding: tuple[int, int], plan: TiledConvPlan | None,
                  needs: tuple[bool, bool, bool]) -> tuple[torch.Tensor | None, ...]:
    """Gradients of :func:`conv_forward` with respect to r, weight and bias (None where not needed).

    Shape:
        grad: (V, C_out, T', N); r: (V, C_in, T, N); outputs shaped like r, weight and (C_out,).
    """
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


class TiledConv(torch.autograd.Function):
    """The tiled temporal convolution (:mod:`stgcn.ops.tiled_conv`) with its hand-written backward.

    Shape:
        r: (V, C_in, T, N) channels-last; weight: (C_out, C_in, Gamma, 1); output: (V, C_out, T', N).
    """

    @staticmethod
    def forward(ctx: Any, r: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
                plan: TiledConvPlan) -> torch.Tensor:
        ctx.save_for_backward(r, weight)
        ctx.conf = (stride, plan, bias is not None)
        return conv_forward(r, weight, bias, (stride, 1), (0, 0), plan)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        r, weight = ctx.saved_tensors
        stride, plan, has_bias = ctx.conf
        grads = conv_backward(grad, r, weight, has_bias, (stride, 1), (0, 0), plan,
                              tuple(ctx.needs_input_grad[:3]))
        return *grads, None, None


class BNReLUConv(torch.autograd.Function):
    """Training-mode BN -> ReLU -> temporal convolution (direct, or tiled when a plan is given), storing the
    BN input but not the ReLU output (recomputed in backward from the saved batch statistics: one
    elementwise pass). Updates the running statistics like ``nn.BatchNorm2d`` (see :func:`bn_train_args`).

    Shape:
        x: (V, C, T, N) channels-last; conv_weight: (C_out, C, Gamma, 1); output: (V, C_out, T', N).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, bn_weight: torch.Tensor, bn_bias: torch.Tensor,
                conv_weight: torch.Tensor, conv_bias: torch.Tensor | None, running_mean: torch.Tensor | None,
                running_var: torch.Tensor | None, momentum: float, eps: float, stride: tuple[int, int],
                padding: tuple[int, int], plan: TiledConvPlan | None) -> torch.Tensor:
        y, mean, invstd = torch.ops.aten.native_batch_norm(x, bn_weight, bn_bias, running_mean, running_var,
                                                           True, momentum, eps)
        out = conv_forward(y.relu_(), conv_weight, conv_bias, stride, padding, plan)
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
        grad_r, grad_cw, grad_cb = conv_backward(grad, r, conv_weight, has_bias, stride, padding, plan,
                                                 (need_x, ctx.needs_input_grad[3], ctx.needs_input_grad[4]))
        grad_x = grad_bw = grad_bb = None
        if need_x:
            grad_y = torch.ops.aten.threshold_backward(grad_r, r, 0)
            del r, grad_r
            grad_x, grad_bw, grad_bb = torch.ops.aten.native_batch_norm_backward(
                grad_y, x, bn_weight, None, None, mean, invstd, True, eps, list(ctx.needs_input_grad[:3]))
        return grad_x, grad_bw, grad_bb, grad_cw, grad_cb, None, None, None, None, None, None, None


def _mkldnn_fusion_available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return torch.backends.mkldnn.is_available() and hasattr(ops, "_convolution_pointwise")
    except RuntimeError:  # the op namespace may raise on lookup in builds without it
        return False


def _mkldnn_bf16_available() -> bool:
    """Whether oneDNN has a bfloat16 convolution on this CPU (AVX-512 BW/VL/DQ, AVX-NE-CONVERT or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


_MKLDNN_FUSION = _mkldnn_fusion_available()
_MKLDNN_BF16 = _MKLDNN_FUSION and _mkldnn_bf16_available()


def _fusable(x: torch.Tensor) -> bool:
    """Whether :func:`conv_relu` can use oneDNN's fused convolution for ``x``."""
    if not _MKLDNN_FUSION or x.device.type != "cpu" or plain_ops():
        return False
    if torch.is_grad_enabled() and x.requires_grad:  # no autograd through the fused op
        return False
    return x.dtype != torch.bfloat16 or _MKLDNN_BF16


def conv_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int,
              residual: torch.Tensor | None) -> torch.Tensor:
    """``relu(conv(x) + residual)`` over the height (time) of a channels-last image.

    On CPU the sum and ReLU run inside oneDNN's convolution (post-ops), saving two passes over memory;
    elsewhere, while tracing or exporting, when autograd records, and for bfloat16 on CPUs without oneDNN's
    bfloat16 convolution, standard ops compute the same.

    Shape:
        x: (V, C_in, T, B) channels-last; weight: (C_out, C_in, Gamma, 1); bias: (C_out,);
        residual: (V, C_out, T', B) or None; output: (V, C_out, T', B).
    """
    if _fusable(x):
        args = ([padding, 0], [stride, 1], [1, 1], 1)
        if residual is None:
            return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, *args, "relu", [], None)
        return torch.ops.mkldnn._convolution_pointwise.binary(x, residual, weight, bias, *args, "add", None,
                                                              "relu", [], None)
    out = F.conv2d(x, weight, bias, (stride, 1), (padding, 0))
    if residual is not None:
        out = out + residual
    return torch.relu(out)
