"""ST-GCN: Spatial Temporal Graph Convolutional Networks (Yan, Xiong, Lin, AAAI 2018).

Reads top to bottom as the paper's network: the graph convolution, the temporal convolution, the residual
projection, the block, the network.

Per block:  x -> GraphConv (1x1 conv to K*C_out channels, mixed over joints by each partition of A, summed
over partitions) -> BN -> ReLU -> Gamma x 1 temporal conv (stride on T) -> BN -> Dropout -> + residual -> ReLU.
Network:    data BN over V*C per person -> blocks -> global average pool over (T, V) -> mean over persons
-> linear classifier.

The implementation keeps that math but not the original's memory layout or order of operations: the
activations live in the (V, T, N, C) layout of :mod:`stgcn.ops.layout`, the graph convolution is one matrix
product per connected joint pair (:mod:`stgcn.ops.graph_conv`), the temporal convolution is a tiled real-DFT
algorithm with 2-4x fewer multiplications (:mod:`stgcn.ops.tiled_conv`, :mod:`stgcn.ops.temporal_conv`), and a
training step stores about half the activations (``memory_mode``, :mod:`stgcn.ops.recompute`). Each module
chooses its kernel in one method (``GraphConv._path``, ``TemporalConv._kernel``,
``STGCNBlock._recompute_graph_conv``). Results equal the textbook computation up to float rounding; the
literal original structure is :mod:`stgcn.models.reference`. For inference,
:func:`stgcn.inference.optimize.optimize_for_inference` also folds the BatchNorms away.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from stgcn.errors import ConfigError
from stgcn.models.config import STGCNConfig
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
from stgcn.ops.layout import as_image, autocast_on, from_image, from_vtnc, plain_ops, to_vtnc
from stgcn.ops.recompute import RecomputedInput, checkpoint_contexts
from stgcn.ops.temporal_conv import BNReLUConv, TiledConv, bn_train_args
from stgcn.ops.tiled_conv import TiledConvPlan, plan_temporal_conv

__all__ = ["STGCN", "GraphConv", "TemporalConv", "ResidualProjection", "STGCNBlock", "MEMORY_MODES",
           "check_input_shape", "pool_features"]

MEMORY_MODES = ("recompute", "store", "checkpoint")

# Graph convolutions recomputed in backward (memory_mode "recompute") are those up to C_in * C_out = 128 * 128:
# the paper's blocks 1-7, about 40% of the graph convolutions' work for 70% of the memory they would keep.
_RECOMPUTE_MAX_WORK = 128 * 128

Edges = tuple[tuple[int, ...], tuple[int, ...]]


class GraphConv(nn.Module):
    """The spatial graph convolution: ``f_out = sum_k (A_k * M_k)^T-mix of (W_k f_in + b_k)``.

    A 1x1 convolution produces K*C_out channels, ordered (k, c); partition ``k``'s slice is mixed over joints
    by ``A[k] * edge_importance[k]`` and the K results are summed. The products are associative, which
    allows three orders (:mod:`stgcn.ops.graph_conv`), chosen by :meth:`_path`:

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

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        return from_vtnc(self.forward_vtnc(to_vtnc(x), A))

    def _path(self, h: torch.Tensor, A: torch.Tensor, grad: bool) -> tuple[str, Edges]:
        """Which kernel runs, and the joint pairs for the per-pair kernels (else empty).

        ``"pairs"`` (:class:`EdgeGraphConv`, training), ``"pairs-ops"`` (:func:`edge_conv` from standard ops,
        under autocast), ``"pairs-inplace"`` (:func:`edge_conv` into fresh memory, inference),
        ``"mix-first-recompute"`` (:class:`MixFirstGraphConv`), ``"mix-first"`` (:func:`mix_then_project`),
        ``"project-first"`` (:func:`project_then_mix`, inference with C_in >= C_out).
        """
        k, v = self.num_partitions, h.shape[0]
        autocast = autocast_on(h.device.type)
        # On CPU, when the graph connects at most 2*K*V joint pairs: one product per pair (at most twice the
        # 1x1 convolution's work). On a GPU a few large products win, and so they do while tracing/compiling
        # (a smaller graph of standard ops).
        edges = edge_list(A) if h.device.type == "cpu" and not plain_ops() else ((), ())
        if 0 < len(edges[0]) <= 2 * k * v:
            if grad and not autocast:
                return "pairs", edges
            return ("pairs-ops" if grad or autocast else "pairs-inplace"), edges
        if grad or self.conv.in_channels < self.out_channels:
            recompute = grad and self.memory_mode == "recompute" and not autocast
            return ("mix-first-recompute" if recompute else "mix-first"), ((), ())
        return "project-first", ((), ())

    def forward_vtnc(self, h: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: h (V, T, N, C_in) contiguous -> (V, T, N, C_out)."""
        v, t, n, c_in = h.shape
        k, c_out = self.num_partitions, self.out_channels
        a = A * self.edge_importance  # (K, V, W): source v -> target w
        wk = self.conv.weight.view(k, c_out, c_in).transpose(1, 2)  # (K, C_in, C_out)
        bias = None if self.conv.bias is None else mixed_bias(a, self.conv.bias)  # (W, C_out)
        grad = torch.is_grad_enabled() and (h.requires_grad or a.requires_grad or wk.requires_grad)
        h3 = h.view(v, t * n, c_in)  # (V, B, C_in) with B = T*N
        path, (src, dst) = self._path(h, A, grad)
        if path == "pairs":
            out = EdgeGraphConv.apply(h3, edge_weights(a, wk, src, dst), bias, src, dst)
        elif path == "pairs-ops":
            out = edge_conv(h3, edge_weights(a, wk, src, dst), bias, src, dst)
        elif path == "pairs-inplace":
            out = edge_conv(h3, edge_weights(a, wk, src, dst), bias, src, dst, out=h.new_empty((v, t * n, c_out)))
        else:
            if path == "mix-first-recompute":
                out = MixFirstGraphConv.apply(h3, mix_first_matrix(a), wk)
            elif path == "mix-first":
                out = mix_then_project(h3, mix_first_matrix(a), wk)
            else:
                out = project_then_mix(h3, project_first_matrix(a), wk)
            if bias is not None:
                out = out + bias.unsqueeze(1) if grad else out.add_(bias.unsqueeze(1))
        return out.view(v, t, n, c_out)  # (W, B, C_out) -> (V, T, N, C_out)


class TemporalConv(nn.Module):
    """BN -> ReLU -> Gamma x 1 convolution over time (stride on T only) -> BN -> Dropout.

    On CPU (float32/float64) the convolution runs as the tiled real-DFT algorithm of
    :mod:`stgcn.ops.tiled_conv`, forward and backward, with about 2-4x fewer multiplications than a direct
    convolution (same result up to float rounding); set ``tiled = False`` for the direct convolution. In
    training with ``memory_mode == "recompute"`` (the default) the ReLU output is not stored for the
    backward pass but recomputed from the first BN's input and batch statistics (same gradients). The
    choice is made in :meth:`_kernel`.

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
        return from_vtnc(self.forward_vtnc(to_vtnc(x)))

    def forward_vtnc(self, g: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: g (V, T, N, C) contiguous -> (V, T', N, C)."""
        return from_image(self.forward_image(as_image(g)))

    def _kernel(self, x: torch.Tensor) -> tuple[str, TiledConvPlan | None]:
        """Which kernel runs BN1 -> ReLU -> conv, and the tiled plan (None for the direct convolution).

        ``"bn-relu-conv-recompute"`` (:class:`BNReLUConv`: training, ReLU output recomputed), ``"tiled"``
        (BN1, ReLU, then :class:`TiledConv`) or ``"modules"`` (BN1, ReLU, ``self.conv``).
        """
        autocast = autocast_on(x.device.type)
        plan = None
        if (self.tiled and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not autocast
                and not plain_ops() and x.is_contiguous(memory_format=torch.channels_last)):
            plan = plan_temporal_conv(self.conv.weight[..., 0], self.conv.stride[0], x.shape[2], exact=False)
        bn = self.bn1
        if self.memory_mode == "recompute" and bn.training and bn.affine and torch.is_grad_enabled() and not autocast:
            return "bn-relu-conv-recompute", plan
        return ("tiled" if plan is not None else "modules"), plan

    def forward_image(self, x: torch.Tensor) -> torch.Tensor:
        """Same computation on a (V, C, T, N) channels-last image (time is the height) -> (V, C, T', N)."""
        conv, bn = self.conv, self.bn1
        kernel, plan = self._kernel(x)
        if kernel == "bn-relu-conv-recompute":
            running_mean, running_var, momentum = bn_train_args(bn)
            y = BNReLUConv.apply(x, bn.weight, bn.bias, conv.weight, conv.bias, running_mean, running_var,
                                 momentum, bn.eps, conv.stride, conv.padding, plan)
        elif kernel == "tiled":
            y = TiledConv.apply(F.relu(bn(x)), conv.weight, conv.bias, conv.stride[0], plan)
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
        return from_vtnc(self.forward_vtnc(to_vtnc(x)))

    def forward_vtnc(self, h: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: h (V, T, N, C_in) -> (V, T', N, C_out)."""
        stride = self.conv.stride[0]
        hs = h[:, ::stride] if stride > 1 else h  # (V, T', N, C_in)
        v, t, n, c_in = hs.shape
        w = self.conv.weight.view(self.conv.out_channels, c_in)
        y = F.linear(hs.reshape(v * t * n, c_in), w, self.conv.bias).view(v, t, n, -1)  # (V, T', N, C_out)
        return from_image(self.bn(as_image(y)))


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

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        return from_vtnc(self.forward_vtnc(to_vtnc(x), A))

    def _recompute_graph_conv(self, g: torch.Tensor) -> bool:
        """Whether backward recomputes the graph convolution's output ``g`` instead of keeping it (the
        temporal convolution's BN would save it): ``memory_mode == "recompute"`` and a small enough layer."""
        c_in, c_out = self.gcn.conv.in_channels, self.gcn.out_channels
        return (self.tcn.memory_mode == "recompute" and self.training and torch.is_grad_enabled()
                and g.requires_grad and not autocast_on(g.device.type) and c_in * c_out <= _RECOMPUTE_MAX_WORK)

    def forward_vtnc(self, h: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: h (V, T, N, C_in) -> (V, T', N, C_out)."""
        g = self.gcn.forward_vtnc(h, A)  # (V, T, N, C_out)
        if self._recompute_graph_conv(g):  # keep a recipe instead of g (h is kept anyway)
            hooks = RecomputedInput(as_image(g), functools.partial(self._graph_conv_again, h, A))
            with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
                y = self.tcn.forward_image(as_image(g))  # (V, C_out, T', N)
        else:
            y = self.tcn.forward_image(as_image(g))
        if self.residual is not None:
            res = h if isinstance(self.residual, nn.Identity) else self.residual.forward_vtnc(h)
            # in place on the BN/dropout output (which backward does not need), not on a view of it: autograd
            # would copy the whole tensor for an in-place op on a view
            y = y.add_(as_image(res))
        return from_image(F.relu_(y))  # (V, T', N, C_out)

    def _graph_conv_again(self, h: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return as_image(self.gcn.forward_vtnc(h, A))


def check_input_shape(x: torch.Tensor, in_channels: int, num_joints: int) -> None:
    """Raise ValueError naming the expected and the actual shape unless x is (N, C, T>=1, V, M>=1)."""
    c, v = in_channels, num_joints
    if x.dim() != 5 or x.shape[1] != c or x.shape[3] != v or x.shape[2] < 1 or x.shape[4] < 1:
        raise ValueError(f"expected input of shape (N, C={c}, T>=1, V={v}, M>=1), got {tuple(x.shape)}")


def pool_features(h: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Global average pool over (V, T), then the mean over persons.

    Shape:
        h: (V, T, N*M, C); output: (N, C).
    """
    f = h.sum(dim=0).mean(dim=0) / h.shape[0]  # (N*M, C)
    return f.view(n, m, -1).mean(dim=1)


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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features, persons averaged.

        Shape:
            x: (N, C, T, V, M); output: (N, num_features).
        """
        check_input_shape(x, self.config.in_channels, self.num_joints)
        chunk = self.inference_chunk_size
        if chunk is not None and not self.training and x.shape[0] > chunk:
            return torch.cat([self.forward_features(part) for part in x.split(chunk)])
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)  # (N*M, V*C, T): data BN per person
        x = self.data_bn(x)
        h = x.view(n * m, v, c, t).permute(1, 3, 0, 2).contiguous()  # (V, T, N*M, C): the internal layout
        checkpoint = self.memory_mode == "checkpoint" and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if checkpoint:
                h = torch.utils.checkpoint.checkpoint(
                    block.forward_vtnc, h, self.A, use_reentrant=False,
                    context_fn=functools.partial(checkpoint_contexts, block))
            else:
                h = block.forward_vtnc(h, self.A)  # (V, T', N*M, C_out)
        return pool_features(h, n, m)  # (N, C_last)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Classifier. Shape: features (N, num_features) -> (N, num_classes)."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
