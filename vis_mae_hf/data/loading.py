"""Opening datasets by the names users give them: unlabelled images for pretraining, labelled sets for fine-tuning.

Unlabelled images (`load_pretraining_images`): None for the built-in demo corpus; a corpus folder written by
`vis-mae data corpus`; a folder written by `Dataset.save_to_disk`; a folder of parquet files; or a folder of ordinary
images (read with the `imagefolder` builder). A modality selection ("mr", ...) keeps one group's images.

Labelled sets (`load_labelled_dataset`): None or "demo" for the built-in demo of the task; a folder written by
`vis-mae data convert` (its metadata gives the task and label names); any other `save_to_disk` folder; or a Hub
dataset id, loaded with `datasets.load_dataset` (from the local cache when offline).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..vocabulary import (
    CLASSIFICATION,
    GENERIC,
    MULTILABEL,
    SEGMENTATION,
    corpus_selection,
    selected_modalities,
)
from .conversion import (
    CONVERSION_METADATA_FILE,
    load_converted,
    read_conversion_metadata,
)
from .corpus import CORPUS_SUMMARY_FILE, load_corpus
from .demo import TISSUE_LABELS, load_demo_corpus, load_demo_segmentation
from .demo_classification import (
    DEMO_CLASSIFICATION_DESCRIPTION,
    DEMO_CLASSIFICATION_LABELS,
    load_demo_classification,
)

RASTER_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DEMO_NAMES = (None, "", "demo")
TARGET_COLUMNS = {SEGMENTATION: "mask", CLASSIFICATION: "label", MULTILABEL: "labels"}


class PretrainingDataError(ValueError):
    """The pretraining images cannot be used; raised before any training step."""


# ---------------------------------------------------------------------------------------------------- unlabelled


def load_pretraining_images(source: str | Path | None, modality: str = GENERIC):
    """A `datasets.Dataset` with an `image` column (and `modality` where known), filtered to one modality.

    Raises:
        PretrainingDataError: naming the source: missing, unreadable, no `image` column, no image of the modality.
    """
    try:
        modality = corpus_selection(modality)
    except ValueError as error:
        raise PretrainingDataError(f"--modality: {error}") from None
    name = "the built-in demo corpus" if source is None else str(source)
    try:
        images = _open_images(source)
    except PretrainingDataError:
        raise
    except Exception as error:  # datasets raises many types; the user needs the path and the cause
        raise PretrainingDataError(f"Could not read the pretraining images at {name}: {error}") from error
    if "image" not in images.column_names:
        raise PretrainingDataError(f"{name} has no 'image' column (columns: {images.column_names}).")
    kept = selected_modalities(modality)
    if kept is not None:
        if "modality" not in images.column_names:
            raise PretrainingDataError(
                f"--modality {modality} needs a 'modality' column, which {name} lacks; build the corpus with "
                "`vis-mae data corpus` or train the generic model."
            )
        counts = modality_counts(images)
        images = images.filter(lambda value: str(value).upper() in kept, input_columns="modality")
        if len(images) == 0:
            raise PretrainingDataError(f"{name} holds no {kept[0]} images (it has {counts}).")
    if len(images) == 0:
        raise PretrainingDataError(f"{name} holds no images.")
    return images


def _open_images(source):
    import datasets

    if source is None:
        return load_demo_corpus()
    path = Path(source)
    if not path.exists():
        raise PretrainingDataError(f"The pretraining data path {path} does not exist.")

    if (path / CORPUS_SUMMARY_FILE).is_file():
        return load_corpus(path)
    if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
        return _saved_training_split(path)
    parquet_files = sorted(str(p) for p in path.rglob("*.parquet"))
    if parquet_files:
        return datasets.load_dataset("parquet", data_files=parquet_files, split="train")
    if any(p.suffix.lower() in RASTER_IMAGE_SUFFIXES for p in path.rglob("*") if p.is_file()):
        return datasets.load_dataset("imagefolder", data_dir=str(path), split="train")
    raise PretrainingDataError(
        f"{path} is neither a corpus, a saved dataset, a folder of parquet files nor a folder of images."
    )


def _saved_training_split(path: Path):
    import datasets

    state = path / "state.json"
    if state.is_file() and not json.loads(state.read_text()).get("_data_files"):
        raise PretrainingDataError(f"{path} holds no images (a saved dataset with no data files).")
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise PretrainingDataError(f"{path} is a DatasetDict without a 'train' split (splits: {list(loaded)}).")
        loaded = loaded["train"]
    return loaded


def modality_counts(images) -> dict[str, int]:
    """Images per modality (for the training summary and the model card); {} when the data has no modality column."""
    if "modality" not in images.column_names:
        return {}
    return dict(sorted(Counter(str(value).upper() for value in images["modality"]).items()))


# ---------------------------------------------------------------------------------------------------- labelled


def dataset_task(columns: list[str], wanted: str) -> str:
    """The dataset task a set supports, given the fine-tuning task the caller runs (see `vocabulary`)."""
    if wanted == SEGMENTATION:
        if "mask" not in columns:
            raise ValueError(f"A segmentation set needs `image` and `mask` columns; this one has {columns}.")
        return SEGMENTATION
    if "label" in columns:
        return CLASSIFICATION
    if "labels" in columns:
        return MULTILABEL
    raise ValueError(
        f"A classification set needs `image` and `label` (one class) or `labels` (multi-label) columns; this one has "
        f"{columns}."
    )


def class_names_of(dataset, column: str) -> list[str] | None:
    """The `ClassLabel` names of a column (also inside a list feature), or None."""
    feature = dataset.features.get(column)
    feature = getattr(feature, "feature", feature)  # List(ClassLabel) -> ClassLabel
    return list(feature.names) if hasattr(feature, "names") else None


def load_labelled_dataset(dataset: str | None, task: str):
    """(DatasetDict, label names or None, description) for a dataset name (see the module docstring)."""
    if dataset in DEMO_NAMES:
        return _demo_dataset(task)
    path = Path(dataset).expanduser()
    if path.is_dir():
        return _local_dataset(path, dataset)
    if path.exists():
        raise ValueError(f"--dataset {dataset}: a file, but a dataset is a directory (or a Hub dataset id).")
    if str(dataset).startswith(("/", ".", "~")):
        raise FileNotFoundError(f"--dataset {dataset}: no such directory.")
    from datasets import load_dataset

    try:
        return load_dataset(str(dataset)), None, f"{dataset} (Hub)"
    except Exception as error:  # datasets raises several types for "not found" / "offline"
        raise FileNotFoundError(
            f"--dataset {dataset!r} is not a directory and could not be loaded as a Hub dataset ({error}). Pass a "
            "`vis-mae data convert` output directory, a save_to_disk directory, a cached Hub dataset id, or nothing "
            "for the demo."
        ) from error


def _demo_dataset(task: str):
    if task == SEGMENTATION:
        return (
            load_demo_segmentation(),
            list(TISSUE_LABELS),
            "demo: MNI152 2009 T1 axial slices, tissue labels (one averaged subject; folds are contiguous slabs)",
        )

    return load_demo_classification(), list(DEMO_CLASSIFICATION_LABELS), f"demo: {DEMO_CLASSIFICATION_DESCRIPTION}"


def _local_dataset(path: Path, dataset: str):
    from datasets import Dataset, DatasetDict, load_from_disk


    if (path / CONVERSION_METADATA_FILE).is_file():
        metadata = read_conversion_metadata(path)
        names = list(metadata.get("label_names") or []) or None
        return load_converted(path), names, f"{metadata['source']} ({path})"
    try:
        loaded = load_from_disk(str(path))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"--dataset {dataset}: the directory is neither a `vis-mae data convert` output nor a dataset saved "
            f"with save_to_disk ({error})."
        ) from error
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    return loaded, None, str(path)
