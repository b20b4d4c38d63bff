"""Your own 2-D segmentation set as image and mask files: two folders matched by name, or a table of pairs.

Layout, folders (`SOURCE_DIR`):
    images/<name>.png             2-D images (PNG, JPEG, TIFF, BMP) or single-frame DICOMs, sub-folders allowed
    masks/<name>.png              the mask of each image: same sub-folder, same file stem (any image suffix), plus
                                  `mask_suffix` when masks are named e.g. `<name>_mask.png`
Layout, table (`SOURCE` is a CSV or TSV file): columns `image` and `mask` (paths relative to the table's folder,
or absolute) and optionally `case` (the patient: rows of one case share a fold).

Masks hold one class index per pixel, as grey or palette images, and must have their image's size. Labels are
`labels` (default background, foreground; `--label-names`); a binary mask stored as 0/255 (what most editors
write) is read as 0/1 with a notice, any other value outside the labels is refused, naming the mask.
Images are stored grey (8-bit as is, 16-bit scaled over its range; DICOMs windowed like the pretraining corpus: a
CT's own header window, else `window`; MR, PET and X-ray percentiles), or in colour with `colour` (dermoscopy,
endoscopy). `modality` fills the `modality` column of files that do not carry one (DICOMs do).
`case_id` is the `case` column, else the image's path under images/ without its suffix: each image is its own
patient, and files of one name in two sub-folders are two cases.

Bad inputs (`--on-error`): an image without its mask, a mask without its image, a mask of another size, mask values
outside the labels, a table row naming a missing file, a file listed twice, unreadable files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...image_processing_vis_mae import resolve_window
from ...medical.files import DICOM, NIFTI, NIFTI_SUFFIXES, RASTER, file_kind
from ...vocabulary import SEGMENTATION, imaging_modality
from ..bad_inputs import InputNotice
from ..conversion import Case, SourceConverter, relative_to_source
from ..masks import BINARY_255_NOTICE
from ..modality_preprocessing import NON_IMAGE_SUFFIXES, ModalityPreprocessing
from ..pairs import LabelValues, read_pair
from ..tables import read_table

IMAGES_FOLDER, MASKS_FOLDER = "images", "masks"
DEFAULT_LABELS = ("background", "foreground")
_MASK_ONLY_SUFFIXES = (".gif",)  # palette GIFs hold masks in some older sets


def _stem(relative: Path) -> str:
    """`a/b/case_1.png` -> `a/b/case_1`; a DICOM may have no suffix, or one that is not a suffix (`1.2.840.5`)."""
    name = relative.as_posix()
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    if file_kind(relative) == RASTER or relative.suffix.lower() in _MASK_ONLY_SUFFIXES:
        return relative.with_suffix("").as_posix()
    return relative.with_suffix("").as_posix() if relative.suffix.lower() in (".dcm", ".dicom") else relative.as_posix()


def _image_files(folder: Path, kinds: tuple[str, ...]) -> dict[str, Path]:
    """stem under `folder` -> file, for every visible file of `kinds` at any depth (text files and the like left out;
    DICOMs are named anyhow, so every other file may be one)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in NON_IMAGE_SUFFIXES:
            continue
        kind = RASTER if path.suffix.lower() in _MASK_ONLY_SUFFIXES else file_kind(path)
        if kind in kinds:
            files.setdefault(_stem(relative), path)
    return files


@dataclass
class ImageMaskPairsConverter(SourceConverter):
    table: str | None = None
    labels: tuple[str, ...] = DEFAULT_LABELS
    mask_suffix: str = ""
    colour: bool = False
    modality: str | None = None
    window: str | tuple[float, float] = "abdomen"

    name = "image-mask-pairs"
    task = SEGMENTATION
    homepage = ""
    license = "as set by the data owner"
    citation = ""

    def __post_init__(self):
        self.labels = LabelValues.consecutive(tuple(self.labels)).names  # checked: two or more, all different
        self.modality = None if self.modality is None else imaging_modality(self.modality)
        if not isinstance(self.window, str):
            self.window = tuple(self.window)
        resolve_window(self.window)

    def label_names(self, source_dir: Path) -> list[str]:
        return list(self.labels)

    def extra_columns(self) -> dict:
        from datasets import Value

        return {"mask_file": Value("string"), "modality": Value("string")}

    def list_cases(self, source_dir: Path) -> list[Case]:
        pairs = self._table_pairs(source_dir) if self.table else self._folder_pairs(source_dir)
        return [
            Case(patient_id=case, files={"image": image, "mask": mask})
            for case, image, mask in pairs
        ]

    def _folder_pairs(self, source_dir: Path) -> list[tuple[str, str, str]]:
        image_dir, mask_dir = source_dir / IMAGES_FOLDER, source_dir / MASKS_FOLDER
        if not image_dir.is_dir() or not mask_dir.is_dir():
            raise FileNotFoundError(
                f"image-mask-pairs: expected folders {IMAGES_FOLDER}/ and {MASKS_FOLDER}/ under {source_dir} (or give "
                "a CSV/TSV file with `image` and `mask` columns as the source)."
            )
        images = _image_files(image_dir, (RASTER, DICOM, NIFTI))  # a volume gets its own error, not "no mask"
        masks = {}
        for stem, path in _image_files(mask_dir, (RASTER,)).items():
            if stem.endswith(self.mask_suffix):
                masks[stem[: len(stem) - len(self.mask_suffix)]] = path
        pairs = []
        for stem in sorted(set(masks) - set(images)):
            orphan = relative_to_source(masks[stem], source_dir)
            self.reject(orphan, f"a mask without its image {IMAGES_FOLDER}/{stem}.*")
        for stem, image in sorted(images.items()):
            if stem not in masks:
                expected = f"{MASKS_FOLDER}/{stem}{self.mask_suffix}.*"
                self.reject(relative_to_source(image, source_dir), f"an image without its mask {expected}")
                continue
            pairs.append((stem, relative_to_source(image, source_dir), relative_to_source(masks[stem], source_dir)))
        return pairs

    def _table_pairs(self, source_dir: Path) -> list[tuple[str, str, str]]:
        table = read_table(source_dir / self.table)
        table.require({"image": "the image file", "mask": "its mask file"})
        pairs, listed = [], {}
        for row in table.rows:
            image, mask = table.file(row, "image"), table.file(row, "mask")
            where = f"{table.path.name} line {row.line}"
            missing = [path for path in (image, mask) if not path.is_file()]
            for path in missing:
                self.reject(relative_to_source(path, source_dir), f"named in {where}, but there is no such file")
            if missing:
                continue
            image_file = relative_to_source(image, source_dir)
            if image_file in listed:
                self.reject(image_file, f"listed twice ({table.path.name} lines {listed[image_file]} and {row.line})")
                continue
            listed[image_file] = row.line
            case = row.values.get("case") or _stem(Path(image_file))
            pairs.append((case, image_file, relative_to_source(mask, source_dir)))
        return pairs

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict | InputNotice]:
        image_file, mask_file = case.files["image"], case.files["mask"]
        row, modality, mapped = read_pair(
            source_dir / image_file,
            source_dir / mask_file,
            LabelValues.consecutive(self.labels),
            names=(image_file, mask_file),
            colour=self.colour,
            preprocessing=ModalityPreprocessing(window=self.window),
            modality_hint=self.modality,
        )
        if mapped:
            yield InputNotice(BINARY_255_NOTICE, mask_file)
        yield dict(row, source_file=image_file, mask_file=mask_file, modality=modality or self.modality or "")
