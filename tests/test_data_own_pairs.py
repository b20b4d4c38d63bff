"""`image-mask-pairs`: 2-D images (PNG written from the MNI152 template, a real single-slice CT DICOM) and their masks,
from folders matched by name or from a table, with every bad input refused naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_data_own_trees import (
    ct_hounsfield,
    make_pairs_tree,
    mni_case,
    mni_slice,
    packaged_dicom,
    write_table,
)
from test_data_support import check_converted, save_nifti, save_png

from vis_mae_hf.data import convert, load_converted
from vis_mae_hf.image_processing_vis_mae import apply_window

FOLDER_CASES = {"site_a/case1", "site_a/case2", "site_a/case3", "site_b/case1", "site_b/case2", "ct/chest"}


def _convert(source, output, **options):
    result = convert("image-mask-pairs", source, output, progress=False, **options)
    return load_converted(result.output_dir), result


def test_folders_matched_by_name_keep_same_named_files_apart(tmp_path):
    source = make_pairs_tree(tmp_path / "src")
    dataset, result = _convert(source, tmp_path / "out")
    check_converted(dataset, task="segmentation", label_names=["background", "foreground"], rows={"train": 6},
                    case_ids={"train": FOLDER_CASES}, mask_values={0, 1})
    train = dataset["train"]
    by_case = {row["case_id"]: row for row in train}  # site_a/case1 and site_b/case1: one file name, two cases
    image, brain = mni_slice(60)
    np.testing.assert_array_equal(np.asarray(by_case["site_a/case1"]["image"]), image)  # 8-bit PNG kept as stored
    np.testing.assert_array_equal(np.asarray(by_case["site_a/case1"]["mask"]), brain)  # 0/255 read as 0/1
    assert by_case["site_a/case1"]["mask_file"] == "masks/site_a/case1.png"
    # the DICOM is windowed like the corpus (CT_small has no header window: the abdomen window), modality from it
    chest = by_case["ct/chest"]
    expected = np.rint(apply_window(ct_hounsfield("CT_small.dcm", size=128), 400, 40) * 255)
    np.testing.assert_allclose(np.asarray(chest["image"], dtype=np.float64), expected, atol=1)
    assert chest["modality"] == "CT" and by_case["site_a/case1"]["modality"] == ""
    assert result.summary["notes"][0].startswith(
        "binary masks stored as 0/255 were read as 0/1 (255 is the loss's ignore value): 6 file(s)"
    )


def test_a_table_of_pairs_with_a_case_column_groups_rows_by_case(tmp_path):
    source = make_pairs_tree(tmp_path / "src")
    names = ["site_a/case1", "site_a/case2", "site_a/case3", "site_b/case1", "site_b/case2"]
    # paths relative to the table's own folder (here outside the images' tree), or absolute
    rows = [{"image": f"../src/images/{name}.png", "mask": f"../src/masks/{name}.png", "case": f"patient{n // 2}"}
            for n, name in enumerate(names)]
    rows.append({"image": str(source / "images/ct/chest.dcm"), "mask": "../src/masks/ct/chest.png", "case": "p9"})
    table = write_table(tmp_path / "tables" / "pairs.csv", rows)
    dataset, _ = _convert(table, tmp_path / "out", n_folds=3)
    check_converted(dataset, task="segmentation", label_names=["background", "foreground"], rows={"train": 6},
                    case_ids={"train": {"patient0", "patient1", "patient2", "p9"}}, mask_values={0, 1}, n_folds=3)
    rows.append({"image": str(source / "images/site_a/case1.png"), "mask": "../src/masks/site_a/case1.png",
                 "case": "patient3"})
    twice = write_table(tmp_path / "tables" / "twice.csv", rows)
    with pytest.raises(ValueError, match=r"src/images/site_a/case1.png: listed twice \(twice.csv lines 2 and 8\)"):
        _convert(twice, tmp_path / "out-twice")


def test_several_labels_are_declared_and_checked(tmp_path):
    source = tmp_path / "src"
    for number, z in enumerate((60, 75, 90, 105, 120)):
        image, brain = mni_slice(z)
        tissue = brain.copy()
        tissue[image > 150] = 2  # bright tissue inside the brain: class 2
        tissue[brain == 0] = 0
        save_png(source / "images" / f"slice{number}.tif", image)
        save_png(source / "masks" / f"slice{number}_seg.png", tissue)
    dataset, _ = _convert(source, tmp_path / "out", labels=["background", "brain", "bright"], mask_suffix="_seg")
    check_converted(dataset, task="segmentation", label_names=["background", "brain", "bright"], rows={"train": 5},
                    case_ids={"train": {f"slice{n}" for n in range(5)}}, mask_values={0, 1, 2})
    with pytest.raises(ValueError, match=r"slice0_seg.png: mask values \[2\] are not among the declared labels 0..1"):
        _convert(source, tmp_path / "binary", mask_suffix="_seg")


@pytest.mark.parametrize(
    "spoil, message",
    [
        ("no_mask", r"images/site_b/case2.png: an image without its mask masks/site_b/case2.\*"),
        ("no_image", r"masks/site_b/case7.png: a mask without its image images/site_b/case7.\*"),
        ("size", "masks/site_a/case2.png: the mask is 100x100 pixels but its image images/site_a/case2.png is 197x233"),
        ("value_127", r"masks/site_a/case3.png: mask values \[127\] are not among the declared labels 0..1 \(0 "
                      r"background, 1 foreground\); each pixel must hold one of them. A binary mask may be stored as "
                      r"0/1 or 0/255."),
        ("unreadable", "images/site_b/case1.png: cannot be read as an image"),
        ("colour_mask", "masks/site_a/case1.png: a colour mask"),
        ("frames", "images/ct/chest.dcm: a DICOM of 10 frames; a pair is one 2-D image"),
    ],
)
def test_bad_pairs_stop_naming_the_file_or_are_skipped_and_listed(tmp_path, spoil, message):
    source = make_pairs_tree(tmp_path / "src")
    bad_file = _spoil(source, spoil)
    with pytest.raises(ValueError, match=message) as refused:
        _convert(source, tmp_path / "out")
    assert "--on-error skip" in str(refused.value)
    assert not (tmp_path / "out").exists()
    dataset, result = _convert(source, tmp_path / "skipped", on_error="skip")
    assert bad_file in [entry["file"] for entry in result.summary["skipped"]]
    assert len(dataset["train"]) == (6 if spoil == "no_image" else 5)


def _spoil(source, how: str) -> str:
    if how == "no_mask":
        (source / "masks" / "site_b" / "case2.png").unlink()
        return "images/site_b/case2.png"
    if how == "no_image":
        save_png(source / "masks" / "site_b" / "case7.png", np.zeros((10, 10), np.uint8))
        return "masks/site_b/case7.png"
    if how == "size":
        save_png(source / "masks" / "site_a" / "case2.png", np.zeros((100, 100), np.uint8))
        return "masks/site_a/case2.png"
    if how == "value_127":
        mask = np.asarray(Image.open(source / "masks" / "site_a" / "case3.png")).copy()
        mask[mask == 255] = 127  # anti-aliased or half-grey: not a class
        save_png(source / "masks" / "site_a" / "case3.png", mask)
        return "masks/site_a/case3.png"
    if how == "unreadable":
        path = source / "images" / "site_b" / "case1.png"
        path.write_bytes(path.read_bytes()[:100])
        return "images/site_b/case1.png"
    if how == "colour_mask":
        mask = np.zeros((233, 197, 3), np.uint8)
        mask[50:100, 50:100] = (255, 0, 0)  # classes painted as colours
        save_png(source / "masks" / "site_a" / "case1.png", mask)
        return "masks/site_a/case1.png"
    (source / "images" / "ct" / "chest.dcm").write_bytes(packaged_dicom("emri_small.dcm").read_bytes())
    return "images/ct/chest.dcm"


def test_missing_folders_and_volumes_are_explained(tmp_path):
    (tmp_path / "src" / "images").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="expected folders images/ and masks/"):
        _convert(tmp_path / "src", tmp_path / "out")
    source = make_pairs_tree(tmp_path / "pairs")
    (source / "images" / "ct" / "chest.dcm").unlink()
    save_nifti(source / "images" / "ct" / "chest.nii.gz", mni_case(0)[0])
    with pytest.raises(ValueError, match="images/ct/chest.nii.gz: a NIfTI volume; .*vis-mae data convert decathlon"):
        _convert(source, tmp_path / "out2")


def test_an_image_over_pillows_decompression_bomb_guard_is_a_bad_input(tmp_path, monkeypatch):
    source = make_pairs_tree(tmp_path / "src")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # the 197 x 233 slices exceed twice this
    with pytest.raises(ValueError, match="images/site_a/case1.png: cannot be read as an image .*decompression bomb"):
        _convert(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()
