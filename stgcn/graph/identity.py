"""Layout identity: a fingerprint of what a model computes from a layout, and the one check where data meets a
model or another clip.

**Fingerprint** (:func:`layout_fingerprint`): the first 16 hex digits of the SHA-256 of a canonical JSON of

* the joint names, in order (the data's joint axis is indexed by it),
* the edges as a sorted list of undirected ``[min, max]`` index pairs (the adjacency the model convolves over;
  the order edges are listed in does not change it),
* the centre joint's index (the root of the spatial partition),
* the bone pairs (explicit, or derived from the edges and centre: they define bone features).

Not in it: the name (a renamed copy is the same skeleton), the source text, the flip pairs and the roles
(they steer augmentation, view normalisation and drawing, not what a trained model takes in). The value is
stable across processes, Python versions and platforms: it depends only on that JSON.

**Identity** is the name plus the fingerprint; stores, clip files and checkpoints record it
(``layout_fingerprint``). An old file without it is taken as what its layout entry resolves to today.

**Where data meets a model** (:func:`match_joints`): the data's joint names must be the model's, in the same
order. The model's graph may differ (MMAction2's NTU graph over an NTU store is fine: the data is indexed the
same way). Between clips that become one store (``graph=True``) the whole fingerprint must agree. Otherwise a
:class:`~stgcn.errors.DataError` names both layouts; with ``remap="by-name"`` data whose joint names are the
model's as a set is reordered instead.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np

from stgcn.errors import ConfigError, DataError, StgcnError

if TYPE_CHECKING:
    from stgcn.graph.layouts import Layout

__all__ = ["REMAP_CHOICES", "layout_fingerprint", "describe_layout", "match_joints", "check_remap",
           "check_recorded_fingerprint", "remap_joints"]

REMAP_CHOICES = ("none", "by-name")


def layout_fingerprint(layout: Layout) -> str:
    """16 hex digits identifying the joints (in order), edges, centre and bones of ``layout`` (module docstring)."""
    canonical = {
        "joints": list(layout.joints),
        "edges": sorted([min(a, b), max(a, b)] for a, b in layout.edges),
        "center": layout.center,
        "bones": [list(p) for p in layout.bone_pairs()],
    }
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def describe_layout(layout: Layout) -> str:
    """``'name' (V joints, fingerprint abcd...)`` for messages."""
    return f"{layout.name!r} ({layout.num_joints} joints, fingerprint {layout.fingerprint})"


def check_remap(remap: str | None) -> str:
    """``remap`` as one of :data:`REMAP_CHOICES` (``None`` is ``"none"``).

    Raises:
        ConfigError: another value (the valid ones are listed).
    """
    value = "none" if remap is None else remap
    if value not in REMAP_CHOICES:
        raise ConfigError(f"unknown joint remapping {remap!r}; valid choices are {', '.join(REMAP_CHOICES)}")
    return value


def _difference(data: Layout, target: Layout) -> str:
    missing = [j for j in target.joints if j not in set(data.joints)]
    extra = [j for j in data.joints if j not in set(target.joints)]
    parts = []
    if missing:
        parts.append(f"lacks {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if extra:
        parts.append(f"has {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''} instead")
    return "; ".join(parts)


def match_joints(data: Layout, target: Layout, *, data_what: str, target_what: str, remap: str | None = None,
                 graph: bool = False, error: type[StgcnError] = DataError) -> np.ndarray | None:
    """Check that data in layout ``data`` can be fed where layout ``target`` is expected.

    Args:
        data: The data's layout (a store's, a clip file's).
        target: The layout expected (a model's, the store being written).
        data_what: What the data is, for the message (e.g. ``"clip a.json"``).
        target_what: What expects ``target`` (e.g. ``"the model"``).
        remap: ``"by-name"``: data with the same joint names in another order is reordered (the returned
            indices); ``None``/``"none"``: refused.
        graph: Also require the same edges, centre and bones (the whole fingerprint), not only the joints.
        error: The error type raised.

    Returns:
        ``None`` when the data is in ``target``'s joint order; else the indices ``idx`` with
        ``data_array[..., idx, :]`` in ``target``'s order (only with ``remap="by-name"``).

    Raises:
        error: one line naming both layouts and what differs.
    """
    remap = check_remap(remap)
    head = f"{data_what} is in layout {describe_layout(data)}, {target_what} expects {describe_layout(target)}"
    if data.joints == target.joints:
        if graph and data.fingerprint != target.fingerprint:
            raise error(f"{head}: the same joints with another graph (edges, centre or bones); name the layout to "
                        "use (--layout) so every clip is read as that one")
        return None
    if sorted(data.joints) == sorted(target.joints):
        if remap == "by-name":
            index = {name: i for i, name in enumerate(data.joints)}
            return np.asarray([index[name] for name in target.joints], dtype=np.int64)
        raise error(f"{head}: the same joints in another order; pass --remap-joints by-name (remap_joints: "
                    "by-name) to reorder them by name")
    raise error(f"{head}: the joints differ (the data {_difference(data, target)}); convert the data to the "
                "expected layout")


def remap_joints(x: np.ndarray | None, index: np.ndarray | None, axis: int = -2) -> np.ndarray | None:
    """``x`` with its joint axis reordered by ``index`` (from :func:`match_joints`); ``None`` index: ``x`` as is.

    Shape:
        x: (..., V, ...) with the joints on ``axis`` -> the same shape.
    """
    if x is None or index is None:
        return x
    return np.ascontiguousarray(np.take(x, index, axis=axis))


def check_recorded_fingerprint(layout: Layout, recorded: object, where: str,
                               error: type[StgcnError] = DataError) -> None:
    """Check a fingerprint a file recorded against the layout its layout entry resolves to now.

    ``recorded`` ``None`` (a file written before fingerprints existed) passes.

    Raises:
        error: not a 16-hex-digit string, or another value (the layout definition changed since the file was
            written, e.g. a built-in's joints, or the entry was edited).
    """
    if recorded is None:
        return
    if not isinstance(recorded, str) or len(recorded) != 16 or any(c not in "0123456789abcdef" for c in recorded):
        raise error(f"{where}: 'layout_fingerprint' must be 16 lower-case hex digits, got {str(recorded)[:40]!r}")
    if recorded != layout.fingerprint:
        raise error(f"{where}: recorded layout fingerprint {recorded} differs from layout {describe_layout(layout)} "
                    "as this stgcn defines it; the file was written with another definition of the layout")
