"""The one implementation of VIS-MAE's evaluation metrics, used by the Trainer scripts, notebooks and CLI.

Segmentation (`segmentation.py`): Dice, precision, recall per class and their mean, from integer label maps.
Classification (`classification.py`): ROC-AUC and PR-AUC (scikit-learn), accuracy.
Trainer glue (`trainer.py`): `compute_metrics` factories and `preprocess_logits_for_metrics`.
`evaluate` wrappers (`evaluate_modules.py`): `SegmentationOverlap`, `ClassificationAUC`, imported on first use
because `evaluate` adds about 0.2 s to every import of the metrics, which the Trainer glue does not need.
Files (`files.py`, `reports.py`, the `vis-mae evaluate` command): `evaluate_segmentation_files` scores folders of label
maps (2-D or NIfTI, paired by file name) per case and pooled, `evaluate_classification_files` a `predictions.csv`
against a references CSV; both return an `EvaluationReport` (table, JSON, evaluation summary for the Hub card).

Numerical conventions (what a paper citing these numbers should state):
- Counts are exact int64 pixel counts; ratios are float64 with no smoothing epsilon.
- Pixels whose reference equals `ignore_index` (default 255; the Trainer glue also ignores its -100 padding) are
  excluded from every count, whatever was predicted there.
- Pooling: per image, per volume (items grouped by `case_ids`) or global (all pixels pooled). Each class is
  averaged over the pooled units, then `*_mean` averages classes; background (class 0) is reported per class but
  left out of the means unless `include_background=True`.
- Class absent from prediction and reference in a unit: NaN and skipped (`empty_mask="skip"`, default; classes
  never scored are listed in `skipped_classes`) or 1.0 (`empty_mask="one"`). Reference empty but prediction not:
  Dice 0, precision 0; prediction empty but reference not: Dice 0, recall 0. The remaining 0/0 (recall with an
  empty reference, precision with an empty prediction) is `zero_division` (default 0.0, as scikit-learn).
- ROC-AUC = `sklearn.metrics.roc_auc_score`, PR-AUC = `sklearn.metrics.average_precision_score` per class
  (one-vs-rest), macro mean over classes having both positives and negatives in the set; the others are NaN and
  listed in `excluded_classes`. Binary tasks report class 1.
"""

from .classification import PROBLEM_TYPES, classification_auc
from .files import EvaluationInputError
from .reports import (
    EvaluationReport,
    evaluate_classification_files,
    evaluate_segmentation_files,
)
from .segmentation import (
    EMPTY_MASK_CONVENTIONS,
    POOLINGS,
    SegmentationOverlapAccumulator,
    overlap_scores_from_counts,
    segmentation_overlap,
)
from .trainer import (
    ClassificationComputeMetrics,
    SegmentationComputeMetrics,
    classification_compute_metrics,
    segmentation_compute_metrics,
    segmentation_logits_to_label_maps,
    trainer_scalars,
)

_EVALUATE_MODULES = ("SegmentationOverlap", "ClassificationAUC")


def __getattr__(name):
    if name in _EVALUATE_MODULES:
        from . import evaluate_modules

        return getattr(evaluate_modules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EMPTY_MASK_CONVENTIONS",
    "POOLINGS",
    "PROBLEM_TYPES",
    "ClassificationAUC",
    "ClassificationComputeMetrics",
    "EvaluationInputError",
    "EvaluationReport",
    "SegmentationComputeMetrics",
    "SegmentationOverlap",
    "SegmentationOverlapAccumulator",
    "classification_auc",
    "classification_compute_metrics",
    "evaluate_classification_files",
    "evaluate_segmentation_files",
    "overlap_scores_from_counts",
    "segmentation_compute_metrics",
    "segmentation_logits_to_label_maps",
    "segmentation_overlap",
    "trainer_scalars",
]
