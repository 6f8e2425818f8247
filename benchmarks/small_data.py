"""Small-dataset recipe grid: train variants of a config under one budget and write their metrics to JSON.

Run from the repository root, one process, one thread (the figures are per-process CPU seconds)::

    OMP_NUM_THREADS=1 python -m benchmarks.small_data --list
    OMP_NUM_THREADS=1 python -m benchmarks.small_data --grid msr --out benchmarks/results/small_data_msr.json
    OMP_NUM_THREADS=1 python -m benchmarks.small_data --config configs/msr-action3d-xsub.yaml \\
        --name xsub-seed2 --set train.seed=2 --out benchmarks/results/msr_action3d.json

``--probe STORE ...`` instead fits a ridge classifier and 1-nearest-neighbour on the test-time inputs of
three preprocessings (seconds of CPU; see :func:`linear_probe`)::

    python -m benchmarks.small_data --probe data/msr-action3d data/utkinect data/nw-ucla-200 \\
        --out benchmarks/results/small_data_probe.json

Why the network trailed that probe on MSR Action3D (issue 15, ``README "MSR Action3D"``):
``--gap-probe STORE`` probes feature sets that keep or drop temporal order, location and joint identity
(:func:`gap_probe`); ``--network-probe CHECKPOINT STORE`` probes a network's block outputs pooled three ways
(:func:`network_probe`); ``--grid msr-gap --seeds 1 2 3 --keep runs/gap`` trains the heads and variants, each once
per seed, keeping the run directories::

    OMP_NUM_THREADS=1 python -m benchmarks.small_data --grid msr-gap --only pool-joint --seeds 1 2 3 --steps 1000 \\
        --out benchmarks/results/msr_gap.json

Budget: every variant of a grid runs the **same number of SGD steps** (``--steps``, default 500): the
epochs are ``steps / (repeat * ceil(clips / batch))`` so a variant with more passes per epoch runs fewer
epochs, the learning-rate milestones scale with the epochs, and nothing else changes. The CPU seconds each
variant used (``time.process_time`` of this process; data loading runs in-process) and its wall time are
recorded beside the metrics, so a variant that is slower per step is visible.

A variant is a name and a list of ``--set``-style overrides on top of the grid's base config; its record is
named ``name@steps``. Results are appended to (or replace the same-named entries of) the JSON file, so a grid
can be run in parts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stgcn.data.store_reader import open_store
from stgcn.data.store_writer import StoreWriter
from stgcn.data.transforms import PreprocessConfig, build_transform
from stgcn.engine.checkpoint import load_checkpoint
from stgcn.engine.config import load_config
from stgcn.engine.train import train
from stgcn.models import stgcn as stgcn_model

ROOT = Path(__file__).resolve().parent.parent

QUARTER = "[[16,1],[16,1],[16,1],[16,1],[32,2],[32,1],[32,1],[64,2],[64,1],[64,1]]"  # 0.21 M parameters
HALF = "[[32,1],[32,1],[32,1],[32,1],[64,2],[64,1],[64,1],[128,2],[128,1],[128,1]]"  # 0.78 M parameters
FULL = "[[64,1],[64,1],[64,1],[64,1],[128,2],[128,1],[128,1],[256,2],[256,1],[256,1]]"  # the notes' 3.1 M
# Overrides on every variant: one pass per epoch (the budget sets the epochs), in-process data loading, CPU.
BASE: list[str] = ["train.batch_size=16", "train.repeat=1", "train.num_workers=0", "train.quiet=true",
                   "train.device=cpu"]

MSR = "configs/msr-action3d-xsub.yaml"
MEAN_POOL = ["model.pool=mean"]  # the paper's global average pool: the MSR configs' head before issue 15's gap study
# the MSR recipe before issue 15
CENTRED = [*MEAN_POOL, "data.preprocess.center=first", "data.augment.rotate_3d=15"]
# name -> (config, overrides). Each grid varies one or two things from its first variant.
GRIDS: dict[str, dict[str, tuple[str, list[str]]]] = {
    "msr": {  # MSR Action3D cross-subject, 20 actions, 291 training clips. All but none-norot were run on the
        # config as it was (centred on the first frame, rotation 15 deg, mean pool); CENTRED restores that on the
        # shipped config (raw coordinates, mean pool = none-norot), so each variant reruns what was measured.
        "half-view-normalize": (MSR, [*CENTRED, "model.blocks=" + HALF, "data.preprocess.view_normalize=true"]),
        "half": (MSR, [*CENTRED, "model.blocks=" + HALF]),
        "half-norot": (MSR, [*CENTRED, "model.blocks=" + HALF, "data.augment.rotate_3d=0"]),
        "quarter": (MSR, [*CENTRED]),
        "quarter-lost-frames-kept": (MSR, [*CENTRED, "data.store=data/msr-action3d-lostframes"]),
        "full": (MSR, [*CENTRED, "model.blocks=" + FULL]),
        # issue 15 follow-up (quarter width, 1,000 steps, seed 1)
        "none-norot": (MSR, [*MEAN_POOL, "data.preprocess.center='none'", "data.augment.rotate_3d=0"]),
        "cosine": (MSR, [*CENTRED, "optim.schedule=cosine"]),
        "wd5e-3-do0.5": (MSR, [*CENTRED, "optim.weight_decay=0.005", "model.dropout=0.5"]),
        "adamw1e-3": (MSR, [*CENTRED, "optim.name=adamw", "optim.lr=0.001", "optim.weight_decay=0.01"]),
        "lowreg": (MSR, [*CENTRED, "optim.weight_decay=0.0001", "model.dropout=0"]),
        "lr0.05": (MSR, [*CENTRED, "optim.lr=0.05"]),
    },
    "msr-gap": {  # issue 15, why the network trails a ridge probe: the head (mean pool as before, joint pool as
        # shipped since), then single changes on top of the shipped joint head; local.* are benchmark-only model
        # patches (see local_pool)
        "pool-mean": (MSR, [*MEAN_POOL]),
        "pool-max": (MSR, [*MEAN_POOL, "local.pool=max"]),
        "pool-joint-max": (MSR, [*MEAN_POOL, "local.pool=joint-max"]),
        "pool-joint": (MSR, ["model.pool=joint"]),
        "joint-centred": (MSR, ["model.pool=joint", "data.preprocess.center=first", "data.augment.rotate_3d=15"]),
        "joint-label-smoothing0.1": (MSR, ["model.pool=joint", "train.label_smoothing=0.1"]),
        "joint-scale0.1": (MSR, ["model.pool=joint", "data.augment.random_scale=0.1"]),
        "joint-length16": (MSR, ["model.pool=joint", "data.preprocess.length=16"]),
        **{f"as{i}-{name}": (f"configs/msr-action3d-as{i}.yaml", o) for i in (1, 2, 3)
           for name, o in (("pool-mean", MEAN_POOL), ("pool-joint", ["model.pool=joint"]))},
    },
    "utkinect": {  # UTKinect cross-subject, 100 training clips
        "quarter": ("configs/utkinect-xsub.yaml", []),
        "quarter-scale": ("configs/utkinect-xsub.yaml", ["data.augment.random_scale=0.2"]),
    },
}


# Local model experiments (issue 15), NOT library options: a variant's override "local.pool=MODE" is taken out
# of the config overrides and patches the network's pooling for that run only (see local_pool). The library's
# own heads are ``model.pool`` (mean, joint).
LOCAL_POOLS = ("mean", "max", "joint-max")


@contextlib.contextmanager
def local_pool(mode: str):
    """Patch :func:`stgcn.models.stgcn.pool_features` for one run.

    ``mean``: no patch. ``max``: global max pool over (T, V). ``joint-max``: average over T, then max over V.

    Shape:
        h: (V, T, N*M, C) -> (N, C).
    """
    if mode not in LOCAL_POOLS:
        raise ValueError(f"local.pool {mode!r}: valid modes are {', '.join(LOCAL_POOLS)}")
    original = stgcn_model.pool_features

    def pool(h: torch.Tensor, n: int, m: int, pool: str = "mean") -> torch.Tensor:
        f = h.amax(dim=(0, 1)) if mode == "max" else h.mean(dim=1).amax(dim=0)
        return f.view(n, m, -1).mean(dim=1)

    if mode != "mean":
        stgcn_model.pool_features = pool
    try:
        yield
    finally:
        stgcn_model.pool_features = original


def _split_local(overrides: list[str]) -> tuple[list[str], dict[str, str]]:
    """Config overrides and the ``local.KEY=VALUE`` experiment switches among them."""
    local = dict(o.removeprefix("local.").split("=", 1) for o in overrides if o.startswith("local."))
    unknown = set(local) - {"pool"}
    if unknown:
        raise ValueError(f"unknown local switches {sorted(unknown)}; valid: local.pool")
    return [o for o in overrides if not o.startswith("local.")], local


def _steps_per_epoch(clips: int, batch: int, repeat: int) -> int:
    return repeat * math.ceil(clips / batch)


def run_variant(name: str, config_path: str, overrides: list[str], *, steps: int, clips: int | None,
                work: Path) -> dict[str, Any]:
    """Train one variant for about ``steps`` SGD steps; returns its record (metrics, config, budget, times)."""
    all_overrides = overrides
    overrides, local = _split_local(overrides)
    probe = load_config(ROOT / config_path, [*BASE, *overrides])
    t = probe.train
    if clips is None:
        clips = len(open_store(probe.data.store).split(probe.data.train_split))
    per_epoch = _steps_per_epoch(clips, t.batch_size, t.repeat)
    epochs = max(2, round(steps / per_epoch))
    warmup = max(1, round(epochs * 0.1))
    milestone = max(warmup + 1, round(epochs * 0.8))
    budget = [f"train.epochs={epochs}", f"optim.warmup_epochs={warmup}", f"optim.milestones=[{milestone}]",
              f"train.eval_every={epochs}"]
    config = load_config(ROOT / config_path, [*BASE, *overrides, *budget])
    out_dir = work / name
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with local_pool(local.get("pool", "mean")):
        result = train(config, out_dir)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines() if line]
    last = records[-1]
    metrics = result.metrics or {}
    return {
        "name": f"{name}@{steps}", "config": config_path, "overrides": [*BASE, *all_overrides, *budget],
        "train_clips": clips, "epochs": epochs, "sgd_steps": per_epoch * epochs,
        "parameters": sum(p.numel() for p in result.model.parameters()),
        "test_top1": metrics.get("top1"), "test_top5": metrics.get("top5"),
        "test_mean_class": metrics.get("mean_class"),
        "train_top1_last_epoch": last.get("train_top1"), "train_loss_last_epoch": last.get("train_loss"),
        "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "threads": torch.get_num_threads(),
        "load_avg_after": list(os.getloadavg()),
    }


def subsample_store(src: str | Path, dst: str | Path, per_class: int, *, split: str = "train",
                    seed: int = 0) -> int:
    """Write a store with ``per_class`` random clips of each class of ``split`` (kept as ``split``) and every
    clip of the other splits; returns the number of ``split`` clips kept."""
    store = open_store(src)
    rng = np.random.default_rng(seed)
    train = store.split(split)
    labels = np.array([store.label(int(i)) for i in train])
    keep = sorted(int(i) for c in np.unique(labels)
                  for i in rng.permutation(train[labels == c])[:per_class])
    others = {k: set(store.split(k).tolist()) for k in store.split_names if k != split}
    with StoreWriter(dst, store.layout, store.channels, store.class_names, num_persons=store.num_persons,
                     overwrite=True) as writer:
        for i in keep:
            writer.add(store.name(i), store.clip(i), store.label(i), [split])
        for i in range(len(store)):
            tags = [k for k, members in others.items() if i in members]
            if tags:
                writer.add(store.name(i), store.clip(i), store.label(i), tags)
        writer.finish(source={"subsample_of": str(src), "per_class": per_class, "split": split, "seed": seed})
    return len(keep)


PROBE_PREPROCESS: dict[str, dict[str, Any]] = {
    "center-first+view-normalize": {"center": "first", "view_normalize": True},
    "center-first": {"center": "first"},
    "raw": {},
}


def _standardised(x: np.ndarray, tr: np.ndarray, te: np.ndarray,
                  standardize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``tr`` and ``te`` of the flattened features ``x``, standardised per feature with the training rows'
    statistics (only centred unless ``standardize``). Shape: x (N, ...) -> (len(tr), F), (len(te), F)."""
    x = x.reshape(len(x), -1).astype(np.float64)
    mu, sd = x[tr].mean(0), (x[tr].std(0) + 1e-6 if standardize else 1.0)
    return (x[tr] - mu) / sd, (x[te] - mu) / sd


def _ridge(a: np.ndarray, b: np.ndarray, y_tr: np.ndarray, y_te: np.ndarray, lam: float, k: int) -> float:
    """Test top-1 of a one-vs-all ridge classifier over ``k`` classes fitted on the training features ``a``,
    scored on ``b``."""
    w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ np.eye(k)[y_tr])
    return float((np.argmax(b @ w, 1) == y_te).mean())


def ridge_top1(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, lam: float,
               standardize: bool = True) -> float:
    """Test top-1 of a one-vs-all ridge classifier fitted on rows ``tr`` of the flattened features ``x``
    (standardised per feature with the training rows' statistics unless ``standardize`` is false)."""
    return _ridge(*_standardised(x, tr, te, standardize), y[tr], y[te], lam, int(y.max()) + 1)


def linear_probe(store_path: str | Path, length: int = 32, lam: float = 100.0) -> dict[str, Any]:
    """Test top-1 of a ridge classifier and of 1-nearest-neighbour on the flattened test-time inputs
    ``(C, length, V, M)`` of each preprocessing in :data:`PROBE_PREPROCESS`: a seconds-cheap check of how
    much class signal a preprocessing keeps (no augmentation, no training noise)."""
    store = open_store(store_path)
    tr, te = store.split("train"), store.split("test")
    y = np.array([store.label(i) for i in range(len(store))])
    out: dict[str, Any] = {"store": str(store_path), "length": length, "ridge_lambda": lam}
    for name, kwargs in PROBE_PREPROCESS.items():
        t = build_transform(PreprocessConfig(length=length, **kwargs), None, train=False, layout=store.layout)
        x = np.stack([t(store.clip(i)).reshape(-1) for i in range(len(store))]).astype(np.float64)
        a, b = _standardised(x, tr, te)
        d = (b * b).sum(1)[:, None] - 2 * b @ a.T + (a * a).sum(1)[None]
        out[name] = {"ridge_top1": _ridge(a, b, y[tr], y[te], lam, len(store.class_names)),
                     "nn1_top1": float((y[tr][d.argmin(1)] == y[te]).mean())}
    return out


GAP_LAMBDAS = (1.0, 10.0, 100.0, 1000.0)


def _inputs(store: Any, **preprocess: Any) -> np.ndarray:
    """Test-time inputs of every clip of the store (``PreprocessConfig`` fields; 32 frames unless given), first
    person. Shape: (N, C, T, V)."""
    config = PreprocessConfig(**{"length": 32, **preprocess})
    t = build_transform(config, None, train=False, layout=store.layout)
    return np.stack([t(store.clip(i))[..., 0] for i in range(len(store))]).astype(np.float64)


def _bag(x: np.ndarray) -> np.ndarray:
    """Per (channel, joint) mean, std, min and max over time: no temporal order. Shape: (N, C, T, V) -> (N, 4C, V)."""
    return np.concatenate([x.mean(2), x.std(2), x.min(2), x.max(2)], 1)


def gap_probe(store_path: str | Path) -> dict[str, Any]:
    """What the ridge probe uses (issue 15): ridge test top-1 for each ``GAP_LAMBDAS`` on feature sets built
    from the test-time inputs (raw / centred coordinates, location only, no temporal order, joints pooled,
    axes, arms, lengths). Shape: features are flattened per clip."""
    store = open_store(store_path)
    tr, te = store.split("train"), store.split("test")
    y = np.array([store.label(i) for i in range(len(store))])
    raw, cen, cfr = _inputs(store), _inputs(store, center="first"), _inputs(store, center="frame")
    j = store.layout.joints
    arms = [j.index(n) for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand")]
    hip = raw[:, :, 0, j.index("hip_center")]
    t_first = raw.transpose(0, 2, 1, 3)  # (N, T, C, V): data-BN-style statistics per (C, V)
    bn = (t_first - t_first[tr].mean((0, 1))) / (t_first[tr].std((0, 1)) + 1e-6)
    sets: dict[str, tuple[np.ndarray, bool]] = {
        "raw (C, T, V)": (raw, True), "centred on the first frame": (cen, True),
        "centred in every frame": (cfr, True),
        "raw, per-(C, V) standardised as the data BatchNorm does": (bn, False),
        "location only: first-frame hip xyz": (hip, True),
        "location only: clip-mean hip xyz": (raw[:, :, :, j.index("hip_center")].mean(2), True),
        "mean pose over time (C, V)": (raw.mean(2), True),
        "bag of frames: mean/std/min/max over time (4C, V)": (_bag(raw), True),
        "bag of frames, centred in every frame": (_bag(cfr), True),
        "bag of frames averaged over joints (4C)": (_bag(raw).mean(2), True),
        "bag of frames, mean and max over joints (8C)": (np.concatenate([_bag(raw).mean(2), _bag(raw).max(2)], 1),
                                                         True),
        "arms only (elbows, wrists, hands)": (raw[..., arms], True),
        "velocity (frame differences)": (np.diff(raw, axis=2), True),
        "raw, 8 frames": (_inputs(store, length=8), True), "raw, 64 frames": (_inputs(store, length=64), True),
    }
    for axis, name in enumerate("xyz"):
        sets[f"raw, {name} only"] = (raw[:, axis], True)
    out: dict[str, Any] = {"store": str(store_path), "lambdas": list(GAP_LAMBDAS), "top1": {}}
    for name, (x, standardize) in sets.items():
        out["top1"][name] = [round(ridge_top1(x, y, tr, te, lam, standardize), 4) for lam in GAP_LAMBDAS]
    return out


def network_probe(checkpoint: str | Path, store_path: str | Path, seed: int = 0) -> dict[str, Any]:
    """Ridge test top-1 on a network's block outputs (issue 15): pooled over (T, V) as the classifier sees
    them, over T only (every joint kept), over V only; for the trained network of ``checkpoint`` and for a
    random one of the same architecture (``seed``; the trained data BatchNorm). Shape: blocks (V, T', N, C)."""
    ck = load_checkpoint(checkpoint)
    store = open_store(store_path)
    tr, te = store.split("train"), store.split("test")
    y = np.array([store.label(i) for i in range(len(store))])
    x = torch.from_numpy(_inputs(store, **ck.preprocess.to_dict())[..., None].astype(np.float32))
    torch.manual_seed(seed)
    rand = stgcn_model.STGCN(ck.config).eval()
    rand.data_bn.load_state_dict(ck.model.data_bn.state_dict())
    out: dict[str, Any] = {"checkpoint": str(checkpoint), "store": str(store_path), "lambdas": list(GAP_LAMBDAS)}
    for tag, net in (("trained", ck.model.eval()), ("random", rand)):
        with torch.no_grad():
            logits = net(x).numpy()
            n, c, t, v, m = x.shape
            h = net.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)).view(n * m, v, c, t)
            h = h.permute(1, 3, 0, 2).contiguous()
            rec: dict[str, Any] = {"net_test_top1": float((logits.argmax(1)[te] == y[te]).mean()),
                                   "net_train_top1": float((logits.argmax(1)[tr] == y[tr]).mean())}
            for i, block in enumerate(net.blocks, 1):
                h = block.forward_vtnc(h, net.A)
                f = h.numpy()
                feats = {"pool T, V": f.mean((0, 1)), "pool T (V x C)": f.mean(1).transpose(1, 0, 2),
                         "pool V (T x C)": f.mean(0).transpose(1, 0, 2)}
                rec[f"block {i}"] = {k: [round(ridge_top1(a, y, tr, te, lam), 4) for lam in GAP_LAMBDAS]
                                     for k, a in feats.items()}
        out[tag] = rec
    return out


def _merge(path: Path, records: list[dict[str, Any]]) -> None:
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    runs = {r["name"]: r for r in data.get("runs", [])}
    runs.update({r["name"]: r for r in records})
    data.update({"machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                             "note": "shared 2-core machine under load; cpu_s is this process's CPU time"},
                 "budget": "same number of SGD steps per variant (see benchmarks/small_data.py)",
                 "runs": list(runs.values())})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--grid", choices=sorted(GRIDS), help="a built-in variant list")
    p.add_argument("--only", nargs="*", default=None, help="run only these variants of the grid")
    p.add_argument("--config", help="one variant: this config (with --name and --set)")
    p.add_argument("--name", help="the one variant's name")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override KEY=VALUE (repeatable)")
    p.add_argument("--steps", type=int, default=500, help="SGD steps per variant (default 500)")
    p.add_argument("--clips", type=int, default=None, help="training clips (default: counted in the store)")
    p.add_argument("--out", type=Path, required=False, help="JSON file to add the results to")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="run each variant once per seed (train.seed=S), named NAME-sS")
    p.add_argument("--keep", type=Path, default=None,
                   help="write the run directories under this folder (default: a temporary one, deleted)")
    p.add_argument("--list", action="store_true", help="list the grids and exit")
    p.add_argument("--subsample", nargs=3, metavar=("SRC", "DST", "PER_CLASS"),
                   help="write DST: PER_CLASS random training clips per class of store SRC plus its test clips")
    p.add_argument("--probe", nargs="+", metavar="STORE", help="linear-probe these stores (see linear_probe)")
    p.add_argument("--gap-probe", metavar="STORE", help="what the ridge probe uses (see gap_probe)")
    p.add_argument("--network-probe", nargs=2, metavar=("CHECKPOINT", "STORE"),
                   help="ridge probes on a trained network's block outputs (see network_probe)")
    args = p.parse_args(argv)
    if args.gap_probe or args.network_probe:
        key, result = (("gap_probe", gap_probe(args.gap_probe)) if args.gap_probe else
                       ("network_probe", network_probe(*args.network_probe)))
        print(json.dumps(result, indent=1))
        if args.out:
            data = json.loads(args.out.read_text()) if args.out.exists() else {}
            if key == "gap_probe":
                data[key] = result
            else:
                data.setdefault(key, {})[result["checkpoint"]] = result
            args.out.write_text(json.dumps(data, indent=1) + "\n")
        return 0
    if args.probe:
        results = [linear_probe(store) for store in args.probe]
        print(json.dumps(results, indent=1))
        if args.out:
            args.out.write_text(json.dumps({"probe": results}, indent=1) + "\n")
        return 0
    if args.subsample:
        n = subsample_store(args.subsample[0], args.subsample[1], int(args.subsample[2]))
        print(f"wrote {args.subsample[1]}: {n} training clips")
        return 0
    if args.list:
        for g, variants in GRIDS.items():
            for n, (c, o) in variants.items():
                print(f"{g}/{n}: {c} {' '.join(o)}")
        return 0
    if args.config:
        variants = {args.name or Path(args.config).stem: (args.config, args.overrides)}
    elif args.grid:
        variants = {n: v for n, v in GRIDS[args.grid].items() if args.only is None or n in args.only}
    else:
        p.error("give --grid or --config")
    if args.seeds:
        variants = {f"{n}-s{seed}": (c, [*o, f"train.seed={seed}"]) for n, (c, o) in variants.items()
                    for seed in args.seeds}
    with tempfile.TemporaryDirectory(prefix="small-data-") as tmp:
        for name, (config, overrides) in variants.items():
            record = run_variant(name, config, overrides, steps=args.steps, clips=args.clips,
                                 work=args.keep or Path(tmp))
            print(json.dumps(record), flush=True)
            if args.out:
                _merge(args.out, [record])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
