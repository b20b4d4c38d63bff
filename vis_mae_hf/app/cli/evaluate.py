"""`vis-mae evaluate segmentation | classification`: score predictions against references.

    vis-mae evaluate segmentation --predictions PRED --references REF [--labels L] [--ignore-index N]
                                  [--include-background] [--empty-mask skip|one] [--output SCORES.json]
    vis-mae evaluate classification --predictions predictions.csv --references labels.csv [--multi-label]
                                    [--output SCORES.json]

The scores are `vis_mae_hf.metrics`' (the same Dice, precision, recall, ROC-AUC and PR-AUC as fine-tuning reports);
which files pair and what is checked is in `vis_mae_hf/metrics/files.py`, what is reported in `metrics/reports.py`.
A table goes to stdout; `--output` writes the report as JSON, whose `results` entry is an evaluation summary that
`vis-mae hub export --evaluation` takes as it is. Bad input (an unpaired file, a mismatched size or voxel grid, a
label value outside the declared labels) is one error line naming the file, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from ...metrics import (
    EMPTY_MASK_CONVENTIONS,
    evaluate_classification_files,
    evaluate_segmentation_files,
)
from . import CommandError, set_handler


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Score predictions against references with the package's metrics: segmentation masks "
        "(2-D label maps or NIfTI volumes, per case and pooled) or a classification predictions.csv.",
    )
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    _add_segmentation(tasks)
    _add_classification(tasks)
    return parser


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, help="write the report as JSON to this file (new, or --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument(
        "--dataset-name",
        help="what the references are, for the report's evaluation summary (and so the model card); default the "
        "name of the references folder or file",
    )
    parser.add_argument("--split", help="which split the references are, e.g. test (for the evaluation summary)")


def _add_segmentation(tasks) -> None:
    segmentation = tasks.add_parser(
        "segmentation",
        help="label maps against reference label maps",
        description="Score label maps (PNG/TIFF/BMP, or NIfTI volumes on the reference's voxel grid) against "
        "reference label maps, paired by file name: scan_mask.png with scan.png or scan_mask.png. Dice, precision "
        "and recall per case, per class, pooled per image (per volume) and globally.",
    )
    segmentation.add_argument("--predictions", required=True, type=Path,
                              help="folder of predicted label maps (as `vis-mae predict` writes them), or one file")
    segmentation.add_argument("--references", required=True, type=Path,
                              help="folder of reference label maps, or one file")
    segmentation.add_argument(
        "--labels",
        help="the classes in index order: a labels.json file or comma-separated names, e.g. background,liver "
        "(default: PREDICTIONS/labels.json, written by `vis-mae predict`)",
    )
    segmentation.add_argument("--ignore-index", type=int, help="a reference value whose pixels are not scored, e.g. "
                              "255 for unlabelled (default: none; every other value must be a declared class)")
    segmentation.add_argument("--include-background", action="store_true",
                              help="average class 0 into the means too (default: left out)")
    segmentation.add_argument("--empty-mask", choices=EMPTY_MASK_CONVENTIONS, default="skip",
                              help="a class absent from both prediction and reference of a case: skip it (default) "
                              "or score it 1")
    _add_output_options(segmentation)
    set_handler(segmentation, run_segmentation)


def _add_classification(tasks) -> None:
    classification = tasks.add_parser(
        "classification",
        help="a predictions.csv against a labels CSV",
        description="Score the predictions.csv `vis-mae predict` writes (file, label, prob_<class>...) against a "
        "CSV or TSV of references (a file column and a label column: a class name or index; for multi-label "
        "models the present classes joined by ';'), paired by file name. ROC-AUC, PR-AUC, accuracy.",
    )
    classification.add_argument("--predictions", required=True, type=Path, help="predictions.csv")
    classification.add_argument("--references", required=True, type=Path, help="CSV/TSV with file and label columns")
    classification.add_argument(
        "--multi-label", action="store_true", default=None,
        help="the model is multi-label (default: read from predictions.json beside the predictions, else single-label)",
    )
    _add_output_options(classification)
    set_handler(classification, run_classification)


def _check_output(args, *inputs: Path) -> None:
    """Refuse an --output that is a folder, an input, or an existing file without --overwrite, before any work."""
    output = args.output
    if output is None:
        return
    if output.is_dir():
        raise CommandError(f"--output {output} is a folder; give the JSON file to write, e.g. {output}/scores.json.")
    if output.suffix.lower() != ".json":
        raise CommandError(f"--output {output}: the report is JSON; name the file *.json, e.g. scores.json.")
    if any(output.resolve() == Path(path).resolve() for path in inputs):
        raise CommandError(f"--output {output} is one of the inputs; write the report to another file.")
    if output.exists() and not args.overwrite:
        raise CommandError(f"--output {output} exists; pass --overwrite to replace it.")


def _write_report(report, args) -> None:
    print(report.format_table())
    if args.output is None:
        return
    text = json.dumps(report.to_json_dict(args.dataset_name, args.split), indent=2, allow_nan=False) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: an interrupted write never leaves half a report.
    handle, temporary = tempfile.mkstemp(prefix=f".{args.output.name}.", dir=args.output.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, args.output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    print(f"wrote {args.output}")


def run_segmentation(args) -> int:
    _check_output(args, args.predictions, args.references)
    report = evaluate_segmentation_files(
        args.predictions,
        args.references,
        args.labels,
        ignore_index=args.ignore_index,
        include_background=args.include_background,
        empty_mask=args.empty_mask,
    )
    _write_report(report, args)
    return 0


def run_classification(args) -> int:
    _check_output(args, args.predictions, args.references)
    report = evaluate_classification_files(args.predictions, args.references, multi_label=args.multi_label)
    _write_report(report, args)
    return 0
