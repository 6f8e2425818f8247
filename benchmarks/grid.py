"""Shape-grid benchmark: our ST-GCN against the original code's structure at the shapes users run.

Run from the repository root (also ``python -m benchmarks.model --grid``)::

    python -m benchmarks.grid                                    # every point, 1 and 2 threads
    python -m benchmarks.grid --points ucla-b16 stream-18 --threads 2 --repeats 5
    python -m benchmarks.grid --list
    python -m benchmarks.grid --points ucla-b1 --threads 1 --no-train --dispatch rules --kernels all

Each point is an input shape (N, C, T, V, M) with its layout. For every point and thread count it measures,
after a warm-up (which is also when ``dispatch = "auto"`` times the kernels), ``--repeats`` interleaved
rounds of inference (eval, no grad: ``baseline`` = :mod:`stgcn.models.reference`, ``stgcn``, ``stgcn-fused``
= :func:`~stgcn.inference.optimize.optimize_for_inference`, with ``--bf16`` also ``stgcn-fused-bf16``, the
opt-in ``dtype=torch.bfloat16``, whose logits differ: the JSON has every model's largest logit difference and
top-1 agreement with the baseline) and, where the point has a training batch, of a
training step (forward, cross-entropy, backward, SGD with momentum; ``baseline`` and ``stgcn``; with
``--train-bf16`` also both under bfloat16 autocast, and ours with either layout pinned). Figures:
clips/s median [min-max], each a ratio to the baseline of the same round (median and min-max of the
per-round ratios), and the kernels each block chose (:func:`stgcn.ops.dispatch.dispatch_report`). Logits are
checked against the baseline first. ``--kernels`` adds, per named graph kernel, ``stgcn[kernel]`` and
``stgcn-fused[kernel]`` with that kernel pinned in every block (:func:`~stgcn.ops.dispatch.pin_kernels`), timed in
the same rounds: the data behind the graph-convolution rule. Results go to JSON (``--out``, default
``benchmarks/results/grid_cpu.json``), with the machine's load average before and after, and the minor page
faults per call of every implementation. ``--allocator keep`` first tells glibc to keep freed memory
(:mod:`benchmarks.allocator`): the baseline's large tensors then stop faulting in fresh pages on every call,
which takes the machine's page-fault cost out of the ratios; ``--compare DEFAULT KEEP`` prints both runs'
ratios side by side.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.allocator import ALLOCATORS, set_allocator
from benchmarks.model import ROOT, machine_info, make_train_step, time_interleaved
from stgcn.inference.optimize import optimize_for_inference
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.reference import baseline_from_stgcn
from stgcn.models.stgcn import STGCN
from stgcn.ops.dispatch import GRAPH_KERNELS, dispatch_report, pin_kernels, set_dispatch

# name: (layout, num_classes, (N, T, V, M), measures). Measures: "infer" and/or "train".
POINTS: dict[str, tuple[str, int, tuple[int, int, int, int], tuple[str, ...]]] = {
    "ucla-b1": ("kinect-v1", 10, (1, 52, 20, 1), ("infer",)),
    "ucla-b16": ("kinect-v1", 10, (16, 52, 20, 1), ("infer", "train")),
    "ucla-b64": ("kinect-v1", 10, (64, 52, 20, 1), ("infer", "train")),
    "coco2d-b1": ("coco-17", 60, (1, 100, 17, 2), ("infer",)),
    "coco2d-b16": ("coco-17", 60, (16, 100, 17, 2), ("infer", "train")),
    "ntu-b1": ("ntu-rgb+d", 60, (1, 300, 25, 2), ("infer",)),
    "ntu-b16": ("ntu-rgb+d", 60, (16, 300, 25, 2), ("infer", "train")),
    "stream-18": ("openpose-18", 400, (1, 150, 18, 1), ("infer",)),
    "stream-17": ("coco-17", 60, (1, 100, 17, 2), ("infer",)),
    "kinetics-b1": ("openpose-18", 400, (1, 300, 18, 1), ("infer",)),
}


def build(layout: str, classes: int, v: int, m: int, seed: int = 0) -> STGCN:
    """A random model with BatchNorm statistics calibrated on random data (realistic logit scale)."""
    torch.manual_seed(seed)
    model = STGCN(STGCNConfig(num_classes=classes, graph=GraphConfig(layout=layout)))
    bns = [b for b in model.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.momentum = None
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 32, v, m, generator=gen))
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


def _choices(module: nn.Module) -> list[str]:
    """Per block, the kernels chosen (graph/temporal), from the modules' caches."""
    out = []
    for name, entries in dispatch_report(module).items():
        kernels = sorted({e.rsplit(" -> ", 1)[1] for e in entries})
        out.append(f"{name or 'layout'}: {'/'.join(kernels)}")
    return out


def run_point(name: str, args: argparse.Namespace) -> dict[str, Any]:
    layout, classes, (n, t, v, m), measures = POINTS[name]
    model = build(layout, classes, v, m, args.seed)
    x = torch.randn(n, 3, t, v, m, generator=torch.Generator().manual_seed(args.seed + 2))
    result: dict[str, Any] = {"input": [n, 3, t, v, m], "layout": layout}
    if "infer" in measures:
        base, fused = baseline_from_stgcn(model).eval(), optimize_for_inference(model)
        set_dispatch(model, args.dispatch)
        set_dispatch(fused, args.dispatch)
        impls = {"baseline": base, "stgcn": model, "stgcn-fused": fused}
        if args.bf16:  # the opt-in lower precision: not the same numbers (logit differences in the JSON)
            impls["stgcn-fused-bf16"] = optimize_for_inference(model, dtype=torch.bfloat16)
            set_dispatch(impls["stgcn-fused-bf16"], args.dispatch)
        for kernel in args.kernels:  # the same weights with one graph kernel pinned in every block
            pinned, pinned_fused = copy.deepcopy(model), optimize_for_inference(model)
            pin_kernels(pinned, graph=kernel)
            pin_kernels(pinned_fused, graph=kernel)
            impls[f"stgcn[{kernel}]"], impls[f"stgcn-fused[{kernel}]"] = pinned, pinned_fused
        with torch.inference_mode():
            ref = base(x)
            outs = {k: f(x).float() for k, f in impls.items() if k != "baseline"}
            result["max_abs_diff"] = {k: float((o - ref).abs().max()) for k, o in outs.items()}
            top1 = ref.argmax(1)
            result["top1_agreement"] = {k: float((o.argmax(1) == top1).float().mean()) for k, o in outs.items()}

        def call(f: nn.Module):
            def run() -> None:
                with torch.inference_mode():
                    f(x)
            return run
        result["inference"] = time_interleaved({k: call(f) for k, f in impls.items()}, n, args.repeats,
                                               args.warmup, args.min_seconds)
        for impl, f in impls.items():
            if impl != "baseline":
                result["inference"][impl]["dispatch"] = _choices(f)
        _print(name, "infer", result["inference"])
    if "train" in measures and args.train:
        y = torch.arange(n) % classes
        ours = copy.deepcopy(model).train()
        steps = {"baseline": make_train_step(baseline_from_stgcn(model).train(), x, y),
                 "stgcn": make_train_step(ours, x, y)}
        trained = {"stgcn": ours}
        if args.train_bf16:  # bfloat16 autocast (train.cpu_bf16): both structures, and ours with its layout pinned
            bf16 = torch.bfloat16
            steps["baseline-bf16"] = make_train_step(baseline_from_stgcn(model).train(), x, y, autocast=bf16)
            for impl, pin in (("stgcn-bf16", None), ("stgcn-bf16[vtnc]", "vtnc"), ("stgcn-bf16[nctv]", "nctv")):
                trained[impl] = copy.deepcopy(model).train()
                trained[impl].layout = pin
                steps[impl] = make_train_step(trained[impl], x, y, autocast=bf16)
        result["training"] = time_interleaved(steps, n, args.repeats, args.warmup, args.min_seconds)
        for impl, module in trained.items():
            result["training"][impl]["dispatch"] = _choices(module)
        _print(name, "train", result["training"])
    return result


def _print(point: str, what: str, timings: dict[str, Any]) -> None:
    for impl, e in timings.items():
        s, r = e["clips_per_s"], e.get("ratio_vs_baseline")
        ratio = f"{r['median']:.2f}x [{r['min']:.2f}-{r['max']:.2f}]" if r else ""
        print(f"{point:11s} {what:6s} {impl:28s} {s['median']:9.2f} clips/s {ratio:>22s}", flush=True)


def markdown_table(results: dict[str, Any]) -> str:
    """The README table: one row per (threads, point), ratios median [min-max] against the baseline."""
    def cell(group: dict[str, Any] | None, impl: str) -> str:
        if not group or impl not in group:
            return "—"
        r = group[impl]["ratio_vs_baseline"]
        return f"{r['median']:.2f}× [{r['min']:.2f}-{r['max']:.2f}]"

    def base(group: dict[str, Any] | None) -> str:
        return f"{group['baseline']['clips_per_s']['median']:.2f}" if group else "—"

    bf16 = any("stgcn-fused-bf16" in r.get("inference", {}) for runs in results["runs"].values()
               for r in runs.values())
    extra = (" stgcn-fused-bf16 |", "---|") if bf16 else ("", "")
    rows = [f"| threads | point (N, C, T, V, M) | inference baseline clips/s | stgcn | stgcn-fused |{extra[0]} "
            "training baseline clips/s | stgcn training |", f"|---|---|---|---|---|{extra[1]}---|---|"]
    for threads, runs in results["runs"].items():
        for name, r in runs.items():
            inf, tr = r.get("inference"), r.get("training")
            low = f" {cell(inf, 'stgcn-fused-bf16')} |" if bf16 else ""
            rows.append(f"| {threads.split('_')[1]} | {name} {tuple(r['input'])} | {base(inf)} | "
                        f"{cell(inf, 'stgcn')} | {cell(inf, 'stgcn-fused')} |{low} {base(tr)} | {cell(tr, 'stgcn')} |")
    return "\n".join(rows)


def compare_table(default: dict[str, Any], keep: dict[str, Any]) -> str:
    """The README table of two runs of the same points, glibc's default allocator and ``--allocator keep``:
    fused inference and training ratios of each, and the baseline's page faults per call in the default run."""
    def ratio(run: dict[str, Any] | None, group: str, impl: str) -> str:
        entry = (run or {}).get(group, {}).get(impl)
        return f"{entry['ratio_vs_baseline']['median']:.2f}×" if entry else "—"

    def faults(run: dict[str, Any] | None, group: str) -> str:
        entry = (run or {}).get(group, {}).get("baseline")
        value = entry.get("page_faults_per_call") if entry else None
        return f"{value:,.0f}" if value is not None else "—"

    rows = ["| threads | point (N, C, T, V, M) | baseline faults per inference call | stgcn-fused: default / keep | "
            "baseline faults per training step | training: default / keep |", "|---|---|---|---|---|---|"]
    for threads, runs in default["runs"].items():
        for name, d in runs.items():
            k = keep["runs"].get(threads, {}).get(name)
            fused = f"{ratio(d, 'inference', 'stgcn-fused')} / {ratio(k, 'inference', 'stgcn-fused')}"
            train = f"{ratio(d, 'training', 'stgcn')} / {ratio(k, 'training', 'stgcn')}"
            rows.append(f"| {threads.split('_')[1]} | {name} {tuple(d['input'])} | {faults(d, 'inference')} | "
                        f"{fused} | {faults(d, 'training')} | {train} |")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.grid", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", nargs="+", choices=sorted(POINTS), default=list(POINTS))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (autotuning happens in the first)")
    p.add_argument("--min-seconds", type=float, default=0.5, help="a timed run repeats the call this long")
    p.add_argument("--no-train", dest="train", action="store_false", help="inference only")
    p.add_argument("--dispatch", choices=["auto", "rules"], default="rules",
                   help="the models' dispatch mode (default: rules, the models' default; auto: autotuned)")
    p.add_argument("--kernels", nargs="+", choices=[*GRAPH_KERNELS, "all"], default=[],
                   help="also time the models with each of these graph kernels pinned ('all': every kernel)")
    p.add_argument("--bf16", action="store_true",
                   help="also time the opt-in bfloat16 fused model (stgcn-fused-bf16; not the same numbers)")
    p.add_argument("--train-bf16", action="store_true",
                   help="also time training steps under bfloat16 autocast (train.cpu_bf16): baseline-bf16, "
                        "stgcn-bf16 (the rule), stgcn-bf16[vtnc] and stgcn-bf16[nctv] (either layout pinned); "
                        "ratios to the float32 baseline")
    p.add_argument("--allocator", choices=ALLOCATORS, default="default",
                   help="keep: glibc keeps freed memory (no fresh pages per call; benchmarks.allocator)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--list", action="store_true", help="print the points and exit")
    p.add_argument("--table", type=Path, nargs="+", help="print the markdown table of result files and exit")
    p.add_argument("--compare", type=Path, nargs=2, metavar=("DEFAULT", "KEEP"),
                   help="print the allocator comparison table of two result files and exit")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "grid_cpu.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.kernels = list(GRAPH_KERNELS) if "all" in args.kernels else list(dict.fromkeys(args.kernels))
    if args.table:
        for path in args.table:
            print(markdown_table(json.loads(path.read_text())))
        return 0
    if args.compare:
        print(compare_table(*(json.loads(path.read_text()) for path in args.compare)))
        return 0
    if args.list:
        for name, (layout, _, shape, measures) in POINTS.items():
            print(f"{name:11s} {layout:12s} (N, T, V, M) = {shape} {' '.join(measures)}")
        return 0
    results: dict[str, Any] = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                               "allocator": set_allocator(args.allocator),
                               "load_average_before": os.getloadavg(), "runs": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        results["machine"] = machine_info(threads)
        print(f"# {threads} thread(s), load average {os.getloadavg()[0]:.1f}", flush=True)
        runs = results["runs"].setdefault(f"threads_{threads}", {})
        for name in args.points:
            runs[name] = run_point(name, args)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            results["load_average_after"] = os.getloadavg()
            args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")  # partial results survive
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
