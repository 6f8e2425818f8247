"""Inference-only ST-GCN: BatchNorm folded into the convolutions, channels-last layout, same logits.

:func:`optimize_for_inference` turns a trained :class:`~stgcn.models.stgcn.STGCN` into a :class:`FusedSTGCN`, an
eval-only module that computes the same logits (float tolerance) with fewer passes over memory:

The blocks are the model's own :class:`~stgcn.models.stgcn.STGCNBlock` s with their BatchNorms folded
(:mod:`stgcn.ops.bn_fold`), computed by the same kernels as the model (:mod:`stgcn.ops`):

- Every eval-mode BatchNorm is an affine map and is folded into the convolution before it: BN1 into the
  graph convolution (its shift becomes a per-(joint, channel) bias, because the 1x1 convolution's bias is
  mixed over joints), BN2 into the temporal convolution, the residual BN into its 1x1 convolution. The data
  BN stays a (V, C) affine map.
- Activations live as (V, T, N*M, C) (joint-major, then time, channels last). On CPU the graph
  convolution is one (C_in x C_out) product per connected joint pair (see :mod:`stgcn.models.stgcn`), and in
  float32 the temporal convolution is the tiled real-DFT algorithm of :mod:`stgcn.ops.tiled_conv` (about
  2-4.6x fewer multiplications than direct) with bias, residual and ReLU applied per cache-sized group of
  joints. On a GPU and while tracing/exporting, the graph convolution mixes joints on the side with fewer
  channels; there, in bfloat16 and with ``block.tiled = False``, the temporal convolution is a
  channels-last oneDNN/cuDNN convolution (on CPU with the residual sum and the ReLU fused into it; in
  bfloat16 on CPUs without oneDNN's bfloat16 convolution, PyTorch's own convolution).
- Activations are written into three rotating buffers per call instead of fresh memory per block.
- Optionally the batch is processed in chunks of ``chunk_size`` clips (results are the same since nothing
  in eval mode couples samples).

The result holds buffers only (no parameters): it cannot be trained. Feed it what the model takes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.errors import ConfigError
from stgcn.models.stgcn import STGCN, STGCNBlock, check_input_shape, pool_features
from stgcn.ops.bn_fold import bn_affine, fold_bn_into_conv, fold_bn_into_graph_conv
from stgcn.ops.graph_conv import (
    edge_conv,
    edge_list,
    edge_weights,
    mix_first_matrix,
    mix_then_project,
    project_first_matrix,
    project_then_mix,
)
from stgcn.ops.layout import as_image, from_image, plain_ops
from stgcn.ops.temporal_conv import conv_relu
from stgcn.ops.tiled_conv import TiledConvPlan, plan_temporal_conv, tiled_temporal_conv
from stgcn.utils.checks import is_int

__all__ = ["optimize_for_inference", "FusedSTGCN", "FusedBlock"]


class FusedBlock(nn.Module):
    """An :class:`~stgcn.models.stgcn.STGCNBlock` with its BatchNorms folded in, on a (V, T, B, C) layout
    (B = N*M), computed with the same kernels (:mod:`stgcn.ops`).

    Computes ``relu(conv_t(relu(gcn(x) + bias_wc)) + residual(x))`` where ``gcn`` already includes BN1's
    scale, ``conv_t`` includes BN2 and ``residual`` is nothing, the identity, or a 1x1 convolution with its
    BN folded in (:mod:`stgcn.ops.bn_fold`). On CPU in float32 the temporal convolution runs as
    :mod:`stgcn.ops.tiled_conv` (fewer multiplications) unless ``tiled`` is False; otherwise, and while
    tracing or exporting, as a convolution. The kernels are chosen in :meth:`_graph_path` and
    :meth:`_temporal_kernel`.

    Args:
        block: The trained block.
        A: (K, V, V) adjacency.
        frames: Typical input length of this block, used to choose the tiled convolution's tile length.

    Shape:
        h: (V, T, B, C_in) contiguous; output: (V, ceil(T / stride), B, C_out) contiguous.
    """

    def __init__(self, block: STGCNBlock, A: torch.Tensor, frames: int = 300) -> None:
        super().__init__()
        gcn, tcn = block.gcn, block.tcn
        k, c_out = gcn.num_partitions, gcn.out_channels
        c_in = gcn.conv.in_channels
        a = (A * gcn.edge_importance).detach().double()  # (K, V, W)
        w, bias = fold_bn_into_graph_conv(a, gcn.conv, k, tcn.bn1)  # (K, C_in, C_out), (W, C_out)
        self.mix_first = c_in < c_out
        self.register_buffer("amat", (mix_first_matrix(a) if self.mix_first else project_first_matrix(a)).float())
        self.register_buffer("weight", w.float())  # (K, C_in, C_out)
        self.register_buffer("bias", bias.float())  # (W, C_out)
        # on CPU, for sparse graphs: one (C_in, C_out) matrix per connected joint pair (as GraphConv)
        src, dst = edge_list(A)
        self.edges = (src, dst) if len(src) <= 2 * k * A.shape[1] else ((), ())
        if self.edges[0]:
            self.register_buffer("edge_weight", edge_weights(a, w, src, dst).float())
        tw, tb = fold_bn_into_conv(tcn.conv, tcn.bn2)  # (C, C, Gamma, 1), (C,)
        self.register_buffer("tconv_weight", tw.float().contiguous(memory_format=torch.channels_last))
        self.register_buffer("tconv_bias", tb.float())
        self.stride = tcn.conv.stride[0]
        self.padding = tcn.conv.padding[0]
        plan = plan_temporal_conv(tw[..., 0], self.stride, frames)
        self.register_buffer("tiled_d_in", plan.d_in)
        self.register_buffer("tiled_d_out", plan.d_out)
        self.register_buffer("tiled_weight", plan.weight)
        self.tiled_offset = plan.offset
        self.tiled = True
        self.k, self.c_in, self.c_out = k, c_in, c_out
        res = block.residual
        self.residual = "none" if res is None else "identity" if isinstance(res, nn.Identity) else "conv"
        if self.residual == "conv":
            rw, rb = fold_bn_into_conv(res.conv, res.bn)  # (C_out, C_in, 1, 1), (C_out,)
            self.register_buffer("res_weight", rw.reshape(c_out, c_in).float())
            self.register_buffer("res_bias", rb.float())

    def _graph_path(self, h: torch.Tensor) -> str:
        """``"pairs"`` (per joint pair, on CPU), ``"mix-first"`` (C_in < C_out) or ``"project-first"``."""
        if self.edges[0] and h.device.type == "cpu" and not plain_ops():  # traced graphs: few large ops
            return "pairs"
        return "mix-first" if self.mix_first else "project-first"

    def _graph_conv(self, h: torch.Tensor, out: torch.Tensor | None, fast: bool) -> torch.Tensor:
        """relu(gcn(h) + bias), into ``out`` when given. Shape: (V, B', C_in) -> (V, B', C_out)."""
        path = self._graph_path(h)
        if path == "pairs":
            src, dst = self.edges
            if not fast:
                return edge_conv(h, self.edge_weight, self.bias, src, dst).relu()
            out = h.new_empty((h.shape[0], h.shape[1], self.c_out)) if out is None else out
            return edge_conv(h, self.edge_weight, self.bias, src, dst, out=out).relu_()
        if path == "mix-first":
            y = mix_then_project(h, self.amat, self.weight)
        else:
            y = project_then_mix(h, self.amat, self.weight)
        return y.add_(self.bias.unsqueeze(1)).relu_()

    def _temporal_kernel(self, y: torch.Tensor, fast: bool) -> str:
        """``"tiled"`` (float32 on CPU, no autograd) or ``"conv-relu"`` (:func:`~stgcn.ops.temporal_conv.conv_relu`)."""
        return "tiled" if self.tiled and fast and y.device.type == "cpu" and y.dtype == torch.float32 \
            else "conv-relu"

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(V, T', B, C_out) for an input of shape (V, T, B, C_in)."""
        v, t, b, _ = shape
        return v, -(-t // self.stride), b, self.c_out

    def forward(self, h: torch.Tensor, workspace: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The block; ``workspace``: two flat buffers, not overlapping ``h``, for the graph convolution's and
        the block's outputs (saves allocating, and on Linux page-faulting, fresh memory per block)."""
        v, t, b, c_in = h.shape
        y_buf = out_buf = None
        # the fast paths write into given memory (no autograd); standard ops otherwise (an input gradient,
        # tracing/export)
        fast = not plain_ops() and not (torch.is_grad_enabled() and h.requires_grad)
        if workspace is not None and fast:
            y_buf = workspace[0][:v * t * b * self.c_out].view(v, t * b, self.c_out)
            shape = self.output_shape(h.shape)
            out_buf = workspace[1][:math.prod(shape)].view(shape)
        y = self._graph_conv(h.view(v, t * b, c_in), y_buf, fast).view(v, t, b, self.c_out)  # (V, T, B, C_out)
        residual = None
        if self.residual == "identity":
            residual = h
        elif self.residual == "conv":
            hs = h[:, ::self.stride]  # (V, T', B, C_in)
            r = torch.addmm(self.res_bias, hs.reshape(-1, c_in), self.res_weight.t())
            residual = r.view(v, hs.shape[1], b, self.c_out)  # (V, T', B, C_out)
        if self._temporal_kernel(y, fast) == "tiled":
            plan = TiledConvPlan(self.tiled_d_in, self.tiled_d_out, self.tiled_weight, self.stride,
                                 self.tiled_offset)
            return tiled_temporal_conv(y, plan, self.tconv_bias, residual, relu=True, out=out_buf)
        out = conv_relu(as_image(y), self.tconv_weight, self.tconv_bias, self.stride, self.padding,
                        None if residual is None else as_image(residual))
        return from_image(out)  # (V, T', B, C_out)


class FusedSTGCN(nn.Module):
    """Eval-only ST-GCN with folded BatchNorms; built by :func:`optimize_for_inference`.

    Attributes:
        chunk_size: Clips per chunk (``None``: the whole batch at once). Chunks are processed one after
            the other; the logits do not depend on it.
        dtype: Compute dtype (``torch.float32`` or ``torch.bfloat16``); logits are float32 either way.

    Shape:
        x: (N, C, T, V, M); output: (N, num_classes) float32 logits.
    """

    def __init__(self, model: STGCN, chunk_size: int | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.config = model.config
        self.num_joints = model.num_joints
        self.num_features = model.num_features
        s, h = bn_affine(model.data_bn)
        c, v = model.config.in_channels, model.num_joints
        # data BN channel index is v * C + c
        self.register_buffer("data_scale", s.float().view(v, 1, 1, c))
        self.register_buffer("data_shift", h.float().view(v, 1, 1, c))
        blocks, frames = [], 300  # tile lengths are chosen for 300-frame clips; any length works
        for block in model.blocks:
            blocks.append(FusedBlock(block, model.A, frames))
            frames = -(-frames // block.tcn.conv.stride[0])
        self.blocks = nn.ModuleList(blocks)
        self.register_buffer("fc_weight", model.fc.weight.detach().clone())
        self.register_buffer("fc_bias", model.fc.bias.detach().clone() if model.fc.bias is not None else None)
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.blocks.to(dtype)  # the data BN and the classifier stay float32
        self.eval()

    def train(self, mode: bool = True) -> FusedSTGCN:
        if mode:
            raise RuntimeError("FusedSTGCN is inference-only (BatchNorm is folded); train the STGCN instead")
        return super().train(False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        h = x.permute(3, 2, 0, 4, 1).reshape(v, t, n * m, c)  # (V, T, N*M, C)
        h = torch.addcmul(self.data_shift, h.float(), self.data_scale).to(self.dtype).contiguous()
        if plain_ops():
            for block in self.blocks:
                h = block(h)
        else:  # three rotating buffers as large as the largest activation: a block reads one, writes two
            shapes = [tuple(h.shape)]
            for block in self.blocks:
                shapes.append(block.output_shape(shapes[-1]))
            size = max(math.prod(s[:3]) * blk.c_out for s, blk in zip(shapes, self.blocks, strict=False))
            buffers = [h.new_empty(size) for _ in range(3)]
            for i, block in enumerate(self.blocks):  # block i reads buffer 2i+2 (mod 3), writes the others
                h = block(h, (buffers[2 * i % 3], buffers[(2 * i + 1) % 3]))
        return pool_features(h.float(), n, m)  # (N, C_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features, persons averaged. Shape: x (N, C, T, V, M) -> (N, num_features)."""
        check_input_shape(x, self.config.in_channels, self.num_joints)
        if self.chunk_size is None or x.shape[0] <= self.chunk_size:
            return self._features(x)
        return torch.cat([self._features(part) for part in x.split(self.chunk_size)])

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Classifier. Shape: features (N, num_features) -> (N, num_classes)."""
        return F.linear(features, self.fc_weight, self.fc_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@torch.no_grad()
def optimize_for_inference(model: STGCN, *, chunk_size: int | None = None,
                           dtype: torch.dtype = torch.float32) -> FusedSTGCN:
    """An eval-only copy of ``model`` with BatchNorm folded in: same logits, less work.

    The model's eval-mode computation (running BN statistics, dropout off) is reproduced within float
    tolerance; ``model`` itself is not modified. The result has no trainable parameters and refuses
    ``.train()``. It is traceable (``torch.jit.trace``, ``torch.onnx.export``) when ``chunk_size`` is None.

    Args:
        model: A trained :class:`~stgcn.models.stgcn.STGCN` (its mode does not matter: eval statistics are used).
        chunk_size: Process the batch this many clips at a time (CPU cache locality); ``None`` for all at
            once. Logits do not depend on it.
        dtype: ``torch.float32`` (default, same logits) or ``torch.bfloat16`` (an opt-in: weights and
            activations in bfloat16, pooling and classifier in float32; fast only on CPUs with native
            bfloat16, e.g. AVX512-BF16/AMX, and GPUs).

    Returns:
        A :class:`FusedSTGCN` on the model's device.

    Raises:
        ConfigError: a chunk size that is not a positive integer, or a dtype other than the two above.

    Shape:
        Input (N, C, T, V, M); output (N, num_classes).
    """
    if not isinstance(model, STGCN):
        raise TypeError(f"optimize_for_inference expects an STGCN, got {type(model).__name__}")
    if dtype not in (torch.float32, torch.bfloat16):
        raise ConfigError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    if chunk_size is not None and not (is_int(chunk_size) and chunk_size >= 1):
        raise ConfigError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    device = model.A.device
    return FusedSTGCN(model, chunk_size=chunk_size, dtype=dtype).to(device)
