"""Label efficiency, as in the paper's Figures 2 and 3: fine-tune for every initialisation x fold x label fraction,
write one CSV row per run, plot the metric against the fraction of labels (mean and spread across folds).

    # VIS-MAE (the default pretraining run's output) against random initialisation on the demo segmentation set
    python examples/label_efficiency.py --task segmentation \
        --inits vismae:outputs/vis-mae-pretrain,random --folds 0,1,2 --label_fractions 0.1,0.25,0.5,1.0

    # a converted set with the paper's grid, the ImageNet Swin baseline included
    python examples/label_efficiency.py --task segmentation --dataset data/btcv \
        --inits vismae:outputs/vis-mae-pretrain,random,swin:microsoft/swin-tiny-patch4-window7-224

Re-running the same command resumes: runs already in <results_dir>/results.csv are skipped. `--plot_only` redraws
the plot. Every option of the fine-tuning scripts (schedule, --max_steps, --image_size, ...) applies to each run;
their --init, --fold, --label_fraction, --seed and --output_dir are set by the grid. The work is done by
`vis_mae_hf.app.sweep.run_label_efficiency`.
"""

from transformers import HfArgumentParser

from vis_mae_hf.app.finetuning.training import FinetuningArguments
from vis_mae_hf.app.sweep import LabelEfficiencyArguments, run_label_efficiency


def main() -> None:
    grid, template = HfArgumentParser((LabelEfficiencyArguments, FinetuningArguments)).parse_args_into_dataclasses()
    run_label_efficiency(grid, template)


if __name__ == "__main__":
    main()
