"""COVID-19 CT slice classification: the UCSD-AI4H COVID-CT dataset (Zhao et al. 2020).

Published layout (github.com/UCSD-AI4H/COVID-CT, images from COVID-19 papers and other open sources):
    Images-processed/CT_COVID/<name>.png|jpg        label covid      (e.g. `2020.03.01.20029769-p21-73.png`)
    Images-processed/CT_NonCOVID/<name>.png|jpg     label non_covid  (e.g. `71%0.jpg`)
    Data-split/COVID/{train,val,test}CT_COVID.txt, Data-split/NonCOVID/{train,val,test}CT_NonCOVID.txt (optional)
The SARS-CoV-2 CT-scan dataset's folders `COVID/` and `non-COVID/` are read the same way.
`SOURCE_DIR` may be the repository root or any folder above `Images-processed`.

Patients: the images carry no patient id in their names. By default images are grouped by the source they were
cut from: the paper id before `-p<page>` for COVID images, the number before `%` for non-COVID ones, otherwise the
name without a trailing index. This is conservative (one paper may show several patients, and all of them then
share a fold) and avoids the leak of two slices of one patient in different folds. With `patient_csv`, a CSV
exported from `COVID-CT-MetaInfo.xlsx` (columns `File name`, `Patient ID`) gives the real patients instead. Either
way the `case_id` is `<class>/<patient>`, so files of one name in the two class folders are never one patient.

Rows: 8-bit grey images (the published files mix RGB JPEG and PNG screenshots of grey CT), `label`
(non_covid, covid), `official_split` (train/val/test from Data-split, empty if absent); all images form the
cross-validation pool, as in the paper's 5-fold protocol.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...vocabulary import CLASSIFICATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import open_image_file

COVID_CLASSES = ["non_covid", "covid"]
_CLASS_FOLDERS = {"CT_NonCOVID": 0, "CT_COVID": 1, "non-COVID": 0, "COVID": 1}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def source_group(file_name: str) -> str:
    """The publication or source id an image was cut from, read from its published file name."""
    stem = Path(file_name).stem
    page = re.match(r"^(?P<source>.+?)-p\d+(?:-.*)?$", stem)
    if page:
        return page["source"]
    if "%" in stem:
        return stem.split("%", 1)[0]
    return re.sub(r"(?:[-_ ]\(?\d+\)?)$", "", stem) or stem


@dataclass
class COVIDCTConverter(SourceConverter):
    patient_csv: str | None = None

    name = "covid_ct"
    task = CLASSIFICATION
    homepage = "https://github.com/UCSD-AI4H/COVID-CT"
    license = "Images from published papers; see the repository for terms of use"
    citation = "Zhao J, Zhang Y, He X, Xie P. COVID-CT-Dataset: a CT scan dataset about COVID-19. arXiv:2003.13865."

    def label_names(self, source_dir: Path) -> list[str]:
        return list(COVID_CLASSES)

    def extra_columns(self) -> dict:
        from datasets import Value

        return {"official_split": Value("string")}

    def _patients_from_csv(self) -> dict[str, str]:
        if self.patient_csv is None:
            return {}
        path = Path(self.patient_csv)
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if not {"File name", "Patient ID"} <= set(reader.fieldnames or []):
                raise ValueError(
                    f"covid_ct: {path} needs columns `File name` and `Patient ID`, has {reader.fieldnames}."
                )
            return {row["File name"].strip(): row["Patient ID"].strip() for row in reader}

    def list_cases(self, source_dir: Path) -> list[Case]:
        official = {}
        for split_file in sorted(source_dir.rglob("*CT_*COVID.txt")):
            split = re.match(r"^(train|val|test)", split_file.name)
            if split:
                for line in split_file.read_text().splitlines():
                    if line.strip():
                        official[line.strip()] = split[1]
        patients = self._patients_from_csv()
        cases = []
        for folder, cls in _CLASS_FOLDERS.items():
            for directory in sorted(path for path in source_dir.rglob(folder) if path.is_dir()):
                for image_path in sorted(directory.iterdir()):
                    if image_path.suffix.lower() not in _IMAGE_SUFFIXES:
                        continue
                    # Keyed within the class folder: files of one name in the two folders never become one patient.
                    group = f"{COVID_CLASSES[cls]}/{patients.get(image_path.name) or source_group(image_path.name)}"
                    cases.append(
                        Case(
                            patient_id=group,
                            stratum=cls,
                            files={"image": relative_to_source(image_path, source_dir)},
                            info={"label": cls, "official_split": official.get(image_path.name, "")},
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
            "official_split": case.info["official_split"],
        }
