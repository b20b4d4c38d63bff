"""Fine-tune VIS-MAE for image classification (single- or multi-label) with `transformers.Trainer`.

    python examples/run_finetune_classification.py          # demo (plumbing only): is an MNI slice upside down?
    python examples/run_finetune_classification.py --dataset data/covid_ct --fold 0 --label_fraction 0.5 \
        --init vismae:outputs/vis-mae-pretrain
    python examples/run_finetune_classification.py --dataset data/chestxray14   # multi-label: `labels` column

Published recipe with --dataset (50 epochs, warmup 10, batch 48, input 224, plain [0, 1] pixels); a short demo
schedule without. Reports ROC-AUC and PR-AUC (scikit-learn) on the validation fold. All options: --help. The work is
done by `vis_mae_hf.app.finetuning.training.run_finetuning`.
"""

from transformers import HfArgumentParser

from vis_mae_hf.app.finetuning.training import FinetuningArguments, run_finetuning


def main() -> None:
    (args,) = HfArgumentParser(FinetuningArguments).parse_args_into_dataclasses()
    run_finetuning(args, task="classification")


if __name__ == "__main__":
    main()
