"""benchmarks.grid's README table: one row per (threads, point), the bf16 column only where it was timed."""

from __future__ import annotations

from benchmarks.grid import markdown_table


def _ratio(median: float) -> dict:
    return {"ratio_vs_baseline": {"median": median, "min": median - 0.1, "max": median + 0.1}}


def _point(bf16: bool) -> dict:
    inference = {"baseline": {"clips_per_s": {"median": 40.0}}, "stgcn": _ratio(1.5), "stgcn-fused": _ratio(1.6)}
    if bf16:
        inference["stgcn-fused-bf16"] = _ratio(2.2)
    return {"input": [16, 3, 52, 20, 1], "inference": inference}


def test_markdown_table_without_bf16() -> None:
    rows = markdown_table({"runs": {"threads_1": {"ucla-b16": _point(False)}}}).splitlines()
    assert rows[0].count("|") == 8 and "bf16" not in rows[0]
    assert rows[2] == "| 1 | ucla-b16 (16, 3, 52, 20, 1) | 40.00 | 1.50× [1.40-1.60] | 1.60× [1.50-1.70] | — | — |"


def test_markdown_table_with_bf16_column() -> None:
    runs = {"threads_1": {"ucla-b16": _point(True)}, "threads_2": {"ucla-b16": _point(False)}}
    rows = markdown_table({"runs": runs}).splitlines()
    assert "stgcn-fused-bf16" in rows[0] and rows[0].count("|") == rows[1].count("|") == 9
    assert rows[2] == ("| 1 | ucla-b16 (16, 3, 52, 20, 1) | 40.00 | 1.50× [1.40-1.60] | 1.60× [1.50-1.70] | "
                       "2.20× [2.10-2.30] | — | — |")
    assert rows[3].endswith("| 1.60× [1.50-1.70] | — | — | — |")  # not timed on 2 threads
