"""`vis-mae embed`: a model's pooled encoder embeddings of a dataset, written as a dataset for linear probes and kNN.

    vis-mae embed --model outputs/vis-mae-pretrain --dataset data/covid_ct --output embeddings/covid_ct

The work is `vis_mae_hf.app.finetuning.embeddings.write_embeddings`; its docstring says what an embedding is and
what the output holds.
"""

from __future__ import annotations

import argparse

from ..finetuning.embeddings import EMBEDDING_COLUMN, write_embeddings
from . import set_handler
from .arguments import output_folder, positive_int


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Write the encoder's pooled embedding of every image of a dataset (LayerNorm of the last stage's "
        f"tokens, then their mean) as a dataset: the input's columns except image and mask, plus `{EMBEDDING_COLUMN}`"
        "; load it with datasets.load_from_disk for linear probes and kNN.",
    )
    parser.add_argument("--model", required=True, help="a VIS-MAE model folder or cached Hub repo id, with its "
                        "image processor (pretraining, segmentation or classification: only the encoder is used)")
    parser.add_argument("--dataset", required=True, help="a `vis-mae data convert` output, a save_to_disk folder, a "
                        "cached Hub dataset id, or demo (the classification demo)")
    parser.add_argument("--output", required=True, help="output folder (created; one this command wrote is "
                        "replaced only with --overwrite)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass (default 32)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output of vis-mae embed there")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    set_handler(parser, _run)
    return parser


def _run(args: argparse.Namespace) -> int:
    output_folder(args.output)  # a file there is refused before the model is loaded
    write_embeddings(
        args.model, args.dataset, args.output, batch_size=args.batch_size, device=args.device,
        overwrite=args.overwrite, progress=not args.quiet,
    )
    return 0
