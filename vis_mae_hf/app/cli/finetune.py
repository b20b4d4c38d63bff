"""`vis-mae finetune segmentation|classification`: fine-tune VIS-MAE with `transformers.Trainer`.

    vis-mae finetune segmentation                               # demo: MNI152 tissue, a few minutes on a CPU
    vis-mae finetune segmentation --dataset data/btcv --fold 2 --label-fraction 0.25 \
        --init vismae:outputs/vis-mae-pretrain --metric-pooling per_volume
    vis-mae finetune classification --dataset data/covid_ct --init swin:microsoft/swin-tiny-patch4-window7-224

The options are the fields of `FinetuningArguments`; the work is `run_finetuning(arguments, task)`.
"""

from __future__ import annotations

import argparse

from transformers import HfArgumentParser

from ...vocabulary import CLASSIFICATION, SEGMENTATION
from ..finetuning.training import FinetuningArguments, run_finetuning
from .arguments import dataclass_parser_options, prefer_dashes, set_dataclass_handler

TASKS = {
    SEGMENTATION: "semantic segmentation, reporting Dice, precision and recall per class",
    CLASSIFICATION: "single- or multi-label image classification, reporting ROC-AUC and PR-AUC",
}


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fine-tune VIS-MAE (or a random or ImageNet Swin start) on a converted dataset with the published "
        "recipe, or on the built-in demo with a short schedule; evaluate the best checkpoint on the validation fold "
        "and save the model with its processor.",
    )
    # Each task's parser is an HfArgumentParser over FinetuningArguments (add_parser passes dataclass_types on).
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True, parser_class=HfArgumentParser)
    for task, summary in TASKS.items():
        task_parser = tasks.add_parser(
            task, dataclass_types=FinetuningArguments, help=summary,
            **dataclass_parser_options(f"{prog} {task}", f"Fine-tune for {summary}."),
        )
        prefer_dashes(task_parser)
        set_dataclass_handler(
            task_parser,
            lambda arguments, task=task: run_finetuning(arguments, task=task),
            output_folders=("output_dir",),
        )
    return parser

