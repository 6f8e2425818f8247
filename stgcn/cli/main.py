"""The ``stgcn`` command line: the argument parser and the single error boundary.

Each subcommand is a typed ``cmd_<name>(args) -> int`` function in the module of its area (:mod:`.graph`,
:mod:`.convert`, :mod:`.data`, :mod:`.engine`, :mod:`.inference`); parsers are added explicitly in
:func:`build_parser`. The CLI package is the only part of ``stgcn`` that prints (the library logs through
``logging``), and :func:`main` is the only place that turns exceptions into exit statuses:

* the errors the library raises for bad input (:class:`~stgcn.errors.StgcnError` and its subclasses, and
  ``OSError`` from the file system): one line ``error: <message>`` on stderr, exit status 2 (the message goes
  through :func:`~stgcn.utils.safe_text.terminal_safe`: a name from a file cannot break the line or send
  terminal escapes);
* Ctrl-C (``KeyboardInterrupt``): one line ``interrupted`` on stderr, exit status 130, no traceback;
* a closed output pipe (``BrokenPipeError`` on stdout, e.g. ``stgcn graph ntu-rgb+d | head -1``): nothing
  printed, exit status 141 (128 + SIGPIPE), as a shell tool killed by SIGPIPE.

Anything else is a bug and keeps its traceback. Importing this module does not import torch (``stgcn``'s
public names load on first use), so Ctrl-C while the command starts up is already inside the boundary.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from stgcn.cli import convert, data, engine, graph, inference, live, models
from stgcn.errors import StgcnError
from stgcn.utils.safe_text import terminal_safe

__all__ = ["main", "build_parser", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    """The ``stgcn`` parser with every subcommand; each sets ``func``, its ``cmd_<name>(args) -> int``."""
    from stgcn import __version__

    parser = argparse.ArgumentParser(
        prog="stgcn", description="ST-GCN for skeleton-based action recognition: graphs, data, training, "
                                  "evaluation, prediction, export.")
    parser.add_argument("--version", action="version", version=f"stgcn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    graph.add_graph_parser(sub)
    convert.add_convert_parser(sub)
    models.add_models_parser(sub)
    data.add_prepare_parser(sub)
    data.add_info_parser(sub)
    engine.add_train_parser(sub)
    engine.add_eval_parser(sub)
    engine.add_fuse_parser(sub)
    inference.add_predict_parser(sub)
    inference.add_video_parser(sub)
    live.add_live_parser(sub)
    inference.add_pose_parser(sub)
    inference.add_render_parser(sub)
    inference.add_plot_graph_parser(sub)
    inference.add_export_parser(sub)
    return parser


def _stdout_closed() -> bool:
    """Whether the reader of stdout has gone (a pipe whose other end is closed); ``True`` when unknown."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (ImportError, AttributeError, OSError, ValueError):  # no poll, or no real file descriptor
        return True


def _silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's final flush of a closed pipe stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (e.g. a captured stdout)
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stgcn`` command. Returns the exit status (see the module docstring)."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the boundary, not at interpreter exit
        return status
    except BrokenPipeError as e:
        if not _stdout_closed():  # another pipe (e.g. to a subprocess) broke: an error like any OSError
            print(f"error: {e}", file=sys.stderr)
            return EXIT_ERROR
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (StgcnError, OSError) as e:
        print(f"error: {terminal_safe(str(e))}", file=sys.stderr)  # one line: no line break or escape from a file
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
