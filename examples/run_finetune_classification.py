"""Fine-tune VIS-MAE for image classification (single- or multi-label): `vis-mae finetune classification`, as a
script.

    python examples/run_finetune_classification.py          # demo (plumbing only): is an MNI slice upside down?
    python examples/run_finetune_classification.py --dataset data/covid_ct --fold 0 --label-fraction 0.5 \
        --init vismae:outputs/vis-mae-pretrain
    python examples/run_finetune_classification.py --dataset data/chestxray14   # multi-label: `labels` column

The published recipe (`vis_mae_hf.recipes`) with --dataset; a short demo schedule without. Reports ROC-AUC and
PR-AUC (scikit-learn) on the validation fold. All options: `vis-mae finetune classification --help`.
"""

import sys

from vis_mae_hf.app.cli import main

COMMAND = ["finetune", "classification"]

if __name__ == "__main__":
    sys.exit(main([*COMMAND, *sys.argv[1:]]))
