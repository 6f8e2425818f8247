"""The graph that ONNX export writes: the fused model re-expressed for ONNX Runtime's kernels.

:func:`export_graph` turns a :class:`~stgcn.inference.optimize.FusedSTGCN` (BatchNorm already folded) into an
:class:`ExportSTGCN`, a module of standard ops only whose trace is the exported ONNX graph (``"nchw"``). The
fused model's own trace (``"fused"``) keeps its (V, T, N*M, C) layout, computes the graph convolution as many
small products and needs a Transpose around every convolution. This graph keeps the activations as (N*M, C, T, V)
images, the original code's layout, which is what ONNX Runtime's convolutions are fastest on (its level-ALL
optimisation turns them into blocked NCHWc convolutions with the ReLU fused in):

- the 9x1 temporal convolution and the residual's 1x1 convolution are plain ``Conv`` nodes with BatchNorm
  folded into their weights;
- the graph convolution is one broadcast ``MatMul`` of the image, read as (N*M, 1, C_in*T, V), with the
  (1, K, V, W) adjacency (edge importance folded in): its (N*M, K, C_in*T, W) output is, as memory, an image of
  K*C_in channels ordered (k, c), which one 1x1 ``Conv`` projects to C_out (joints mixed on the side with fewer
  channels; when C_in > C_out the 1x1 ``Conv`` comes first and a ``ReduceSum`` over k follows), then one
  ``Add`` of the per-(channel, joint) bias and a ``Relu``; no Transpose;
- the data BatchNorm is one multiply-add on the input (the only Transpose), pooling one ``ReduceMean``, the
  classifier one ``Gemm``.

The fused model also runs this module in PyTorch for short inputs on several CPU threads, where the original
layout's few large convolutions split better over the threads (:func:`stgcn.ops.dispatch.layout_rule`).

Every reshape is a view of contiguous memory. Measured against the other graph and the PyTorch models in
``benchmarks/onnx.py`` (README "Performance"). :data:`EXPORT_GRAPHS` names the graphs
:func:`stgcn.inference.export.export_model` can write.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.errors import ConfigError
from stgcn.models.stgcn import check_input_shape

__all__ = ["ExportSTGCN", "ExportBlock", "export_graph", "EXPORT_GRAPHS", "DEFAULT_EXPORT_GRAPH"]

EXPORT_GRAPHS = ("nchw", "fused")
DEFAULT_EXPORT_GRAPH = "nchw"


class ExportBlock(nn.Module):
    """One fused ST-GCN block on the (B, C, T, V) image layout (B = N*M), standard ops only.

    Computes ``relu(conv_t(relu(gcn(h) + bias)) + residual(h))`` with the fused block's folded weights.

    Args:
        block: A :class:`~stgcn.inference.optimize.FusedBlock` (float32 buffers).

    Shape:
        h: (B, C_in, T, V); output: (B, C_out, ceil(T / stride), V).
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        k, c_in, c_out = block.k, block.c_in, block.c_out
        w_joints, v = block.bias.shape[0], block.mix_amat.shape[1]
        a = block.mix_amat.detach().float().view(k, w_joints, v).transpose(1, 2)  # a[k, v, w]
        wk = block.weight.detach().float()  # (K, C_in, C_out)
        self.mix_first = c_in <= c_out
        self.k, self.c_in, self.c_out = k, c_in, c_out
        self.register_buffer("amat", a.unsqueeze(0).contiguous())  # (1, K, V, W)
        if self.mix_first:  # K mixed images, read as K*C_in channels ordered (k, c), then a 1x1 convolution
            self.register_buffer("gweight", wk.permute(2, 0, 1).reshape(c_out, k * c_in, 1, 1).contiguous())
        else:  # a 1x1 convolution to K*C_out channels ordered (k, c), each partition mixed, summed over k
            self.register_buffer("gweight", wk.permute(0, 2, 1).reshape(k * c_out, c_in, 1, 1).contiguous())
        self.register_buffer("gbias", block.bias.detach().float().t().reshape(c_out, 1, w_joints).clone())
        self.register_buffer("tweight", block.tconv_weight.detach().float().contiguous())
        self.register_buffer("tbias", block.tconv_bias.detach().float().clone())
        self.stride, self.padding = block.stride, block.padding
        self.residual = block.residual
        if self.residual == "conv":
            self.register_buffer("rweight", block.res_weight.detach().float().view(c_out, c_in, 1, 1).clone())
            self.register_buffer("rbias", block.res_bias.detach().float().clone())

    def graph_conv(self, h: torch.Tensor) -> torch.Tensor:
        """relu(gcn(h) + bias). Shape: (B, C_in, T, V) -> (B, C_out, T, V)."""
        k, c_in, c_out = self.k, self.c_in, self.c_out
        t, v = h.shape[2], h.shape[3]  # the batch is -1 in every reshape: fewer shape nodes in the graph
        if self.mix_first:
            z = torch.matmul(h.reshape(-1, 1, c_in * t, v), self.amat)  # (B, K, C_in*T, W)
            y = F.conv2d(z.reshape(-1, k * c_in, t, v), self.gweight)  # (B, C_out, T, W)
        else:
            p = F.conv2d(h, self.gweight).reshape(-1, k, c_out * t, v)  # (B, K, C_out*T, V)
            y = torch.matmul(p, self.amat).sum(dim=1).reshape(-1, c_out, t, v)  # (B, C_out, T, W)
        return torch.relu(y + self.gbias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.graph_conv(h)
        out = F.conv2d(y, self.tweight, self.tbias, (self.stride, 1), (self.padding, 0))
        if self.residual == "identity":
            out = out + h
        elif self.residual == "conv":
            out = out + F.conv2d(h, self.rweight, self.rbias, (self.stride, 1))
        return torch.relu(out)


class ExportSTGCN(nn.Module):
    """The fused model as the exported graph: same logits (float rounding), standard ops, no Transposes
    between blocks. Built by :func:`export_graph`.

    Shape:
        x: (N, C, T, V, M); output: (N, num_classes).
    """

    def __init__(self, fused: nn.Module) -> None:
        super().__init__()
        self.config = fused.config
        self.num_joints = fused.num_joints
        v, c = fused.num_joints, fused.config.in_channels
        # (V, 1, 1, C) in the fused model -> (C, 1, V) on (N, M, C, T, V)
        self.register_buffer("data_scale", fused.data_scale.detach().float().reshape(v, c).t().reshape(c, 1, v))
        self.register_buffer("data_shift", fused.data_shift.detach().float().reshape(v, c).t().reshape(c, 1, v))
        self.blocks = nn.ModuleList(ExportBlock(b) for b in fused.blocks)
        self.register_buffer("fc_weight", fused.fc_weight.detach().float().clone())
        self.register_buffer("fc_bias", None if fused.fc_bias is None else fused.fc_bias.detach().float().clone())
        self.eval()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features, persons averaged (as the fused model's). Shape: x (N, C, T, V, M) -> (N, num_features)."""
        check_input_shape(x, self.config.in_channels, self.num_joints)
        n, c, t, v, m = x.shape
        h = x.permute(0, 4, 1, 2, 3) * self.data_scale + self.data_shift  # (N, M, C, T, V)
        h = h.reshape(n * m, c, t, v)
        for block in self.blocks:
            h = block(h)
        if self.config.pool == "joint":  # mean over T, then M; features joint-major (V*C) as pool_features
            return h.mean(dim=2).transpose(1, 2).reshape(n, m, -1).mean(dim=1)
        return h.reshape(n, m, h.shape[1], -1).mean(dim=(1, 3))  # (N, C_last): mean over M, T and V

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.forward_features(x), self.fc_weight, self.fc_bias)


def export_graph(fused: nn.Module, graph: str = DEFAULT_EXPORT_GRAPH) -> nn.Module:
    """The module to trace for ONNX export (the one place the exported graph is chosen).

    Args:
        fused: A float32 :class:`~stgcn.inference.optimize.FusedSTGCN` (from
            :func:`~stgcn.inference.optimize.optimize_for_inference`).
        graph: ``"nchw"`` (:class:`ExportSTGCN`, default) or ``"fused"`` (``fused`` itself).

    Raises:
        ConfigError: an unknown ``graph``.

    Shape:
        Input (N, C, T, V, M); output (N, num_classes).
    """
    if graph not in EXPORT_GRAPHS:
        raise ConfigError(f"unknown export graph {graph!r}; valid graphs are {', '.join(EXPORT_GRAPHS)}")
    if graph == "fused":
        return fused
    return ExportSTGCN(fused).to(fused.fc_weight.device)
