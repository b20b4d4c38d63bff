"""Your own classification set as a table: one row per image file, with its label(s) and optionally its patient.

Table (`SOURCE` is the CSV or TSV file; paths in it are relative to its folder, or absolute):
    path,label,patient                          one label column: single-label classification
    images/a.png,benign,P001
    path,effusion,mass,patient                  several label columns (`--label-column` repeated): multi-label,
    cxr/1.png,1,0,P002                          each column one finding, 1/0 (also yes/no, true/false, empty = 0)
Columns are named by `path_column` (default `path`), `label_columns` (default `label`) and `patient_column`
(optional: rows of one patient share a fold; without it every file is its own patient, keyed by its path, so files
of one name in two folders are never merged). Class names are the label values, in `labels` order when given
(a value not in it is an error), else sorted (numerically when all are numbers).

Files: 2-D images (PNG, JPEG, TIFF, BMP: stored as they are, grey, or in colour with `colour`), DICOMs (every frame
a row, windowed like the pretraining corpus: a CT's header window, else `window`; MR, PET, X-ray percentiles) and
NIfTI volumes (every axial slice a row, normalised over the volume; they carry no modality, so `modality` must say
it). Frames or slices of one constant value are left out; a file with nothing else is a bad input.

Bad inputs (`--on-error`): a row naming a missing file, a file listed twice, an empty or unknown label, an empty
patient, an unreadable file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...image_processing_vis_mae import resolve_window
from ...medical.files import RASTER, file_kind
from ...vocabulary import CLASSIFICATION, MULTILABEL, imaging_modality
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import encode_grey_image, open_image_file
from ..modality_preprocessing import ModalityPreprocessing, read_images
from ..tables import Table, TableRow, read_table

_TRUE = {"1", "1.0", "true", "yes", "y", "positive", "pos", "x"}
_FALSE = {"0", "0.0", "false", "no", "n", "negative", "neg", ""}


def _sorted_classes(values: set[str]) -> list[str]:
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


@dataclass
class TableConverter(SourceConverter):
    table: str | None = None
    path_column: str = "path"
    label_columns: tuple[str, ...] = ("label",)
    patient_column: str | None = None
    labels: tuple[str, ...] | None = None
    modality: str | None = None
    window: str | tuple[float, float] = "abdomen"
    colour: bool = False

    name = "table"
    task = CLASSIFICATION
    homepage = ""
    license = "as set by the data owner"
    citation = ""

    def __post_init__(self):
        self.label_columns = (self.label_columns,) if isinstance(self.label_columns, str) else tuple(self.label_columns)
        if not self.label_columns:
            raise ValueError("table: name at least one label column.")
        self.task = MULTILABEL if len(self.label_columns) > 1 else CLASSIFICATION
        if self.labels is not None:
            if self.task == MULTILABEL:
                raise ValueError("table: labels orders the classes of one label column; several columns name theirs.")
            self.labels = tuple(str(label) for label in self.labels)
        self.modality = None if self.modality is None else imaging_modality(self.modality)
        if not isinstance(self.window, str):
            self.window = tuple(self.window)
        resolve_window(self.window)

    def _read(self, source_dir: Path) -> Table:
        if self.table is None:
            raise ValueError("table: give the CSV or TSV file itself as the source (vis-mae data convert table FILE).")
        table = read_table(source_dir / self.table)
        columns = {self.path_column: "--path-column", **dict.fromkeys(self.label_columns, "--label-column")}
        if self.patient_column is not None:
            columns[self.patient_column] = "--patient-column"
        table.require(columns)
        return table

    def label_names(self, source_dir: Path) -> list[str]:
        if self.task == MULTILABEL:
            return list(self.label_columns)
        if self.labels is not None:
            return list(self.labels)
        table = self._read(source_dir)
        return _sorted_classes({row.values[self.label_columns[0]] for row in table.rows} - {""})

    def extra_columns(self) -> dict:
        from datasets import Value

        return {"modality": Value("string")}

    def list_cases(self, source_dir: Path) -> list[Case]:
        table = self._read(source_dir)
        classes = self.label_names(source_dir)
        cases, listed = [], {}
        for row in table.rows:
            path = table.file(row, self.path_column)
            file = relative_to_source(path, source_dir)
            where = f"{table.path.name} line {row.line}"
            problem = self._row_problem(row, path, classes, where, listed.get(file))
            if problem:
                self.reject(file, problem)
                continue
            listed[file] = row.line
            target = self._target(row, classes)
            patient = row.values[self.patient_column] if self.patient_column else file
            stratum = target if self.task == CLASSIFICATION else int(bool(target))
            cases.append(Case(patient_id=patient, stratum=stratum, files={"image": file}, info={"target": target}))
        return cases

    def _row_problem(self, row: TableRow, path: Path, classes, where: str, listed_on: int | None) -> str | None:
        """Why `row` cannot be converted, or None."""
        if not path.is_file():
            return f"named in {where}, but there is no such file"
        if listed_on is not None:
            return f"listed twice ({where} and line {listed_on})"
        if self.patient_column and not row.values[self.patient_column]:
            return f"{where}: the {self.patient_column!r} cell is empty; every file needs its patient"
        if self.task == CLASSIFICATION:
            value = row.values[self.label_columns[0]]
            if not value:
                return f"{where}: the {self.label_columns[0]!r} cell is empty; every file needs its class"
            if value not in classes:
                return f"{where}: label {value!r} is not one of the classes {classes}"
            return None
        for column in self.label_columns:
            if row.values[column].lower() not in _TRUE | _FALSE:
                return f"{where}: column {column!r} holds {row.values[column]!r}; expected 1 or 0 (yes/no, true/false)"
        return None

    def _target(self, row: TableRow, classes: list[str]) -> int | list[int]:
        if self.task == CLASSIFICATION:
            return classes.index(row.values[self.label_columns[0]])
        return [index for index, column in enumerate(self.label_columns) if row.values[column].lower() in _TRUE]

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        file = case.files["image"]
        path = source_dir / file
        target_column = "label" if self.task == CLASSIFICATION else "labels"
        common = {target_column: case.info["target"], "source_file": file}
        if file_kind(path) == RASTER:
            image, _ = open_image_file(path, mode="RGB" if self.colour else "L")
            yield dict(common, image=image, slice_index=-1, modality=self.modality or "")
            return
        options = ModalityPreprocessing(window=self.window, max_images_per_file=None)
        modality, images = read_images(path, options, self.modality)
        if not images:
            raise ValueError(f"{file}: every frame or slice has one constant value (no image content).")
        for index, image01 in images:
            yield dict(common, image=encode_grey_image(image01, name=file), slice_index=index, modality=modality)
