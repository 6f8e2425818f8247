"""The internal (V, T, N, C) layout helpers of stgcn.ops.layout: views, not copies, and the plain-ops switch."""

from __future__ import annotations

import warnings

import torch

from stgcn.ops.layout import (
    as_image,
    autocast_on,
    from_image,
    from_vtnc,
    kernel_dtype,
    native_bf16,
    plain_ops,
    to_vtnc,
)


def test_round_trips_and_views():
    x = torch.randn(2, 3, 5, 4)  # (N, C, T, V)
    h = to_vtnc(x)
    assert h.shape == (4, 5, 2, 3) and h.is_contiguous()
    assert torch.equal(h, x.permute(3, 2, 0, 1))
    back = from_vtnc(h)
    assert torch.equal(back, x) and back.data_ptr() == h.data_ptr()
    assert to_vtnc(back).data_ptr() == h.data_ptr()  # free for what came out of a block
    image = as_image(h)
    assert image.shape == (4, 3, 5, 2) and image.is_contiguous(memory_format=torch.channels_last)
    assert image.data_ptr() == h.data_ptr()
    again = from_image(image)
    assert again.data_ptr() == h.data_ptr() and torch.equal(again, h)
    dense = from_image(image.contiguous())  # not channels-last: copied back into the layout
    assert dense.is_contiguous() and torch.equal(dense, h)


def test_plain_ops_while_tracing_only():
    seen = []

    def f(t: torch.Tensor) -> torch.Tensor:
        seen.append(plain_ops())
        return t + 1

    assert not plain_ops()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace is deprecated in newer torch
        torch.jit.trace(f, torch.zeros(2), check_trace=False)
    assert seen == [True]


def test_autocast_on():
    assert not autocast_on("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert autocast_on("cpu")


def test_kernel_dtype_is_bfloat16_only_under_cpu_bfloat16_autocast_on_a_cpu_that_multiplies_it(monkeypatch):
    import stgcn.ops.layout

    for native in (True, False):
        monkeypatch.setattr(stgcn.ops.layout, "native_bf16", lambda native=native: native)
        assert kernel_dtype("cpu") is None  # no autocast: the kernels run in their inputs' dtype
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert kernel_dtype("cpu") == (torch.bfloat16 if native else None)
            assert kernel_dtype("cuda") is None
        with torch.autocast("cpu", dtype=torch.float16):
            assert kernel_dtype("cpu") is None  # float16 on a CPU: standard ops under autocast
    assert isinstance(native_bf16(), bool)
