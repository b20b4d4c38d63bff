"""Training checkpoints that survive being killed at any moment and run no code when read.

A checkpoint folder `checkpoint-<step>` holds, each in a format whose reading cannot run code:

    model.safetensors   the weights of the unwrapped model
    optimizer.pt        the optimiser's state dict, read with `torch.load(weights_only=True)`: tensors and plain
                        containers only, any other object is refused unread
    scheduler.json      the learning-rate scheduler's state
    grad_scaler.json    the fp16 gradient scaler's state (fp16 runs only)
    progress.json       the format, where the run stands and its data geometry (`progress.py`)

No random-number state is kept: every random choice of a step is derived from (seed, step) or (seed, epoch, index),
so a resumed run repeats the uninterrupted one exactly without it. Checkpoints of earlier versions (Accelerate's
`save_state`, which pickles the scheduler and the random states) are refused unread, as is any file here that does
not hold what it should.

The main process writes into a hidden temporary folder and renames it to `checkpoint-<step>` once it is whole (a
rename is atomic on one filesystem): a run killed mid-save leaves a `.tmp-*` folder that resuming ignores, never a
half-written checkpoint that looks complete. Every process must hold the whole model and optimiser (one process, or
DDP); FSDP and DeepSpeed shard them, and their runs cannot be checkpointed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .progress import DataGeometry, TrainingProgress, progress_record

CHECKPOINTS_FOLDER = "checkpoints"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
PROGRESS_FILE = "progress.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.json"
SCALER_FILE = "grad_scaler.json"
# 1 (never written with this key): Accelerate's `save_state`, with the scheduler and random states pickled.
CHECKPOINT_FORMAT = 2
SHARDED_TRAINING = (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM)


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


def read_checkpoint(checkpoint: Path) -> tuple[TrainingProgress, DataGeometry]:
    """Where the checkpoint's run stood and the geometry it counted in; refuses, unread, a checkpoint of another
    format (those of earlier versions keep pickles, which can run code when loaded)."""
    record = _read_json(checkpoint / PROGRESS_FILE)
    if not isinstance(record, dict) or "checkpoint_format" not in record:
        pickles = sorted(path.name for path in checkpoint.glob("*.pkl")) or ["custom_checkpoint_0.pkl"]
        raise CheckpointError(
            f"--resume-from-checkpoint {checkpoint}: written by an earlier vis-mae-hf, which kept the learning-rate "
            f"scheduler and random states as pickles ({', '.join(pickles)}); loading a pickle can run any code, so "
            "this checkpoint is not read. Start the run again (without --resume-from-checkpoint, or in another "
            "--output-dir): the checkpoints it writes hold no pickles."
        )
    if record["checkpoint_format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"--resume-from-checkpoint {checkpoint}: checkpoint format {record['checkpoint_format']!r}, but this "
            f"vis-mae-hf reads format {CHECKPOINT_FORMAT}; resume it with the version that wrote it."
        )
    source = str(checkpoint / PROGRESS_FILE)
    return (
        TrainingProgress.from_record(record.get("progress"), source),
        DataGeometry.from_record(record.get("geometry"), source),
    )


def supports_checkpoints(accelerator) -> bool:
    """Whether every process holds the whole model and optimiser, which is what a checkpoint saves."""
    return accelerator.distributed_type not in SHARDED_TRAINING


def require_checkpoint_support(accelerator) -> None:
    if not supports_checkpoints(accelerator):
        raise ValueError(
            f"--checkpointing-steps and --resume-from-checkpoint need every process to hold the whole model and "
            f"optimiser (one process or DDP); this run uses {accelerator.distributed_type.value}, which shards them. "
            "Launch with DDP (`accelerate launch --multi-gpu`) or leave both options out."
        )


def save_checkpoint(run, output_dir: str | Path, keep_last: int | None) -> Path:
    """Collective: every process must call it. Saves `run` (a `loop.PretrainingRun`: its prepared model and
    optimiser, scheduler, progress and geometry) and returns the final checkpoint folder."""
    accelerator = run.accelerator
    root = checkpoints_root(output_dir)
    final = root / f"checkpoint-{run.progress.global_step}"
    temporary = root / f".tmp-checkpoint-{run.progress.global_step}"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)  # left over from a run killed while saving
        temporary.mkdir(parents=True)
        write_states(run, temporary)
        record = {"checkpoint_format": CHECKPOINT_FORMAT, **progress_record(run.progress, run.geometry)}
        (temporary / PROGRESS_FILE).write_text(json.dumps(record, indent=1))
        if final.exists():  # the same step saved by an earlier, interrupted attempt
            shutil.rmtree(final)
        os.replace(temporary, final)
        if keep_last:
            for old in completed_checkpoints(output_dir)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def save_before_stop(run, output_dir: str | Path) -> str:
    """Collective, for a run about to stop before a step: save its state and return the sentence naming where."""
    if not supports_checkpoints(run.accelerator):
        return f"No checkpoint was saved ({run.accelerator.distributed_type.value} runs cannot be checkpointed)."
    return f"The state before this step is in {save_checkpoint(run, output_dir, keep_last=None)}."


def write_states(run, folder: Path) -> None:
    """The model, optimiser, scheduler and scaler states into `folder` (main process; every process holds the same
    ones under DDP)."""
    model = run.accelerator.unwrap_model(run.model, keep_torch_compile=False)
    save_file({name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()},
              str(folder / MODEL_FILE))
    torch.save(run.optimizer.state_dict(), folder / OPTIMIZER_FILE)
    (folder / SCHEDULER_FILE).write_text(json.dumps(run.scheduler.state_dict()))
    if run.accelerator.scaler is not None:
        (folder / SCALER_FILE).write_text(json.dumps(run.accelerator.scaler.state_dict()))


def load_checkpoint(run, checkpoint: Path) -> None:
    """Restore the states of `checkpoint` (checked with `read_checkpoint`) into `run`'s prepared objects; every
    process reads them. Raises `CheckpointError` naming the file that is missing, unreadable or does not fit."""
    model = run.accelerator.unwrap_model(run.model, keep_torch_compile=False)
    weights = checkpoint / MODEL_FILE
    try:
        model.load_state_dict(_read_weights(weights), strict=True)
    except RuntimeError as error:  # missing, unexpected or wrongly shaped tensors
        raise CheckpointError(
            f"{weights} does not fit this model ({' '.join(str(error).split())}); resume with the "
            "--config-overrides or --model-name-or-path the checkpoint's run was started with."
        ) from error
    optimizer_file = checkpoint / OPTIMIZER_FILE
    try:
        run.optimizer.load_state_dict(_read_plain_tensors(optimizer_file))
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"{optimizer_file} does not fit this run's optimiser: {error}.") from error
    _load_plain_state(run.scheduler, checkpoint / SCHEDULER_FILE)
    if run.accelerator.scaler is not None and (checkpoint / SCALER_FILE).is_file():
        _load_plain_state(run.accelerator.scaler, checkpoint / SCALER_FILE)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete.")
    try:
        return load_file(str(path))
    except Exception as error:  # SafetensorError (a truncated or damaged file) derives from Exception only
        raise CheckpointError(f"{path} is not a readable safetensors file ({error}); the checkpoint is damaged.") from error


def _read_plain_tensors(path: Path):
    """`torch.load(weights_only=True)`: tensors and plain containers; a file holding any other object is refused."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError and friends: the file is not what this package writes
        message = str(error)
        reason = message.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0]
        raise CheckpointError(
            f"{path} is not a plain optimiser state ({' '.join(reason.split())}); it was refused unread, since "
            "loading other objects could run code. Resume from a checkpoint this package wrote."
        ) from error


def _load_plain_state(target, path: Path) -> None:
    """`target.load_state_dict` from JSON holding exactly the keys of `target`'s own state (a scheduler, a scaler)."""
    expected = target.state_dict()
    record = _read_json(path)
    if not isinstance(record, dict) or set(record) != set(expected):
        raise CheckpointError(f"{path} must hold the keys {sorted(expected)}; the checkpoint is damaged.")
    if "lr_lambdas" in expected and record["lr_lambdas"] != expected["lr_lambdas"]:
        raise CheckpointError(f"{path}: 'lr_lambdas' must be {expected['lr_lambdas']}; the checkpoint is damaged.")
    try:
        target.load_state_dict(record)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} does not fit this run: {error}.") from error


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); the checkpoint is damaged.") from error
