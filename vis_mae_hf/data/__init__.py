"""Datasets for VIS-MAE: the paper's downstream sets as `datasets.DatasetDict`s, the pretraining corpus, demo data.

Public API (imported lazily, so `import vis_mae_hf.data` and the `vis-mae` CLI stay fast):
    convert(name, source_dir, output_dir, *, seed=0, n_folds=5, output_format="arrow", num_proc=None, **options)
    available_sources(), get_converter(name, **options), load_converted(path), read_conversion_metadata(path)
    select_training_subset(dataset, fold, fraction), select_validation_fold(dataset, fold), LABEL_FRACTIONS
    build_corpus(inputs, output_dir, *, num_workers=1, shard_size=2048, ...), load_corpus(dir, modality="generic")
    load_demo_corpus(), load_demo_segmentation()
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "convert": "registry",
    "available_sources": "registry",
    "get_converter": "registry",
    "load_converted": "conversion",
    "read_conversion_metadata": "conversion",
    "convert_source": "conversion",
    "select_training_subset": "folds",
    "select_validation_fold": "folds",
    "LABEL_FRACTIONS": "folds",
    "build_corpus": "corpus",
    "load_corpus": "corpus",
    "read_corpus_summary": "corpus",
    "load_demo_corpus": "demo",
    "load_demo_segmentation": "demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
