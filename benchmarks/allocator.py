"""The C allocator's part in CPU timings: page faults per call, and glibc told to keep freed memory.

PyTorch's CPU tensors come from ``malloc``. glibc serves a request above its mmap threshold (128 KiB, raised
dynamically up to 32 MiB as such blocks are freed) with a fresh ``mmap`` and gives it back to the kernel on
``free``, so a model whose tensors exceed 32 MiB touches fresh pages, one page fault per 4 KiB, on every call.
The original structure's K-times larger 1x1-convolution outputs do (on the development machine the 2-D recipe's
training step at batch 16 faulted about 350,000 times, NTU-300 inference at batch 16 about 3 million times per
call); our fused model's smaller tensors come from the heap and are reused. Because the threshold only rises,
whether a mid-sized block faults also depends on what the process freed before. How much a fault costs depends
on the machine (a virtual machine that hands freed pages back to its host pays more than bare metal), so the
benchmarks count them (:func:`minor_faults`) and can time both ways: glibc's default behaviour, what a user of
either model gets, and ``--allocator keep`` (:func:`keep_freed_memory`), which takes nearly all of them out
(the grid's baseline training steps: from 36,000-490,000 faults to at most 560) and leaves the compute.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["ALLOCATORS", "keep_freed_memory", "minor_faults", "set_allocator"]

log = logging.getLogger(__name__)

ALLOCATORS = ("default", "keep")

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def minor_faults() -> int | None:
    """Minor page faults of this process so far (``getrusage``), ``None`` where the platform has none."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def keep_freed_memory() -> bool:
    """Tell glibc to serve every block from its heap (no per-block ``mmap``) and never trim the heap: freed
    memory is reused by later calls instead of being faulted in again, once the heap has grown to a call's
    pattern of blocks (a few calls; the first ones still fault, and now and then a small block left in the freed
    space makes one call grow the heap again). Process-wide and one-way, for benchmarks only.

    Returns:
        Whether it took effect (``False`` where the C library is not glibc).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.warning("no glibc mallopt here: the allocator is left as it is")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if not done:
        log.warning("glibc refused mallopt: the allocator is left as it is")
    return done


def set_allocator(mode: str) -> str:
    """Apply one of :data:`ALLOCATORS`; returns what is in force (``"default"`` if ``keep`` failed)."""
    if mode not in ALLOCATORS:
        raise ValueError(f"unknown allocator mode {mode!r}; valid modes are {', '.join(ALLOCATORS)}")
    if mode == "keep" and keep_freed_memory():
        return "keep"
    return "default"
