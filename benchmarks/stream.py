"""Streaming-prediction benchmark: latency per frame and per emission, memory held, offline throughput.

Run from the repository root::

    python -m benchmarks.stream                 # the paper's model (10 blocks, 400 classes, openpose-18)
    python -m benchmarks.stream --threads 1 --emissions 5

Measures, for windows of 64, 150 and 300 frames (stride window // 5), with the BatchNorm-folded inference
model (the default) and the eager one:

* the latency of ``PredictionStream.push`` on frames that emit (one model pass over one window: median and
  worst) and on frames that do not (a ring-buffer append);
* the frames and bytes the stream holds (bounded by the window, whatever the stream's length);
* offline ``Predictor.sliding_window`` throughput in windows/s (batched), for comparison.

Goal: the per-emission latency is bounded by one forward pass over one window and does not grow with the
stream's length; a 150-frame window at stride 30 (1 s at 30 fps) is emitted well within the 1 s budget on
2 CPU cores. Prints a table and writes ``benchmarks/results/stream.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from stgcn.inference.predict import Predictor
from stgcn.models.config import STGCNConfig
from stgcn.models.stgcn import STGCN
from stgcn.utils.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stream.json"


def bench(predictor: Predictor, window: int, emissions: int, rng: np.random.Generator) -> dict:
    stride = max(1, window // 5)
    stream = predictor.stream(window, stride, num_persons=1)
    frames = rng.uniform(-0.5, 0.5, size=(window + stride * emissions, 18, 3)).astype(np.float32)
    emit, quiet = [], []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        out = stream.push(frame)
        elapsed = time.perf_counter() - start
        if out is not None:
            if i + 1 > window:  # the first emission includes one-off warm-up costs
                emit.append(elapsed)
        else:
            quiet.append(elapsed)
    held = len(stream._buffer)
    clip = frames[:, None]
    predictor.sliding_window(clip[: window + stride], window, stride)  # warm-up
    start = time.perf_counter()
    windows = predictor.sliding_window(clip, window, stride)
    offline = len(windows) / (time.perf_counter() - start)
    return {
        "window": window, "stride": stride, "emissions_timed": len(emit),
        "emit_ms_median": 1e3 * statistics.median(emit), "emit_ms_max": 1e3 * max(emit),
        "push_us_median": 1e6 * statistics.median(quiet), "frames_held": held,
        "bytes_held": held * frames[0].nbytes, "offline_windows_per_s": offline,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--emissions", type=int, default=8, help="timed emissions per setting")
    parser.add_argument("--windows", type=int, nargs="+", default=[64, 150, 300])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = STGCN(STGCNConfig(num_classes=400)).eval()
    rows = []
    for optimize in (True, False):
        predictor = Predictor(model, optimize=optimize, min_frames=1)
        for window in args.windows:
            row = {"model": "folded" if optimize else "eager",
                   **bench(predictor, window, args.emissions, np.random.default_rng(window))}
            rows.append(row)
    print(f"{'model':<7} {'window':>6} {'stride':>6} {'emit ms (med/max)':>18} {'push us':>8} "
          f"{'held':>5} {'KiB':>6} {'offline win/s':>14}")
    for r in rows:
        print(f"{r['model']:<7} {r['window']:>6} {r['stride']:>6} "
              f"{r['emit_ms_median']:>9.1f}/{r['emit_ms_max']:<8.1f} {r['push_us_median']:>8.1f} "
              f"{r['frames_held']:>5} {r['bytes_held'] / 1024:>6.1f} {r['offline_windows_per_s']:>14.2f}")
    result = {"benchmark": "stream", "threads": args.threads, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
