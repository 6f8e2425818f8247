"""Read foreign pickles (PYSKL annotations, the original ST-GCN label files) without running their code.

A pickle can name any importable callable and call it while loading, so ``pickle.load`` on a file from the
internet can run arbitrary code. :func:`load_pickle` uses an unpickler whose ``find_class`` resolves only
an allow-list: numpy arrays, dtypes and scalars, and the builtin containers. Anything else (``os.system``,
``builtins.eval``, ``subprocess.Popen``, any class) is refused with a one-line
:class:`~stgcn.errors.DataError` before it is ever imported or called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.readers.base import read_bytes
from stgcn.errors import DataError
from stgcn.utils.limits import MAX_PICKLE_ELEMENTS

__all__ = ["load_pickle", "loads_pickle", "ALLOWED_GLOBALS"]


_MAX_CONTAINER_ARG = 10_000_000


class _ArrayType:
    """Stands for ``numpy.ndarray`` in a pickle: usable as the subtype argument of ``_reconstruct`` but not
    callable (``ndarray(shape)`` would allocate whatever size the pickle declares)."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_ARRAY = _ArrayType()


def _numpy_globals() -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray, numeric  # numpy >= 2 location

    def reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        # numpy pickles an array as an empty placeholder whose real shape and bytes come with BUILD (and are
        # checked against each other there); a non-empty placeholder would be an allocation of any size
        if subtype is not _ARRAY:
            raise DataError(f"_reconstruct of {subtype!r}: only numpy.ndarray is allowed")
        if not isinstance(shape, tuple) or not shape or any(not isinstance(d, int) or d < 0 for d in shape) \
                or np.prod(shape, dtype=np.float64) != 0:
            raise DataError(f"array placeholder of shape {shape!r}: expected an empty one")
        return multiarray._reconstruct(np.ndarray, shape, dtype)

    def frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        if not isinstance(buf, bytes | bytearray | pickle.PickleBuffer):
            raise DataError("array data must be bytes stored in the pickle")
        return numeric._frombuffer(buf, dtype, shape, order)

    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _ARRAY, ("numpy", "dtype"): np.dtype}
    # numpy 1.x wrote numpy.core.*, numpy 2.x writes numpy._core.*; both resolve to the same functions
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        out[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        out[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return out


def _container(cls: type) -> Any:
    """``cls`` callable only on data that the pickle itself holds (never an int size or a huge array)."""

    def make(*args: Any) -> Any:
        if len(args) > 2 or (args and not isinstance(args[0], str | bytes | list | tuple | dict | set | frozenset)):
            raise DataError(f"{cls.__name__}() of {type(args[0]).__name__ if args else '?'}: only pickled "
                            "containers are allowed as its argument")
        if args and len(args[0]) > _MAX_CONTAINER_ARG:
            raise DataError(f"{cls.__name__}() of {len(args[0])} items: too large")
        if len(args) == 2 and not (cls is bytearray and args[1] in ("latin1", "latin-1")):
            raise DataError(f"{cls.__name__}() with two arguments is not allowed")
        return cls(*args) if cls is not bytearray or not args or not isinstance(args[0], str) else \
            bytearray(args[0], "latin1")

    return make


def _encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: a str in latin-1, nothing else."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise DataError(f"_codecs.encode({type(obj).__name__}, {encoding!r}): only latin-1 text is allowed")
    return obj.encode("latin1", errors="strict")


_CONTAINERS = (list, dict, tuple, set, frozenset, bytes, bytearray)
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{(mod, cls.__name__): _container(cls) for mod in ("builtins", "__builtin__") for cls in _CONTAINERS},
    ("_codecs", "encode"): _encode,
    ("collections", "OrderedDict"): _container(dict),
    **_numpy_globals(),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, where: str) -> None:
        super().__init__(file, encoding="latin1")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            ref = ascii(f"{module}.{name}")[1:-1][:80]
            raise DataError(
                f"{self.where}: refusing to load: the pickle references {ref}; only numpy arrays "
                "and builtin containers are allowed (a pickle that names other objects can run code)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.where}: refusing to load: the pickle uses persistent ids")


def _expanded_size(obj: Any, where: str, limit: int) -> int:
    """Elements ``obj`` would have with every shared reference copied (what ``np.asarray`` or a loop over it
    builds): container lengths plus array sizes, summed over the object tree; iterative, memoised per object.

    Raises:
        DataError: more than ``limit`` elements, or a container that contains itself.
    """
    sizes: dict[int, int] = {}
    busy: set[int] = set()
    stack: list[tuple[Any, bool]] = [(obj, False)]
    while stack:
        item, done = stack.pop()
        key = id(item)
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            children = list(item)
        else:
            sizes[key] = int(item.size) if isinstance(item, np.ndarray) and item.dtype != object else 1
            if isinstance(item, np.ndarray) and item.dtype == object:
                children = list(item.ravel())
            else:
                continue
        if key in sizes and not done:
            continue
        if done:
            busy.discard(key)
            total = len(children) + sum(sizes[id(c)] for c in children)
            if total > limit:
                raise DataError(f"{where}: refusing to load: its shared references expand to more than {limit} "
                                f"elements (a small file that would fill memory)")
            sizes[key] = total
            continue
        if key in busy:
            raise DataError(f"{where}: refusing to load: a container contains itself")
        busy.add(key)
        stack.append((item, True))
        for c in children:
            if id(c) in busy:
                raise DataError(f"{where}: refusing to load: a container contains itself")
            if id(c) not in sizes:
                stack.append((c, False))
    return sizes[id(obj)]


def loads_pickle(data: bytes, where: str = "pickle") -> Any:
    """Unpickle ``data`` allowing only numpy arrays/dtypes/scalars and builtin containers.

    The object tree, with shared references counted each time they occur, is bounded by
    ``MAX_PICKLE_ELEMENTS`` plus 8 per byte of ``data`` (a real file's elements each take bytes in it).

    Raises:
        DataError: a forbidden global, a truncated/corrupt pickle, or one whose shared references expand
            beyond the bound (one line naming ``where``).
    """
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), where).load()
        _expanded_size(obj, where, MAX_PICKLE_ELEMENTS + 8 * len(data))
        return obj
    except DataError as e:
        if str(e).startswith(f"{where}:"):
            raise
        raise DataError(f"{where}: refusing to load: {e}") from None
    except RecursionError:
        raise DataError(f"{where}: not a valid pickle (nested too deeply)") from None
    except MemoryError:
        raise DataError(f"{where}: not a valid pickle (declares more data than fits in memory)") from None
    except Exception as e:  # any failure of hostile input is a data error
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise DataError(f"{where}: not a valid or complete pickle ({type(e).__name__}: {reason})") from None


def load_pickle(path: str | Path) -> Any:
    """Read and unpickle a file with :func:`loads_pickle`'s allow-list.

    Raises:
        DataError: missing/unreadable file, a forbidden global, or a truncated/corrupt pickle.
    """
    return loads_pickle(read_bytes(path), str(path))
