"""The ``stgcn`` command line. Each subcommand is a typed ``cmd_<name>(args) -> int`` function; parsers are
added explicitly in :func:`build_parser`. Only this module prints; errors from bad input are printed as one
line ``error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from stgcn.errors import StgcnError

__all__ = ["main", "build_parser"]


# --------------------------------------------------------------------------------------------- graph
def _add_graph_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.graph.partitions import NORMALIZATIONS, STRATEGIES

    p = sub.add_parser("graph", help="show a skeleton graph and its partitions",
                       description="Print V, K, the edges and each partition's nonzero count of a layout.")
    p.add_argument("layout", help="built-in layout name or a .json/.yaml layout file")
    p.add_argument("--strategy", default="spatial", choices=STRATEGIES)
    p.add_argument("--max-hop", type=int, default=1)
    p.add_argument("--dilation", type=int, default=1)
    p.add_argument("--normalization", default="notes", choices=NORMALIZATIONS)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--plot", type=Path, default=None,
                   help="also draw the layout and its partitions to this picture (needs the 'plot' extra)")
    p.set_defaults(func=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from stgcn.graph.partitions import Graph

    g = Graph(args.layout, args.strategy, args.max_hop, args.dilation, args.normalization)
    lay = g.layout
    if args.plot is not None:
        from stgcn.inference.render import plot_layout

        plot_layout(lay, args.plot, strategy=args.strategy, max_hop=args.max_hop, dilation=args.dilation,
                    normalization=args.normalization)
        if not args.json:
            print(f"wrote {args.plot}")
    partitions = [{"name": name, "nonzero": int((g.A[k] != 0).sum())} for k, name in enumerate(g.partition_names)]
    if args.json:
        print(json.dumps({"layout": lay.name, "V": g.V, "K": g.K, "center": lay.center,
                          "edges": [list(e) for e in lay.edges], "partitions": partitions}))
        return 0
    print(f"layout         {lay.name}  ({lay.source})" if lay.source else f"layout         {lay.name}")
    print(f"V (joints)     {g.V}")
    print(f"K (partitions) {g.K}   strategy={g.strategy} max_hop={g.max_hop} dilation={g.dilation} "
          f"normalization={g.normalization}")
    print(f"center         {lay.center} ({lay.joints[lay.center]})")
    print(f"edges ({len(lay.edges)}):")
    for a, b in lay.edges:
        print(f"  {a:>3} {lay.joints[a]:<18} -- {b:>3} {lay.joints[b]}")
    print("partitions:")
    for k, part in enumerate(partitions):
        print(f"  {k}: {part['name']:<20} nonzero={part['nonzero']}")
    return 0


# ------------------------------------------------------------------------------------------- convert
def _add_convert_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.graph.partitions import STRATEGIES

    p = sub.add_parser("convert", help="import checkpoints of other implementations")
    fmt = p.add_subparsers(dest="source_format", required=True, metavar="FORMAT")
    o = fmt.add_parser("original", help="yysijie/st-gcn (and mmskeleton st_gcn) checkpoints",
                       description="Map an original ST-GCN state_dict into an stgcn checkpoint, strictly.")
    o.add_argument("src", type=Path, help="original .pt file")
    o.add_argument("--layout", default="openpose-18", help="layout it was trained on (default openpose-18)")
    o.add_argument("--strategy", default="spatial", choices=STRATEGIES)
    o.add_argument("--max-hop", type=int, default=1)
    o.add_argument("--dilation", type=int, default=1)
    o.add_argument("--num-classes", type=int, default=None, help="expected number of classes (checked)")
    o.add_argument("--class-names", type=Path, default=None, help="text file, one class name per line")
    o.add_argument("--out", type=Path, required=True, help="output stgcn checkpoint")
    o.set_defaults(func=cmd_convert_original)


def _read_class_names(path: Path) -> list[str]:
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as e:
        raise StgcnError(f"{path}: cannot read class names ({e.strerror or e})") from None
    return names


def cmd_convert_original(args: argparse.Namespace) -> int:
    from stgcn.convert.original import convert_original
    from stgcn.engine.checkpoint import save_checkpoint

    model = convert_original(args.src, layout=args.layout, strategy=args.strategy, num_classes=args.num_classes,
                             max_hop=args.max_hop, dilation=args.dilation)
    names = None
    if args.class_names is not None:
        names = _read_class_names(args.class_names)
        if len(names) != model.config.num_classes:
            raise StgcnError(f"{args.class_names}: {len(names)} class names, but the model has "
                             f"{model.config.num_classes} classes")
    save_checkpoint(args.out, model, class_names=names,
                    metadata={"converted_from": str(args.src), "source_format": "original"})
    cfg = model.config
    print(f"wrote {args.out}: {cfg.num_classes} classes, in_channels={cfg.in_channels}, layout "
          f"{args.layout}, strategy {cfg.graph.strategy}, K={model.A.shape[0]}, normalization original")
    return 0


# ------------------------------------------------------------------------------------ prepare / info
def _add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="convert a skeleton dataset into a dataset store",
                       description="Convert a source dataset (FORMAT SRC) into a memory-mapped dataset store "
                                   "OUT with its standard splits. Atomic: OUT appears only when complete.")
    fmts = p.add_subparsers(dest="format", required=True, metavar="FORMAT")

    def fmt(name: str, help: str, src: str) -> argparse.ArgumentParser:
        f = fmts.add_parser(name, help=help, description=help)
        f.add_argument("src", type=Path, help=src)
        f.add_argument("out", type=Path, help="store directory to create")
        f.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                       help="storage precision (float16 halves the size)")
        f.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count, max 8)")
        f.add_argument("--overwrite", action="store_true", help="replace an existing store at OUT")
        f.add_argument("--no-progress", action="store_true", help="no progress bar")
        f.set_defaults(func=cmd_prepare, options=[])
        return f

    def opt(f: argparse.ArgumentParser, flag: str, **kwargs: object) -> None:
        action = f.add_argument(flag, **kwargs)  # type: ignore[arg-type]
        f.get_default("options").append(action.dest)

    f = fmt("nw-ucla", "Northwestern-UCLA (CTR-GCN all_sqe JSON release); train views 1-2, test view 3",
            "folder of aAA_sSS_eEE_vVV.json files")
    opt(f, "--test-view", type=int, default=3, choices=[1, 2, 3], help="held-out view (default 3)")
    f = fmt("msr-action3d", "MSR Action3D skeleton txt files; cross-subject split (odd subjects train)",
            "folder of aAA_sSS_eEE_skeleton3D.txt files")
    opt(f, "--action-set", default="all", choices=["all", "AS1", "AS2", "AS3"],
        help="all 20 actions or one 8-action subset (default all)")
    f = fmt("utkinect", "UTKinect-Action3D sequences cut into action segments; cross-subject split",
            "folder with joints_sSS_eEE.txt and actionLabel.txt")
    opt(f, "--boundaries", default="original", choices=["original", "modified"],
        help="segment boundaries from actionLabel.txt (original) or actionLabel_modified.txt")
    f = fmt("ntu", "NTU RGB+D 60/120 raw .skeleton files; xsub/xview (60) or xsub/xset (120) splits",
            "folder of SsssCcccPpppRrrrAaaa.skeleton files")
    opt(f, "--variant", default="ntu60", choices=["ntu60", "ntu120"], help="NTU RGB+D 60 or 120 (default 60)")
    opt(f, "--max-bodies", type=int, default=2, help="bodies kept per clip (default 2)")
    opt(f, "--missing-list", type=Path, default=None,
        help="file of sample names to skip (default: the published list of samples with missing skeletons)")
    f = fmt("kinetics-json", "Kinetics-skeleton release (one JSON per video + label JSON)",
            "folder with kinetics_train/, kinetics_val/ and their *_label.json files")
    opt(f, "--max-persons", type=int, default=2, help="persons kept per frame, by score (default 2)")
    opt(f, "--class-names", type=Path, default=None, help="text file of class names, one per line")
    f = fmt("stgcn-npy", "the original ST-GCN {train,val}_data.npy + {train,val}_label.pkl",
            "folder with train_data.npy, train_label.pkl, val_data.npy, val_label.pkl")
    opt(f, "--layout", default=None, help="layout name or file (default: from V: 18 openpose-18, 25 ntu-rgb+d)")
    opt(f, "--channels", default=None, help="comma-separated channel names (default x,y,score for 2-D, x,y,z)")
    opt(f, "--class-names", type=Path, default=None, help="text file of class names, one per line")
    f = fmt("pyskl", "PYSKL / MMAction2 annotation pickle (read with a restricted unpickler)", "the .pkl file")
    opt(f, "--layout", default=None, help="layout name or file (default: from V: 17 coco-17, 25 ntu-rgb+d)")
    opt(f, "--class-names", type=Path, default=None, help="text file of class names, one per line")
    opt(f, "--max-persons", type=int, default=None, help="persons kept per clip (default: the most in a clip)")
    opt(f, "--normalize", action="store_true", default=None,
        help="divide 2-D coordinates by each clip's img_shape (to [0, 1])")
    f = fmt("keypoints", "our keypoints JSON/NPZ clips and OpenPose JSON folders (custom data)",
            "folder of clip files / OpenPose folders (optionally in split sub-folders)")
    opt(f, "--layout", default=None, help="layout name or file (default: from the files)")
    opt(f, "--labels", type=Path, default=None, help="CSV with columns name,label[,split]")
    opt(f, "--class-names", type=Path, default=None, help="text file of class names, one per line")
    opt(f, "--max-persons", type=int, default=None,
        help="persons kept per clip (default: the most in a clip file; 2 for OpenPose folders)")


def cmd_prepare(args: argparse.Namespace) -> int:
    from stgcn.data.prepare import prepare

    options = {dest: getattr(args, dest) for dest in args.options if getattr(args, dest) is not None}
    store = prepare(args.format, args.src, args.out, dtype=args.dtype, workers=args.workers,
                    overwrite=args.overwrite, progress=not args.no_progress, **options)
    counts = store.manifest["counts"]
    splits = ", ".join(f"{k} {len(v)}" for k, v in store.manifest["splits"].items())
    print(f"wrote {args.out}: {len(store)} clips ({splits}), {len(store.class_names)} classes, "
          f"layout {store.layout.name}, channels {','.join(store.channels)}, skipped {counts.get('skipped', 0)}")
    return 0


def _add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a dataset store",
                       description="Clips per split and class, frame-length statistics, layout and channels.")
    p.add_argument("dataset", type=Path, help="store directory (from `stgcn prepare`)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from stgcn.data.store import describe_store, open_store

    info = describe_store(open_store(args.dataset))
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"store       {info['path']}")
    print(f"source      {info['source'].get('format', '?')}  {info['source'].get('path', '')}")
    print(f"layout      {info['layout']} ({info['num_joints']} joints), channels {','.join(info['channels'])}, "
          f"persons {info['num_persons']}, dtype {info['dtype']}")
    print(f"clips       {info['clips']}  frames {info['frames']}  size {info['bytes'] / 1e6:.1f} MB")
    ls = info["length"]
    print(f"length      min {ls['min']}  median {ls['median']:g}  mean {ls['mean']:.1f}  max {ls['max']}")
    if info["skipped"]:
        print(f"skipped     {info['skipped']} samples (listed in manifest.json counts.skipped_samples)")
    names = list(info["splits"])
    width = max([len(c) for c in info["class_names"]] + [5])
    print(f"{'class':<{width}}  " + "  ".join(f"{n:>8}" for n in ["all", *names]))
    for c, row in info["per_class"].items():
        print(f"{c:<{width}}  " + "  ".join(f"{row[n]:>8}" for n in ["all", *names]))
    totals = {"all": info["clips"], **{n: info["splits"][n] for n in names}}
    print(f"{'total':<{width}}  " + "  ".join(f"{totals[n]:>8}" for n in ["all", *names]))
    return 0


# ---------------------------------------------------------------------------------- train / eval / fuse
def _add_train_parser(sub: argparse._SubParsersAction) -> None:
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


def _add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on a dataset store",
                       description="Top-1, top-5, mean class and per-class accuracy, confusion matrix (CSV, PNG) "
                                   "and per-clip scores (scores.npz, for `stgcn fuse`).")
    p.add_argument("checkpoint", type=Path, help="stgcn checkpoint (best.pt / final.pt)")
    p.add_argument("dataset", type=Path, help="dataset store directory")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--clips", type=int, default=None, metavar="K",
                   help="K-clip testing: average the logits of K temporal clips (default: the checkpoint's)")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default: eval-<split> next to the checkpoint)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--no-plot", action="store_true", help="skip confusion.png")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_eval)


def _print_per_class(metrics: dict, cm: object) -> None:
    per_class = metrics["per_class"]
    width = max([len(c) for c in per_class] + [5])
    support = cm.sum(axis=1)  # type: ignore[attr-defined]
    for i, (name, acc) in enumerate(per_class.items()):
        shown = "    -" if acc is None else f"{100 * acc:6.2f}%"
        print(f"  {name:<{width}}  {shown}  ({int(support[i])} clips)")


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from stgcn.engine.evaluate import evaluate, format_metrics, save_evaluation

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise StgcnError(f"--device {device}: CUDA is not available here")
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


def _add_fuse_parser(sub: argparse._SubParsersAction) -> None:
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


# ------------------------------------------------------------------ predict / video / pose / render / export
def _window_arg(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frames or 'auto', got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of frames, got {n}")
    return n


def _add_window_args(p: argparse.ArgumentParser, *, sliding_by_default: bool) -> None:
    from stgcn.inference.predict import SHORT_POLICIES

    hint = "" if sliding_by_default else "; without it, one prediction per clip"
    p.add_argument("--window", type=_window_arg, default="auto" if sliding_by_default else None,
                   help="sliding-window length in frames, or 'auto' (the checkpoint's input length, else the "
                        f"model's temporal receptive field){hint}")
    p.add_argument("--stride", type=int, default=None, help="frames between windows (default: window // 2)")
    p.add_argument("--short", default="loop", choices=SHORT_POLICIES,
                   help="what to do with inputs shorter than --min-frames: loop the frames (default), pad "
                        "with zero frames (the original demo) or fail")
    p.add_argument("--min-frames", type=int, default=None,
                   help="shortest model input (default: the temporal receptive field, or the checkpoint's "
                        "fixed input length when shorter); 1 runs every window as it is")
    p.add_argument("--topk", type=int, default=5, help="classes to report (default 5)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")


def _predictor(args: argparse.Namespace):  # noqa: ANN202
    from stgcn.inference.predict import Predictor

    return Predictor.from_checkpoint(args.checkpoint, device=args.device, min_frames=args.min_frames,
                                     short=args.short)


def _window(args: argparse.Namespace) -> int | None:
    return None if args.window in (None, "auto") else args.window


def _format_topk(pred: dict) -> str:
    return ", ".join(f"{t['label']} {t['score']:.3f}" for t in pred["topk"])


def _add_predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify keypoint files with a trained model",
                       description="Top-k classes of each input clip, with the checkpoint's preprocessing. "
                                   "Inputs: .npy arrays (T, V, C), (T, M, V, C) or (N, C, T, V, M), or any "
                                   "single-clip file the data layer reads. With --window: one prediction per "
                                   "sliding window and a label per frame.")
    p.add_argument("checkpoint", type=Path, help="stgcn checkpoint")
    p.add_argument("inputs", type=Path, nargs="+", metavar="INPUT", help="keypoint files")
    p.add_argument("--layout", default=None, help="layout of inputs that do not name one (default: the model's)")
    _add_window_args(p, sliding_by_default=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from stgcn.inference.predict import frame_labels, read_clips

    predictor = _predictor(args)
    results = []
    for path in args.inputs:
        for clip_input in read_clips(path, args.layout or predictor.layout):
            clip = predictor.input_from(clip_input)
            item = {"input": clip_input.name, "frames": int(clip.shape[0]),
                    **predictor.predict(clip, args.topk).to_dict()}
            if args.window is not None:
                windows = predictor.sliding_window(clip, _window(args), args.stride, topk=args.topk)
                item["windows"] = [w.to_dict() for w in windows]
                item["frame_labels"] = [None if i is None else predictor.class_names[i]
                                        for i in frame_labels(windows, clip.shape[0], causal=False)]
            results.append(item)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=1))
        return 0
    for item in results:
        print(f"{item['input']} ({item['frames']} frames): {_format_topk(item)}")
        for w in item.get("windows", []):
            print(f"  frames {w['start']:>5}-{w['end'] - 1:<5} {_format_topk(w)}")
    return 0


def _frame_progress(video: Path, passes: int, desc: str):  # noqa: ANN202
    """A tqdm bar over a video's frames (``passes`` times), shown on a terminal; ``(callback, close)``."""
    try:
        from tqdm import tqdm

        from stgcn.inference.pose import video_info
    except ImportError:
        return None, lambda: None
    try:
        total = video_info(video).num_frames * passes or None
    except StgcnError:
        return None, lambda: None  # the command itself reports the unreadable video
    bar = tqdm(total=total, desc=desc, unit="frame", dynamic_ncols=True, disable=not sys.stderr.isatty())
    return (lambda _i: bar.update(1)), bar.close


def _add_video_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="video -> MediaPipe pose -> action (annotated video and/or JSON)",
                       description="Run MediaPipe Pose on a video, classify the skeletons with a checkpoint "
                                   "(layout openpose-18, coco-17 or mediapipe-pose-33) and write a video with "
                                   "the skeleton and the current label, and/or a JSON report. Needs the "
                                   "'video' extra.")
    p.add_argument("video", type=Path, help="input video")
    p.add_argument("--checkpoint", type=Path, required=True, help="stgcn checkpoint")
    p.add_argument("--out", type=Path, default=None, help="annotated .mp4 to write")
    p.add_argument("--json", type=Path, default=None, dest="json_out", help="JSON report to write")
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2),
                   help="MediaPipe Pose model: 0 lite, 1 full (default; shipped with mediapipe 0.10.14), 2 heavy")
    _add_window_args(p, sliding_by_default=True)
    p.set_defaults(func=cmd_video)


def cmd_video(args: argparse.Namespace) -> int:
    from stgcn.inference.video import annotate_video, write_json

    predictor = _predictor(args)
    progress, close = _frame_progress(args.video, 2 if args.out is not None else 1, "video")
    try:
        result = annotate_video(args.video, predictor, out=args.out, window=_window(args), stride=args.stride,
                                topk=args.topk, model_complexity=args.model_complexity, max_frames=args.max_frames,
                                on_frame=progress)
    finally:
        close()
    if args.json_out is not None:
        write_json(result.to_dict(predictor), args.json_out)
    pose = result.pose
    print(f"{args.video}: {pose.num_frames} frames, a person in {int(pose.detected.sum())}")
    print(f"clip: {_format_topk(result.prediction.to_dict())}")
    for w in result.windows:
        print(f"  frames {w.start:>5}-{w.end - 1:<5} {w.prediction.label} {w.prediction.score:.3f}")
    for path in (args.out, args.json_out):
        if path is not None:
            print(f"wrote {path}")
    return 0


def _add_pose_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.inference.pose import POSE_LAYOUTS

    p = sub.add_parser("pose", help="extract keypoints from a video with MediaPipe Pose",
                       description="Write a video's skeletons (pixel coordinates and scores) to a keypoints "
                                   "JSON/NPZ clip that `stgcn predict`, `stgcn render` and `stgcn prepare "
                                   "keypoints` read. "
                                   "Needs the 'video' extra.")
    p.add_argument("video", type=Path, help="input video")
    p.add_argument("--out", type=Path, required=True, help="keypoints .json or .npz to write")
    p.add_argument("--layout", default="openpose-18", choices=POSE_LAYOUTS, help="joint layout (default openpose-18)")
    p.add_argument("--depth", action="store_true", help="also store MediaPipe's relative depth z")
    p.add_argument("--normalize", action="store_true",
                   help="store (x/W - 0.5, y/H - 0.5) as the original demo, instead of pixels")
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2))
    p.set_defaults(func=cmd_pose)


def cmd_pose(args: argparse.Namespace) -> int:
    from stgcn.inference.video import extract_keypoints_file

    progress, close = _frame_progress(args.video, 1, "pose")
    try:
        pose = extract_keypoints_file(args.video, args.out, layout=args.layout, depth=args.depth,
                                      normalize=args.normalize, model_complexity=args.model_complexity,
                                      max_frames=args.max_frames, on_frame=progress)
    finally:
        close()
    print(f"wrote {args.out}: {pose.num_frames} frames ({int(pose.detected.sum())} with a person), layout "
          f"{args.layout}, {pose.width}x{pose.height} at {pose.fps:.2f} fps")
    return 0


def _add_render_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="animate a skeleton clip to GIF or MP4",
                       description="Draw a keypoint clip with its layout (3-D data projected on the camera "
                                   "plane) into an animated .gif or .mp4, optionally with a checkpoint's label "
                                   "per window. Needs the 'plot' extra.")
    p.add_argument("input", type=Path, help="keypoint file (as for `stgcn predict`)")
    p.add_argument("--out", type=Path, required=True, help=".gif or .mp4 to write")
    p.add_argument("--checkpoint", type=Path, default=None, help="label each frame with this model")
    p.add_argument("--layout", default=None, help="layout, when neither the file nor a checkpoint gives it")
    p.add_argument("--channels", default=None,
                   help="comma-separated channel names, e.g. x,y,score (score channels hide undetected joints)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (default: the file's, else 30)")
    p.add_argument("--window", type=_window_arg, default="auto", help="sliding window with --checkpoint")
    p.add_argument("--stride", type=int, default=None, help="frames between windows (default window // 2)")
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    from stgcn.inference.render import render_file

    channels = None if args.channels is None else [c.strip() for c in args.channels.split(",") if c.strip()]
    summary = render_file(args.input, args.out, checkpoint=args.checkpoint, layout=args.layout,
                          channels=channels, fps=args.fps, window=_window(args), stride=args.stride)
    label = f", clip: {_format_topk(summary['prediction'])}" if summary["prediction"] else ""
    print(f"wrote {args.out}: {summary['frames']} frames, layout {summary['layout']}{label}")
    return 0


def _add_plot_graph_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot-graph", help="draw a checkpoint's learned edge importance per block",
                       description="Draw the learned edge-importance mask of every block on the skeleton "
                                   "(.png/.pdf/.svg). Needs the 'plot' extra.")
    p.add_argument("checkpoint", type=Path, help="stgcn checkpoint")
    p.add_argument("--out", type=Path, required=True, help="picture to write")
    p.set_defaults(func=cmd_plot_graph)


def cmd_plot_graph(args: argparse.Namespace) -> int:
    from stgcn.engine.checkpoint import load_checkpoint
    from stgcn.inference.render import plot_edge_importance

    ck = load_checkpoint(args.checkpoint)
    plot_edge_importance(ck.model, args.out, title=f"{args.checkpoint.name}: learned edge importance per block")
    print(f"wrote {args.out}")
    return 0


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.inference.export import EXPORT_FORMATS

    p = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript (verified)",
                       description="Write the model with dynamic batch, frames and persons, then run the file "
                                   "against the eager model on random inputs; fails unless they agree within "
                                   "--atol. ONNX needs the 'onnx' extra.")
    p.add_argument("checkpoint", type=Path, help="stgcn checkpoint")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt")
    p.add_argument("--out", type=Path, required=True, help="file to write")
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers unfolded")
    p.add_argument("--atol", type=float, default=1e-4, help="allowed max |exported - eager| (default 1e-4)")
    p.add_argument("--frames", type=int, default=64, help="frames T of the example input (default 64)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from stgcn.inference.export import export_checkpoint

    r = export_checkpoint(args.checkpoint, args.out, args.fmt, fold=not args.no_fold, atol=args.atol,
                          frames=args.frames, opset=args.opset)
    print(f"wrote {r.path} ({r.format}, {r.folded_batchnorms} BatchNorms folded): max |exported - eager| = "
          f"{r.max_abs_diff:.2e} <= {args.atol:g} on inputs {', '.join(str(s) for s in r.checked_shapes)}")
    return 0


# ---------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from stgcn import __version__

    parser = argparse.ArgumentParser(
        prog="stgcn", description="ST-GCN for skeleton-based action recognition: graphs, data, training, "
                                  "evaluation, prediction, export.")
    parser.add_argument("--version", action="version", version=f"stgcn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_graph_parser(sub)
    _add_convert_parser(sub)
    _add_prepare_parser(sub)
    _add_info_parser(sub)
    _add_train_parser(sub)
    _add_eval_parser(sub)
    _add_fuse_parser(sub)
    _add_predict_parser(sub)
    _add_video_parser(sub)
    _add_pose_parser(sub)
    _add_render_parser(sub)
    _add_plot_graph_parser(sub)
    _add_export_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stgcn`` command. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (StgcnError, OSError) as e:
        message = str(e).replace("\n", " ")
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
