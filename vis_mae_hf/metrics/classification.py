"""ROC-AUC, PR-AUC and accuracy for binary, multi-class and multi-label classification.

Areas come from scikit-learn: `roc_auc_score` (ROC-AUC) and `average_precision_score` (PR-AUC, the step-wise
average precision; never the trapezoidal `auc(recall, precision)`, which over-estimates on few thresholds).

Problem types follow `PreTrainedConfig.problem_type`:
    "single_label_classification"  references (N,) class indices. Scores (N,) or (N, 1) (one score of class 1)
        or (N, 2) make a binary task: `roc_auc`/`pr_auc` are those of class 1. Scores (N, C>2) make a multi-class
        task: each class is scored one-vs-rest and `roc_auc`/`pr_auc` are the macro mean over classes.
    "multi_label_classification"   references (N, C) of 0/1, scores (N, C); each class on its own, macro mean.
A class with no positive or no negative reference in the evaluated set has no defined AUC (scikit-learn returns
NaN or raises; torchmetrics silently returns 0): it gets NaN, is left out of the macro mean and is listed in
`excluded_classes`.

Scores may be logits (`from_logits=True`, the Trainer's output) or probabilities. AUCs only depend on the order of
the scores, so logits are ranked through an order-preserving form that cannot saturate: the margin l1 - l0 for
binary (N, 2), log-softmax for multi-class, the raw logit for multi-label (sigmoid is monotone). Float64 softmax
probabilities would round many confident samples to exactly 1.0 and create false ties.
Accuracy (single-label only) is the argmax; a one-column score predicts class 1 when it is > 0 (logit) or
> 0.5 (probability), so ties go to class 0 as argmax does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from ._arrays import class_names, describe_values, to_numpy

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")
# Rows of probabilities computed in float32 sum to 1 only up to rounding.
_PROBABILITY_SUM_TOLERANCE = 1e-4


def _check_probabilities(scores: np.ndarray, rows_sum_to_one: bool) -> None:
    if scores.min() < 0 or scores.max() > 1:
        raise ValueError(
            f"`scores` must be probabilities in [0, 1] with from_logits=False, got values in "
            f"[{scores.min()}, {scores.max()}]; pass from_logits=True for logits."
        )
    if rows_sum_to_one:
        row_sums = scores.sum(axis=1)
        worst = np.abs(row_sums - 1).max()
        if worst > _PROBABILITY_SUM_TOLERANCE:
            raise ValueError(
                "`scores` rows must sum to 1 for single-label probabilities (from_logits=False); a row sums to "
                f"{row_sums[np.argmax(np.abs(row_sums - 1))]}. Pass from_logits=True for logits."
            )


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _class_indices(references: np.ndarray, num_classes: int) -> np.ndarray:
    if references.ndim != 1:
        raise ValueError(
            f"`references` must be (N,) class indices for single-label classification, got shape {references.shape}."
        )
    if not np.all(np.isfinite(references)) or not np.all(references == np.round(references)):
        raise ValueError("`references` must hold integer class indices, got non-integer values.")
    references = references.astype(np.int64)
    bad = (references < 0) | (references >= num_classes)
    if bad.any():
        raise ValueError(
            f"`references` holds class indices {describe_values(references[bad])} outside 0..{num_classes - 1} "
            f"(the scores have {num_classes} classes)."
        )
    return references


def _binary_area(positives: np.ndarray, ranking: np.ndarray) -> tuple[float, float] | None:
    """(ROC-AUC, PR-AUC) of one class, or None when the set has no positive or no negative."""
    if positives.all() or not positives.any():
        return None
    return float(roc_auc_score(positives, ranking)), float(average_precision_score(positives, ranking))


def classification_auc(
    scores,
    references,
    *,
    problem_type: str = "single_label_classification",
    from_logits: bool = True,
    id2label: Mapping | None = None,
) -> dict:
    """ROC-AUC and PR-AUC (and accuracy for single-label tasks) of one evaluated set.

    Args:
        scores: (N,), (N, 1), (N, 2) or (N, C) logits or probabilities (numpy or torch).
        references: (N,) class indices (single-label) or (N, C) 0/1 (multi-label).
        problem_type: "single_label_classification" or "multi_label_classification".
        from_logits: whether `scores` are logits (True) or probabilities (False).
        id2label: class names for the per-class keys and `excluded_classes`.

    Returns:
        a flat dict with `roc_auc`, `pr_auc` (class 1 for binary, else the macro mean over scorable classes),
        `accuracy` (single-label), `roc_auc/<name>` and `pr_auc/<name>` per class (multi-class and multi-label),
        `excluded_classes` (names) and `num_samples`.
    """
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"`problem_type` must be one of {PROBLEM_TYPES}, got {problem_type!r}.")
    scores, references = _checked_inputs(scores, references)
    if problem_type == "multi_label_classification":
        return _multi_label_auc(scores, references, from_logits, id2label)
    return _single_label_auc(scores, references, from_logits, id2label)


def _checked_inputs(scores, references) -> tuple[np.ndarray, np.ndarray]:
    """Scores and references as float64 arrays with matching rows, finite scores and numeric references."""
    scores = to_numpy(scores, "scores").astype(np.float64)
    references = to_numpy(references, "references")
    if scores.ndim not in (1, 2) or scores.shape[0] == 0:
        raise ValueError(f"`scores` must be a non-empty (N,) or (N, C) array, got shape {scores.shape}.")
    if references.shape[:1] != scores.shape[:1]:
        raise ValueError(f"`scores` has {scores.shape[0]} rows but `references` has shape {references.shape}.")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"`scores` holds {int((~np.isfinite(scores)).sum())} NaN or infinite values.")
    if not np.issubdtype(references.dtype, np.number) and references.dtype != np.bool_:
        raise ValueError(f"`references` must be numeric, got dtype {references.dtype}.")
    return scores, references.astype(np.float64)


def _multi_label_auc(scores: np.ndarray, references: np.ndarray, from_logits: bool, id2label) -> dict:
    if scores.ndim != 2 or references.shape != scores.shape:
        raise ValueError(
            "multi-label classification needs `scores` and `references` of the same shape (N, C), got "
            f"{scores.shape} and {references.shape}."
        )
    if not np.all((references == 0) | (references == 1)):
        raise ValueError("multi-label `references` must be 0 or 1 for every sample and class.")
    if not from_logits:
        _check_probabilities(scores, rows_sum_to_one=False)
    # sigmoid is monotone: raw logits rank exactly as the probabilities would.
    return _per_class_result(references.astype(bool), scores, class_names(scores.shape[1], id2label), {})


def _single_label_auc(scores: np.ndarray, references: np.ndarray, from_logits: bool, id2label) -> dict:
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    num_classes = 2 if scores.ndim == 1 else scores.shape[1]
    if num_classes < 2:
        raise ValueError(f"`scores` must have at least 2 classes, got shape {scores.shape}.")
    names = class_names(num_classes, id2label)
    references = _class_indices(references, num_classes)
    ranking, predicted = _ranking_and_prediction(scores, num_classes, from_logits)
    result: dict = {"accuracy": float((predicted == references).mean())}
    if num_classes == 2:
        areas = _binary_area(references == 1, ranking)
        result["roc_auc"], result["pr_auc"] = areas if areas is not None else (math.nan, math.nan)
        result["excluded_classes"] = [] if areas is not None else [names[1]]
        result["num_samples"] = int(scores.shape[0])
        return result
    positives = references[:, None] == np.arange(num_classes)[None, :]
    return _per_class_result(positives, ranking, names, result)


def _ranking_and_prediction(scores: np.ndarray, num_classes: int, from_logits: bool):
    """What ranks the samples for the areas (class 1's margin, or per-class scores) and the predicted classes."""
    if scores.ndim == 1:
        if not from_logits:
            _check_probabilities(scores, rows_sum_to_one=False)
        return scores, (scores > (0.0 if from_logits else 0.5)).astype(np.int64)
    if not from_logits:
        _check_probabilities(scores, rows_sum_to_one=True)
    if num_classes == 2:
        ranking = scores[:, 1] - scores[:, 0] if from_logits else scores[:, 1]
    else:
        ranking = _log_softmax(scores) if from_logits else scores
    return ranking, scores.argmax(axis=1)


def _per_class_result(positives: np.ndarray, ranking: np.ndarray, names: list[str], result: dict) -> dict:
    per_class: dict[str, tuple[float, float]] = {}
    excluded: list[str] = []
    for index, name in enumerate(names):
        areas = _binary_area(positives[:, index], ranking[:, index])
        if areas is None:
            excluded.append(name)
            per_class[name] = (math.nan, math.nan)
        else:
            per_class[name] = areas
    scorable = [areas for name, areas in per_class.items() if name not in excluded]
    result["roc_auc"] = float(np.mean([roc for roc, _ in scorable])) if scorable else math.nan
    result["pr_auc"] = float(np.mean([pr for _, pr in scorable])) if scorable else math.nan
    for name, (roc, _) in per_class.items():
        result[f"roc_auc/{name}"] = roc
    for name, (_, pr) in per_class.items():
        result[f"pr_auc/{name}"] = pr
    result["excluded_classes"] = excluded
    result["num_samples"] = int(positives.shape[0])
    return result
