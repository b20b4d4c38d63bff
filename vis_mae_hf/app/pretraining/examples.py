"""How one pretraining image becomes one training example (where the images come from: `vis_mae_hf.data.loading`).

Every random choice for an example (its horizontal flip and its mask) is derived from (seed, epoch, sample index),
not from a process's random state. One process with global batch B and N processes with B/N therefore train on
identical examples, and a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset as TorchDataset

from ...data.loading import PretrainingDataError
from ...image_processing_vis_mae import VisMaeImageProcessor
from .sampler import derived_seed


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
