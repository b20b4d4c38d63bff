"""The optimiser and learning-rate schedule of a pretraining run, and the step counts they are set for.

AdamW over the parameter groups of the one weight-decay rule (`vis_mae_hf.app.weight_decay`), and the recipe's
Transformers scheduler (`cosine`: per-step linear warmup, then a half-cycle cosine to 0 at the last step), the same
one the fine-tuning Trainer builds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import get_scheduler

from ..weight_decay import parameter_groups
from .arguments import PretrainingArguments


@dataclass(frozen=True)
class TrainingPlan:
    """How long and at what rate a run trains, fixed before its first step."""

    global_batch_size: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    learning_rate: float  # the peak, after --scale-lr-with-batch


def plan_training(args: PretrainingArguments, steps_per_epoch: int, num_processes: int) -> TrainingPlan:
    """Steps and peak learning rate of resolved `args` when an epoch is `steps_per_epoch` optimiser steps."""
    global_batch_size = args.per_device_train_batch_size * num_processes * args.gradient_accumulation_steps
    learning_rate = args.learning_rate
    if args.scale_lr_with_batch:
        learning_rate *= global_batch_size / args.recipe.reference_global_batch
    warmup_steps = args.warmup_steps
    if warmup_steps is None:
        warmup_steps = round(args.warmup_epochs * steps_per_epoch)
    return TrainingPlan(
        global_batch_size=global_batch_size,
        steps_per_epoch=steps_per_epoch,
        total_steps=args.max_steps or math.ceil(args.num_train_epochs * steps_per_epoch),
        warmup_steps=warmup_steps,
        learning_rate=learning_rate,
    )


def build_optimizer(
    model: torch.nn.Module, args: PretrainingArguments, learning_rate: float, device: torch.device
) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        parameter_groups(model, args.weight_decay, args.decay_norms_and_biases),
        lr=learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        # One fused kernel per step instead of a chain of multi-tensor ones (Trainer's default `adamw_torch_fused`).
        fused=fused_adamw_supported(device),
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, args: PretrainingArguments, plan: TrainingPlan
) -> torch.optim.lr_scheduler.LambdaLR:
    """The recipe's Transformers scheduler over `plan.total_steps`, stepped once per optimiser step."""
    return get_scheduler(args.recipe.lr_scheduler_type, optimizer, plan.warmup_steps, plan.total_steps)


def fused_adamw_supported(device: torch.device) -> bool:
    """Whether `torch.optim.AdamW(fused=True)` runs on `device` (CUDA, and CPU in recent torch)."""
    try:
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1, device=device))], fused=True)
    except (RuntimeError, ValueError):
        return False
    return True
