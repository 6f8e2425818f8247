"""Export a trained model to ONNX or TorchScript for deployment, verified against the eager model.

:func:`export_model` prepares an inference copy of the model (BatchNorm folded into the convolutions by
:func:`stgcn.inference.optimize.optimize_for_inference`, an exact rewrite up to float rounding), writes it with batch
size N, frames T and persons M dynamic, then loads the written file (onnxruntime for ONNX, ``torch.jit.load``
for TorchScript) and runs it against the original eager model on random inputs of several shapes (uniform
in [-1, 1), the scale of normalised keypoints). The file is moved into place only if every output agrees
within ``atol`` (1e-4 by default); otherwise :class:`ExportError` says by how much it disagreed.

The exported graph takes ``x`` (N, C, T, V, M) float32 and returns ``logits`` (N, num_classes). The
checkpoint's class names, preprocessing and model config travel with it: as ONNX metadata properties
``stgcn.class_names``, ``stgcn.preprocess``, ``stgcn.config`` (JSON strings), and as the TorchScript extra
file ``stgcn.json``.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stgcn.engine.checkpoint import Checkpoint, load_checkpoint, preprocess_to_dict
from stgcn.errors import ConfigError, StgcnError
from stgcn.inference.export_graph import DEFAULT_EXPORT_GRAPH, export_graph
from stgcn.models.stgcn import STGCN
from stgcn.utils.checks import check_int
from stgcn.utils.limits import MAX_FRAMES

__all__ = ["export_model", "export_checkpoint", "ExportReport", "ExportError", "EXPORT_FORMATS", "inference_copy"]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "torchscript")


class ExportError(StgcnError):
    """The exported file does not reproduce the eager model (or could not be produced)."""


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and checked."""

    path: Path
    format: str
    max_abs_diff: float
    checked_shapes: list[tuple[int, ...]]
    folded_batchnorms: int
    seconds: float
    metadata: dict[str, str] = field(default_factory=dict)


def inference_copy(model: STGCN, *, fold: bool = True) -> tuple[nn.Module, int]:
    """The model prepared for export: a CPU float32 eval copy, with BatchNorm folded when ``fold``
    (:func:`stgcn.inference.optimize.optimize_for_inference`: every BatchNorm folded into the convolution before it,
    the data BatchNorm kept as a per-(joint, channel) affine map).

    Returns:
        ``(module, number of BatchNorm layers folded away)``.
    """
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    cpu = copy.deepcopy(model).cpu().float().eval()
    if not fold:
        return cpu, 0
    from stgcn.inference.optimize import optimize_for_inference

    count = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in cpu.modules())
    return optimize_for_inference(cpu).eval(), count


def _check_shapes(model: STGCN, frames: int) -> list[tuple[int, ...]]:
    c, v = model.config.in_channels, model.num_joints
    t = max(1, frames)
    # batch, frames (not a multiple of the strides too) and persons all vary
    return [(1, c, t, v, 1), (2, c, max(1, t // 2 + 3), v, 2), (3, c, max(1, t + 5), v, 1)]


def _random_input(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform in [-1, 1): the scale of normalised keypoints (so the tolerance is not spent on logits
    inflated by out-of-range inputs)."""
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def _metadata(ck: Checkpoint | None, model: STGCN) -> dict[str, str]:
    meta = {"stgcn.config": json.dumps(model.config.to_dict()),
            "stgcn.input": "x: (N, C, T, V, M) float32", "stgcn.output": "logits: (N, num_classes)"}
    if ck is not None:
        meta["stgcn.class_names"] = json.dumps(ck.class_names)
        meta["stgcn.preprocess"] = json.dumps(None if ck.preprocess is None else preprocess_to_dict(ck.preprocess))
    return meta


def _write_onnx(module: nn.Module, example: torch.Tensor, path: Path, opset: int,
                metadata: dict[str, str]) -> None:
    try:
        import onnx
    except ImportError:
        raise StgcnError("ONNX export needs onnx and onnxruntime, which the 'onnx' extra installs: "
                         "pip install 'stgcn[onnx]'") from None
    with warnings.catch_warnings():
        # the TorchScript-based exporter warns about its deprecation and about traced shape checks
        warnings.simplefilter("ignore")
        buffer = io.BytesIO()
        torch.onnx.export(module, (example,), buffer, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch", 2: "frames", 4: "persons"}, "logits": {0: "batch"}},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString())  # written by Python: a full disk is an OSError, not an abort


def _write_torchscript(module: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str]) -> None:
    with warnings.catch_warnings():
        # TracerWarning for the input-shape check (frozen at trace time); TorchScript's deprecation notice
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, (example,), check_trace=False)
        traced = torch.jit.freeze(traced.eval())
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"stgcn.json": json.dumps(metadata)})
    # torch.jit.save to a file name aborts the interpreter on a full disk (C++ writer): write the bytes here
    path.write_bytes(buffer.getvalue())


def _runner(fmt: str, path: Path) -> Any:
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise StgcnError("checking an ONNX export needs onnxruntime, which the 'onnx' extra installs: "
                             "pip install 'stgcn[onnx]'") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(["logits"], {"x": x})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream, still works
        loaded = torch.jit.load(str(path), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return loaded(torch.from_numpy(x)).numpy()
    return run


def export_model(model: STGCN, out: str | Path, fmt: str, *, checkpoint: Checkpoint | None = None,
                 fold: bool = True, atol: float = 1e-4, frames: int = 64, opset: int = 17,
                 seed: int = 0, graph: str = DEFAULT_EXPORT_GRAPH) -> ExportReport:
    """Export ``model`` to ``out`` and verify the written file against the eager model.

    Args:
        model: The trained model (left unchanged).
        out: Output file.
        fmt: ``onnx`` or ``torchscript``.
        checkpoint: Its checkpoint, whose class names and preprocessing are stored with the export.
        fold: Fold BatchNorm into the convolutions (:func:`inference_copy`).
        atol: Largest allowed absolute difference between exported and eager logits.
        frames: Frames T of the example input; the check also uses other T, N and M.
        opset: ONNX opset version.
        seed: Seed of the random check inputs.
        graph: The ONNX graph written for a folded model (:func:`stgcn.inference.export_graph.export_graph`).

    Raises:
        ExportError: the exported file disagrees with the eager model by more than ``atol`` (nothing is
            written).
        StgcnError: a needed extra is missing.

    Shape:
        exported input x: (N, C, T, V, M) with N, T, M dynamic; output (N, num_classes).
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats are {', '.join(EXPORT_FORMATS)}")
    if not atol > 0 or not math.isfinite(atol):
        raise ConfigError(f"atol must be a positive finite number, got {atol!r}")
    frames = check_int(frames, "frames", maximum=MAX_FRAMES)
    opset = check_int(opset, "opset")
    from stgcn.utils.atomic import atomic_path

    start = time.perf_counter()
    out = Path(out)
    eager = getattr(model, "module", model)
    eager = copy.deepcopy(getattr(eager, "_orig_mod", eager)).cpu().float().eval()
    module, folded = inference_copy(eager, fold=fold)
    rng = np.random.default_rng(seed)
    shapes = _check_shapes(eager, frames)
    example = torch.from_numpy(_random_input(rng, shapes[0]))
    metadata = _metadata(checkpoint, eager)
    worst = 0.0
    with atomic_path(out) as tmp:
        try:
            if fmt == "onnx":
                onnx_module = export_graph(module, graph) if fold else module
                _write_onnx(onnx_module, example, tmp, opset, metadata)
            else:
                _write_torchscript(module, example, tmp, metadata)
        except StgcnError:
            raise
        except Exception as e:  # exporter failures surface as many types
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise ExportError(f"{out}: {fmt} export failed ({msg})") from None
        run = _runner(fmt, tmp)
        for shape in shapes:
            x = _random_input(rng, shape)
            with torch.inference_mode():
                expected = eager(torch.from_numpy(x)).numpy()
            got = np.asarray(run(x))
            if got.shape != expected.shape:
                raise ExportError(f"{out}: exported {fmt} model returned shape {got.shape} for input {shape}; "
                                  f"the eager model returns {expected.shape}")
            diff = float(np.abs(got - expected).max())
            worst = max(worst, diff)
            if not diff <= atol:
                raise ExportError(f"{out}: exported {fmt} model disagrees with the eager model by {diff:.3g} "
                                  f"(> {atol:g}) on an input of shape {shape}; nothing was written")
    seconds = time.perf_counter() - start
    logger.debug("exported %s (%s), %d BatchNorms folded, max |diff| %.2e over shapes %s", out, fmt, folded,
                worst, shapes)
    return ExportReport(out, fmt, worst, shapes, folded, seconds, metadata)


def export_checkpoint(checkpoint: str | Path | Checkpoint, out: str | Path, fmt: str, **kwargs: Any) -> ExportReport:
    """Load a checkpoint and :func:`export_model` it (its class names and preprocessing travel along)."""
    ck = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    return export_model(ck.model, out, fmt, checkpoint=ck, **kwargs)
