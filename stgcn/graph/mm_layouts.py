"""Skeleton layouts of MMAction2 and PYSKL that differ from the built-ins in :mod:`stgcn.graph.layouts`.

Their ``nturgb+d`` graph (``mmaction/models/utils/graph.py`` and ``pyskl/utils/graph.py``) uses the NTU RGB+D
joint order but attaches each hand tip and thumb straight to the hand (1-based 22-8, 23-8, 24-12, 25-12),
where the original st-gcn chains them (22-23-8, 24-25-12). Their ``coco`` graph equals ``coco-17`` and their
``openpose`` graph equals ``openpose-18``, so only the NTU one is new.

The layout is kept as plain data (the dict form :meth:`~stgcn.graph.layouts.Layout.from_dict` reads) so that
:mod:`stgcn.graph.layouts` can register it without a circular import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NTU_RGBD_MMACTION", "MM_LAYOUT_NAMES"]

_NTU_JOINTS = ["spine_base", "spine_mid", "neck", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
               "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
               "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot", "spine_shoulder",
               "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb"]

# 1-based (joint, neighbour towards the centre) pairs, as MMAction2/PYSKL list them ('inward' edges)
_NTU_INWARD_1B = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                  (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 8),
                  (23, 8), (24, 12), (25, 12)]

_NTU_FLIP_1B = [(5, 9), (6, 10), (7, 11), (8, 12), (13, 17), (14, 18), (15, 19), (16, 20), (22, 24), (23, 25)]

NTU_RGBD_MMACTION: dict[str, Any] = {
    "name": "ntu-rgb+d-mmaction",
    "joints": _NTU_JOINTS,
    "edges": [[a - 1, b - 1] for a, b in _NTU_INWARD_1B],
    "center": 20,
    "source": "NTU RGB+D joint order; edges from MMAction2 mmaction/models/utils/graph.py and PYSKL "
              "pyskl/utils/graph.py (layout 'nturgb+d': hand tip and thumb attached to the hand)",
    "bones": None,
    "flip_pairs": [[a - 1, b - 1] for a, b in _NTU_FLIP_1B],
    "roles": {"pelvis": "spine_base", "spine": "spine_mid", "neck": "spine_shoulder", "head": "head",
              "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder", "left_hip": "left_hip",
              "right_hip": "right_hip"},
}

# upstream layout name -> our built-in layout name
MM_LAYOUT_NAMES: dict[str, str] = {
    "nturgb+d": "ntu-rgb+d-mmaction",
    "coco": "coco-17",
    "openpose": "openpose-18",
}
