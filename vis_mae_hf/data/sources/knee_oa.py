"""Knee osteoarthritis severity: Kellgren-Lawrence grades of knee-joint radiographs (Chen et al. 2019).

Published layout (Mendeley Data 56rmx5bjcr, "Knee Osteoarthritis Severity Grading Dataset", CC BY 4.0; the
same tree is mirrored on Kaggle): `kneeKL224/{train,val,test,auto_test}/{0,1,2,3,4}/<OAI id><side>.png`, 224x224
8-bit grey crops of one knee joint from OAI radiographs, in a folder named by its KL grade; file names are the
7-digit OAI participant id and the side, e.g. `9003175R.png` (some mirrors add `_<n>`).
`SOURCE_DIR` may be `kneeKL224` or a folder above it (`KneeXrayData/ClsKLData/kneeKL224`).

Splits: `train` and `val` form the cross-validation pool (their published split stays in `official_split`),
`test` becomes the `test` split, or joins the pool with `include_test_in_folds=True`. `auto_test` holds the same
test knees cropped by the authors' detector and is skipped. `case_id` is the OAI participant, so both knees of a
person stay in one fold (a file named otherwise is its own case, keyed by its path, so files of one name in two
grade folders are never merged); `side` is L or R. Labels are the KL grades 0 (none) to 4 (severe); folds are
stratified on them. Images are stored as published (grey PNG, unchanged bytes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...vocabulary import CLASSIFICATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import open_image_file

KL_GRADES = ["KL0", "KL1", "KL2", "KL3", "KL4"]
_FILE_NAME = re.compile(r"^(?P<patient>\d{7})(?P<side>[LR])?(?:_\d+)?$")
_PUBLISHED_SPLITS = {"train": "train", "val": "train", "test": "test"}


def _find_root(source_dir: Path) -> Path:
    """The folder holding `train/0 ... test/4` (e.g. `kneeKL224`); exactly one must exist under `source_dir`."""
    candidates = [source_dir] + sorted(path for path in source_dir.rglob("*") if path.is_dir())
    roots = [path for path in candidates if any((path / split / "0").is_dir() for split in _PUBLISHED_SPLITS)]
    if not roots:
        raise FileNotFoundError(f"knee_oa: no `train/0 ... train/4` grade folders under {source_dir}.")
    if len(roots) > 1:
        raise ValueError(
            f"knee_oa: several KL trees under {source_dir} ({', '.join(map(str, roots))}); point SOURCE_DIR at one "
            "(e.g. kneeKL224)."
        )
    return roots[0]


@dataclass
class KneeOAConverter(SourceConverter):
    include_test_in_folds: bool = False

    name = "knee_oa"
    task = CLASSIFICATION
    homepage = "https://data.mendeley.com/datasets/56rmx5bjcr/1"
    license = "CC BY 4.0"
    citation = (
        "Chen P, Gao L, Shi X, Allen K, Yang L. Fully automatic knee osteoarthritis severity grading using deep "
        "neural networks with a novel ordinal loss. Comput Med Imaging Graph 2019;75:84-92."
    )

    def label_names(self, source_dir: Path) -> list[str]:
        return list(KL_GRADES)

    def extra_columns(self) -> dict:
        from datasets import Value

        return {"side": Value("string"), "official_split": Value("string")}

    def list_cases(self, source_dir: Path) -> list[Case]:
        root = _find_root(source_dir)
        cases = []
        for published, split in _PUBLISHED_SPLITS.items():
            if split == "test" and self.include_test_in_folds:
                split = "train"
            split_dir = root / published
            if split_dir.is_dir():
                for grade in range(len(KL_GRADES)):
                    grade_dir = split_dir / str(grade)
                    if not grade_dir.is_dir():
                        continue
                    for image_path in sorted(grade_dir.glob("*.png")):
                        match = _FILE_NAME.match(image_path.stem)
                        # A name without an OAI id says nothing about the person: its path keeps it apart from files
                        # of the same name in other grade folders.
                        patient = match["patient"] if match else f"{published}/{grade}/{image_path.stem}"
                        side = (match["side"] or "") if match else ""
                        cases.append(
                            Case(
                                patient_id=patient,
                                split=split,
                                stratum=grade,
                                files={"image": relative_to_source(image_path, source_dir)},
                                info={"label": grade, "side": side, "official_split": published},
                            )
                        )
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        image, _ = open_image_file(source_dir / case.files["image"], mode="L")
        yield {
            "image": image,
            "label": case.info["label"],
            "slice_index": -1,
            "source_file": case.files["image"],
            "side": case.info["side"],
            "official_split": case.info["official_split"],
        }
