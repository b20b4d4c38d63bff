"""Pretrain VIS-MAE: `vis-mae pretrain`, as a script for `accelerate launch`.

    accelerate launch examples/run_pretrain.py                       # built-in demo corpus, a few minutes on a CPU
    accelerate launch examples/run_pretrain.py --dataset CORPUS_DIR --modality mr --mixed-precision bf16
    accelerate launch examples/run_pretrain.py --dataset CORPUS_DIR --resume-from-checkpoint latest

The same as `accelerate launch -m vis_mae_hf.app pretrain ...`. All options: `vis-mae pretrain --help`.
"""

import sys

from vis_mae_hf.app.cli import main

COMMAND = ["pretrain"]

if __name__ == "__main__":
    sys.exit(main([*COMMAND, *sys.argv[1:]]))
