"""What one process reads in a pretraining run: the images, their examples, its shard sampler and the loader."""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import DataLoader

from ...image_processing_vis_mae import VisMaeImageProcessor
from .arguments import SKIP, PretrainingArguments
from .examples import PretrainingExamples, check_readable
from .sampler import EpochShardSampler


@dataclass
class PretrainingData:
    images: object  # datasets.Dataset with an `image` column
    examples: PretrainingExamples
    sampler: EpochShardSampler
    loader: DataLoader


def build_pretraining_data(
    args: PretrainingArguments, images, processor: VisMaeImageProcessor, mask_unit_size: int, accelerator
) -> PretrainingData:
    """Examples of `images` at `args.image_size`, checked readable now (a broken dataset fails before the first
    step), dealt to this process by an `EpochShardSampler`."""
    units_per_side = args.image_size // mask_unit_size
    name = args.dataset or "the built-in demo corpus"
    examples = PretrainingExamples(images, processor, units_per_side**2, args.seed, args.horizontal_flip, name)
    check_readable(examples, name, skip_unreadable=args.on_bad_image == SKIP)
    sampler = EpochShardSampler(
        len(examples),
        args.per_device_train_batch_size,
        accelerator.num_processes,
        accelerator.process_index,
        seed=args.seed,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
    )
    loader = DataLoader(
        examples,
        batch_size=args.per_device_train_batch_size,
        sampler=sampler,
        num_workers=args.dataloader_num_workers,
        # Workers survive epochs (the sampler runs in this process, so reshuffling still reaches them).
        persistent_workers=args.dataloader_num_workers > 0,
        pin_memory=accelerator.device.type == "cuda",
    )
    return PretrainingData(images, examples, sampler, loader)
