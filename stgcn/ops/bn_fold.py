"""Folding eval-mode BatchNorms into the linear layer before them (for the inference-only fused model).

An eval-mode BatchNorm is the per-channel affine map ``scale * x + shift``; after a convolution it can be
absorbed into that convolution's weight and bias. After the graph convolution the shift cannot go into the
1x1 convolution's bias, because that bias is mixed over joints: the folded bias is per (joint, channel).
All folding is done in float64; callers cast the results.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["bn_affine", "fold_bn_into_conv", "fold_bn_into_graph_conv"]


def bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm: ``bn(x) = scale * x + shift`` per channel.

    Shape:
        outputs: (C,) each, float64.
    """
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    scale = 1.0 / torch.sqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one convolution.

    Shape:
        outputs: weight like ``conv.weight`` (C_out, C_in, kh, kw), bias (C_out,), float64.
    """
    scale, shift = bn_affine(bn)
    weight = conv.weight.detach().double() * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
    bias = (conv.bias.detach().double() if conv.bias is not None else 0.0) * scale + shift
    return weight, bias


def fold_bn_into_graph_conv(a: torch.Tensor, conv: nn.Conv2d, num_partitions: int,
                            bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-partition weights and per-(joint, channel) bias of ``bn(graph_conv(x))``.

    ``graph_conv(x)[w] = sum_k sum_v a[k, v, w] (x[v] @ W_k + b_k)``; the BN scale goes into each ``W_k``,
    the mixed bias ``sum_k b_k * sum_v a[k, v, w]`` and the BN shift into one bias per target joint.

    Args:
        a: (K, V, W) adjacency times the edge-importance mask.
        conv: The graph convolution's 1x1 convolution with K*C_out output channels ordered (k, c).
        num_partitions: K.
        bn: The BatchNorm after the graph convolution.

    Shape:
        outputs: weight (K, C_in, C_out), bias (W, C_out), float64.
    """
    k = num_partitions
    c_out, c_in = conv.out_channels // k, conv.in_channels
    scale, shift = bn_affine(bn)
    a = a.detach().double()
    w = conv.weight.detach().double().reshape(k, c_out, c_in) * scale[None, :, None]  # (K, C_out, C_in)
    b = conv.bias.detach().double().reshape(k, c_out) if conv.bias is not None \
        else torch.zeros(k, c_out, dtype=torch.float64, device=w.device)
    bias = torch.einsum("kc,kw->wc", b, a.sum(1)) * scale[None, :] + shift[None, :]  # (W, C_out)
    return w.transpose(1, 2).contiguous(), bias
