"""Your own segmentation set in the Medical Segmentation Decathlon (MSD) or nnU-Net v2 layout.

Layout (`SOURCE_DIR` is the dataset folder, or a folder holding exactly one):
    dataset.json
    imagesTr/<case>.nii.gz          MSD: one file per case
    imagesTr/<case>_0000.nii.gz     nnU-Net v2: one file per channel, `_XXXX` the channel number
    labelsTr/<case>.nii.gz          the mask of each training case (no channel suffix)
    imagesTs/...                    cases without masks: not converted
dataset.json, MSD: `"labels": {"0": "background", "1": "liver"}`, `"modality": {"0": "CT"}`.
dataset.json, nnU-Net v2: `"labels": {"background": 0, "liver": 1}`, `"channel_names": {"0": "CT"}`,
    `"file_ending": ".nii.gz"` (".png" and the other 2-D endings make a 2-D set: one image and mask per case).
Label names and values come from `labels`; values need not be consecutive (0, 1, 2, 4 become classes 0..3, named
in the conversion metadata). nnU-Net's region labels (lists of values) and `ignore` label are refused: a mask here
holds one class per pixel. Licence and reference come from dataset.json (`licence`/`license`, `reference`).

Images: one channel, `channel` (default 0): the `_XXXX` file of nnU-Net v2. MSD keeps several channels in one 4-D
file, which is refused, naming nnU-Net's `nnUNetv2_convert_MSD_dataset`, which splits them into `_XXXX` files.
Modality: `modality` when given, else dataset.json's name for the channel (CT; MR or an MR sequence: MRI, T1, T2,
FLAIR, ADC, DWI, ...; PET; US; XRAY). A name that is no modality (nnU-Net's "noNorm", "zscore") needs `modality`.
Intensity over the whole volume, as for the pretraining corpus (`modality_preprocessing`): CT the `window` (default
abdomen, W400/L40; --window chooses), MR and PET the [0.5, 99.5] percentiles, others min-max. A volume that
dataset.json calls CT but whose values cannot be Hounsfield units is refused, unless `modality` says CT.

Slices: along `axis` (axial by default; coronal, sagittal, or through-plane: the axis of the largest voxel spacing,
for 2-D multi-slice acquisitions such as cine MR), in canonical RAS and radiological display, image and mask cut
alike. Slices without any label are left out unless `keep_empty_slices` (they teach background, at the cost of
rows). Patients: each case is its own patient, or `patients` names a CSV (columns `case`, `patient`, relative to
SOURCE_DIR) when one patient has several cases; folds are grouped by patient.

Bad inputs (`--on-error`): an image without its mask, a mask without its image, a mask of another shape or voxel
grid (affine) than its image, mask values outside the declared labels, unreadable files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib

from ...image_processing_vis_mae import resolve_window
from ...medical.files import NIFTI_SUFFIXES, RASTER_SUFFIXES
from ...medical.orientation import AXIAL_AXIS, display_slice
from ...vocabulary import CT, MR, PET, SEGMENTATION, US, XRAY, imaging_modality
from ..bad_inputs import InputNotice
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import encode_grey_image, encode_mask
from ..masks import BINARY_255_NOTICE
from ..modality_preprocessing import ModalityPreprocessing, volume_unit_range
from ..pairs import LabelValues, read_pair
from ..tables import read_table
from ..volumes import (
    check_hounsfield,
    load_image_and_mask,
    select_slices,
    through_plane_axis,
)

SLICE_AXES = {"axial": AXIAL_AXIS, "coronal": 1, "sagittal": 0, "through-plane": None}
_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
# What nnU-Net and MSD call a channel, beyond the modality names `vocabulary.imaging_modality` knows.
_MR_SEQUENCES = {
    "MRI", "T1", "T1W", "T1GD", "T1CE", "T1C", "T2", "T2W", "FLAIR", "ADC", "DWI", "PD", "SWI", "CINE", "HBV",
}
_CHANNEL_WORDS = {"PT": PET, "PET": PET, "CT": CT, "US": US, "ULTRASOUND": US, "XRAY": XRAY, "X-RAY": XRAY}
NO_EMPTY_SLICE_NOTICE = "no slice with a label, so no rows (keep_empty_slices keeps every slice)"


@dataclass(frozen=True)
class DecathlonLayout:
    """What dataset.json says: the labels, each channel's name, the file ending, and which of the two layouts."""

    root: Path
    labels: LabelValues
    channel_names: dict[int, str]
    file_ending: str
    nnunet_v2: bool
    licence: str
    reference: str

    @property
    def two_dimensional(self) -> bool:
        return self.file_ending.lower() in RASTER_SUFFIXES


def find_dataset_root(source_dir: Path) -> Path:
    """The folder holding dataset.json and imagesTr: `source_dir`, or the one such folder below it."""
    if (source_dir / "dataset.json").is_file():
        return source_dir
    roots = sorted(
        path.parent for path in source_dir.rglob("dataset.json") if (path.parent / "imagesTr").is_dir()
    )
    if len(roots) == 1:
        return roots[0]
    if roots:
        listed = ", ".join(str(root) for root in roots[:5])
        raise ValueError(f"decathlon: several datasets under {source_dir} ({listed}); give the folder of one.")
    raise FileNotFoundError(
        f"decathlon: no dataset.json under {source_dir}; expected the Decathlon/nnU-Net layout (dataset.json, "
        "imagesTr/, labelsTr/)."
    )


def read_layout(source_dir: Path) -> DecathlonLayout:
    """The `DecathlonLayout` of the dataset at or under `source_dir`; errors name dataset.json and what is wrong."""
    root = find_dataset_root(source_dir)
    path = root / "dataset.json"
    try:
        description = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(description, dict):
        raise ValueError(f"{path}: expected a JSON object with `labels`, got {type(description).__name__}.")
    nnunet_v2 = "channel_names" in description
    channels = description.get("channel_names" if nnunet_v2 else "modality") or {}
    if not isinstance(channels, dict):
        raise ValueError(f"{path}: `{'channel_names' if nnunet_v2 else 'modality'}` must map channel numbers to names.")
    ending = str(description.get("file_ending", ".nii.gz")) if nnunet_v2 else ".nii.gz"
    if ending.lower() not in (*NIFTI_SUFFIXES, *RASTER_SUFFIXES):
        raise ValueError(
            f"{path}: file_ending {ending!r} is not read here; NIfTI ({', '.join(NIFTI_SUFFIXES)}) and 2-D images "
            f"({', '.join(RASTER_SUFFIXES)}) are. Convert the files to NIfTI first."
        )
    return DecathlonLayout(
        root=root,
        labels=_declared_labels(description.get("labels"), path, nnunet_v2),
        channel_names={int(key): str(value) for key, value in channels.items()},
        file_ending=ending,
        nnunet_v2=nnunet_v2,
        licence=str(description.get("licence") or description.get("license") or ""),
        reference=str(description.get("reference") or ""),
    )


def _declared_labels(labels, path: Path, nnunet_v2: bool) -> LabelValues:
    """MSD `{"0": "background"}` or nnU-Net v2 `{"background": 0}` as `LabelValues`, sorted by value."""
    if not isinstance(labels, dict) or not labels:
        raise ValueError(f"{path}: no `labels` mapping; it names the value of every label in the masks.")
    pairs = [(value, name) for name, value in labels.items()] if nnunet_v2 else list(labels.items())
    by_value = {}
    for value, name in pairs:
        if isinstance(value, list):
            raise ValueError(
                f"{path}: label {name!r} is a region (a list of values {value}); a mask here holds one class per "
                "pixel. Give each value its own label."
            )
        if str(name).strip().lower() == "ignore":
            raise ValueError(
                f"{path}: nnU-Net's `ignore` label (partly annotated masks) is not supported: every pixel of a mask "
                "here is one of the classes. Remove the ignore label from dataset.json and the masks."
            )
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: label {name!r} has value {value!r}; expected a whole number.") from None
        if number in by_value:
            raise ValueError(f"{path}: labels {by_value[number]!r} and {name!r} share the value {number}.")
        by_value[number] = str(name)
    values = sorted(by_value)
    try:
        return LabelValues(tuple(by_value[value] for value in values), tuple(values))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def modality_of_channel(name: str) -> str | None:
    """The modality a Decathlon/nnU-Net channel name stands for ("CT", "T2", "ADC" -> MR, ...), or None."""
    key = name.strip().upper().replace(" ", "")
    if key in _MR_SEQUENCES:
        return MR
    if key in _CHANNEL_WORDS:
        return _CHANNEL_WORDS[key]
    try:
        return imaging_modality(key)
    except ValueError:
        return None


@dataclass
class DecathlonConverter(SourceConverter):
    modality: str | None = None
    window: str | tuple[float, float] = "abdomen"
    axis: str = "axial"
    keep_empty_slices: bool = False
    channel: int = 0
    patients: str | None = None

    name = "decathlon"
    task = SEGMENTATION
    homepage = ""
    license = "as set by the data owner"
    citation = ""

    def __post_init__(self):
        self.modality = None if self.modality is None else imaging_modality(self.modality)
        if not isinstance(self.window, str):
            self.window = tuple(self.window)
        resolve_window(self.window)  # fail now, not after the first volume
        if self.axis not in SLICE_AXES:
            raise ValueError(f"decathlon: axis must be one of {', '.join(SLICE_AXES)}, got {self.axis!r}.")
        if isinstance(self.channel, bool) or not isinstance(self.channel, int) or self.channel < 0:
            raise ValueError(f"decathlon: channel must be a channel number 0, 1, ..., got {self.channel!r}.")

    def label_names(self, source_dir: Path) -> list[str]:
        return list(read_layout(source_dir).labels.names)

    def extra_columns(self) -> dict:
        from datasets import Value

        return {"modality": Value("string")}

    def list_cases(self, source_dir: Path) -> list[Case]:
        layout = read_layout(source_dir)
        self.license = layout.licence or "as set by the data owner (dataset.json names no licence)"
        self.citation = layout.reference
        modality, declared = self._modality(layout)
        patients = self._patient_of_case(source_dir)
        images = self._channel_images(layout, source_dir)
        masks = self._masks(layout)
        for case in sorted(set(masks) - set(images)):
            self.reject(relative_to_source(masks[case], source_dir), "a mask without its image in imagesTr/")
        cases = []
        for case, image in sorted(images.items()):
            if case not in masks:
                expected = f"labelsTr/{case}{layout.file_ending}"
                self.reject(relative_to_source(image, source_dir), f"an image without its mask {expected}")
                continue
            cases.append(
                Case(
                    patient_id=patients.get(case, case),
                    files={"image": relative_to_source(image, source_dir),
                           "mask": relative_to_source(masks[case], source_dir)},
                    info={"modality": modality, "modality_declared_by": declared, "labels": layout.labels,
                          "channels": layout.channel_names},
                )
            )
        self._note_test_images(layout)
        return cases

    def _modality(self, layout: DecathlonLayout) -> tuple[str, str]:
        """(modality, who said so): the `modality` option, else dataset.json's name of the channel."""
        if self.modality is not None:
            return self.modality, "the modality option"
        where = "channel_names" if layout.nnunet_v2 else "modality"
        named = layout.channel_names.get(self.channel)
        if named is None:
            raise ValueError(
                f"decathlon: {layout.root / 'dataset.json'} names no channel {self.channel} in `{where}` "
                f"({layout.channel_names or 'none'}); pass the modality option (--modality CT, MR, ...)."
            )
        modality = modality_of_channel(named)
        if modality is None:
            raise ValueError(
                f"decathlon: {layout.root / 'dataset.json'} calls channel {self.channel} {named!r}, which is not a "
                "modality (CT, MR or an MR sequence such as T2 or ADC, PET, US, XRAY); pass --modality."
            )
        return modality, f"dataset.json ({where} {self.channel}: {named!r})"

    def _channel_images(self, layout: DecathlonLayout, source_dir: Path) -> dict[str, Path]:
        """case -> its image file of the chosen channel, in imagesTr."""
        images = {}
        for path in _visible_files(layout.root / "imagesTr", layout.file_ending):
            stem = path.name[: -len(layout.file_ending)]
            if not layout.nnunet_v2:
                images[stem] = path
                continue
            match = _CHANNEL_FILE.match(stem)
            if match is None:
                self.reject(
                    relative_to_source(path, source_dir),
                    f"not named <case>_XXXX{layout.file_ending}, as nnU-Net v2 names a channel's file",
                )
            elif int(match["channel"]) == self.channel:
                images[match["case"]] = path
        return images

    def _masks(self, layout: DecathlonLayout) -> dict[str, Path]:
        return {
            path.name[: -len(layout.file_ending)]: path
            for path in _visible_files(layout.root / "labelsTr", layout.file_ending)
        }

    def _patient_of_case(self, source_dir: Path) -> dict[str, str]:
        if self.patients is None:
            return {}
        table = read_table(source_dir / self.patients)
        table.require({"case": "a case name as in imagesTr", "patient": "its patient"})
        return {row.values["case"]: row.values["patient"] for row in table.rows if row.values["patient"]}

    def _note_test_images(self, layout: DecathlonLayout) -> None:
        unlabelled = _visible_files(layout.root / "imagesTs", layout.file_ending)
        if unlabelled:
            self.note(f"imagesTs: {len(unlabelled)} file(s) without masks, not converted")

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict | InputNotice]:
        image_file, mask_file = case.files["image"], case.files["mask"]
        labels = case.info["labels"]
        if Path(image_file).name.lower().endswith(RASTER_SUFFIXES):
            row, _, mapped = read_pair(
                source_dir / image_file, source_dir / mask_file, labels, names=(image_file, mask_file)
            )
            if mapped:
                yield InputNotice(BINARY_255_NOTICE, mask_file)
            yield dict(row, source_file=image_file, modality=case.info["modality"])
            return
        yield from self._volume_rows(case, source_dir, labels)

    def _volume_rows(self, case: Case, source_dir: Path, labels: LabelValues) -> Iterator[dict | InputNotice]:
        image_file, mask_file = case.files["image"], case.files["mask"]
        modality = case.info["modality"]
        _refuse_channels_in_one_file(source_dir / image_file, image_file, case.info["channels"])
        volume, stored = load_image_and_mask(source_dir / image_file, source_dir / mask_file)
        if modality == CT and case.info["modality_declared_by"] != "the modality option":
            check_hounsfield(volume.values, name=image_file, declared_by=case.info["modality_declared_by"])
        mask, mapped = labels.class_indices(stored, name=mask_file)
        if mapped:
            yield InputNotice(BINARY_255_NOTICE, mask_file)
        scaled = volume_unit_range(volume, modality, ModalityPreprocessing(window=self.window))
        axis = SLICE_AXES[self.axis]
        axis = through_plane_axis(volume.spacing) if axis is None else axis
        policy = "all" if self.keep_empty_slices else "foreground"
        indices = select_slices(mask, axis, mask.shape[axis], policy, name=mask_file)
        if not indices:
            yield InputNotice(NO_EMPTY_SLICE_NOTICE, mask_file)
        for index in indices:
            yield {
                "image": encode_grey_image(display_slice(scaled, axis, index), name=image_file),
                "mask": encode_mask(display_slice(mask, axis, index), n_labels=len(labels.names), name=mask_file),
                "slice_index": index,
                "source_file": image_file,
                "modality": modality,
            }


def _refuse_channels_in_one_file(path: Path, name: str, channels: dict[int, str]) -> None:
    """MSD's several-channel cases are 4-D files; say how to split them (the loaders refuse 4-D data)."""
    try:
        shape = nib.load(path).shape  # the header only
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader, with its reason
        return
    if len(shape) == 4 and shape[3] > 1:
        named = ", ".join(f"{number} {channel}" for number, channel in sorted(channels.items())) or "unnamed"
        raise ValueError(
            f"{name}: {shape[3]} channels in one 4-D file (dataset.json: {named}); this converter reads one channel "
            "per file. Split them with nnU-Net's `nnUNetv2_convert_MSD_dataset` (one `<case>_XXXX.nii.gz` file per "
            "channel), then choose one with --option channel=N."
        )


def _visible_files(folder: Path, ending: str) -> list[Path]:
    """Files of `folder` with `ending`, hidden ones left out (MSD's archives carry macOS `._<case>` copies)."""
    if not folder.is_dir():
        return []
    return sorted(
        path for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(ending.lower())
    )
