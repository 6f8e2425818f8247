"""Read a PyTorch zip checkpoint whose metadata ``torch.load(weights_only=True)`` refuses, without running code.

Published MMAction2/PYSKL checkpoints are ``{'meta': {...}, 'state_dict': {...}}``; the meta part may name
classes (config objects, numpy scalars, log buffers) that the weights-only unpickler does not allow. This
reader unpickles ``data.pkl`` with the project's restricted unpickler (:mod:`stgcn.utils.safe_pickle`),
extended with exactly what tensors need: storages read from the archive as bytes and
``torch._utils._rebuild_tensor_v2`` (rebuilt here, not called). Any other class or function the pickle names
becomes an inert :class:`Opaque` record: nothing from the file is imported or called.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import torch

from stgcn.errors import CheckpointError
from stgcn.utils.safe_pickle import ALLOWED_GLOBALS, _RestrictedUnpickler

__all__ = ["load_checkpoint_restricted", "Opaque"]

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class Opaque(dict):
    """Stands for a class or function the checkpoint's pickle names but this reader does not build.

    Calling it, creating it with ``__new__``, or giving it state (BUILD, SETITEMS, APPENDS) only fills this
    inert record; ``name`` says what the pickle asked for.
    """

    name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<opaque {self.name}>"


def _opaque(name: str) -> type[Opaque]:
    return type("Opaque", (Opaque,), {"name": name[:120]})


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise CheckpointError("a tensor in the checkpoint does not refer to stored data")
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)):
        raise CheckpointError("a tensor in the checkpoint has a malformed shape")
    needed = offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True)) + 1 if all(size) else 0
    if needed > storage.numel():
        raise CheckpointError("a tensor in the checkpoint reaches past its stored data")
    return torch.as_strided(storage, size, stride, offset).clone()


class _CheckpointUnpickler(_RestrictedUnpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, where: str) -> None:
        super().__init__(io.BytesIO(data), where)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        return _opaque(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self.where}: unexpected persistent id in the checkpoint")
        _, kind, key, _location, numel = pid
        dtype = kind.dtype if isinstance(kind, _StorageType) else None
        if dtype is None or not isinstance(key, str) or not key.isalnum():
            raise CheckpointError(f"{self.where}: unsupported storage {kind!r} in the checkpoint")
        try:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
        except KeyError:
            raise CheckpointError(f"{self.where}: storage {key} is missing from the archive") from None
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(raw) % itemsize or (isinstance(numel, int) and len(raw) // itemsize < numel):
            raise CheckpointError(f"{self.where}: storage {key} is truncated")
        return torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)


def load_checkpoint_restricted(path: str | Path) -> Any:
    """Unpickle a PyTorch zip checkpoint, building tensors and containers only (see the module doc).

    Raises:
        CheckpointError: not a zip checkpoint, truncated, or malformed (one line naming the file).
    """
    where = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(f"{where}: not a PyTorch zip checkpoint (no single data.pkl)")
            prefix = pickles[0][: -len("/data.pkl")]
            return _CheckpointUnpickler(archive.read(pickles[0]), archive, prefix, where).load()
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{where}: not a readable PyTorch checkpoint ({type(e).__name__})") from None
    except Exception as e:  # any failure on hostile input is a checkpoint error
        raise CheckpointError(f"{where}: not a valid checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
