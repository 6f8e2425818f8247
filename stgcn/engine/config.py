"""Training configs: YAML mapped one to one onto frozen, validated dataclasses.

A config file has four sections, each a dataclass below::

    data:   DataConfig    store, splits, preprocess (PreprocessConfig), augment (AugmentConfig), synthetic
    model:  STGCNConfig   num_classes, in_channels and graph.layout unset by default: resolve() takes the store's
    optim:  OptimConfig   sgd | adamw, lr, weight decay, linear warm-up then step | cosine | constant
    train:  RunConfig     epochs, batch size, workers, seed, device, AMP, compile, ...

Every key is checked against its dataclass field by :func:`stgcn.utils.dataclass_config.from_dict`: an unknown key
raises a one-line :class:`~stgcn.errors.ConfigError` naming the valid keys, a value of the wrong type one naming the
expected type.
``--set section.key=value`` overrides are parsed as Python literals with :func:`ast.literal_eval` (never
``eval``; ``true``/``false``/``null`` are accepted too), fall back to a plain string, then go through the same
type checks as the file.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stgcn.data.transforms import AugmentConfig, PreprocessConfig
from stgcn.errors import ConfigError
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.utils.dataclass_config import from_dict, to_dict
from stgcn.utils.device import check_device_option
from stgcn.utils.files import decode_text, parse_yaml, read_file_bytes
from stgcn.utils.limits import MAX_TEXT_BYTES

if TYPE_CHECKING:
    from stgcn.data.store import SkeletonStore

__all__ = [
    "TrainConfig", "DataConfig", "SyntheticConfig", "OptimConfig", "RunConfig", "UNRESOLVED_MODEL",
    "load_config", "parse_config", "apply_overrides", "parse_override", "config_from_dict", "dump_config",
    "OPTIMIZERS", "SCHEDULES", "AMP_MODES",
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
        cpu_bf16: bf16 autocast when training on CPU (not the same numbers: an opt-in). Fast where the CPU
            multiplies bfloat16 natively (AVX512-BF16, AMX), where the model's own kernels run in bfloat16;
            elsewhere bfloat16 is emulated and slower than float32.
        compile: Wrap the model in ``torch.compile``.
        cudnn_benchmark: On CUDA, let cuDNN time its convolution algorithms once per input shape and keep the
            fastest (``torch.backends.cudnn.benchmark``; MMAction2's ``cudnn_benchmark``): faster for the fixed
            shapes of a training run, at the cost of run-to-run bit-exactness. Ignored on CPU.
        sync_bn: Synchronise BatchNorm statistics over DDP processes (BN sees the whole global batch).
        label_smoothing: Cross-entropy label smoothing.
        grad_clip: Clip the gradient norm to this value (``None``: no clipping).
        eval_every: Evaluate on the test split every this many epochs (and always after the last one).
        quiet: No progress bars (one log line per epoch).
        init_from: Fine-tune: start from the weights of this stgcn checkpoint (ours or converted; see
            :mod:`stgcn.engine.finetune`). Applies at the start of a run, not on resume.
        freeze_blocks: Keep the input BatchNorm and the first N blocks fixed (``None``: none).
        head_only_epochs: Train only the classifier for the first K epochs (``None``: none).
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
    cudnn_benchmark: bool = False
    sync_bn: bool = False
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    eval_every: int = 1
    quiet: bool = False
    init_from: str | None = None
    freeze_blocks: int | None = None
    head_only_epochs: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "repeat", "eval_every"):
            _check(getattr(self, name) >= 1, f"train.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.eval_batch_size is None or self.eval_batch_size >= 1,
               f"train.eval_batch_size must be >= 1, got {self.eval_batch_size}")
        _check(self.num_workers >= 0, f"train.num_workers must be >= 0, got {self.num_workers}")
        _check(self.amp in AMP_MODES, f"train.amp {self.amp!r} is not valid; valid modes are {', '.join(AMP_MODES)}")
        check_device_option(self.device, "train.device")
        _check(0 <= self.label_smoothing < 1, f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _check(self.grad_clip is None or self.grad_clip > 0, f"train.grad_clip must be > 0, got {self.grad_clip}")
        _check(self.init_from is None or bool(self.init_from), "train.init_from must be a checkpoint path")
        for name in ("freeze_blocks", "head_only_epochs"):
            value = getattr(self, name)
            _check(value is None or value >= 0, f"train.{name} must be >= 0, got {value}")


# The training config's model section by default: the data-dependent fields are taken from the store.
UNRESOLVED_MODEL = STGCNConfig(num_classes=None, in_channels=None, graph=GraphConfig(layout=None))


@dataclass(frozen=True)
class TrainConfig:
    """A whole training recipe: ``data``, ``model``, ``optim`` and ``train`` sections.

    ``model`` is the network's :class:`~stgcn.models.config.STGCNConfig`; a key the file leaves out of it takes
    :data:`UNRESOLVED_MODEL`'s value, so ``num_classes``, ``in_channels`` and ``graph.layout`` stay unset until
    :meth:`resolve` fills them from the store.
    """

    data: DataConfig
    model: STGCNConfig = UNRESOLVED_MODEL
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: RunConfig = field(default_factory=RunConfig)

    def resolve(self, store: SkeletonStore, in_channels: int) -> TrainConfig:
        """This config with the model's unset fields taken from the data (configured values win).

        Args:
            store: The training store: its class count and layout (a built-in name stays a name).
            in_channels: Channels per joint of the preprocessed clips.
        """
        layout = store.manifest["layout"] if isinstance(store.manifest["layout"], str) else store.layout
        model = self.model.resolve(len(store.class_names), in_channels, layout)
        return dataclasses.replace(self, model=model)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, no tuples) that :func:`config_from_dict` maps back to an equal config."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return config_from_dict(data)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from a plain mapping (a parsed YAML file)."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping with sections data, model, optim, train; got {data!r}")
    return from_dict(TrainConfig, data)


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
    path = Path(path)
    text = decode_text(read_file_bytes(path, max_bytes=MAX_TEXT_BYTES, error=ConfigError, what="config"), path,
                       error=ConfigError)
    data = parse_yaml(text, path, error=ConfigError)
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
