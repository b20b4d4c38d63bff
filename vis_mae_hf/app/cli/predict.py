"""`vis-mae predict`: segment or classify medical images and volumes with a fine-tuned VIS-MAE model.

    vis-mae predict --model DIR_OR_REPO_ID INPUT... --output OUT [--window W] [--frame N] [--batch-size B]
                    [--device D] [--save-probabilities] [--quiet]

Inputs: a folder (one DICOM series), a NIfTI volume, or a 2-D image (DICOM with any or no suffix, PNG, JPEG, TIFF,
BMP). Each input is read once: its `MedicalImage` / `MedicalVolume` carries the facts (modality, frames, header
windows, the input's grid) the rest of the command needs. Which window turns raw values into [0, 1] is described in
`inputs.py` (--window, then the model processor's `hounsfield_window`, then the loader's default); what is written
in `outputs.py`.

Exit status: 0 when every input was predicted; 1 when the model could not be loaded or any input failed (each
failure is one line on stderr naming the file and the problem; the other inputs are still predicted, as `cp` and
`gzip` do); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers.utils import logging as transformers_logging

from ...inference.inputs import (
    input_kind,
    load_image_for_model,
    unique_output_stems,
    volume_in_unit_range,
)
from ...inference.outputs import (
    MASK_SUFFIX,
    OVERLAY_SUFFIX,
    PROBABILITIES_SUFFIX,
    write_classification_tables,
    write_label_png,
    write_labels_json,
    write_overlay_png,
    write_probability_array,
    write_volume_mask,
    write_volume_overlay,
    write_volume_probabilities,
)
from ...inference.predictor import TASK_CLASSIFICATION, VisMaePredictor
from ...medical import MedicalImageError, load_medical_volume
from ...medical.orientation import AXIAL_AXIS
from . import report_error, set_handler
from .arguments import output_folder, positive_int, window_argument


def build_parser(prog: str) -> argparse.ArgumentParser:
    predict = argparse.ArgumentParser(
        prog=prog,
        description="Segment (mask PNG + overlay PNG for 2-D inputs, NIfTI mask + an overlay mosaic of the labelled "
        "slices for volumes) or classify (predictions.csv/json) each INPUT with a fine-tuned VIS-MAE model.",
        epilog="Window order: --window, else the model processor's hounsfield_window (CT DICOM, NIfTI), else the "
        "CT header window, else min-max (per image; per volume for volumes). Exit status 0 ok, 1 a failed input "
        "or model, 2 bad arguments.",
    )
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM/PNG/JPEG/TIFF file, NIfTI file, or a "
                         "folder holding one DICOM series")
    predict.add_argument("--model", required=True, help="fine-tuned model folder or Hub repo id (with its processor)")
    predict.add_argument("--output", required=True, type=Path, help="output folder (created)")
    predict.add_argument(
        "--window",
        type=window_argument,
        default=None,
        help="intensity window: header (the file's own), a CT preset (abdomen, brain, bone, liver, lung, "
        "mediastinum, btcv_transunet, btcv_unetr) or WIDTH,LEVEL in HU, e.g. 400,40",
    )
    predict.add_argument("--frame", type=int, default=None, help="frame of a multi-frame DICOM or TIFF, from 0")
    predict.add_argument(
        "--batch-size", type=positive_int, default=8, help="slices or images per forward pass (default 8)"
    )
    predict.add_argument("--device", type=_device_argument, default=None, help="cpu, cuda, cuda:1 ... (default: "
                         "cuda when available)")
    predict.add_argument(
        "--save-probabilities",
        action="store_true",
        help="also write class probabilities (<name>_probabilities.nii.gz for volumes, .npy for 2-D images)",
    )
    predict.add_argument("--quiet", action="store_true", help="no progress bar and no per-input summary lines")
    set_handler(predict, run_predict)
    return predict


def _device_argument(text: str):
    try:
        device = torch.device(text)
    except RuntimeError as error:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: expected cpu, cuda or cuda:N.") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"device {text!r} asked for, but torch sees no CUDA device here.")
    return device


class _Report:
    """Per-input outcome lines: results on stdout, one-line errors on stderr."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.failures: list[str] = []
        self.done = 0

    def ok(self, text: str) -> None:
        self.done += 1
        if not self.quiet:
            print(text, flush=True)

    def failed(self, path: Path, error: BaseException) -> None:
        text = " ".join(str(error).split()) or type(error).__name__
        if str(path) not in text and path.name not in text:
            text = f"{path}: {text}"
        self.failures.append(str(path))
        report_error("vis-mae predict", text)


def run_predict(args: argparse.Namespace) -> int:
    inputs = [Path(text) for text in args.inputs]
    output_folder(args.output)  # a file there is refused before the model is loaded
    stems = unique_output_stems(inputs)  # MedicalImageError (a user error) when two inputs would share outputs

    # The weight-loading progress bar is noise on a command line; restore the setting for in-process callers.
    bars_were_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        # PredictorLoadError (a user error: one line naming the model) for anything but a whole, finite model.
        predictor = VisMaePredictor.from_pretrained(args.model, device=args.device)
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()

    report = _Report(args.quiet)
    args.output.mkdir(parents=True, exist_ok=True)
    if predictor.task == TASK_CLASSIFICATION:
        _classify(predictor, inputs, args, report)
    else:
        write_labels_json(predictor.label_names, args.output)
        for path in inputs:
            try:
                if input_kind(path) == "volume":
                    _segment_volume(predictor, path, stems[path], args, report)
                else:
                    _segment_image(predictor, path, stems[path], args, report)
            except (ValueError, OSError) as error:  # MedicalImageError and processor errors are ValueErrors
                report.failed(path, error)
    if report.failures:
        print(
            f"vis-mae predict: {report.done} of {len(inputs)} inputs predicted; failed: {', '.join(report.failures)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _frame_stem(stem: str, frame: int | None) -> str:
    return stem if frame is None else f"{stem}_frame{frame}"


def _load_image(path: Path, args, predictor):
    """One 2-D input, read once: the `MedicalImage` in [0, 1] and how its intensities were mapped. A multi-frame file
    without --frame says how to pick one (from the frame count of the image read)."""

    # Frame 0 first: files that are no image at all (SEG, SR, corrupt) report that, not their frame count.
    image, intensity = load_image_for_model(
        path, args.window, predictor.processor_window, frame=0 if args.frame is None else args.frame
    )
    if args.frame is None and image.num_frames > 1:
        raise MedicalImageError(
            f"{path} holds {image.num_frames} frames: pass --frame 0..{image.num_frames - 1} to predict one."
        )
    return image, intensity


def _segment_image(predictor, path: Path, stem: str, args, report: _Report) -> None:
    image, intensity = _load_image(path, args, predictor)
    prediction = predictor.segment_images([image.pixels], return_probabilities=args.save_probabilities)[0]
    stem = _frame_stem(stem, args.frame)
    written = [
        write_label_png(prediction.label_map, args.output / f"{stem}{MASK_SUFFIX}.png"),
        write_overlay_png(
            image.pixels, prediction.label_map, predictor.label_names, args.output / f"{stem}{OVERLAY_SUFFIX}.png"
        ),
    ]
    if prediction.probabilities is not None:
        written.append(
            write_probability_array(prediction.probabilities, args.output / f"{stem}{PROBABILITIES_SUFFIX}.npy")
        )
    report.ok(f"{path} ({intensity}) -> {', '.join(str(p) for p in written)}")


def _segment_volume(predictor, path: Path, stem: str, args, report: _Report) -> None:
    if args.frame is not None:
        raise MedicalImageError(f"--frame applies to multi-frame DICOM and TIFF files; {path} is a volume.")
    volume = load_medical_volume(path)
    unit_volume, intensity = volume_in_unit_range(volume, args.window, predictor.processor_window)
    prediction = predictor.segment_volume(
        unit_volume,
        batch_size=args.batch_size,
        return_probabilities=args.save_probabilities,
        progress=not args.quiet,
        description=path.name,
    )
    written = [write_volume_mask(prediction.label_map, volume, args.output / f"{stem}{MASK_SUFFIX}.nii.gz")]
    if prediction.probabilities is not None:
        written.append(
            write_volume_probabilities(
                prediction.probabilities, volume, args.output / f"{stem}{PROBABILITIES_SUFFIX}.nii.gz"
            )
        )
    # A picture to check the result by eye: the mosaic of the slices that hold labels (outputs.py says which).
    written.append(
        write_volume_overlay(
            unit_volume, prediction.label_map, volume, predictor.label_names, args.output / f"{stem}{OVERLAY_SUFFIX}.png"
        )
    )
    n_slices = unit_volume.shape[AXIAL_AXIS]
    report.ok(f"{path} ({intensity}, {n_slices} axial slices) -> {', '.join(str(p) for p in written)}")


def _classify(predictor, inputs: list[Path], args, report: _Report) -> None:
    names, images = [], []
    for path in inputs:
        try:
            if input_kind(path) == "volume":
                raise MedicalImageError(
                    f"{path} is a volume; classification models take 2-D images (a DICOM/PNG file, or one frame "
                    "with --frame)."
                )
            images.append(_load_image(path, args, predictor)[0].pixels)
            names.append(str(path))
        except (ValueError, OSError) as error:
            report.failed(path, error)
    if not images:
        return
    probabilities = predictor.classify_images(images, batch_size=args.batch_size)
    csv_path, json_path = write_classification_tables(
        names, probabilities, predictor.label_names, args.output, multi_label=predictor.multi_label, model=args.model
    )
    for name, scores in zip(names, probabilities):
        report.ok(f"{name}: {dict(zip(predictor.label_names, (round(float(p), 4) for p in scores)))}")
    if not report.quiet:
        print(f"-> {csv_path}, {json_path}")
