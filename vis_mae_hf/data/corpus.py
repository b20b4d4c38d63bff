"""The unlabelled pretraining corpus: folders of DICOM, NIfTI and ordinary images -> sharded parquet of 224x224 grey.

`build_corpus(inputs, output_dir)` (CLI: `vis-mae data corpus INPUT_DIRS... --output DIR`):
1. walks the inputs in a fixed order (`os.scandir`, entries sorted per folder, depth first), streaming: only one
   folder's listing is in memory at a time, never the list of all files;
2. decodes each file in a worker process (`num_workers`), with at most a few tasks per worker in flight, so memory
   stays constant whatever the number of files: modality from the DICOM header (or a folder name / a hint for
   NIfTI and PNG), per-modality intensity preprocessing (`modality_preprocessing`), at most
   `max_images_per_file` frames/slices per multi-frame file or volume, letterboxed to `image_size` (aspect kept,
   black padding);
3. writes rows in input order to `shard-00000.parquet`, ... of about `shard_size` rows (a shard ends at a file
   boundary), each with a sidecar `shard-00000.json` (files consumed, images per modality, skipped files and why);
4. writes `corpus_summary.json`: images and files by modality, skipped files with reasons, options.

Rows: `image` (the HF `Image` struct `{"bytes": PNG, "path": None}`, so `load_dataset("parquet", ...)` decodes it
as an image), `modality` (CT, MR, PET, XRAY, US), `source_path` (the file, as found under its input), `frame_index`
(frame of a multi-frame DICOM or axial slice of a volume, -1 for single images) and `height`/`width` (the size of
the source image before letterboxing).

Resumable: a shard with its sidecar is finished. A re-run with the same inputs and options skips the files the
finished shards consumed (checking the walk still reaches the same file at that point) and goes on from there; a
run that finished only re-prints its summary. `load_corpus(dir, modality="generic"|"ct"|"mr"|...)` gives the
Generic corpus or one modality's, as a `Dataset` or, with `streaming=True`, an `IterableDataset`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..vocabulary import (
    GENERIC,
    IMAGING_MODALITIES,
    imaging_modality,
    selected_modalities,
)
from .features import png_bytes
from .modality_preprocessing import (
    ModalityPreprocessing,
    SkippedFile,
    letterbox,
    read_images,
)

CORPUS_SUMMARY_FILE = "corpus_summary.json"
CORPUS_OPTIONS_FILE = "corpus_options.json"
_SHARD_STEM = "shard-{:05d}"
# Files that are obviously not images are counted, not listed as skipped: a clinical export is full of them.
_NON_IMAGE_SUFFIXES = {
    ".txt", ".csv", ".tsv", ".json", ".xml", ".md", ".html", ".htm", ".pdf", ".py", ".zip", ".tar", ".tgz", ".7z",
    ".xlsx", ".xls", ".log", ".yaml", ".yml", ".ini", ".cfg", ".doc", ".docx", ".npy", ".npz", ".h5", ".hdf5",
    ".parquet", ".arrow", ".mat", ".pkl",
}
_SKIPPED_LISTED_IN_SUMMARY = 1000
_ROWS_PER_ROW_GROUP = 256


def corpus_features():
    from datasets import Features, Image, Value

    return Features(
        {
            "image": Image(),
            "modality": Value("string"),
            "source_path": Value("string"),
            "frame_index": Value("int32"),
            "height": Value("int32"),
            "width": Value("int32"),
        }
    )


@dataclass(frozen=True)
class InputFile:
    path: str
    modality_hint: str | None


@dataclass
class FileResult:
    """What one worker made of one file: rows, or the reason it gave none."""

    path: str
    rows: list[dict]
    modality: str | None = None
    skipped_reason: str | None = None
    skipped_category: str | None = None
    ignored: bool = False


def iter_input_files(
    inputs: Sequence[str | Path],
    *,
    modality_hints: Mapping[str | Path, str] | None = None,
    default_modality: str | None = None,
    exclude: Iterable[Path] = (),
) -> Iterator[InputFile]:
    """Every file under `inputs`, in a reproducible order, with the modality hint of its input.

    Hidden entries (starting with ".") and the `exclude` folders (e.g. the output inside an input) are skipped.
    """
    hints = {Path(path).resolve(): imaging_modality(modality) for path, modality in (modality_hints or {}).items()}
    default_modality = None if default_modality is None else imaging_modality(default_modality)
    excluded = {Path(path).resolve() for path in exclude}
    for root in inputs:
        root = Path(root).resolve()
        if not root.exists():
            raise FileNotFoundError(f"Corpus input {root} does not exist.")
        hint = hints.get(root, default_modality)
        if root.is_file():
            yield InputFile(str(root), hint)
            continue
        yield from _walk(root, hint, excluded)


def _walk(folder: Path, hint: str | None, excluded: set[Path]) -> Iterator[InputFile]:
    try:
        with os.scandir(folder) as scanner:
            entries = sorted((entry for entry in scanner if not entry.name.startswith(".")), key=lambda e: e.name)
    except PermissionError:
        return
    subfolders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subfolders.append(Path(entry.path))
        elif entry.is_file():
            yield InputFile(entry.path, hint)
    del entries  # only this folder's listing was in memory; release it before descending
    for subfolder in subfolders:
        if subfolder.resolve() not in excluded:
            yield from _walk(subfolder, hint, excluded)


def process_file(task: tuple[InputFile, ModalityPreprocessing, int]) -> FileResult:
    """Worker: one file -> its letterboxed PNG rows (or why it has none). Never raises for a bad file."""

    input_file, preprocessing, image_size = task
    path = Path(input_file.path)
    name = path.name.lower()
    compressed_non_nifti = name.endswith(".gz") and not name.endswith(".nii.gz")  # .tar.gz, .csv.gz, ...
    if compressed_non_nifti or path.suffix.lower() in _NON_IMAGE_SUFFIXES:
        return FileResult(input_file.path, [], ignored=True)
    try:
        modality, images = read_images(path, preprocessing, input_file.modality_hint)
        if not images:
            raise SkippedFile("every frame/slice is constant", SkippedFile.NO_CONTENT)
        rows = []
        for frame_index, image01 in images:
            rows.append(
                {
                    "image": {"bytes": png_bytes(letterbox(image01, image_size)), "path": None},
                    "modality": modality,
                    "source_path": input_file.path,
                    "frame_index": int(frame_index),
                    "height": int(image01.shape[0]),
                    "width": int(image01.shape[1]),
                }
            )
        return FileResult(input_file.path, rows, modality=modality)
    except SkippedFile as skipped:
        return FileResult(input_file.path, [], skipped_reason=str(skipped), skipped_category=skipped.category)
    except Exception as error:  # a decoder bug on one odd file must not stop a million-file run: report it
        return FileResult(
            input_file.path,
            [],
            skipped_reason=f"{type(error).__name__}: {error}",
            skipped_category=SkippedFile.UNREADABLE,
        )


def _ordered_results(tasks: Iterator, num_workers: int) -> Iterator[FileResult]:
    """`process_file` over `tasks`, in order, with a bounded number of tasks in flight (constant memory)."""
    if num_workers <= 1:
        for task in tasks:
            yield process_file(task)
        return
    # Forked workers inherit this process's imports (torch, pydicom, nibabel), so none of them imports them again.
    max_in_flight = 4 * num_workers
    with multiprocessing.Pool(num_workers) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.apply_async(process_file, (task,)))
            if len(pending) >= max_in_flight:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


class _ShardWriter:
    """Rows of one shard, streamed to `shard-XXXXX.parquet.tmp` in row groups, renamed when complete."""

    def __init__(self, output_dir: Path, index: int, schema):
        self.output_dir, self.index, self.schema = output_dir, index, schema
        self.stem = _SHARD_STEM.format(index)
        self.rows = 0
        self.buffer: list[dict] = []
        self.writer = None
        self.images_by_modality: Counter = Counter()
        self.files_by_modality: Counter = Counter()
        self.skipped: list[dict] = []
        self.ignored = 0
        self.files = 0
        self.last_file: str | None = None

    def add(self, result: FileResult) -> None:
        self.files += 1
        self.last_file = result.path
        if result.ignored:
            self.ignored += 1
        elif result.skipped_reason is not None:
            self.skipped.append(
                {"path": result.path, "category": result.skipped_category, "reason": result.skipped_reason}
            )
        else:
            self.files_by_modality[result.modality] += 1
            self.images_by_modality[result.modality] += len(result.rows)
            self.buffer.extend(result.rows)
            self.rows += len(result.rows)
            if len(self.buffer) >= _ROWS_PER_ROW_GROUP:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffer:
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.output_dir / f"{self.stem}.parquet.tmp", self.schema)
        self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
        self.buffer = []

    def close(self, files_consumed: int) -> dict:
        self._flush()
        if self.writer is not None:
            self.writer.close()
            os.replace(self.output_dir / f"{self.stem}.parquet.tmp", self.output_dir / f"{self.stem}.parquet")
        sidecar = {
            "shard": self.index,
            "rows": self.rows,
            "files": self.files,
            "files_consumed": files_consumed,
            "last_file": self.last_file,
            "images_by_modality": dict(self.images_by_modality),
            "files_by_modality": dict(self.files_by_modality),
            "ignored_non_image_files": self.ignored,
            "skipped": self.skipped,
        }
        _write_json_atomically(self.output_dir / f"{self.stem}.json", sidecar)
        return sidecar


def _write_json_atomically(path: Path, payload: dict) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(payload, indent=1))
    os.replace(temporary, path)


def _finished_shards(output_dir: Path) -> list[dict]:
    """Sidecars of the finished shards 0..k-1 (stops at the first gap: later ones are redone)."""
    finished = []
    while True:
        stem = _SHARD_STEM.format(len(finished))
        sidecar_path = output_dir / f"{stem}.json"
        if not sidecar_path.is_file():
            return finished
        sidecar = json.loads(sidecar_path.read_text())
        if sidecar["rows"] and not (output_dir / f"{stem}.parquet").is_file():
            return finished
        finished.append(sidecar)


def _remove_unfinished(output_dir: Path, first_unfinished: int) -> None:
    for path in output_dir.glob("shard-*"):
        stem = path.name.split(".", 1)[0]
        try:
            index = int(stem.split("-", 1)[1])
        except (IndexError, ValueError):
            continue
        if index >= first_unfinished or path.name.endswith(".tmp"):
            path.unlink()


def build_corpus(
    inputs: Sequence[str | Path],
    output_dir: str | Path,
    *,
    num_workers: int = 1,
    shard_size: int = 2048,
    image_size: int = 224,
    preprocessing: ModalityPreprocessing | None = None,
    modality_hints: Mapping[str | Path, str] | None = None,
    default_modality: str | None = None,
    input_files: Iterable[InputFile] | None = None,
    progress: bool = True,
) -> dict:
    """Build (or resume) the pretraining corpus from `inputs` into `output_dir`; returns the summary.

    Args:
        inputs: folders (walked recursively) or files.
        num_workers: decoding processes (1: in this process).
        shard_size: rows per parquet shard (a shard ends at the first file boundary past it).
        image_size: side of the square letterboxed images.
        preprocessing: per-modality options (`ModalityPreprocessing`).
        modality_hints: input folder -> modality, for NIfTI/PNG files under it (DICOM headers always win).
        default_modality: modality for NIfTI/PNG files with no hint and no modality-named folder.
        input_files: an explicit, ordered file list instead of walking `inputs` (used by the demo corpus).
    """
    if shard_size < 1 or image_size < 8 or num_workers < 1:
        raise ValueError(
            "shard_size and num_workers must be >= 1 and image_size >= 8; got "
            f"{shard_size}, {num_workers}, {image_size}."
        )
    preprocessing = preprocessing or ModalityPreprocessing()
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    options = json.loads(
        json.dumps(
            {
                "inputs": [str(Path(path).resolve()) for path in inputs],
                "image_size": image_size,
                "shard_size": shard_size,
                "preprocessing": asdict(preprocessing),
                "modality_hints": {str(Path(k).resolve()): v for k, v in (modality_hints or {}).items()},
                "default_modality": default_modality,
            }
        )
    )
    _check_or_record_options(output_dir, options)
    finished = _finished_shards(output_dir)
    _remove_unfinished(output_dir, len(finished))
    (output_dir / CORPUS_SUMMARY_FILE).unlink(missing_ok=True)
    if input_files is None:
        input_files = iter_input_files(
            inputs, modality_hints=modality_hints, default_modality=default_modality, exclude=[output_dir]
        )
    files = _files_after_finished_shards(iter(input_files), finished, output_dir)
    started = time.perf_counter()
    tasks = ((input_file, preprocessing, image_size) for input_file in files)
    _write_shards(tasks, output_dir, finished, shard_size=shard_size, num_workers=num_workers, progress=progress)
    summary = _summarize(finished, options)
    summary["seconds_this_run"] = round(time.perf_counter() - started, 3)
    _write_json_atomically(output_dir / CORPUS_SUMMARY_FILE, summary)
    if progress:
        print(format_corpus_summary(summary))
    return summary


def _check_or_record_options(output_dir: Path, options: dict) -> None:
    """A corpus resumes only with the options it was started with; a new one records them."""
    options_path = output_dir / CORPUS_OPTIONS_FILE
    if not options_path.is_file():
        _write_json_atomically(options_path, options)
        return
    previous = json.loads(options_path.read_text())
    if previous != options:
        differing = sorted(key for key in options if previous.get(key) != options[key])
        raise FileExistsError(
            f"{output_dir} holds a corpus built with other options ({', '.join(differing)}); use another --output "
            "or delete it."
        )


def _files_after_finished_shards(files: Iterator[InputFile], finished: list[dict], output_dir: Path):
    """`files` past those the finished shards consumed, checking the walk still reaches the same file there."""
    consumed = finished[-1]["files_consumed"] if finished else 0
    last_skipped = None
    for _ in range(consumed):
        last_skipped = next(files, None)
        if last_skipped is None:
            break
    if consumed and (last_skipped is None or last_skipped.path != finished[-1]["last_file"]):
        raise RuntimeError(
            f"Cannot resume {output_dir}: the inputs changed since its shards were written (file {consumed} is now "
            f"{last_skipped.path if last_skipped else 'missing'}, was {finished[-1]['last_file']}). Delete the "
            "output folder to rebuild."
        )
    return files


def _write_shards(tasks, output_dir: Path, finished: list[dict], *, shard_size, num_workers, progress) -> None:
    """Process `tasks` in order into shards after the `finished` ones, appending each new shard's sidecar."""

    schema = corpus_features().arrow_schema
    consumed = finished[-1]["files_consumed"] if finished else 0
    shard = _ShardWriter(output_dir, len(finished), schema)
    bar = tqdm(desc="corpus", unit="file", initial=consumed, disable=not progress)
    images = sum(sidecar["rows"] for sidecar in finished)
    try:
        for result in _ordered_results(tasks, num_workers):
            shard.add(result)
            consumed += 1
            images += len(result.rows)
            bar.update(1)
            bar.set_postfix(images=images, refresh=False)
            if shard.rows >= shard_size:
                finished.append(shard.close(consumed))
                shard = _ShardWriter(output_dir, len(finished), schema)
        if shard.files:
            finished.append(shard.close(consumed))
    finally:
        bar.close()


def _summarize(sidecars: list[dict], options: dict) -> dict:
    images, files = Counter(), Counter()
    skipped, categories = [], Counter()
    ignored = 0
    for sidecar in sidecars:
        images.update(sidecar["images_by_modality"])
        files.update(sidecar["files_by_modality"])
        ignored += sidecar["ignored_non_image_files"]
        for entry in sidecar["skipped"]:
            categories[entry["category"]] += 1
            if len(skipped) < _SKIPPED_LISTED_IN_SUMMARY:
                skipped.append(entry)
    return {
        "images": sum(images.values()),
        "images_by_modality": {modality: images.get(modality, 0) for modality in IMAGING_MODALITIES},
        "files_by_modality": {modality: files.get(modality, 0) for modality in IMAGING_MODALITIES},
        "files_seen": sum(sidecar["files"] for sidecar in sidecars),
        "files_skipped": sum(categories.values()),
        "skipped_by_category": dict(categories),
        "skipped": skipped,
        "skipped_listed": f"first {len(skipped)} of {sum(categories.values())}; all are in the shard-*.json sidecars",
        "ignored_non_image_files": ignored,
        "shards": [_SHARD_STEM.format(sidecar["shard"]) + ".parquet" for sidecar in sidecars if sidecar["rows"]],
        "options": options,
    }


def format_corpus_summary(summary: dict) -> str:
    by_modality = ", ".join(
        f"{modality}: {summary['images_by_modality'][modality]} images / {summary['files_by_modality'][modality]} files"
        for modality in IMAGING_MODALITIES
    )
    lines = [
        f"corpus: {summary['images']} images from {summary['files_seen']} files in {len(summary['shards'])} shard(s)",
        f"  {by_modality}",
        f"  skipped {summary['files_skipped']} file(s) {summary['skipped_by_category'] or ''}; "
        f"ignored {summary['ignored_non_image_files']} non-image file(s)",
    ]
    for entry in summary["skipped"][:10]:
        lines.append(f"    {entry['path']}: {entry['reason'][:200]}")
    return "\n".join(lines)


def read_corpus_summary(corpus_dir: str | Path) -> dict:
    path = Path(corpus_dir) / CORPUS_SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{corpus_dir} has no {CORPUS_SUMMARY_FILE}: the corpus was not (fully) built.")
    return json.loads(path.read_text())


def load_corpus(corpus_dir: str | Path, modality: str = GENERIC, *, streaming: bool = False):
    """The Generic corpus (every modality) or one modality's, from a folder written by `build_corpus`.

    Args:
        corpus_dir: the output folder of `build_corpus`.
        modality: "generic", or one of "ct", "mr", "pet", "xray", "us" (case-insensitive).
        streaming: return an `IterableDataset` that reads the shards lazily (for corpora larger than the disk
            cache should hold) instead of a `Dataset`.
    """
    from datasets import load_dataset

    corpus_dir = Path(corpus_dir)
    summary = read_corpus_summary(corpus_dir)
    shards = [str(corpus_dir / name) for name in summary["shards"]]
    if not shards:
        raise ValueError(f"{corpus_dir} holds no images (every input file was skipped; see {CORPUS_SUMMARY_FILE}).")
    selection = selected_modalities(modality)
    wanted = None if selection is None else selection[0]
    if wanted is not None and summary["images_by_modality"].get(wanted, 0) == 0:
        raise ValueError(
            f"The corpus in {corpus_dir} has no {wanted} images (it has {summary['images_by_modality']})."
        )
    dataset = load_dataset("parquet", data_files=shards, split="train", streaming=streaming)
    if wanted is not None:
        dataset = dataset.filter(lambda value: value == wanted, input_columns="modality")
    return dataset
