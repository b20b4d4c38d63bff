"""ISIC 2017 Challenge, part 1: skin-lesion segmentation in dermoscopy (Codella et al. 2018).

Published layout (ISIC archive, challenge.isic-archive.com/data/#2017), one folder per zip:
    ISIC-2017_Training_Data/ISIC_0000000.jpg                        (plus `*_superpixels.png`, ignored)
    ISIC-2017_Training_Part1_GroundTruth/ISIC_0000000_segmentation.png   (0 background, 255 lesion)
    ISIC-2017_Validation_Data/, ISIC-2017_Validation_Part1_GroundTruth/
    ISIC-2017_Test_v2_Data/,    ISIC-2017_Test_v2_Part1_GroundTruth/
    ISIC-2017_<Split>_Part3_GroundTruth.csv   (optional: image_id, melanoma, seborrheic_keratosis as 0.0/1.0)
Training (2,000) is the cross-validation pool; the official Validation (150) and Test (600) become the
`validation` and `test` splits. Any split whose folders are absent is left out.

Rows: the published RGB JPEG, stored unchanged (no second lossy compression); mask 0 background / 1 lesion.
`case_id` is the image id: the 2017 release has no patient or lesion ids, so different images of one lesion
cannot be grouped (a known limitation of this set). `diagnosis` (melanoma, seborrheic_keratosis, nevus; -1 when
the Part 3 CSV is absent) is kept and used to stratify the folds.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...vocabulary import SEGMENTATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import binarize_mask, encode_mask, open_image_file, read_mask_file

DIAGNOSES = ["melanoma", "seborrheic_keratosis", "nevus"]
# split -> name of that split in the published folder names
_PUBLISHED_SPLITS = {"train": "Training", "validation": "Validation", "test": "Test_v2"}


def _find_dir(source_dir: Path, name: str) -> Path | None:
    direct = source_dir / name
    if direct.is_dir():
        return direct
    return next((path for path in sorted(source_dir.rglob(name)) if path.is_dir()), None)


def _read_diagnoses(csv_path: Path | None) -> dict[str, int]:
    if csv_path is None:
        return {}
    diagnoses = {}
    with open(csv_path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                melanoma, keratosis = float(row["melanoma"]), float(row["seborrheic_keratosis"])
            except (KeyError, ValueError) as error:
                raise ValueError(
                    f"isic2017: {csv_path} needs columns image_id, melanoma, seborrheic_keratosis ({error})."
                ) from error
            diagnoses[row["image_id"]] = 0 if melanoma >= 0.5 else 1 if keratosis >= 0.5 else 2
    return diagnoses


@dataclass
class ISIC2017Converter(SourceConverter):
    name = "isic2017"
    task = SEGMENTATION
    homepage = "https://challenge.isic-archive.com/data/#2017"
    license = "CC BY-NC 4.0 (ISIC archive terms)"
    citation = "Codella NCF et al. ISBI 2018: Skin lesion analysis toward melanoma detection (ISIC 2017)."

    def label_names(self, source_dir: Path) -> list[str]:
        return ["background", "lesion"]

    def extra_columns(self) -> dict:
        from datasets import ClassLabel, Value

        return {"image_id": Value("string"), "diagnosis": ClassLabel(names=DIAGNOSES)}

    def list_cases(self, source_dir: Path) -> list[Case]:
        cases = []
        for split, published in _PUBLISHED_SPLITS.items():
            image_dir = _find_dir(source_dir, f"ISIC-2017_{published}_Data")
            if image_dir is None:
                continue
            truth_dir = _find_dir(source_dir, f"ISIC-2017_{published}_Part1_GroundTruth")
            if truth_dir is None:
                raise FileNotFoundError(
                    f"isic2017: found {image_dir} but not ISIC-2017_{published}_Part1_GroundTruth beside it."
                )
            csv_path = next(iter(sorted(source_dir.rglob(f"ISIC-2017_{published}_Part3_GroundTruth.csv"))), None)
            diagnoses = _read_diagnoses(csv_path)
            for image_path in sorted(image_dir.glob("ISIC_*.jpg")):
                image_id = image_path.stem
                mask_path = truth_dir / f"{image_id}_segmentation.png"
                if not mask_path.is_file():
                    self.reject(relative_to_source(image_path, source_dir), f"no ground truth {mask_path.name}")
                    continue
                diagnosis = diagnoses.get(image_id, -1)
                cases.append(
                    Case(
                        patient_id=image_id,
                        split=split,
                        stratum=diagnosis if diagnosis >= 0 else None,
                        files={"image": relative_to_source(image_path, source_dir),
                               "mask": relative_to_source(mask_path, source_dir)},
                        info={"diagnosis": diagnosis},
                    )
                )
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        image, (height, width) = open_image_file(source_dir / case.files["image"], mode="RGB")
        mask = binarize_mask(read_mask_file(source_dir / case.files["mask"]), source=case.files["mask"])
        if mask.shape != (height, width):
            raise ValueError(f"isic2017: {case.files['mask']} is {mask.shape}, its image is {(height, width)}.")
        yield {
            "image": image,
            "mask": encode_mask(mask, n_labels=2, name=case.files["mask"]),
            "slice_index": -1,
            "source_file": case.files["image"],
            "image_id": case.patient_id,
            "diagnosis": case.info["diagnosis"],
        }
