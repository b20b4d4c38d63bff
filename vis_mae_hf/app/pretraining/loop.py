"""VIS-MAE pretraining with Accelerate: one process or many, resumable, stopping cleanly on a non-finite loss.

The published script never wrapped its model in DDP and never reshuffled per epoch, so 8 GPUs trained 8 unrelated
replicas on the same order. Here the model goes through `accelerator.prepare` (DDP, FSDP or DeepSpeed as configured
with `accelerate config`), every process draws a different shard of a per-epoch permutation, and each example's flip
and mask are functions of (seed, epoch, index) so that the number of processes does not change what is learned.

Recipe defaults (`--dataset` given): the published ones, AdamW betas (0.9, 0.95), weight decay 0.05 on *all*
parameters (the published optimiser did not exempt norms and biases; `--no_decay_norms_and_biases` follows MAE/timm
instead), lr 1e-3 for the published global batch of 5120 (640 x 8 GPUs), not rescaled unless `--scale_lr_with_batch`
(then lr x global_batch / 5120), per-step linear warmup for 10 epochs, half-cycle cosine to 0 at 800 epochs.
Without `--dataset`, the built-in demo corpus and a schedule of a few minutes on a laptop CPU (48 steps of batch 8 at
lr 3e-4).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ... import __version__
from ...configuration_vis_mae import VisMaeConfig
from ...data.loading import load_pretraining_images, modality_counts
from ...image_processing_vis_mae import PRETRAINING_MEAN, PRETRAINING_STD
from ...inference.reconstruction import reconstruction_grid
from ...modeling_vis_mae import VisMaeForPreTraining
from ...recipes import get_recipe
from ...vocabulary import CORPUS_SELECTIONS, PRETRAINING
from .checkpoints import (
    TrainingProgress,
    read_progress,
    resolve_resume_checkpoint,
    save_checkpoint,
)
from .examples import PretrainingExamples, check_readable
from .sampler import EpochShardSampler, derived_seed
from .schedule import warmup_cosine_schedule

PUBLISHED_GLOBAL_BATCH = 5120  # 640 per GPU x 8 GPUs

# What an empty command line runs: the demo corpus, sized to finish in a few minutes on 2 CPU cores.
# Its lr is lower than the published 1e-3, which was set for a global batch of 5120: at batch 8 and 48 steps, 1e-3
# collapses to predicting the mean image, 3e-4 learns the outlines (loss 2.0 -> 1.0).
DEMO_SCHEDULE = {"num_train_epochs": 8.0, "warmup_epochs": 1.0, "per_device_train_batch_size": 8, "learning_rate": 3e-4}
PUBLISHED_SCHEDULE = {"num_train_epochs": 800.0, "warmup_epochs": 10.0, "per_device_train_batch_size": 640, "learning_rate": 1e-3}


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the checkpoint saved before it."""


@dataclass
class PretrainingArguments:
    output_dir: str = field(default="outputs/vis-mae-pretrain", metadata={"help": "Where the model, checkpoints and pictures go."})
    dataset: str | None = field(
        default=None,
        metadata={"help": "A corpus folder (`vis-mae data corpus`), a saved dataset, parquet files or an image "
                  "folder. Default: the built-in demo corpus with a short schedule."},
    )
    modality: str = field(default="generic", metadata={"help": f"Train on one modality's images: {', '.join(CORPUS_SELECTIONS)}."})
    image_size: int = field(default=224, metadata={"help": "Square input size (a multiple of 32)."})
    config_overrides: str | None = field(
        default=None, metadata={"help": 'JSON of VisMaeConfig fields, e.g. \'{"embed_dim": 48}\'. Default: the published model.'}
    )
    model_name_or_path: str | None = field(default=None, metadata={"help": "Continue pretraining from these weights."})
    num_train_epochs: float | None = field(default=None, metadata={"help": "Default 800 (published) or 8 (demo)."})
    max_steps: int | None = field(default=None, metadata={"help": "Optimiser steps; overrides num_train_epochs."})
    warmup_epochs: float | None = field(default=None, metadata={"help": "Default 10 (published) or 1 (demo)."})
    warmup_steps: int | None = field(default=None, metadata={"help": "Overrides warmup_epochs."})
    per_device_train_batch_size: int | None = field(default=None, metadata={"help": "Default 640 (published) or 8 (demo)."})
    gradient_accumulation_steps: int = 1
    learning_rate: float | None = field(default=None, metadata={"help": "Peak lr. Default 1e-3 (published) or 3e-4 (demo)."})
    scale_lr_with_batch: bool = field(default=False, metadata={"help": "lr x global_batch / 5120 (the published batch)."})
    weight_decay: float = 0.05
    no_decay_norms_and_biases: bool = field(default=False, metadata={"help": "Exempt norms, biases, mask token and position biases from weight decay."})
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    max_grad_norm: float | None = field(default=None, metadata={"help": "Clip gradients (off in the published recipe)."})
    horizontal_flip: bool = True
    mixed_precision: str | None = field(default=None, metadata={"help": "no, fp16 or bf16; default: what `accelerate launch` says."})
    seed: int = 0
    dataloader_num_workers: int = 0
    activation_checkpointing: str | None = field(
        default=None,
        metadata={"help": "Recompute activations in the backward pass to save memory: 'all' blocks, or comma-separated "
                  "module paths whose blocks are recomputed, e.g. 'decoder.stages.2' (the finest decoder stage)."},
    )
    checkpointing_steps: int | None = field(default=None, metadata={"help": "Save a resumable checkpoint every N steps."})
    checkpoints_total_limit: int | None = field(default=2, metadata={"help": "Keep only the last N checkpoints."})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint folder."})
    logging_steps: int = 10
    report_to: str | None = field(default=None, metadata={"help": "Accelerate trackers: tensorboard, wandb, all, ..."})
    reconstruction_images: int = field(default=4, metadata={"help": "Rows of the reconstruction picture."})
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_variant: str | None = field(default=None, metadata={"help": "Hub variant: generic, ct, mr, pet, xray, us (default: --modality)."})

    def resolved(self) -> PretrainingArguments:
        """Fill unset schedule fields from the demo or the published recipe."""
        preset = DEMO_SCHEDULE if self.dataset is None else PUBLISHED_SCHEDULE
        values = asdict(self)
        for key, value in preset.items():
            if values[key] is None:
                values[key] = value
        return PretrainingArguments(**values)


def parameter_groups(model: torch.nn.Module, weight_decay: float, exempt_norms_and_biases: bool) -> list[dict]:
    if not exempt_norms_and_biases:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        exempt = parameter.ndim <= 1 or name.endswith(("mask_token", "relative_position_bias_table"))
        (no_decay if exempt else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_model(args: PretrainingArguments, config: VisMaeConfig | None) -> VisMaeForPreTraining:
    if args.model_name_or_path:
        return VisMaeForPreTraining.from_pretrained(args.model_name_or_path, dtype=torch.float32)
    if config is None:
        overrides = json.loads(args.config_overrides) if args.config_overrides else {}
        config = VisMaeConfig(image_size=args.image_size, **overrides)
    return VisMaeForPreTraining(config)


@dataclass
class PretrainingResult:
    output_dir: Path
    model: VisMaeForPreTraining  # unwrapped, on every process
    progress: TrainingProgress


def run_pretraining(args: PretrainingArguments, config: VisMaeConfig | None = None) -> Path:
    """Pretrain and write a Transformers model directory; returns it. Collective: every process calls it."""
    return pretrain(args, config).output_dir


def pretrain(args: PretrainingArguments, config: VisMaeConfig | None = None) -> PretrainingResult:
    """`run_pretraining`, also returning the trained model held by this process and where training stopped."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    args = args.resolved()
    check_hub_arguments(args)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to,
        project_dir=str(output_dir),
    )
    set_seed(args.seed)  # identical initial weights on every process (DDP also broadcasts them)

    # ---- data: fails here, before any step, if empty or unreadable
    images = load_pretraining_images(args.dataset, args.modality)
    model = build_model(args, config)
    config = model.config
    if args.activation_checkpointing == "all":
        model.activation_checkpointing_enable()
    elif args.activation_checkpointing:
        model.checkpoint_blocks([path.strip() for path in args.activation_checkpointing.split(",")])
    processor = get_recipe(PRETRAINING).image_processor(args.image_size, num_channels=config.num_channels)
    units_per_side = args.image_size // config.mask_unit_size
    examples = PretrainingExamples(images, processor, units_per_side**2, args.seed, args.horizontal_flip)
    check_readable(examples, args.dataset or "the built-in demo corpus")
    sampler = EpochShardSampler(
        len(examples),
        args.per_device_train_batch_size,
        accelerator.num_processes,
        accelerator.process_index,
        seed=args.seed,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
    )
    loader = DataLoader(
        examples,
        batch_size=args.per_device_train_batch_size,
        sampler=sampler,
        num_workers=args.dataloader_num_workers,
        # Workers survive epochs (the sampler runs in this process, so reshuffling still reaches them).
        persistent_workers=args.dataloader_num_workers > 0,
        pin_memory=accelerator.device.type == "cuda",
    )

    # ---- schedule
    global_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    steps_per_epoch = sampler.steps_per_epoch
    total_steps = args.max_steps or math.ceil(args.num_train_epochs * steps_per_epoch)
    warmup_steps = args.warmup_steps if args.warmup_steps is not None else round(args.warmup_epochs * steps_per_epoch)
    learning_rate = args.learning_rate * (global_batch / PUBLISHED_GLOBAL_BATCH if args.scale_lr_with_batch else 1.0)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, args.weight_decay, args.no_decay_norms_and_biases),
        lr=learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        # One fused kernel per step instead of a chain of multi-tensor ones (Trainer's default `adamw_torch_fused`).
        fused=fused_adamw_supported(accelerator.device),
    )
    # The scheduler stays outside `prepare`: Accelerate would step it once per process per optimiser step.
    scheduler = warmup_cosine_schedule(optimizer, warmup_steps, total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    progress = TrainingProgress()
    if args.resume_from_checkpoint:
        checkpoint = resolve_resume_checkpoint(output_dir, args.resume_from_checkpoint)
        accelerator.load_state(str(checkpoint))
        progress = read_progress(checkpoint)
        accelerator.print(f"Resumed from {checkpoint} at step {progress.global_step} (epoch {progress.epoch}).")

    run_settings = {
        **{k: v for k, v in asdict(args).items() if v is not None},
        "num_processes": accelerator.num_processes,
        "global_batch_size": global_batch,
        "effective_learning_rate": learning_rate,
        "total_steps": total_steps,
        "warmup_steps": warmup_steps,
        "steps_per_epoch": steps_per_epoch,
        "num_images": len(images),
    }
    if args.report_to:
        accelerator.init_trackers("vis-mae-pretraining", config=run_settings)
    log_path = output_dir / "train_log.jsonl"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if not args.resume_from_checkpoint:
            log_path.unlink(missing_ok=True)  # a fresh run starts a fresh log; a resumed one appends
        accelerator.print(
            f"Pretraining on {len(images)} images ({modality_counts(images) or 'modality unknown'}), "
            f"{accelerator.num_processes} process(es), global batch {global_batch}, {total_steps} steps "
            f"({steps_per_epoch}/epoch), lr {learning_rate:g}, warmup {warmup_steps}."
        )

    bar = tqdm(total=total_steps, initial=progress.global_step, desc="pretraining", disable=not accelerator.is_local_main_process)
    model.train()
    last_loss = float("nan")
    window_start, window_images, window_losses = time.perf_counter(), 0, []
    while progress.global_step < total_steps:
        sampler.set_epoch(progress.epoch, start_step=progress.step_in_epoch)
        for micro_step, batch in enumerate(loader):
            with accelerator.accumulate(model):
                # Drop path draws from the global generator: seed it per step so resumed runs repeat it exactly.
                micro_index = micro_step % args.gradient_accumulation_steps
                torch.manual_seed(derived_seed(args.seed, progress.global_step, micro_index, accelerator.process_index))
                pixel_values = batch["pixel_values"].to(accelerator.device, non_blocking=True)
                noise = batch["noise"].to(accelerator.device, non_blocking=True)
                loss = model(pixel_values, noise=noise).loss
                # Every process must see the same verdict, or the healthy ones would wait in the next all-reduce.
                mean_loss = accelerator.reduce(loss.detach(), reduction="mean")
                if not torch.isfinite(mean_loss):
                    checkpoint = save_checkpoint(accelerator, output_dir, progress, keep_last=None)
                    raise NonFiniteLossError(
                        f"The loss became {mean_loss.item()} at step {progress.global_step + 1} (epoch "
                        f"{progress.epoch}); training stopped before applying it. The state before this step is in "
                        f"{checkpoint}. Lower --learning_rate, use --max_grad_norm or bf16 instead of fp16, or check the data."
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            window_images += pixel_values.shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            progress.global_step += 1
            progress.step_in_epoch += 1
            progress.images_seen += global_batch
            if progress.step_in_epoch == steps_per_epoch:
                progress.epoch += 1
                progress.step_in_epoch = 0
            last_loss = mean_loss.item()
            window_losses.append(last_loss)
            bar.update(1)
            if progress.global_step % args.logging_steps == 0 or progress.global_step == total_steps:
                elapsed = time.perf_counter() - window_start
                record = {
                    "step": progress.global_step,
                    "epoch": progress.epoch + progress.step_in_epoch / steps_per_epoch,
                    # mean over the steps since the last record: single small batches are noisy
                    "loss": sum(window_losses) / len(window_losses),
                    "learning_rate": scheduler.get_last_lr()[0],
                    "images_per_second": window_images / max(elapsed, 1e-9),
                }
                bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_second']:.1f}")
                if args.report_to:
                    accelerator.log(record, step=progress.global_step)
                if accelerator.is_main_process:
                    with log_path.open("a") as log:
                        log.write(json.dumps(record) + "\n")
                window_start, window_images, window_losses = time.perf_counter(), 0, []
            if args.checkpointing_steps and progress.global_step % args.checkpointing_steps == 0:
                save_checkpoint(accelerator, output_dir, progress, args.checkpoints_total_limit)
            if progress.global_step >= total_steps:
                break
    bar.close()

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        finished = accelerator.unwrap_model(model, keep_torch_compile=False)
        finished.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
        summary = {
            "modality": args.modality,
            "dataset": args.dataset or "built-in demo corpus",
            "modality_counts": modality_counts(images),
            "num_images": len(images),
            "global_steps": progress.global_step,
            "epochs": progress.epoch + progress.step_in_epoch / steps_per_epoch,
            "images_seen": progress.images_seen,
            "final_loss": last_loss,
            "recipe": {
                "optimizer": "AdamW",
                "betas": [args.adam_beta1, args.adam_beta2],
                "weight_decay": args.weight_decay,
                "weight_decay_on_norms_and_biases": not args.no_decay_norms_and_biases,
                "learning_rate": learning_rate,
                "schedule": "per-step linear warmup, then half-cycle cosine to 0",
                "warmup_steps": warmup_steps,
                "total_steps": total_steps,
                "global_batch_size": global_batch,
                "num_processes": accelerator.num_processes,
                "mixed_precision": accelerator.mixed_precision,
                "image_size": args.image_size,
                "mask_ratio": finished.config.mask_ratio,
                "mask_unit_size": finished.config.mask_unit_size,
                "augmentation": "resize, horizontal flip" if args.horizontal_flip else "resize",
                "normalization": f"mean {PRETRAINING_MEAN} / std {PRETRAINING_STD}",
                "seed": args.seed,
            },
            "package_version": __version__,
        }
        if args.dataset is None and "source_path" in images.column_names:
            from ...data.demo import demo_corpus_sources

            summary["sources"] = demo_corpus_sources(images["source_path"])
            summary["notes"] = [
                "Demonstration weights: a few minutes of pretraining on the built-in demo corpus, not the paper's "
                "2.5 M images. Its PET images are synthetic (FDG uptake simulated from the MNI152 tissue maps)."
            ]
        if args.model_name_or_path and not Path(args.model_name_or_path).exists():
            summary["base_model"] = args.model_name_or_path  # a Hub id the pretraining continued from
        (output_dir / "training_summary.json").write_text(json.dumps(summary, indent=1))
        save_reconstruction_picture(finished, examples, args, output_dir / "reconstruction.png", accelerator.device)
        accelerator.print(f"Saved the model, processor, training_summary.json and reconstruction.png to {output_dir}")
    accelerator.wait_for_everyone()
    if args.push_to_hub and accelerator.is_main_process:
        push_pretrained_model(output_dir, args)
    accelerator.end_training()
    return PretrainingResult(output_dir, accelerator.unwrap_model(model, keep_torch_compile=False), progress)


def save_reconstruction_picture(model, examples: PretrainingExamples, args, path: Path, device) -> None:
    """The first images of the data with fixed masks (epoch 0 keys), flips off: the same picture for the same run."""
    count = min(args.reconstruction_images, len(examples))
    flip, examples.horizontal_flip = examples.horizontal_flip, False
    items = [examples[(0, index)] for index in range(count)]
    examples.horizontal_flip = flip
    pixel_values = torch.stack([item["pixel_values"] for item in items]).to(device)
    noise = torch.stack([item["noise"] for item in items]).to(device)
    reconstruction_grid(model, pixel_values, noise, PRETRAINING_MEAN, PRETRAINING_STD).save(path)


def fused_adamw_supported(device: torch.device) -> bool:
    """Whether `torch.optim.AdamW(fused=True)` runs on `device` (CUDA, and CPU in recent torch)."""
    try:
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1, device=device))], fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


def check_hub_arguments(args: PretrainingArguments) -> None:
    """Fail before training, not after hours of it, when a push could not happen."""
    if args.push_to_hub and (not args.hub_model_id or "/" not in args.hub_model_id):
        raise ValueError(
            f"--push_to_hub needs --hub_model_id NAMESPACE/NAME (a user or organisation and a name), got {args.hub_model_id!r}."
        )


def push_pretrained_model(output_dir: Path, args: PretrainingArguments) -> None:
    """Export the run as a Hub repository (card, remote code, variant processor), validate it, push it."""
    from ..publishing import publish_run

    publish_run(output_dir, args.hub_variant or args.modality, args.hub_model_id, output_dir / "hub_repository")


__all__ = ["PretrainingArguments", "PretrainingResult", "run_pretraining", "pretrain", "NonFiniteLossError"]
