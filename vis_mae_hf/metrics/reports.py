"""Scoring predictions written to files against references, with the package's metric conventions: `vis-mae evaluate`.

    report = evaluate_segmentation_files("predictions/", "labelsTs/")           # labels from predictions/labels.json
    print(report.format_table())
    report.to_json_dict(dataset="my liver CT, test split")                       # what `--output` writes

Files are read and paired as `files.py` says; every case is read and checked before a number is reported, so bad
input stops the evaluation with an error naming the file and never gives a partial result.

Segmentation: each case is one unit of `SegmentationOverlapAccumulator` (a 2-D image, or a whole volume), so the
scores are those of `segmentation.py` with nothing re-implemented. The report holds
- per case: Dice, precision and recall per class and their means (`overlap_scores_from_counts` of that case alone);
- pooled: "per_image" (2-D) or "per_volume" (NIfTI): each class averaged over the cases in which it is scored, then
  the classes averaged; and "global": the counts of every pixel (voxel) of every case pooled, then scored.
The conventions are the metrics' own and are recorded in the report: background left out of the means unless
`include_background`, a class absent from a case's prediction and reference skipped (`empty_mask="skip"`) or scored
1 (`"one"`), `zero_division` for the remaining 0/0, reference pixels equal to `ignore_index` (none unless given)
left out.

Classification: `classification_auc` on the probabilities of `predictions.csv` (`from_logits=False`): ROC-AUC and
PR-AUC (class 1 for binary models, the macro mean over classes that have positives and negatives otherwise) and, for
single-label models, accuracy of the most probable class; per case, the reference, the predicted label and whether
they agree.

`to_json_dict` also carries `results`: an evaluation summary (`vis_mae_hf.hub.summaries`) of the pooled means, so
the JSON file can be passed to `vis-mae hub export --evaluation` as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..inference.outputs import predicted_label
from ..vocabulary import CLASSIFICATION, HUB_TASK_TYPES, MULTILABEL, SEGMENTATION
from .classification import classification_auc
from .files import (
    VOLUME,
    EvaluationInputError,
    declared_labels,
    pair_files,
    read_image_pair,
    read_prediction_table,
    read_reference_table,
    read_volume_pair,
)
from .segmentation import (
    OVERLAP_SCORES,
    SegmentationOverlapAccumulator,
    overlap_scores_from_counts,
)

TABLE = "table"  # the kind of a classification evaluation: one table of predictions
_SUMMED_ROW_TOLERANCE = 1e-4


@dataclass
class EvaluationReport:
    """The scores of one evaluation and what they were computed from.

    Attributes:
        task: "segmentation", "classification" or "multilabel".
        kind: "image" (2-D label maps), "volume" (NIfTI) or "table" (classification CSVs).
        label_names: the classes, in index order.
        inputs: {"predictions": path, "references": path}.
        conventions: the metric conventions used (JSON-ready).
        cases: one entry per case: its name, files (segmentation) or reference and predicted labels
            (classification), and its scores.
        pooled: pooling name -> scores ("per_image" or "per_volume", and "global"; "all" for classification).
        primary: the pooling the evaluation summary reports.
        ignored: files of the input folders that were not read (not label maps).
    """

    task: str
    kind: str
    label_names: list[str]
    inputs: dict[str, str]
    conventions: dict
    cases: list[dict]
    pooled: dict[str, dict]
    primary: str
    ignored: list[str] = field(default_factory=list)

    def summary_metrics(self) -> dict[str, float]:
        """The finite scores of the primary pooling that an evaluation summary publishes: the means (or the areas and
        accuracy) and the per-class Dice (or ROC-AUC)."""
        scores = self.pooled[self.primary]
        if self.task == SEGMENTATION:
            keys = [f"{score}_mean" for score in OVERLAP_SCORES] + [f"dice/{name}" for name in self.scored_classes]
        else:
            keys = ["roc_auc", "pr_auc", "accuracy"] + [f"roc_auc/{name}" for name in self.label_names]
        return {key: float(scores[key]) for key in keys if _is_finite(scores.get(key))}

    @property
    def scored_classes(self) -> list[str]:
        """The classes the means average over (background only with `include_background`)."""
        first = 0 if self.conventions.get("include_background") else 1
        return self.label_names[first:] if self.task == SEGMENTATION else list(self.label_names)

    def evaluation_summary(self, dataset: str, split: str | None = None) -> dict:
        """An evaluation summary (`vis_mae_hf.hub.summaries`) of this report, for `vis-mae hub export --evaluation`."""
        task = HUB_TASK_TYPES[SEGMENTATION if self.task == SEGMENTATION else CLASSIFICATION]
        result = {"task": task, "dataset": dataset, "metrics": self.summary_metrics(), "notes": self.describe()}
        if split:
            result["split"] = split
        return {"results": [result]}

    def describe(self) -> str:
        """One sentence saying what was scored and how, for people (the table's title, the card's notes)."""
        count = len(self.cases)
        if self.task != SEGMENTATION:
            kind = "multi-label" if self.task == MULTILABEL else "single-label"
            return f"{count} images, {kind} classification scored by vis-mae evaluate from predicted probabilities."
        unit = "volumes" if self.kind == VOLUME else "images"
        background = "included in" if self.conventions["include_background"] else "left out of"
        empty = "skipped" if self.conventions["empty_mask"] == "skip" else "scored 1"
        return (
            f"{count} {unit} scored by vis-mae evaluate: {self.primary} pooling, background {background} the means, "
            f"a class absent from both prediction and reference of a case {empty}."
        )

    def to_json_dict(self, dataset: str | None = None, split: str | None = None) -> dict:
        """Everything in the report as JSON-ready data (NaN, "not scorable", written as null), with `results`."""
        data = {
            "task": self.task,
            "kind": self.kind,
            "labels": {str(index): name for index, name in enumerate(self.label_names)},
            "inputs": dict(self.inputs),
            "conventions": dict(self.conventions),
            "pooled": self.pooled,
            "cases": self.cases,
            "ignored_files": list(self.ignored),
            **self.evaluation_summary(dataset or Path(self.inputs["references"]).resolve().name, split),
        }
        return _json_ready(data)

    def format_table(self) -> str:
        """A readable plain-text table: what was scored, the pooled scores, the classes, then the cases."""
        if self.task == SEGMENTATION:
            return _segmentation_table(self)
        return _classification_table(self)


# ------------------------------------------------------------------------------------------------ segmentation


def evaluate_segmentation_files(
    predictions: str | Path,
    references: str | Path,
    labels: str | Sequence[str] | None = None,
    *,
    ignore_index: int | None = None,
    include_background: bool = False,
    empty_mask: str = "skip",
    zero_division: float = 0.0,
) -> EvaluationReport:
    """Score the label maps of `predictions` against those of `references` (two folders paired by case name, or two
    files), per case and pooled.

    Args:
        predictions, references: folders (or single files) of 2-D label maps or NIfTI volumes (`files.py`).
        labels: the class names in order, a labels.json path or comma-separated names; default the
            `labels.json` in the predictions folder (as `vis-mae predict` writes it).
        ignore_index: a reference value whose pixels are left out of every count (e.g. 255 for "unlabelled").
        include_background, empty_mask, zero_division: the conventions of `vis_mae_hf.metrics.segmentation`.

    Raises:
        EvaluationInputError (a ValueError), MedicalImageError: naming the file and what is wrong.
    """
    pairs, ignored = pair_files(predictions, references)
    names = declared_labels(labels, predictions)
    accumulator = SegmentationOverlapAccumulator(len(names), ignore_index=ignore_index)
    read = read_volume_pair if pairs[0].kind == VOLUME else read_image_pair
    for pair in pairs:
        prediction, reference = read(pair, names, ignore_index)
        accumulator.update([prediction], [reference], case_ids=[pair.case])
    conventions = dict(include_background=include_background, empty_mask=empty_mask, zero_division=zero_division)
    id2label = dict(enumerate(names))
    counts = accumulator.pooled_counts("per_image")
    cases = [
        {
            "case": pair.case,
            "prediction": str(pair.prediction),
            "reference": str(pair.reference),
            "scores": overlap_scores_from_counts(*(part[row : row + 1] for part in counts), **conventions,
                                                 id2label=id2label),
        }
        for row, pair in enumerate(pairs)
    ]
    primary = "per_volume" if pairs[0].kind == VOLUME else "per_image"
    pooled = {pooling: accumulator.compute(pooling=pooling, **conventions, id2label=id2label)
              for pooling in (primary, "global")}
    return EvaluationReport(
        task=SEGMENTATION, kind=pairs[0].kind, label_names=names,
        inputs={"predictions": str(predictions), "references": str(references)},
        conventions={**conventions, "ignore_index": ignore_index}, cases=cases, pooled=pooled, primary=primary,
        ignored=[str(path) for path in ignored],
    )


# ------------------------------------------------------------------------------------------------ classification


def evaluate_classification_files(
    predictions: str | Path, references: str | Path, *, multi_label: bool | None = None
) -> EvaluationReport:
    """Score a `predictions.csv` of `vis-mae predict` against a references CSV (`files.py` says what each holds).

    Args:
        multi_label: whether the model is multi-label; None reads it from the `predictions.json` beside the table
            (single-label when there is none).
    """
    table = read_prediction_table(predictions, multi_label)
    if not table.multi_label:
        sums = table.probabilities.sum(axis=1)
        worst = int(np.argmax(np.abs(sums - 1)))
        # each of the K probabilities is written with 6 decimals: their sum may be off by K x 5e-7
        if abs(sums[worst] - 1) > _SUMMED_ROW_TOLERANCE:
            raise EvaluationInputError(
                f"{table.path}: the probabilities of {table.cases[worst]} sum to {sums[worst]:.4f}, not 1, as a "
                "single-label model's do; for a multi-label model pass --multi-label (or keep predictions.json "
                "beside the table)."
            )
    reference = read_reference_table(references, table)
    problem_type = "multi_label_classification" if table.multi_label else "single_label_classification"
    scores = classification_auc(
        table.probabilities, reference, problem_type=problem_type, from_logits=False,
        id2label=dict(enumerate(table.label_names)),
    )
    return EvaluationReport(
        task=MULTILABEL if table.multi_label else CLASSIFICATION, kind=TABLE, label_names=table.label_names,
        inputs={"predictions": str(predictions), "references": str(references)},
        conventions={"problem_type": problem_type, "from_logits": False}, cases=_classification_cases(table, reference),
        pooled={"all": scores}, primary="all",
    )


def _classification_cases(table, reference: np.ndarray) -> list[dict]:
    names = table.label_names
    cases = []
    for case, probabilities, truth in zip(table.cases, table.probabilities, reference):
        predicted = predicted_label(probabilities, names, table.multi_label)
        if table.multi_label:
            expected = ";".join(name for name, present in zip(names, truth) if present)
        else:
            expected = names[int(truth)]
        cases.append({
            "case": case, "reference": expected, "predicted": predicted, "correct": predicted == expected,
            "probabilities": {name: float(p) for name, p in zip(names, probabilities)},
        })
    return cases


# ------------------------------------------------------------------------------------------------ presentation


def _is_finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _json_ready(value):
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def aligned(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    """Rows of cells as lines of columns: the first left-aligned, the others right-aligned."""
    texts = [[str(cell) for cell in header]] + [[_cell(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in texts) for column in range(len(header))]
    return [
        "  ".join(text.ljust(width) if column == 0 else text.rjust(width)
                  for column, (text, width) in enumerate(zip(row, widths))).rstrip()
        for row in texts
    ]


def _segmentation_table(report: EvaluationReport) -> str:
    means = [f"{score}_mean" for score in OVERLAP_SCORES]
    primary = report.pooled[report.primary]
    lines = [report.describe(), "", *aligned(["pooling", *means],
                                             [[name, *(scores[key] for key in means)]
                                              for name, scores in report.pooled.items()])]
    class_rows = [
        [name, *(primary[f"{score}/{name}"] for score in OVERLAP_SCORES),
         f"{primary[f'scored_units/{name}']}/{len(report.cases)}", report.pooled["global"][f"dice/{name}"]]
        for name in report.label_names
    ]
    class_header = [f"class ({report.primary})", *OVERLAP_SCORES, "scored cases", "dice (global)"]
    case_rows = [[case["case"], *(case["scores"][key] for key in means)] for case in report.cases]
    lines += ["", *aligned(class_header, class_rows), "", *aligned(["case", *means], case_rows)]
    if primary["skipped_classes"]:
        lines += ["", f"not scored (absent from every case's prediction and reference): "
                      f"{', '.join(primary['skipped_classes'])}"]
    return "\n".join(lines + _ignored_lines(report))


def _ignored_lines(report: EvaluationReport) -> list[str]:
    if not report.ignored:
        return []
    names = [Path(path).name for path in report.ignored]
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return ["", f"not read ({len(names)} files or folders that are not label maps): {shown}"]


def _classification_table(report: EvaluationReport) -> str:
    scores = report.pooled["all"]
    overall = [key for key in ("roc_auc", "pr_auc", "accuracy") if key in scores]
    lines = [report.describe(), "", *aligned(["metric", "value"], [[key, scores[key]] for key in overall])]
    if f"roc_auc/{report.label_names[0]}" in scores:
        rows = [[name, scores[f"roc_auc/{name}"], scores[f"pr_auc/{name}"]] for name in report.label_names]
        lines += ["", *aligned(["class", "roc_auc", "pr_auc"], rows)]
    rows = [[case["case"], case["reference"] or "(none)", case["predicted"] or "(none)",
             "yes" if case["correct"] else "no"] for case in report.cases]
    lines += ["", *aligned(["case", "reference", "predicted", "agree"], rows)]
    if scores["excluded_classes"]:
        lines += ["", f"no area (no positive or no negative reference): {', '.join(scores['excluded_classes'])}"]
    return "\n".join(lines)
