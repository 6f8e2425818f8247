"""The ONNX export graph (stgcn.inference.export_graph): same logits as the reference, the intended ops."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from stgcn.errors import ConfigError
from stgcn.inference.export import export_model
from stgcn.inference.export_graph import EXPORT_GRAPHS, ExportSTGCN, export_graph
from stgcn.inference.optimize import optimize_for_inference
from stgcn.models.reference import reference_from_stgcn
from tests.use_utils import small_model

# widening, strided, identity and narrowing blocks (C_in > C_out takes the project-then-mix path)
BLOCKS = ((8, 1), (16, 2), (16, 1), (8, 1))


def _reference(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return reference_from_stgcn(model).eval()(x)


@pytest.mark.parametrize(("layout", "in_channels", "shape"), [
    ("openpose-18", 3, (3, 23, 18, 2)),
    ("coco-17", 2, (1, 9, 17, 1)),
    ("ntu-rgb+d", 3, (2, 40, 25, 3)),
])
def test_export_module_matches_the_reference(layout, in_channels, shape):
    model = small_model(layout, in_channels=in_channels, blocks=BLOCKS)
    module = export_graph(optimize_for_inference(model))
    assert isinstance(module, ExportSTGCN)
    assert [b.mix_first for b in module.blocks] == [True, True, True, False]
    n, t, v, m = shape
    x = torch.rand((n, in_channels, t, v, m), generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        got = module(x)
    torch.testing.assert_close(got, _reference(model, x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="expected input of shape"):
        module(x[:, :, :, :-1])


def test_export_graph_choices():
    fused = optimize_for_inference(small_model())
    assert EXPORT_GRAPHS[0] == "nchw" and export_graph(fused, "fused") is fused
    with pytest.raises(ConfigError, match="valid graphs are nchw, fused"):
        export_graph(fused, "nhwc")


def test_onnx_graph_is_convolutions_and_products(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    model = small_model("coco-17", blocks=BLOCKS)
    out = tmp_path / "m.onnx"
    report = export_model(model, out, "onnx")
    assert report.max_abs_diff <= 1e-4
    ops = Counter(node.op_type for node in onnx.load(str(out)).graph.node)
    residual_convs = 2  # (8 -> 16, stride 2) and (16 -> 8)
    assert ops["Conv"] == 2 * len(BLOCKS) + residual_convs  # graph 1x1 + temporal per block, residual 1x1s
    assert ops["MatMul"] == len(BLOCKS)  # one joint-mixing product per block
    assert ops["Transpose"] == 1  # the input only: no layout changes between blocks
    assert ops["Einsum"] == 0 and ops["Gather"] <= 3 * len(BLOCKS) + 4  # shape bookkeeping only (fused: 42)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    for shape in [(2, 3, 31, 17, 2), (1, 3, 5, 17, 1), (5, 3, 64, 17, 1)]:
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        got = session.run(None, {"x": x})[0]
        np.testing.assert_allclose(got, _reference(model, torch.from_numpy(x)).numpy(), atol=1e-4)


def test_export_writes_the_fused_graph_on_request(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    model = small_model()
    report = export_model(model, tmp_path / "f.onnx", "onnx", graph="fused")
    assert report.max_abs_diff <= 1e-4
    ops = Counter(node.op_type for node in onnx.load(str(tmp_path / "f.onnx")).graph.node)
    assert ops["Transpose"] > 1  # the fused model's layout needs a Transpose around each convolution
    with pytest.raises(ConfigError, match="valid graphs are"):
        export_model(model, tmp_path / "x.onnx", "onnx", graph="nhwc")
    assert not (tmp_path / "x.onnx").exists()
