"""What a pretraining run reports while it trains: the progress bar, `train_log.jsonl` and Accelerate's trackers.

One record every `--logging-steps` optimiser steps (and at the last), its loss the mean over the steps since the
previous record: single small batches are noisy.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from ...data.loading import modality_counts
from .arguments import PretrainingArguments
from .optimization import TrainingPlan
from .progress import TrainingProgress

LOG_FILE = "train_log.jsonl"


class StepLog:
    """Collective to create (it may start the trackers); `count_images` and `record_step` on every process."""

    def __init__(self, accelerator, args: PretrainingArguments, plan: TrainingPlan, progress: TrainingProgress, images):
        self.accelerator = accelerator
        self.args = args
        self.plan = plan
        self.path = Path(args.output_dir) / LOG_FILE
        if args.report_to:
            accelerator.init_trackers("vis-mae-pretraining", config=self.run_settings(len(images)))
        if accelerator.is_main_process:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not args.resume_from_checkpoint:
                self.path.unlink(missing_ok=True)  # a fresh run starts a fresh log; a resumed one appends
            accelerator.print(
                f"Pretraining on {len(images)} images ({modality_counts(images) or 'modality unknown'}), "
                f"{accelerator.num_processes} process(es), global batch {plan.global_batch_size}, {plan.total_steps} "
                f"steps ({plan.steps_per_epoch}/epoch), lr {plan.learning_rate:g}, warmup {plan.warmup_steps}."
            )
        self.bar = tqdm(
            total=plan.total_steps,
            initial=progress.global_step,
            desc="pretraining",
            disable=not accelerator.is_local_main_process,
        )
        self._start_window()

    def run_settings(self, num_images: int) -> dict:
        """The arguments and the plan, as the trackers record a run's configuration."""
        return {
            **{key: value for key, value in asdict(self.args).items() if value is not None},
            "num_processes": self.accelerator.num_processes,
            "global_batch_size": self.plan.global_batch_size,
            "effective_learning_rate": self.plan.learning_rate,
            "total_steps": self.plan.total_steps,
            "warmup_steps": self.plan.warmup_steps,
            "steps_per_epoch": self.plan.steps_per_epoch,
            "num_images": num_images,
        }

    def _start_window(self) -> None:
        self.window_start, self.window_images, self.window_losses = time.perf_counter(), 0, []

    def count_images(self, per_process_batch: int) -> None:
        """A micro-batch of `per_process_batch` images went through every process."""
        self.window_images += per_process_batch * self.accelerator.num_processes

    def record_step(self, progress: TrainingProgress, loss: float, learning_rate: float) -> None:
        """An optimiser step finished with this mean loss over processes; write a record when one is due."""
        self.window_losses.append(loss)
        self.bar.update(1)
        step = progress.global_step
        if step % self.args.logging_steps and step != self.plan.total_steps:
            return
        elapsed = time.perf_counter() - self.window_start
        record = {
            "step": step,
            "epoch": progress.epochs(self.plan.steps_per_epoch),
            "loss": sum(self.window_losses) / len(self.window_losses),
            "learning_rate": learning_rate,
            "images_per_second": self.window_images / max(elapsed, 1e-9),
        }
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_second']:.1f}")
        if self.args.report_to:
            self.accelerator.log(record, step=step)
        if self.accelerator.is_main_process:
            with self.path.open("a") as log:
                log.write(json.dumps(record) + "\n")
        self._start_window()

    def notice(self, message: str) -> None:
        """A line for the user (main process), printed above the progress bar."""
        if self.accelerator.is_main_process:
            tqdm.write(message)

    def close(self) -> None:
        self.bar.close()
