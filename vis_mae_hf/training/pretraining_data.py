"""Images for pretraining: where they come from, and how one image becomes one training example.

Every random choice for an example (its horizontal flip and its mask) is derived from (seed, epoch, sample index),
not from a process's random state. One process with global batch B and N processes with B/N therefore train on
identical examples, and a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset as TorchDataset

from ..image_processing_vis_mae import VisMaeImageProcessor
from .sampler import derived_seed

MODALITIES = ("generic", "ct", "mr", "pet", "xray", "us")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


class PretrainingDataError(ValueError):
    """The pretraining images cannot be used; raised before any training step."""


def load_pretraining_images(source: str | Path | None, modality: str = "generic"):
    """A `datasets.Dataset` with an `image` column (and `modality` where known), filtered to one modality.

    `source`: None for the built-in demo corpus (real images shipped in PyPI packages); a corpus folder written by
    `vis-mae data corpus`; a folder written by `Dataset.save_to_disk`; a folder of parquet files; or a folder of
    ordinary images (read with the `imagefolder` builder).
    """
    if modality not in MODALITIES:
        raise PretrainingDataError(f"--modality {modality!r} is not one of {', '.join(MODALITIES)}.")
    name = "the built-in demo corpus" if source is None else str(source)
    try:
        images = _open(source)
    except PretrainingDataError:
        raise
    except Exception as error:  # datasets raises many types; the user needs the path and the cause
        raise PretrainingDataError(f"Could not read the pretraining images at {name}: {error}") from error
    if "image" not in images.column_names:
        raise PretrainingDataError(f"{name} has no 'image' column (columns: {images.column_names}).")
    if modality != "generic":
        if "modality" not in images.column_names:
            raise PretrainingDataError(
                f"--modality {modality} needs a 'modality' column, which {name} lacks; build the corpus with "
                "`vis-mae data corpus` or train the generic model."
            )
        counts = _modality_counts(images)
        images = images.filter(lambda value: str(value).upper() == modality.upper(), input_columns="modality")
        if len(images) == 0:
            raise PretrainingDataError(f"{name} holds no {modality.upper()} images (it has {counts}).")
    if len(images) == 0:
        raise PretrainingDataError(f"{name} holds no images.")
    return images


def _open(source):
    import datasets

    if source is None:
        from ..data.demo import load_demo_corpus

        return load_demo_corpus()
    path = Path(source)
    if not path.exists():
        raise PretrainingDataError(f"The pretraining data path {path} does not exist.")
    if (path / "corpus_summary.json").is_file():
        from ..data.corpus import load_corpus

        return load_corpus(path)
    if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
        state = path / "state.json"
        if state.is_file() and not json.loads(state.read_text()).get("_data_files"):
            raise PretrainingDataError(f"{path} holds no images (a saved dataset with no data files).")
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if "train" not in loaded:
                raise PretrainingDataError(f"{path} is a DatasetDict without a 'train' split (splits: {list(loaded)}).")
            loaded = loaded["train"]
        return loaded
    parquet_files = sorted(str(p) for p in path.rglob("*.parquet"))
    if parquet_files:
        return datasets.load_dataset("parquet", data_files=parquet_files, split="train")
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*") if p.is_file()):
        return datasets.load_dataset("imagefolder", data_dir=str(path), split="train")
    raise PretrainingDataError(
        f"{path} is neither a corpus, a saved dataset, a folder of parquet files nor a folder of images."
    )


def _modality_counts(images) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in images["modality"]:
        counts[str(value).upper()] = counts.get(str(value).upper(), 0) + 1
    return dict(sorted(counts.items()))


def modality_counts(images) -> dict[str, int]:
    """Images per modality (for the training summary and the model card); {} when the data has no modality column."""
    return _modality_counts(images) if "modality" in images.column_names else {}


class PretrainingExamples(TorchDataset):
    """Indexed by (epoch, sample index) keys from `EpochShardSampler`; returns the processed image, optionally
    flipped, and the uniform noise that decides which mask units are kept (`VisMaeForPreTraining(noise=...)`)."""

    def __init__(
        self,
        images,
        processor: VisMaeImageProcessor,
        num_mask_units: int,
        seed: int,
        horizontal_flip: bool = True,
    ):
        self.images = images
        self.processor = processor
        self.num_mask_units = num_mask_units
        self.seed = seed
        self.horizontal_flip = horizontal_flip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        image = self.images[index]["image"]
        try:
            pixel_values = self.processor(images=image, return_tensors="pt")["pixel_values"][0]
        except Exception as error:
            raise PretrainingDataError(f"Pretraining image {index} could not be processed: {error}") from error
        generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch, index))
        if self.horizontal_flip and torch.rand((), generator=generator) < 0.5:
            pixel_values = pixel_values.flip(-1)
        noise = torch.rand(self.num_mask_units, generator=generator)
        return {"pixel_values": pixel_values, "noise": noise, "index": torch.tensor(index)}


def check_readable(examples: PretrainingExamples, name: str) -> None:
    """Decode the first example now, so a broken dataset fails before the first training step."""
    try:
        examples[(0, 0)]
    except Exception as error:
        raise PretrainingDataError(f"The first image of {name} cannot be used for pretraining: {error}") from error
