"""Intensity windows: the one parser of a window specification, `preset | WIDTH,LEVEL | header`.

A window is given as a `CT_WINDOW_PRESETS` name ("abdomen", "brain", ...), an explicit (width, level) in the
modality's units (HU for CT), or "header": the file's own window (DICOM WindowCenter/WindowWidth or VOI LUT, NIfTI
cal_min/cal_max). Applying a window is `image_processing_vis_mae.apply_window`, the one implementation the processor
uses too.
"""

from __future__ import annotations

from ..image_processing_vis_mae import CT_WINDOW_PRESETS, resolve_window

HEADER_WINDOW = "header"

Window = str | tuple[float, float]


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


def describe_window(window: Window | None) -> str:
    if window is None:
        return "none"
    if isinstance(window, str):
        return window
    width, level = resolve_window(window)
    return f"W{width:g}/L{level:g}"
