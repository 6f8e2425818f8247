"""What every reader shares: the records a reader produces, the checks every file goes through and the
declaration of a dataset format.

A reader module (``stgcn/data/readers/<format>.py``) offers a function that reads one file of its format, a
``plan_<format>(src, ...) -> SourcePlan`` that describes a whole dataset (layout, channels, class names and a
list of picklable work units that :mod:`stgcn.data.prepare` maps over worker processes) and one
:class:`DatasetFormat` named ``FORMAT`` that declares the format's name, help and options
(:class:`ReaderOption`). :mod:`stgcn.data.readers` lists these declarations; ``stgcn prepare`` builds its
command line from them and :func:`stgcn.data.prepare.plan_source` checks options against them.

A work unit is turned into :class:`ClipRecord` (a clip for the store) and :class:`Skipped` (a known-bad
sample, reported and counted) items by ``plan.work(unit)``, a module-level function so that it pickles.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import Layout, get_layout
from stgcn.utils.checks import check_int
from stgcn.utils.files import decode_text, parse_json, read_file_bytes
from stgcn.utils.limits import MAX_CLASSES, MAX_FILE_BYTES, MAX_FRAMES, MAX_PERSONS, check_max

__all__ = [
    "ClipRecord", "Skipped", "SourcePlan", "MAX_FILE_BYTES", "MAX_FRAMES", "read_text", "read_bytes",
    "read_json", "numeric_array", "finite_float32", "check_keypoints", "chunked", "layout_for_joints",
    "read_class_names", "class_names_from", "numbered_class_names", "ReaderOption", "DatasetFormat", "MAX_PERSONS",
]

# Limits that keep a corrupted or hostile file from exhausting memory or time (all in stgcn.utils.limits).


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


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a one-line DataError when missing, unreadable, not a regular file (a FIFO, a device,
    a symlink loop: checked before reading, never blocking) or larger than ``MAX_FILE_BYTES``."""
    return read_file_bytes(path, max_bytes=MAX_FILE_BYTES, error=DataError)


def read_text(path: str | Path) -> str:
    """The file as UTF-8 text (BOM tolerated); a one-line DataError when unreadable or not text."""
    return decode_text(read_bytes(path), path, error=DataError)


def read_json(path: str | Path) -> Any:
    """Parsed JSON (nesting bounded); a one-line DataError when missing, truncated or not JSON."""
    return parse_json(read_text(path), path, error=DataError)


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


def check_keypoints(
    x: np.ndarray,
    where: str,
    layout: Layout | None,
    num_channels: int | None = None,
    *,
    channels: Sequence[str] | None = None,
    scores: np.ndarray | None = None,
    coordinates: bool = False,
    allow_empty: bool = False,
) -> np.ndarray:
    """The one validation rule for a clip, used by every reader and by :mod:`stgcn.data.sources`.

    A clip is 4-D with at least one frame and one person (unless ``allow_empty``: a reader that skips
    empty samples itself), within the frame and person limits, has the layout's joints, finite values and,
    when given, ``num_channels`` channels, one name per channel in ``channels``, 2 or 3 coordinates
    (``coordinates``) and finite ``scores`` of shape (T, M, V).

    Args:
        x: The clip.
        where: What the message names (usually the file).
        layout: The clip's layout; None skips the joint-count check.
        num_channels: Required C, if any.
        channels: Channel names; their count must be C.
        scores: Detection scores, checked when given.
        coordinates: Whether C must be 2 (x, y) or 3 (x, y, z).
        allow_empty: Accept T = 0 or M = 0.

    Returns:
        ``x`` unchanged.

    Shape:
        x: (T, M, V, C); scores: (T, M, V)

    Raises:
        DataError: the first rule the clip breaks, in one line naming ``where``.
    """
    v = layout.num_joints if layout is not None else None
    if x.ndim != 4:
        if x.size == 0:
            raise DataError(f"{where}: empty clip (keypoints of shape {tuple(x.shape)}); expected at least one frame")
        raise DataError(f"{where}: keypoints have shape {tuple(x.shape)}; expected (T, M, V, C) = "
                        f"(T, M, {v if v is not None else 'V'}, C)")
    t, m, vv, c = x.shape
    if t == 0 and not allow_empty:
        raise DataError(f"{where}: empty clip (0 frames); expected at least one frame")
    if m == 0 and not allow_empty:
        raise DataError(f"{where}: no person in the clip; expected at least one")
    if t > MAX_FRAMES or m > MAX_PERSONS:
        raise DataError(f"{where}: {t} frames x {m} persons is beyond the limits ({MAX_FRAMES}, {MAX_PERSONS})")
    if layout is not None and vv != v:
        raise DataError(f"{where}: {vv} joints per person; layout {layout.name!r} has {v}")
    if coordinates and c not in (2, 3):
        raise DataError(f"{where}: {c} coordinates per joint; expected 2 (x, y) or 3 (x, y, z)")
    if num_channels is not None and c != num_channels:
        raise DataError(f"{where}: {c} channels per joint; expected {num_channels}")
    if channels is not None and len(channels) != c:
        raise DataError(f"{where}: {len(channels)} channel names {list(channels)} for {c} coordinates")
    if not np.isfinite(x).all():
        raise DataError(f"{where}: keypoints contain NaN or inf")
    if scores is not None:
        if scores.shape != (t, m, vv):
            raise DataError(f"{where}: scores have shape {tuple(scores.shape)}; expected {(t, m, vv)}")
        if not np.isfinite(scores).all():
            raise DataError(f"{where}: scores contain NaN or inf")
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


def read_class_names(path: str | Path) -> list[str]:
    """A text file with one class name per line (blank lines ignored)."""
    names = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: no class names (expected one per line)")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: class names must be unique")
    return names


def numbered_class_names(size: int, where: str | Path, known: Mapping[int, str] | None = None) -> list[str]:
    """``class_0 .. class_{size-1}`` (or the ``known`` name of an index) for labels given as integers; a
    largest label beyond :data:`~stgcn.utils.limits.MAX_CLASSES` is one line naming ``where``."""
    check_max(size, f"{where}: the number of classes (largest integer label + 1)", MAX_CLASSES, DataError)
    return [(known or {}).get(i, f"class_{i}") for i in range(size)]


def class_names_from(value: str | Path | Sequence[str]) -> list[str]:
    """Class names given as a file (one per line, see :func:`read_class_names`) or as the names."""
    if isinstance(value, str | Path):
        return read_class_names(value)
    return [str(n) for n in value]


# ---------------------------------------------------------------------------------- format declarations
_TYPE_WORDS: dict[type, str] = {int: "an integer", str: "a string", Path: "a file path", bool: "true or false"}


@dataclass(frozen=True)
class ReaderOption:
    """One option of a dataset format: a keyword argument of its plan function and a ``stgcn prepare`` flag.

    Attributes:
        name: The keyword (``test_view``); the command-line flag is ``--test-view``.
        type: What the command line parses: ``int``, ``str``, ``Path`` or ``bool`` (with ``flag``).
        default: The value used when the option is not given (or given as None).
        help: The flag's help text.
        choices: The valid values, if restricted.
        flag: A switch without a value (``store_true``); its type is ``bool``.
        minimum: Smallest valid value of an ``int`` option.
        accepts: Further Python types the library accepts (e.g. ``list`` for class names, ``Layout``).
        cli: Whether ``stgcn prepare`` offers it (library-only tuning such as ``chunk`` does not).
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    flag: bool = False
    minimum: int | None = None
    accepts: tuple[type, ...] = ()
    cli: bool = True

    @property
    def cli_flag(self) -> str:
        """The command-line flag, e.g. ``--test-view``."""
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any, fmt: str) -> Any:
        """``value`` when valid for this option (None gives the default).

        Raises:
            ConfigError: a value of the wrong type or outside the choices (the message names the option).
        """
        if value is None:
            return self.default
        where = f"format {fmt!r}: option {self.name!r}"
        if self.type is int:
            value = check_int(value, where, minimum=self.minimum)
        elif not self._type_ok(value):
            words = [_TYPE_WORDS.get(self.type, self.type.__name__), *(t.__name__ for t in self.accepts)]
            raise ConfigError(f"{where} must be {' or '.join(words)}, got {_short(value)}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where}: {_short(value)} is not valid; valid values are "
                              f"{', '.join(str(c) for c in self.choices)}")
        return value

    def _type_ok(self, value: Any) -> bool:
        if self.accepts and isinstance(value, self.accepts):
            return True
        if self.type is bool:
            return isinstance(value, bool)
        if self.type is Path:
            return isinstance(value, str | os.PathLike)
        return isinstance(value, self.type)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class DatasetFormat:
    """The declaration of one ``stgcn prepare`` source format (each reader module has one, ``FORMAT``).

    Attributes:
        name: The format name (``nw-ucla``).
        help: One line on what the format is and its standard split.
        src_help: What the SRC argument is.
        plan: ``plan(src, **options) -> SourcePlan``; its keyword arguments are exactly ``options``.
        options: The format's options.
    """

    name: str
    help: str
    src_help: str
    plan: Callable[..., SourcePlan]
    options: tuple[ReaderOption, ...] = ()

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Every declared option's value: the given one (checked) or the default.

        Raises:
            ConfigError: an undeclared option (the message lists the valid ones), or a value of the wrong
                type or choice (the message names the option).
        """
        known = {o.name: o for o in self.options}
        unknown = [key for key in options if key not in known]
        if unknown:
            raise ConfigError(f"format {self.name!r} has no option {unknown[0]!r}; valid options are "
                              f"{', '.join(known) or '(none)'}")
        return {o.name: o.check(options.get(o.name), self.name) for o in self.options}
