"""Integrity of saved weights: a content hash written at save time and verified at load, the zip container's
own CRCs (PyTorch's reader does not check them), and finite values.

Every check raises :class:`stgcn.errors.CheckpointError` with one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from stgcn.errors import CheckpointError

__all__ = ["HASH_ALGORITHM", "content_digest", "check_zip", "check_finite"]

HASH_ALGORITHM = "sha256"


def content_digest(state_dict: Mapping[str, torch.Tensor], config: Any = None) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes (in key order) and ``config`` as sorted JSON."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key]
        if not isinstance(t, torch.Tensor):
            h.update(f"{key}:{type(t).__name__}\0".encode())
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if config is not None:
        h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()


def check_zip(path: str | Path) -> None:
    """Check the CRC of every member of a zip-format PyTorch file (legacy non-zip files pass unchecked), after
    checking that the path is a regular file (a missing one passes: the loader names it).

    Raises:
        CheckpointError: not a regular file, a truncated zip or a member whose bytes do not match its CRC.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return  # the loader names the missing file
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):  # a FIFO would block the loader, a device would be read forever
        raise CheckpointError(f"{path}: not a regular file (a directory, FIFO, socket or device)")
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, RuntimeError, NotImplementedError) as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise CheckpointError(f"{path}: corrupt file (its zip container is damaged: {msg})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupt file (member {bad!r} fails its CRC check: the file was "
                              f"damaged after it was written)")


def check_finite(state_dict: Mapping[str, Any], path: str | Path) -> None:
    """Refuse NaN or infinite values in floating-point tensors.

    Raises:
        CheckpointError: naming the first tensor holding one.
    """
    for key, t in state_dict.items():
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and t.numel():
            if not bool(torch.isfinite(t).all()):
                raise CheckpointError(f"{path}: weight {key!r} holds NaN or infinite values")
