"""Every tile length of the tiled temporal convolution at the layer shapes of grid points: the data behind
:data:`stgcn.ops.tiled_conv.WEIGHT_READ_MACS`.

Run from the repository root::

    python -m benchmarks.tile_lengths                                  # the batch-1 points and two batch-16 ones
    python -m benchmarks.tile_lengths --points stream-18 --rounds 7 --weights 0 8 12 16

Per point, the five temporal convolutions of ST-GCN (64 channels at T frames, 128 with stride 2, 128 at T/2,
256 with stride 2, 256 at T/4) on the fused model's (V, T, N*M, C) layout, forward only
(:func:`~stgcn.ops.tiled_conv.tiled_temporal_conv`), each tile length of
:data:`~stgcn.ops.tiled_conv.TILE_LENGTHS` timed in interleaved rounds (median of ``--rounds``). For each weight-read
cost of ``--weights`` (multiply-adds per transformed weight; 0 = multiply-adds alone) the table gives the point's
summed time at the lengths that cost picks, over the summed time at the fastest length of each layer (1.00 = the
best the tile length can do).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import stgcn.ops.tiled_conv as tiled
from stgcn.utils.atomic import atomic_write_text

DEFAULT_POINTS = ("ucla-b1", "stream-18", "stream-17", "kinetics-b1", "ucla-b16", "coco2d-b16")


def layers(t: int) -> list[tuple[int, int, int]]:
    """(channels, stride, input frames) of the ten-layer model's temporal convolutions (repeats merged)."""
    return [(64, 1, t), (128, 2, t), (128, 1, -(-t // 2)), (256, 2, -(-t // 2)), (256, 1, -(-t // 4))]


def time_lengths(v: int, b: int, c: int, stride: int, t: int, rounds: int) -> dict[int, float]:
    """Milliseconds per call of each tile length (median of ``rounds`` interleaved rounds of 2 calls, each after
    a warm-up call).

    Shape:
        the input is (V, T, B, C); B = N * M.
    """
    gen = torch.Generator().manual_seed(c + stride + t)
    w = torch.randn(c, c, 9, generator=gen) * 0.05
    x = torch.randn(v, t, b, c, generator=gen)
    taps = -(-9 // stride)
    out = torch.empty(v, -(-t // stride), b, c)
    times: dict[int, list[float]] = {n: [] for n in tiled.TILE_LENGTHS if n > taps}
    for _ in range(rounds):
        for n in times:  # one plan at a time (a 256-channel plan of long tiles is tens of MB), one warm-up call
            plan = tiled.plan_temporal_conv(w, stride, t, tile_length=n)
            tiled.tiled_temporal_conv(x, plan, out=out)
            start = time.perf_counter()
            tiled.tiled_temporal_conv(x, plan, out=out)
            tiled.tiled_temporal_conv(x, plan, out=out)
            times[n].append((time.perf_counter() - start) / 2 * 1e3)
    return {n: statistics.median(ts) for n, ts in times.items()}


def picked(c: int, stride: int, t: int, rows: int, weight_macs: int) -> int:
    """The tile length the rule picks with ``weight_macs`` per transformed weight."""
    saved = tiled.WEIGHT_READ_MACS
    try:
        tiled.WEIGHT_READ_MACS = weight_macs
        return tiled.choose_tile_length(9, stride, t, c, c, rows)
    finally:
        tiled.WEIGHT_READ_MACS = saved


def main(argv: list[str] | None = None) -> int:
    from benchmarks.grid import POINTS
    from benchmarks.model import ROOT, machine_info

    p = argparse.ArgumentParser(prog="python -m benchmarks.tile_lengths", description=__doc__.split("\n\n")[0])
    p.add_argument("--points", nargs="+", choices=sorted(POINTS), default=list(DEFAULT_POINTS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--weights", nargs="+", type=int, default=[0, 4, 8, 12, 16, 24],
                   help="weight-read costs to evaluate (multiply-adds per transformed weight)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tile_lengths_cpu.json")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or any(k < 0 for k in args.weights):
        p.error("--rounds and --threads take positive integers, --weights non-negative ones")
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"machine": machine_info(args.threads), "current": tiled.WEIGHT_READ_MACS,
                               "settings": {k: str(v) for k, v in vars(args).items()}, "points": {}}
    print("| point | " + " | ".join(f"cost {k}" for k in args.weights) + " |")
    print("|---|" + "---|" * len(args.weights))
    for point in args.points:
        _, _, (n, t, v, m), _ = POINTS[point]
        rows = []
        for c, stride, frames in layers(t):
            ms = time_lengths(v, n * m, c, stride, frames, args.rounds)
            rows.append({"channels": c, "stride": stride, "frames": frames, "rows": v * n * m,
                         "ms": {str(k): x for k, x in ms.items()}, "fastest": min(ms, key=ms.__getitem__),
                         "picked": {str(k): picked(c, stride, frames, v * n * m, k) for k in args.weights}})
        best = sum(min(r["ms"].values()) for r in rows)
        ratio = {str(k): sum(r["ms"][str(r["picked"][str(k)])] for r in rows) / best for k in args.weights}
        results["points"][point] = {"layers": rows, "time_over_fastest": ratio}
        print(f"| {point} | " + " | ".join(f"{ratio[str(k)]:.3f}" for k in args.weights) + " |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
