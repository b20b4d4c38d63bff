"""Training checkpoints that survive being killed at any moment.

`accelerator.save_state` writes into a hidden temporary folder; only when every process has finished does the main
process add `progress.json` and rename the folder to `checkpoint-<step>` (a rename is atomic on one filesystem). A run
killed mid-save leaves a `.tmp-*` folder that resuming ignores, never a half-written checkpoint that looks complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

CHECKPOINTS_FOLDER = "checkpoints"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
PROGRESS_FILE = "progress.json"


@dataclass
class TrainingProgress:
    """Where a run stands; with the model/optimiser/scheduler state it is all a resumed run needs."""

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    images_seen: int = 0

    def advance(self, steps_per_epoch: int, global_batch_size: int) -> None:
        """Count one finished optimiser step, moving to the next epoch after its last step."""
        self.global_step += 1
        self.step_in_epoch += 1
        self.images_seen += global_batch_size
        if self.step_in_epoch == steps_per_epoch:
            self.epoch += 1
            self.step_in_epoch = 0

    def epochs(self, steps_per_epoch: int) -> float:
        """Epochs trained, fractional within the current one."""
        return self.epoch + self.step_in_epoch / steps_per_epoch


def checkpoints_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINTS_FOLDER


def completed_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoints_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match and (path / PROGRESS_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def resolve_resume_checkpoint(output_dir: str | Path, resume_from_checkpoint: str) -> Path:
    """`"latest"` -> the newest complete checkpoint under `output_dir`; anything else is a checkpoint folder."""
    if resume_from_checkpoint == "latest":
        checkpoints = completed_checkpoints(output_dir)
        if not checkpoints:
            raise FileNotFoundError(
                f"--resume-from-checkpoint latest: no complete checkpoint under {checkpoints_root(output_dir)}."
            )
        return checkpoints[-1]
    path = Path(resume_from_checkpoint)
    if not (path / PROGRESS_FILE).is_file():
        raise FileNotFoundError(
            f"--resume-from-checkpoint {path}: not a complete checkpoint folder (no {PROGRESS_FILE} inside)."
        )
    return path


def read_progress(checkpoint: Path) -> TrainingProgress:
    return TrainingProgress(**json.loads((checkpoint / PROGRESS_FILE).read_text()))


def load_checkpoint(accelerator, output_dir: str | Path, resume_from_checkpoint: str) -> TrainingProgress:
    """Collective: restore the model, optimiser, scheduler and random states of a checkpoint (`"latest"` or a
    folder) into the prepared objects, and return where that run stood."""
    checkpoint = resolve_resume_checkpoint(output_dir, resume_from_checkpoint)
    accelerator.load_state(str(checkpoint))
    progress = read_progress(checkpoint)
    accelerator.print(f"Resumed from {checkpoint} at step {progress.global_step} (epoch {progress.epoch}).")
    return progress


def save_checkpoint(accelerator, output_dir: str | Path, progress: TrainingProgress, keep_last: int | None) -> Path:
    """Collective: every process must call it. Returns the final checkpoint folder."""
    root = checkpoints_root(output_dir)
    final = root / f"checkpoint-{progress.global_step}"
    temporary = root / f".tmp-checkpoint-{progress.global_step}"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)  # left over from a run killed while saving
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temporary / PROGRESS_FILE).write_text(json.dumps(asdict(progress), indent=1))
        if final.exists():  # the same step saved by an earlier, interrupted attempt
            shutil.rmtree(final)
        os.replace(temporary, final)
        if keep_last:
            for old in completed_checkpoints(output_dir)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
