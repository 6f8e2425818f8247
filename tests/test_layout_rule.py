"""The activation-layout rule: the internal (V, T, N, C) layout on CPU, the original structure (N, C, T, V) on
GPUs, under torch.compile and for short inputs on several CPU threads; both compute the baseline's logits,
gradients and BatchNorm statistics, in the model and in the fused model."""

from __future__ import annotations

import pytest
import torch

import stgcn.models.layers
import stgcn.ops.dispatch
import stgcn.ops.layout
from stgcn.errors import ConfigError
from stgcn.inference.optimize import optimize_for_inference
from stgcn.models.reference import baseline_from_stgcn
from stgcn.models.stgcn import STGCN
from stgcn.ops.dispatch import (
    LAYOUTS,
    LOWP_TRAIN_MIN_WORK,
    NCTV_MAX_ROWS,
    dispatch_report,
    layout_rule,
    pin_kernels,
)
from stgcn.ops.graph_conv import EdgeGraphConv, MixFirstGraphConv
from stgcn.ops.temporal_conv import TiledConv
from tests.use_utils import assert_trains_like_baseline, small_model

BLOCKS = ((8, 1), (8, 1), (16, 2), (16, 1), (24, 2))


def _model() -> STGCN:
    return small_model("coco-17", blocks=BLOCKS, num_classes=5)


def _input(model: STGCN, n: int = 2, t: int = 11, m: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, t, model.num_joints, m, generator=torch.Generator().manual_seed(1))


def _choices(model: STGCN) -> int:
    return sum(len(m.kernel_cache.choices) for m in model.modules() if hasattr(m, "kernel_cache"))


def test_rule_internal_layout_on_cpu_original_structure_elsewhere_and_when_compiling():
    assert layout_rule("cpu", compiling=False) == "vtnc"
    assert layout_rule("cuda", compiling=False) == "nctv"
    assert layout_rule("mps", compiling=False) == "nctv"
    assert layout_rule("cpu", compiling=True) == "nctv"
    assert set(LAYOUTS) == {"vtnc", "nctv"}


def test_rule_short_inputs_on_several_threads_run_the_original_structure():
    assert NCTV_MAX_ROWS == 192
    assert layout_rule("cpu", compiling=False, rows=NCTV_MAX_ROWS - 1, threads=2) == "nctv"
    assert layout_rule("cpu", compiling=False, rows=NCTV_MAX_ROWS, threads=2) == "vtnc"
    assert layout_rule("cpu", compiling=False, rows=1, threads=1) == "vtnc"
    assert layout_rule("cpu", compiling=False, rows=None, threads=8) == "vtnc"
    assert layout_rule("cuda", compiling=False, rows=10**6, threads=1) == "nctv"


def test_model_and_fused_model_follow_the_thread_rule_report_it_and_give_the_baseline_logits():
    model = _model().eval()
    base, fused = baseline_from_stgcn(model), optimize_for_inference(model)
    short, long = _input(model, n=1, t=11, m=1), _input(model, n=6, t=16, m=2)  # 11 and 192 rows per joint
    torch.set_num_threads(2)  # restored by the autouse fixture
    with torch.no_grad():
        for x, layout in ((short, "nctv"), (long, "vtnc")):
            ref = base(x)
            tol = 1e-5 * max(1.0, float(ref.abs().max()))
            for module in (model, fused):
                torch.testing.assert_close(module(x), ref, atol=tol, rtol=0)
                assert f"{tuple(x.shape)} layout -> {layout}" in dispatch_report(module)[""]
    # only the long input reached the blocks' kernel choices
    assert all(len(entries) == 2 for name, entries in dispatch_report(fused).items() if name)
    assert _choices(model) == 2 * len(BLOCKS)


def test_fused_model_layout_pin_state_dict_and_bfloat16():
    model = _model().eval()
    fused = optimize_for_inference(model)
    keys = set(fused.state_dict())
    x = _input(model)  # 44 rows per joint
    with torch.no_grad():
        ref = baseline_from_stgcn(model)(x)
        fused.layout = "nctv"  # pinned: on one thread the rule would take the blocks
        original = fused(x)
        assert _choices(fused) == 0  # the blocks did not run
        torch.testing.assert_close(fused(x.double()), original)  # any float input, float32 logits, as the blocks
        torch.set_num_threads(2)
        fused.layout = "vtnc"  # pinned: on two threads the rule would take the original layout for this input
        internal = fused(x)
        assert _choices(fused) == 2 * len(BLOCKS)
    tol = 1e-5 * max(1.0, float(ref.abs().max()))
    torch.testing.assert_close(original, ref, atol=tol, rtol=0)
    torch.testing.assert_close(internal, ref, atol=tol, rtol=0)
    assert set(fused.state_dict()) == keys  # the original-layout copy is not part of the fused model's state
    assert "" not in dispatch_report(fused)  # pinned layouts are not the rule's choices
    with pytest.raises(ConfigError, match="unknown layout 'nhwc'; valid layouts are vtnc, nctv"):
        fused.layout = "nhwc"
    bf16 = optimize_for_inference(model, dtype=torch.bfloat16)  # by rule the blocks, also on two threads
    with torch.no_grad():
        bf16(x)
    assert "" not in dispatch_report(bf16) and len(dispatch_report(bf16)) == len(BLOCKS)  # the blocks ran


def test_the_model_follows_the_rule_and_the_pin(monkeypatch):
    model = _model().eval()
    x = _input(model)
    with torch.no_grad():
        model(x)  # CPU: the internal layout, whose modules choose kernels per shape
        assert _choices(model) > 0
        model.dispatch = "rules"  # clears the choices
        monkeypatch.setattr(stgcn.ops.dispatch, "is_compiling", lambda: True)
        model(x)  # as under torch.compile: the original structure, no kernel choice
        assert _choices(model) == 0
        monkeypatch.undo()
        model.layout = "nctv"
        model(x)
        assert _choices(model) == 0
        model.layout = "vtnc"
        model(x)
        assert _choices(model) > 0
    with pytest.raises(ConfigError, match="unknown layout 'nhwc'; valid layouts are vtnc, nctv"):
        model.layout = "nhwc"


@pytest.mark.parametrize("t", [11, 1])
def test_original_structure_gives_the_baseline_logits(t):
    model = _model().eval()
    base = baseline_from_stgcn(model)
    x = _input(model, t=t)
    with torch.no_grad():
        ref = base(x)
        internal = model(x)
        model.layout = "nctv"
        original = model(x)
    tol = 1e-5 * max(1.0, float(ref.abs().max()))
    torch.testing.assert_close(original, ref, atol=tol, rtol=0)
    torch.testing.assert_close(original, internal, atol=tol, rtol=0)


@pytest.mark.parametrize("mode", ["recompute", "store", "checkpoint"])
def test_original_structure_trains_like_the_baseline_in_float64(mode):
    model = _model().double()
    model.layout, model.memory_mode = "nctv", mode
    assert_trains_like_baseline(model, _input(model).double(), torch.tensor([0, 3]))


def test_torch_compile_sees_one_graph_without_breaks():
    """Under torch.compile the rule takes the original structure: one graph of standard ops (dynamo's explain,
    no code generated), in training and in eval. The internal layout's caches broke it into one graph per block
    and more (on an H200, dynamo hit its recompile limit and ran the rest eagerly)."""
    model = _model()
    x = _input(model, t=12)
    for mode in ("train", "eval"):
        getattr(model, mode)()
        explained = torch._dynamo.explain(model)(x)
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_rule_training_under_cpu_autocast_where_the_kernels_step_aside_runs_the_original_structure():
    assert layout_rule("cpu", compiling=False, rows=10**4, threads=1, autocast=True, grad=True) == "nctv"
    assert layout_rule("cpu", compiling=False, rows=10**4, threads=1, autocast=True, grad=False) == "vtnc"
    assert layout_rule("cpu", compiling=False, rows=10**4, threads=1, autocast=False, grad=True) == "vtnc"
    # the kernels in bfloat16 themselves (native bfloat16 products): the internal layout, by the other rules
    assert layout_rule("cpu", compiling=False, rows=10**4, threads=1, autocast=True, grad=True, lowp=True) == "vtnc"
    assert layout_rule("cpu", compiling=False, rows=10, threads=2, autocast=True, grad=True, lowp=True) == "nctv"
    assert layout_rule("cuda", compiling=False, rows=10**4, threads=1, autocast=True, grad=True, lowp=True) == "nctv"
    # ... for inputs wide enough for the tiled convolution: rows x the first block's channels
    assert LOWP_TRAIN_MIN_WORK == 20000
    for rows, channels, layout in ((512, 64, "vtnc"), (832, 32, "vtnc"), (512, 32, "nctv"), (832, 16, "nctv"),
                                   (512, None, "vtnc")):
        assert layout_rule("cpu", compiling=False, rows=rows, threads=1, autocast=True, grad=True, lowp=True,
                           channels=channels) == layout
    assert layout_rule("cpu", compiling=False, rows=512, threads=1, autocast=True, grad=False, lowp=True,
                       channels=16) == "vtnc"  # inference under autocast: the other rules
    assert layout_rule("cpu", compiling=False, rows=512, threads=1, grad=True, channels=16) == "vtnc"  # no autocast


def _autocast_grads(model: STGCN, x: torch.Tensor, autocast: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(x)
    out.float().sum().backward()
    return out.float().detach(), [p.grad.clone() for p in model.parameters()]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_training_step_under_cpu_bf16_autocast_where_the_kernels_step_aside_takes_the_original_structure(
        monkeypatch):
    monkeypatch.setattr(stgcn.ops.layout, "native_bf16", lambda: False)  # a CPU without native bfloat16
    model = _model().train()
    pinned = _model().train()
    pinned.load_state_dict(model.state_dict())
    pinned.layout = "nctv"
    x = _input(model, n=4, t=16)  # 128 rows per joint on one thread: the internal layout without autocast
    grads = [_autocast_grads(m, x)[1] for m in (model, pinned)]
    assert f"{tuple(x.shape)} layout -> nctv" in dispatch_report(model)[""]
    assert _choices(model) == 0  # no block chose an internal-layout kernel
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)  # the same standard ops as the pinned structure
    model.zero_grad()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # no autograd: the internal layout
        model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.eval()(x)  # eval mode with autograd (saliency): not a training step either
    assert _choices(model) > 0


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize(("n", "t", "graph_kernel"), [(8, 48, EdgeGraphConv), (2, 8, MixFirstGraphConv)])
def test_training_step_under_cpu_bf16_autocast_with_native_bf16_runs_our_kernels_in_bf16(monkeypatch, native, n, t,
                                                                                         graph_kernel):
    """On a CPU with native bfloat16 the graph-convolution (per pair: 768 rows per joint; mixing first: 32 rows)
    and tiled kernels run in bfloat16 on the internal layout; the gradients are as close to float32's as those
    of the original structure under the same autocast. Without native bfloat16 the kernels step aside."""
    if native and not stgcn.ops.layout.native_bf16():
        pytest.skip("this CPU has no native bfloat16 products")
    monkeypatch.setattr(stgcn.ops.layout, "native_bf16", lambda: native)
    ref_model = _model().train()
    models = {name: _model().train() for name in ("ours", "original")}
    for m in models.values():
        m.load_state_dict(ref_model.state_dict())
    models["ours"].layout, models["original"].layout = "vtnc", "nctv"
    pin_kernels(models["ours"], temporal="tiled")  # at these few channels the rule would take the direct one
    seen = []

    def spy(kernel):
        def apply(*args):
            seen.append((kernel.__name__, args[0].dtype, args[-1].dtype if kernel is MixFirstGraphConv
                         else args[1].dtype))
            return kernel.apply(*args)
        return type(kernel.__name__, (), {"apply": staticmethod(apply)})

    for kernel in (TiledConv, EdgeGraphConv, MixFirstGraphConv):
        monkeypatch.setattr(stgcn.models.layers, kernel.__name__, spy(kernel))
    x = _input(ref_model, n=n, t=t)
    ref_out, ref_grads = _autocast_grads(ref_model, x, autocast=False)
    seen.clear()
    (out, grads), (orig_out, orig_grads) = (_autocast_grads(m, x) for m in models.values())
    bf16 = torch.bfloat16
    if native:  # the kernels ran on bfloat16 inputs and weights, in every block
        assert sorted(set(seen)) == sorted({(graph_kernel.__name__, bf16, bf16), ("TiledConv", bf16, bf16)})
        assert len(seen) == 2 * len(BLOCKS)
    else:  # emulated bfloat16: our kernels step aside for standard ops under autocast
        assert seen == []
    assert all(g.dtype == torch.float32 for g in grads)  # the parameters' gradients, as autocast gives them
    assert _rel(out, ref_out) < 3 * _rel(orig_out, ref_out) + 1e-3
    ours = sum(float((g - r).norm() ** 2) for g, r in zip(grads, ref_grads, strict=True)) ** 0.5
    original = sum(float((g - r).norm() ** 2) for g, r in zip(orig_grads, ref_grads, strict=True)) ** 0.5
    norm = sum(float(r.norm() ** 2) for r in ref_grads) ** 0.5
    assert 0 < ours / norm < 2 * original / norm + 1e-3, (ours / norm, original / norm)


def test_training_under_bf16_autocast_with_native_bf16_takes_our_layout_only_for_wide_enough_inputs(monkeypatch):
    monkeypatch.setattr(stgcn.ops.layout, "native_bf16", lambda: True)  # the rule only: runs on any CPU
    model = _model().train()  # first block: 8 channels
    for n, t, layout in ((4, 16, "nctv"), (16, 128, "vtnc")):  # 128 and 4,096 rows per joint, x 8 channels
        x = _input(model, n=n, t=t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x).float().sum().backward()
        assert f"{tuple(x.shape)} layout -> {layout}" in dispatch_report(model)[""]
