"""`vis-mae data convert|corpus|demo|sources`: the dataset commands. Heavy imports happen inside the handlers."""

from __future__ import annotations

import argparse
import json


def register_cli(subparsers) -> None:
    data = subparsers.add_parser("data", help="Convert downstream sets, build the pretraining corpus, demo data.")
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    convert = commands.add_parser(
        "convert",
        help="Convert a published downstream set into a datasets.DatasetDict with folds and label ranks.",
        description="Convert the tree of SOURCE_DIR, laid out as its publisher distributes it (see "
        "`vis-mae data sources NAME`), into OUTPUT.",
    )
    convert.add_argument("name", help="source name (see `vis-mae data sources`)")
    convert.add_argument("source_dir", help="the published tree, as downloaded and extracted")
    convert.add_argument("--output", required=True, help="output folder")
    convert.add_argument("--seed", type=int, default=0, help="seed of the folds and label ranks (default 0)")
    convert.add_argument("--n-folds", type=int, default=5, help="cross-validation folds (default 5)")
    convert.add_argument("--format", choices=("arrow", "parquet"), default="arrow", help="save_to_disk or parquet")
    convert.add_argument("--num-proc", type=int, default=None, help="worker processes for decoding")
    convert.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='source option, VALUE as JSON or a plain string (e.g. slices=all, modalities=["MR","CT"]); repeatable',
    )
    convert.add_argument("--overwrite", action="store_true", help="replace an existing, different conversion")
    convert.set_defaults(handler=_convert)

    corpus = commands.add_parser(
        "corpus",
        help="Build the sharded parquet pretraining corpus from folders of DICOM, NIfTI and image files.",
    )
    corpus.add_argument("inputs", nargs="+", help="folders (walked recursively) or files")
    corpus.add_argument("--output", required=True, help="output folder (re-running resumes it)")
    corpus.add_argument("--num-workers", type=int, default=1, help="decoding processes (default 1)")
    corpus.add_argument("--shard-size", type=int, default=2048, help="rows per parquet shard (default 2048)")
    corpus.add_argument("--image-size", type=int, default=224, help="side of the letterboxed images (default 224)")
    corpus.add_argument(
        "--max-images-per-file",
        type=int,
        default=16,
        help="most frames/slices from one multi-frame DICOM or volume, evenly spaced; 0 for all (default 16)",
    )
    corpus.add_argument("--ct-window", default="abdomen", help="CT window when the header has none (preset or W,L)")
    corpus.add_argument(
        "--modality-for",
        action="append",
        default=[],
        metavar="INPUT=MODALITY",
        help="modality of the NIfTI/PNG files under one input (DICOM headers always win); repeatable",
    )
    corpus.add_argument("--default-modality", default=None, help="modality of NIfTI/PNG files with no other hint")
    corpus.set_defaults(handler=_corpus)

    demo = commands.add_parser("demo", help="Build (or load) the built-in demo corpus and segmentation set.")
    demo.set_defaults(handler=_demo)

    sources = commands.add_parser("sources", help="List the convertible sources, or describe one.")
    sources.add_argument("name", nargs="?", help="a source name: print its layout, options and choices")
    sources.set_defaults(handler=_sources)


def parse_options(pairs: list[str]) -> dict:
    """["slices=all", 'modalities=["MR","CT"]'] -> {"slices": "all", "modalities": ["MR", "CT"]}."""
    options = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise argparse.ArgumentTypeError(f"--option expects KEY=VALUE, got {pair!r}.")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _convert(args) -> int:
    from ...data.registry import convert

    convert(
        args.name,
        args.source_dir,
        args.output,
        seed=args.seed,
        n_folds=args.n_folds,
        output_format=args.format,
        num_proc=args.num_proc,
        overwrite=args.overwrite,
        **parse_options(args.option),
    )
    return 0


def _parse_window(text: str):
    parts = text.split(",")
    return (float(parts[0]), float(parts[1])) if len(parts) == 2 else text


def _corpus(args) -> int:
    from ...data.corpus import build_corpus
    from ...data.modality_preprocessing import ModalityPreprocessing

    hints = {}
    for pair in args.modality_for:
        path, separator, modality = pair.rpartition("=")
        if not separator or not path:
            raise argparse.ArgumentTypeError(f"--modality-for expects INPUT=MODALITY, got {pair!r}.")
        hints[path] = modality
    build_corpus(
        args.inputs,
        args.output,
        num_workers=args.num_workers,
        shard_size=args.shard_size,
        image_size=args.image_size,
        preprocessing=ModalityPreprocessing(
            window=_parse_window(args.ct_window), max_images_per_file=args.max_images_per_file or None
        ),
        modality_hints=hints,
        default_modality=args.default_modality,
    )
    return 0


def _demo(args) -> int:
    from collections import Counter

    from ...data.demo import demo_cache_dir, load_demo_corpus, load_demo_segmentation

    corpus = load_demo_corpus(progress=True)
    print(f"demo corpus: {len(corpus)} images {dict(Counter(corpus['modality']))}")
    segmentation = load_demo_segmentation(progress=True)
    print(f"demo segmentation: {segmentation}")
    print(f"cached under {demo_cache_dir()}")
    return 0


def _sources(args) -> int:
    from ...data.registry import available_sources, converter_class

    if args.name is None:
        for name in available_sources():
            cls = converter_class(name)
            print(f"{name:22s} {cls.task:15s} {cls.homepage}")
        return 0
    import dataclasses
    import sys

    cls = converter_class(args.name)
    print(sys.modules[cls.__module__].__doc__)
    options = [field for field in dataclasses.fields(cls) if field.init]
    print("options: " + (", ".join(f"{field.name}={field.default!r}" for field in options) or "none"))
    return 0
