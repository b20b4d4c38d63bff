"""Which rows a fine-tuning run trains and validates on: a dataset, a fold and a label fraction.

A dataset is named by one string:
- None or "demo": the built-in demo of the task (MNI152 tissue segmentation; for classification the orientation
  plumbing demo of `demo_tasks.py`);
- a directory written by `vis-mae data convert` (its `vis_mae_conversion.json` gives the task and label names);
- any other directory saved with `save_to_disk` (a `DatasetDict` or a `Dataset`);
- a Hub dataset id, loaded with `datasets.load_dataset` (from the local cache when offline).

Sets with `fold` / `label_rank` columns (every converted set) use them: validation = the held-out fold, training =
the first `label_fraction` of that fold's training patients (nested across fractions; `vis_mae_hf.data.folds`).
Sets without them must have a `validation` (or `test`) split; the fraction is then a seeded random subset of the
training rows, which is *not* grouped by patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SEGMENTATION = "segmentation"
CLASSIFICATION = "classification"
MULTILABEL = "multilabel"
TARGET_COLUMNS = {SEGMENTATION: "mask", CLASSIFICATION: "label", MULTILABEL: "labels"}
DEMO_NAMES = (None, "", "demo")


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
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.label_names)}

    @property
    def problem_type(self) -> str | None:
        """The model config's `problem_type` (None for segmentation)."""
        return {
            CLASSIFICATION: "single_label_classification",
            MULTILABEL: "multi_label_classification",
        }.get(self.task)


def _task_of_columns(columns: list[str], wanted: str) -> str:
    """The task a set supports, given the task family the caller runs ("segmentation" or "classification")."""
    if wanted == SEGMENTATION:
        if "mask" not in columns:
            raise ValueError(f"A segmentation set needs `image` and `mask` columns; this one has {columns}.")
        return SEGMENTATION
    if "label" in columns:
        return CLASSIFICATION
    if "labels" in columns:
        return MULTILABEL
    raise ValueError(
        f"A classification set needs `image` and `label` (one class) or `labels` (multi-label) columns; this one has "
        f"{columns}."
    )


def _class_names_of(dataset, column: str) -> list[str] | None:
    feature = dataset.features.get(column)
    feature = getattr(feature, "feature", feature)  # List(ClassLabel) -> ClassLabel
    return list(feature.names) if hasattr(feature, "names") else None


def load_dataset_dict(dataset: str | None, task: str):
    """(DatasetDict, label names or None, description) for a dataset string (see the module docstring)."""
    from datasets import Dataset, DatasetDict, load_from_disk

    if dataset in DEMO_NAMES:
        if task == SEGMENTATION:
            from ..data.demo import TISSUE_LABELS, load_demo_segmentation

            return (
                load_demo_segmentation(),
                list(TISSUE_LABELS),
                "demo: MNI152 2009 T1 axial slices, tissue labels (one averaged subject; folds are contiguous slabs)",
            )
        from .demo_tasks import DEMO_CLASSIFICATION_DESCRIPTION, DEMO_CLASSIFICATION_LABELS, load_demo_classification

        return load_demo_classification(), list(DEMO_CLASSIFICATION_LABELS), f"demo: {DEMO_CLASSIFICATION_DESCRIPTION}"
    path = Path(dataset).expanduser()
    if path.is_dir():
        from ..data.conversion import CONVERSION_METADATA_FILE, load_converted, read_conversion_metadata

        if (path / CONVERSION_METADATA_FILE).is_file():
            metadata = read_conversion_metadata(path)
            names = list(metadata.get("label_names") or []) or None
            return load_converted(path), names, f"{metadata['source']} ({path})"
        try:
            loaded = load_from_disk(str(path))
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"--dataset {dataset}: the directory is neither a `vis-mae data convert` output nor a dataset saved "
                f"with save_to_disk ({error})."
            ) from error
        if isinstance(loaded, Dataset):
            loaded = DatasetDict({"train": loaded})
        return loaded, None, str(path)
    if path.exists():
        raise ValueError(f"--dataset {dataset}: a file, but a dataset is a directory (or a Hub dataset id).")
    if str(dataset).startswith(("/", ".", "~")):
        raise FileNotFoundError(f"--dataset {dataset}: no such directory.")
    from datasets import load_dataset

    try:
        return load_dataset(str(dataset)), None, f"{dataset} (Hub)"
    except Exception as error:  # datasets raises several types for "not found" / "offline"
        raise FileNotFoundError(
            f"--dataset {dataset!r} is not a directory and could not be loaded as a Hub dataset ({error}). Pass a "
            "`vis-mae data convert` output directory, a save_to_disk directory, a cached Hub dataset id, or nothing "
            "for the demo."
        ) from error


def _seeded_fraction(dataset, fraction: float, seed: int):
    from ..data.folds import fraction_cutoff

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
    from ..data.folds import select_training_subset, select_validation_fold

    if task not in (SEGMENTATION, CLASSIFICATION):
        raise ValueError(f"task must be {SEGMENTATION!r} or {CLASSIFICATION!r}, got {task!r}.")
    dataset_dict, stored_names, description = load_dataset_dict(dataset, task)
    if split not in dataset_dict:
        raise ValueError(f"--dataset {dataset}: no split {split!r}; it has {list(dataset_dict)}.")
    pool = dataset_dict[split]
    resolved_task = _task_of_columns(pool.column_names, task)
    if "image" not in pool.column_names:
        raise ValueError(f"--dataset {dataset}: no `image` column; it has {pool.column_names}.")
    names = list(label_names) if label_names else stored_names or _class_names_of(pool, TARGET_COLUMNS[resolved_task])
    if not names:
        raise ValueError(
            f"--dataset {dataset}: the class names are not stored with the set; pass them (--label_names "
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


__all__ = ["FinetuningData", "load_dataset_dict", "prepare_finetuning_data"]
