"""`vis-mae embed`: a model's pooled encoder embeddings of a dataset, written as a dataset (every column but the image
and mask, plus `embedding`), refused for a partial encoder, through the output-folder rules."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import save_tiny_model
from finetuning_sets import synthetic_set
from hostile import assert_one_error_line, file_hashes, vis_mae
from safetensors.torch import load_file, save_file

from vis_mae_hf import (
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeModel,
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed")
    dataset = synthetic_set(root / "cls", "classification")
    classifier = save_tiny_model(root / "classifier", VisMaeForImageClassification, "classification",
                                 num_labels=2, id2label={0: "negative", 1: "positive"})
    pretrained = save_tiny_model(root / "pretrained", VisMaeForPreTraining, "pretraining")
    return dataset, classifier, pretrained


def test_embeddings_are_the_encoders_pooled_output_beside_the_datasets_other_columns(tmp_path, capsys, inputs):
    from datasets import load_from_disk
    from transformers import AutoImageProcessor

    dataset, classifier, _ = inputs
    status, out, err = vis_mae(capsys, "embed", "--model", classifier, "--dataset", dataset, "--output",
                               tmp_path / "emb", "--batch-size", "3")
    assert status == 0, err
    assert "Wrote embedding (128 floats per image; train 20 rows)" in out
    embedded = load_from_disk(str(tmp_path / "emb"))["train"]
    source = load_from_disk(str(dataset))["train"]
    assert set(embedded.column_names) == set(source.column_names) - {"image"} | {"embedding"}
    assert embedded.features["label"].names == ["negative", "positive"] and embedded["fold"] == source["fold"]
    matrix = embedded.with_format("numpy")[:]["embedding"]
    assert matrix.shape == (20, 128) and matrix.dtype == np.float32
    # row 7, computed here with the model and its processor
    encoder = VisMaeModel.from_pretrained(classifier).eval()
    processor = AutoImageProcessor.from_pretrained(classifier)
    with torch.no_grad():
        expected = encoder(**processor([source[7]["image"]], return_tensors="pt")).pooler_output[0].numpy()
    np.testing.assert_allclose(matrix[7], expected, atol=1e-5)
    summary = json.loads((tmp_path / "emb" / "embedding_summary.json").read_text())
    assert summary["rows"] == {"train": 20} and summary["hidden_size"] == 128 and summary["notes"] == []


def test_a_pretraining_checkpoint_embeds_with_plain_normalisation_and_says_so(tmp_path, capsys, inputs):
    dataset, _, pretrained = inputs
    status, out, err = vis_mae(capsys, "embed", "--model", pretrained, "--dataset", dataset, "--output", tmp_path / "e")
    assert status == 0, err
    assert "no pooling LayerNorm" in out and "plain normalisation (weight 1, bias 0)" in out
    summary = json.loads((tmp_path / "e" / "embedding_summary.json").read_text())
    assert summary["notes"] and summary["model"] == str(pretrained)


def test_an_encoder_missing_tensors_is_refused(tmp_path, capsys, inputs):
    dataset, classifier, _ = inputs
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (partial / name).write_bytes((Path(classifier) / name).read_bytes())
    state = load_file(str(Path(classifier) / "model.safetensors"))
    save_file({key: value for key, value in state.items() if ".stages.3." not in key}, str(partial / "model.safetensors"),
              metadata={"format": "pt"})
    status, _, err = vis_mae(capsys, "embed", "--model", partial, "--dataset", dataset, "--output", tmp_path / "out")
    assert status == 1
    assert_one_error_line(err, "embed", f"--model {partial}: its encoder is not whole", "stages.3")
    assert not (tmp_path / "out").exists()


def test_the_output_follows_the_output_folder_rules(tmp_path, capsys, inputs):
    dataset, classifier, _ = inputs
    before = file_hashes(dataset)
    status, _, err = vis_mae(capsys, "embed", "--model", classifier, "--dataset", dataset, "--output",
                             f"{dataset}/embeddings")
    assert status == 1 and "is inside the input" in err and file_hashes(dataset) == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    status, _, err = vis_mae(capsys, "embed", "--model", classifier, "--dataset", dataset, "--output", tmp_path / "mine")
    assert status == 1 and "is not empty" in err and (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    arguments = ["embed", "--model", classifier, "--dataset", dataset, "--output", tmp_path / "out", "--quiet"]
    assert vis_mae(capsys, *arguments)[0] == 0
    status, _, err = vis_mae(capsys, *arguments)
    assert status == 1 and "--overwrite" in err
    assert vis_mae(capsys, *arguments, "--overwrite")[0] == 0
