"""Label efficiency, as in the paper's Figures 2 and 3: `vis-mae sweep`, as a script. Fine-tune for every
initialisation x fold x label fraction, write one CSV row per run, plot the metric against the fraction of labels
(mean and spread across folds).

    # VIS-MAE (the default pretraining run's output) against random initialisation on the demo segmentation set
    python examples/label_efficiency.py --task segmentation \
        --inits vismae:outputs/vis-mae-pretrain,random --folds 0,1,2 --label-fractions 0.1,0.25,0.5,1.0

    # a converted set with the paper's grid, the ImageNet Swin baseline included
    python examples/label_efficiency.py --task segmentation --dataset data/btcv \
        --inits vismae:outputs/vis-mae-pretrain,random,swin:microsoft/swin-tiny-patch4-window7-224

Re-running the same command resumes: runs already in <results-dir>/results.csv are skipped. `--plot-only` redraws
the plot. Every fine-tuning option (schedule, --max-steps, --image-size, ...) applies to each run; their --init,
--fold, --label-fraction, --seed and --output-dir are set by the grid. All options: `vis-mae sweep --help`.
"""

import sys

from vis_mae_hf.app.cli import main

COMMAND = ["sweep"]

if __name__ == "__main__":
    sys.exit(main([*COMMAND, *sys.argv[1:]]))
