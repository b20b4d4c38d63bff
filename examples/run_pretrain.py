"""Pretrain VIS-MAE.

    accelerate launch examples/run_pretrain.py                       # built-in demo corpus, a few minutes on a CPU
    accelerate launch examples/run_pretrain.py --dataset CORPUS_DIR --modality mr --mixed_precision bf16
    accelerate launch examples/run_pretrain.py --dataset CORPUS_DIR --resume_from_checkpoint latest

All options: `python examples/run_pretrain.py --help`. The work is done by `vis_mae_hf.app.pretraining.loop`.
"""

from transformers import HfArgumentParser

from vis_mae_hf.app.pretraining.loop import PretrainingArguments, run_pretraining


def main() -> None:
    (args,) = HfArgumentParser(PretrainingArguments).parse_args_into_dataclasses()
    run_pretraining(args)


if __name__ == "__main__":
    main()
