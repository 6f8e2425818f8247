"""The layers of an ST-GCN block: the graph convolution, the temporal convolution, the residual projection.

Each layer runs on the internal (V, T, N, C) layout of :mod:`stgcn.ops.layout` and chooses its kernel per
input shape in one method (``GraphConv._path``, ``TemporalConv._kernel``) by the rules, autotuning and pins
of :mod:`stgcn.ops.dispatch`; the kernels are in :mod:`stgcn.ops`. The block and the network that use them
are in :mod:`stgcn.models.stgcn`.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.ops.dispatch import (
    AUTOTUNE_MIN_FLOPS,
    GRAPH_KERNELS,
    TEMPORAL_KERNELS,
    KernelCache,
    check_kernel,
    choose,
    graph_kernel_rule,
    shape_key,
)
from stgcn.ops.edge_rounds import EdgeRounds, RoundsGraphConv, edge_rounds, rounds_conv
from stgcn.ops.graph_conv import (
    EdgeGraphConv,
    MixFirstGraphConv,
    edge_conv,
    edge_list,
    edge_weights,
    mix_first_matrix,
    mix_then_project,
    mixed_bias,
    project_first_matrix,
    project_then_mix,
)
from stgcn.ops.layout import as_image, autocast_on, from_image, from_vtnc, kernel_dtype, plain_ops, to_vtnc
from stgcn.ops.temporal_conv import BNReLUConv, TiledConv, bn_train_args, conv_forward
from stgcn.ops.tiled_conv import TiledConvPlan, choose_tile_length, plan_temporal_conv

__all__ = ["GraphConv", "TemporalConv", "ResidualProjection", "RECOMPUTE_MIN_BYTES", "TILED_MIN_ROWS",
           "TILED_MIN_ROWS_GRAD", "TILED_MIN_WORK_GRAD", "tiled_min_rows"]

# Recompute (memory_mode "recompute") only tensors at least this large: smaller ones cost more time than the
# memory they save is worth (measured: NTU batch 4 trains at 0.97x the baseline recomputing, 1.37x storing).
RECOMPUTE_MIN_BYTES = 16 << 20
# The rules' thresholds for the tiled temporal convolution, in output frames x samples per joint. Without
# autograd (inference; also the fused model's rule) the tiled kernel was faster at every measured shape, down to
# one clip of 52 frames: there the direct convolution runs on images one or two samples wide, where oneDNN is slow
# (README "Performance"). With autograd its per-call overhead (plans, backward transforms) pays back from
# TILED_MIN_WORK_GRAD rows x channels, at most TILED_MIN_ROWS_GRAD rows (benchmarks/results/train_small.md:
# forward + backward at batch 16 of NW-UCLA and COCO-17 clips, 1.1-2.4x faster than direct from 208 rows of 256
# channels, 416 of 128, 832 of 64; at parity or slower below, e.g. 416 rows of 64 channels).
# The thresholds do not depend on the thread count. Earlier versions kept the direct convolution below 2048 rows
# on several threads, from 2-thread measurements on a loaded machine (OpenMP threads spin-waiting for descheduled
# siblings); on the idle machine the same thresholds as on one thread were faster on 2 threads at every shape
# measured (benchmarks/results/grid_cpu.json; short inputs on several threads run the original structure anyway,
# stgcn.ops.dispatch.layout_rule). More than 2 threads were not measured.
TILED_MIN_ROWS = 1
TILED_MIN_ROWS_GRAD = 2048
TILED_MIN_WORK_GRAD = 32768


def tiled_min_rows(grad: bool, channels: int | None = None) -> int:
    """The tiled temporal convolution's row threshold: :data:`TILED_MIN_ROWS` for inference; with autograd,
    given the input ``channels``, :data:`TILED_MIN_WORK_GRAD` rows x channels (at most
    :data:`TILED_MIN_ROWS_GRAD` rows)."""
    if not grad:
        return TILED_MIN_ROWS
    return TILED_MIN_ROWS_GRAD if not channels else min(TILED_MIN_ROWS_GRAD, -(-TILED_MIN_WORK_GRAD // channels))


Edges = tuple[tuple[int, ...], tuple[int, ...]]


class GraphConv(nn.Module):
    """The spatial graph convolution: ``f_out = sum_k (A_k * M_k)^T-mix of (W_k f_in + b_k)``.

    A 1x1 convolution produces K*C_out channels, ordered (k, c); partition ``k``'s slice is mixed over joints
    by ``A[k] * edge_importance[k]`` and the K results are summed. The products are associative, which
    allows several kernels (:mod:`stgcn.ops.graph_conv`, :mod:`stgcn.ops.edge_rounds`), chosen per input
    shape by :meth:`_path` (see :mod:`stgcn.ops.dispatch`):

    - ``"pairs"``: ``out[w] = sum over pairs (v, w) of x[v] @ (sum_k a[k, v, w] W_k)``, one (C_in x C_out)
      product per connected joint pair (CPU, at most 2*K*V pairs: every built-in layout with max_hop 1 and
      the distance or spatial strategy): the 1x1 convolution's work without the K-times larger tensor;
      backward stores only the input.
    - ``"pairs-batched"``: the same sum in a few batched products (one per "round" of pairs); no rule takes
      it (it was the several-thread training rule of earlier versions), autotuning and pins can.
    - ``"mix-first"``: mix joints on the C_in side, then the 1x1 convolution; in training with
      ``memory_mode == "recompute"`` the K-times larger mixed tensor is recomputed in backward.
    - ``"project-first"``: the original order (1x1 convolution, then the mixing): the plain structure.

    Rules (training, small inputs, ``dispatch = "rules"``): :func:`~stgcn.ops.dispatch.graph_kernel_rule`,
    shared with the fused model: on CPU for sparse graphs per joint pair (with autograd from
    :data:`~stgcn.ops.dispatch.TRAIN_PAIRS_MIN_ROWS` rows, mixing first below; without it from
    :data:`~stgcn.ops.dispatch.INFERENCE_PAIRS_MIN_ROWS` rows per thread, mixing first below), else mix-first when
    gradients are needed or C_in < C_out, else project-first. In inference with ``dispatch = "auto"`` (opt-in)
    every applicable kernel is timed once per shape and the fastest kept. While tracing/exporting/compiling
    only standard ops are used.

    Attributes:
        graph_kernel: Pin one of :data:`~stgcn.ops.dispatch.GRAPH_KERNELS` (``None``: dispatch).
        dispatch: ``"rules"`` (default) or ``"auto"`` (time the kernels once per shape in inference).

    Args:
        in_channels: C_in.
        out_channels: C_out.
        num_partitions: K.
        num_joints: V.
        edge_importance: Whether the (K, V, V) mask is a learnable parameter (else a buffer of ones).

    Shape:
        x: (N, C_in, T, V); A: (K, V, V); output: (N, C_out, T, V).
    """

    kernel_kinds = ("graph",)

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int, num_joints: int,
                 edge_importance: bool = True) -> None:
        super().__init__()
        self.num_partitions = num_partitions
        self.out_channels = out_channels
        self.memory_mode = "recompute"
        self.graph_kernel: str | None = None
        self.dispatch = "rules"
        self.kernel_cache = KernelCache()
        self._graph_cache: tuple[tuple, Edges, EdgeRounds] | None = None
        self._weight_cache: tuple[tuple, dict[str, torch.Tensor]] | None = None
        self.conv = nn.Conv2d(in_channels, num_partitions * out_channels, kernel_size=1)
        mask = torch.ones(num_partitions, num_joints, num_joints)
        if edge_importance:
            self.edge_importance = nn.Parameter(mask)
        else:
            self.register_buffer("edge_importance", mask)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        return from_vtnc(self.forward_vtnc(to_vtnc(x), A))

    def _graph(self, A: torch.Tensor) -> tuple[Edges, EdgeRounds]:
        """The connected joint pairs of ``A`` and their rounds, computed once per adjacency (version-keyed)."""
        key = (A.data_ptr(), A._version, tuple(A.shape), A.device)
        if self._graph_cache is None or self._graph_cache[0] != key:
            src, dst = edge_list(A)
            self._graph_cache = (key, (src, dst), edge_rounds(src, dst, A.shape[2], A.device))
        return self._graph_cache[1], self._graph_cache[2]

    def _path(self, h: torch.Tensor, A: torch.Tensor, grad: bool) -> tuple[str, Edges]:
        """Which kernel runs, and the joint pairs for the per-pair kernels (else empty).

        ``"pairs"`` (:class:`EdgeGraphConv`, training), ``"pairs-ops"`` (:func:`edge_conv` from standard ops,
        under autocast where the kernels step aside: :func:`~stgcn.ops.layout.kernel_dtype`),
        ``"pairs-inplace"`` (:func:`edge_conv` into fresh memory, inference),
        ``"pairs-batched"`` (:class:`RoundsGraphConv` / :func:`rounds_conv`), ``"mix-first-recompute"``
        (:class:`MixFirstGraphConv`), ``"mix-first"`` (:func:`mix_then_project`), ``"project-first"``
        (:func:`project_then_mix`).
        """
        k, v = self.num_partitions, h.shape[0]
        autocast = autocast_on(h.device.type)
        standard = autocast and kernel_dtype(h.device.type) is None  # our kernels step aside for standard ops
        plain = plain_ops()
        edges = self._graph(A)[0] if not plain else ((), ())
        sparse = 0 < len(edges[0]) <= 2 * k * v
        c_in, c_out = self.conv.in_channels, self.out_channels
        rows = h.shape[1] * h.shape[2]
        if plain:  # tracing/compiling: a few large standard ops
            kernel = "mix-first" if grad or c_in < c_out else "project-first"
        else:
            rule = graph_kernel_rule(rows, c_in, c_out, sparse=sparse, cpu=h.device.type == "cpu", grad=grad)
            flops = 2.0 * rows * v * k * c_in * c_out
            tune = (self.dispatch == "auto" and not grad and not autocast and flops >= AUTOTUNE_MIN_FLOPS
                    and not self.training)
            options = [n for n in GRAPH_KERNELS if sparse or not n.startswith("pairs")]
            candidates = (lambda: {n: functools.partial(self._run, h, A, n, False, edges) for n in options}
                          ) if tune else None
            key = shape_key(h, grad, autocast, self.memory_mode)
            kernel = choose(self.kernel_cache, key, check_kernel(self.graph_kernel, GRAPH_KERNELS, "graph"),
                            rule, candidates)
            if kernel.startswith("pairs") and not edges[0]:
                kernel = "mix-first"
        if kernel == "pairs-batched" and standard:
            kernel = "pairs"
        if kernel == "pairs":
            return ("pairs" if grad and not standard else "pairs-ops" if grad or standard else "pairs-inplace"), edges
        if kernel == "mix-first" and grad and self.memory_mode == "recompute" and not standard:
            return "mix-first-recompute", ((), ())
        return kernel, edges if kernel == "pairs-batched" else ((), ())

    def _weights(self, A: torch.Tensor, grad: bool, edges: Edges,
                 dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Mixing ``a`` (K, V, W), ``wk`` (K, C_in, C_out), mixed ``bias`` (W, C_out) and the pair weights
        ``edge`` (E, C_in, C_out), computed in the parameters' dtype and cast to ``dtype`` if given; without
        autograd kept until a weight changes (keyed on versions)."""
        key = None
        if not grad:
            tensors = (A, self.edge_importance, self.conv.weight, self.conv.bias)
            key = tuple((t.data_ptr(), t._version) for t in tensors if t is not None) + (edges[0], dtype)
            if self._weight_cache is not None and self._weight_cache[0] == key:
                return self._weight_cache[1]
        k, c_out, c_in = self.num_partitions, self.out_channels, self.conv.in_channels
        a = A * self.edge_importance  # (K, V, W): source v -> target w
        wk = self.conv.weight.view(k, c_out, c_in).transpose(1, 2)  # (K, C_in, C_out)
        out = {"a": a, "wk": wk}
        if self.conv.bias is not None:
            out["bias"] = mixed_bias(a, self.conv.bias)
        if edges[0]:
            out["edge"] = edge_weights(a, wk, *edges)
        if key is not None:
            out["wk"] = wk.contiguous()
        if dtype is not None:
            out = {name: t.to(dtype) for name, t in out.items()}
        if key is not None:
            self._weight_cache = (key, out)
        return out

    def _run(self, h: torch.Tensor, A: torch.Tensor, path: str, grad: bool, edges: Edges) -> torch.Tensor:
        """The graph convolution by ``path`` (see :meth:`_path`); under autocast with a kernel dtype
        (:func:`~stgcn.ops.layout.kernel_dtype`) on inputs and weights cast to it, with autocast off.

        Shape:
            h: (V, T, N, C_in); output: (V, T, N, C_out).
        """
        dtype = kernel_dtype(h.device.type)
        if dtype is None:
            return self._compute(h, A, path, grad, edges)
        with torch.autocast(h.device.type, enabled=False):
            return self._compute(h.to(dtype), A, path, grad, edges, dtype)

    def _compute(self, h: torch.Tensor, A: torch.Tensor, path: str, grad: bool, edges: Edges,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
        v, t, n, c_in = h.shape
        c_out = self.out_channels
        wts = self._weights(A, grad, edges if path.startswith("pairs") else ((), ()), dtype)
        a, wk, bias = wts["a"], wts["wk"], wts.get("bias")
        src, dst = edges
        h3 = h.view(v, t * n, c_in)  # (V, B, C_in) with B = T*N
        if path == "pairs":
            out = EdgeGraphConv.apply(h3, wts["edge"], bias, src, dst)
        elif path == "pairs-ops":
            out = edge_conv(h3, wts["edge"], bias, src, dst)
        elif path == "pairs-inplace":
            out = edge_conv(h3, wts["edge"], bias, src, dst, out=h.new_empty((v, t * n, c_out)))
        elif path == "pairs-batched":
            rounds = self._graph(A)[1]
            out = RoundsGraphConv.apply(h3, wts["edge"], bias, rounds) if grad else \
                rounds_conv(h3, wts["edge"], bias, rounds)
        else:
            if path == "mix-first-recompute":
                out = MixFirstGraphConv.apply(h3, mix_first_matrix(a), wk)
            elif path == "mix-first":
                out = mix_then_project(h3, mix_first_matrix(a), wk)
            else:
                out = project_then_mix(h3, project_first_matrix(a), wk)
            if bias is not None:
                out = out + bias.unsqueeze(1) if grad else out.add_(bias.unsqueeze(1))
        return out.view(v, t, n, c_out)  # (W, B, C_out) -> (V, T, N, C_out)

    def forward_nctv(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """The original structure on the original layout: 1x1 convolution to K*C_out channels, then the joint
        mixing by ``A * edge_importance`` summed over partitions (standard ops; see ``STGCN.layout``).

        Shape:
            x: (N, C_in, T, V); A: (K, V, V); output: (N, C_out, T, V).
        """
        y = self.conv(x)  # (N, K*C_out, T, V)
        n, _, t, v = y.shape
        y = y.view(n, self.num_partitions, self.out_channels, t, v)  # (N, K, C_out, T, V)
        return torch.einsum("nkctv,kvw->nctw", y, A * self.edge_importance).contiguous()  # (N, C_out, T, V)

    def forward_vtnc(self, h: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: h (V, T, N, C_in) contiguous -> (V, T, N, C_out)."""
        params = (self.edge_importance, self.conv.weight)
        grad = torch.is_grad_enabled() and (h.requires_grad or A.requires_grad or any(p.requires_grad for p in params))
        path, edges = self._path(h, A, grad)
        return self._run(h, A, path, grad, edges)


class TemporalConv(nn.Module):
    """BN -> ReLU -> Gamma x 1 convolution over time (stride on T only) -> BN -> Dropout.

    Two kernels compute the convolution, chosen per input shape by :meth:`_kernel` (see
    :mod:`stgcn.ops.dispatch`): ``"tiled"``, the tiled real-DFT algorithm of :mod:`stgcn.ops.tiled_conv`
    (CPU, float32/float64; about 2-4x fewer multiplications, forward and backward, same result up to float
    rounding), and ``"direct"`` (oneDNN/cuDNN). The rule (:func:`tiled_min_rows`: shapes only) takes the tiled
    one when the input has at least :data:`TILED_MIN_ROWS` (frame, sample) rows per joint without autograd (any
    input), and with autograd :data:`TILED_MIN_WORK_GRAD` rows x channels (at most :data:`TILED_MIN_ROWS_GRAD`
    rows), where its per-call overhead is paid back; in
    inference with ``dispatch = "auto"`` both are timed once per shape. In training with
    ``memory_mode == "recompute"`` (the default) and an input of at least :data:`RECOMPUTE_MIN_BYTES`, the
    ReLU output is not stored for the backward pass but recomputed from the first BN's input and batch
    statistics (same gradients).

    Attributes:
        temporal_kernel: Pin ``"tiled"`` or ``"direct"`` (``None``: dispatch).
        tiled: ``False`` pins the direct convolution (kept from earlier versions).
        dispatch: ``"rules"`` (default) or ``"auto"`` (time the kernels once per shape in inference).

    Shape:
        x: (N, C, T, V); output: (N, C, ceil(T / stride), V).
    """

    kernel_kinds = ("temporal",)

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.memory_mode = "recompute"
        self.tiled = True
        self.temporal_kernel: str | None = None
        self.dispatch = "rules"
        self.kernel_cache = KernelCache()
        self._plan_cache: tuple[tuple, TiledConvPlan] | None = None
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, channels, (kernel_size, 1), (stride, 1), ((kernel_size - 1) // 2, 0))
        self.bn2 = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return from_vtnc(self.forward_vtnc(to_vtnc(x)))

    def forward_vtnc(self, g: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: g (V, T, N, C) contiguous -> (V, T', N, C)."""
        return from_image(self.forward_image(as_image(g)))

    def forward_nctv(self, x: torch.Tensor) -> torch.Tensor:
        """The modules in order on the original layout (standard ops). Shape: x (N, C, T, V) -> (N, C, T', V)."""
        return self.dropout(self.bn2(self.conv(F.relu(self.bn1(x)))))

    def _plan(self, x: torch.Tensor, grad: bool, dtype: torch.dtype | None = None) -> TiledConvPlan:
        """The tiled plan for ``x`` (tile length chosen for its frames and rows), made in the weight's dtype and
        cast to ``dtype`` if given; without autograd kept until the weight changes.

        Shape:
            x: (V, C, T, N) image view of the internal layout.
        """
        w = self.conv.weight
        v, _, frames, n = x.shape
        length = choose_tile_length(w.shape[2], self.conv.stride[0], frames, w.shape[1], w.shape[0], v * n)
        key = (w.data_ptr(), w._version, w.dtype, length, dtype)
        if not grad and self._plan_cache is not None and self._plan_cache[0] == key:
            return self._plan_cache[1]
        plan = plan_temporal_conv(w[..., 0], self.conv.stride[0], frames, length, exact=False)
        if dtype is not None:
            plan = plan.to(dtype)
        if not grad:
            self._plan_cache = (key, plan)
        return plan

    def _kernel(self, x: torch.Tensor) -> tuple[str, TiledConvPlan | None]:
        """Which kernel runs BN1 -> ReLU -> conv, and the tiled plan (None for the direct convolution).

        ``"bn-relu-conv-recompute"`` (:class:`BNReLUConv`: training, ReLU output recomputed; tiled when a plan
        is returned), ``"tiled"`` (BN1, ReLU, then :class:`TiledConv`) or ``"modules"`` (BN1, ReLU,
        ``self.conv``).
        """
        autocast = autocast_on(x.device.type)
        lowp = kernel_dtype(x.device.type)  # under autocast: the tiled kernel in this dtype, or standard ops
        grad = torch.is_grad_enabled() and (x.requires_grad or self.conv.weight.requires_grad)
        kernel = "direct"
        dtypes = (torch.float32, torch.float64) if lowp is None else (torch.float32, lowp)
        if (x.device.type == "cpu" and x.dtype in dtypes and (lowp is not None or not autocast)
                and not plain_ops() and x.is_contiguous(memory_format=torch.channels_last)):
            pin = "direct" if not self.tiled else check_kernel(self.temporal_kernel, TEMPORAL_KERNELS, "temporal")
            v, c, t, n = x.shape
            stride = self.conv.stride[0]
            rule = "tiled" if -(-t // stride) * n >= tiled_min_rows(grad, c) else "direct"
            flops = 2.0 * v * t * n * c * c * self.conv.kernel_size[0] / stride
            tune = (self.dispatch == "auto" and not grad and not self.training and not autocast
                    and flops >= AUTOTUNE_MIN_FLOPS)
            candidates = functools.partial(self._candidates, x) if tune else None
            kernel = choose(self.kernel_cache, shape_key(x, grad, lowp), pin, rule, candidates)
        plan = self._plan(x, grad, lowp) if kernel == "tiled" else None
        bn = self.bn1
        if (self.memory_mode == "recompute" and bn.training and bn.affine and torch.is_grad_enabled()
                and not autocast and x.numel() * x.element_size() >= RECOMPUTE_MIN_BYTES):
            return "bn-relu-conv-recompute", plan
        return ("tiled" if plan is not None else "modules"), plan

    def _candidates(self, x: torch.Tensor) -> dict[str, functools.partial]:
        """The convolution by each kernel on the eval-mode ReLU output (no side effects), for timing."""
        conv = self.conv
        r = F.relu(self.bn1(x))
        plan = self._plan(x, False)
        return {"tiled": functools.partial(conv_forward, r, conv.weight, conv.bias, conv.stride, (0, 0), plan),
                "direct": functools.partial(conv_forward, r, conv.weight, conv.bias, conv.stride, conv.padding,
                                            None)}

    def forward_image(self, x: torch.Tensor) -> torch.Tensor:
        """Same computation on a (V, C, T, N) channels-last image (time is the height) -> (V, C, T', N)."""
        conv, bn = self.conv, self.bn1
        kernel, plan = self._kernel(x)
        if kernel == "bn-relu-conv-recompute":
            running_mean, running_var, momentum = bn_train_args(bn)
            y = BNReLUConv.apply(x, bn.weight, bn.bias, conv.weight, conv.bias, running_mean, running_var,
                                 momentum, bn.eps, conv.stride, conv.padding, plan)
        elif kernel == "tiled":
            r, dtype = F.relu(bn(x)), kernel_dtype(x.device.type)
            if dtype is None:
                y = TiledConv.apply(r, conv.weight, conv.bias, conv.stride[0], plan)
            else:  # under autocast: the kernel on inputs and weights cast to its dtype
                bias = None if conv.bias is None else conv.bias.to(dtype)
                with torch.autocast(x.device.type, enabled=False):
                    y = TiledConv.apply(r.to(dtype), conv.weight.to(dtype), bias, conv.stride[0], plan)
        else:
            y = conv(F.relu(bn(x)))
        return self.dropout(self.bn2(y))


class ResidualProjection(nn.Module):
    """1x1 convolution (stride on T) + BN, for a residual whose channels or length change.

    Shape:
        x: (N, C_in, T, V); output: (N, C_out, ceil(T / stride), V).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return from_vtnc(self.forward_vtnc(to_vtnc(x)))

    def forward_nctv(self, x: torch.Tensor) -> torch.Tensor:
        """On the original layout (standard ops). Shape: x (N, C_in, T, V) -> (N, C_out, T', V)."""
        return self.bn(self.conv(x))

    def forward_vtnc(self, h: torch.Tensor) -> torch.Tensor:
        """Same computation on the internal layout. Shape: h (V, T, N, C_in) -> (V, T', N, C_out)."""
        stride = self.conv.stride[0]
        hs = h[:, ::stride] if stride > 1 else h  # (V, T', N, C_in)
        v, t, n, c_in = hs.shape
        w = self.conv.weight.view(self.conv.out_channels, c_in)
        y = F.linear(hs.reshape(v * t * n, c_in), w, self.conv.bias).view(v, t, n, -1)  # (V, T', N, C_out)
        return from_image(self.bn(as_image(y)))
