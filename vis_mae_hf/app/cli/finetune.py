"""`vis-mae finetune segmentation|classification`: fine-tune VIS-MAE with `transformers.Trainer`.

    vis-mae finetune segmentation                               # demo: MNI152 tissue, a few minutes on a CPU
    vis-mae finetune segmentation --dataset data/btcv --fold 2 --label-fraction 0.25 \
        --init vismae:outputs/vis-mae-pretrain --metric-pooling per_volume
    vis-mae finetune segmentation --dataset data/btcv --init vismae:outputs/vis-mae-pretrain \
        --bf16 --per-device-train-batch-size 8 --gradient-accumulation-steps 4 --gradient-checkpointing
    vis-mae finetune classification --dataset data/covid_ct --init vismae:outputs/vis-mae-pretrain --tuning lora

The options are the fields of `FinetuningArguments` and every `transformers.TrainingArguments` option. The
TrainingArguments options given on the command line are passed on as given; the recipe and the package fill the
others (`vis_mae_hf.app.finetuning.arguments`). To tell the two apart, their parser defaults are suppressed: the
parsed namespace holds only the options given. The work is `run_finetuning(arguments, task, training_options)`.
"""

from __future__ import annotations

import argparse
import dataclasses

from transformers import HfArgumentParser, TrainingArguments

from ...vocabulary import CLASSIFICATION, SEGMENTATION
from ..finetuning.arguments import (
    TRAINING_FIELDS,
    FinetuningArguments,
    training_default_help,
)
from ..finetuning.training import run_finetuning
from . import set_handler
from .arguments import dataclass_parser_options, output_folder, prefer_dashes

TASKS = {
    SEGMENTATION: "semantic segmentation, reporting Dice, precision and recall per class",
    CLASSIFICATION: "single- or multi-label image classification, reporting ROC-AUC and PR-AUC",
}
_TRANSFORMERS_DEFAULTS = {
    field.name: field.default for field in dataclasses.fields(TrainingArguments) if field.init
}


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fine-tune VIS-MAE (or a random or ImageNet Swin start) on a converted dataset with the published "
        "recipe, or on the built-in demo with a short schedule; evaluate the best checkpoint on the validation fold "
        "and save the model with its processor.",
    )
    # Each task's parser is an HfArgumentParser (add_parser passes dataclass_types on).
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True, parser_class=HfArgumentParser)
    for task, summary in TASKS.items():
        task_parser = tasks.add_parser(
            task, dataclass_types=(FinetuningArguments, TrainingArguments), help=summary,
            **dataclass_parser_options(
                f"{prog} {task}",
                f"Fine-tune for {summary}. Every transformers.TrainingArguments option applies (--bf16, "
                "--gradient-accumulation-steps, --gradient-checkpointing, --resume-from-checkpoint, --push-to-hub, "
                "--deepspeed, --fsdp, ...); one given here always wins over the recipe.",
            ),
        )
        mark_training_options(task_parser)
        prefer_dashes(task_parser)
        set_handler(task_parser, lambda namespace, task=task: _run(namespace, task))
    return parser


def mark_training_options(parser: argparse.ArgumentParser) -> None:
    """Suppress the defaults of `parser`'s TrainingArguments options, so that a parsed namespace holds only the
    ones given, and let each option's help say what fills it when it is not given."""
    for action in parser._actions:
        if action.dest not in TRAINING_FIELDS or action.default is argparse.SUPPRESS:
            continue
        action.default = argparse.SUPPRESS
        if action.option_strings and action.option_strings[0].startswith(("--no_", "--no-")):
            continue  # the `--no-x` twin of a boolean: its help is the option's own
        note = training_default_help(action.dest)
        if note is None:
            default = _TRANSFORMERS_DEFAULTS.get(action.dest)
            note = f"Default: {str(default).lower() if isinstance(default, bool) else default} (Transformers')."
        action.help = f"{action.help or ''} {note.replace('%', '%%')}".strip()


def split_namespace(namespace: argparse.Namespace, *dataclass_types) -> tuple[list, dict]:
    """(instances of `dataclass_types` built from the namespace, the TrainingArguments options given)."""
    values = vars(namespace)
    instances = []
    for dataclass_type in dataclass_types:
        names = [field.name for field in dataclasses.fields(dataclass_type) if field.init]
        instances.append(dataclass_type(**{name: values[name] for name in names if name in values}))
    training_options = {name: values[name] for name in TRAINING_FIELDS if name in values}
    if training_options.get("output_dir") is not None:
        output_folder(training_options["output_dir"], "--output-dir")  # a file there fails now, not at the first save
    return instances, training_options


def _run(namespace: argparse.Namespace, task: str) -> int:
    (arguments,), training_options = split_namespace(namespace, FinetuningArguments)
    run_finetuning(arguments, task, training_options)
    return 0
