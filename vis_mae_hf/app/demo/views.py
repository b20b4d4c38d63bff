"""What the demo page shows for a model, an input and the page's settings: no Gradio here, so tests call it directly.

`DemoModel.load(name)` loads a fine-tuned segmenter or classifier (`VisMaePredictor`) or a pretraining checkpoint
(`MaskedReconstruction`), with its card's notice. `open_input(path)` reads an upload once: a 2-D file (DICOM,
PNG/JPEG/TIFF) or a volume (NIfTI, a zipped DICOM series). `show(model, opened, settings)` computes the page: the
picture (overlay with legend, or input | masked input | reconstruction), the table (per-class pixels, mm² and mL, or
class probabilities) and a status line. Loading, windowing, prediction, overlays and measurements are the library's
(`medical`, `inference`); the window precedence is `inference.inputs` (the page's choice, then the model's processor
window for CT and NIfTI, then the file's default). `page_result` turns any user error into the one line `vis-mae`
prints for it (`app/user_errors.py`), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ...hub.notice import model_notice
from ...inference.inputs import (
    VOLUME,
    input_kind,
    load_image_for_model,
    volume_in_unit_range,
)
from ...inference.measurements import ClassSize, image_class_sizes, volume_class_sizes
from ...inference.overlay import overlay_image
from ...inference.predictor import (
    TASK_CLASSIFICATION,
    TASK_SEGMENTATION,
    VisMaePredictor,
    checkpoint_config,
)
from ...inference.reconstruction import MaskedReconstruction, is_pretraining_checkpoint
from ...medical import MedicalImage, MedicalVolume, load_medical_volume
from ...medical.orientation import AXIAL_AXIS, display_slice
from ...medical.windows import Window, parse_window
from ..user_errors import USER_ERRORS, error_line

COMMAND_NAME = "vis-mae demo"
TASK_PRETRAINING = "pretraining"
AUTOMATIC_WINDOW = "automatic"  # the precedence of `inference.inputs`: model window for CT/NIfTI, else the file's
CUSTOM_WINDOW = "WIDTH,LEVEL"
SEGMENTATION_HEADERS = ["class", "pixels on slice", "area on slice (mm²)", "voxels", "volume (mL)"]
CLASSIFICATION_HEADERS = ["class", "probability"]
NO_SPACING = "no pixel spacing in the file"


@dataclass
class DemoModel:
    """A loaded model, what it does, and its card's notice."""

    name: str
    task: str
    predictor: VisMaePredictor | None = None
    reconstruction: MaskedReconstruction | None = None
    notice: str = ""

    @classmethod
    def load(cls, name: str, *, device=None) -> DemoModel:
        """The model folder or Hub repo id `name`; `PredictorLoadError` (one line naming it) when it cannot serve."""
        name = str(name)
        if is_pretraining_checkpoint(checkpoint_config(name)):
            model = cls(name, TASK_PRETRAINING, reconstruction=MaskedReconstruction.from_pretrained(name, device=device))
        else:
            predictor = VisMaePredictor.from_pretrained(name, device=device)
            model = cls(name, predictor.task, predictor=predictor)
        model.notice = model_notice(name)
        return model

    @property
    def processor_window(self) -> Window | None:
        processor = (self.predictor or self.reconstruction).image_processor
        return getattr(processor, "hounsfield_window", None)


@dataclass
class OpenedInput:
    """An upload read once: its kind, and for a volume the loaded volume and its segmentations by window."""

    path: Path
    kind: str
    num_frames: int = 1
    volume: MedicalVolume | None = None
    segmentations: dict = field(default_factory=dict)  # window description -> label volume

    @property
    def num_slices(self) -> int:
        return 1 if self.volume is None else int(self.volume.values.shape[AXIAL_AXIS])


@dataclass(frozen=True)
class Settings:
    """The page's controls: window choice (`AUTOMATIC_WINDOW`, "header", a preset or `CUSTOM_WINDOW` with
    `custom_window` "W,L"), axial slice of a volume, frame of a multi-frame file, seed of the mask."""

    window: str = AUTOMATIC_WINDOW
    custom_window: str = ""
    slice_index: int | None = None
    frame: int = 0
    seed: int = 0


@dataclass
class PageView:
    """What the page shows: a picture, a table, a status line; `error` (the one-line message) replaces them."""

    picture: Image.Image | None = None
    headers: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    status: str = ""
    error: str | None = None


def chosen_window(settings: Settings) -> Window | None:
    """The window the page's controls ask for (None: the automatic precedence), parsed by `parse_window`."""
    if settings.window == AUTOMATIC_WINDOW:
        return None
    return parse_window(settings.custom_window if settings.window == CUSTOM_WINDOW else settings.window)


def open_input(path: str | Path) -> OpenedInput:
    """Read an upload once: a volume is loaded whole, a 2-D file is checked by reading its first frame."""
    path = Path(path)
    if input_kind(path) == VOLUME:
        return OpenedInput(path, VOLUME, volume=load_medical_volume(path))
    image = load_image_for_model(path, None, None, frame=0)[0]
    return OpenedInput(path, image.kind, num_frames=image.num_frames)


def _slice_index(opened: OpenedInput, settings: Settings) -> int:
    if settings.slice_index is None:
        return opened.num_slices // 2
    if not 0 <= settings.slice_index < opened.num_slices:
        raise ValueError(f"slice {settings.slice_index} is outside {opened.path}'s {opened.num_slices} axial slices.")
    return int(settings.slice_index)


def _size_rows(sizes: list[ClassSize]) -> list[list]:
    def number(value, digits):
        return NO_SPACING if value is None and digits == 2 else ("" if value is None else round(value, digits))

    return [
        [size.name, size.slice_pixels, number(size.slice_area_mm2, 2), size.volume_voxels or "",
         number(size.volume_ml, 3) if size.volume_voxels is not None else ""]
        for size in sizes
    ]


def _show_image(model: DemoModel, opened: OpenedInput, settings: Settings) -> PageView:
    image, intensity = load_image_for_model(opened.path, chosen_window(settings), model.processor_window,
                                            frame=settings.frame)
    status = f"{opened.path.name}: {_describe_image(image)}, {intensity}"
    return _predict(model, image.pixels, status, lambda labels: image_class_sizes(labels, _names(model),
                                                                                  image.pixel_spacing), settings)


def _describe_image(image: MedicalImage) -> str:
    height, width = image.pixels.shape[:2]
    frame = f", frame {image.frame} of {image.num_frames}" if image.num_frames > 1 else ""
    spacing = (f", pixel spacing {image.pixel_spacing[0]:g} x {image.pixel_spacing[1]:g} mm"
               if image.pixel_spacing else f", {NO_SPACING}")
    return f"{image.modality or image.kind} {width} x {height}{frame}{spacing}"


def _show_volume(model: DemoModel, opened: OpenedInput, settings: Settings) -> PageView:
    volume, index = opened.volume, _slice_index(opened, settings)
    unit_volume, intensity = volume_in_unit_range(volume, chosen_window(settings), model.processor_window)
    plane = display_slice(unit_volume, AXIAL_AXIS, index)
    spacing = " x ".join(f"{value:g}" for value in volume.spacing)
    status = (f"{opened.path.name}: volume {' x '.join(map(str, volume.values.shape))} voxels of {spacing} mm, "
              f"axial slice {index} of {opened.num_slices}, {intensity}")
    if model.task != TASK_SEGMENTATION:
        return _predict(model, plane, status, None, settings)
    if intensity not in opened.segmentations:  # the whole volume once per window: its mL need every slice
        opened.segmentations[intensity] = model.predictor.segment_volume(unit_volume).label_map
    label_volume = opened.segmentations[intensity]
    view = PageView(overlay_image(plane, display_slice(label_volume, AXIAL_AXIS, index), _names(model)),
                    SEGMENTATION_HEADERS, status=status)
    view.rows = _size_rows(volume_class_sizes(label_volume, _names(model), volume.spacing, index))
    return view


def _names(model: DemoModel) -> list[str]:
    return model.predictor.label_names


def _predict(model: DemoModel, pixels: np.ndarray, status: str, sizes, settings: Settings) -> PageView:
    """The model's answer for one 2-D picture in [0, 1]: overlay and sizes, probabilities, or the reconstruction."""
    if model.task == TASK_PRETRAINING:
        picture = model.reconstruction.picture(pixels, settings.seed)
        return PageView(picture, status=f"{status}; mask seed {settings.seed}")
    if model.task == TASK_CLASSIFICATION:
        scores = model.predictor.classify_images([pixels])[0]
        order = np.argsort(-scores)
        rows = [[_names(model)[index], round(float(scores[index]), 4)] for index in order]
        return PageView(Image.fromarray(np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)),
                        CLASSIFICATION_HEADERS, rows, status)
    label_map = model.predictor.segment_images([pixels])[0].label_map
    rows = [row[:3] for row in _size_rows(sizes(label_map))]
    return PageView(overlay_image(pixels, label_map, _names(model)), SEGMENTATION_HEADERS[:3], rows, status)


def show(model: DemoModel, opened: OpenedInput, settings: Settings) -> PageView:
    """The page for one input under the settings (user errors propagate; `page_result` turns them into a line)."""
    if opened.kind == VOLUME:
        return _show_volume(model, opened, settings)
    return _show_image(model, opened, settings)


def page_result(model: DemoModel, path: str | Path | None, opened: OpenedInput | None, settings: Settings):
    """(the input as opened, its `PageView`): the input is opened when `opened` is None; a user error becomes a view
    holding only the one-line message `vis-mae demo` would print."""
    if path is None and opened is None:
        return None, PageView(status="Upload a file or choose an example.")
    try:
        opened = opened or open_input(path)
        return opened, show(model, opened, settings)
    except USER_ERRORS as error:
        return None, PageView(error=error_line(COMMAND_NAME, error))
