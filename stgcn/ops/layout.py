"""The internal (V, T, N, C) activation layout and the switches that choose standard ops over fast kernels.

The ST-GCN modules take and return (N, C, T, V) tensors, but inside the network the activations are stored as
(V, T, N, C) contiguous (joint-major, then time, channels last) and handed from block to block as permuted
views of that memory, never copied. In that layout the joint mixing is one matrix product over V, the 1x1
convolutions are matrix products over C, each frame of a joint is one contiguous (N*C) row for the tiled
temporal convolution (:mod:`stgcn.ops.tiled_conv`), and BatchNorm and the other convolutions see a
channels-last (V, C, T, N) "image" whose height is time (oneDNN's fast path on CPU).
"""

from __future__ import annotations

import functools

import torch

__all__ = ["to_vtnc", "from_vtnc", "as_image", "from_image", "is_compiling", "plain_ops", "autocast_on",
           "native_bf16", "kernel_dtype"]


def to_vtnc(x: torch.Tensor) -> torch.Tensor:
    """The internal layout of a module input; free for tensors that came out of a block.

    Shape:
        x: (N, C, T, V); output: (V, T, N, C) contiguous.
    """
    h = x.permute(3, 2, 0, 1)
    return h if h.is_contiguous() else h.contiguous()


def from_vtnc(h: torch.Tensor) -> torch.Tensor:
    """The same memory viewed in the modules' public layout (no copy).

    Shape:
        h: (V, T, N, C); output: (N, C, T, V).
    """
    return h.permute(2, 3, 1, 0)


def as_image(h: torch.Tensor) -> torch.Tensor:
    """The internal layout viewed as a channels-last image whose height is time (no copy).

    Shape:
        h: (V, T, N, C) contiguous; output: (V, C, T, N) channels-last.
    """
    return h.permute(0, 3, 1, 2)


def from_image(y: torch.Tensor) -> torch.Tensor:
    """Back from the image view; a view (no copy) when ``y`` is channels-last.

    Shape:
        y: (V, C, T, N); output: (V, T, N, C) contiguous.
    """
    h = y.permute(0, 2, 3, 1)
    return h if h.is_contiguous() else h.contiguous()


def is_compiling() -> bool:
    """Whether ``torch.compile`` (dynamo) is tracing the current call."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


def plain_ops() -> bool:
    """True while tracing, scripting, exporting or compiling: use only standard aten ops then."""
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
        return True
    return is_compiling()


def autocast_on(device_type: str) -> bool:
    """Whether autocast is enabled for ``device_type`` (hand-written kernels step aside under autocast)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX): there bfloat16 products run about
    1.5-3x as fast as float32 ones (one thread, AVX512-BF16 host: (832 x 64) @ (64 x 64) 148 against 95
    GFLOP/s, batched (47 x 960 x 64) @ (47 x 64 x 64) 213 against 69); elsewhere they are emulated and slower."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def kernel_dtype(device_type: str) -> torch.dtype | None:
    """The dtype the hand-written CPU kernels run in under autocast, or None where they step aside.

    Autocast does not reach inside custom autograd Functions or in-place products, so under autocast a module
    either leaves its hand-written kernels for standard ops (None) or casts their inputs and weights itself and
    runs them with autocast off: ``torch.bfloat16`` when autocast to bfloat16 is on for the CPU and the CPU
    multiplies bfloat16 natively (:func:`native_bf16`). None without autocast (the inputs' dtype is used).
    """
    if device_type != "cpu" or not autocast_on("cpu") or not native_bf16():
        return None
    try:
        dtype = torch.get_autocast_dtype("cpu")
    except (AttributeError, TypeError):  # torch < 2.4
        dtype = torch.get_autocast_cpu_dtype()
    return dtype if dtype == torch.bfloat16 else None
