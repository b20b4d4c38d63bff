"""`vis-mae convert`: a checkpoint of the published VIS-MAE code -> a Transformers model directory."""

from __future__ import annotations

import argparse

from ...vocabulary import CHECKPOINT_TASKS
from ...weights.published import convert_checkpoint
from . import set_handler
from .arguments import output_folder


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Read a published .pth (or .safetensors) checkpoint safely, map its keys and write the model "
        "with the image processor of its recipe; prints the key report.",
    )
    parser.add_argument("--checkpoint", required=True, help="published .pth (or .safetensors) checkpoint")
    parser.add_argument("--task", choices=CHECKPOINT_TASKS, help="defaults to what the keys show")
    parser.add_argument(
        "--output", required=True, help="directory for the Transformers model: new, empty, or an earlier output"
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier output of this command in OUTPUT (only the files it wrote; nothing else there)",
    )
    set_handler(parser, run_convert)
    return parser


def run_convert(args: argparse.Namespace) -> int:
    output_folder(args.output)
    # ConversionError is a ValueError, OutputFolderError an OSError: one line each
    report = convert_checkpoint(args.checkpoint, args.task, args.output, overwrite=args.overwrite)
    print(report.format())
    print(f"wrote {args.output}")
    return 0
