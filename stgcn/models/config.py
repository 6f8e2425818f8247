"""Model configuration: which skeleton graph (:class:`GraphConfig`) and which network (:class:`STGCNConfig`).

Both are frozen dataclasses validated on creation and saved in every checkpoint (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from stgcn.errors import ConfigError
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout, get_layout
from stgcn.graph.partitions import NORMALIZATIONS, STRATEGIES, Graph

__all__ = ["GraphConfig", "STGCNConfig", "DEFAULT_BLOCKS"]

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
