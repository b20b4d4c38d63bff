"""Make the pretraining data for bench/gpu_check.sh.

    python bench/make_gpu_corpus.py export DIR          # here: the demo corpus (image, modality) saved to DIR
    python bench/make_gpu_corpus.py replicate DIR OUT N # on the GPU machine: DIR repeated to N rows, saved to OUT

The GPU machine has neither pydicom-data nor nilearn, so the demo corpus travels as a small saved dataset; one
pass over 49 images is too short to time, so it is repeated (the timing is of the training loop, not the data).
"""

import sys

import datasets


def main() -> None:
    action = sys.argv[1]
    if action == "export":
        from vis_mae_hf.data.demo import load_demo_corpus

        load_demo_corpus().select_columns(["image", "modality"]).save_to_disk(sys.argv[2])
    elif action == "replicate":
        corpus = datasets.load_from_disk(sys.argv[2])
        copies = -(-int(sys.argv[4]) // len(corpus))
        datasets.concatenate_datasets([corpus] * copies).select(range(int(sys.argv[4]))).save_to_disk(sys.argv[3])
    else:
        raise SystemExit(f"unknown action {action!r}: export or replicate")


if __name__ == "__main__":
    main()
