"""Patient-grouped cross-validation folds and nested label fractions, stored as data.

The paper evaluates every downstream set with 5-fold cross-validation and trains on 5/10/25/50/80/100 % of the
labelled training data. Both are encoded as columns of the converted dataset instead of code paths:

- `fold` (int, 0..n_folds-1; -1 for rows of official validation/test splits): the held-out fold of the row's
  patient. Folds come from `StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)` over cases grouped by
  patient (stratified on a case-level label where the set has one), so no patient ever spans two folds.
- `label_rank` (list of n_folds ints): `label_rank[k]` is the position of the row's patient in a seeded random
  order of the *training* patients of held-out fold k (the patients of all other folds), or -1 when the patient is
  in fold k itself. "Train on folds != k with the first p % of the patients" is then one filter,
  `label_rank[k] < ceil(p * n_train_patients[k])`, and the subsets are nested across p by construction because
  they are prefixes of one permutation.

Each fold gets its own permutation (seeded with `(seed, k)`), so the small-fraction subsets of different folds are
independent draws, as they would be if each fold's experiment were run separately.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# The label fractions of the paper's experiments.
LABEL_FRACTIONS: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50, 0.80, 1.0)

# Marks rows outside the cross-validation pool (official validation/test splits).
NOT_IN_CROSS_VALIDATION = -1


@dataclass
class FoldAssignment:
    """Which fold each grouping unit (a patient, or a slice for one-subject sets) is held out in, and its ranks."""

    fold_of: dict[str, int]
    label_rank_of: dict[str, list[int]]
    n_folds: int
    seed: int
    method: str
    notes: list[str] = field(default_factory=list)

    @property
    def n_train_units(self) -> list[int]:
        """Number of training units (patients) per held-out fold."""
        return [sum(1 for fold in self.fold_of.values() if fold != k) for k in range(self.n_folds)]

    def units_per_fold(self) -> list[int]:
        counts = Counter(self.fold_of.values())
        return [counts.get(k, 0) for k in range(self.n_folds)]

    def to_json_dict(self) -> dict:
        return {
            "n_folds": self.n_folds,
            "seed": self.seed,
            "method": self.method,
            "patients_per_fold": self.units_per_fold(),
            "n_train_patients": self.n_train_units,
            "notes": list(self.notes),
            "fold_of_patient": dict(sorted(self.fold_of.items())),
        }


def assign_patient_folds(
    case_patients: Sequence[str],
    case_strata: Sequence[Hashable] | None = None,
    *,
    n_folds: int = 5,
    seed: int = 0,
) -> FoldAssignment:
    """Assign each patient to one of `n_folds` folds, stratified on a case-level label where possible.

    Args:
        case_patients: the patient id of each case (one entry per case: an image, a volume or an exam).
        case_strata: optional class of each case, used for stratification. `None` entries or `None` altogether
            give plain group folds.
        n_folds: number of folds (the paper uses 5).
        seed: seeds both the fold split and the label-rank permutations.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2 to cross-validate, got {n_folds}.")
    patients = np.asarray([str(patient) for patient in case_patients])
    unique_patients = np.unique(patients)
    if len(unique_patients) < n_folds:
        raise ValueError(
            f"Cannot make {n_folds} patient-grouped folds from {len(unique_patients)} patient(s) "
            f"({', '.join(unique_patients[:10])}): every fold needs at least one patient. Use fewer folds "
            "(--n-folds) or more data."
        )
    notes: list[str] = []
    placeholder = np.zeros(len(patients))
    splits = None
    method = "GroupKFold"
    if case_strata is not None and all(stratum is not None for stratum in case_strata):
        strata = np.asarray([str(stratum) for stratum in case_strata])
        if len(np.unique(strata)) > 1:
            splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    splits = list(splitter.split(placeholder, strata, groups=patients))
                notes.extend(str(warning.message) for warning in caught)
                method = "StratifiedGroupKFold"
            except ValueError as error:  # every class rarer than n_folds: stratification is impossible
                notes.append(f"stratification impossible ({error}); fell back to GroupKFold")
                splits = None
            if splits is not None and any(len(test) == 0 for _, test in splits):
                notes.append("StratifiedGroupKFold left a fold empty; fell back to GroupKFold")
                splits, method = None, "GroupKFold"
    if splits is None:
        splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(placeholder, groups=patients))

    fold_of: dict[str, int] = {}
    for fold, (_, test_indices) in enumerate(splits):
        for patient in patients[test_indices]:
            fold_of[str(patient)] = fold
    return FoldAssignment(
        fold_of=fold_of,
        label_rank_of=rank_training_units(fold_of, n_folds=n_folds, seed=seed),
        n_folds=n_folds,
        seed=seed,
        method=method,
        notes=notes,
    )


def contiguous_slab_folds(unit_ids: Sequence[str], *, n_folds: int = 5, seed: int = 0) -> FoldAssignment:
    """Folds for a one-subject set: `n_folds` contiguous slabs of the ordered units (e.g. slices).

    Neighbouring slices of one subject are nearly identical, so random slice folds would leak; contiguous slabs
    keep each held-out fold anatomically apart from most of its training slices. Label ranks are over units
    (slices), because there is only one patient to rank.
    """
    if len(unit_ids) < n_folds:
        raise ValueError(f"Cannot cut {len(unit_ids)} unit(s) into {n_folds} contiguous slabs.")
    slabs = np.array_split(np.arange(len(unit_ids)), n_folds)
    fold_of = {str(unit_ids[index]): fold for fold, slab in enumerate(slabs) for index in slab}
    return FoldAssignment(
        fold_of=fold_of,
        label_rank_of=rank_training_units(fold_of, n_folds=n_folds, seed=seed),
        n_folds=n_folds,
        seed=seed,
        method="contiguous slabs",
    )


def rank_training_units(fold_of: Mapping[str, int], *, n_folds: int, seed: int) -> dict[str, list[int]]:
    """For each held-out fold k, a seeded random order of the units not in fold k (their label ranks)."""
    units = sorted(fold_of)  # sorted: the ranks must not depend on dict insertion order
    ranks: dict[str, list[int]] = {unit: [NOT_IN_CROSS_VALIDATION] * n_folds for unit in units}
    for fold in range(n_folds):
        training_units = [unit for unit in units if fold_of[unit] != fold]
        order = np.random.default_rng([seed, fold]).permutation(len(training_units))
        for rank, position in enumerate(order):
            ranks[training_units[position]][fold] = rank
    return ranks


def fraction_cutoff(fraction: float, n_train_units: int) -> int:
    """Number of training units (patients) that make up `fraction` of `n_train_units`; at least one."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r} (0.05 means 5 % of the training patients).")
    # The small epsilon keeps 0.1 * 30 == 3 from becoming 4 through floating-point error.
    return max(1, math.ceil(fraction * n_train_units - 1e-9))


def _label_rank_matrix(dataset) -> np.ndarray:
    if "label_rank" not in dataset.column_names or "fold" not in dataset.column_names:
        raise ValueError(
            "The dataset has no `fold`/`label_rank` columns; convert it with `vis-mae data convert` "
            f"(columns present: {dataset.column_names})."
        )
    ranks = _column(dataset, "label_rank")
    return np.asarray(ranks, dtype=np.int64).reshape(len(ranks), -1)


def _column(dataset, name: str) -> list:
    # The arrow format honours a selection/filter of the dataset (its indices mapping); `dataset.data` would not.
    return dataset.with_format("arrow")[name].to_pylist()


def select_training_subset(dataset, fold: int, fraction: float = 1.0):
    """Training rows for held-out `fold`: rows of the first `fraction` of the training patients of that fold.

    Nested across fractions: the 5 % subset is contained in the 10 % subset, and so on. Rows outside the
    cross-validation pool (fold -1) are never selected.
    """
    ranks = _label_rank_matrix(dataset)
    n_folds = ranks.shape[1]
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in 0..{n_folds - 1} for this dataset, got {fold!r}.")
    fold_ranks = ranks[:, fold]
    n_train_units = int(fold_ranks.max()) + 1 if len(fold_ranks) and fold_ranks.max() >= 0 else 0
    if n_train_units == 0:
        raise ValueError(f"No training patients for held-out fold {fold}: is this an official test split?")
    cutoff = fraction_cutoff(fraction, n_train_units)
    indices = np.flatnonzero((fold_ranks >= 0) & (fold_ranks < cutoff))
    return dataset.select(indices)


def select_validation_fold(dataset, fold: int):
    """Rows held out in `fold` (the fold's validation data)."""
    folds = np.asarray(_column(dataset, "fold"))
    n_folds = _label_rank_matrix(dataset).shape[1] if len(dataset) else fold + 1
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in 0..{n_folds - 1} for this dataset, got {fold!r}.")
    return dataset.select(np.flatnonzero(folds == fold))


def fold_statistics(fold_per_row: Sequence[int], patient_per_row: Sequence[str], n_folds: int) -> dict:
    """Rows and patients per fold (for the summary and folds.json)."""
    rows = Counter(int(fold) for fold in fold_per_row)
    patients: dict[int, set] = defaultdict(set)
    for fold, patient in zip(fold_per_row, patient_per_row):
        patients[int(fold)].add(patient)
    return {
        "rows_per_fold": [rows.get(k, 0) for k in range(n_folds)],
        "patients_per_fold": [len(patients.get(k, ())) for k in range(n_folds)],
    }
