"""Argument types and parsers the `vis-mae` sub-commands share: one `--window` parser, counts, and the dataclass
commands (pretrain, finetune, sweep) that `transformers.HfArgumentParser` builds from their argument dataclasses."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path

from transformers import HfArgumentParser

from ...medical.windows import HEADER_WINDOW, Window, parse_window
from ...output_folders import check_folder_path
from . import set_handler


def window_argument(text: str) -> Window:
    """`--window` where the file's own window may be asked for: header, a preset name, or WIDTH,LEVEL."""
    try:
        return parse_window(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def fallback_window_argument(text: str) -> Window:
    """`--window` naming the window to use where a file has none (CT): a preset name or WIDTH,LEVEL, not header."""
    window = window_argument(text)
    if window == HEADER_WINDOW:
        raise argparse.ArgumentTypeError(
            "header is what is used whenever a file has a window of its own; this option chooses the window for "
            "files without one: a preset name or WIDTH,LEVEL, e.g. abdomen or 400,40."
        )
    return window


def output_folder(path: str | Path, option: str = "--output") -> Path:
    """`path` as the folder a command writes into, checked before any work (`output_folders.check_folder_path`)."""
    return check_folder_path(path, option)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}.") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}.")
    return value


class DashedHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Lists `--max-steps N`, not also its underscore twin `--max_steps N` (both are accepted)."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        dashed = [option for option in action.option_strings if "_" not in option]
        if dashed and len(dashed) < len(action.option_strings):
            action = copy.copy(action)
            action.option_strings = dashed
        return super()._format_action_invocation(action)


def dataclass_parser(dataclass_types, prog: str, description: str) -> HfArgumentParser:
    """An `HfArgumentParser` over `dataclass_types` whose help shows the dashed flags."""
    parser = HfArgumentParser(dataclass_types, **dataclass_parser_options(prog, description))
    prefer_dashes(parser)
    return parser


def dataclass_parser_options(prog: str, description: str) -> dict:
    """`HfArgumentParser` keywords: a one-line usage (the option list follows in the help), dashed flags."""
    return {"prog": prog, "usage": "%(prog)s [OPTIONS]", "description": description,
            "formatter_class": DashedHelpFormatter}


def prefer_dashes(parser: argparse.ArgumentParser) -> None:
    """Put `--max-steps` before `--max_steps` in every option's names: the usage line and messages use the first."""
    for action in parser._actions:
        action.option_strings.sort(key=lambda option: "_" in option)


def set_dataclass_handler(
    parser: HfArgumentParser, run: Callable[..., object], output_folders: tuple[str, ...] = ()
) -> None:
    """Leaf `parser` runs `run(*instances of its dataclasses)`, built from the parsed values by the parser itself
    (so each dataclass's own checks run and raise as user errors). The fields named in `output_folders` are checked
    with `output_folder` first, so that a file given for one fails at once rather than when training saves."""

    def handler(namespace: argparse.Namespace) -> int:
        instances = parser.parse_dict(vars(namespace), allow_extra_keys=True)
        for instance in instances:
            for field_name in output_folders:
                if getattr(instance, field_name, None) is not None:
                    output_folder(getattr(instance, field_name), "--" + field_name.replace("_", "-"))
        run(*instances)
        return 0

    set_handler(parser, handler)
