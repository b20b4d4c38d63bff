"""Name -> converter of every source (the published sets and the generic `decathlon`, `image-mask-pairs` and `table`
for a user's own data), and the one-call Python API `convert(name, source, output)`."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from .conversion import convert_source

# name -> "module:Class"
SOURCES: dict[str, str] = {
    "btcv": "vis_mae_hf.data.sources.btcv:BTCVConverter",
    "acdc": "vis_mae_hf.data.sources.acdc:ACDCConverter",
    "amos": "vis_mae_hf.data.sources.amos:AMOSConverter",
    "prostate158": "vis_mae_hf.data.sources.prostate158:Prostate158Converter",
    "lgg": "vis_mae_hf.data.sources.lgg:LGGConverter",
    "busi_segmentation": "vis_mae_hf.data.sources.busi:BUSISegmentationConverter",
    "tucc": "vis_mae_hf.data.sources.tucc:TUCCConverter",
    "isic2017": "vis_mae_hf.data.sources.isic2017:ISIC2017Converter",
    "busi_classification": "vis_mae_hf.data.sources.busi:BUSIClassificationConverter",
    "covid_ct": "vis_mae_hf.data.sources.covid_ct:COVIDCTConverter",
    "mrnet": "vis_mae_hf.data.sources.mrnet:MRNetConverter",
    "knee_oa": "vis_mae_hf.data.sources.knee_oa:KneeOAConverter",
    "chestxray14": "vis_mae_hf.data.sources.chestxray14:ChestXray14Converter",
    "labelled_studies": "vis_mae_hf.data.sources.labelled_studies:LabelledStudiesConverter",
    # A user's own data in the common generic layouts.
    "decathlon": "vis_mae_hf.data.sources.decathlon:DecathlonConverter",
    "image-mask-pairs": "vis_mae_hf.data.sources.image_mask_pairs:ImageMaskPairsConverter",
    "table": "vis_mae_hf.data.sources.table:TableConverter",
}


def available_sources() -> list[str]:
    return list(SOURCES)


def converter_class(name: str):
    if name not in SOURCES:
        raise KeyError(f"Unknown source {name!r}; available: {', '.join(SOURCES)}.")
    module_name, class_name = SOURCES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_converter(name: str, **options):
    """The converter of source `name`, configured with its options (e.g. `slices="all"`)."""
    cls = converter_class(name)
    known = {field.name for field in dataclasses.fields(cls) if field.init}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"Source {name!r} has no option(s) {unknown}; its options are {sorted(known) or 'none'}.")
    return cls(**options)


def convert(
    name: str,
    source: str | Path,
    output_dir: str | Path,
    *,
    on_error: str = "stop",
    seed: int = 0,
    n_folds: int = 5,
    output_format: str = "arrow",
    num_proc: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **options,
):
    """Convert the tree of source `name` at `source` (a CSV/TSV file for `table`) into a dataset at `output_dir`.

    `on_error` is the bad-file policy: "stop" fails naming the file, "skip" leaves it out and lists it in the summary.
    Returns a `ConversionResult` (`.output_dir`, `.summary`, `.load()` -> `DatasetDict`).
    """

    return convert_source(
        get_converter(name, **options),
        source,
        output_dir,
        seed=seed,
        n_folds=n_folds,
        output_format=output_format,
        num_proc=num_proc,
        overwrite=overwrite,
        progress=progress,
        on_error=on_error,
    )
