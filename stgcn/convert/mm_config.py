"""Read MMAction2 / PYSKL ``.py`` configs without executing them, and translate their ST-GCN parts.

A config file is parsed with :mod:`ast`. Assignments of literals, ``dict(...)`` calls, lists, tuples, names
assigned earlier in the file, constant subscripts (``data['test'] = data['val']``) and numeric arithmetic are
evaluated; any other expression is kept as an unreadable placeholder, which is an error only when the model or
the test pipeline uses it. Imports, functions, loops and other statements are refused. ``_base_`` files are
resolved relative to the config and merged as mmengine/mmcv do (dicts merged key by key unless
``_delete_=True``, everything else replaced).

:func:`model_spec` checks the ``model`` dict against what :class:`~stgcn.models.stgcn.STGCN` can express and
:func:`pipeline_from_steps` turns the test pipeline list into a :class:`~stgcn.data.mm_pipeline.MMPipelineConfig`.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stgcn.data.mm_pipeline import FRAMEWORKS, MMPipelineConfig
from stgcn.errors import ConfigError
from stgcn.graph.mm_layouts import MM_LAYOUT_NAMES
from stgcn.utils.checks import check_int, check_number, is_int

__all__ = ["read_mm_config", "parse_mm_config", "model_spec", "pipeline_from_steps", "test_pipeline_steps",
           "MMModelSpec"]

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.Mod: operator.mod}


class _Unreadable:
    """Stands for an expression the reader does not evaluate."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<not read: {self.text}>"


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        items = [_eval(e, env) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {_eval(k, env): _eval(v, env) for k, v in zip(node.keys, node.values, strict=True)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict"
            and not node.args and all(k.arg is not None for k in node.keywords)):
        return {k.arg: _eval(k.value, env) for k in node.keywords}
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    if isinstance(node, ast.Subscript):
        base, key = _eval(node.value, env), _eval(node.slice, env)
        try:
            return base[key] if isinstance(base, dict | list | tuple) else _Unreadable(ast.unparse(node))
        except (KeyError, IndexError, TypeError):
            return _Unreadable(ast.unparse(node))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand, env)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _eval(node.left, env), _eval(node.right, env)
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b)):
            try:
                return _BINOPS[type(node.op)](a, b)
            except (ArithmeticError, ValueError):
                pass
    return _Unreadable(ast.unparse(node)[:80])


def _assign(target: ast.AST, value: Any, env: dict[str, Any], where: str) -> None:
    if isinstance(target, ast.Name):
        env[target.id] = value
        return
    if isinstance(target, ast.Subscript):
        container, key = _eval(target.value, env), _eval(target.slice, env)
        if isinstance(container, dict) and isinstance(key, str | int):
            container[key] = value
            return
    raise ConfigError(f"{where}: line {target.lineno}: cannot read the assignment to {ast.unparse(target)!r} "
                      "(only names and constant keys of dicts are read)")


def parse_mm_config(text: str, where: str = "config") -> dict[str, Any]:
    """Evaluate the assignments of a config's source text (no ``_base_`` resolution).

    Raises:
        ConfigError: a syntax error or a statement other than an assignment (imports, functions, loops...).
    """
    try:
        tree = ast.parse(text, filename=where)
    except SyntaxError as e:
        raise ConfigError(f"{where}: not valid Python (line {e.lineno}: {e.msg})") from None
    env: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            value = _eval(stmt.value, env)
            for target in stmt.targets:
                _assign(target, value, env, where)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            _assign(stmt.target, _eval(stmt.value, env), env, where)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        else:
            kind = type(stmt).__name__
            hint = " (new-style mmengine configs with imports are not supported)" if "Import" in kind else ""
            raise ConfigError(f"{where}: line {stmt.lineno}: a {kind} statement is not read; only assignments "
                              f"of literals, dict(...), lists and names are{hint}")
    return env


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not value.get("_delete_", False):
            out[key] = _merge(out[key], value)
        elif isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k != "_delete_"}
        else:
            out[key] = value
    return out


def read_mm_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read an upstream ``.py`` config file and its ``_base_`` files (relative paths, resolved if present).

    Raises:
        ConfigError: an unreadable file, a statement that is not read, a missing or circular ``_base_``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror or e})") from None
    env = parse_mm_config(text, str(path))
    bases = env.pop("_base_", [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list | tuple) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: _base_ must be a file name or a list of them, got {bases!r}")
    merged: dict[str, Any] = {}
    for base in bases:
        base_path = (path.parent / base).resolve()
        if base_path in _seen:
            raise ConfigError(f"{path}: _base_ {base!r} includes itself")
        if not base_path.is_file():
            raise ConfigError(f"{path}: its _base_ {base!r} is not at {base_path}; put the upstream base files "
                              "next to it (same relative paths) or use a catalogue name")
        merged = _merge(merged, read_mm_config(base_path, (*_seen, base_path)))
    return _merge(merged, env)


def _check_readable(value: Any, what: str, where: str) -> None:
    if isinstance(value, _Unreadable):
        raise ConfigError(f"{where}: {what} uses an expression that is not read: {value.text}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_readable(v, f"{what}.{k}", where)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_readable(v, f"{what}[{i}]", where)


def _options(d: Any, what: str, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: {what} must be a dict, got {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"{where}: {what} option(s) {unknown} are not supported; supported: {sorted(allowed)}")
    return d


@dataclass(frozen=True)
class MMModelSpec:
    """The ST-GCN a config describes, in the terms :class:`~stgcn.models.stgcn.STGCN` needs.

    ``blocks`` is the (channels, temporal stride) table the upstream backbone builds; ``layout`` is our
    built-in layout name; ``graph_mode`` is ``stgcn_spatial`` or ``spatial``.
    """

    layout: str
    graph_mode: str
    max_hop: int
    in_channels: int
    blocks: tuple[tuple[int, int], ...]
    dropout: float
    num_classes: int
    average_clips: str


_BACKBONE_KEYS = {"type", "graph_cfg", "in_channels", "base_channels", "data_bn_type", "ch_ratio", "num_person",
                  "num_stages", "inflate_stages", "down_stages", "tcn_dropout", "gcn_adaptive", "gcn_conv_pos",
                  "gcn_with_res", "tcn_type", "gcn_type", "pretrained", "init_cfg"}
_HEAD_KEYS = {"type", "num_classes", "in_channels", "dropout", "loss_cls", "init_cfg", "average_clips", "mode",
              "spatial_type"}


def model_spec(model: Any, where: str = "config") -> MMModelSpec:
    """Check an upstream ``model`` dict (RecognizerGCN + STGCN + GCNHead) and translate it.

    Raises:
        ConfigError: another architecture, or an option our model cannot express (the message names it).
    """
    _check_readable(model, "model", where)
    model = _options(model, "model", {"type", "backbone", "cls_head", "test_cfg", "train_cfg",
                                      "data_preprocessor"}, where)
    if model.get("type") != "RecognizerGCN":
        raise ConfigError(f"{where}: model type {model.get('type')!r} is not supported; only RecognizerGCN")
    bb = _options(model.get("backbone"), "model.backbone", _BACKBONE_KEYS, where)
    if bb.get("type") != "STGCN":
        raise ConfigError(f"{where}: backbone {bb.get('type')!r} is not supported; only STGCN")
    fixed = {"data_bn_type": "VC", "gcn_adaptive": "importance", "gcn_conv_pos": "pre", "gcn_with_res": False,
             "tcn_type": "unit_tcn", "gcn_type": "unit_gcn"}
    for key, value in fixed.items():
        if bb.get(key, value) != value:
            extra = (" (BatchNorm over M*V*C, one set of statistics per person slot, has no equivalent in this "
                     "project's model yet)") if key == "data_bn_type" else ""
            raise ConfigError(f"{where}: backbone {key}={bb[key]!r} is not supported, only {value!r}{extra}")
    graph = _options(bb.get("graph_cfg"), "backbone.graph_cfg", {"layout", "mode", "max_hop"}, where)
    layout, mode = graph.get("layout", "coco"), graph.get("mode", "spatial")
    if layout not in MM_LAYOUT_NAMES:
        raise ConfigError(f"{where}: graph layout {layout!r} is not supported; valid ones are "
                          f"{', '.join(MM_LAYOUT_NAMES)}")
    if mode not in ("stgcn_spatial", "spatial"):
        raise ConfigError(f"{where}: graph mode {mode!r} is not supported; valid ones are stgcn_spatial, spatial")
    max_hop = check_int(graph.get("max_hop", 1), f"{where}: graph_cfg.max_hop")
    if mode == "spatial" and max_hop != 1:
        raise ConfigError(f"{where}: graph mode 'spatial' needs max_hop 1, got {max_hop}")
    in_channels = check_int(bb.get("in_channels", 3), f"{where}: backbone.in_channels")
    base = check_int(bb.get("base_channels", 64), f"{where}: backbone.base_channels")
    ratio = check_number(bb.get("ch_ratio", 2), f"{where}: backbone.ch_ratio", minimum=0)
    stages = check_int(bb.get("num_stages", 10), f"{where}: backbone.num_stages")
    inflate, down = bb.get("inflate_stages", [5, 8]), bb.get("down_stages", [5, 8])
    if in_channels == base:
        raise ConfigError(f"{where}: in_channels == base_channels ({base}) drops the first block upstream; "
                          "not supported")
    for name, value in (("inflate_stages", inflate), ("down_stages", down)):
        if not isinstance(value, list | tuple) or not all(is_int(x) for x in value):
            raise ConfigError(f"{where}: backbone.{name} must be a list of stage numbers, got {value!r}")
    blocks, times = [(base, 1)], 0
    for i in range(2, stages + 1):
        times += i in inflate
        blocks.append((int(base * ratio ** times + 1e-4), 1 + (i in down)))
    dropout = bb.get("tcn_dropout", 0.0)
    if isinstance(dropout, list | tuple):
        if len(set(dropout[1:])) > 1:
            raise ConfigError(f"{where}: a different tcn_dropout per stage is not supported, got {dropout!r}")
        dropout = dropout[1] if len(dropout) > 1 else 0.0
    dropout = check_number(dropout, f"{where}: backbone.tcn_dropout", minimum=0, below=1)
    head = _options(model.get("cls_head"), "model.cls_head", _HEAD_KEYS, where)
    if head.get("type") not in ("GCNHead", "SimpleHead") or head.get("mode", "GCN") != "GCN":
        raise ConfigError(f"{where}: cls_head {head.get('type')!r} is not supported; only GCNHead")
    num_classes = check_int(head.get("num_classes"), f"{where}: cls_head.num_classes")
    if head.get("in_channels", blocks[-1][0]) != blocks[-1][0]:
        raise ConfigError(f"{where}: cls_head.in_channels {head['in_channels']} differs from the backbone's "
                          f"{blocks[-1][0]} output channels")
    test_cfg = model.get("test_cfg") or {}
    average = head.get("average_clips", test_cfg.get("average_clips", "prob") if isinstance(test_cfg, dict)
                       else "prob")
    if average not in ("prob", "score"):
        raise ConfigError(f"{where}: average_clips {average!r} is not supported; valid ones are prob, score")
    return MMModelSpec(MM_LAYOUT_NAMES[layout], mode, max_hop, in_channels, tuple(blocks), dropout, num_classes,
                       average)


def test_pipeline_steps(cfg: dict[str, Any], where: str = "config") -> list[dict[str, Any]]:
    """The test pipeline list of a read config (``test_dataloader.dataset.pipeline``, ``data.test.pipeline``
    or ``test_pipeline``)."""
    for path in (("test_dataloader", "dataset", "pipeline"), ("data", "test", "pipeline"), ("test_pipeline",)):
        node: Any = cfg
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):
            _check_readable(node, ".".join(path), where)
            return node
    raise ConfigError(f"{where}: no test pipeline (test_dataloader.dataset.pipeline, data.test.pipeline or "
                      "test_pipeline)")


_IGNORED_STEPS = {"PoseDecode", "PackActionInputs", "Collect", "ToTensor"}


def pipeline_from_steps(steps: list[dict[str, Any]], framework: str, average_clips: str = "prob",
                        where: str = "config") -> MMPipelineConfig:
    """Translate an upstream test pipeline list into an :class:`MMPipelineConfig`.

    Raises:
        ConfigError: a transform or option that is not reproduced (the message names it).
    """
    if framework not in FRAMEWORKS:
        raise ConfigError(f"unknown framework {framework!r}; valid ones are {', '.join(FRAMEWORKS)}")
    kw: dict[str, Any] = {"framework": framework, "average_clips": average_clips}
    renames = {
        "PreNormalize2D": {"img_shape": "img_shape", "threshold": "score_threshold", "mode": "norm_mode"},
        "PreNormalize3D": {k: k for k in ("zaxis", "xaxis", "align_center", "align_spine", "align_shoulder")},
        "GenSkeFeat": {"dataset": "dataset", "feats": "feats", "axis": None},
        "UniformSampleFrames": {"clip_len": "clip_len", "num_clips": "num_clips", "seed": "seed",
                                "test_mode": None, "p_interval": "p_interval"},
        "PadTo": {"length": "pad_to", "mode": "pad_mode"},
        "FormatGCNInput": {"num_person": "num_person", "mode": "format_mode"},
    }
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("type"), str):
            raise ConfigError(f"{where}: a pipeline step must be dict(type=...), got {step!r}")
        name = "UniformSampleFrames" if step["type"] == "UniformSample" else step["type"]
        if name in _IGNORED_STEPS:
            continue
        if name not in renames:
            raise ConfigError(f"{where}: test pipeline step {step['type']!r} is not supported; supported steps are "
                              f"{', '.join(sorted(set(renames) | _IGNORED_STEPS | {'UniformSample'}))}")
        if name == "PreNormalize2D":
            kw["prenormalize"] = "2d"
        elif name == "PreNormalize3D":
            kw["prenormalize"] = "3d"
        elif name == "UniformSampleFrames" and framework == "mmaction2" and not step.get("test_mode", False):
            raise ConfigError(f"{where}: UniformSampleFrames without test_mode=True samples randomly; "
                              "only test mode is reproduced")
        elif name == "GenSkeFeat" and step.get("axis", -1) != -1:
            raise ConfigError(f"{where}: GenSkeFeat axis {step['axis']!r} is not supported, only -1")
        for key, value in step.items():
            if key == "type":
                continue
            if key not in renames[name]:
                raise ConfigError(f"{where}: {step['type']} option {key!r} is not supported; supported: "
                                  f"{sorted(renames[name])}")
            if renames[name][key] is not None:
                kw[renames[name][key]] = value
        if name == "UniformSampleFrames":
            kw.setdefault("num_clips", 1)
    return MMPipelineConfig(**kw)
