"""The one store-vs-model check: the layout's joints (names, in order), input channels and class count.

The layout check is :func:`stgcn.graph.identity.match_joints`: the store's joint names must be the model's in the
same order (the model's graph may differ, e.g. MMAction2's NTU graph on an NTU store); a store of the same joints
in another order, or of other joints, is refused with one line naming both layouts and their fingerprints. A
store written before fingerprints existed is compared the same way (its layout entry resolves as it always did).
"""

from __future__ import annotations

from stgcn.data.store import SkeletonStore
from stgcn.errors import DataError, StgcnError
from stgcn.graph.identity import match_joints
from stgcn.graph.layouts import get_layout
from stgcn.models.config import STGCNConfig

__all__ = ["check_store_fits", "check_store_layout"]


def check_store_layout(config: STGCNConfig, store: SkeletonStore, *, error: type[StgcnError] = DataError) -> None:
    """Refuse a store whose joints are not the model's, in the model's order.

    Raises:
        error: other joints, or the same joints in another order (one line naming both layouts).
    """
    if config.graph.layout is None:
        return
    match_joints(store.layout, get_layout(config.graph.layout), data_what=f"{store.path}: the store",
                 target_what="the model", error=error)


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
        error: other joints or joint order (:func:`check_store_layout`), fewer classes than the store has, or
            other input channels.
    """
    check_store_layout(config, store, error=error)
    if config.num_classes is not None and config.num_classes < len(store.class_names):
        raise error(f"{store.path}: the store has {len(store.class_names)} classes; the model predicts "
                    f"{config.num_classes}")
    if in_channels is not None and config.in_channels != in_channels:
        raise error(f"{store.path}: preprocessed clips have {in_channels} channels; the model expects "
                    f"{config.in_channels}")
