"""Generic labelled studies: folders of imaging studies sorted into one folder per class.

This is the converter for sets that are not public, such as the paper's sarcoidosis PET/MR set (held by its
authors), or any local cohort. Layout:
    SOURCE_DIR/<class>/<study>/...          a study folder: DICOM series (one folder of slice files per series,
                                            at any depth), NIfTI volumes and/or 2-D images (PNG, JPEG, TIFF)
    SOURCE_DIR/<class>/<study>.nii.gz       or a single-file study (NIfTI, DICOM, PNG, ...)
    SOURCE_DIR/studies.csv                  optional: columns `study`, `patient`, when a patient has several
                                            studies (they then share a fold); `study` is the study's name, or
                                            `<class>/<study>` where two class folders hold studies of one name
Otherwise each study is its own patient, `case_id` `<class>/<study>`: studies of the same name in two class folders
are two patients, never one. Classes are the sorted folder names, or `class_names` to fix their order (a folder not
in it is an error).

Rows: every slice of every series/volume and every 2-D image (`max_slices_per_series` spaces them evenly when
set), grey uint8 at native size, with `label`, `study_id`, `series` (the series folder or file inside the study),
`modality` and `slice_index` (axial slice in RAS order, -1 for 2-D images). Folds are stratified on the class.
Intensity follows `modality_preprocessing`, the same rules as the pretraining corpus: CT `window` (header
windows are per slice and would make one volume inconsistent), MR and PET per-volume [0.5, 99.5] percentiles, so
every slice of a series shares one mapping. Modality comes from the DICOM header; for NIfTI and 2-D images, from
`modality` (e.g. "PET"), else from a folder named after a modality inside the study, else the file is bad.

Bad files follow the conversion's `on_error` policy, file by file: one that cannot be read, has no modality, or
whose every frame is constant (an all-zero DICOM) stops the conversion, or is left out and listed with `skip`.
Files that are not images (DICOM reports and presentation states, NM, text and spreadsheet files) are left out with a
note.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...medical.files import DICOM, file_kind
from ...vocabulary import CLASSIFICATION, imaging_modality
from ..bad_inputs import InputNotice, SkippedInput
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import encode_grey_image
from ..modality_preprocessing import (
    NON_IMAGE_SUFFIXES,
    ModalityPreprocessing,
    SkippedFile,
    load_volume,
    modality_from_path,
    read_images,
    volume_images,
)


def _study_units(study: Path) -> list[tuple[str, Path]]:
    """("series", folder of DICOM slices) and ("file", NIfTI or 2-D image) units of a study, in a fixed order."""
    if study.is_file():
        return [("file", study)]
    units = []
    for folder, subfolders, files in os.walk(study):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        visible = sorted(name for name in files if not name.startswith(".") and not _is_document(Path(name)))
        if any(file_kind(Path(name)) == DICOM for name in visible):
            units.append(("series", Path(folder)))
        units.extend(("file", Path(folder) / name) for name in visible if file_kind(Path(name)) != DICOM)
    return units


def _is_document(path: Path) -> bool:
    """Text, spreadsheets and the like beside the images of an export: not images, and not bad ones either."""
    return path.suffix.lower() in NON_IMAGE_SUFFIXES


@dataclass
class LabelledStudiesConverter(SourceConverter):
    class_names: tuple[str, ...] | None = None
    modality: str | None = None
    max_slices_per_series: int | None = None
    window: str | tuple[float, float] = "abdomen"

    name = "labelled_studies"
    task = CLASSIFICATION
    homepage = ""
    license = "as set by the data owner"
    citation = ""

    def __post_init__(self):
        if self.class_names is not None:
            self.class_names = tuple(self.class_names)
        self.modality = None if self.modality is None else imaging_modality(self.modality)

    def _preprocessing(self) -> ModalityPreprocessing:
        return ModalityPreprocessing(window=self.window, max_images_per_file=self.max_slices_per_series)

    def label_names(self, source_dir: Path) -> list[str]:
        found = sorted(path.name for path in source_dir.iterdir() if path.is_dir() and not path.name.startswith("."))
        if self.class_names is None:
            return found
        unknown = sorted(set(found) - set(self.class_names))
        if unknown:
            raise ValueError(
                f"labelled_studies: class folder(s) {unknown} under {source_dir} are not in class_names "
                f"{self.class_names}."
            )
        return list(self.class_names)

    def extra_columns(self) -> dict:
        from datasets import Value

        return {"study_id": Value("string"), "series": Value("string"), "modality": Value("string")}

    def _patients(self, source_dir: Path) -> dict[str, str]:
        table = source_dir / "studies.csv"
        if not table.is_file():
            return {}
        with open(table, newline="") as handle:
            reader = csv.DictReader(handle)
            if not {"study", "patient"} <= set(reader.fieldnames or []):
                raise ValueError(
                    f"labelled_studies: {table} needs columns `study` and `patient`, has {reader.fieldnames}."
                )
            return {row["study"].strip(): row["patient"].strip() for row in reader}

    def list_cases(self, source_dir: Path) -> list[Case]:
        names = self.label_names(source_dir)
        patients = self._patients(source_dir)
        cases = []
        for label, class_name in enumerate(names):
            class_dir = source_dir / class_name
            if not class_dir.is_dir():
                continue
            for study in sorted(path for path in class_dir.iterdir() if not path.name.startswith(".")):
                study_id = study.name.split(".", 1)[0] if study.is_file() else study.name
                in_class = f"{class_name}/{study_id}"
                cases.append(
                    Case(
                        patient_id=patients.get(in_class) or patients.get(study_id) or in_class,
                        stratum=label,
                        files={"study": relative_to_source(study, source_dir)},
                        info={"label": label, "study_id": study_id},
                    )
                )
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict | SkippedInput | InputNotice]:
        study = source_dir / case.files["study"]
        preprocessing = self._preprocessing()
        units = _study_units(study)
        if not units:
            raise ValueError(f"labelled_studies: study {study} holds no image files.")
        for kind, path in units:
            within_study = path.relative_to(study) if path != study else Path(path.name)
            if kind == "series":
                yield from self._series_rows(case, source_dir, path, within_study, preprocessing)
                continue
            hint = self.modality or modality_from_path(within_study)
            yield from self._file_rows(case, source_dir, path, within_study, preprocessing, hint)

    def _file_rows(self, case, source_dir, path, within_study, preprocessing, hint) -> Iterator:
        """The rows of one file, or what the bad-file policy needs to know about it (`bad_inputs`)."""
        file = relative_to_source(path, source_dir)
        try:
            modality, images = read_images(path, preprocessing, hint)
        except SkippedFile as skipped:
            if skipped.category in (SkippedFile.MODALITY_NOT_USED, SkippedFile.NOT_AN_IMAGE):
                yield InputNotice("left out: not an image of a modality VIS-MAE reads", file)
            else:
                yield SkippedInput(file, str(skipped))
            return
        if not images:
            yield SkippedInput(file, "every frame or slice has one constant value (no image content)")
            return
        yield from self._rows(case, source_dir, path, within_study, modality, images)

    def _series_rows(self, case, source_dir, folder, within_study, preprocessing) -> Iterator:
        try:
            volume = load_volume(folder)
        except SkippedFile:
            # Not one volume (radiographs, or frames without positions): every DICOM file is its own image, its
            # modality from its own header first.
            hint = self.modality or modality_from_path(within_study / "_")
            for path in sorted(folder.iterdir()):
                if path.is_file() and file_kind(path) == DICOM and not _is_document(path):
                    yield from self._file_rows(case, source_dir, path, within_study / path.name, preprocessing, hint)
            return
        modality = volume.modality or self.modality or modality_from_path(within_study / "_")
        file = relative_to_source(folder, source_dir)
        if modality is None:
            yield SkippedInput(file, "a DICOM series without a modality; pass the modality option")
            return
        images = volume_images(volume, modality, preprocessing)
        if not images:
            yield SkippedInput(file, "every slice has one constant value (no image content)")
            return
        yield from self._rows(case, source_dir, folder, within_study, modality, images)

    def _rows(self, case, source_dir, path, within_study, modality, images) -> Iterator[dict]:
        for slice_index, image01 in images:
            yield {
                "image": encode_grey_image(image01, name=str(path)),
                "label": case.info["label"],
                "slice_index": slice_index,
                "source_file": relative_to_source(path, source_dir),
                "study_id": case.info["study_id"],
                "series": within_study.as_posix(),
                "modality": modality,
            }
