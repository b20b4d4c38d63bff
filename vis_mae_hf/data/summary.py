"""What a converted set holds: rows and patients per split and fold, class balance. Printed after conversion."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
from PIL import Image as PILImage

from ..vocabulary import CLASSIFICATION, MULTILABEL, SEGMENTATION
from .folds import fold_statistics

_SKIPPED_PRINTED = 10


def summarize_dataset_dict(dataset_dict, *, task: str, label_names: list[str], n_folds: int) -> dict:
    """Counts per split (rows, patients, class balance) and per fold of the cross-validation pool."""
    splits = {}
    patients_by_split = {}
    for split, dataset in dataset_dict.items():
        table = dataset.data
        patients = table.column("case_id").to_pylist()
        patients_by_split[split] = set(patients)
        entry = {"rows": len(dataset), "patients": len(set(patients))}
        entry["class_balance"] = _class_balance(table, task, label_names)
        if split == "train":
            entry.update(fold_statistics(table.column("fold").to_pylist(), patients, n_folds))
        splits[split] = entry
    train_patients = patients_by_split.get("train", set())
    shared = sorted(
        patient for split, patients in patients_by_split.items() if split != "train" for patient in patients
        if patient in train_patients
    )
    return {"task": task, "label_names": list(label_names), "splits": splits, "patients_shared_across_splits": shared}


def _class_balance(table, task: str, label_names: list[str]) -> dict:
    if task == CLASSIFICATION:
        counts = Counter(table.column("label").to_pylist())
        return {name: counts.get(index, 0) for index, name in enumerate(label_names)}
    if task == MULTILABEL:
        counts: Counter = Counter()
        no_label = 0
        for labels in table.column("labels").to_pylist():
            counts.update(labels)
            no_label += not labels
        balance = {name: counts.get(index, 0) for index, name in enumerate(label_names)}
        balance["(no label)"] = no_label
        return balance
    if task == SEGMENTATION:
        # Rows in which each mask value occurs: which organs the slices cover, without decoding any image.
        present: Counter = Counter()
        for chunk in table.column("mask").chunks:
            for encoded in chunk.field("bytes").to_pylist():
                with PILImage.open(io.BytesIO(encoded)) as mask:
                    present.update(np.unique(np.asarray(mask)).tolist())
        return {
            name: present.get(index, 0) for index, name in enumerate(label_names)
        } | {f"(unnamed value {value})": count for value, count in present.items() if value >= len(label_names)}
    raise ValueError(f"Unknown task {task!r}.")


def format_summary(summary: dict) -> str:
    """A short human-readable table of `summarize_dataset_dict`'s result."""
    balance_title = "slices containing" if summary["task"] == SEGMENTATION else "class balance"
    lines = []
    for split, entry in summary["splits"].items():
        lines.append(f"{split}: {entry['rows']} rows, {entry['patients']} patients")
        if "rows_per_fold" in entry:
            lines.append(
                "  folds (rows / patients): "
                + ", ".join(f"{r}/{p}" for r, p in zip(entry["rows_per_fold"], entry["patients_per_fold"]))
            )
        balance = ", ".join(f"{name}: {count}" for name, count in entry["class_balance"].items())
        lines.append(f"  {balance_title}: {balance}")
    skipped = summary.get("skipped") or []
    if skipped:
        lines.append(f"skipped {len(skipped)} input file(s) (on_error='skip'; all are listed in the summary):")
        lines.extend(f"  {entry['file']}: {entry['reason']}" for entry in skipped[:_SKIPPED_PRINTED])
        if len(skipped) > _SKIPPED_PRINTED:
            lines.append(f"  ... and {len(skipped) - _SKIPPED_PRINTED} more")
    lines.extend(f"note: {note}" for note in summary.get("notes") or [])
    lines.extend(f"note: {note}" for note in summary.get("fold_notes") or [] if "gave no rows" in note)
    if summary.get("patients_shared_across_splits"):
        shared = summary["patients_shared_across_splits"]
        lines.append(f"WARNING: {len(shared)} patient(s) appear in the training pool and another split: {shared[:5]}")
    return "\n".join(lines)
