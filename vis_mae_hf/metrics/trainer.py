"""`transformers.Trainer` glue: `compute_metrics` factories and a `preprocess_logits_for_metrics` for segmentation.

Both callables accept `EvalPrediction` and work in the two Trainer modes:
    default: called once with the whole evaluation set (`compute_result` not passed);
    `TrainingArguments(batch_eval_metrics=True)`: called per batch with `compute_result=False`, and with
        `compute_result=True` on the last batch, when the accumulated result is returned and the state reset.
The returned dict holds floats only: lists (`skipped_classes`, `excluded_classes`) become counts
(`num_skipped_classes`, `num_excluded_classes`) and integer bookkeeping (`scored_units/...`, `num_units`,
`num_samples`) is left out, so every logger integration gets scalars. NaN means "not scorable" (see the metric
modules); choose `metric_for_best_model` among the `*_mean` / `roc_auc` / `pr_auc` keys.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as functional

from ._arrays import class_names, is_torch_tensor, to_numpy
from .classification import PROBLEM_TYPES, classification_auc
from .segmentation import POOLINGS, SegmentationOverlapAccumulator

# Trainer pads predictions and labels with -100 when it concatenates batches of different sizes or gathers
# across processes; those pixels are padding, never data.
TRAINER_PADDING_INDEX = -100


def trainer_scalars(result: Mapping) -> dict[str, float]:
    """The float entries of a metric result, lists replaced by their length under `num_<key>`."""
    scalars: dict[str, float] = {}
    for key, value in result.items():
        if isinstance(value, float):
            scalars[key] = value
        elif isinstance(value, list):
            scalars[f"num_{key}"] = float(len(value))
    return scalars


def _first_output(predictions):
    # A model returning more than logits gives Trainer a tuple; the logits come first.
    return predictions[0] if isinstance(predictions, (tuple, list)) else predictions


def segmentation_logits_to_label_maps(logits, labels=None):
    """Class logits (N, K, H, W) or (N, K, D, H, W) to label maps (N, H, W) / (N, D, H, W) as int8 (int32 beyond
    127 classes).

    Use as `Trainer(preprocess_logits_for_metrics=segmentation_logits_to_label_maps)` so the Trainer keeps label
    maps (int8: a sixteenth of float32 logits' memory per class) instead of all logits. int8 because it is signed
    (Trainer pads with -100) and because processes gather it: NCCL and gloo have no int16. When `labels` are given and
    their spatial size differs from the logits' (decoders that predict at a lower resolution), the logits are
    resized to the labels' size first, bilinearly (trilinearly for volumes) with `align_corners=False`, as
    `post_process_semantic_segmentation` does; resizing logits rather than label maps keeps boundaries smooth.
    """

    logits = _first_output(logits)
    if not is_torch_tensor(logits):
        logits = torch.as_tensor(np.asarray(logits))
    if logits.ndim not in (4, 5):
        raise ValueError(
            f"`logits` must be (N, K, H, W) or (N, K, D, H, W), got shape {tuple(logits.shape)}."
        )
    spatial_size = tuple(logits.shape[2:])
    if labels is not None:
        if labels.ndim != logits.ndim - 1:
            raise ValueError(
                f"`labels` shape {tuple(labels.shape)} does not match `logits` shape {tuple(logits.shape)}: "
                "expected labels with the class axis removed."
            )
        label_size = tuple(labels.shape[1:])
        if label_size != spatial_size:
            mode = "bilinear" if len(spatial_size) == 2 else "trilinear"
            logits = functional.interpolate(logits.float(), size=label_size, mode=mode, align_corners=False)
    label_dtype = torch.int8 if logits.shape[1] <= torch.iinfo(torch.int8).max else torch.int32
    return logits.argmax(dim=1).to(label_dtype)


class SegmentationComputeMetrics:
    """`compute_metrics` for semantic segmentation; build it with `segmentation_compute_metrics`."""

    def __init__(
        self,
        num_labels: int,
        id2label: Mapping | None = None,
        *,
        ignore_index: int | Sequence[int] | None = 255,
        pooling: str = "per_image",
        case_ids: Sequence[Hashable] | None = None,
        include_background: bool = False,
        empty_mask: str = "skip",
        zero_division: float = 0.0,
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
        if (pooling == "per_volume") != (case_ids is not None):
            raise ValueError(
                '`case_ids` (one id per evaluation example, in dataset order) is required with pooling="per_volume" '
                f"and only then; got pooling={pooling!r} and case_ids={'given' if case_ids is not None else None}."
            )
        class_names(num_labels, id2label)  # fail now, not after a whole evaluation pass
        if ignore_index is None:
            ignored: tuple = ()
        elif np.isscalar(ignore_index):
            ignored = (ignore_index,)
        else:
            ignored = tuple(ignore_index)
        self.accumulator = SegmentationOverlapAccumulator(num_labels, ignore_index=(*ignored, TRAINER_PADDING_INDEX))
        self.case_ids = None if case_ids is None else list(case_ids)
        self.conventions = dict(
            pooling=pooling,
            include_background=include_background,
            empty_mask=empty_mask,
            zero_division=zero_division,
            id2label=id2label,
        )
        self._items_seen = 0

    def reset(self) -> None:
        self.accumulator.reset()
        self._items_seen = 0

    def __call__(self, eval_prediction, compute_result: bool | None = None) -> dict[str, float]:
        if compute_result is None:  # the whole set at once: drop anything left by an interrupted batched pass
            self.reset()
        predictions = _first_output(eval_prediction.predictions)
        labels = eval_prediction.label_ids
        if labels is None:
            raise ValueError("segmentation metrics need `label_ids`: the evaluation set has no `labels` column.")
        if predictions.ndim == labels.ndim + 1:  # logits: no preprocess_logits_for_metrics was set
            predictions = segmentation_logits_to_label_maps(predictions, _as_tensor(labels))
        num_items = len(labels)
        batch_case_ids = None
        if self.case_ids is not None:
            batch_case_ids = self.case_ids[self._items_seen : self._items_seen + num_items]
            if len(batch_case_ids) != num_items:
                raise ValueError(
                    f"`case_ids` has {len(self.case_ids)} entries but the evaluation produced more items "
                    f"({self._items_seen + num_items} so far): give one case id per evaluation example."
                )
        self.accumulator.update(predictions, labels, case_ids=batch_case_ids)
        self._items_seen += num_items
        if compute_result is False:
            return {}
        try:
            if self.case_ids is not None and self._items_seen != len(self.case_ids):
                raise ValueError(
                    f"`case_ids` has {len(self.case_ids)} entries but the evaluation produced {self._items_seen} "
                    "items: give one case id per evaluation example, in dataset order."
                )
            return trainer_scalars(self.accumulator.compute(**self.conventions))
        finally:
            self.reset()


def _as_tensor(values):
    if is_torch_tensor(values):
        return values

    return torch.as_tensor(to_numpy(values, "label_ids"))


class ClassificationComputeMetrics:
    """`compute_metrics` for image classification; build it with `classification_compute_metrics`."""

    def __init__(self, problem_type: str, id2label: Mapping | None = None, *, from_logits: bool = True):
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"`problem_type` must be one of {PROBLEM_TYPES}, got {problem_type!r}.")
        self.problem_type = problem_type
        self.id2label = id2label
        self.from_logits = from_logits
        self.reset()

    def reset(self) -> None:
        self._scores: list[np.ndarray] = []
        self._references: list[np.ndarray] = []

    def __call__(self, eval_prediction, compute_result: bool | None = None) -> dict[str, float]:
        if compute_result is None:
            self.reset()
        if eval_prediction.label_ids is None:
            raise ValueError("classification metrics need `label_ids`: the evaluation set has no `labels` column.")
        # AUCs rank the whole set, so batches are kept (N x C scores: small) until the last one.
        self._scores.append(to_numpy(_first_output(eval_prediction.predictions), "predictions"))
        self._references.append(to_numpy(eval_prediction.label_ids, "label_ids"))
        if compute_result is False:
            return {}
        try:
            result = classification_auc(
                np.concatenate(self._scores),
                np.concatenate(self._references),
                problem_type=self.problem_type,
                from_logits=self.from_logits,
                id2label=self.id2label,
            )
            return trainer_scalars(result)
        finally:
            self.reset()


def segmentation_compute_metrics(
    num_labels: int, id2label: Mapping | None = None, **conventions
) -> SegmentationComputeMetrics:
    """`Trainer(compute_metrics=...)` for segmentation; `conventions` are those of `segmentation_overlap`
    (`ignore_index`, `pooling`, `case_ids`, `include_background`, `empty_mask`, `zero_division`).

    Pair it with `preprocess_logits_for_metrics=segmentation_logits_to_label_maps` to keep memory low. For
    `pooling="per_volume"`, `case_ids` lists the case of every evaluation example in dataset order (Trainer
    evaluates sequentially).
    """
    return SegmentationComputeMetrics(num_labels, id2label, **conventions)


def classification_compute_metrics(
    problem_type: str, id2label: Mapping | None = None, *, from_logits: bool = True
) -> ClassificationComputeMetrics:
    """`Trainer(compute_metrics=...)` for classification (`problem_type` as in the model config)."""
    return ClassificationComputeMetrics(problem_type, id2label, from_logits=from_logits)
