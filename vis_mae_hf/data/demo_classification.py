"""A demo classification task built honestly from the demo segmentation data: a plumbing demo, not a clinical task.

No labelled classification data ships in any installable package (see the project's DATA notes), so the classifier
demo asks a question whose answer we create ourselves: **is this MNI152 axial slice shown the right way up
(anterior at the top) or upside down (flipped anterior-posterior)?** Half of the slices of every fold, drawn with a
fixed seed, are flipped vertically and labelled 1. An orientation check is a real, if simple, quality-control task in
imaging pipelines, and the brain's front-back asymmetry makes it learnable; but the set is one averaged template
brain, so a good score says the fine-tuning plumbing works, nothing about clinical performance.

Why not "does the slice contain much white matter" or "which axial level": the demo's folds are contiguous slabs of
slices (one subject: random slice folds would leak), and any label that follows the axial level is nearly constant
inside a slab, so most validation folds would hold a single class and no ROC-AUC. A flip drawn per slice gives every
fold both classes.

The horizontal flips of the classification augmentation mirror left-right and never turn a slice upside down, so
augmentation does not corrupt the label.
"""

from __future__ import annotations

import numpy as np
from PIL import ImageOps

from .demo import load_demo_segmentation

DEMO_CLASSIFICATION_LABELS = ["anterior at top", "anterior at bottom (flipped)"]
DEMO_CLASSIFICATION_DESCRIPTION = (
    "plumbing demo: is an MNI152 axial slice upside down (anterior-posterior flipped)? Labels made by flipping half "
    "of each fold's slices; one averaged template brain; not a clinical task"
)


def flipped_slices(folds: np.ndarray, seed: int = 0) -> np.ndarray:
    """0/1 per row: which rows are flipped. Exactly half (rounded down) of every fold, chosen by a seeded draw."""
    folds = np.asarray(folds)
    flipped = np.zeros(len(folds), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for fold in np.unique(folds):
        rows = rng.permutation(np.flatnonzero(folds == fold))
        flipped[rows[: len(rows) // 2]] = 1
    return flipped


def load_demo_classification(seed: int = 0):
    """The demo classification `DatasetDict` (split `train`): the demo segmentation slices without their masks,
    half of each fold flipped upside down, `label` 0 = "anterior at top", 1 = "anterior at bottom (flipped)".

    Keeps `case_id`, `slice_index`, `fold` and `label_rank`, so folds and label fractions work as for any converted
    set. Built in memory in about a second from the cached demo segmentation set.
    """
    from datasets import ClassLabel, DatasetDict, Features


    slices = load_demo_segmentation()["train"]
    flipped = flipped_slices(np.asarray(slices["fold"]), seed=seed)
    columns = {name: feature for name, feature in slices.features.items() if name != "mask"}
    columns["label"] = ClassLabel(names=DEMO_CLASSIFICATION_LABELS)
    features = Features(columns)

    def orient(row: dict, index: int) -> dict:
        image = ImageOps.flip(row["image"]) if flipped[index] else row["image"]  # flip = top-bottom
        return {"image": image, "label": int(flipped[index])}

    labelled = slices.map(
        orient,
        with_indices=True,
        remove_columns=["mask"],
        features=features,
        keep_in_memory=True,  # small; and the demo cache belongs to the segmentation set
        desc="demo orientation labels",
    )
    return DatasetDict({"train": labelled})


__all__ = [
    "DEMO_CLASSIFICATION_LABELS",
    "load_demo_classification",
]
