"""Predictions and references read from files, for `vis-mae evaluate`: pairing by stem, label maps, tables.

Pairing: a file's case name is its name without the image suffix (`.png`, `.nii.gz`, ...: the stem `vis-mae predict`
writes its outputs under) and without the `_mask` that `vis-mae predict` appends, so `scan_mask.png` pairs with
`scan.png` or `scan_mask.png`, and `case_01_mask.nii.gz` with `case_01.nii.gz`. Every prediction needs a reference and
every reference a prediction: an unpaired file is an error naming it (to score a subset, pass folders holding only
that subset). Two files of one folder with the same case name are an error naming both.

Which files of a folder are read: label maps, i.e. PNG, TIFF, BMP and NIfTI files. Hidden files are left out;
`vis-mae predict`'s pictures and probabilities (`*_overlay*.png`, `*_probabilities.*`), files of other kinds
(`labels.json`, `.csv`, `.txt`, ...) and sub-folders are left out and listed in the result as not read. JPEG files are refused: lossy compression
changes label values along every edge.

Label maps hold class indices 0..K-1, K being the number of declared labels (`labels.json` as `vis-mae predict`
writes it, or names given in class order); a reference may also hold `ignore_index` (pixels left out of every
count), if one is given. Any other value is an error naming the file, the values and the declared labels.
- 2-D files: one channel of integers (grey or palette PNG, as `vis-mae predict` writes `<name>_mask.png`); colour
  images are refused (a colour-coded mask is not a label map). Prediction and reference must have the same size.
- NIfTI volumes: read with `medical.load_medical_volume` into canonical RAS orientation, so prediction and reference
  may store their voxels in different orders; they must lie on the same voxel grid: the same RAS shape and the same
  affine to within `AFFINE_TOLERANCE_MM`. Values must be whole numbers.
A prediction and its reference must be of one kind (both 2-D or both NIfTI), and so must all pairs of one evaluation.

Classification tables:
- predictions: `predictions.csv` as `vis-mae predict` writes it: columns `file`, `label`, then `prob_<class>` for
  every class, in class order. Whether the model is multi-label is read from `predictions.json` beside it
  (`problem_type`), else from the caller.
- references: a CSV (or `.tsv`) with a `file` column (or `path`, `image`) whose entries pair with the predictions'
  by case name, and a `label` column (or `labels`) holding a class name or index; for a multi-label model, the names
  of every present class joined by ";" (empty for none).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..inference.inputs import output_stem
from ..inference.outputs import (
    LABELS_FILE,
    MASK_SUFFIX,
    OVERLAY_SUFFIX,
    PREDICTIONS_JSON,
    PROBABILITIES_SUFFIX,
    PROBABILITY_COLUMN_PREFIX,
)
from ..medical import MedicalVolume, load_medical_volume
from ..medical.files import NIFTI_SUFFIXES
from ..medical.limits import check_declared_size
from ._arrays import class_names, describe_values

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
LOSSY_SUFFIXES = (".jpg", ".jpeg")
AFFINE_TOLERANCE_MM = 1e-3
LABEL_TOLERANCE = 1e-3
IMAGE, VOLUME = "image", "volume"
FILE_COLUMNS = ("file", "path", "image")
LABEL_COLUMNS = ("label", "labels")
MULTI_LABEL_SEPARATOR = ";"


class EvaluationInputError(ValueError):
    """Predictions or references that cannot be scored as given; the message names the file and what is wrong."""


@dataclass(frozen=True)
class CasePair:
    """One case: its name and the prediction and reference files that hold it."""

    case: str
    prediction: Path
    reference: Path

    @property
    def kind(self) -> str:
        return label_map_kind(self.prediction)


def label_map_kind(path: Path) -> str:
    """`VOLUME` for NIfTI files, `IMAGE` for 2-D label map files."""
    return VOLUME if path.name.lower().endswith(NIFTI_SUFFIXES) else IMAGE


def case_name(path: str | Path) -> str:
    """The name a file pairs by (see the module docstring)."""
    stem = output_stem(Path(path).name)
    return stem[: -len(MASK_SUFFIX)] if stem.endswith(MASK_SUFFIX) and len(stem) > len(MASK_SUFFIX) else stem


def _is_prediction_extra(name: str) -> bool:
    """A picture or probability file `vis-mae predict` writes beside its masks."""
    stem = output_stem(name)
    return OVERLAY_SUFFIX in stem or stem.endswith(PROBABILITIES_SUFFIX)


def label_map_files(folder: Path, role: str) -> tuple[dict[str, Path], list[Path]]:
    """(case name -> label map file, ignored files) of one folder (see the module docstring)."""
    cases: dict[str, Path] = {}
    ignored: list[Path] = []
    for path in sorted(folder.iterdir()):
        name = path.name.lower()
        if name.startswith("."):
            continue
        if path.is_dir():
            ignored.append(path)
            continue
        if name.endswith(LOSSY_SUFFIXES):
            raise EvaluationInputError(
                f"{path}: a JPEG cannot hold a label map (lossy compression changes label values along every edge); "
                f"save {role} masks as PNG, TIFF or NIfTI."
            )
        if not name.endswith(IMAGE_SUFFIXES + NIFTI_SUFFIXES) or _is_prediction_extra(path.name):
            ignored.append(path)
            continue
        case = case_name(path)
        if case in cases:
            raise EvaluationInputError(
                f"{cases[case]} and {path} are both the {role} of case {case!r}: keep one of them in {folder}."
            )
        cases[case] = path
    if not cases:
        raise EvaluationInputError(f"The {role} folder {folder} holds no label map (PNG, TIFF, BMP or NIfTI file).")
    return cases, ignored


def pair_files(predictions: str | Path, references: str | Path) -> tuple[list[CasePair], list[Path]]:
    """The cases of two folders paired by case name (or two files as one case), and the files left out.

    Raises:
        EvaluationInputError: a missing path, a folder given with a file, an unpaired file, two files of one case,
            a prediction and reference of different kinds, or pairs of both kinds.
    """
    predictions, references = Path(predictions), Path(references)
    for path, option in ((predictions, "--predictions"), (references, "--references")):
        if not path.exists():
            raise EvaluationInputError(f"{option} {path} does not exist.")
    if predictions.is_dir() != references.is_dir():
        raise EvaluationInputError(
            f"--predictions {predictions} and --references {references} must both be folders (paired by file name) "
            "or both be files (one case)."
        )
    if predictions.is_file():
        pairs, ignored = [CasePair(case_name(references), predictions, references)], []
    else:
        predicted, ignored_predictions = label_map_files(predictions, "prediction")
        reference, ignored_references = label_map_files(references, "reference")
        _require_all_paired(predicted, reference, predictions, references)
        pairs = [CasePair(case, predicted[case], reference[case]) for case in sorted(predicted)]
        ignored = ignored_predictions + ignored_references
    _require_one_kind(pairs)
    return pairs, ignored


def _require_all_paired(predicted: dict, reference: dict, predictions: Path, references: Path) -> None:
    without_reference = sorted(set(predicted) - set(reference))
    without_prediction = sorted(set(reference) - set(predicted))
    if without_reference:
        raise EvaluationInputError(
            f"{_listing(predicted[case] for case in without_reference)}: no reference in {references} "
            f"(expected a file named {without_reference[0]}.png / .nii.gz or {without_reference[0]}_mask.*)."
        )
    if without_prediction:
        raise EvaluationInputError(
            f"{_listing(reference[case] for case in without_prediction)}: no prediction in {predictions} "
            f"(expected {without_prediction[0]}{MASK_SUFFIX}.png / .nii.gz, as `vis-mae predict` writes it)."
        )


def _require_one_kind(pairs: Sequence[CasePair]) -> None:
    for pair in pairs:
        if label_map_kind(pair.prediction) != label_map_kind(pair.reference):
            raise EvaluationInputError(
                f"{pair.prediction} and {pair.reference} (case {pair.case!r}) are not of one kind: one is a 2-D label "
                "map, the other a NIfTI volume."
            )
    kinds = {pair.kind for pair in pairs}
    if len(kinds) > 1:
        volume = next(pair for pair in pairs if pair.kind == VOLUME)
        image = next(pair for pair in pairs if pair.kind == IMAGE)
        raise EvaluationInputError(
            f"The cases mix 2-D label maps ({image.prediction}) and NIfTI volumes ({volume.prediction}): evaluate "
            "each kind on its own."
        )


def _listing(paths: Iterable[Path], limit: int = 3) -> str:
    paths = [str(path) for path in paths]
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


# ------------------------------------------------------------------------------------------------ labels


def declared_labels(labels: str | Sequence[str] | None, predictions: str | Path) -> list[str]:
    """The class names, in class order: `labels` (a `labels.json` file, comma-separated names or a list of names),
    else the `labels.json` that `vis-mae predict` wrote into the predictions folder.

    Raises:
        EvaluationInputError: no labels anywhere, a file that is not a labels mapping, fewer than 2 classes.
    """
    predictions = Path(predictions)
    if labels is None:
        folder = predictions if predictions.is_dir() else predictions.parent
        if not (folder / LABELS_FILE).is_file():
            raise EvaluationInputError(
                f"No labels declared and no {LABELS_FILE} in {folder}: pass --labels with the {LABELS_FILE} "
                "`vis-mae predict` wrote, or the class names in order, e.g. --labels background,liver,spleen."
            )
        labels = str(folder / LABELS_FILE)
    if isinstance(labels, str) and labels.lower().endswith(".json"):
        names = _labels_file(Path(labels))
    elif isinstance(labels, str):
        names = [name.strip() for name in labels.split(",")]
    else:
        names = [str(name) for name in labels]
    if len(names) < 2 or not all(names):
        raise EvaluationInputError(
            f"The declared labels {names} must name at least 2 classes (background first), none of them empty."
        )
    if len(set(names)) != len(names):
        raise EvaluationInputError(f"The declared labels {names} name a class twice; names must be unique.")
    return names


def _labels_file(path: Path) -> list[str]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EvaluationInputError(f"{path} is not a readable labels file: {error}") from error
    if not isinstance(mapping, dict) or not mapping:
        raise EvaluationInputError(f'{path} must map class indices to names, e.g. {{"0": "background", "1": "liver"}}.')
    try:
        return class_names(len(mapping), mapping, argument=str(path))
    except ValueError as error:
        raise EvaluationInputError(str(error)) from error


def check_label_values(
    values: np.ndarray, path: Path, label_names: Sequence[str], ignore_index: int | None = None
) -> np.ndarray:
    """`values` as int64 class indices, refused (naming `path`) when any lies outside the declared labels."""
    integral = values if values.dtype.kind in "iub" else np.rint(values)
    # float storage (a NIfTI with scaling, a float TIFF) may hold a class index up to rounding, not a fraction
    if values.dtype.kind == "f" and not np.allclose(integral, values, rtol=0, atol=LABEL_TOLERANCE):
        raise EvaluationInputError(f"{path} holds fractional values; a label map holds whole class indices.")
    integral = integral.astype(np.int64)
    allowed = (integral >= 0) & (integral < len(label_names))
    if ignore_index is not None:
        allowed |= integral == ignore_index
    if not allowed.all():
        declared = ", ".join(f"{index} {name}" for index, name in enumerate(label_names))
        hint = (
            " A binary mask stored as 0/255 must be mapped to 0/1 first; if 255 marks unlabelled pixels, pass "
            "--ignore-index 255."
            if ignore_index is None and 255 in integral[~allowed]
            else ""
        )
        raise EvaluationInputError(
            f"{path} holds label values {describe_values(integral[~allowed])} outside the declared labels "
            f"({declared}{'' if ignore_index is None else f'; ignored: {ignore_index}'}).{hint}"
        )
    return integral


# ------------------------------------------------------------------------------------------------ label maps


def read_label_image(path: Path) -> np.ndarray:
    """A 2-D label map file as its stored integers (H, W): one channel (grey or palette), checked against
    `medical.limits` before decoding."""
    try:
        image = Image.open(path)
    except Exception as error:  # Pillow raises OSError, SyntaxError, struct.error on damaged or foreign files
        raise EvaluationInputError(f"{path} is not a readable label map image: {error}") from error
    with image:
        check_declared_size(path, image.size[::-1], f"an image of {image.size[0]} x {image.size[1]} pixels")
        if image.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L", "F"):
            raise EvaluationInputError(
                f"{path} is an image with several channels (mode {image.mode}); a label map holds one channel of "
                "class indices (a grey or palette PNG, as `vis-mae predict` writes <name>_mask.png)."
            )
        try:
            values = np.asarray(image)
        except Exception as error:  # truncated pixel data
            raise EvaluationInputError(f"{path} is not a readable label map image: {error}") from error
    if values.ndim != 2 or values.size == 0:
        raise EvaluationInputError(f"{path} holds an image of shape {values.shape}; a label map is (height, width).")
    return values


def read_image_pair(pair: CasePair, label_names: Sequence[str], ignore_index: int | None):
    """(prediction, reference) int64 (H, W) maps of a 2-D case, each checked, of one size."""
    prediction = check_label_values(read_label_image(pair.prediction), pair.prediction, label_names)
    reference = check_label_values(read_label_image(pair.reference), pair.reference, label_names, ignore_index)
    if prediction.shape != reference.shape:
        raise EvaluationInputError(
            f"{pair.prediction} is {prediction.shape[1]} x {prediction.shape[0]} pixels but its reference "
            f"{pair.reference} is {reference.shape[1]} x {reference.shape[0]}: a prediction must have its "
            "reference's size."
        )
    return prediction, reference


def read_volume_pair(pair: CasePair, label_names: Sequence[str], ignore_index: int | None):
    """(prediction, reference) int64 (X, Y, Z) RAS maps of a NIfTI case, each checked, on one voxel grid."""
    prediction_volume = load_medical_volume(pair.prediction)
    reference_volume = load_medical_volume(pair.reference)
    check_same_grid(prediction_volume, reference_volume)
    prediction = check_label_values(prediction_volume.values, pair.prediction, label_names)
    reference = check_label_values(reference_volume.values, pair.reference, label_names, ignore_index)
    return prediction, reference


def check_same_grid(prediction: MedicalVolume, reference: MedicalVolume) -> None:
    """Refuse two volumes whose voxels are not the same points in space (RAS shape and affine)."""
    if prediction.values.shape != reference.values.shape:
        raise EvaluationInputError(
            f"{prediction.path} has shape {prediction.values.shape} but its reference {reference.path} has "
            f"{reference.values.shape} (both in RAS order): a prediction must lie on its reference's voxel grid."
        )
    if not np.allclose(prediction.affine, reference.affine, rtol=0, atol=AFFINE_TOLERANCE_MM):
        difference = float(np.abs(prediction.affine - reference.affine).max())
        raise EvaluationInputError(
            f"{prediction.path} and its reference {reference.path} have the same shape but different affines "
            f"(up to {difference:.4g} mm apart; {prediction.affine[:3].round(3).tolist()} against "
            f"{reference.affine[:3].round(3).tolist()}): their voxels are not the same points in space. Predict on "
            "the reference's own image, or resample one onto the other first."
        )


# ------------------------------------------------------------------------------------------------ classification


@dataclass
class PredictionTable:
    """`predictions.csv` read back: case names, class names and probabilities (N, K) in row order."""

    path: Path
    cases: list[str]
    label_names: list[str]
    probabilities: np.ndarray
    multi_label: bool


def _read_rows(path: Path, what: str) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise EvaluationInputError(f"The {what} {path} does not exist (or is not a file).")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle, delimiter=delimiter) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise EvaluationInputError(f"The {what} {path} is not a readable CSV file: {error}") from error
    if len(rows) < 2:
        raise EvaluationInputError(f"The {what} {path} has no data rows under its header.")
    header = [cell.strip() for cell in rows[0]]
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise EvaluationInputError(f"{path} line {number} has {len(row)} columns but the header has {len(header)}.")
    return header, rows[1:]


def read_prediction_table(path: str | Path, multi_label: bool | None = None) -> PredictionTable:
    """`predictions.csv` (see the module docstring); `multi_label` None reads it from `predictions.json` beside."""
    path = Path(path)
    header, rows = _read_rows(path, "predictions table")
    probability_columns = header[2:]
    if header[:2] != ["file", "label"] or len(probability_columns) < 2 or not all(
        column.startswith(PROBABILITY_COLUMN_PREFIX) for column in probability_columns
    ):
        raise EvaluationInputError(
            f"{path} has the columns {header}; expected file, label, then {PROBABILITY_COLUMN_PREFIX}<class> for "
            "every class (at least 2), as `vis-mae predict` writes predictions.csv."
        )
    names = [column[len(PROBABILITY_COLUMN_PREFIX) :] for column in probability_columns]
    probabilities = np.empty((len(rows), len(names)), dtype=np.float64)
    for index, row in enumerate(rows):
        try:
            probabilities[index] = [float(cell) for cell in row[2:]]
        except ValueError:
            raise EvaluationInputError(f"{path} line {index + 2} ({row[0]}): probabilities {row[2:]} are not numbers.")
    if not np.isfinite(probabilities).all() or probabilities.min() < 0 or probabilities.max() > 1:
        raise EvaluationInputError(f"{path}: every probability must be a number in [0, 1].")
    cases = [case_name(row[0]) for row in rows]
    _require_unique(cases, [row[0] for row in rows], path)
    if multi_label is None:
        multi_label = _problem_type_beside(path) == "multi_label_classification"
    return PredictionTable(path, cases, names, probabilities, multi_label)


def _problem_type_beside(path: Path) -> str | None:
    beside = path.with_name(PREDICTIONS_JSON)
    if not beside.is_file():
        return None
    try:
        return json.loads(beside.read_text(encoding="utf-8")).get("problem_type")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise EvaluationInputError(f"{beside} (beside {path.name}) is not readable: {error}") from error


def _require_unique(cases: Sequence[str], files: Sequence[str], path: Path) -> None:
    seen: dict[str, str] = {}
    for case, file in zip(cases, files):
        if case in seen:
            raise EvaluationInputError(f"{path}: {seen[case]} and {file} are both case {case!r}; keep one of them.")
        seen[case] = file


def read_reference_table(path: str | Path, table: PredictionTable) -> np.ndarray:
    """The references of a references CSV in the order of `table`'s rows: (N,) class indices, or (N, K) 0/1 for a
    multi-label table. Unpaired rows on either side and unknown classes are errors naming them."""
    path = Path(path)
    header, rows = _read_rows(path, "references table")
    file_column = _column(header, FILE_COLUMNS, path)
    label_column = _column(header, LABEL_COLUMNS, path)
    references: dict[str, object] = {}
    for number, row in enumerate(rows, start=2):
        case = case_name(row[file_column])
        if case in references:
            raise EvaluationInputError(f"{path} line {number}: case {case!r} ({row[file_column]}) is listed twice.")
        references[case] = _reference_value(row[label_column].strip(), table, f"{path} line {number}")
    missing = [case for case in table.cases if case not in references]
    extra = sorted(set(references) - set(table.cases))
    if missing:
        raise EvaluationInputError(f"{path} has no row for the predicted case(s) {_listing(missing)}.")
    if extra:
        raise EvaluationInputError(f"{path} lists case(s) {_listing(extra)} that {table.path} has no prediction for.")
    return np.asarray([references[case] for case in table.cases])


def _column(header: Sequence[str], names: Sequence[str], path: Path) -> int:
    lowered = [cell.lower() for cell in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise EvaluationInputError(f"{path} has the columns {list(header)}; expected one named {' or '.join(names)}.")


def _reference_value(text: str, table: PredictionTable, where: str):
    names = table.label_names
    if table.multi_label:
        present = {_class_index(item.strip(), names, where) for item in text.split(MULTI_LABEL_SEPARATOR) if item.strip()}
        return [int(index in present) for index in range(len(names))]
    return _class_index(text, names, where)


def _class_index(text: str, names: Sequence[str], where: str) -> int:
    if text in names:
        return names.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    hint = f" (several classes joined by {MULTI_LABEL_SEPARATOR!r} are for a multi-label model)" if (
        MULTI_LABEL_SEPARATOR in text
    ) else ""
    raise EvaluationInputError(
        f"{where}: label {text!r} is not one of the classes {', '.join(names)} (or their indices "
        f"0..{len(names) - 1}){hint}."
    )
