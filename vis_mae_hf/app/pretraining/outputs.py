"""What a finished pretraining run leaves in its output folder: the model and processor (a Transformers model
folder), `training_summary.json` (the Hub model card is written from it) and `reconstruction.png`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ... import __version__
from ...data.demo import demo_corpus_sources
from ...data.loading import modality_counts
from ...image_processing_vis_mae import PRETRAINING_MEAN, PRETRAINING_STD
from ...inference.reconstruction import reconstruction_grid
from ...modeling_vis_mae import VisMaeForPreTraining
from .arguments import PretrainingArguments
from .data import PretrainingData
from .optimization import TrainingPlan
from .progress import TrainingProgress

SUMMARY_FILE = "training_summary.json"
PICTURE_FILE = "reconstruction.png"


def save_outputs(
    model: VisMaeForPreTraining,
    data: PretrainingData,
    args: PretrainingArguments,
    plan: TrainingPlan,
    progress: TrainingProgress,
    final_loss: float,
    accelerator,
) -> None:
    """Main process only: write the model folder, the summary and the reconstruction picture to `args.output_dir`."""
    output_dir = Path(args.output_dir)
    model.save_pretrained(output_dir)
    data.examples.processor.save_pretrained(output_dir)
    summary = training_summary(model, data.images, args, plan, progress, final_loss, accelerator)
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    save_reconstruction_picture(model, data, args.reconstruction_images, output_dir / PICTURE_FILE, accelerator.device)
    accelerator.print(f"Saved the model, processor, {SUMMARY_FILE} and {PICTURE_FILE} to {output_dir}")


def training_summary(model, images, args, plan, progress, final_loss: float, accelerator) -> dict:
    """What the weights were trained on and how (`vis_mae_hf.hub.summaries` documents the format)."""
    summary = {
        "modality": args.modality,
        "dataset": args.dataset or "built-in demo corpus",
        "modality_counts": modality_counts(images),
        "num_images": len(images),
        "global_steps": progress.global_step,
        "epochs": progress.epochs(plan.steps_per_epoch),
        "images_seen": progress.images_seen,
        "skipped_images": len(progress.skipped_images),  # distinct unreadable images skipped (--on-bad-image skip)
        "skipped_image_rows": progress.skipped_images,
        "skipped_examples": progress.skipped_examples,  # times one was drawn and skipped, every epoch counting
        # None when no step ran (a run resumed at its last step): NaN is not JSON, and the card reads this file
        "final_loss": final_loss if math.isfinite(final_loss) else None,
        "recipe": training_recipe(model, args, plan, accelerator),
        "package_version": __version__,
    }
    if args.dataset is None and "source_path" in images.column_names:
        summary["sources"] = demo_corpus_sources(images["source_path"])
        summary["notes"] = [
            "Demonstration weights: a few minutes of pretraining on the built-in demo corpus, not the paper's "
            "2.5 M images. Its PET images are synthetic (FDG uptake simulated from the MNI152 tissue maps)."
        ]
    if args.model_name_or_path and not Path(args.model_name_or_path).exists():
        summary["base_model"] = args.model_name_or_path  # a Hub id the pretraining continued from
    return summary


def training_recipe(model, args: PretrainingArguments, plan: TrainingPlan, accelerator) -> dict:
    """The settings the run trained with, named as the recipe table and Transformers name them."""
    return {
        "defaults": "demo recipe" if args.recipe.demo else "published recipe",
        "optimizer": "AdamW",
        "betas": [args.adam_beta1, args.adam_beta2],
        "weight_decay": args.weight_decay,
        "decay_norms_and_biases": args.decay_norms_and_biases,
        "learning_rate": plan.learning_rate,
        "lr_scheduler_type": args.recipe.lr_scheduler_type,
        "warmup_steps": plan.warmup_steps,
        "total_steps": plan.total_steps,
        "global_batch_size": plan.global_batch_size,
        "num_processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
        "image_size": args.image_size,
        "depths": list(model.config.depths),
        "mask_ratio": model.config.mask_ratio,
        "mask_unit_size": model.config.mask_unit_size,
        "augmentation": "resize, horizontal flip" if args.horizontal_flip else "resize",
        "normalization": f"mean {PRETRAINING_MEAN} / std {PRETRAINING_STD}",
        "seed": args.seed,
        "on_bad_image": args.on_bad_image,
    }


def save_reconstruction_picture(model, data: PretrainingData, count: int, path: Path, device) -> None:
    """The first readable images of the data with fixed masks (epoch 0 keys), flips off: the same picture for the
    same run."""
    examples = data.examples
    flip, examples.horizontal_flip = examples.horizontal_flip, False
    items = []
    for index in range(len(examples)):
        item = examples[(0, index)]
        if item["readable"]:
            items.append(item)
        if len(items) == count:
            break
    examples.horizontal_flip = flip
    pixel_values = torch.stack([item["pixel_values"] for item in items]).to(device)
    noise = torch.stack([item["noise"] for item in items]).to(device)
    reconstruction_grid(model, pixel_values, noise, PRETRAINING_MEAN, PRETRAINING_STD).save(path)
