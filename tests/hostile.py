"""Shared tools of the hostile-input suite (`tests/test_hostile_*.py`): each case builds a bad input from real
packaged files in the test, runs what a user would run, and asserts the outcome: no code executed from a file, no
user file changed, the exact one-line error and exit status, and the good inputs of the same batch still processed.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

from vis_mae_hf.app.cli import main

SENTINEL_NAME = "CODE_WAS_EXECUTED"


class ExecutesCode:
    """Unpickling this object creates `path` (a sentinel file): a file that holds it may never be unpickled."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def malicious_pickle(path: Path, sentinel: Path) -> Path:
    """Write a pickle at `path` whose loading would create `sentinel`."""
    path.write_bytes(pickle.dumps(ExecutesCode(sentinel)))
    return path


def file_hashes(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `folder` (symlinks followed), to compare before and after."""
    folder = Path(folder)
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def vis_mae(capsys, *arguments) -> tuple[int, str, str]:
    """`vis-mae ARGUMENTS...` in this process: (exit status, stdout, stderr), argparse's exits included."""
    try:
        status = main([str(argument) for argument in arguments])
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def error_lines(stderr: str, command: str) -> list[str]:
    """The `vis-mae <command>: error: ...` lines of stderr (progress bars and warnings left out)."""
    return [line for line in stderr.splitlines() if line.startswith(f"vis-mae {command}: error: ")]


def assert_one_error_line(stderr: str, command: str, *fragments: str) -> str:
    """Exactly one error line for `command`, no traceback, and it names every fragment (a file, a fix)."""
    assert "Traceback" not in stderr, stderr
    lines = error_lines(stderr, command)
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert str(fragment) in lines[0], (fragment, lines[0])
    return lines[0]
