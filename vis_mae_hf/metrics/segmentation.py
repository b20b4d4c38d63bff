"""Dice, precision and recall of integer label maps, with every convention an explicit argument.

Counting: each unit (image, or volume) gives per-class true positives, false positives and false negatives as
exact int64 pixel counts (pixels whose reference is an ignored value are left out of everything). Scores are exact
float64 ratios of those counts, with no smoothing term:

    dice      = 2 TP / (2 TP + FP + FN)
    precision = TP / (TP + FP)
    recall    = TP / (TP + FN)

Pooling says which counts are scored together (`pooling`):
    "per_image"   each item along the first axis (a 2-D image, or a 3-D volume) is scored on its own;
    "per_volume"  items are summed per `case_ids` value (e.g. all slices of a patient) and each case is scored;
    "global"      all counts of the set are summed and scored once.
Per class, the unit scores are averaged over units (NaN scores left out); the `*_mean` keys then average the
per-class values over classes (NaN classes left out; background left out unless `include_background=True`).
This is "average each organ over cases, then average organs", as BTCV/ACDC tables report.

Edge cases of one class in one pooled unit:
    absent from both prediction and reference (0/0 everywhere): `empty_mask="skip"` gives NaN (left out of the
        averages; a class that is NaN in every unit is listed in `skipped_classes`), `empty_mask="one"` gives 1.0
        for all three scores (a correct "nothing here");
    reference empty, prediction not: dice 0, precision 0 (pure false positives), recall = `zero_division`;
    prediction empty, reference not: dice 0, recall 0 (pure misses), precision = `zero_division`.
`zero_division` defaults to 0.0, the value scikit-learn's precision/recall use; pass `float("nan")` to leave
those units out of the precision/recall averages instead.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from ._arrays import class_names, describe_values, is_torch_tensor, to_numpy

POOLINGS = ("per_image", "per_volume", "global")
EMPTY_MASK_CONVENTIONS = ("skip", "one")
OVERLAP_SCORES = ("dice", "precision", "recall")


def _ignore_values(ignore_index, num_labels: int) -> tuple[int, ...]:
    if ignore_index is None:
        return ()
    values = (ignore_index,) if np.isscalar(ignore_index) else tuple(ignore_index)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"`ignore_index` must be an int, a sequence of ints or None, got {ignore_index!r}.")
        if 0 <= value < num_labels:
            raise ValueError(
                f"`ignore_index` {value} is also a class index (num_labels={num_labels}); "
                "use a value outside 0..num_labels-1, e.g. 255."
            )
    return tuple(int(value) for value in values)


def _items(values, name: str) -> list[np.ndarray]:
    """Split a batch into per-item arrays: an (N, ...) array/tensor, or a sequence of (possibly differently sized)
    per-item arrays."""
    if isinstance(values, (list, tuple)):
        return [to_numpy(item, f"{name}[{index}]") for index, item in enumerate(values)]
    array = to_numpy(values, name)
    if array.ndim == 0:
        raise ValueError(f"`{name}` must be a batch of label maps (N, H, W) or (N, D, H, W), got a scalar.")
    return list(array)


class SegmentationOverlapAccumulator:
    """Collects per-item TP/FP/FN counts batch by batch; `compute` turns them into scores.

    Only (num_items, num_labels) counts are kept, so evaluation of a large set never holds all label maps.

    Args:
        num_labels: number of classes K, background (class 0) included.
        ignore_index: reference value(s) whose pixels are left out of every count (e.g. 255 for "unlabelled"),
            or None. Predictions at those pixels may hold anything.
    """

    def __init__(self, num_labels: int, ignore_index: int | Sequence[int] | None = 255):
        if isinstance(num_labels, bool) or not isinstance(num_labels, (int, np.integer)) or num_labels < 2:
            raise ValueError(
                f"`num_labels` must be an int >= 2 (background plus at least one class), got {num_labels!r}."
            )
        self.num_labels = int(num_labels)
        self.ignore_values = _ignore_values(ignore_index, self.num_labels)
        self.reset()

    def reset(self) -> None:
        self._true_positives: list[np.ndarray] = []
        self._false_positives: list[np.ndarray] = []
        self._false_negatives: list[np.ndarray] = []
        self._case_ids: list[Hashable | None] = []

    @property
    def num_items(self) -> int:
        return len(self._case_ids)

    def update(self, predictions, references, case_ids: Sequence[Hashable] | None = None) -> None:
        """Add a batch.

        Args:
            predictions: integer label maps, (N, H, W) or (N, D, H, W) (numpy, torch, or a list of per-item maps).
            references: reference label maps of the same shape; values in 0..K-1 or an ignored value.
            case_ids: one id per item (patient/volume), needed only for `pooling="per_volume"`.
        """
        prediction_items = _items(predictions, "predictions")
        reference_items = _items(references, "references")
        if len(prediction_items) != len(reference_items):
            raise ValueError(
                f"`predictions` has {len(prediction_items)} items but `references` has {len(reference_items)}."
            )
        if case_ids is not None:
            case_ids = to_numpy(case_ids, "case_ids").tolist() if is_torch_tensor(case_ids) else list(case_ids)
            if len(case_ids) != len(prediction_items):
                raise ValueError(
                    f"`case_ids` has {len(case_ids)} entries but the batch has {len(prediction_items)} items."
                )
        counts = [
            self._count(prediction, reference, index)
            for index, (prediction, reference) in enumerate(zip(prediction_items, reference_items))
        ]
        # Append only after the whole batch validated, so a bad batch leaves the accumulator unchanged.
        for index, (true_positives, false_positives, false_negatives) in enumerate(counts):
            self._true_positives.append(true_positives)
            self._false_positives.append(false_positives)
            self._false_negatives.append(false_negatives)
            self._case_ids.append(None if case_ids is None else case_ids[index])

    def _count(self, prediction: np.ndarray, reference: np.ndarray, index: int):
        if prediction.shape != reference.shape:
            hint = (
                " `predictions` has one more axis: pass label maps (argmax over classes), e.g. through "
                "`segmentation_logits_to_label_maps`."
                if prediction.ndim == reference.ndim + 1
                else ""
            )
            raise ValueError(
                f"item {index}: `predictions` shape {prediction.shape} differs from `references` shape "
                f"{reference.shape}.{hint}"
            )
        if prediction.ndim not in (2, 3):
            raise ValueError(
                f"item {index}: label maps must be 2-D (H, W) or 3-D (D, H, W) per item, got shape {prediction.shape}."
            )
        for name, array in (("predictions", prediction), ("references", reference)):
            if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
                raise ValueError(
                    f"item {index}: `{name}` must hold integer class indices, got dtype {array.dtype}. Predictions "
                    "must be label maps (argmax of logits), not logits or probabilities."
                )
        reference = reference.astype(np.int64, copy=False).ravel()
        prediction = prediction.astype(np.int64, copy=False).ravel()
        num_labels = self.num_labels
        ignored = np.zeros(reference.shape, dtype=bool)
        for value in self.ignore_values:  # a loop of `==` is several times faster than np.isin for 1-2 values
            ignored |= reference == value
        bad_reference = ((reference < 0) | (reference >= num_labels)) & ~ignored
        if bad_reference.any():
            raise ValueError(
                f"item {index}: `references` holds values {describe_values(reference[bad_reference])} outside "
                f"0..{num_labels - 1} that are not ignored (ignore_index={list(self.ignore_values)})."
            )
        bad_prediction = ((prediction < 0) | (prediction >= num_labels)) & ~ignored
        if bad_prediction.any():
            raise ValueError(
                f"item {index}: `predictions` holds values {describe_values(prediction[bad_prediction])} outside "
                f"0..{num_labels - 1} at pixels that are not ignored."
            )
        pair_index = reference * num_labels + prediction
        pair_index[ignored] = num_labels * num_labels  # one extra bin collects ignored pixels, then is dropped
        # confusion[reference_class, predicted_class], exact integer counts
        confusion = np.bincount(pair_index, minlength=num_labels * num_labels + 1)[:-1]
        confusion = confusion.reshape(num_labels, num_labels).astype(np.int64)
        true_positives = np.diag(confusion).copy()
        false_positives = confusion.sum(axis=0) - true_positives
        false_negatives = confusion.sum(axis=1) - true_positives
        return true_positives, false_positives, false_negatives

    def pooled_counts(self, pooling: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TP, FP, FN as int64 arrays of shape (num_units, K) for the given pooling."""
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
        if self.num_items == 0:
            raise ValueError("No predictions were added: nothing to score.")
        counts = tuple(
            np.stack(parts) for parts in (self._true_positives, self._false_positives, self._false_negatives)
        )
        if pooling == "per_image":
            return counts
        if pooling == "global":
            return tuple(part.sum(axis=0, keepdims=True) for part in counts)
        missing = [index for index, case_id in enumerate(self._case_ids) if case_id is None]
        if missing:
            raise ValueError(
                f'`pooling="per_volume"` needs a `case_ids` entry for every item; {len(missing)} of '
                f"{self.num_items} items have none (first: item {missing[0]})."
            )
        # Cases in order of first appearance; slices of a case need not be contiguous.
        case_index: dict[Hashable, int] = {}
        unit_of_item = np.array([case_index.setdefault(case_id, len(case_index)) for case_id in self._case_ids])
        pooled = []
        for part in counts:
            summed = np.zeros((len(case_index), self.num_labels), dtype=np.int64)
            np.add.at(summed, unit_of_item, part)
            pooled.append(summed)
        return tuple(pooled)

    def compute(
        self,
        *,
        pooling: str = "per_image",
        include_background: bool = False,
        empty_mask: str = "skip",
        zero_division: float = 0.0,
        id2label: Mapping | None = None,
    ) -> dict:
        """Scores of everything added so far (see the module docstring for the conventions)."""
        return overlap_scores_from_counts(
            *self.pooled_counts(pooling),
            include_background=include_background,
            empty_mask=empty_mask,
            zero_division=zero_division,
            id2label=id2label,
        )


def _ratio(numerator: np.ndarray, denominator: np.ndarray, when_zero: float) -> np.ndarray:
    result = np.full(numerator.shape, when_zero, dtype=np.float64)
    np.divide(numerator, denominator, out=result, where=denominator > 0)
    return result


def _mean_ignoring_nan(values: np.ndarray, axis: int) -> np.ndarray:
    """nanmean without its all-NaN RuntimeWarning: an all-NaN slice is NaN by design here."""
    scored = ~np.isnan(values)
    total = np.where(scored, values, 0.0).sum(axis=axis)
    count = scored.sum(axis=axis)
    return _ratio(total, count, math.nan)


def overlap_scores_from_counts(
    true_positives: np.ndarray,
    false_positives: np.ndarray,
    false_negatives: np.ndarray,
    *,
    include_background: bool = False,
    empty_mask: str = "skip",
    zero_division: float = 0.0,
    id2label: Mapping | None = None,
) -> dict:
    """Dice/precision/recall from (num_units, K) count arrays; one row per pooled unit.

    Returns a flat dict: `dice_mean`, `precision_mean`, `recall_mean` (over foreground classes unless
    `include_background`), `dice/<name>`, `precision/<name>`, `recall/<name>` and `scored_units/<name>` (units in
    which the class got a Dice score) for every class, `skipped_classes` (names of classes with no scored unit) and
    `num_units`.
    """
    if empty_mask not in EMPTY_MASK_CONVENTIONS:
        raise ValueError(f"`empty_mask` must be one of {EMPTY_MASK_CONVENTIONS}, got {empty_mask!r}.")
    if not isinstance(zero_division, (int, float)) or not (math.isnan(zero_division) or 0 <= zero_division <= 1):
        raise ValueError(f"`zero_division` must be a number in [0, 1] or NaN, got {zero_division!r}.")
    true_positives, false_positives, false_negatives = (
        np.asarray(part, dtype=np.float64) for part in (true_positives, false_positives, false_negatives)
    )
    if true_positives.ndim != 2 or not (true_positives.shape == false_positives.shape == false_negatives.shape):
        raise ValueError(
            "counts must be three arrays of the same shape (num_units, num_labels), got "
            f"{true_positives.shape}, {false_positives.shape}, {false_negatives.shape}."
        )
    num_units, num_labels = true_positives.shape
    names = class_names(num_labels, id2label)

    # Dice's denominator is 0 only when the class is absent from both prediction and reference.
    both_empty = (true_positives + false_positives + false_negatives) == 0
    unit_scores = {
        "dice": _ratio(2 * true_positives, 2 * true_positives + false_positives + false_negatives, math.nan),
        "precision": _ratio(true_positives, true_positives + false_positives, float(zero_division)),
        "recall": _ratio(true_positives, true_positives + false_negatives, float(zero_division)),
    }
    empty_value = math.nan if empty_mask == "skip" else 1.0
    for scores in unit_scores.values():
        scores[both_empty] = empty_value

    class_scope = np.arange(num_labels) >= (0 if include_background else 1)
    result: dict = {}
    per_class = {score: _mean_ignoring_nan(values, axis=0) for score, values in unit_scores.items()}
    for score in OVERLAP_SCORES:
        result[f"{score}_mean"] = float(_mean_ignoring_nan(per_class[score][class_scope], axis=0))
    for score in OVERLAP_SCORES:
        for name, value in zip(names, per_class[score]):
            result[f"{score}/{name}"] = float(value)
    scored_units = (~np.isnan(unit_scores["dice"])).sum(axis=0)
    for name, count in zip(names, scored_units):
        result[f"scored_units/{name}"] = int(count)
    result["skipped_classes"] = [name for name, count in zip(names, scored_units) if count == 0]
    result["num_units"] = int(num_units)
    return result


def segmentation_overlap(
    predictions,
    references,
    num_labels: int,
    *,
    ignore_index: int | Sequence[int] | None = 255,
    pooling: str = "per_image",
    case_ids: Sequence[Hashable] | None = None,
    include_background: bool = False,
    empty_mask: str = "skip",
    zero_division: float = 0.0,
    id2label: Mapping | None = None,
) -> dict:
    """Dice, precision and recall of a whole evaluation set in one call.

    Args:
        predictions: integer label maps (N, H, W) or (N, D, H, W), numpy or torch, or a list of per-item maps.
        references: reference label maps, same shape(s).
        num_labels: number of classes K, background included.
        ignore_index: reference value(s) left out of every count, or None.
        pooling: "per_image", "per_volume" (needs `case_ids`) or "global".
        case_ids: one patient/volume id per item, for "per_volume".
        include_background: average class 0 into the `*_mean` keys too.
        empty_mask: "skip" or "one", for a class absent from both prediction and reference in a unit.
        zero_division: precision (recall) when the prediction (reference) is empty but the other is not.
        id2label: class names used in the result keys.

    Returns:
        see `overlap_scores_from_counts`.
    """
    if pooling != "per_volume" and case_ids is not None:
        raise ValueError(f'`case_ids` only applies to pooling="per_volume", got pooling={pooling!r}.')
    accumulator = SegmentationOverlapAccumulator(num_labels, ignore_index=ignore_index)
    accumulator.update(predictions, references, case_ids=case_ids)
    return accumulator.compute(
        pooling=pooling,
        include_background=include_background,
        empty_mask=empty_mask,
        zero_division=zero_division,
        id2label=id2label,
    )
