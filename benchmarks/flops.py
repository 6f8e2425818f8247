"""Multiply-add counts of inference, ours against the original structure, and the speed-up they allow.

Run from the repository root::

    python -m benchmarks.flops                         # the grid's points, one thread
    python -m benchmarks.flops --points ucla-b16 coco2d-b16 --time --repeats 5

Per grid point (:data:`benchmarks.grid.POINTS`) and block it counts the multiply-adds of the matrix products
(the work that bounds these shapes; BatchNorm, ReLU, additions and copies are not counted):

- the baseline (:mod:`stgcn.models.reference`): the 1x1 convolution to K*C_out channels, the einsum over
  (k, v) for every (w, t), the Gamma x 1 temporal convolution and the residual's 1x1 convolution;
- our fused model as its rules run it on one thread (:func:`stgcn.ops.dispatch.graph_kernel_rule`, the tiled
  temporal convolution at the tile length :func:`stgcn.ops.tiled_conv.plan_temporal_conv` picks, its input and
  output transforms included).

``--time`` also times single-precision square matrix products of :data:`GEMM_SIZES` (the machine's attainable
rate: the fastest of them) and the baseline and fused models at the point (median of ``--repeats``), and
reports the fraction of that rate each reaches and the **bound**: the baseline's time over our multiply-adds
at the full product rate, i.e. the speed-up ours would have if every one of its products ran as fast as the
fastest matrix product. A goal above the bound cannot be met by scheduling; only fewer multiply-adds (another
algorithm) or lower precision can. ``--allocator keep`` (:mod:`benchmarks.allocator`) times with glibc keeping
freed memory: the baseline's large tensors then no longer fault in fresh pages on every call (its time, and so
the bound, is then the compute's). Writes JSON (``--out``, default ``benchmarks/results/flops_cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.allocator import ALLOCATORS, set_allocator
from benchmarks.grid import POINTS, build
from benchmarks.model import ROOT, machine_info
from stgcn.inference.optimize import FusedBlock, FusedSTGCN, optimize_for_inference
from stgcn.models.reference import baseline_from_stgcn
from stgcn.models.stgcn import STGCN
from stgcn.ops.dispatch import graph_kernel_rule
from stgcn.ops.tiled_conv import tiled_cost
from stgcn.utils.atomic import atomic_write_text


def block_macs(block: FusedBlock, frames_in: int, samples: int) -> dict[str, dict[str, float]]:
    """Multiply-adds of one block (its structure read from the fused block), baseline and ours, split into
    graph / temporal / residual.

    Shape:
        the block's input has ``frames_in * samples`` (frame, sample) rows per joint.
    """
    k, c_in, c_out, stride = block.k, block.c_in, block.c_out, block.stride
    v, gamma, pairs = block.bias.shape[0], block.tconv_weight.shape[2], len(block.edges[0])
    rows_in = frames_in * samples
    frames_out = -(-frames_in // stride)
    rows_out = frames_out * samples
    base = {"graph": rows_in * v * c_in * k * c_out + rows_in * k * v * v * c_out,
            "temporal": rows_out * v * gamma * c_out * c_out,
            "residual": rows_out * v * c_in * c_out if block.residual == "conv" else 0}
    kernel = graph_kernel_rule(rows_in, c_in, c_out, sparse=pairs > 0, cpu=True, grad=False)
    if kernel == "pairs":
        graph = rows_in * pairs * c_in * c_out
    elif kernel == "mix-first":  # (K*W, V) mixing of C_in-wide rows, then K products
        graph = k * v * v * rows_in * c_in + k * v * rows_in * c_in * c_out
    else:  # project-first
        graph = k * v * rows_in * c_in * c_out + v * k * v * rows_in * c_out
    length, per_row = tiled_cost(gamma, stride, frames_out, c_out, c_out, v * samples)
    temporal = v * samples * per_row
    ours = {"graph": graph, "temporal": temporal, "residual": base["residual"]}
    return {"baseline": base, "ours": ours, "kernels": {"graph": kernel, "tile_length": length}}


def count(point: str, fused: FusedSTGCN) -> dict[str, Any]:
    """Per-block and total multiply-adds of one grid point (inference, one thread)."""
    _, _, (n, t, v, m), _ = POINTS[point]
    blocks, totals = [], {"baseline": 0, "ours": 0}
    frames = t
    for block in fused.blocks:
        b = block_macs(block, frames, n * m)
        blocks.append({"c_in": block.c_in, "c_out": block.c_out, "stride": block.stride, "frames_in": frames, **b})
        for side in totals:
            totals[side] += sum(b[side].values())
        frames = -(-frames // block.stride)
    return {"input": [n, 3, t, v, m], "pairs": len(fused.blocks[0].edges[0]), "blocks": blocks, "macs": totals,
            "mac_ratio": totals["baseline"] / totals["ours"]}


def _median_seconds(fn: Any, repeats: int, min_seconds: float = 0.3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            if time.perf_counter() - start >= min_seconds:
                break
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


# Square float32 products timed for the attainable rate. An earlier version timed 2048 alone, which on this
# machine runs slower (83 GFLOP/s on one thread) than the model-sized products of 256-1024 (about 100).
GEMM_SIZES = (256, 512, 1024, 2048)


def gemm_rates(repeats: int) -> dict[int, float]:
    """Multiply-adds per second of an (n x n) @ (n x n) float32 product, for each n of :data:`GEMM_SIZES`."""
    rates = {}
    for n in GEMM_SIZES:
        a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        rates[n] = n ** 3 / _median_seconds(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), repeats)
    return rates


def time_point(point: str, model: STGCN, fused: FusedSTGCN, macs: dict[str, float], rate: float,
               repeats: int) -> dict[str, float]:
    _, _, (n, t, v, m), _ = POINTS[point]
    base = baseline_from_stgcn(model).eval()
    x = torch.randn(n, 3, t, v, m)
    with torch.inference_mode():
        tb, tf = (_median_seconds(lambda f=f: f(x), repeats) for f in (base, fused))
    return {"baseline_s": tb, "fused_s": tf, "speedup": tb / tf,
            "baseline_of_rate": macs["baseline"] / tb / rate, "fused_of_rate": macs["ours"] / tf / rate,
            "bound": tb / (macs["ours"] / rate)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.flops", description=__doc__.split("\n\n")[0])
    p.add_argument("--points", nargs="+", choices=sorted(POINTS), default=list(POINTS))
    p.add_argument("--time", action="store_true", help="also time the product rate and the models (one thread)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--allocator", choices=ALLOCATORS, default="default",
                   help="keep: glibc keeps freed memory (no fresh pages per call; benchmarks.allocator)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "flops_cpu.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, Any] = {"machine": machine_info(1), "allocator": set_allocator(args.allocator), "points": {}}
    rate = None
    if args.time:
        rates = gemm_rates(args.repeats)
        results["gemm_macs_per_s_by_size"] = rates
        rate = results["gemm_macs_per_s"] = max(rates.values())
        sizes = ", ".join(f"{n}: {2 * r / 1e9:.1f}" for n, r in rates.items())
        print(f"product rate (GFLOP/s, one thread, by size): {sizes}; attainable {2 * rate / 1e9:.1f}")
    print(f"{'point':12s} {'baseline GMAC':>13s} {'ours GMAC':>10s} {'ratio':>6s}"
          + ("  baseline/fused ms  of rate (base, ours)  speed-up  bound" if rate else ""))
    for point in args.points:
        layout, classes, (_, _, v, m), _ = POINTS[point]
        model = build(layout, classes, v, m)
        fused = optimize_for_inference(model)
        r = results["points"][point] = count(point, fused)
        line = f"{point:12s} {r['macs']['baseline'] / 1e9:13.3f} {r['macs']['ours'] / 1e9:10.3f} {r['mac_ratio']:6.2f}"
        if rate:
            tm = r["timing"] = time_point(point, model, fused, r["macs"], rate, args.repeats)
            line += (f"  {tm['baseline_s'] * 1e3:7.1f} / {tm['fused_s'] * 1e3:6.1f}  {tm['baseline_of_rate']:6.0%}"
                     f" {tm['fused_of_rate']:6.0%}  {tm['speedup']:11.2f}x {tm['bound']:5.2f}x")
        print(line, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
