"""The model a pretraining run trains: new at the recipe's depths, or continued from saved weights."""

from __future__ import annotations

import torch

from ...configuration_vis_mae import VisMaeConfig
from ...modeling_vis_mae import VisMaeForPreTraining
from .arguments import PretrainingArguments


def build_model(args: PretrainingArguments, config: VisMaeConfig | None = None) -> VisMaeForPreTraining:
    """`--model-name-or-path` weights, else a new model of `config` (default: `args.config_fields()`), with the
    activation checkpointing `--activation-checkpointing` asks for."""
    if args.model_name_or_path:
        model = VisMaeForPreTraining.from_pretrained(args.model_name_or_path, dtype=torch.float32)
    else:
        model = VisMaeForPreTraining(config or VisMaeConfig(**args.config_fields()))
    if args.activation_checkpointing == "all":
        model.activation_checkpointing_enable()
    elif args.activation_checkpointing:
        model.checkpoint_blocks([path.strip() for path in args.activation_checkpointing.split(",")])
    return model
