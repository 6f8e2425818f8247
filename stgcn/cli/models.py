"""``stgcn models``: the catalogue of published MMAction2 and PYSKL ST-GCN checkpoints."""

from __future__ import annotations

import argparse
import json

COLUMNS = ("name", "framework", "dataset", "split", "layout", "keypoints", "stream", "top1")


def add_models_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the published checkpoints `stgcn convert` can download",
                       description="The built-in catalogue of MMAction2 and PYSKL ST-GCN checkpoints: config name, "
                                   "dataset, layout, stream and published top-1. `stgcn convert mmaction2 NAME --out "
                                   "m.pt` (or `pyskl`) downloads and converts one.")
    p.add_argument("--framework", default=None, choices=("mmaction2", "pyskl"), help="only this model zoo")
    p.add_argument("--json", action="store_true", help="print the entries as JSON (with URL and sha256)")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from stgcn.convert.catalogue import list_models

    entries = list_models(args.framework)
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    rows = [[str(e.get(c, "")) for c in COLUMNS] for e in entries]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip())
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0
