"""`vis-mae sweep`: the label-efficiency protocol of the paper's Figures 2 and 3.

    vis-mae sweep --task segmentation --inits vismae:outputs/vis-mae-pretrain,random --folds 0,1,2 \
        --label-fractions 0.1,0.25,0.5,1.0

Fine-tunes for every initialisation x fold x label fraction x seed, writes one CSV row per run and plots the metric
against the fraction of labels. Re-running resumes; `--plot-only` redraws the plot. Every fine-tuning option
(`vis-mae finetune TASK --help`) applies to each run, except those the grid sets (init, fold, label fraction, seed,
output folder). The options are the fields of `LabelEfficiencyArguments` and `FinetuningArguments`; the work is
`run_label_efficiency`.
"""

from __future__ import annotations

from ..finetuning.training import FinetuningArguments
from ..sweep import LabelEfficiencyArguments, run_label_efficiency
from .arguments import dataclass_parser, set_dataclass_handler


def build_parser(prog: str):
    parser = dataclass_parser(
        (LabelEfficiencyArguments, FinetuningArguments),
        prog,
        "Label efficiency: fine-tune for every initialisation x fold x label fraction x seed, one CSV row per run "
        "(re-running resumes), and plot the metric against the fraction of labels. The fine-tuning options apply "
        "to every run; the grid sets each run's init, fold, label fraction, seed and output folder.",
    )
    set_dataclass_handler(parser, run_label_efficiency, output_folders=("results_dir",))
    return parser
