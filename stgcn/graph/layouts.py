"""Skeleton layouts: joint names, edges, centre joint and where each edge list comes from.

A layout is data. The built-ins below cover the common pose sources; a custom layout loads from a JSON or
YAML file with :func:`load_layout` and is accepted everywhere a built-in name is (:func:`get_layout` takes
either a name or a path).

Edges are undirected and written ``(a, b)`` with 0-based joint indices; a layout holds no self-loops (the
graph module adds the identity itself). ``center`` is the joint the spatial partition measures hop
distances from.

Custom layout file (JSON or YAML)::

    {"name": "my-skeleton",
     "joints": ["hip", "spine", "head", "l_hand", "r_hand"],
     "edges": [["hip", "spine"], ["spine", "head"], [1, 3], [1, 4]],   # names or indices
     "center": "spine",
     "bones": [[2, 1], [3, 1], [4, 1], [1, 0]],                       # optional (joint, parent) pairs
     "flip_pairs": [["l_hand", "r_hand"]],                             # optional left/right pairs
     "roles": {"pelvis": "hip", "neck": "spine", "head": "head"},        # optional (see stgcn.graph.roles)
     "allow_disconnected": false}                                      # optional; default: must be connected

Every layout is validated when built (:mod:`stgcn.graph.validation`) and has a fingerprint
(:attr:`Layout.fingerprint`, :mod:`stgcn.graph.identity`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from stgcn.errors import ConfigError
from stgcn.graph.identity import layout_fingerprint
from stgcn.graph.mm_layouts import NTU_RGBD_MMACTION
from stgcn.graph.roles import ROLES
from stgcn.graph.validation import check_layout
from stgcn.utils.dataclass_config import check_keys
from stgcn.utils.files import decode_text, parse_json, parse_yaml, read_file_bytes
from stgcn.utils.limits import MAX_TEXT_BYTES

__all__ = ["Layout", "BUILTIN_LAYOUTS", "get_layout", "load_layout"]


@dataclass(frozen=True)
class Layout:
    """A skeleton: joints, undirected edges (no self-loops), a centre joint and optional extras.

    Args:
        name: Short identifier.
        joints: Joint names, in the order the data stores them.
        edges: Undirected edges as 0-based ``(a, b)`` index pairs.
        center: Index of the centre joint (root of the spatial partition).
        source: Where the joint order and edge list come from.
        bones: ``(joint, parent)`` pairs for bone features. ``None`` derives one pair per joint from the
            breadth-first tree rooted at ``center`` (the centre is paired with itself: a zero bone).
        flip_pairs: Left/right joint pairs (for horizontal flipping).
        roles: ``(role, joint index)`` pairs naming the body joints explicitly (roles in
            :data:`stgcn.graph.roles.ROLES`); a role not given falls back to the joint-name conventions.
        allow_disconnected: Accept a graph whose joints do not all reach the centre (refused by default).
    """

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    source: str = ""
    bones: tuple[tuple[int, int], ...] | None = None
    flip_pairs: tuple[tuple[int, int], ...] = field(default=())
    roles: tuple[tuple[str, int], ...] = field(default=())
    allow_disconnected: bool = False

    def __post_init__(self) -> None:
        check_layout(self)

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits identifying the joints (in order), edges, centre and bones (:mod:`stgcn.graph.identity`)."""
        return layout_fingerprint(self)

    @property
    def num_joints(self) -> int:
        """Number of joints V."""
        return len(self.joints)

    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        """``(joint, parent)`` pairs, one per joint, for bone features (``x[joint] - x[parent]``)."""
        if self.bones is not None:
            return self.bones
        parent = {self.center: self.center}
        neighbours: dict[int, list[int]] = {i: [] for i in range(self.num_joints)}
        for a, b in self.edges:
            neighbours[a].append(b)
            neighbours[b].append(a)
        queue = deque([self.center])
        while queue:
            u = queue.popleft()
            for w in neighbours[u]:
                if w not in parent:
                    parent[w] = u
                    queue.append(w)
        # joints unreachable from the centre are their own parent (a zero bone)
        return tuple((j, parent.get(j, j)) for j in range(self.num_joints))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :meth:`from_dict` turns back into the same layout."""
        return {
            "name": self.name,
            "joints": list(self.joints),
            "edges": [list(e) for e in self.edges],
            "center": self.center,
            "source": self.source,
            "bones": None if self.bones is None else [list(b) for b in self.bones],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            # written only when set, so a layout without them keeps its dict (and files) as before
            **({"roles": {role: self.joints[j] for role, j in self.roles}} if self.roles else {}),
            **({"allow_disconnected": True} if self.allow_disconnected else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "layout") -> Layout:
        """Build a layout from a dict; joints in edges/center/bones may be names or indices."""
        check_keys(data, ("name", "joints", "edges", "center", "source", "bones", "flip_pairs", "roles",
                          "allow_disconnected"), where, required=("joints", "edges", "center"))
        joints = data["joints"]
        if not isinstance(joints, list) or not all(isinstance(j, str) for j in joints):
            raise ConfigError(f"{where}: 'joints' must be a list of joint names")
        index = {name: i for i, name in enumerate(joints)}

        def joint(x: Any) -> int:
            if isinstance(x, bool):
                raise ConfigError(f"{where}: {x!r} is not a joint name or index")
            if isinstance(x, int):
                return x
            if isinstance(x, str) and x in index:
                return index[x]
            raise ConfigError(f"{where}: {x!r} is not a joint name or index (joints: {joints})")

        def pairs(key: str) -> tuple[tuple[int, int], ...]:
            value = data.get(key) or []
            if not isinstance(value, list) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
                raise ConfigError(f"{where}: '{key}' must be a list of [a, b] pairs")
            return tuple((joint(a), joint(b)) for a, b in value)

        bones = None if data.get("bones") is None else pairs("bones")
        roles = data.get("roles") or {}
        if not isinstance(roles, dict):
            raise ConfigError(f"{where}: 'roles' must map role names ({', '.join(ROLES)}) to joints")
        allow = data.get("allow_disconnected", False)
        if not isinstance(allow, bool):
            raise ConfigError(f"{where}: 'allow_disconnected' must be true or false, got {allow!r}")
        try:
            return cls(
                name=str(data.get("name", "custom")),
                joints=tuple(joints),
                edges=pairs("edges"),
                center=joint(data["center"]),
                source=str(data.get("source", "")),
                bones=bones,
                flip_pairs=pairs("flip_pairs"),
                roles=_role_pairs({str(k): joint(v) for k, v in roles.items()}),
                allow_disconnected=allow,
            )
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None


def _role_pairs(roles: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """``{role: index}`` as ``(role, index)`` pairs in :data:`~stgcn.graph.roles.ROLES` order (unknown roles
    last, for the validation to name)."""
    order = {r: i for i, r in enumerate(ROLES)}
    return tuple(sorted(roles.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _roles(joints: Sequence[str], **names: str) -> tuple[tuple[str, int], ...]:
    """Roles of a built-in given by joint name."""
    return _role_pairs({role: list(joints).index(name) for role, name in names.items()})


def _one_based(pairs: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((a - 1, b - 1) for a, b in pairs)


# OpenPose BODY_18 / COCO-18 order. Edge list: yysijie/st-gcn net/utils/graph.py, layout 'openpose'
# (the layout of the released Kinetics-skeleton model).
OPENPOSE_18_JOINTS = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
    "right_ear", "left_ear",
)
OPENPOSE_18 = Layout(
    name="openpose-18",
    joints=OPENPOSE_18_JOINTS,
    edges=((4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1),
           (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)),
    center=1,
    source="OpenPose COCO-18 output order; edges from yysijie/st-gcn net/utils/graph.py ('openpose')",
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)),
    roles=_roles(OPENPOSE_18_JOINTS,
                 neck="neck", head="nose", left_shoulder="left_shoulder", right_shoulder="right_shoulder",
                 left_hip="left_hip", right_hip="right_hip"),
)

# NTU RGB+D 25-joint Kinect v2 order (Shahroudy et al. 2016). Edge list: yysijie/st-gcn
# net/utils/graph.py, layout 'ntu-rgb+d'; the hand chains are 22->23->8 and 24->25->12 as there.
NTU_RGBD_JOINTS = (
    "spine_base", "spine_mid", "neck", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
    "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot", "spine_shoulder", "left_hand_tip",
    "left_thumb", "right_hand_tip", "right_thumb",
)
NTU_RGBD = Layout(
    name="ntu-rgb+d",
    joints=NTU_RGBD_JOINTS,
    edges=_one_based([(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
                      (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17),
                      (19, 18), (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)]),
    center=20,
    source="NTU RGB+D joint order (Shahroudy et al., CVPR 2016); edges from yysijie/st-gcn "
           "net/utils/graph.py ('ntu-rgb+d')",
    flip_pairs=_one_based([(5, 9), (6, 10), (7, 11), (8, 12), (13, 17), (14, 18), (15, 19), (16, 20),
                           (22, 24), (23, 25)]),
    roles=_roles(NTU_RGBD_JOINTS,
                 pelvis="spine_base", spine="spine_mid", neck="spine_shoulder", head="head",
                 left_shoulder="left_shoulder", right_shoulder="right_shoulder", left_hip="left_hip",
                 right_hip="right_hip"),
)

# COCO-17 keypoints (as YOLO-pose, RTMPose, HRNet output them). Tree edge list: PYSKL
# pyskl/utils/graph.py, layout 'coco' (centre: the nose).
COCO_17_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)
COCO_17 = Layout(
    name="coco-17",
    joints=COCO_17_JOINTS,
    edges=((15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6), (5, 0),
           (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)),
    center=0,
    source="COCO keypoint order (Lin et al. 2014); tree edges from PYSKL pyskl/utils/graph.py ('coco')",
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    roles=_roles(COCO_17_JOINTS,
                 head="nose", left_shoulder="left_shoulder", right_shoulder="right_shoulder", left_hip="left_hip",
                 right_hip="right_hip"),
)

# MediaPipe Pose 33 landmarks. Edges: mediapipe POSE_CONNECTIONS, plus two bridges that MediaPipe
# does not draw but a graph needs to be connected: nose-left_shoulder and nose-right_shoulder, and the
# mouth corners to the nose.
MEDIAPIPE_POSE_33_JOINTS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
MEDIAPIPE_POSE_33 = Layout(
    name="mediapipe-pose-33",
    joints=MEDIAPIPE_POSE_33_JOINTS,
    edges=((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
           (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20),
           (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
           (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
           # bridges (not in POSE_CONNECTIONS): connect the face to the body
           (0, 11), (0, 12), (0, 9), (0, 10)),
    center=0,
    source="MediaPipe Pose landmark order and mediapipe.solutions.pose.POSE_CONNECTIONS, plus the bridges "
           "nose-shoulders and nose-mouth corners so the graph is connected",
    flip_pairs=((1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20),
                (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32)),
    roles=_roles(MEDIAPIPE_POSE_33_JOINTS,
                 head="nose", left_shoulder="left_shoulder", right_shoulder="right_shoulder", left_hip="left_hip",
                 right_hip="right_hip"),
)

# MediaPipe Hands 21 landmarks. Edges: mediapipe HAND_CONNECTIONS (the palm forms cycles).
MEDIAPIPE_HAND_21 = Layout(
    name="mediapipe-hand-21",
    joints=("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_mcp", "index_pip",
            "index_dip", "index_tip", "middle_mcp", "middle_pip", "middle_dip", "middle_tip", "ring_mcp",
            "ring_pip", "ring_dip", "ring_tip", "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip"),
    edges=((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
           (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)),
    center=0,
    source="MediaPipe Hands landmark order and mediapipe.solutions.hands.HAND_CONNECTIONS",
)

# Kinect v1 (Microsoft Kinect SDK 1.x NUI_SKELETON_POSITION_INDEX) order, used by NW-UCLA (CTR-GCN
# release) and UTKinect-Action3D. Checked on the shared files: mean joint heights follow the SDK order
# (hip centre, spine, shoulder centre, head, then left arm, right arm, left leg, right leg).
KINECT_V1_JOINTS = (
    "hip_center", "spine", "shoulder_center", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
    "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot",
)
KINECT_V1 = Layout(
    name="kinect-v1",
    joints=KINECT_V1_JOINTS,
    edges=((1, 0), (2, 1), (3, 2), (4, 2), (5, 4), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9), (11, 10),
           (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18)),
    center=2,
    source="Kinect SDK 1.x skeleton order (NUI_SKELETON_POSITION_INDEX); used by NW-UCLA (CTR-GCN "
           "all_sqe release, same edges as CTR-GCN graph/ucla.py) and UTKinect-Action3D",
    flip_pairs=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19)),
    roles=_roles(KINECT_V1_JOINTS,
                 pelvis="hip_center", spine="spine", neck="shoulder_center", head="head",
                 left_shoulder="left_shoulder", right_shoulder="right_shoulder", left_hip="left_hip",
                 right_hip="right_hip"),
)

# MSR Action3D's own 20-joint order. Edges and left/right: the dataset's body_model.mat (bones, 1-based:
# 7-4 4-3 3-20 3-1 3-2 1-8 2-9 8-10 9-11 10-12 11-13 7-5 7-6 5-14 6-15 14-16 15-17 16-18 17-19;
# left_hip 5, right_hip 6, hip_center 7, head 20, left_wrist 10, right_wrist 11).
KINECT_V1_MSR_JOINTS = (
    "left_shoulder", "right_shoulder", "shoulder_center", "spine", "left_hip", "right_hip", "hip_center",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand", "left_knee", "right_knee",
    "left_ankle", "right_ankle", "left_foot", "right_foot", "head",
)
KINECT_V1_MSR = Layout(
    name="kinect-v1-msr",
    joints=KINECT_V1_MSR_JOINTS,
    edges=_one_based([(7, 4), (4, 3), (3, 20), (3, 1), (3, 2), (1, 8), (2, 9), (8, 10), (9, 11), (10, 12),
                      (11, 13), (7, 5), (7, 6), (5, 14), (6, 15), (14, 16), (15, 17), (16, 18), (17, 19)]),
    center=2,
    source="MSR Action3D skeleton order; bones and left/right indices from the dataset's "
           "protocol_vemulapalli2014/body_model.mat (Vemulapalli et al., CVPR 2014)",
    flip_pairs=_one_based([(1, 2), (5, 6), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19)]),
    roles=_roles(KINECT_V1_MSR_JOINTS,
                 pelvis="hip_center", spine="spine", neck="shoulder_center", head="head",
                 left_shoulder="left_shoulder", right_shoulder="right_shoulder", left_hip="left_hip",
                 right_hip="right_hip"),
)

BUILTIN_LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (OPENPOSE_18, NTU_RGBD, COCO_17, MEDIAPIPE_POSE_33, MEDIAPIPE_HAND_21, KINECT_V1,
                   KINECT_V1_MSR, Layout.from_dict(NTU_RGBD_MMACTION))
}


def load_layout(path: str | Path) -> Layout:
    """Load a custom layout from a ``.json``, ``.yaml`` or ``.yml`` file.

    Raises:
        ConfigError: the file is missing, unparsable or not a valid layout (the message names the file).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ConfigError(f"{path}: a layout file must end in .json, .yaml or .yml")
    data_bytes = read_file_bytes(path, max_bytes=MAX_TEXT_BYTES, error=ConfigError, what="layout file")
    text = decode_text(data_bytes, path, error=ConfigError)
    data = (parse_json if suffix == ".json" else parse_yaml)(text, path, error=ConfigError)
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    return Layout.from_dict(data, where=str(path))


def get_layout(layout: str | Path | Layout | dict[str, Any]) -> Layout:
    """Resolve a layout given as a built-in name, a path to a layout file, a dict or a :class:`Layout`.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or an invalid file.
    """
    if isinstance(layout, Layout):
        return layout
    if isinstance(layout, dict):
        return Layout.from_dict(layout)
    key = str(layout)
    if key in BUILTIN_LAYOUTS:
        return BUILTIN_LAYOUTS[key]
    if Path(key).suffix.lower() in (".json", ".yaml", ".yml"):
        return load_layout(key)
    raise ConfigError(
        f"unknown layout {key!r}; valid layouts are {', '.join(BUILTIN_LAYOUTS)} "
        "or a path to a .json/.yaml layout file")
