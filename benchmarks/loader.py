"""Data-loading benchmark: loader throughput and store size on NW-UCLA.

Run from the repository root::

    python -m benchmarks.loader                    # prepares NW-UCLA from ../shared/data into a temp dir
    python -m benchmarks.loader --store PATH       # or uses an existing store

Measures

* loader throughput in clips/s: ``build_loader`` with 2 workers (and, for reference, 0) over the NW-UCLA
  training split with training transforms (uniform sampling to 52 frames, centring on the first frame, view
  normalisation, the original random move and a random 3-D rotation), median over several epochs after a
  warm-up epoch (goal: >= 2,000 clips/s on a 2-core machine);
* store size (float32 and float16) against the original padded layout, (N, 3, 300, V, 2) float32
  (goal: <= 1/4).

Prints a table and writes ``benchmarks/results/loader.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from stgcn.data.dataset import SkeletonDataset, build_loader
from stgcn.data.prepare import prepare
from stgcn.data.store import SkeletonStore, open_store
from stgcn.data.transforms import AugmentConfig, PreprocessConfig, build_transform

ROOT = Path(__file__).resolve().parents[1]
NW_UCLA = ROOT.parent / "shared" / "data" / "nw_ucla" / "all_sqe"
RESULTS = ROOT / "benchmarks" / "results" / "loader.json"


def store_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def padded_bytes(store: SkeletonStore, frames: int = 300, persons: int = 2) -> int:
    """Size of the original layout (N, 3, T=300, V, M=2) float32."""
    return len(store) * 3 * frames * store.layout.num_joints * persons * 4


def throughput(store: SkeletonStore, *, workers: int, batch_size: int, epochs: int) -> list[float]:
    """Clips/s of each timed epoch (one untimed warm-up epoch first)."""
    pre = PreprocessConfig(length=52, resize="uniform", channels=tuple(store.channels), center="first",
                           view_normalize=True)
    aug = AugmentConfig(random_move=True, rotate_3d=15.0)
    ds = SkeletonDataset(store, "train", build_transform(pre, aug, train=True, layout=store.layout), seed=0)
    loader = build_loader(ds, batch_size, shuffle=True, num_workers=workers, seed=0, drop_last=False)
    rates = []
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        n = 0
        shape = None
        for x, y, _ in loader:
            n += len(y)
            shape = x.shape
        elapsed = time.perf_counter() - start
        if epoch > 0:
            rates.append(n / elapsed)
        if shape is None or tuple(shape[1:]) != (3, 52, 20, 1):
            raise RuntimeError(f"unexpected batch shape {shape}")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="existing NW-UCLA store (default: prepare one)")
    parser.add_argument("--epochs", type=int, default=7, help="timed epochs per setting (median reported)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        if args.store is None:
            if not NW_UCLA.is_dir():
                print(f"error: NW-UCLA not found at {NW_UCLA}; pass --store")
                return 2
            t0 = time.perf_counter()
            store = prepare("nw-ucla", NW_UCLA, Path(tmp) / "f32", workers=2)
            prepare_s = time.perf_counter() - t0
            f16 = prepare("nw-ucla", NW_UCLA, Path(tmp) / "f16", dtype="float16", workers=2)
        else:
            store, f16, prepare_s = open_store(args.store), None, None
        padded = padded_bytes(store)
        sizes = {"float32": store_bytes(store.path)}
        if f16 is not None:
            sizes["float16"] = store_bytes(f16.path)
        runs = {w: throughput(store, workers=w, batch_size=args.batch_size, epochs=args.epochs) for w in (2, 0)}

    result = {
        "benchmark": "loader",
        "dataset": "NW-UCLA train split (1,020 clips), training transforms, T=52",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "batch_size": args.batch_size,
        "throughput_clips_per_s": {f"workers_{w}": {"median": statistics.median(r), "runs": r}
                                   for w, r in runs.items()},
        "goal_clips_per_s": 2000,
        "store_bytes": sizes,
        "padded_float32_bytes": padded,
        "size_ratio": {k: v / padded for k, v in sizes.items()},
        "goal_size_ratio": 0.25,
        "prepare_seconds": prepare_s,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp_out, args.out)

    print(f"{'measure':<44} {'value':>14} {'goal':>10}")
    for w, r in runs.items():
        goal = ">= 2000" if w == 2 else ""
        print(f"{f'loader clips/s, {w} workers (median of {len(r)})':<44} {statistics.median(r):>14,.0f} {goal:>10}")
    print(f"{'padded (N,3,300,V,2) float32 MB':<44} {padded / 1e6:>14.1f}")
    for k, v in sizes.items():
        print(f"{f'store {k} MB (ratio to padded)':<44} {f'{v / 1e6:.1f} ({v / padded:.3f})':>14} {'<= 0.25':>10}")
    if prepare_s is not None:
        print(f"{'prepare nw-ucla seconds (2 workers)':<44} {prepare_s:>14.1f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
