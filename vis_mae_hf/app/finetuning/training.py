"""Fine-tuning VIS-MAE with `transformers.Trainer`: Trainer construction and one run end to end.

`run_finetuning(FinetuningArguments(...), "segmentation", {"max_steps": 100, "bf16": True})` loads the dataset,
selects the fold and label fraction, builds the model from its initialisation, sets up the tuning mode (full,
linear probe or LoRA: `tuning.py`), attaches the processor and the published augmentation, prints the plan
(`plan.py`), trains, keeps the checkpoint with the best validation metric (Dice mean or ROC-AUC; optional early
stopping), evaluates it on the validation fold with `vis_mae_hf.metrics`, and writes the model, the processor,
`eval_results.json` and `finetuning_summary.json` to the output directory. The third argument holds the
`TrainingArguments` options the user set; the recipe and the package fill the others (`arguments.py`).

Trainer settings that matter and why:
- `remove_unused_columns=False`: the transforms read `image`/`mask` columns the model's signature does not name.
- `processing_class=image_processor`: saved with every checkpoint, so the fine-tuned model reloads with the exact
  preprocessing (min-max for segmentation, plain [0, 1] for classification).
- `preprocess_logits_for_metrics=segmentation_logits_to_label_maps`: the Trainer keeps int8 label maps, not
  (N, K, H, W) float logits. On several processes Trainer gathers them in dataset order, which is what per-volume
  pooling (`case_ids` in dataset order) needs.
- `VisMaeTrainer`: the one weight-decay rule (every parameter, as published; `decay_norms_and_biases=False` exempts
  what the model's `no_weight_decay()` names), not Trainer's own.

With `--tuning lora` the output directory holds the merged plain model (what `from_pretrained`, the pipelines and
`vis-mae predict` load) and `adapter/`, the PEFT adapter with the trained head; `load_lora_run(output_dir)` rebuilds
the run's base model and loads the adapter onto it.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback, default_data_collator, set_seed

from ...vocabulary import FINETUNING_TASKS, SEGMENTATION
from ...weights.load_report import LoadReport
from .arguments import (
    DEFAULT_OUTPUT_DIRS,
    FinetuningArguments,
    finetuning_training_arguments,
    resume_checkpoint,
)
from .data import PROBLEM_TYPES, FinetuningData, prepare_finetuning_data
from .initialization import Initialization, build_finetuning_model
from .plan import PlanCallback, RunFacts, checkpoint_sizes
from .trainer import VisMaeTrainer
from .transforms import attach_transforms
from .tuning import (
    LORA,
    apply_tuning,
    describe_tuning,
    frozen_fresh_note,
    is_lora_model,
    load_lora_adapter,
    merge_lora,
    trainable_counts,
    tuning_config_overrides,
)

SUMMARY_FILE = "finetuning_summary.json"
ADAPTER_DIR = "adapter"
# Options that set the schedule's length: without them a --dataset run is the published recipe's full schedule.
SCHEDULE_OPTIONS = ("max_steps", "num_train_epochs")


@dataclass
class FinetuningResult:
    output_dir: Path
    metrics: dict[str, float]  # validation metrics of the best model, `eval_` prefixed as the Trainer logs them
    train_seconds: float
    num_train_examples: int
    num_eval_examples: int
    seed: int
    initialization: LoadReport
    tuning: str = "full"
    trainable_parameters: int = 0
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


def build_trainer(
    args: FinetuningArguments, data: FinetuningData, model, image_processor, training_args, callbacks=()
) -> VisMaeTrainer:
    """The `VisMaeTrainer` of one run on `data` with the run's `TrainingArguments` (not yet trained)."""
    args = args.resolved(data.task)
    train_dataset, eval_dataset = attach_transforms(data, image_processor, augment=args.augment)
    compute_metrics, preprocess_logits = build_compute_metrics(data, args.metric_pooling)
    callbacks = list(callbacks)
    if args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    return VisMaeTrainer(
        model=model,
        args=training_args,
        data_collator=default_data_collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=image_processor,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=preprocess_logits,
        callbacks=callbacks,
        decay_norms_and_biases=args.decay_norms_and_biases,
    )


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


def run_finetuning(
    args: FinetuningArguments,
    task: str,
    training_options: Mapping[str, Any] | None = None,
    *,
    verbose: bool = True,
) -> FinetuningResult:
    """Fine-tune once (one dataset, fold, label fraction, initialisation and tuning mode), evaluate the best model.

    Args:
        args: the task's options (see `FinetuningArguments`); fields left unset come from the task's recipe.
        task: "segmentation" or "classification" (multi-label sets are recognised by their `labels` column).
        training_options: the `TrainingArguments` options the user set (field -> value); the recipe and the
            package's defaults fill the others (`arguments.finetuning_training_arguments`).
        verbose: print the data, the initialisation report, the plan and the final metrics table.
    """
    if task not in FINETUNING_TASKS:
        raise ValueError(f"task must be one of {', '.join(FINETUNING_TASKS)}, got {task!r}.")
    initialization = Initialization.parse(args.init)  # fail before loading any data
    config_overrides = tuning_config_overrides(args.tuning, args.parsed_config_overrides())
    training_args = finetuning_training_arguments(args, task, training_options)
    checkpoint = resume_checkpoint(training_args)  # a missing checkpoint fails before any data is read
    args = args.resolved(task)
    data = select_data(args, task, training_args.seed)
    model, report = build_model(args, data.task, data.label_names, initialization, config_overrides, training_args.seed)
    model = apply_tuning(model, args.tuning, data.task, args.lora_settings())
    data.notes.extend(filter(None, [frozen_fresh_note(report.fresh, args.tuning, data.task, args.init)]))
    image_processor = args.recipe(data.task).image_processor(args.image_size, num_channels=model.config.num_channels)
    schedule_given = any(name in (training_options or {}) for name in SCHEDULE_OPTIONS)
    plan = PlanCallback(run_facts(args, data, model, training_args, schedule_given), verbose=verbose)
    if verbose:
        print_run(data, report)
    trainer = build_trainer(args, data, model, image_processor, training_args, callbacks=[plan])
    earlier_checkpoints = set(Path(training_args.output_dir).glob("checkpoint-*"))  # not this run's: never removed
    started = time.perf_counter()
    train(trainer, checkpoint)
    train_seconds = time.perf_counter() - started
    metrics = trainer.evaluate()  # the best checkpoint, reloaded by load_best_model_at_end
    trainer.save_metrics("eval", metrics)  # eval_results.json (+ all_results.json)
    output_dir = Path(training_args.output_dir)
    if args.save_model:
        save_finetuned_model(
            trainer, image_processor, output_dir,
            lambda: build_model(args, data.task, data.label_names, initialization, config_overrides,
                                training_args.seed)[0],
        )
    if trainer.is_world_process_zero():
        summary = finetuning_summary(args, data, report, trainer, metrics, train_seconds)
        summary.update(training_options=recorded_options(training_options), plan=plan.plan)
        finish_output(output_dir, summary, keep_checkpoints=args.keep_checkpoints, earlier=earlier_checkpoints)
    if verbose and trainer.is_world_process_zero():
        print(format_metrics_table(metrics, title=f"validation fold {data.fold}"))
        print(f"Wrote {output_dir / 'eval_results.json'} and {output_dir / SUMMARY_FILE}.")
    return FinetuningResult(
        output_dir=output_dir,
        metrics=metrics,
        train_seconds=train_seconds,
        num_train_examples=len(data.train),
        num_eval_examples=len(data.validation),
        seed=training_args.seed,
        initialization=report,
        tuning=args.tuning,
        trainable_parameters=trainable_counts(model)[0],
        trainer=trainer,
    )


def finish_output(output_dir: Path, summary: dict, *, keep_checkpoints: bool, earlier: set[Path] = frozenset()) -> None:
    """Write `finetuning_summary.json`; remove the checkpoints this run wrote unless they are to be kept (the best
    model is saved and evaluated by now, and a finished run has nothing to resume). Checkpoint folders that were there
    before the run (`earlier`: the one resumed from, a colleague's) stay."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
    if not keep_checkpoints:
        for folder in set(output_dir.glob("checkpoint-*")) - set(earlier):
            shutil.rmtree(folder, ignore_errors=True)


def train(trainer, checkpoint: str | None) -> None:
    """`trainer.train`, resuming from `checkpoint`; a checkpoint file that is a pickle of more than tensors (Trainer
    reads them with `torch.load(weights_only=True)`) is one error naming the checkpoint."""
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except pickle.UnpicklingError as error:
        if checkpoint is None:
            raise
        raise ValueError(
            f"--resume-from-checkpoint: {checkpoint} holds a file that is a pickle of more than tensors, refused "
            "unread (nothing in it ran). Resume from a checkpoint this command wrote, or start again without "
            "--resume-from-checkpoint."
        ) from error


def select_data(args: FinetuningArguments, task: str, seed: int) -> FinetuningData:
    """The training and validation rows of the run's dataset, fold and label fraction."""
    return prepare_finetuning_data(
        args.dataset,
        task,
        fold=args.fold,
        label_fraction=args.label_fraction,
        label_names=args.parsed_class_names(),
        seed=seed,
        max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples,
    )


def build_model(
    args: FinetuningArguments,
    task: str,
    label_names: list[str],
    initialization: Initialization,
    config_overrides: dict,
    seed: int,
):
    """(model, initialisation report) of resolved `args` for a dataset `task` ("segmentation", "classification" or
    "multilabel"), seeded by `seed`, so the same call builds the same weights (a LoRA run's base is rebuilt so)."""
    set_seed(seed)  # the random initialisation and fresh heads are reproducible from --seed
    return build_finetuning_model(
        task,
        initialization,
        label_names=label_names,
        image_size=args.image_size,
        problem_type=PROBLEM_TYPES.get(task),
        config_overrides=config_overrides,
    )


def run_facts(args: FinetuningArguments, data: FinetuningData, model, training_args, schedule_given: bool) -> RunFacts:
    """What the plan says besides Trainer's own state."""
    return RunFacts(
        num_train_examples=len(data.train),
        image_size=args.image_size,
        tuning_line=describe_tuning(model, args.tuning, data.task, args.lora_settings()),
        sizes=checkpoint_sizes(model, training_args),
        keep_checkpoints=args.keep_checkpoints,
        save_model=args.save_model,
        published_schedule=not args.recipe(data.task).demo and not schedule_given,
    )


def save_finetuned_model(trainer, image_processor, output_dir: Path, build_base) -> None:
    """The best model and its processor in `output_dir`, loadable with `from_pretrained`. A LoRA run saves its
    adapter in `output_dir/adapter` and, from that saved adapter on a rebuilt base (`build_base()`), the merged plain
    model in `output_dir`: the path `load_lora_run` takes too."""
    if not is_lora_model(trainer.model):
        trainer.save_model()  # model + image processor
        return
    adapter_dir = output_dir / ADAPTER_DIR
    trainer.save_model(str(adapter_dir))  # every process calls it: DeepSpeed / FSDP gather the adapter here
    if trainer.is_world_process_zero():
        merged = merge_lora(load_lora_adapter(build_base(), adapter_dir))
        merged.save_pretrained(output_dir)
        image_processor.save_pretrained(output_dir)


def load_lora_run(run_dir: str | Path):
    """The PEFT model of a finished `--tuning lora` run: its base rebuilt from `finetuning_summary.json` (the same
    initialisation, classes, size, config overrides and seed) with the saved adapter and head loaded onto it.
    `merge_lora(load_lora_run(run_dir))` is the plain model the run saved in `run_dir`."""
    run_dir = Path(run_dir)
    summary_path = run_dir / SUMMARY_FILE
    if not summary_path.is_file() or not (run_dir / ADAPTER_DIR).is_dir():
        raise FileNotFoundError(f"{run_dir} is not the output of a --tuning lora run ({SUMMARY_FILE} and "
                                f"{ADAPTER_DIR}/ missing).")
    summary = json.loads(summary_path.read_text())
    args = FinetuningArguments(**summary["arguments"])
    if args.tuning != LORA:
        raise ValueError(f"{run_dir} was fine-tuned with --tuning {args.tuning}, not lora: it has no adapter.")
    config_overrides = tuning_config_overrides(args.tuning, args.parsed_config_overrides())
    base, _ = build_model(
        args, summary["task"], summary["label_names"], Initialization.parse(args.init), config_overrides,
        summary["seed"],
    )
    return load_lora_adapter(base, run_dir / ADAPTER_DIR)


def recorded_options(training_options: Mapping[str, Any] | None) -> dict:
    """The options the user gave, as the summary records them: tokens are named, never written (as Trainer's own
    `to_dict` does), since the output folder may be pushed to the Hub."""
    return {
        name: f"<{name.upper()}>" if name.endswith("_token") and value is not None else value
        for name, value in (training_options or {}).items()
    }


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
    model = trainer.model.get_base_model() if is_lora_model(trainer.model) else trainer.model
    trainable, total = trainable_counts(trainer.model)
    return {
        "task": data.task,
        "dataset": data.description,
        "fold": data.fold,
        "label_fraction": data.label_fraction,
        "num_train_examples": len(data.train),
        "num_eval_examples": len(data.validation),
        "label_names": data.label_names,
        "initialization": report.to_json_dict(),
        "tuning": {
            "mode": args.tuning,
            "lora": asdict(args.lora_settings()) if args.tuning == LORA else None,
            "trainable_parameters": trainable,
            "parameters": total,
        },
        "recipe": {
            "defaults": "demo recipe" if recipe.demo else "published recipe",
            "lr_scheduler_type": str(trainer.args.lr_scheduler_type.value),
            "normalization": recipe.normalization,
            "depths": list(model.config.depths),
        },
        "arguments": asdict(args),
        "training_arguments": trainer.args.to_dict(),
        "seed": trainer.args.seed,
        "train_seconds": train_seconds,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "global_steps": trainer.state.global_step,
        "metrics": metrics,
        "notes": data.notes,
    }


__all__ = [
    "DEFAULT_OUTPUT_DIRS",
    "FinetuningResult",
    "build_trainer",
    "format_metrics_table",
    "load_lora_run",
    "run_finetuning",
]
