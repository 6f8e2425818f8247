"""The one store-vs-model check: joints of the layout, input channels and class count."""

from __future__ import annotations

from stgcn.data.store import SkeletonStore
from stgcn.errors import DataError, StgcnError
from stgcn.models.config import STGCNConfig

__all__ = ["check_store_fits"]


def check_store_fits(config: STGCNConfig, store: SkeletonStore, in_channels: int | None = None, *,
                     error: type[StgcnError] = DataError) -> None:
    """Refuse a model that cannot run on (or label) the store's clips.

    Args:
        config: The model's (resolved) config.
        store: The store.
        in_channels: Channels per joint of the preprocessed clips (``None``: not checked).
        error: The error to raise: :class:`~stgcn.errors.DataError` when the data is the given thing (evaluation),
            :class:`~stgcn.errors.ConfigError` when the config is (training).

    Raises:
        error: a different joint count, fewer classes than the store has, or other input channels.
    """
    model_layout = config.graph.build().layout
    if model_layout.num_joints != store.layout.num_joints:
        raise error(f"{store.path}: store layout {store.layout.name!r} has {store.layout.num_joints} joints; the "
                    f"model expects {model_layout.num_joints} joints (layout {model_layout.name!r})")
    if config.num_classes is not None and config.num_classes < len(store.class_names):
        raise error(f"{store.path}: the store has {len(store.class_names)} classes; the model predicts "
                    f"{config.num_classes}")
    if in_channels is not None and config.in_channels != in_channels:
        raise error(f"{store.path}: preprocessed clips have {in_channels} channels; the model expects "
                    f"{config.in_channels}")
