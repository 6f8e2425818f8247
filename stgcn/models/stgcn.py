"""ST-GCN: Spatial Temporal Graph Convolutional Networks (Yan, Xiong, Lin, AAAI 2018).

Reads top to bottom as the paper's network: the graph convolution, the temporal convolution, the residual
projection, the block, the network.

Per block:  x -> GraphConv (1x1 conv to K*C_out channels, mixed over joints by each partition of A, summed
over partitions) -> BN -> ReLU -> Gamma x 1 temporal conv (stride on T) -> BN -> Dropout -> + residual -> ReLU.
Network:    data BN over V*C per person -> blocks -> global average pool over (T, V) (``pool="joint"``: over
T only, every joint's features kept) -> mean over persons -> linear classifier.

On CPU the implementation keeps that math but not the original's memory layout or order of operations (on GPUs,
under ``torch.compile`` and for short inputs on several CPU threads it runs the original structure:
``STGCN.layout``, :func:`stgcn.ops.dispatch.layout_rule`): the activations live in the (V, T, N, C) layout of
:mod:`stgcn.ops.layout`, the graph convolution is one matrix product per connected joint pair
(:mod:`stgcn.ops.graph_conv`), the temporal convolution is a tiled real-DFT algorithm with 2-4x fewer
multiplications (:mod:`stgcn.ops.tiled_conv`, :mod:`stgcn.ops.temporal_conv`), and a training step stores about
half the activations (``memory_mode``, :mod:`stgcn.ops.recompute`). The layers are in
:mod:`stgcn.models.layers`; each module chooses its kernel per input shape in one method (``GraphConv._path``,
``TemporalConv._kernel``, ``STGCNBlock._recompute_graph_conv``; see :mod:`stgcn.ops.dispatch`). Results equal
the textbook computation up to float rounding; the literal original structure is :mod:`stgcn.models.reference`.
For inference, :func:`stgcn.inference.optimize.optimize_for_inference` also folds the BatchNorms away.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from stgcn.errors import ConfigError
from stgcn.models.config import STGCNConfig
from stgcn.models.layers import RECOMPUTE_MIN_BYTES, GraphConv, ResidualProjection, TemporalConv
from stgcn.ops.dispatch import KernelCache, LayoutPin, check_mode, choose_layout
from stgcn.ops.layout import as_image, autocast_on, from_image, from_vtnc, to_vtnc
from stgcn.ops.recompute import RecomputedInput, checkpoint_contexts

__all__ = ["STGCN", "GraphConv", "TemporalConv", "ResidualProjection", "STGCNBlock", "MEMORY_MODES",
           "check_input_shape", "pool_features"]

MEMORY_MODES = ("recompute", "store", "checkpoint")

# Graph convolutions recomputed in backward (memory_mode "recompute") are those up to C_in * C_out = 128 * 128:
# the paper's blocks 1-7, about 40% of the graph convolutions' work for 70% of the memory they would keep.
_RECOMPUTE_MAX_WORK = 128 * 128


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
        temporal convolution's BN would save it): ``memory_mode == "recompute"``, a cheap enough layer and
        an output of at least :data:`RECOMPUTE_MIN_BYTES` (below that the memory saved is not worth the time)."""
        c_in, c_out = self.gcn.conv.in_channels, self.gcn.out_channels
        return (self.tcn.memory_mode == "recompute" and self.training and torch.is_grad_enabled()
                and g.requires_grad and not autocast_on(g.device.type) and c_in * c_out <= _RECOMPUTE_MAX_WORK
                and g.numel() * g.element_size() >= RECOMPUTE_MIN_BYTES)

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

    def forward_nctv(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """The original structure on the original layout, standard ops only (``STGCN.layout == "nctv"``).

        Shape:
            x: (N, C_in, T, V); A: (K, V, V); output: (N, C_out, ceil(T / stride), V).
        """
        y = self.tcn.forward_nctv(self.gcn.forward_nctv(x, A))  # (N, C_out, T', V)
        if self.residual is not None:
            y = y + (x if isinstance(self.residual, nn.Identity) else self.residual.forward_nctv(x))
        return F.relu(y)

    def _graph_conv_again(self, h: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return as_image(self.gcn.forward_vtnc(h, A))


def check_input_shape(x: torch.Tensor, in_channels: int, num_joints: int) -> None:
    """Raise ValueError naming the expected and the actual shape unless x is (N, C, T>=1, V, M>=1)."""
    c, v = in_channels, num_joints
    if x.dim() != 5 or x.shape[1] != c or x.shape[3] != v or x.shape[2] < 1 or x.shape[4] < 1:
        raise ValueError(f"expected input of shape (N, C={c}, T>=1, V={v}, M>=1), got {tuple(x.shape)}")


def pool_features(h: torch.Tensor, n: int, m: int, pool: str = "mean") -> torch.Tensor:
    """Global average pool over (V, T) (``pool="joint"``: over T only, joint-major features), then the mean
    over persons.

    Shape:
        h: (V, T, N*M, C); output: (N, C), or (N, V*C) for ``joint``.
    """
    if pool == "joint":
        f = h.mean(dim=1).transpose(0, 1).reshape(h.shape[2], -1)  # (N*M, V*C)
    else:
        f = h.sum(dim=0).mean(dim=0) / h.shape[0]  # (N*M, C)
    return f.view(n, m, -1).mean(dim=1)


class STGCN(LayoutPin, nn.Module):
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
        dispatch: How each block picks its kernels (:mod:`stgcn.ops.dispatch`): ``"rules"`` (default:
            deterministic rules on the shapes, as training always uses) or ``"auto"`` (opt-in, like cuDNN's
            benchmark mode: in inference, time the candidates once per input shape and keep the fastest;
            the first call of each shape then costs several calls' time). Individual kernels are pinned
            with :func:`stgcn.ops.dispatch.pin_kernels`.
        layout: Pin the activation layout: ``"vtnc"`` (the internal layout and the fast kernels above) or
            ``"nctv"`` (the original structure: (N*M, C, T, V) tensors and standard ops, the 1x1 convolution and
            an einsum; memory_mode ``"recompute"`` then stores everything, ``"checkpoint"`` still applies).
            ``None`` (default): :func:`stgcn.ops.dispatch.layout_rule` (the internal layout on CPU, except for
            short inputs on several threads and for some training steps under CPU autocast; the original on GPUs,
            where cuDNN and cuBLAS run it faster, and under ``torch.compile``). The choices taken are in
            ``layout_cache`` (``dispatch_report``).

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
        self.num_features = c_in * v if config.pool == "joint" else c_in
        self.fc = nn.Linear(self.num_features, config.num_classes)
        self.memory_mode = "recompute"
        self.inference_chunk_size: int | None = None
        self.layout = None
        self.layout_cache = KernelCache()  # the layouts the rule chose, per input shape (dispatch_report)

    @property
    def dispatch(self) -> str:
        return self.blocks[0].gcn.dispatch if len(self.blocks) else "rules"

    @dispatch.setter
    def dispatch(self, mode: str) -> None:
        check_mode(mode)
        for module in self.modules():
            if isinstance(module, GraphConv | TemporalConv):
                module.dispatch = mode
                module.kernel_cache.clear()

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
        width = self.blocks[0].gcn.out_channels if len(self.blocks) else None
        original = choose_layout(self.layout_cache, self.layout, x, rows=t * n * m, training=self.training,
                                 channels=width) == "nctv"
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)  # (N*M, V*C, T): data BN per person
        x = self.data_bn(x)
        checkpoint = self.memory_mode == "checkpoint" and self.training and torch.is_grad_enabled()
        if original:
            h = x.view(n * m, v, c, t).permute(0, 2, 3, 1).contiguous()  # (N*M, C, T, V): the original layout
        else:
            h = x.view(n * m, v, c, t).permute(1, 3, 0, 2).contiguous()  # (V, T, N*M, C): the internal layout
        for block in self.blocks:
            step = block.forward_nctv if original else block.forward_vtnc
            if checkpoint:
                h = torch.utils.checkpoint.checkpoint(step, h, self.A, use_reentrant=False,
                                                      context_fn=functools.partial(checkpoint_contexts, block))
            else:
                h = step(h, self.A)  # (N*M, C_out, T', V) or (V, T', N*M, C_out)
        if original:
            h = h.permute(3, 2, 0, 1)  # (N*M, C, T', V) -> (V, T', N*M, C), a view
        return pool_features(h, n, m, self.config.pool)  # (N, num_features)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Classifier. Shape: features (N, num_features) -> (N, num_classes)."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
