"""The options of one fine-tuning run: the task's own (`FinetuningArguments`) and every `transformers.TrainingArguments`
option, where the recipe table and the package's defaults fill only what the user did not set.

The command parses both dataclasses together (`HfArgumentParser((FinetuningArguments, TrainingArguments))`):
- `FinetuningArguments` holds what Transformers has no word for: the dataset, fold and label fraction, the
  initialisation, the input size, the tuning mode and its LoRA settings, augmentation, metric pooling.
- `TrainingArguments` holds the rest, unchanged: schedule, batch, optimiser, precision (`--bf16`), accumulation,
  activation checkpointing (`--gradient_checkpointing`, which calls the model's `activation_checkpointing_enable`),
  resuming (`--resume_from_checkpoint`), logging, Hub push, DeepSpeed and FSDP.

A `TrainingArguments` instance cannot say which of its values the user chose (every field has a default), so the
options the user set travel as a mapping, `training_options` (field name -> value; on the command line: the options
given there). `finetuning_training_arguments` builds the run's `TrainingArguments` from it: a given option always
wins; an option not given takes the recipe's value (`RECIPE_TRAINING_FIELDS`), else the package's default
(`package_defaults`, each with its reason), else Transformers' own.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from ...data.loading import DEMO_NAMES
from ...metrics.segmentation import POOLINGS
from ...recipes import Recipe, get_recipe
from ...vocabulary import CLASSIFICATION, FINETUNING_TASKS, MULTILABEL, SEGMENTATION
from ..recipe_defaults import recipe_default_help, recipe_option, with_recipe_defaults
from .tuning import LORA_TARGETS, TUNING_MODES, LoraSettings

DEFAULT_OUTPUT_DIRS = {
    SEGMENTATION: "outputs/vis-mae-finetune-segmentation",
    CLASSIFICATION: "outputs/vis-mae-finetune-classification",
}
BEST_METRICS = {SEGMENTATION: "dice_mean", CLASSIFICATION: "roc_auc", MULTILABEL: "roc_auc"}
TRAINING_FIELDS = frozenset(field.name for field in dataclasses.fields(TrainingArguments) if field.init)
# TrainingArguments fields named as the `Recipe` attributes they default to.
RECIPE_TRAINING_FIELDS = (
    "num_train_epochs",
    "per_device_train_batch_size",
    "learning_rate",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "lr_scheduler_type",
)
# Where the newest checkpoint is found when resuming (`--resume-from-checkpoint latest`), as pretraining spells it.
RESUME_LATEST = "latest"


def _option(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


def _from_recipe(name: str, help_text: str = ""):
    return recipe_option(name, FINETUNING_TASKS, help_text)


@dataclass
class FinetuningArguments:
    """The task's own options of one fine-tuning run (the schedule, batch, optimiser and everything else Trainer does
    are `TrainingArguments` options). Recipe values are quoted segmentation / classification."""

    dataset: str | None = _option(
        None,
        "A `vis-mae data convert` output, a save_to_disk directory or a cached Hub dataset id. Default: the built-in "
        "demo of the task with its demo recipe.",
    )
    init: str = _option(
        "random", "vismae:<checkpoint dir or repo id>, random, or swin:<Swin checkpoint dir or repo id>."
    )
    fold: int = _option(0, "Held-out (validation) fold.")
    label_fraction: float = _option(1.0, "Fraction of the fold's training patients, in (0, 1].")
    class_names: str | None = _option(
        None, "Comma-separated class names (segmentation: background first), for sets that do not store them."
    )
    image_size: int | None = _from_recipe("image_size", "Square input size, a multiple of 32.")
    warmup_epochs: float | None = _from_recipe(
        "warmup_epochs", "Linear warmup, in epochs of the schedule (--warmup-steps instead counts steps)."
    )
    decay_norms_and_biases: bool | None = _from_recipe(
        "decay_norms_and_biases",
        "Weight decay on every parameter, as published; false exempts what the model's no_weight_decay() names "
        "(norms, biases, mask token, position bias tables).",
    )
    tuning: str = _option(
        "full",
        "Which weights train: full (all of them, as published), linear_probe (the encoder frozen; segmentation "
        "trains the decoder and head, classification the pooling norm and the classifier) or lora (PEFT LoRA "
        "adapters on the encoder's attention and MLP projections, the task head trained whole; the adapter is saved "
        "in <output-dir>/adapter and merged into the plain model saved in <output-dir>).",
    )
    lora_rank: int = _option(8, "LoRA rank r (with --tuning lora).")
    lora_alpha: float = _option(16.0, "LoRA alpha: the update is scaled by alpha / rank (with --tuning lora).")
    lora_dropout: float = _option(0.0, "Dropout on the LoRA input (with --tuning lora).")
    lora_target_modules: str = _option(
        ",".join(LORA_TARGETS),
        "Comma-separated projections of every encoder block that get LoRA adapters: qkv and projection (attention), "
        "fc1 and fc2 (MLP).",
    )
    augment: bool = _option(True, "The published training augmentation.")
    early_stopping_patience: int | None = _option(
        None, "Stop after this many evaluations without improvement (off by default)."
    )
    metric_pooling: str = _option(
        "per_image", "Segmentation metric pooling: per_image, per_volume (by case_id) or global."
    )
    config_overrides: str | None = _option(None, 'JSON of VisMaeConfig fields, e.g. \'{"drop_path_rate": 0.2}\'.')
    max_train_examples: int | None = _option(None, "Use only the first N training rows (quick checks).")
    max_eval_examples: int | None = _option(None, "Use only the first N validation rows.")
    save_model: bool = _option(True, "Save the best model and processor to the output directory.")
    keep_checkpoints: bool = _option(
        False,
        "Keep the checkpoint-* folders after a finished run. They exist to resume an interrupted run and to reload "
        "the best model, both done once the run ends, and each holds the optimiser state (twice the weights); the "
        "best model itself is saved in the output directory.",
    )

    def __post_init__(self):
        if self.tuning not in TUNING_MODES:
            raise ValueError(f"--tuning must be one of {', '.join(TUNING_MODES)}, got {self.tuning!r}.")
        if self.metric_pooling not in POOLINGS:
            raise ValueError(f"--metric-pooling must be one of {', '.join(POOLINGS)}, got {self.metric_pooling!r}.")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ValueError(f"--label-fraction must lie in (0, 1] (0.05 means 5 %), got {self.label_fraction}.")
        self.lora_settings()  # refuse a bad rank or target now, not after loading the data

    def recipe(self, task: str) -> Recipe:
        """The task's published recipe with a --dataset, its demo recipe with the built-in demo."""
        return get_recipe(task, demo=self.dataset in DEMO_NAMES)

    def resolved(self, task: str) -> FinetuningArguments:
        """These arguments with every field left unset taken from `recipe(task)`."""
        return with_recipe_defaults(self, self.recipe(task))

    def parsed_config_overrides(self) -> dict:
        overrides = json.loads(self.config_overrides) if self.config_overrides else {}
        if not isinstance(overrides, dict):
            raise ValueError(
                f"--config-overrides must be a JSON object of VisMaeConfig fields, got {self.config_overrides!r}."
            )
        return overrides

    def parsed_class_names(self) -> list[str] | None:
        return [name.strip() for name in self.class_names.split(",")] if self.class_names else None

    def lora_settings(self) -> LoraSettings:
        return LoraSettings.parse(self.lora_rank, self.lora_alpha, self.lora_dropout, self.lora_target_modules)


def finetuning_training_arguments(
    args: FinetuningArguments, task: str, training_options: Mapping[str, Any] | None = None
) -> TrainingArguments:
    """The `TrainingArguments` of a run of `task`: the options the user set (`training_options`, any
    `TrainingArguments` field) as given, the others from the recipe, then from `package_defaults`."""
    options = dict(training_options or {})
    unknown = sorted(set(options) - TRAINING_FIELDS)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not transformers.TrainingArguments options.")
    if options.get("remove_unused_columns"):
        raise ValueError(
            "--remove-unused-columns must stay false here: the transforms read the `image` and `mask` columns, which "
            "the model's forward does not name, and Trainer would drop them first."
        )
    if options.get("label_names") not in (None, ["labels"]):
        raise ValueError(
            f"--label-names {' '.join(map(str, options['label_names']))}: that is Trainer's list of the input keys "
            "holding the targets, which is always `labels` here; give class names with --class-names."
        )
    recipe = args.recipe(task)
    values = {name: getattr(recipe, name) for name in RECIPE_TRAINING_FIELDS if name not in options}
    if "warmup_steps" not in options:
        values["warmup_steps"] = warmup_share(args, recipe, options.get("num_train_epochs"))
    elif args.warmup_epochs is not None:
        raise ValueError("Give --warmup-epochs or --warmup-steps, not both.")
    values.update({name: value for name, value in package_defaults(task, options).items() if name not in options})
    values.update(options)
    values.setdefault("per_device_eval_batch_size", values["per_device_train_batch_size"])
    return TrainingArguments(**values)


def warmup_share(args: FinetuningArguments, recipe: Recipe, num_train_epochs: float | None) -> float:
    """`warmup_steps` as a fraction of the run's steps (< 1), so the warmup keeps its share of a --max-steps run.

    --warmup-epochs given: that many of the run's epochs. Not given: the recipe's share of its schedule (40 of 150
    epochs published), also when --num-train-epochs changes the schedule's length."""
    if args.warmup_epochs is None:
        return recipe.warmup_ratio
    epochs = recipe.num_train_epochs if num_train_epochs is None else num_train_epochs
    if not 0 <= args.warmup_epochs < epochs:
        raise ValueError(
            f"--warmup-epochs {args.warmup_epochs:g} must lie in [0, {epochs:g}), below the schedule's epochs "
            f"(--num-train-epochs {epochs:g})."
        )
    return args.warmup_epochs / epochs


def package_defaults(task: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The package's own defaults of `TrainingArguments` options, each for a reason (`options`: those the user set)."""
    eval_steps = options.get("eval_steps")
    eval_strategy = options.get("eval_strategy", "steps" if eval_steps is not None else "epoch")
    keeps_best = str(getattr(eval_strategy, "value", eval_strategy)) != "no"  # a string or an IntervalStrategy
    return {
        "output_dir": DEFAULT_OUTPUT_DIRS[SEGMENTATION if task == SEGMENTATION else CLASSIFICATION],
        # Evaluate and checkpoint together (every epoch, or every --eval-steps), so the best checkpoint is kept.
        "eval_strategy": eval_strategy,
        "save_strategy": options.get("save_strategy", eval_strategy),
        **({"save_steps": eval_steps} if eval_steps is not None else {}),
        "load_best_model_at_end": keeps_best,
        "metric_for_best_model": BEST_METRICS[task],
        "greater_is_better": True,
        # The newest checkpoint (to resume from) and, with load_best_model_at_end, the best one when it is another:
        # at most two on disk. Both keep the optimiser state, so an interrupted run resumes; a finished run removes
        # them (FinetuningArguments.keep_checkpoints).
        "save_total_limit": 1,
        "logging_steps": 10,
        "seed": 0,  # every run of the package, the demo table included, is seeded 0 unless told otherwise
        "remove_unused_columns": False,  # the transforms read `image` / `mask`, which forward() does not name
        "dataloader_pin_memory": has_accelerator(),  # pinning without an accelerator only warns
    }


def training_default_help(name: str) -> str | None:
    """`Default: ...` for a `TrainingArguments` option this command fills, or None (Transformers' default holds)."""
    if name in RECIPE_TRAINING_FIELDS:
        return recipe_default_help(name, FINETUNING_TASKS)
    return {
        "warmup_steps": "Default: the recipe's warmup share of the schedule (--warmup-epochs).",
        "output_dir": "Default: outputs/vis-mae-finetune-<task>.",
        "eval_strategy": "Default: epoch (steps with --eval-steps).",
        "save_strategy": "Default: the evaluation strategy (the best checkpoint is kept).",
        "save_steps": "Default: --eval-steps.",
        "load_best_model_at_end": "Default: true (false with --eval-strategy no).",
        "metric_for_best_model": "Default: dice_mean (segmentation) / roc_auc (classification).",
        "greater_is_better": "Default: true.",
        "save_total_limit": "Default: 1 (the newest checkpoint, and the best when it is another).",
        "logging_steps": "Default: 10.",
        "seed": "Default: 0.",
        "remove_unused_columns": "Must stay false (the transforms read image and mask columns).",
        "dataloader_pin_memory": "Default: true with an accelerator, else false.",
        "per_device_eval_batch_size": "Default: the training batch size.",
        "resume_from_checkpoint": f"A checkpoint folder, or {RESUME_LATEST} for the newest in --output-dir.",
    }.get(name)


def resume_checkpoint(training_args: TrainingArguments) -> str | None:
    """The checkpoint folder of --resume-from-checkpoint (`latest`: the newest in --output-dir), for
    `Trainer.train(resume_from_checkpoint=...)`: Trainer does not read the option itself."""
    from transformers.trainer_utils import get_last_checkpoint

    value = training_args.resume_from_checkpoint
    if value != RESUME_LATEST:
        return value
    newest = get_last_checkpoint(training_args.output_dir) if Path(training_args.output_dir).is_dir() else None
    if newest is None:
        raise FileNotFoundError(
            f"--resume-from-checkpoint {RESUME_LATEST}: {training_args.output_dir} holds no checkpoint-<step> folder "
            "to resume from (a finished run removes its checkpoints unless --keep-checkpoints)."
        )
    return newest


def has_accelerator() -> bool:
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


__all__ = [
    "BEST_METRICS",
    "FinetuningArguments",
    "TRAINING_FIELDS",
    "finetuning_training_arguments",
    "training_default_help",
]
