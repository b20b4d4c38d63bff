"""`table`: a user's own classification set as a CSV/TSV of files, labels and patients, from PNGs written from the
MNI152 template and real pydicom DICOMs, with every bad row refused naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from test_data_own_trees import make_class_table_tree, mni_case, mni_slice, write_table
from test_data_support import check_converted, save_nifti, save_png

from vis_mae_hf.data import convert, load_converted

PATIENTS = {"P3", "P4", "P5", "P6", "P10", "P11"}


def _convert(source, output, **options):
    result = convert("table", source, output, progress=False, **options)
    return load_converted(result.output_dir), result


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_one_label_column_with_patients(tmp_path, delimiter):
    table = make_class_table_tree(tmp_path / "src", delimiter=delimiter)
    dataset, result = _convert(table, tmp_path / "out", label_columns=["diagnosis"], patient_column="patient")
    check_converted(dataset, task="classification", label_names=["benign", "malignant"], rows={"train": 10},
                    case_ids={"train": PATIENTS})
    train = dataset["train"]
    by_file = {row["source_file"]: row for row in train}
    assert by_file["images/benign/slice0.png"]["label"] == 0 and by_file["images/malignant/slice0.png"]["label"] == 1
    np.testing.assert_array_equal(np.asarray(by_file["images/benign/slice0.png"]["image"]), mni_slice(60)[0])
    assert by_file["images/CT_small.dcm"]["modality"] == "CT" and by_file["images/MR_small.dcm"]["modality"] == "MR"
    assert result.summary["splits"]["train"]["class_balance"] == {"benign": 5, "malignant": 5}


def test_without_a_patient_column_files_of_one_name_in_two_folders_stay_two_cases(tmp_path):
    table = make_class_table_tree(tmp_path / "src")
    dataset, _ = _convert(table, tmp_path / "out", label_columns=["diagnosis"], labels=["malignant", "benign"])
    cases = set(dataset["train"]["case_id"])
    assert {"images/benign/slice0.png", "images/malignant/slice0.png"} <= cases and len(cases) == 10
    assert dataset["train"].features["label"].names == ["malignant", "benign"]


def test_several_label_columns_make_a_multilabel_set(tmp_path):
    rows = []
    for number, z in enumerate(range(50, 130, 10)):
        save_png(tmp_path / "src" / "cxr" / f"{number}.png", mni_slice(z)[0])
        rows.append({"file": f"cxr/{number}.png", "effusion": ["1", "0", "yes", ""][number % 4],
                     "mass": ["0", "1", "no", "true"][number % 4], "pid": f"p{number // 2}"})
    table = write_table(tmp_path / "src" / "findings.tsv", rows, delimiter="\t")
    dataset, result = _convert(table, tmp_path / "out", path_column="file", label_columns=["effusion", "mass"],
                               patient_column="pid", n_folds=4)
    check_converted(dataset, task="multilabel", label_names=["effusion", "mass"], rows={"train": 8},
                    case_ids={"train": {f"p{n}" for n in range(4)}}, n_folds=4)
    labels = {row["source_file"]: row["labels"] for row in dataset["train"]}
    assert labels["cxr/0.png"] == [0] and labels["cxr/1.png"] == [1] and labels["cxr/2.png"] == [0]
    assert labels["cxr/3.png"] == [1]
    assert result.summary["splits"]["train"]["class_balance"] == {"effusion": 4, "mass": 4, "(no label)": 0}


def test_nifti_volumes_need_a_modality_and_give_a_row_per_slice(tmp_path):
    t1, _, affine = mni_case(0)
    rows = []
    for number in range(5):
        save_nifti(tmp_path / "src" / f"brain{number}.nii.gz", np.roll(t1, number, axis=0), affine)
        rows.append({"path": f"brain{number}.nii.gz", "label": "control" if number % 2 else "case"})
    table = write_table(tmp_path / "src" / "labels.csv", rows)
    with pytest.raises(ValueError, match="brain0.nii.gz: no modality"):
        _convert(table, tmp_path / "out")
    dataset, _ = _convert(table, tmp_path / "out", modality="MR")
    assert set(dataset["train"]["modality"]) == {"MR"} and len(set(dataset["train"]["slice_index"])) > 20


@pytest.mark.parametrize(
    "row, message",
    [
        ({"path": "images/absent.png", "diagnosis": "benign", "patient": "P1"},
         "images/absent.png: named in labels.csv line 12, but there is no such file"),
        ({"path": "images/benign/slice1.png", "diagnosis": "benign", "patient": "P3"},
         r"images/benign/slice1.png: listed twice \(labels.csv line 12 and line 3\)"),
        ({"path": "images/extra.png", "diagnosis": "", "patient": "P1"},
         "images/extra.png: labels.csv line 12: the 'diagnosis' cell is empty"),
        ({"path": "images/extra.png", "diagnosis": "benign", "patient": ""},
         "images/extra.png: labels.csv line 12: the 'patient' cell is empty"),
        ({"path": "images/extra.png", "diagnosis": "unknown", "patient": "P1"},
         r"images/extra.png: labels.csv line 12: label 'unknown' is not one of the classes \['benign', 'malignant'\]"),
        ({"path": "images/broken.png", "diagnosis": "benign", "patient": "P1"},
         "images/broken.png: cannot be read as an image"),
    ],
    ids=["missing", "twice", "no-label", "no-patient", "unknown-label", "unreadable"],
)
def test_bad_rows_stop_naming_the_file_or_are_skipped_and_listed(tmp_path, row, message):
    table = make_class_table_tree(tmp_path / "src")
    save_png(tmp_path / "src" / "images" / "extra.png", mni_slice(65)[0])
    broken = tmp_path / "src" / "images" / "broken.png"
    broken.write_bytes((tmp_path / "src" / "images" / "extra.png").read_bytes()[:80])
    with open(table, "a") as handle:
        handle.write(",".join(row.values()) + "\n")
    options = dict(label_columns=["diagnosis"], patient_column="patient", labels=["benign", "malignant"])
    with pytest.raises(ValueError, match=message) as refused:
        _convert(table, tmp_path / "out", **options)
    assert "--on-error skip" in str(refused.value) and not (tmp_path / "out").exists()
    dataset, result = _convert(table, tmp_path / "skipped", on_error="skip", **options)
    assert [entry["file"] for entry in result.summary["skipped"]] == [row["path"]]
    assert len(dataset["train"]) == 10


def test_missing_columns_name_the_option(tmp_path):
    table = make_class_table_tree(tmp_path / "src")
    with pytest.raises(ValueError, match=r"no column 'label' \(--label-column\); its columns are \['path', "):
        _convert(table, tmp_path / "out")
    with pytest.raises(ValueError, match="give the CSV or TSV file itself"):
        _convert(tmp_path / "src", tmp_path / "out2", label_columns=["diagnosis"])


def test_the_output_may_sit_beside_the_table_but_never_around_its_files(tmp_path):
    table = make_class_table_tree(tmp_path / "src")
    dataset, _ = _convert(table, tmp_path / "src" / "converted", label_columns=["diagnosis"])
    assert len(dataset["train"]) == 10
    # an image kept inside an earlier output: replacing that output could delete it
    save_png(tmp_path / "src" / "converted" / "kept.png", mni_slice(70)[0])
    rows = [{"path": "converted/kept.png", "diagnosis": "benign"}] + [
        {"path": f"images/benign/slice{n}.png", "diagnosis": "benign"} for n in range(4)
    ] + [{"path": f"images/malignant/slice{n}.png", "diagnosis": "malignant"} for n in range(4)]
    kept_table = write_table(tmp_path / "src" / "kept.csv", rows)
    with pytest.raises(FileExistsError, match="converted/kept.png is inside the output folder"):
        _convert(kept_table, tmp_path / "src" / "converted", label_columns=["diagnosis"], overwrite=True)
    assert (tmp_path / "src" / "converted" / "kept.png").is_file()
