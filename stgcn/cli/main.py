"""The ``stgcn`` command line. Each subcommand is a typed ``cmd_<name>(args) -> int`` function in the module of its area
(:mod:`.graph`, :mod:`.convert`, :mod:`.data`, :mod:`.engine`, :mod:`.inference`); parsers are added explicitly in
:func:`build_parser`. Only this module prints; errors from bad input are printed as one
line ``error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from stgcn.cli import convert, data, engine, graph, inference
from stgcn.errors import StgcnError

__all__ = ["main", "build_parser"]


# ---------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from stgcn import __version__

    parser = argparse.ArgumentParser(
        prog="stgcn", description="ST-GCN for skeleton-based action recognition: graphs, data, training, "
                                  "evaluation, prediction, export.")
    parser.add_argument("--version", action="version", version=f"stgcn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    graph.add_graph_parser(sub)
    convert.add_convert_parser(sub)
    data.add_prepare_parser(sub)
    data.add_info_parser(sub)
    engine.add_train_parser(sub)
    engine.add_eval_parser(sub)
    engine.add_fuse_parser(sub)
    inference.add_predict_parser(sub)
    inference.add_video_parser(sub)
    inference.add_pose_parser(sub)
    inference.add_render_parser(sub)
    inference.add_plot_graph_parser(sub)
    inference.add_export_parser(sub)
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
