"""`decathlon`: a user's own segmentation set in the Medical Segmentation Decathlon or nnU-Net v2 layout, from real
MR (MNI152) and CT (pydicom-data) volumes, with every bad input refused naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_data_own_trees import (
    CT_LABELS,
    TISSUE_LABELS,
    ct_case,
    make_msd_mr_tree,
    make_nnunet_ct_tree,
    mni_case,
    mni_slice,
)
from test_data_support import check_converted, save_nifti, save_png

from vis_mae_hf.data import convert, load_converted, read_conversion_metadata
from vis_mae_hf.data.sources.decathlon import modality_of_channel
from vis_mae_hf.image_processing_vis_mae import apply_window
from vis_mae_hf.medical.orientation import display_slice


def _convert(source, output, **options):
    result = convert("decathlon", source, output, progress=False, **options)
    return load_converted(result.output_dir), result


def _foreground_slices(labels: np.ndarray, axis: int) -> list[int]:
    other = tuple(dim for dim in range(3) if dim != axis)
    return np.flatnonzero(np.any(labels > 0, axis=other)).tolist()


def test_msd_mr_set_converts_with_its_own_labels_and_modality(tmp_path):
    source = make_msd_mr_tree(tmp_path / "Task01_Brain")
    dataset, result = _convert(source, tmp_path / "out")
    expected_rows = sum(len(_foreground_slices(mni_case(k)[1], 2)) for k in range(6))
    check_converted(dataset, task="segmentation", label_names=TISSUE_LABELS, rows={"train": expected_rows},
                    case_ids={"train": {f"brain_{k:03d}" for k in range(6)}}, mask_values={0, 1, 2, 3})
    train = dataset["train"]
    assert set(train["modality"]) == {"MR"}
    assert set(train.filter(lambda row: row["case_id"] == "brain_000")["slice_index"]) == set(
        _foreground_slices(mni_case(0)[1], 2)
    )
    metadata = read_conversion_metadata(result.output_dir)
    # The set's own licence and reference; nothing of AMOS (or any published set) leaks in.
    assert metadata["license"] == "MNI152 copyright notice" and metadata["citation"] == "Fonov et al. 2011"
    assert "AMOS" not in json.dumps(metadata) and "zenodo" not in json.dumps(metadata).lower()
    assert metadata["mask_labels"] == {"0": "background", "1": "grey matter", "2": "white matter", "3": "other brain"}
    assert any("imagesTs: 1 file(s)" in note for note in metadata["source_notes"])


def test_mr_slices_are_the_volume_percentiles_in_display_orientation(tmp_path):
    source = make_msd_mr_tree(tmp_path / "src")
    dataset, _ = _convert(source, tmp_path / "out")
    t1, tissue, _ = mni_case(2)
    low, high = np.percentile(t1, [0.5, 99.5])
    index = _foreground_slices(tissue, 2)[5]
    expected = np.rint(apply_window(display_slice(t1, 2, index), high - low, (high + low) / 2) * 255)
    row = dataset["train"].filter(lambda r: r["case_id"] == "brain_002" and r["slice_index"] == index)[0]
    np.testing.assert_allclose(np.asarray(row["image"], dtype=np.float64), expected, atol=1)
    np.testing.assert_array_equal(np.asarray(row["mask"]), display_slice(tissue, 2, index))


def test_nnunet_v2_ct_set_with_window_axis_and_empty_slices(tmp_path):
    source = make_nnunet_ct_tree(tmp_path / "Dataset001_Body")
    dataset, _ = _convert(source, tmp_path / "out")
    check_converted(dataset, task="segmentation", label_names=CT_LABELS, rows={"train": 6 * 3},
                    case_ids={"train": {f"ct_{k:03d}" for k in range(6)}}, mask_values={0, 1, 2})
    train = dataset["train"]
    assert set(train["modality"]) == {"CT"} and set(train["slice_index"]) == {1, 2, 3}  # slice 0 has no label
    volume, _ = ct_case(1)
    row = train.filter(lambda r: r["case_id"] == "ct_001" and r["slice_index"] == 2)[0]
    abdomen = np.rint(apply_window(display_slice(volume, 2, 2), 400, 40) * 255)  # the default window
    np.testing.assert_allclose(np.asarray(row["image"], dtype=np.float64), abdomen, atol=1)

    everything, _ = _convert(source, tmp_path / "all", keep_empty_slices=True, window="lung")
    assert len(everything["train"]) == 6 * 4
    row = everything["train"].filter(lambda r: r["case_id"] == "ct_001" and r["slice_index"] == 2)[0]
    lung = np.rint(apply_window(display_slice(volume, 2, 2), 1500, -600) * 255)
    np.testing.assert_allclose(np.asarray(row["image"], dtype=np.float64), lung, atol=1)

    coronal, _ = _convert(source, tmp_path / "coronal", axis="coronal", keep_empty_slices=True)
    assert len(coronal["train"]) == 6 * 64 and coronal["train"][0]["image"].size == (64, 4)


def test_label_values_need_not_be_consecutive(tmp_path):
    source = make_msd_mr_tree(tmp_path / "src", label_values=(0, 1, 2, 4))
    dataset, result = _convert(source, tmp_path / "out")
    values = set()
    for row in dataset["train"]:
        values |= set(np.unique(np.asarray(row["mask"])).tolist())
    assert values == {0, 1, 2, 3}  # stored values 0, 1, 2, 4 as classes 0..3
    assert read_conversion_metadata(result.output_dir)["label_names"] == TISSUE_LABELS


def test_modality_comes_from_dataset_json_or_the_option(tmp_path):
    assert [modality_of_channel(name) for name in ("CT", "MRI", "T2", "ADC", "FLAIR", "PET", "noNorm")] == [
        "CT", "MR", "MR", "MR", "MR", "PET", None]
    source = make_msd_mr_tree(tmp_path / "src")
    description = json.loads((source / "dataset.json").read_text())
    description["modality"] = {"0": "zscore"}
    (source / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match="calls channel 0 'zscore', which is not a modality .*--modality"):
        _convert(source, tmp_path / "out")
    dataset, _ = _convert(source, tmp_path / "out", modality="MR")
    assert set(dataset["train"]["modality"]) == {"MR"}


def test_an_mr_volume_declared_ct_is_refused_not_windowed(tmp_path):
    """The fault AMOS ids below 500 had: an MR windowed as CT without a word."""
    source = make_msd_mr_tree(tmp_path / "src")
    description = json.loads((source / "dataset.json").read_text())
    description["modality"] = {"0": "CT"}
    (source / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match=r"imagesTr/brain_000.nii.gz: dataset.json \(modality 0: 'CT'\) says CT, but "
                                         r"its lowest value is 0, so it is not in Hounsfield units"):
        _convert(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_amos_refuses_an_mr_renamed_to_a_ct_id_and_decathlon_needs_no_renaming(tmp_path):
    """An nnU-Net MR set once had to be renamed to the AMOS pattern; ids below 500 then windowed MR as CT."""
    amos = tmp_path / "amos22"
    make_msd_mr_tree(amos, n_cases=6)
    for folder in ("imagesTr", "labelsTr"):
        for index, path in enumerate(sorted((amos / folder).glob("brain_*.nii.gz"))):
            path.rename(amos / folder / f"amos_{index + 1:04d}.nii.gz")
    with pytest.raises(ValueError, match="amos_0001.nii.gz: AMOS's numbering .* says CT, but its lowest value is 0"):
        convert("amos", amos, tmp_path / "amos-out", modalities=["CT"], progress=False)
    source = make_msd_mr_tree(tmp_path / "mine")
    dataset, _ = _convert(source, tmp_path / "out")
    assert set(dataset["train"]["modality"]) == {"MR"}


@pytest.mark.parametrize(
    "spoil, message",
    [
        ("no_mask", "imagesTr/ct_002_0000.nii.gz: an image without its mask labelsTr/ct_002.nii.gz"),
        ("no_image", "labelsTr/ct_009.nii.gz: a mask without its image in imagesTr/"),
        ("shape", r"labelsTr/ct_003.nii.gz has shape \(64, 64, 3\) but its image"),
        ("affine", "labelsTr/ct_003.nii.gz and .*ct_003_0000.nii.gz are not on the same voxel grid"),
        ("values", r"labelsTr/ct_004.nii.gz: mask values \[7\] are not among the declared labels 0..2 "
                   r"\(0 background, 1 body, 2 bone\)"),
        ("unreadable", "ct_005_0000.nii.gz is a truncated or corrupt NIfTI file"),
    ],
)
def test_bad_inputs_stop_the_conversion_naming_the_file_or_are_skipped_and_listed(tmp_path, spoil, message):
    source = make_nnunet_ct_tree(tmp_path / "src")
    bad_file = _spoil(source, spoil)
    with pytest.raises(ValueError, match=message) as refused:
        _convert(source, tmp_path / "out")
    assert "--on-error skip" in str(refused.value)
    assert not (tmp_path / "out").exists()  # nothing written
    dataset, result = _convert(source, tmp_path / "skipped", on_error="skip")
    skipped = result.summary["skipped"]
    assert bad_file in [entry["file"] for entry in skipped] and all(entry["reason"] for entry in skipped)
    n_cases = 6 if spoil == "no_image" else 5
    assert len(set(dataset["train"]["case_id"])) == n_cases
    check_converted(dataset, task="segmentation", label_names=CT_LABELS, rows={"train": n_cases * 3},
                    case_ids={"train": set(dataset["train"]["case_id"])}, mask_values={0, 1, 2})


def _spoil(source, how: str) -> str:
    """Make one bad input in an nnU-Net CT tree; returns the file the summary should list."""
    images, labels = source / "imagesTr", source / "labelsTr"
    if how == "no_mask":
        (labels / "ct_002.nii.gz").unlink()
        return "imagesTr/ct_002_0000.nii.gz"
    if how == "no_image":
        save_nifti(labels / "ct_009.nii.gz", ct_case(0)[1])
        return "labelsTr/ct_009.nii.gz"
    if how == "shape":
        save_nifti(labels / "ct_003.nii.gz", ct_case(3)[1][..., :3], np.diag([0.8, 0.8, 5.0, 1.0]))
        return "labelsTr/ct_003.nii.gz"
    if how == "affine":
        save_nifti(labels / "ct_003.nii.gz", ct_case(3)[1], np.diag([0.8, 0.8, 2.5, 1.0]))
        return "labelsTr/ct_003.nii.gz"
    if how == "values":
        stored = ct_case(4)[1]
        stored[stored == 2] = 7
        save_nifti(labels / "ct_004.nii.gz", stored, np.diag([0.8, 0.8, 5.0, 1.0]))
        return "labelsTr/ct_004.nii.gz"
    path = images / "ct_005_0000.nii.gz"
    path.write_bytes(path.read_bytes()[:400])
    return "imagesTr/ct_005_0000.nii.gz"


def test_binary_masks_saved_as_0_255_are_read_as_0_1_with_a_notice(tmp_path):
    source = make_nnunet_ct_tree(tmp_path / "src")
    description = json.loads((source / "dataset.json").read_text())
    description["labels"] = {"background": 0, "body": 1}
    (source / "dataset.json").write_text(json.dumps(description))
    affine = np.diag([0.8, 0.8, 5.0, 1.0])
    for index in range(6):
        save_nifti(source / "labelsTr" / f"ct_{index:03d}.nii.gz", (ct_case(index)[1] > 0).astype(np.uint8) * 255,
                   affine)
    dataset, result = _convert(source, tmp_path / "out")
    masks = {value for row in dataset["train"] for value in np.unique(np.asarray(row["mask"])).tolist()}
    assert masks == {0, 1}
    assert result.summary["notes"] == [
        "binary masks stored as 0/255 were read as 0/1 (255 is the loss's ignore value): 6 file(s), e.g. "
        "labelsTr/ct_000.nii.gz, labelsTr/ct_001.nii.gz, labelsTr/ct_002.nii.gz"
    ]


@pytest.mark.parametrize(
    "labels, message",
    [
        ({"background": 0, "tumour": [1, 2]}, "label 'tumour' is a region"),
        ({"background": 0, "body": 1, "ignore": 2}, "`ignore` label .* is not supported"),
        ({"body": 1, "bone": 2}, "start at 0"),
    ],
)
def test_dataset_json_labels_that_cannot_be_one_class_per_pixel_are_refused(tmp_path, labels, message):
    source = make_nnunet_ct_tree(tmp_path / "src")
    description = json.loads((source / "dataset.json").read_text())
    description["labels"] = labels
    (source / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match=message):
        _convert(source, tmp_path / "out")


def test_channels_and_patients(tmp_path):
    source = make_nnunet_ct_tree(tmp_path / "src")
    description = json.loads((source / "dataset.json").read_text())
    description["channel_names"] = {"0": "CT", "1": "T2"}
    (source / "dataset.json").write_text(json.dumps(description))
    t1, _, _ = mni_case(0)
    for index in range(6):  # a second channel: MR-like values on the CT grid
        save_nifti(source / "imagesTr" / f"ct_{index:03d}_0001.nii.gz", np.abs(ct_case(index)[0]) + 1.0,
                   np.diag([0.8, 0.8, 5.0, 1.0]))
    (source / "patients.csv").write_text("case,patient\nct_000,A\nct_001,A\nct_002,B\nct_003,C\nct_004,D\nct_005,E\n")
    dataset, _ = _convert(source, tmp_path / "out", channel=1, patients="patients.csv")
    train = dataset["train"]
    assert set(train["modality"]) == {"MR"} and all(name.endswith("_0001.nii.gz") for name in train["source_file"])
    assert set(train["case_id"]) == {"A", "B", "C", "D", "E"}
    check_converted(dataset, task="segmentation", label_names=CT_LABELS, rows={"train": 18},
                    case_ids={"train": {"A", "B", "C", "D", "E"}}, mask_values={0, 1, 2})


def test_msd_four_dimensional_files_are_refused_with_the_way_out(tmp_path):
    source = make_msd_mr_tree(tmp_path / "src")
    t1, _, affine = mni_case(0)
    save_nifti(source / "imagesTr" / "brain_000.nii.gz", np.stack([t1, t1], axis=-1), affine)
    with pytest.raises(ValueError, match="brain_000.nii.gz: 2 channels in one 4-D file .*nnUNetv2_convert_MSD_dataset"):
        _convert(source, tmp_path / "out")


def test_a_two_dimensional_nnunet_set_has_one_image_and_mask_per_case(tmp_path):
    source = tmp_path / "Dataset120_Brain2D"
    for index in range(6):
        image, brain = mni_slice(60 + 10 * index)
        save_png(source / "imagesTr" / f"slice_{index:03d}_0000.png", image)
        save_png(source / "labelsTr" / f"slice_{index:03d}.png", brain)
    (source / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "R"}, "labels": {"background": 0, "brain": 1}, "file_ending": ".png"}
    ))
    with pytest.raises(ValueError, match="calls channel 0 'R', which is not a modality"):
        _convert(source, tmp_path / "out")
    dataset, _ = _convert(source, tmp_path / "out", modality="MR")
    check_converted(dataset, task="segmentation", label_names=["background", "brain"], rows={"train": 6},
                    case_ids={"train": {f"slice_{k:03d}" for k in range(6)}}, mask_values={0, 1})
    row = dataset["train"].filter(lambda r: r["case_id"] == "slice_002")[0]
    np.testing.assert_array_equal(np.asarray(row["image"]), mni_slice(80)[0])
    assert row["slice_index"] == -1 and row["modality"] == "MR"


def test_the_conversion_is_idempotent_and_loads_for_finetuning(tmp_path):
    from vis_mae_hf.app.finetuning.data import prepare_finetuning_data

    source = make_nnunet_ct_tree(tmp_path / "src")
    first = convert("decathlon", source, tmp_path / "out", progress=False)
    again = convert("decathlon", source, tmp_path / "out", progress=False)
    assert again.reused and not first.reused
    data = prepare_finetuning_data(str(tmp_path / "out"), "segmentation", fold=1, label_fraction=0.5)
    assert data.label_names == CT_LABELS and len(data.train) > 0 and len(data.validation) > 0
