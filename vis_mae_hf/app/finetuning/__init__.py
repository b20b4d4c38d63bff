"""Fine-tuning VIS-MAE for segmentation and classification with `transformers.Trainer`.

Modules, one job each:
    data            which rows a run uses: dataset name -> `FinetuningData` (fold, label fraction, class names)
    augmentation    the published training augmentation, torch only (no torchvision)
    transforms      `with_transform` callables: decode -> image processor -> augmentation
    initialization  `vismae:<ckpt>`, `random`, `swin:<ckpt>` -> model + report of what was loaded
    trainer         `VisMaeTrainer`: Trainer with the one weight-decay rule (`vis_mae_hf.app.weight_decay`)
    training        `FinetuningArguments` (defaults from the recipe table), `build_trainer`, `run_finetuning`

Recipes come from `vis_mae_hf.recipes`, metrics from `vis_mae_hf.metrics`, Swin weights from `vis_mae_hf.weights`.
"""

from .data import FinetuningData, prepare_finetuning_data
from .initialization import Initialization, build_finetuning_model
from .trainer import VisMaeTrainer
from .training import (
    FinetuningArguments,
    build_trainer,
    format_metrics_table,
    run_finetuning,
)
from .transforms import attach_transforms

__all__ = [
    "FinetuningArguments",
    "FinetuningData",
    "Initialization",
    "VisMaeTrainer",
    "attach_transforms",
    "build_finetuning_model",
    "build_trainer",
    "format_metrics_table",
    "prepare_finetuning_data",
    "run_finetuning",
]
