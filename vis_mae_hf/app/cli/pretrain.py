"""`vis-mae pretrain`: pretrain VIS-MAE with Accelerate, on one process or many.

    vis-mae pretrain                                            # the built-in demo corpus, a few minutes on a CPU
    vis-mae pretrain --dataset CORPUS_DIR --modality mr --mixed-precision bf16
    accelerate launch -m vis_mae_hf.app pretrain --dataset CORPUS_DIR --resume-from-checkpoint latest

The options are the fields of `PretrainingArguments`; the work is `run_pretraining`.
"""

from __future__ import annotations

from ..pretraining.loop import PretrainingArguments, run_pretraining
from .arguments import dataclass_parser, set_dataclass_handler


def build_parser(prog: str):
    parser = dataclass_parser(
        PretrainingArguments,
        prog,
        "Pretrain VIS-MAE (masked image modelling) and write a Transformers model folder with its checkpoints, "
        "training summary and reconstruction picture. Without --dataset: the built-in demo corpus and a short "
        "schedule; with it: the published recipe. Many processes: accelerate launch -m vis_mae_hf.app pretrain ...",
    )
    set_dataclass_handler(parser, run_pretraining, output_folders=("output_dir",))
    return parser
