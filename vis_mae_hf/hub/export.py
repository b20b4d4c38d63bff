"""Turn a pretraining run (or a published-format checkpoint) into a complete Hub repository folder.

    export_repository("runs/mr", "mr", "repos/vis-mae-mr", repo_id="org/vis-mae-mr")

The folder holds `model.safetensors`, `config.json` with the full `auto_map`, `preprocessor_config.json` with the
variant's input settings, the flat code files for `trust_remote_code=True`, `README.md` rendered from
`MODEL_CARD.md`, and the records the card was written from (`training_summary.json`, `evaluation_summary.json`,
`reconstruction.png` when the run wrote one). The same inputs give byte-identical files: nothing depends on the clock,
the machine or dict ordering that the inputs do not fix.

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
from ..modeling_vis_mae import VisMaeForPreTraining
from ..output_folders import open_output_folder
from ..recipes import get_recipe
from ..vocabulary import PRETRAINING
from ..weights.published import convert_checkpoint
from .card import CardInputs, render_model_card
from .remote_code import CONFIG_AUTO_MAP, IMAGE_PROCESSOR_AUTO_MAP, write_remote_code
from .summaries import load_evaluation_summary, load_training_summary
from .validation import REPO_ID_PATTERN
from .variants import HubVariant, get_variant

TRAINING_SUMMARY_NAME = "training_summary.json"
EVALUATION_SUMMARY_NAME = "evaluation_summary.json"
RECONSTRUCTION_NAME = "reconstruction.png"
PROCESSOR_NAME = "preprocessor_config.json"
PROCESSOR_TYPES = ("VisMaeImageProcessor", "VisMaeImageProcessorPil")
EXPORTED_ARCHITECTURE = "VisMaeForPreTraining"
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


def _load_pretraining_model(model_dir: Path) -> VisMaeForPreTraining:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ExportError(f"{model_dir} holds no config.json: pass a pretraining output directory or checkpoint file.")
    architectures = json.loads(config_path.read_text(encoding="utf-8")).get("architectures") or []
    if architectures and architectures != [EXPORTED_ARCHITECTURE]:
        raise ExportError(
            f"{model_dir} holds a {', '.join(architectures)} model; the Hub variants are pretraining checkpoints "
            f"({EXPORTED_ARCHITECTURE}, what `run_pretraining` writes)."
        )
    model, loading_info = VisMaeForPreTraining.from_pretrained(model_dir, output_loading_info=True)
    problems = {name: sorted(map(str, keys)) for name, keys in loading_info.items() if keys}
    if problems:
        raise ExportError(
            f"The weights in {model_dir} do not load completely into {EXPORTED_ARCHITECTURE}: {problems}. A published "
            "checkpoint must load with an empty loading report."
        )
    return model


def exported_image_processor(
    model_dir: Path, model: VisMaeForPreTraining, variant: HubVariant, hounsfield_window=None
) -> VisMaeImageProcessor:
    """The processor a variant's repository carries: the run's own settings (or the published pretraining recipe
    when the directory has none), plus the variant's default CT window (see `variants`) unless one is set."""
    processor_path = model_dir / PROCESSOR_NAME
    if processor_path.is_file():
        processor_type = json.loads(processor_path.read_text(encoding="utf-8")).get("image_processor_type")
        if processor_type not in PROCESSOR_TYPES:
            raise ExportError(
                f"{processor_path} describes a {processor_type!r}, not a VIS-MAE image processor "
                f"({' or '.join(PROCESSOR_TYPES)}); delete it to use the published pretraining settings."
            )
        settings = json.loads(VisMaeImageProcessor.from_pretrained(model_dir).to_json_string())
        settings.pop("image_processor_type", None)
    else:
        height, width = model.config.image_height_width
        settings = get_recipe(PRETRAINING).processor_kwargs()
        settings.update(size={"height": height, "width": width}, num_channels=model.config.num_channels)
    if hounsfield_window is None:
        hounsfield_window = settings.get("hounsfield_window") or variant.default_hounsfield_window
    settings["hounsfield_window"] = hounsfield_window
    # Constructing (rather than editing attributes) runs the processor's own validation on the final settings.
    return VisMaeImageProcessor(**settings)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _processor_json(processor: VisMaeImageProcessor) -> str:
    settings = json.loads(processor.to_json_string())
    settings["auto_map"] = dict(IMAGE_PROCESSOR_AUTO_MAP)
    return json_text(settings)


def _hub_base_model(summary: dict) -> str | None:
    """The Hub id pretraining continued from, when the training summary records one (a local folder is not one)."""
    start = summary.get("base_model")
    if isinstance(start, str) and REPO_ID_PATTERN.match(start) and not Path(start).exists():
        return start
    return None


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

    summary: dict
    evaluation: dict | None
    base_model: str | None


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
    base_model = base_model or _hub_base_model(summary)
    if base_model is not None and not REPO_ID_PATTERN.match(base_model):
        raise ExportError(f"--base-model {base_model!r} is not a Hub model id (namespace/name).")
    return RunRecords(summary, evaluation_summary, base_model)


def write_repository_files(
    repo: Path, model: VisMaeForPreTraining, processor: VisMaeImageProcessor, records: RunRecords, model_dir: Path
) -> None:
    """Everything but the card: weights and config with the full `auto_map`, processor, code, records, picture."""
    repo.mkdir()
    model.config.auto_map = dict(CONFIG_AUTO_MAP)
    model.config.vis_mae_hf_version = __version__
    model.save_pretrained(repo)
    (repo / PROCESSOR_NAME).write_text(_processor_json(processor), encoding="utf-8")
    write_remote_code(repo)
    (repo / TRAINING_SUMMARY_NAME).write_text(json_text(records.summary), encoding="utf-8")
    if records.evaluation is not None:
        (repo / EVALUATION_SUMMARY_NAME).write_text(json_text(records.evaluation), encoding="utf-8")
    reconstruction = model_dir / RECONSTRUCTION_NAME
    if reconstruction.is_file():
        shutil.copyfile(reconstruction, repo / RECONSTRUCTION_NAME)


def _check_license(license: str, license_name: str | None, license_link: str | None) -> None:
    if license == "other" and not (license_name and license_link):
        raise ExportError('license "other" needs license_name and license_link (--license-name, --license-link).')


def export_repository(
    model: str | Path,
    variant: str,
    output: str | Path,
    *,
    repo_id: str | None = None,
    training_summary: str | Path | dict | None = None,
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
    """Write the Hub repository of one VIS-MAE variant into `output`.

    Args:
        model: a pretraining output directory (`run_pretraining`'s, or any `VisMaeForPreTraining.save_pretrained`
            directory) or a checkpoint file written by the published VIS-MAE pretraining code (`.pth`), which is
            converted first.
        variant: generic, ct, mr, pet, xray or us; must match the training summary's modality.
        output: the repository folder to write: a new or empty folder, or with `overwrite` an earlier export (only
            the files its manifest lists are replaced; `.git/` and the user's other files stay).
        repo_id: the Hub id the card's examples load from ("org/vis-mae-mr"); default
            "<your-namespace>/vis-mae-<variant>" (the push refuses a card that does not name its repository, so export
            again with the real id).
        training_summary: what the weights were trained on (see `summaries`); default `model/training_summary.json`.
        evaluation: optional evaluation summary of fine-tuning these weights (see `summaries`).
        license: Hub licence id of the weights; "other" needs `license_name` and `license_link`.
        base_model: Hub id of the checkpoint pretraining started from, if any (default: the training summary's
            `base_model` when it is a Hub id).
        datasets: Hub dataset ids of the pretraining data, if it is on the Hub.
        hounsfield_window: CT window for the processor (preset name or (width, level)), overriding the run's and the
            variant's default.
        card_template: a card template other than the package's `MODEL_CARD.md`.

    Returns:
        `output` as a Path.

    Raises:
        ExportError, SummaryError, CardTemplateError: with the input named and what was expected.
        OutputFolderError: `output` is not the export's to write (see the module docstring).
    """
    spec = get_variant(variant)
    model_path, output = Path(model), Path(output)
    if not model_path.exists():
        raise ExportError(f"--model {model_path} does not exist.")
    _check_license(license, license_name, license_link)
    read = _export_inputs(model_path, training_summary, evaluation, card_template)
    folder = open_output_folder(output, EXPORT_TOOL, inputs=read, overwrite=overwrite, previous_output="an export")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.staging-", dir=output.parent) as staging:
        staging = Path(staging)
        if model_path.is_file():
            model_dir = staging / "converted"
            convert_checkpoint(model_path, PRETRAINING, model_dir)
            converted_from = model_path.name
        else:
            model_dir = model_path
            converted_from = _conversion_source(model_dir)

        records = read_run_records(model_path, model_dir, spec, training_summary, evaluation, base_model)
        pretraining_model = _load_pretraining_model(model_dir)
        processor = exported_image_processor(model_dir, pretraining_model, spec, hounsfield_window)
        repo = staging / "repo"
        write_repository_files(repo, pretraining_model, processor, records, model_dir)
        inputs = CardInputs(
            variant=spec, repo_id=repo_id or f"<your-namespace>/{spec.default_repo_name}",
            config=_read_json(repo / "config.json"), processor=_read_json(repo / PROCESSOR_NAME),
            training_summary=records.summary, evaluation=records.evaluation, base_model=records.base_model,
            parameter_count=pretraining_model.num_parameters(), package_version=__version__,
            license=license, license_name=license_name, license_link=license_link, datasets=list(datasets),
            has_reconstruction=(repo / RECONSTRUCTION_NAME).is_file(), converted_from=converted_from,
        )
        (repo / "README.md").write_text(render_model_card(inputs, card_template), encoding="utf-8", newline="\n")
        folder.install(repo, last=["README.md"])
    return output
