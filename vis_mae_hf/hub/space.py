"""A Hugging Face Space that serves the demo page of one model repository: `vis-mae hub space`.

The folder holds `app.py` (builds the page of `vis_mae_hf.app.demo` against the model's Hub id, the page
`vis-mae demo --model ORG/NAME` serves), `requirements.txt` pinned to the versions installed here (torch from the
PyTorch CPU index, since free Spaces have no GPU; vis-mae-hf with its `app` and `demo` extras; Gradio) and
`README.md`, whose YAML header is the Space's configuration (sdk gradio and its version, app_file, the model, the
licence, a short description) and whose text carries the model's not-a-medical-device notice. It is written
through `output_folders` like every command output: a new or empty folder, or an earlier Space with `overwrite`.
"""

from __future__ import annotations

import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from huggingface_hub import SpaceCard, SpaceCardData

from ..output_folders import open_output_folder
from .notice import model_notice
from .validation import REPO_ID_PATTERN

SPACE_TOOL = "vis-mae hub space"
APP_FILE = "app.py"
PACKAGE = "vis-mae-hf"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SHORT_DESCRIPTION = "VIS-MAE demo for research; not a medical device"  # the Hub allows 60 characters

APP_TEMPLATE = '''"""The VIS-MAE demo page of {model_id}: what `vis-mae demo --model {model_id}` serves (written by {tool})."""

from vis_mae_hf.app.demo import build_demo

MODEL_ID = "{model_id}"
demo = build_demo(MODEL_ID)

if __name__ == "__main__":
    demo.launch()
'''

README_TEMPLATE = """---
{{{{ card_data }}}}
---

# VIS-MAE demo: {model_id}

Drop a DICOM file (or a zipped DICOM series), a NIfTI volume or a PNG/JPEG/TIFF image, or pick one of the bundled
examples, and see what [{model_id}](https://huggingface.co/{model_id}) makes of it: a segmentation overlay with
per-class area and volume, class probabilities, or the masked-autoencoder reconstruction of a pretraining
checkpoint. The same page runs locally with `pip install "vis-mae-hf[app,demo]"` and
`vis-mae demo --model {model_id}`.

{notice}
"""


def installed_version(package: str, extra: str | None = None) -> str:
    """The installed version of `package` (without a local build tag such as `+cpu`); ImportError naming the extra
    that installs it."""
    try:
        return version(package).split("+", 1)[0]
    except PackageNotFoundError as error:
        hint = f' (pip install "vis-mae-hf[{extra}]")' if extra else ""
        raise ImportError(f"A Space pins the installed {package}, which is not installed{hint}.") from error


def space_files(model_id: str, *, license: str = "apache-2.0") -> dict[str, str]:
    """File name -> text of the Space of the Hub model `model_id` (ORG/NAME)."""
    if not REPO_ID_PATTERN.match(model_id or ""):
        raise ValueError(f"--model-id {model_id!r} is not a Hub model id: expected ORG/NAME, e.g. my-org/vis-mae-mr.")
    gradio_version = installed_version("gradio", "app")
    requirements = [
        f"--extra-index-url {TORCH_CPU_INDEX}",
        f"torch=={installed_version('torch')}",
        f"{PACKAGE}[app,demo]=={installed_version(PACKAGE)}",
        f"gradio=={gradio_version}",
    ]
    card_data = SpaceCardData(
        title=f"VIS-MAE {model_id.split('/')[-1]}"[:60], sdk="gradio", sdk_version=gradio_version,
        app_file=APP_FILE, license=license, models=[model_id], short_description=SHORT_DESCRIPTION,
    )
    readme = SpaceCard.from_template(
        card_data, template_str=README_TEMPLATE.format(model_id=model_id, notice=model_notice(model_id))
    )
    return {
        APP_FILE: APP_TEMPLATE.format(model_id=model_id, tool=SPACE_TOOL),
        "requirements.txt": "\n".join(requirements) + "\n",
        "README.md": str(readme.content).rstrip() + "\n",
    }


def write_space(model_id: str, output: str | Path, *, license: str = "apache-2.0", overwrite: bool = False) -> Path:
    """Write the Space folder of `model_id` into `output` (new or empty, or an earlier Space with `overwrite`)."""
    files = space_files(model_id, license=license)
    folder = open_output_folder(output, SPACE_TOOL, overwrite=overwrite, previous_output="a Space")
    folder.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.path.parent, prefix=".vis-mae-space-") as staging:
        for name, text in files.items():
            Path(staging, name).write_text(text, encoding="utf-8")
        folder.install(Path(staging), last=[APP_FILE])
    return folder.path


__all__ = ["space_files", "write_space"]
