"""Turn a pretraining run (or a published-format checkpoint), or a fine-tuned segmenter or classifier, into a complete
Hub repository folder.

    export_repository("runs/mr", "mr", "repos/vis-mae-mr", repo_id="org/vis-mae-mr")
    export_repository("outputs/liver", None, "repos/liver", repo_id="org/liver-seg", evaluation="test-scores.json")

What is exported is read from the model folder's `config.json`: a `VisMaeForPreTraining` (or a checkpoint file of
the published code, converted first) is published as one of the six variants, and needs the variant and a training
summary; a `VisMaeForSemanticSegmentation` or `VisMaeForImageClassification` that `vis-mae finetune` wrote is
published as a fine-tuned model, and needs its `finetuning_summary.json` (the variant it started from is optional).

The folder holds `model.safetensors`, `config.json` with the full `auto_map`, `preprocessor_config.json` (the
variant's input settings for a pretraining checkpoint; the processor the model was fine-tuned with otherwise), the
flat code files for `trust_remote_code=True`, `README.md` rendered from `MODEL_CARD.md`, and the records the card was
written from: `training_summary.json` and `reconstruction.png` (pretraining), or `finetuning_summary.json` and
`eval_results.json` (fine-tuning; local folders in the summary reduced to their names), and `evaluation_summary.json`
when one is given (its `results` only). The same inputs give byte-identical files: nothing depends on the clock, the
machine or dict ordering that the inputs do not fix.

The folder is the export's own (`vis_mae_hf.output_folders`): a new or empty folder, or an earlier export whose
`.vis-mae-outputs.json` manifest lists what it wrote. `overwrite` replaces only those files, so a git clone of an
export keeps its `.git/` and every file the user added; any other non-empty folder is refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..image_processing_vis_mae import VisMaeImageProcessor
from ..modeling_vis_mae import VisMaeForPreTraining, VisMaePreTrainedModel
from ..output_folders import open_output_folder
from ..recipes import get_recipe
from ..vocabulary import CLASSIFICATION, MULTILABEL, PRETRAINING, SEGMENTATION
from ..weights.published import convert_checkpoint
from .card import CardInputs, render_model_card
from .remote_code import CONFIG_AUTO_MAP, IMAGE_PROCESSOR_AUTO_MAP, write_remote_code
from .summaries import (
    load_evaluation_summary,
    load_finetuning_summary,
    load_training_summary,
    load_validation_results,
    without_local_paths,
)
from .validation import MODEL_CLASSES, REPO_ID_PATTERN
from .variants import VARIANTS, HubVariant, get_variant

TRAINING_SUMMARY_NAME = "training_summary.json"
FINETUNING_SUMMARY_NAME = "finetuning_summary.json"
VALIDATION_RESULTS_NAME = "eval_results.json"
EVALUATION_SUMMARY_NAME = "evaluation_summary.json"
RECONSTRUCTION_NAME = "reconstruction.png"
PROCESSOR_NAME = "preprocessor_config.json"
PROCESSOR_TYPES = ("VisMaeImageProcessor", "VisMaeImageProcessorPil")
EXPORTED_ARCHITECTURE = "VisMaeForPreTraining"
# The fine-tuned model classes the exporter publishes, and the fine-tuning tasks each serves.
FINETUNED_ARCHITECTURES = {
    "VisMaeForSemanticSegmentation": (SEGMENTATION,),
    "VisMaeForImageClassification": (CLASSIFICATION, MULTILABEL),
}
EXPORT_TOOL = "vis-mae hub export"  # the command named in the output folder's manifest


class ExportError(ValueError):
    """The input cannot be exported as it is; the message names the input and what would be right."""


def json_text(data: dict) -> str:
    """The one JSON layout of every file the exporter writes (stable key order, 2-space indent, final newline)."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def check_summary_matches_variant(summary: dict, variant: HubVariant, source: str) -> None:
    """Refuse to publish weights under a variant name their training data contradict."""
    if summary["modality"] != variant.name:
        raise ExportError(
            f"{source} records pretraining on modality {summary['modality']!r}, but the export is for the "
            f"{variant.title} variant ({variant.name!r}); export it as --variant {summary['modality']}."
        )
    if variant.corpus_modalities is None:
        return
    foreign = {
        modality: count
        for modality, count in (summary.get("modality_counts") or {}).items()
        if count and modality.upper() not in variant.corpus_modalities
    }
    if foreign:
        raise ExportError(
            f"{source} counts images of other modalities {foreign} in the pretraining data of {variant.title}, which "
            f"must be pretrained on {', '.join(variant.corpus_modalities)} only."
        )


def saved_architecture(model_path: Path) -> str:
    """The model class a model folder's `config.json` names (a checkpoint file is published-format pretraining
    weights, and a config naming no class is taken to be pretraining, as older runs wrote it)."""
    if model_path.is_file():
        return EXPORTED_ARCHITECTURE
    config_path = model_path / "config.json"
    if not config_path.is_file():
        raise ExportError(
            f"{model_path} holds no config.json: pass a pretraining or fine-tuning output directory, or a checkpoint "
            "file."
        )
    architectures = json.loads(config_path.read_text(encoding="utf-8")).get("architectures") or [EXPORTED_ARCHITECTURE]
    if len(architectures) != 1 or architectures[0] not in (EXPORTED_ARCHITECTURE, *FINETUNED_ARCHITECTURES):
        raise ExportError(
            f"{model_path} holds a {', '.join(architectures)} model; the exporter publishes pretraining checkpoints "
            f"({EXPORTED_ARCHITECTURE}, what `run_pretraining` writes) and fine-tuned "
            f"{' and '.join(FINETUNED_ARCHITECTURES)} models (what `vis-mae finetune` writes)."
        )
    return architectures[0]


def _load_model(model_dir: Path, architecture: str) -> VisMaePreTrainedModel:
    model_class = MODEL_CLASSES[architecture]
    model, loading_info = model_class.from_pretrained(model_dir, output_loading_info=True)
    problems = {name: sorted(map(str, keys)) for name, keys in loading_info.items() if keys}
    if problems:
        raise ExportError(
            f"The weights in {model_dir} do not load completely into {architecture}: {problems}. A published "
            "checkpoint must load with an empty loading report."
        )
    return model


def _saved_processor_settings(model_dir: Path, remedy: str) -> dict | None:
    """The VIS-MAE processor settings saved in `model_dir` (None when there are none); another processor is refused,
    the message ending with `remedy`."""
    processor_path = model_dir / PROCESSOR_NAME
    if not processor_path.is_file():
        return None
    processor_type = json.loads(processor_path.read_text(encoding="utf-8")).get("image_processor_type")
    if processor_type not in PROCESSOR_TYPES:
        raise ExportError(
            f"{processor_path} describes a {processor_type!r}, not a VIS-MAE image processor "
            f"({' or '.join(PROCESSOR_TYPES)}); {remedy}."
        )
    settings = json.loads(VisMaeImageProcessor.from_pretrained(model_dir).to_json_string())
    settings.pop("image_processor_type", None)
    return settings


def exported_image_processor(
    model_dir: Path, model: VisMaeForPreTraining, variant: HubVariant, hounsfield_window=None
) -> VisMaeImageProcessor:
    """The processor a variant's repository carries: the run's own settings (or the published pretraining recipe
    when the directory has none), plus the variant's default CT window (see `variants`) unless one is set."""
    settings = _saved_processor_settings(model_dir, "delete it to use the published pretraining settings")
    if settings is None:
        height, width = model.config.image_height_width
        settings = get_recipe(PRETRAINING).processor_kwargs()
        settings.update(size={"height": height, "width": width}, num_channels=model.config.num_channels)
    if hounsfield_window is None:
        hounsfield_window = settings.get("hounsfield_window") or variant.default_hounsfield_window
    settings["hounsfield_window"] = hounsfield_window
    # Constructing (rather than editing attributes) runs the processor's own validation on the final settings.
    return VisMaeImageProcessor(**settings)


def finetuned_image_processor(model_dir: Path, hounsfield_window=None) -> VisMaeImageProcessor:
    """The processor a fine-tuned model was trained with (saved beside it by fine-tuning), with `hounsfield_window`
    set when one is given."""
    settings = _saved_processor_settings(
        model_dir, "save the processor the model was fine-tuned with there (`vis-mae finetune` does)"
    )
    if settings is None:
        raise ExportError(
            f"{model_dir} holds no {PROCESSOR_NAME}: a fine-tuned model is published with the image processor it was "
            "fine-tuned with (`vis-mae finetune` saves it beside the model)."
        )
    if hounsfield_window is not None:
        settings["hounsfield_window"] = hounsfield_window
    return VisMaeImageProcessor(**settings)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _processor_json(processor: VisMaeImageProcessor) -> str:
    settings = json.loads(processor.to_json_string())
    settings["auto_map"] = dict(IMAGE_PROCESSOR_AUTO_MAP)
    return json_text(settings)


def _hub_id(text) -> str | None:
    """`text` when it is a Hub model id (a local folder that exists is not one), else None."""
    if isinstance(text, str) and REPO_ID_PATTERN.match(text) and not Path(text).exists():
        return text
    return None


def _hub_base_model(summary: dict) -> str | None:
    """The Hub id pretraining continued from, when the training summary records one (a local folder is not one)."""
    return _hub_id(summary.get("base_model"))


def _conversion_source(model_dir: Path) -> str | None:
    report = model_dir / "conversion_report.json"
    if not report.is_file():
        return None
    source = json.loads(report.read_text(encoding="utf-8")).get("source")
    return Path(source).name if source else "a published checkpoint"


def _export_inputs(model_path: Path, *records: str | Path | dict | None) -> list[Path]:
    """What an export reads: the checkpoint file, or the files of the model folder, and the record files given.
    (A folder inside the model folder, such as pretraining's `hub_repository`, reads none of them.)"""
    files = [model_path] if model_path.is_file() else [path for path in model_path.iterdir() if path.is_file()]
    return files + [Path(record) for record in records if isinstance(record, (str, Path))]


@dataclass
class RunRecords:
    """The records a card is written from, read and checked before anything is written."""

    summary: dict | None
    evaluation: dict | None
    base_model: str | None
    finetuning: dict | None = None
    validation: dict | None = None


def read_run_records(
    model_path: Path,
    model_dir: Path,
    variant: HubVariant,
    training_summary: str | Path | dict | None,
    evaluation: str | Path | dict | None,
    base_model: str | None,
) -> RunRecords:
    """The checked training summary (default: beside the weights), evaluation summary and base model of an export."""
    if training_summary is None:
        training_summary = model_dir / TRAINING_SUMMARY_NAME
        if not training_summary.is_file() and model_path.is_file():
            training_summary = model_path.parent / TRAINING_SUMMARY_NAME
        if not training_summary.is_file():
            raise ExportError(
                f"{model_path} has no {TRAINING_SUMMARY_NAME}: the model card must say what the weights were "
                "trained on. Pass --training-summary FILE (the format is in vis_mae_hf/hub/summaries.py)."
            )
    summary = load_training_summary(training_summary)
    summary_name = "the training summary" if isinstance(training_summary, dict) else str(training_summary)
    check_summary_matches_variant(summary, variant, summary_name)
    evaluation_summary = load_evaluation_summary(evaluation) if evaluation is not None else None
    base_model = _checked_base_model(base_model or _hub_base_model(summary))
    return RunRecords(summary, evaluation_summary, base_model)


def _checked_base_model(base_model: str | None) -> str | None:
    if base_model is not None and not REPO_ID_PATTERN.match(base_model):
        raise ExportError(f"--base-model {base_model!r} is not a Hub model id (namespace/name).")
    return base_model


def check_finetuning_matches_model(summary: dict, model_dir: Path, architecture: str, source: str) -> None:
    """Refuse a fine-tuning summary that describes another model: another task, or other classes."""
    config = _read_json(model_dir / "config.json")
    tasks = FINETUNED_ARCHITECTURES[architecture]
    if summary["task"] not in tasks:
        raise ExportError(
            f"{source} records {summary['task']} fine-tuning, but {model_dir} holds a {architecture} "
            f"({' or '.join(tasks)}): it describes another model."
        )
    multi_label = config.get("problem_type") == "multi_label_classification"
    if architecture != "VisMaeForSemanticSegmentation" and multi_label != (summary["task"] == MULTILABEL):
        raise ExportError(
            f"{source} records {summary['task']} fine-tuning, but the model in {model_dir} is "
            f"{'multi-label' if multi_label else 'single-label'} (config.json problem_type)."
        )
    id2label = config.get("id2label") or {}
    classes = [id2label.get(str(index), id2label.get(index)) for index in range(len(id2label))]
    if classes != list(summary["label_names"]):
        raise ExportError(
            f"{source} names the classes {summary['label_names']} but the model in {model_dir} has {classes} "
            "(config.json id2label): it describes another model."
        )


def published_finetuning_summary(summary: dict) -> dict:
    """The fine-tuning summary as published: every text with its local folders reduced to their names
    (`summaries.without_local_paths`), so the repository does not publish the publisher's file system."""
    if isinstance(summary, dict):
        return {key: published_finetuning_summary(value) for key, value in summary.items()}
    if isinstance(summary, list):
        return [published_finetuning_summary(value) for value in summary]
    return without_local_paths(summary) if isinstance(summary, str) else summary


def read_finetuning_records(
    model_dir: Path,
    architecture: str,
    finetuning_summary: str | Path | dict | None,
    evaluation: str | Path | dict | None,
    base_model: str | None,
) -> RunRecords:
    """The checked fine-tuning summary (default: beside the model), validation results (`eval_results.json`
    beside the model, when there), evaluation summary and base model of a fine-tuned model's export."""
    if finetuning_summary is None:
        finetuning_summary = model_dir / FINETUNING_SUMMARY_NAME
        if not finetuning_summary.is_file():
            raise ExportError(
                f"{model_dir} has no {FINETUNING_SUMMARY_NAME}: the model card must say what the model was fine-tuned "
                "on. Pass --finetuning-summary FILE (the format is in vis_mae_hf/hub/summaries.py)."
            )
    summary = load_finetuning_summary(finetuning_summary)
    source = "the fine-tuning summary" if isinstance(finetuning_summary, dict) else str(finetuning_summary)
    check_finetuning_matches_model(summary, model_dir, architecture, source)
    summary = published_finetuning_summary(summary)
    validation_path = model_dir / VALIDATION_RESULTS_NAME
    validation = load_validation_results(validation_path) if validation_path.is_file() else None
    evaluation_summary = load_evaluation_summary(evaluation) if evaluation is not None else None
    start = summary["initialization"]["source"].partition(":")[2]
    base_model = _checked_base_model(base_model or _hub_id(start))
    return RunRecords(None, evaluation_summary, base_model, finetuning=summary, validation=validation)


def write_repository_files(
    repo: Path, model: VisMaePreTrainedModel, processor: VisMaeImageProcessor, records: RunRecords, model_dir: Path
) -> None:
    """Everything but the card: weights and config with the full `auto_map`, processor, code, records, picture."""
    repo.mkdir()
    model.config.auto_map = dict(CONFIG_AUTO_MAP)
    model.config.vis_mae_hf_version = __version__
    model.save_pretrained(repo)
    (repo / PROCESSOR_NAME).write_text(_processor_json(processor), encoding="utf-8")
    write_remote_code(repo)
    written = {
        TRAINING_SUMMARY_NAME: records.summary,
        FINETUNING_SUMMARY_NAME: records.finetuning,
        VALIDATION_RESULTS_NAME: records.validation,
        EVALUATION_SUMMARY_NAME: records.evaluation,
    }
    for name, record in written.items():
        if record is not None:
            (repo / name).write_text(json_text(record), encoding="utf-8")
    reconstruction = model_dir / RECONSTRUCTION_NAME
    if records.finetuning is None and reconstruction.is_file():
        shutil.copyfile(reconstruction, repo / RECONSTRUCTION_NAME)


def _check_license(license: str, license_name: str | None, license_link: str | None) -> None:
    if license == "other" and not (license_name and license_link):
        raise ExportError('license "other" needs license_name and license_link (--license-name, --license-link).')


def _checked_variant(
    variant: str | None, architecture: str, model_path: Path, training_summary, finetuning_summary
) -> HubVariant | None:
    """The variant of an export, and the records each kind of model is described by, checked before anything else."""
    if architecture == EXPORTED_ARCHITECTURE:
        if variant is None:
            raise ExportError(
                f"{model_path} is a pretraining checkpoint, published as one of the variants: pass --variant "
                f"({', '.join(VARIANTS)})."
            )
        if finetuning_summary is not None:
            raise ExportError(
                f"--finetuning-summary describes a fine-tuned model, but {model_path} is a pretraining checkpoint "
                "(described by --training-summary)."
            )
    elif training_summary is not None:
        raise ExportError(
            f"--training-summary describes pretraining, but {model_path} is a fine-tuned {architecture}, described by "
            f"its {FINETUNING_SUMMARY_NAME} (--finetuning-summary)."
        )
    return get_variant(variant) if variant is not None else None


@dataclass
class ExportParts:
    """What a repository is written from: the model, its processor, the records, where they came from."""

    model: VisMaePreTrainedModel
    processor: VisMaeImageProcessor
    records: RunRecords
    model_dir: Path
    converted_from: str | None = None


def _pretraining_parts(model_path: Path, staging: Path, spec: HubVariant, options: dict) -> ExportParts:
    """A pretraining checkpoint (converted first when it is a published-format file) and its records."""
    if model_path.is_file():
        model_dir = staging / "converted"
        convert_checkpoint(model_path, PRETRAINING, model_dir)
        converted_from = model_path.name
    else:
        model_dir = model_path
        converted_from = _conversion_source(model_dir)
    records = read_run_records(
        model_path, model_dir, spec, options["training_summary"], options["evaluation"], options["base_model"]
    )
    model = _load_model(model_dir, EXPORTED_ARCHITECTURE)
    processor = exported_image_processor(model_dir, model, spec, options["hounsfield_window"])
    return ExportParts(model, processor, records, model_dir, converted_from)


def _finetuned_parts(model_dir: Path, architecture: str, options: dict) -> ExportParts:
    """A fine-tuned segmenter or classifier and its records."""
    records = read_finetuning_records(
        model_dir, architecture, options["finetuning_summary"], options["evaluation"], options["base_model"]
    )
    model = _load_model(model_dir, architecture)
    processor = finetuned_image_processor(model_dir, options["hounsfield_window"])
    return ExportParts(model, processor, records, model_dir)


def _card_inputs(repo: Path, parts: ExportParts, spec: HubVariant | None, repo_id: str | None, options: dict):
    records = parts.records
    if repo_id is None:
        task = records.finetuning["task"] if records.finetuning else None
        repo_id = f"<your-namespace>/{spec.default_repo_name if task is None else f'vis-mae-{task}'}"
    return CardInputs(
        variant=spec, repo_id=repo_id,
        config=_read_json(repo / "config.json"), processor=_read_json(repo / PROCESSOR_NAME),
        training_summary=records.summary, evaluation=records.evaluation, base_model=records.base_model,
        parameter_count=parts.model.num_parameters(), package_version=__version__,
        license=options["license"], license_name=options["license_name"], license_link=options["license_link"],
        datasets=list(options["datasets"]), has_reconstruction=(repo / RECONSTRUCTION_NAME).is_file(),
        converted_from=parts.converted_from, finetuning=records.finetuning, validation=records.validation,
    )


def export_repository(
    model: str | Path,
    variant: str | None,
    output: str | Path,
    *,
    repo_id: str | None = None,
    training_summary: str | Path | dict | None = None,
    finetuning_summary: str | Path | dict | None = None,
    evaluation: str | Path | dict | None = None,
    license: str = "apache-2.0",
    license_name: str | None = None,
    license_link: str | None = None,
    base_model: str | None = None,
    datasets: Sequence[str] = (),
    hounsfield_window: str | Sequence[float] | None = None,
    card_template: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the Hub repository of one VIS-MAE variant, or of one fine-tuned model, into `output`.

    Args:
        model: a pretraining output directory (`run_pretraining`'s, or any `VisMaeForPreTraining.save_pretrained`
            directory), a checkpoint file written by the published VIS-MAE pretraining code (`.pth`, converted
            first), or a fine-tuning output directory (`vis-mae finetune`'s: a segmenter or classifier with its
            processor, `finetuning_summary.json` and `eval_results.json`).
        variant: generic, ct, mr, pet, xray or us; for pretraining weights required, and must match the training
            summary's modality; for a fine-tuned model optional: the variant it was fine-tuned from.
        output: the repository folder to write: a new or empty folder, or with `overwrite` an earlier export (only
            the files its manifest lists are replaced; `.git/` and the user's other files stay).
        repo_id: the Hub id the card's examples load from ("org/vis-mae-mr"); default
            "<your-namespace>/vis-mae-<variant or task>" (the push refuses a card that does not name its repository,
            so export again with the real id).
        training_summary: what pretraining weights were trained on (see `summaries`); default
            `model/training_summary.json`.
        finetuning_summary: what a fine-tuned model was trained on (see `summaries`); default
            `model/finetuning_summary.json`.
        evaluation: optional evaluation summary (see `summaries`; the JSON `vis-mae evaluate --output` writes is one).
        license: Hub licence id of the weights; "other" needs `license_name` and `license_link`.
        base_model: Hub id of the checkpoint pretraining (fine-tuning) started from, if any (default: the training
            summary's `base_model`, or the fine-tuning initialisation, when it is a Hub id).
        datasets: Hub dataset ids of the training data, if it is on the Hub.
        hounsfield_window: CT window for the processor (preset name or (width, level)), overriding the run's and the
            variant's default.
        card_template: a card template other than the package's `MODEL_CARD.md`.

    Returns:
        `output` as a Path.

    Raises:
        ExportError, SummaryError, CardTemplateError: with the input named and what was expected.
        OutputFolderError: `output` is not the export's to write (see the module docstring).
    """
    model_path, output = Path(model), Path(output)
    if not model_path.exists():
        raise ExportError(f"--model {model_path} does not exist.")
    _check_license(license, license_name, license_link)
    architecture = saved_architecture(model_path)
    spec = _checked_variant(variant, architecture, model_path, training_summary, finetuning_summary)
    options = dict(
        training_summary=training_summary, finetuning_summary=finetuning_summary, evaluation=evaluation,
        base_model=base_model, hounsfield_window=hounsfield_window, license=license, license_name=license_name,
        license_link=license_link, datasets=datasets,
    )
    read = _export_inputs(model_path, training_summary, finetuning_summary, evaluation, card_template)
    folder = open_output_folder(output, EXPORT_TOOL, inputs=read, overwrite=overwrite, previous_output="an export")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.staging-", dir=output.parent) as staging:
        staging = Path(staging)
        if architecture == EXPORTED_ARCHITECTURE:
            parts = _pretraining_parts(model_path, staging, spec, options)
        else:
            parts = _finetuned_parts(model_path, architecture, options)
        repo = staging / "repo"
        write_repository_files(repo, parts.model, parts.processor, parts.records, parts.model_dir)
        inputs = _card_inputs(repo, parts, spec, repo_id, options)
        (repo / "README.md").write_text(render_model_card(inputs, card_template), encoding="utf-8", newline="\n")
        folder.install(repo, last=["README.md"])
    return output
