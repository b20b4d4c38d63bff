"""The volume sources (NIfTI, DICOM series) convert from synthetic trees in their publishers' layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_data_support import (
    check_converted,
    ct_volume_and_labels,
    noise_image,
    pet_series,
    save_nifti,
    save_png,
)

from vis_mae_hf.data import convert, load_converted
from vis_mae_hf.data.volumes import through_plane_axis
from vis_mae_hf.image_processing_vis_mae import apply_window
from vis_mae_hf.medical.orientation import display_slice


def _convert(name, source, tmp_path, **options):
    result = convert(name, source, tmp_path / f"{name}-out", progress=False, **options)
    return load_converted(result.output_dir), result


# ---------------------------------------------------------------- BTCV (RawData/Training/img/img0001.nii.gz)


def make_btcv_tree(root, n_cases=5):
    base = root / "Abdomen" / "RawData"
    for number in range(1, n_cases + 1):
        volume, labels = ct_volume_and_labels(number, labels=(1, 6))
        save_nifti(base / "Training" / "img" / f"img{number:04d}.nii.gz", volume.astype(np.int16))
        save_nifti(base / "Training" / "label" / f"label{number:04d}.nii.gz", labels)
    save_nifti(base / "Testing" / "img" / "img0061.nii.gz", volume.astype(np.int16))  # unlabelled: not converted
    return root


def test_btcv_windows_foreground_axial_slices(tmp_path):
    source = make_btcv_tree(tmp_path / "src")
    dataset, result = _convert("btcv", source, tmp_path)
    from vis_mae_hf.data.sources.btcv import BTCV_LABELS

    check_converted(dataset, task="segmentation", label_names=BTCV_LABELS, rows={"train": 15},
                    case_ids={"train": {f"{n:04d}" for n in range(1, 6)}}, mask_values={0, 1, 6})
    train = dataset["train"]
    assert sorted(set(train["slice_index"])) == [1, 2, 3]  # slices with organs only
    # The stored pixels are the TransUNet window [-125, 275] of the HU, in radiological display orientation.
    volume, _ = ct_volume_and_labels(1)
    expected = np.rint(apply_window(display_slice(volume.astype(np.int16), 2, 2), 400, 75) * 255)
    row = train.filter(lambda r: r["case_id"] == "0001" and r["slice_index"] == 2)[0]
    np.testing.assert_allclose(np.asarray(row["image"], dtype=np.float64), expected, atol=1)
    meta = json.loads((result.output_dir / "vis_mae_conversion.json").read_text())
    assert meta["mask_labels"]["6"] == "liver"
    everything, _ = _convert("btcv", source, tmp_path / "all", slices="all", window="btcv_unetr")
    assert len(everything["train"]) == 30


def test_btcv_rejects_a_label_volume_of_another_shape(tmp_path):
    source = make_btcv_tree(tmp_path / "src")
    bad = source / "Abdomen" / "RawData" / "Training" / "label" / "label0003.nii.gz"
    save_nifti(bad, np.zeros((32, 32, 5), np.uint8))
    with pytest.raises(ValueError, match="label0003.nii.gz has shape"):
        _convert("btcv", source, tmp_path)


# ---------------------------------------------------------------- ACDC (patientXXX/Info.cfg, _frameYY[_gt].nii.gz)


def make_acdc_tree(root):
    groups = ["DCM", "HCM", "MINF", "NOR", "RV", "NOR"]
    # short-axis stacks: 1.5 mm pixels, 10 mm slices, stored with the slices on the first array axis, so that the
    # slice axis must be found from the spacing, not assumed
    affine = np.diag([10.0, 1.5, 1.5, 1.0])
    for index, group in enumerate(groups, start=1):
        split = "testing" if index == 6 else "training"
        folder = root / "database" / split / f"patient{index + (100 if split == 'testing' else 0):03d}"
        name = folder.name
        folder.mkdir(parents=True)
        (folder / "Info.cfg").write_text(f"ED: 1\nES: 9\nGroup: {group}\nHeight: 170.0\nNbFrame: 20\nWeight: 70.0\n")
        for frame in (1, 9):
            rng = np.random.default_rng(index * 10 + frame)
            image = rng.normal(200, 50, size=(4, 20, 24)).astype(np.float32)
            labels = np.zeros((4, 20, 24), np.uint8)
            labels[1:3, 5:9, 5:9], labels[1:3, 10:14, 5:9], labels[1:3, 5:9, 12:16] = 1, 2, 3
            save_nifti(folder / f"{name}_frame{frame:02d}.nii.gz", image, affine)
            save_nifti(folder / f"{name}_frame{frame:02d}_gt.nii.gz", labels, affine)
        save_nifti(folder / f"{name}_4d.nii.gz", np.zeros((4, 20, 24, 2), np.float32), affine)
    return root


def test_acdc_slices_along_the_through_plane_axis(tmp_path):
    source = make_acdc_tree(tmp_path / "src")
    dataset, result = _convert("acdc", source, tmp_path)
    from vis_mae_hf.data.sources.acdc import ACDC_GROUPS, ACDC_LABELS

    train_patients = {f"patient{n:03d}" for n in range(1, 6)}
    check_converted(dataset, task="segmentation", label_names=ACDC_LABELS, rows={"train": 5 * 2 * 4, "test": 8},
                    case_ids={"train": train_patients, "test": {"patient106"}}, mask_values={0, 1, 2, 3})
    train = dataset["train"]
    assert train[0]["image"].size == (20, 24)  # 4 short-axis slices of 20x24 (rows x columns after display)
    assert set(train["phase"]) == {"ED", "ES"} and set(train["frame"]) == {1, 9}
    assert train.features["group"].names == ACDC_GROUPS
    assert result.summary["fold_method"] == "StratifiedGroupKFold" or result.summary["fold_notes"]


def test_through_plane_axis_and_display_orientation():
    assert through_plane_axis((1.5, 10.0, 1.5)) == 1
    volume = np.zeros((3, 4, 5))
    volume[2, 0, 4] = 1  # patient right (x max), posterior (y min), superior (z max)
    axial = display_slice(volume, 2, 4)
    assert axial.shape == (4, 3) and axial[-1, 0] == 1  # bottom row = posterior, left column = patient right


# ---------------------------------------------------------------- AMOS (dataset.json, imagesTr/amos_0507.nii.gz)


def make_amos_tree(root):
    base = root / "amos22"
    labels = {"0": "background", "1": "spleen", "2": "right kidney", "3": "left kidney", "4": "gall bladder",
              "5": "esophagus", "6": "liver", "7": "stomach", "8": "arota", "9": "postcava", "10": "pancreas",
              "11": "right adrenal gland", "12": "left adrenal gland", "13": "duodenum", "14": "bladder",
              "15": "prostate/uterus"}
    base.mkdir(parents=True)
    (base / "dataset.json").write_text(json.dumps({"name": "AMOS", "labels": labels}))
    cases = {"Tr": [1, 507, 508, 509, 510, 511, 512], "Va": [8, 520]}
    for split, numbers in cases.items():
        for number in numbers:
            volume, mask = ct_volume_and_labels(number, labels=(1, 15))
            if number >= 500:
                volume = np.abs(volume) * 3 + 100  # MR-like arbitrary positive intensities
            save_nifti(base / f"images{split}" / f"amos_{number:04d}.nii.gz", volume)
            save_nifti(base / f"labels{split}" / f"amos_{number:04d}.nii.gz", mask)
    save_nifti(base / "imagesTs" / "amos_0600.nii.gz", volume)  # no labels: not converted
    return root


def test_amos_converts_mr_only_by_default(tmp_path):
    source = make_amos_tree(tmp_path / "src")
    dataset, _ = _convert("amos", source, tmp_path)
    names = json.loads((source / "amos22" / "dataset.json").read_text())["labels"]
    check_converted(dataset, task="segmentation", label_names=[names[str(i)] for i in range(16)],
                    rows={"train": 6 * 3, "validation": 3},
                    case_ids={"train": {f"amos_{n:04d}" for n in range(507, 513)}, "validation": {"amos_0520"}},
                    mask_values={0, 1, 15})
    assert set(dataset["train"]["modality"]) == {"MR"}
    with_ct, _ = _convert("amos", source, tmp_path / "ct", modalities=["MR", "CT"], slices="all")
    assert set(with_ct["train"]["modality"]) == {"MR", "CT"} and len(with_ct["train"]) == 7 * 6


# ---------------------------------------------------------------- Prostate158 (train/<id>/t2.nii.gz + anatomy)


def make_prostate_tree(root):
    for split, ids in (("train", ["020", "021", "022", "023", "024"]), ("test", ["150"])):
        base = root / f"prostate158_{split}" / split
        rows = ["ID,t2,adc,dwi,t2_anatomy_reader1,t2_tumor_reader1"]
        for index, exam in enumerate(ids):
            rng = np.random.default_rng(int(exam))
            t2 = rng.gamma(2.0, 100.0, size=(32, 32, 6)).astype(np.float32)
            anatomy = np.zeros((32, 32, 6), np.uint8)
            anatomy[10:16, 10:20, 2:5], anatomy[16:22, 10:20, 2:5] = 1, 2
            save_nifti(base / exam / "t2.nii.gz", t2)
            save_nifti(base / exam / "adc.nii.gz", t2[::2, ::2])
            save_nifti(base / exam / "t2_anatomy_reader1.nii.gz", anatomy)
            if index % 2 == 0:
                tumor = np.zeros_like(anatomy)
                tumor[17:19, 12:14, 3] = 1
                save_nifti(base / exam / "t2_tumor_reader1.nii.gz", tumor)
            rows.append(f"{exam},{split}/{exam}/t2.nii.gz,,,,")
        (base / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_prostate158_zones_and_optional_tumour(tmp_path):
    source = make_prostate_tree(tmp_path / "src")
    dataset, _ = _convert("prostate158", source, tmp_path)
    check_converted(dataset, task="segmentation", label_names=["background", "transition zone", "peripheral zone"],
                    rows={"train": 30, "test": 6},
                    case_ids={"train": {"020", "021", "022", "023", "024"}, "test": {"150"}}, mask_values={0, 1, 2})
    with_tumor, _ = _convert("prostate158", source, tmp_path / "tumor", include_tumor=True)
    values = set()
    for row in with_tumor["train"]:
        values |= set(np.unique(np.asarray(row["mask"])).tolist())
    assert values == {0, 1, 2, 3}


# ---------------------------------------------------------------- generic labelled studies (sarcoidosis-like)


def make_studies_tree(root):
    for cls, studies in (("sarcoidosis", ["s01", "s02", "s03"]), ("control", ["c01", "c02", "c03"])):
        for index, study in enumerate(studies):
            pet_series(root / cls / study / "PET", seed=index)
            save_nifti(root / cls / study / "MR" / "t1.nii.gz",
                       np.random.default_rng(index).gamma(2.0, 50.0, (16, 16, 3)).astype(np.float32))
    (root / "studies.csv").write_text("study,patient\ns01,P1\ns02,P1\ns03,P3\nc01,P4\nc02,P5\nc03,P6\n")
    return root


def test_labelled_studies_read_pet_series_and_mr_volumes(tmp_path):
    source = make_studies_tree(tmp_path / "src")
    dataset, _ = _convert("labelled_studies", source, tmp_path, class_names=["control", "sarcoidosis"])
    check_converted(dataset, task="classification", label_names=["control", "sarcoidosis"], rows={"train": 6 * 7},
                    case_ids={"train": {"P1", "P3", "P4", "P5", "P6"}})
    train = dataset["train"]
    assert sorted(set(train["modality"])) == ["MR", "PET"]
    assert set(train.filter(lambda r: r["modality"] == "PET")["series"]) == {"PET"}
    assert set(train.filter(lambda r: r["study_id"] == "s02")["case_id"]) == {"P1"}
    assert set(train.filter(lambda r: r["study_id"].startswith("s"))["label"]) == {1}


def test_labelled_studies_refuse_an_unknown_class_folder(tmp_path):
    source = make_studies_tree(tmp_path / "src")
    save_png(source / "other" / "x" / "US" / "a.png", noise_image(0))
    with pytest.raises(ValueError, match="other"):
        _convert("labelled_studies", source, tmp_path, class_names=["control", "sarcoidosis"])
