"""Training configs: YAML mapped one to one onto frozen, validated dataclasses.

A config file has four sections, each a dataclass below::

    data:   DataConfig    store, splits, preprocess (PreprocessConfig), augment (AugmentConfig), synthetic
    model:  ModelConfig   the STGCNConfig fields; num_classes, in_channels and graph.layout default to the store's
    optim:  OptimConfig   sgd | adamw, lr, weight decay, linear warm-up then step | cosine | constant
    train:  RunConfig     epochs, batch size, workers, seed, device, AMP, compile, ...

Every key is checked against its dataclass field: an unknown key raises a one-line
:class:`~stgcn.errors.ConfigError` naming the valid keys, a value of the wrong type one naming the expected type.
``--set section.key=value`` overrides are parsed as Python literals with :func:`ast.literal_eval` (never
``eval``; ``true``/``false``/``null`` are accepted too), fall back to a plain string, then go through the same
type checks as the file.
"""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from stgcn.data.transforms import AugmentConfig, PreprocessConfig
from stgcn.errors import ConfigError
from stgcn.models.config import DEFAULT_BLOCKS, GraphConfig, STGCNConfig

__all__ = [
    "TrainConfig", "DataConfig", "SyntheticConfig", "ModelConfig", "GraphSection", "OptimConfig", "RunConfig",
    "load_config", "parse_config", "apply_overrides", "parse_override", "config_from_dict", "OPTIMIZERS",
    "SCHEDULES", "AMP_MODES",
]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("step", "cosine", "constant")
AMP_MODES = ("none", "bf16", "fp16")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class SyntheticConfig:
    """A synthetic store generated on first use (see :func:`stgcn.synthetic.make_synthetic_store`).

    Args:
        num_classes: Number of classes (distinct motion patterns).
        clips_per_class: Clips per class; two thirds train, one third test.
        layout: Skeleton layout of the generated clips.
        seed: Seed of the generator (same seed, same store).
    """

    num_classes: int = 8
    clips_per_class: int = 30
    layout: str = "kinect-v1"
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.num_classes >= 2, f"data.synthetic.num_classes must be >= 2, got {self.num_classes}")
        _check(self.clips_per_class >= 3,
               f"data.synthetic.clips_per_class must be >= 3, got {self.clips_per_class}")


@dataclass(frozen=True)
class DataConfig:
    """Where the clips come from and how they are turned into model inputs.

    Args:
        store: Path of a dataset store (``stgcn prepare``), relative to the working directory.
        train_split: Split trained on.
        test_split: Split evaluated on (every ``train.eval_every`` epochs and at the end).
        preprocess: Deterministic preprocessing, saved in the checkpoints.
        augment: Training-only augmentation.
        synthetic: When set and ``store`` does not exist, generate a synthetic store there first.
    """

    store: str
    train_split: str = "train"
    test_split: str = "test"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    synthetic: SyntheticConfig | None = None

    def __post_init__(self) -> None:
        _check(bool(self.store), "data.store must be a store directory")


@dataclass(frozen=True)
class GraphSection:
    """:class:`~stgcn.model.GraphConfig` with the layout optional (``None``: the store's layout)."""

    layout: str | dict | None = None
    strategy: str = "spatial"
    max_hop: int = 1
    dilation: int = 1
    normalization: str = "notes"

    def __post_init__(self) -> None:
        self.resolve(self.layout if self.layout is not None else "openpose-18")  # validates

    def resolve(self, layout: Any) -> GraphConfig:
        """The :class:`~stgcn.model.GraphConfig`, with ``layout`` used when none is configured."""
        return GraphConfig(layout=self.layout if self.layout is not None else layout, strategy=self.strategy,
                           max_hop=self.max_hop, dilation=self.dilation, normalization=self.normalization)


@dataclass(frozen=True)
class ModelConfig:
    """:class:`~stgcn.model.STGCNConfig` whose data-dependent fields may be left to the store.

    ``num_classes`` defaults to the store's class count and ``in_channels`` to the channels of the
    preprocessed input; :meth:`resolve` fills them in.
    """

    num_classes: int | None = None
    in_channels: int | None = None
    graph: GraphSection = field(default_factory=GraphSection)
    temporal_kernel: int = 9
    blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS
    edge_importance: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.resolve(self.num_classes or 1, self.in_channels or 3, "openpose-18")  # validates

    def resolve(self, num_classes: int, in_channels: int, layout: Any) -> STGCNConfig:
        """The model's :class:`~stgcn.model.STGCNConfig`; configured values win over the arguments."""
        return STGCNConfig(
            num_classes=self.num_classes if self.num_classes is not None else num_classes,
            in_channels=self.in_channels if self.in_channels is not None else in_channels,
            graph=self.graph.resolve(layout), temporal_kernel=self.temporal_kernel, blocks=self.blocks,
            edge_importance=self.edge_importance, dropout=self.dropout)


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule.

    The learning rate is set every iteration: it rises linearly from ``lr / warmup iterations`` to ``lr`` over
    ``warmup_epochs``, then follows ``schedule``: ``step`` multiplies it by ``gamma`` at each epoch in
    ``milestones`` (0-based: milestone 10 means epochs 0-9 use ``lr``, as the original ST-GCN code),
    ``cosine`` anneals it to ``min_lr`` at the last iteration, ``constant`` keeps it.

    Args:
        name: ``sgd`` or ``adamw``.
        lr: Base learning rate.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum.
        weight_decay: L2 penalty (SGD) or decoupled weight decay (AdamW), on every parameter.
        betas: AdamW betas.
        schedule: ``step``, ``cosine`` or ``constant``.
        milestones: Epochs at which the step schedule decays.
        gamma: Step decay factor.
        warmup_epochs: Epochs of linear warm-up (0: none).
        min_lr: Final learning rate of the cosine schedule.
    """

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "step"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        _check(self.name in OPTIMIZERS, f"optim.name {self.name!r} is not valid; valid optimizers are "
                                        f"{', '.join(OPTIMIZERS)}")
        _check(self.schedule in SCHEDULES, f"optim.schedule {self.schedule!r} is not valid; valid schedules are "
                                           f"{', '.join(SCHEDULES)}")
        _check(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _check(0 <= self.momentum < 1, f"optim.momentum must be in [0, 1), got {self.momentum}")
        _check(not (self.nesterov and self.name == "sgd" and self.momentum == 0),
               "optim.nesterov needs optim.momentum > 0")
        _check(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        _check(all(0 <= b < 1 for b in self.betas), f"optim.betas must be in [0, 1), got {list(self.betas)}")
        _check(all(m >= 0 for m in self.milestones) and list(self.milestones) == sorted(self.milestones),
               f"optim.milestones must be increasing epochs >= 0, got {list(self.milestones)}")
        _check(0 < self.gamma <= 1, f"optim.gamma must be in (0, 1], got {self.gamma}")
        _check(self.warmup_epochs >= 0, f"optim.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        _check(0 <= self.min_lr <= self.lr, f"optim.min_lr must be in [0, lr], got {self.min_lr}")


@dataclass(frozen=True)
class RunConfig:
    """How training runs (the ``train`` section).

    Args:
        epochs: Number of epochs.
        batch_size: Clips per optimiser step, over all processes (each of N DDP processes loads
            ``batch_size / N``), so a recipe means the same on any number of GPUs.
        eval_batch_size: Clips per batch in evaluation (default: ``batch_size``).
        repeat: Passes over the training split per epoch (CTR-GCN's NW-UCLA recipe uses 5).
        num_workers: DataLoader worker processes per training process.
        seed: Seed of the model initialisation, the order of the clips and the augmentation.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``. Under torchrun ``cuda`` means
            the process's local GPU.
        amp: Mixed precision on CUDA: ``none``, ``bf16`` or ``fp16`` (with a gradient scaler). Ignored on CPU.
        cpu_bf16: bf16 autocast when training on CPU.
        compile: Wrap the model in ``torch.compile``.
        sync_bn: Synchronise BatchNorm statistics over DDP processes (BN sees the whole global batch).
        label_smoothing: Cross-entropy label smoothing.
        grad_clip: Clip the gradient norm to this value (``None``: no clipping).
        eval_every: Evaluate on the test split every this many epochs (and always after the last one).
        quiet: No progress bars (one log line per epoch).
    """

    epochs: int = 80
    batch_size: int = 64
    eval_batch_size: int | None = None
    repeat: int = 1
    num_workers: int = 2
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    cpu_bf16: bool = False
    compile: bool = False
    sync_bn: bool = False
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    eval_every: int = 1
    quiet: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "repeat", "eval_every"):
            _check(getattr(self, name) >= 1, f"train.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.eval_batch_size is None or self.eval_batch_size >= 1,
               f"train.eval_batch_size must be >= 1, got {self.eval_batch_size}")
        _check(self.num_workers >= 0, f"train.num_workers must be >= 0, got {self.num_workers}")
        _check(self.amp in AMP_MODES, f"train.amp {self.amp!r} is not valid; valid modes are {', '.join(AMP_MODES)}")
        dev = self.device
        _check(dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit()),
               f"train.device {dev!r} is not valid; valid devices are auto, cpu, cuda, cuda:N")
        _check(0 <= self.label_smoothing < 1, f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _check(self.grad_clip is None or self.grad_clip > 0, f"train.grad_clip must be > 0, got {self.grad_clip}")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training recipe: ``data``, ``model``, ``optim`` and ``train`` sections."""

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, no tuples) that :func:`config_from_dict` maps back to an equal config."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return config_from_dict(data)


# ------------------------------------------------------------------------------ typed mapping -> dataclass
def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict or tp is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against (and, for tuples and floats, converted to) the annotation ``tp``."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                    raise e  # a mapping for a section: its own, more precise message
        raise bad
    if tp is type(None):
        if value is None:
            return None
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise bad
        args = typing.get_args(tp)
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            items = [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise bad
            items = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if isinstance(value, dict):
            return value
        raise bad
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return _build(tp, value, where)
        raise bad
    return value  # an annotation this checker does not know: the dataclass validates it


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, checking keys and types field by field."""
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"{prefix}unknown key{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(repr(k) for k in unknown)}; valid keys are {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints.get(name, Any), f"{where}.{name}" if where else name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}missing required key {name!r}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:  # ConfigError is a ValueError
        msg = " ".join(str(e).split())
        raise ConfigError(msg if where and msg.startswith(where) else f"{prefix}{msg}") from None


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from a plain mapping (a parsed YAML file)."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping with sections data, model, optim, train; got {data!r}")
    return _build(TrainConfig, data, "")


# ----------------------------------------------------------------------------------------- overrides
_YAML_WORDS = {"true": True, "false": False, "null": None, "none": None, "~": None}


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.05"`` -> ``(["optim", "lr"], 0.05)``.

    The value is a Python literal (:func:`ast.literal_eval`: numbers, strings, lists, tuples, dicts,
    ``True``/``False``/``None``), or ``true``/``false``/``null``; anything else is kept as a string.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. optim.lr=0.05")
    raw = raw.strip()
    if raw.lower() in _YAML_WORDS:
        value = _YAML_WORDS[raw.lower()]
    else:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the raw config mapping with ``--set`` overrides applied (checked later, with the file)."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[:i + 1])} is not a section")
            node = child
        node[path[-1]] = value
    return data


# ------------------------------------------------------------------------------------------- loading
def parse_config(data: dict[str, Any], overrides: list[str] | None = None, *, source: str = "config") -> TrainConfig:
    """Validate a raw mapping (plus ``--set`` overrides) into a :class:`TrainConfig`.

    Raises:
        ConfigError: one line naming ``source``, the key and what was expected.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with sections data, model, optim, train")
    try:
        data = apply_overrides(data, list(overrides or []))
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _yaml() -> Any:
    """The ``yaml`` module, or a one-line error naming the extra that installs it."""
    try:
        import yaml
    except ImportError:
        raise ConfigError("YAML configs need PyYAML: pip install 'stgcn[train]'") from None
    return yaml


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config file and apply ``--set`` style overrides.

    Raises:
        ConfigError: unreadable or invalid YAML, unknown key, wrong type or invalid value (one line).
    """
    yaml = _yaml()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror or e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"{path}: invalid YAML{where} ({problem})") from None
    return parse_config(data, overrides, source=str(path))


def dump_config(config: TrainConfig) -> str:
    """The config as YAML text (what a run directory's ``config.yaml`` holds)."""
    yaml = _yaml()

    class _Dumper(yaml.SafeDumper):
        pass

    def _flow_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)

    _Dumper.add_representer(list, _flow_list)
    return yaml.dump(config.to_dict(), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)
