"""MRNet: knee MRI exams labelled for ACL tear (and abnormality, meniscal tear) (Bien et al. 2018).

Published layout (Stanford ML Group, research-use agreement), `MRNet-v1.0/`:
    train/{axial,coronal,sagittal}/0000.npy ... 1129.npy    uint8 arrays (slices, 256, 256), one per exam and plane
    valid/{axial,coronal,sagittal}/1130.npy ... 1249.npy
    train-acl.csv, train-abnormal.csv, train-meniscus.csv, valid-*.csv   no header, lines "0000,0"
`SOURCE_DIR` may be `MRNet-v1.0` or a folder above it.

Rows: one per slice of each plane of each exam, with the exam's label (`finding="acl"` by default: no_tear / tear;
`"meniscus"` and `"abnormal"` read the other CSVs). The paper scores exams, not slices: `exam_id` and `plane` let
the slice predictions be pooled per exam (e.g. mean over the slices of one plane). `case_id` is the exam id: the
release has no patient ids, so each exam counts as one patient. Pixels are stored unchanged (already 8-bit,
normalised per series by the publishers). `train` is the cross-validation pool (folds stratified on the label),
`valid` becomes the `validation` split (the public stand-in for the hidden test set).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...vocabulary import CLASSIFICATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import encode_uint8_image

PLANES = ("axial", "coronal", "sagittal")
FINDING_LABELS = {
    "acl": ["no_tear", "tear"],
    "meniscus": ["no_tear", "tear"],
    "abnormal": ["normal", "abnormal"],
}
_PUBLISHED_SPLITS = {"train": "train", "valid": "validation"}


def _find_root(source_dir: Path) -> Path:
    for candidate in [source_dir, *sorted(path.parent for path in source_dir.rglob("train-acl.csv"))]:
        label_files = ("train-acl.csv", "train-abnormal.csv")
        if (candidate / "train").is_dir() and any((candidate / name).is_file() for name in label_files):
            return candidate
    raise FileNotFoundError(f"mrnet: no MRNet tree (train/, train-acl.csv) under {source_dir}.")


@dataclass
class MRNetConverter(SourceConverter):
    finding: str = "acl"
    planes: tuple[str, ...] = PLANES

    name = "mrnet"
    task = CLASSIFICATION
    homepage = "https://stanfordmlgroup.github.io/competitions/mrnet/"
    license = "Stanford research-use agreement"
    citation = "Bien N, Rajpurkar P, et al. PLoS Medicine 2018;15(11):e1002699."

    def __post_init__(self):
        if self.finding not in FINDING_LABELS:
            raise ValueError(f"mrnet: finding must be one of {sorted(FINDING_LABELS)}, got {self.finding!r}.")
        self.planes = tuple(self.planes)
        unknown = sorted(set(self.planes) - set(PLANES))
        if unknown or not self.planes:
            raise ValueError(f"mrnet: planes must be a non-empty subset of {PLANES}, got {self.planes!r}.")

    def label_names(self, source_dir: Path) -> list[str]:
        return list(FINDING_LABELS[self.finding])

    def extra_columns(self) -> dict:
        from datasets import ClassLabel, Value

        return {"exam_id": Value("string"), "plane": ClassLabel(names=list(PLANES))}

    def list_cases(self, source_dir: Path) -> list[Case]:
        root = _find_root(source_dir)
        cases = []
        for published, split in _PUBLISHED_SPLITS.items():
            labels_path = root / f"{published}-{self.finding}.csv"
            if not labels_path.is_file():
                if published == "train":
                    raise FileNotFoundError(f"mrnet: {labels_path} is missing.")
                continue
            with open(labels_path, newline="") as handle:
                rows = [row for row in csv.reader(handle) if row]
            for exam_text, label_text in rows:
                exam = f"{int(exam_text):04d}"
                label = int(label_text)
                if label not in (0, 1):
                    raise ValueError(f"mrnet: {labels_path} gives exam {exam} label {label_text!r}; expected 0 or 1.")
                files = {plane: root / published / plane / f"{exam}.npy" for plane in self.planes}
                missing = [path for path in files.values() if not path.is_file()]
                for path in missing:
                    self.reject(
                        relative_to_source(path, source_dir), f"exam {exam} of {labels_path.name} has no such file"
                    )
                if missing:
                    continue
                files = {plane: relative_to_source(path, source_dir) for plane, path in files.items()}
                cases.append(Case(patient_id=exam, split=split, stratum=label, files=files, info={"label": label}))
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        for plane, relative in case.files.items():
            volume = np.load(source_dir / relative)
            if volume.ndim != 3 or volume.dtype != np.uint8:
                raise ValueError(
                    f"mrnet: {relative} should be uint8 (slices, H, W), got {volume.dtype} {volume.shape}."
                )
            for slice_index, pixels in enumerate(volume):
                yield {
                    "image": encode_uint8_image(pixels),
                    "label": case.info["label"],
                    "slice_index": slice_index,
                    "source_file": relative,
                    "exam_id": case.patient_id,
                    "plane": PLANES.index(plane),
                }
