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
