"""What counts as a user's error, and the one line it is reported as: shared by the command line and the demo page.

A user error is a `CommandError` (found by a command itself), a `ValueError`/`OSError` from the library (a missing
file, a bad dataset, a refused repository: the library's errors name the input and what would be right), an
`ImportError` (an optional package not installed, e.g. the demo extra) or a `PretrainingStopped` (a NaN loss, an
unreadable image). `vis-mae` prints `error_line` on stderr and exits 1 (`app/cli/__init__.py`); the demo page shows
the same line in place of its result (`app/demo/`). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from .pretraining.errors import PretrainingStopped


class CommandError(Exception):
    """A user error found by a command itself (not by the library): reported as one line, exit status 1."""


# A `PretrainingStopped` (a NaN loss, an unreadable image) names the step, the cause and the checkpoint to resume from.
USER_ERRORS = (CommandError, ValueError, OSError, ImportError, PretrainingStopped)


def error_line(command_name: str, error: BaseException | str) -> str:
    """`vis-mae <command>: error: <message>` as one line (the message's own line breaks become spaces)."""
    message = " ".join(str(error).split()) or type(error).__name__
    return f"{command_name}: error: {message}"


__all__ = ["USER_ERRORS", "CommandError", "error_line"]
