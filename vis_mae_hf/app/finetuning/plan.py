"""What a fine-tuning run is about to do, printed before its first step: the steps and epochs, the batch per device,
process and step, the input size, device and precision, what trains, and where checkpoints go with their size.

A `--dataset` run without schedule options is the published recipe (150 epochs of batch 32 at 320 px for
segmentation); on a CPU that is days of work, so the plan says so and how to ask for a trial run instead.

Checkpoint sizes are estimates from the model in memory: the weights Trainer saves (a PEFT model saves its adapter
and head only) in their dtype, plus AdamW's two moment tensors per trainable parameter in float32 unless
`--save-only-model`. Trainer also writes small files beside them (scheduler, RNG state, trainer state).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback, TrainingArguments

from .tuning import is_lora_model

_ADAMW_MOMENTS = 2  # exp_avg and exp_avg_sq, float32, per trainable parameter


@dataclass(frozen=True)
class CheckpointSizes:
    """Bytes of one checkpoint (weights, optimiser state) and of the final model folder."""

    weights: int
    optimizer: int | None  # None: not estimated (an optimiser other than AdamW)
    final_model: int

    @property
    def checkpoint(self) -> int:
        return self.weights + (self.optimizer or 0)


def checkpoint_sizes(model: torch.nn.Module, training_args: TrainingArguments) -> CheckpointSizes:
    """The estimate described in the module docstring."""
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if is_lora_model(model):
        # The adapter and the trained head copies are saved; the plain model saved at the end has the base's size.
        weights = sum(parameter.numel() * parameter.element_size() for parameter in trainable)
        final = _state_bytes(model.get_base_model(), skip=(".lora_", ".modules_to_save."))
    else:
        weights = final = _state_bytes(model)
    optimizer = None
    if training_args.save_only_model:
        optimizer = 0
    elif option_value(training_args.optim).startswith("adamw"):
        optimizer = _ADAMW_MOMENTS * 4 * sum(parameter.numel() for parameter in trainable)
    return CheckpointSizes(weights, optimizer, final)


def _state_bytes(model: torch.nn.Module, skip: tuple[str, ...] = ()) -> int:
    return sum(
        tensor.numel() * tensor.element_size()
        for name, tensor in model.state_dict().items()
        if not any(part in name for part in skip)
    )


def option_value(value) -> str:
    """A TrainingArguments option as the user writes it (`epoch`, not `SaveStrategy.EPOCH`)."""
    return str(getattr(value, "value", value))


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 10e6 else f"{size / 1e6:,.0f} MB"


@dataclass(frozen=True)
class RunFacts:
    """What the plan says besides Trainer's own state: set when the run is built."""

    num_train_examples: int
    image_size: int
    tuning_line: str
    sizes: CheckpointSizes
    keep_checkpoints: bool
    save_model: bool
    published_schedule: bool  # the published recipe's schedule, no schedule option given


def format_plan(facts: RunFacts, args: TrainingArguments, max_steps: int, num_train_epochs: float) -> str:
    """The plan printed before the first step (see the module docstring)."""
    per_step = args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps
    epochs = max_steps * per_step / max(facts.num_train_examples, 1)
    schedule = f"--max-steps {args.max_steps}" if args.max_steps > 0 else f"{num_train_epochs:g} epochs"
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    lines = [
        f"Plan: {max_steps:,} optimiser steps ({schedule}; about {epochs:.3g} passes over {facts.num_train_examples:,} "
        f"training examples), batch {args.per_device_train_batch_size} per device x {args.world_size} process(es) x "
        f"{args.gradient_accumulation_steps} accumulation = {per_step} per step, {facts.image_size} px, on "
        f"{args.device.type} in {precision}, activation checkpointing {'on' if args.activation_checkpointing else 'off'}.",
        facts.tuning_line,
        _checkpoint_line(facts, args),
    ]
    if facts.save_model:
        lines.append(f"The best model is saved to {args.output_dir} ({megabytes(facts.sizes.final_model)}).")
    if facts.published_schedule and args.device.type == "cpu":
        lines.append(
            "Note: this is the published recipe's full schedule, on a CPU: expect days. For a trial run give "
            "--max-steps N (and a smaller --image-size); on a GPU see --bf16, --gradient-accumulation-steps and "
            "--gradient-checkpointing."
        )
    return "\n".join(lines)


def _checkpoint_line(facts: RunFacts, args: TrainingArguments) -> str:
    strategy = option_value(args.save_strategy)
    if strategy == "no":
        return "Checkpoints: none (--save-strategy no)."
    every = f"every {args.save_steps:g} steps" if strategy == "steps" else f"every {strategy}"
    sizes = facts.sizes
    if sizes.optimizer is None:
        size = f"{megabytes(sizes.weights)} of weights plus the {option_value(args.optim)} state"
    elif sizes.optimizer:
        size = f"about {megabytes(sizes.checkpoint)} each (weights {megabytes(sizes.weights)}, optimiser state " \
               f"{megabytes(sizes.optimizer)})"
    else:
        size = f"about {megabytes(sizes.weights)} each (weights only: --save-only-model, not resumable)"
    kept = f"at most {args.save_total_limit} kept" if args.save_total_limit else "all kept"
    if args.load_best_model_at_end and args.save_total_limit:
        kept += ", and the best when it is another"
    if not facts.keep_checkpoints:
        end = "removed once the run ends (--keep-checkpoints keeps them)"
    elif args.save_total_limit == 1 and args.load_best_model_at_end:
        end = "the best kept after the run"  # Trainer removes the newest at the end when the limit is 1
    else:
        end = "kept after the run"
    return f"Checkpoints: {every} to {Path(args.output_dir) / 'checkpoint-<step>'}, {size}; {kept}; {end}."


class PlanCallback(TrainerCallback):
    """Prints `format_plan` once, on the main process, when Trainer has counted the steps and before the first."""

    def __init__(self, facts: RunFacts, *, verbose: bool = True):
        self.facts = facts
        self.verbose = verbose
        self.plan = None  # the text, also for the run's summary

    def on_train_begin(self, args, state, control, **kwargs):
        self.plan = format_plan(self.facts, args, state.max_steps, state.num_train_epochs)
        if self.verbose and state.is_world_process_zero:
            print(self.plan, flush=True)


__all__ = ["CheckpointSizes", "PlanCallback", "RunFacts", "checkpoint_sizes", "format_plan"]
