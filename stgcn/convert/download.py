"""Download published checkpoints into a cache, as ``torch.hub`` does, checking the sha256 prefix in the name.

Files land in ``$STGCN_HOME/checkpoints`` (default ``~/.cache/stgcn/checkpoints``) under the URL's file name.
Published MMAction2 names end in ``_<date>-<first 8 hex digits of the sha256>.pth``; when a name carries such
a prefix (or one is given) the download is checked against it and a mismatch leaves nothing in the cache.
Writes are atomic (:mod:`stgcn.utils.atomic`). The progress bar uses tqdm when it is installed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from stgcn.errors import CheckpointError
from stgcn.utils.atomic import atomic_path

__all__ = ["cache_dir", "download", "sha256_prefix_of_name"]

logger = logging.getLogger(__name__)

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$STGCN_HOME/checkpoints``, or ``~/.cache/stgcn/checkpoints``."""
    home = os.environ.get("STGCN_HOME") or Path.home() / ".cache" / "stgcn"
    return Path(home) / "checkpoints"


def sha256_prefix_of_name(name: str) -> str | None:
    """The hex sha256 prefix a published file name ends with (``..._20221129-484a394a.pth``), or None."""
    m = _HASH_IN_NAME.search(name)
    return m.group(1) if m else None


def _progress(total: int | None, name: str, show: bool) -> Any:
    try:
        if not show:
            raise ImportError
        from tqdm import tqdm
    except ImportError:
        class _Silent:
            def __enter__(self) -> _Silent:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def update(self, n: int) -> None:
                pass
        return _Silent()
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def download(url: str, *, sha256: str | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """Return the cached file for ``url`` (``http(s)://`` or ``file://``), downloading it first if needed.

    Args:
        url: Where the checkpoint is published.
        sha256: Expected hex prefix of the file's sha256; ``None`` takes it from the file name if present.
        progress: Show a tqdm progress bar when tqdm is installed.
        timeout: Seconds to wait for the server.

    Raises:
        CheckpointError: an unsupported scheme, a failed download, or a sha256 mismatch (nothing is cached).
    """
    parts = urllib.parse.urlparse(url)
    if parts.scheme not in ("http", "https", "file"):
        raise CheckpointError(f"{url}: only http(s):// and file:// URLs can be downloaded")
    name = Path(urllib.parse.unquote(parts.path)).name
    if not name:
        raise CheckpointError(f"{url}: the URL names no file")
    expected = (sha256 or sha256_prefix_of_name(name) or "").lower() or None
    target = cache_dir() / name
    if target.is_file():
        if expected is None or _sha256(target).startswith(expected):
            return target
        logger.warning("%s: cached file does not match sha256 prefix %s; downloading again", target, expected)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(target) as tmp:
            total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            digest = hashlib.sha256()
            with open(tmp, "wb") as out, _progress(int(total) if total else None, name, progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            got = digest.hexdigest()
            if expected is not None and not got.startswith(expected):
                raise CheckpointError(f"{url}: sha256 {got[:len(expected)]}... does not match the expected prefix "
                                      f"{expected}; the download was discarded")
    except CheckpointError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise CheckpointError(f"{url}: download failed ({str(reason).splitlines()[0][:160]})") from None
    logger.info("downloaded %s to %s", url, target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
