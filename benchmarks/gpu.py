"""GPU throughput: training and inference clips/s of our ST-GCN against the original structure, in one run.

For each shape (the NW-UCLA recipe's (N, 3, 52, 20, 1), the NTU-300 config and the 2-D recipe's
(N, 3, 100, 17, 2)), batch size and precision
(``fp32``, ``bf16``: autocast bfloat16, ``bf16-compile``: the same under ``torch.compile``), it times

* a training step (forward, cross-entropy, backward, SGD step) of the baseline (``stgcn.models.reference``,
  the original code's structure) and of :class:`~stgcn.models.stgcn.STGCN`;
* inference (eval, no grad) of the baseline, of ``STGCN`` and of the fused model
  (:func:`~stgcn.inference.optimize.optimize_for_inference`; not compiled);

interleaved round by round (each round calls every implementation once, in a rotating order), with CUDA
synchronisation around each timed call, and reports the median and min-max of the rounds as clips/s and the
ratio to the baseline of the same round. The device name, torch and CUDA versions go into the JSON.

Run on the GPU machine (``--device cuda``); ``--device cpu --quick`` is the dry run that checks the script::

    python -m benchmarks.gpu --device cuda --out benchmarks/results/gpu.json
    python -m benchmarks.gpu --device cpu --quick --out /tmp/gpu-dry.json
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.inference.optimize import optimize_for_inference
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.reference import baseline_from_stgcn
from stgcn.models.stgcn import STGCN

# name -> (layout, classes, T, V, M)
SHAPES: dict[str, tuple[str, int, int, int, int]] = {
    "ucla52": ("kinect-v1", 10, 52, 20, 1),
    "ntu300": ("ntu-rgb+d", 60, 300, 25, 2),
    "coco2d-100": ("coco-17", 60, 100, 17, 2),
}
PRECISIONS = ("fp32", "bf16", "bf16-compile")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_rounds(fns: dict[str, Callable[[], None]], device: torch.device, rounds: int, warmup: int,
                 batch: int) -> dict[str, Any]:
    """Clips/s per implementation, interleaved; ratios to ``baseline`` per round."""
    names = list(fns)
    for name in names:  # warm-up (and compilation) outside the timed rounds
        for _ in range(warmup):
            fns[name]()
    _sync(device)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            _sync(device)
            start = time.perf_counter()
            fns[name]()
            _sync(device)
            seconds[name].append(time.perf_counter() - start)
    out: dict[str, Any] = {}
    for name in names:
        rates = [batch / s for s in seconds[name]]
        entry: dict[str, Any] = {"clips_per_s_median": statistics.median(rates), "clips_per_s_min": min(rates),
                                 "clips_per_s_max": max(rates)}
        if "baseline" in seconds and name != "baseline":
            ratios = [b / s for b, s in zip(seconds["baseline"], seconds[name], strict=True)]
            entry.update(ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios))
        out[name] = entry
    return out


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _train_fn(module: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
              precision: str) -> Callable[[], None]:
    opt = torch.optim.SGD(module.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=5e-4)
    call = torch.compile(module) if precision == "bf16-compile" else module

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with _autocast(device, precision):
            loss = F.cross_entropy(call(x), y)
        loss.backward()
        opt.step()

    return step


def _infer_fn(module: nn.Module, x: torch.Tensor, device: torch.device, precision: str,
              compile_ok: bool = True) -> Callable[[], None]:
    call = torch.compile(module) if precision == "bf16-compile" and compile_ok else module

    def run() -> None:
        with torch.inference_mode(), _autocast(device, precision):
            call(x)

    return run


def run_point(shape: str, batch: int, precision: str, device: torch.device, rounds: int, warmup: int,
              seed: int) -> dict[str, Any]:
    """Training and inference timings at one (shape, batch, precision)."""
    layout, classes, t, v, m = SHAPES[shape]
    torch.manual_seed(seed)
    ours = STGCN(STGCNConfig(num_classes=classes, in_channels=3, graph=GraphConfig(layout=layout))).to(device)
    base = baseline_from_stgcn(ours).to(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    # (N, C, T, V, M) input, labels (N,)
    x = torch.randn(batch, 3, t, v, m, generator=gen).to(device)
    y = torch.randint(0, classes, (batch,), generator=gen).to(device)
    train = {"baseline": _train_fn(base.train(), x, y, device, precision),
             "stgcn": _train_fn(copy.deepcopy(ours).train(), x, y, device, precision)}
    training = _time_rounds(train, device, rounds, warmup, batch)
    ours.eval()
    base.eval()
    fused = optimize_for_inference(ours)
    infer = {"baseline": _infer_fn(base, x, device, precision), "stgcn": _infer_fn(ours, x, device, precision),
             "stgcn-fused": _infer_fn(fused, x, device, precision, compile_ok=False)}
    inference = _time_rounds(infer, device, rounds, warmup, batch)
    return {"shape": shape, "input": [batch, 3, t, v, m], "batch": batch, "precision": precision,
            "training": training, "inference": inference}


def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                            "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    else:
        info.update(name=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[16, 128])
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="dry run: batch 2, 2 rounds, 1 warm-up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=None,
                   help="seconds: start no new point after this long (the skipped ones are listed in the JSON)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu.json"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if args.quick:
        args.batch_sizes, args.rounds, args.warmup = [2], 2, 1
    result: dict[str, Any] = {"machine": machine(device), "rounds": args.rounds, "warmup": args.warmup,
                              "points": []}
    print(f"{result['machine']['name']}  torch {torch.__version__}")
    print(f"{'shape':<11} {'batch':>5} {'precision':<13} {'train base':>10} {'ours':>8} {'ratio':>6} "
          f"{'infer base':>10} {'ours':>8} {'fused':>8} {'ratio':>6}")
    start = time.perf_counter()
    for precision in args.precisions:  # precision-major: a time budget cuts the compiled points first
        for shape in args.shapes:
            for batch in args.batch_sizes:
                if args.budget is not None and time.perf_counter() - start > args.budget:
                    result.setdefault("skipped", []).append([shape, batch, precision])
                    continue
                try:
                    point = run_point(shape, batch, precision, device, args.rounds, args.warmup, args.seed)
                except Exception as exc:  # noqa: BLE001 - one failed point (e.g. no compiler) must not end the run
                    result.setdefault("failed", []).append([shape, batch, precision, f"{type(exc).__name__}: {exc}"])
                    print(f"{shape:<11} {batch:>5} {precision:<13} failed: {type(exc).__name__}: {exc}"[:300],
                          flush=True)
                    continue
                result["points"].append(point)
                tr, inf = point["training"], point["inference"]
                print(f"{shape:<11} {batch:>5} {precision:<13} {tr['baseline']['clips_per_s_median']:>10.1f} "
                      f"{tr['stgcn']['clips_per_s_median']:>8.1f} {tr['stgcn']['ratio_median']:>5.2f}x "
                      f"{inf['baseline']['clips_per_s_median']:>10.1f} {inf['stgcn']['clips_per_s_median']:>8.1f} "
                      f"{inf['stgcn-fused']['clips_per_s_median']:>8.1f} {inf['stgcn-fused']['ratio_median']:>5.2f}x",
                      flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
