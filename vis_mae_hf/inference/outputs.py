"""Writing predictions: label PNGs, overlays, NIfTI masks in the input's own voxel layout, classification tables.

File conventions (what `vis-mae predict` writes into `--output`):

- `<name>_mask.png`: 8-bit grey PNG at the input's size; each pixel value is the class index (0 background), so it
  looks almost black in a viewer: read it as numbers. `labels.json` maps the indices to the model's label names.
- `<name>_overlay.png`: `overlay.overlay_image`, for a person to look at.
- `<name>_mask.nii.gz`: uint8 label volume with the input's shape and affine. NIfTI inputs get their mask in their
  own voxel order (not the canonical RAS order the model worked in), so any viewer or script that reads the input
  reads the mask the same way; DICOM series get the volume `load_medical_volume` builds (RAS) and its affine.
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

from ..medical import MedicalImageError, save_mask_like
from .overlay import overlay_image

MULTI_LABEL_THRESHOLD = 0.5


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
    path = Path(directory) / "labels.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(index): name for index, name in enumerate(label_names)}, indent=2) + "\n")
    return path


# ------------------------------------------------------------------------------------------------ volumes


def _input_grid(input_path: Path, affine_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(orientation transform canonical -> input, input affine, input spatial shape) of a volume input.

    A DICOM series has no voxel layout of its own beyond the one `load_medical_volume` builds: identity.
    """
    if input_path.is_dir():
        identity = nib.orientations.axcodes2ornt(("R", "A", "S"))
        return identity, affine_ras, ()
    header_image = nib.load(input_path)  # header only: the data were read by load_medical_volume
    shape = tuple(header_image.shape)
    while len(shape) > 3 and shape[-1] == 1:  # (X, Y, Z, 1): load_medical_volume dropped the trailing axis too
        shape = shape[:-1]
    input_orientation = nib.orientations.io_orientation(header_image.affine)
    # load_medical_volume reoriented with as_closest_canonical = apply_orientation(data, input_orientation);
    # going from RAS back to the input's orientation is the transform RAS -> input_orientation.
    to_input = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")), input_orientation)
    return to_input, np.asarray(header_image.affine, dtype=np.float64), shape


def volume_in_input_layout(
    array_ras: np.ndarray, affine_ras: np.ndarray, input_path: str | Path
) -> tuple[np.ndarray, np.ndarray]:
    """A canonical-RAS array (X, Y, Z) back in the voxel order of the volume input it was predicted from.

    Returns:
        `(array, affine)`: the input's shape (a 2-D NIfTI gives 2-D) and the input's own affine, so the result
        overlays the input in every viewer and in plain array indexing.
    """
    input_path = Path(input_path)
    to_input, affine, shape = _input_grid(input_path, affine_ras)
    array = nib.orientations.apply_orientation(np.asarray(array_ras), to_input)
    if shape:
        if int(np.prod(array.shape)) != int(np.prod(shape)):
            raise MedicalImageError(f"A prediction of shape {array_ras.shape} does not fit {input_path} ({shape}).")
        array = array.reshape(shape)
    # The round trip must land on the input's own grid: same affine up to float32 header precision.
    back = nib.orientations.inv_ornt_aff(to_input, array_ras.shape)
    if not np.allclose(affine_ras @ back, affine, atol=1e-3):
        raise MedicalImageError(f"Could not map the prediction back onto the voxel grid of {input_path}.")
    return np.ascontiguousarray(array), affine


def write_volume_mask(label_map_ras: np.ndarray, affine_ras: np.ndarray, input_path, path: str | Path) -> Path:
    """`<name>_mask.nii.gz` (uint8) with the input's shape and affine (see `volume_in_input_layout`)."""
    mask, affine = volume_in_input_layout(label_map_ras, affine_ras, input_path)
    return save_mask_like(mask, affine, path)


def write_volume_probabilities(
    probabilities_ras: np.ndarray, affine_ras: np.ndarray, input_path, path: str | Path
) -> Path:
    """(num_labels, X, Y, Z) RAS probabilities -> float32 NIfTI (input X, Y, Z, num_labels) on the input's grid."""
    per_class = [volume_in_input_layout(p, affine_ras, input_path) for p in probabilities_ras]
    affine = per_class[0][1]
    data = np.stack([p for p, _ in per_class], axis=-1).astype(np.float32)
    if data.ndim == 3:  # a 2-D input: keep the classes on the fourth NIfTI axis
        data = data[:, :, None, :]
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
    csv_path = directory / "predictions.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", *(f"prob_{name}" for name in label_names)])
        for row in rows:
            writer.writerow([row["file"], row["label"], *(f"{p:.6f}" for p in row["probabilities"].values())])
    json_path = directory / "predictions.json"
    summary = {
        "model": model,
        "problem_type": "multi_label_classification" if multi_label else "single_label_classification",
        "labels": list(label_names),
        "predictions": rows,
    }
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    return csv_path, json_path
