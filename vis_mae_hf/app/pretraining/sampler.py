"""Which samples each process sees, epoch by epoch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def derived_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (seed, epoch, sample index, ...): independent streams per part."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


class EpochShardSampler(Sampler[tuple[int, int]]):
    """Shuffles the whole dataset once per epoch with a seeded permutation and deals it out to the processes
    round-robin (process r takes positions r, r + world, ...), dropping the tail that would not fill an optimiser
    step (`per_process_batch_size x num_processes x gradient_accumulation_steps` samples).

    Because the permutation depends only on (seed, epoch), one process with global batch B and N processes with B/N
    each see the same samples per optimiser step. `set_epoch` reshuffles (the published script never called it, so
    every epoch repeated the same order); `start_step` skips the batches a resumed run has already consumed.
    """

    def __init__(
        self,
        num_samples: int,
        per_process_batch_size: int,
        num_processes: int = 1,
        process_index: int = 0,
        seed: int = 0,
        gradient_accumulation_steps: int = 1,
    ):
        if num_samples <= 0:
            raise ValueError("EpochShardSampler needs a non-empty dataset.")
        if min(per_process_batch_size, num_processes, gradient_accumulation_steps) < 1:
            raise ValueError(
                f"EpochShardSampler needs a batch, process count and accumulation of at least 1, got "
                f"{per_process_batch_size}, {num_processes} and {gradient_accumulation_steps}."
            )
        samples_per_step = per_process_batch_size * num_processes * gradient_accumulation_steps
        if num_samples < samples_per_step:
            raise ValueError(
                f"The dataset has {num_samples} samples, fewer than one optimiser step needs ({num_processes} "
                f"processes x batch {per_process_batch_size} x {gradient_accumulation_steps} accumulation steps = "
                f"{samples_per_step}); lower the batch size or the accumulation."
            )
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.num_samples = num_samples
        self.per_process_batch_size = per_process_batch_size
        self.num_processes = num_processes
        self.process_index = process_index
        self.seed = seed
        self.epoch = 0
        self.start_step = 0

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch."""
        return self.num_samples // (self.per_process_batch_size * self.num_processes * self.gradient_accumulation_steps)

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch's order; `start_step` optimiser steps of it were already consumed (resuming)."""
        if not 0 <= start_step < self.steps_per_epoch:
            # Past the end the epoch would yield nothing, and a loop waiting for its steps would never end.
            raise ValueError(
                f"Cannot start epoch {epoch} at step {start_step}: an epoch has {self.steps_per_epoch} optimiser "
                f"steps (0 to {self.steps_per_epoch - 1})."
            )
        self.epoch = epoch
        self.start_step = start_step

    def epoch_order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, epoch))
        return torch.randperm(self.num_samples, generator=generator)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """Yields (epoch, sample index) keys: the epoch travels with each index so per-sample randomness (masks,
        flips) can be derived from it inside DataLoader workers."""
        per_step = self.per_process_batch_size * self.gradient_accumulation_steps  # this process's samples per step
        used = self.steps_per_epoch * per_step * self.num_processes
        mine = self.epoch_order(self.epoch)[:used][self.process_index :: self.num_processes]
        return iter((self.epoch, index) for index in mine[self.start_step * per_step :].tolist())

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.per_process_batch_size * self.gradient_accumulation_steps
