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

The output folder is the builder's own (`vis_mae_hf.output_folders`): a new or empty folder, or one whose
`.vis-mae-outputs.json` manifest says this builder made it. Any other non-empty folder is refused (a user's webdataset
`shard-*` files stay untouched), and so is an output inside an input or an input inside the output. The builder only
ever removes or writes over files its manifest lists.

Resumable, through the manifest: a shard whose parquet and sidecar the manifest records is finished. A re-run with the
same inputs and options skips the files the finished shards consumed (checking the walk still reaches the same file at
that point) and goes on from there, after removing the unfinished shard files the manifest lists; a run that finished
only re-prints its summary.

Symbolic links: linked files and linked sub-folders are followed. Each real folder is walked once per input: a link
that leads back to a folder already walked (a cycle, or a second link to the same folder) is not followed again, and
it is listed among the skipped entries, as are folders that cannot be listed, broken links and special files.

`load_corpus(dir, modality="generic"|"ct"|"mr"|...)` gives the Generic corpus or one modality's, as a `Dataset` or,
with `streaming=True`, an `IterableDataset`.
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

from ..output_folders import OutputFolder, open_output_folder
from ..vocabulary import (
    GENERIC,
    IMAGING_MODALITIES,
    imaging_modality,
    selected_modalities,
)
from .features import png_bytes
from .modality_preprocessing import (
    NON_IMAGE_SUFFIXES,
    ModalityPreprocessing,
    SkippedFile,
    letterbox,
    read_images,
)

CORPUS_SUMMARY_FILE = "corpus_summary.json"
CORPUS_OPTIONS_FILE = "corpus_options.json"
CORPUS_TOOL = "vis-mae data corpus"  # the command named in the output folder's manifest
NOT_WALKED = "not walked"  # the skipped-category of folders, links and special files the walk did not read
_SHARD_STEM = "shard-{:05d}"
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
    """A file to read, or (with `not_walked`) an entry of the inputs that was not read, and why."""

    path: str
    modality_hint: str | None
    not_walked: str | None = None


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

    Hidden entries (starting with ".") are skipped. Linked sub-folders are followed, each real folder once per input;
    a folder not walked (a link cycle, a second link to a folder, the `exclude` folders, a folder that cannot be
    listed), a broken link or a special file comes as an `InputFile` with `not_walked` saying why.
    """
    hints = {Path(path).resolve(): imaging_modality(modality) for path, modality in (modality_hints or {}).items()}
    default_modality = None if default_modality is None else imaging_modality(default_modality)
    excluded = {Path(path).resolve() for path in exclude}
    for root in _existing_inputs(inputs):
        hint = hints.get(root, default_modality)
        if root.is_file():
            yield InputFile(str(root), hint)
            continue
        yield from _walk(root, hint, excluded, walked=set())


def _existing_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The inputs, resolved; all of them must exist (checked before anything is written)."""
    resolved = [Path(path).resolve() for path in inputs]
    missing = [str(path) for path in resolved if not path.exists()]
    if missing:
        raise FileNotFoundError(f"Corpus input {', '.join(missing)} does not exist.")
    return resolved


def _walk(folder: Path, hint: str | None, excluded: set[Path], walked: set[Path]) -> Iterator[InputFile]:
    """Depth first, entries sorted per folder; `walked` holds the real folders already read under this input."""
    real_folder = folder.resolve()
    if real_folder in excluded:
        yield InputFile(str(folder), hint, not_walked=f"folder not walked: it is {real_folder}, excluded")
        return
    if real_folder in walked:
        why = "already walked under this input (a link cycle, or a second link to one folder)"
        yield InputFile(str(folder), hint, not_walked=f"folder not walked: it is {real_folder}, {why}")
        return
    walked.add(real_folder)
    try:
        with os.scandir(folder) as scanner:
            entries = sorted((entry for entry in scanner if not entry.name.startswith(".")), key=lambda e: e.name)
    except OSError as error:
        yield InputFile(str(folder), hint, not_walked=f"folder cannot be listed: {error.strerror or error}")
        return
    subfolders = []
    for entry in entries:
        if _is_folder(entry):
            subfolders.append(Path(entry.path))
        elif entry.is_file():
            yield InputFile(entry.path, hint)
        elif entry.is_symlink():
            yield InputFile(entry.path, hint, not_walked=f"broken link to {os.readlink(entry.path)}")
        else:  # a FIFO would block the reader forever; sockets and devices hold no image
            yield InputFile(entry.path, hint, not_walked="not a regular file (a pipe, socket or device)")
    del entries  # only this folder's listing was in memory; release it before descending
    for subfolder in subfolders:
        yield from _walk(subfolder, hint, excluded, walked)


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link: a linked sub-folder is walked like any other
    except OSError:
        return False


def process_file(task: tuple[InputFile, ModalityPreprocessing, int]) -> FileResult:
    """Worker: one file -> its letterboxed PNG rows (or why it has none). Never raises for a bad file."""

    input_file, preprocessing, image_size = task
    if input_file.not_walked is not None:
        return FileResult(input_file.path, [], skipped_reason=input_file.not_walked, skipped_category=NOT_WALKED)
    path = Path(input_file.path)
    name = path.name.lower()
    compressed_non_nifti = name.endswith(".gz") and not name.endswith(".nii.gz")  # .tar.gz, .csv.gz, ...
    if compressed_non_nifti or path.suffix.lower() in NON_IMAGE_SUFFIXES:
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

    def __init__(self, folder: OutputFolder, index: int, schema):
        self.folder, self.index, self.schema = folder, index, schema
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

    @property
    def names(self) -> list[str]:
        """The files this shard may write: entered in the manifest before the first of them is created."""
        return [f"{self.stem}{suffix}" for suffix in (".parquet", ".parquet.tmp", ".json", ".json.tmp")]

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
            self.folder.claim(*self.names)
            self.writer = pq.ParquetWriter(self.folder.path / f"{self.stem}.parquet.tmp", self.schema)
        self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
        self.buffer = []

    def close(self, files_consumed: int) -> dict:
        self._flush()
        self.folder.claim(*self.names)
        output_dir = self.folder.path
        if self.writer is not None:
            self.writer.close()
            os.replace(output_dir / f"{self.stem}.parquet.tmp", output_dir / f"{self.stem}.parquet")
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
        _write_json_atomically(output_dir / f"{self.stem}.json", sidecar)
        self.folder.record(*self.names)
        return sidecar


def _write_json_atomically(path: Path, payload: dict) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(payload, indent=1))
    os.replace(temporary, path)


def _finished_shards(folder: OutputFolder) -> list[dict]:
    """Sidecars of the finished shards 0..k-1, as the manifest records them (stops at the first gap: later ones are
    redone)."""
    finished = []
    while True:
        stem = _SHARD_STEM.format(len(finished))
        if not folder.is_recorded(f"{stem}.json"):
            return finished
        sidecar = json.loads((folder.path / f"{stem}.json").read_text())
        if sidecar["rows"] and not folder.is_recorded(f"{stem}.parquet"):
            return finished
        finished.append(sidecar)


def _remove_unfinished(folder: OutputFolder, first_unfinished: int) -> None:
    """Remove the shard files of an interrupted run (the manifest's, from `first_unfinished` on, and temporary
    ones) and the summary; files the manifest does not list are never touched."""
    unfinished = [CORPUS_SUMMARY_FILE] if CORPUS_SUMMARY_FILE in folder.files else []
    for name in folder.files:
        stem = name.split(".", 1)[0]
        if not stem.startswith("shard-"):
            continue
        try:
            index = int(stem.split("-", 1)[1])
        except ValueError:
            continue
        if index >= first_unfinished or name.endswith(".tmp"):
            unfinished.append(name)
    folder.remove(*unfinished)


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
    folder = open_output_folder(output_dir, CORPUS_TOOL, inputs=_existing_inputs(inputs), resume=True)
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
    _check_or_record_options(folder, options)
    finished = _finished_shards(folder)
    _remove_unfinished(folder, len(finished))
    if input_files is None:
        input_files = iter_input_files(
            inputs, modality_hints=modality_hints, default_modality=default_modality, exclude=[folder.path]
        )
    files = _files_after_finished_shards(iter(input_files), finished, folder.path)
    started = time.perf_counter()
    tasks = ((input_file, preprocessing, image_size) for input_file in files)
    _write_shards(tasks, folder, finished, shard_size=shard_size, num_workers=num_workers, progress=progress)
    summary = _summarize(finished, options)
    summary["seconds_this_run"] = round(time.perf_counter() - started, 3)
    folder.write_text(CORPUS_SUMMARY_FILE, json.dumps(summary, indent=1))
    if progress:
        print(format_corpus_summary(summary))
    return summary


def _check_or_record_options(folder: OutputFolder, options: dict) -> None:
    """A corpus resumes only with the options it was started with; a new one records them."""
    if not folder.is_recorded(CORPUS_OPTIONS_FILE):
        folder.write_text(CORPUS_OPTIONS_FILE, json.dumps(options, indent=1))
        return
    previous = json.loads((folder.path / CORPUS_OPTIONS_FILE).read_text())
    if previous != options:
        differing = sorted(key for key in options if previous.get(key) != options[key])
        raise FileExistsError(
            f"{folder.path} holds a corpus built with other options ({', '.join(differing)}); run again with the "
            "options it was built with, use another --output, or remove this folder yourself to rebuild."
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
        raise ValueError(
            f"Cannot resume {output_dir}: the inputs changed since its shards were written (file {consumed} is now "
            f"{last_skipped.path if last_skipped else 'missing'}, was {finished[-1]['last_file']}). Build into "
            "another --output folder, or remove this one yourself to rebuild."
        )
    return files


def _write_shards(tasks, folder: OutputFolder, finished: list[dict], *, shard_size, num_workers, progress) -> None:
    """Process `tasks` in order into shards after the `finished` ones, appending each new shard's sidecar."""

    schema = corpus_features().arrow_schema
    consumed = finished[-1]["files_consumed"] if finished else 0
    shard = _ShardWriter(folder, len(finished), schema)
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
                shard = _ShardWriter(folder, len(finished), schema)
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
