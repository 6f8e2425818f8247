"""The store manifest (``manifest.json``), read strictly: known keys only, each of its type, every size that
comes from the file bounded, and the layout entry resolved and checked against its recorded fingerprint.

Keys (written by :class:`~stgcn.data.store_writer.StoreWriter`)::

    format_version      int, the store format (1)
    layout              a built-in layout name, or the layout as a mapping (Layout.to_dict)
    layout_fingerprint  16 hex digits (stores written before it existed have none)
    channels            channel names, 1..MAX_CHANNELS unique strings
    class_names         class names, 1..MAX_CLASSES strings
    dtype               float32 | float16
    num_persons         persons per frame, 1..MAX_PERSONS
    num_joints          joints per person (optional; must be the layout's)
    splits              {split name: [clip index, ...]}
    source, counts      free mappings (where the data came from; counts for ``stgcn info``)

Every failure is one :class:`~stgcn.errors.DataError` line naming the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stgcn.errors import DataError
from stgcn.graph.identity import check_recorded_fingerprint
from stgcn.graph.layouts import Layout, get_layout
from stgcn.utils.checks import is_int
from stgcn.utils.files import decode_text, parse_json, read_file_bytes
from stgcn.utils.limits import MAX_CHANNELS, MAX_CLASSES, MAX_PERSONS, MAX_TEXT_BYTES

__all__ = ["read_manifest", "MANIFEST_KEYS", "REQUIRED_KEYS"]

REQUIRED_KEYS = ("format_version", "layout", "channels", "class_names", "dtype", "num_persons", "splits")
MANIFEST_KEYS = (*REQUIRED_KEYS, "layout_fingerprint", "num_joints", "source", "counts")


def _names(m: dict[str, Any], key: str, maximum: int, file: Path, *, unique: bool) -> list[str]:
    value = m[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{file}: '{key}' must be a list of names, got {type(value).__name__}")
    if not 1 <= len(value) <= maximum:
        raise DataError(f"{file}: '{key}' holds {len(value)} names; expected 1 to {maximum}")
    if unique and len(set(value)) != len(value):
        raise DataError(f"{file}: '{key}' repeats a name")
    return list(value)


def read_manifest(file: Path, format_version: int, dtypes: tuple[str, ...]) -> tuple[dict[str, Any], Layout]:
    """The checked manifest at ``file`` and its resolved layout.

    Args:
        file: ``<store>/manifest.json``.
        format_version: The format version this stgcn reads.
        dtypes: The valid ``dtype`` values.

    Raises:
        DataError: missing, unreadable, not UTF-8 JSON, an unknown or missing key, a value of the wrong type or
            out of bounds, an invalid layout entry or a recorded fingerprint that differs (one line naming the
            manifest).
    """
    try:
        data = read_file_bytes(file, max_bytes=MAX_TEXT_BYTES, what="store manifest")
    except DataError as e:
        if not file.exists():
            raise DataError(f"{file}: missing; not a complete dataset store (create one with `stgcn prepare`)"
                            ) from None
        raise e from None
    m = parse_json(decode_text(data, file), file)
    if not isinstance(m, dict) or any(k not in m for k in REQUIRED_KEYS):
        raise DataError(f"{file}: not a store manifest; expected keys {list(REQUIRED_KEYS)}")
    unknown = sorted(k for k in m if k not in MANIFEST_KEYS)
    if unknown:
        raise DataError(f"{file}: unknown key(s) {', '.join(map(repr, unknown[:5]))}; valid keys are "
                        f"{', '.join(MANIFEST_KEYS)}")
    if m["format_version"] != format_version or not is_int(m["format_version"]):
        raise DataError(f"{file}: store format_version {repr(m['format_version'])[:40]}; this stgcn reads "
                        f"version {format_version} (re-run `stgcn prepare`)")
    if not isinstance(m["dtype"], str) or m["dtype"] not in dtypes:
        raise DataError(f"{file}: dtype {repr(m['dtype'])[:40]}; expected one of {', '.join(dtypes)}")
    _names(m, "channels", MAX_CHANNELS, file, unique=True)
    _names(m, "class_names", MAX_CLASSES, file, unique=False)
    if not is_int(m["num_persons"]) or not 1 <= m["num_persons"] <= MAX_PERSONS:
        raise DataError(f"{file}: num_persons must be an integer in [1, {MAX_PERSONS}], got "
                        f"{str(m['num_persons'])[:40]}")
    for key in ("source", "counts"):
        if not isinstance(m.get(key, {}), dict):
            raise DataError(f"{file}: '{key}' must be a mapping")
    splits = m["splits"]
    if not isinstance(splits, dict) or not all(
            isinstance(v, list) and all(is_int(i) and 0 <= i < 2**62 for i in v) for v in splits.values()):
        raise DataError(f"{file}: 'splits' must map split names to lists of clip indices (integers >= 0)")
    if not isinstance(m["layout"], str | dict):
        raise DataError(f"{file}: 'layout' must be a layout name or a layout mapping")
    try:
        layout = get_layout(m["layout"])
    except Exception as e:  # a broken layout entry is a broken store
        raise DataError(f"{file}: invalid layout entry ({e})") from None
    if "num_joints" in m and (not is_int(m["num_joints"]) or m["num_joints"] != layout.num_joints):
        raise DataError(f"{file}: num_joints {str(m['num_joints'])[:40]} differs from layout {layout.name!r} "
                        f"({layout.num_joints} joints)")
    check_recorded_fingerprint(layout, m.get("layout_fingerprint"), str(file))
    return m, layout
