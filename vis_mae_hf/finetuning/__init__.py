"""Fine-tuning VIS-MAE for segmentation and classification with `transformers.Trainer`, and the paper's
label-efficiency protocol (folds x label fractions x initialisations).

Modules, one job each:
    data            which rows a run uses: dataset string -> `FinetuningData` (fold, label fraction, class names)
    demo_tasks      the honest classification demo built from the MNI152 demo slices (orientation check)
    augmentation    the published training augmentation, torch only (no torchvision)
    transforms      `with_transform` callables: decode -> image processor -> augmentation
    initialization  `vismae:<ckpt>`, `random`, `swin:<ckpt>` -> model + report of what was loaded
    recipes         published and demo schedules
    training        `FinetuningArguments`, `build_trainer`, `run_finetuning`
    label_efficiency  the runner over folds x fractions x initialisations, tidy CSV with resume, the plot

Metrics come from `vis_mae_hf.metrics` (the one implementation); Swin conversion from `vis_mae_hf.swin_transfer`.
Imports are lazy so `import vis_mae_hf.finetuning` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FinetuningData": "data",
    "prepare_finetuning_data": "data",
    "load_dataset_dict": "data",
    "load_demo_classification": "demo_tasks",
    "SegmentationAugmentation": "augmentation",
    "ClassificationAugmentation": "augmentation",
    "SegmentationTransform": "transforms",
    "ClassificationTransform": "transforms",
    "attach_transforms": "transforms",
    "Initialization": "initialization",
    "InitializationReport": "initialization",
    "build_finetuning_model": "initialization",
    "FinetuningRecipe": "recipes",
    "PUBLISHED_RECIPES": "recipes",
    "DEMO_RECIPES": "recipes",
    "FinetuningArguments": "training",
    "FinetuningResult": "training",
    "build_trainer": "training",
    "format_metrics_table": "training",
    "run_finetuning": "training",
    "LabelEfficiencyArguments": "label_efficiency",
    "run_label_efficiency": "label_efficiency",
    "plot_label_efficiency": "label_efficiency",
    "read_results": "label_efficiency",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
