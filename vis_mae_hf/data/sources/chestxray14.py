"""NIH ChestX-ray14: 14 thoracic findings on frontal chest radiographs, multi-label (Wang et al. 2017).

Published layout (NIH Clinical Center, nihcc.app.box.com/v/ChestXray-NIHCC):
    Data_Entry_2017.csv (or Data_Entry_2017_v2020.csv): `Image Index`, `Finding Labels` ("Effusion|Mass" or
        "No Finding"), `Follow-up #`, `Patient ID`, `Patient Age`, `Patient Gender`, `View Position`, ...
    train_val_list.txt, test_list.txt: the official patient-wise split (one image name a line)
    images_001.tar.gz ... images_012.tar.gz, which extract to `images/00000001_000.png` (1024x1024 8-bit grey);
        the Kaggle mirror has `images_001/images/...`. Images are found anywhere under `SOURCE_DIR` by name.

Rows: `labels` is the list of findings (empty for "No Finding"), in the 14 names below; `case_id` is the patient
(8 digits, the prefix of the image name). `train_val_list` is the cross-validation pool and `test_list` the
`test` split, as published (the lists are already patient-wise). Folds are stratified on "any finding".
Extra columns: `view_position` (PA/AP), `follow_up`, `patient_age`, `patient_sex`. Images are stored as published
(the few RGBA PNGs are converted to grey). Images listed in the CSV but missing on disk are bad inputs: they stop
the conversion, or with `--on-error skip` (after extracting only some of the archives) are left out and listed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...vocabulary import MULTILABEL
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import open_image_file

FINDINGS = [
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
]
NO_FINDING = "No Finding"
_ENTRY_FILES = ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")


def _find_file(source_dir: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        found = sorted(source_dir.rglob(name))
        if found:
            return found[0]
    raise FileNotFoundError(f"chestxray14: none of {list(names)} under {source_dir}.")


def parse_findings(text: str, *, image: str) -> list[int]:
    """`"Effusion|Mass"` -> [2, 4]; `"No Finding"` -> []."""
    names = [name.strip() for name in text.split("|") if name.strip()]
    if names == [NO_FINDING]:
        return []
    unknown = [name for name in names if name not in FINDINGS]
    if unknown:
        raise ValueError(
            f"chestxray14: {image} has unknown finding(s) {unknown}; expected {FINDINGS} or '{NO_FINDING}'."
        )
    return sorted(FINDINGS.index(name) for name in names)


@dataclass
class ChestXray14Converter(SourceConverter):
    name = "chestxray14"
    task = MULTILABEL
    homepage = "https://nihcc.app.box.com/v/ChestXray-NIHCC"
    license = "Unrestricted use with attribution to the NIH Clinical Center"
    citation = "Wang X et al. ChestX-ray8: hospital-scale chest X-ray database and benchmarks. CVPR 2017."

    def label_names(self, source_dir: Path) -> list[str]:
        return list(FINDINGS)

    def extra_columns(self) -> dict:
        from datasets import Value

        return {
            "view_position": Value("string"),
            "follow_up": Value("int32"),
            "patient_age": Value("int32"),
            "patient_sex": Value("string"),
        }

    def list_cases(self, source_dir: Path) -> list[Case]:
        entries_path = _find_file(source_dir, _ENTRY_FILES)
        split_of = {}
        for list_name, split in (("train_val_list.txt", "train"), ("test_list.txt", "test")):
            list_path = _find_file(source_dir, (list_name,))
            for line in list_path.read_text().splitlines():
                if line.strip():
                    split_of[line.strip()] = split
        image_paths = {path.name: path for path in source_dir.rglob("*.png")}
        cases = []
        with open(entries_path, newline="") as handle:
            reader = csv.DictReader(handle)
            required = {"Image Index", "Finding Labels", "Patient ID"}
            if not required <= set(reader.fieldnames or []):
                missing_columns = sorted(required - set(reader.fieldnames or []))
                raise ValueError(f"chestxray14: {entries_path} lacks columns {missing_columns}.")
            for row in reader:
                image = row["Image Index"].strip()
                if image not in split_of:
                    raise ValueError(f"chestxray14: {image} is in {entries_path.name} but in neither split list.")
                if image not in image_paths:
                    self.reject(image, f"listed in {entries_path.name} but not under {source_dir} (extract every "
                                "images_*.tar.gz)")
                    continue
                labels = parse_findings(row["Finding Labels"], image=image)
                cases.append(
                    Case(
                        patient_id=f"{int(row['Patient ID']):08d}",
                        split=split_of[image],
                        stratum=int(bool(labels)),
                        files={"image": relative_to_source(image_paths[image], source_dir)},
                        info={
                            "labels": labels,
                            "view_position": row.get("View Position", "").strip(),
                            "follow_up": int(row.get("Follow-up #") or -1),
                            "patient_age": int(row.get("Patient Age") or -1),
                            "patient_sex": row.get("Patient Gender", "").strip(),
                        },
                    )
                )
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        image, _ = open_image_file(source_dir / case.files["image"], mode="L")
        yield {
            "image": image,
            "labels": case.info["labels"],
            "slice_index": -1,
            "source_file": case.files["image"],
            **{key: case.info[key] for key in ("view_position", "follow_up", "patient_age", "patient_sex")},
        }
