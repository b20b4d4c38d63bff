"""Prostate158: zonal anatomy (and tumour) segmentation in prostate MRI (Adams et al. 2022).

Published layout (Zenodo 6481141, CC BY 4.0): `prostate158_train/train/<ID>/` (139 exams) and
`prostate158_test/test/<ID>/` (19 exams), each with `t2.nii.gz`, `adc.nii.gz`, `dwi.nii.gz`, the T2 anatomy labels
`t2_anatomy_reader1.nii.gz` (1 transition zone, 2 peripheral zone; the test set adds `_reader2`) and, for exams
with cancer, `t2_tumor_reader1.nii.gz` / `adc_tumor_reader1.nii.gz`; `train.csv`, `valid.csv`, `test.csv` list
the exams. `SOURCE_DIR` may be the folder holding `train/` and/or `test/`, or any folder above it.

Rows: every axial T2 slice of each exam (the paper's 3,554 slices are all T2 slices) with the reader-1 anatomy
mask: 0 background, 1 transition zone, 2 peripheral zone; with `include_tumor=True`, T2 tumour voxels become
label 3 (an exam without a tumour file has none). `train/` (train + valid lists) is the cross-validation pool and
`test/` the `test` split. `case_id` is the exam ID (one exam per patient).
Intensity: per-volume [0.5, 99.5] percentile -> [0, 1]; T2 has no physical scale and the endorectal/body coil
gives a few very bright voxels near the coil that would compress min-max scaling.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...medical.orientation import AXIAL_AXIS, display_slice
from ...vocabulary import SEGMENTATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import encode_grey_image, encode_mask
from ..volumes import (
    load_image_and_mask,
    load_label_volume,
    percentile_unit_range,
    select_slices,
)

ANATOMY_LABELS = ["background", "transition zone", "peripheral zone"]
TUMOR_LABEL = "tumor"


@dataclass
class Prostate158Converter(SourceConverter):
    include_tumor: bool = False
    slices: str = "all"
    percentiles: tuple[float, float] = (0.5, 99.5)

    name = "prostate158"
    task = SEGMENTATION
    homepage = "https://zenodo.org/records/6481141"
    license = "CC BY 4.0"
    citation = "Adams LC et al. Prostate158 - an expert-annotated 3T MRI dataset. Comput Biol Med 2022;148:105817."

    def __post_init__(self):
        self.percentiles = tuple(self.percentiles)
        if self.slices not in ("foreground", "all"):
            raise ValueError(f"prostate158: slices must be 'foreground' or 'all', got {self.slices!r}.")

    def label_names(self, source_dir: Path) -> list[str]:
        return ANATOMY_LABELS + ([TUMOR_LABEL] if self.include_tumor else [])

    def list_cases(self, source_dir: Path) -> list[Case]:
        cases = []
        for t2_path in sorted(source_dir.rglob("t2.nii.gz")):
            exam_dir = t2_path.parent
            split_folder = exam_dir.parent.name
            if split_folder not in ("train", "test"):
                continue
            anatomy = exam_dir / "t2_anatomy_reader1.nii.gz"
            if not anatomy.is_file():
                self.reject(relative_to_source(t2_path, source_dir), "no t2_anatomy_reader1.nii.gz beside it")
                continue
            files = {"image": relative_to_source(t2_path, source_dir), "mask": relative_to_source(anatomy, source_dir)}
            tumor = exam_dir / "t2_tumor_reader1.nii.gz"
            if self.include_tumor and tumor.is_file():
                files["tumor"] = relative_to_source(tumor, source_dir)
            cases.append(Case(patient_id=exam_dir.name, split=split_folder, files=files))
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        image, mask = load_image_and_mask(source_dir / case.files["image"], source_dir / case.files["mask"])
        if mask.max() > 2 or mask.min() < 0:
            values = np.unique(mask).tolist()
            raise ValueError(f"prostate158: {case.files['mask']} holds values {values}; expected 0, 1, 2.")
        if "tumor" in case.files:
            tumor = load_label_volume(source_dir / case.files["tumor"], image)
            mask = np.where(tumor > 0, 3, mask).astype(mask.dtype)
        scaled = percentile_unit_range(image.values, *self.percentiles)
        n_labels = len(self.label_names(source_dir))
        for index in select_slices(mask, AXIAL_AXIS, mask.shape[AXIAL_AXIS], self.slices, name=case.files["mask"]):
            yield {
                "image": encode_grey_image(display_slice(scaled, AXIAL_AXIS, index)),
                "mask": encode_mask(
                    display_slice(mask, AXIAL_AXIS, index), n_labels=n_labels, name=case.files["mask"]
                ),
                "slice_index": index,
                "source_file": case.files["image"],
            }
