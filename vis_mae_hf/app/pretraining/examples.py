"""How one pretraining image becomes one training example (where the images come from: `vis_mae_hf.data.loading`).

Every random choice for an example (its horizontal flip and its mask) is derived from (seed, epoch, sample index),
not from a process's random state. One process with global batch B and N processes with B/N therefore train on
identical examples, and a resumed run continues exactly as an uninterrupted one would.

An image that cannot be read or processed (a truncated file in the middle of a folder) does not raise inside the
loader, where the error would name no file and stop one process of many: its example carries `readable` False and
a placeholder of zeros, and the loop decides for all processes at once (`bad_images.py`).
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset as TorchDataset

from ...data.loading import PretrainingDataError
from ...image_processing_vis_mae import VisMaeImageProcessor
from .sampler import derived_seed

# How far `check_readable` looks for a first readable image when unreadable ones are skipped.
READABLE_SEARCH_LIMIT = 100


class PretrainingExamples(TorchDataset):
    """Indexed by (epoch, sample index) keys from `EpochShardSampler`; returns the processed image, optionally
    flipped, the uniform noise that decides which mask units are kept (`VisMaeForPreTraining(noise=...)`), the index,
    and whether the image could be used (`readable`)."""

    def __init__(
        self,
        images,
        processor: VisMaeImageProcessor,
        num_mask_units: int,
        seed: int,
        horizontal_flip: bool = True,
        name: str = "the pretraining images",
    ):
        self.images = images
        self.processor = processor
        self.num_mask_units = num_mask_units
        self.seed = seed
        self.horizontal_flip = horizontal_flip
        self.name = name
        self.placeholder: torch.Tensor | None = None  # zeros shaped as an example; set by `check_readable`

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        try:
            pixel_values, readable = self.pixel_values(index), True
        except PretrainingDataError:
            if self.placeholder is None:
                raise
            pixel_values, readable = self.placeholder, False
        generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch, index))
        if self.horizontal_flip and torch.rand((), generator=generator) < 0.5:
            pixel_values = pixel_values.flip(-1)
        noise = torch.rand(self.num_mask_units, generator=generator)
        return {"pixel_values": pixel_values, "noise": noise, "index": torch.tensor(index),
                "readable": torch.tensor(readable)}

    def pixel_values(self, index: int) -> torch.Tensor:
        """The processed image of row `index`; `PretrainingDataError` naming it if it cannot be read or processed."""
        try:
            image = self.images[index]["image"]
            return self.processor(images=image, return_tensors="pt")["pixel_values"][0]
        except Exception as error:  # PIL, datasets and the processor raise many types for one bad file
            message = " ".join(str(error).split()) or type(error).__name__
            raise PretrainingDataError(f"{self.describe(index)} cannot be used for pretraining: {message}") from error

    def problem(self, index: int) -> str:
        """Why row `index` cannot be used (read again: the loader's workers keep no errors)."""
        try:
            self.pixel_values(index)
        except PretrainingDataError as error:
            return str(error)
        return f"{self.describe(index)} could not be read once but was readable when read again"

    def describe(self, index: int) -> str:
        """`image 3 (/data/scans/a.png)`: the row and, where the dataset knows it, the file it came from."""
        source = self._source(index)
        return f"image {index} ({source})" if source else f"image {index} of {self.name}"

    def _source(self, index: int) -> str | None:
        """The corpus's `source_path` (and frame), else the image's own file path, else None (bytes held inline)."""
        import datasets

        columns = getattr(self.images, "column_names", None) or []
        if "source_path" in columns:
            row = self.images.select_columns([c for c in ("source_path", "frame_index") if c in columns])[index]
            frame = row.get("frame_index")
            return row["source_path"] + (f", frame {frame}" if frame is not None else "")
        if isinstance(self.images, datasets.Dataset) and isinstance(self.images.features.get("image"), datasets.Image):
            undecoded = self.images.select_columns(["image"]).cast_column("image", datasets.Image(decode=False))
            return (undecoded[index]["image"] or {}).get("path")
        return None


def check_readable(examples: PretrainingExamples, name: str, skip_unreadable: bool = False) -> None:
    """Decode the first image now, so a broken dataset fails before the first training step, and keep the
    placeholder an unreadable image is replaced by. Skipping unreadable images, the first readable one among the
    first `READABLE_SEARCH_LIMIT` will do."""
    tried = range(min(len(examples), READABLE_SEARCH_LIMIT if skip_unreadable else 1))
    first_problem = None
    for index in tried:
        try:
            examples.placeholder = torch.zeros_like(examples.pixel_values(index))
            return
        except PretrainingDataError as error:
            first_problem = first_problem or error
    if len(tried) == 1:
        raise PretrainingDataError(f"{name}: {first_problem}") from first_problem
    raise PretrainingDataError(
        f"{name}: none of the first {len(tried)} images can be used for pretraining; the first: {first_problem}"
    ) from first_problem
