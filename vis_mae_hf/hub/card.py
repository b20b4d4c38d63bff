"""The model card (`README.md`) of an exported repository: the `MODEL_CARD.md` Jinja2 template, rendered.

The template holds every sentence of the card, conditional passages included; this module computes only the facts
it names (numbers, names, flags, table rows), from what is actually exported (the config, the processor settings,
the training summary of a pretraining checkpoint or the fine-tuning summary and validation results of a fine-tuned
segmenter or classifier and, when given, the evaluation summary) and from the published facts the package keeps in
one place each: the recipes (`vis_mae_hf.recipes`), the architecture (`VisMaeConfig()` defaults) and the variants
(`variants`). The template's YAML block holds the metadata every card shares; `render_model_card` completes it
(licence, the pipeline tag of the model's task, modality tags, base model, datasets, metrics, `model-index`). The same inputs give the same bytes, and no
number is claimed that these sources do not contain.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import jinja2.meta
from huggingface_hub import EvalResult, ModelCard
from PIL import Image

from ..configuration_vis_mae import VisMaeConfig
from ..data.demo import MNI152_NOTICE, PYDICOM_NOTICE
from ..image_processing_vis_mae import PRETRAINING_MEAN, PRETRAINING_STD, resolve_window
from ..recipes import get_recipe
from ..vocabulary import CLASSIFICATION, MR, PET, PRETRAINING, SEGMENTATION
from .remote_code import REMOTE_CODE_FILES
from .validation import ARCHITECTURE_PIPELINE_TAGS, card_text_problems
from .variants import PAPER_TOTAL_IMAGES, VARIANTS, HubVariant

DEMO_TAG = "demo-weights"
# How training summaries name the built-in demo corpus (`run_pretraining` writes the last).
DEMO_DATASET_NAMES = (None, "demo", "built-in demo corpus")
# The config fields that make a model "the published size"; the values are `VisMaeConfig()`'s defaults.
SIZE_FIELDS = ("embed_dim", "depths", "num_heads", "window_size", "patch_size")
# How fine-tuning summaries name the built-in demo data (`data.loading` describes them as "demo: ...").
DEMO_FINETUNING_PREFIX = "demo"
AUTO_CLASSES = {
    "VisMaeForSemanticSegmentation": "AutoModelForSemanticSegmentation",
    "VisMaeForImageClassification": "AutoModelForImageClassification",
}
# The options of a fine-tuning run the card's hyperparameter table shows, in this order, when the summary has them.
SCHEDULE_KEYS = (
    "tuning", "image_size", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type", "warmup_epochs", "warmup_steps",
    "weight_decay", "decay_norms_and_biases", "adam_beta1", "adam_beta2", "augment", "bf16", "fp16", "seed",
)
# Validation bookkeeping that is not a score of the model.
NOT_SCORES = ("epoch", "runtime", "samples_per_second", "steps_per_second")


def default_template_path() -> Path:
    """`MODEL_CARD.md`, shipped inside the package (a link to the repository root's copy in a source checkout)."""
    return Path(str(importlib.resources.files("vis_mae_hf.hub").joinpath("MODEL_CARD.md")))


@dataclass
class CardInputs:
    """Everything a card says, gathered by the exporter.

    Attributes:
        variant: the published variant these weights are (a fine-tuned model: the variant it started from, if
            known, else None).
        repo_id: the Hub repository the card's code examples load from.
        config: the exported `config.json` as a dict.
        processor: the exported `preprocessor_config.json` as a dict.
        training_summary: a checked training summary (`summaries.load_training_summary`) of a pretraining
            checkpoint; None for a fine-tuned model.
        parameter_count: parameters of the exported model.
        package_version: the vis-mae-hf version that exported (and whose code files the repository carries).
        license: Hub licence id of the weights.
        license_name, license_link: required by the Hub with license "other".
        evaluation: a checked evaluation summary, or None.
        base_model: Hub id of the checkpoint pretraining (or fine-tuning) started from, or None.
        datasets: Hub dataset ids of the training data (only real Hub ids belong here).
        has_reconstruction: the repository carries `reconstruction.png`.
        converted_from: file name of a published-format checkpoint these weights were converted from, or None.
        finetuning: a checked fine-tuning summary (`summaries.load_finetuning_summary`) of a fine-tuned model.
        validation: the fine-tuned model's validation results (`eval_results.json`), or None.
    """

    variant: HubVariant | None
    repo_id: str
    config: dict
    processor: dict
    training_summary: dict | None
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
    finetuning: dict | None = None
    validation: dict | None = None

    @property
    def architecture(self) -> str:
        return (self.config.get("architectures") or ["VisMaeForPreTraining"])[0]

    @property
    def is_demo(self) -> bool:
        """Trained on the package's built-in demo data: the demo corpus (`dataset` recorded as null, or
        `demo: true`), or for a fine-tuned model the demo segmentation or classification set."""
        if self.finetuning is not None:
            return str(self.finetuning["dataset"]).startswith(DEMO_FINETUNING_PREFIX)
        summary = self.training_summary
        return bool(summary.get("demo")) or ("dataset" in summary and summary["dataset"] in DEMO_DATASET_NAMES)


class CardTemplateError(ValueError):
    """The model-card template cannot be rendered (no metadata block, a syntax error, facts it names that the
    renderer does not compute or leaves out, or a card without the required passages)."""


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
    data.pipeline_tag = ARCHITECTURE_PIPELINE_TAGS[inputs.architecture]
    tags = list(data.tags or []) + list(inputs.variant.modality_tags if inputs.variant else ())
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
        finetuned = inputs.finetuning is not None or inputs.variant is None
        data.model_name = inputs.repo_id.rsplit("/", 1)[-1] if finetuned else inputs.variant.title
        data.eval_results = results
    return data


# ---------------------------------------------------------------------------------------------------------------------
# Facts the template names
# ---------------------------------------------------------------------------------------------------------------------
def _architecture_facts(config: VisMaeConfig) -> dict:
    height, width = config.image_height_width
    return {
        **{name: getattr(config, name) for name in SIZE_FIELDS},
        "image_size": config.image_size,
        "num_channels": config.num_channels,
        "mask_ratio": config.mask_ratio,
        "mask_percent": config.mask_ratio * 100,
        "mask_unit_size": config.mask_unit_size,
        "stage_widths": config.stage_dims,
        "hidden_size": config.hidden_size,
        "grid_height": height // config.size_divisor,
        "grid_width": width // config.size_divisor,
    }


def _published_facts() -> dict:
    """The paper's model, recipes and corpus size, read from where the package keeps them."""
    pretraining = get_recipe(PRETRAINING)
    return {
        "architecture": _architecture_facts(VisMaeConfig()),
        "pretraining": pretraining,
        "segmentation": get_recipe(SEGMENTATION),
        "classification": get_recipe(CLASSIFICATION),
        "gpus": pretraining.reference_global_batch // pretraining.per_device_train_batch_size,
        "total_images": PAPER_TOTAL_IMAGES,
    }


def _model_facts(inputs: CardInputs) -> dict:
    """The exported model's size, and the Swin-Unet depths the published segmentation recipe gives it."""
    config = VisMaeConfig.from_dict(inputs.config)
    facts = _architecture_facts(config)
    published = VisMaeConfig()
    segmentation_depths = list(get_recipe(SEGMENTATION).depths)
    if len(segmentation_depths) != len(config.depths):  # the recipe's deeper stage has no place in this encoder
        segmentation_depths = list(config.depths)
    facts.update(
        parameter_count=inputs.parameter_count,
        is_published_size=all(getattr(config, name) == getattr(published, name) for name in SIZE_FIELDS),
        segmentation_depths=segmentation_depths,
    )
    return facts


def _processor_facts(processor: dict) -> dict:
    size = processor.get("size") or {}
    window = processor.get("hounsfield_window")
    window_facts = None
    if window is not None:
        width, level = resolve_window(window)
        window_facts = {
            "preset": window if isinstance(window, str) else None,
            "width": width,
            "level": level,
            "low": level - width / 2,
            "high": level + width / 2,
        }
    return {
        "height": size.get("height"),
        "width": size.get("width"),
        "resampling": Image.Resampling(processor.get("resample", Image.Resampling.BILINEAR)).name.lower(),
        "num_channels": processor.get("num_channels"),
        "window": window_facts,
        "do_normalize": processor.get("do_normalize", True),
        "normalization": processor.get("normalization"),
        "image_mean": processor.get("image_mean"),
        "image_std": processor.get("image_std"),
        "pretraining_mean": PRETRAINING_MEAN,
        "pretraining_std": PRETRAINING_STD,
    }


def _run_facts(summary: dict) -> dict:
    return {
        "num_images": summary["num_images"],
        "steps": summary.get("global_steps"),
        "epochs": summary.get("epochs"),
        "final_loss": summary.get("final_loss"),
        "recipe": summary.get("recipe") or {},
        "trained_with": summary.get("package_version"),
    }


def _source_facts(source) -> dict:
    """One entry of the summary's `sources`: free text, or a record with a name, counts and licence."""
    if not isinstance(source, dict):
        return {"text": str(source), **dict.fromkeys(("name", "images", "modality", "license", "attribution"))}
    return {
        "text": None,
        "name": source.get("name", "unnamed source"),
        **{key: source.get(key) for key in ("images", "modality", "license", "attribution")},
    }


def _demo_notices(counts: dict) -> list[str]:
    """The licence notices the demo corpus carries, for the modalities these weights saw: the DICOM test files
    (every modality) and, with MR or PET, the MNI152 template, whose copyright notice must travel with derived works."""
    notices = [PYDICOM_NOTICE.strip()]
    if counts.get(MR) or counts.get(PET):  # the T1 slices, and the synthetic PET simulated from MNI152 maps
        notices.append(MNI152_NOTICE.strip())
    return notices


def _data_facts(inputs: CardInputs) -> dict:
    summary = inputs.training_summary
    dataset = None if inputs.is_demo or not summary.get("dataset") else str(summary["dataset"])
    corpus_folder = None
    if dataset and ("/" in dataset or "\\" in dataset):
        # a local folder: its name says which corpus; the rest of the path is the publisher's file system
        corpus_folder = re.split(r"[\\/]", dataset.rstrip("/\\"))[-1]
    counts = summary.get("modality_counts") or {}
    notes = summary.get("notes") or []
    return {
        "dataset": dataset,
        "corpus_folder": corpus_folder,
        "modality_counts": counts,
        "sources": [_source_facts(source) for source in summary.get("sources") or []],
        "notes": [notes] if isinstance(notes, str) else [str(note) for note in notes],
        "demo_notices": _demo_notices(counts) if inputs.is_demo else [],
    }


def _start_facts(initialization: dict) -> dict:
    """Where fine-tuning started: "vismae" (VIS-MAE weights), "swin" (a Swin checkpoint) or "random", the source
    named (without "vismae:"), and how many tensors were loaded from it and how many started fresh."""
    text = initialization["source"]
    kind, _, source = text.partition(":")
    if kind not in ("vismae", "swin") or not source:
        kind, source = ("random", None) if text == "random" else ("other", text)
    loaded, fresh = len(initialization.get("loaded") or {}), len(initialization.get("fresh") or [])
    return {"kind": kind, "source": source, "loaded": loaded, "fresh": fresh, "total": loaded + fresh}


def _schedule_facts(summary: dict) -> list[dict]:
    """The recorded options of `SCHEDULE_KEYS`, as table rows (a later record of one option wins)."""
    options = {**(summary.get("arguments") or {}), **(summary.get("training_arguments") or {})}
    return [{"name": key, "value": options[key]} for key in SCHEDULE_KEYS if options.get(key) is not None]


def _validation_facts(results: dict | None) -> list[dict]:
    """The scores among validation results (`eval_` prefix dropped; NaN, "not scorable", as None): the overall
    scores first, then the per-class ones (`dice/<class>`), then the loss."""
    rows = []
    for key, value in (results or {}).items():
        name = key.removeprefix("eval_")
        if name in NOT_SCORES or name.startswith("num_"):
            continue
        rows.append({"metric": name, "value": None if value != value else value})  # NaN != NaN
    return sorted(rows, key=lambda row: (row["metric"] == "loss", "/" in row["metric"]))


def _finetuned_facts(inputs: CardInputs) -> dict:
    summary = inputs.finetuning
    options = {**(summary.get("arguments") or {}), **(summary.get("training_arguments") or {})}
    return {
        "task": summary["task"],
        "model_class": inputs.architecture,
        "auto_class": AUTO_CLASSES[inputs.architecture],
        "pipeline": ARCHITECTURE_PIPELINE_TAGS[inputs.architecture],
        "labels": list(summary["label_names"]),
        "dataset": summary["dataset"],
        "fold": summary.get("fold"),
        "label_fraction": summary["label_fraction"],
        "num_train_examples": summary.get("num_train_examples"),
        "num_eval_examples": summary.get("num_eval_examples"),
        "start": _start_facts(summary["initialization"]),
        "steps": summary.get("global_steps"),
        "schedule": _schedule_facts(summary),
        "recipe_defaults": (summary.get("recipe") or {}).get("defaults"),
        "selection_metric": options.get("metric_for_best_model"),
        "validation": _validation_facts(inputs.validation if inputs.validation is not None
                                         else summary.get("metrics")),
        "trained_with": summary.get("package_version"),
        "notes": [summary["notes"]] if isinstance(summary.get("notes"), str) else list(summary.get("notes") or []),
        # both demo sets are slices of the MNI152 template, whose notice must travel with derived works
        "demo_notices": [MNI152_NOTICE.strip()] if inputs.is_demo else [],
    }


def _evaluation_facts(evaluation: dict | None) -> list[dict]:
    keys = ("task", "dataset", "split", "label_fraction", "metrics", "notes")
    return [{key: result.get(key) for key in keys} for result in (evaluation or {}).get("results", [])]


def card_facts(inputs: CardInputs) -> dict:
    """Every name the template reads, computed from the card inputs and the published facts. A fine-tuned model's
    card has `finetuned` facts and no pretraining `run` or `data` (None); a pretraining checkpoint's the reverse."""
    finetuned = inputs.finetuning is not None
    return {
        "variant": inputs.variant,
        "variants": list(VARIANTS.values()),
        "repo_id": inputs.repo_id,
        "package_version": inputs.package_version,
        "transformers_version": inputs.config.get("transformers_version", "unknown"),
        "code_files": list(REMOTE_CODE_FILES),
        "is_demo": inputs.is_demo,
        "converted_from": inputs.converted_from,
        "base_model": inputs.base_model,
        "datasets": list(inputs.datasets),
        "has_reconstruction": inputs.has_reconstruction,
        "license": {"id": inputs.license, "name": inputs.license_name, "link": inputs.license_link},
        "published": _published_facts(),
        "model": _model_facts(inputs),
        "processor": _processor_facts(inputs.processor),
        "run": None if finetuned else _run_facts(inputs.training_summary),
        "data": None if finetuned else _data_facts(inputs),
        "finetuned": _finetuned_facts(inputs) if finetuned else None,
        "evaluation": _evaluation_facts(inputs.evaluation),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------
def _number(value) -> str:
    """A value as the card shows it: 4 significant digits for floats, JSON for lists and objects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def template_environment() -> jinja2.Environment:
    """The Jinja2 environment cards render in. `ModelCard.from_template` renders with Jinja's lenient undefined
    (a missing fact becomes empty text); here a missing fact is an error, so no card ships with a hole."""
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True
    )
    environment.filters.update(
        thousands=lambda count: f"{count:,}", number=_number, percent=lambda fraction: f"{fraction:.0%}"
    )
    return environment


def _compile_body(body: str, facts: dict, template_path: Path) -> jinja2.Template:
    """The template body, checked to name exactly the facts the renderer computes."""
    environment = template_environment()
    try:
        names = jinja2.meta.find_undeclared_variables(environment.parse(body))
    except jinja2.TemplateSyntaxError as error:
        raise CardTemplateError(f"The card template {template_path} is not valid Jinja2: {error}") from error
    unknown, unused = sorted(names - set(facts)), sorted(set(facts) - names)
    if unknown or unused:
        raise CardTemplateError(
            f"The card template {template_path} does not match the renderer: unknown placeholders {unknown}, "
            f"placeholders it lacks {unused}."
        )
    return environment.from_string(body)


def render_model_card(inputs: CardInputs, template: str | Path | None = None) -> str:
    """The `README.md` text of an exported repository.

    Args:
        inputs: what the card describes.
        template: path of a card template (default: the package's `MODEL_CARD.md`).

    Raises:
        CardTemplateError: the template has no YAML metadata, is not valid Jinja2, names facts this renderer does not
            compute or leaves out some it does, reads a fact that is not there, or renders a card that lacks a
            required section or statement.
    """
    template_path = Path(template) if template is not None else default_template_path()
    template_card = ModelCard(template_path.read_text(encoding="utf-8"))
    if not template_card.data.to_dict():
        raise CardTemplateError(f"The card template {template_path} has no YAML metadata block.")
    facts = card_facts(inputs)
    body_template = _compile_body(template_card.text, facts, template_path)
    try:
        body = body_template.render(facts)
    except jinja2.TemplateError as error:  # e.g. an attribute of a fact that does not exist
        raise CardTemplateError(f"The card template {template_path} cannot be rendered: {error}") from error
    # passages left out by their conditions leave blank lines behind
    body = re.sub(r"\n{3,}", "\n\n", body).strip("\n")
    problems = card_text_problems(body)
    if problems:
        raise CardTemplateError(
            f"The card template {template_path} renders a card that {'; '.join(problems)}: every card needs them."
        )
    return f"---\n{_metadata(template_card, inputs).to_yaml()}\n---\n\n{body}\n"


__all__ = [
    "CardInputs",
    "CardTemplateError",
    "render_model_card",
]
