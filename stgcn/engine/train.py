"""The trainer: one CPU to many GPUs, resumable bit for bit.

:func:`train` runs a :class:`~stgcn.config.TrainConfig` and writes a run directory::

    config.yaml    the resolved config (num_classes, in_channels and layout filled in from the store)
    train.log      the log
    metrics.jsonl  one JSON line per epoch (lr, train loss/top-1, test loss/top-1/top-5/mean class, clips/s)
    events.*       TensorBoard scalars (when tensorboard is installed)
    last.pt        the full training state, written atomically after every epoch (for --resume)
    best.pt        the model of the epoch with the best test top-1 (an stgcn checkpoint)
    final.pt       the model after the last epoch (an stgcn checkpoint)

Reproducibility: the clip order and the augmentation of an epoch derive from ``(seed, epoch)`` only, and
``last.pt`` holds the model, optimiser, scheduler, gradient scaler and the python/numpy/torch RNG states of
every process, so a run that is interrupted and resumed ends with the same weights as one that is not.

Distributed: launched by ``torchrun --nproc-per-node N -m stgcn train ...`` (the environment variables
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), each process trains on its shard of every epoch
with DDP (nccl on CUDA, gloo on CPU); ``train.batch_size`` is the global batch. Only rank 0 writes files.
BatchNorm running statistics are averaged over the processes after each epoch, so every rank ends with the
same state.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from stgcn.data.dataset import SkeletonDataset
from stgcn.data.store import SkeletonStore, open_store
from stgcn.data.transforms import build_transform
from stgcn.engine.checkpoint import atomic_torch_save, save_checkpoint
from stgcn.engine.config import TrainConfig, dump_config
from stgcn.engine.evaluate import autocast_context, compute_metrics, format_metrics, predict_scores
from stgcn.errors import CheckpointError, ConfigError, DataError, StgcnError
from stgcn.models.config import STGCNConfig
from stgcn.models.stgcn import STGCN
from stgcn.utils.atomic import atomic_write_text

__all__ = ["train", "TrainResult", "EpochSampler", "LRSchedule", "build_optimizer", "open_training_store",
           "TRAIN_STATE_FORMAT", "RESUMABLE_KEYS"]

log = logging.getLogger(__name__)

TRAIN_STATE_FORMAT = "stgcn-train-state"
# config keys that may change when resuming (they do not change what is computed)
RESUMABLE_KEYS = ("train.epochs", "train.num_workers", "train.quiet", "train.eval_every", "train.eval_batch_size",
                  "train.device")


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        run_dir: The run directory.
        epochs_done: Epochs completed so far (over all sessions of the run).
        finished: Whether all configured epochs are done (False after ``stop_after``).
        metrics: The last test metrics (``top1``, ``top5``, ``mean_class``, ``loss``, ...), if any.
        best_top1: Best test top-1 so far and its epoch (1-based).
        model_config: The resolved model config.
        model: The trained model (this process's copy, unwrapped from DDP/compile), in eval mode.
    """

    run_dir: Path
    epochs_done: int
    finished: bool
    metrics: dict[str, Any] | None
    best_top1: float | None
    best_epoch: int | None
    model_config: STGCNConfig
    model: STGCN


# ------------------------------------------------------------------------------------------ sampling
def _derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends only on ``parts``."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


class EpochSampler(Sampler):
    """Dataset keys ``(position, epoch_seed)`` for one process, fixed by ``(seed, epoch)`` alone.

    An epoch is ``repeat`` passes over the dataset, each in its own random order (or in order when
    ``shuffle`` is False) and with its own augmentation seed; the concatenated order is padded by wrapping
    around to a multiple of ``num_replicas`` and process ``rank`` takes every ``num_replicas``-th key.

    Args:
        size: Dataset length.
        seed: Base seed.
        shuffle: Random order.
        repeat: Passes per epoch.
        num_replicas: Number of processes.
        rank: This process.
    """

    def __init__(self, size: int, *, seed: int, shuffle: bool = True, repeat: int = 1, num_replicas: int = 1,
                 rank: int = 0) -> None:
        if size < 1:
            raise DataError("cannot sample from an empty split")
        self.size, self.seed, self.shuffle, self.repeat = size, int(seed), shuffle, repeat
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and seeds :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.size * self.repeat / self.num_replicas)

    def keys(self) -> list[tuple[int, int]]:
        """All keys of this process for the current epoch."""
        order, seeds = [], []
        for p in range(self.repeat):
            if self.shuffle:
                rng = np.random.default_rng(_derive_seed(self.seed, self.epoch, p, 1))
                order.append(rng.permutation(self.size))
            else:
                order.append(np.arange(self.size))
            seeds.append(np.full(self.size, _derive_seed(self.seed, self.epoch, p, 2), dtype=np.int64))
        pos, sd = np.concatenate(order), np.concatenate(seeds)
        total = len(self) * self.num_replicas
        if total > len(pos):
            pad = np.resize(np.arange(len(pos)), total - len(pos))
            pos, sd = np.concatenate([pos, pos[pad]]), np.concatenate([sd, sd[pad]])
        return [(int(i), int(s)) for i, s in zip(pos[self.rank::self.num_replicas], sd[self.rank::self.num_replicas],
                                                 strict=True)]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys())


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # numpy work on small arrays; leave the cores to the model


def _loader(dataset: SkeletonDataset, sampler: Sampler | list[int], batch_size: int, num_workers: int, *,
            drop_last: bool, seed: int, pin_memory: bool) -> DataLoader:
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(worker_init_fn=_worker_init, persistent_workers=True, prefetch_factor=4)
    # the generator only seeds worker processes; passing one keeps the global torch RNG untouched
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      drop_last=drop_last, pin_memory=pin_memory, generator=torch.Generator().manual_seed(seed),
                      **kwargs)


# ------------------------------------------------------------------------------------ optimisation
@dataclass(frozen=True)
class LRSchedule:
    """Learning-rate factor per iteration: linear warm-up, then step, cosine or constant.

    Args:
        iters_per_epoch: Optimiser steps per epoch.
        epochs: Total epochs.
        warmup_epochs: Warm-up epochs (the factor rises linearly to 1 over their iterations).
        schedule: ``step``, ``cosine`` or ``constant``.
        milestones: Step schedule: epochs at which the factor is multiplied by ``gamma``.
        gamma: Step decay.
        min_factor: Cosine schedule: final factor (``min_lr / lr``).
    """

    iters_per_epoch: int
    epochs: int
    warmup_epochs: int = 0
    schedule: str = "step"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    min_factor: float = 0.0

    def __call__(self, step: int) -> float:
        warmup = self.warmup_epochs * self.iters_per_epoch
        if step < warmup:
            return (step + 1) / warmup
        if self.schedule == "step":
            epoch = step // self.iters_per_epoch
            return self.gamma ** sum(epoch >= m for m in self.milestones)
        if self.schedule == "cosine":
            total = max(self.epochs * self.iters_per_epoch - warmup, 1)
            progress = min((step - warmup) / total, 1.0)
            return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW over all parameters, as ``config.optim`` says."""
    o = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                               weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)


# ----------------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _resolve_device(option: str, local_rank: int, distributed: bool) -> torch.device:
    if option == "cpu" or (option == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"train.device {option!r}: CUDA is not available here (torch {torch.__version__}); "
                          f"use train.device=cpu")
    if option.startswith("cuda:") and not distributed:
        index = int(option[5:])
        if index >= torch.cuda.device_count():
            raise ConfigError(f"train.device {option!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(option)
    return torch.device("cuda", local_rank)


def _setup_distributed(device_option: str) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), _resolve_device(device_option, 0, False)
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise ConfigError("WORLD_SIZE > 1 but RANK is not set: launch distributed training with torchrun") from None
    device = _resolve_device(device_option, local, True)
    here = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://")
        here = True
    return _Dist(rank, world, local, here), device


def _average_bn_stats(model: nn.Module, d: _Dist) -> None:
    """Average BatchNorm running statistics over the processes (DDP keeps parameters, not buffers, in sync)."""
    if not d.enabled:
        return
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            for buf in (m.running_mean, m.running_var):
                if buf is not None:
                    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                    buf.div_(d.world_size)


def _all_sum(values: list[float], d: _Dist, device: torch.device) -> list[float]:
    if not d.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


# ----------------------------------------------------------------------------------------- states
def _rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states as tensors and plain lists (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state(legacy=True)
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"algorithm": str(np_state[0]), "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_state[0]), "state": [int(x) for x in py_state[1]],
                   "gauss_next": py_state[2]},
    }


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n["algorithm"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def _gather_rng(d: _Dist, device: torch.device) -> list[dict[str, Any]]:
    mine = _rng_state(device)
    if not d.enabled:
        return [mine]
    out: list[Any] = [None] * d.world_size
    dist.all_gather_object(out, mine)
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("layout",):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_resume_config(saved: dict[str, Any], current: TrainConfig, path: Path) -> None:
    old, new = _flatten(saved), _flatten(current.to_dict())
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k not in RESUMABLE_KEYS]
    if changed:
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
        raise ConfigError(f"{path}: cannot resume: the config differs from the run's ({shown}"
                          f"{'; ...' if len(changed) > 4 else ''}); only {', '.join(RESUMABLE_KEYS)} may change")


def read_train_state(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a ``last.pt`` training state with ``weights_only=True``."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no training state to resume from") from None
    except Exception as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: unreadable training state (truncated or foreign file: {msg})") from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(f"{path}: not an stgcn training state (expected the last.pt of `stgcn train`)")
    return state


# ---------------------------------------------------------------------------------------- helpers
def open_training_store(config: TrainConfig) -> SkeletonStore:
    """Open ``data.store``; generate it first when it is missing and ``data.synthetic`` is set."""
    path = Path(config.data.store)
    syn = config.data.synthetic
    if syn is not None:
        if not path.exists():
            from stgcn.data.synthetic import make_synthetic_store

            log.info("generating the synthetic store %s", path)
            make_synthetic_store(path, num_classes=syn.num_classes, clips_per_class=syn.clips_per_class,
                                 layout=syn.layout, seed=syn.seed)
        store = open_store(path)
        src = store.manifest.get("source", {})
        want = {"format": "synthetic", **dataclasses.asdict(syn)}
        if any(src.get(k) != v for k, v in want.items()):
            raise DataError(f"{path}: this store was not generated with the config's data.synthetic settings "
                            f"({src}); delete it to regenerate it")
        return store
    if not path.exists():
        raise DataError(f"{path}: no dataset store here (create it with `stgcn prepare ...`; paths are relative "
                        f"to the working directory)")
    return open_store(path)


class _Tee:
    """Adds a file handler for the run's ``train.log`` to the ``stgcn`` logger while training."""

    def __init__(self, path: Path | None, quiet_rank: bool) -> None:
        self.logger = logging.getLogger("stgcn")
        self.handler: logging.Handler | None = None
        self.old_level = self.logger.level
        self.quiet_rank = quiet_rank
        if path is not None:
            self.handler = logging.FileHandler(path, encoding="utf-8")
            self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            self.handler.setLevel(logging.INFO)

    def __enter__(self) -> _Tee:
        if self.quiet_rank:
            self.logger.setLevel(logging.WARNING)
        elif self.handler is not None:
            if self.logger.getEffectiveLevel() > logging.INFO:
                self.logger.setLevel(logging.INFO)
            self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.handler is not None:
            self.logger.removeHandler(self.handler)
            self.handler.close()
        self.logger.setLevel(self.old_level)


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("TensorBoard logging off: tensorboard is not installed (pip install 'stgcn[tensorboard]')")
        return None
    return SummaryWriter(log_dir=str(run_dir))


def _has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        log.info("no progress bars: tqdm is not installed (pip install 'stgcn[train]')")
        return False
    return True


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _truncate_jsonl(path: Path, epochs_done: int) -> None:
    """Drop metric lines of epochs after ``epochs_done`` (written before an interruption)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("epoch", 0) <= epochs_done]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    t = config.train
    if device.type == "cuda":
        if t.amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise ConfigError("train.amp bf16: this GPU does not support bfloat16; use train.amp=fp16")
        return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[t.amp]
    if t.amp != "none":
        log.info("train.amp=%s applies to CUDA only; on CPU set train.cpu_bf16=true for bf16 autocast", t.amp)
    return torch.bfloat16 if t.cpu_bf16 else None


# ------------------------------------------------------------------------------------------- train
def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train (and evaluate) a model as ``config`` says, writing the run directory ``out_dir``.

    Args:
        config: The recipe.
        out_dir: Run directory. Must not hold a run yet unless ``resume``.
        resume: Continue the run in ``out_dir`` from its ``last.pt``.
        stop_after: Stop after this many epochs of this call (a job with a time limit); resume later.
        progress: tqdm progress bars (ignored when ``config.train.quiet``).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: invalid option, a run already in ``out_dir`` without ``resume``, or a resume whose
            config differs from the run's.
        DataError: missing or unsuitable store.
        StgcnError: the loss became NaN/inf.

    Note:
        The model is initialised after ``torch.manual_seed(train.seed)``; dropout draws from torch's global RNG,
        whose state ``last.pt`` saves and ``resume`` restores.
    """
    t = config.train
    run_dir = Path(out_dir)
    d, device = _setup_distributed(t.device)
    try:
        return _train(config, run_dir, d, device, resume=resume, stop_after=stop_after,
                      progress=progress and not t.quiet)
    finally:
        if d.initialized_here:
            dist.destroy_process_group()


def _train(config: TrainConfig, run_dir: Path, d: _Dist, device: torch.device, *, resume: bool,
           stop_after: int | None, progress: bool) -> TrainResult:
    t, o = config.train, config.optim
    last_path = run_dir / "last.pt"
    if d.is_main:
        if resume and not last_path.exists():
            raise ConfigError(f"{run_dir}: nothing to resume (no last.pt); drop --resume to start a new run")
        if not resume and last_path.exists():
            raise ConfigError(f"{run_dir}: already holds a run (last.pt); pass --resume to continue it or choose "
                              f"another --out")
        run_dir.mkdir(parents=True, exist_ok=True)
    if t.batch_size % d.world_size:
        raise ConfigError(f"train.batch_size {t.batch_size} is not divisible by the {d.world_size} processes")

    # data: rank 0 may have to generate a synthetic store first
    if d.is_main:
        store = open_training_store(config)
    if d.enabled:
        dist.barrier()
    if not d.is_main:
        store = open_training_store(config)
    dc = config.data
    train_tf = build_transform(dc.preprocess, dc.augment, train=True, layout=store.layout)
    test_tf = build_transform(dc.preprocess, train=False, layout=store.layout)
    train_set = SkeletonDataset(store, dc.train_split, train_tf, seed=t.seed)
    test_set = SkeletonDataset(store, dc.test_split, test_tf, seed=t.seed)
    if len(train_set) == 0:
        raise DataError(f"{store.path}: split {dc.train_split!r} is empty")

    # model
    sample = test_tf(store.clip(int(train_set.indices[0])))
    in_channels = int(sample.shape[-4])
    layout = store.manifest["layout"] if isinstance(store.manifest["layout"], str) else store.layout
    model_cfg = config.model.resolve(len(store.class_names), in_channels, layout)
    model_layout = model_cfg.graph.build().layout
    if model_layout.num_joints != store.layout.num_joints:
        raise ConfigError(f"model.graph.layout {model_layout.name!r} has {model_layout.num_joints} joints; the "
                          f"store {store.path} has {store.layout.num_joints} ({store.layout.name!r})")
    if model_cfg.num_classes < len(store.class_names):
        raise ConfigError(f"model.num_classes {model_cfg.num_classes} < the store's {len(store.class_names)} classes")
    if model_cfg.in_channels != in_channels:
        raise ConfigError(f"model.in_channels {model_cfg.in_channels}, but the preprocessed clips have "
                          f"{in_channels} channels")
    resolved = dataclasses.replace(config, model=dataclasses.replace(
        config.model, num_classes=model_cfg.num_classes, in_channels=model_cfg.in_channels,
        graph=dataclasses.replace(config.model.graph, layout=model_cfg.graph.to_dict()["layout"])))

    torch.manual_seed(t.seed)
    net = STGCN(model_cfg).to(device)
    if t.sync_bn and d.enabled:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    model: nn.Module = net
    if d.enabled:
        model = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    if t.compile:
        model = torch.compile(model)

    # loaders
    per_rank = t.batch_size // d.world_size
    sampler = EpochSampler(len(train_set), seed=t.seed, shuffle=True, repeat=t.repeat,
                           num_replicas=d.world_size, rank=d.rank)
    drop_last = len(sampler) > per_rank
    pin = device.type == "cuda"
    train_loader = _loader(train_set, sampler, per_rank, t.num_workers, drop_last=drop_last, seed=t.seed,
                           pin_memory=pin)
    eval_bs = t.eval_batch_size or t.batch_size
    test_keys = list(range(d.rank, len(test_set), d.world_size))
    test_loader = _loader(test_set, test_keys, eval_bs, t.num_workers, drop_last=False, seed=t.seed,
                          pin_memory=pin) if len(test_set) else None
    iters = len(train_loader)

    optimizer = build_optimizer(net, config)
    schedule = LRSchedule(iters, t.epochs, o.warmup_epochs, o.schedule, o.milestones, o.gamma, o.min_lr / o.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    amp_dtype = _amp_dtype(config, device)
    scaler = torch.amp.GradScaler("cuda") if (device.type == "cuda" and amp_dtype == torch.float16) else None
    criterion = nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)

    start_epoch, best_top1, best_epoch, last_metrics = 0, None, None, None
    if resume:
        state = read_train_state(last_path)
        _check_resume_config(state["config"], resolved, last_path)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scheduler.lr_lambdas[0] = schedule  # the config decides the schedule (train.epochs may have grown)
        old_epochs = state["config"]["train"]["epochs"]
        if old_epochs != t.epochs:
            log.warning("train.epochs changed from %d to %d on resume: the %s schedule now spans %d epochs",
                        old_epochs, t.epochs, o.schedule, t.epochs)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        if len(rng) == d.world_size:
            _set_rng_state(rng[d.rank], device)
        else:
            log.warning("resuming with %d processes instead of %d: RNG states not restored", d.world_size, len(rng))
        start_epoch = int(state["epoch"])
        best_top1, best_epoch = state.get("best_top1"), state.get("best_epoch")
        last_metrics = state.get("metrics")
        del state

    meta = {"store": str(store.path), "train_split": dc.train_split, "test_split": dc.test_split,
            "train_config": resolved.to_dict()}
    preprocess = dc.preprocess.to_dict()
    class_names = list(store.class_names) + [str(i) for i in range(len(store.class_names), model_cfg.num_classes)]
    tb = None
    if d.is_main:
        atomic_write_text(run_dir / "config.yaml", dump_config(resolved))
        if resume:
            _truncate_jsonl(run_dir / "metrics.jsonl", start_epoch)
        tb = _tensorboard(run_dir)

    with _Tee(run_dir / "train.log" if d.is_main else None, quiet_rank=not d.is_main):
        progress = progress and d.is_main and _has_tqdm()
        n_params = sum(p.numel() for p in net.parameters())
        log.info("%s run %s: %d train / %d test clips (%s), %d classes, %s, %.2fM parameters, device %s%s",
                 "resuming" if resume else "starting", run_dir, len(train_set), len(test_set), store.path,
                 model_cfg.num_classes, f"layout {model_layout.name}", n_params / 1e6, device,
                 f", {d.world_size} processes" if d.enabled else "")
        if resume:
            log.info("resumed from %s after epoch %d", last_path, start_epoch)
        epochs_run = 0
        for epoch in range(start_epoch, t.epochs):
            sampler.set_epoch(epoch)
            model.train()
            tic = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            loss_t = torch.zeros((), dtype=torch.float64, device=device)
            correct_t = torch.zeros((), dtype=torch.float64, device=device)
            seen = 0
            bar = _progress(iters, f"epoch {epoch + 1}/{t.epochs}", progress)
            for it, (x, y, _) in enumerate(train_loader):
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                with autocast_context(device, amp_dtype):
                    logits = model(x)
                loss = criterion(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if t.grad_clip is not None:
                        scaler.unscale_(optimizer)
                        nn.utils.clip_grad_norm_(net.parameters(), t.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if t.grad_clip is not None:
                        nn.utils.clip_grad_norm_(net.parameters(), t.grad_clip)
                    optimizer.step()
                scheduler.step()
                n = y.shape[0]
                loss_t += loss.detach().double() * n  # no host sync per step
                correct_t += (logits.detach().argmax(dim=1) == y).sum()
                seen += n
                if bar is not None:
                    bar.update()
                    if it % 5 == 0 or it == iters - 1:
                        rate = seen * d.world_size / (time.perf_counter() - tic)
                        bar.set_postfix(loss=f"{loss_t.item() / seen:.3f}", acc=f"{100 * correct_t.item() / seen:.1f}%",
                                        clips_s=f"{rate:.0f}", refresh=False)
            if bar is not None:
                bar.close()
            loss_sum, correct, seen = _all_sum([loss_t.item(), correct_t.item(), float(seen)], d, device)
            train_time = time.perf_counter() - tic
            if not math.isfinite(loss_sum):
                raise StgcnError(f"training diverged: the loss is {loss_sum / seen} in epoch {epoch + 1} (lower "
                                 f"optim.lr or set train.grad_clip)")
            _average_bn_stats(net, d)
            record: dict[str, Any] = {
                "epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen,
                "train_top1": correct / seen, "train_clips_per_s": seen / train_time, "train_time_s": train_time}
            done = epoch + 1
            if test_loader is not None and (done % t.eval_every == 0 or done == t.epochs):
                tic = time.perf_counter()
                metrics = _evaluate(net, test_loader, device, amp_dtype, d, class_names)
                record["eval_time_s"] = time.perf_counter() - tic
                if metrics is not None:
                    last_metrics = {k: v for k, v in metrics.items() if k != "per_class"}
                    record.update({f"test_{k}": v for k, v in last_metrics.items() if k != "num_samples"})
            improved = "test_top1" in record and (best_top1 is None or record["test_top1"] > best_top1)
            if improved:
                best_top1, best_epoch = record["test_top1"], done
            if d.is_main:
                _log_epoch(record, t.epochs)
                _append_jsonl(run_dir / "metrics.jsonl", record)
                if tb is not None:
                    for k, v in record.items():
                        if k != "epoch":
                            tb.add_scalar(k.replace("_", "/", 1), v, done)
                    tb.flush()
                if improved:
                    save_checkpoint(run_dir / "best.pt", net, class_names=class_names, preprocess=preprocess,
                                    metadata={**meta, "epoch": done, "metrics": last_metrics, "kind": "best"})
            rng = _gather_rng(d, device)
            if d.is_main:
                atomic_torch_save({
                    "format": TRAIN_STATE_FORMAT, "format_version": 1, "epoch": done,
                    "config": resolved.to_dict(), "model_config": model_cfg.to_dict(),
                    "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None, "rng": rng,
                    "best_top1": best_top1, "best_epoch": best_epoch, "metrics": last_metrics,
                }, last_path)
            epochs_run += 1
            if stop_after is not None and epochs_run >= stop_after and done < t.epochs:
                log.info("stopping after %d epoch(s) of this session (epoch %d/%d); continue with --resume",
                         epochs_run, done, t.epochs)
                break
        epochs_done = start_epoch + epochs_run
        finished = epochs_done >= t.epochs
        if finished and d.is_main:
            save_checkpoint(run_dir / "final.pt", net, class_names=class_names, preprocess=preprocess,
                            metadata={**meta, "epoch": t.epochs, "metrics": last_metrics, "kind": "final"})
            summary = format_metrics(last_metrics) if last_metrics else "no test split"
            log.info("finished %d epochs: last epoch %s; best top-1 %s", t.epochs, summary,
                     f"{100 * best_top1:.2f}% at epoch {best_epoch}" if best_top1 is not None else "-")
    if tb is not None:
        tb.close()
    if d.enabled:
        dist.barrier()
    net.eval()
    return TrainResult(run_dir, epochs_done, finished, last_metrics, best_top1, best_epoch, model_cfg, net)


def _evaluate(net: nn.Module, loader: DataLoader, device: torch.device, amp_dtype: torch.dtype | None, d: _Dist,
              class_names: list[str]) -> dict[str, Any] | None:
    """Test metrics over all processes' shards (computed on every rank, identical)."""
    scores, labels, indices = predict_scores(net, loader, device=device, amp_dtype=amp_dtype)
    if d.enabled:
        parts: list[Any] = [None] * d.world_size
        dist.all_gather_object(parts, (scores, labels, indices))
        parts = [p for p in parts if len(p[0])]
        scores = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        indices = np.concatenate([p[2] for p in parts])
        order = np.argsort(indices, kind="stable")
        scores, labels = scores[order], labels[order]
    if len(scores) == 0:
        return None
    metrics, _ = compute_metrics(scores, labels, class_names)
    return metrics


def _log_epoch(r: dict[str, Any], epochs: int) -> None:
    line = (f"epoch {r['epoch']}/{epochs}  lr {r['lr']:.4g}  train loss {r['train_loss']:.4f} "
            f"top-1 {100 * r['train_top1']:.2f}%  {r['train_clips_per_s']:.0f} clips/s {r['train_time_s']:.1f}s")
    if "test_top1" in r:
        line += (f"  |  test loss {r['test_loss']:.4f} top-1 {100 * r['test_top1']:.2f}% "
                 f"top-5 {100 * r['test_top5']:.2f}% mean class {100 * r['test_mean_class']:.2f}%")
    log.info(line)

