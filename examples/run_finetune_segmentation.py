"""Fine-tune VIS-MAE for semantic segmentation: `vis-mae finetune segmentation`, as a script.

    python examples/run_finetune_segmentation.py            # demo: MNI152 tissue, a few minutes on a CPU
    python examples/run_finetune_segmentation.py --init vismae:outputs/vis-mae-pretrain
    python examples/run_finetune_segmentation.py --dataset data/btcv --fold 2 --label-fraction 0.25 \
        --init vismae:outputs/vis-mae-pretrain --metric-pooling per_volume
    python examples/run_finetune_segmentation.py --init swin:microsoft/swin-tiny-patch4-window7-224  # ImageNet

The published recipe (`vis_mae_hf.recipes`) with --dataset; a short demo schedule without. All options:
`vis-mae finetune segmentation --help`.
"""

import sys

from vis_mae_hf.app.cli import main

COMMAND = ["finetune", "segmentation"]

if __name__ == "__main__":
    sys.exit(main([*COMMAND, *sys.argv[1:]]))
