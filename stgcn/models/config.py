"""Model configuration: which skeleton graph (:class:`GraphConfig`) and which network (:class:`STGCNConfig`).

Both are frozen dataclasses validated on creation, read from plain data by the package's one config reader
(:func:`stgcn.utils.dataclass_config.from_dict`) and saved in every checkpoint (``to_dict`` / ``from_dict``).

The fields that come from the data (``num_classes``, ``in_channels``, ``graph.layout``) may be left unset
(``None``) in a training config; :meth:`STGCNConfig.resolve` fills them before a model is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from stgcn.errors import ConfigError
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout, get_layout
from stgcn.graph.partitions import Graph, check_graph_options
from stgcn.utils.checks import check_int, check_number
from stgcn.utils.dataclass_config import from_dict, to_dict
from stgcn.utils.limits import MAX_BLOCKS, MAX_CHANNELS, MAX_CLASSES, check_max

MAX_TEMPORAL_KERNEL = 1_001  # temporal kernel size and stride

__all__ = ["GraphConfig", "STGCNConfig", "DEFAULT_BLOCKS", "POOLS"]

POOLS = ("mean", "joint")  # STGCNConfig.pool

# The notes' table: (output channels, temporal stride) for the ten blocks.
DEFAULT_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1))


@dataclass(frozen=True)
class GraphConfig:
    """Which skeleton graph a model uses.

    Args:
        layout: Built-in layout name, a path to a JSON/YAML layout file (read once, then kept inline so a
            checkpoint is self-contained), a layout mapping or a :class:`~stgcn.graph.layouts.Layout`;
            ``None``: not set yet (a training config takes the store's layout, see :meth:`STGCNConfig.resolve`).
        strategy: ``uniform``, ``distance`` or ``spatial``.
        max_hop: Largest hop distance in a neighbourhood.
        dilation: Step between used hop distances.
        normalization: ``notes`` (the paper) or ``original`` (yysijie/st-gcn, for its checkpoints).
    """

    layout: str | dict[str, Any] | Layout | None = "openpose-18"
    strategy: str = "spatial"
    max_hop: int = 1
    dilation: int = 1
    normalization: str = "notes"

    def __post_init__(self) -> None:
        if self.layout is not None and not (isinstance(self.layout, str) and self.layout in BUILTIN_LAYOUTS):
            object.__setattr__(self, "layout", get_layout(self.layout))
        check_graph_options(self.strategy, self.normalization, self.max_hop, self.dilation)

    def build(self) -> Graph:
        """The :class:`~stgcn.graph.partitions.Graph` this config describes.

        Raises:
            ConfigError: the layout is not set.
        """
        if self.layout is None:
            raise ConfigError("graph.layout is not set; give a layout name or file (valid layouts are "
                              f"{', '.join(BUILTIN_LAYOUTS)})")
        return Graph(self.layout, self.strategy, self.max_hop, self.dilation, self.normalization)

    def to_dict(self) -> dict[str, Any]:
        """Plain data; a custom layout is written inline (:meth:`Layout.to_dict`)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | GraphConfig, where: str = "graph") -> GraphConfig:
        """Inverse of :meth:`to_dict`; unknown keys and wrong types raise :class:`~stgcn.errors.ConfigError`."""
        return from_dict(cls, d, where)


@dataclass(frozen=True)
class STGCNConfig:
    """Everything that determines an ST-GCN's architecture; saved in every checkpoint.

    Args:
        num_classes: Number of output classes (``None``: not set yet, see :meth:`resolve`).
        in_channels: Channels per joint: 2 (x, y), or 3 (x, y, score or x, y, z) (``None``: not set yet).
        graph: The skeleton graph.
        temporal_kernel: Gamma, the odd temporal kernel size (padding (Gamma - 1) / 2).
        blocks: (output channels, temporal stride) per block.
        edge_importance: Learn a (K, V, V) mask per block multiplying A. When off the mask stays all ones
            (a buffer), so state_dict keys do not depend on this flag.
        dropout: Dropout probability after the temporal convolution of every block but the first.
        pool: What the classifier sees of the last block's (V, T', C) output: ``mean`` (the paper's global
            average over T' and V: C features) or ``joint`` (the average over T' only: V * C features, so
            the classifier knows which joint did what; issue 15: MSR Action3D's 291 clips 45 -> 79 %).
    """

    num_classes: int | None
    in_channels: int | None = 3
    graph: GraphConfig = field(default_factory=GraphConfig)
    temporal_kernel: int = 9
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS
    edge_importance: bool = True
    dropout: float = 0.0
    pool: str = "mean"

    def __post_init__(self) -> None:
        if isinstance(self.graph, dict):
            object.__setattr__(self, "graph", GraphConfig.from_dict(self.graph))
        if not isinstance(self.graph, GraphConfig):
            raise ConfigError(f"graph must be a GraphConfig or a mapping, got {self.graph!r}")
        try:
            object.__setattr__(self, "blocks", tuple(tuple(b) for b in self.blocks))
        except TypeError:
            raise ConfigError(f"blocks must be a non-empty list of [channels, stride] positive integers, "
                              f"got {self.blocks!r}") from None
        maxima = {"num_classes": MAX_CLASSES, "in_channels": MAX_CHANNELS, "temporal_kernel": MAX_TEMPORAL_KERNEL}
        for name, maximum in maxima.items():
            value = getattr(self, name)
            if value is not None or name == "temporal_kernel":
                check_max(check_int(value, name, minimum=1), name, maximum)
        if self.temporal_kernel % 2 == 0:
            raise ConfigError(f"temporal_kernel must be odd (padding is (Gamma - 1) / 2), got {self.temporal_kernel}")
        if not self.blocks or not all(len(b) == 2 and all(_positive_int(x) for x in b) for b in self.blocks):
            raise ConfigError(f"blocks must be a non-empty list of [channels, stride] positive integers, "
                              f"got {self.blocks!r}")
        if len(self.blocks) > MAX_BLOCKS:
            raise ConfigError(f"blocks: {len(self.blocks)} blocks is more than the limit of {MAX_BLOCKS}")
        for i, (channels, stride) in enumerate(self.blocks):
            check_max(channels, f"blocks[{i}] channels", MAX_CHANNELS)
            check_max(stride, f"blocks[{i}] stride", MAX_TEMPORAL_KERNEL)
        if not isinstance(self.edge_importance, bool):
            raise ConfigError(f"edge_importance must be true or false, got {self.edge_importance!r}")
        check_number(self.dropout, "dropout", minimum=0, below=1)
        if self.pool not in POOLS:
            raise ConfigError(f"pool {self.pool!r} is not valid; valid modes are {', '.join(POOLS)}")

    @property
    def is_resolved(self) -> bool:
        """Whether every data-dependent field (``num_classes``, ``in_channels``, ``graph.layout``) is set."""
        return self.num_classes is not None and self.in_channels is not None and self.graph.layout is not None

    def resolve(self, num_classes: int, in_channels: int, layout: str | Layout | dict[str, Any]) -> STGCNConfig:
        """This config with its unset data-dependent fields filled in; configured values win.

        Args:
            num_classes: The data's class count.
            in_channels: Channels per joint of the preprocessed input.
            layout: The data's layout (a built-in name, a :class:`~stgcn.graph.layouts.Layout` or its mapping).
        """
        graph = self.graph if self.graph.layout is not None else dataclasses.replace(self.graph, layout=layout)
        return dataclasses.replace(
            self, num_classes=self.num_classes if self.num_classes is not None else num_classes,
            in_channels=self.in_channels if self.in_channels is not None else in_channels, graph=graph)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, no tuples) that :meth:`from_dict` maps back to an equal config."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | STGCNConfig, where: str = "model") -> STGCNConfig:
        """Inverse of :meth:`to_dict`; unknown keys and wrong types raise :class:`~stgcn.errors.ConfigError`."""
        return from_dict(cls, d, where)


def _positive_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1
