"""Atomic file writes: write beside the target under a temporary name, then rename over it.

A reader never sees a half-written file, and an interrupted write leaves the previous file (or none) in
place; the temporary file is removed on any failure, and :func:`sweep_temps` removes those a killed process
left behind. Temporary files get the permissions a plain ``open`` would give (``0o666`` less the umask), not
the ``0o600`` of :func:`tempfile.mkstemp`. A full disk, a read-only file system, a directory in the way or a
permission problem is reported as one :class:`OutputError` naming the real output, never the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from stgcn.errors import StgcnError

__all__ = ["OutputError", "temp_path_beside", "atomic_path", "atomic_open", "atomic_write_text",
           "atomic_write_bytes", "sweep_temps", "sweep_dead_temps", "output_error"]

log = logging.getLogger(__name__)

# errors of the destination (not of the data being written): reported naming the output
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EISDIR, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                  errno.EFBIG, errno.ENAMETOOLONG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class OutputError(StgcnError, OSError):
    """An output file that cannot be written (full disk, read-only file system, a directory in the way, no
    permission). An :class:`OSError` too, with the original ``errno``; its message names the output."""


def output_error(path: str | Path, e: OSError) -> OutputError:
    """``e`` (raised while writing ``path`` or its temporary file) as one line naming ``path``."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno == errno.EISDIR or (Path(path).is_dir() and e.errno in (errno.EEXIST, errno.ENOTEMPTY)):
        reason = "it is a directory"
    err = OutputError(f"{path}: cannot write ({reason})")
    err.errno = e.errno
    return err


def _is_output_error(e: BaseException) -> bool:
    return isinstance(e, OSError) and not isinstance(e, OutputError) and e.errno in _OUTPUT_ERRNOS


# what PyTorch's C++ writers (torch.save to a name, torch.jit.save) raise when a write fails (e.g. a full disk)
_WRITER_FAILURES = ("PytorchStreamWriter", "inline_container", "file write failed", "unexpected pos")


def _writer_failure(path: str | Path, e: BaseException) -> OutputError | None:
    if isinstance(e, RuntimeError) and any(s in str(e) for s in _WRITER_FAILURES):
        first = (str(e).strip().splitlines() or [""])[0][:160]
        return OutputError(f"{path}: cannot write (the writer failed, a full disk?: {first})")
    return None


def temp_path_beside(path: str | Path) -> Path:
    """Create an empty temporary file in ``path``'s directory (created if needed), with ``path``'s suffix.

    The caller moves it into place with ``os.replace`` or removes it.

    Raises:
        OutputError: the directory cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_dead_temps(path)
        # the writer's pid in the name: a later writer of the same output removes it if this process dies
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=path.suffix or ".tmp",
                                   dir=path.parent)
    except OSError as e:
        if _is_output_error(e) or isinstance(e, FileExistsError | NotADirectoryError):
            raise output_error(path, e) from None
        raise
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists
        return True
    return True


def _remove_temps(path: Path, doomed: Callable[[Path], bool], whose: str) -> int:
    """Remove the regular files ``.NAME.*`` beside ``path`` for which ``doomed(file)``; their count."""
    removed = 0
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f".{path.name}.*"):
            if tmp.is_file() and not tmp.is_symlink() and doomed(tmp):
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed += 1
    if removed:
        log.debug("removed %d temporary file(s) of %s left by %s", removed, path, whose)
    return removed


def sweep_dead_temps(path: str | Path) -> int:
    """Remove the temporary files beside ``path`` (``.NAME.PID.*``) whose writing process no longer runs: what a
    killed export, render or evaluation left. Safe beside live writers of the same output (their pid is alive);
    older temporary names without a pid are left alone. Returns how many were removed."""
    path = Path(path)

    def dead(tmp: Path) -> bool:
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        return pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid))

    return _remove_temps(path, dead, "dead processes")


def sweep_temps(path: str | Path) -> int:
    """Remove the temporary files a killed writer of ``path`` left beside it (``.NAME.*``); their count.

    Only for outputs no other process writes at the same time (a run directory's files).
    """
    return _remove_temps(Path(path), lambda _tmp: True, "a killed writer")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` when the block succeeds; on error it is removed and
    ``path`` is untouched. For writers that take a file name (matplotlib, torch.jit.save, ffmpeg...).

    Raises:
        OutputError: full disk, read-only file system, ``path`` a directory, no permission.
    """
    tmp = temp_path_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if _is_output_error(e) or (isinstance(e, OSError) and Path(path).is_dir()):
            raise output_error(path, e) from None  # type: ignore[arg-type]
        failure = _writer_failure(path, e)
        if failure is not None:
            raise failure from None
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing (``"w"`` text as UTF-8, or ``"wb"``), flushed to disk and renamed
    over ``path`` when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)
