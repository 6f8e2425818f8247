"""Shared fixtures. Real data lives in ../shared/data beside the repo; tests that need it skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``, or skip the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def one_thread():
    """Every test starts on one thread: on several threads short inputs run the original structure
    (:func:`stgcn.ops.dispatch.layout_rule`), and the tests of the internal layout's kernels use short inputs.
    Tests of the several-thread rules set the thread count themselves; it is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
