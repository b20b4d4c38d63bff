"""`vis-mae export onnx`: a saved VIS-MAE model -> a folder ONNX Runtime serves without PyTorch.

    vis-mae export onnx --model outputs/segmenter --output outputs/segmenter-onnx [--height 224 --width 320]

The work is `vis_mae_hf.onnx_export.export_onnx`; its docstring says what the folder holds and why the input size is
fixed. Without the onnx extra the command is one line naming it; every other command works without it.
"""

from __future__ import annotations

import argparse

from ...onnx_export import export_onnx
from . import set_handler
from .arguments import output_folder, positive_int


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Export a saved VIS-MAE model for other runtimes.")
    formats = parser.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx",
        help="ONNX for ONNX Runtime: model.onnx, the image processor and a README of inputs and outputs",
        description="Export a saved VisMaeModel, VisMaeForImageClassification, VisMaeForSemanticSegmentation or "
        "VisMaeForPreTraining to ONNX (fp32, opset 18): a dynamic batch axis and a fixed height x width (the "
        "graph depends on the size). The ONNX graph is checked against PyTorch in ONNX Runtime before anything is "
        "written. Needs the onnx extra: pip install 'vis-mae-hf[onnx]'.",
    )
    onnx.add_argument("--model", required=True, help="a saved VIS-MAE model folder or cached Hub repo id, with its "
                      "image processor")
    onnx.add_argument("--output", required=True, help="output folder (created; one this command wrote is replaced "
                      "only with --overwrite)")
    onnx.add_argument("--height", type=positive_int, default=None, help="input height in pixels, a multiple of 32 "
                      "(default: the processor's size)")
    onnx.add_argument("--width", type=positive_int, default=None, help="input width in pixels, a multiple of 32 "
                      "(default: the processor's size)")
    onnx.add_argument("--overwrite", action="store_true", help="replace an earlier output of vis-mae export onnx "
                      "there (only the files it wrote)")
    set_handler(onnx, run_onnx_export)
    return parser


def run_onnx_export(args: argparse.Namespace) -> int:
    output_folder(args.output)  # a file there is refused before the model is loaded
    export = export_onnx(args.model, args.output, height=args.height, width=args.width, overwrite=args.overwrite)
    worst = max(export.parity.values())
    print(
        f"wrote {args.output}: {export.architecture} at {export.height}x{export.width} (dynamic batch); ONNX Runtime "
        f"matches PyTorch within {worst:.1e} x max(1, max|output|)"
    )
    return 0
