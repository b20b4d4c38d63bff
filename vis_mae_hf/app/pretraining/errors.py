"""The ways a pretraining run stops on its user's input, each reported by `vis-mae pretrain` as one line.

This module imports nothing, so the command's error policy (`vis_mae_hf.app.cli`) can name these classes without
loading the training loop. A refused argument, dataset or checkpoint is a `ValueError` (`PretrainingDataError`,
`CheckpointError`); a run that trained and then met something it cannot go past raises a `PretrainingStopped`.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint cannot be resumed: written by another version, unreadable, holding code, or made for another
    model or data geometry. The message names the checkpoint, what is wrong and what to do."""


class PretrainingStopped(RuntimeError):
    """Training stopped before a step it could not take; the message names the step, the cause and the checkpoint
    saved before it."""


class NonFiniteLossError(PretrainingStopped):
    """The loss became NaN or infinite."""


class UnreadableImageError(PretrainingStopped):
    """An image drawn for the next step cannot be read or processed (`--on-bad-image stop`)."""


class StalledEpochError(PretrainingStopped):
    """An epoch yielded no optimiser step, so the loop could never reach its last step."""


__all__ = ["CheckpointError", "NonFiniteLossError", "PretrainingStopped", "StalledEpochError", "UnreadableImageError"]
