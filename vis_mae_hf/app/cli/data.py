"""`vis-mae data convert|corpus|demo|sources`: the dataset commands. Heavy imports happen inside the handlers.

`data convert` passes a source's options as `--option KEY=VALUE`, or as the flags shared by the sources that have the
option (`CONVERTER_OPTION_FLAGS`: `--window`, `--modality`, `--axis`, `--keep-empty-slices`, `--label-names`, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter

from ...data.bad_inputs import ON_ERROR_CHOICES
from ...data.corpus import build_corpus
from ...data.demo import demo_cache_dir, load_demo_corpus, load_demo_segmentation
from ...data.modality_preprocessing import ModalityPreprocessing
from ...data.registry import available_sources, convert, converter_class, get_converter
from ...data.sources.decathlon import SLICE_AXES
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


# Flags of `data convert` that set a converter option of the same meaning in every source that has it (dest -> option).
CONVERTER_OPTION_FLAGS = {
    "window": "window",
    "modality": "modality",
    "axis": "axis",
    "keep_empty_slices": "keep_empty_slices",
    "label_names": "labels",
    "colour": "colour",
    "path_column": "path_column",
    "label_column": "label_columns",
    "patient_column": "patient_column",
}


def _add_convert(commands) -> None:
    convert = commands.add_parser(
        "convert",
        help="Convert a published downstream set, or your own, into a datasets.DatasetDict with folds and label ranks.",
        description="Convert SOURCE into OUTPUT: a published set laid out as its publisher distributes it, or your own "
        "data as a Decathlon/nnU-Net folder (decathlon), image and mask files (image-mask-pairs) or a table of files "
        "and labels (table). `vis-mae data sources NAME` describes each layout and its options.",
    )
    convert.add_argument("name", choices=available_sources(), metavar="NAME",
                         help="source name (see `vis-mae data sources`)")
    convert.add_argument("source_dir", metavar="SOURCE",
                         help="the source folder; for `table` (and `image-mask-pairs` from a table) a CSV/TSV file")
    convert.add_argument("--output", required=True, help="output folder: new, empty, or an earlier conversion")
    convert.add_argument(
        "--on-error", choices=ON_ERROR_CHOICES, default="stop",
        help="a bad input file (unreadable, an image without its mask, a mask of another size or with undeclared "
        "values): stop before writing anything, naming it (default), or skip it and list it in the summary",
    )
    convert.add_argument("--seed", type=int, default=0, help="seed of the folds and label ranks (default 0)")
    convert.add_argument("--n-folds", type=positive_int, default=5, help="cross-validation folds (default 5)")
    convert.add_argument("--format", choices=("arrow", "parquet"), default="arrow", help="save_to_disk or parquet")
    convert.add_argument("--num-proc", type=positive_int, default=None, help="worker processes for decoding")
    _add_converter_option_flags(convert)
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


def _add_converter_option_flags(convert) -> None:
    """The flags of `CONVERTER_OPTION_FLAGS`; each applies to the sources with that option."""
    group = convert.add_argument_group("source options (each applies to the sources that have it)")
    group.add_argument(
        "--window", type=fallback_window_argument, default=None,
        help="CT window: a preset name or WIDTH,LEVEL in HU (decathlon, image-mask-pairs, table, labelled_studies, "
        "btcv, amos)",
    )
    group.add_argument("--modality", default=None,
                       help="modality of the images, e.g. CT or MR (decathlon: instead of dataset.json's)")
    group.add_argument("--axis", choices=tuple(SLICE_AXES), default=None,
                       help="decathlon: the axis slices are cut along (default axial)")
    group.add_argument("--keep-empty-slices", action="store_true", default=None,
                       help="decathlon: keep slices without any label too (default: only slices with a label)")
    group.add_argument("--label-names", type=comma_list, default=None, metavar="NAME,NAME,...",
                       help="image-mask-pairs: the names of mask values 0, 1, ... (default background,foreground); "
                       "table: the order of the classes")
    group.add_argument("--colour", action="store_true", default=None,
                       help="image-mask-pairs, table: keep colour images in colour (default grey)")
    group.add_argument("--path-column", default=None, help="table: the column of image paths (default path)")
    group.add_argument("--label-column", action="append", default=None,
                       help="table: the label column (default label); repeat for multi-label, one 0/1 column a class")
    group.add_argument("--patient-column", default=None,
                       help="table: the patient column (rows of one patient share a fold; default: one file a patient)")


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


def comma_list(text: str) -> list[str]:
    """"background,liver, tumour" -> ["background", "liver", "tumour"]; an empty name is a usage error."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}.")
    return names


def converter_options(args) -> dict:
    """The source options of a `data convert` command line: `--option KEY=VALUE`s and the option flags, checked
    against the source's options (a flag it has no option for is an error, not ignored)."""
    options = dict(args.option)
    known = {field.name for field in dataclasses.fields(converter_class(args.name)) if field.init}
    for dest, option in CONVERTER_OPTION_FLAGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        flag = "--" + dest.replace("_", "-")
        if option not in known:
            raise CommandError(f"{flag} does not apply to source {args.name!r}; its options are {sorted(known)}.")
        if option in options:
            raise CommandError(f"{flag} and --option {option}=... both set {option}; give one.")
        options[option] = value
    return options


def _convert(args) -> int:
    options = converter_options(args)
    try:
        get_converter(args.name, **options)  # an unknown option fails here, before any file is read
    except TypeError as error:
        raise CommandError(f"--option: {error}") from error
    convert(
        args.name,
        args.source_dir,
        args.output,
        on_error=args.on_error,
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
