"""Fine-tuning on several processes gives what one process gives at the same global batch: `accelerate launch` with
two gloo CPU processes against one process, the same losses and metrics within tolerance, and per-volume metric
pooling computed from predictions gathered across processes in dataset order. Gradient accumulation averages as a
larger batch does."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from finetuning_sets import (
    SEGMENTATION_NAMES,
    TINY_OVERRIDES,
    synthetic_set,
    tiny_finetune,
)

from vis_mae_hf import VisMaeForSemanticSegmentation
from vis_mae_hf.app.finetuning.arguments import (
    FinetuningArguments,
    finetuning_training_arguments,
)
from vis_mae_hf.app.finetuning.data import prepare_finetuning_data
from vis_mae_hf.app.finetuning.training import build_trainer
from vis_mae_hf.recipes import get_recipe

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
# No augmentation and no stochastic depth: the only randomness left is the data order, which Trainer draws from the
# seed alike on one and two processes. The validation fold (4 slices of 2 patients) in batches of 3 leaves the
# second process a short last batch.
COMMON = [
    "--class-names", ",".join(SEGMENTATION_NAMES), "--image-size", "64", "--max-steps", "3", "--no-augment",
    "--config-overrides", TINY_OVERRIDES, "--metric-pooling", "per_volume", "--per-device-eval-batch-size", "3",
    "--learning-rate", "0.003", "--logging-steps", "1", "--disable-tqdm", "true",
]
MODULE = ["-m", "vis_mae_hf.app", "finetune", "segmentation"]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list[str], cwd: Path, env: dict) -> str:
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def logged_losses(stdout: str) -> list[float]:
    return [float(ast.literal_eval(line)["loss"]) for line in stdout.splitlines() if line.startswith("{'loss'")]


def eval_results(folder: Path) -> dict[str, float]:
    results = json.loads((folder / "eval_results.json").read_text())
    return {key: value for key, value in results.items() if not key.endswith(("runtime", "per_second"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    dataset = synthetic_set(root / "seg", "segmentation")
    single = run([sys.executable, *MODULE, "--dataset", str(dataset), "--output-dir", str(root / "one"),
                  "--per-device-train-batch-size", "4", *COMMON], root, ENV)
    # `accelerate launch --multi_gpu`, as a multi-GPU machine runs it; ACCELERATE_USE_CPU makes its two processes
    # gloo CPU workers here.
    launch = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu", "--num_processes",
              "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
              str(_free_port())]
    double = run([*launch, *MODULE, "--dataset", str(dataset), "--output-dir", str(root / "two"),
                  "--per-device-train-batch-size", "2", *COMMON], root, {**ENV, "ACCELERATE_USE_CPU": "true"})
    return dataset, root, single, double


def test_two_processes_train_as_one_at_the_same_global_batch(runs):
    _, root, single, double = runs
    assert "batch 4 per device x 1 process(es) x 1 accumulation = 4 per step" in single
    assert "batch 2 per device x 2 process(es) x 1 accumulation = 4 per step" in double
    assert double.count("Plan: ") == 1  # printed by the main process only
    # The same losses step by step (the soft Dice term is computed per process batch, so not bit for bit); a loss
    # scaled by the number of processes, as Trainer does for models that take `num_items_in_batch`, would be twice.
    one, two = logged_losses(single), logged_losses(double)
    assert len(one) == len(two) == 3
    assert two == pytest.approx(one, rel=0.01)
    first, second = eval_results(root / "one"), eval_results(root / "two")
    assert set(first) == set(second)
    assert second["eval_loss"] == pytest.approx(first["eval_loss"], rel=0.01)
    for key in ("eval_dice_mean", "eval_precision_mean", "eval_recall_mean"):
        assert second[key] == pytest.approx(first[key], abs=0.02), key
    summary = json.loads((root / "two" / "finetuning_summary.json").read_text())
    assert summary["global_steps"] == 3 and summary["training_arguments"]["per_device_train_batch_size"] == 2


def test_per_volume_metrics_of_two_processes_are_those_of_the_same_model_on_one(runs, tmp_path):
    dataset, root, _, _ = runs
    # The two-process run's saved model, evaluated again on one process: the gathered predictions must have reached
    # compute_metrics in dataset order, each paired with its own case id.
    arguments = FinetuningArguments(
        dataset=str(dataset), class_names=",".join(SEGMENTATION_NAMES), image_size=64, metric_pooling="per_volume",
        config_overrides=TINY_OVERRIDES,
    )
    data = prepare_finetuning_data(str(dataset), "segmentation", label_names=SEGMENTATION_NAMES)
    model = VisMaeForSemanticSegmentation.from_pretrained(root / "two")
    training_args = finetuning_training_arguments(
        arguments, "segmentation", {"output_dir": str(tmp_path), "per_device_eval_batch_size": 3, "use_cpu": True}
    )
    trainer = build_trainer(arguments, data, model, get_recipe("segmentation").image_processor(64), training_args)
    again = trainer.evaluate()
    recorded = eval_results(root / "two")
    assert len(set(data.validation["case_id"])) > 1 and len(data.validation) % 3  # several volumes, a short batch
    for key, value in recorded.items():
        if key.startswith("eval_") and key != "eval_loss":
            assert again[key] == pytest.approx(value, abs=1e-6), key


def test_gradient_accumulation_averages_as_a_larger_batch_does(tmp_path):
    torch.set_num_threads(1)
    dataset = synthetic_set(tmp_path / "seg", "segmentation")
    common = dict(class_names=",".join(SEGMENTATION_NAMES), augment=False, max_steps=1, learning_rate=0.003,
                  config_overrides=TINY_OVERRIDES)
    whole = tiny_finetune(dataset, tmp_path / "whole", "segmentation", per_device_train_batch_size=4, **common)
    halves = tiny_finetune(dataset, tmp_path / "halves", "segmentation", per_device_train_batch_size=2,
                           gradient_accumulation_steps=2, **common)
    whole_log, halves_log = whole.trainer.state.log_history[0], halves.trainer.state.log_history[0]
    # not twice the loss and gradient, as when Trainer leaves accumulated losses unaveraged
    assert halves_log["loss"] == pytest.approx(whole_log["loss"], rel=0.01)
    assert halves_log["grad_norm"] == pytest.approx(whole_log["grad_norm"], rel=0.05)
