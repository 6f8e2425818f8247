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
    from stgcn.graph import NORMALIZATIONS, STRATEGIES

    p = sub.add_parser("graph", help="show a skeleton graph and its partitions",
                       description="Print V, K, the edges and each partition's nonzero count of a layout.")
    p.add_argument("layout", help="built-in layout name or a .json/.yaml layout file")
    p.add_argument("--strategy", default="spatial", choices=STRATEGIES)
    p.add_argument("--max-hop", type=int, default=1)
    p.add_argument("--dilation", type=int, default=1)
    p.add_argument("--normalization", default="notes", choices=NORMALIZATIONS)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from stgcn.graph import Graph

    g = Graph(args.layout, args.strategy, args.max_hop, args.dilation, args.normalization)
    lay = g.layout
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
    from stgcn.graph import STRATEGIES

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
    from stgcn.checkpoint import save_checkpoint
    from stgcn.convert import convert_original

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
    f = fmt("keypoints", "our keypoints JSON/NPZ clips and OpenPose JSON folders (custom data)",
            "folder of clip files / OpenPose folders (optionally in split sub-folders)")
    opt(f, "--layout", default=None, help="layout name or file (default: from the files)")
    opt(f, "--labels", type=Path, default=None, help="CSV with columns name,label[,split]")
    opt(f, "--class-names", type=Path, default=None, help="text file of class names, one per line")


def cmd_prepare(args: argparse.Namespace) -> int:
    from stgcn.prepare import prepare

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
    from stgcn.store import describe_store, open_store

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
