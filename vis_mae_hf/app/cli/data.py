"""`vis-mae data convert|corpus|demo|sources`: the dataset commands. Heavy imports happen inside the handlers."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter

from ...data.corpus import build_corpus
from ...data.demo import demo_cache_dir, load_demo_corpus, load_demo_segmentation
from ...data.modality_preprocessing import ModalityPreprocessing
from ...data.registry import available_sources, convert, converter_class, get_converter
from . import CommandError, set_handler
from .arguments import fallback_window_argument, positive_int


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Convert downstream sets, build the pretraining corpus, prepare the demo data."
    )
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    _add_convert(commands)
    _add_corpus(commands)
    demo = commands.add_parser("demo", help="Build (or load) the built-in demo corpus and segmentation set.")
    set_handler(demo, _demo)
    sources = commands.add_parser("sources", help="List the convertible sources, or describe one.")
    sources.add_argument(
        "name", nargs="?", choices=available_sources(), metavar="NAME",
        help="a source name: print its layout, options and choices",
    )
    set_handler(sources, _sources)
    return parser


def _add_convert(commands) -> None:
    convert = commands.add_parser(
        "convert",
        help="Convert a published downstream set into a datasets.DatasetDict with folds and label ranks.",
        description="Convert the tree of SOURCE_DIR, laid out as its publisher distributes it (see "
        "`vis-mae data sources NAME`), into OUTPUT.",
    )
    convert.add_argument("name", choices=available_sources(), metavar="NAME",
                         help="source name (see `vis-mae data sources`)")
    convert.add_argument("source_dir", help="the published tree, as downloaded and extracted")
    convert.add_argument("--output", required=True, help="output folder: new, empty, or an earlier conversion")
    convert.add_argument("--seed", type=int, default=0, help="seed of the folds and label ranks (default 0)")
    convert.add_argument("--n-folds", type=positive_int, default=5, help="cross-validation folds (default 5)")
    convert.add_argument("--format", choices=("arrow", "parquet"), default="arrow", help="save_to_disk or parquet")
    convert.add_argument("--num-proc", type=positive_int, default=None, help="worker processes for decoding")
    convert.add_argument(
        "--option",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help='source option, VALUE as JSON or a plain string (e.g. slices=all, modalities=["MR","CT"]); repeatable',
    )
    convert.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier, different conversion in OUTPUT (only the files it wrote; nothing else there)",
    )
    set_handler(convert, _convert)


def _add_corpus(commands) -> None:
    corpus = commands.add_parser(
        "corpus",
        help="Build the sharded parquet pretraining corpus from folders of DICOM, NIfTI and image files.",
    )
    corpus.add_argument("inputs", nargs="+", help="folders (walked recursively) or files")
    corpus.add_argument(
        "--output", required=True, help="output folder: new, empty, or a corpus of this command (re-running resumes it)"
    )
    corpus.add_argument("--num-workers", type=positive_int, default=1, help="decoding processes (default 1)")
    corpus.add_argument("--shard-size", type=positive_int, default=2048, help="rows per parquet shard (default 2048)")
    corpus.add_argument("--image-size", type=positive_int, default=224,
                        help="side of the letterboxed images (default 224)")
    corpus.add_argument(
        "--max-images-per-file",
        type=int,
        default=16,
        help="most frames/slices from one multi-frame DICOM or volume, evenly spaced; 0 for all (default 16)",
    )
    corpus.add_argument(
        "--window",
        type=fallback_window_argument,
        default="abdomen",
        help="window of CT images whose file has none (every NIfTI CT): a preset name or WIDTH,LEVEL in HU "
        "(default abdomen); a DICOM header window always wins",
    )
    corpus.add_argument(
        "--modality-for",
        action="append",
        type=parse_modality_hint,
        default=[],
        metavar="INPUT=MODALITY",
        help="modality of the NIfTI/PNG files under one input (DICOM headers always win); repeatable",
    )
    corpus.add_argument("--default-modality", default=None, help="modality of NIfTI/PNG files with no other hint")
    set_handler(corpus, _corpus)


def parse_option(text: str) -> tuple[str, object]:
    """"slices=all" -> ("slices", "all"); 'modalities=["MR","CT"]' -> ("modalities", ["MR", "CT"])."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}.")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def parse_modality_hint(text: str) -> tuple[str, str]:
    """"/data/png=US" -> ("/data/png", "US") (the last "=" splits: folder names may hold one)."""
    path, separator, modality = text.rpartition("=")
    if not separator or not path or not modality:
        raise argparse.ArgumentTypeError(f"expected INPUT=MODALITY, got {text!r}.")
    return path, modality


def _convert(args) -> int:
    options = dict(args.option)
    try:
        get_converter(args.name, **options)  # an unknown option fails here, before any file is read
    except TypeError as error:
        raise CommandError(f"--option: {error}") from error
    convert(
        args.name,
        args.source_dir,
        args.output,
        seed=args.seed,
        n_folds=args.n_folds,
        output_format=args.format,
        num_proc=args.num_proc,
        overwrite=args.overwrite,
        **options,
    )
    return 0


def _corpus(args) -> int:
    build_corpus(
        args.inputs,
        args.output,
        num_workers=args.num_workers,
        shard_size=args.shard_size,
        image_size=args.image_size,
        preprocessing=ModalityPreprocessing(window=args.window, max_images_per_file=args.max_images_per_file or None),
        modality_hints=dict(args.modality_for),
        default_modality=args.default_modality,
    )
    return 0


def _demo(args) -> int:
    corpus = load_demo_corpus(progress=True)
    print(f"demo corpus: {len(corpus)} images {dict(Counter(corpus['modality']))}")
    segmentation = load_demo_segmentation(progress=True)
    print(f"demo segmentation: {segmentation}")
    print(f"cached under {demo_cache_dir()}")
    return 0


def _sources(args) -> int:
    if args.name is None:
        for name in available_sources():
            cls = converter_class(name)
            print(f"{name:22s} {cls.task:15s} {cls.homepage}")
        return 0
    cls = converter_class(args.name)
    print(sys.modules[cls.__module__].__doc__)
    options = [field for field in dataclasses.fields(cls) if field.init]
    print("options: " + (", ".join(f"{field.name}={field.default!r}" for field in options) or "none"))
    return 0
