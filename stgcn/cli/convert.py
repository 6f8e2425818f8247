"""``stgcn convert``: import checkpoints of other implementations."""

from __future__ import annotations

import argparse
from pathlib import Path

from stgcn.errors import StgcnError


def add_convert_parser(sub: argparse._SubParsersAction) -> None:
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
