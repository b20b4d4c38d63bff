"""`evaluate.Metric` wrappers around the same functions, usable offline.

`evaluate.load("mean_iou")` fetches a script from the Hub and fails offline; these classes are instantiated
directly instead:

    metric = SegmentationOverlap(keep_in_memory=True)
    for predictions, references in batches:
        metric.add_batch(predictions=predictions, references=references)
    metric.compute(num_labels=14, pooling="per_image", id2label=id2label)

Every option of `segmentation_overlap` / `classification_auc` is a `compute` keyword. Inputs are stored by
`evaluate` as Arrow nested lists, which suits evaluation sets of moderate size; for large sets inside a training
loop use `SegmentationOverlapAccumulator`, which keeps only counts.
"""

from __future__ import annotations

import evaluate
from datasets import Features, List, Value

from ._arrays import to_numpy
from .classification import classification_auc
from .segmentation import segmentation_overlap

_SEGMENTATION_INPUTS = """
Args:
    predictions: integer label maps, (N, H, W) or (N, D, H, W), or a list of per-item maps.
    references: reference label maps of the same shape(s).
Compute keywords (see `vis_mae_hf.metrics.segmentation_overlap`): num_labels (required), ignore_index=255,
    pooling="per_image" | "per_volume" | "global", case_ids (one per item, for per_volume),
    include_background=False, empty_mask="skip" | "one", zero_division=0.0, id2label=None.
Returns:
    dice_mean, precision_mean, recall_mean, dice/<name>, precision/<name>, recall/<name>, scored_units/<name>,
    skipped_classes, num_units.
"""

_CLASSIFICATION_INPUTS = """
Args:
    predictions: scores per sample: a number (binary), or a list of C logits/probabilities.
    references: class index per sample, or a list of C 0/1 values (multi-label).
Compute keywords (see `vis_mae_hf.metrics.classification_auc`):
    problem_type="single_label_classification" | "multi_label_classification", from_logits=True, id2label=None.
Returns:
    roc_auc, pr_auc, accuracy (single-label), roc_auc/<name>, pr_auc/<name>, excluded_classes, num_samples.
"""


def _label_map_features(num_axes: int) -> Features:
    feature = Value("int32")  # int32 holds any class index, ignore_index 255 and Trainer's -100 padding
    for _ in range(num_axes):
        feature = List(feature)
    return Features({"predictions": feature, "references": feature})


def _require_integer_label_maps(values, name: str) -> None:
    # Arrow would silently truncate floats to int32: reject logits/probabilities before they are stored.
    items = values if isinstance(values, (list, tuple)) else [values]
    for item in items:
        array = to_numpy(item, name)
        if array.dtype.kind not in "iub":
            raise ValueError(
                f"`{name}` must hold integer class indices, got dtype {array.dtype}; pass label maps (argmax of "
                "logits), not logits or probabilities."
            )


class SegmentationOverlap(evaluate.Metric):
    """Dice, precision and recall of label maps (`vis_mae_hf.metrics.segmentation_overlap`)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Dice, precision and recall per class and their class mean, with explicit pooling "
            "(per image, per volume, global) and empty-mask conventions.",
            citation="",
            inputs_description=_SEGMENTATION_INPUTS,
            # 2-D images first, 3-D volumes second: evaluate picks the first layout the first example fits.
            features=[_label_map_features(2), _label_map_features(3)],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of label maps."""
        _require_integer_label_maps(predictions, "predictions")
        _require_integer_label_maps(references, "references")
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one label map."""
        _require_integer_label_maps(prediction, "prediction")
        _require_integer_label_maps(reference, "reference")
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, num_labels=None, **conventions):
        if num_labels is None:
            raise ValueError("pass `num_labels=` (number of classes, background included) to `compute`.")
        return segmentation_overlap(predictions, references, num_labels, **conventions)


class ClassificationAUC(evaluate.Metric):
    """ROC-AUC, PR-AUC and accuracy (`vis_mae_hf.metrics.classification_auc`)."""

    def _info(self) -> evaluate.MetricInfo:
        # References are stored as float64 so that a non-integer label reaches our validation instead of being
        # truncated by Arrow's int cast.
        return evaluate.MetricInfo(
            description="ROC-AUC and PR-AUC (scikit-learn) for binary, multi-class (one-vs-rest, macro) and "
            "multi-label tasks; classes without positives or negatives are excluded from the macro and listed.",
            citation="",
            inputs_description=_CLASSIFICATION_INPUTS,
            features=[
                Features({"predictions": Value("float64"), "references": Value("float64")}),
                Features({"predictions": List(Value("float64")), "references": Value("float64")}),
                Features({"predictions": List(Value("float64")), "references": List(Value("float64"))}),
            ],
        )

    def _compute(self, predictions, references, **options):
        return classification_auc(predictions, references, **options)
