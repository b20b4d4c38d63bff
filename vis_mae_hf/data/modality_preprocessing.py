"""Per-modality intensity preprocessing of unlabelled (and generic labelled) images: files -> [0, 1] grey slices.

Decoding, modality transforms, header windows and MONOCHROME1 inversion are `medical`'s job; this module only
decides, per modality, which window or normalisation to apply to the loaded `MedicalImage` / `MedicalVolume` (each
file is read once; a multi-frame DICOM once for all its frames) and what to do after:
- CT: the file's own header window (WindowCenter/WindowWidth or VOI LUT: the view the scanner or technologist
  chose for that series: lung for a chest CT, brain for a head CT), else `window` (default "abdomen",
  W400/L40: the downstream CT tasks are abdominal, and it shows every soft tissue). NIfTI CT has no usable window
  in its header: `window`.
- MR, PET: [0.5, 99.5] percentiles -> [0, 1] (no physical scale shared between scanners; percentiles resist the few
  very bright voxels of fat, vessels or bladder that would squash min-max); per image for 2-D files, per volume
  for NIfTI volumes.
- XRAY: the header VOI (window or VOI LUT) when present, else percentiles; MONOCHROME1 is inverted by the loader.
- US: grey as stored, colour (RGB, palette, YBR) to grey by ITU-R 601-2 luminance, what PIL's convert("L") uses.
- PNG/JPEG/TIFF display images (8-bit) are kept as they are: someone already chose their window.

Frames: a multi-frame DICOM or a volume gives at most `max_images_per_file` images, evenly spaced (neighbouring
cine frames and thin slices are near-duplicates that add cost, not information); constant frames/slices (air,
padding) are dropped. A DICOM series stored one slice per file gives one image per file.

Modality of non-DICOM files (NIfTI, PNG, ...): from a caller's hint, else from a folder name on the path (CT, MR,
MRI, PET, XRAY, X-RAY, CR, DX, US, ULTRASOUND, as a whole word), else unknown: such files are reported, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ..medical import (
    MedicalImage,
    MedicalImageError,
    MedicalVolume,
    UnknownFileFormatError,
    UnreadableMedicalImageError,
    load_medical_image,
    load_medical_volume,
)
from ..medical.dicom import frame_count, modality_group, read_dicom
from ..medical.files import DICOM, NIFTI, file_kind
from ..medical.images import dicom_image
from ..medical.orientation import AXIAL_AXIS, display_slice
from ..medical.windows import HEADER_WINDOW
from ..vocabulary import CT, IMAGING_MODALITIES, MR, PET, US, XRAY
from .features import quantize_unit_interval
from .volumes import percentile_unit_range

# Folder-name words that name a modality. "PT" and "MRI"-like abbreviations of patient ids are deliberately not
# here: "pt_017" is a patient, not PET.
_FOLDER_WORDS = {
    "ct": CT,
    "mr": MR,
    "mri": MR,
    "pet": PET,
    "xray": XRAY,
    "x-ray": XRAY,
    "cr": XRAY,
    "dx": XRAY,
    "radiograph": XRAY,
    "radiographs": XRAY,
    "us": US,
    "ultrasound": US,
}

# Files that are obviously not images: the corpus counts them and labelled studies leave them out, without listing
# them as bad, since a clinical export is full of them.
NON_IMAGE_SUFFIXES = {
    ".txt", ".csv", ".tsv", ".json", ".xml", ".md", ".html", ".htm", ".pdf", ".py", ".zip", ".tar", ".tgz", ".7z",
    ".xlsx", ".xls", ".log", ".yaml", ".yml", ".ini", ".cfg", ".doc", ".docx", ".npy", ".npz", ".h5", ".hdf5",
    ".parquet", ".arrow", ".mat", ".pkl",
}


class SkippedFile(ValueError):
    """A file that gives no image, with the reason and a short category for the summary counts."""

    NOT_AN_IMAGE = "not an image file"
    MODALITY_NOT_USED = "modality not used"
    MODALITY_UNKNOWN = "modality unknown"
    UNREADABLE = "unreadable or corrupt"
    NO_CONTENT = "no non-constant frame"

    def __init__(self, reason: str, category: str):
        super().__init__(reason)
        self.category = category


@dataclass(frozen=True)
class ModalityPreprocessing:
    """The choices above, as options (recorded in the corpus summary).

    Attributes:
        window: window for CT without a header window (and for all NIfTI CT): preset name or (width, level).
        percentiles: low/high percentiles mapped to 0/1 for MR, PET and header-less XRAY.
        max_images_per_file: most frames/slices taken from one multi-frame file or volume (None: all).
        skip_constant: drop frames/slices with a single intensity (empty padding, air-only slices).
    """

    window: str | tuple[float, float] = "abdomen"
    percentiles: tuple[float, float] = (0.5, 99.5)
    max_images_per_file: int | None = 16
    skip_constant: bool = True


def modality_from_path(path: Path) -> str | None:
    """A modality named by a folder on the path (nearest folder first), e.g. `data/MR/brain/scan.nii.gz` -> MR."""
    for folder in reversed(path.parent.parts):
        for word in re.split(r"[^a-z0-9-]+", folder.lower()):
            if word in _FOLDER_WORDS:
                return _FOLDER_WORDS[word]
    return None


def evenly_spaced(n_available: int, limit: int | None) -> list[int]:
    """`limit` indices spread evenly over range(n_available) (all of them when limit is None or larger)."""
    if limit is None or n_available <= limit:
        return list(range(n_available))
    return sorted(set(np.linspace(0, n_available - 1, limit).round().astype(int).tolist()))


def percentile_rescale(values01: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Percentile window of an image already in [0, 1]: the same as on its raw values, since min-max is affine."""

    return percentile_unit_range(values01, *percentiles)


def to_grey(image01: np.ndarray) -> np.ndarray:
    """(H, W) stays; (H, W, 3) colour -> (H, W) luminance, through PIL's ITU-R 601-2 conversion."""
    if image01.ndim == 2:
        return image01

    rgb = PILImage.fromarray(quantize_unit_interval(image01[..., :3]))
    return np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0


def _is_constant(image: np.ndarray) -> bool:
    return bool(image.size == 0 or float(image.max()) - float(image.min()) < 1e-6)


def _read_dicom(path: Path):
    try:
        return read_dicom(path)
    except UnknownFileFormatError as error:
        raise SkippedFile("not DICOM, NIfTI or a known image format", SkippedFile.NOT_AN_IMAGE) from error
    except UnreadableMedicalImageError as error:
        raise SkippedFile(str(error), SkippedFile.UNREADABLE) from error


def frame_intensities(image: MedicalImage, modality: str, options: ModalityPreprocessing) -> np.ndarray:
    """One loaded frame as a [0, 1] grey image, by the per-modality rules of the module docstring."""

    if modality in (CT, XRAY) and image.has_header_window:
        return to_grey(image.with_window(HEADER_WINDOW).pixels)
    if modality == CT:
        return to_grey(image.with_window(options.window).pixels)
    if modality in (XRAY, MR, PET):
        return percentile_rescale(to_grey(image.pixels), options.percentiles)
    return to_grey(image.pixels)  # US: as stored


def read_dicom_images(
    path: Path, options: ModalityPreprocessing, modality_hint: str | None = None
) -> tuple[str, list[tuple[int, np.ndarray]]]:
    """(modality, [(frame index or -1, [0, 1] grey image)]) of one DICOM file, read once for all its frames."""

    dataset = _read_dicom(path)
    modality = modality_group(dataset) or modality_hint
    if modality is None:  # checked before the pixels: reports, presentation states and NM are not decoded at all
        raw = str(dataset.get("Modality", "") or "none").strip() or "none"
        raise SkippedFile(f"DICOM modality {raw!r} is not one of {IMAGING_MODALITIES}", SkippedFile.MODALITY_NOT_USED)
    try:
        n_frames = frame_count(dataset, path)
        frames = [None] if n_frames == 1 else evenly_spaced(n_frames, options.max_images_per_file)
        images = []
        for frame in frames:
            image = dicom_image(dataset, path, frame=frame)
            images.append((-1 if frame is None else frame, frame_intensities(image, modality, options)))
    except MedicalImageError as error:
        raise SkippedFile(str(error), SkippedFile.UNREADABLE) from error
    return modality, _drop_constant(images, options)


def load_volume(path: Path) -> MedicalVolume:
    """A NIfTI file or DICOM series folder as a `MedicalVolume`; `SkippedFile` when it is not one volume."""

    try:
        return load_medical_volume(path)
    except MedicalImageError as error:
        raise SkippedFile(str(error), SkippedFile.UNREADABLE) from error


def volume_unit_range(volume: MedicalVolume, modality: str, options: ModalityPreprocessing) -> np.ndarray:
    """A loaded volume mapped onto [0, 1] over the whole volume by the rules of its modality: CT the `window`, MR and
    PET the percentiles, anything else min-max (so every slice of a volume shares one mapping)."""

    if modality == CT:
        return volume.unit_range(options.window)
    if modality in (MR, PET):
        return percentile_unit_range(volume.values, *options.percentiles)
    return volume.unit_range()


def volume_images(volume: MedicalVolume, modality: str, options: ModalityPreprocessing) -> list[tuple[int, np.ndarray]]:
    """[(axial slice index, [0, 1] grey image)] of a loaded volume, normalised over the whole volume."""

    scaled = volume_unit_range(volume, modality, options)
    n_slices = scaled.shape[AXIAL_AXIS]
    if options.skip_constant:
        in_plane = tuple(axis for axis in range(scaled.ndim) if axis != AXIAL_AXIS)
        varies = (scaled.max(axis=in_plane) - scaled.min(axis=in_plane)) > 1e-6
        candidates = np.flatnonzero(varies).tolist()
    else:
        candidates = list(range(n_slices))
    chosen = [candidates[i] for i in evenly_spaced(len(candidates), options.max_images_per_file)]
    return [(index, display_slice(scaled, AXIAL_AXIS, index)) for index in chosen]


def read_raster_image(path: Path) -> list[tuple[int, np.ndarray]]:
    """[(-1, [0, 1] grey image)] of a PNG/JPEG/TIFF/BMP: 8-bit kept as is, 16-bit/float min-max (`medical`)."""

    try:
        image = load_medical_image(path, frame=0)
    except MedicalImageError as error:
        raise SkippedFile(str(error), SkippedFile.UNREADABLE) from error
    if image.num_frames > 1:
        raise SkippedFile(
            f"multi-page image with {image.num_frames} pages; convert pages to files or DICOM", SkippedFile.NOT_AN_IMAGE
        )
    return [(-1, to_grey(image.pixels))]


def read_images(
    path: Path, options: ModalityPreprocessing, modality_hint: str | None = None
) -> tuple[str, list[tuple[int, np.ndarray]]]:
    """(modality, [(frame/slice index or -1, [0, 1] grey image at native size)]) of any supported file.

    Raises `SkippedFile` with the reason when the file gives no image.
    """

    kind = file_kind(path)
    if kind == DICOM:
        return read_dicom_images(path, options, modality_hint)
    modality = modality_hint or modality_from_path(path)
    if modality is None:
        raise SkippedFile(
            f"no modality: a {kind} file carries none; put it under a folder named CT, MR, PET, XRAY or US, or pass "
            "a modality for its input folder",
            SkippedFile.MODALITY_UNKNOWN,
        )
    if kind == NIFTI:
        return modality, volume_images(load_volume(path), modality, options)
    return modality, _drop_constant(read_raster_image(path), options)


def _drop_constant(images, options: ModalityPreprocessing):
    if not options.skip_constant:
        return images
    return [(index, image) for index, image in images if not _is_constant(image)]


def letterbox(image01: np.ndarray, size: int) -> np.ndarray:
    """Resize keeping the aspect ratio so the longer side is `size`, centre on a black `size` x `size` uint8 square.

    Aspect is kept because a plain resize of a 300x484 abdominal MR or a 1955x1841 radiograph would distort anatomy
    the model then learns as normal; black padding is the background of almost every medical image, and the padded
    band is the same in every epoch, so the model learns nothing spurious from it beyond "background".
    """

    height, width = image01.shape
    scale = size / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    resized = PILImage.fromarray(np.asarray(image01, dtype=np.float32)).resize(
        (new_width, new_height), PILImage.Resampling.BILINEAR  # PIL widens the filter when shrinking: antialiased
    )
    canvas = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - new_height) // 2, (size - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = quantize_unit_interval(
        np.clip(np.asarray(resized), 0.0, 1.0)
    )
    return canvas
