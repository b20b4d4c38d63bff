"""Fine-tuning takes every `TrainingArguments` option: what the user gives wins over the recipe, what is not given
comes from the recipe and the package's defaults, the plan is printed before the first step, a finished run keeps
no checkpoint by default, and Trainer's own features (activation checkpointing, bf16, resuming) work through it."""

import json
from pathlib import Path

import pytest
from finetuning_sets import SEGMENTATION_NAMES, TINY_OVERRIDES, synthetic_set, tiny_run
from hostile import assert_one_error_line, vis_mae
from transformers import TrainingArguments

from vis_mae_hf.app.cli import parse
from vis_mae_hf.app.cli.finetune import split_namespace
from vis_mae_hf.app.finetuning.arguments import (
    FinetuningArguments,
    finetuning_training_arguments,
)
from vis_mae_hf.app.finetuning.plan import CheckpointSizes, RunFacts, format_plan
from vis_mae_hf.app.finetuning.training import run_finetuning

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def segmentation_set(tmp_path_factory):
    return synthetic_set(tmp_path_factory.mktemp("options") / "seg", "segmentation")


def parsed(*command_line: str, task: str = "segmentation") -> tuple[FinetuningArguments, dict, TrainingArguments]:
    """`vis-mae finetune TASK COMMAND_LINE...` parsed: (task options, the TrainingArguments options given, the run's
    TrainingArguments)."""
    (arguments,), given = split_namespace(parse("finetune", [task, *command_line]), FinetuningArguments)
    return arguments, given, finetuning_training_arguments(arguments, task, given)


def tiny_command(dataset, output_dir, *extra) -> list[str]:
    return [
        "finetune", "segmentation", "--dataset", dataset, "--output-dir", output_dir, "--class-names",
        ",".join(SEGMENTATION_NAMES), "--image-size", "64", "--per-device-train-batch-size", "4",
        "--config-overrides", TINY_OVERRIDES, "--disable-tqdm", "true", "--logging-steps", "1", *extra,
    ]


# ------------------------------------------------------------------------------------------ given options vs recipe


def test_a_value_the_user_sets_wins_over_the_recipe_even_when_it_equals_transformers_default():
    # 5e-5 is TrainingArguments' own default learning rate: only "was it given?" can tell it from an unset option.
    _, given, training_args = parsed("--dataset", "data/btcv", "--learning-rate", "5e-5", "--num-train-epochs", "3")
    assert given == {"learning_rate": 5e-5, "num_train_epochs": 3.0}
    assert (training_args.learning_rate, training_args.num_train_epochs) == (5e-5, 3.0)
    # everything not given comes from the published segmentation recipe, not from Transformers' defaults
    assert (training_args.per_device_train_batch_size, training_args.weight_decay) == (32, 0.05)
    assert (training_args.adam_beta1, training_args.adam_beta2, training_args.lr_scheduler_type) == (0.9, 0.95, "cosine")
    assert training_args.warmup_steps == pytest.approx(40 / 150)  # the recipe's warmup share of a shorter schedule
    _, given, unset = parsed("--dataset", "data/btcv")
    assert given == {} and (unset.learning_rate, unset.num_train_epochs) == (1e-3, 150)


def test_the_package_defaults_fill_only_what_is_not_given():
    _, _, defaults = parsed()
    assert (defaults.eval_strategy, defaults.save_strategy, defaults.load_best_model_at_end) == ("epoch", "epoch", True)
    assert (defaults.metric_for_best_model, defaults.save_total_limit, defaults.seed) == ("dice_mean", 1, 0)
    assert defaults.remove_unused_columns is False and defaults.output_dir == "outputs/vis-mae-finetune-segmentation"
    _, _, by_steps = parsed("--eval-steps", "5", "--seed", "7", "--save-total-limit", "3", "--output-dir", "x")
    assert (by_steps.eval_strategy, by_steps.save_strategy, by_steps.save_steps) == ("steps", "steps", 5)
    assert (by_steps.seed, by_steps.save_total_limit, by_steps.output_dir) == (7, 3, "x")
    _, _, classification = parsed(task="classification")
    assert classification.metric_for_best_model == "roc_auc" and classification.learning_rate == 1e-4  # demo recipe


def test_trainer_features_are_its_own_options():
    _, given, training_args = parsed(
        "--gradient-accumulation-steps", "4", "--gradient-checkpointing", "--resume-from-checkpoint", "latest",
        "--push-to-hub", "--hub-model-id", "org/vis-mae-seg", "--fsdp", "full_shard", "--optim", "adamw_torch",
    )
    assert training_args.gradient_accumulation_steps == 4 and training_args.activation_checkpointing is True
    assert training_args.resume_from_checkpoint == "latest" and training_args.push_to_hub is True
    assert training_args.hub_model_id == "org/vis-mae-seg" and given["fsdp"] == "full_shard"


@pytest.mark.parametrize(
    "command_line, message",
    [
        (["--label-names", "background,lesion"], "give class names with --class-names"),
        (["--remove-unused-columns", "true"], "--remove-unused-columns must stay false"),
        (["--warmup-epochs", "2", "--warmup-steps", "10"], "not both"),
        (["--warmup-epochs", "8", "--num-train-epochs", "4"], "--warmup-epochs 8 must lie in [0, 4)"),
        (["--tuning", "adapter"], "--tuning must be one of full, linear_probe, lora"),
        (["--tuning", "lora", "--lora-target-modules", "qkv,reduction"], "--lora-target-modules 'qkv,reduction'"),
    ],
    ids=["label-names", "remove-unused-columns", "warmup-twice", "warmup-too-long", "tuning", "lora-targets"],
)
def test_contradictory_options_are_one_error_line_before_any_work(tmp_path, capsys, command_line, message):
    status, _, err = vis_mae(capsys, "finetune", "segmentation", "--output-dir", tmp_path / "out", *command_line)
    assert status == 1
    assert_one_error_line(err, "finetune segmentation", message)
    assert not (tmp_path / "out").exists()


def test_help_says_what_fills_an_option_not_given(capsys):
    status, out, _ = vis_mae(capsys, "finetune", "segmentation", "--help")
    assert status == 0
    text = " ".join(out.split())
    assert "--learning-rate LEARNING_RATE The initial learning rate for the optimizer. Default: the recipe (0.001" in text
    assert "--bf16 [BF16]" in text and "--gradient-checkpointing" in text and "--deepspeed" in text
    assert "--save-total-limit SAVE_TOTAL_LIMIT" in text and "Default: 1 (the newest checkpoint" in text


# --------------------------------------------------------------------------------------------------------- the plan


def test_the_plan_is_printed_before_the_first_step_and_a_two_step_run_keeps_no_checkpoint(
    tmp_path, capsys, segmentation_set
):
    status, out, err = vis_mae(
        capsys, *tiny_command(segmentation_set, tmp_path / "out", "--max-steps", "2", "--gradient-accumulation-steps", "2")
    )
    assert status == 0, err
    plan = next(line for line in out.splitlines() if line.startswith("Plan: "))
    assert "2 optimiser steps (--max-steps 2" in plan and "batch 4 per device x 1 process(es) x 2 accumulation = 8" in plan
    assert "64 px, on cpu in fp32" in plan
    assert out.index("Plan: ") < out.index("'loss'")  # before Trainer logs its first step
    checkpoints = next(line for line in out.splitlines() if line.startswith("Checkpoints: "))
    assert f"to {tmp_path / 'out' / 'checkpoint-<step>'}" in checkpoints and "MB each" in checkpoints
    assert "removed once the run ends" in checkpoints
    assert not list((tmp_path / "out").glob("checkpoint-*"))  # the 632 MB-checkpoint default is gone
    assert (tmp_path / "out" / "model.safetensors").is_file()
    summary = json.loads((tmp_path / "out" / "finetuning_summary.json").read_text())
    assert summary["training_options"] == {"output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 4,
                                           "disable_tqdm": True, "logging_steps": 1.0, "max_steps": 2,
                                           "gradient_accumulation_steps": 2}
    assert summary["training_arguments"]["gradient_accumulation_steps"] == 2 and summary["plan"].startswith("Plan: ")


def test_finishing_removes_only_the_checkpoints_the_run_wrote(tmp_path):
    from vis_mae_hf.app.finetuning.training import finish_output

    colleague = tmp_path / "checkpoint-500"
    (colleague / "model.safetensors").parent.mkdir(parents=True)
    (colleague / "model.safetensors").write_bytes(b"theirs")
    (tmp_path / "checkpoint-2").mkdir()
    finish_output(tmp_path, {"dataset": "x"}, keep_checkpoints=False, earlier={colleague})
    assert (colleague / "model.safetensors").read_bytes() == b"theirs" and not (tmp_path / "checkpoint-2").exists()
    assert json.loads((tmp_path / "finetuning_summary.json").read_text()) == {"dataset": "x"}


def test_a_hub_token_given_on_the_command_line_is_never_written(tmp_path, capsys, segmentation_set):
    status, _, err = vis_mae(capsys, *tiny_command(segmentation_set, tmp_path / "out", "--max-steps", "1",
                                                   "--hub-token", "hf_secret_value"))
    assert status == 0, err
    written = "".join(path.read_text(errors="ignore") for path in (tmp_path / "out").rglob("*.json"))
    assert "hf_secret_value" not in written and '"hub_token": "<HUB_TOKEN>"' in written


def test_the_plan_of_the_published_schedule_on_a_cpu_says_so_and_sizes_the_checkpoints():
    arguments = FinetuningArguments(dataset="data/btcv")
    training_args = finetuning_training_arguments(arguments, "segmentation", {"use_cpu": True})
    facts = RunFacts(
        num_train_examples=2000, image_size=320, tuning_line="Tuning full.",
        sizes=CheckpointSizes(weights=165_000_000, optimizer=330_000_000, final_model=165_000_000),
        keep_checkpoints=False, save_model=True, published_schedule=True,
    )
    plan = format_plan(facts, training_args, max_steps=9450, num_train_epochs=150)
    assert "9,450 optimiser steps (150 epochs" in plan and "batch 32 per device" in plan and "320 px" in plan
    assert "about 495 MB each (weights 165 MB, optimiser state 330 MB)" in plan
    assert "at most 1 kept, and the best when it is another" in plan
    assert "published recipe's full schedule, on a CPU: expect days" in plan and "--max-steps N" in plan


# -------------------------------------------------------------------------------------- Trainer features, run for real


def test_gradient_checkpointing_uses_the_models_activation_checkpointing(tmp_path, segmentation_set):
    arguments, options = tiny_run(
        segmentation_set, tmp_path / "out", class_names=",".join(SEGMENTATION_NAMES), gradient_checkpointing=True
    )
    result = run_finetuning(arguments, "segmentation", options, verbose=False)
    model = result.trainer.model
    blocks = [module for name, module in model.named_modules() if type(module).__name__ == "VisMaeLayer"]
    assert blocks and all(block.gradient_checkpointing for block in blocks)
    assert model.is_activation_checkpointing and result.trainer.state.global_step == 2


def test_bf16_on_a_cpu_runs(tmp_path, segmentation_set):
    arguments, options = tiny_run(
        segmentation_set, tmp_path / "out", class_names=",".join(SEGMENTATION_NAMES), bf16=True, use_cpu=True,
        max_steps=1,
    )
    result = run_finetuning(arguments, "segmentation", options, verbose=False)
    assert result.trainer.args.bf16 and 0.0 <= result.metrics["eval_dice_mean"] <= 1.0


def test_a_kept_checkpoint_resumes_with_its_optimiser_state(tmp_path, capsys, segmentation_set):
    first = tiny_command(segmentation_set, tmp_path / "out", "--max-steps", "2", "--eval-steps", "1",
                         "--keep-checkpoints")
    assert vis_mae(capsys, *first)[0] == 0
    best = Path(json.loads((tmp_path / "out" / "finetuning_summary.json").read_text())["best_checkpoint"])
    # With --save-total-limit 1 Trainer keeps the newest checkpoint during the run and only the best one at its end.
    assert [path.name for path in (tmp_path / "out").glob("checkpoint-*")] == [best.name]
    assert (best / "optimizer.pt").is_file() and (best / "scheduler.pt").is_file()  # resumable, not model-only
    resumed = tiny_command(segmentation_set, tmp_path / "out", "--max-steps", "3", "--eval-steps", "1",
                           "--resume-from-checkpoint", "latest")
    status, out, err = vis_mae(capsys, *resumed)
    assert status == 0, err
    summary = json.loads((tmp_path / "out" / "finetuning_summary.json").read_text())
    assert summary["global_steps"] == 3
    trained = [json.loads(line.replace("'", '"')) for line in out.splitlines() if line.startswith("{'loss'")]
    assert len(trained) == 3 - int(best.name.split("-")[1])  # only the steps after the checkpoint
    # This finished run removed the checkpoints it wrote; the one it resumed from was there before it and stays.
    assert [path.name for path in (tmp_path / "out").glob("checkpoint-*")] == [best.name]


def test_resuming_without_a_checkpoint_is_one_error_line(tmp_path, capsys, segmentation_set):
    command = tiny_command(segmentation_set, tmp_path / "out", "--max-steps", "1", "--resume-from-checkpoint", "latest")
    status, _, err = vis_mae(capsys, *command)
    assert status == 1
    assert_one_error_line(err, "finetune segmentation", "checkpoint")
