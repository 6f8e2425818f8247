"""Import published MMAction2 1.x and PYSKL ST-GCN checkpoints into :class:`~stgcn.models.stgcn.STGCN`.

Upstream (``mmaction/models/backbones/stgcn.py``, ``pyskl/models/gcns/stgcn.py``) a block is
``unit_gcn`` (1x1 conv to K*C_out channels, ``einsum('nkctv,kvw->nctw', x, A * PA)``, BN, ReLU), then
``unit_tcn`` (9x1 conv, BN, dropout), plus the residual and a ReLU; the data BN normalises V*C channels per
person (index v*C + c); the head averages over (T, V), then over persons, then applies a linear layer. That is
this project's block with ``gcn.bn`` as ``tcn.bn1``, ``PA`` as ``edge_importance`` and the graph ``A`` kept once.

Graph modes: ``stgcn_spatial`` equals this project's ``spatial`` strategy with ``original`` normalisation
(checked entry by entry against the checkpoint's ``A``). ``spatial`` (identity, inward, outward, each
column-normalised) has the same partitions, in the same order, as the ``notes`` spatial strategy on a tree
skeleton but other values; the importance is rescaled so that ``A * edge_importance`` is upstream's
``A * PA`` exactly (up to float rounding).
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stgcn.convert.catalogue import class_names, get_model_entry
from stgcn.convert.download import download
from stgcn.convert.mm_config import MMModelSpec, model_spec, pipeline_from_steps, read_mm_config, test_pipeline_steps
from stgcn.convert.safe_torch import load_checkpoint_restricted
from stgcn.data.mm_pipeline import FRAMEWORKS, MMPipelineConfig
from stgcn.errors import CheckpointError, ConfigError
from stgcn.graph.layouts import get_layout
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.stgcn import STGCN

__all__ = ["MMConversion", "convert_mm", "convert_mmaction2", "convert_pyskl", "load_mm_checkpoint",
           "resolve_mm_config"]

logger = logging.getLogger(__name__)

_HEAD = {"mmaction2": "cls_head.fc.", "pyskl": "cls_head.fc_cls."}
_BLOCK = re.compile(r"backbone\.gcn\.(\d+)\.(.+)")
_BLOCK_MAP = {"gcn.conv.": "gcn.conv.", "gcn.bn.": "tcn.bn1.", "tcn.conv.": "tcn.conv.", "tcn.bn.": "tcn.bn2.",
              "residual.conv.": "residual.conv.", "residual.bn.": "residual.bn."}


@dataclass
class MMConversion:
    """A converted checkpoint: the model (eval mode), its test preprocessing and where it came from.

    Attributes:
        model: The :class:`STGCN` holding the upstream weights.
        preprocessing: The upstream test pipeline, to store with the converted checkpoint.
        class_names: Action names in label order when the catalogue knows them, else None.
        info: framework, config name, url, stream, top1... (from the catalogue when the config is a name).
    """

    model: STGCN
    preprocessing: MMPipelineConfig
    class_names: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def load_mm_checkpoint(src: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a published ``.pth`` (``{'meta', 'state_dict'}``) from a path or an http(s)/file URL.

    Tried with ``torch.load(weights_only=True)`` first; where that refuses the metadata, with the restricted
    reader of :mod:`stgcn.convert.safe_torch` (no code from the file runs either way).

    Raises:
        CheckpointError: missing, truncated or foreign file (one line naming it).
    """
    path = download(str(src)) if re.match(r"(https?|file)://", str(src)) else Path(src)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # the weights-only unpickler refused something in the metadata
        logger.info("%s: weights-only load refused (%s); using the restricted reader", path, _first_line(e))
        obj = load_checkpoint_restricted(path)
    except Exception as e:  # torch raises many types for truncated/foreign files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(e)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict with 'state_dict', got {type(obj).__name__}")
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: no state_dict of tensors in the checkpoint")
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    return {str(k): v for k, v in sd.items()}, meta


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:160] if lines else type(e).__name__


def resolve_mm_config(config: str | Path, framework: str) -> tuple[MMModelSpec, MMPipelineConfig, dict[str, Any]]:
    """The model spec, test pipeline and catalogue info of a catalogue name or an upstream ``.py`` path.

    Raises:
        ConfigError: unknown name (lists the valid ones), unreadable config, unsupported option.
    """
    if framework not in FRAMEWORKS:
        raise ConfigError(f"unknown framework {framework!r}; valid ones are {', '.join(FRAMEWORKS)}")
    text = str(config)
    if text.endswith(".py") or Path(text).is_file():
        cfg = read_mm_config(text)
        if "model" not in cfg:
            raise ConfigError(f"{text}: no 'model' in the config")
        spec = model_spec(cfg["model"], text)
        steps = test_pipeline_steps(cfg, text)
        info: dict[str, Any] = {"framework": framework, "config": text}
    else:
        entry = get_model_entry(text, framework)
        spec = model_spec(entry.pop("model"), text)
        steps = entry.pop("test_pipeline")
        info = entry
    return spec, pipeline_from_steps(steps, framework, spec.average_clips, text), info


def _upstream_spatial(layout_name: str) -> np.ndarray:
    """Upstream ``Graph.spatial()``: identity, inward, outward (column-normalised), (source, target) indexed."""
    layout = get_layout(layout_name)
    v = layout.num_joints

    def normalized(pairs: list[tuple[int, int]]) -> np.ndarray:
        a = np.zeros((v, v))
        for i, j in pairs:
            a[j, i] = 1
        col = a.sum(0)
        return a @ np.diag(np.where(col > 0, 1.0 / np.where(col > 0, col, 1), 0.0))

    inward = [tuple(e) for e in layout.edges]
    return np.stack([np.eye(v), normalized(inward), normalized([(j, i) for i, j in inward])]).astype(np.float32)


def _check_graph(sd: dict[str, torch.Tensor], n_blocks: int, spec: MMModelSpec, ours: torch.Tensor,
                 where: str) -> torch.Tensor:
    """Check every block's ``A`` buffer; return upstream's A (what ``PA`` multiplies)."""
    upstream = ours if spec.graph_mode == "stgcn_spatial" else torch.from_numpy(_upstream_spatial(spec.layout))
    for i in range(n_blocks):
        a = sd[f"backbone.gcn.{i}.gcn.A"]
        if tuple(a.shape) != tuple(upstream.shape):
            raise CheckpointError(f"{where}: backbone.gcn.{i}.gcn.A has shape {tuple(a.shape)}, but layout "
                                  f"{spec.layout!r} mode {spec.graph_mode!r} gives {tuple(upstream.shape)}")
        if not torch.allclose(a.float(), upstream, atol=1e-6):
            raise CheckpointError(f"{where}: backbone.gcn.{i}.gcn.A differs from the {spec.graph_mode!r} graph of "
                                  f"layout {spec.layout!r}: wrong config for these weights?")
    return upstream


def _importance(pa: torch.Tensor, upstream: torch.Tensor, ours: torch.Tensor, key: str, where: str) -> torch.Tensor:
    """Our edge_importance with ``ours * importance == upstream * PA``."""
    if upstream is ours:
        return pa.float()
    effective = upstream * pa.float()
    if bool(((upstream != 0) & (ours == 0)).any()):
        raise CheckpointError(f"{where}: {key}: the upstream graph has edges this model's graph lacks")
    return torch.where(ours != 0, effective / torch.where(ours != 0, ours, torch.ones_like(ours)), 0.0)


def _map_key(key: str, head: str) -> str | None:
    if key.startswith("backbone.data_bn."):
        return "data_bn." + key[len("backbone.data_bn."):]
    if key.startswith(head):
        return "fc." + key[len(head):]
    m = _BLOCK.fullmatch(key)
    if m:
        for old, new in _BLOCK_MAP.items():
            if m.group(2).startswith(old):
                return f"blocks.{m.group(1)}.{new}{m.group(2)[len(old):]}"
    return None


def _upstream_key(key: str, head: str) -> str:
    """The upstream name of one of our state_dict keys (for error messages)."""
    if key.startswith("data_bn."):
        return "backbone." + key
    if key.startswith("fc."):
        return head + key[3:]
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    if m:
        if m.group(2) == "gcn.edge_importance":
            return f"backbone.gcn.{m.group(1)}.gcn.PA"
        for old, new in _BLOCK_MAP.items():
            if m.group(2).startswith(new):
                return f"backbone.gcn.{m.group(1)}.{old}{m.group(2)[len(new):]}"
    return key


def convert_mm(src: str | Path, *, config: str | Path, framework: str) -> MMConversion:
    """Build an :class:`STGCN` holding a published MMAction2 or PYSKL ST-GCN checkpoint.

    Args:
        src: The ``.pth`` path, or an ``http(s)://`` / ``file://`` URL (downloaded once into the cache).
        config: A catalogue config name (``stgcn_8xb16-joint-u100-80e_ntu60-xsub-keypoint-2d``,
            ``stgcn_pyskl_ntu60_xsub_3dkp/j``...) or a path to the upstream ``.py`` config.
        framework: ``mmaction2`` or ``pyskl``.

    Returns:
        The model in eval mode, its test preprocessing, class names and catalogue info.

    Raises:
        ConfigError: unknown config name, unreadable config or an option the model cannot express.
        CheckpointError: unreadable file, another architecture, a missing/extra key or a shape that does not
            match the config.
    """
    spec, pipeline, info = resolve_mm_config(config, framework)
    sd, meta = load_mm_checkpoint(src)
    where = str(src)
    head = _HEAD[framework]
    other = _HEAD["pyskl" if framework == "mmaction2" else "mmaction2"]
    if not any(k.startswith("backbone.gcn.") for k in sd):
        raise CheckpointError(f"{where}: no backbone.gcn.* weights; not an MMAction2/PYSKL ST-GCN checkpoint")
    if any(k.startswith(other) for k in sd) and not any(k.startswith(head) for k in sd):
        raise CheckpointError(f"{where}: the head is {other}*, not {head}*: it looks like a "
                              f"{'PYSKL' if framework == 'mmaction2' else 'MMAction2'} checkpoint")
    model = STGCN(STGCNConfig(
        num_classes=spec.num_classes, in_channels=spec.in_channels,
        graph=GraphConfig(layout=spec.layout, strategy="spatial", max_hop=spec.max_hop,
                          normalization="original" if spec.graph_mode == "stgcn_spatial" else "notes"),
        temporal_kernel=9, blocks=spec.blocks, edge_importance=True, dropout=spec.dropout))
    expected = model.state_dict()
    n_blocks = len(spec.blocks)
    missing_a = [i for i in range(n_blocks) if f"backbone.gcn.{i}.gcn.A" not in sd]
    if missing_a:
        raise CheckpointError(f"{where}: missing key(s) {[f'backbone.gcn.{i}.gcn.A' for i in missing_a]}")
    upstream_a = _check_graph(sd, n_blocks, spec, model.A, where)
    mapped: dict[str, torch.Tensor] = {"A": model.A}
    unknown = []
    for key, value in sd.items():
        if re.fullmatch(r"backbone\.gcn\.\d+\.gcn\.A", key):
            continue
        m = re.fullmatch(r"backbone\.gcn\.(\d+)\.gcn\.PA", key)
        if m:
            new = f"blocks.{m.group(1)}.gcn.edge_importance"
            if new in expected and tuple(value.shape) == tuple(expected[new].shape):
                value = _importance(value, upstream_a, model.A, key, where)
        else:
            new = _map_key(key, head)
        if new is None or new not in expected:
            unknown.append(key)
            continue
        if tuple(value.shape) != tuple(expected[new].shape):
            raise CheckpointError(f"{where}: {key} has shape {tuple(value.shape)}, but config {config} expects "
                                  f"{tuple(expected[new].shape)}")
        mapped[new] = value.to(expected[new].dtype)
    if unknown:
        raise CheckpointError(f"{where}: unexpected key(s) for config {config}: {sorted(unknown)[:8]}"
                              f"{' ...' if len(unknown) > 8 else ''}")
    missing = sorted(set(expected) - set(mapped))
    if missing:
        raise CheckpointError(f"{where}: missing key(s) for config {config}: "
                              f"{[_upstream_key(k, head) for k in missing][:8]}")
    model.load_state_dict(mapped, strict=True)
    names = class_names(info["class_names"]) if info.get("class_names") else None
    if names is not None and len(names) != spec.num_classes:
        names = None
    info = {**info, "framework": framework, "meta_keys": sorted(map(str, meta))}
    return MMConversion(model.eval(), pipeline, names, info)


def convert_mmaction2(src: str | Path, *, config: str | Path) -> MMConversion:
    """:func:`convert_mm` for an MMAction2 1.x checkpoint (head ``cls_head.fc``)."""
    return convert_mm(src, config=config, framework="mmaction2")


def convert_pyskl(src: str | Path, *, config: str | Path) -> MMConversion:
    """:func:`convert_mm` for a PYSKL checkpoint (head ``cls_head.fc_cls``)."""
    return convert_mm(src, config=config, framework="pyskl")
