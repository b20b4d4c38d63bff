"""`vis-mae sweep`: the label-efficiency protocol of the paper's Figures 2 and 3.

    vis-mae sweep --task segmentation --inits vismae:outputs/vis-mae-pretrain,random --folds 0,1,2 \
        --label-fractions 0.1,0.25,0.5,1.0 --tunings full,linear_probe,lora

Fine-tunes for every initialisation x tuning mode x fold x label fraction x seed, writes one CSV row per run and
plots the metric against the fraction of labels. Re-running resumes; `--plot-only` redraws the plot. Every
fine-tuning option (`vis-mae finetune TASK --help`, every TrainingArguments option included) applies to each run,
except those the grid sets (init, tuning, fold, label fraction, seed, output folder). The options are the fields of
`LabelEfficiencyArguments`, `FinetuningArguments` and `TrainingArguments`; the work is `run_label_efficiency`.
"""

from __future__ import annotations

import argparse

from transformers import TrainingArguments

from ..finetuning.arguments import FinetuningArguments
from ..sweep import LabelEfficiencyArguments, run_label_efficiency
from . import set_handler
from .arguments import dataclass_parser, output_folder
from .finetune import mark_training_options, split_namespace


def build_parser(prog: str):
    parser = dataclass_parser(
        (LabelEfficiencyArguments, FinetuningArguments, TrainingArguments),
        prog,
        "Label efficiency: fine-tune for every initialisation x tuning mode x fold x label fraction x seed, one CSV "
        "row per run (re-running resumes), and plot the metric against the fraction of labels. The fine-tuning "
        "options, every transformers.TrainingArguments option included, apply to every run; the grid sets each "
        "run's init, tuning, fold, label fraction, seed and output folder.",
    )
    mark_training_options(parser)
    set_handler(parser, _run)
    return parser


def _run(namespace: argparse.Namespace) -> int:
    (grid, template), training_options = split_namespace(namespace, LabelEfficiencyArguments, FinetuningArguments)
    if grid.results_dir is not None:
        output_folder(grid.results_dir, "--results-dir")
    run_label_efficiency(grid, template, training_options)
    return 0
