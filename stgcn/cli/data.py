"""``stgcn prepare`` and ``stgcn info``: build and describe dataset stores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:
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


def add_info_parser(sub: argparse._SubParsersAction) -> None:
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
