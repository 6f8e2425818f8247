"""ONNX Runtime benchmark: the exported model against the PyTorch baseline and the fused PyTorch model.

Run from the repository root::

    python -m benchmarks.onnx                                    # the short points, 1 thread (minutes)
    python -m benchmarks.onnx --points stream-18 stream-17 ucla-b1 ucla-b16 coco2d-b16 ntu-b16
    python -m benchmarks.onnx --points ucla-b16 stream-18 --threads 1 2 --repeats 5
    python -m benchmarks.onnx --table benchmarks/results/onnx_cpu.json

For every point of :data:`benchmarks.grid.POINTS` asked for, a random model (BatchNorm statistics calibrated)
is exported with :func:`stgcn.inference.export.export_model` once per export graph
(:data:`stgcn.inference.export_graph.EXPORT_GRAPHS`; the export checks its own outputs against the eager model,
within 1e-4), and each file is loaded in ONNX Runtime (CPU) at each optimisation level asked for: ``all``
(the default level, with the NCHWc layout transformer), ``extended``, and ``saved`` (the level-``all`` graph
written with ``SessionOptions.optimized_model_filepath`` and loaded again with optimisation off: only the
session start-up differs). Then ``--repeats`` interleaved rounds, after a warm-up, of inference (``baseline``
= :mod:`stgcn.models.reference` in eval mode, ``stgcn-fused`` = :func:`~stgcn.inference.optimize.
optimize_for_inference`, ``onnx-<graph>-<level>``) on the same input: clips/s median [min-max], each a ratio
to the baseline of the same round, and the process CPU time per clip (which load inflates less than wall
time). ``intra_op_num_threads`` and ``torch.set_num_threads`` are the thread count. Every figure carries the
load average before and after its point; the JSON (``--out``, default ``benchmarks/results/onnx_cpu.json``)
also has the session start-up seconds and each implementation's largest difference from the baseline logits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.grid import POINTS, build
from benchmarks.model import ROOT, machine_info, time_interleaved
from stgcn.inference.export import export_model
from stgcn.inference.export_graph import EXPORT_GRAPHS
from stgcn.inference.optimize import optimize_for_inference
from stgcn.models.reference import baseline_from_stgcn

DEFAULT_POINTS = ("stream-18", "stream-17", "ucla-b1", "ucla-b16", "coco2d-b16")  # + ntu-b16: ~10 min more
LEVELS = ("all", "extended", "saved")


def _session(path: Path, level: str, threads: int) -> tuple[Any, float]:
    """An ONNX Runtime CPU session for ``path`` at ``level``, and the seconds its creation took."""
    import onnxruntime as ort

    def options(opt_level: Any) -> Any:
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        o.graph_optimization_level = opt_level
        return o

    levels = ort.GraphOptimizationLevel
    if level == "saved":  # optimise once, write the result, time loading it with optimisation off
        saved = path.with_suffix(".opt.onnx")
        o = options(levels.ORT_ENABLE_ALL)
        o.optimized_model_filepath = str(saved)
        o.log_severity_level = 3  # the file is hardware-specific (NCHWc): ORT warns so
        ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
        path, opt_level = saved, levels.ORT_DISABLE_ALL
    else:
        opt_level = levels.ORT_ENABLE_ALL if level == "all" else levels.ORT_ENABLE_EXTENDED
    start = time.perf_counter()
    session = ort.InferenceSession(str(path), options(opt_level), providers=["CPUExecutionProvider"])
    return session, time.perf_counter() - start


def run_point(name: str, threads: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    layout, classes, (n, t, v, m), _ = POINTS[name]
    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    model = build(layout, classes, v, m, args.seed)
    x = torch.randn(n, 3, t, v, m, generator=torch.Generator().manual_seed(args.seed + 2))
    xn = x.numpy()
    base, fused = baseline_from_stgcn(model).eval(), optimize_for_inference(model)
    fns: dict[str, Callable[[], Any]] = {"baseline": lambda: base(x), "stgcn-fused": lambda: fused(x)}
    result: dict[str, Any] = {"input": [n, 3, t, v, m], "layout": layout, "threads": threads, "export": {},
                              "session_seconds": {}}
    for graph in args.graphs:
        path = workdir / f"{name}-{graph}.onnx"
        report = export_model(model, path, "onnx", graph=graph)
        result["export"][graph] = {"max_abs_diff_vs_eager": report.max_abs_diff, "bytes": path.stat().st_size,
                                   "seconds": report.seconds}
        for level in args.levels:
            session, seconds = _session(path, level, threads)
            impl = f"onnx-{graph}-{level}"
            result["session_seconds"][impl] = seconds
            fns[impl] = lambda s=session: s.run(["logits"], {"x": xn})[0]
    with torch.inference_mode():
        ref = base(x).numpy()
        result["max_abs_diff_vs_baseline"] = {
            k: float(np.abs(np.asarray(f(), dtype=np.float32) - ref).max())
            for k, f in fns.items() if k != "baseline"}
        result["inference"] = time_interleaved(fns, n, args.repeats, args.warmup, args.min_seconds)
    result["load_average_before"], result["load_average_after"] = load_before, os.getloadavg()
    _print(name, threads, result)
    return result


def _ratio(entry: dict[str, Any]) -> str:
    r = entry.get("ratio_vs_baseline")
    return f"{r['median']:.2f}x [{r['min']:.2f}-{r['max']:.2f}]" if r else "1"


def _print(point: str, threads: int, result: dict[str, Any]) -> None:
    load = result["load_average_before"][0], result["load_average_after"][0]
    print(f"{point} {tuple(result['input'])}, {threads} thread(s), load average {load[0]:.1f} -> {load[1]:.1f}")
    for impl, e in result["inference"].items():
        cpu = e.get("cpu_time_ratio_vs_baseline")
        print(f"  {impl:24s} {e['clips_per_s']['median']:9.2f} clips/s {_ratio(e):>20s}"
              + (f"  cpu-time {cpu:.2f}x" if cpu else ""), flush=True)


def markdown_table(results: dict[str, Any]) -> str:
    """The README table: one row per (point, threads), one column per implementation."""
    rows = results["points"]
    impls = [k for k in rows[0]["inference"] if k != "baseline"] if rows else []
    head = ["threads", "point (N, C, T, V, M)", "load avg", "baseline clips/s", *impls]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        inf = r["inference"]
        load = f"{r['load_average_before'][0]:.1f}-{r['load_average_after'][0]:.1f}"
        cells = [str(r["threads"]), f"{r['name']} {tuple(r['input'])}", load,
                 f"{inf['baseline']['clips_per_s']['median']:.2f}", *(_ratio(inf[k]) for k in impls if k in inf)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.onnx", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", nargs="+", default=list(DEFAULT_POINTS), choices=sorted(POINTS))
    p.add_argument("--threads", nargs="+", type=int, default=[1])
    p.add_argument("--graphs", nargs="+", default=list(EXPORT_GRAPHS), choices=EXPORT_GRAPHS)
    p.add_argument("--levels", nargs="+", default=["all"], choices=LEVELS)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--min-seconds", type=float, default=0.3, help="minimum length of one timed run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "onnx_cpu.json")
    p.add_argument("--table", type=Path, help="print the markdown table of a results file and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(args.table.read_text())))
        return 0
    import onnxruntime as ort

    info = machine_info(max(args.threads))
    info["onnxruntime"] = ort.__version__
    results: dict[str, Any] = {"machine": info, "points": []}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            for name in args.points:
                entry = run_point(name, threads, args, Path(tmp))
                results["points"].append({"name": name, **entry})
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=1))  # after every point: partial runs keep data
    results["machine"]["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=1))
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
