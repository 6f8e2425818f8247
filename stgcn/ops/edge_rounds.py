"""The per-joint-pair graph convolution as a few batched products ("rounds") instead of one product per pair.

:func:`stgcn.ops.graph_conv.edge_conv` runs one (B x C_in) @ (C_in x C_out) product per connected joint pair
(E ~ 2-3 V of them) from a Python loop: at small B (batch 1, short clips) the per-call overhead of those
products dominates. The same sum ``out[w] = sum over pairs (v, w) of h[v] @ weight[pair]`` is computed here in
R rounds, R being the largest number of pairs with the same target (at most 6 for the built-in layouts):
round r takes the r-th pair of every target that has one, gathers their sources, and does one batched
product (``torch.bmm``) added into the targets. Nothing K-times larger than the output is materialised; the
gather copies the sources once per round.

:class:`EdgeRounds` is the prepared index plan (built once per graph and kept by the module);
:func:`rounds_conv` the no-autograd kernel, :class:`RoundsGraphConv` the autograd Function with a batched
backward that stores only its input and the pair weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["EdgeRounds", "edge_rounds", "rounds_conv", "RoundsGraphConv"]


@dataclass(frozen=True)
class EdgeRounds:
    """Joint pairs grouped into rounds in which every target joint appears at most once.

    Attributes:
        src: Per round, (n_r,) int64 source joints.
        dst: Per round, (n_r,) int64 target joints.
        pair: Per round, (n_r,) int64 indices into the (E, C_in, C_out) pair weights.
        first_is_all: Whether round 0 has one pair for every target 0..W-1 in order (then it writes the
            output directly instead of adding into zeros).
        num_targets: W.
    """

    src: tuple[torch.Tensor, ...]
    dst: tuple[torch.Tensor, ...]
    pair: tuple[torch.Tensor, ...]
    first_is_all: bool
    num_targets: int


def edge_rounds(src: tuple[int, ...], dst: tuple[int, ...], num_targets: int,
                device: torch.device | str = "cpu") -> EdgeRounds:
    """Group the pairs of :func:`stgcn.ops.graph_conv.edge_list` into rounds (the r-th pair of each target).

    Args:
        src: E source joints, grouped by target.
        dst: E target joints.
        num_targets: W, the number of joints.
        device: Where the index tensors live.
    """
    seen: dict[int, int] = {}
    rounds: list[list[tuple[int, int, int]]] = []
    for e, (v, w) in enumerate(zip(src, dst, strict=True)):
        r = seen.get(w, 0)
        seen[w] = r + 1
        if r == len(rounds):
            rounds.append([])
        rounds[r].append((v, w, e))

    def col(i: int) -> tuple[torch.Tensor, ...]:
        return tuple(torch.tensor([p[i] for p in rnd], dtype=torch.long, device=device) for rnd in rounds)

    first_is_all = bool(rounds) and [w for _, w, _ in rounds[0]] == list(range(num_targets))
    return EdgeRounds(col(0), col(1), col(2), first_is_all, num_targets)


def rounds_conv(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, plan: EdgeRounds,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """``out[w] = bias[w] + sum over pairs (v, w) of h[v] @ weight[pair]`` in ``len(plan.src)`` batched products.

    No autograd (see :class:`RoundsGraphConv`); writes into ``out`` when given.

    Shape:
        h: (V, B, C_in); weight: (E, C_in, C_out); bias: (W, C_out) or None; output: (W, B, C_out).
    """
    w_count, b = plan.num_targets, h.shape[1]
    if out is None:
        out = h.new_empty((w_count, b, weight.shape[2]))
    for r, (src, dst, pair) in enumerate(zip(plan.src, plan.dst, plan.pair, strict=True)):
        hs = h.index_select(0, src)  # (n_r, B, C_in)
        wr = weight.index_select(0, pair)  # (n_r, C_in, C_out)
        if r == 0 and plan.first_is_all:
            torch.bmm(hs, wr, out=out)
        else:
            if r == 0:
                out.zero_()
            out.index_add_(0, dst, torch.bmm(hs, wr))
    if not plan.src:
        out.zero_()
    return out if bias is None else out.add_(bias.unsqueeze(1))


class RoundsGraphConv(torch.autograd.Function):
    """:func:`rounds_conv` with a batched backward storing only its input and the pair weights.

    Shape:
        h: (V, B, C_in); weight: (E, C_in, C_out); bias: (W, C_out) or None; output: (W, B, C_out).
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                plan: EdgeRounds) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.plan = plan
        ctx.has_bias = bias is not None
        return rounds_conv(h, weight, bias, plan)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, weight = ctx.saved_tensors
        plan: EdgeRounds = ctx.plan
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        g = grad.contiguous()  # (W, B, C_out)
        grad_h = h.new_zeros(h.shape) if need_h else None
        grad_w = weight.new_zeros(weight.shape) if need_w else None
        for src, dst, pair in zip(plan.src, plan.dst, plan.pair, strict=True):
            gs = g.index_select(0, dst)  # (n_r, B, C_out)
            if need_h:
                grad_h.index_add_(0, src, torch.bmm(gs, weight.index_select(0, pair).transpose(1, 2)))
            if need_w:
                grad_w.index_copy_(0, pair, torch.bmm(h.index_select(0, src).transpose(1, 2), gs))
        grad_b = g.sum(1) if need_b and ctx.has_bias else None
        return grad_h, grad_w, grad_b, None
