"""Which rows a fine-tuning run trains and validates on: a dataset, a fold and a label fraction.

The dataset is named as `vis_mae_hf.data.loading.load_labelled_dataset` reads it (the demo, a converted folder, a
`save_to_disk` folder or a Hub id). Sets with `fold` / `label_rank` columns (every converted set) use them:
validation = the held-out fold, training = the first `label_fraction` of that fold's training patients (nested
across fractions; `vis_mae_hf.data.folds`). Sets without them must have a `validation` (or `test`) split; the
fraction is then a seeded random subset of the training rows, which is *not* grouped by patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...data.folds import (
    fraction_cutoff,
    select_training_subset,
    select_validation_fold,
)
from ...data.loading import (
    TARGET_COLUMNS,
    class_names_of,
    dataset_task,
    load_labelled_dataset,
)
from ...vocabulary import CLASSIFICATION, FINETUNING_TASKS, MULTILABEL

# The model config's `problem_type` of each dataset task (segmentation has none).
PROBLEM_TYPES = {CLASSIFICATION: "single_label_classification", MULTILABEL: "multi_label_classification"}


@dataclass
class FinetuningData:
    """The rows of one fine-tuning run, undecoded (transforms are attached by the training code)."""

    task: str  # "segmentation", "classification" or "multilabel"
    train: object  # datasets.Dataset
    validation: object  # datasets.Dataset
    label_names: list[str]
    description: str
    fold: int | None = None
    label_fraction: float = 1.0
    notes: list[str] = field(default_factory=list)

    @property
    def target_column(self) -> str:
        return TARGET_COLUMNS[self.task]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def problem_type(self) -> str | None:
        """The model config's `problem_type` (None for segmentation)."""
        return PROBLEM_TYPES.get(self.task)


def _seeded_fraction(dataset, fraction: float, seed: int):
    order = np.random.default_rng(seed).permutation(len(dataset))
    return dataset.select(np.sort(order[: fraction_cutoff(fraction, len(dataset))]))


def prepare_finetuning_data(
    dataset: str | None,
    task: str,
    *,
    fold: int = 0,
    label_fraction: float = 1.0,
    label_names: list[str] | None = None,
    split: str = "train",
    seed: int = 0,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
) -> FinetuningData:
    """Load `dataset` and select the training and validation rows of (`fold`, `label_fraction`).

    Args:
        dataset: see the module docstring.
        task: "segmentation" or "classification" (multi-label sets are recognised by their `labels` column).
        fold: the held-out fold (validation); training uses the other folds.
        label_fraction: in (0, 1]; the first fraction of the fold's training patients (nested across fractions).
        label_names: class names, needed only when the set does not carry them (segmentation sets saved by hand).
        split: the split holding the cross-validation pool.
        seed: seeds the row subset of sets without fold columns.
        max_train_examples, max_eval_examples: keep only the first rows (quick checks); None keeps all.
    """
    if task not in FINETUNING_TASKS:
        raise ValueError(f"task must be one of {', '.join(FINETUNING_TASKS)}, got {task!r}.")
    dataset_dict, stored_names, description = load_labelled_dataset(dataset, task)
    if split not in dataset_dict:
        raise ValueError(f"--dataset {dataset}: no split {split!r}; it has {list(dataset_dict)}.")
    pool = dataset_dict[split]
    resolved_task = dataset_task(pool.column_names, task)
    if "image" not in pool.column_names:
        raise ValueError(f"--dataset {dataset}: no `image` column; it has {pool.column_names}.")
    names = list(label_names) if label_names else stored_names or class_names_of(pool, TARGET_COLUMNS[resolved_task])
    if not names:
        raise ValueError(
            f"--dataset {dataset}: the class names are not stored with the set; pass them (--class-names "
            "background,lesion for a binary mask)."
        )
    notes: list[str] = []
    if "fold" in pool.column_names and "label_rank" in pool.column_names:
        train = select_training_subset(pool, fold, label_fraction)
        validation = select_validation_fold(pool, fold)
    else:
        held_out = next((name for name in ("validation", "test") if name in dataset_dict), None)
        if held_out is None:
            raise ValueError(
                f"--dataset {dataset}: no `fold`/`label_rank` columns and no validation/test split; convert it with "
                "`vis-mae data convert` to get patient-grouped folds."
            )
        train, validation = _seeded_fraction(pool, label_fraction, seed), dataset_dict[held_out]
        notes.append(
            f"no fold columns: validated on split {held_out!r}, trained on a seeded {label_fraction:.0%} of the rows "
            "(not grouped by patient); --fold is ignored"
        )
        fold = None
    if len(train) == 0 or len(validation) == 0:
        raise ValueError(
            f"--dataset {dataset}: fold {fold} with label fraction {label_fraction} leaves {len(train)} training and "
            f"{len(validation)} validation rows; both must be non-empty."
        )
    if max_train_examples is not None:
        train = train.select(range(min(max_train_examples, len(train))))
    if max_eval_examples is not None:
        validation = validation.select(range(min(max_eval_examples, len(validation))))
    return FinetuningData(
        task=resolved_task,
        train=train,
        validation=validation,
        label_names=names,
        description=description,
        fold=fold,
        label_fraction=label_fraction,
        notes=notes,
    )


__all__ = ["FinetuningData", "prepare_finetuning_data"]
