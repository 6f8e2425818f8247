"""Body roles of a layout's joints (pelvis, spine, neck, head, left/right shoulder, left/right hip) and the side
(left/right) of any joint.

One rule for everything that needs to know what a joint *is* (view normalisation, render colours, graph plots):
a layout's explicit ``roles`` entry first, else the joint-name conventions below, else nothing.

Name conventions: a joint name is split into lower-case words at ``_``, ``-``, ``.``, spaces and camel-case
boundaries (``LShoulder`` -> ``l shoulder``, ``left_hip`` -> ``left hip``, ``shoulder_left`` -> ``shoulder
left``). A first or last word ``left``/``l`` (``right``/``r``) gives the side; the remaining words name the body
part. Roles without a side match whole names, in this order of preference:

    pelvis  hip_center, spine_base, pelvis, mid_hip
    spine   spine, spine_mid
    neck    shoulder_center, spine_shoulder, neck
    head    head, nose

``left_shoulder`` is the first joint on the left side whose part is ``shoulder`` (likewise the others). A joint
that no role and no name places on a side takes the opposite side of its flip partner (``flip_pairs``) when the
partner's side is known.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stgcn.graph.layouts import Layout

__all__ = ["ROLES", "resolve_role", "joint_side", "split_side", "name_words"]

ROLES = ("pelvis", "spine", "neck", "head", "left_shoulder", "right_shoulder", "left_hip", "right_hip")

_CENTRAL: dict[str, tuple[str, ...]] = {
    "pelvis": ("hip_center", "spine_base", "pelvis", "mid_hip"),
    "spine": ("spine", "spine_mid"),
    "neck": ("shoulder_center", "spine_shoulder", "neck"),
    "head": ("head", "nose"),
}
_SIDE_WORDS = {"left": "left", "l": "left", "right": "right", "r": "right"}
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def name_words(name: str) -> list[str]:
    """A joint name as lower-case words (split at separators and camel case)."""
    return [w.lower() for w in _WORD.findall(name)]


def split_side(name: str) -> tuple[str | None, str]:
    """``(side, part)`` of a joint name by the conventions: ``"l_hand"`` -> ``("left", "hand")``,
    ``"RHip"`` -> ``("right", "hip")``, ``"mouth_left"`` -> ``("left", "mouth")``, ``"neck"`` -> ``(None, "neck")``.
    """
    words = name_words(name)
    if len(words) > 1:
        for i in (0, -1):
            side = _SIDE_WORDS.get(words[i])
            if side is not None:
                rest = words[1:] if i == 0 else words[:-1]
                return side, "_".join(rest)
    return None, "_".join(words)


def _by_name(layout: Layout, role: str) -> int | None:
    if role in _CENTRAL:
        canonical = ["_".join(name_words(j)) for j in layout.joints]
        for want in _CENTRAL[role]:
            if want in canonical:
                return canonical.index(want)
        return None
    side, part = role.split("_", 1)
    for i, joint in enumerate(layout.joints):
        if split_side(joint) == (side, part):
            return i
    return None


def resolve_role(layout: Layout, role: str) -> int | None:
    """The joint index playing ``role`` in ``layout``: its explicit ``roles`` entry, else by name, else ``None``.

    Raises:
        ValueError: ``role`` is not one of :data:`ROLES` (a programming error).
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; valid roles are {', '.join(ROLES)}")
    explicit = dict(layout.roles)
    if role in explicit:
        return explicit[role]
    return _by_name(layout, role)


def joint_side(layout: Layout, joint: int) -> str | None:
    """``"left"``, ``"right"`` or ``None`` (middle or unknown) for joint index ``joint``.

    Explicit side roles (``left_shoulder`` ...) first, then the name, then the opposite of the flip partner's.
    """
    def own(j: int) -> str | None:
        for role, idx in layout.roles:
            if idx == j and role.startswith(("left_", "right_")):
                return role.split("_", 1)[0]
        return split_side(layout.joints[j])[0]

    side = own(joint)
    if side is not None:
        return side
    for a, b in layout.flip_pairs:
        partner = b if a == joint else a if b == joint else None
        if partner is not None:
            other = own(partner)
            if other is not None:
                return "right" if other == "left" else "left"
    return None
