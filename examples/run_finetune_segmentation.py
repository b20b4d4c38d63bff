"""Fine-tune VIS-MAE for semantic segmentation with `transformers.Trainer`.

    python examples/run_finetune_segmentation.py            # demo: MNI152 tissue, a few minutes on a CPU
    python examples/run_finetune_segmentation.py --init vismae:outputs/vis-mae-pretrain
    python examples/run_finetune_segmentation.py --dataset data/btcv --fold 2 --label_fraction 0.25 \
        --init vismae:outputs/vis-mae-pretrain --metric_pooling per_volume
    python examples/run_finetune_segmentation.py --init swin:microsoft/swin-tiny-patch4-window7-224  # ImageNet

Published recipe with --dataset (150 epochs, warmup 40, batch 32, input 320, AdamW 1e-3 (0.9, 0.95), wd 0.05,
loss 0.4 CE + 0.6 Dice); a short demo schedule without. All options: --help. The work is done by
`vis_mae_hf.app.finetuning.training.run_finetuning`.
"""

from transformers import HfArgumentParser

from vis_mae_hf.app.finetuning.training import FinetuningArguments, run_finetuning


def main() -> None:
    (args,) = HfArgumentParser(FinetuningArguments).parse_args_into_dataclasses()
    run_finetuning(args, task="segmentation")


if __name__ == "__main__":
    main()
