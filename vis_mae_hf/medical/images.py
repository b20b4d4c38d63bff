"""One 2-D medical image, model-ready, with the facts of its file: `load_medical_image` -> `MedicalImage`.

`pixels` is float32 in [0, 1], (H, W) grey or (H, W, 3) RGB. What `window` means:

- a `CT_WINDOW_PRESETS` name or `(width, level)`: that window on the modality values (HU for CT);
- "header": the file's own window: DICOM WindowCenter/WindowWidth (`window_index` picks one of several; Enhanced
  objects keep them per frame in the functional groups), else its VOI LUT Sequence; NIfTI cal_min/cal_max;
- None: CT DICOM uses its header window when it has one (the view the scanner/technologist chose), else min-max;
  everything else is min-max scaled per image. 8-bit PNG/JPEG/BMP (display images) are only divided by 255;
  16-bit, 32-bit and float images (raw data that often fills a small part of the type's range) are min-max scaled.
  Colour images take no window.

The image keeps the modality values the window was applied to, so `with_window` shows it under another window
without reading the file again. Frames: a DICOM with NumberOfFrames > 1 (or a multi-page TIFF) needs `frame`
(`num_frames` says how many there are). NIfTI slices are axial slices of the volume in canonical RAS orientation,
shown the radiological way like a DICOM axial image (`orientation.display_slice`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from ..image_processing_vis_mae import apply_window, scale_min_max
from ..vocabulary import CT
from .dicom import (
    MONOCHROME,
    VoiLut,
    check_has_image,
    colour_pixels,
    decode_frame,
    frame_count,
    header_windows,
    modality_group,
    modality_values,
    pixel_spacing,
    read_dicom,
    voi_luts,
)
from .errors import MedicalImageError
from .files import (
    DICOM,
    NIFTI,
    RASTER,
    check_finite,
    checked_frame,
    existing_file,
    file_kind,
)
from .nifti import read_nifti, voxel_spacing
from .orientation import AXIAL_AXIS, display_slice
from .raster import read_raster
from .windows import (
    HEADER_WINDOW,
    HeaderWindow,
    Window,
    file_window,
    is_header_window,
    no_header_window_error,
    window_label,
)


@dataclass(frozen=True, eq=False)
class MedicalImage:
    """A 2-D medical image in [0, 1] and what its file says about it.

    Attributes:
        pixels: float32 in [0, 1], (H, W) grey or (H, W, 3) RGB: the image under the mapping `intensity` names.
        values: float32 (H, W) modality values the window was applied to (HU for CT, Bq/ml for PET, stored values
            otherwise); None for colour and 8-bit display images, which take no window.
        path: the file.
        kind: "dicom", "nifti" or "raster" (PNG, JPEG, TIFF, BMP).
        modality: the `vocabulary` group of a DICOM's Modality tag (CT, MR, PET, XRAY, US); None when unknown, and
            for NIfTI and 2-D image files, which carry none.
        pixel_spacing: (row, column) spacing in mm in the patient, or None when the file does not say.
        header_windows: the file's own windows for this frame: DICOM WindowWidth/WindowCenter, NIfTI cal_min/cal_max.
        intensity: how values became pixels: "header W100/L40", "header VOI LUT 0", "window brain",
            "window W400/L40", "min-max", "8-bit display" or "colour RGB" (and the other colour spaces).
        frame: which frame (multi-frame DICOM, multi-page TIFF) this is, from 0; for NIfTI, the axial slice.
        num_frames: how many frames the file holds; for NIfTI, how many axial slices.
        voi_luts: a DICOM's VOI LUTs, which window="header" uses when it has no WindowWidth/WindowCenter.
        inverted: MONOCHROME1: windowed values are inverted, so bone is bright as on a viewer.
    """

    pixels: np.ndarray
    values: np.ndarray | None
    path: Path
    kind: str
    modality: str | None
    pixel_spacing: tuple[float, float] | None
    header_windows: tuple[HeaderWindow, ...]
    intensity: str
    frame: int
    num_frames: int
    voi_luts: tuple[VoiLut, ...] = ()
    inverted: bool = False

    @property
    def has_header_window(self) -> bool:
        """The file carries its own window for this image (WindowWidth/WindowCenter, a VOI LUT, cal_min/cal_max)."""
        return bool(self.header_windows or self.voi_luts)

    def with_window(self, window: Window | None, window_index: int = 0) -> MedicalImage:
        """The same image under another window, without reading the file again; equal to
        `load_medical_image(path, window=window, window_index=window_index, ...)`.

        Raises:
            MedicalImageError: a window for an image without raw values (colour, 8-bit display), "header" for a
                file without a window of its own, an unknown preset, a `window_index` out of range.
        """
        if window is None:
            window = _default_window(self.kind, self.modality, self.header_windows)
        if self.values is None:
            if window is None:
                return self
            if is_header_window(window) and not self.header_windows:
                raise no_header_window_error(self.path, self.kind)
            raise MedicalImageError(
                f"{self.path} holds display values ({self.intensity}), not raw ones: window={window!r} cannot apply "
                "(windows act on the raw values of greyscale DICOM, NIfTI, 16-bit and float images)."
            )
        pixels, intensity = self._windowed(window, window_index)
        return replace(self, pixels=pixels, intensity=intensity)

    def _windowed(self, window: Window | None, window_index: int) -> tuple[np.ndarray, str]:
        if is_header_window(window) and not self.header_windows and self.voi_luts:
            if not 0 <= window_index < len(self.voi_luts):
                raise MedicalImageError(
                    f"window_index={window_index} is out of range for {self.path}, which has "
                    f"{len(self.voi_luts)} VOI LUT(s)."
                )
            pixels, intensity = self.voi_luts[window_index].apply(self.values), f"header VOI LUT {window_index}"
        else:
            width_level = file_window(window, self.header_windows, window_index, self.path, self.kind)
            pixels = scale_min_max(self.values) if width_level is None else apply_window(self.values, *width_level)
            intensity = window_label(window, width_level)
        pixels = np.asarray(pixels, dtype=np.float32)
        # MONOCHROME1 shows its minimum as white: invert after windowing so bone is bright, as on a viewer.
        return (1.0 - pixels if self.inverted else pixels), intensity


def _default_window(kind: str, modality: str | None, windows: tuple[HeaderWindow, ...]) -> Window | None:
    """CT DICOM: its own header window (the view its scanner or technologist chose); everything else min-max."""
    return HEADER_WINDOW if kind == DICOM and modality == CT and windows else None


def _grey_image(values: np.ndarray, window: Window | None, window_index: int, **facts) -> MedicalImage:
    """A greyscale image under `window` (None: the default), from its modality values and its file's facts."""
    unwindowed = MedicalImage(pixels=values, values=values, intensity="modality values", **facts)
    return unwindowed.with_window(window, window_index)


def load_medical_image(
    path: str | Path,
    *,
    window: Window | None = None,
    frame: int | None = None,
    window_index: int = 0,
    slice_index: int | None = None,
) -> MedicalImage:
    """Load one 2-D medical image, in [0, 1] under `window`, with its file's facts.

    Args:
        path: a DICOM file (any or no suffix), a NIfTI volume (.nii, .nii.gz), or a PNG/JPEG/TIFF/BMP image
            (8-bit, 16-bit or float).
        window: a CT preset name, `(width, level)`, "header", or None (see the module docstring).
        frame: the frame of a multi-frame DICOM or page of a multi-page TIFF, from 0; required when there are
            several. NIfTI volumes use `slice_index` instead.
        window_index: which of the header's windows (WindowCenter/WindowWidth values, or VOI LUT items) "header"
            uses, and CT with `window=None`.
        slice_index: axial slice of a NIfTI volume in canonical RAS order (0 = most inferior); default the middle.

    Raises:
        MedicalImageNotFoundError, UnreadableMedicalImageError, NoImagePixelDataError, MissingDicomDecoderError,
        MedicalImageError (bad frame/slice/window, NaN/Inf or empty pixels, 4-D data).
    """
    path = existing_file(path)
    kind = file_kind(path)
    if slice_index is not None and kind != NIFTI:
        raise MedicalImageError(f"slice_index applies to NIfTI volumes; {path} is not one (use frame for frames).")
    if kind == NIFTI:
        if frame is not None:
            raise MedicalImageError(
                f"frame applies to multi-frame DICOM and TIFF; for the NIfTI {path} use slice_index."
            )
        return _nifti_image(path, slice_index, window, window_index)
    if kind == RASTER:
        return _raster_image(path, frame, window, window_index)
    return dicom_image(read_dicom(path), path, frame=frame, window=window, window_index=window_index)


def dicom_image(
    dataset: Dataset, path: Path, *, frame: int | None = None, window: Window | None = None, window_index: int = 0
) -> MedicalImage:
    """One frame of a DICOM already read with `dicom.read_dicom`, as `load_medical_image` gives it: callers that
    need several frames, or the header before the pixels, read the file once."""
    check_has_image(dataset, path)
    num_frames = frame_count(dataset, path)
    frame_index = checked_frame(frame, num_frames, path)
    pixels, photometric = decode_frame(dataset, path, frame_index)
    facts = dict(
        path=path,
        kind=DICOM,
        modality=modality_group(dataset),
        pixel_spacing=pixel_spacing(dataset, frame_index, path),
        header_windows=header_windows(dataset, frame_index),
        frame=frame_index,
        num_frames=num_frames,
    )
    if photometric not in MONOCHROME:
        colour = colour_pixels(pixels, dataset, path, photometric)
        return MedicalImage(pixels=colour, values=None, intensity=f"colour {photometric}", **facts).with_window(
            window, window_index
        )
    if pixels.ndim != 2:
        raise MedicalImageError(f"{path}: expected a 2-D greyscale frame, got shape {pixels.shape}.")
    values = modality_values(pixels, dataset, frame_index, path)
    check_finite(values, path)
    return _grey_image(
        values, window, window_index, voi_luts=voi_luts(dataset), inverted=photometric == "MONOCHROME1", **facts
    )


def _nifti_image(path: Path, slice_index: int | None, window: Window | None, window_index: int) -> MedicalImage:
    volume = read_nifti(path)
    num_slices = volume.values.shape[AXIAL_AXIS]
    if slice_index is None:
        slice_index = num_slices // 2
    elif (
        isinstance(slice_index, bool)
        or not isinstance(slice_index, (int, np.integer))
        or not 0 <= slice_index < num_slices
    ):
        raise MedicalImageError(
            f"slice_index={slice_index!r} is out of range for {path}, which has {num_slices} axial slices "
            f"(0..{num_slices - 1})."
        )
    x_mm, y_mm, _ = voxel_spacing(volume.affine)
    return _grey_image(
        display_slice(volume.values, AXIAL_AXIS, int(slice_index)),
        window,
        window_index,
        path=path,
        kind=NIFTI,
        modality=None,
        pixel_spacing=(y_mm, x_mm),  # display rows run along Y (anterior at the top), columns along X
        header_windows=volume.header_windows,
        frame=int(slice_index),
        num_frames=num_slices,
    )


def _raster_image(path: Path, frame: int | None, window: Window | None, window_index: int) -> MedicalImage:
    pixels, frame_index, num_frames = read_raster(path, frame)
    facts = dict(
        path=path,
        kind=RASTER,
        modality=None,
        pixel_spacing=None,
        header_windows=(),
        frame=frame_index,
        num_frames=num_frames,
    )
    if pixels.dtype == np.uint8:  # a display image: someone already chose its window
        display = MedicalImage(
            pixels=pixels.astype(np.float32) / 255.0, values=None, intensity="8-bit display", **facts
        )
        return display.with_window(window, window_index)
    if pixels.ndim != 2:
        raise MedicalImageError(
            f"{path}: expected a greyscale image for {pixels.dtype} data, got shape {pixels.shape}."
        )
    # 16-bit / 32-bit / float images hold raw values, often in a small part of their range: min-max, not /65535.
    return _grey_image(pixels.astype(np.float32), window, window_index, **facts)
