"""ACDC (Automated Cardiac Diagnosis Challenge, MICCAI 2017): cine-MR segmentation of RV, myocardium and LV.

Published layout (creatis.insa-lyon.fr/Challenge/acdc, CC BY-NC-SA 4.0), `database/`:
    training/patient001/Info.cfg                    "ED: 1", "ES: 12", "Group: DCM", "Height: ...", "NbFrame: 30", ...
    training/patient001/patient001_4d.nii.gz         the whole cine (not used)
    training/patient001/patient001_frame01.nii.gz    end-diastole (ED) volume, and `_frame01_gt.nii.gz` its labels
    training/patient001/patient001_frame12.nii.gz    end-systole (ES) volume, and `_frame12_gt.nii.gz`
    testing/patient101/...                           same layout (labels included since the 2020 release)
Label values: 0 background, 1 right-ventricle cavity, 2 myocardium, 3 left-ventricle cavity.
`SOURCE_DIR` may be `database` or any folder above `training`.

Rows: every short-axis slice of the ED and ES volumes of each patient (the paper's 2,978 slices are all slices of
both phases): slices are cut along the through-plane axis (largest voxel spacing, ~10 mm), because the oblique
short-axis stack can land on any array axis after reorientation. `phase` (ED/ES), `frame` and the diagnostic
`group` (DCM, HCM, MINF, NOR, RV; folds are stratified on it) are extra columns. `training` is the
cross-validation pool, `testing` the `test` split (left out, with a note, when its labels are absent).

Intensity: per-volume min-max. Cine MR has no physical intensity scale and ACDC volumes are bias-corrected
SSFP without extreme outliers, so min-max over the whole frame maps every slice of a volume consistently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...medical.orientation import display_slice
from ...vocabulary import SEGMENTATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import encode_grey_image, encode_mask
from ..volumes import load_image_and_mask, through_plane_axis

ACDC_LABELS = ["background", "right ventricle", "myocardium", "left ventricle"]
ACDC_GROUPS = ["DCM", "HCM", "MINF", "NOR", "RV"]
_PATIENT_DIR = re.compile(r"^patient\d{3}$")


def read_info_cfg(path: Path) -> dict[str, str]:
    """`Info.cfg` ("ED: 1" per line) -> {"ED": "1", ...}."""
    info = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    for key in ("ED", "ES"):
        if key not in info:
            raise ValueError(f"acdc: {path} has no `{key}:` line.")
    return info


def _existing(folder: Path, stem: str) -> Path | None:
    """`stem.nii.gz` or `stem.nii` in `folder` (both occur in the releases), else None."""
    return next((path for path in (folder / f"{stem}.nii.gz", folder / f"{stem}.nii") if path.is_file()), None)


@dataclass
class ACDCConverter(SourceConverter):
    name = "acdc"
    task = SEGMENTATION
    homepage = "https://www.creatis.insa-lyon.fr/Challenge/acdc/"
    license = "CC BY-NC-SA 4.0"
    citation = "Bernard O et al. IEEE Transactions on Medical Imaging 2018;37(11):2514-2525."

    def label_names(self, source_dir: Path) -> list[str]:
        return list(ACDC_LABELS)

    def extra_columns(self) -> dict:
        from datasets import ClassLabel, Value

        return {"phase": Value("string"), "frame": Value("int32"), "group": ClassLabel(names=ACDC_GROUPS)}

    def list_cases(self, source_dir: Path) -> list[Case]:
        cases = []
        for info_path in sorted(source_dir.rglob("Info.cfg")):
            patient_dir = info_path.parent
            if not _PATIENT_DIR.match(patient_dir.name):
                continue
            split = "test" if patient_dir.parent.name == "testing" else "train"
            info = read_info_cfg(info_path)
            group = info.get("Group", "")
            group_index = ACDC_GROUPS.index(group) if group in ACDC_GROUPS else -1
            for phase in ("ED", "ES"):
                frame = int(info[phase])
                stem = f"{patient_dir.name}_frame{frame:02d}"
                image = _existing(patient_dir, stem)
                mask = _existing(patient_dir, f"{stem}_gt")
                if image is None:
                    raise FileNotFoundError(
                        f"acdc: {info_path} names {phase} frame {frame}, but {stem}.nii.gz is missing."
                    )
                if mask is None:
                    if split == "test":
                        self.note(f"{patient_dir.name} {phase}: no {stem}_gt.nii.gz, left out")
                        continue
                    self.reject(
                        relative_to_source(image, source_dir), f"a training volume without labels {stem}_gt.nii.gz"
                    )
                    continue
                cases.append(
                    Case(
                        patient_id=patient_dir.name,
                        split=split,
                        stratum=group_index if group_index >= 0 else None,
                        files={
                            "image": relative_to_source(image, source_dir),
                            "mask": relative_to_source(mask, source_dir),
                        },
                        info={"phase": phase, "frame": frame, "group": group_index},
                    )
                )
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        image, mask = load_image_and_mask(source_dir / case.files["image"], source_dir / case.files["mask"])
        axis = through_plane_axis(image.spacing)
        scaled = image.unit_range()  # min-max over the whole frame volume
        for index in range(scaled.shape[axis]):
            yield {
                "image": encode_grey_image(display_slice(scaled, axis, index)),
                "mask": encode_mask(
                    display_slice(mask, axis, index), n_labels=len(ACDC_LABELS), name=case.files["mask"]
                ),
                "slice_index": index,
                "source_file": case.files["image"],
                "phase": case.info["phase"],
                "frame": case.info["frame"],
                "group": case.info["group"],
            }
