"""The one map between the original ST-GCN's parameter names (yysijie/st-gcn ``net/st_gcn.py``) and ours.

The original ``Model`` names its weights ``data_bn``, ``st_gcn_networks.i.gcn.conv``,
``st_gcn_networks.i.tcn.{0,2,3}`` (BN, temporal conv, BN), ``st_gcn_networks.i.residual.{0,1}`` (conv, BN),
``edge_importance.i``, ``fcn`` (a 1x1 conv classifier) and the buffer ``A``; :class:`~stgcn.models.stgcn.STGCN`
names them ``data_bn``, ``blocks.i.gcn.conv``, ``blocks.i.tcn.{bn1,conv,bn2}``, ``blocks.i.residual.{conv,bn}``,
``blocks.i.gcn.edge_importance``, ``fc`` and ``A``. Used by :mod:`stgcn.convert.original` (checkpoint import)
and :mod:`stgcn.models.reference` (the literal original structure).
"""

from __future__ import annotations

import re

__all__ = ["BLOCK_PREFIXES", "ORIGINAL_BLOCK", "original_to_stgcn_key", "stgcn_to_original_key"]

# within block i: original prefix -> our prefix
BLOCK_PREFIXES = {
    "gcn.conv.": "gcn.conv.",
    "tcn.0.": "tcn.bn1.",
    "tcn.2.": "tcn.conv.",
    "tcn.3.": "tcn.bn2.",
    "residual.0.": "residual.conv.",
    "residual.1.": "residual.bn.",
}

ORIGINAL_BLOCK = re.compile(r"st_gcn_networks\.(\d+)\.(.+)")
_OURS_BLOCK = re.compile(r"blocks\.(\d+)\.(.+)")


def original_to_stgcn_key(key: str) -> str | None:
    """Our state_dict key for an original one, or None when the original has no such parameter."""
    if key == "A" or key.startswith("data_bn."):
        return key
    if key.startswith("fcn."):
        return "fc." + key[len("fcn."):]
    m = re.fullmatch(r"edge_importance\.(\d+)", key)
    if m:
        return f"blocks.{m.group(1)}.gcn.edge_importance"
    m = ORIGINAL_BLOCK.fullmatch(key)
    if m:
        for old, new in BLOCK_PREFIXES.items():
            if m.group(2).startswith(old):
                return f"blocks.{m.group(1)}.{new}{m.group(2)[len(old):]}"
    return None


def stgcn_to_original_key(key: str) -> str | None:
    """The original's state_dict key for one of ours, or None when ours has no such parameter."""
    if key == "A" or key.startswith("data_bn."):
        return key
    if key.startswith("fc."):
        return "fcn." + key[len("fc."):]
    m = _OURS_BLOCK.fullmatch(key)
    if m:
        if m.group(2) == "gcn.edge_importance":
            return f"edge_importance.{m.group(1)}"
        for old, new in BLOCK_PREFIXES.items():
            if m.group(2).startswith(new):
                return f"st_gcn_networks.{m.group(1)}.{old}{m.group(2)[len(new):]}"
    return None
