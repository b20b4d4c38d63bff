"""The arguments of a pretraining run (`HfArgumentParser` turns them into flags) and the checks made before any work.

Every schedule and optimiser field left unset comes from the recipe table: the published pretraining recipe with
`--dataset`, the short demo recipe without (the built-in demo corpus, a few minutes on a laptop CPU).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ...configuration_vis_mae import VisMaeConfig
from ...output_folders import check_folder_path
from ...recipes import Recipe, get_recipe
from ...vocabulary import CORPUS_SELECTIONS, GENERIC, PRETRAINING, corpus_selection
from ..recipe_defaults import recipe_option, with_recipe_defaults

STOP, SKIP = "stop", "skip"  # --on-bad-image
# Fields that must be >= 1 (those that may be None are checked when set), >= 0, or > 0 (floats, NaN refused).
_AT_LEAST_ONE = (
    "image_size", "per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps",
    "reconstruction_images", "max_steps", "checkpointing_steps", "checkpoints_total_limit",
)
_AT_LEAST_ZERO = ("seed", "dataloader_num_workers", "warmup_steps", "warmup_epochs", "weight_decay")
_ABOVE_ZERO = ("num_train_epochs", "learning_rate", "max_grad_norm")


def _option(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


def _from_recipe(name: str, help_text: str = ""):
    return recipe_option(name, (PRETRAINING,), help_text)


@dataclass
class PretrainingArguments:
    output_dir: str = _option("outputs/vis-mae-pretrain", "Where the model, checkpoints and pictures go.")
    dataset: str | None = _option(
        None,
        "A corpus folder (`vis-mae data corpus`), a saved dataset, parquet files or an image folder. Default: the "
        "built-in demo corpus with the demo recipe.",
    )
    modality: str = _option(GENERIC, f"Train on one modality's images: {', '.join(CORPUS_SELECTIONS)}.")
    image_size: int | None = _from_recipe("image_size", "Square input size (a multiple of 32).")
    config_overrides: str | None = _option(
        None, 'JSON of VisMaeConfig fields, e.g. \'{"embed_dim": 48}\'. Default: the published model.'
    )
    model_name_or_path: str | None = _option(None, "Continue pretraining from these weights.")
    num_train_epochs: float | None = _from_recipe("num_train_epochs")
    max_steps: int | None = _option(None, "Optimiser steps; overrides num_train_epochs.")
    warmup_epochs: float | None = _from_recipe("warmup_epochs")
    warmup_steps: int | None = _option(None, "Overrides warmup_epochs.")
    per_device_train_batch_size: int | None = _from_recipe("per_device_train_batch_size")
    gradient_accumulation_steps: int = 1
    learning_rate: float | None = _from_recipe("learning_rate", "Peak learning rate.")
    scale_lr_with_batch: bool = _option(
        False,
        f"lr x global batch / the global batch the recipe's lr was set for "
        f"({get_recipe(PRETRAINING).reference_global_batch} in the published recipe).",
    )
    weight_decay: float | None = _from_recipe("weight_decay", "AdamW weight decay.")
    decay_norms_and_biases: bool | None = _from_recipe(
        "decay_norms_and_biases",
        "Weight decay on every parameter, as published; false exempts what the model's no_weight_decay() names "
        "(norms, biases, mask token, position bias tables).",
    )
    adam_beta1: float | None = _from_recipe("adam_beta1")
    adam_beta2: float | None = _from_recipe("adam_beta2")
    max_grad_norm: float | None = _option(None, "Clip gradients (off in the published recipe).")
    horizontal_flip: bool = True
    mixed_precision: str | None = _option(None, "no, fp16 or bf16; default: what `accelerate launch` says.")
    seed: int = 0
    dataloader_num_workers: int = 0
    activation_checkpointing: str | None = _option(
        None,
        "Recompute activations in the backward pass to save memory: 'all' blocks, or comma-separated module paths "
        "whose blocks are recomputed, e.g. 'decoder.stages.2' (the finest decoder stage).",
    )
    checkpointing_steps: int | None = _option(None, "Save a resumable checkpoint every N steps.")
    checkpoints_total_limit: int | None = _option(2, "Keep only the last N checkpoints.")
    resume_from_checkpoint: str | None = _option(None, "'latest' or a checkpoint folder.")
    on_bad_image: Literal["stop", "skip"] = _option(
        STOP,
        "An image that cannot be read or processed mid-run: stop before its step, naming it and saving a checkpoint "
        "to resume from; or skip it (a notice names it; training_summary.json counts the skipped images).",
    )
    logging_steps: int = 10
    report_to: str | None = _option(None, "Accelerate trackers: tensorboard, wandb, all, ...")
    reconstruction_images: int = _option(4, "Rows of the reconstruction picture.")
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_variant: str | None = _option(None, "Hub variant: generic, ct, mr, pet, xray, us (default: --modality).")

    @property
    def recipe(self) -> Recipe:
        """The published pretraining recipe with a --dataset, the demo recipe without."""
        return get_recipe(PRETRAINING, demo=self.dataset is None)

    def resolved(self) -> PretrainingArguments:
        """These arguments with every field left unset taken from `recipe`."""
        return with_recipe_defaults(self, self.recipe)

    def config_fields(self) -> dict:
        """`VisMaeConfig` fields of a new model: the recipe's depths, then --config-overrides, at --image-size."""
        try:
            overrides = json.loads(self.config_overrides) if self.config_overrides else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"--config-overrides is not valid JSON ({error}): {self.config_overrides!r}.") from None
        if not isinstance(overrides, dict):
            raise ValueError(
                f"--config-overrides must be a JSON object of VisMaeConfig fields, got {self.config_overrides!r}."
            )
        if "image_size" in overrides:
            raise ValueError(
                "--config-overrides sets image_size; give it as --image-size, which the processor uses too."
            )
        image_size = self.image_size or self.recipe.image_size
        return {"depths": list(self.recipe.depths), **overrides, "image_size": image_size}

    def check(self) -> None:
        """Fail before training, not after hours of it, on arguments the run could not honour (resolved ones)."""
        self.check_ranges()
        self.check_paths()
        self.check_model_config()
        if self.hub_variant is not None:
            try:
                corpus_selection(self.hub_variant)
            except ValueError as error:
                raise ValueError(f"--hub-variant: {error}") from None
        if self.push_to_hub and (not self.hub_model_id or "/" not in self.hub_model_id):
            raise ValueError(
                "--push-to-hub needs --hub-model-id NAMESPACE/NAME (a user or organisation and a name), got "
                f"{self.hub_model_id!r}."
            )
        if self.scale_lr_with_batch and self.recipe.reference_global_batch is None:
            raise ValueError(
                "--scale-lr-with-batch scales the learning rate from the global batch the recipe set it for; the demo "
                "recipe names none. Give --dataset (the published recipe) or leave the flag off."
            )

    def check_paths(self) -> None:
        """The output folder can be one, and a local model to continue from exists."""
        check_folder_path(self.output_dir, "--output-dir")
        model = self.model_name_or_path
        if model and model.startswith(("/", ".", "~")) and not Path(model).expanduser().exists():
            raise FileNotFoundError(f"--model-name-or-path {model}: no such folder (a saved model or a Hub id).")

    def check_model_config(self) -> None:
        """A new model's --config-overrides name `VisMaeConfig` fields that, at --image-size, make a valid model."""
        if self.model_name_or_path:
            if self.config_overrides:
                raise ValueError(
                    "--config-overrides shapes a new model; with --model-name-or-path the saved model's own config is "
                    "used. Give one of the two."
                )
            return
        fields = self.config_fields()
        known = {item.name for item in dataclasses.fields(VisMaeConfig)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"--config-overrides: {unknown} are not VisMaeConfig fields; they are {sorted(known)}.")
        try:
            VisMaeConfig(**fields)
        except Exception as error:  # the config's validators raise huggingface_hub's StrictDataclassError and others
            reason = str(error).strip().splitlines()[-1].strip()
            raise ValueError(f"--config-overrides / --image-size make no valid model: {reason}") from error

    def check_ranges(self) -> None:
        """Counts, sizes and rates a run cannot use (0 batches, a negative seed, NaN rates) name their flag."""
        for name in _AT_LEAST_ONE + _AT_LEAST_ZERO + _ABOVE_ZERO:
            value = getattr(self, name)
            if value is None:  # neither given nor in the recipe: the option is off
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if name in _AT_LEAST_ONE:
                wanted, fine = "a whole number >= 1", number and isinstance(value, int) and value >= 1
            elif name in _AT_LEAST_ZERO:
                wanted, fine = "a finite number >= 0", number and value >= 0
            else:
                wanted, fine = "a finite number > 0", number and value > 0
            if not fine:
                raise ValueError(f"--{name.replace('_', '-')} must be {wanted}, got {value!r}.")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)!r}.")
        if self.on_bad_image not in (STOP, SKIP):
            raise ValueError(f"--on-bad-image must be {STOP} or {SKIP}, got {self.on_bad_image!r}.")


__all__ = ["PretrainingArguments"]
