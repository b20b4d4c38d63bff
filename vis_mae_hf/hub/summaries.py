"""The two JSON records a model card is written from, read and checked before anything is exported.

Training summary (`training_summary.json`, written by `run_pretraining`; write one by hand for weights trained
elsewhere, e.g. converted from the published code):

    {"modality": "mr",                       # the pretraining modality: generic, ct, mr, pet, xray or us
     "modality_counts": {"MR": 120},         # images per modality in the pretraining set
     "num_images": 120,
     "dataset": null,                        # optional: what the images were; null = vis-mae-hf's demo corpus
     "global_steps": 40, "epochs": 2.0, "final_loss": 0.41,             # optional
     "recipe": {"optimizer": "AdamW", "lr": 0.001, ...},                # optional, shown as a table
     "package_version": "0.1.0",             # optional: the vis-mae-hf that trained the weights
     "base_model": "org/vis-mae-generic",    # optional: Hub id of the weights pretraining continued from
     "sources": [{"name": ..., "license": ..., "images": n, "attribution": ...}],  # optional
     "notes": ["..."]}                       # optional free text for the card

Evaluation summary (optional; results of fine-tuning these weights, shown in the card and its `model-index`):

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
from pathlib import Path
from typing import Any

from ..vocabulary import HUB_TASK_TYPES
from .variants import VARIANTS

EVALUATION_TASKS = tuple(HUB_TASK_TYPES.values())


class SummaryError(ValueError):
    """A training or evaluation summary is missing, unreadable or inconsistent; the message names the file and key."""


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
    """Read and check an evaluation summary (see the module docstring); returns it as a dict."""
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
    return summary
