"""Writing predictions: label PNGs, overlays, NIfTI masks in the input's own voxel layout, classification tables.

File conventions (what `vis-mae predict` writes into `--output`):

- `<name>_mask.png`: 8-bit grey PNG at the input's size; each pixel value is the class index (0 background), so it
  looks almost black in a viewer: read it as numbers. `labels.json` maps the indices to the model's label names.
- `<name>_overlay.png`, for a person to look at (`overlay`): a 2-D input's overlay, enlarged by a whole factor when
  small; for a volume, a mosaic of the axial slices where the prediction holds any class other than background (at
  most 16, spread evenly over them; the middle slice when there is none). Each tile is captioned "slice N": N is the
  slice's index, from 0, along the input file's own axis that runs between the patient's feet and head (k in
  (i, j, k) for an axially stored NIfTI file; the slice order of a DICOM series, from the feet), so the same slice
  is found by that index in `<name>_mask.nii.gz` and in the input.
- `<name>_mask.nii.gz`: uint8 label volume with the input's shape and affine. NIfTI inputs get their mask in their
  own voxel order (not the canonical RAS order the model worked in), so any viewer or script that reads the input
  reads the mask the same way; DICOM series get the RAS volume `load_medical_volume` builds and its affine. The
  input's grid comes from the `MedicalVolume` it was loaded as: no file is opened again.
- `<name>_probabilities.nii.gz` (volumes) / `<name>_probabilities.npy` (2-D): float32 class probabilities, the
  class on the last NIfTI axis (X, Y, Z, num_labels), on the first numpy axis (num_labels, H, W).
- `predictions.csv` / `predictions.json`: classification, one row per input.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

from ..medical import MedicalVolume, save_mask_like
from ..medical.orientation import AXIAL_AXIS, display_slice
from .overlay import mosaic_slices, overlay_image, overlay_mosaic

MULTI_LABEL_THRESHOLD = 0.5
# The names `vis-mae predict` writes under (`<stem><suffix>`), which `vis-mae evaluate` reads back.
MASK_SUFFIX = "_mask"
OVERLAY_SUFFIX = "_overlay"
PROBABILITIES_SUFFIX = "_probabilities"
LABELS_FILE = "labels.json"
PREDICTIONS_CSV = "predictions.csv"
PREDICTIONS_JSON = "predictions.json"
PROBABILITY_COLUMN_PREFIX = "prob_"


# ------------------------------------------------------------------------------------------------ 2-D


def write_label_png(label_map: np.ndarray, path: str | Path) -> Path:
    """Class indices (H, W) as an 8-bit grey PNG whose pixel values are the indices."""
    label_map = np.asarray(label_map)
    if label_map.ndim != 2 or label_map.size == 0:
        raise ValueError(f"A label map PNG needs a non-empty (H, W) array, got shape {label_map.shape} for {path}.")
    if label_map.min() < 0 or label_map.max() > 255:
        raise ValueError(
            f"A uint8 label PNG holds classes 0..255; the map for {path} spans {label_map.min()}..{label_map.max()}."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label_map.astype(np.uint8)).save(path)
    return path


def write_overlay_png(image: np.ndarray, label_map: np.ndarray, label_names: Sequence[str], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    overlay_image(image, label_map, label_names).save(path)
    return path


def write_probability_array(probabilities: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(probabilities, dtype=np.float32))
    return path


def write_labels_json(label_names: Sequence[str], directory: str | Path) -> Path:
    """`labels.json`: {"0": "background", ...}, the key to the values of the mask PNGs and NIfTIs."""
    path = Path(directory) / LABELS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(index): name for index, name in enumerate(label_names)}, indent=2) + "\n")
    return path


# ------------------------------------------------------------------------------------------------ volumes


def write_volume_mask(label_map_ras: np.ndarray, volume: MedicalVolume, path: str | Path) -> Path:
    """`<name>_mask.nii.gz` (uint8) with the input's shape, voxel order and affine (`to_source_layout`)."""
    return save_mask_like(volume.to_source_layout(label_map_ras), volume.source_affine, path)


def source_axial_index(volume: MedicalVolume, index: int) -> int:
    """The index in the input file's own voxel order of axial slice `index` of the RAS volume: along the file's axis
    that runs inferior-superior, counted from the file's first slice (reversed when the file stores it head first)."""
    code = next(code for code in volume.source_axcodes if code in ("S", "I"))
    return index if code == "S" else volume.values.shape[AXIAL_AXIS] - 1 - index


def write_volume_overlay(
    unit_volume: np.ndarray, label_map_ras: np.ndarray, volume: MedicalVolume, label_names: Sequence[str], path
) -> Path:
    """`<name>_overlay.png` of a volume: the mosaic of `overlay.mosaic_slices`, each tile captioned with
    `source_axial_index` (see the module docstring).

    Args:
        unit_volume: the RAS volume in [0, 1] as the model saw it.
        label_map_ras: the predicted (X, Y, Z) RAS label map.
        volume: the loaded input (its own voxel order gives the slice numbers).
    """
    indices = mosaic_slices(label_map_ras, AXIAL_AXIS)
    tiles = [
        (
            source_axial_index(volume, index),
            display_slice(unit_volume, AXIAL_AXIS, index),
            display_slice(label_map_ras, AXIAL_AXIS, index),
        )
        for index in indices
    ]
    tiles.sort(key=lambda tile: tile[0])
    captioned = [(image, labels, f"slice {number}") for number, image, labels in tiles]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    overlay_mosaic(captioned, label_names, label_map_ras).save(path)
    return path


def write_volume_probabilities(probabilities_ras: np.ndarray, volume: MedicalVolume, path: str | Path) -> Path:
    """(num_labels, X, Y, Z) RAS probabilities -> float32 NIfTI (input X, Y, Z, num_labels) on the input's grid."""
    data = np.stack([volume.to_source_layout(p) for p in probabilities_ras], axis=-1).astype(np.float32)
    if data.ndim == 3:  # a 2-D input: keep the classes on the fourth NIfTI axis
        data = data[:, :, None, :]
    affine = volume.source_affine
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)
    return path


# ------------------------------------------------------------------------------------------------ classification


def predicted_label(probabilities: np.ndarray, label_names: Sequence[str], multi_label: bool) -> str:
    """The argmax class name; for multi-label models every name with probability >= 0.5, joined by ";"."""
    if multi_label:
        return ";".join(name for name, p in zip(label_names, probabilities) if p >= MULTI_LABEL_THRESHOLD)
    return label_names[int(np.argmax(probabilities))]


def write_classification_tables(
    files: Sequence[str],
    probabilities: np.ndarray,
    label_names: Sequence[str],
    directory: str | Path,
    *,
    multi_label: bool = False,
    model: str | None = None,
) -> tuple[Path, Path]:
    """`predictions.csv` (columns file, label, prob_<name> per class) and `predictions.json`, one entry per file.

    `label` is the most probable class, or for multi-label models every class with probability >= 0.5 joined by ";"
    (empty when none).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(files), len(label_names)):
        raise ValueError(
            f"Expected probabilities of shape ({len(files)}, {len(label_names)}), got {probabilities.shape}."
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "file": str(file),
            "label": predicted_label(scores, label_names, multi_label),
            "probabilities": {name: float(p) for name, p in zip(label_names, scores)},
        }
        for file, scores in zip(files, probabilities)
    ]
    csv_path = directory / PREDICTIONS_CSV
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", *(f"{PROBABILITY_COLUMN_PREFIX}{name}" for name in label_names)])
        for row in rows:
            writer.writerow([row["file"], row["label"], *(f"{p:.6f}" for p in row["probabilities"].values())])
    json_path = directory / PREDICTIONS_JSON
    summary = {
        "model": model,
        "problem_type": "multi_label_classification" if multi_label else "single_label_classification",
        "labels": list(label_names),
        "predictions": rows,
    }
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    return csv_path, json_path
