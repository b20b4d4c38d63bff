"""What a pretraining run does with an image it cannot read or process (a truncated file mid-folder).

`--on-bad-image stop` (the default) ends the run before the step that drew it, naming the image and why, with a
checkpoint of the state before that step to resume from once the file is replaced. `--on-bad-image skip` trains the
step on the other images and names the skipped one in a notice; `training_summary.json` counts them.

Both are decided for the global micro-batch as a whole, so every process takes the same decision at the same moment
(none waits in a collective for one that stopped) and one process trains as many do: every process learns which
rows of the global micro-batch are unreadable (one small gather per micro-batch), and each process's loss is the
model's reconstruction loss over its readable images weighted by their share of the global micro-batch's readable
images, so that the gradients DDP averages are those of the loss over all readable images. A resumed run meets the
same files at the same steps and skips the same images. An unreadable image's placeholder (zeros) still goes through
the forward pass with no share of the loss, so batches keep their shape.
"""

from __future__ import annotations

import torch

from .arguments import STOP
from .checkpoints import save_before_stop
from .errors import UnreadableImageError


def unreadable_rows(accelerator, batch: dict) -> list[int]:
    """Collective: the dataset rows of this global micro-batch that could not be used, the same list everywhere."""
    marks = torch.where(batch["readable"], -1, batch["index"])
    if accelerator.num_processes > 1:
        marks = accelerator.gather(marks.to(accelerator.device))
    return [row for row in marks.tolist() if row >= 0]


def handle_unreadable(run, log, rows: list[int]) -> None:
    """Collective, for `run` (a `loop.PretrainingRun`) about to train a micro-batch holding the unreadable `rows`:
    with `stop`, save the state before this step and raise `UnreadableImageError`; with `skip`, note each row."""
    examples, progress = run.data.examples, run.progress
    where = f"step {progress.global_step + 1} (epoch {progress.epoch})"
    if run.args.on_bad_image == STOP:
        others = f" ({len(rows) - 1} more unreadable image(s) in the same batch)" if len(rows) > 1 else ""
        problem = examples.problem(rows[0])
        saved = save_before_stop(run, run.args.output_dir)
        raise UnreadableImageError(
            f"{problem}{others}. Training stopped before {where}. {saved} Replace the file with a readable copy "
            "and resume with --resume-from-checkpoint latest, or skip unreadable images with --on-bad-image skip."
        )
    for row in rows:
        log.notice(f"--on-bad-image skip: {examples.problem(row)}; skipped at {where}.")


def readable_loss(
    model, outputs, pixel_values: torch.Tensor, readable: torch.Tensor, unreadable: int, num_processes: int
) -> torch.Tensor:
    """This process's share of the reconstruction loss over the readable images of the global micro-batch, of which
    `unreadable` images (on all processes together) could not be used. `model` is the unwrapped model."""
    readable = readable.to(outputs.logits.device)
    local = int(readable.sum())
    if local == 0:
        # No share, but every parameter stays in the graph: DDP expects a gradient from every process.
        return outputs.logits.sum() * 0.0
    global_readable = readable.numel() * num_processes - unreadable
    loss = model.reconstruction_loss(pixel_values[readable], outputs.logits[readable], outputs.mask[readable])
    return loss * (local * num_processes / global_readable)
