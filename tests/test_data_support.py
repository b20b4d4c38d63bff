"""Shared helpers of the data tests: tiny files in the publishers' formats and the checks every converted set passes.

(Named test_data_*.py to sit with the data tests; it defines no tests itself.)
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

from vis_mae_hf.data.folds import (
    LABEL_FRACTIONS,
    fraction_cutoff,
    select_training_subset,
)


def save_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def save_nifti(path: Path, volume: np.ndarray, affine: np.ndarray | None = None, dtype=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(volume, dtype=dtype or volume.dtype), np.eye(4) if affine is None else affine)
    nib.save(image, path)
    return path


def noise_image(seed: int, shape=(32, 32), channels: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    full = shape + ((channels,) if channels else ())
    return rng.integers(10, 245, size=full, dtype=np.uint8)


def square_mask(shape=(32, 32), top=4, left=4, size=8, value=255) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[top : top + size, left : left + size] = value
    return mask


def ct_volume_and_labels(seed: int, shape=(32, 32, 6), labelled_slices=(1, 2, 3), labels=(1, 6)):
    """A CT-like volume in HU (air, soft tissue, one bright organ) and a label volume over a few slices."""
    rng = np.random.default_rng(seed)
    volume = rng.normal(40, 20, size=shape).astype(np.float32)
    volume[:4] = -1000  # air on one side
    mask = np.zeros(shape, dtype=np.uint8)
    for z in labelled_slices:
        for i, label in enumerate(labels):
            mask[8 + 8 * i : 14 + 8 * i, 10:18, z] = label
            volume[8 + 8 * i : 14 + 8 * i, 10:18, z] = 150 + 50 * i
    return volume, mask


def pet_series(folder, n_slices=4, seed=0):
    """A PET DICOM series (Modality PT, Bq/ml stored with a rescale slope), one file per slice, written with the
    package's PET writer (the one the demo's synthetic PET uses) from random activity."""
    from vis_mae_hf.data.synthetic_pet import write_pet_series

    activity = np.random.default_rng(seed).integers(0, 3000, size=(16, 16, n_slices)).astype(np.float32) * 2.5
    write_pet_series(activity, folder, list(range(n_slices)), origin_ras=np.zeros(3))


def check_converted(
    dataset_dict,
    *,
    task: str,
    label_names: list[str],
    rows: dict[str, int],
    case_ids: dict[str, set[str]],
    mask_values: set[int] | None = None,
    n_folds: int = 5,
) -> None:
    """What every converted set must satisfy (features, counts, ids, masks, folds, nested fractions)."""
    from datasets import ClassLabel, List
    from datasets import Image as ImageFeature

    assert set(dataset_dict) == set(rows), f"splits {set(dataset_dict)} != {set(rows)}"
    for split, dataset in dataset_dict.items():
        features = dataset.features
        assert isinstance(features["image"], ImageFeature)
        if task == "segmentation":
            assert isinstance(features["mask"], ImageFeature)
        elif task == "classification":
            assert isinstance(features["label"], ClassLabel) and features["label"].names == label_names
        else:
            assert isinstance(features["labels"], List) and features["labels"].feature.names == label_names
        assert len(dataset) == rows[split], f"{split}: {len(dataset)} rows, expected {rows[split]}"
        assert set(dataset["case_id"]) == case_ids[split], f"{split}: case ids {sorted(set(dataset['case_id']))}"
        assert all(isinstance(index, int) for index in dataset["slice_index"])
        if mask_values is not None:
            seen = set()
            for row in dataset:
                mask = np.asarray(row["mask"])
                image = row["image"]
                assert mask.shape == (image.height, image.width), "mask and image sizes differ"
                seen |= set(np.unique(mask).tolist())
            assert seen == mask_values, f"{split}: mask values {sorted(seen)} != {sorted(mask_values)}"
        folds = dataset["fold"]
        if split != "train":
            assert set(folds) == {-1}
            assert all(ranks == [-1] * n_folds for ranks in dataset["label_rank"])
            continue
        check_folds_and_fractions(dataset, n_folds=n_folds)


def check_folds_and_fractions(dataset, *, n_folds: int) -> None:
    folds_of_case = defaultdict(set)
    for case_id, fold in zip(dataset["case_id"], dataset["fold"]):
        folds_of_case[case_id].add(fold)
    assert all(len(folds) == 1 for folds in folds_of_case.values()), "a patient spans two folds"
    fold_of = {case: next(iter(folds)) for case, folds in folds_of_case.items()}
    assert set(fold_of.values()) == set(range(n_folds)), f"folds used: {sorted(set(fold_of.values()))}"
    for fold in range(n_folds):
        train_patients = {case for case, case_fold in fold_of.items() if case_fold != fold}
        previous: set = set()
        for fraction in LABEL_FRACTIONS:
            subset = select_training_subset(dataset, fold, fraction)
            patients = set(subset["case_id"])
            assert patients <= train_patients, "held-out patients leaked into training"
            assert len(patients) == fraction_cutoff(fraction, len(train_patients))
            assert previous <= patients, f"fraction {fraction} is not a superset of the smaller one"
            previous = patients
        assert previous == train_patients
        # 100 % takes every row of the training patients
        assert len(select_training_subset(dataset, fold, 1.0)) == sum(1 for f in dataset["fold"] if f != fold)
    assert math.isclose(LABEL_FRACTIONS[-1], 1.0)
