"""`vis-mae data ...` drives the same functions as the Python API."""

from __future__ import annotations

import json

import pytest
from test_data_sources_2d import make_knee_tree
from test_data_support import noise_image, save_png

from vis_mae_hf.app.cli import main
from vis_mae_hf.app.cli.data import parse_modality_hint, parse_option
from vis_mae_hf.data import load_converted


def test_convert_command_writes_dataset_and_summary(tmp_path, capsys):
    source, people = make_knee_tree(tmp_path / "src")
    code = main(["data", "convert", "knee_oa", str(source), "--output", str(tmp_path / "out"), "--seed", "2",
                 "--format", "parquet", "--option", "include_test_in_folds=true"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "train: 14 rows" in printed and "KL4" in printed
    dataset = load_converted(tmp_path / "out")
    assert set(dataset) == {"train"} and len(dataset["train"]) == 14
    assert json.loads((tmp_path / "out" / "vis_mae_conversion.json").read_text())["seed"] == 2


def test_corpus_command(tmp_path, capsys):
    save_png(tmp_path / "in" / "XRAY" / "a.png", noise_image(0))
    save_png(tmp_path / "in" / "other" / "b.png", noise_image(1))
    code = main(["data", "corpus", str(tmp_path / "in" / "XRAY"), str(tmp_path / "in" / "other"),
                 "--output", str(tmp_path / "corpus"), "--modality-for", f"{tmp_path / 'in' / 'other'}=US",
                 "--image-size", "64", "--num-workers", "2", "--window", "400,40"])
    assert code == 0
    assert "XRAY: 1 images" in capsys.readouterr().out
    summary = json.loads((tmp_path / "corpus" / "corpus_summary.json").read_text())
    assert summary["images_by_modality"]["US"] == 1 and summary["options"]["image_size"] == 64
    # --window is the CT window of files without one, parsed by the one window parser
    assert summary["options"]["preprocessing"]["window"] == [400.0, 40.0]


@pytest.mark.parametrize(
    "window, message",
    [("header", "header is what is used whenever a file has a window"), ("softtissue", "unknown window 'softtissue'")],
)
def test_corpus_window_must_name_a_window_for_files_without_one(tmp_path, capsys, window, message):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "corpus", str(tmp_path), "--output", str(tmp_path / "corpus"), "--window", window])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "corpus").exists()


def test_a_bad_source_tree_is_one_error_line(tmp_path, capsys):
    code = main(["data", "convert", "knee_oa", str(tmp_path / "absent"), "--output", str(tmp_path / "out")])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"vis-mae data convert: error: Source directory {tmp_path / 'absent'} for 'knee_oa' does not exist."
    ]


def test_sources_command_lists_every_source(capsys):
    assert main(["data", "sources"]) == 0
    listed = capsys.readouterr().out
    for name in ("btcv", "acdc", "amos", "prostate158", "lgg", "busi_segmentation", "tucc", "isic2017",
                 "busi_classification", "covid_ct", "mrnet", "knee_oa", "chestxray14", "labelled_studies"):
        assert name in listed
    assert main(["data", "sources", "btcv"]) == 0
    assert "RawData/Training/img/img0001.nii.gz" in capsys.readouterr().out


def test_option_parsing():
    pairs = [parse_option(text) for text in ("slices=all", 'modalities=["MR","CT"]', "include_normal=true")]
    assert dict(pairs) == {"slices": "all", "modalities": ["MR", "CT"], "include_normal": True}
    with pytest.raises(Exception, match="KEY=VALUE"):
        parse_option("slices")
    assert parse_modality_hint("/data/a=b/png=US") == ("/data/a=b/png", "US")
    with pytest.raises(Exception, match="INPUT=MODALITY"):
        parse_modality_hint("/data/png")


def test_malformed_options_are_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "convert", "knee_oa", str(tmp_path), "--output", str(tmp_path / "out"), "--option", "slices"])
    assert exit_.value.code == 2 and "expected KEY=VALUE, got 'slices'" in capsys.readouterr().err
