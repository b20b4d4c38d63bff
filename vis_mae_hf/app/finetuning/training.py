"""Fine-tuning VIS-MAE with `transformers.Trainer`: arguments, Trainer construction, one run end to end.

`run_finetuning(FinetuningArguments(...), task="segmentation")` loads the dataset, selects the fold and label
fraction, builds the model from its initialisation, attaches the processor and the published augmentation, trains
with the recipe's optimiser and schedule, keeps the checkpoint with the best validation metric (Dice mean or
ROC-AUC; optional early stopping), evaluates it on the validation fold with `vis_mae_hf.metrics`, and writes the
model, the processor, `eval_results.json` and `finetuning_summary.json` to `output_dir`.

Every schedule and optimiser field left unset comes from the recipe table (`vis_mae_hf.recipes`): the task's
published recipe with `--dataset`, its demo recipe without.

Trainer settings that matter and why:
- `remove_unused_columns=False`: the transforms read `image`/`mask` columns the model's signature does not name.
- `processing_class=image_processor`: saved with every checkpoint, so the fine-tuned model reloads with the exact
  preprocessing (min-max for segmentation, plain [0, 1] for classification).
- `preprocess_logits_for_metrics=segmentation_logits_to_label_maps`: the Trainer keeps int16 label maps, not
  (N, K, H, W) float logits.
- `VisMaeTrainer`: the one weight-decay rule (every parameter, as published; `decay_norms_and_biases=False` exempts
  what the model's `no_weight_decay()` names), not Trainer's own.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import (
    EarlyStoppingCallback,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from ...data.loading import DEMO_NAMES
from ...recipes import Recipe, get_recipe
from ...vocabulary import CLASSIFICATION, FINETUNING_TASKS, MULTILABEL, SEGMENTATION
from ...weights.load_report import LoadReport
from ..recipe_defaults import recipe_option, with_recipe_defaults
from .data import FinetuningData, prepare_finetuning_data
from .initialization import Initialization, build_finetuning_model
from .trainer import VisMaeTrainer
from .transforms import attach_transforms

DEFAULT_OUTPUT_DIRS = {
    SEGMENTATION: "outputs/vis-mae-finetune-segmentation",
    CLASSIFICATION: "outputs/vis-mae-finetune-classification",
}
BEST_METRICS = {SEGMENTATION: "dice_mean", CLASSIFICATION: "roc_auc", MULTILABEL: "roc_auc"}
SUMMARY_FILE = "finetuning_summary.json"


def _option(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


def _from_recipe(name: str, help_text: str = ""):
    return recipe_option(name, FINETUNING_TASKS, help_text)


@dataclass
class FinetuningArguments:
    """Arguments of one fine-tuning run (the scripts parse these with `HfArgumentParser`). Recipe values are
    quoted segmentation / classification."""

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
    output_dir: str | None = _option(None, "Default outputs/vis-mae-finetune-<task>.")
    label_names: str | None = _option(None, "Comma-separated class names, for sets that do not store them.")
    image_size: int | None = _from_recipe("image_size", "Square input size, a multiple of 32.")
    num_train_epochs: float | None = _from_recipe("num_train_epochs")
    warmup_epochs: float | None = _from_recipe("warmup_epochs")
    max_steps: int = _option(-1, "Stop after this many optimiser steps (overrides epochs).")
    per_device_train_batch_size: int | None = _from_recipe("per_device_train_batch_size")
    per_device_eval_batch_size: int | None = _option(None, "Default: the training batch size.")
    learning_rate: float | None = _from_recipe("learning_rate", "Peak learning rate.")
    weight_decay: float | None = _from_recipe("weight_decay", "AdamW weight decay.")
    decay_norms_and_biases: bool | None = _from_recipe(
        "decay_norms_and_biases",
        "Weight decay on every parameter, as published; false exempts what the model's no_weight_decay() names "
        "(norms, biases, mask token, position bias tables).",
    )
    adam_beta1: float | None = _from_recipe("adam_beta1")
    adam_beta2: float | None = _from_recipe("adam_beta2")
    augment: bool = _option(True, "The published training augmentation.")
    early_stopping_patience: int | None = _option(
        None, "Stop after this many evaluations without improvement (off by default)."
    )
    metric_for_best_model: str | None = _option(None, "Default dice_mean (segmentation) / roc_auc.")
    metric_pooling: str = _option(
        "per_image", "Segmentation metric pooling: per_image, per_volume (by case_id) or global."
    )
    eval_steps: int | None = _option(None, "Evaluate (and checkpoint) every N steps instead of every epoch.")
    config_overrides: str | None = _option(None, 'JSON of VisMaeConfig fields, e.g. \'{"drop_path_rate": 0.2}\'.')
    max_train_examples: int | None = _option(None, "Use only the first N training rows (quick checks).")
    max_eval_examples: int | None = _option(None, "Use only the first N validation rows.")
    seed: int = 0
    dataloader_num_workers: int = 0
    save_total_limit: int | None = 2
    logging_steps: int = 10
    report_to: str = _option("none", "Trainer integrations: none, tensorboard, wandb, all, ...")
    use_cpu: bool = False
    save_model: bool = _option(True, "Save the best model and processor to output_dir.")
    keep_checkpoints: bool = _option(True, "Keep checkpoint-* folders after training.")
    disable_tqdm: bool | None = None

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


@dataclass
class FinetuningResult:
    output_dir: Path
    metrics: dict[str, float]  # validation metrics of the best model, `eval_` prefixed as the Trainer logs them
    train_seconds: float
    num_train_examples: int
    num_eval_examples: int
    seed: int
    initialization: LoadReport
    trainer: object = None  # the Trainer (model, state), for notebooks; not serialised


def build_compute_metrics(data: FinetuningData, pooling: str = "per_image"):
    """(compute_metrics, preprocess_logits_for_metrics) from `vis_mae_hf.metrics` for this data."""
    from ...metrics import (
        classification_compute_metrics,
        segmentation_compute_metrics,
        segmentation_logits_to_label_maps,
    )

    if data.task == SEGMENTATION:
        case_ids = list(data.validation["case_id"]) if pooling == "per_volume" else None
        return (
            segmentation_compute_metrics(data.num_labels, data.id2label, pooling=pooling, case_ids=case_ids),
            segmentation_logits_to_label_maps,
        )
    return classification_compute_metrics(data.problem_type, data.id2label), None


def training_arguments(args: FinetuningArguments, task: str, output_dir: str | Path):
    """`transformers.TrainingArguments` of a run, every recipe field resolved for `task`."""
    args = args.resolved(task)
    by_steps = args.eval_steps is not None
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=args.num_train_epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size or args.per_device_train_batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        adam_beta1=args.adam_beta1,
        adam_beta2=args.adam_beta2,
        lr_scheduler_type=args.recipe(task).lr_scheduler_type,
        # < 1: a fraction of the total steps, so the warmup keeps its share of a --max-steps run
        warmup_steps=args.warmup_epochs / args.num_train_epochs if args.num_train_epochs else 0.0,
        eval_strategy="steps" if by_steps else "epoch",
        save_strategy="steps" if by_steps else "epoch",
        eval_steps=args.eval_steps,
        save_steps=args.eval_steps,
        load_best_model_at_end=True,
        metric_for_best_model=args.metric_for_best_model or BEST_METRICS[task],
        greater_is_better=True,
        save_total_limit=args.save_total_limit,
        # Checkpoints that will be deleted serve only to reload the best model: no optimizer state needed.
        save_only_model=not args.keep_checkpoints,
        logging_steps=args.logging_steps,
        report_to=args.report_to,
        remove_unused_columns=False,
        dataloader_num_workers=args.dataloader_num_workers,
        seed=args.seed,
        use_cpu=args.use_cpu,
        disable_tqdm=args.disable_tqdm,
        dataloader_pin_memory=_has_accelerator(),  # pinning without an accelerator only warns
    )


def build_trainer(args: FinetuningArguments, data: FinetuningData, model, image_processor, output_dir: str | Path):
    """The `VisMaeTrainer` of one run on `data`, configured as the module docstring says (not yet trained)."""
    args = args.resolved(data.task)
    train_dataset, eval_dataset = attach_transforms(data, image_processor, augment=args.augment)
    compute_metrics, preprocess_logits = build_compute_metrics(data, args.metric_pooling)
    callbacks = []
    if args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    return VisMaeTrainer(
        model=model,
        args=training_arguments(args, data.task, output_dir),
        data_collator=default_data_collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=image_processor,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=preprocess_logits,
        callbacks=callbacks,
        decay_norms_and_biases=args.decay_norms_and_biases,
    )


def _has_accelerator() -> bool:
    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


# Trainer bookkeeping that is not a metric of the model.
_TIMING_KEYS = ("runtime", "samples_per_second", "steps_per_second")


def format_metrics_table(metrics: dict[str, float], title: str = "validation") -> str:
    """Metrics as an aligned two-column table; per-class `metric/class` keys grouped as a class x metric grid."""
    overall, per_class = {}, {}
    for key, value in metrics.items():
        name = key.removeprefix("eval_")
        if "/" in name:
            metric, class_name = name.split("/", 1)
            per_class.setdefault(class_name, {})[metric] = value
        elif isinstance(value, (int, float)) and name not in _TIMING_KEYS:
            overall[name] = value
    width = max([len(name) for name in overall] + [len(title)])
    lines = [f"{title:<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{name:<{width}}  {_number(value)}" for name, value in overall.items()]
    if per_class:
        metric_names = sorted({metric for row in per_class.values() for metric in row})
        class_width = max(len(name) for name in [*per_class, "class"])
        lines.append("")
        lines.append(f"{'class':<{class_width}}  " + "  ".join(f"{metric:>9}" for metric in metric_names))
        for class_name, row in per_class.items():
            cells = "  ".join(f"{_number(row.get(metric)):>9}" for metric in metric_names)
            lines.append(f"{class_name:<{class_width}}  {cells}")
    return "\n".join(lines)


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def run_finetuning(args: FinetuningArguments, task: str, *, verbose: bool = True) -> FinetuningResult:
    """Fine-tune once (one dataset, fold, label fraction and initialisation) and evaluate the best model.

    Args:
        args: see `FinetuningArguments`; fields left unset come from the task's recipe.
        task: "segmentation" or "classification" (multi-label sets are recognised by their `labels` column).
        verbose: print the data, the initialisation report and the final metrics table.
    """
    if task not in FINETUNING_TASKS:
        raise ValueError(f"task must be one of {', '.join(FINETUNING_TASKS)}, got {task!r}.")
    initialization = Initialization.parse(args.init)  # fail before loading any data
    config_overrides = args.parsed_config_overrides()
    args = args.resolved(task)
    output_dir = Path(args.output_dir or DEFAULT_OUTPUT_DIRS[task])
    data = select_data(args, task)
    model, report = build_model(args, data, initialization, config_overrides)
    image_processor = args.recipe(data.task).image_processor(args.image_size, num_channels=model.config.num_channels)
    if verbose:
        print_run(data, report)
    trainer = build_trainer(args, data, model, image_processor, output_dir)
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    metrics = trainer.evaluate()  # the best checkpoint, reloaded by load_best_model_at_end
    trainer.save_metrics("eval", metrics)  # eval_results.json (+ all_results.json)
    if args.save_model:
        trainer.save_model()  # model + image processor, reloadable with from_pretrained
    summary = finetuning_summary(args, data, report, trainer, metrics, train_seconds)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
    if not args.keep_checkpoints:
        for checkpoint in output_dir.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    if verbose:
        print(format_metrics_table(metrics, title=f"validation fold {data.fold}"))
        print(f"Wrote {output_dir / 'eval_results.json'} and {output_dir / SUMMARY_FILE}.")
    return FinetuningResult(
        output_dir=output_dir,
        metrics=metrics,
        train_seconds=train_seconds,
        num_train_examples=len(data.train),
        num_eval_examples=len(data.validation),
        seed=args.seed,
        initialization=report,
        trainer=trainer,
    )


def select_data(args: FinetuningArguments, task: str) -> FinetuningData:
    """The training and validation rows of the run's dataset, fold and label fraction."""
    return prepare_finetuning_data(
        args.dataset,
        task,
        fold=args.fold,
        label_fraction=args.label_fraction,
        label_names=[name.strip() for name in args.label_names.split(",")] if args.label_names else None,
        seed=args.seed,
        max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples,
    )


def build_model(
    args: FinetuningArguments, data: FinetuningData, initialization: Initialization, config_overrides: dict
):
    """(model, initialisation report) of resolved `args` for `data`, seeded by --seed."""
    set_seed(args.seed)  # the random initialisation and fresh heads are reproducible from --seed
    return build_finetuning_model(
        data.task,
        initialization,
        label_names=data.label_names,
        image_size=args.image_size,
        problem_type=data.problem_type,
        config_overrides=config_overrides,
    )


def print_run(data: FinetuningData, report: LoadReport) -> None:
    print(
        f"Fine-tuning {data.task} on {data.description}: fold {data.fold}, label fraction {data.label_fraction:g}, "
        f"{len(data.train)} training / {len(data.validation)} validation examples, classes {data.label_names}."
    )
    for note in data.notes:
        print(f"Note: {note}")
    print(report.format())


def finetuning_summary(args, data: FinetuningData, report, trainer, metrics: dict, train_seconds: float) -> dict:
    """What `finetuning_summary.json` records of a finished run."""
    recipe = args.recipe(data.task)
    return {
        "task": data.task,
        "dataset": data.description,
        "fold": data.fold,
        "label_fraction": data.label_fraction,
        "num_train_examples": len(data.train),
        "num_eval_examples": len(data.validation),
        "label_names": data.label_names,
        "initialization": report.to_json_dict(),
        "recipe": {
            "defaults": "demo recipe" if recipe.demo else "published recipe",
            "lr_scheduler_type": recipe.lr_scheduler_type,
            "normalization": recipe.normalization,
            "depths": list(trainer.model.config.depths),
        },
        "arguments": asdict(args),
        "train_seconds": train_seconds,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "global_steps": trainer.state.global_step,
        "metrics": metrics,
        "notes": data.notes,
    }


__all__ = [
    "FinetuningArguments",
    "FinetuningResult",
    "build_trainer",
    "format_metrics_table",
    "run_finetuning",
]
