"""The `vis-mae` command: one sub-command per job, one flag style, one error policy.

`vis_mae_hf_cli` (outside this package, standard library only, so `vis-mae --help` never imports torch) parses
`vis-mae [--debug] COMMAND ...`. `run_command` then imports the module `vis_mae_hf.app.cli.<COMMAND>`, whose
`build_parser(prog)` builds that command's parser alone (leaf parsers name their handler with `set_handler`),
parses the rest of the command line and calls the handler.

The error policy, here and nowhere else:
- usage error (an unknown option, a missing or ill-formed value): argparse prints the usage and
  `vis-mae <command>: error: ...`, exit status 2;
- user error (a `CommandError`, or a `ValueError`/`OSError` from the library: a missing file, a bad dataset, a
  refused repository; the library's errors name the input and what would be right; an `ImportError`: an optional
  package not installed, e.g. the demo extra; or a `PretrainingStopped`: a NaN loss, an unreadable image): one line `vis-mae <command>: error: <message>` on stderr,
  exit status 1;
- `vis-mae --debug COMMAND ...`: the traceback instead of that line;
- anything else is a bug and shows Python's traceback.
Handlers raise; they never print their own error lines. (`predict` also reports each failed input on a line of its
own and carries on with the others, as `cp` and `gzip` do.)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from vis_mae_hf_cli import COMMANDS, main, parse_command_line

# What a user error is and its one line are shared with the demo page (`app/user_errors.py`).
from ..user_errors import USER_ERRORS, CommandError, error_line

USER_ERROR = 1  # argparse's usage errors exit with 2
INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def set_handler(parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int | None]) -> None:
    """Make `parser` (a leaf: a command without sub-commands) run `handler(namespace)` -> exit status (None is 0).
    Its errors are reported under the parser's name, e.g. `vis-mae data convert: error: ...`."""
    parser.set_defaults(handler=handler, command_name=parser.prog)


def parse(command: str, arguments: list[str]) -> argparse.Namespace:
    """Parse `vis-mae COMMAND ARGUMENTS...` with that command's own parser (usage errors exit 2)."""
    module = importlib.import_module(f"{__name__}.{command}")
    return module.build_parser(f"vis-mae {command}").parse_args(arguments)


def run_command(command: str, arguments: list[str], *, debug: bool = False) -> int:
    """Run `vis-mae [--debug] COMMAND ARGUMENTS...` under the error policy above; returns the exit status."""
    namespace = parse(command, arguments)
    try:
        return int(namespace.handler(namespace) or 0)
    except USER_ERRORS as error:
        if debug:
            raise
        report_error(namespace.command_name, error)
        return USER_ERROR
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{namespace.command_name}: interrupted", file=sys.stderr)
        return INTERRUPTED


def report_error(command_name: str, error: BaseException | str) -> None:
    """`vis-mae <command>: error: <message>` on one line of stderr (a message's own line breaks become spaces)."""
    print(error_line(command_name, error), file=sys.stderr, flush=True)


__all__ = ["COMMANDS", "CommandError", "main", "parse", "parse_command_line", "run_command", "set_handler"]
