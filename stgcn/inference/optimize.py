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
  convolution is one (C_in x C_out) product per connected joint pair (see :mod:`stgcn.models.stgcn`; for
  short inputs joints are mixed first, by the model's rule :func:`~stgcn.ops.dispatch.graph_kernel_rule`), and in
  float32 (in bfloat16 too on CPUs that multiply it natively) the temporal convolution is the tiled real-DFT
  algorithm of :mod:`stgcn.ops.tiled_conv` (about 2-4.6x fewer multiplications than direct) with bias,
  residual and ReLU applied per cache-sized group of joints. On a GPU and while tracing/exporting, the graph
  convolution mixes joints on the side with fewer channels; there, in bfloat16 on other CPUs and with
  ``block.tiled = False``, the temporal convolution is a channels-last oneDNN/cuDNN convolution (on CPU with
  the residual sum and the ReLU fused into it; in bfloat16 on CPUs without oneDNN's bfloat16 convolution,
  PyTorch's own convolution).
- Activations are written into three rotating buffers per call instead of fresh memory per block.
- For short inputs on several CPU threads (:func:`~stgcn.ops.dispatch.layout_rule`) the same folded weights
  run on the original (N*M, C, T, V) layout instead, as standard convolutions
  (:class:`~stgcn.inference.export_graph.ExportSTGCN`, also the exported ONNX graph).
- Optionally the batch is processed in chunks of ``chunk_size`` clips (results are the same since nothing
  in eval mode couples samples).

The result holds buffers only (no parameters): it cannot be trained. Feed it what the model takes.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.errors import ConfigError
from stgcn.inference.export_graph import ExportSTGCN
from stgcn.models.layers import tiled_min_rows
from stgcn.models.stgcn import STGCN, STGCNBlock, check_input_shape, pool_features
from stgcn.ops.bn_fold import bn_affine, fold_bn_into_conv, fold_bn_into_graph_conv
from stgcn.ops.dispatch import (
    AUTOTUNE_MIN_FLOPS,
    GRAPH_KERNELS,
    TEMPORAL_KERNELS,
    KernelCache,
    LayoutPin,
    check_kernel,
    choose,
    choose_layout,
    graph_kernel_rule,
    set_dispatch,
    shape_key,
)
from stgcn.ops.edge_rounds import EdgeRounds, edge_rounds, rounds_conv
from stgcn.ops.graph_conv import (
    edge_conv,
    edge_list,
    edge_weights,
    mix_first_matrix,
    mix_then_project,
    project_first_matrix,
    project_then_mix,
)
from stgcn.ops.layout import as_image, from_image, native_bf16, plain_ops
from stgcn.ops.temporal_conv import conv_relu
from stgcn.ops.tiled_conv import TiledConvPlan, choose_tile_length, plan_temporal_conv, tiled_temporal_conv
from stgcn.utils.checks import is_int

__all__ = ["optimize_for_inference", "FusedSTGCN", "FusedBlock"]


class FusedBlock(nn.Module):
    """An :class:`~stgcn.models.stgcn.STGCNBlock` with its BatchNorms folded in, on a (V, T, B, C) layout
    (B = N*M), computed with the same kernels (:mod:`stgcn.ops`).

    Computes ``relu(conv_t(relu(gcn(x) + bias_wc)) + residual(x))`` where ``gcn`` already includes BN1's
    scale, ``conv_t`` includes BN2 and ``residual`` is nothing, the identity, or a 1x1 convolution with its
    BN folded in (:mod:`stgcn.ops.bn_fold`). The kernels are chosen per input shape in :meth:`_graph_path`
    (``"pairs"``, ``"pairs-batched"``, ``"mix-first"``, ``"project-first"``) and :meth:`_temporal_kernel`
    (``"tiled"``, ``"direct"``) as in :mod:`stgcn.ops.dispatch`: timed once per shape with ``dispatch =
    "auto"`` (opt-in; large enough calls), by the model's rules otherwise; while tracing or exporting, or when
    autograd records, standard ops only.

    Attributes:
        graph_kernel: Pin one of :data:`~stgcn.ops.dispatch.GRAPH_KERNELS` (``None``: dispatch).
        temporal_kernel: Pin ``"tiled"`` or ``"direct"`` (``None``: dispatch).
        tiled: ``False`` pins the direct temporal convolution (kept from earlier versions).
        dispatch: ``"rules"`` (default) or ``"auto"`` (time the kernels once per shape).

    Args:
        block: The trained block.
        A: (K, V, V) adjacency.

    Shape:
        h: (V, T, B, C_in) contiguous; output: (V, ceil(T / stride), B, C_out) contiguous.
    """

    kernel_kinds = ("graph", "temporal")

    def __init__(self, block: STGCNBlock, A: torch.Tensor) -> None:
        super().__init__()
        gcn, tcn = block.gcn, block.tcn
        k, c_out = gcn.num_partitions, gcn.out_channels
        c_in = gcn.conv.in_channels
        a = (A * gcn.edge_importance).detach().double()  # (K, V, W)
        w, bias = fold_bn_into_graph_conv(a, gcn.conv, k, tcn.bn1)  # (K, C_in, C_out), (W, C_out)
        self.register_buffer("mix_amat", mix_first_matrix(a).float())  # (K*W, V)
        self.register_buffer("project_amat", project_first_matrix(a).float())  # (W, K*V)
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
        self.tiled = True
        self.graph_kernel: str | None = None
        self.temporal_kernel: str | None = None
        self.dispatch = "rules"
        self.kernel_cache = KernelCache()
        self._plans: dict[tuple, TiledConvPlan] = {}
        self._rounds: dict[torch.device, EdgeRounds] = {}
        self.k, self.c_in, self.c_out = k, c_in, c_out
        res = block.residual
        self.residual = "none" if res is None else "identity" if isinstance(res, nn.Identity) else "conv"
        if self.residual == "conv":
            rw, rb = fold_bn_into_conv(res.conv, res.bn)  # (C_out, C_in, 1, 1), (C_out,)
            self.register_buffer("res_weight", rw.reshape(c_out, c_in).float())
            self.register_buffer("res_bias", rb.float())

    def _plan(self, y: torch.Tensor) -> TiledConvPlan:
        """The tiled plan for ``y`` (tile length chosen for its frames and rows), made once per tile length.

        Shape:
            y: (V, T, B, C_out).
        """
        length = choose_tile_length(self.tconv_weight.shape[2], self.stride, y.shape[1], self.c_out, self.c_out,
                                    y.shape[0] * y.shape[2])
        key = (length, y.dtype, y.device)
        if key not in self._plans:
            w = self.tconv_weight.double()[..., 0]
            self._plans[key] = plan_temporal_conv(w, self.stride, y.shape[1], length).to(y.device, y.dtype)
        return self._plans[key]

    def _edge_rounds(self, device: torch.device) -> EdgeRounds:
        if device not in self._rounds:
            self._rounds[device] = edge_rounds(*self.edges, self.bias.shape[0], device)
        return self._rounds[device]

    def _graph_path(self, h: torch.Tensor, fast: bool) -> str:
        """The graph kernel for ``h`` (V, B', C_in): a pin, else the model's rule or the fastest (timed)."""
        c_in, c_out = self.c_in, self.c_out
        if not fast:  # standard ops (tracing/exporting, autograd): few large products
            return "mix-first" if c_in < c_out else "project-first"
        sparse = bool(self.edges[0])
        rule = graph_kernel_rule(h.shape[1], c_in, c_out, sparse=sparse, cpu=h.device.type == "cpu", grad=False)
        options = [n for n in GRAPH_KERNELS if sparse or not n.startswith("pairs")]
        tune = self.dispatch == "auto" and 2.0 * h.shape[0] * h.shape[1] * self.k * c_in * c_out >= AUTOTUNE_MIN_FLOPS
        candidates = (lambda: {n: functools.partial(self._graph_conv, h, None, n) for n in options}) if tune else None
        path = choose(self.kernel_cache, shape_key(h, "graph"),
                      check_kernel(self.graph_kernel, GRAPH_KERNELS, "graph"), rule, candidates)
        return path if sparse or not path.startswith("pairs") else rule

    def _graph_conv(self, h: torch.Tensor, out: torch.Tensor | None, path: str) -> torch.Tensor:
        """relu(gcn(h) + bias) by ``path``, into ``out`` when given. Shape: (V, B', C_in) -> (V, B', C_out)."""
        if path.startswith("pairs") and not self.edges[0]:
            path = "mix-first"
        if path == "pairs":
            src, dst = self.edges
            if out is None:
                out = h.new_empty((h.shape[0], h.shape[1], self.c_out))
            return edge_conv(h, self.edge_weight, self.bias, src, dst, out=out).relu_()
        if path == "pairs-batched":
            return rounds_conv(h, self.edge_weight, self.bias, self._edge_rounds(h.device), out=out).relu_()
        if path == "mix-first":
            y = mix_then_project(h, self.mix_amat, self.weight)
        else:
            y = project_then_mix(h, self.project_amat, self.weight)
        return y.add_(self.bias.unsqueeze(1)).relu_()

    def _temporal_kernel(self, y: torch.Tensor, residual: torch.Tensor | None, out: torch.Tensor | None,
                         fast: bool) -> str:
        """``"tiled"`` (on CPU, no autograd; float32, or bfloat16 where the CPU multiplies it natively) or
        ``"direct"`` (:func:`~stgcn.ops.temporal_conv.conv_relu`): a pin, else the model's rule or the fastest
        (timed). In bfloat16 on one thread of an AVX512-BF16 host the tiled kernel made the fused model 2.64x the
        float32 baseline at NW-UCLA batch 16 (2.16x with oneDNN's bfloat16 convolution), 3.18x (2.38x) at the
        2-D recipe's batch 16, 2.11x (1.68x) and 2.45x (1.91x) at the two streaming windows; logits
        differences to float32 about 1.5-2x those of the direct convolution (Kinetics model on the original
        code's inputs: relative 0.4-1.9% against 0.3-1.3%, the same top-5)."""
        lowp = y.dtype == torch.bfloat16 and native_bf16()
        if not (fast and y.device.type == "cpu" and (y.dtype == torch.float32 or lowp)):
            return "direct"
        pin = "direct" if not self.tiled else check_kernel(self.temporal_kernel, TEMPORAL_KERNELS, "temporal")
        v, t, b, c = y.shape
        rule = "tiled" if -(-t // self.stride) * b >= tiled_min_rows(grad=False) else "direct"
        flops = 2.0 * v * t * b * c * c * self.tconv_weight.shape[2] / self.stride
        tune = self.dispatch == "auto" and flops >= AUTOTUNE_MIN_FLOPS
        candidates = (lambda: {n: functools.partial(self._temporal_conv, y, residual, out, n)
                               for n in TEMPORAL_KERNELS}) if tune else None
        return choose(self.kernel_cache, shape_key(y, "temporal"), pin, rule, candidates)

    def _temporal_conv(self, y: torch.Tensor, residual: torch.Tensor | None, out: torch.Tensor | None,
                       kernel: str) -> torch.Tensor:
        """relu(conv_t(y) + residual) by ``kernel``. Shape: y (V, T, B, C_out) -> (V, T', B, C_out)."""
        if kernel == "tiled":
            return tiled_temporal_conv(y, self._plan(y), self.tconv_bias, residual, relu=True, out=out)
        res = None if residual is None else as_image(residual)
        return from_image(conv_relu(as_image(y), self.tconv_weight, self.tconv_bias, self.stride, self.padding, res))

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
        h3 = h.view(v, t * b, c_in)
        if fast:
            y = self._graph_conv(h3, y_buf, self._graph_path(h3, fast))
        else:
            path = self._graph_path(h3, fast)
            y = (mix_then_project(h3, self.mix_amat, self.weight) if path == "mix-first" else
                 project_then_mix(h3, self.project_amat, self.weight)) + self.bias.unsqueeze(1)
            y = y.relu()
        y = y.view(v, t, b, self.c_out)  # (V, T, B, C_out)
        residual = None
        if self.residual == "identity":
            residual = h
        elif self.residual == "conv":
            hs = h[:, ::self.stride]  # (V, T', B, C_in)
            r = torch.addmm(self.res_bias, hs.reshape(-1, c_in), self.res_weight.t())
            residual = r.view(v, hs.shape[1], b, self.c_out)  # (V, T', B, C_out)
        return self._temporal_conv(y, residual, out_buf, self._temporal_kernel(y, residual, out_buf, fast))


class FusedSTGCN(LayoutPin, nn.Module):
    """Eval-only ST-GCN with folded BatchNorms; built by :func:`optimize_for_inference`.

    Attributes:
        chunk_size: Clips per chunk (``None``: the whole batch at once). Chunks are processed one after
            the other; the logits do not depend on it.
        dtype: Compute dtype (``torch.float32`` or ``torch.bfloat16``); logits are float32 either way.
        dispatch: ``"rules"`` (default) or ``"auto"`` (opt-in: each block times its kernels once per
            input shape and keeps the fastest; :mod:`stgcn.ops.dispatch`).
        reuse_buffers: Keep the activation buffers between calls of the same shape (streaming windows pay
            no allocation or page faults; default True). A model that reuses buffers must not be called
            from two threads at once: give each thread its own copy, or set this False.
        layout: Pin the activation layout: ``"vtnc"`` (the blocks above) or ``"nctv"`` (the same folded weights
            on the original (N*M, C, T, V) layout, standard ops: :class:`~stgcn.inference.export_graph.ExportSTGCN`,
            float32). ``None`` (default): :func:`stgcn.ops.dispatch.layout_rule` for float32 models (the original
            layout for short inputs on several CPU threads), the blocks otherwise; while tracing, exporting or
            compiling, the blocks' standard ops. The choices taken are in ``layout_cache``.

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
        blocks = [FusedBlock(block, model.A) for block in model.blocks]
        self.blocks = nn.ModuleList(blocks)
        self.register_buffer("fc_weight", model.fc.weight.detach().clone())
        self.register_buffer("fc_bias", model.fc.bias.detach().clone() if model.fc.bias is not None else None)
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.reuse_buffers = True
        self._workspace_cache: tuple[tuple, list[torch.Tensor]] | None = None
        self.layout = None
        self.layout_cache = KernelCache()
        self._original_cache: tuple[tuple, ExportSTGCN] | None = None
        self.blocks.to(dtype)  # the data BN and the classifier stay float32
        self.eval()

    @property
    def dispatch(self) -> str:
        return self.blocks[0].dispatch if len(self.blocks) else "rules"

    @dispatch.setter
    def dispatch(self, mode: str) -> None:
        set_dispatch(self, mode)

    def _original(self) -> ExportSTGCN:
        """The folded weights on the original layout, built on first use and again after ``.to()`` (not a
        submodule: the state dict stays the fused model's)."""
        key = (self.fc_weight.device, self.fc_weight.data_ptr(), self.blocks[0].weight.data_ptr())
        if self._original_cache is None or self._original_cache[0] != key:
            self._original_cache = (key, ExportSTGCN(self).to(self.fc_weight.device))
        return self._original_cache[1]

    def _workspace(self, size: int, like: torch.Tensor) -> list[torch.Tensor]:
        """Three flat buffers of ``size`` elements, kept for the next call of the same size when reusing."""
        key = (size, like.dtype, like.device)
        if self.reuse_buffers and self._workspace_cache is not None and self._workspace_cache[0] == key:
            return self._workspace_cache[1]
        buffers = [like.new_empty(size) for _ in range(3)]
        self._workspace_cache = (key, buffers) if self.reuse_buffers else None
        return buffers

    def train(self, mode: bool = True) -> FusedSTGCN:
        if mode:
            raise RuntimeError("FusedSTGCN is inference-only (BatchNorm is folded); train the STGCN instead")
        return super().train(False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        if not plain_ops() and (self.layout is not None or self.dtype == torch.float32) and len(self.blocks):
            if choose_layout(self.layout_cache, self.layout, x, rows=t * n * m) == "nctv":
                return self._original().forward_features(x.float())  # (N, num_features), float32 as below
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
            buffers = self._workspace(size, h)
            for i, block in enumerate(self.blocks):  # block i reads buffer 2i+2 (mod 3), writes the others
                h = block(h, (buffers[2 * i % 3], buffers[(2 * i + 1) % 3]))
        return pool_features(h.float(), n, m, self.config.pool)  # (N, num_features)

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
