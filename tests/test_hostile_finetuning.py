"""Hostile inputs to fine-tuning and `vis-mae embed`: weights and checkpoint files that are pickles of code are refused
unread (no sentinel appears), each as one error line naming the input, and no user file changes."""

import pytest
from conftest import save_tiny_model
from finetuning_sets import SEGMENTATION_NAMES, TINY_OVERRIDES, synthetic_set
from hostile import (
    SENTINEL_NAME,
    assert_one_error_line,
    file_hashes,
    malicious_pickle,
    vis_mae,
)

from vis_mae_hf import VisMaeForImageClassification


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return synthetic_set(tmp_path_factory.mktemp("hostile-finetuning") / "seg", "segmentation")


def pickled_model_folder(folder, sentinel):
    """A model folder whose weights are `pytorch_model.bin`, a pickle that would create `sentinel` if loaded."""
    save_tiny_model(folder, VisMaeForImageClassification, "classification")
    (folder / "model.safetensors").unlink()
    malicious_pickle(folder / "pytorch_model.bin", sentinel)
    return folder


def test_an_initialisation_whose_weights_are_a_pickle_of_code_is_refused_unread(tmp_path, capsys, dataset):
    sentinel = tmp_path / SENTINEL_NAME
    folder = pickled_model_folder(tmp_path / "evil", sentinel)
    before = file_hashes(folder)
    status, _, err = vis_mae(capsys, "finetune", "segmentation", "--dataset", dataset, "--init", f"vismae:{folder}",
                             "--output-dir", tmp_path / "out", "--class-names", ",".join(SEGMENTATION_NAMES))
    assert status == 1 and not sentinel.exists()
    assert_one_error_line(err, "finetune segmentation", f"--init vismae:{folder}", "refused unread")
    assert file_hashes(folder) == before and not (tmp_path / "out").exists()


def test_embed_refuses_weights_that_are_a_pickle_of_code(tmp_path, capsys, dataset):
    sentinel = tmp_path / SENTINEL_NAME
    folder = pickled_model_folder(tmp_path / "evil", sentinel)
    status, _, err = vis_mae(capsys, "embed", "--model", folder, "--dataset", dataset, "--output", tmp_path / "out")
    assert status == 1 and not sentinel.exists()
    assert_one_error_line(err, "embed", f"--model {folder}", "refused unread")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["optimizer.pt", "rng_state.pth"])
def test_resuming_from_a_checkpoint_holding_a_pickle_of_code_is_refused_unread(tmp_path, capsys, dataset, name):
    command = ["finetune", "segmentation", "--dataset", dataset, "--output-dir", tmp_path / "out", "--class-names",
               ",".join(SEGMENTATION_NAMES), "--image-size", "64", "--config-overrides", TINY_OVERRIDES,
               "--per-device-train-batch-size", "4", "--disable-tqdm", "true"]
    assert vis_mae(capsys, *command, "--max-steps", "1", "--keep-checkpoints")[0] == 0
    sentinel = tmp_path / SENTINEL_NAME
    malicious_pickle(tmp_path / "out" / "checkpoint-1" / name, sentinel)
    before = file_hashes(tmp_path / "out" / "checkpoint-1")
    status, _, err = vis_mae(capsys, *command, "--max-steps", "2", "--resume-from-checkpoint", "latest")
    assert status == 1 and not sentinel.exists()
    assert_one_error_line(err, "finetune segmentation", str(tmp_path / "out" / "checkpoint-1"), "refused unread")
    assert file_hashes(tmp_path / "out" / "checkpoint-1") == before
