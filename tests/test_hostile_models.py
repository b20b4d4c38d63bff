"""Hostile models, checkpoints and arguments: `vis-mae predict`, `vis-mae convert` and `vis-mae hub push` refuse each
in one line naming the input, with exit status 1, and write nothing for a refused model.

Each case is built in the test from real packaged files: a tiny fine-tuned model saved with `save_pretrained`, then
its `model.safetensors` or `config.json` corrupted as disks, copies and hand edits do; the published-code checkpoints
of `tests/fixtures/official_vectors` with their training arguments edited; an export pushed with the Hub unreachable.
Without these refusals, Transformers fills a missing or misshapen tensor with fresh random weights and only logs it,
so `predict` wrote masks from random layers with exit status 0.
"""

import argparse
import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import OFFICIAL_VECTORS, save_tiny_model
from hostile import assert_one_error_line, file_hashes, vis_mae
from huggingface_hub import HfApi, constants
from PIL import Image
from pydicom.data import get_testdata_file
from safetensors.torch import load_file, save_file
from test_hub_export import make_run

from vis_mae_hf import VisMaeForImageClassification, VisMaeForSemanticSegmentation
from vis_mae_hf.hub import HubPushError, export_repository, push_repository
from vis_mae_hf.inference import PredictorLoadError, VisMaePredictor

ENCODER_TENSOR = "vis_mae.embeddings.projection.weight"
HEAD_TENSOR = "segmentation_head.weight"


def ct_small() -> Path:
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("CT_small.dcm is not installed (pydicom-data)")
    return Path(path)


@pytest.fixture(scope="module")
def whole_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("whole") / "segmenter"
    return Path(save_tiny_model(folder, VisMaeForSemanticSegmentation, "segmentation", num_labels=3))


# ------------------------------------------------------------------------------------------------ corrupted models


def edit_weights(folder: Path, edit) -> None:
    weights = load_file(str(folder / "model.safetensors"))
    edit(weights)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def with_nan(weights):
    weights[ENCODER_TENSOR] = weights[ENCODER_TENSOR].clone()
    weights[ENCODER_TENSOR][0, 0, 0, 0] = float("nan")


# (how the model folder is broken, what the one error line says besides the folder)
BROKEN_MODELS = {
    "truncated weights": (lambda m: truncate(m / "model.safetensors", 0.5), ["model.safetensors", "damaged"]),
    "empty weights": (lambda m: truncate(m / "model.safetensors", 0), ["model.safetensors", "damaged"]),
    "encoder tensor removed": (
        lambda m: edit_weights(m, lambda w: w.pop(ENCODER_TENSOR)),
        ["1 tensor of the model not in the weights: vis_mae.embeddings.projection (1)"],
    ),
    "head removed": (
        lambda m: edit_weights(m, lambda w: w.pop(HEAD_TENSOR)),
        ["1 tensor of the model not in the weights: segmentation_head (1)"],
    ),
    "nan weight": (lambda m: edit_weights(m, with_nan), [f"NaN or infinite weights in 1 tensor ({ENCODER_TENSOR})"]),
    "infinite weight": (
        lambda m: edit_weights(m, lambda w: w.update({HEAD_TENSOR: torch.full_like(w[HEAD_TENSOR], float("inf"))})),
        [f"NaN or infinite weights in 1 tensor ({HEAD_TENSOR})"],
    ),
    "tensor of the wrong shape": (
        lambda m: edit_weights(m, lambda w: w.update({ENCODER_TENSOR: torch.zeros(3, 3)})),
        ["vis_mae.embeddings.projection (1): shape (3, 3) != (16, 3, 4, 4)"],
    ),
    # (Under `decoder.` it would be ignored: the segmenter inherits VisMaeModel's ignore patterns for the MAE decoder.)
    "tensor the model does not have": (
        lambda m: edit_weights(m, lambda w: w.update({"vis_mae.encoder.extra_scale": torch.ones(3)})),
        ["1 tensor of the weights unused: vis_mae.encoder.extra_scale (1): no such parameter in this model"],
    ),
    "config wider than the weights": (
        lambda m: edit_config(m, embed_dim=32, num_heads=[2, 4, 8, 16]),
        ["not a whole VisMaeForSemanticSegmentation", "tensors of the weights unused", "shape (16,) != (32,)"],
    ),
    "config deeper than the weights": (
        lambda m: edit_config(m, depths=[2, 2, 3, 2]),
        # the decoder mirrors the encoder, so one more block in each
        ["26 tensors of the model not in the weights", "decoder.stages.0.blocks.* (13)", "stages.2.blocks.* (13)"],
    ),
    "config with 3.2 M px images": (
        lambda m: edit_config(m, image_size=3200000),
        ["VisMaeConfig.image_size is 3200000; at most 4096 px per side"],
    ),
    "config with a fractional window": (
        lambda m: edit_config(m, window_size=7.5),
        ["VisMaeConfig.window_size is 7.5; expected a whole number"],
    ),
    "config.json not JSON": (
        lambda m: (m / "config.json").write_text('{"model_type": "vis_mae", "depths": [2, 2'),
        ["not a valid JSON file"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_MODELS))
def test_predict_refuses_a_model_that_is_not_whole_and_writes_nothing(tmp_path, capsys, whole_model, case):
    break_model, fragments = BROKEN_MODELS[case]
    model = Path(shutil.copytree(whole_model, tmp_path / "model"))
    break_model(model)
    before = file_hashes(model)

    status, out, err = vis_mae(capsys, "predict", "--model", model, ct_small(), "--output", tmp_path / "out")

    assert status == 1
    assert_one_error_line(err, "predict", model, *fragments)
    assert not (tmp_path / "out").exists() and out == ""
    assert file_hashes(model) == before  # the model folder is only read


def test_the_unbroken_model_predicts(tmp_path, capsys, whole_model):
    """The cases above differ from this one by the corruption alone."""
    model = Path(shutil.copytree(whole_model, tmp_path / "model"))
    status, _, err = vis_mae(capsys, "predict", "--model", model, ct_small(), "--output", tmp_path / "out", "--quiet")
    assert status == 0, err
    assert (tmp_path / "out" / "CT_small_mask.png").is_file()


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_predict_refuses_a_file_given_for_the_model_folder(tmp_path, capsys, whole_model, name):
    status, _, err = vis_mae(capsys, "predict", "--model", whole_model / name, ct_small(), "--output", tmp_path / "o")
    assert status == 1
    assert_one_error_line(err, "predict", whole_model / name, "is a file", f"(here perhaps {whole_model})")
    assert not (tmp_path / "o").exists()


def test_library_refuses_the_same_models_and_keeps_in_memory_models_as_they_are(tmp_path, whole_model):
    model = Path(shutil.copytree(whole_model, tmp_path / "model"))
    edit_weights(model, lambda w: w.pop(HEAD_TENSOR))
    with pytest.raises(PredictorLoadError, match=r"not a whole .* segmentation_head \(1\)"):
        VisMaePredictor.from_pretrained(model, device="cpu")
    # A model built in memory is the caller's: used as it is, whatever its weights.
    whole = VisMaePredictor.from_pretrained(whole_model, device="cpu")
    with torch.no_grad():
        whole.model.segmentation_head.weight.fill_(float("nan"))
    assert VisMaePredictor(whole.model, whole.image_processor, device="cpu").task == whole.task


# ------------------------------------------------------------------------------------------------ bad inputs, --output


def truncated_copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


def test_a_bad_input_in_a_batch_leaves_the_good_ones_predicted(tmp_path, capsys, whole_model):
    bad = truncated_copy(ct_small(), tmp_path / "cut.dcm")
    good = shutil.copy(ct_small(), tmp_path / "good.dcm")
    Image.fromarray(np.full((20, 24), 120, np.uint8)).save(tmp_path / "photo.png")

    status, _, err = vis_mae(
        capsys, "predict", "--model", whole_model, bad, good, tmp_path / "photo.png", "--output", tmp_path / "out"
    )

    assert status == 1
    assert_one_error_line(err, "predict", bad, "truncated or corrupt")
    assert f"2 of 3 inputs predicted; failed: {bad}" in err
    assert {p.name for p in (tmp_path / "out").glob("*_mask.png")} == {"good_mask.png", "photo_mask.png"}
    assert Path(good).read_bytes() == ct_small().read_bytes()


def test_a_bad_input_in_a_classification_batch_leaves_the_good_ones_classified(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "classifier", VisMaeForImageClassification, "classification", num_labels=2)
    bad = truncated_copy(ct_small(), tmp_path / "cut.dcm")

    status, _, err = vis_mae(capsys, "predict", "--model", model, bad, ct_small(), "--output", tmp_path / "out")

    assert status == 1
    assert_one_error_line(err, "predict", bad, "truncated or corrupt")
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == [str(ct_small())]


@pytest.mark.parametrize("where", ["the file", "under the file"])
def test_predict_output_that_is_a_file_is_refused_before_the_model_is_loaded(tmp_path, capsys, where):
    existing = tmp_path / "results.txt"
    existing.write_text("the user's notes\n")
    output = existing if where == "the file" else existing / "masks"

    # A model that does not exist: the --output error comes first, so nothing was loaded before it.
    status, _, err = vis_mae(capsys, "predict", "--model", tmp_path / "no-model", ct_small(), "--output", output)

    assert status == 1
    line = assert_one_error_line(err, "predict", f"--output {output}", "give a folder to write into")
    assert ("is an existing file" in line) == (where == "the file")
    assert existing.read_text() == "the user's notes\n"


@pytest.mark.parametrize(
    "command, option",
    [
        (["convert", "--checkpoint", OFFICIAL_VECTORS / "pretrain_weights.safetensors"], "--output"),
        (["hub", "export", "--model", OFFICIAL_VECTORS / "pretrain_weights.safetensors", "--variant", "mr"], "--output"),
        (["hub", "release", "--runs-dir", OFFICIAL_VECTORS], "--output-dir"),
        (["pretrain", "--max-steps", "1"], "--output-dir"),
        (["finetune", "segmentation", "--max-steps", "1"], "--output-dir"),
        (["sweep", "--task", "segmentation"], "--results-dir"),
    ],
    ids=["convert", "hub export", "hub release", "pretrain", "finetune", "sweep"],
)
def test_every_output_folder_that_is_a_file_is_one_line_before_any_work(tmp_path, capsys, command, option):
    existing = tmp_path / "out"
    existing.write_text("the user's file\n")

    status, _, err = vis_mae(capsys, *command, option, existing)

    assert status == 1
    name = " ".join(str(part) for part in command[: 2 if command[0] in ("hub", "finetune") else 1])
    assert_one_error_line(err, name, f"{option} {existing} is an existing file")
    assert existing.read_text() == "the user's file\n"


# ------------------------------------------------------------------------------------------------ the converter


def published_checkpoint(path: Path, name: str = "pretrain", **args) -> Path:
    """A checkpoint as the published training scripts save it, from the official test vectors' weights."""
    state_dict = load_file(str(OFFICIAL_VECTORS / f"{name}_weights.safetensors"))
    torch.save({"model": state_dict, "epoch": 799, "args": argparse.Namespace(**args)}, path)
    return path


def weights(name: str = "pretrain") -> dict:
    return load_file(str(OFFICIAL_VECTORS / f"{name}_weights.safetensors"))


# (what the file holds, what the one error line says besides the file)
BAD_CHECKPOINTS = {
    "input_size of 3.2 M px": (
        lambda p: published_checkpoint(p, input_size=3200000),
        ["input_size=3200000, outside 1..4096 px per side", "pretraining recipe uses 224 px"],
    ),
    "segmentation img_size of 3.2 M px": (
        lambda p: published_checkpoint(p, "segmentation", img_size=3200000),
        ["img_size=3200000, outside 1..4096 px per side"],
    ),
    "input_size as text": (lambda p: published_checkpoint(p, input_size="224"), ["input_size='224'", "whole pixels"]),
    "input_size not a multiple of 32": (
        lambda p: published_checkpoint(p, "classification", input_size=100),
        ["image_size height 100 must be a positive multiple of 32"],
    ),
    "mask_ratio as text": (lambda p: published_checkpoint(p, mask_ratio="most"), ["mask_ratio='most'", "a number"]),
    "a list": (lambda p: torch.save([weights()], p), ["holds a list of 1 item", "neither a state dict"]),
    "nested non-tensors": (
        lambda p: torch.save({"model": {"encoder": weights(), "epoch": 3}}, p),
        ["['model'] holds 2 entries other than tensors", "encoder (a dict of 224 entries", "epoch (an int)"],
    ),
    "non-string keys": (
        lambda p: torch.save({index: tensor for index, tensor in enumerate(weights().values())}, p),
        ["holds 224 keys other than parameter names (strings): 0, 1, 2, 3, 4 and 219 more"],
    ),
    "args that are a list": (
        lambda p: torch.save({"model": weights(), "args": ["--input_size", "224"]}, p),
        ["['args'] holds a list of 2 items", "argparse.Namespace"],
    ),
    "a NaN weight": (
        lambda p: torch.save({"model": {**weights(), "mask_token": torch.full((1, 1, 16), float("nan"))}}, p),
        ["['model'] holds 1 tensor with NaN or infinite values: mask_token"],
    ),
    "an empty file": (lambda p: p.write_bytes(b""), ["Could not read", "weights_only=True"]),
}


@pytest.mark.parametrize("case", list(BAD_CHECKPOINTS))
def test_convert_refuses_a_malformed_checkpoint_in_one_line(tmp_path, capsys, case):
    make, fragments = BAD_CHECKPOINTS[case]
    checkpoint = tmp_path / "checkpoint-799.pth"
    make(checkpoint)

    status, out, err = vis_mae(capsys, "convert", "--checkpoint", checkpoint, "--output", tmp_path / "converted")

    assert status == 1
    assert_one_error_line(err, "convert", checkpoint, *fragments)
    assert not (tmp_path / "converted").exists() and "wrote" not in out


def test_convert_refuses_a_truncated_safetensors_file(tmp_path, capsys):
    checkpoint = Path(shutil.copy(OFFICIAL_VECTORS / "classification_weights.safetensors", tmp_path / "c.safetensors"))
    truncate(checkpoint, 0.5)
    status, _, err = vis_mae(capsys, "convert", "--checkpoint", checkpoint, "--output", tmp_path / "converted")
    assert status == 1
    assert_one_error_line(err, "convert", checkpoint, "Could not read", "as safetensors")
    assert not (tmp_path / "converted").exists()


def test_convert_reads_a_sane_input_size_into_the_processor(tmp_path, capsys):
    """The same checkpoints with sane arguments convert: the refusals above are about the values alone."""
    checkpoint = published_checkpoint(tmp_path / "checkpoint-799.pth", input_size=64, mask_ratio=0.5)
    status, _, err = vis_mae(capsys, "convert", "--checkpoint", checkpoint, "--output", tmp_path / "converted")
    assert status == 0, err
    processor = json.loads((tmp_path / "converted" / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": 64, "width": 64}
    assert json.loads((tmp_path / "converted" / "config.json").read_text())["mask_ratio"] == 0.5


# ------------------------------------------------------------------------------------------------ the Hub, unreachable


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    return export_repository(make_run(folder / "run"), "mr", folder / "export", repo_id="org/vis-mae-mr")


def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once, as with no network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("network", ["HF_HUB_OFFLINE set", "connection refused"])
def test_hub_push_without_the_hub_is_one_line_naming_the_repository(export, capsys, monkeypatch, network):
    if network == "connection refused":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    else:
        assert constants.HF_HUB_OFFLINE  # conftest sets it, as a user without network would
    before = file_hashes(export)

    status, out, err = vis_mae(
        capsys, "hub", "push", export, "--repo-id", "org/vis-mae-mr", "--skip-remote-code-check"
    )

    assert status == 1 and out == ""
    assert_one_error_line(
        err, "hub push", f"Could not push {export} to the Hub repository org/vis-mae-mr", "Check the network connection"
    )
    assert file_hashes(export) == before


def test_push_repository_raises_hub_push_error_an_os_error(export, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    api = HfApi(endpoint=f"http://127.0.0.1:{closed_port()}", token="hf_not_a_real_token")
    with pytest.raises(HubPushError, match="org/vis-mae-mr.*HF_TOKEN") as raised:
        push_repository(export, "org/vis-mae-mr", check_remote_code=False, api=api)
    assert isinstance(raised.value, OSError)
