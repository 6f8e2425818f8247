"""Shape-aware choice among kernels that compute the same thing: rules, per-shape autotuning, pins.

Each module of :mod:`stgcn.models.stgcn` and :mod:`stgcn.inference.optimize` that has several kernels keeps a
:class:`KernelCache` and decides in one method (``GraphConv._path``, ``TemporalConv._kernel``,
``FusedBlock._graph_path`` / ``_temporal_kernel``) with :func:`choose`:

1. A pin wins: the module's ``kernel`` attribute (``None`` by default), validated against the kernel names
   (:data:`GRAPH_KERNELS`, :data:`TEMPORAL_KERNELS`). :func:`pin_kernels` sets them on a whole model.
2. Otherwise the choice is looked up per key (shape, dtype, device, thread count, autograd), made once:
   - ``dispatch == "auto"`` (opt-in, like cuDNN's benchmark mode; the first call of a shape then costs
     several calls' time) and a call large enough to time reliably (at least
     :data:`AUTOTUNE_MIN_FLOPS`), in inference (no autograd), outside tracing/export/compilation: every
     candidate is timed (one warm-up call, then the best of ``AUTOTUNE_REPEATS``) and the fastest kept, as
     cuDNN's benchmark mode does. The rule's choice is kept unless another candidate is at least
     :data:`AUTOTUNE_MARGIN` faster (no flip-flopping on noise).
   - otherwise (``dispatch == "rules"``, the default, small calls, and every training step) a deterministic
     rule on the shapes (for the graph convolution of the model and the fused model alike:
     :func:`graph_kernel_rule`). Training never times: a run's kernels, and so its float rounding, depend only
     on the shapes, which keeps a resumed or repeated run bit-identical.

Every candidate computes the same values (float rounding aside) with no side effects (no BatchNorm
statistics, no random numbers), so a choice changes speed only. Nothing here is global: the caches live on
the modules (not in ``state_dict``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from stgcn.errors import ConfigError
from stgcn.ops.layout import autocast_on, is_compiling, kernel_dtype, plain_ops

__all__ = ["GRAPH_KERNELS", "TEMPORAL_KERNELS", "DISPATCH_MODES", "AUTOTUNE_MIN_FLOPS", "AUTOTUNE_REPEATS",
           "AUTOTUNE_MARGIN", "KernelCache", "check_kernel", "check_mode", "check_layout", "LayoutPin",
           "time_candidates", "choose",
           "pin_kernels", "set_dispatch", "dispatch_report", "shape_key", "graph_kernel_rule",
           "TRAIN_PAIRS_MIN_ROWS", "INFERENCE_PAIRS_MIN_ROWS", "NCTV_MAX_ROWS", "LOWP_TRAIN_MIN_WORK", "LAYOUTS",
           "layout_rule", "choose_layout"]

GRAPH_KERNELS = ("pairs", "pairs-batched", "mix-first", "project-first")
TEMPORAL_KERNELS = ("tiled", "direct")
DISPATCH_MODES = ("auto", "rules")
LAYOUTS = ("vtnc", "nctv")
AUTOTUNE_MIN_FLOPS = 2e7  # below this a call takes well under a millisecond: timing would be noise
AUTOTUNE_REPEATS = 3
AUTOTUNE_MARGIN = 0.05
# The graph-convolution rule's thresholds, in (frame, sample) rows per joint (T * N * M of the call); see
# graph_kernel_rule. With autograd: the per-pair kernel from this many rows, below it mix-first (forward + backward,
# benchmarks/results/train_small.md: per-pair 1.2-1.6x faster than batched at 208-3200 rows; at 13-104 rows
# of 128-256 channels mix-first 1.2-3.7x faster than either, its 3 weight matrices against ~3V pair matrices).
TRAIN_PAIRS_MIN_ROWS = 192
# Without autograd: the per-pair kernel from this many rows per thread, below it the dense kernels (graph_kernel_rule).
INFERENCE_PAIRS_MIN_ROWS = 128
# On several CPU threads, inputs with fewer (frame, sample) rows per joint run the original structure (layout_rule).
NCTV_MAX_ROWS = 192
# Training under bfloat16 autocast with our kernels in bfloat16 (layout_rule's lowp): the internal layout from this
# many (frame, sample) rows per joint x the first block's channels, the original structure below
# (benchmarks/results/bf16_widths.json: the original faster at 16,384, ours at 26,624 and above).
LOWP_TRAIN_MIN_WORK = 20000

Timer = Callable[[], float]


def check_kernel(name: str | None, valid: Iterable[str], what: str) -> str | None:
    """``name`` if it is None or one of ``valid``, else ConfigError listing the valid names."""
    valid = tuple(valid)
    if name is not None and name not in valid:
        raise ConfigError(f"unknown {what} kernel {name!r}; valid kernels are {', '.join(valid)} (or None)")
    return name


def check_mode(mode: str) -> str:
    """``mode`` if it is a dispatch mode, else ConfigError listing them."""
    if mode not in DISPATCH_MODES:
        raise ConfigError(f"unknown dispatch mode {mode!r}; valid modes are {', '.join(DISPATCH_MODES)}")
    return mode


def check_layout(layout: str | None) -> str | None:
    """``layout`` if it is None (the rule) or one of :data:`LAYOUTS`, else ConfigError listing them."""
    if layout is not None and layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; valid layouts are {', '.join(LAYOUTS)} (or None: the rule)")
    return layout


class LayoutPin:
    """The ``layout`` attribute of :class:`~stgcn.models.stgcn.STGCN` and
    :class:`~stgcn.inference.optimize.FusedSTGCN`: ``None`` (:func:`layout_rule` decides per call) or a pinned
    layout, validated when set (:func:`check_layout`)."""

    _layout: str | None = None

    @property
    def layout(self) -> str | None:
        return self._layout

    @layout.setter
    def layout(self, layout: str | None) -> None:
        self._layout = check_layout(layout)


class KernelCache:
    """A module's kernel choices per key, and the timings that made them (for reports and benchmarks)."""

    def __init__(self) -> None:
        self.choices: dict[tuple, str] = {}
        self.timings: dict[tuple, dict[str, float]] = {}

    def clear(self) -> None:
        self.choices.clear()
        self.timings.clear()

    def __getstate__(self) -> dict[str, Any]:  # a deep copy or pickle starts afresh (device, threads may differ)
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()


def shape_key(x: torch.Tensor, *extra: object) -> tuple:
    """Key of a choice: shape, dtype, device, thread count and whatever else the caller adds."""
    return (tuple(x.shape), x.dtype, x.device.type, torch.get_num_threads(), *extra)


def layout_rule(device_type: str, *, compiling: bool, rows: int | None = None, threads: int | None = None,
                autocast: bool = False, grad: bool = False, lowp: bool = False, channels: int | None = None) -> str:
    """The activation layout (one of :data:`LAYOUTS`), the first choice a forward pass of
    :class:`~stgcn.models.stgcn.STGCN` or :class:`~stgcn.inference.optimize.FusedSTGCN` makes, before any kernel:
    ``"vtnc"`` (the internal layout and the kernels this module chooses among) or ``"nctv"`` (the original
    structure: (N*M, C, T, V) tensors and standard ops, for the fused model its folded weights).

    - Not on CPU, or under ``torch.compile``: ``"nctv"``. On one NVIDIA H200 (torch 2.11, fp32,
      ``python -m benchmarks.gpu``) the internal layout trained at 0.64-0.75x the original structure at batch 16
      (NW-UCLA (16, 3, 52, 20, 1) and the 2-D recipe's (16, 3, 100, 17, 2)) and inferred at 1.00-1.18x: cuDNN and
      cuBLAS are fastest on the layout they are tuned for, and the CPU kernels' custom autograd functions add
      launches. Under ``torch.compile`` the internal layout's caches and data-dependent joint-pair lists break
      the graph (dynamo recompiled per block and hit its recompile limit); the original structure is one graph.
    - On CPU with several threads and fewer than :data:`NCTV_MAX_ROWS` (frame, sample) rows per joint in the
      input (T * N * M: one short clip, a 150-frame streaming window of one person): ``"nctv"``. The internal
      layout's many small products each pay a parallel region's start and join, while the original structure's
      few large oneDNN convolutions split well over the threads. Measured on 2 threads (idle machine, ratios
      to the baseline, median of 7 interleaved rounds, two runs): one 52-frame NW-UCLA clip, fused model 1.09-1.20x
      on the original layout against 0.95-1.16x on the internal one; a 150-frame window 1.06-1.19x against
      0.89-1.21x; from 200 rows the internal layout was ahead (a 100-frame window of 2 persons 1.24x against
      1.13-1.14x, one Kinetics clip 1.39x against 1.11x, one NTU clip 1.81x against 1.15x). A training step on
      4-8 NW-UCLA clips (208-416 rows) was at parity either way (0.94-0.98x), on 16 clips 1.25x internal
      against 0.96x original.
    - On CPU, training under autocast (``train.cpu_bf16``; ``grad``: a training-mode forward pass with
      autograd) where the hand-written kernels step aside (``lowp`` False: autocast to float16, or a CPU
      without native bfloat16, :func:`~stgcn.ops.layout.kernel_dtype`): ``"nctv"``. Autocast does not cover
      the internal layout's in-place products and custom autograd functions, so there it runs standard ops on
      its layout, where oneDNN's convolutions of the original structure are faster: a training step on one
      thread (ratios to the baseline under the same autocast, median of 3 interleaved rounds) NW-UCLA
      (16, 3, 52, 20, 1) 0.72x internal against 0.98x original, the 2-D recipe's (16, 3, 100, 17, 2) 0.96x
      against 1.00x. Where the kernels run in bfloat16 themselves (``lowp``: autocast to bfloat16 on a CPU
      with AVX512-BF16 or AMX): ``"nctv"`` below :data:`LOWP_TRAIN_MIN_WORK` rows x ``channels`` (the first
      block's), else the rule below: narrow or short inputs do better on oneDNN's bfloat16 convolutions. A
      training step on one thread of such a host (``python -m benchmarks.bf16_widths``; ratios to the float32
      baseline, median of 5 interleaved rounds), internal against original, NW-UCLA clips at batch 16: full
      width (64 channels first) 2.01x against 1.93x at 32 frames (512 rows: 32,768), 2.22x against 1.93x at
      52; half width 1.72x against 1.79x at 32 frames (16,384), 1.94x against 1.79x at 52 (26,624); the
      small-dataset recipe's quarter width 1.17x against 1.64x at 32 frames (8,192), 1.45x against 1.72x at 52.
      The grid's NW-UCLA batch 16: 2.35x against 1.93x; the 2-D recipe's batch 16: 3.31x against 2.14x.
    - Otherwise (CPU, one thread, or enough rows): ``"vtnc"``.

    Args:
        device_type: ``x.device.type``.
        compiling: Whether ``torch.compile`` is tracing.
        rows: T * N * M of the model's input (None: not known, the internal layout on CPU).
        threads: The thread count (None: ``torch.get_num_threads()``).
        autocast: Whether autocast is on for ``device_type``.
        grad: Whether the forward pass is a training step (training mode, autograd on).
        lowp: Whether, under autocast, the hand-written kernels run in a lower precision themselves
            (:func:`~stgcn.ops.layout.kernel_dtype` is not None).
        channels: The first block's output channels (None: not known, taken as wide enough).
    """
    if device_type != "cpu" or compiling or (autocast and grad and not lowp):
        return "nctv"
    if autocast and grad and rows is not None and channels is not None and rows * channels < LOWP_TRAIN_MIN_WORK:
        return "nctv"
    threads = torch.get_num_threads() if threads is None else threads
    if threads > 1 and rows is not None and rows < NCTV_MAX_ROWS:
        return "nctv"
    return "vtnc"


def choose_layout(cache: KernelCache, pin: str | None, x: torch.Tensor, rows: int, training: bool = False,
                  channels: int | None = None) -> str:
    """The layout of a model's forward pass: the pin (the model's ``layout``), else :func:`layout_rule`,
    recorded in ``cache`` for :func:`dispatch_report` (not while compiling, where the rule is re-evaluated).
    ``training``: the model is in training mode (with autograd on, a training step); ``channels``: its first
    block's output channels.

    Shape:
        x: the model's input (N, C, T, V, M); ``rows`` its T * N * M.
    """
    if pin is not None:
        return pin
    compiling = is_compiling()
    layout = layout_rule(x.device.type, compiling=compiling, rows=rows, autocast=autocast_on(x.device.type),
                         grad=training and torch.is_grad_enabled(), lowp=kernel_dtype(x.device.type) is not None,
                         channels=channels)
    if not compiling:
        cache.choices[shape_key(x, "layout")] = layout
    return layout


def graph_kernel_rule(rows: int, c_in: int, c_out: int, *, sparse: bool, cpu: bool, grad: bool) -> str:
    """The graph-convolution kernel the rules choose (one of :data:`GRAPH_KERNELS`), for
    :class:`~stgcn.models.layers.GraphConv` and :class:`~stgcn.inference.optimize.FusedBlock` alike.

    The rule keys on ``rows``, the (frame, sample) rows per joint: each of the per-pair kernel's ~3V small
    (rows x C_in) @ (C_in x C_out) products has a fixed per-call cost that only enough rows pay back; the
    dense kernels do the same multiplications in two large products but write a K-times larger tensor.

    - With autograd (training: a run's float rounding depends on the shapes only) on CPU for a sparse graph (at
      most 2*K*V connected joint pairs): the per-pair kernel from :data:`TRAIN_PAIRS_MIN_ROWS` rows, below it
      mix-first. (Earlier versions took the batched per-pair kernel up to 1024 rows on several threads, from
      measurements on a loaded machine; on the idle machine, 2 threads, the one-thread rules trained 1.3x
      faster at NW-UCLA batch 16 and 1.5x at the 2-D recipe's.) Otherwise (GPU, dense graph) mix-first (its
      backward is cheaper and can recompute).
    - Without autograd (inference) on CPU for a sparse graph: the per-pair kernel from
      :data:`INFERENCE_PAIRS_MIN_ROWS` rows per thread, below it mix-first (or project-first when C_in > C_out).
      Measured per block on the idle machine (the fused block's graph convolution, 64/128/256 channels,
      OpenPose-18 and Kinect-v1 graphs, median of 7): on one thread mix-first was 5-35% faster up to 75-100
      rows and the per-pair kernel faster from 150 (1.1-1.8x from 300, 2x at 1600: it reads ~3V weight
      matrices, which only enough rows pay back); on two threads the crossing was at about 200 rows (64
      channels: 300). Whole fused model against the earlier threshold (64 rows at any thread count), same
      process: on one thread within noise (streaming windows, one Kinetics clip: 0.97-1.01x), on two threads
      a 100-frame window of 2 persons 1.38x -> 1.46x and one Kinetics clip 1.46x -> 1.57x the baseline. More
      than 2 threads were not measured (the rows-per-thread form is the assumption).
      The batched variant was slower than the plain one at every inference shape measured.
    - Otherwise (a GPU, a dense graph): mix-first when C_in < C_out, else project-first: the K-times larger
      tensor on the side with fewer channels.

    Args:
        rows: (frame, sample) rows per joint of the call: T * N * M.
        c_in: Input channels.
        c_out: Output channels.
        sparse: Whether the graph is sparse enough for the per-pair kernels.
        cpu: Whether the call runs on CPU (the per-pair kernels are for CPU).
        grad: Whether autograd records the call.
    """
    if grad:
        if sparse and cpu:
            return "pairs" if rows >= TRAIN_PAIRS_MIN_ROWS else "mix-first"
        return "mix-first"
    if sparse and cpu:
        if rows >= INFERENCE_PAIRS_MIN_ROWS * torch.get_num_threads():
            return "pairs"
        return "mix-first" if c_in <= c_out else "project-first"
    return "mix-first" if c_in < c_out else "project-first"


def time_candidates(candidates: dict[str, Callable[[], Any]], repeats: int = AUTOTUNE_REPEATS,
                    timer: Timer = time.perf_counter) -> dict[str, float]:
    """Seconds per call of each candidate: one warm-up call each, then the best of ``repeats`` interleaved
    rounds (interleaving spreads a busy machine's stalls over all candidates)."""
    for fn in candidates.values():
        fn()
    best = {name: float("inf") for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = timer()
            fn()
            best[name] = min(best[name], timer() - start)
    return best


def choose(cache: KernelCache, key: tuple, pin: str | None, rule: str,
           candidates: Callable[[], dict[str, Callable[[], Any]]] | None, timer: Timer = time.perf_counter) -> str:
    """The kernel for ``key``: the pin, else the cached choice, else the rule or (``candidates`` given and not
    tracing) the fastest candidate, cached.

    Args:
        cache: The module's cache.
        key: See :func:`shape_key`.
        pin: The module's pinned kernel or None.
        rule: The deterministic choice.
        candidates: None to use the rule; else builds ``{kernel name: call}`` to time (only when needed).
        timer: Clock (tests pass a fake one).
    """
    if pin is not None:
        return pin
    choice = cache.choices.get(key)
    if choice is not None:
        return choice
    if candidates is None or plain_ops():
        choice = rule
    else:
        fns = candidates()
        if len(fns) < 2:
            choice = next(iter(fns), rule)
        else:
            times = time_candidates(fns, timer=timer)
            cache.timings[key] = times
            fastest = min(times, key=lambda name: times[name])
            keep = rule in times and times[fastest] > (1 - AUTOTUNE_MARGIN) * times[rule]
            choice = rule if keep else fastest
    cache.choices[key] = choice
    return choice


def _dispatch_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(getattr(m, "kernel_cache", None), KernelCache)]


def set_dispatch(model: nn.Module, mode: str) -> None:
    """Set ``dispatch`` (``"auto"`` or ``"rules"``) on every dispatching module of ``model`` and forget the
    choices made so far."""
    check_mode(mode)
    for m in _dispatch_modules(model):
        m.dispatch = mode
        m.kernel_cache.clear()


def pin_kernels(model: nn.Module, graph: str | None = None, temporal: str | None = None) -> None:
    """Pin the graph convolution (one of :data:`GRAPH_KERNELS`) and/or the temporal convolution (one of
    :data:`TEMPORAL_KERNELS`) of every block of ``model`` (an STGCN or a fused model); ``None`` unpins.

    Raises:
        ConfigError: an unknown kernel name.
    """
    check_kernel(graph, GRAPH_KERNELS, "graph convolution")
    check_kernel(temporal, TEMPORAL_KERNELS, "temporal convolution")
    for m in _dispatch_modules(model):
        kinds = getattr(m, "kernel_kinds", ())
        if "graph" in kinds:
            m.graph_kernel = graph
        if "temporal" in kinds:
            m.temporal_kernel = temporal
        m.kernel_cache.clear()


def dispatch_report(model: nn.Module) -> dict[str, list[str]]:
    """The kernels each dispatching module chose so far, by module name: ``["shape -> kernel", ...]``; under the
    model's own name (``""``) the layouts its forward passes took (``"(N, C, T, V, M) layout -> nctv"``)."""
    report: dict[str, list[str]] = {}
    for name, m in model.named_modules():
        for attr in ("layout_cache", "kernel_cache"):  # a model's layout (name "" for the top module), kernels
            cache = getattr(m, attr, None)
            if isinstance(cache, KernelCache) and cache.choices:
                report.setdefault(name, []).extend(f"{key[0]} {'/'.join(str(k) for k in key[4:])} -> {choice}"
                                                   for key, choice in cache.choices.items())
    return report
