"""ST-GCN: Spatial Temporal Graph Convolutional Networks (Yan, Xiong, Lin, AAAI 2018).

Reads top to bottom: configs, the graph convolution, the temporal convolution, the block, the network.

Per block:  x -> GraphConv (1x1 conv to K*C_out channels, mixed over joints by each partition of A, summed
over partitions) -> BN -> ReLU -> Gamma x 1 temporal conv (stride on T) -> BN -> Dropout -> + residual -> ReLU.
Network:    data BN over V*C per person -> blocks -> global average pool over (T, V) -> mean over persons
-> linear classifier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.errors import ConfigError
from stgcn.graph import NORMALIZATIONS, STRATEGIES, Graph
from stgcn.layouts import BUILTIN_LAYOUTS, Layout, get_layout

__all__ = ["GraphConfig", "STGCNConfig", "STGCN", "GraphConv", "TemporalConv", "STGCNBlock", "DEFAULT_BLOCKS"]

# The notes' table: (output channels, temporal stride) for the ten blocks.
DEFAULT_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1))


@dataclass(frozen=True)
class GraphConfig:
    """Which skeleton graph a model uses.

    Args:
        layout: Built-in layout name, a path to a JSON/YAML layout file (read once, then kept inline so a
            checkpoint is self-contained), or a :class:`~stgcn.layouts.Layout`.
        strategy: ``uniform``, ``distance`` or ``spatial``.
        max_hop: Largest hop distance in a neighbourhood.
        dilation: Step between used hop distances.
        normalization: ``notes`` (the paper) or ``original`` (yysijie/st-gcn, for its checkpoints).
    """

    layout: str | Layout = "openpose-18"
    strategy: str = "spatial"
    max_hop: int = 1
    dilation: int = 1
    normalization: str = "notes"

    def __post_init__(self) -> None:
        if not (isinstance(self.layout, str) and self.layout in BUILTIN_LAYOUTS):
            object.__setattr__(self, "layout", get_layout(self.layout))
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; valid strategies are {', '.join(STRATEGIES)}")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"unknown normalization {self.normalization!r}; valid normalizations are "
                              f"{', '.join(NORMALIZATIONS)}")
        for name in ("max_hop", "dilation"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"graph.{name} must be an integer >= 1, got {value!r}")

    def build(self) -> Graph:
        """The :class:`~stgcn.graph.Graph` this config describes."""
        return Graph(self.layout, self.strategy, self.max_hop, self.dilation, self.normalization)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layout"] = self.layout if isinstance(self.layout, str) else self.layout.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GraphConfig:
        return _from_dict(cls, d, "graph")


@dataclass(frozen=True)
class STGCNConfig:
    """Everything that determines an ST-GCN's architecture; saved in every checkpoint.

    Args:
        num_classes: Number of output classes.
        in_channels: Channels per joint: 2 (x, y), or 3 (x, y, score or x, y, z).
        graph: The skeleton graph.
        temporal_kernel: Gamma, the odd temporal kernel size (padding (Gamma - 1) / 2).
        blocks: (output channels, temporal stride) per block.
        edge_importance: Learn a (K, V, V) mask per block multiplying A. When off the mask stays all ones
            (a buffer), so state_dict keys do not depend on this flag.
        dropout: Dropout probability after the temporal convolution of every block but the first.
    """

    num_classes: int
    in_channels: int = 3
    graph: GraphConfig = field(default_factory=GraphConfig)
    temporal_kernel: int = 9
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS
    edge_importance: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.graph, dict):
            object.__setattr__(self, "graph", GraphConfig.from_dict(self.graph))
        object.__setattr__(self, "blocks", tuple(tuple(b) for b in self.blocks))
        for name in ("num_classes", "in_channels", "temporal_kernel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.temporal_kernel % 2 == 0:
            raise ConfigError(f"temporal_kernel must be odd (padding is (Gamma - 1) / 2), got {self.temporal_kernel}")
        if not self.blocks or not all(
                len(b) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in b)
                for b in self.blocks):
            raise ConfigError(f"blocks must be a non-empty list of [channels, stride] positive integers, "
                              f"got {self.blocks!r}")
        if not isinstance(self.edge_importance, bool):
            raise ConfigError(f"edge_importance must be true or false, got {self.edge_importance!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be a number in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["graph"] = self.graph.to_dict()
        d["blocks"] = [list(b) for b in self.blocks]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> STGCNConfig:
        return _from_dict(cls, d, "model")


def _from_dict(cls: type, d: dict[str, Any], where: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {valid}")
    try:
        return cls(**d)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


class GraphConv(nn.Module):
    """The spatial graph convolution: ``f_out = sum_k (A_k * M_k)^T-mix of (W_k f_in + b_k)``.

    A 1x1 convolution produces K*C_out channels, ordered (k, c); partition ``k``'s slice is mixed over joints
    by ``A[k] * edge_importance[k]`` and the K results are summed.

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
        self.conv = nn.Conv2d(in_channels, num_partitions * out_channels, kernel_size=1)
        mask = torch.ones(num_partitions, num_joints, num_joints)
        if edge_importance:
            self.edge_importance = nn.Parameter(mask)
        else:
            self.register_buffer("edge_importance", mask)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:  # noqa: N803
        k, c = self.num_partitions, self.out_channels
        n, _, t, v = x.shape
        a = (A * self.edge_importance).reshape(k * v, v)  # (K*V, V): rows (k, source), columns target
        y = self.conv(x)  # (N, K*C, T, V)
        y = y.view(n, k, c, t, v).permute(0, 2, 3, 1, 4).reshape(n * c * t, k * v)  # (N*C*T, K*V)
        return (y @ a).view(n, c, t, v)  # sum over partitions and source joints -> (N, C, T, V)


class TemporalConv(nn.Module):
    """BN -> ReLU -> Gamma x 1 convolution over time (stride on T only) -> BN -> Dropout.

    Shape:
        x: (N, C, T, V); output: (N, C, ceil(T / stride), V).
    """

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, (kernel_size, 1), (stride, 1), ((kernel_size - 1) // 2, 0))
        self.bn2 = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.bn2(self.conv(F.relu(self.bn1(x)))))


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
        return self.bn(self.conv(x))


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
        y = self.tcn(self.gcn(x, A))
        if self.residual is not None:
            y = y + self.residual(x)
        return F.relu(y)


class STGCN(nn.Module):
    """Spatial Temporal Graph Convolutional Network.

    Args:
        config: The architecture; see :class:`STGCNConfig`.

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
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)  # (N*M, V*C, T): data BN per person
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)  # (N*M, C, T, V)
        for block in self.blocks:
            x = block(x, self.A)
        x = x.mean(dim=(2, 3))  # global average pool over (T, V) -> (N*M, C_last)
        return x.view(n, m, -1).mean(dim=1)  # average persons -> (N, C_last)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Classifier. Shape: features (N, num_features) -> (N, num_classes)."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
