"""Hostile input to `vis-mae pretrain` (issue 13): checkpoints that carry code or were written by an earlier version,
damaged checkpoints, resuming under another data geometry (once a hang), a truncated image mid-folder, a NaN loss and
flags a run cannot honour. Each ends in one line naming the input, or trains as asked; nothing runs code, hangs or
changes the user's files."""

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import (
    SENTINEL_NAME,
    assert_one_error_line,
    file_hashes,
    malicious_pickle,
    vis_mae,
)
from PIL import Image
from safetensors.torch import load_file
from test_pretraining import run_worker

from vis_mae_hf.app.cli import main
from vis_mae_hf.app.pretraining import sampler as sampler_module
from vis_mae_hf.app.pretraining.checkpoints import (
    completed_checkpoints,
    read_checkpoint,
)
from vis_mae_hf.app.pretraining.sampler import EpochShardSampler

NUM_IMAGES = 24
SEED = 7  # the worker's seed (tests/distributed_pretrain_worker.py); the in-process runs use it too
TINY = json.dumps({"embed_dim": 16, "num_heads": [1, 2, 4, 8], "depths": [2, 2, 2, 2], "drop_path_rate": 0.0})


def write_image_folder(folder: Path, truncated_row: int | None = None) -> Path:
    """24 small grey PNGs, `img00.png` ... (the image folder's rows in order), one cut in half if asked."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for row in range(NUM_IMAGES):
        Image.fromarray((rng.random((48, 40)) * 255).astype(np.uint8)).save(folder / f"img{row:02d}.png")
    if truncated_row is not None:
        path = folder / f"img{truncated_row:02d}.png"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return folder


def pretrain_arguments(output_dir: Path, dataset: Path, *options) -> list:
    """`vis-mae pretrain` with the worker's settings (tiny model, 64 px, seed 7, batch 4), then `options`."""
    return [
        "pretrain", "--dataset", dataset, "--output-dir", output_dir, "--image-size", 64, "--config-overrides", TINY,
        "--per-device-train-batch-size", 4, "--warmup-steps", 2, "--logging-steps", 1, "--reconstruction-images", 1,
        "--seed", SEED, "--learning-rate", 1e-3, *options,
    ]


def pretrain(capsys, output_dir: Path, dataset: Path, *options) -> tuple[int, str, str]:
    """`vis-mae pretrain` in this process: (exit status, stdout, stderr)."""
    return vis_mae(capsys, *pretrain_arguments(output_dir, dataset, *options))


@contextmanager
def one_thread():
    """Train as the worker does (OMP_NUM_THREADS=1), so that its runs can continue this one bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("images") / "scans")


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory, images) -> Path:
    """A run of 2 steps that saved checkpoint-2; tests copy it before changing anything."""
    output_dir = tmp_path_factory.mktemp("checkpointed") / "run"
    arguments = pretrain_arguments(output_dir, images, "--max-steps", 2, "--checkpointing-steps", 2)
    assert main([str(argument) for argument in arguments]) == 0
    return output_dir


def copied_run(checkpointed_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    output_dir = tmp_path / "run"
    shutil.copytree(checkpointed_run, output_dir)
    return output_dir, output_dir / "checkpoints" / "checkpoint-2"


# ------------------------------------------------------------------------------------------------- code execution
def test_a_checkpoint_of_an_earlier_version_is_refused_without_unpickling_anything(capsys, tmp_path, images,
                                                                                  checkpointed_run):
    output_dir, checkpoint = copied_run(checkpointed_run, tmp_path)
    sentinel = tmp_path / SENTINEL_NAME
    # The layout Accelerate's save_state wrote: the scheduler and random states as pickles, a flat progress.json.
    for name in ("optimizer.pt", "scheduler.json"):
        (checkpoint / name).unlink()
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin"):
        malicious_pickle(checkpoint / name, sentinel)
    (checkpoint / "progress.json").write_text(json.dumps({"global_step": 2, "epoch": 0, "step_in_epoch": 2,
                                                          "images_seen": 8}))
    before = file_hashes(output_dir)
    status, _, err = pretrain(capsys, output_dir, images, "--max-steps", 4, "--resume-from-checkpoint", "latest")
    assert status == 1
    assert_one_error_line(err, "pretrain", str(checkpoint), "written by an earlier vis-mae-hf",
                          "custom_checkpoint_0.pkl, random_states_0.pkl", "is not read", "Start the run again")
    assert not sentinel.exists()
    assert file_hashes(output_dir) == before


def test_pickles_planted_in_a_checkpoint_are_never_read(capsys, tmp_path, images, checkpointed_run):
    output_dir, checkpoint = copied_run(checkpointed_run, tmp_path)
    sentinel = tmp_path / SENTINEL_NAME
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "scheduler.bin", "optimizer.bin"):
        malicious_pickle(checkpoint / name, sentinel)
    status, _, err = pretrain(capsys, output_dir, images, "--max-steps", 3, "--resume-from-checkpoint", "latest")
    assert status == 0, err
    assert not sentinel.exists()
    assert json.loads((output_dir / "training_summary.json").read_text())["global_steps"] == 3


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the refused file
def test_an_optimizer_state_holding_code_is_refused_unread(capsys, tmp_path, images, checkpointed_run):
    output_dir, checkpoint = copied_run(checkpointed_run, tmp_path)
    sentinel = tmp_path / SENTINEL_NAME
    malicious_pickle(checkpoint / "optimizer.pt", sentinel)
    before = file_hashes(output_dir)
    status, _, err = pretrain(capsys, output_dir, images, "--max-steps", 4, "--resume-from-checkpoint", checkpoint)
    assert status == 1
    line = assert_one_error_line(err, "pretrain", str(checkpoint / "optimizer.pt"), "is not a plain optimiser state",
                                 "refused unread")
    assert "weights_only` set to `False`" not in line  # torch's advice to turn the safe loader off is not repeated
    assert not sentinel.exists()
    assert file_hashes(output_dir) == before


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _other_model_weights(path: Path) -> None:
    from conftest import tiny_config_kwargs
    from safetensors.torch import save_file

    from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining

    model = VisMaeForPreTraining(VisMaeConfig(**tiny_config_kwargs(image_size=64, embed_dim=8, num_heads=[1, 1, 2, 4])))
    save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, str(path))


def _edit_json(change):
    def edit(path: Path) -> None:
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    return edit


DAMAGE = {
    "truncated weights": ("model.safetensors", _truncate, "is not a readable safetensors file"),
    "weights of another model": ("model.safetensors", _other_model_weights, "does not fit this model"),
    "missing optimizer state": ("optimizer.pt", Path.unlink, "is missing; the checkpoint is incomplete"),
    "scheduler not JSON": ("scheduler.json", lambda path: path.write_text("{not json"), "is not valid JSON"),
    "scheduler with a stray key": ("scheduler.json", _edit_json(lambda r: r.update(optimizer="x")), "must hold the keys"),
    "position past the epoch": ("progress.json", _edit_json(lambda r: r["progress"].update(step_in_epoch=99)),
                                "is not a position of 6 steps per epoch"),
    "negative step": ("progress.json", _edit_json(lambda r: r["progress"].update(global_step=-1)),
                      "must be non-negative whole numbers"),
    "a newer format": ("progress.json", _edit_json(lambda r: r.update(checkpoint_format=3)),
                       "checkpoint format 3, but this vis-mae-hf reads format 2"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_checkpoint_is_refused_naming_the_file(capsys, tmp_path, images, checkpointed_run, damage):
    output_dir, checkpoint = copied_run(checkpointed_run, tmp_path)
    name, change, fragment = DAMAGE[damage]
    change(checkpoint / name)
    before = file_hashes(output_dir)
    status, _, err = pretrain(capsys, output_dir, images, "--max-steps", 4, "--resume-from-checkpoint", "latest")
    assert status == 1
    assert_one_error_line(err, "pretrain", str(checkpoint), fragment)
    assert file_hashes(output_dir) == before


def test_resuming_a_run_at_its_last_step_writes_a_summary_the_card_reads(capsys, tmp_path, images, checkpointed_run):
    from vis_mae_hf.hub.summaries import load_training_summary

    output_dir, _ = copied_run(checkpointed_run, tmp_path)
    status, _, err = pretrain(capsys, output_dir, images, "--max-steps", 2, "--resume-from-checkpoint", "latest")
    assert status == 0, err
    summary = load_training_summary(output_dir / "training_summary.json")  # strict JSON: no NaN loss
    assert summary["global_steps"] == 2 and summary["final_loss"] is None


# ---------------------------------------------------------------------------------------------------------- hang
def test_resuming_under_another_geometry_ends_in_seconds_continuing_or_refused(images, tmp_path):
    """Once a hang: a larger batch or more processes put the saved position past the end of the new epoch."""
    out = tmp_path / "resumed"
    # 6 steps planned, killed in step 4 after checkpoint-3 (the schedule of the resumed run is the same 6 steps)
    killed = run_worker(images, out, batch=4, max_steps=6, checkpointing_steps=3, sigkill_after_samples=13, check=False)
    assert killed.returncode == -9 and [path.name for path in completed_checkpoints(out / "run")] == ["checkpoint-3"]
    larger = run_worker(images, out, batch=8, max_steps=6, resume_from_checkpoint="latest", check=False, timeout=180)
    assert larger.returncode != 0
    assert "CheckpointError" in larger.stderr and "made with global batch 4 (1 process(es) x 4 per device" in larger.stderr
    assert "this run has global batch 8 (1 process(es) x 8 per device" in larger.stderr
    more_processes = run_worker(images, out, batch=4, max_steps=6, processes=2, resume_from_checkpoint="latest",
                                check=False, timeout=180)
    assert more_processes.returncode != 0
    assert "this run has global batch 8 (2 process(es) x 4 per device" in more_processes.stderr
    # The same global batch split over 2 processes is the same images per step: it continues where it stopped.
    run_worker(images, out, batch=2, max_steps=6, processes=2, resume_from_checkpoint="latest", timeout=300)
    straight = tmp_path / "straight"
    run_worker(images, straight, batch=4, max_steps=6)
    expected = load_file(straight / "record/weights_rank0.safetensors")
    resumed = load_file(out / "record/weights_rank0.safetensors")
    worst = max((expected[key] - resumed[key]).abs().max().item() for key in expected)
    assert worst < 1e-5, f"resumed on 2 processes differs from the uninterrupted run by {worst}"
    assert len(json.loads((out / "record/seen_rank0.json").read_text())) == 3 * 2  # steps 4..6, 2 images each


def test_an_epoch_that_yields_no_step_stops_the_run_instead_of_spinning(capsys, tmp_path, images, monkeypatch):
    monkeypatch.setattr(sampler_module.EpochShardSampler, "__iter__", lambda self: iter(()))
    status, _, err = pretrain(capsys, tmp_path / "run", images, "--max-steps", 2)
    assert status == 1
    assert_one_error_line(err, "pretrain", "Epoch 0 from its step 0 yielded no optimiser step",
                          "global batch 4 (1 process(es) x 4 per device x 1 accumulation step(s)) over 24 images")


# -------------------------------------------------------------------------------------- a bad image mid-folder
def drawn_in_step_3(seed: int = SEED) -> int:
    """A row (not the first, which is checked before training) that batch 4 draws in the third step of epoch 0."""
    order = EpochShardSampler(NUM_IMAGES, 4, seed=seed).epoch_order(0).tolist()
    return next(row for row in order[8:12] if row != 0)


def test_a_truncated_image_mid_folder_stops_naming_it_or_is_skipped_alike_everywhere(capsys, tmp_path):
    row = drawn_in_step_3()
    folder = write_image_folder(tmp_path / "scans", truncated_row=row)
    bad_file = folder / f"img{row:02d}.png"
    before = file_hashes(folder)

    # stop (the default): one line naming the file and why, before step 3, with the state after step 2 saved
    stopped = tmp_path / "stopped"
    with one_thread():
        status, _, err = pretrain(capsys, stopped / "run", folder, "--max-steps", 8)
    assert status == 1
    checkpoint = stopped / "run" / "checkpoints" / "checkpoint-2"
    assert_one_error_line(err, "pretrain", f"image {row} ({bad_file}) cannot be used for pretraining",
                          "truncated", "Training stopped before step 3 (epoch 0)",
                          f"The state before this step is in {checkpoint}", "--on-bad-image skip")
    assert read_checkpoint(checkpoint)[0].global_step == 2
    assert not (stopped / "run" / "model.safetensors").exists()
    # on 2 processes the one that drew the file and the one that did not stop together, neither left waiting
    stopped_two = run_worker(folder, tmp_path / "stopped_two", batch=2, max_steps=8, processes=2, check=False,
                             timeout=180)
    assert stopped_two.returncode != 0 and "UnreadableImageError" in stopped_two.stderr
    assert [path.name for path in completed_checkpoints(tmp_path / "stopped_two/run")] == ["checkpoint-2"]

    # skip: trained on the others, a notice names the file, the summary counts it; two processes train alike
    one = run_worker(folder, tmp_path / "one", batch=4, max_steps=8, on_bad_image="skip")
    assert f"--on-bad-image skip: image {row} ({bad_file}) cannot be used for pretraining" in one.stdout
    run_worker(folder, tmp_path / "two", batch=2, max_steps=8, processes=2, on_bad_image="skip")
    summaries = [json.loads((tmp_path / name / "run/training_summary.json").read_text()) for name in ("one", "two")]
    for summary in summaries:
        assert summary["skipped_images"] == 1 and summary["skipped_image_rows"] == [row]
        assert summary["skipped_examples"] == summaries[0]["skipped_examples"] >= 1
        assert summary["images_seen"] == 8 * 4 - summary["skipped_examples"]
        assert summary["recipe"]["on_bad_image"] == "skip"
    weights_one = load_file(tmp_path / "one/record/weights_rank0.safetensors")
    weights_two = load_file(tmp_path / "two/record/weights_rank0.safetensors")
    worst = max((weights_one[key] - weights_two[key]).abs().max().item() for key in weights_one)
    assert worst < 1e-5, f"skipping on 2 processes differs from 1 process by {worst}"

    # the stopped run resumed with skip skips the same image and ends where the skipping run did, bit for bit
    run_worker(folder, stopped, batch=4, max_steps=8, on_bad_image="skip", resume_from_checkpoint="latest")
    resumed = load_file(stopped / "record/weights_rank0.safetensors")
    assert all(torch.equal(weights_one[key], resumed[key]) for key in weights_one)
    resumed_summary = json.loads((stopped / "run/training_summary.json").read_text())
    assert resumed_summary["skipped_examples"] == summaries[0]["skipped_examples"]
    assert file_hashes(folder) == before  # the user's images are only read


def test_an_unreadable_first_image_fails_before_training_or_is_skipped(capsys, tmp_path):
    folder = write_image_folder(tmp_path / "scans", truncated_row=0)
    status, _, err = pretrain(capsys, tmp_path / "stop", folder, "--max-steps", 1)
    assert status == 1
    assert_one_error_line(err, "pretrain", f"image 0 ({folder / 'img00.png'}) cannot be used", "truncated")
    assert not (tmp_path / "stop" / "train_log.jsonl").exists()
    status, _, err = pretrain(capsys, tmp_path / "skip", folder, "--max-steps", 1, "--on-bad-image", "skip")
    assert status == 0, err


# ------------------------------------------------------------------------------------ what the user can get wrong
def test_a_non_finite_loss_is_one_line_naming_the_step_and_the_checkpoint(capsys, tmp_path, images):
    status, _, err = pretrain(capsys, tmp_path / "run", images, "--max-steps", 12, "--learning-rate", 1e9)
    assert status == 1
    checkpoint = completed_checkpoints(tmp_path / "run")[-1]
    step = read_checkpoint(checkpoint)[0].global_step
    assert_one_error_line(err, "pretrain", f"at step {step + 1}", "training stopped before applying it",
                          f"The state before this step is in {checkpoint}", "Lower --learning-rate")


BAD_FLAGS = [
    (["--per-device-train-batch-size", 0], "--per-device-train-batch-size must be a whole number >= 1, got 0"),
    (["--gradient-accumulation-steps", -1], "--gradient-accumulation-steps must be a whole number >= 1, got -1"),
    (["--logging-steps", 0], "--logging-steps must be a whole number >= 1, got 0"),
    (["--max-steps", 0], "--max-steps must be a whole number >= 1, got 0"),
    (["--checkpointing-steps", 0], "--checkpointing-steps must be a whole number >= 1, got 0"),
    (["--checkpoints-total-limit", -2], "--checkpoints-total-limit must be a whole number >= 1, got -2"),
    (["--reconstruction-images", 0], "--reconstruction-images must be a whole number >= 1, got 0"),
    (["--seed", -1], "--seed must be a finite number >= 0, got -1"),
    (["--learning-rate", "nan"], "--learning-rate must be a finite number > 0, got nan"),
    (["--num-train-epochs", 0], "--num-train-epochs must be a finite number > 0, got 0.0"),
    (["--warmup-epochs", "inf"], "--warmup-epochs must be a finite number >= 0, got inf"),
    (["--adam-beta2", 1.5], "--adam-beta2 must be in [0, 1), got 1.5"),
    (["--image-size", 50], "--config-overrides / --image-size make no valid model: ValueError: VisMaeConfig.image_size"),
    (["--config-overrides", "{not json"], "--config-overrides is not valid JSON"),
    (["--config-overrides", '{"embed_dims": 32}'], "--config-overrides: ['embed_dims'] are not VisMaeConfig fields"),
    (["--config-overrides", '{"embed_dim": -3}'], "VisMaeConfig.embed_dim must be a positive integer, got -3"),
    (["--hub-variant", "brain"], "--hub-variant: Unknown modality 'brain'"),
    (["--model-name-or-path", "./no-such-model"], "--model-name-or-path ./no-such-model: no such folder"),
    (["--resume-from-checkpoint", "nowhere"], "--resume-from-checkpoint nowhere: not a complete checkpoint folder"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS, ids=[" ".join(map(str, flags)) for flags, _ in BAD_FLAGS])
def test_a_flag_the_run_cannot_honour_is_one_line_before_any_work(capsys, tmp_path, images, flags, message):
    status, _, err = pretrain(capsys, tmp_path / "run", images, "--max-steps", 1, *flags)  # the last value wins
    assert status == 1
    assert_one_error_line(err, "pretrain", message)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_an_output_dir_that_is_a_file_is_refused_untouched(capsys, tmp_path, images):
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's notes")
    status, _, err = pretrain(capsys, notes, images, "--max-steps", 1)
    assert status == 1
    assert_one_error_line(err, "pretrain", f"--output-dir {notes} is an existing file")
    assert notes.read_text() == "the user's notes"


def test_an_unknown_bad_image_policy_is_a_usage_error(capsys, tmp_path, images):
    status, _, err = pretrain(capsys, tmp_path / "run", images, "--on-bad-image", "ignore")
    assert status == 2 and "invalid choice: 'ignore' (choose from 'stop', 'skip')" in err
