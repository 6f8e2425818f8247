"""The ``stgcn`` command line: the only part of the package that prints. The library reports through
``logging`` and raises :class:`~stgcn.errors.StgcnError` subclasses; :func:`stgcn.cli.main.main` turns them
into one ``error:`` line and an exit status."""

from stgcn.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
