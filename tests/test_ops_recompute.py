"""Saved-tensor recompute hooks and BatchNorm statistics under activation checkpointing (stgcn.ops.recompute)."""

from __future__ import annotations

import functools

import torch
import torch.utils.checkpoint
from torch import nn

from stgcn.ops.recompute import FrozenBNStats, RecomputedInput, checkpoint_contexts


def test_recomputed_input_gives_the_same_gradients_and_is_used():
    torch.manual_seed(0)
    lin = nn.Linear(4, 4).double()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    calls = []

    def again() -> torch.Tensor:
        calls.append(1)
        with torch.no_grad():
            return torch.tanh(lin(x))

    g = torch.tanh(lin(x))
    hooks = RecomputedInput(g, again)
    with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
        y = (g * g).sum()  # mul saves g twice
    got = torch.autograd.grad(y, (x, lin.weight))
    want = torch.autograd.grad((torch.tanh(lin(x)) ** 2).sum(), (x, lin.weight))
    assert calls  # the recipe ran in backward
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_frozen_bn_stats_restores_running_statistics():
    bn = nn.BatchNorm1d(3)
    before = [t.clone() for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    with FrozenBNStats(nn.Sequential(bn)):
        bn(torch.randn(8, 3) + 2)
        assert not torch.equal(bn.running_mean, before[0])
    for t, b in zip((bn.running_mean, bn.running_var, bn.num_batches_tracked), before, strict=True):
        assert torch.equal(t, b)


def test_checkpointing_updates_statistics_once():
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).double()
    plain = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).double()
    plain.load_state_dict(block.state_dict())
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    y = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False,
                                          context_fn=functools.partial(checkpoint_contexts, block))
    y.sum().backward()
    plain(x).sum().backward()
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(block.state_dict()[key], value, msg=key)
