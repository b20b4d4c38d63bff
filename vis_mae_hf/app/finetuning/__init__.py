"""Fine-tuning VIS-MAE for segmentation and classification with `transformers.Trainer`.

Modules, one job each:
    arguments       `FinetuningArguments` (the task's own options) and the run's `TrainingArguments`: every option
                    the user set wins, the recipe table and the package's defaults fill the rest
    data            which rows a run uses: dataset name -> `FinetuningData` (fold, label fraction, class names)
    augmentation    the published training augmentation, torch only (no torchvision)
    transforms      `with_transform` callables: decode -> image processor -> augmentation
    initialization  `vismae:<ckpt>`, `random`, `swin:<ckpt>` -> model + report of what was loaded
    tuning          `--tuning full | linear_probe | lora`: what trains; LoRA adapters through PEFT, merged
    plan            the plan printed before the first step: steps, batch, size, checkpoints and their size
    trainer         `VisMaeTrainer`: Trainer with the one weight-decay rule (`vis_mae_hf.app.weight_decay`)
    training        `build_trainer`, `run_finetuning` (one run end to end), `load_lora_run`
    embeddings      an encoder's pooled embeddings of a dataset, written as a dataset (`vis-mae embed`)

Recipes come from `vis_mae_hf.recipes`, metrics from `vis_mae_hf.metrics`, Swin weights from `vis_mae_hf.weights`.
"""

from .arguments import FinetuningArguments, finetuning_training_arguments
from .data import FinetuningData, prepare_finetuning_data
from .initialization import Initialization, build_finetuning_model
from .trainer import VisMaeTrainer
from .training import (
    build_trainer,
    format_metrics_table,
    load_lora_run,
    run_finetuning,
)
from .transforms import attach_transforms
from .tuning import TUNING_MODES, LoraSettings, apply_tuning, merge_lora

__all__ = [
    "FinetuningArguments",
    "FinetuningData",
    "Initialization",
    "LoraSettings",
    "TUNING_MODES",
    "VisMaeTrainer",
    "apply_tuning",
    "attach_transforms",
    "build_finetuning_model",
    "build_trainer",
    "finetuning_training_arguments",
    "format_metrics_table",
    "load_lora_run",
    "merge_lora",
    "prepare_finetuning_data",
    "run_finetuning",
]
