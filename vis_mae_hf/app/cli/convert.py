"""`vis-mae convert`: a checkpoint of the published VIS-MAE code -> a Transformers model directory."""

from __future__ import annotations

import argparse
import sys

from ...vocabulary import CHECKPOINT_TASKS


def register_cli(subparsers) -> None:
    convert = subparsers.add_parser(
        "convert",
        help="Convert a checkpoint of the published VIS-MAE code into a Transformers model directory.",
        description="Read a published .pth (or .safetensors) checkpoint safely, map its keys and write the model "
        "with the image processor of its recipe; prints the key report.",
    )
    convert.add_argument("--checkpoint", required=True, help="published .pth (or .safetensors) checkpoint")
    convert.add_argument("--task", choices=CHECKPOINT_TASKS, help="defaults to what the keys show")
    convert.add_argument("--output", required=True, help="directory for the Transformers model")
    convert.set_defaults(handler=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from ...weights.key_mapping import ConversionError
    from ...weights.published import convert_checkpoint

    try:
        report = convert_checkpoint(args.checkpoint, args.task, args.output)
    except (ConversionError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(report.format())
    print(f"wrote {args.output}")
    return 0
