"""One bad-file policy for every converter, and one check of mask values for converting and loading alike."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pydicom
import pytest
from test_data_own_trees import packaged_dicom

from vis_mae_hf.data import convert, load_converted
from vis_mae_hf.data.masks import (
    BinaryMaskNotice,
    MaskValueError,
    checked_mask,
    mask_class_indices,
)


def make_studies_tree(root):
    """Class folders of DICOM studies from pydicom's real CT and MR files; `s01` exists in both classes."""
    for cls, studies in (("control", ["s01", "s02", "s03"]), ("sarcoidosis", ["s01", "s04", "s05"])):
        for number, study in enumerate(studies):
            folder = root / cls / study
            folder.mkdir(parents=True)
            name = "CT_small.dcm" if number % 2 else "MR_small.dcm"
            shutil.copy(packaged_dicom(name), folder / "image.dcm")
    (root / "control" / "s03" / "SR").mkdir()
    shutil.copy(packaged_dicom("reportsi.dcm"), root / "control" / "s03" / "SR" / "report.dcm")  # not an image
    (root / "control" / "s03" / "notes.txt").write_text("reviewed")
    return root


def _write_dicom_variant(path, how: str) -> None:
    dataset = pydicom.dcmread(packaged_dicom("CT_small.dcm"))
    if how == "no_pixels":
        del dataset.PixelData
    else:
        dataset.PixelData = np.zeros_like(dataset.pixel_array).tobytes()  # an all-zero image: no content
    dataset.save_as(path)


@pytest.mark.parametrize(
    "how, message",
    [("no_pixels", "sarcoidosis/s04/extra.dcm: "), ("all_zero", "sarcoidosis/s04/extra.dcm: every frame or slice has "
                                                              "one constant value")],
)
def test_a_bad_dicom_in_a_study_stops_or_is_skipped_and_listed(tmp_path, how, message):
    source = make_studies_tree(tmp_path / "src")
    _write_dicom_variant(source / "sarcoidosis" / "s04" / "extra.dcm", how)
    with pytest.raises(ValueError, match=message) as refused:
        convert("labelled_studies", source, tmp_path / "out", progress=False)
    assert "--on-error skip" in str(refused.value) and not (tmp_path / "out").exists()
    result = convert("labelled_studies", source, tmp_path / "skipped", on_error="skip", progress=False)
    assert [entry["file"] for entry in result.summary["skipped"]] == ["sarcoidosis/s04/extra.dcm"]
    train = load_converted(result.output_dir)["train"]
    assert len(train) == 6  # every study's good image; the bad file alone is left out
    assert result.summary["notes"] == [
        "left out: not an image of a modality VIS-MAE reads: 1 file(s), e.g. control/s03/SR/report.dcm"
    ]


def test_studies_of_one_name_in_two_class_folders_are_two_patients(tmp_path):
    source = make_studies_tree(tmp_path / "src")
    train = load_converted(convert("labelled_studies", source, tmp_path / "out", progress=False).output_dir)["train"]
    assert set(train["case_id"]) == {"control/s01", "control/s02", "control/s03", "sarcoidosis/s01",
                                     "sarcoidosis/s04", "sarcoidosis/s05"}
    fold_of = dict(zip(train["case_id"], train["fold"]))
    assert len(set(fold_of.values())) == 5  # six patients over five folds
    # studies.csv can still say that two studies are one patient, by name or by <class>/<study>
    (source / "studies.csv").write_text("study,patient\ncontrol/s01,P1\nsarcoidosis/s01,P1\ns02,P2\ns03,P3\ns04,P4\n"
                                        "s05,P5\n")
    grouped = load_converted(convert("labelled_studies", source, tmp_path / "grouped", n_folds=4,
                                     progress=False).output_dir)["train"]
    assert set(grouped["case_id"]) == {"P1", "P2", "P3", "P4", "P5"}


def test_knee_files_without_an_oai_id_in_two_grade_folders_stay_apart(tmp_path):
    from test_data_sources_2d import make_knee_tree
    from test_data_support import noise_image, save_png

    source, _ = make_knee_tree(tmp_path / "src")
    root = next(path for path in source.rglob("kneeKL224"))
    save_png(root / "train" / "0" / "scan.png", noise_image(1, (224, 224)))
    save_png(root / "train" / "3" / "scan.png", noise_image(2, (224, 224)))
    train = convert("knee_oa", source, tmp_path / "out", progress=False).load()["train"]
    assert {"train/0/scan", "train/3/scan"} <= set(train["case_id"])


def test_covid_ct_patients_from_a_table_stay_within_their_class_folder(tmp_path):
    from test_data_sources_2d import make_covid_tree
    from test_data_support import noise_image, save_png

    source = make_covid_tree(tmp_path / "src")
    save_png(source / "COVID-CT-master" / "Images-processed" / "CT_COVID" / "3.jpg", noise_image(9, channels=3))
    (tmp_path / "meta.csv").write_text("File name,Patient ID\n3.jpg,P1\nkjr-21-e24-p5-29.png,P2\n")
    train = convert("covid_ct", source, tmp_path / "out", patient_csv=str(tmp_path / "meta.csv"),
                    progress=False).load()["train"]
    assert {"covid/P1", "non_covid/P1"} <= set(train["case_id"])


def test_on_error_must_be_stop_or_skip(tmp_path):
    with pytest.raises(ValueError, match="on_error must be one of"):
        convert("labelled_studies", make_studies_tree(tmp_path / "src"), tmp_path / "out", on_error="ignore")


# ---------------------------------------------------------------------------------------------- mask values


def test_mask_values_are_declared_class_indices():
    mask = np.array([[0, 1], [2, 1]], np.uint8)
    indices, mapped = mask_class_indices(mask, ["background", "liver", "tumour"], name="m.png")
    assert indices.dtype == np.int64 and not mapped and indices.tolist() == [[0, 1], [2, 1]]
    with pytest.raises(MaskValueError, match=r"m.png: mask values \[2\] are not among the declared labels 0..1 "
                                             r"\(0 background, 1 lesion\)"):
        mask_class_indices(mask, ["background", "lesion"], name="m.png")
    with pytest.raises(MaskValueError, match="fractional values"):
        mask_class_indices(np.array([[0.0, 0.5]]), 2, name="m.nii.gz")
    with pytest.raises(MaskValueError, match=r"values \[-1\]"):
        mask_class_indices(np.array([[0, -1]]), 2, name="m")


def test_a_0_255_binary_mask_is_read_as_0_1_and_127_is_a_clear_error():
    binary = np.array([[0, 255], [255, 0]], np.uint8)
    indices, mapped = mask_class_indices(binary, 2, name="m.png")
    assert mapped and indices.tolist() == [[0, 1], [1, 0]]
    with pytest.raises(MaskValueError, match=r"values \[255\]"):
        mask_class_indices(binary, 2, name="m.png", allow_binary_255=False)
    with pytest.raises(MaskValueError, match=r"values \[255\] are not among the declared labels 0..2"):
        mask_class_indices(binary, 3, name="m.png")  # not a binary set: 255 is no class
    with pytest.raises(MaskValueError, match=r"row 3 of the batch: mask values \[127\] are not among the declared "
                                             r"labels 0..1 \(2 labels\); each pixel must hold one of them"):
        checked_mask(np.array([[0, 127]], np.uint8), 2, name="row 3 of the batch")


def test_loading_warns_once_when_it_reads_0_255_masks_as_0_1():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            assert checked_mask(np.array([[0, 255]], np.uint8), 2, name="row 0").tolist() == [[0, 1]]
    assert len([warning for warning in caught if issubclass(warning.category, BinaryMaskNotice)]) == 1
