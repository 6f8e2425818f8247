"""The rules every layout obeys (built-in or loaded from a file), checked when a :class:`~stgcn.graph.layouts.Layout`
is built:

* at least one joint, unique joint names, at most :data:`~stgcn.utils.limits.MAX_JOINTS` joints;
* the centre is a joint index;
* edges join two different joints in range, each undirected edge listed once; bones are in range;
* the graph is connected, unless the layout says ``allow_disconnected: true`` (the message names the joints
  that cannot reach the centre);
* flip pairs: in range, no joint paired with itself, each joint in at most one pair, and no pair of two joints
  the names (or roles) put on the same side;
* roles: known role names (:data:`~stgcn.graph.roles.ROLES`), joints in range, each joint in at most one role,
  side roles not on the other side by name.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from stgcn.errors import ConfigError
from stgcn.graph.roles import ROLES, joint_side, split_side
from stgcn.utils.limits import MAX_JOINTS

if TYPE_CHECKING:
    from stgcn.graph.layouts import Layout

__all__ = ["check_layout", "components"]


def components(num_joints: int, edges: tuple[tuple[int, int], ...]) -> list[list[int]]:
    """Connected components of the undirected graph, each sorted, in order of their smallest joint."""
    nbrs: dict[int, list[int]] = {i: [] for i in range(num_joints)}
    for a, b in edges:
        nbrs[a].append(b)
        nbrs[b].append(a)
    seen: set[int] = set()
    out: list[list[int]] = []
    for start in range(num_joints):
        if start in seen:
            continue
        comp, queue = [], deque([start])
        seen.add(start)
        while queue:
            u = queue.popleft()
            comp.append(u)
            for w in nbrs[u]:
                if w not in seen:
                    seen.add(w)
                    queue.append(w)
        out.append(sorted(comp))
    return out


def _names(layout: Layout, idx: list[int], limit: int = 8) -> str:
    shown = ", ".join(layout.joints[i] for i in idx[:limit])
    return shown + (f", ... ({len(idx)} joints)" if len(idx) > limit else "")


def check_layout(layout: Layout) -> None:
    """Check ``layout`` against the rules of the module docstring.

    Raises:
        ConfigError: the first rule broken, one line naming the layout and what to fix.
    """
    v = len(layout.joints)
    where = f"layout {layout.name!r}"
    if v == 0:
        raise ConfigError(f"{where}: needs at least one joint")
    if v > MAX_JOINTS:
        raise ConfigError(f"{where}: {v} joints; at most {MAX_JOINTS} are supported")
    if len(set(layout.joints)) != v:
        dup = sorted({j for j in layout.joints if layout.joints.count(j) > 1})
        raise ConfigError(f"{where}: joint names must be unique; repeated: {', '.join(dup[:8])}")
    if not 0 <= layout.center < v:
        raise ConfigError(f"{where}: center {layout.center} is not a joint index in [0, {v})")
    for pairs, what in ((layout.edges, "edge"), (layout.bones or (), "bone"), (layout.flip_pairs, "flip pair")):
        for a, b in pairs:
            if not (0 <= a < v and 0 <= b < v):
                raise ConfigError(f"{where}: {what} ({a}, {b}) has a joint index outside [0, {v})")
    seen: set[tuple[int, int]] = set()
    for a, b in layout.edges:
        if a == b:
            raise ConfigError(f"{where}: edge ({a}, {b}) is a self-loop; layouts hold none")
        key = (min(a, b), max(a, b))
        if key in seen:
            raise ConfigError(f"{where}: edge ({a}, {b}) is listed twice")
        seen.add(key)
    if not layout.allow_disconnected:
        comps = components(v, layout.edges)
        if len(comps) > 1:
            main = next(c for c in comps if layout.center in c)
            cut = sorted(j for c in comps if c is not main for j in c)
            raise ConfigError(
                f"{where}: the graph is not connected: {len(cut)} joint(s) cannot reach the centre "
                f"{layout.joints[layout.center]!r} ({_names(layout, cut)}); add edges, or set "
                f"allow_disconnected: true if the parts are meant to be separate")
    _check_roles(layout, where, v)
    _check_flip_pairs(layout, where)


def _check_roles(layout: Layout, where: str, v: int) -> None:
    used: dict[int, str] = {}
    for role, j in layout.roles:
        if role not in ROLES:
            raise ConfigError(f"{where}: unknown role {role!r}; valid roles are {', '.join(ROLES)}")
        if not 0 <= j < v:
            raise ConfigError(f"{where}: role {role} names joint index {j}, outside [0, {v})")
        if j in used:
            raise ConfigError(f"{where}: joint {layout.joints[j]!r} has two roles ({used[j]}, {role})")
        used[j] = role
        if role.startswith(("left_", "right_")):
            named = split_side(layout.joints[j])[0]
            if named is not None and named != role.split("_", 1)[0]:
                raise ConfigError(f"{where}: role {role} is joint {layout.joints[j]!r}, whose name says {named}")


def _check_flip_pairs(layout: Layout, where: str) -> None:
    paired: set[int] = set()
    for a, b in layout.flip_pairs:
        if a == b:
            raise ConfigError(f"{where}: flip pair ({a}, {b}) pairs joint {layout.joints[a]!r} with itself")
        for j in (a, b):
            if j in paired:
                raise ConfigError(f"{where}: joint {layout.joints[j]!r} is in more than one flip pair")
            paired.add(j)
    for a, b in layout.flip_pairs:
        sa, sb = joint_side(layout, a), joint_side(layout, b)
        if sa is not None and sa == sb:
            raise ConfigError(f"{where}: flip pair ({layout.joints[a]!r}, {layout.joints[b]!r}) puts two {sa} "
                              f"joints together; a flip pair is one left and one right joint")
