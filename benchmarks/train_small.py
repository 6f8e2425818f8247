"""Kernel-level training benchmark at the layer shapes of small-batch fine-tuning: the data behind the
single-threaded training rules (:func:`stgcn.models.layers.tiled_min_rows`,
:func:`stgcn.ops.dispatch.graph_kernel_rule`).

Run from the repository root::

    python -m benchmarks.train_small                       # both tables, 1 thread
    python -m benchmarks.train_small --what temporal --shapes 20,256,13,16,1 --threads 1

``temporal``: forward + backward of one temporal convolution (BN and ReLU excluded) on a (V, C, T, N) channels-last
image, the direct convolution (oneDNN) against the tiled one (:class:`stgcn.ops.temporal_conv.TiledConv`, its plan
built every call as in a training step). ``graph``: forward + backward of one
:class:`~stgcn.models.layers.GraphConv` with each kernel pinned. Figures are process CPU milliseconds per call,
best of ``--repeats`` (a shared machine's load inflates CPU time far less than wall time).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from stgcn.models.config import GraphConfig
from stgcn.models.layers import GraphConv
from stgcn.ops.temporal_conv import TiledConv
from stgcn.ops.tiled_conv import plan_temporal_conv

# (V, C, T, N, stride): the temporal convolutions of ST-GCN at batch 16 of NW-UCLA clips (52 frames, 20 joints,
# one person) and of COCO-17 clips (100 frames, 17 joints, two persons), and at batch 4 of NW-UCLA clips.
TEMPORAL_SHAPES = [
    (20, 64, 52, 16, 1), (20, 128, 52, 16, 2), (20, 128, 26, 16, 1), (20, 256, 26, 16, 2), (20, 256, 13, 16, 1),
    (17, 64, 100, 32, 1), (17, 128, 100, 32, 2), (17, 128, 50, 32, 1), (17, 256, 50, 32, 2), (17, 256, 25, 32, 1),
    (20, 64, 52, 4, 1), (20, 128, 26, 4, 1), (20, 256, 13, 4, 1),
]
# (layout, C_in, C_out, T, N): the graph convolutions at the same batches, and at batches 1-8.
GRAPH_SHAPES = [
    ("kinect-v1", 64, 64, 52, 16), ("kinect-v1", 128, 128, 26, 16), ("kinect-v1", 128, 256, 26, 16),
    ("kinect-v1", 256, 256, 13, 16), ("coco-17", 64, 64, 100, 32), ("coco-17", 128, 128, 50, 32),
    ("coco-17", 256, 256, 25, 32), ("kinect-v1", 64, 64, 52, 1), ("kinect-v1", 256, 256, 13, 1),
    ("kinect-v1", 256, 256, 13, 4), ("kinect-v1", 128, 128, 26, 8), ("coco-17", 256, 256, 25, 2),
]


def cpu_ms(fn: Callable[[], None], repeats: int) -> float:
    """Best process CPU milliseconds of ``fn`` over ``repeats`` calls, after two warm-up calls."""
    fn()
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best * 1000


def temporal_row(v: int, c: int, t: int, n: int, stride: int, repeats: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(v, t, n, c, generator=gen).permute(0, 3, 1, 2).requires_grad_()  # channels-last image
    w = (torch.randn(c, c, 9, 1, generator=gen) * 0.05).requires_grad_()
    b = torch.zeros(c, requires_grad=True)

    def direct() -> None:
        y = F.conv2d(x, w, b, (stride, 1), (4, 0))
        y.backward(torch.ones_like(y))

    def tiled() -> None:
        plan = plan_temporal_conv(w.detach()[..., 0], stride, t, exact=False, rows=v * n)
        y = TiledConv.apply(x, w, b, stride, plan)
        y.backward(torch.ones_like(y))

    d, tl = cpu_ms(direct, repeats), cpu_ms(tiled, repeats)
    rows = -(-t // stride) * n
    return {"shape": [v, c, t, n, stride], "rows": rows, "rows_x_channels": rows * c, "direct_ms": d,
            "tiled_ms": tl, "direct_over_tiled": d / tl}


def graph_row(layout: str, c_in: int, c_out: int, t: int, n: int, repeats: int) -> dict[str, Any]:
    graph = GraphConfig(layout=layout).build()
    A = torch.from_numpy(graph.A).float()
    torch.manual_seed(0)
    module = GraphConv(c_in, c_out, graph.K, graph.V)
    h = torch.randn(graph.V, t, n, c_in, requires_grad=True)
    out: dict[str, Any] = {"shape": [layout, c_in, c_out, t, n], "rows": t * n}
    for kernel in ("pairs", "pairs-batched", "mix-first"):
        module.graph_kernel = kernel
        module.kernel_cache.clear()

        def step() -> None:
            y = module.forward_vtnc(h, A)
            y.backward(torch.ones_like(y))
        out[f"{kernel}_ms"] = cpu_ms(step, repeats)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_small", description=__doc__.split("\n\n")[0])
    p.add_argument("--what", nargs="+", choices=["temporal", "graph"], default=["temporal", "graph"])
    p.add_argument("--shapes", nargs="+", help="temporal: V,C,T,N,stride; graph: layout,C_in,C_out,T,N")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"threads": args.threads}
    tables = {
        "temporal": (
            lambda: [tuple(int(a) for a in s.split(",")) for s in args.shapes] if args.shapes else TEMPORAL_SHAPES,
            temporal_row, ["(V, C, T, N, stride)", "rows", "rows x C", "direct ms", "tiled ms", "direct / tiled"],
            lambda r: [tuple(r["shape"]), r["rows"], r["rows_x_channels"], f"{r['direct_ms']:.1f}",
                       f"{r['tiled_ms']:.1f}", f"{r['direct_over_tiled']:.2f}"]),
        "graph": (
            lambda: [(s.split(",")[0], *(int(a) for a in s.split(",")[1:])) for s in args.shapes] if args.shapes
            else GRAPH_SHAPES,
            graph_row, ["(layout, C_in, C_out, T, N)", "rows", "pairs ms", "pairs-batched ms", "mix-first ms"],
            lambda r: [tuple(r["shape"]), r["rows"], f"{r['pairs_ms']:.1f}", f"{r['pairs-batched_ms']:.1f}",
                       f"{r['mix-first_ms']:.1f}"]),
    }
    for what, (shapes, measure, header, cells) in tables.items():
        if what not in args.what:
            continue
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        rows = results[what] = []
        for shape in shapes():
            r = measure(*shape, repeats=args.repeats)
            rows.append(r)
            print("| " + " | ".join(str(c) for c in cells(r)) + " |", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
