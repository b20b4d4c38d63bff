"""The demo page as Gradio Blocks: controls on the left, the picture, the table and the status on the right.

Every callback goes through `views.page_result`, so a bad file shows the one line `vis-mae` prints for it. The
opened input (a volume with its segmentations) is kept in the page's session state, so moving the slice slider or
changing the seed reads nothing again. Element ids (`demo-picture`, `demo-table`, `demo-message`, `demo-upload`) are
what the browser test looks for.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from ...image_processing_vis_mae import CT_WINDOW_PRESETS
from ...medical.windows import HEADER_WINDOW
from ..user_errors import USER_ERRORS, error_line
from .examples import EXAMPLE_NAMES, example_file, example_notice, examples_status
from .views import (
    AUTOMATIC_WINDOW,
    COMMAND_NAME,
    CUSTOM_WINDOW,
    TASK_PRETRAINING,
    DemoModel,
    OpenedInput,
    PageView,
    Settings,
    page_result,
)

WINDOW_CHOICES = [AUTOMATIC_WINDOW, HEADER_WINDOW, *sorted(CT_WINDOW_PRESETS), CUSTOM_WINDOW]
TITLE = "VIS-MAE demo"


def _outputs(opened: OpenedInput | None, view: PageView):
    """The values of (state, picture, table, message, slice slider, frame slider) for one view."""
    table = pd.DataFrame(view.rows, columns=view.headers) if view.headers else pd.DataFrame()
    message = f"**{view.error}**" if view.error else view.status
    volume = opened is not None and opened.volume is not None
    frames = opened.num_frames if opened is not None else 1
    slices = opened.num_slices if volume else 1
    return (
        opened,
        view.picture,
        table,
        message,
        gr.update(visible=volume, maximum=max(slices - 1, 1)),
        gr.update(visible=frames > 1, maximum=max(frames - 1, 1)),
    )


def page_callbacks(model: DemoModel):
    """(on_upload, on_example, on_settings): the page's callbacks over `model`, plain functions tests can call."""

    def settings(window, custom_window, slice_index, frame, seed) -> Settings:
        return Settings(window or AUTOMATIC_WINDOW, custom_window or "",
                        None if slice_index is None else int(slice_index), int(frame or 0), int(seed or 0))

    def on_upload(path, window, custom_window, frame, seed):
        # A new input starts at its middle slice and its first frame.
        return _outputs(*page_result(model, path, None, settings(window, custom_window, None, 0, seed)))

    def on_example(name, window, custom_window, seed):
        try:
            path = example_file(name)
        except USER_ERRORS as error:
            return _outputs(None, PageView(error=error_line(COMMAND_NAME, error)))
        return on_upload(str(path), window, custom_window, 0, seed)

    def on_settings(opened, window, custom_window, slice_index, frame, seed):
        if opened is None:
            return _outputs(None, PageView(status="Upload a file or choose an example."))
        return _outputs(*page_result(model, None, opened, settings(window, custom_window, slice_index, frame, seed)))

    return on_upload, on_example, on_settings


def build_page(model: DemoModel) -> gr.Blocks:
    """The Blocks of the demo page for a loaded model (not launched)."""
    on_upload, on_example, on_settings = page_callbacks(model)
    with gr.Blocks(title=TITLE) as page:
        # A local folder is named by its own name: the page need not show where it lies on the server.
        shown = Path(model.name).name if Path(model.name).is_dir() else model.name
        gr.Markdown(f"# {TITLE}: `{shown}` ({model.task})")
        gr.Markdown(model.notice, elem_id="demo-notice")
        opened = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="DICOM, zipped DICOM series, NIfTI, PNG/JPEG/TIFF", type="filepath",
                                 elem_id="demo-upload")
                example = gr.Dropdown(list(EXAMPLE_NAMES), value=None, label="or an example",
                                      info=examples_status() or None)
                window = gr.Dropdown(WINDOW_CHOICES, value=AUTOMATIC_WINDOW, label="CT window",
                                     info="automatic: the model's window for CT and NIfTI, else the file's own")
                custom_window = gr.Textbox(label="WIDTH,LEVEL (HU)", placeholder="400,40")
                slice_index = gr.Slider(0, 1, value=0, step=1, label="axial slice", visible=False)
                frame = gr.Slider(0, 1, value=0, step=1, label="frame", visible=False)
                seed = gr.Number(0, precision=0, label="mask seed", visible=model.task == TASK_PRETRAINING)
            with gr.Column(scale=2):
                picture = gr.Image(type="pil", label="result", elem_id="demo-picture", format="png")
                table = gr.Dataframe(label="per class", elem_id="demo-table")
                message = gr.Markdown(elem_id="demo-message")
                credit = gr.Markdown()
        outputs = [opened, picture, table, message, slice_index, frame]
        upload.upload(on_upload, [upload, window, custom_window, frame, seed], outputs)
        example.change(on_example, [example, window, custom_window, seed], outputs)
        example.change(lambda name: example_notice(name) if name else "", [example], [credit])
        for control in (window, custom_window, slice_index, frame, seed):
            control.change(on_settings, [opened, window, custom_window, slice_index, frame, seed], outputs)
    return page


def build_demo(model_name: str, *, device=None) -> gr.Blocks:
    """The demo page of a model folder or Hub repo id: what `vis-mae demo` and a Space's app.py launch."""
    return build_page(DemoModel.load(model_name, device=device))
