"""Reading input files safely: regular files only (never blocking on a FIFO or reading a device), symlink loops
named, sizes bounded, text decoded as UTF-8, nesting of JSON/YAML bounded. Every failure is one line naming
the file, raised as the caller's error type."""

from __future__ import annotations

import errno
import io
import json
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.errors import DataError
from stgcn.utils.limits import MAX_FILE_BYTES, MAX_NESTING

__all__ = ["read_file_bytes", "read_npy", "decode_text", "parse_json", "parse_yaml", "check_nesting"]

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_file_bytes(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, error: type[Exception] = DataError,
                    what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    The file is opened non-blocking and checked with ``fstat`` before reading, so a FIFO never blocks and a
    device (``/dev/zero``) is never read.

    Raises:
        error: missing, unreadable, a symlink loop, not a regular file, or larger than ``max_bytes``.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        reason = "a symlink loop" if e.errno == errno.ELOOP else (e.strerror or str(e))
        raise error(f"{path}: cannot read {what} ({reason})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: cannot read {what} (it is {_kind(st.st_mode)}, not a regular file)")
        if st.st_size > max_bytes:
            raise error(f"{path}: {st.st_size} bytes is larger than the {max_bytes}-byte limit for a {what}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 24, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise error(f"{path}: larger than the {max_bytes}-byte limit for a {what}")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"{path}: cannot read {what} ({e.strerror or e})") from None
    finally:
        os.close(fd)


def read_npy(path: str | Path, *, error: type[Exception] = DataError, what: str = ".npy array") -> np.ndarray:
    """A ``.npy`` array read through :func:`read_file_bytes`, never unpickling, its header checked against the
    file's size before anything is allocated (a 1 kB file declaring 10**12 elements is an error, not a
    MemoryError).

    Raises:
        error: unreadable, not a ``.npy`` file, an object array, or a header that the data does not fill.
    """
    data = read_file_bytes(path, error=error, what=what)
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = header(f)
        if dtype.hasobject:
            raise ValueError("it holds Python objects (a pickle), which are not read")
        need = math.prod(shape) * dtype.itemsize
        if need > len(data) - f.tell():
            raise ValueError(f"its header declares shape {shape} ({need} bytes) but the file holds "
                             f"{len(data) - f.tell()} bytes of data")
        f.seek(0)
        return np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError) as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise error(f"{path}: not a readable {what} ({msg})") from None


def decode_text(data: bytes, path: str | Path, *, error: type[Exception] = DataError) -> str:
    """``data`` as UTF-8 text (a BOM tolerated).

    Raises:
        error: NUL bytes or invalid UTF-8 (with the offset of the first bad byte).
    """
    if b"\x00" in data:
        raise error(f"{path}: not a text file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None


def check_nesting(obj: Any, path: str | Path, *, limit: int = MAX_NESTING, error: type[Exception] = DataError) -> Any:
    """``obj`` when its lists/mappings nest at most ``limit`` deep (iterative: no recursion)."""
    stack = [(obj, 1)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth > limit:
                raise error(f"{path}: nested more than {limit} levels deep")
            if id(item) in seen:  # a YAML alias: checked once
                continue
            seen.add(id(item))
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, Mapping) else item))
    return obj


def parse_json(text: str, path: str | Path, *, error: type[Exception] = DataError) -> Any:
    """Parsed JSON with its nesting bounded; one line naming ``path`` otherwise."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise error(f"{path}: nested more than {MAX_NESTING} levels deep") from None
    except ValueError as e:
        raise error(f"{path}: not valid JSON ({(str(e).splitlines() or [''])[0]})") from None
    return check_nesting(data, path, error=error)


def parse_yaml(text: str, path: str | Path, *, error: type[Exception] = DataError) -> Any:
    """``yaml.safe_load`` with its nesting bounded; one line naming ``path`` otherwise."""
    try:
        import yaml
    except ImportError:
        raise error(f"{path}: reading YAML needs PyYAML: pip install 'stgcn[yaml]'") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise error(f"{path}: nested more than {MAX_NESTING} levels deep") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())[:200]
        raise error(f"{path}: invalid YAML{where} ({problem})") from None
    return check_nesting(data, path, error=error)
