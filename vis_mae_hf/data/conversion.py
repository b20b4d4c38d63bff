"""From a publisher's tree to a `datasets.DatasetDict` on disk: the part shared by every source.

A source module (`sources/<set>.py`) says *what* is in the publisher's layout: it lists cases (an image, a volume
or an exam, each with its patient id, split and an optional class to stratify on) and turns one case into rows.
This module does the rest the same way for every set: patient-grouped folds and label ranks (`folds.py`),
the schema (`features.py`), streaming rows to Arrow through `Dataset.from_generator` (constant memory, optional
worker processes), writing `save_to_disk` or parquet shards, the summary, and idempotent re-runs.

Output layout (`OUTPUT`):
    dataset_dict.json, train/, test/ ...      (`--format arrow`, read with `datasets.load_from_disk`), or
    data/train-00000-of-00001.parquet ...     (`--format parquet`, read with `load_dataset("parquet", ...)`)
    vis_mae_conversion.json                   what was converted, with which options, the summary
    folds.json                                seed, method, fold of every patient, counts per fold
    .vis-mae-outputs.json                     the manifest of the files above (`vis_mae_hf.output_folders`)
`load_converted(OUTPUT)` reads either format.

Bad inputs follow one policy for every source (`bad_inputs`): `on_error="stop"` (default) fails before the output
is written, naming the file; `"skip"` leaves it out and lists it in the summary's `skipped`. A source is a folder, or
for the generic `table` converters a CSV/TSV file (`bound_source`).

`OUTPUT` is a new or empty folder, or an earlier conversion of this command (its manifest says so): an identical
request reuses it, a different one replaces it only with `overwrite` (`--overwrite`), and then only the files the
manifest lists are removed; whatever else the user keeps in the folder stays. A source inside `OUTPUT`, or `OUTPUT`
inside the source, is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import tempfile
import uuid
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tqdm.auto import tqdm

from ..output_folders import check_apart, open_output_folder
from ..vocabulary import DATASET_TASKS, SEGMENTATION
from .bad_inputs import (
    SKIP,
    SKIP_HINT,
    BadInputError,
    InputNotice,
    ReportLog,
    SkippedInput,
    case_error_message,
    check_on_error,
    notice_summary,
    refusal,
    skipped_summary,
)
from .features import build_features
from .folds import NOT_IN_CROSS_VALIDATION, FoldAssignment, assign_patient_folds
from .summary import format_summary, summarize_dataset_dict

CONVERSION_METADATA_FILE = "vis_mae_conversion.json"
FOLDS_FILE = "folds.json"
# Bumped when the rows a converter produces change, so an old output is not silently reused.
CONVERSION_FORMAT_VERSION = 2
CONVERSION_TOOL = "vis-mae data convert"  # the command named in the output folder's manifest
SPLITS = ("train", "validation", "test")
_PARQUET_SHARD_BYTES = 256 * 1024 * 1024


@dataclass
class Case:
    """One unit of conversion: an image, a volume or an exam, with what is known before decoding it.

    Attributes:
        patient_id: the patient (or the closest thing the publisher gives); folds group on it and it becomes the
            row's `case_id`.
        split: "train" (the cross-validation pool), "validation" or "test" (official held-out splits).
        files: named input paths, relative to the source directory.
        stratum: case-level class used to stratify folds (None: no stratification).
        info: anything else the converter needs for the rows (a class index, an exam id, ...).
        fold_unit: what folds and label ranks are assigned to; the patient (default), or a slice for one-subject
            sets whose folds are contiguous slabs.
    """

    patient_id: str
    split: str = "train"
    files: dict[str, str] = field(default_factory=dict)
    stratum: Hashable | None = None
    info: dict[str, Any] = field(default_factory=dict)
    fold_unit: str | None = None

    def __post_init__(self):
        if self.fold_unit is None:
            self.fold_unit = self.patient_id


class SourceConverter:
    """Base of the per-source converters. Subclasses are dataclasses whose fields are the conversion options."""

    name: ClassVar[str]
    task: ClassVar[str]
    homepage: ClassVar[str] = ""
    license: ClassVar[str] = ""
    citation: ClassVar[str] = ""

    def label_names(self, source_dir: Path) -> list[str]:
        """Class names (classification) or names of the mask values 0..K (segmentation)."""
        raise NotImplementedError

    def extra_columns(self) -> dict:
        """Source-specific columns, name -> `datasets` feature."""
        return {}

    def list_cases(self, source_dir: Path) -> list[Case]:
        raise NotImplementedError

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict | SkippedInput | InputNotice]:
        """Rows of one case: `image`, the target, `slice_index`, `source_file` and the extra columns.

        A bad case raises (a ValueError or OSError naming the file); a case of several files may instead yield a
        `SkippedInput` for one bad file and go on with the others. `InputNotice`s report what the user should know.
        """
        raise NotImplementedError

    def assign_folds(self, train_cases: list[Case], *, n_folds: int, seed: int) -> FoldAssignment:
        """Folds of the cross-validation pool: patient-grouped, stratified on `Case.stratum` where possible."""
        return assign_patient_folds(
            [case.fold_unit for case in train_cases], [case.stratum for case in train_cases], n_folds=n_folds, seed=seed
        )

    def options(self) -> dict:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def note(self, message: str) -> None:
        """Record something `list_cases` decided that a user should know (a dropped duplicate, a skipped file)."""
        self.__dict__.setdefault("_notes", []).append(message)

    def conversion_notes(self) -> list[str]:
        return list(self.__dict__.get("_notes", []))

    def reject(self, file: str, reason: str) -> None:
        """A bad input `list_cases` found (an image without its mask, a missing file): the conversion then stops
        before writing (`on_error='stop'`) or leaves it out and lists it (`'skip'`); see `bad_inputs`."""
        self.__dict__.setdefault("_rejected", []).append(SkippedInput(file, reason))

    def rejected_inputs(self) -> list[SkippedInput]:
        return list(self.__dict__.get("_rejected", []))

    def description(self) -> str:
        """The source module's docstring: the published layout, the slices and windows chosen, and why."""
        return (sys.modules[type(self).__module__].__doc__ or "").strip()


def require_path(path: Path, what: str) -> Path:
    """`path` if it exists, otherwise a FileNotFoundError naming what was expected there."""
    if not path.exists():
        raise FileNotFoundError(f"Expected {what} at {path}, but it does not exist.")
    return path


def relative_to_source(path: Path, source_dir: Path) -> str:
    try:
        return path.relative_to(source_dir).as_posix()
    except ValueError:
        return path.as_posix()


@dataclass
class ConversionResult:
    output_dir: Path
    summary: dict
    reused: bool

    def load(self):
        return load_converted(self.output_dir)


def convert_source(
    converter: SourceConverter,
    source: str | Path,
    output_dir: str | Path,
    *,
    seed: int = 0,
    n_folds: int = 5,
    output_format: str = "arrow",
    num_proc: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    on_error: str = "stop",
) -> ConversionResult:
    """Convert the tree at `source` (or, for a converter with a `table` option, the CSV/TSV file `source`) into a
    dataset at `output_dir`.

    Idempotent: when `output_dir` already holds a finished conversion with the same source, options, seed, folds,
    format and `on_error`, it is reused as is. Output is written to a temporary sibling and moved into place at the end
    (the metadata file, which marks a conversion finished, last), so an interrupted or refused run never leaves a
    half-written dataset that looks finished. `overwrite` replaces an earlier conversion of this command, removing only
    the files its manifest lists; any other non-empty folder, and an output inside an input or around one, is refused.
    `on_error` is the bad-file policy (`bad_inputs`): "stop" fails naming the file, "skip" leaves it out and lists it.
    """
    if converter.task not in DATASET_TASKS:
        raise ValueError(f"{type(converter).__name__}.task must be one of {DATASET_TASKS}, got {converter.task!r}.")
    if output_format not in ("arrow", "parquet"):
        raise ValueError(f"output_format must be 'arrow' or 'parquet', got {output_format!r}.")
    check_on_error(on_error)
    converter, source_dir, source = bound_source(converter, Path(source).expanduser().resolve())
    output_dir = Path(output_dir).expanduser().resolve()
    check_apart(output_dir, [source])
    request = {
        "format_version": CONVERSION_FORMAT_VERSION,
        "source": converter.name,
        "source_dir": str(source),
        "options": converter.options(),
        "seed": seed,
        "n_folds": n_folds,
        "output_format": output_format,
        "on_error": on_error,
    }
    request = json.loads(json.dumps(request, default=str))  # compare as it will read back (tuples -> lists)
    existing = _existing_conversion(output_dir)
    if existing is not None and not overwrite and all(existing.get(key) == value for key, value in request.items()):
        if progress:
            print(f"{output_dir} already holds this conversion; nothing to do.")
            print(format_summary(existing["summary"]))
        return ConversionResult(output_dir, existing["summary"], reused=True)
    previous_output = _described(existing, request)
    folder = open_output_folder(
        output_dir, CONVERSION_TOOL, inputs=[source], overwrite=overwrite, previous_output=previous_output
    )

    cases, rejected = _listed_cases(converter, source_dir, on_error)
    if source.is_file():  # the table names files anywhere: none may lie in the output
        check_apart(output_dir, sorted({source_dir / file for case in cases for file in case.files.values()}))
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    try:
        summary = _write_conversion(
            converter, cases, rejected, source_dir, request, staging, num_proc=num_proc, progress=progress
        )
        folder.install(staging / "out", last=[CONVERSION_METADATA_FILE])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if progress:
        print(format_summary(summary))
    return ConversionResult(output_dir, summary, reused=False)


def bound_source(converter: SourceConverter, source: Path) -> tuple[SourceConverter, Path, Path]:
    """(converter, the folder its `Case.files` are relative to, the input) for `source`, a folder, or a CSV/TSV file
    for a converter with a `table` option (which then names the file; paths in it are relative to its folder)."""
    if source.is_dir():
        return converter, source, source
    if not source.exists():
        kind = "file or directory" if _reads_tables(converter) else "directory"
        raise FileNotFoundError(f"Source {kind} {source} for {converter.name!r} does not exist.")
    if not _reads_tables(converter):
        raise ValueError(f"{source} is a file, but {converter.name!r} converts a folder laid out as its docs say.")
    return dataclasses.replace(converter, table=source.name), source.parent, source


def _reads_tables(converter: SourceConverter) -> bool:
    return dataclasses.is_dataclass(converter) and any(field.name == "table" for field in dataclasses.fields(converter))


def _described(existing: dict | None, request: dict) -> str:
    """How a refusal names the earlier conversion in the output folder."""
    if existing is None:
        return "an unfinished conversion"
    differing = sorted(key for key, value in request.items() if existing.get(key) != value)
    return f"a different conversion (differs in {', '.join(differing)})" if differing else "this conversion"


def _listed_cases(converter: SourceConverter, source_dir: Path, on_error: str) -> tuple[list[Case], list]:
    """The converter's cases, checked (some, in known splits, some in the cross-validation pool), and the bad inputs
    it rejected while listing; under `on_error='stop'` a rejected input fails the conversion here."""
    converter.__dict__.pop("_notes", None)
    converter.__dict__.pop("_rejected", None)
    cases = converter.list_cases(source_dir)
    rejected = converter.rejected_inputs()
    if rejected and on_error != SKIP:
        raise refusal(rejected, converter.name)
    if not cases and rejected:
        raise BadInputError(
            f"{converter.name}: every input under {source_dir} was left out as bad ({len(rejected)} file(s), e.g. "
            f"{rejected[0].file}: {rejected[0].reason})."
        )
    if not cases:
        raise ValueError(
            f"No {converter.name} cases found under {source_dir}. Expected the publisher's layout:\n"
            f"{converter.description()}"
        )
    unknown_splits = sorted({case.split for case in cases} - set(SPLITS))
    if unknown_splits:
        raise ValueError(f"{converter.name}: cases in unknown split(s) {unknown_splits}; expected {SPLITS}.")
    if not any(case.split == "train" for case in cases):
        raise ValueError(f"{converter.name}: no cases in the cross-validation pool (split 'train') under {source_dir}.")
    return cases, rejected


def _write_conversion(converter, cases, rejected, source_dir, request, staging, *, num_proc, progress) -> dict:
    """Build, summarise and write the splits, folds and metadata into `staging / "out"`; returns the summary."""
    n_folds = request["n_folds"]
    label_names = converter.label_names(source_dir)
    features = build_features(converter.task, label_names, n_folds=n_folds, extra_columns=converter.extra_columns())
    train_cases = [case for case in cases if case.split == "train"]
    assignment = converter.assign_folds(train_cases, n_folds=n_folds, seed=request["seed"])
    reports = ReportLog(staging / "reports")
    dataset_dict = _build_splits(
        converter, cases, source_dir, features, assignment, staging / "cache", num_proc, progress,
        on_error=request["on_error"], reports=reports,
    )
    assignment, dataset_dict = _refolded(converter, train_cases, assignment, dataset_dict, reports, request["seed"])
    summary = summarize_dataset_dict(dataset_dict, task=converter.task, label_names=label_names, n_folds=n_folds)
    _write(dataset_dict, staging / "out", request["output_format"])
    del dataset_dict
    summary["fold_method"] = assignment.method
    summary["fold_notes"] = assignment.notes
    summary["skipped"] = skipped_summary(rejected + reports.skipped())
    summary["notes"] = notice_summary(reports.notices())
    metadata = dict(
        request,
        task=converter.task,
        label_names=label_names,
        mask_labels={str(i): name for i, name in enumerate(label_names)} if converter.task == SEGMENTATION else None,
        homepage=converter.homepage,
        license=converter.license,
        citation=converter.citation,
        source_notes=converter.conversion_notes(),
        summary=summary,
    )
    folds_json = dict(assignment.to_json_dict(), rows_per_fold=summary["splits"]["train"].get("rows_per_fold"))
    (staging / "out" / FOLDS_FILE).write_text(json.dumps(folds_json, indent=2))
    # Written last: its presence is what marks the conversion as finished.
    (staging / "out" / CONVERSION_METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    return summary


def _refolded(converter, train_cases, assignment, dataset_dict, reports, seed):
    """(assignment, dataset_dict) with folds and label ranks over the patients that gave rows.

    Folds are assigned before the cases are read; a patient whose cases gave no rows (skipped as bad, or no slice
    with a label) would hold a fold place and a label rank of nobody, making the label-fraction subsets smaller than
    they say. Its rows' (fold, label ranks) identify each patient uniquely (ranks differ within every fold), so the
    columns are rewritten from the new assignment without re-reading any image.
    """
    with_rows = reports.units_with_rows() & set(assignment.fold_of)
    if with_rows == set(assignment.fold_of):
        return assignment, dataset_dict
    without_rows = sorted(set(assignment.fold_of) - with_rows)
    kept = [case for case in train_cases if case.fold_unit in with_rows]
    refolded = converter.assign_folds(kept, n_folds=assignment.n_folds, seed=seed)
    refolded.notes.append(
        f"{len(without_rows)} patient(s) gave no rows ({', '.join(without_rows[:5])}); folds and label ranks are "
        f"over the {len(with_rows)} that did"
    )
    new_columns = {
        (assignment.fold_of[unit], tuple(assignment.label_rank_of[unit])): (
            refolded.fold_of[unit], refolded.label_rank_of[unit]
        )
        for unit in with_rows
    }

    def relabel(folds, ranks):
        pairs = [new_columns[(fold, tuple(rank))] for fold, rank in zip(folds, ranks)]
        return {"fold": [fold for fold, _ in pairs], "label_rank": [rank for _, rank in pairs]}

    train = dataset_dict["train"]
    dataset_dict["train"] = train.map(
        relabel, batched=True, input_columns=["fold", "label_rank"], features=train.features,
        desc="folds over the patients with rows",
    )
    return refolded, dataset_dict


def _existing_conversion(output_dir: Path) -> dict | None:
    marker = output_dir / CONVERSION_METADATA_FILE
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except json.JSONDecodeError:
        return None


def _build_splits(converter, cases, source_dir, features, assignment, cache_dir, num_proc, progress, *, on_error,
                  reports):
    from datasets import DatasetDict
    from datasets.exceptions import DatasetGenerationError
    from datasets.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    splits = {}
    bars_were_disabled = are_progress_bars_disabled()
    disable_progress_bars()  # our per-case bar is the progress report; the datasets one would duplicate it
    try:
        for split in SPLITS:
            split_cases = [case for case in cases if case.split == split]
            if not split_cases:
                continue
            try:
                dataset = _generate_split(
                    converter, split_cases, source_dir, features, assignment, split, cache_dir, num_proc, progress,
                    policy=(on_error, str(reports.folder)),
                )
            except DatasetGenerationError as error:
                # datasets wraps the converter's error; the user needs the original (it names the bad file). From a
                # worker process only its traceback text comes back: a bad input's message comes through the log.
                stop_error = reports.stop_error()
                if stop_error is not None:
                    raise stop_error from None
                if error.__cause__ is not None:
                    raise error.__cause__ from None
                raise
            if len(dataset) == 0:
                raise ValueError(
                    f"{converter.name}: the {len(split_cases)} case(s) of split {split!r} produced no rows "
                    f"(options: {converter.options()}; skipped inputs: {len(reports.skipped())})."
                )
            splits[split] = dataset
    finally:
        if not bars_were_disabled:
            enable_progress_bars()
    return DatasetDict(splits)


def _generate_split(converter, split_cases, source_dir, features, assignment, split, cache_dir, num_proc, progress,
                    *, policy):
    from datasets import Dataset

    # `from_generator` shards over list-valued kwargs, one generator call per element: hand it one chunk
    # of cases per worker process (a single chunk without workers), so each process shows one bar.
    n_chunks = max(1, min(num_proc or 1, len(split_cases)))
    case_chunks = [tuple(split_cases[index::n_chunks]) for index in range(n_chunks)]
    return Dataset.from_generator(
        generate_rows,
        features=features,
        cache_dir=str(cache_dir),
        gen_kwargs={
            "case_chunks": case_chunks,
            "converter": converter,
            "source_dir": str(source_dir),
            "fold_of": assignment.fold_of if split == "train" else {},
            "label_rank_of": assignment.label_rank_of if split == "train" else {},
            "n_folds": assignment.n_folds,
            "progress": (progress, f"{converter.name} {split}"),
            "policy": policy,
        },
        num_proc=n_chunks if n_chunks > 1 else None,
        split=split,
        # A fresh fingerprint: the source files may have changed since a previous run with equal arguments.
        fingerprint=uuid.uuid4().hex,
    )


def generate_rows(case_chunks, converter, source_dir, fold_of, label_rank_of, n_folds, progress, policy):
    """The `from_generator` generator: the converter's rows, plus case id, fold and label ranks.

    `policy` is (on_error, report folder): what the bad-file policy does with a bad case, and where this process
    reports what it skipped and noticed (`bad_inputs.ReportLog`).
    """

    show, description = progress
    on_error, report_folder = policy
    report = ReportLog(report_folder).writer()
    not_in_cv = [NOT_IN_CROSS_VALIDATION] * n_folds
    source = Path(source_dir)
    cases = [case for chunk in case_chunks for case in chunk]
    for case in tqdm(cases, desc=description, unit="case", disable=not show):
        rows = _case_rows(converter, case, source, on_error, report)
        if rows:
            report.rows_made(case.fold_unit)
        fold = fold_of.get(case.fold_unit, NOT_IN_CROSS_VALIDATION)
        ranks = label_rank_of.get(case.fold_unit, not_in_cv)
        for row in rows:
            row["case_id"] = case.patient_id
            row["fold"] = fold
            row["label_rank"] = ranks
            yield row


def _case_rows(converter, case, source: Path, on_error: str, report) -> list[dict]:
    """The rows of one case, read whole before any is kept, so a case that fails half-way is left out entirely."""
    rows = []
    try:
        for item in converter.iter_rows(case, source):
            if isinstance(item, SkippedInput):
                if on_error != SKIP:
                    raise report.stopped(BadInputError(f"{item.file}: {item.reason.rstrip('.')}. {SKIP_HINT}"))
                report.skipped(item)
            elif isinstance(item, InputNotice):
                report.notice(item)
            else:
                rows.append(item)
    except BadInputError:
        raise
    except (ValueError, OSError) as error:  # what readers raise for bad files (medical errors are ValueErrors)
        files = list(case.files.values())
        message = case_error_message(error, files)
        if on_error != SKIP:
            raise report.stopped(BadInputError(f"{message.rstrip('.')}. {SKIP_HINT}")) from error
        for file in files:
            report.skipped(SkippedInput(file, message))
        return []
    return rows


def _write(dataset_dict, output: Path, output_format: str) -> None:
    if output_format == "arrow":
        dataset_dict.save_to_disk(str(output))
        return
    data_dir = output / "data"
    data_dir.mkdir(parents=True)
    for split, dataset in dataset_dict.items():
        n_shards = max(1, math.ceil(dataset.data.nbytes / _PARQUET_SHARD_BYTES))
        for index in range(n_shards):
            shard = dataset.shard(n_shards, index, contiguous=True)
            shard.to_parquet(str(data_dir / f"{split}-{index:05d}-of-{n_shards:05d}.parquet"))


def load_converted(path: str | Path, *, output_format: str | None = None):
    """Load a dataset written by `convert_source` (either format) as a `DatasetDict`."""
    from datasets import DatasetDict, load_dataset, load_from_disk

    path = Path(path)
    if output_format is None:
        output_format = "arrow" if (path / "dataset_dict.json").is_file() else "parquet"
    if output_format == "arrow":
        if not (path / "dataset_dict.json").is_file():
            raise FileNotFoundError(f"{path} holds no saved DatasetDict (dataset_dict.json missing).")
        return load_from_disk(str(path))
    shards = sorted((path / "data").glob("*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{path}/data holds no parquet shards.")
    data_files: dict[str, list[str]] = {}
    for shard in shards:
        data_files.setdefault(shard.name.split("-", 1)[0], []).append(str(shard))
    return DatasetDict(
        {split: load_dataset("parquet", data_files=files, split="train") for split, files in data_files.items()}
    )


def read_conversion_metadata(path: str | Path) -> dict:
    """The `vis_mae_conversion.json` of a converted dataset (task, label names, options, summary)."""
    marker = Path(path) / CONVERSION_METADATA_FILE
    if not marker.is_file():
        raise FileNotFoundError(f"{path} is not a finished vis-mae conversion ({CONVERSION_METADATA_FILE} missing).")
    return json.loads(marker.read_text())
