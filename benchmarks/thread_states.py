"""How one grid point's multi-threaded speed varies from one fresh process to the next.

Run from the repository root::

    python -m benchmarks.thread_states                                  # ucla-b16, 2 threads, 10 processes
    python -m benchmarks.thread_states --processes 10 --env MKL_DYNAMIC=FALSE --env OMP_PROC_BIND=true

On the 2-core development machine the 2-thread figures of one process were not reproducible in the next
(README "Performance"): the fused model ran NW-UCLA batch 16 at about 75 or about 105 clips/s depending on
the process, the baseline at 65-70 in both. Each child process here times, after a warm-up, the fused model
(the rules' layout), the fused model with the original structure's layout pinned (``[nctv]``) and the
baseline (median of ``--calls`` interleaved calls each) and three single products of the sizes the fused model is
made of: a tiled convolution's time transform, (2, 38, 26) @ (2, 26, 1024); a per-pair graph product,
(832, 64) @ (64, 64); a channel product, (38, 96, 64) @ (38, 64, 64) (microseconds, median of 200 calls), then
the same three on one thread (``*_1thread_us``). The
parent runs ``--processes`` children one after another, each variant of ``--env`` (KEY=VALUE, applied
before the child starts; several apply together) interleaved with the plain environment, and writes every
child's figures to JSON (``--out``, default ``benchmarks/results/thread_states.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.model import ROOT, machine_info
from stgcn.utils.atomic import atomic_write_text


def _median_us(fn: Any, calls: int = 200) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def child(point: str, threads: int, calls: int) -> dict[str, Any]:
    """One process's figures (see the module docstring)."""
    from benchmarks.grid import POINTS, build
    from stgcn.inference.optimize import optimize_for_inference
    from stgcn.models.reference import baseline_from_stgcn

    torch.set_num_threads(threads)
    layout, classes, (n, t, v, m), _ = POINTS[point]
    model = build(layout, classes, v, m)
    x = torch.randn(n, 3, t, v, m, generator=torch.Generator().manual_seed(2))
    pinned = optimize_for_inference(model)
    pinned.layout = "nctv"
    models = {"stgcn-fused": optimize_for_inference(model), "stgcn-fused[nctv]": pinned,
              "baseline": baseline_from_stgcn(model).eval()}
    out: dict[str, Any] = {}
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for f in models.values():
            for _ in range(3):
                f(x)
        for _ in range(calls):  # interleaved: a spell that starts mid-process reaches every model
            for name, f in models.items():
                start = time.perf_counter()
                f(x)
                times[name].append(time.perf_counter() - start)
        products = {"transform_us": ((2, 38, 26), (2, 26, 1024)), "pair_us": ((832, 64), (64, 64)),
                    "channel_us": ((38, 96, 64), (38, 64, 64))}
        for suffix, n_threads in (("", threads), ("_1thread", 1)):  # the same products on one thread last
            torch.set_num_threads(n_threads)
            for name, (sa, sb) in products.items():
                a, b = torch.randn(sa), torch.randn(sb)
                o = torch.empty(*sa[:-1], sb[-1])
                op = torch.bmm if len(sa) == 3 else torch.mm
                out[name.replace("_us", f"{suffix}_us")] = _median_us(lambda a=a, b=b, o=o, op=op: op(a, b, out=o))
    for name in models:
        out[f"{name}_clips_per_s"] = n / statistics.median(times[name])
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.grid import POINTS

    p = argparse.ArgumentParser(prog="python -m benchmarks.thread_states", description=__doc__.split("\n\n")[0])
    p.add_argument("--point", choices=sorted(POINTS), default="ucla-b16")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--processes", type=int, default=10, help="children per environment")
    p.add_argument("--calls", type=int, default=9, help="timed calls of each model per child")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="a variant environment, interleaved with the plain one")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "thread_states.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.point, args.threads, args.calls)))
        return 0
    if any("=" not in item for item in args.env):
        p.error("--env takes KEY=VALUE")
    variant = dict(item.split("=", 1) for item in args.env)
    envs = {"plain": {}, **({" ".join(args.env): variant} if variant else {})}
    cmd = [sys.executable, "-m", "benchmarks.thread_states", "--child", "--point", args.point,
           "--threads", str(args.threads), "--calls", str(args.calls)]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in envs}
    for i in range(args.processes):
        for name, extra in envs.items():
            proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **extra}, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"error: child failed: {(proc.stderr or proc.stdout).strip()[-300:]}", file=sys.stderr)
                return 2
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append(r)
            print(f"{i + 1:2d} {name:28s} fused {r['stgcn-fused_clips_per_s']:6.1f}  [nctv] "
                  f"{r['stgcn-fused[nctv]_clips_per_s']:6.1f}  baseline "
                  f"{r['baseline_clips_per_s']:6.1f} clips/s | transform {r['transform_us']:6.1f} us  pair "
                  f"{r['pair_us']:5.1f} us  channel {r['channel_us']:6.1f} us | one thread: transform "
                  f"{r['transform_1thread_us']:6.1f} us", flush=True)
    results = {"machine": machine_info(args.threads), "settings": {k: str(v) for k, v in vars(args).items()},
               "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
