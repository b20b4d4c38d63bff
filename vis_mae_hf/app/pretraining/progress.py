"""Where a pretraining run stands, and the data geometry its position is counted in.

A position (`epoch`, `step_in_epoch`) means something only for the geometry that made it: the sampler deals each
epoch's permutation out in optimiser steps of `global_batch_size` images, so step 5 of an epoch is image 5 x B of
that epoch's order. A run resumes only under a geometry whose steps are the same images: the same number of images
and the same global batch. How the global batch is split (processes x per-device batch x accumulation) may change,
since each optimiser step still sees the same images (`sampler.EpochShardSampler`). Any other geometry is refused,
naming both: re-mapping the position would also change the length of an epoch and so the learning-rate schedule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .errors import CheckpointError


@dataclass
class TrainingProgress:
    """Where a run stands; with the model/optimiser/scheduler state it is all a resumed run needs."""

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    images_seen: int = 0  # images trained on (skipped unreadable ones not counted)
    skipped_examples: int = 0  # draws of an unreadable image skipped (`--on-bad-image skip`), each epoch counting
    skipped_images: list[int] = field(default_factory=list)  # the distinct dataset rows skipped, sorted

    def advance(self, steps_per_epoch: int, global_batch_size: int, skipped: list[int] = ()) -> None:
        """Count one finished optimiser step, which skipped the unreadable rows `skipped`, moving to the next
        epoch after its last step."""
        self.global_step += 1
        self.step_in_epoch += 1
        self.images_seen += global_batch_size - len(skipped)
        self.skipped_examples += len(skipped)
        self.skipped_images = sorted(set(self.skipped_images) | set(skipped))
        if self.step_in_epoch == steps_per_epoch:
            self.epoch += 1
            self.step_in_epoch = 0

    def epochs(self, steps_per_epoch: int) -> float:
        """Epochs trained, fractional within the current one."""
        return self.epoch + self.step_in_epoch / steps_per_epoch

    @classmethod
    def from_record(cls, record: object, source: str) -> TrainingProgress:
        """The progress a `progress.json` holds, every field checked (a hand-edited file is refused, not trusted)."""
        counts = {item.name for item in fields(cls)} - {"skipped_images"}
        if not isinstance(record, dict) or set(record) != counts | {"skipped_images"}:
            raise CheckpointError(f"{source}: 'progress' must hold exactly {sorted(counts | {'skipped_images'})}.")
        wrong = sorted(name for name in counts if not _is_count(record[name]))
        rows = record["skipped_images"]
        if not isinstance(rows, list) or not all(_is_count(row) for row in rows):
            wrong.append("skipped_images")
        if wrong:
            raise CheckpointError(f"{source}: {', '.join(wrong)} must be non-negative whole numbers.")
        return cls(**record)


@dataclass(frozen=True)
class DataGeometry:
    """How a run's images are dealt into optimiser steps."""

    num_images: int
    global_batch_size: int
    num_processes: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int

    @property
    def steps_per_epoch(self) -> int:
        return self.num_images // self.global_batch_size

    def describe(self) -> str:
        return (
            f"global batch {self.global_batch_size} ({self.num_processes} process(es) x "
            f"{self.per_device_train_batch_size} per device x {self.gradient_accumulation_steps} accumulation "
            f"step(s)) over {self.num_images} images"
        )

    @classmethod
    def from_record(cls, record: object, source: str) -> DataGeometry:
        names = [item.name for item in fields(cls)]
        if not isinstance(record, dict) or set(record) != set(names):
            raise CheckpointError(f"{source}: 'geometry' must hold exactly {names}.")
        if not all(_is_count(record[name]) and record[name] > 0 for name in names):
            raise CheckpointError(f"{source}: every 'geometry' value must be a whole number >= 1, got {record}.")
        return cls(**record)


def check_resumable(checkpoint: str, progress: TrainingProgress, saved: DataGeometry, current: DataGeometry) -> None:
    """Refuse to resume `progress`, counted in the `saved` geometry, under a `current` one whose steps are other
    images (see the module docstring), or a position that no step of the geometry reaches."""
    if (saved.num_images, saved.global_batch_size) != (current.num_images, current.global_batch_size):
        raise CheckpointError(
            f"--resume-from-checkpoint {checkpoint}: the checkpoint was made with {saved.describe()}, this run has "
            f"{current.describe()}. A run resumes only with the same images and the same global batch (the processes, "
            "per-device batch and accumulation may split it differently); resume with those, or start a new run "
            "(another --output-dir)."
        )
    position = progress.epoch * current.steps_per_epoch + progress.step_in_epoch
    if progress.step_in_epoch >= current.steps_per_epoch or position != progress.global_step:
        raise CheckpointError(
            f"--resume-from-checkpoint {checkpoint}: its progress (step {progress.global_step}, epoch "
            f"{progress.epoch}, step {progress.step_in_epoch} of the epoch) is not a position of "
            f"{current.steps_per_epoch} steps per epoch; the checkpoint is damaged."
        )
    if any(row >= current.num_images for row in progress.skipped_images):
        raise CheckpointError(
            f"--resume-from-checkpoint {checkpoint}: it lists skipped image rows beyond the {current.num_images} "
            "images of this dataset; the checkpoint is damaged."
        )


def progress_record(progress: TrainingProgress, geometry: DataGeometry) -> dict:
    return {"progress": asdict(progress), "geometry": asdict(geometry)}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
