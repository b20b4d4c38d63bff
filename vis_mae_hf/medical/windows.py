"""Intensity windows: the one parser of a window specification, `preset | WIDTH,LEVEL | header`, and what a window
means for one file.

A window is given as a `CT_WINDOW_PRESETS` name ("abdomen", "brain", ...), an explicit (width, level) in the
modality's units (HU for CT), or "header": the file's own window (DICOM WindowCenter/WindowWidth or VOI LUT, NIfTI
cal_min/cal_max), which loaders report as `HeaderWindow`s. Applying a window is
`image_processing_vis_mae.apply_window`, the one implementation the processor uses too.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from ..image_processing_vis_mae import CT_WINDOW_PRESETS, resolve_window
from .errors import MedicalImageError
from .files import DICOM, NIFTI, RASTER

HEADER_WINDOW = "header"

# Why "header" cannot apply to a file of each kind without a window of its own: "window='header' but <path> ..."
NO_HEADER_WINDOW = {
    DICOM: "has no WindowCenter/WindowWidth (nor a VOI LUT Sequence)",
    NIFTI: "sets no display range (cal_min/cal_max)",
    RASTER: "is a plain image file, with no window in its header",
}

Window = str | tuple[float, float]


class HeaderWindow(NamedTuple):
    """A window a file carries itself: DICOM WindowWidth/WindowCenter (+ explanation), NIfTI cal_min/cal_max."""

    width: float
    level: float
    explanation: str = ""


def parse_window(text: str) -> Window:
    """A `--window` value: "header", a preset name, or "WIDTH,LEVEL" (e.g. "400,40"); ValueError lists the choices."""
    text = text.strip()
    if text.lower() == HEADER_WINDOW:
        return HEADER_WINDOW
    if "," in text:
        parts = text.split(",")
        try:
            window = tuple(float(part) for part in parts)
        except ValueError as error:
            raise ValueError(f"window {text!r}: WIDTH,LEVEL must be two numbers, e.g. 400,40.") from error
        return resolve_window(window)  # checks two finite numbers, width > 0
    if text.lower() not in CT_WINDOW_PRESETS:
        presets = ", ".join(sorted(CT_WINDOW_PRESETS))
        raise ValueError(f"unknown window {text!r}: expected header, WIDTH,LEVEL (e.g. 400,40) or one of {presets}.")
    return text.lower()


def is_header_window(window) -> bool:
    return isinstance(window, str) and window.strip().lower() == HEADER_WINDOW


def describe_window(window: Window | None) -> str:
    if window is None:
        return "none"
    if isinstance(window, str):
        return window
    width, level = resolve_window(window)
    return f"W{width:g}/L{level:g}"


def choose_header_window(windows: tuple[HeaderWindow, ...], window_index: int, path: Path) -> tuple[float, float]:
    """(width, level) of the file's header window `window_index`; the error lists the windows there are."""
    if not 0 <= window_index < len(windows):
        listed = ", ".join(
            f"{i}: width {w:g} level {c:g}{f' ({e})' if e else ''}" for i, (w, c, e) in enumerate(windows)
        )
        raise MedicalImageError(f"window_index={window_index} is out of range for {path}, whose windows are {listed}.")
    width, level, _ = windows[window_index]
    if not width > 0:
        raise MedicalImageError(f"{path} has a header window with width {width:g}; widths must be > 0.")
    return width, level


def no_header_window_error(path: Path, kind: str) -> MedicalImageError:
    return MedicalImageError(
        f"window='header' but {path} {NO_HEADER_WINDOW[kind]}; pass a preset, (width, level) or None."
    )


def file_window(
    window: Window | None, header_windows: tuple[HeaderWindow, ...], window_index: int, path: Path, kind: str
) -> tuple[float, float] | None:
    """The (width, level) `window` means for one file; None means min-max scaling.

    Args:
        window: None, "header", a preset name or (width, level).
        header_windows: the file's own windows, which "header" picks from with `window_index`.
        path: the file, named in every error.
        kind: the file kind (`files.DICOM`, ...), which says why a file without header windows has none.
    """
    if window is None:
        return None
    if is_header_window(window):
        if not header_windows:
            raise no_header_window_error(path, kind)
        return choose_header_window(header_windows, window_index, path)
    try:
        return resolve_window(window)
    except ValueError as error:
        raise MedicalImageError(f"{error} (loading {path}; 'header' uses the file's own window)") from error


def window_label(window: Window | None, width_level: tuple[float, float] | None) -> str:
    """How `window` mapped intensities, for people: "min-max", "header W100/L40", "window brain", "window W400/L40"."""
    if window is None:
        return "min-max"
    if is_header_window(window):
        width, level = width_level
        return f"header W{width:g}/L{level:g}"
    return f"window {describe_window(window)}"
