"""Names from files shown safely: escaped for a terminal (no control characters, ANSI escapes or line breaks
reach it, so a class name cannot forge an ``error:`` line or recolour the screen) and for CSV cells (a leading
``=``, ``+``, ``-``, ``@`` would be a formula in a spreadsheet)."""

from __future__ import annotations

__all__ = ["terminal_safe", "csv_safe"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def terminal_safe(text: object) -> str:
    """``text`` with every non-printable character (control, ANSI escape, line break, bidi override) written
    as its Python escape (``\\n``, ``\\x1b``, ``\\u202e``)."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in s)


def csv_safe(text: object) -> str:
    """A CSV cell that a spreadsheet shows as text: one starting like a formula gets a leading ``'``
    (quoting and embedded line breaks are the ``csv`` module's job)."""
    s = str(text)
    return "'" + s if s.startswith(_FORMULA_START) else s
