"""The internal (V, T, N, C) activation layout and the switches that choose standard ops over fast kernels.

The ST-GCN modules take and return (N, C, T, V) tensors, but inside the network the activations are stored as
(V, T, N, C) contiguous (joint-major, then time, channels last) and handed from block to block as permuted
views of that memory, never copied. In that layout the joint mixing is one matrix product over V, the 1x1
convolutions are matrix products over C, each frame of a joint is one contiguous (N*C) row for the tiled
temporal convolution (:mod:`stgcn.ops.tiled_conv`), and BatchNorm and the other convolutions see a
channels-last (V, C, T, N) "image" whose height is time (oneDNN's fast path on CPU).
"""

from __future__ import annotations

import torch

__all__ = ["to_vtnc", "from_vtnc", "as_image", "from_image", "is_compiling", "plain_ops", "autocast_on"]


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
