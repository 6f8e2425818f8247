"""benchmarks.thread_states: what one child process reports, and its option checks."""

from __future__ import annotations

import pytest


def test_thread_states_child_reports_models_and_products() -> None:
    from benchmarks.thread_states import child

    r = child("ucla-b1", threads=1, calls=1)
    products = {f"{name}{suffix}_us" for name in ("transform", "pair", "channel") for suffix in ("", "_1thread")}
    assert set(r) == {"stgcn-fused_clips_per_s", "stgcn-fused[nctv]_clips_per_s", "baseline_clips_per_s", *products}
    assert all(value > 0 for value in r.values())


def test_thread_states_rejects_env_without_value() -> None:
    from benchmarks.thread_states import main

    with pytest.raises(SystemExit) as exc:
        main(["--env", "MKL_DYNAMIC"])
    assert exc.value.code == 2
