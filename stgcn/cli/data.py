"""``stgcn prepare`` and ``stgcn info``: build and describe dataset stores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stgcn.data.readers.base import DatasetFormat


def add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    """``stgcn prepare FORMAT SRC OUT``: one sub-command per declared format, one flag per declared option."""
    from stgcn.data.readers import FORMATS

    p = sub.add_parser("prepare", help="convert a skeleton dataset into a dataset store",
                       description="Convert a source dataset (FORMAT SRC) into a memory-mapped dataset store "
                                   "OUT with its standard splits. Atomic: OUT appears only when complete.")
    fmts = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for declared in FORMATS:
        add_format_parser(fmts, declared)


def add_format_parser(fmts: argparse._SubParsersAction, declared: DatasetFormat) -> argparse.ArgumentParser:
    """The sub-parser of one format: SRC, OUT, the common prepare flags and the format's declared options."""
    f = fmts.add_parser(declared.name, help=declared.help, description=declared.help)
    f.add_argument("src", type=Path, help=declared.src_help)
    f.add_argument("out", type=Path, help="store directory to create")
    f.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                   help="storage precision (float16 halves the size)")
    f.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count, max 8)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing store at OUT")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    options = []
    for opt in declared.options:
        if not opt.cli:
            continue
        if opt.flag:
            f.add_argument(opt.cli_flag, dest=opt.name, action="store_true", default=None, help=opt.help)
        else:
            kwargs: dict[str, Any] = {"default": opt.default, "help": opt.help}
            if opt.type is not str:
                kwargs["type"] = opt.type
            if opt.choices is not None:
                kwargs["choices"] = list(opt.choices)
            f.add_argument(opt.cli_flag, dest=opt.name, **kwargs)
        options.append(opt.name)
    f.set_defaults(func=cmd_prepare, options=options)
    return f


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
    from stgcn.utils.safe_text import terminal_safe

    info = describe_store(open_store(args.dataset))
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"store       {info['path']}")
    print(f"source      {terminal_safe(info['source'].get('format', '?'))}  "
          f"{terminal_safe(info['source'].get('path', ''))}")
    print(f"layout      {terminal_safe(info['layout'])} ({info['num_joints']} joints), channels "
          f"{terminal_safe(','.join(info['channels']))}, persons {info['num_persons']}, dtype {info['dtype']}")
    print(f"fingerprint {info['layout_fingerprint']} (the layout's identity)")
    print(f"clips       {info['clips']}  frames {info['frames']}  size {info['bytes'] / 1e6:.1f} MB")
    ls = info["length"]
    print(f"length      min {ls['min']}  median {ls['median']:g}  mean {ls['mean']:.1f}  max {ls['max']}")
    if info["skipped"]:
        print(f"skipped     {info['skipped']} samples (listed in manifest.json counts.skipped_samples)")
    names = list(info["splits"])
    width = max([len(terminal_safe(c)) for c in info["class_names"]] + [5])
    print(f"{'class':<{width}}  " + "  ".join(f"{terminal_safe(n):>8}" for n in ["all", *names]))
    for c, row in info["per_class"].items():
        print(f"{terminal_safe(c):<{width}}  " + "  ".join(f"{row[n]:>8}" for n in ["all", *names]))
    totals = {"all": info["clips"], **{n: info["splits"][n] for n in names}}
    print(f"{'total':<{width}}  " + "  ".join(f"{totals[n]:>8}" for n in ["all", *names]))
    return 0
