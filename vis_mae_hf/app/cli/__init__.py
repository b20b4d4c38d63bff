"""The `vis-mae` command line: one entry point, one sub-command per capability.

Each capability module owns its arguments and its work through a `register_cli(subparsers)` function that
adds its sub-parser and sets `handler` (a callable taking the parsed namespace and returning an exit code).
This file only wires them together, importing each module lazily so that `vis-mae --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> module that provides `register_cli(subparsers)`
COMMAND_MODULES: dict[str, str] = {
    "data": "vis_mae_hf.app.cli.data",
    "predict": "vis_mae_hf.app.cli.predict",
    "convert": "vis_mae_hf.app.cli.convert",
    "hub": "vis_mae_hf.app.cli.hub",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vis-mae", description="VIS-MAE for medical images.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES.values():
        importlib.import_module(module_name).register_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
