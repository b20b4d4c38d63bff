"""Patient-grouped folds and nested label fractions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from datasets import Dataset, List, Value

from vis_mae_hf.data.folds import (
    LABEL_FRACTIONS,
    assign_patient_folds,
    contiguous_slab_folds,
    fraction_cutoff,
    select_training_subset,
    select_validation_fold,
)


def _cases(n_patients=23, seed=0):
    rng = np.random.default_rng(seed)
    patients, strata = [], []
    for patient in range(n_patients):
        for _ in range(rng.integers(1, 4)):  # several cases (images, exams) per patient
            patients.append(f"p{patient:02d}")
            strata.append(int(patient % 3 == 0))  # a minority class, constant within a patient
    return patients, strata


def test_patients_never_span_folds_and_classes_are_spread():
    patients, strata = _cases()
    assignment = assign_patient_folds(patients, strata, n_folds=5, seed=7)
    assert assignment.method == "StratifiedGroupKFold"
    assert set(assignment.fold_of) == set(patients)
    minority_per_fold = Counter(assignment.fold_of[p] for p, s in zip(patients, strata) if s == 1)
    assert set(minority_per_fold) == set(range(5))  # every fold holds minority-class patients
    again = assign_patient_folds(patients, strata, n_folds=5, seed=7)
    assert again.fold_of == assignment.fold_of and again.label_rank_of == assignment.label_rank_of
    assert assign_patient_folds(patients, strata, n_folds=5, seed=8).fold_of != assignment.fold_of


def test_label_ranks_are_permutations_of_each_folds_training_patients():
    patients, _ = _cases()
    assignment = assign_patient_folds(patients, n_folds=5, seed=0)
    assert assignment.method == "GroupKFold"
    for fold in range(5):
        ranks = {p: r[fold] for p, r in assignment.label_rank_of.items()}
        held_out = {p for p, f in assignment.fold_of.items() if f == fold}
        assert all(ranks[p] == -1 for p in held_out)
        training_ranks = sorted(r for p, r in ranks.items() if p not in held_out)
        assert training_ranks == list(range(len(assignment.fold_of) - len(held_out)))
    orders = [sorted(assignment.label_rank_of, key=lambda p, k=k: assignment.label_rank_of[p][k]) for k in range(5)]
    assert len({tuple(order[:8]) for order in orders}) > 1  # each fold draws its own order


def test_too_few_patients_is_a_clear_error():
    with pytest.raises(ValueError, match="3 patient"):
        assign_patient_folds(["a", "b", "c", "a"], n_folds=5)
    with pytest.raises(ValueError, match="at least 2"):
        assign_patient_folds(["a", "b"], n_folds=1)


def test_rare_classes_fall_back_to_group_folds_with_a_note():
    patients = [f"p{i}" for i in range(10)]
    strata = [0] * 8 + [1, 2]  # classes 1 and 2 have one patient each
    assignment = assign_patient_folds(patients, strata, n_folds=5, seed=0)
    assert sorted(Counter(assignment.fold_of.values()).values()) == [2, 2, 2, 2, 2]
    assert assignment.notes  # the weak stratification is reported


def _toy_dataset(assignment, rows_per_patient=2):
    patients = sorted(assignment.fold_of)
    return Dataset.from_dict(
        {
            "case_id": [p for p in patients for _ in range(rows_per_patient)],
            "fold": [assignment.fold_of[p] for p in patients for _ in range(rows_per_patient)],
            "label_rank": [assignment.label_rank_of[p] for p in patients for _ in range(rows_per_patient)],
        }
    ).cast_column("label_rank", List(Value("int32"), length=assignment.n_folds))


def test_fractions_are_nested_prefixes_of_the_training_patients():
    assignment = assign_patient_folds([f"p{i:02d}" for i in range(40)], n_folds=5, seed=1)
    dataset = _toy_dataset(assignment)
    for fold in range(5):
        subsets = [set(select_training_subset(dataset, fold, f)["case_id"]) for f in LABEL_FRACTIONS]
        assert [len(s) for s in subsets] == [fraction_cutoff(f, 32) for f in LABEL_FRACTIONS] == [2, 4, 8, 16, 26, 32]
        assert all(small <= large for small, large in zip(subsets, subsets[1:]))
        validation = set(select_validation_fold(dataset, fold)["case_id"])
        assert len(validation) == 8 and not validation & subsets[-1]
    with pytest.raises(ValueError, match="fraction"):
        select_training_subset(dataset, 0, 0.0)
    with pytest.raises(ValueError, match="fold must be in 0..4"):
        select_training_subset(dataset, 5, 0.5)


def test_contiguous_slabs_for_one_subject():
    slices = [f"z{i:03d}" for i in range(23)]
    assignment = contiguous_slab_folds(slices, n_folds=5)
    folds = [assignment.fold_of[s] for s in slices]
    assert folds == sorted(folds) and set(folds) == set(range(5))
    assert assignment.method == "contiguous slabs"


def test_subset_helpers_respect_an_earlier_selection():
    assignment = assign_patient_folds([f"p{i:02d}" for i in range(20)], n_folds=5, seed=2)
    dataset = _toy_dataset(assignment)
    first_half = dataset.select(range(0, len(dataset), 2))  # one row per patient, through an indices mapping
    subset = select_training_subset(first_half, 0, 1.0)
    assert len(subset) == 16 and set(subset["case_id"]) <= set(first_half["case_id"])
    assert len(select_validation_fold(first_half, 0)) == 4
