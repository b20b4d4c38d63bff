"""TUCC: the Stanford AIMI Thyroid Ultrasound Cine-clip dataset, nodule segmentation.

Published layout (Stanford AIMI, research-use agreement; 167 patients, 192 biopsy-confirmed nodules):
    dataset.hdf5    datasets `image` (N, H, W) uint8 frames, `mask` (N, H, W) uint8 with 0 / 255 nodule,
                    `annot_id` (N,) byte strings naming the annotated nodule clip (e.g. b"12_"),
                    `frame_num` (N,) byte strings, the frame's number in its cine clip
    metadata.csv    one row per `annot_id`: age, sex, location, size_x/y/z, ti-rads_* descriptors,
                    `histopath_diagnosis` (0 benign, 1 malignant)
`SOURCE_DIR` is the folder holding both files (or a folder above it).

Rows: one per frame (`frame_step` > 1 keeps every k-th frame of each clip; neighbouring cine frames are nearly
identical). Frames are stored as published (8-bit grey, no re-windowing); masks become 0 background / 1 nodule.
`case_id` is the patient, read as the part of `annot_id` before its first underscore ("12_" -> "12"), so every
nodule of one patient stays in one fold; `annot_id` (the nodule clip), `frame_num`, `histopath_diagnosis`
(benign, malignant, -1 when missing) and `tirads_level` are extra columns. Folds are stratified on the diagnosis.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...vocabulary import SEGMENTATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import binarize_mask, encode_mask, encode_uint8_image

DIAGNOSES = ["benign", "malignant"]
_DIAGNOSIS_VALUES = {"0": 0, "1": 1, "benign": 0, "malignant": 1, "0.0": 0, "1.0": 1}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def patient_of(annot_id: str) -> str:
    """The patient of a nodule clip id: "12_" -> "12", "12_2" -> "12"."""
    return annot_id.strip().split("_", 1)[0] or annot_id.strip()


@dataclass
class TUCCConverter(SourceConverter):
    frame_step: int = 1

    name = "tucc"
    task = SEGMENTATION
    homepage = "https://stanfordaimi.azurewebsites.net/datasets/a72f2b02-7b53-4c5d-963c-d7253220bfd5"
    license = "Stanford University School of Medicine research-use agreement"
    citation = "Stanford AIMI. Thyroid Ultrasound Cine-clip dataset. doi:10.71718/7m5n-rh16."

    def __post_init__(self):
        if int(self.frame_step) < 1:
            raise ValueError(f"tucc: frame_step must be >= 1, got {self.frame_step!r}.")

    def label_names(self, source_dir: Path) -> list[str]:
        return ["background", "nodule"]

    def extra_columns(self) -> dict:
        from datasets import ClassLabel, Value

        return {
            "annot_id": Value("string"),
            "frame_num": Value("int32"),
            "histopath_diagnosis": ClassLabel(names=DIAGNOSES),
            "tirads_level": Value("int32"),
        }

    def list_cases(self, source_dir: Path) -> list[Case]:
        import h5py

        hdf5_path = next(iter(sorted(source_dir.rglob("dataset.hdf5"))), None)
        if hdf5_path is None:
            raise FileNotFoundError(f"tucc: no dataset.hdf5 under {source_dir}.")
        metadata_path = hdf5_path.with_name("metadata.csv")
        metadata = {}
        if metadata_path.is_file():
            with open(metadata_path, newline="") as handle:
                for row in csv.DictReader(handle):
                    metadata[row["annot_id"].strip()] = row
        else:
            self.note(f"no metadata.csv beside {hdf5_path.name}: diagnosis and TI-RADS left empty")
        with h5py.File(hdf5_path, "r") as handle:
            for key in ("image", "mask", "annot_id", "frame_num"):
                if key not in handle:
                    raise ValueError(f"tucc: {hdf5_path} has no dataset {key!r} (has {sorted(handle.keys())}).")
            annot_ids = [_text(value).strip() for value in handle["annot_id"][:]]
            frame_numbers = [int(_text(value).strip()) for value in handle["frame_num"][:]]
            if not len(annot_ids) == len(frame_numbers) == handle["image"].shape[0] == handle["mask"].shape[0]:
                raise ValueError(f"tucc: {hdf5_path} datasets image/mask/annot_id/frame_num differ in length.")
        frames_of: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, (annot_id, frame_number) in enumerate(zip(annot_ids, frame_numbers)):
            frames_of[annot_id].append((frame_number, index))
        cases = []
        for annot_id, frames in sorted(frames_of.items()):
            frames = sorted(frames)[:: int(self.frame_step)]
            row = metadata.get(annot_id, {})
            diagnosis = _DIAGNOSIS_VALUES.get(str(row.get("histopath_diagnosis", "")).strip().lower(), -1)
            try:
                tirads = int(float(row.get("ti-rads_level", "")))
            except ValueError:
                tirads = -1
            cases.append(
                Case(
                    patient_id=patient_of(annot_id),
                    stratum=diagnosis if diagnosis >= 0 else None,
                    files={"hdf5": relative_to_source(hdf5_path, source_dir)},
                    info={"annot_id": annot_id, "frames": frames, "diagnosis": diagnosis, "tirads": tirads},
                )
            )
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        import h5py

        with h5py.File(source_dir / case.files["hdf5"], "r") as handle:
            images, masks = handle["image"], handle["mask"]
            for frame_number, index in case.info["frames"]:
                mask = binarize_mask(masks[index], source=f"{case.files['hdf5']}[mask][{index}]")
                yield {
                    "image": encode_uint8_image(images[index]),
                    "mask": encode_mask(mask, n_labels=2),
                    "slice_index": frame_number,
                    "source_file": f"{case.files['hdf5']}#{index}",
                    "annot_id": case.info["annot_id"],
                    "frame_num": frame_number,
                    "histopath_diagnosis": case.info["diagnosis"],
                    "tirads_level": case.info["tirads"],
                }
