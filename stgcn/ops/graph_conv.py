"""Kernels of the spatial graph convolution ``out[w] = sum_k sum_v a[k, v, w] * (h[v] @ W_k) (+ mixed bias)``.

``a`` is the (K, V, W) partitioned adjacency times the edge-importance mask (source joint v -> target joint
w), ``W_k`` the (C_in, C_out) slice of partition k of the 1x1 convolution. The products are associative, so
there are three ways to compute the same sum on the internal layout (h: (V, B, C_in), B = T*N):

- **per joint pair** (:func:`edge_conv`, :class:`EdgeGraphConv`): ``out[w] = sum over connected pairs (v, w) of
  h[v] @ (sum_k a[k, v, w] W_k)``: one (C_in x C_out) product per pair (E ~ K*V of them for the built-in
  layouts), no K-times larger intermediate, and a backward that stores only its input;
- **mix first** (:func:`mix_then_project`, :class:`MixFirstGraphConv`): mix joints on the C_in side, then
  the 1x1 convolution over (k, c_in); the autograd Function recomputes the K-times larger mixed tensor in
  backward instead of storing it;
- **project first** (:func:`project_then_mix`): the 1x1 convolution per partition, then one mixing product,
  the original code's order (inference only).
"""

from __future__ import annotations

from typing import Any

import torch

from stgcn.ops.layout import autocast_on

__all__ = ["edge_list", "edge_weights", "edge_conv", "EdgeGraphConv", "mix_first_matrix", "mix_then_project",
           "MixFirstGraphConv", "project_first_matrix", "project_then_mix", "mixed_bias"]


def edge_list(A: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (source v, target w) joint pairs that some partition of ``A`` connects, grouped by target.

    Shape:
        A: (K, V, W); output: two tuples of E joint indices (sources, targets), sorted by target then source.
    """
    pairs = (A != 0).any(0).t().nonzero().tolist()  # rows (w, v), sorted by w then v
    return tuple(v for _, v in pairs), tuple(w for w, _ in pairs)


def edge_weights(a: torch.Tensor, wk: torch.Tensor, src: tuple[int, ...], dst: tuple[int, ...]) -> torch.Tensor:
    """One (C_in, C_out) matrix per connected pair: ``sum_k a[k, v, w] * wk[k]``.

    Shape:
        a: (K, V, W); wk: (K, C_in, C_out); output: (E, C_in, C_out).
    """
    k, c_in, c_out = wk.shape
    ae = a[:, list(src), list(dst)]  # (K, E)
    return torch.mm(ae.t(), wk.reshape(k, c_in * c_out)).view(len(src), c_in, c_out)


def mixed_bias(a: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The 1x1 convolution's bias after the joint mixing: ``sum_k bias[k, c] * sum_v a[k, v, w]``.

    Shape:
        a: (K, V, W); bias: (K * C_out,) ordered (k, c); output: (W, C_out).
    """
    k = a.shape[0]
    return torch.mm(a.sum(1).t(), bias.view(k, -1))


def edge_conv(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, src: tuple[int, ...],
              dst: tuple[int, ...], out: torch.Tensor | None = None) -> torch.Tensor:
    """``out[w] = bias[w] + sum over pairs (v, w) of h[v] @ weight[pair]``: the graph convolution as one
    product per connected joint pair, with no K-times larger intermediate.

    With ``out`` given (no autograd), products accumulate into it in place; otherwise the result is built
    from standard differentiable ops (for autograd under autocast).

    Shape:
        h: (V, B, C_in); weight: (E, C_in, C_out); bias: (W, C_out) or None; output: (W, B, C_out).
    """
    num_targets = h.shape[0]
    rows: list[torch.Tensor | None] = [None] * num_targets
    for e, (v, w) in enumerate(zip(src, dst, strict=True)):
        acc = rows[w]
        if out is not None:  # the bias is added at the end in one pass (addmm's broadcast copy is slow)
            if acc is None:
                rows[w] = torch.mm(h[v], weight[e], out=out[w])
            else:
                acc.addmm_(h[v], weight[e])
        elif acc is None:
            rows[w] = torch.addmm(bias[w], h[v], weight[e]) if bias is not None else torch.mm(h[v], weight[e])
        else:
            rows[w] = torch.addmm(acc, h[v], weight[e])
    for w, acc in enumerate(rows):  # a joint nothing reaches: bias only
        if acc is None:
            fill = bias[w].expand(h.shape[1], -1) if bias is not None else h.new_zeros(h.shape[1], weight.shape[2])
            rows[w] = out[w].zero_() if out is not None else fill
    if out is None:
        return torch.stack(rows)
    return out if bias is None else out.add_(bias.unsqueeze(1))


class EdgeGraphConv(torch.autograd.Function):
    """:func:`edge_conv` with a hand-written backward: it stores only its input and the (E, C_in, C_out)
    weights, and computes each gradient with one product per joint pair.

    Shape:
        h: (V, B, C_in); weight: (E, C_in, C_out); bias: (W, C_out) or None; output: (W, B, C_out).
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                src: tuple[int, ...], dst: tuple[int, ...]) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.edges = (src, dst)
        ctx.has_bias = bias is not None
        out = h.new_empty((h.shape[0], h.shape[1], weight.shape[2]))  # (W, B, C_out)
        return edge_conv(h, weight, bias, src, dst, out=out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, weight = ctx.saved_tensors
        src, dst = ctx.edges
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        g = grad.contiguous()  # (W, B, C_out)
        grad_h = grad_w = grad_b = None
        if need_h:
            grad_h = h.new_zeros(h.shape)  # (V, B, C_in)
            for e, (v, w) in enumerate(zip(src, dst, strict=True)):
                grad_h[v].addmm_(g[w], weight[e].t())
        if need_w:
            grad_w = torch.empty_like(weight)  # (E, C_in, C_out)
            for e, (v, w) in enumerate(zip(src, dst, strict=True)):
                torch.mm(h[v].t(), g[w], out=grad_w[e])
        if need_b and ctx.has_bias:
            grad_b = g.sum(1)  # (W, C_out)
        return grad_h, grad_w, grad_b, None, None


def mix_first_matrix(a: torch.Tensor) -> torch.Tensor:
    """The mixing of :func:`mix_then_project`. Shape: a (K, V, W) -> (K*W, V), rows (k, w), columns v."""
    k, v, w = a.shape
    return a.transpose(1, 2).reshape(k * w, v)


def mix_then_project(h: torch.Tensor, amat: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
    """``sum_k (A_k^T-mix of h) @ wk[k]``: mix joints first, then the 1x1 convolution over (k, c_in).

    Shape:
        h: (V, B, C_in) contiguous; amat: (K*W, V), rows (k, w) (:func:`mix_first_matrix`);
        wk: (K, C_in, C_out); output: (W, B, C_out).
    """
    v, b, c_in = h.shape
    k, _, c_out = wk.shape
    z = torch.mm(amat, h.view(v, b * c_in)).view(k, v * b, c_in)  # (K, W*B, C_in)
    out = torch.mm(z[0], wk[0])
    in_place = not autocast_on(h.device.type)  # autocast does not cover in-place ops
    for i in range(1, k):
        out = out.addmm_(z[i], wk[i]) if in_place else torch.addmm(out, z[i], wk[i])
    return out.view(v, b, c_out)


class MixFirstGraphConv(torch.autograd.Function):
    """:func:`mix_then_project` storing only its input: the mixed tensor (K times larger) is recomputed in
    backward, which costs one (K*W, V) x (V, B*C_in) product.

    Shape:
        h: (V, B, C_in) contiguous; amat: (K*W, V); wk: (K, C_in, C_out); output: (W, B, C_out).
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, amat: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h, amat, wk)
        return mix_then_project(h, amat, wk)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, amat, wk = ctx.saved_tensors
        v, b, c_in = h.shape
        k, _, c_out = wk.shape
        need_h, need_a, need_w = ctx.needs_input_grad
        h2 = h.view(v, b * c_in)
        g = grad.contiguous().view(v * b, c_out)  # rows (w, b)
        grad_h = grad_amat = grad_wk = None
        if need_w:
            z = torch.mm(amat, h2).view(k, v * b, c_in)  # recomputed
            grad_wk = torch.stack([torch.mm(z[i].t(), g) for i in range(k)])
            del z
        if need_h or need_a:
            gz = g.new_empty((k, v * b, c_in))
            for i in range(k):
                torch.mm(g, wk[i].t(), out=gz[i])
            gz = gz.view(k * v, b * c_in)
            if need_h:
                grad_h = torch.mm(amat.t(), gz).view(v, b, c_in)
            if need_a:
                grad_amat = torch.mm(gz, h2.t())
        return grad_h, grad_amat, grad_wk


def project_first_matrix(a: torch.Tensor) -> torch.Tensor:
    """The mixing of :func:`project_then_mix`. Shape: a (K, V, W) -> (W, K*V), rows w, columns (k, v)."""
    k, v, w = a.shape
    return a.permute(2, 0, 1).reshape(w, k * v)


def project_then_mix(h: torch.Tensor, amat: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
    """The 1x1 convolution per partition, then one mixing product (the original order; no bias).

    Shape:
        h: (V, B, C_in) contiguous; amat: (W, K*V) (:func:`project_first_matrix`); wk: (K, C_in, C_out);
        output: (W, B, C_out).
    """
    v, b, c_in = h.shape
    k, _, c_out = wk.shape
    y = torch.matmul(h.reshape(v * b, c_in), wk)  # (K, V*B, C_out)
    return torch.mm(amat, y.view(k * v, b * c_out)).view(amat.shape[0], b, c_out)
