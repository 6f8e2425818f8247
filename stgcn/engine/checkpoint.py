"""Self-describing model checkpoints: format version, model config, class names, preprocessing, weights,
free metadata. :func:`load_checkpoint` rebuilds the model from the file alone.

File layout (a dict saved with ``torch.save``, loadable with ``torch.load(weights_only=True)``)::

    {"format": "stgcn", "format_version": 1,
     "config": STGCNConfig.to_dict(), "class_names": [...] | None,
     "preprocess": PreprocessConfig.to_dict() | {"kind": "mm_pipeline", **MMPipelineConfig.to_dict()} | None,
     "metadata": {...}, "state_dict": {...}, "sha256": "<hex digest of the state_dict tensors and the config>",
     "layout_fingerprint": "<16 hex digits: stgcn.graph.identity; checked at load, absent in older files>"}

A ``preprocess`` mapping without ``kind`` (every file written before MM pipelines existed) is a
``PreprocessConfig``; ``kind: mm_pipeline`` is the MMAction2/PYSKL test pipeline of a converted checkpoint.

Integrity: the zip container's CRCs are checked before unpickling, the ``sha256`` content hash is verified
at load (a checkpoint written before it existed loads with a debug log), and NaN/inf weights are refused.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stgcn.data.mm_pipeline import MMPipelineConfig
from stgcn.data.transforms import PreprocessConfig
from stgcn.errors import CheckpointError, ConfigError
from stgcn.graph.identity import check_recorded_fingerprint
from stgcn.graph.layouts import get_layout
from stgcn.models.config import STGCNConfig
from stgcn.models.stgcn import STGCN
from stgcn.utils.atomic import atomic_write_bytes
from stgcn.utils.integrity import HASH_ALGORITHM, check_finite, check_zip, content_digest

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "atomic_torch_save", "FORMAT_VERSION",
           "read_checkpoint_file", "verify_checkpoint", "preprocess_to_dict", "preprocess_from_dict",
           "PREPROCESS_KINDS"]

log = logging.getLogger(__name__)

FORMAT = "stgcn"
FORMAT_VERSION = 1
MM_KIND = "mm_pipeline"
PREPROCESS_KINDS = ("stgcn", MM_KIND)


def preprocess_from_dict(d: Any) -> PreprocessConfig | MMPipelineConfig:
    """Parse a stored ``preprocess`` mapping strictly: ``kind`` ``mm_pipeline`` is an :class:`MMPipelineConfig`;
    ``stgcn`` or no ``kind`` a :class:`PreprocessConfig`.

    Raises:
        ConfigError: not a mapping, an unknown kind (the valid ones are listed) or invalid fields.
    """
    if isinstance(d, PreprocessConfig | MMPipelineConfig):
        return d
    if not isinstance(d, dict):
        raise ConfigError(f"preprocess: expected a mapping, got {type(d).__name__}")
    kind = d.get("kind", "stgcn")
    rest = {k: v for k, v in d.items() if k != "kind"}
    if kind == MM_KIND:
        return MMPipelineConfig.from_dict(rest)
    if kind == "stgcn":
        return PreprocessConfig.from_dict(rest)
    raise ConfigError(f"preprocess: unknown kind {kind!r}; valid kinds are {', '.join(PREPROCESS_KINDS)}")


def preprocess_to_dict(p: PreprocessConfig | MMPipelineConfig | dict[str, Any]) -> dict[str, Any]:
    """The stored mapping: a ``PreprocessConfig``'s fields as before (no ``kind``), an MM pipeline tagged."""
    p = preprocess_from_dict(p)
    return {"kind": MM_KIND, **p.to_dict()} if isinstance(p, MMPipelineConfig) else p.to_dict()


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (eval mode) and what was saved with it.

    ``preprocess`` is the saved preprocessing, parsed (strictly) once at load time: our
    :class:`PreprocessConfig`, or the :class:`MMPipelineConfig` of a converted MMAction2/PYSKL checkpoint.
    """

    model: STGCN
    config: STGCNConfig
    class_names: list[str] | None = None
    preprocess: PreprocessConfig | MMPipelineConfig | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to memory, then to a temporary file in the target directory renamed over ``path``.

    Serialising to memory first makes a full disk an ordinary :class:`OSError` (an
    :class:`~stgcn.utils.atomic.OutputError` naming ``path``) instead of an error deep in PyTorch's writer.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getbuffer())


def save_checkpoint(path: str | Path, model: STGCN, *, class_names: list[str] | None = None,
                    preprocess: PreprocessConfig | MMPipelineConfig | dict[str, Any] | None = None,
                    metadata: dict[str, Any] | None = None) -> None:
    """Write a self-describing checkpoint atomically.

    Args:
        path: Destination file.
        model: The model (a DDP/compiled wrapper is unwrapped).
        class_names: Names of the classes, in label order.
        preprocess: The test-time preprocessing the model expects (a :class:`PreprocessConfig`, an
            :class:`MMPipelineConfig` or the mapping of either; stored as the mapping, see the module docstring).
        metadata: Free JSON-like data (training recipe, metrics, provenance).
    """
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    if isinstance(class_names, str | bytes):
        raise ConfigError(f"class_names must be a list of names, got the string {class_names[:40]!r}")
    if class_names is not None and len(class_names) != model.config.num_classes:
        raise ConfigError(f"{len(class_names)} class names given for a model with "
                          f"{model.config.num_classes} classes")
    if preprocess is not None:
        preprocess = preprocess_to_dict(preprocess)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    check_finite(state, path)
    config = model.config.to_dict()
    atomic_torch_save({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "preprocess": preprocess,
        "metadata": dict(metadata or {}),
        "state_dict": state,
        HASH_ALGORITHM: content_digest(state, config),
        "layout_fingerprint": get_layout(model.config.graph.layout).fingerprint,
    }, path)


def read_checkpoint_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint's raw dict with ``weights_only=True``, with one-line errors.

    The zip container's CRCs are checked first; :func:`verify_checkpoint` checks the content.
    """
    path = Path(path)
    check_zip(path)  # first: it names a directory, FIFO or device for what it is
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, ... all surface as various types
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a readable stgcn checkpoint (truncated or foreign file: {msg})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        hint = ""
        if isinstance(obj, dict) and any(str(k).startswith("st_gcn_networks.") for k in obj):
            hint = "; it looks like an original ST-GCN state_dict: run `stgcn convert original` first"
        raise CheckpointError(f"{path}: not an stgcn checkpoint (no 'format': 'stgcn' entry){hint}")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format_version {version!r} is not supported "
                              f"(this stgcn reads up to {FORMAT_VERSION})")
    for key in ("config", "state_dict"):
        if not isinstance(obj.get(key), dict):
            raise CheckpointError(f"{path}: checkpoint lacks its '{key}' entry")
    return obj


def verify_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    """Check a raw checkpoint's content hash (when it has one) and that its weights are finite.

    Raises:
        CheckpointError: a hash that does not match (the file was altered or damaged), or NaN/inf weights.
    """
    digest = obj.get(HASH_ALGORITHM)
    if digest is None:
        log.debug("%s: no content hash (written by an older stgcn); integrity not verified", path)
    elif not isinstance(digest, str) or digest != content_digest(obj["state_dict"], obj["config"]):
        raise CheckpointError(f"{path}: corrupt checkpoint (its weights or config do not match the {HASH_ALGORITHM} "
                              f"written with them: the file was altered or damaged)")
    check_finite(obj["state_dict"], path)


def _check_class_names(names: Any, num_classes: int, path: str | Path) -> None:
    """A checkpoint's class names: ``None`` or a list of ``num_classes`` strings (a string is not a list)."""
    if names is None:
        return
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        shown = repr(names)[:60]
        raise CheckpointError(f"{path}: class_names must be a list of strings, got {shown}")
    if len(names) != num_classes:
        raise CheckpointError(f"{path}: {len(names)} class names for a model with {num_classes} classes")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild a model from a checkpoint written by :func:`save_checkpoint`.

    The weights must match the saved config exactly (strict key and shape matching).

    Raises:
        CheckpointError: missing, truncated or foreign file, or weights that do not fit the config.
    """
    obj = read_checkpoint_file(path, map_location)
    try:
        config = STGCNConfig.from_dict(obj["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: invalid model config ({e})") from None
    if not config.is_resolved:
        raise CheckpointError(f"{path}: invalid model config (num_classes, in_channels and graph.layout must be set)")
    check_recorded_fingerprint(get_layout(config.graph.layout), obj.get("layout_fingerprint"), str(path),
                               error=CheckpointError)
    model = STGCN(config)
    try:
        model.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as e:
        msg = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{path}: weights do not match the saved config ({msg})") from None
    verify_checkpoint(obj, path)
    _check_class_names(obj.get("class_names"), config.num_classes, path)
    model.eval()
    preprocess = obj.get("preprocess")
    if preprocess is not None:
        try:
            preprocess = preprocess_from_dict(preprocess)
        except ConfigError as e:
            raise CheckpointError(f"{path}: invalid preprocessing ({e})") from None
    return Checkpoint(model=model, config=config, class_names=obj.get("class_names"),
                      preprocess=preprocess, metadata=obj.get("metadata") or {})
