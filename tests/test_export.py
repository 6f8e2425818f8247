"""Export to ONNX and TorchScript: dynamic shapes, parity with the eager model, refusal on disagreement."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stgcn.cli import main
from stgcn.errors import ConfigError
from stgcn.inference.export import ExportError, export_checkpoint, export_model, inference_copy
from tests.use_utils import CLASS_NAMES, small_checkpoint, small_model

# shapes unlike the example input (T=64, N=1, M=1): batch, frames and persons must all be dynamic
SHAPES = [(4, 3, 23, 18, 3), (1, 3, 101, 18, 1), (2, 3, 9, 18, 2)]


def _eager(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_inference_copy_folds_batchnorm_and_keeps_outputs():
    model = small_model(blocks=((8, 1), (16, 2), (16, 1)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded, count = inference_copy(model)
    assert count == 1 + 2 * 3 + 1  # data BN, bn1 + bn2 per block, the projected residual's BN
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 30, 18, 2)).astype(np.float32)
    np.testing.assert_allclose(_eager(folded, x), _eager(model, x), atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # original untouched
    unfolded, zero = inference_copy(model, fold=False)
    assert zero == 0 and np.array_equal(_eager(unfolded, x), _eager(model, x))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export_parity(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "ck.pt")
    out = tmp_path / "model.ts"
    assert main(["export", str(ck), "--format", "torchscript", "--out", str(out)]) == 0
    assert f"wrote {out} (torchscript, 6 BatchNorms folded)" in capsys.readouterr().out
    extra = {"stgcn.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra["stgcn.json"])
    assert json.loads(meta["stgcn.class_names"]) == CLASS_NAMES
    model = small_model()
    rng = np.random.default_rng(1)
    for shape in SHAPES:
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            got = loaded(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, _eager(model, x), atol=1e-4)


def test_onnx_export_parity(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    ck = small_checkpoint(tmp_path / "ck.pt", in_channels=2, layout="coco-17")
    out = tmp_path / "model.onnx"
    assert main(["export", str(ck), "--format", "onnx", "--out", str(out)]) == 0
    assert "max |exported - eager|" in capsys.readouterr().out
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["stgcn.class_names"]) == CLASS_NAMES
    assert json.loads(props["stgcn.config"])["in_channels"] == 2
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 2, "frames", 17, "persons"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model = small_model(in_channels=2, layout="coco-17")
    rng = np.random.default_rng(2)
    for n, _c, t, _v, m in SHAPES:
        x = rng.uniform(-1, 1, (n, 2, t, 17, m)).astype(np.float32)
        np.testing.assert_allclose(session.run(None, {"x": x})[0], _eager(model, x), atol=1e-4)


def test_export_refuses_a_disagreeing_file(tmp_path, monkeypatch):
    import stgcn.inference.export as export

    real_runner = export._runner

    def off_by_a_bit(fmt, path):
        run = real_runner(fmt, path)
        return lambda x: run(x) + 1e-3

    monkeypatch.setattr(export, "_runner", off_by_a_bit)
    out = tmp_path / "model.ts"
    with pytest.raises(ExportError, match=r"disagrees with the eager model by 0.001 \(> 0.0001\)"):
        export_checkpoint(small_checkpoint(tmp_path / "ck.pt"), out, "torchscript")
    assert list(tmp_path.iterdir()) == [tmp_path / "ck.pt"]  # nothing written, no temporary left
    # a looser tolerance accepts the same file
    report = export_checkpoint(tmp_path / "ck.pt", out, "torchscript", atol=2e-3)
    assert out.is_file() and 9e-4 < report.max_abs_diff < 2e-3


def test_export_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="valid formats are onnx, torchscript"):
        export_model(small_model(), tmp_path / "m.x", "tflite")
    assert main(["export", str(tmp_path / "missing.pt"), "--format", "torchscript", "--out",
                 str(tmp_path / "m.ts")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def test_missing_onnx_extra_is_named(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    ck = small_checkpoint(tmp_path / "ck.pt")
    assert main(["export", str(ck), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "the 'onnx' extra installs: pip install 'stgcn[onnx]'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]
