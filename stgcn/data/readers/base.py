"""What every reader shares: the records a reader produces and the checks every file goes through.

A reader module (``stgcn/read_<format>.py``) offers a function that reads one file of its format and a
``plan_<format>(src, ...) -> SourcePlan`` that describes a whole dataset: layout, channels, class names and
a list of picklable work units that :mod:`stgcn.data.prepare` maps over worker processes. A work unit is turned
into :class:`ClipRecord` (a clip for the store) and :class:`Skipped` (a known-bad sample, reported and
counted) items by ``plan.work(unit)``, a module-level function so that it pickles.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.errors import DataError
from stgcn.graph.layouts import Layout, get_layout

__all__ = [
    "ClipRecord", "Skipped", "SourcePlan", "MAX_FILE_BYTES", "MAX_FRAMES", "read_text", "read_bytes",
    "read_json", "numeric_array", "finite_float32", "check_keypoints", "chunked",
]

# Limits that keep a corrupted or hostile file from exhausting memory or time. No real skeleton clip comes
# near them (NTU's longest sequence has 300 frames; a 1-hour 60 fps video has 216,000).
MAX_FILE_BYTES = 2 * 1024**3
MAX_FRAMES = 1_000_000
MAX_PERSONS = 1024


@dataclass
class ClipRecord:
    """One clip for the store.

    Shape:
        keypoints: (T, M, V, C) float32
    """

    name: str
    keypoints: np.ndarray
    label: int
    splits: tuple[str, ...] = ()


@dataclass
class Skipped:
    """A sample that is left out on purpose (e.g. a published list of broken samples)."""

    name: str
    reason: str


@dataclass
class SourcePlan:
    """A dataset to convert: its metadata and the work units that produce its clips, in order."""

    format: str
    layout: Layout
    channels: list[str]
    class_names: list[str]
    num_persons: int
    units: list[Any]
    work: Callable[[Any], list[ClipRecord | Skipped]]
    splits: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)


def chunked(items: Sequence[Any], size: int) -> list[list[Any]]:
    """Split ``items`` into consecutive lists of at most ``size`` items."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def _check_size(path: Path) -> None:
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    if size > MAX_FILE_BYTES:
        raise DataError(f"{path}: {size} bytes is larger than the {MAX_FILE_BYTES}-byte limit for one file")


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a one-line DataError when missing, unreadable or too large."""
    path = Path(path)
    _check_size(path)
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def read_text(path: str | Path) -> str:
    """The file as UTF-8 text (BOM tolerated); a one-line DataError when unreadable or not text."""
    data = read_bytes(path)
    if b"\x00" in data:
        raise DataError(f"{path}: not a text file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None


def read_json(path: str | Path) -> Any:
    """Parsed JSON; a one-line DataError when missing, truncated or not JSON."""
    text = read_text(path)
    try:
        return json.loads(text)
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply") from None
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None


def numeric_array(value: Any, where: str, what: str = "keypoints") -> np.ndarray:
    """A nested list (or array) of real numbers as a float32 array; DataError for ragged or non-numeric data.

    Booleans, strings and nulls are refused rather than coerced.
    """
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, RecursionError, OverflowError):
        raise DataError(f"{where}: {what} are not a regular array of numbers (ragged or mixed lists)") from None
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{where}: {what} must be numbers (got {arr.dtype.name} values)")
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    return out


def finite_float32(values: np.ndarray, where: str, what: str = "values") -> np.ndarray:
    """``values`` as float32; DataError when any is NaN, infinite or beyond the float32 range."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(values).astype(np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{where}: {what} contain NaN, inf or numbers beyond the float32 range")
    return out


def check_keypoints(x: np.ndarray, where: str, layout: Layout, num_channels: int | None = None) -> np.ndarray:
    """Validate a clip: 4-D, at least one frame and person, the layout's joints, finite values.

    Shape:
        x: (T, M, V, C)
    """
    v = layout.num_joints
    if x.ndim != 4:
        raise DataError(f"{where}: keypoints have shape {tuple(x.shape)}; expected (T, M, V, C) = (T, M, {v}, C)")
    t, m, vv, c = x.shape
    if t == 0:
        raise DataError(f"{where}: empty clip (0 frames); expected at least one frame")
    if m == 0:
        raise DataError(f"{where}: no person in the clip; expected at least one")
    if vv != v:
        raise DataError(f"{where}: {vv} joints per person; layout {layout.name!r} has {v}")
    if num_channels is not None and c != num_channels:
        raise DataError(f"{where}: {c} channels per joint; expected {num_channels}")
    if t > MAX_FRAMES:
        raise DataError(f"{where}: {t} frames is more than the {MAX_FRAMES}-frame limit")
    if not np.isfinite(x).all():
        raise DataError(f"{where}: keypoints contain NaN or inf")
    return x


def layout_for_joints(src: str | Path, v: int, layout: str | Layout | None, defaults: dict[int, str]) -> Layout:
    """The layout of data with ``v`` joints: the one given (checked against ``v``), else the format's
    default for that joint count.

    Raises:
        DataError: no layout given and none known for ``v``, or a given layout with another joint count.
    """
    if layout is None:
        if v not in defaults:
            raise DataError(f"{src}: V = {v} joints; give the layout (--layout)")
        layout = defaults[v]
    lay = get_layout(layout)
    if lay.num_joints != v:
        raise DataError(f"{src}: data have V = {v} joints; layout {lay.name!r} has {lay.num_joints}")
    return lay
