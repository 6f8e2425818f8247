"""Model speed and memory benchmark: our ST-GCN against the original code's structure, in one run.

Run from the repository root::

    python -m benchmarks.model                          # full run: NTU and Kinetics configs (slow on 2 cores)
    python -m benchmarks.model --configs ntu --batch-sizes 1 --train-batch 4 --repeats 3 --frames 100
    python -m benchmarks.model --help
    python -m benchmarks.model --grid [grid options]      # the shape grid: see benchmarks/grid.py

For each config (``ntu``: input (3, 300, 25, 2), 60 classes; ``kinetics``: (3, 300, 18, 2), 400 classes;
both spatial strategy) it measures, after a warm-up, ``--repeats`` interleaved runs of

* inference clips/s at each ``--batch-sizes`` (eval mode, no grad) for ``baseline`` (the original code's
  structure, :mod:`stgcn.models.reference`), ``stgcn`` (our :class:`~stgcn.model.STGCN` as it is) and
  ``stgcn-fused`` (:func:`stgcn.optimize.optimize_for_inference`), plus the opt-ins ``stgcn-fused-bf16``
  (``--bf16``) and ``stgcn-fused-compiled`` (``--compile``);
* training clips/s at ``--train-batch`` (forward, cross-entropy, backward, SGD step with momentum) for
  ``baseline`` and ``stgcn`` (default ``memory_mode="recompute"``), plus ``stgcn-checkpoint`` (the opt-in
  ``memory_mode="checkpoint"``) with ``--checkpoint`` and ``stgcn-bf16`` (the forward pass under CPU bfloat16
  autocast, as ``train.cpu_bf16``) with ``--train-bf16``;
* peak resident memory (the process's high-water mark VmHWM, or ``ru_maxrss`` where /proc is missing) of
  inference at the largest batch and of a training step, each in a fresh subprocess so that the numbers
  are isolated (``--no-memory`` skips it); ``peak_increase_mb`` is the part above the RSS after building
  the model and the input. ``--memory-only`` measures only this (and the parity check).

Every figure is reported as median and min-max over the runs, with the ratio to the baseline measured in
the same rounds (median of the per-round ratios). The CPU time per clip (all threads, ``time.process_time``)
is recorded too, with its ratio: on a machine shared with other work it is steadier than wall-clock time;
so are the minor page faults per call (``--allocator keep`` times with glibc keeping freed memory, which takes
the baseline's page faults out: :mod:`benchmarks.allocator`).
Before timing, the script checks that ``stgcn`` and ``stgcn-fused`` give the baseline's logits within
``--atol`` (1e-4) with the same weights (BatchNorm running statistics are first calibrated on random data
so that logits have a realistic scale). The thread count is
set with ``torch.set_num_threads`` and recorded. Prints a table and writes JSON (``--out``, default
``benchmarks/results/model_cpu.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.allocator import ALLOCATORS, minor_faults, set_allocator
from stgcn.inference.optimize import optimize_for_inference
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.reference import baseline_from_stgcn
from stgcn.models.stgcn import STGCN
from stgcn.utils.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]

CONFIGS: dict[str, dict[str, Any]] = {
    "ntu": {"layout": "ntu-rgb+d", "num_classes": 60, "joints": 25, "persons": 2},
    "kinetics": {"layout": "openpose-18", "num_classes": 400, "joints": 18, "persons": 2},
}
INFERENCE_IMPLS = ("baseline", "stgcn", "stgcn-fused", "stgcn-fused-bf16", "stgcn-fused-compiled")
TRAINING_IMPLS = ("baseline", "stgcn", "stgcn-checkpoint", "stgcn-bf16")


# ----------------------------------------------------------------------------------------------- models


def build_model(name: str, seed: int, calibrate_frames: int = 64) -> STGCN:
    """Our model for a config, with random weights and BatchNorm statistics calibrated on random data."""
    spec = CONFIGS[name]
    torch.manual_seed(seed)
    model = STGCN(STGCNConfig(num_classes=spec["num_classes"], graph=GraphConfig(layout=spec["layout"])))
    # calibrate the running statistics (cumulative average) so that eval-mode logits have a sane scale
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.momentum = None
    model.train()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, calibrate_frames, spec["joints"], spec["persons"], generator=gen))
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


def inference_impl(impl: str, model: STGCN, chunk_size: int | None) -> nn.Module | Callable:
    """A callable computing logits for an implementation name (see INFERENCE_IMPLS)."""
    if impl == "baseline":
        return baseline_from_stgcn(model).eval()
    if impl == "stgcn":
        return model.eval()
    if impl == "stgcn-fused":
        return optimize_for_inference(model, chunk_size=chunk_size)
    if impl == "stgcn-fused-bf16":
        return optimize_for_inference(model, chunk_size=chunk_size, dtype=torch.bfloat16)
    if impl == "stgcn-fused-compiled":
        return torch.compile(optimize_for_inference(model), dynamic=False)
    raise ValueError(f"unknown inference implementation {impl!r}; valid: {', '.join(INFERENCE_IMPLS)}")


def training_impl(impl: str, model: STGCN) -> nn.Module:
    """A trainable module for an implementation name (see TRAINING_IMPLS), holding ``model``'s weights."""
    if impl == "baseline":
        return baseline_from_stgcn(model).train()
    if impl in ("stgcn", "stgcn-checkpoint", "stgcn-bf16"):
        import copy

        ours = copy.deepcopy(model).train()
        ours.memory_mode = "checkpoint" if impl == "stgcn-checkpoint" else "recompute"
        return ours
    raise ValueError(f"unknown training implementation {impl!r}; valid: {', '.join(TRAINING_IMPLS)}")


def training_autocast(impl: str) -> torch.dtype | None:
    """The autocast dtype a training implementation's forward pass runs under (``stgcn-bf16``: bfloat16)."""
    return torch.bfloat16 if impl.endswith("-bf16") else None


def make_train_step(module: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    autocast: torch.dtype | None = None) -> Callable[[], None]:
    """One SGD step (lr 1e-3, momentum 0.9, weight decay 1e-4 as the original) on a fixed batch; with
    ``autocast`` the forward pass under ``torch.autocast`` of that dtype on the input's device (as the trainer's
    ``train.cpu_bf16`` / ``train.amp``)."""
    opt = torch.optim.SGD(module.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=autocast) if autocast else contextlib.nullcontext():
            logits = module(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()

    return step


def make_input(name: str, batch: int, frames: int, seed: int) -> torch.Tensor:
    spec = CONFIGS[name]
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, frames, spec["joints"], spec["persons"], generator=gen)


# ------------------------------------------------------------------------------------------------ timing


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def time_interleaved(fns: dict[str, Callable[[], Any]], batch: int, repeats: int, warmup: int,
                     min_seconds: float) -> dict[str, dict[str, Any]]:
    """Clips/s of each function over ``repeats`` rounds; within a round every function runs once, in turn.

    A run calls a function ``iters`` times (chosen in warm-up so that a run lasts ``min_seconds``). The minor
    page faults per call are counted too (:func:`benchmarks.allocator.minor_faults`; ``None`` where the
    platform has no count).
    """
    iters = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        for _ in range(max(1, warmup)):
            fn()
        per_call = (time.perf_counter() - start) / max(1, warmup)
        iters[name] = max(1, math.ceil(min_seconds / max(per_call, 1e-9)))
    runs: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    faults: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu, start_faults = time.perf_counter(), time.process_time(), minor_faults()
            for _ in range(iters[name]):
                fn()
            runs[name].append(batch * iters[name] / (time.perf_counter() - start))
            cpu[name].append((time.process_time() - start_cpu) / (batch * iters[name]))
            if start_faults is not None:
                faults[name].append((minor_faults() - start_faults) / iters[name])
    out = {}
    for name, values in runs.items():
        entry: dict[str, Any] = {"clips_per_s": _summary(values), "runs": values, "calls_per_run": iters[name],
                                 "cpu_seconds_per_clip": _summary(cpu[name]),
                                 "page_faults_per_call": statistics.median(faults[name]) if faults[name] else None}
        if "baseline" in runs and name != "baseline":
            ratios = [a / b for a, b in zip(values, runs["baseline"], strict=True)]
            entry["ratio_vs_baseline"] = _summary(ratios)
            entry["cpu_time_ratio_vs_baseline"] = statistics.median(
                b / a for a, b in zip(cpu[name], cpu["baseline"], strict=True))
        out[name] = entry
    return out


# ------------------------------------------------------------------------------------ memory (subprocess)


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: build, measure RSS, run the workload twice, report ru_maxrss."""
    torch.set_num_threads(spec["threads"])
    model = build_model(spec["config"], spec["seed"])
    x = make_input(spec["config"], spec["batch"], spec["frames"], spec["seed"])
    if spec["mode"] == "train":
        module = training_impl(spec["impl"], model)
        y = torch.arange(spec["batch"]) % CONFIGS[spec["config"]]["num_classes"]
        fn = make_train_step(module, x, y, autocast=training_autocast(spec["impl"]))
    else:
        module = inference_impl(spec["impl"], model, spec["chunk_size"])

        def fn() -> None:
            with torch.inference_mode():
                module(x)
    del model
    before = _rss_mb("VmRSS")
    for _ in range(2):
        fn()
    peak = _rss_mb("VmHWM")
    return {"peak_rss_mb": peak, "rss_before_mb": before, "peak_increase_mb": peak - before}


def _rss_mb(field: str) -> float:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process in MiB.

    Read from /proc/self/status where available: unlike ``ru_maxrss``, which Linux carries over from the
    parent through fork and exec, VmHWM belongs to this process's own address space.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of one workload in a fresh ``python -m benchmarks.model --child`` process."""
    cmd = [sys.executable, "-m", "benchmarks.model", "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"child exited with {proc.returncode}: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- runs


def check_parity(model: STGCN, impls: dict[str, Callable], name: str, frames: int, seed: int,
                 atol: float) -> dict[str, Any]:
    """Max |logits - baseline logits| of every implementation on a batch of 2 random clips."""
    x = make_input(name, 2, frames, seed + 7)
    with torch.inference_mode():
        ref = impls["baseline"](x).float()
        report: dict[str, Any] = {"logit_scale": float(ref.abs().max()), "atol": atol}
        for impl, fn in impls.items():
            if impl == "baseline":
                continue
            diff = float((fn(x).float() - ref).abs().max())
            exact = "bf16" not in impl
            report[impl] = {"max_abs_diff": diff, "checked": exact, "ok": diff <= atol if exact else None}
    return report


def run_config(name: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = CONFIGS[name]
    model = build_model(name, args.seed)
    result: dict[str, Any] = {
        "input": [3, args.frames, spec["joints"], spec["persons"]], "num_classes": spec["num_classes"],
        "layout": spec["layout"], "strategy": "spatial",
        "parameters": sum(p.numel() for p in model.parameters())}
    impl_names = ["baseline", "stgcn", "stgcn-fused"]
    if args.bf16:
        impl_names.append("stgcn-fused-bf16")
    if args.compile:
        impl_names.append("stgcn-fused-compiled")
    impls = {impl: inference_impl(impl, model, args.chunk_size) for impl in impl_names}
    parity = check_parity(model, impls, name, args.frames, args.seed, args.atol)
    result["parity"] = parity
    bad = [k for k, v in parity.items() if isinstance(v, dict) and v.get("ok") is False]
    if bad:
        raise SystemExit(f"error: {name}: logits differ from the baseline by more than {args.atol} for "
                         f"{', '.join(bad)}: {json.dumps(parity)}")
    result["inference"] = {}
    for batch in [] if args.memory_only else args.batch_sizes:
        x = make_input(name, batch, args.frames, args.seed)

        fns = {impl: _inference_call(fn, x) for impl, fn in impls.items()}
        result["inference"][f"batch_{batch}"] = time_interleaved(fns, batch, args.repeats, args.warmup,
                                                                 args.min_seconds)
        _print_rows(name, f"infer b{batch}", result["inference"][f"batch_{batch}"])
    if args.train_batch and not args.memory_only:
        x = make_input(name, args.train_batch, args.frames, args.seed)
        y = torch.arange(args.train_batch) % spec["num_classes"]
        train_names = (["baseline", "stgcn"] + (["stgcn-checkpoint"] if args.checkpoint else [])
                       + (["stgcn-bf16"] if args.train_bf16 else []))
        steps = {impl: make_train_step(training_impl(impl, model), x, y, autocast=training_autocast(impl))
                 for impl in train_names}
        result["training"] = {f"batch_{args.train_batch}": time_interleaved(
            steps, args.train_batch, args.repeats, args.warmup, args.min_seconds)}
        _print_rows(name, f"train b{args.train_batch}", result["training"][f"batch_{args.train_batch}"])
    if args.memory:
        mem: dict[str, Any] = {}
        common = {"config": name, "frames": args.frames, "seed": args.seed, "threads": args.threads,
                  "chunk_size": args.chunk_size}
        batch = max(args.batch_sizes)
        for impl in ["baseline", "stgcn", "stgcn-fused"] + (["stgcn-fused-bf16"] if args.bf16 else []):
            mem.setdefault(f"inference_batch_{batch}", {})[impl] = measure_memory(
                {**common, "mode": "infer", "impl": impl, "batch": batch})
        if args.train_batch:
            for impl in ["baseline", "stgcn", "stgcn-checkpoint"] + (["stgcn-bf16"] if args.train_bf16 else []):
                mem.setdefault(f"training_batch_{args.train_batch}", {})[impl] = measure_memory(
                    {**common, "mode": "train", "impl": impl, "batch": args.train_batch})
        for group in mem.values():
            base = group["baseline"].get("peak_rss_mb")
            for impl, entry in group.items():
                if impl != "baseline" and base and "peak_rss_mb" in entry:
                    entry["ratio_vs_baseline"] = entry["peak_rss_mb"] / base
        result["peak_memory"] = mem
        for what, group in mem.items():
            label = "mem " + what.replace("inference_batch_", "infer b").replace("training_batch_", "train b")
            for impl, entry in group.items():
                ratio = f"{entry['ratio_vs_baseline']:.2f}x" if "ratio_vs_baseline" in entry else ""
                peak = f"{entry['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in entry else entry.get("error", "")
                print(f"{name:9s} {label:14s} {impl:22s} {'peak RSS ' + peak:>30s} {ratio:>20s}", flush=True)
    return result


def _inference_call(fn: Callable, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.inference_mode():
            fn(x)
    return run


def _print_rows(config: str, what: str, timings: dict[str, dict[str, Any]]) -> None:
    for impl, entry in timings.items():
        s = entry["clips_per_s"]
        ratio = entry.get("ratio_vs_baseline")
        r = f"{ratio['median']:.2f}x [{ratio['min']:.2f}-{ratio['max']:.2f}]" if ratio else ""
        cpu = f"{entry['cpu_time_ratio_vs_baseline']:.2f}x" if ratio else ""
        print(f"{config:9s} {what:14s} {impl:22s} {s['median']:8.2f} clips/s [{s['min']:.2f}-{s['max']:.2f}] "
              f"{r:>20s} {cpu:>8s}", flush=True)


def machine_info(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": threads, "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average": os.getloadavg(),
            "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_") or k == "LD_PRELOAD"},
            "python": platform.python_version(), "platform": platform.platform(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.model", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["ntu", "kinetics"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16], help="inference batch sizes")
    p.add_argument("--train-batch", type=int, default=16, help="training batch size (0: skip training)")
    p.add_argument("--frames", type=int, default=300, help="T of the input (300 in both configs)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per measurement, after warm-up")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per implementation first")
    p.add_argument("--min-seconds", type=float, default=1.0, help="a timed run repeats the call this long")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    p.add_argument("--chunk-size", type=int, default=0,
                   help="clips per chunk for stgcn-fused (0: whole batch at once)")
    p.add_argument("--bf16", action="store_true", help="also time the bfloat16 opt-in (stgcn-fused-bf16)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of stgcn-fused")
    p.add_argument("--checkpoint", action="store_true",
                   help="also time training with activation checkpointing (its memory is always measured)")
    p.add_argument("--train-bf16", action="store_true",
                   help="also time training under CPU bfloat16 autocast (stgcn-bf16, as train.cpu_bf16) and "
                        "measure its memory")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-RSS subprocesses")
    p.add_argument("--memory-only", action="store_true",
                   help="only the parity check and the peak-RSS subprocesses, no timings")
    p.add_argument("--atol", type=float, default=1e-4, help="logit tolerance of the parity check")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "model_cpu.json")
    p.add_argument("--omp-wait-policy", choices=["passive", "active", "inherit"], default="passive",
                   help="OMP_WAIT_POLICY for the run (set by re-executing the script; 'inherit' keeps the "
                        "environment's). Passive (default) keeps idle OpenMP threads from spinning: on a "
                        "machine shared with other work, spinning threads stall every parallel region")
    p.add_argument("--allocator", choices=ALLOCATORS, default="default",
                   help="keep: glibc keeps freed memory while timing (no fresh pages per call; benchmarks.allocator); "
                        "the peak-memory subprocesses always use the default")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--grid" in argv:  # the shape grid (T, V, M, batch, threads) of benchmarks/grid.py
        from benchmarks.grid import main as grid_main

        return grid_main([a for a in argv if a != "--grid"])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.memory_only and not args.memory:
        parser.error("--memory-only and --no-memory leave nothing to measure")
    wanted = args.omp_wait_policy.upper()
    if not args.child and args.omp_wait_policy != "inherit" and os.environ.get("OMP_WAIT_POLICY") != wanted:
        # OpenMP reads the variable once, when torch loads: start again with it set (children inherit it)
        env = {**os.environ, "OMP_WAIT_POLICY": wanted}
        cmd = [sys.executable, "-m", "benchmarks.model", *argv]
        return subprocess.run(cmd, cwd=ROOT, env=env).returncode
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(_child(spec)))
        return 0
    args.chunk_size = args.chunk_size or None
    torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    info = machine_info(args.threads)
    print(f"# {info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']}, "
          f"{args.threads} threads, OMP_WAIT_POLICY={info['omp_wait_policy']}, load average "
          f"{info['load_average'][0]:.1f}, T={args.frames}, {args.repeats} runs", flush=True)
    print(f"{'config':9s} {'measure':14s} {'implementation':22s} {'median':>8s} {'':8s}{'[min-max]':>14s} "
          f"{'vs baseline':>20s} {'cpu-time':>8s}", flush=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("child", "out")}
    results = {"machine": info, "settings": settings, "allocator": set_allocator(args.allocator), "configs": {}}
    for name in args.configs:
        results["configs"][name] = run_config(name, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
