"""Shared by the fine-tuning tests (`tests/test_finetuning*.py`): small labelled sets in the converted schema, a tiny
pretraining checkpoint, and the arguments of a tiny run. Not a test module itself."""

import json

import numpy as np
import torch

from vis_mae_hf.app.finetuning.arguments import TRAINING_FIELDS, FinetuningArguments

TINY_OVERRIDES = json.dumps({"embed_dim": 16, "num_heads": [1, 2, 4, 8], "drop_path_rate": 0.0})
SEGMENTATION_NAMES = ["background", "bright", "brightest"]


def synthetic_set(directory, task, num_rows=20, n_folds=5, seed=0):
    """A converted-layout set saved with save_to_disk: two images per patient, patient-grouped folds and ranks."""
    from datasets import Dataset, DatasetDict

    from vis_mae_hf.data.features import build_features, encode_grey_image, encode_mask
    from vis_mae_hf.data.folds import assign_patient_folds

    rng = np.random.default_rng(seed)
    patients = [f"patient{index // 2}" for index in range(num_rows)]
    assignment = assign_patient_folds(patients, n_folds=n_folds, seed=seed)
    names = {
        "segmentation": SEGMENTATION_NAMES, "classification": ["negative", "positive"],
        "multilabel": ["negative", "positive", "other"],
    }[task]
    rows = []
    for index, patient in enumerate(patients):
        # Smooth blobs: a learnable target, varied images.
        coarse = rng.random((5, 6))
        image = np.kron(coarse, np.ones((8, 8)))
        row = {
            "image": encode_grey_image(image),
            "case_id": patient,
            "slice_index": index,
            "source_file": "synthetic",
            "fold": assignment.fold_of[patient],
            "label_rank": assignment.label_rank_of[patient],
        }
        if task == "segmentation":
            row["mask"] = encode_mask((image > 0.5).astype(int) + (image > 0.8).astype(int), n_labels=3)
        elif task == "classification":
            row["label"] = index % 2  # each patient has one image of each class: every fold holds both
        else:
            row["labels"] = [0, 2] if index % 2 else [1]
        rows.append(row)
    dataset = Dataset.from_list(rows, features=build_features(task, names, n_folds=n_folds))
    DatasetDict({"train": dataset}).save_to_disk(str(directory))
    return directory


def tiny_pretraining_checkpoint(directory):
    from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining

    torch.manual_seed(0)
    VisMaeForPreTraining(VisMaeConfig(embed_dim=16, num_heads=[1, 2, 4, 8], image_size=64)).save_pretrained(directory)
    return directory


def tiny_run(dataset, output_dir, **overrides) -> tuple[FinetuningArguments, dict]:
    """(FinetuningArguments, TrainingArguments options) of a two-step run of a tiny model at 64 px; `overrides`
    are fields of either, sorted to where they belong."""
    values = dict(
        dataset=str(dataset),
        output_dir=str(output_dir),
        image_size=64,
        max_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=16,
        config_overrides=TINY_OVERRIDES,
        logging_steps=1,
        disable_tqdm=True,
    )
    values.update(overrides)
    training_options = {name: value for name, value in values.items() if name in TRAINING_FIELDS}
    own = {name: value for name, value in values.items() if name not in TRAINING_FIELDS}
    return FinetuningArguments(**own), training_options


def tiny_finetune(dataset, output_dir, task, **overrides):
    """`run_finetuning` of `tiny_run(dataset, output_dir, **overrides)`, quietly."""
    from vis_mae_hf.app.finetuning.training import run_finetuning

    arguments, training_options = tiny_run(dataset, output_dir, **overrides)
    return run_finetuning(arguments, task, training_options, verbose=False)
