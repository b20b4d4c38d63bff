"""Pretraining loop: distributed correctness, exact resumption, failure behaviour (issue: pretraining)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from vis_mae_hf.app.pretraining.checkpoints import (
    completed_checkpoints,
    read_checkpoint,
    resolve_resume_checkpoint,
)
from vis_mae_hf.app.pretraining.errors import CheckpointError
from vis_mae_hf.app.pretraining.examples import PretrainingExamples, check_readable
from vis_mae_hf.app.pretraining.progress import (
    DataGeometry,
    TrainingProgress,
    check_resumable,
)
from vis_mae_hf.app.pretraining.sampler import EpochShardSampler
from vis_mae_hf.data.loading import PretrainingDataError, load_pretraining_images
from vis_mae_hf.recipes import get_recipe

WORKER = Path(__file__).parent / "distributed_pretrain_worker.py"
NUM_IMAGES = 24


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """24 small grey images, half tagged CT and half MR, saved as a datasets folder."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray((rng.random((48, 40)) * 255).astype(np.uint8)) for _ in range(NUM_IMAGES)]
    dataset = datasets.Dataset.from_dict({"image": images, "modality": ["CT"] * 12 + ["MR"] * 12})
    path = tmp_path_factory.mktemp("corpus") / "saved"
    dataset.cast_column("image", datasets.Image()).save_to_disk(str(path))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_worker(corpus, out: Path, batch: int, max_steps: int, processes: int = 1, check=True, env=None, timeout=600,
               **extra):
    command = [str(WORKER), "--dataset", str(corpus), "--output_dir", str(out / "run"), "--record_dir", str(out / "record"),
               "--batch", str(batch), "--max_steps", str(max_steps)]
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", **(env or {})}
    if processes > 1:
        # What `accelerate launch --multi_gpu` does, on CPU: torch.distributed.run sets RANK/WORLD_SIZE and
        # Accelerate initialises a gloo process group from them.
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                    "--master_port", str(free_port())]
    else:
        launcher = [sys.executable]
    result = subprocess.run(launcher + command, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def keys_by_epoch(path: Path) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for epoch, index in json.loads(path.read_text()):
        grouped.setdefault(epoch, []).append(index)
    return grouped


def test_two_processes_train_the_same_model_as_one_with_the_same_global_batch(corpus, tmp_path):
    # 24 images, global batch 4 -> 6 steps per epoch; 9 steps cross into the second epoch.
    run_worker(corpus, tmp_path / "ddp", batch=2, max_steps=9, processes=2)
    run_worker(corpus, tmp_path / "single", batch=4, max_steps=9, processes=1)
    rank0 = load_file(tmp_path / "ddp/record/weights_rank0.safetensors")
    rank1 = load_file(tmp_path / "ddp/record/weights_rank1.safetensors")
    single = load_file(tmp_path / "single/record/weights_rank0.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "ranks diverged: the model is not data-parallel"
    worst = max((rank0[k] - single[k]).abs().max().item() for k in rank0)
    assert worst < 1e-5, f"2 processes differ from 1 process by {worst}"

    seen0 = keys_by_epoch(tmp_path / "ddp/record/seen_rank0.json")
    seen1 = keys_by_epoch(tmp_path / "ddp/record/seen_rank1.json")
    single_seen = keys_by_epoch(tmp_path / "single/record/seen_rank0.json")
    assert sorted(seen0) == [0, 1] and len(seen0[0]) == 12 and len(seen0[1]) == 6
    for epoch in (0, 1):
        assert not set(seen0[epoch]) & set(seen1[epoch]), f"ranks shared samples in epoch {epoch}"
        # the samples of each optimiser step are the same whatever the number of processes
        for step in range(len(seen0[epoch]) // 2):
            together = set(seen0[epoch][2 * step: 2 * step + 2]) | set(seen1[epoch][2 * step: 2 * step + 2])
            assert together == set(single_seen[epoch][4 * step: 4 * step + 4])
    assert seen0[0][:6] != seen0[1][:6], "the order did not change between epochs"
    assert sorted(seen0[0] + seen1[0]) == list(range(NUM_IMAGES))  # every image once per epoch


def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_weights(corpus, tmp_path):
    # batch 4, checkpoints every 3 steps; SIGKILL after 5 steps' worth of samples (mid step 6, after checkpoint-3).
    uninterrupted = tmp_path / "uninterrupted"
    run_worker(corpus, uninterrupted, batch=4, max_steps=8)
    interrupted = tmp_path / "interrupted"
    killed = run_worker(corpus, interrupted, batch=4, max_steps=8, checkpointing_steps=3, check=False, sigkill_after_samples=21)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert [p.name for p in completed_checkpoints(interrupted / "run")] == ["checkpoint-3"]
    assert not (interrupted / "run" / "model.safetensors").exists()
    run_worker(corpus, interrupted, batch=4, max_steps=8, checkpointing_steps=3, resume_from_checkpoint="latest")
    expected = load_file(uninterrupted / "record/weights_rank0.safetensors")
    resumed = load_file(interrupted / "record/weights_rank0.safetensors")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected), "the resumed run differs from the uninterrupted one"
    # it continued where it stopped: the resumed process drew only steps 4..8 (5 steps x 4 samples)
    assert len(json.loads((interrupted / "record/seen_rank0.json").read_text())) == 20
    summary = json.loads((interrupted / "run/training_summary.json").read_text())
    assert summary["global_steps"] == 8
    # what the recipe table says, as the card shows it: Transformers' scheduler name, the published decay rule
    recipe = summary["recipe"]
    assert recipe["lr_scheduler_type"] == "cosine" and recipe["decay_norms_and_biases"] is True
    assert recipe["defaults"] == "published recipe" and recipe["warmup_steps"] == 2 and recipe["total_steps"] == 8


def test_memory_and_speed_options_train_the_same_model(corpus, tmp_path):
    """--activation_checkpointing (recompute the finest stages) and Accelerate's compiler (`accelerate launch
    --dynamo_backend ... --dynamo_use_fullgraph`; aot_eager here traces forward and backward without generating
    kernels) change how a step runs, not what it computes."""
    weights = {}
    for name, extra, env in [
        ("plain", {}, None),
        ("checkpointed", {"activation_checkpointing": "decoder.stages.2,vis_mae.encoder.stages.0"}, None),
        ("compiled", {}, {"ACCELERATE_DYNAMO_BACKEND": "AOT_EAGER", "ACCELERATE_DYNAMO_USE_FULLGRAPH": "true"}),
    ]:
        run_worker(corpus, tmp_path / name, batch=4, max_steps=3, env=env, **extra)
        weights[name] = load_file(tmp_path / name / "record/weights_rank0.safetensors")
    assert weights["plain"].keys() == weights["checkpointed"].keys() == weights["compiled"].keys()
    for name in ("checkpointed", "compiled"):
        for key, expected in weights["plain"].items():
            torch.testing.assert_close(weights[name][key], expected, rtol=1e-4, atol=1e-6, msg=f"{name}: {key}")
    result = run_worker(corpus, tmp_path / "bad", batch=4, max_steps=1, check=False, activation_checkpointing="decoder.stage.9")
    assert result.returncode != 0 and "No Swin block lies under ['decoder.stage.9']" in result.stderr


def test_a_non_finite_loss_stops_with_the_step_and_a_checkpoint_before_it(corpus, tmp_path):
    result = run_worker(corpus, tmp_path, batch=4, max_steps=12, check=False, learning_rate=1e9)
    assert result.returncode != 0
    assert "NonFiniteLossError" in result.stderr and "training stopped before applying it" in result.stderr
    checkpoint = completed_checkpoints(tmp_path / "run")[-1]
    step = read_checkpoint(checkpoint)[0].global_step
    assert f"at step {step + 1}" in result.stderr and f"The state before this step is in {checkpoint}" in result.stderr
    weights = load_file(checkpoint / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in weights.values())


# ---------------------------------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------------------------------
def test_sampler_shards_disjointly_and_reshuffles_each_epoch():
    samplers = [EpochShardSampler(50, per_process_batch_size=4, num_processes=3, process_index=r, seed=1) for r in range(3)]
    assert samplers[0].steps_per_epoch == 4  # 50 // 12, the tail that cannot fill a step is dropped
    epoch0 = [[i for _, i in s] for s in samplers]
    assert all(len(keys) == 16 for keys in epoch0)
    assert len(set().union(*map(set, epoch0))) == 48
    for s in samplers:
        s.set_epoch(1)
    epoch1 = [[i for _, i in s] for s in samplers]
    assert epoch0 != epoch1
    samplers[0].set_epoch(1, start_step=3)
    assert [i for _, i in samplers[0]] == epoch1[0][12:] and len(samplers[0]) == 4
    with pytest.raises(ValueError, match="fewer than one optimiser step needs"):
        EpochShardSampler(10, per_process_batch_size=8, num_processes=2)
    # A start past the epoch's end would yield nothing, and a loop waiting for its steps would spin forever.
    with pytest.raises(ValueError, match="Cannot start epoch 1 at step 4: an epoch has 4 optimiser steps"):
        samplers[0].set_epoch(1, start_step=4)
    with pytest.raises(ValueError, match="a batch, process count and accumulation of at least 1"):
        EpochShardSampler(10, per_process_batch_size=0)


def test_a_position_resumes_only_where_its_steps_are_the_same_images():
    saved = DataGeometry(num_images=24, global_batch_size=4, num_processes=1, per_device_train_batch_size=4,
                         gradient_accumulation_steps=1)
    progress = TrainingProgress(global_step=9, epoch=1, step_in_epoch=3, images_seen=36)
    # the same global batch split otherwise: every step is still the same 4 images
    for processes, per_device, accumulation in [(2, 2, 1), (1, 2, 2), (4, 1, 1)]:
        check_resumable("ckpt", progress, saved, DataGeometry(24, 4, processes, per_device, accumulation))
    with pytest.raises(CheckpointError, match=r"made with global batch 4 \(1 process\(es\) x 4 per device x 1 "
                       r"accumulation step\(s\)\) over 24 images, this run has global batch 8 \(2 process"):
        check_resumable("ckpt", progress, saved, DataGeometry(24, 8, 2, 4, 1))
    with pytest.raises(CheckpointError, match="over 24 images, this run has .* over 23 images"):
        check_resumable("ckpt", progress, saved, DataGeometry(23, 4, 1, 4, 1))
    with pytest.raises(CheckpointError, match="is not a position of 6 steps per epoch"):
        check_resumable("ckpt", TrainingProgress(global_step=9, epoch=0, step_in_epoch=9), saved, saved)
    with pytest.raises(CheckpointError, match="is not a position of 6 steps per epoch"):
        check_resumable("ckpt", TrainingProgress(global_step=5, epoch=1, step_in_epoch=3), saved, saved)


def test_progress_counts_skipped_images_when_the_step_finishes():
    progress = TrainingProgress()
    progress.advance(steps_per_epoch=2, global_batch_size=4, skipped=[7])
    progress.advance(steps_per_epoch=2, global_batch_size=4)
    progress.advance(steps_per_epoch=2, global_batch_size=4, skipped=[7, 3])
    assert (progress.global_step, progress.epoch, progress.step_in_epoch) == (3, 1, 1)
    assert (progress.images_seen, progress.skipped_examples, progress.skipped_images) == (9, 3, [3, 7])


def test_the_schedule_is_transformers_cosine_schedule_warmup_then_half_cosine():
    from transformers import get_cosine_schedule_with_warmup

    from vis_mae_hf.app.pretraining.loop import PretrainingArguments
    from vis_mae_hf.app.pretraining.optimization import build_scheduler, plan_training

    args = PretrainingArguments(dataset="corpus", learning_rate=0.5, warmup_steps=4, max_steps=12).resolved()
    plan = plan_training(args, steps_per_epoch=6, num_processes=1)

    def optimizer():
        return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=plan.learning_rate)

    def learning_rates(scheduler, steps=13):
        rates = []
        for _ in range(steps):
            rates.append(scheduler.get_last_lr()[0])
            scheduler.optimizer.step()
            scheduler.step()
        return rates

    ours = learning_rates(build_scheduler(optimizer(), args, plan))
    assert ours == learning_rates(get_cosine_schedule_with_warmup(optimizer(), 4, 12))
    factors = [rate / 0.5 for rate in ours]
    assert factors[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]  # per-step linear warmup
    assert factors[8] == pytest.approx(0.5) and factors[12] == pytest.approx(0.0)  # half a cosine, to 0 at the end
    assert all(a > b for a, b in zip(factors[4:12], factors[5:13]))

    # Its state is plain data, kept as JSON in a checkpoint: a rebuilt scheduler continues exactly.
    first = build_scheduler(optimizer(), args, plan)
    learning_rates(first, steps=5)
    resumed = build_scheduler(optimizer(), args, plan)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert learning_rates(resumed, steps=8) == ours[5:]


def test_the_pretraining_optimiser_decays_by_the_model_s_one_rule():
    from conftest import tiny_config_kwargs

    from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining
    from vis_mae_hf.app.pretraining.loop import PretrainingArguments
    from vis_mae_hf.app.pretraining.optimization import build_optimizer

    model = VisMaeForPreTraining(VisMaeConfig(**tiny_config_kwargs(image_size=64)))
    names = {id(parameter): name for name, parameter in model.named_parameters()}

    def groups(**arguments):
        args = PretrainingArguments(dataset="corpus", **arguments).resolved()
        optimizer = build_optimizer(model, args, args.learning_rate, torch.device("cpu"))
        return {group["weight_decay"]: {names[id(p)] for p in group["params"]} for group in optimizer.param_groups}

    published = groups()  # the recipe: weight decay 0.05 on every parameter
    assert published == {0.05: set(names.values())}
    exempt = groups(decay_norms_and_biases=False)
    assert exempt[0.0] == model.no_weight_decay() and "vis_mae.embeddings.mask_token" in exempt[0.0]
    assert exempt[0.05] == set(names.values()) - model.no_weight_decay()
    assert groups(weight_decay=0.1)[0.1] == set(names.values())


def test_scale_lr_with_batch_uses_the_recipe_s_reference_batch():
    from vis_mae_hf.app.pretraining.loop import PretrainingArguments
    from vis_mae_hf.app.pretraining.optimization import plan_training

    args = PretrainingArguments(dataset="corpus", per_device_train_batch_size=32, scale_lr_with_batch=True).resolved()
    plan = plan_training(args, steps_per_epoch=10, num_processes=4)
    assert plan.global_batch_size == 128
    assert plan.learning_rate == pytest.approx(1e-3 * 128 / get_recipe("pretraining").reference_global_batch)
    assert plan.total_steps == 800 * 10 and plan.warmup_steps == 10 * 10  # the published 800 epochs, 10 of warmup
    with pytest.raises(ValueError, match="--scale-lr-with-batch .* the demo recipe names none"):
        PretrainingArguments(scale_lr_with_batch=True).resolved().check()


def test_examples_are_a_function_of_seed_epoch_and_index(corpus):
    images = load_pretraining_images(corpus)
    processor = get_recipe("pretraining").image_processor(64)
    examples = PretrainingExamples(images, processor, num_mask_units=16, seed=3)
    a, b = examples[(0, 5)], examples[(0, 5)]
    assert torch.equal(a["pixel_values"], b["pixel_values"]) and torch.equal(a["noise"], b["noise"])
    assert a["pixel_values"].shape == (3, 64, 64) and a["noise"].shape == (16,)
    assert not torch.equal(a["noise"], examples[(1, 5)]["noise"])


def test_modality_filter_and_bad_datasets_fail_before_training(corpus, tmp_path):
    assert len(load_pretraining_images(corpus, "mr")) == 12
    with pytest.raises(PretrainingDataError, match=r"holds no PET images \(it has \{'CT': 12, 'MR': 12\}\)"):
        load_pretraining_images(corpus, "pet")
    with pytest.raises(PretrainingDataError, match="does not exist"):
        load_pretraining_images(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    datasets.Dataset.from_dict({"image": []}, features=datasets.Features({"image": datasets.Image()})).save_to_disk(str(empty))
    with pytest.raises(PretrainingDataError, match=f"{empty} holds no images"):
        load_pretraining_images(empty)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not an image")
    with pytest.raises(PretrainingDataError, match="neither a corpus"):
        load_pretraining_images(junk)
    with pytest.raises(PretrainingDataError, match="--modality: Unknown modality 'brain': expected one of generic, ct, mr, pet, xray, us"):
        load_pretraining_images(corpus, "brain")


def test_an_unreadable_first_image_is_reported_by_name(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(PretrainingDataError) as error:
        images = load_pretraining_images(broken)
        check_readable(PretrainingExamples(images, get_recipe("pretraining").image_processor(), 196, 0), str(broken))
    assert str(broken) in str(error.value)


def test_resume_latest_needs_a_complete_checkpoint(tmp_path):
    (tmp_path / "checkpoints" / ".tmp-checkpoint-6").mkdir(parents=True)  # a save killed half-way
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        resolve_resume_checkpoint(tmp_path, "latest")
    complete = tmp_path / "checkpoints" / "checkpoint-4"
    complete.mkdir()
    (complete / "progress.json").write_text(json.dumps(TrainingProgress(global_step=4).__dict__))
    assert resolve_resume_checkpoint(tmp_path, "latest") == complete


def test_push_to_hub_is_checked_before_training_and_pushes_the_finished_run(corpus, tmp_path, monkeypatch):
    from conftest import tiny_config_kwargs
    from test_hub_push import FakeHub

    from vis_mae_hf import VisMaeConfig
    from vis_mae_hf.app.pretraining.loop import PretrainingArguments, run_pretraining

    arguments = dict(output_dir=str(tmp_path / "run"), dataset=str(corpus), image_size=64, max_steps=1,
                     per_device_train_batch_size=4, warmup_steps=0, reconstruction_images=1, push_to_hub=True)
    with pytest.raises(ValueError, match="--push-to-hub needs --hub-model-id NAMESPACE/NAME"):
        run_pretraining(PretrainingArguments(**arguments, hub_model_id="no-namespace"))
    assert not (tmp_path / "run").exists()  # refused before any work
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    run_pretraining(PretrainingArguments(**arguments, hub_model_id="org/vis-mae-ct", modality="ct"),
                    VisMaeConfig(**tiny_config_kwargs(image_size=64)))
    assert [commit["repo_id"] for commit in hub.commits] == ["org/vis-mae-ct"]
    pushed = hub.folder("org/vis-mae-ct")
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= {p.name for p in pushed.iterdir()}


def test_defaults_are_the_published_recipe_with_a_dataset_and_a_short_demo_without():
    from vis_mae_hf.app.pretraining.loop import PretrainingArguments

    published = PretrainingArguments(dataset="corpus").resolved()
    assert (published.num_train_epochs, published.warmup_epochs, published.per_device_train_batch_size,
            published.learning_rate) == (800.0, 10.0, 640, 1e-3)
    assert (published.adam_beta1, published.adam_beta2, published.weight_decay) == (0.9, 0.95, 0.05)
    assert published.decay_norms_and_biases is True and published.image_size == 224
    assert published.config_fields() == {"depths": [2, 2, 2, 2], "image_size": 224}
    demo = PretrainingArguments().resolved()
    assert (demo.num_train_epochs, demo.per_device_train_batch_size, demo.learning_rate) == (8.0, 8, 3e-4)
    assert demo.recipe == get_recipe("pretraining", demo=True)
    # what the user says wins
    assert PretrainingArguments(learning_rate=5e-4).resolved().learning_rate == 5e-4
    assert PretrainingArguments(decay_norms_and_biases=False).resolved().decay_norms_and_biases is False
    assert PretrainingArguments(config_overrides='{"depths": [2, 2, 6, 2]}').config_fields()["depths"] == [2, 2, 6, 2]
    with pytest.raises(ValueError, match="give it as --image-size"):
        PretrainingArguments(config_overrides='{"image_size": 96}').config_fields()


def test_help_quotes_the_recipe_table():
    from transformers import HfArgumentParser

    from vis_mae_hf.app.pretraining.loop import PretrainingArguments

    parser = HfArgumentParser(PretrainingArguments)
    helps = {action.dest: action.help for action in parser._actions}
    assert helps["num_train_epochs"] == "Default: the recipe (800; demo 8)."
    assert helps["weight_decay"].endswith("Default: the recipe (0.05).")
    (parsed,) = parser.parse_args_into_dataclasses(args=["--decay_norms_and_biases", "false"])
    assert parsed.decay_norms_and_biases is False and parsed.weight_decay is None
