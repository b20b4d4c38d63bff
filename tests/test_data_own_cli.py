"""`vis-mae data convert decathlon | image-mask-pairs | table`: the commands a user with their own data runs."""

from __future__ import annotations

from hostile import assert_one_error_line, file_hashes, vis_mae
from test_data_own_trees import (
    make_class_table_tree,
    make_nnunet_ct_tree,
    make_pairs_tree,
)

from vis_mae_hf.data import load_converted, read_conversion_metadata


def test_decathlon_command_with_its_flags(tmp_path, capsys):
    source = make_nnunet_ct_tree(tmp_path / "Dataset001_Body")
    status, out, _ = vis_mae(capsys, "data", "convert", "decathlon", source, "--output", tmp_path / "out",
                             "--window", "lung", "--keep-empty-slices", "--axis", "coronal", "--n-folds", "3")
    assert status == 0 and "train: 384 rows, 6 patients" in out
    options = read_conversion_metadata(tmp_path / "out")["options"]
    assert options["window"] == "lung" and options["keep_empty_slices"] is True and options["axis"] == "coronal"
    status, out, _ = vis_mae(capsys, "data", "convert", "decathlon", source, "--output", tmp_path / "out",
                             "--window", "lung", "--keep-empty-slices", "--axis", "coronal", "--n-folds", "3")
    assert status == 0 and "already holds this conversion" in out


def test_image_mask_pairs_command_skips_and_lists_a_bad_pair(tmp_path, capsys):
    source = make_pairs_tree(tmp_path / "src")
    (source / "masks" / "site_b" / "case2.png").unlink()
    status, out, _ = vis_mae(capsys, "data", "convert", "image-mask-pairs", source, "--output", tmp_path / "out",
                             "--label-names", "background,brain", "--on-error", "skip", "--n-folds", "4")
    assert status == 0
    assert "skipped 1 input file(s)" in out and "images/site_b/case2.png: an image without its mask" in out
    assert "binary masks stored as 0/255 were read as 0/1" in out
    assert read_conversion_metadata(tmp_path / "out")["label_names"] == ["background", "brain"]


def test_table_command_with_columns(tmp_path, capsys):
    table = make_class_table_tree(tmp_path / "src", delimiter="\t")
    status, out, _ = vis_mae(capsys, "data", "convert", "table", table, "--output", tmp_path / "out",
                             "--label-column", "diagnosis", "--patient-column", "patient", "--path-column", "path")
    assert status == 0 and "class balance: benign: 5, malignant: 5" in out
    assert load_converted(tmp_path / "out")["train"].features["label"].names == ["benign", "malignant"]


def test_a_bad_input_is_one_error_line_and_nothing_is_written(tmp_path, capsys):
    source = make_nnunet_ct_tree(tmp_path / "src")
    (source / "labelsTr" / "ct_004.nii.gz").unlink()
    before = file_hashes(source)
    status, _, err = vis_mae(capsys, "data", "convert", "decathlon", source, "--output", tmp_path / "out")
    assert status == 1
    assert_one_error_line(err, "data convert", "imagesTr/ct_004_0000.nii.gz: an image without its mask",
                          "--on-error skip")
    assert not (tmp_path / "out").exists() and file_hashes(source) == before


def test_a_bad_input_met_in_a_worker_process_is_the_same_one_line(tmp_path, capsys):
    source = make_nnunet_ct_tree(tmp_path / "src")
    volume = source / "imagesTr" / "ct_005_0000.nii.gz"
    volume.write_bytes(volume.read_bytes()[:400])  # truncated: found only when read, by a worker
    status, _, err = vis_mae(capsys, "data", "convert", "decathlon", source, "--output", tmp_path / "out",
                             "--num-proc", "2")
    assert status == 1
    assert_one_error_line(err, "data convert", "imagesTr/ct_005_0000.nii.gz is a truncated or corrupt NIfTI file",
                          "--on-error skip")
    assert not (tmp_path / "out").exists()


def test_flags_that_do_not_apply_to_a_source_are_refused(tmp_path, capsys):
    table = make_class_table_tree(tmp_path / "src")
    status, _, err = vis_mae(capsys, "data", "convert", "table", table, "--output", tmp_path / "out", "--axis",
                             "coronal")
    assert status == 1
    assert_one_error_line(err, "data convert", "--axis does not apply to source 'table'")
    status, _, err = vis_mae(capsys, "data", "convert", "table", table, "--output", tmp_path / "out",
                             "--label-column", "diagnosis", "--option", 'label_columns=["x"]')
    assert status == 1 and "both set label_columns" in err
    status, _, err = vis_mae(capsys, "data", "convert", "decathlon", tmp_path, "--output", tmp_path / "o",
                             "--window", "header")
    assert status == 2 and "header is what is used" in err
    status, _, err = vis_mae(capsys, "data", "convert", "image-mask-pairs", tmp_path, "--output", tmp_path / "o",
                             "--label-names", "background,,lesion")
    assert status == 2 and "expected names separated by commas" in err
    assert not (tmp_path / "out").exists()


def test_sources_lists_and_describes_the_generic_sources(capsys):
    status, out, _ = vis_mae(capsys, "data", "sources")
    assert status == 0 and all(name in out for name in ("decathlon", "image-mask-pairs", "table"))
    status, out, _ = vis_mae(capsys, "data", "sources", "decathlon")
    assert status == 0 and "imagesTr/<case>_0000.nii.gz" in out and "keep_empty_slices=False" in out
