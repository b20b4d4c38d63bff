"""The README section "Your own data": its three commands run on trees of that layout, and its ten lines of
`datasets` code build a set that loads for fine-tuning. The text below is the README's, word for word; keep the two
in step."""

from __future__ import annotations

import shlex

import numpy as np
from test_data_own_trees import (
    make_class_table_tree,
    make_nnunet_ct_tree,
    make_pairs_tree,
    mni_slice,
)
from test_data_support import save_png

from vis_mae_hf.app.cli import main
from vis_mae_hf.data.loading import load_labelled_dataset
from vis_mae_hf.data.masks import checked_mask

README_COMMANDS = """\
vis-mae data convert decathlon Dataset001_Liver --output liver_dataset
vis-mae data convert image-mask-pairs my_pairs --output pairs_dataset --label-names background,lesion
vis-mae data convert table labels.csv --output table_dataset --label-column diagnosis --patient-column patient
"""

README_DATASETS_CODE = """\
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from vis_mae_hf.data.folds import assign_patient_folds

rows = [{"image": f"scans/{i}.png", "mask": f"masks/{i}.png", "case_id": f"patient{i // 2}"} for i in range(20)]
folds = assign_patient_folds([row["case_id"] for row in rows], n_folds=5, seed=0)
for row in rows:
    row.update(slice_index=-1, fold=folds.fold_of[row["case_id"]], label_rank=folds.label_rank_of[row["case_id"]])
features = Features({"image": Image(), "mask": Image(), "case_id": Value("string"), "slice_index": Value("int32"),
                     "fold": Value("int8"), "label_rank": List(Value("int32"), length=5)})
DatasetDict(train=Dataset.from_list(rows, features=features)).save_to_disk("my_dataset")
"""


def test_the_readme_commands_convert_trees_of_their_layouts(tmp_path, monkeypatch, capsys):
    make_nnunet_ct_tree(tmp_path / "Dataset001_Liver")
    make_pairs_tree(tmp_path / "my_pairs")
    make_class_table_tree(tmp_path)  # labels.csv and images/
    monkeypatch.chdir(tmp_path)
    for line in README_COMMANDS.splitlines():
        words = shlex.split(line)
        assert words[0] == "vis-mae"
        assert main(words[1:]) == 0, capsys.readouterr().err
    pairs, names, _ = load_labelled_dataset("pairs_dataset", "segmentation")
    assert names == ["background", "lesion"] and len(pairs["train"]) == 6
    table, names, _ = load_labelled_dataset("table_dataset", "classification")
    assert names == ["benign", "malignant"] and set(table["train"]["case_id"]) == {"P3", "P4", "P5", "P6", "P10",
                                                                                    "P11"}


def test_the_readme_datasets_code_builds_a_set_that_loads_for_finetuning(tmp_path, monkeypatch):
    from vis_mae_hf.app.finetuning.data import prepare_finetuning_data
    from vis_mae_hf.app.finetuning.transforms import SegmentationTransform
    from vis_mae_hf.recipes import get_recipe

    for index in range(20):  # the user's files: real MNI152 slices and their brain masks (class indices 0/1)
        image, brain = mni_slice(50 + 4 * index)
        save_png(tmp_path / "scans" / f"{index}.png", image)
        save_png(tmp_path / "masks" / f"{index}.png", brain)
    monkeypatch.chdir(tmp_path)
    assert len([line for line in README_DATASETS_CODE.splitlines() if line.strip()]) <= 10
    exec(compile(README_DATASETS_CODE, "README.md", "exec"), {})

    data = prepare_finetuning_data("my_dataset", "segmentation", fold=0, label_fraction=0.5,
                                   label_names=["background", "lesion"])
    assert data.task == "segmentation" and data.label_names == ["background", "lesion"]
    assert set(data.train["case_id"]).isdisjoint(data.validation["case_id"])  # folds grouped by patient
    assert len(set(data.train["case_id"])) == 4  # half of the 8 training patients of fold 0
    for row in data.validation:
        checked_mask(np.asarray(row["mask"]), data.label_names, name=row["case_id"])
    processor = get_recipe("segmentation", demo=True).image_processor()
    batch = SegmentationTransform(processor)(data.train[:2])
    assert batch["pixel_values"][0].shape[-2:] == batch["labels"][0].shape
    assert set(batch["labels"][0].unique().tolist()) <= {0, 1}
