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
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from stgcn.data.dataset import EpochSampler, SkeletonDataset, build_loader
from stgcn.data.store import SkeletonStore, open_store
from stgcn.data.transforms import build_transform
from stgcn.engine.checkpoint import save_checkpoint
from stgcn.engine.compat import check_store_fits
from stgcn.engine.config import TrainConfig, dump_config
from stgcn.engine.distributed import DistContext, all_gather, average_bn_stats, setup_distributed
from stgcn.engine.evaluate import format_metrics
from stgcn.engine.finetune import finetune_model_config, prepare_network, read_init_checkpoint, set_trainable
from stgcn.engine.loop import (
    LRSchedule,
    Stepper,
    amp_dtype,
    build_optimizer,
    evaluate_shards,
    log_epoch,
    train_one_epoch,
)
from stgcn.engine.run_dir import (
    RESUMABLE_KEYS,
    TRAIN_STATE_FORMAT,
    LogTee,
    append_jsonl,
    check_resume_config,
    check_run_dir,
    has_tqdm,
    open_tensorboard,
    read_train_state,
    rng_state,
    set_rng_state,
    sweep_run_dir,
    truncate_jsonl,
    write_train_state,
)
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import get_layout
from stgcn.models.config import STGCNConfig
from stgcn.models.stgcn import STGCN
from stgcn.utils.atomic import atomic_write_text

__all__ = ["train", "TrainResult", "EpochSampler", "LRSchedule", "build_optimizer", "open_training_store",
           "read_train_state", "TRAIN_STATE_FORMAT", "RESUMABLE_KEYS"]

log = logging.getLogger(__name__)


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


@dataclass
class _Data:
    """The store, the two splits and their loaders, and the resolved config."""

    store: SkeletonStore
    config: TrainConfig
    train_set: SkeletonDataset
    test_set: SkeletonDataset
    train_loader: DataLoader
    test_loader: DataLoader | None

    @property
    def class_names(self) -> list[str]:
        """The store's class names, padded with indices up to the model's class count."""
        names = list(self.store.class_names)
        return names + [str(i) for i in range(len(names), self.config.model.num_classes)]


@dataclass
class _State:
    """Progress of the run so far (restored by a resume)."""

    epoch: int = 0
    best_top1: float | None = None
    best_epoch: int | None = None
    metrics: dict[str, Any] | None = None


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


def _build_data(config: TrainConfig, d: DistContext, device: torch.device) -> _Data:
    """Open the store (rank 0 generates a synthetic one first), resolve the model config from it, check that
    they fit, and build the two loaders."""
    if d.is_main:
        store = open_training_store(config)
    d.barrier()
    if not d.is_main:
        store = open_training_store(config)
    dc, t = config.data, config.train
    train_tf = build_transform(dc.preprocess, dc.augment, train=True, layout=store.layout)
    test_tf = build_transform(dc.preprocess, train=False, layout=store.layout)
    train_set = SkeletonDataset(store, dc.train_split, train_tf, seed=t.seed)
    test_set = SkeletonDataset(store, dc.test_split, test_tf, seed=t.seed)
    if len(train_set) == 0:
        raise DataError(f"{store.path}: split {dc.train_split!r} is empty")
    in_channels = int(test_tf(store.clip(int(train_set.indices[0]))).shape[-4])
    resolved = config.resolve(store, in_channels)
    if t.init_from is not None:  # fine-tuning: the checkpoint's architecture, the store's classes
        source = read_init_checkpoint(t.init_from)
        resolved = dataclasses.replace(resolved, model=finetune_model_config(config, store, in_channels, source))
    check_store_fits(resolved.model, store, in_channels, error=ConfigError)

    per_rank = t.batch_size // d.world_size
    sampler = EpochSampler(len(train_set), seed=t.seed, shuffle=True, repeat=t.repeat, num_replicas=d.world_size,
                           rank=d.rank)
    pin = device.type == "cuda"
    train_loader = build_loader(train_set, per_rank, shuffle=False, sampler=sampler, num_workers=t.num_workers,
                                seed=t.seed, drop_last=len(sampler) > per_rank, pin_memory=pin)
    test_loader = build_loader(test_set, t.eval_batch_size or t.batch_size, shuffle=False,
                               num_workers=t.num_workers, seed=t.seed, pin_memory=pin, num_replicas=d.world_size,
                               rank=d.rank) if len(test_set) else None
    return _Data(store, resolved, train_set, test_set, train_loader, test_loader)


def _build_model(config: STGCNConfig, seed: int, d: DistContext, device: torch.device, *, sync_bn: bool,
                 compile_model: bool, setup: Callable[[STGCN], None] | None = None) -> tuple[STGCN, nn.Module]:
    """The network (initialised after ``torch.manual_seed(seed)``, then ``setup``) and the module training
    calls (DDP/compiled)."""
    torch.manual_seed(seed)
    net = STGCN(config).to(device)
    if setup is not None:
        setup(net)
    if sync_bn and d.enabled:
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    model: nn.Module = net
    if d.enabled:
        model = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if compile_model:
        model = torch.compile(model)
    return net, model


def _build_stepper(config: TrainConfig, net: STGCN, model: nn.Module, iters: int, device: torch.device) -> Stepper:
    t, o = config.train, config.optim
    optimizer = build_optimizer(net, config)
    schedule = LRSchedule(iters, t.epochs, o.warmup_epochs, o.schedule, o.milestones, o.gamma, o.min_lr / o.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    amp = amp_dtype(config, device)
    scaler = torch.amp.GradScaler("cuda") if (device.type == "cuda" and amp == torch.float16) else None
    return Stepper(model, net, optimizer, scheduler, scaler, nn.CrossEntropyLoss(label_smoothing=t.label_smoothing),
                   amp, t.grad_clip)


def _restore(path: Path, config: TrainConfig, stepper: Stepper, d: DistContext, device: torch.device) -> _State:
    """Load ``last.pt`` into the model, optimiser, scheduler, scaler and RNGs; the run's progress."""
    t = config.train
    state = read_train_state(path)
    check_resume_config(state["config"], config.to_dict(), path)
    schedule = dataclasses.replace(stepper.scheduler.lr_lambdas[0])  # a copy: loading updates it in place
    stepper.net.load_state_dict(state["model"])
    stepper.optimizer.load_state_dict(state["optimizer"])
    stepper.scheduler.load_state_dict(state["scheduler"])
    stepper.scheduler.lr_lambdas[0] = schedule  # the config decides the schedule (train.epochs may have grown)
    old_epochs = state["config"]["train"]["epochs"]
    if old_epochs != t.epochs:
        log.warning("train.epochs changed from %d to %d on resume: the %s schedule now spans %d epochs",
                    old_epochs, t.epochs, config.optim.schedule, t.epochs)
    if stepper.scaler is not None and state.get("scaler"):
        stepper.scaler.load_state_dict(state["scaler"])
    rng = state["rng"]
    if len(rng) == d.world_size:
        set_rng_state(rng[d.rank], device)
    else:
        log.warning("resuming with %d processes instead of %d: RNG states not restored", d.world_size, len(rng))
    return _State(int(state["epoch"]), state.get("best_top1"), state.get("best_epoch"), state.get("metrics"))


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
    run_dir = Path(out_dir)
    d, device = setup_distributed(config.train.device)
    try:
        return _run(config, run_dir, d, device, resume=resume, stop_after=stop_after,
                    progress=progress and not config.train.quiet)
    finally:
        d.close()


def _run(config: TrainConfig, run_dir: Path, d: DistContext, device: torch.device, *, resume: bool,
         stop_after: int | None, progress: bool) -> TrainResult:
    """Build data, model and optimiser, restore a resumed run, then fit."""
    t = config.train
    if d.is_main:
        check_run_dir(run_dir, resume)
    if t.batch_size % d.world_size:
        raise ConfigError(f"train.batch_size {t.batch_size} is not divisible by the {d.world_size} processes")
    data = _build_data(config, d, device)
    config = data.config
    if device.type == "cuda":  # a process-wide switch, set for this training process only
        torch.backends.cudnn.benchmark = t.cudnn_benchmark
    if t.head_only_epochs and d.enabled:
        raise ConfigError("train.head_only_epochs is not supported with several processes (DDP)")
    net, model = _build_model(config.model, t.seed, d, device, sync_bn=t.sync_bn, compile_model=t.compile,
                              setup=lambda net: prepare_network(net, t, resume=resume))
    stepper = _build_stepper(config, net, model, len(data.train_loader), device)
    state = _restore(run_dir / "last.pt", config, stepper, d, device) if resume else _State()
    tb = None
    if d.is_main:
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
        sweep_run_dir(run_dir)
        truncate_jsonl(run_dir / "metrics.jsonl", state.epoch)  # no torn, repeated or later-epoch lines
        tb = open_tensorboard(run_dir)
    try:
        with LogTee(run_dir / "train.log" if d.is_main else None, quiet_rank=not d.is_main):
            progress = progress and d.is_main and has_tqdm()
            log.info("%s run %s: %d train / %d test clips (%s), %d classes, %s, %.2fM parameters, device %s%s",
                     "resuming" if resume else "starting", run_dir, len(data.train_set), len(data.test_set),
                     data.store.path, config.model.num_classes, f"layout {get_layout(config.model.graph.layout).name}",
                     sum(p.numel() for p in net.parameters()) / 1e6, device,
                     f", {d.world_size} processes" if d.enabled else "")
            if resume:
                log.info("resumed from %s after epoch %d", run_dir / "last.pt", state.epoch)
            epochs_done = _fit(config, run_dir, data, stepper, state, d, device, tb, stop_after=stop_after,
                               progress=progress)
    finally:
        if tb is not None:
            tb.close()
    d.barrier()
    net.eval()
    return TrainResult(run_dir, epochs_done, epochs_done >= t.epochs, state.metrics, state.best_top1,
                       state.best_epoch, config.model, net)


def _fit(config: TrainConfig, run_dir: Path, data: _Data, stepper: Stepper, state: _State, d: DistContext,
         device: torch.device, tb: Any, *, stop_after: int | None, progress: bool) -> int:
    """The epochs of this session: train, evaluate, log, checkpoint; returns the epochs done in all."""
    t = config.train
    net = stepper.net
    meta = {"store": str(data.store.path), "train_split": config.data.train_split,
            "test_split": config.data.test_split, "train_config": config.to_dict()}
    class_names = data.class_names
    epochs_run = 0
    for epoch in range(state.epoch, t.epochs):
        if t.head_only_epochs:
            set_trainable(net, freeze_blocks=t.freeze_blocks or 0, head_only=epoch < t.head_only_epochs)
        record = train_one_epoch(stepper, data.train_loader, device, d, epoch=epoch, epochs=t.epochs,
                                 progress=progress)
        average_bn_stats(net, d)
        done = epoch + 1
        if data.test_loader is not None and (done % t.eval_every == 0 or done == t.epochs):
            record.update(_evaluate(data.test_loader, stepper, state, d, device, class_names))
        improved = "test_top1" in record and (state.best_top1 is None or record["test_top1"] > state.best_top1)
        if improved:
            state.best_top1, state.best_epoch = record["test_top1"], done
        state.epoch = done
        if d.is_main:
            _write_epoch(run_dir, record, tb, t.epochs)
            if improved:
                save_checkpoint(run_dir / "best.pt", net, class_names=class_names, preprocess=config.data.preprocess,
                                metadata={**meta, "epoch": done, "metrics": state.metrics, "kind": "best"})
        _save_state(run_dir / "last.pt", config, stepper, state, d, device)
        epochs_run += 1
        if stop_after is not None and epochs_run >= stop_after and done < t.epochs:
            log.info("stopping after %d epoch(s) of this session (epoch %d/%d); continue with --resume",
                     epochs_run, done, t.epochs)
            break
    if state.epoch >= t.epochs and d.is_main:
        save_checkpoint(run_dir / "final.pt", net, class_names=class_names, preprocess=config.data.preprocess,
                        metadata={**meta, "epoch": t.epochs, "metrics": state.metrics, "kind": "final"})
        summary = format_metrics(state.metrics) if state.metrics else "no test split"
        log.info("finished %d epochs: last epoch %s; best top-1 %s", t.epochs, summary,
                 f"{100 * state.best_top1:.2f}% at epoch {state.best_epoch}" if state.best_top1 is not None else "-")
    return state.epoch


def _evaluate(loader: DataLoader, stepper: Stepper, state: _State, d: DistContext, device: torch.device,
              class_names: list[str]) -> dict[str, Any]:
    """The record's test entries (and ``state.metrics``) after an evaluation pass."""
    tic = time.perf_counter()
    metrics = evaluate_shards(stepper.net, loader, device, stepper.amp_dtype, d, class_names)
    out: dict[str, Any] = {"eval_time_s": time.perf_counter() - tic}
    if metrics is not None:
        state.metrics = {k: v for k, v in metrics.items() if k != "per_class"}
        out.update({f"test_{k}": v for k, v in state.metrics.items() if k != "num_samples"})
    return out


def _write_epoch(run_dir: Path, record: dict[str, Any], tb: Any, epochs: int) -> None:
    log_epoch(record, epochs)
    append_jsonl(run_dir / "metrics.jsonl", record)
    if tb is not None:
        for k, v in record.items():
            if k != "epoch":
                tb.add_scalar(k.replace("_", "/", 1), v, record["epoch"])
        tb.flush()


def _save_state(path: Path, config: TrainConfig, stepper: Stepper, state: _State, d: DistContext,
                device: torch.device) -> None:
    """Write ``last.pt`` (rank 0) with every process's RNG state."""
    rng = all_gather(rng_state(device), d)
    if d.is_main:
        write_train_state(path, {
            "epoch": state.epoch, "config": config.to_dict(), "model_config": config.model.to_dict(),
            "model": {k: v.detach().cpu() for k, v in stepper.net.state_dict().items()},
            "optimizer": stepper.optimizer.state_dict(), "scheduler": stepper.scheduler.state_dict(),
            "scaler": stepper.scaler.state_dict() if stepper.scaler is not None else None, "rng": rng,
            "best_top1": state.best_top1, "best_epoch": state.best_epoch, "metrics": state.metrics,
        })
