"""Shape-aware kernel dispatch (stgcn.ops.dispatch): every kernel a module can choose gives the reference's
results (eval within float tolerance, a float64 training step within 1e-10), and so do the choices made by
autotuning; the choice logic itself is tested with a fake clock (no timing in unit tests)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import stgcn.models.layers
import stgcn.models.stgcn
import stgcn.ops.dispatch as dispatch
from stgcn.errors import ConfigError
from stgcn.inference.optimize import optimize_for_inference
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.reference import baseline_from_stgcn, copy_weights
from stgcn.models.stgcn import STGCN
from stgcn.ops.dispatch import GRAPH_KERNELS, TEMPORAL_KERNELS, KernelCache, choose, pin_kernels, set_dispatch
from stgcn.ops.edge_rounds import RoundsGraphConv, edge_rounds, rounds_conv
from stgcn.ops.graph_conv import edge_conv, edge_list
from tests.use_utils import assert_trains_like_baseline

BLOCKS = ((8, 1), (8, 1), (16, 2), (16, 1), (24, 2))


def _model(layout: str = "coco-17", seed: int = 0) -> STGCN:
    torch.manual_seed(seed)
    model = STGCN(STGCNConfig(num_classes=5, graph=GraphConfig(layout=layout), blocks=BLOCKS))
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if "edge_importance" in name or "bn" in name else 0.05))
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def _input(model: STGCN, n: int = 2, t: int = 12, m: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, t, model.num_joints, m, generator=torch.Generator().manual_seed(1))


class FakeClock:
    """Each call of a candidate 'takes' the seconds given for it; the clock advances by them."""

    def __init__(self, cost: dict[str, float]) -> None:
        self.now, self.cost, self.calls = 0.0, cost, []

    def __call__(self) -> float:
        return self.now

    def candidate(self, name: str):
        def run() -> None:
            self.calls.append(name)
            self.now += self.cost[name]
        return run


def test_choose_times_once_per_key_keeps_the_rule_on_near_ties_and_honours_pins():
    clock = FakeClock({"a": 1.0, "b": 0.5, "c": 0.98})
    cache = KernelCache()

    def cands(*names):
        return lambda: {n: clock.candidate(n) for n in names}

    assert choose(cache, ("k1",), None, "a", cands("a", "b"), timer=clock) == "b"
    assert cache.timings[("k1",)] == {"a": 1.0, "b": 0.5}
    calls = len(clock.calls)
    assert choose(cache, ("k1",), None, "a", cands("a", "b"), timer=clock) == "b" and len(clock.calls) == calls
    assert choose(cache, ("k2",), None, "a", cands("a", "c"), timer=clock) == "a"  # 2% faster: noise
    assert choose(cache, ("k3",), "c", "a", cands("a", "b"), timer=clock) == "c"  # pinned: nothing timed
    assert choose(cache, ("k4",), None, "a", None, timer=clock) == "a"  # rules
    assert len(clock.calls) == calls + 2 * (1 + dispatch.AUTOTUNE_REPEATS)


def test_no_timing_while_tracing(monkeypatch):
    monkeypatch.setattr(dispatch, "plain_ops", lambda: True)
    clock = FakeClock({"a": 1.0, "b": 0.1})
    assert choose(KernelCache(), ("k",), None, "a", lambda: {n: clock.candidate(n) for n in "ab"},
                  timer=clock) == "a"
    assert clock.calls == []


def test_options_are_validated():
    model = _model()
    with pytest.raises(ConfigError, match="valid kernels are pairs, pairs-batched, mix-first, project-first"):
        pin_kernels(model, graph="fft")
    with pytest.raises(ConfigError, match="valid kernels are tiled, direct"):
        pin_kernels(model, temporal="winograd")
    with pytest.raises(ConfigError, match="valid modes are auto, rules"):
        model.dispatch = "fastest"
    model.blocks[0].gcn.graph_kernel = "nope"
    with pytest.raises(ConfigError, match="unknown graph kernel 'nope'"):
        model.eval()(_input(model))


def test_edge_rounds_equal_the_per_pair_loop_with_gradients():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 6, 6, dtype=torch.float64, generator=g) * (torch.rand(3, 6, 6, generator=g) < 0.4)
    a[:, :, 2] = 0.0  # joint 2 is reached by nothing
    src, dst = edge_list(a)
    plan = edge_rounds(src, dst, 6)
    assert not plan.first_is_all and sum(len(s) for s in plan.src) == len(src)
    h = torch.randn(6, 5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(len(src), 3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(6, 4, dtype=torch.float64, generator=g, requires_grad=True)
    with torch.no_grad():
        torch.testing.assert_close(rounds_conv(h, w, b, plan), edge_conv(h, w, b, src, dst))
    assert torch.autograd.gradcheck(lambda *t: RoundsGraphConv.apply(*t, plan), (h, w, b))
    full = edge_list(torch.eye(4)[None] + torch.diag(torch.ones(3), 1)[None])
    assert edge_rounds(*full, 4).first_is_all


@pytest.mark.parametrize("graph,temporal", list(itertools.product(GRAPH_KERNELS, TEMPORAL_KERNELS)))
def test_every_pinned_kernel_gives_the_baseline_logits(graph, temporal):
    model = _model().eval()
    base = baseline_from_stgcn(model)
    fused = optimize_for_inference(model)
    pin_kernels(model, graph, temporal)
    pin_kernels(fused, graph, temporal)
    x = _input(model)
    with torch.no_grad():
        ref = base(x)
        tol = 1e-4 * max(1.0, float(ref.abs().max()))
        torch.testing.assert_close(model(x), ref, atol=tol, rtol=0)
        torch.testing.assert_close(fused(x), ref, atol=tol, rtol=0)
        torch.testing.assert_close(fused(x[:1, :, :7]), base(x[:1, :, :7]), atol=tol, rtol=0)  # odd T, batch 1


@pytest.mark.parametrize("graph,temporal,mode", [
    *[(g, "tiled", "recompute") for g in GRAPH_KERNELS], ("pairs", "direct", "recompute"),
    ("pairs-batched", "direct", "store"), ("project-first", "tiled", "store"), ("mix-first", "direct", "store"),
    ("pairs-batched", "tiled", "checkpoint")])
def test_every_pinned_kernel_trains_like_the_baseline_in_float64(graph, temporal, mode, monkeypatch):
    monkeypatch.setattr(stgcn.models.layers, "RECOMPUTE_MIN_BYTES", 0)  # exercise the recompute kernels
    monkeypatch.setattr(stgcn.models.stgcn, "RECOMPUTE_MIN_BYTES", 0)
    model = _model().double()
    model.memory_mode = mode
    pin_kernels(model, graph, temporal)
    assert_trains_like_baseline(model, _input(model).double(), torch.tensor([0, 3]))


def test_autotuned_choices_are_cached_correct_and_never_made_in_training(monkeypatch):
    monkeypatch.setattr(stgcn.models.layers, "AUTOTUNE_MIN_FLOPS", 0.0)
    monkeypatch.setattr(stgcn.inference.optimize, "AUTOTUNE_MIN_FLOPS", 0.0)
    model = _model().eval()
    base = baseline_from_stgcn(model)
    fused = optimize_for_inference(model)
    assert model.dispatch == fused.dispatch == "rules"  # autotuning is opt-in
    model.dispatch = fused.dispatch = "auto"
    x = _input(model)
    with torch.no_grad():
        ref = base(x)
        tol = 1e-4 * max(1.0, float(ref.abs().max()))
        for module in (model, fused, model, fused):  # the second round uses the cached choices
            torch.testing.assert_close(module(x), ref, atol=tol, rtol=0)
    gcn, tcn = model.blocks[2].gcn, model.blocks[2].tcn
    assert set(next(iter(gcn.kernel_cache.timings.values()))) == set(GRAPH_KERNELS)
    assert set(next(iter(tcn.kernel_cache.timings.values()))) == set(TEMPORAL_KERNELS)
    report = dispatch.dispatch_report(fused)
    assert report.pop("") == [f"{tuple(x.shape)} layout -> vtnc"]  # the model's own entry: its layout
    assert len(report) == len(BLOCKS) and all(len(v) == 2 for v in report.values())
    set_dispatch(model, "rules")
    assert not gcn.kernel_cache.choices and model.dispatch == "rules"
    model.dispatch = "auto"
    model.train()
    F.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    assert all(not m.kernel_cache.timings for m in model.modules() if hasattr(m, "kernel_cache"))


def test_cached_eval_weights_follow_weight_changes_and_buffers_are_reused():
    model = _model().eval()
    base = baseline_from_stgcn(model)
    fused = optimize_for_inference(model)
    x = _input(model)
    with torch.no_grad():
        first = model(x)
        for p in model.parameters():
            p.mul_(1.1)
        copy_weights(model, base)
        ref = base(x)
        torch.testing.assert_close(model(x), ref, atol=1e-4 * max(1.0, float(ref.abs().max())), rtol=0)
        assert not torch.allclose(first, ref)
        a, b = fused(x), fused(x)
        buffers = fused._workspace_cache[1]
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        fused(x)
        assert fused._workspace_cache[1] is buffers
        fused.reuse_buffers = False
        torch.testing.assert_close(fused(x), a, atol=0, rtol=0)


def test_tile_lengths_follow_the_rows_of_the_call_in_the_model_and_the_fused_model():
    """The last block (24 channels, stride 2, 50 frames in): one 100-frame clip of one person (17 rows) takes
    tiles of 10 frames (fewer transformed weights to read), a batch of 16 tiles of 18; both equal the baseline."""
    model = _model().eval()
    base = baseline_from_stgcn(model)
    fused = optimize_for_inference(model)
    model.layout = fused.layout = "vtnc"  # the internal layout (a one-person clip on several threads: nctv)
    for n, length in ((1, 10), (16, 18)):
        x = torch.randn(n, 3, 100, model.num_joints, 1, generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            ref = base(x)
            tol = 1e-4 * max(1.0, float(ref.abs().max()))
            torch.testing.assert_close(model(x), ref, atol=tol, rtol=0)
            torch.testing.assert_close(fused(x), ref, atol=tol, rtol=0)
        assert model.blocks[-1].tcn._plan_cache[1].d_in.shape[1] == length
        assert (length, torch.float32, x.device) in fused.blocks[-1]._plans


def test_rules_on_several_threads_are_the_one_thread_rules():
    # on the internal layout (pinned: by rule this short input runs the original structure on several threads)
    x = torch.randn(1, 3, 20, 17, 1, generator=torch.Generator().manual_seed(5))
    chosen = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)  # restored by the autouse fixture
        model = _model().eval()
        fused = optimize_for_inference(model)
        model.layout = fused.layout = "vtnc"
        with torch.no_grad():
            torch.testing.assert_close(fused(x), model(x), atol=1e-4, rtol=1e-4)
        grad_model = _model().eval()
        grad_model.layout = "vtnc"
        grad_model(x.clone().requires_grad_(True))
        chosen[threads] = [[e.rsplit(" -> ", 1)[1] for e in entries] for m in (model, fused, grad_model)
                           for name, entries in sorted(dispatch.dispatch_report(m).items()) if name]
    assert chosen[1] == chosen[2]
    assert {"tiled", "mix-first"} <= {k for block in chosen[2] for k in block}
    # the thresholds on two threads, as on one
    assert [stgcn.models.layers.tiled_min_rows(False, c) for c in (None, 64, 256)] == [1, 1, 1]
    assert [stgcn.models.layers.tiled_min_rows(True, c) for c in (None, 64, 256)] == [2048, 512, 128]


def test_inference_rule_takes_the_tiled_convolution_at_small_sizes_autograd_keeps_the_direct_one():
    # one clip of 20 frames, one thread (the autouse fixture): far below the autograd threshold, the tiled
    # kernel by rule without autograd
    model = _model().eval()
    x = torch.randn(1, 3, 20, 17, 1, generator=torch.Generator().manual_seed(5))
    assert 20 < stgcn.models.layers.TILED_MIN_ROWS_GRAD and stgcn.models.layers.TILED_MIN_ROWS == 1
    base, fused = baseline_from_stgcn(model).eval(), optimize_for_inference(model)
    with torch.no_grad():
        ref = base(x)
        torch.testing.assert_close(model(x), ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(fused(x), ref, atol=1e-4, rtol=1e-4)
    chosen = {e.rsplit(" -> ", 1)[1] for entries in dispatch.dispatch_report(model).values() for e in entries}
    fused_chosen = {e.rsplit(" -> ", 1)[1] for entries in dispatch.dispatch_report(fused).values() for e in entries}
    assert "tiled" in chosen and "direct" not in chosen and "tiled" in fused_chosen and "direct" not in fused_chosen
    # with autograd (an input gradient, as for saliency) the same shape keeps the direct kernel
    grad_model = _model().eval()
    xg = x.clone().requires_grad_(True)
    out = grad_model(xg)
    torch.testing.assert_close(out.detach(), ref, atol=1e-4, rtol=1e-4)
    chosen = {e.rsplit(" -> ", 1)[1] for entries in dispatch.dispatch_report(grad_model).values() for e in entries}
    assert "direct" in chosen and "tiled" not in chosen


@pytest.mark.parametrize("rows, c_in, c_out, sparse, cpu, expected", [
    (52, 64, 64, True, True, "mix-first"),  # one NW-UCLA clip (52 frames): every block mixes first
    (13, 256, 256, True, True, "mix-first"),
    (75, 128, 128, True, True, "mix-first"),  # the middle blocks of a 150-frame streaming window
    (127, 300, 200, True, True, "project-first"),  # fewer output channels: the K-times tensor on that side
    (128, 64, 64, True, True, "pairs"),  # from INFERENCE_PAIRS_MIN_ROWS on (one thread): one product per pair
    (150, 3, 64, True, True, "pairs"),  # the first blocks of a 150-frame streaming window
    (832, 64, 64, True, True, "pairs"),  # 16 NW-UCLA clips: never the batched variant without autograd
    (9600, 128, 256, True, True, "pairs"),  # 16 NTU clips of two persons
    (52, 64, 64, False, True, "project-first"),  # dense graph: the side with fewer channels
    (52, 64, 128, False, True, "mix-first"),
    (832, 64, 64, True, False, "project-first"),  # GPU
    (832, 64, 128, True, False, "mix-first"),
])
def test_inference_graph_rule_per_shape_class(rows, c_in, c_out, sparse, cpu, expected):
    assert dispatch.INFERENCE_PAIRS_MIN_ROWS == 128
    assert dispatch.graph_kernel_rule(rows, c_in, c_out, sparse=sparse, cpu=cpu, grad=False) == expected
    torch.set_num_threads(2)  # the threshold is per thread (restored by the autouse fixture)
    assert dispatch.graph_kernel_rule(2 * rows, c_in, c_out, sparse=sparse, cpu=cpu, grad=False) == expected
    if expected == "pairs":
        assert dispatch.graph_kernel_rule(255, c_in, c_out, sparse=sparse, cpu=cpu, grad=False) != "pairs"


@pytest.mark.parametrize("rows, sparse, cpu, expected", [
    (13, True, True, "mix-first"),  # the last blocks of one NW-UCLA clip: 3 weight matrices, not ~3V
    (191, True, True, "mix-first"),
    (192, True, True, "pairs"),  # TRAIN_PAIRS_MIN_ROWS: 16 NW-UCLA clips' last blocks have 208 rows
    (9600, True, True, "pairs"),
    (832, False, True, "mix-first"),  # dense graph
    (832, True, False, "mix-first"),  # GPU
])
def test_training_graph_rule(rows, sparse, cpu, expected):
    assert dispatch.TRAIN_PAIRS_MIN_ROWS == 192
    for threads in (1, 2, 4):  # the rule has no thread term (the batched kernel was the several-thread rule)
        torch.set_num_threads(threads)
        assert dispatch.graph_kernel_rule(rows, 64, 64, sparse=sparse, cpu=cpu, grad=True) == expected


def test_tiled_training_threshold_counts_rows_times_channels():
    layers = stgcn.models.layers
    assert layers.TILED_MIN_WORK_GRAD == 32768 and layers.TILED_MIN_ROWS_GRAD == 2048
    assert layers.tiled_min_rows(grad=True, channels=256) == 128  # 16 NW-UCLA clips' last blocks (208 rows)
    assert layers.tiled_min_rows(grad=True, channels=64) == 512  # not 416 rows of 64 channels (parity there)
    assert layers.tiled_min_rows(grad=True, channels=8) == 2048  # never above TILED_MIN_ROWS_GRAD
    assert layers.tiled_min_rows(grad=True) == 2048
    assert layers.tiled_min_rows(grad=False, channels=64) == layers.TILED_MIN_ROWS == 1


def test_small_batch_training_rules_pick_tiled_and_per_pair_kernels_and_train_like_the_baseline_in_float64():
    # one thread (the autouse fixture), batch 8 of 64 frames: the rules, unpinned, choose per block
    torch.manual_seed(0)
    model = STGCN(STGCNConfig(num_classes=5, graph=GraphConfig(layout="coco-17"),
                              blocks=((64, 1), (128, 2), (128, 2), (128, 2)))).double()
    base = baseline_from_stgcn(model).double()
    x = torch.randn(8, 3, 64, model.num_joints, 1, generator=torch.Generator().manual_seed(1)).double()
    y = torch.arange(8) % 5
    for module in (model, base):
        module.train()
        for _ in range(2):
            module.zero_grad()
            F.cross_entropy(module(x), y).backward()
            with torch.no_grad():
                for p in module.parameters():
                    p.sub_(0.1 * p.grad)
    report = dispatch.dispatch_report(model)
    chosen = {name: {e.rsplit(" -> ", 1)[1] for e in entries} for name, entries in report.items()}
    # graph convolution rows (before the stride): 512, 512, 256, 128; temporal output rows x channels:
    # 512 x 64, 256 x 128 (both 32768: tiled), 128 x 128, 64 x 128 (direct)
    assert [chosen[f"blocks.{i}.gcn"] for i in range(4)] == [{"pairs"}, {"pairs"}, {"pairs"}, {"mix-first"}]
    assert [chosen[f"blocks.{i}.tcn"] for i in range(4)] == [{"tiled"}, {"tiled"}, {"direct"}, {"direct"}]
    back = STGCN(model.config).double()
    copy_weights(base, back)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, back.state_dict()[key], atol=1e-10, rtol=1e-9, msg=key)


def _graph_kernels(report: dict[str, list[str]]) -> list[str]:
    """Per block (in order), the graph kernel chosen, from a dispatch report of a model or a fused model."""
    out = []
    for name, entries in report.items():
        kernels = {e.rsplit(" -> ", 1)[1] for e in entries} & set(GRAPH_KERNELS)
        if kernels:
            assert len(kernels) == 1, (name, entries)
            out.append(kernels.pop())
    return out


@pytest.mark.parametrize("shape, expected", [
    ((1, 20, 1), ["mix-first"] * 5),  # 20, 20, 20, 10, 10 rows (the graph convolution runs before the stride)
    ((2, 40, 2), ["pairs"] * 3 + ["mix-first"] * 2),  # 160, 160, 160, 80, 80 rows
])
def test_model_and_fused_model_choose_the_same_graph_kernels_by_the_shared_rule(shape, expected):
    n, t, m = shape
    model = _model().eval()
    fused = optimize_for_inference(model)
    x = torch.randn(n, 3, t, model.num_joints, m, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = baseline_from_stgcn(model).eval()(x)
        tol = 1e-4 * max(1.0, float(ref.abs().max()))
        torch.testing.assert_close(model(x), ref, atol=tol, rtol=0)
        torch.testing.assert_close(fused(x), ref, atol=tol, rtol=0)
    assert _graph_kernels(dispatch.dispatch_report(model)) == expected
    assert _graph_kernels(dispatch.dispatch_report(fused)) == expected
    # with autograd the training rule holds: mix-first below TRAIN_PAIRS_MIN_ROWS rows
    grad_model = _model().eval()
    grad_model(x.clone().requires_grad_(True))
    assert _graph_kernels(dispatch.dispatch_report(grad_model)) == ["mix-first"] * 5
