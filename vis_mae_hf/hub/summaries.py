"""The JSON records a model card is written from, read and checked before anything is exported.

Training summary (`training_summary.json`, written by `run_pretraining`; write one by hand for weights trained
elsewhere, e.g. converted from the published code):

    {"modality": "mr",                       # the pretraining modality: generic, ct, mr, pet, xray or us
     "modality_counts": {"MR": 120},         # images per modality in the pretraining set
     "num_images": 120,
     "dataset": null,                        # optional: what the images were; null = vis-mae-hf's demo corpus
     "global_steps": 40, "epochs": 2.0, "final_loss": 0.41,             # optional
     "recipe": {"optimizer": "AdamW", "lr": 0.001, ...},                # optional, shown as a table
     "package_version": "X.Y.Z",             # optional: the vis-mae-hf that trained the weights (its __version__)
     "base_model": "org/vis-mae-generic",    # optional: Hub id of the weights pretraining continued from
     "sources": [{"name": ..., "license": ..., "images": n, "attribution": ...}],  # optional
     "notes": ["..."]}                       # optional free text for the card

Fine-tuning summary (`finetuning_summary.json`, written by `vis-mae finetune` into its output folder beside the
model; what a fine-tuned segmenter's or classifier's card says it was trained on):

    {"task": "segmentation",                 # segmentation, classification or multilabel
     "dataset": "btcv (data/btcv)",          # what it was fine-tuned on ("demo: ..." for the built-in demo)
     "fold": 0,                              # the held-out validation fold, or null
     "label_fraction": 0.25,                 # fraction of the fold's training patients whose labels were used
     "label_names": ["background", "liver"], # the classes, in index order (the model's id2label)
     "initialization": {"source": "vismae:org/vis-mae-ct", "loaded": {...}, "fresh": [...]},  # a LoadReport
     "num_train_examples": 120, "num_eval_examples": 30,   # optional
     "global_steps": 750,                    # optional
     "arguments": {"learning_rate": 0.001, "per_device_train_batch_size": 32, ...},   # optional: the schedule
     "recipe": {"defaults": "published recipe", ...},       # optional
     "metrics": {"eval_dice_mean": 0.81, ...},              # optional: validation metrics of the best checkpoint
     "package_version": "0.2.0",             # optional: the vis-mae-hf that fine-tuned
     "notes": ["..."]}                       # optional

Validation results (`eval_results.json`, written beside it by the Trainer): the best checkpoint's metrics on the
held-out fold, `eval_` prefixed numbers (NaN for a class that could not be scored).

Evaluation summary (optional; results of fine-tuning these weights or, for a fine-tuned model, of the model itself on
data it was not trained on; shown in the card and its `model-index`). `vis-mae evaluate --output FILE` writes one
(its `results` entry; the file's other keys are ignored here):

    {"results": [{"task": "semantic-segmentation",       # or "image-classification"
                  "dataset": "LGG glioma (Buda et al.)",  # a name for people
                  "dataset_id": "org/lgg",                # optional Hub dataset id (else a slug of the name)
                  "split": "5-fold cross-validation",     # optional
                  "label_fraction": 1.0,                  # optional: fraction of training labels used
                  "metrics": {"dice_mean": 0.83, "precision_mean": 0.85},
                  "notes": "..."}]}                       # optional
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ..vocabulary import DATASET_TASKS, HUB_TASK_TYPES
from .variants import VARIANTS

EVALUATION_TASKS = tuple(HUB_TASK_TYPES.values())
# A local path inside a text: absolute (/...), in a home (~/...), explicitly relative (./..., ../...) or a Windows
# drive path, up to a space, bracket or separator. `https://...` is not one (no path starts with //).
_LOCAL_PATH = re.compile(r"(?<![\w./\\-])(?:~|\.{1,2})?/(?!/)[^\s()\[\],;'\"]+|\b[A-Za-z]:\\[^\s()\[\],;'\"]+")


class SummaryError(ValueError):
    """A training or evaluation summary is missing, unreadable or inconsistent; the message names the file and key."""


def without_local_paths(text: str) -> str:
    """`text` with each local path in it reduced to its last part, e.g. "btcv (/home/me/data/btcv)" -> "btcv (btcv)":
    what a fine-tuning summary publishes of the folders it names."""

    def last_part(match: re.Match) -> str:
        return re.split(r"[\\/]", match.group(0).rstrip("/\\"))[-1] or match.group(0)

    return _LOCAL_PATH.sub(last_part, text)


def _read_json(source: str | Path | dict, what: str) -> tuple[dict, str]:
    if isinstance(source, dict):
        return source, f"the {what} given"
    path = Path(source)
    if not path.is_file():
        raise SummaryError(f"The {what} {path} does not exist.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SummaryError(f"The {what} {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise SummaryError(f"The {what} {path} must hold a JSON object, got {type(data).__name__}.")
    return data, str(path)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_training_summary(source: str | Path | dict) -> dict:
    """Read and check a training summary (see the module docstring); returns it as a dict.

    Raises:
        SummaryError: naming the file and every key that is missing or wrong (e.g. counts that do not add up to
            `num_images`).
    """
    summary, name = _read_json(source, "training summary")
    problems = []
    modality = summary.get("modality")
    if modality not in VARIANTS:
        problems.append(f"'modality' must be one of {', '.join(VARIANTS)}, got {modality!r}")
    counts = summary.get("modality_counts")
    if not isinstance(counts, dict) or not all(isinstance(k, str) and _is_count(v) for k, v in counts.items()):
        problems.append(f"'modality_counts' must map modality names to image counts, got {counts!r}")
        counts = None
    num_images = summary.get("num_images")
    if not _is_count(num_images) or num_images == 0:
        problems.append(f"'num_images' must be a positive integer, got {num_images!r}")
    elif counts and sum(counts.values()) != num_images:
        problems.append(
            f"'modality_counts' add up to {sum(counts.values())} images but 'num_images' is {num_images}"
        )
    for key in ("global_steps",):
        if key in summary and not _is_count(summary[key]):
            problems.append(f"'{key}' must be a non-negative integer, got {summary[key]!r}")
    for key in ("epochs", "final_loss"):
        if key in summary and summary[key] is not None and not _is_number(summary[key]):
            problems.append(f"'{key}' must be a finite number, got {summary[key]!r}")
    if "recipe" in summary and not isinstance(summary["recipe"], dict):
        problems.append(f"'recipe' must be an object, got {type(summary['recipe']).__name__}")
    if "sources" in summary and not isinstance(summary["sources"], list):
        problems.append(f"'sources' must be a list, got {type(summary['sources']).__name__}")
    if "notes" in summary and not isinstance(summary["notes"], (list, str)):
        problems.append(f"'notes' must be a string or a list of strings, got {type(summary['notes']).__name__}")
    if problems:
        raise SummaryError(f"The training summary {name} cannot describe the weights: " + "; ".join(problems) + ".")
    return summary


def load_evaluation_summary(source: str | Path | dict) -> dict:
    """Read and check an evaluation summary (see the module docstring); returns `{"results": [...]}` alone, so that
    the other keys of a `vis-mae evaluate` report (per-case scores, local file paths) are never published."""
    summary, name = _read_json(source, "evaluation summary")
    results = summary.get("results")
    problems = []
    if not isinstance(results, list) or not results:
        problems.append(f"'results' must be a non-empty list, got {results!r}")
        results = []
    for index, result in enumerate(results):
        where = f"results[{index}]"
        if not isinstance(result, dict):
            problems.append(f"{where} must be an object")
            continue
        if result.get("task") not in EVALUATION_TASKS:
            problems.append(f"{where}.task must be one of {', '.join(EVALUATION_TASKS)}, got {result.get('task')!r}")
        if not isinstance(result.get("dataset"), str) or not result["dataset"].strip():
            problems.append(f"{where}.dataset must name the dataset")
        metrics = result.get("metrics")
        if not isinstance(metrics, dict) or not metrics:
            problems.append(f"{where}.metrics must map metric names to values")
        else:
            for metric, value in metrics.items():
                if not _is_number(value):
                    problems.append(f"{where}.metrics.{metric} must be a finite number, got {value!r}")
        fraction = result.get("label_fraction")
        if fraction is not None and not (_is_number(fraction) and 0 < fraction <= 1):
            problems.append(f"{where}.label_fraction must be in (0, 1], got {fraction!r}")
    if problems:
        raise SummaryError(f"The evaluation summary {name} cannot be published: " + "; ".join(problems) + ".")
    return {"results": results}


def _check_optional(summary: dict, problems: list[str]) -> None:
    """The optional keys of a fine-tuning summary: counts, objects and notes of the right types when present."""
    for key in ("num_train_examples", "num_eval_examples", "global_steps"):
        if summary.get(key) is not None and not _is_count(summary[key]):
            problems.append(f"'{key}' must be a non-negative integer, got {summary[key]!r}")
    for key in ("arguments", "recipe", "metrics"):
        if summary.get(key) is not None and not isinstance(summary[key], dict):
            problems.append(f"'{key}' must be an object, got {type(summary[key]).__name__}")
    metrics = summary.get("metrics") or {}
    if isinstance(metrics, dict) and not all(_is_metric(value) for value in metrics.values()):
        problems.append("'metrics' must map metric names to numbers")
    if summary.get("notes") is not None and not isinstance(summary["notes"], (list, str)):
        problems.append(f"'notes' must be a string or a list of strings, got {type(summary['notes']).__name__}")


def _is_metric(value: Any) -> bool:
    """A number, NaN included: NaN is how the metrics say "not scorable" (a class absent from the fold)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_finetuning_summary(source: str | Path | dict) -> dict:
    """Read and check a fine-tuning summary (see the module docstring); returns it as a dict.

    Raises:
        SummaryError: naming the file and every key that is missing or wrong.
    """
    summary, name = _read_json(source, "fine-tuning summary")
    problems = []
    if summary.get("task") not in DATASET_TASKS:
        problems.append(f"'task' must be one of {', '.join(DATASET_TASKS)}, got {summary.get('task')!r}")
    if not isinstance(summary.get("dataset"), str) or not summary["dataset"].strip():
        problems.append(f"'dataset' must say what the model was fine-tuned on, got {summary.get('dataset')!r}")
    if summary.get("fold") is not None and not _is_count(summary["fold"]):
        problems.append(f"'fold' must be a fold number or null, got {summary['fold']!r}")
    fraction = summary.get("label_fraction")
    if not (_is_number(fraction) and 0 < fraction <= 1):
        problems.append(f"'label_fraction' must be in (0, 1], got {fraction!r}")
    names = summary.get("label_names")
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) and n for n in names)):
        problems.append(f"'label_names' must list the class names in index order, got {names!r}")
    start = summary.get("initialization")
    if not (isinstance(start, dict) and isinstance(start.get("source"), str) and start["source"]):
        problems.append(f"'initialization' must be the initialisation report, with its 'source', got {start!r}")
    _check_optional(summary, problems)
    if problems:
        raise SummaryError(f"The fine-tuning summary {name} cannot describe the model: " + "; ".join(problems) + ".")
    return summary


def load_validation_results(source: str | Path | dict) -> dict[str, float]:
    """Read and check `eval_results.json`: metric name -> number (NaN allowed). Raises SummaryError."""
    results, name = _read_json(source, "validation results")
    bad = sorted(key for key, value in results.items() if not _is_metric(value))
    if not results or bad:
        raise SummaryError(
            f"The validation results {name} must map metric names to numbers (as the Trainer writes "
            f"eval_results.json); {'it is empty' if not results else f'not numbers: {bad}'}."
        )
    return {key: float(value) for key, value in results.items()}
