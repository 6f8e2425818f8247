"""Training under bfloat16 autocast by model width: where our kernels in bfloat16 beat the original structure.

Run from the repository root::

    python -m benchmarks.bf16_widths [--threads 1] [--repeats 5] [--out benchmarks/results/bf16_widths.json]

Training steps (forward, cross-entropy, backward, SGD with momentum) on NW-UCLA-shaped batches of 16 clips,
(16, 3, T, 20, 1), for the full-width ST-GCN (64-256 channels), half width (32-128) and the small-dataset
recipe's quarter width (16-64, ``configs/small-dataset.yaml``), at T = 32 (the recipe's length) and 52
(NW-UCLA's). Per shape, in interleaved rounds: ``baseline`` (the original structure, float32), ``stgcn``
(float32), ``baseline-bf16`` and, under bfloat16 autocast (``train.cpu_bf16``), ``stgcn-bf16`` (the layout
rule), ``stgcn-bf16[vtnc]`` (our layout and kernels in bfloat16) and ``stgcn-bf16[nctv]`` (the original
structure). Ratios to the float32 baseline of the same round; the layout the rule took. This is the
measurement behind :data:`stgcn.ops.dispatch.LOWP_TRAIN_MIN_WORK`; it means something only on a CPU with
native bfloat16 (AVX512-BF16, AMX), which the JSON records.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.allocator import set_allocator
from benchmarks.model import ROOT, machine_info, make_train_step, time_interleaved
from stgcn.models.config import DEFAULT_BLOCKS, GraphConfig, STGCNConfig
from stgcn.models.reference import baseline_from_stgcn
from stgcn.models.stgcn import STGCN
from stgcn.ops.dispatch import dispatch_report
from stgcn.ops.layout import native_bf16
from stgcn.utils.atomic import atomic_write_text

WIDTHS: dict[str, tuple[tuple[int, int], ...]] = {
    "full": DEFAULT_BLOCKS,
    "half": tuple((c // 2, s) for c, s in DEFAULT_BLOCKS),
    "quarter": tuple((c // 4, s) for c, s in DEFAULT_BLOCKS),  # the small-dataset recipe's blocks
}
FRAMES = (32, 52)


def run_shape(width: str, frames: int, args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    model = STGCN(STGCNConfig(num_classes=10, graph=GraphConfig(layout="kinect-v1"), blocks=WIDTHS[width])).train()
    x = torch.randn(args.batch, 3, frames, 20, 1, generator=torch.Generator().manual_seed(args.seed + 1))
    y = torch.arange(args.batch) % 10
    bf16 = torch.bfloat16
    steps = {"baseline": make_train_step(baseline_from_stgcn(model).train(), x, y),
             "stgcn": make_train_step(copy.deepcopy(model), x, y),
             "baseline-bf16": make_train_step(baseline_from_stgcn(model).train(), x, y, autocast=bf16)}
    modules = {}
    for impl, pin in (("stgcn-bf16", None), ("stgcn-bf16[vtnc]", "vtnc"), ("stgcn-bf16[nctv]", "nctv")):
        modules[impl] = copy.deepcopy(model)
        modules[impl].layout = pin
        steps[impl] = make_train_step(modules[impl], x, y, autocast=bf16)
    timings = time_interleaved(steps, args.batch, args.repeats, args.warmup, args.min_seconds)
    layouts = sorted({e.rsplit(" -> ", 1)[1] for e in dispatch_report(modules["stgcn-bf16"]).get("", [])})
    return {"input": list(x.shape), "blocks": [list(b) for b in WIDTHS[width]], "rule_layout": layouts,
            "training": timings}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bf16_widths", description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-seconds", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bf16_widths.json")
    args = p.parse_args(argv)
    if args.threads < 1 or args.batch < 1 or args.repeats < 1:
        print("error: --threads, --batch and --repeats must be positive integers", file=sys.stderr)
        return 2
    set_allocator("keep")
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                               "native_bf16": native_bf16(), "machine": machine_info(args.threads), "shapes": {}}
    for width in WIDTHS:
        for frames in FRAMES:
            name = f"{width}-t{frames}"
            entry = results["shapes"][name] = run_shape(width, frames, args)
            ratios = {k: v["ratio_vs_baseline"]["median"] for k, v in entry["training"].items()
                      if "ratio_vs_baseline" in v}
            print(f"{name:12s} rule: {'/'.join(entry['rule_layout']):5s} "
                  + "  ".join(f"{k} {r:.2f}x" for k, r in ratios.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
