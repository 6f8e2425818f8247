"""The built-in catalogue of published MMAction2 and PYSKL ST-GCN checkpoints (data in ``catalogue.json``)
and the NTU action names (``stgcn/data/class_names/*.txt``)."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from stgcn.errors import ConfigError

__all__ = ["list_models", "get_model_entry", "class_names", "CLASS_LISTS"]

CLASS_LISTS = ("ntu60", "ntu120")


def _models() -> list[dict[str, Any]]:
    text = resources.files("stgcn.convert").joinpath("catalogue.json").read_text(encoding="utf-8")
    return json.loads(text)["models"]


def list_models(framework: str | None = None) -> list[dict[str, Any]]:
    """Catalogue entries (name, framework, url, sha256 prefix, layout, classes, stream, top1, ...), without
    the upstream model/pipeline dicts; ``framework`` (``mmaction2`` or ``pyskl``) filters them."""
    keep = ("model", "test_pipeline")
    return [{k: v for k, v in e.items() if k not in keep} for e in _models()
            if framework is None or e["framework"] == framework]


def get_model_entry(name: str, framework: str | None = None) -> dict[str, Any]:
    """The full catalogue entry of a config name (with the upstream ``model`` dict and ``test_pipeline``).

    Raises:
        ConfigError: an unknown name (the message lists the valid ones).
    """
    models = [e for e in _models() if framework is None or e["framework"] == framework]
    for entry in models:
        if entry["name"] == name:
            return copy.deepcopy(entry)
    where = f" for {framework}" if framework else ""
    raise ConfigError(f"unknown config name {name!r}{where}; valid names are "
                      f"{', '.join(e['name'] for e in models)} (or a path to an upstream .py config)")


def class_names(name: str) -> list[str]:
    """The published action names of ``ntu60`` or ``ntu120``, in label order."""
    if name not in CLASS_LISTS:
        raise ConfigError(f"unknown class list {name!r}; valid ones are {', '.join(CLASS_LISTS)}")
    text = resources.files("stgcn.data").joinpath("class_names", f"{name}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
