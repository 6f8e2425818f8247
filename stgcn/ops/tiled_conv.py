"""Temporal convolution with fewer multiplications: tiled real-DFT ("Winograd-style") minimal filtering.

An ST-GCN temporal convolution is a Gamma-tap (9) correlation over time that mixes C_in channels into C_out.
Done directly it costs ``Gamma * C_in * C_out`` multiply-adds per output frame. Cut the output into tiles of
``m`` frames; a tile depends on ``L = m + kq - 1`` input frames, and on those frames the correlation equals a
cyclic one of length ``L``, which the real DFT diagonalises. With the three-multiplication form of each
complex product this becomes

    y_tile = D_out @ [(D_in @ x_tile) (x) per-row channel matrices W_r]

with ``R = 3L/2 - 1`` rows: two real frequencies (0 and L/2) and three rows per complex frequency. The
channel mixing is one batched matrix product of R (C_in x C_out) matrices per tile, i.e. ``R / m`` products
per output frame instead of ``Gamma``: 47 / 24 = 1.96 instead of 9 for ``L = 32``. The transforms
``D_in`` (R x L) and ``D_out`` (m x R) act on time only and cost ``O(L)`` per frame and channel. The same
sum is computed in a different order, so results agree with a direct convolution to float rounding
(cosine/sine transforms are well conditioned, unlike the polynomial points of classic Winograd).

A strided convolution is split into its ``stride`` polyphase components, each a stride-1 correlation over
the matching input phase, summed in the transformed domain.

The backward pass (:func:`tiled_conv_backward`) uses the same machinery: the input gradient is a correlation
of the output gradient with the flipped kernel, and the weight gradient is a product in the transformed
domain mapped back to the taps. Wrapped for autograd in :mod:`stgcn.ops.temporal_conv`; used by
:mod:`stgcn.models.stgcn` (training and eval) and :mod:`stgcn.inference.optimize`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

__all__ = ["TiledConvPlan", "plan_temporal_conv", "tiled_temporal_conv", "tiled_conv_backward", "dft_transforms",
           "tiled_cost", "choose_tile_length", "WEIGHT_READ_MACS"]

# Candidate tile lengths L: every even length up to 64, the cheapest for the call's frames by multiply-add count
# (_cost). Fitting L to the clip (e.g. 26 for 52 frames: 3 tiles of 18 outputs, against 7 tiles of 8 at L = 16)
# cut the tiled kernel's multiply-adds by 17% at NW-UCLA's 52 frames and 15% at the 2-D recipe's 100 frames
# against the earlier (16, 24, 32, 48); 4% at 300 frames.
TILE_LENGTHS = tuple(range(10, 65, 2))
_CACHE_BYTES = 2 << 20  # working-set target per joint group (about one core's L2)
# When the transformed weights do not fit that target (C >= 128), a group has at least this many rows (tiles x
# samples x joints) per channel product, so that the weights streamed from memory once per group are reused
# enough: at batch 16 of short clips (13-52 frames, 16 rows per joint and tile) one joint per group made the
# products weight-bound (C = 256: 1.9x slower), and at batch 1 (1-3 rows per joint) 1.1-2x slower; 512 rows
# made the much larger groups of NTU batch 16 slower than one joint.
_MIN_GROUP_ROWS = 256
# The tile length's cost counts, besides the multiply-adds of every (joint, sample) row, this many multiply-adds
# per transformed weight: the channel products read all P * R (C_in x C_out) matrices once per call whatever the
# rows, so with few rows (batch 1) a long tile's many frequency rows make them bound by reading weights. Fitted on
# one thread (AVX-512 host, `python -m benchmarks.tile_lengths`, every tile length timed, two runs): the rows-only
# choice ran the temporal convolutions of a one-person 150-frame window at 1.15x the fastest lengths' time, this
# one at 1.01-1.02x; one NW-UCLA clip, a two-person 100-frame window and a 300-frame clip within 1-4% of the
# fastest with either (12 and 16 did as well at the window, worse at the clip); at batch 16 the same lengths.
WEIGHT_READ_MACS = 8


def dft_transforms(length: int, taps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transforms for a ``taps``-tap correlation computed on tiles of ``length`` input frames.

    ``y[u] = sum_j w[j] x[u + j]`` for ``u < m = length - taps + 1`` equals
    ``d_out @ ((d_in @ x) * (g @ w))`` (elementwise product of R-vectors).

    Returns:
        ``d_in`` (R, L), ``g`` (R, taps), ``d_out`` (m, R), float64, with ``R = 3L/2 - 1``.
    """
    if length % 2 or length <= taps:
        raise ValueError(f"tile length must be even and longer than the kernel ({taps}), got {length}")
    m = length - taps + 1
    i = torch.arange(length, dtype=torch.float64)
    j = torch.arange(taps, dtype=torch.float64)
    u = torch.arange(m, dtype=torch.float64)
    # frequency 0 and length/2 are real: one row each
    rows_in = [torch.ones_like(i), torch.cos(math.pi * i)]
    rows_g = [torch.ones_like(j), torch.cos(math.pi * j)]
    cols_out = [torch.ones_like(u) / length, torch.cos(math.pi * u) / length]
    # the complex frequencies f = 1 .. L/2 - 1 at once (one batch of elementwise ops, not a loop over f)
    theta = (2 * math.pi * torch.arange(1, length // 2, dtype=torch.float64) / length)[:, None]
    xr, xi = torch.cos(theta * i), -torch.sin(theta * i)  # X = sum x e^{-i theta t}
    kr, ki = torch.cos(theta * j), -torch.sin(theta * j)  # K likewise; correlation uses X * conj(K)
    # X conj(K) = (xr kr + xi ki) + i (xi kr - xr ki) from three products:
    # m1 = (xr + xi) kr, m2 = xi (ki - kr), m3 = xr (kr + ki); real = m1 + m2, imag = m1 - m3
    cu, su = torch.cos(theta * u), torch.sin(theta * u)  # y[u] += (2/L) (real cos - imag sin)
    d_in = torch.cat([torch.stack(rows_in), torch.stack([xr + xi, xi, xr], 1).flatten(0, 1)])
    g = torch.cat([torch.stack(rows_g), torch.stack([kr, ki - kr, kr + ki], 1).flatten(0, 1)])
    d_out = torch.cat([torch.stack(cols_out), torch.stack([2 * (cu - su) / length, 2 * cu / length,
                                                           2 * su / length], 1).flatten(0, 1)])
    return d_in, g, d_out.t().contiguous()


@dataclass(frozen=True)
class TiledConvPlan:
    """A temporal convolution prepared for :func:`tiled_temporal_conv`.

    Attributes:
        d_in: (R, L) input transform.
        d_out: (m, R) output transform.
        weight: (P, R, C_in, C_out) transformed weights, one set per polyphase component P = stride.
        stride: Temporal stride.
        offset: Input frame (of each phase) that output frame 0's tile starts at, <= 0.
    """

    d_in: torch.Tensor
    d_out: torch.Tensor
    weight: torch.Tensor
    stride: int
    offset: int

    @property
    def tile(self) -> int:
        return self.d_out.shape[0]

    def to(self, *args: object, **kwargs: object) -> TiledConvPlan:
        return TiledConvPlan(self.d_in.to(*args, **kwargs), self.d_out.to(*args, **kwargs),
                             self.weight.to(*args, **kwargs), self.stride, self.offset)


def _cost(length: int, taps: int, phases: int, frames: int, c_in: int, c_out: int) -> int:
    """Multiply-adds of one (joint, sample) row: input transforms, channel products, output transform."""
    m = length - taps + 1
    rows = 3 * length // 2 - 1
    tiles = -(-frames // m)
    return tiles * (phases * rows * (length + c_out) * c_in + m * rows * c_out)


def _polyphase(gamma: int, stride: int) -> tuple[list[tuple[int, int]], int, int]:
    """Where each tap goes: ``(phase, tap within the phase)`` per tap j, the phases' first offset q_min
    (<= 0) and their common number of taps. Tap j of a Gamma-tap, stride-s convolution with padding
    (Gamma - 1) / 2 reads ``x[s * (t + q) + p]`` with ``j - pad = s * q + p``."""
    pad = (gamma - 1) // 2
    qp = [divmod(j - pad, stride) for j in range(gamma)]
    q_min = min(q for q, _ in qp)
    taps = max(q for q, _ in qp) - q_min + 1
    return [(p, q - q_min) for q, p in qp], q_min, taps


def _phase_masks(gamma: int, stride: int, device: torch.device) -> torch.Tensor:
    """(P, Gamma) 0/1: whether tap j belongs to phase p."""
    where, _, _ = _polyphase(gamma, stride)
    phase = torch.tensor([p for p, _ in where], device=device)
    return (phase == torch.arange(stride, device=device)[:, None]).to(torch.float64)


def _tap_matrix(g: torch.Tensor, gamma: int, stride: int, flip: bool = False, merged: bool = False) -> torch.Tensor:
    """The matrix taking the Gamma taps of a kernel to its transformed polyphase weights.

    Row ``(p, r)``, column j holds ``g[r, q]`` when tap j is tap q of phase p (``g[r, taps - 1 - q]`` with
    ``flip``, the flipped kernel of the input gradient), else 0: ``tap_matrix @ taps`` transforms every channel
    pair at once, and ``tap_matrix.t() @ transformed`` maps gradients back to the taps. With ``merged`` the
    rows are r only (the phases not separated; :func:`_transform` then separates them on the channel side).

    Shape:
        g: (R, taps); output: (P*R, Gamma), or (R, Gamma) with ``merged``.
    """
    rows, taps = g.shape
    where, _, _ = _polyphase(gamma, stride)
    cols = g[:, [taps - 1 - q if flip else q for _, q in where]]  # (R, Gamma): column j is g's column for tap j
    if merged:
        return cols
    return (cols * _phase_masks(gamma, stride, g.device).to(g)[:, None]).reshape(stride * rows, gamma)


def _choose_length(taps: int, phases: int, frames: int, c_in: int, c_out: int, rows: int | None = None) -> int:
    """The cheapest tile length: by multiply-adds per row, or with ``rows`` (joints x samples of the call) by the
    call's multiply-adds plus :data:`WEIGHT_READ_MACS` per transformed weight (read at each call)."""
    return _cheapest_length(taps, phases, frames, c_in, c_out, rows, WEIGHT_READ_MACS)


@functools.lru_cache(maxsize=4096)  # every forward pass asks, per block: a lookup, not 28 cost evaluations
def _cheapest_length(taps: int, phases: int, frames: int, c_in: int, c_out: int, rows: int | None,
                     weight_macs: int) -> int:
    def total(n: int) -> int:
        macs = _cost(n, taps, phases, frames, c_in, c_out)
        if rows is None:
            return macs
        return rows * macs + weight_macs * phases * (3 * n // 2 - 1) * c_in * c_out

    return min((n for n in TILE_LENGTHS if n > taps), key=lambda n: (total(n), -n))


def tiled_cost(gamma: int, stride: int, frames_out: int, c_in: int, c_out: int,
               rows: int | None = None) -> tuple[int, int]:
    """The tile length :func:`plan_temporal_conv` picks for ``frames_out`` output frames (and ``rows``), and the
    multiply-adds per (joint, sample) row (transforms and channel products) of the forward convolution it plans."""
    _, _, taps = _polyphase(gamma, stride)
    length = _choose_length(taps, stride, frames_out, c_in, c_out, rows)
    return length, _cost(length, taps, stride, frames_out, c_in, c_out)


def choose_tile_length(gamma: int, stride: int, frames: int, c_in: int, c_out: int, rows: int | None = None) -> int:
    """The tile length :func:`plan_temporal_conv` picks for a ``gamma``-tap, stride-``stride`` convolution of
    ``frames`` input frames (and ``rows`` (joint, sample) rows, if given)."""
    _, _, taps = _polyphase(gamma, stride)
    return _choose_length(taps, stride, -(-frames // stride), c_in, c_out, rows)


def plan_temporal_conv(weight: torch.Tensor, stride: int, frames: int,
                       tile_length: int | None = None, exact: bool = True, rows: int | None = None) -> TiledConvPlan:
    """Prepare ``y[t] = sum_j weight[:, :, j] x[stride * t + j - (Gamma - 1) / 2]`` (zero padding).

    Args:
        weight: (C_out, C_in, Gamma) with odd Gamma.
        stride: Temporal stride >= 1.
        frames: Typical input length, used to pick the tile length (any length works with any plan).
        tile_length: Force a tile length L (even, > kernel taps per phase); by default the cheapest of
            ``TILE_LENGTHS`` by multiply-add count (with ``rows``, weight reads counted too).

        exact: Compute the transformed weights in float64 (for a plan made once); else in the weight's
            dtype (for a plan made every training step).
        rows: The (joint, sample) rows of the calls (V * N * M), if known: few rows favour shorter tiles (fewer
            transformed weights to read).

    Returns:
        The plan in the weight's dtype if float64, else float32.
    """
    c_out, c_in, gamma = weight.shape
    dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
    _, q_min, taps = _polyphase(gamma, stride)
    if tile_length is None:
        tile_length = choose_tile_length(gamma, stride, frames, c_in, c_out, rows)
    d_in, g, d_out = dft_transforms(tile_length, taps)
    w = _transform(weight.detach().to(torch.float64 if exact else dtype), g, stride, (1, 0))
    return TiledConvPlan(d_in.to(weight.device, dtype), d_out.to(weight.device, dtype), w.to(dtype), stride, q_min)


def _transform(weight: torch.Tensor, g: torch.Tensor, stride: int, order: tuple[int, int], flip: bool = False,
               merged: bool = False) -> torch.Tensor:
    """Transformed polyphase weights of a (C_out, C_in, Gamma) kernel as one (rows x Gamma) x (Gamma x channels)
    product written in place (no transposing copy of the large result).

    Args:
        weight: (C_out, C_in, Gamma).
        g: (R, taps) kernel transform of :func:`dft_transforms`.
        stride: P.
        order: The channel dimensions of the result: ``(1, 0)`` for (C_in, C_out) (the forward plan), ``(0, 1)``
            for (C_out, C_in) (the input gradient's plan, with ``flip``).
        flip: Transform the time-reversed phase kernels.
        merged: One set of weights whose output channels are (phase, C_b): the P phases' correlations of one
            input as one plan (the input gradient of a strided convolution).

    Shape:
        output: (P, R, C_a, C_b) contiguous, (C_a, C_b) the channels in ``order``; with ``merged``
        (1, R, C_a, P*C_b).
    """
    gamma = weight.shape[2]
    taps_first = weight.permute(2, *order)  # (Gamma, C_a, C_b): Gamma x C^2, small
    tm = _tap_matrix(g.to(weight), gamma, stride, flip, merged)
    if merged:  # (Gamma, C_a, P, C_b): tap j's weights in its phase's slot, zeros elsewhere
        masks = _phase_masks(gamma, stride, weight.device).to(weight).t()  # (Gamma, P)
        taps_first = taps_first.unsqueeze(2) * masks[:, None, :, None]
        w = torch.mm(tm, taps_first.reshape(gamma, -1))  # (R, C_a*P*C_b)
        return w.view(1, g.shape[0], taps_first.shape[1], -1)
    w = torch.mm(tm, taps_first.contiguous().view(gamma, -1))  # (P*R, C_a*C_b)
    return w.view(stride, g.shape[0], *taps_first.shape[1:])


def _input_transform(x: torch.Tensor, plan: TiledConvPlan, v0: int, nv: int, tiles: int,
                     z: torch.Tensor) -> torch.Tensor:
    """Transformed input tiles of joints v0..v0+nv into ``z`` (P, R, group, tiles, B*C_in); returns the
    (P, R, nv*tiles*B, C_in) view used by the channel products."""
    stride, offset = plan.stride, plan.offset
    rows, length = plan.d_in.shape
    m = plan.tile
    c_in = x.shape[3]
    for p in range(stride):
        xp = x[v0:v0 + nv, p::stride].flatten(2)  # (nv, T_p, B*C_in): rows are frames
        t_p, row = xp.shape[1], xp.stride(1)
        # tiles whose L frames all exist: one product over (joints, tiles) on overlapping windows of x
        first = min((m - 1 - offset) // m, tiles)  # offset <= 0
        last = max(first, min(tiles, (t_p - length - offset) // m + 1))
        if last > first:
            windows = xp.as_strided((nv, last - first, length, xp.shape[2]), (xp.stride(0), m * row, row, 1),
                                    xp.storage_offset() + (first * m + offset) * row)
            torch.matmul(plan.d_in, windows, out=z[p, :, :nv, first:last].permute(1, 2, 0, 3))
        for s in [*range(first), *range(last, tiles)]:  # tiles reaching into the zero padding
            a = s * m + offset
            lo, hi = max(a, 0), min(a + length, t_p)
            torch.matmul(plan.d_in[:, lo - a:hi - a], xp[:, lo:hi], out=z[p, :, :nv, s].transpose(0, 1))
    return z[:, :, :nv].reshape(stride, rows, -1, c_in)


def _group_size(x: torch.Tensor, plan: TiledConvPlan, tiles: int, c_out: int) -> int:
    """Joints per group: the group's transformed tiles fit :data:`_CACHE_BYTES`, and when the transformed
    weights do not, the group has at least :data:`_MIN_GROUP_ROWS` rows."""
    rows = plan.d_in.shape[0]
    v, _, b, c_in = x.shape
    per_joint = x.element_size() * tiles * b * (plan.stride * rows * c_in + rows * c_out)
    group = _CACHE_BYTES // max(per_joint, 1)
    if x.element_size() * plan.stride * rows * c_in * c_out > _CACHE_BYTES:
        group = max(group, -(-_MIN_GROUP_ROWS // (tiles * b)))
    return max(1, min(v, group))


def tiled_temporal_conv(x: torch.Tensor, plan: TiledConvPlan, bias: torch.Tensor | None = None,
                        residual: torch.Tensor | None = None, relu: bool = False,
                        out: torch.Tensor | None = None, frames_out: int | None = None) -> torch.Tensor:
    """The planned convolution over the time axis of ``x``, plus ``bias`` and ``residual`` if given, then
    a ReLU if ``relu``.

    Joints are processed in groups sized to stay in cache. No autograd (see :func:`tiled_conv_backward`).

    Shape:
        x: (V, T, B, C_in) with (B, C_in) contiguous per frame; bias: (C_out,); residual: (V, T', B, C_out);
        output: (V, T', B, C_out) with ``T' = frames_out``, by default ``ceil(T / stride)``.
    """
    v, t, b, c_in = x.shape
    weight = plan.weight
    rows, length = plan.d_in.shape
    m = plan.tile
    c_out = weight.shape[3]
    t_out = -(-t // plan.stride) if frames_out is None else frames_out
    tiles = -(-t_out // m)
    if out is None:
        out = x.new_empty((v, t_out, b, c_out))
    group = _group_size(x, plan, tiles, c_out)
    z = x.new_empty((plan.stride, rows, group, tiles, b * c_in))
    mixed = x.new_empty((rows, group * tiles * b, c_out))
    for v0 in range(0, v, group):
        nv = min(group, v - v0)
        zs = _input_transform(x, plan, v0, nv, tiles, z)
        mix = mixed[:, :nv * tiles * b]
        torch.bmm(zs[0], weight[0], out=mix)  # (R, nv*tiles*B, C_out)
        for p in range(1, plan.stride):
            mix.baddbmm_(zs[p], weight[p])
        if bias is not None:  # every output frame gets 1/L of the zero-frequency row: add L * bias there
            mix[0].add_(bias, alpha=length)
        mix = mix.view(rows, nv, tiles, b * c_out)
        full = t_out // m  # whole output tiles in one product, then the last, partial one
        if full:
            torch.matmul(plan.d_out, mix[:, :, :full].permute(1, 2, 0, 3),
                         out=out[v0:v0 + nv, :full * m].view(nv, full, m, b * c_out))
        if full < tiles:
            torch.matmul(plan.d_out[:t_out - full * m], mix[:, :, full].transpose(0, 1),
                         out=out[v0:v0 + nv, full * m:].flatten(2))  # (nv, frames, B*C_out)
        done = out[v0:v0 + nv]  # finished while this group's output is still in cache
        if residual is not None:
            done.add_(residual[v0:v0 + nv])
        if relu:
            done.relu_()
    return out


def _weight_grad(x: torch.Tensor, grad: torch.Tensor, plan: TiledConvPlan) -> torch.Tensor:
    """Gradient of the loss with respect to ``plan.weight`` given the output gradient.

    Shape:
        x: (V, T, B, C_in); grad: (V, T', B, C_out) contiguous; output: (P, R, C_in, C_out).
    """
    v, _, b, c_in = x.shape
    t_out, c_out = grad.shape[1], grad.shape[3]
    rows = plan.d_in.shape[0]
    m = plan.tile
    tiles = -(-t_out // m)
    group = _group_size(x, plan, tiles, c_out)
    z = x.new_empty((plan.stride, rows, group, tiles, b * c_in))
    dmix = x.new_empty((rows, group, tiles, b * c_out))
    dw = x.new_zeros(plan.weight.shape)
    for v0 in range(0, v, group):
        nv = min(group, v - v0)
        zs = _input_transform(x, plan, v0, nv, tiles, z)
        full = t_out // m
        if full:
            torch.matmul(plan.d_out.t(), grad[v0:v0 + nv, :full * m].view(nv, full, m, b * c_out),
                         out=dmix[:, :nv, :full].permute(1, 2, 0, 3))  # (nv, full, R, B*C_out)
        if full < tiles:
            torch.matmul(plan.d_out[:t_out - full * m].t(), grad[v0:v0 + nv, full * m:].flatten(2),
                         out=dmix[:, :nv, full].transpose(0, 1))
        dm = dmix[:, :nv].reshape(rows, -1, c_out)
        for p in range(plan.stride):
            dw[p].baddbmm_(zs[p].transpose(1, 2), dm)
    return dw


def tiled_conv_backward(x: torch.Tensor, grad: torch.Tensor, weight: torch.Tensor, plan: TiledConvPlan,
                        needs: tuple[bool, bool, bool] = (True, True, True)
                        ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``y = tiled_temporal_conv(x, plan, bias)`` with ``plan`` made from ``weight``, with
    respect to x, weight and bias, all by tiled transforms: the input gradient is, per input phase, a
    stride-1 correlation of ``grad`` with the flipped, transposed phase kernel.

    Shape:
        x: (V, T, B, C_in); grad: (V, T', B, C_out); weight: (C_out, C_in, Gamma); outputs like the inputs
        (bias: (C_out,)).
    """
    grad = grad.contiguous()
    c_out, c_in, gamma = weight.shape
    t, stride = x.shape[1], plan.stride
    _, q_min, taps = _polyphase(gamma, stride)
    grad_x = grad_w = grad_b = None
    if needs[1]:
        dw = _weight_grad(x, grad, plan)  # (P, R, C_in, C_out)
        _, g, _ = dft_transforms(plan.d_in.shape[1], taps)
        tm = _tap_matrix(g.to(dw), gamma, stride)  # (P*R, Gamma)
        grad_w = torch.mm(tm.t(), dw.view(tm.shape[0], -1)).view(gamma, c_in, c_out).permute(2, 1, 0).contiguous()
    if needs[0]:
        # every input phase is a stride-1 correlation of grad with its flipped phase kernel, all at the same
        # offset: one plan whose output channels are (phase, C_in) transforms grad once for all phases
        rows = grad.shape[0] * grad.shape[2]
        length = (plan.d_in.shape[1] if stride == 1
                  else _choose_length(taps, 1, grad.shape[1], c_out, stride * c_in, rows))
        d_in, g, d_out = (m.to(x) for m in dft_transforms(length, taps))
        back = TiledConvPlan(d_in, d_out, _transform(weight.detach(), g, stride, (0, 1), flip=True, merged=True),
                             1, -(taps - 1) - q_min)
        if stride == 1:
            grad_x = tiled_temporal_conv(grad, back, frames_out=t)
        else:
            v, frames, b = x.shape[0], -(-t // stride), x.shape[2]
            out = tiled_temporal_conv(grad, back, frames_out=frames).view(v, frames, b, stride, c_in)
            grad_x = x.new_empty(x.shape)
            for p in range(stride):
                grad_x[:, p::stride] = out[:, :len(range(p, t, stride)), :, p]
    if needs[2]:
        grad_b = grad.sum((0, 1, 2))
    return grad_x, grad_w, grad_b
