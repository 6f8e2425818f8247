"""``stgcn train``, ``stgcn eval`` and ``stgcn fuse``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stgcn.errors import StgcnError
from stgcn.utils.safe_text import terminal_safe


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train and evaluate as CONFIG says, writing a run directory (config.yaml, "
                                   "train.log, metrics.jsonl, last.pt, best.pt, final.pt). Multi-GPU or multi-process: "
                                   "torchrun --nproc-per-node N -m stgcn train CONFIG ...")
    p.add_argument("config", type=Path, help="YAML config (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=0.05 --set train.epochs=10 (repeatable)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bars (same as --set train.quiet=true)")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N epochs in this invocation (continue later with --resume)")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from stgcn.engine.config import load_config
    from stgcn.engine.evaluate import format_metrics
    from stgcn.engine.train import train

    overrides = list(args.overrides) + (["train.quiet=true"] if args.quiet else [])
    config = load_config(args.config, overrides)
    out = args.out if args.out is not None else Path("runs") / args.config.stem
    if args.stop_after is not None and args.stop_after < 1:
        raise StgcnError(f"--stop-after must be >= 1, got {args.stop_after}")
    result = train(config, out, resume=args.resume, stop_after=args.stop_after, progress=not config.train.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    state = "finished" if result.finished else "stopped"
    print(f"{state} {result.run_dir}: {result.epochs_done}/{config.train.epochs} epochs")
    if result.metrics:
        print(f"last epoch  {format_metrics(result.metrics)}")
    if result.best_top1 is not None:
        print(f"best top-1  {100 * result.best_top1:.2f}% at epoch {result.best_epoch} (best.pt)")
    if result.finished:
        print(f"model       {result.run_dir / 'final.pt'}")
    else:
        print(f"continue    stgcn train {args.config} --out {result.run_dir} --resume")
    return 0


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on a dataset store",
                       description="Top-1, top-5, mean class and per-class accuracy, confusion matrix (CSV, PNG) "
                                   "and per-clip scores (scores.npz, for `stgcn fuse`).")
    p.add_argument("checkpoint", type=Path, help="stgcn checkpoint (best.pt / final.pt)")
    p.add_argument("dataset", type=Path, help="dataset store directory")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--clips", type=int, default=None, metavar="K",
                   help="K-clip testing over K temporal clips, combined as the checkpoint's preprocess.average_clips "
                        "(mean logits or mean probabilities; default K: the checkpoint's)")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: eval-<split> next to the checkpoint)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--no-plot", action="store_true", help="skip confusion.png")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_eval)


def _print_per_class(metrics: dict, cm: object) -> None:
    per_class = {terminal_safe(c): acc for c, acc in metrics["per_class"].items()}
    width = max([len(c) for c in per_class] + [5])
    support = cm.sum(axis=1)  # type: ignore[attr-defined]
    for i, (name, acc) in enumerate(per_class.items()):
        shown = "    -" if acc is None else f"{100 * acc:6.2f}%"
        print(f"  {name:<{width}}  {shown}  ({int(support[i])} clips)")


def cmd_eval(args: argparse.Namespace) -> int:
    from stgcn.engine.evaluate import evaluate, format_metrics, save_evaluation
    from stgcn.utils.device import resolve_device

    device = resolve_device(args.device, name="--device")
    result = evaluate(args.checkpoint, args.dataset, split=args.split, clips=args.clips, batch_size=args.batch_size,
                      device=device, num_workers=args.workers)
    suffix = f"-{result.scores.clips}clips" if result.scores.clips > 1 else ""
    out = args.out if args.out is not None else args.checkpoint.parent / f"eval-{args.split}{suffix}"
    files = save_evaluation(out, result, extra={"checkpoint": str(args.checkpoint), "dataset": str(args.dataset)},
                            plot=not args.no_plot)
    if args.json:
        print(json.dumps({**result.metrics, "split": args.split, "clips": result.scores.clips,
                          "files": {k: str(v) for k, v in files.items()}}, indent=1))
        return 0
    print(f"{args.checkpoint} on {args.dataset} [{args.split}, {result.scores.clips} clip(s)]")
    print(f"  {format_metrics(result.metrics)}")
    if len(result.scores.class_names) <= 60:
        _print_per_class(result.metrics, result.confusion)
    print(f"wrote {out}: {', '.join(p.name for p in files.values())}")
    return 0


def add_fuse_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.engine.fuse import FUSE_MODES

    p = sub.add_parser("fuse", help="late fusion of several streams' scores",
                       description="Weighted sum of the per-clip scores of several `stgcn eval` runs (e.g. joint, "
                                   "bone, joint-motion and bone-motion streams) and the fused metrics.")
    p.add_argument("scores", type=Path, nargs="+", help="scores.npz files (or the eval directories holding them)")
    p.add_argument("--weights", type=float, nargs="+", default=None, metavar="W",
                   help="one weight per file (default all 1)")
    p.add_argument("--mode", default="logits", choices=FUSE_MODES,
                   help="add logits (default, as 2s-AGCN/CTR-GCN) or softmax probabilities")
    p.add_argument("--out", type=Path, default=None,
                   help="also write the fused metrics, confusion matrix and scores.npz here")
    p.add_argument("--no-plot", action="store_true", help="skip confusion.png (with --out)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_fuse)


def cmd_fuse(args: argparse.Namespace) -> int:
    from stgcn.engine.evaluate import format_metrics, save_evaluation
    from stgcn.engine.fuse import fuse_files

    fused, streams = fuse_files(args.scores, args.weights, mode=args.mode)
    weights = args.weights or [1.0] * len(args.scores)
    files = {}
    if args.out is not None:
        files = save_evaluation(args.out, fused, extra={"fused": [str(p) for p in args.scores],
                                                        "weights": weights, "mode": args.mode}, plot=not args.no_plot)
    if args.json:
        print(json.dumps({**fused.metrics, "mode": args.mode, "weights": weights,
                          "streams": {str(p): {k: v for k, v in s.metrics.items() if k != "per_class"}
                                      for p, s in zip(args.scores, streams, strict=True)},
                          "files": {k: str(v) for k, v in files.items()}}, indent=1))
        return 0
    for path, stream, w in zip(args.scores, streams, weights, strict=True):
        print(f"  w={w:<5g} {path}: {format_metrics(stream.metrics)}")
    print(f"fused ({args.mode}): {format_metrics(fused.metrics)}")
    if files:
        print(f"wrote {args.out}: {', '.join(p.name for p in files.values())}")
    return 0
