"""``stgcn prepare``: convert a source dataset into a dataset store.

:func:`prepare` asks the format's reader for a :class:`~stgcn.data.readers.base.SourcePlan`, maps its work units over
worker processes (in order, with a bounded number in flight, so memory stays bounded whatever the dataset
size) and streams the clips into a :class:`~stgcn.data.store.StoreWriter`, which makes the store appear
atomically at the end. Samples a reader skips on purpose (a published list of broken samples, an all-zero
sequence) are logged as warnings and counted in the manifest (``counts.skipped``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from stgcn.data.readers import FORMATS
from stgcn.data.readers.base import DatasetFormat, Skipped, SourcePlan
from stgcn.data.store import DTYPES, SkeletonStore, StoreWriter
from stgcn.errors import ConfigError
from stgcn.utils.checks import check_int
from stgcn.utils.limits import MAX_WORKERS

__all__ = ["PREPARE_FORMATS", "prepare", "plan_source"]

log = logging.getLogger(__name__)

# format name -> its declaration (name, help, options, plan function; see stgcn.data.readers)
PREPARE_FORMATS: dict[str, DatasetFormat] = {f.name: f for f in FORMATS}


def plan_source(fmt: str, src: str | Path, **options: Any) -> SourcePlan:
    """The conversion plan of ``src`` read as format ``fmt``.

    The options are checked against the format's declared options (:class:`~stgcn.data.readers.base.ReaderOption`)
    before the reader's plan function sees them; options not given take their declared defaults.

    Raises:
        ConfigError: unknown format (the message lists the valid ones), an option the format does not declare
            (the message lists the valid ones) or a value of the wrong type or choice (the message names it).
    """
    if fmt not in PREPARE_FORMATS:
        raise ConfigError(f"unknown dataset format {fmt!r}; valid formats are {', '.join(PREPARE_FORMATS)}")
    declared = PREPARE_FORMATS[fmt]
    return declared.plan(src, **declared.check_options(options))


def _ordered_map(fn: Callable[[Any], Any], units: Iterable[Any], workers: int, window: int) -> Iterator[Any]:
    """``map(fn, units)`` in order over ``workers`` processes with at most ``window`` units in flight."""
    if workers <= 1:
        for unit in units:
            yield fn(unit)
        return
    it = iter(units)
    with multiprocessing.get_context().Pool(workers) as pool:
        pending: deque = deque(pool.apply_async(fn, (u,)) for _, u in zip(range(window), it, strict=False))
        while pending:
            result = pending.popleft().get()
            for unit in it:
                pending.append(pool.apply_async(fn, (unit,)))
                break
            yield result


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        log.warning("no progress bar: tqdm is not installed (pip install 'stgcn[data]')")
        return None
    return tqdm(total=total, desc=desc, unit="file", dynamic_ncols=True)


def prepare(
    fmt: str,
    src: str | Path,
    out: str | Path,
    *,
    dtype: str = "float32",
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **options: Any,
) -> SkeletonStore:
    """Convert ``src`` (format ``fmt``) into a dataset store at ``out``.

    Args:
        fmt: Source format, one of :data:`PREPARE_FORMATS`.
        src: Source file or folder.
        out: Store directory to create.
        dtype: ``float32`` or ``float16``.
        workers: Worker processes (default: the CPU count, at most 8; 0 or 1: in this process).
        overwrite: Replace an existing store at ``out``.
        progress: Show a tqdm progress bar (needs the ``data`` extra; without it, no bar).
        **options: Format options, as the format declares them (the reader module's ``FORMAT``).

    Returns:
        The opened store.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not valid; valid dtypes are {', '.join(DTYPES)}")
    plan = plan_source(fmt, src, **options)
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    workers = min(check_int(workers, "workers", minimum=0, maximum=MAX_WORKERS), len(plan.units))
    total = sum(len(u) if isinstance(u, list) else 1 for u in plan.units)
    bar = _progress(total, progress, f"prepare {fmt}")
    skipped: dict[str, str] = {}
    try:
        with StoreWriter(out, plan.layout, plan.channels, plan.class_names, dtype,
                         num_persons=plan.num_persons, overwrite=overwrite) as writer:
            for unit, records in zip(plan.units, _ordered_map(plan.work, plan.units, workers, 4 * max(workers, 1)),
                                     strict=True):
                for rec in records:
                    if isinstance(rec, Skipped):
                        log.warning("%s: skipped (%s)", rec.name, rec.reason)
                        skipped[rec.name] = rec.reason
                    else:
                        writer.add(rec.name, rec.keypoints, rec.label, rec.splits)
                if bar is not None:
                    bar.update(len(unit) if isinstance(unit, list) else 1)
            counts = dict(plan.counts)
            counts["skipped"] = len(skipped)
            counts["skipped_samples"] = skipped
            source = dict(plan.source)
            source.setdefault("format", fmt)
            return writer.finish(plan.splits, source=source, counts=counts)
    finally:
        if bar is not None:
            bar.close()
