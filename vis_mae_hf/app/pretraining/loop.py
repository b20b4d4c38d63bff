"""VIS-MAE pretraining with Accelerate: one process or many, resumable, stopping cleanly on a non-finite loss.

The published script never wrapped its model in DDP and never reshuffled per epoch, so 8 GPUs trained 8 unrelated
replicas on the same order. Here the model goes through `accelerator.prepare` (DDP, FSDP or DeepSpeed as configured
with `accelerate config`), every process draws a different shard of a per-epoch permutation, and each example's flip
and mask are functions of (seed, epoch, index) so that the number of processes does not change what is learned.

Defaults come from the recipe table (`vis_mae_hf.recipes`): the published pretraining recipe with `--dataset`, the
demo recipe without (the built-in demo corpus, a few minutes on a laptop CPU); `PretrainingArguments` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from ...configuration_vis_mae import VisMaeConfig
from ...data.loading import load_pretraining_images
from ...modeling_vis_mae import VisMaeForPreTraining
from ..publishing import publish_run
from .arguments import PretrainingArguments
from .bad_images import handle_unreadable, readable_loss, unreadable_rows
from .checkpoints import (
    load_checkpoint,
    read_checkpoint,
    require_checkpoint_support,
    resolve_resume_checkpoint,
    save_before_stop,
    save_checkpoint,
)
from .data import PretrainingData, build_pretraining_data
from .errors import NonFiniteLossError, StalledEpochError
from .model import build_model
from .optimization import TrainingPlan, build_optimizer, build_scheduler, plan_training
from .outputs import save_outputs
from .progress import DataGeometry, TrainingProgress, check_resumable
from .sampler import derived_seed
from .step_log import StepLog


@dataclass
class PretrainingResult:
    output_dir: Path
    model: VisMaeForPreTraining  # unwrapped, on every process
    progress: TrainingProgress


@dataclass
class PretrainingRun:
    """The pieces of a run in progress, prepared for this process."""

    args: PretrainingArguments
    accelerator: object  # accelerate.Accelerator
    model: torch.nn.Module  # wrapped by `accelerator.prepare`
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    data: PretrainingData
    plan: TrainingPlan
    progress: TrainingProgress
    geometry: DataGeometry  # how `data` is dealt into steps, recorded with every checkpoint


def run_pretraining(args: PretrainingArguments, config: VisMaeConfig | None = None) -> Path:
    """Pretrain and write a Transformers model directory; returns it. Collective: every process calls it."""
    return pretrain(args, config).output_dir


def pretrain(args: PretrainingArguments, config: VisMaeConfig | None = None) -> PretrainingResult:
    """`run_pretraining`, also returning the trained model held by this process and where training stopped.

    Args:
        args: the run; fields left unset come from the recipe (`PretrainingArguments.resolved`).
        config: the model of a new run (default: `args.config_fields()`); ignored with `--model-name-or-path`.
    """
    args = args.resolved()
    args.check()
    run = prepare_run(args, config)
    log = StepLog(run.accelerator, args, run.plan, run.progress, run.data.images)
    try:
        final_loss = train(run, log)
    finally:
        log.close()  # ends the progress bar's line, so a stop's one-line error starts a line of its own
    accelerator = run.accelerator
    finished = accelerator.unwrap_model(run.model, keep_torch_compile=False)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_outputs(finished, run.data, args, run.plan, run.progress, final_loss, accelerator)
    accelerator.wait_for_everyone()
    if args.push_to_hub and accelerator.is_main_process:
        push_pretrained_model(Path(args.output_dir), args)
    accelerator.end_training()
    return PretrainingResult(Path(args.output_dir), finished, run.progress)


def prepare_run(args: PretrainingArguments, config: VisMaeConfig | None) -> PretrainingRun:
    """Data, model, optimiser and schedule of resolved `args`, prepared by Accelerate and resumed if asked. Fails
    here, before any step, on an empty or unreadable dataset or a checkpoint it cannot resume; a checkpoint of
    another format is refused before anything is loaded."""
    resumed = None
    if args.resume_from_checkpoint:
        checkpoint = resolve_resume_checkpoint(args.output_dir, args.resume_from_checkpoint)
        resumed = checkpoint, *read_checkpoint(checkpoint)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to,
        project_dir=args.output_dir,
    )
    if args.checkpointing_steps or resumed:
        require_checkpoint_support(accelerator)
    set_seed(args.seed)  # identical initial weights on every process (DDP also broadcasts them)
    images = load_pretraining_images(args.dataset, args.modality)
    model = build_model(args, config)
    processor = args.recipe.image_processor(args.image_size, num_channels=model.config.num_channels)
    data = build_pretraining_data(args, images, processor, model.config.mask_unit_size, accelerator)
    plan = plan_training(args, data.sampler.steps_per_epoch, accelerator.num_processes)
    geometry = DataGeometry(
        num_images=len(data.examples),
        global_batch_size=plan.global_batch_size,
        num_processes=accelerator.num_processes,
        per_device_train_batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
    )
    if resumed:
        check_resumable(*resumed, geometry)
    optimizer = build_optimizer(model, args, plan.learning_rate, accelerator.device)
    # The scheduler stays outside `prepare`: Accelerate would step it once per process per optimiser step.
    scheduler = build_scheduler(optimizer, args, plan)
    model, optimizer = accelerator.prepare(model, optimizer)
    run = PretrainingRun(args, accelerator, model, optimizer, scheduler, data, plan, TrainingProgress(), geometry)
    if resumed:
        checkpoint, run.progress, _ = resumed
        load_checkpoint(run, checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {run.progress.global_step} (epoch {run.progress.epoch}).")
    return run


def train(run: PretrainingRun, log: StepLog) -> float:
    """Optimiser steps from `run.progress` to the plan's last, checkpointing as asked; returns the last mean loss.
    Every pass over an epoch advances at least one step, or the run stops: the loop cannot spin."""
    args, accelerator, progress, plan = run.args, run.accelerator, run.progress, run.plan
    run.model.train()
    last_loss = float("nan")
    skipped = []  # unreadable rows of the step in progress, counted when it finishes
    while progress.global_step < plan.total_steps:
        epoch_start = (progress.epoch, progress.step_in_epoch, progress.global_step)
        run.data.sampler.set_epoch(progress.epoch, start_step=progress.step_in_epoch)
        for micro_step, batch in enumerate(run.data.loader):
            unreadable = unreadable_rows(accelerator, batch)
            if unreadable:
                handle_unreadable(run, log, unreadable)
                skipped += unreadable
            mean_loss = train_micro_step(run, micro_step % args.gradient_accumulation_steps, batch, len(unreadable))
            log.count_images(batch["pixel_values"].shape[0])
            if not accelerator.sync_gradients:
                continue
            progress.advance(plan.steps_per_epoch, plan.global_batch_size, skipped)
            skipped = []
            last_loss = mean_loss.item()
            log.record_step(progress, last_loss, run.scheduler.get_last_lr()[0])
            if args.checkpointing_steps and progress.global_step % args.checkpointing_steps == 0:
                save_checkpoint(run, args.output_dir, args.checkpoints_total_limit)
            if progress.global_step >= plan.total_steps:
                break
        if progress.global_step == epoch_start[2]:
            raise StalledEpochError(
                f"Epoch {epoch_start[0]} from its step {epoch_start[1]} yielded no optimiser step "
                f"({run.geometry.describe()}); training stopped at step {progress.global_step} instead of waiting "
                "for one that cannot come."
            )
    return last_loss


def train_micro_step(run: PretrainingRun, micro_index: int, batch: dict, unreadable: int = 0) -> torch.Tensor:
    """Forward and backward one micro-batch, of whose global micro-batch `unreadable` images are skipped; the
    optimiser and scheduler step when gradients sync. Returns the loss averaged over processes; raises
    `NonFiniteLossError` before applying a NaN or infinite one."""
    args, accelerator = run.args, run.accelerator
    with accelerator.accumulate(run.model):
        # Drop path draws from the global generator: seed it per step so resumed runs repeat it exactly.
        torch.manual_seed(derived_seed(args.seed, run.progress.global_step, micro_index, accelerator.process_index))
        pixel_values = batch["pixel_values"].to(accelerator.device, non_blocking=True)
        noise = batch["noise"].to(accelerator.device, non_blocking=True)
        outputs = run.model(pixel_values, noise=noise)
        loss = outputs.loss
        if unreadable:
            model = accelerator.unwrap_model(run.model, keep_torch_compile=False)
            loss = readable_loss(model, outputs, pixel_values, batch["readable"], unreadable, accelerator.num_processes)
        # Every process must see the same verdict, or the healthy ones would wait in the next all-reduce.
        mean_loss = accelerator.reduce(loss.detach(), reduction="mean")
        if not torch.isfinite(mean_loss):
            stop_on_non_finite_loss(run, mean_loss.item())
        accelerator.backward(loss)
        if accelerator.sync_gradients and args.max_grad_norm:
            accelerator.clip_grad_norm_(run.model.parameters(), args.max_grad_norm)
        run.optimizer.step()
        if accelerator.sync_gradients:
            run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    return mean_loss


def stop_on_non_finite_loss(run: PretrainingRun, loss: float) -> None:
    """Collective: save the state before this step, then raise naming the step and that checkpoint."""
    progress = run.progress
    saved = save_before_stop(run, run.args.output_dir)
    raise NonFiniteLossError(
        f"The loss became {loss} at step {progress.global_step + 1} (epoch {progress.epoch}); training stopped before "
        f"applying it. {saved} Lower --learning-rate, use --max-grad-norm or bf16 instead of fp16, or check the data."
    )


def push_pretrained_model(output_dir: Path, args: PretrainingArguments) -> None:
    """Export the run as a Hub repository (card, remote code, variant processor), validate it, push it."""

    publish_run(output_dir, args.hub_variant or args.modality, args.hub_model_id, output_dir / "hub_repository")


__all__ = ["NonFiniteLossError", "PretrainingArguments", "PretrainingResult", "pretrain", "run_pretraining"]
