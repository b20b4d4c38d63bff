"""The model card (`README.md`) of an exported repository, rendered from the `MODEL_CARD.md` template.

The template's YAML block holds the metadata every card shares; `render_model_card` completes it (licence, modality
tags, base model, datasets, metrics, `model-index`) and fills each `${placeholder}` of the body with text generated
from what is actually exported: the config, the processor settings, the training summary and, when given, the
evaluation summary. Nothing in the card comes from anywhere else, so the same inputs give the same bytes, and no
number is claimed that the inputs do not contain.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from huggingface_hub import EvalResult, ModelCard

from ..image_processing_vis_mae import (
    CT_WINDOW_PRESETS,
    PRETRAINING_MEAN,
    PRETRAINING_STD,
)
from .variants import PAPER_EPOCHS, PAPER_TOTAL_IMAGES, VARIANTS, HubVariant

TEMPLATE_NOTE = re.compile(r"<!-- template-note.*?-->\n?", re.DOTALL)
DEMO_TAG = "demo-weights"
# How training summaries name the built-in demo corpus (`run_pretraining` writes the last).
DEMO_DATASET_NAMES = (None, "demo", "built-in demo corpus")
RESAMPLING_NAMES = {0: "nearest", 2: "bilinear", 3: "bicubic"}
PUBLISHED_ARCHITECTURE = {"embed_dim": 96, "depths": [2, 2, 2, 2], "num_heads": [3, 6, 12, 24], "window_size": 7}


def default_template_path() -> Path:
    """`MODEL_CARD.md`, shipped inside the package (a link to the repository root's copy in a source checkout)."""
    return Path(str(importlib.resources.files("vis_mae_hf.hub").joinpath("MODEL_CARD.md")))


@dataclass
class CardInputs:
    """Everything a card says, gathered by the exporter.

    Attributes:
        variant: the published variant these weights are.
        repo_id: the Hub repository the card's code examples load from.
        config: the exported `config.json` as a dict.
        processor: the exported `preprocessor_config.json` as a dict.
        training_summary: a checked training summary (`summaries.load_training_summary`).
        parameter_count: parameters of the exported `VisMaeForPreTraining`.
        package_version: the vis-mae-hf version that exported (and whose code files the repository carries).
        license: Hub licence id of the weights.
        license_name, license_link: required by the Hub with license "other".
        evaluation: a checked evaluation summary, or None.
        base_model: Hub id of the checkpoint pretraining started from, or None.
        datasets: Hub dataset ids of the pretraining data (only real Hub ids belong here).
        has_reconstruction: the repository carries `reconstruction.png`.
        converted_from: file name of a published-format checkpoint these weights were converted from, or None.
    """

    variant: HubVariant
    repo_id: str
    config: dict
    processor: dict
    training_summary: dict
    parameter_count: int
    package_version: str
    license: str = "apache-2.0"
    license_name: str | None = None
    license_link: str | None = None
    evaluation: dict | None = None
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    has_reconstruction: bool = False
    converted_from: str | None = None

    @property
    def is_demo(self) -> bool:
        """Trained on the package's built-in demo corpus (`dataset` recorded as null, or `demo: true`)."""
        summary = self.training_summary
        return bool(summary.get("demo")) or ("dataset" in summary and summary["dataset"] in DEMO_DATASET_NAMES)


# ---------------------------------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------------------------------
def _dataset_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def eval_results(evaluation: dict | None) -> list[EvalResult]:
    """The `model-index` entries of an evaluation summary, one per (result, metric), in the summary's order."""
    if not evaluation:
        return []
    entries = []
    for result in evaluation["results"]:
        for metric, value in result["metrics"].items():
            entries.append(
                EvalResult(
                    task_type=result["task"],
                    dataset_type=result.get("dataset_id") or _dataset_slug(result["dataset"]),
                    dataset_name=result["dataset"],
                    dataset_split=result.get("split"),
                    metric_type=metric,
                    metric_value=value,
                )
            )
    return entries


def _metadata(template_card: ModelCard, inputs: CardInputs):
    data = template_card.data
    data.license = inputs.license
    if inputs.license == "other":
        data.license_name = inputs.license_name
        data.license_link = inputs.license_link
    tags = list(data.tags or []) + list(inputs.variant.modality_tags)
    if inputs.is_demo:
        tags.append(DEMO_TAG)
    data.tags = list(dict.fromkeys(tags))
    if inputs.base_model:
        data.base_model = inputs.base_model
    if inputs.datasets:
        data.datasets = list(inputs.datasets)
    results = eval_results(inputs.evaluation)
    if results:
        data.metrics = list(dict.fromkeys(result.metric_type for result in results))
        data.model_name = inputs.variant.title
        data.eval_results = results
    return data


# ---------------------------------------------------------------------------------------------------------------------
# Body sections
# ---------------------------------------------------------------------------------------------------------------------
def _count(value: int) -> str:
    return f"{value:,}"


def _plural(count: int, noun: str) -> str:
    return f"{_count(count)} {noun}{'' if count == 1 else 's'}"


def _number(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _variants_table(current: HubVariant) -> str:
    rows = ["| Variant | Pretraining images | Images in the paper |", "|---|---|---|"]
    for variant in VARIANTS.values():
        name = f"**{variant.title}** (this repository)" if variant.name == current.name else variant.title
        rows.append(f"| {name} | {variant.modality_description} | {variant.paper_image_count} |")
    return "\n".join(rows)


def _summary(inputs: CardInputs) -> str:
    summary = inputs.training_summary
    variant = inputs.variant
    source = "weights converted from a checkpoint of the published VIS-MAE code" if inputs.converted_from else "weights"
    images = "medical images" if variant.name == "generic" else f"{variant.modality_description} images"
    return (
        f"**{variant.title}** {source}, packaged for Hugging Face Transformers by vis-mae-hf "
        f"{inputs.package_version}: a VIS-MAE masked autoencoder pretrained without labels on "
        f"{_count(summary['num_images'])} {images} ({_data_description(inputs)})."
    )


def _data_description(inputs: CardInputs) -> str:
    summary = inputs.training_summary
    if inputs.is_demo:
        return "the vis-mae-hf demo corpus: real images that ship inside PyPI packages"
    if summary.get("dataset"):
        dataset = str(summary["dataset"])
        if "/" in dataset or "\\" in dataset:
            # a local folder: its name says which corpus; the rest of the path is the publisher's file system
            folder_name = re.split(r"[\\/]", dataset.rstrip("/\\"))[-1]
            return f"from the corpus `{folder_name}`"
        return f"from {dataset}"
    return "data source not recorded by the publisher"


def _scale_notice(inputs: CardInputs) -> str:
    summary = inputs.training_summary
    variant = inputs.variant
    steps = summary.get("global_steps")
    epochs = summary.get("epochs")
    trained = f"{_count(summary['num_images'])} images"
    if steps is not None:
        trained += f" for {_plural(steps, 'optimisation step')}"
    if epochs is not None:
        trained += f" ({_number(epochs)} epochs)"
    if inputs.is_demo:
        return (
            f"> **Demonstration weights.** These weights were pretrained on {trained}, in minutes, to show the "
            "publishing pipeline end to end. The paper's "
            f"{variant.title} was pretrained on {variant.paper_images} for {PAPER_EPOCHS} epochs. These are not "
            "the paper's weights, their features are not useful for research, and none of the paper's results "
            "apply to them."
        )
    if summary["num_images"] < PAPER_TOTAL_IMAGES:
        return (
            f"> **Scale.** These weights were pretrained on {trained}; the paper's {variant.title} was pretrained "
            f"on {variant.paper_images} for {PAPER_EPOCHS} epochs. They are not the paper's weights: the paper's "
            "results do not describe them (see *Evaluation* for what was measured on these weights)."
        )
    return f"> These weights were pretrained on {trained}."


def _architecture(config: dict, parameter_count: int) -> str:
    image_size = config.get("image_size")
    fields = (
        f"embedding width {config['embed_dim']}, encoder depths {config['depths']}, heads {config['num_heads']}, "
        f"window {config['window_size']}, patch {config['patch_size']}, nominal input {image_size} px, "
        f"{config['num_channels']} channels, mask ratio {config['mask_ratio']} in {config['mask_unit_size']}-pixel "
        f"units; {_count(parameter_count)} parameters"
    )
    published = all(config.get(key) == value for key, value in PUBLISHED_ARCHITECTURE.items())
    if published:
        return f"Architecture: the published one ({fields})."
    return (
        f"Architecture: **not the published size** ({fields}); the published model has width 96, depths "
        "[2, 2, 2, 2] and heads [3, 6, 12, 24]."
    )


def _usage(inputs: CardInputs) -> str:
    config = inputs.config
    repo = inputs.repo_id
    depths = config["depths"]
    image_size = config.get("image_size", 224)
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    divisor = config["patch_size"] * 2 ** (len(depths) - 1)
    grid = f"{height // divisor} x {width // divisor}"
    hidden = config["embed_dim"] * 2 ** (len(depths) - 1)
    segmentation_depths = list(depths)
    segmentation_depths[2 if len(depths) > 2 else -1] = 6
    return f"""With the package (`pip install vis-mae-hf`), whose import registers VIS-MAE with the Auto classes:

```python
import vis_mae_hf  # registers VIS-MAE with the Transformers Auto classes
from transformers import AutoImageProcessor, AutoModel
from vis_mae_hf import VisMaeForImageClassification, VisMaeForPreTraining, VisMaeForSemanticSegmentation

repo = "{repo}"
processor = AutoImageProcessor.from_pretrained(repo)
inputs = processor(images=image, return_tensors="pt")  # image: PIL image, or array in [0, 1] (see below)

# Image features from the Swin encoder: {grid} tokens of {hidden} channels per image
encoder = AutoModel.from_pretrained(repo)
features = encoder(**inputs).last_hidden_state

# Fine-tuning as in the paper. Segmentation: Swin-Unet, depths {segmentation_depths}, K classes with background
segmenter = VisMaeForSemanticSegmentation.from_pretrained(
    repo, num_labels=K, depths={segmentation_depths}, id2label={{0: "background", 1: "lesion"}}
)
# Classification: the encoder, a LayerNorm, mean pooling and a linear layer
classifier = VisMaeForImageClassification.from_pretrained(repo, num_labels=K, id2label={{0: "normal", 1: "abnormal"}})

# What pretraining learned: reconstruct a randomly masked image
mae = VisMaeForPreTraining.from_pretrained(repo)
reconstruction = mae(**inputs)  # .logits: predicted pixels per patch, .mask: which tokens were hidden
```

What each class takes from this checkpoint:

- `VisMaeForPreTraining`: everything; nothing is newly initialised.
- `VisMaeForSemanticSegmentation`: the encoder and the MAE decoder (the published transfer). The skip-connection
  projections, the final 4x expansion, the 1x1 head and any blocks beyond these depths start fresh; the mask token
  and pixel head are dropped. `from_pretrained(..., output_loading_info=True)` lists them. Called with no other
  argument, `VisMaeForSemanticSegmentation.from_pretrained("{repo}")` uses this config as stored: a 2-class
  (`LABEL_0`, `LABEL_1`) Swin-Unet with the pretraining depths {depths}, whose head is untrained. It is a starting
  point for binary segmentation, not a segmenter; pass `num_labels`, `id2label` and, for the published recipe,
  `depths={segmentation_depths}`.
- `VisMaeForImageClassification`: the encoder only; its LayerNorm and classifier start fresh (2 classes unless
  `num_labels` is given).
- `AutoModel` (`VisMaeModel`): the encoder. The checkpoint's decoder, mask token and pixel head are not used (the
  loading report lists them as unused), and the pooling LayerNorm starts as the identity (weight 1, bias 0).

Without the package, every Auto class loads the code stored in this repository:

```python
from transformers import AutoImageProcessor, AutoModel, AutoModelForSemanticSegmentation, pipeline

processor = AutoImageProcessor.from_pretrained("{repo}", trust_remote_code=True)
encoder = AutoModel.from_pretrained("{repo}", trust_remote_code=True)
segmenter = AutoModelForSemanticSegmentation.from_pretrained(
    "{repo}", trust_remote_code=True, num_labels=K, depths={segmentation_depths}
)
extractor = pipeline("image-feature-extraction", model="{repo}", trust_remote_code=True)
```

`AutoModelForPreTraining` and `AutoModelForImageClassification` work the same way. When `vis_mae_hf` is imported,
its own classes are used even with `trust_remote_code=True`; both read the same weights (see *Versions*)."""


def _window_range(width: float, level: float) -> str:
    return f"width {width:g} HU, level {level:g} HU: [{level - width / 2:g}, {level + width / 2:g}] HU -> [0, 1]"


def _window_text(window) -> str:
    if window is None:
        return "none"
    if isinstance(window, str):
        width, level = CT_WINDOW_PRESETS[window]
        return f'"{window}" ({_window_range(width, level)})'
    width, level = window
    return _window_range(width, level)


def _normalization_text(processor: dict) -> str:
    if not processor.get("do_normalize", True):
        return "none: the model receives [0, 1] pixels"
    normalization = processor.get("normalization")
    if normalization == "pretraining":
        return (
            f"`pretraining`: (x - {PRETRAINING_MEAN}) / {PRETRAINING_STD} on [0, 1] pixels, every channel "
            "(the VIS-MAE pretraining input)"
        )
    if normalization == "min_max":
        return "`min_max`: each image scaled to [0, 1]"
    if normalization == "mean_std":
        return f"`mean_std`: mean {processor.get('image_mean')}, std {processor.get('image_std')}"
    return "`none`: plain [0, 1] pixels"


def _preprocessing(inputs: CardInputs) -> str:
    processor = inputs.processor
    size = processor.get("size") or {}
    window = processor.get("hounsfield_window")
    resampling = RESAMPLING_NAMES.get(processor.get("resample"), processor.get("resample"))
    lines = [
        "`preprocessor_config.json` holds the input these weights were pretrained with; "
        "`AutoImageProcessor.from_pretrained` applies it:",
        "",
        "| Setting | Value |",
        "|---|---|",
        f"| size | {size.get('height')} x {size.get('width')} ({resampling} resampling) |",
        f"| channels | {processor.get('num_channels')} (grey images repeated; RGB kept) |",
        f"| intensity window | {_window_text(window)} |",
        f"| normalisation | {_normalization_text(processor)} |",
        "",
        "Unsigned 8- and 16-bit images (PNG, JPEG, most X-ray and ultrasound exports) are divided by 255 or 65535. "
        "Float and signed images already in [0, 1] are used as they are.",
    ]
    if window is not None:
        lines.append(
            "Float or signed-integer images outside [0, 1] are taken to be **CT in Hounsfield units** and windowed "
            "as above; pass `hounsfield_window=...` (a preset name or `(width, level)`) to the processor to use "
            "another window. Display images are never windowed twice."
        )
    else:
        lines.append(
            "Float or signed-integer images outside [0, 1] (raw MR or PET intensities, CT in Hounsfield units) are "
            "**refused**, not guessed: scale them to [0, 1] first (`vis_mae_hf.load_medical_image` reads DICOM and "
            "NIfTI files to [0, 1]), or pass `hounsfield_window=...` for CT in HU."
        )
    lines += [
        "",
        "Fine-tuning in the paper used other inputs: segmentation scaled each image min-max to [0, 1] at 320 px, "
        "classification used plain [0, 1] pixels at 224 px. With the package: "
        '`VisMaeImageProcessor.for_recipe("segmentation", image_size=320)` and '
        '`VisMaeImageProcessor.for_recipe("classification")`; without it, pass the same settings to '
        '`AutoImageProcessor.from_pretrained(repo, trust_remote_code=True, normalization="min_max", '
        'size={"height": 320, "width": 320})`.',
    ]
    return "\n".join(lines)


def _demo_notices(counts: dict) -> list[str]:
    """The licence notices the demo corpus carries, for the modalities these weights saw: the DICOM test files
    (every modality) and, with MR or PET, the MNI152 template, whose copyright notice must travel with derived works."""
    from ..data.demo import MNI152_NOTICE, PYDICOM_NOTICE

    notices = [PYDICOM_NOTICE.strip()]
    if counts.get("MR") or counts.get("PET"):  # the T1 slices, and the synthetic PET simulated from MNI152 maps
        notices += ["", MNI152_NOTICE.strip()]
    return notices


def _sources(summary: dict) -> list[str]:
    lines = []
    for source in summary.get("sources") or []:
        if isinstance(source, str):
            lines.append(f"- {source}")
            continue
        if not isinstance(source, dict):
            continue
        parts = [f"**{source.get('name', 'unnamed source')}**"]
        if source.get("images") is not None:
            parts.append(f"{_count(source['images'])} images")
        if source.get("modality"):
            parts.append(str(source["modality"]))
        if source.get("license"):
            parts.append(f"licence: {source['license']}")
        line = "- " + ", ".join(parts)
        if source.get("attribution"):
            line += f". {source['attribution']}"
        lines.append(line)
    return lines


def _notes(summary: dict) -> list[str]:
    notes = summary.get("notes") or []
    return [notes] if isinstance(notes, str) else [str(note) for note in notes]


def _training_data(inputs: CardInputs) -> str:
    summary = inputs.training_summary
    variant = inputs.variant
    counts = summary.get("modality_counts") or {}
    lines = [f"Pretraining used **{_count(summary['num_images'])} unlabeled images**, {_data_description(inputs)}."]
    if inputs.is_demo:
        lines.append(
            "The demo corpus (`vis_mae_hf.data.demo.load_demo_corpus()`) exists so that the whole pipeline runs "
            "offline. It is tiny, comes from few patients and is not representative of any clinical population."
        )
    if counts:
        lines += ["", "| Modality | Images |", "|---|---|"]
        lines += [f"| {modality} | {_count(count)} |" for modality, count in counts.items()]
        lines.append(f"| **total** | **{_count(summary['num_images'])}** |")
    else:
        lines.append("The images' modalities were not recorded.")
    sources = _sources(summary)
    if sources:
        lines += ["", "Sources:", "", *sources]
    notes = _notes(summary)
    if notes:
        lines += [""] + notes
    if inputs.is_demo:
        notices = _demo_notices(counts)
        lines += ["", "Notices of the demo images these weights were trained on:", "", "```text", *notices, "```"]
    lines += [
        "",
        f"For comparison, the paper pretrained {variant.title} on {variant.paper_images}; all six variants together "
        f"used {_count(PAPER_TOTAL_IMAGES)} images (MR 1.20 M, CT 0.57 M, PET/CT 66 k, X-ray 0.44 M, "
        "ultrasound 0.21 M). Those images are not public and were not used for these weights.",
    ]
    if inputs.datasets:
        lines.append("Hub datasets: " + ", ".join(f"`{dataset}`" for dataset in inputs.datasets) + ".")
    return "\n".join(lines)


def _training_procedure(inputs: CardInputs) -> str:
    summary = inputs.training_summary
    lines = []
    if inputs.converted_from:
        lines.append(
            f"These weights were converted from `{inputs.converted_from}`, a checkpoint written by the published "
            "VIS-MAE pretraining code, with `vis_mae_hf.weights.published` (every published key mapped, "
            "none left over)."
        )
    if inputs.base_model:
        base = inputs.base_model
        lines.append(f"Pretraining started from the weights of [`{base}`](https://huggingface.co/{base}).")
    run = []
    if summary.get("global_steps") is not None:
        run.append(_plural(summary["global_steps"], "optimisation step"))
    if summary.get("epochs") is not None:
        run.append(f"{_number(summary['epochs'])} epochs")
    if summary.get("final_loss") is not None:
        loss = _number(summary["final_loss"])
        run.append(f"final reconstruction loss {loss} (MSE on masked patches, normalised pixels)")
    if run:
        lines.append("Pretraining ran " + ", ".join(run) + ".")
    recipe = summary.get("recipe") or {}
    if recipe:
        lines += ["", "| Hyperparameter | Value |", "|---|---|"]
        for key, value in recipe.items():
            shown = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else _number(value)
            lines.append(f"| {key} | {shown} |")
    else:
        lines.append("The training recipe was not recorded by the publisher.")
    lines += [
        "",
        "The published recipe, for comparison: AdamW (betas 0.9, 0.95, weight decay 0.05), learning rate 1e-3 with "
        "10 warm-up epochs then half-cycle cosine decay, 800 epochs, batch 640 per GPU on 8 GPUs, 224 px inputs "
        "with random horizontal flips, 75 % of 16 x 16-pixel units masked.",
    ]
    if inputs.has_reconstruction:
        lines += [
            "",
            "![Masked inputs and their reconstructions at the end of pretraining](reconstruction.png)",
            "",
            "`reconstruction.png`: images, their masked versions and the model's reconstructions, written at the "
            "end of pretraining.",
        ]
    return "\n".join(lines)


def _evaluation(inputs: CardInputs) -> str:
    variant = inputs.variant
    if not inputs.evaluation:
        return (
            "No downstream evaluation of these weights was supplied, so this card reports none. The final "
            "pretraining loss above measures reconstruction, not usefulness. The results in the VIS-MAE paper were "
            f"obtained with the authors' weights, pretrained on {variant.paper_images}; they do not describe these "
            "weights."
        )
    lines = [
        "Results of fine-tuning **these** weights, as supplied by the publisher (not the paper's numbers):",
        "",
        "| Task | Dataset | Split | Labels used | Metric | Value |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for result in inputs.evaluation["results"]:
        fraction = result.get("label_fraction")
        labels = f"{fraction:.0%}" if fraction is not None else "all"
        for metric, value in result["metrics"].items():
            lines.append(
                f"| {result['task']} | {result['dataset']} | {result.get('split') or '-'} | {labels} | {metric} | "
                f"{_number(value)} |"
            )
        if result.get("notes"):
            notes.append(f"- {result['dataset']}: {result['notes']}")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _limitations_extra(inputs: CardInputs) -> str:
    variant = inputs.variant
    lines = []
    if variant.name == "generic":
        lines.append(
            "- **Mixed modalities.** The modalities are mixed in the proportions of the table under *Training "
            "data*; a modality with few images gets little of the model's capacity."
        )
    else:
        lines.append(
            f"- **One modality.** {variant.title} has seen {variant.modality_description} only; other modalities "
            "are outside its training distribution (the Generic variant covers all five)."
        )
    if inputs.is_demo:
        lines.append(
            "- **Demonstration weights.** A few dozen images and minutes of training are far too little for a "
            "masked autoencoder to learn transferable features; fine-tuning from these weights is not expected to "
            "beat random initialisation."
        )
    return "\n".join(lines)


def _versions(inputs: CardInputs) -> str:
    summary = inputs.training_summary
    trained_with = summary.get("package_version")
    code_files = "`configuration_vis_mae.py`, `modeling_vis_mae.py` and `image_processing_vis_mae.py`"
    return "\n".join(
        [
            f"- Exported with **vis-mae-hf {inputs.package_version}** (also recorded as `vis_mae_hf_version` in "
            "`config.json`). The repository's code files "
            f"({code_files}) are copies of that version's.",
            f"- Pretrained with vis-mae-hf {trained_with}." if trained_with else "- The vis-mae-hf version used for "
            "pretraining was not recorded.",
            f"- Transformers {inputs.config.get('transformers_version', 'unknown')} wrote `config.json`; the code "
            "needs Transformers 5.",
            "- With vis-mae-hf installed and imported, the installed version's classes load these weights instead of "
            "the repository's code. Versions with the same major and minor number read the same weights and "
            "settings; compare `config.vis_mae_hf_version` with `vis_mae_hf.__version__` when in doubt.",
        ]
    )


def _license_text(inputs: CardInputs) -> str:
    license_id = inputs.license if inputs.license != "other" else f"{inputs.license_name} ({inputs.license_link})"
    lines = [
        f"The weights in this repository are released under **{license_id}**. The code files are part of "
        "vis-mae-hf, licensed under Apache-2.0.",
        "The images the weights were pretrained on keep their own licences and terms of use; check them before "
        "using the weights, especially commercially.",
    ]
    attributions = [source for source in inputs.training_summary.get("sources") or [] if isinstance(source, dict)]
    if inputs.is_demo or any(source.get("attribution") for source in attributions):
        lines.append("The notices that come with the training images are reproduced under *Training data*.")
    return "\n\n".join(lines)


def card_fields(inputs: CardInputs) -> dict[str, str]:
    """The text that replaces each `${placeholder}` of the template body."""
    return {
        "title": inputs.variant.title + (" (demonstration weights)" if inputs.is_demo else ""),
        "summary": _summary(inputs),
        "scale_notice": _scale_notice(inputs),
        "variants_table": _variants_table(inputs.variant),
        "architecture": _architecture(inputs.config, inputs.parameter_count),
        "usage": _usage(inputs),
        "preprocessing": _preprocessing(inputs),
        "training_data": _training_data(inputs),
        "training_procedure": _training_procedure(inputs),
        "evaluation": _evaluation(inputs),
        "limitations_extra": _limitations_extra(inputs),
        "versions": _versions(inputs),
        "license_text": _license_text(inputs),
    }


class CardTemplateError(ValueError):
    """The model-card template cannot be rendered (no metadata block, unknown or unfilled placeholders)."""


def render_model_card(inputs: CardInputs, template: str | Path | None = None) -> str:
    """The `README.md` text of an exported repository.

    Args:
        inputs: what the card describes.
        template: path of a card template (default: the package's `MODEL_CARD.md`).

    Raises:
        CardTemplateError: the template has no YAML metadata, or placeholders this renderer does not fill, or lacks
            some it must fill.
    """
    template_path = Path(template) if template is not None else default_template_path()
    text = template_path.read_text(encoding="utf-8")
    template_card = ModelCard(text)
    if not template_card.data.to_dict():
        raise CardTemplateError(f"The card template {template_path} has no YAML metadata block.")
    body = TEMPLATE_NOTE.sub("", template_card.text, count=1)
    fields = card_fields(inputs)
    body_template = Template(body)
    if not body_template.is_valid():
        raise CardTemplateError(f"The card template {template_path} has a malformed ${{placeholder}}.")
    used = set(body_template.get_identifiers())
    unknown, unused = sorted(used - set(fields)), sorted(set(fields) - used)
    if unknown or unused:
        raise CardTemplateError(
            f"The card template {template_path} does not match the renderer: unknown placeholders {unknown}, "
            f"placeholders it lacks {unused}."
        )
    metadata = _metadata(template_card, inputs)
    rendered_body = body_template.substitute(fields)
    rendered_body = re.sub(r"\n{3,}", "\n\n", rendered_body)
    return f"---\n{metadata.to_yaml()}\n---\n{rendered_body.rstrip()}\n"
