"""Checks a repository folder must pass before it is pushed; every failure is collected, none stops the others.

What is checked, and why each matters to someone typing `from_pretrained("org/vis-mae-mr")`:
- weights: `model.safetensors` (or a complete safetensors shard index), no pickle weights;
- `config.json`: loads as a `VisMaeConfig`, names its architecture, carries the full `auto_map` and the package version;
- the model loads with an *empty* loading report (nothing missing, unexpected or mismatched) and runs on the output of
  the repository's processor;
- `preprocessor_config.json`: loads as a VIS-MAE processor and carries its `auto_map`;
- remote code: every file the maps name is present, with its relative imports, importing nothing a remote-code user
  lacks;
- `README.md`: parses with `huggingface_hub.ModelCard`, has the required metadata with valid values (the pipeline tag
  of the model's task), states data, recipe, evaluation, limitations and version, has no unfilled placeholder, and
  names the repository it is pushed to;
- a fine-tuned segmenter or classifier names its classes (`id2label`), so pipelines print names, not `LABEL_0`.
Optionally (`check_remote_code=True`) the repository is also loaded through every Auto class with
`trust_remote_code=True` in a fresh interpreter where `vis_mae_hf` cannot be imported (`remote_loading`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import ModelCard

from .. import modeling_vis_mae
from ..configuration_vis_mae import VisMaeConfig
from ..image_processing_vis_mae import VisMaeImageProcessor
from .remote_code import CONFIG_AUTO_MAP, IMAGE_PROCESSOR_AUTO_MAP, remote_code_problems
from .remote_loading import remote_code_loading_problems

REQUIRED_CARD_METADATA = ("library_name", "pipeline_tag", "license", "tags")
# The Hub pipeline tag of each model class: what the Hub's widget and `pipeline(model=repo)` run it as.
ARCHITECTURE_PIPELINE_TAGS = {
    "VisMaeForPreTraining": "image-feature-extraction",
    "VisMaeModel": "image-feature-extraction",
    "VisMaeForSemanticSegmentation": "image-segmentation",
    "VisMaeForImageClassification": "image-classification",
}
PIPELINE_TAGS = tuple(dict.fromkeys(ARCHITECTURE_PIPELINE_TAGS.values()))
FINETUNED_ARCHITECTURES = ("VisMaeForSemanticSegmentation", "VisMaeForImageClassification")
# Hub licence identifiers (https://huggingface.co/docs/hub/repositories-licenses) likely for medical-imaging weights.
HUB_LICENSES = frozenset(
    {
        "apache-2.0", "mit", "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "cc0-1.0", "cc-by-2.0",
        "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0",
        "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0", "cdla-permissive-2.0", "mpl-2.0", "odc-by", "odbl", "openrail", "pddl", "unlicense",
        "agpl-3.0", "gpl-3.0", "lgpl-3.0", "afl-3.0", "ecl-2.0", "epl-2.0", "eupl-1.2", "other",
    }
)
REQUIRED_CARD_SECTIONS = (
    "## Intended use",
    "## Out-of-scope use",
    "## Training data",
    "## Training procedure",
    "## Evaluation",
    "## Limitations and biases",
    "## Versions",
    "## Citation",
)
REPO_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Jinja2 syntax the renderer did not process: a placeholder, a statement or a comment.
UNFILLED_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}|\{%[^{}]*%\}|\{#[^{}]*#\}")
MODEL_CLASSES = {
    name: getattr(modeling_vis_mae, name) for name in modeling_vis_mae.__all__ if name.startswith("VisMae")
}


class RepositoryValidationError(ValueError):
    """A repository folder failed validation; `failures` lists every reason."""

    def __init__(self, repo_dir: str | Path, failures: list[str]):
        self.repo_dir = Path(repo_dir)
        self.failures = list(failures)
        listed = "\n".join(f"  - {failure}" for failure in self.failures)
        count = len(self.failures)
        super().__init__(f"{repo_dir} is not a publishable VIS-MAE repository ({count} problems):\n{listed}")


def _read_json(path: Path, failures: list[str]) -> dict | None:
    if not path.is_file():
        failures.append(f"{path.name} is missing")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        failures.append(f"{path.name} is not valid JSON: {error}")
        return None
    if not isinstance(data, dict):
        failures.append(f"{path.name} must hold a JSON object")
        return None
    return data


def _check_weights(repo_dir: Path, failures: list[str]) -> None:
    pickles = sorted(p.name for p in repo_dir.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    if pickles:
        failures.append(f"pickle weight files {pickles} must not be published: safetensors only")
    if (repo_dir / "model.safetensors").is_file():
        return
    index_path = repo_dir / "model.safetensors.index.json"
    if not index_path.is_file():
        failures.append("weights missing: no model.safetensors (nor model.safetensors.index.json)")
        return
    index = _read_json(index_path, failures) or {}
    shards = sorted(set((index.get("weight_map") or {}).values()))
    missing = [shard for shard in shards if not (repo_dir / shard).is_file()]
    if not shards or missing:
        failures.append(f"safetensors shards missing: {missing or 'the index names none'}")


def _check_auto_map(name: str, found: dict | None, expected: dict, failures: list[str]) -> None:
    found = found or {}
    for auto_class, reference in expected.items():
        if found.get(auto_class) != reference:
            failures.append(f"{name} auto_map[{auto_class!r}] is {found.get(auto_class)!r}, expected {reference!r}")


def _check_config(repo_dir: Path, failures: list[str]) -> dict | None:
    config = _read_json(repo_dir / "config.json", failures)
    if config is None:
        return None
    if config.get("model_type") != VisMaeConfig.model_type:
        failures.append(f"config.json model_type is {config.get('model_type')!r}, expected 'vis_mae'")
        return None
    try:
        VisMaeConfig.from_pretrained(repo_dir)
    except Exception as error:  # any reason the config does not load is a reason not to publish
        failures.append(f"config.json does not load as VisMaeConfig: {error}")
        return None
    _check_auto_map("config.json", config.get("auto_map"), CONFIG_AUTO_MAP, failures)
    if not config.get("vis_mae_hf_version"):
        failures.append("config.json does not record vis_mae_hf_version (the package version of the code files)")
    architectures = config.get("architectures") or []
    if len(architectures) != 1 or architectures[0] not in MODEL_CLASSES:
        failures.append(f"config.json architectures is {architectures!r}, expected one VIS-MAE model class")
        return None
    id2label = config.get("id2label") or {}
    if architectures[0] in FINETUNED_ARCHITECTURES and all(
        str(name) == f"LABEL_{index}" for index, name in id2label.items()
    ):
        failures.append(
            f"config.json id2label names no class ({id2label}): a fine-tuned {architectures[0]} must name its "
            "classes, or pipelines print LABEL_0, LABEL_1"
        )
    return config


def _check_model_and_processor(repo_dir: Path, config: dict | None, failures: list[str]) -> None:
    processor_settings = _read_json(repo_dir / "preprocessor_config.json", failures)
    processor = None
    if processor_settings is not None:
        _check_auto_map(
            "preprocessor_config.json", processor_settings.get("auto_map"), IMAGE_PROCESSOR_AUTO_MAP, failures
        )
        processor_type = processor_settings.get("image_processor_type")
        if processor_type not in ("VisMaeImageProcessor", "VisMaeImageProcessorPil"):
            failures.append(
                f"preprocessor_config.json image_processor_type is {processor_type!r}, not a VIS-MAE processor"
            )
        else:
            try:
                processor = VisMaeImageProcessor.from_pretrained(repo_dir)
            except Exception as error:
                failures.append(f"preprocessor_config.json does not load as VisMaeImageProcessor: {error}")
    if config is None:
        return
    model_class = MODEL_CLASSES[config["architectures"][0]]
    try:
        model, loading_info = model_class.from_pretrained(repo_dir, output_loading_info=True)
    except Exception as error:
        failures.append(f"the model does not load as {model_class.__name__}: {error}")
        return
    report = {name: sorted(map(str, keys)) for name, keys in loading_info.items() if keys}
    if report:
        failures.append(f"loading {model_class.__name__} reports problems (it must report none): {report}")
    if processor is None:
        return
    try:
        # A mid-grey 8-bit image: what the processor turns into model input must run through the model.
        pixel_values = processor(images=np.full((40, 48), 128, dtype=np.uint8), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            model.eval()(pixel_values=pixel_values)
    except Exception as error:
        failures.append(f"the model does not run on the processor's output: {error}")


def card_text_problems(text: str) -> list[str]:
    """What the text of a model card lacks or leaves unfilled: the required sections, the statement that the model is
    not a medical device, the vis-mae-hf version. Each problem reads as a predicate ("lacks the section ...")."""
    problems = [f"lacks the section {section!r}" for section in REQUIRED_CARD_SECTIONS if section not in text]
    if "not a medical device" not in text.lower():
        problems.append("does not state that the model is not a medical device")
    unfilled = sorted(set(UNFILLED_PLACEHOLDER.findall(text)))
    if unfilled:
        problems.append(f"has unfilled template placeholders {unfilled}")
    if not re.search(r"vis-mae-hf \d+\.\d+", text):
        problems.append("does not state the vis-mae-hf version")
    return problems


def _check_card(repo_dir: Path, repo_id: str | None, architecture: str | None, failures: list[str]) -> None:
    path = repo_dir / "README.md"
    if not path.is_file():
        failures.append("README.md (the model card) is missing")
        return
    try:
        card = ModelCard.load(path)
    except Exception as error:
        failures.append(f"README.md metadata does not parse: {error}")
        return
    metadata = card.data.to_dict()
    if not metadata:
        failures.append("README.md has no YAML metadata block")
        return
    for key in REQUIRED_CARD_METADATA:
        if not metadata.get(key):
            failures.append(f"README.md metadata lacks {key!r}")
    if metadata.get("library_name") not in (None, "transformers"):
        failures.append(f"README.md library_name is {metadata['library_name']!r}, expected 'transformers'")
    if metadata.get("pipeline_tag") and metadata["pipeline_tag"] not in PIPELINE_TAGS:
        failures.append(f"README.md pipeline_tag {metadata['pipeline_tag']!r} is not one of {', '.join(PIPELINE_TAGS)}")
    elif architecture in ARCHITECTURE_PIPELINE_TAGS and metadata.get("pipeline_tag") not in (
        None, ARCHITECTURE_PIPELINE_TAGS[architecture]
    ):
        failures.append(
            f"README.md pipeline_tag {metadata['pipeline_tag']!r} is not the task of the {architecture} model "
            f"({ARCHITECTURE_PIPELINE_TAGS[architecture]!r})"
        )
    license_id = metadata.get("license")
    if license_id and license_id not in HUB_LICENSES:
        failures.append(f"README.md license {license_id!r} is not a Hub licence id ({', '.join(sorted(HUB_LICENSES))})")
    if license_id == "other" and not (metadata.get("license_name") and metadata.get("license_link")):
        failures.append("README.md license 'other' needs license_name and license_link")
    tags = metadata.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(tag, str) and tag for tag in tags)):
        failures.append(f"README.md tags must be a list of strings, got {tags!r}")
    for key in ("base_model", "datasets"):
        values = metadata.get(key)
        if values is None:
            continue
        values = [values] if isinstance(values, str) else values
        bad = [v for v in values if not (isinstance(v, str) and REPO_ID_PATTERN.match(v))]
        if bad:
            failures.append(f"README.md {key} entries {bad} are not Hub ids (namespace/name)")
    if "model-index" in metadata and not metadata.get("metrics"):
        failures.append("README.md has results (model-index) but no metrics list")
    failures.extend(f"README.md {problem}" for problem in card_text_problems(card.text))
    if repo_id is not None and f'"{repo_id}"' not in card.text:
        failures.append(
            f"README.md's examples do not load {repo_id!r}: export again with --repo-id {repo_id} so the card names "
            "the repository it is pushed to"
        )


def validate_repository(
    repo_dir: str | Path, repo_id: str | None = None, *, check_remote_code: bool = False
) -> list[str]:
    """Every reason `repo_dir` must not be published (an empty list when it may).

    Args:
        repo_dir: an exported repository folder.
        repo_id: the Hub id it is about to be pushed to; the card must load from it.
        check_remote_code: also load it through every Auto class with `trust_remote_code=True` in a subprocess
            without vis_mae_hf (a few seconds more).
    """
    repo_dir = Path(repo_dir)
    if not repo_dir.is_dir():
        return [f"{repo_dir} is not a directory"]
    failures: list[str] = []
    if repo_id is not None and not REPO_ID_PATTERN.match(repo_id):
        failures.append(f"repo id {repo_id!r} is not of the form namespace/name")
    _check_weights(repo_dir, failures)
    config = _check_config(repo_dir, failures)
    _check_model_and_processor(repo_dir, config, failures)
    failures.extend(remote_code_problems(repo_dir))
    _check_card(repo_dir, repo_id, (config or {}).get("architectures", [None])[0], failures)
    if check_remote_code and not failures:
        failures.extend(remote_code_loading_problems(repo_dir))
    return failures


def require_valid_repository(
    repo_dir: str | Path, repo_id: str | None = None, *, check_remote_code: bool = False
) -> None:
    """Raise `RepositoryValidationError` listing every failure of `validate_repository`."""
    failures = validate_repository(repo_dir, repo_id, check_remote_code=check_remote_code)
    if failures:
        raise RepositoryValidationError(repo_dir, failures)


__all__ = ["RepositoryValidationError", "require_valid_repository", "validate_repository"]
