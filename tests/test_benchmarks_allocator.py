"""benchmarks.allocator: page faults are counted, and ``keep`` makes glibc reuse freed memory; the grid's
allocator comparison table."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.allocator import minor_faults, set_allocator
from benchmarks.grid import compare_table

resource = pytest.importorskip("resource")  # page-fault counts exist on Unix only

MB64 = 64 << 20


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (the allocator setting is process-wide) and parse its JSON."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_minor_faults_counts_fresh_pages() -> None:
    import mmap

    pages = MB64 // mmap.PAGESIZE
    buf = mmap.mmap(-1, MB64)
    before = minor_faults()
    for i in range(0, MB64, mmap.PAGESIZE):
        buf[i] = 1
    after = minor_faults()
    buf.close()
    assert after - before >= pages // 2  # huge pages may serve some; most are 4 KiB faults


_REPEATED_CALL = """
    import json, torch
    from benchmarks.allocator import minor_faults, set_allocator
    mode = set_allocator({mode!r})

    def call():  # a model call's pattern: blocks of several sizes live at once, all freed at the end
        live = [torch.empty(mb << 18).fill_(1.0) for mb in (40, 24, 56, 8)]
        return sum(float(t[0]) for t in live)

    for _ in range(5):  # the heap reaches its steady state
        call()
    faults = []
    for _ in range(7):
        start = minor_faults()
        call()
        faults.append(minor_faults() - start)
    # the median: now and then a small block left in the freed space makes glibc grow the heap once more
    print(json.dumps({{"mode": mode, "faults": sorted(faults)[len(faults) // 2]}}))
"""


def test_default_allocator_faults_large_blocks_again_keep_does_not() -> None:
    import mmap

    large_pages = (40 + 56) * (1 << 20) // mmap.PAGESIZE  # the blocks above glibc's 32 MiB mmap ceiling
    all_pages = (40 + 24 + 56 + 8) * (1 << 20) // mmap.PAGESIZE
    default = _run(_REPEATED_CALL.format(mode="default"))
    keep = _run(_REPEATED_CALL.format(mode="keep"))
    assert default["mode"] == "default"
    if keep["mode"] != "keep":
        pytest.skip("the C library is not glibc")
    assert default["faults"] >= large_pages // 2  # a fresh mmap per large block, every call
    assert keep["faults"] <= all_pages // 10  # the heap's pages are reused


def test_set_allocator_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="valid modes are default, keep"):
        set_allocator("jemalloc")


def _run_entry(fused: float | None, train: float | None, faults_inf: float, faults_train: float) -> dict:
    entry: dict = {"input": [16, 3, 100, 17, 2]}
    if fused is not None:
        entry["inference"] = {"baseline": {"page_faults_per_call": faults_inf},
                              "stgcn-fused": {"ratio_vs_baseline": {"median": fused}}}
    if train is not None:
        entry["training"] = {"baseline": {"page_faults_per_call": faults_train},
                             "stgcn": {"ratio_vs_baseline": {"median": train}}}
    return entry


def test_compare_table_pairs_the_runs() -> None:
    default = {"runs": {"threads_1": {"coco2d-b16": _run_entry(2.01, 1.93, 132609, 295777),
                                      "ucla-b1": _run_entry(1.3, None, 0, 0)}}}
    keep = {"runs": {"threads_1": {"coco2d-b16": _run_entry(1.68, 1.61, 10, 20)}}}
    rows = compare_table(default, keep).splitlines()
    assert rows[2] == "| 1 | coco2d-b16 (16, 3, 100, 17, 2) | 132,609 | 2.01× / 1.68× | 295,777 | 1.93× / 1.61× |"
    assert rows[3] == "| 1 | ucla-b1 (16, 3, 100, 17, 2) | 0 | 1.30× / — | — | — / — |"  # not in the keep run

