"""Does bfloat16 inference keep a trained model's accuracy? fp32 against bf16 top-1 on a prepared store.

Run from the repository root::

    python -m benchmarks.bf16_accuracy CHECKPOINT STORE [--split test] [--batch-size 32] [--threads N]

where CHECKPOINT is an ``stgcn`` checkpoint and STORE a store prepared with ``stgcn prepare`` (for the
issue's check: a model trained on NW-UCLA and the NW-UCLA store, split ``test``). The clips are
preprocessed as the checkpoint says (its ``preprocess``), then scored by

* ``fp32``: the model itself (eval mode);
* ``fp32-fused``: :func:`stgcn.optimize.optimize_for_inference` (BatchNorm folded);
* ``bf16-fused``: the same in bfloat16 (``dtype=torch.bfloat16``, the opt-in);
* ``bf16-autocast``: the model under ``torch.autocast(device_type, dtype=torch.bfloat16)``.

It prints top-1 (and top-5) of each, the difference to ``fp32`` in points, the share of clips whose
prediction changes, and whether every bf16 variant is within ``--tolerance`` points (0.1) of fp32; exits 1
when one is not. Writes JSON (``--out``, default ``benchmarks/results/bf16_accuracy.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from stgcn.data.dataset import SkeletonDataset
from stgcn.data.store import open_store
from stgcn.data.transforms import PreprocessConfig, build_transform
from stgcn.engine.checkpoint import load_checkpoint
from stgcn.engine.evaluate import predict_scores
from stgcn.errors import StgcnError
from stgcn.inference.optimize import optimize_for_inference
from stgcn.utils.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def _topk(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean() * 100.0)


def evaluate_variants(checkpoint: str | Path, store: str | Path, *, split: str = "test", batch_size: int = 32,
                      device: str = "cpu", num_workers: int = 0) -> dict[str, Any]:
    """Scores of the fp32 and bf16 variants on one split; see the module docstring."""
    ck = load_checkpoint(checkpoint)
    st = open_store(store)
    preprocess = PreprocessConfig.from_dict(ck.preprocess) if ck.preprocess else PreprocessConfig()
    transform = build_transform(preprocess, train=False, layout=st.layout)
    dataset = SkeletonDataset(st, split, transform)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    dev = torch.device(device)
    model = ck.model.to(dev).eval()
    variants: dict[str, tuple[torch.nn.Module, torch.dtype | None]] = {
        "fp32": (model, None),
        "fp32-fused": (optimize_for_inference(model), None),
        "bf16-fused": (optimize_for_inference(model, dtype=torch.bfloat16), None),
        "bf16-autocast": (model, torch.bfloat16),
    }
    out: dict[str, Any] = {"checkpoint": str(checkpoint), "store": str(store), "split": split,
                           "clips": len(dataset), "variants": {}}
    reference = None
    for name, (module, amp) in variants.items():
        start = time.perf_counter()
        scores, labels, _ = predict_scores(module, loader, device=dev, amp_dtype=amp)
        seconds = time.perf_counter() - start
        pred = scores.argmax(axis=1)
        entry = {"top1": _topk(scores, labels, 1), "top5": _topk(scores, labels, 5), "seconds": seconds}
        if reference is None:
            reference = (scores, pred)
        else:
            entry["top1_minus_fp32"] = entry["top1"] - out["variants"]["fp32"]["top1"]
            entry["changed_predictions"] = float((pred != reference[1]).mean() * 100.0)
            entry["max_abs_logit_diff"] = float(np.abs(scores - reference[0]).max())
        out["variants"][name] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bf16_accuracy", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a trained stgcn checkpoint")
    p.add_argument("store", type=Path, help="a prepared store (stgcn prepare)")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--tolerance", type=float, default=0.1, help="allowed |top-1 difference| in points")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bf16_accuracy.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        result = evaluate_variants(args.checkpoint, args.store, split=args.split, batch_size=args.batch_size,
                                   device=args.device)
    except (StgcnError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result["threads"] = torch.get_num_threads()
    result["torch"] = torch.__version__
    result["tolerance_points"] = args.tolerance
    ok = True
    print(f"{result['clips']} clips of split {args.split!r}, {result['threads']} threads")
    print(f"{'variant':15s} {'top-1':>7s} {'top-5':>7s} {'vs fp32':>8s} {'changed':>8s} {'seconds':>8s}")
    for name, e in result["variants"].items():
        delta = e.get("top1_minus_fp32")
        if delta is not None and name.startswith("bf16") and abs(delta) > args.tolerance:
            ok = False
        d = f"{delta:+.2f}" if delta is not None else ""
        changed = f"{e['changed_predictions']:.2f}%" if "changed_predictions" in e else ""
        print(f"{name:15s} {e['top1']:7.2f} {e['top5']:7.2f} {d:>8s} {changed:>8s} {e['seconds']:8.1f}")
    result["within_tolerance"] = ok
    print(f"bf16 top-1 within {args.tolerance} points of fp32: {'yes' if ok else 'NO'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
