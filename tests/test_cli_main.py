"""The CLI's single error boundary: bad input, Ctrl-C and a closed output pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stgcn.cli import graph, main
from stgcn.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def _raising(exc: BaseException):
    def cmd(_args: object) -> int:
        raise exc
    return cmd


@pytest.mark.parametrize("exc", [DataError("x.json: bad clip\nsecond line"), FileNotFoundError(2, "missing", "x")])
def test_bad_input_is_one_error_line_and_status_2(monkeypatch, capsys, exc):
    monkeypatch.setattr(graph, "cmd_graph", _raising(exc))
    assert main(["graph", "ntu-rgb+d"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


def test_keyboard_interrupt_exits_130_quietly(monkeypatch, capsys):
    monkeypatch.setattr(graph, "cmd_graph", _raising(KeyboardInterrupt()))
    assert main(["graph", "ntu-rgb+d"]) == 130
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "interrupted\n"


def test_broken_pipe_on_stdout_exits_quietly(monkeypatch, capsys):
    monkeypatch.setattr(graph, "cmd_graph", _raising(BrokenPipeError(32, "Broken pipe")))
    assert main(["graph", "ntu-rgb+d"]) in (0, 141)
    assert capsys.readouterr() == ("", "")


def test_closed_pipe_subprocess():
    """``stgcn graph ntu-rgb+d | head -0``: the reader is gone before anything is written."""
    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run([sys.executable, "-m", "stgcn", "graph", "ntu-rgb+d"], stdout=write,
                              stderr=subprocess.PIPE, env=env, cwd=ROOT, timeout=300)
    finally:
        os.close(write)
    assert proc.returncode in (0, 141)
    assert proc.stderr == b""


def test_error_message_from_a_file_cannot_forge_lines_or_send_escapes(monkeypatch, capsys):
    monkeypatch.setattr(graph, "cmd_graph", _raising(DataError("class 'a\nerror: forged \x1b[31mred\x1b[0m'")))
    assert main(["graph", "ntu-rgb+d"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\\x1b[31m" in err and "\\n" in err


def test_starting_the_cli_does_not_import_torch():
    """Ctrl-C during start-up lands inside main's boundary only if the slow imports happen inside it."""
    code = "import sys, stgcn.cli, stgcn; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
