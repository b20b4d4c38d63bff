"""`vis-mae export`: export a model for other runtimes (ONNX). Not built yet: it says so and what to use meanwhile."""

from __future__ import annotations

import argparse

from . import CommandError, set_handler

NOT_YET = (
    "ONNX export is not built yet. Meanwhile run the model in PyTorch (`vis-mae predict`, or from_pretrained with "
    "Transformers' pipelines), or publish it with `vis-mae hub export`."
)


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Export a fine-tuned model for other runtimes. {NOT_YET}",
    )
    set_handler(parser, _not_yet)
    return parser


def _not_yet(args: argparse.Namespace) -> int:
    raise CommandError(NOT_YET)
