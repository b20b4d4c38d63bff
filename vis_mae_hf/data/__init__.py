"""Datasets for VIS-MAE: the paper's downstream sets and a user's own (Decathlon/nnU-Net folders, image and mask
files, tables of files and labels) as `datasets.DatasetDict`s, the pretraining corpus, demo data.

    convert(name, source, output_dir, *, on_error="stop", seed=0, n_folds=5, output_format="arrow", num_proc=None,
            **options)
    available_sources(), load_converted(path), read_conversion_metadata(path)
    select_training_subset(dataset, fold, fraction), select_validation_fold(dataset, fold), LABEL_FRACTIONS
    build_corpus(inputs, output_dir, *, num_workers=1, shard_size=2048, ...), load_corpus(dir, modality="generic")
    load_demo_corpus(), load_demo_segmentation()
    load_pretraining_images(name, modality), load_labelled_dataset(name, task): a dataset by the name a user gives
"""

from .conversion import load_converted, read_conversion_metadata
from .corpus import build_corpus, load_corpus
from .demo import load_demo_corpus, load_demo_segmentation
from .folds import LABEL_FRACTIONS, select_training_subset, select_validation_fold
from .loading import load_labelled_dataset, load_pretraining_images
from .registry import available_sources, convert

__all__ = [
    "LABEL_FRACTIONS",
    "available_sources",
    "build_corpus",
    "convert",
    "load_converted",
    "load_corpus",
    "load_demo_corpus",
    "load_demo_segmentation",
    "load_labelled_dataset",
    "load_pretraining_images",
    "read_conversion_metadata",
    "select_training_subset",
    "select_validation_fold",
]
